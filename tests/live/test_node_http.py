"""The node client against real HTTP servers on 127.0.0.1: the key never crosses to another origin
(finding 10), answers are capped (finding 6), and errors never show the key or the URL's path."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import orjson
import pytest

from pipeline.redact import scrub
from pipeline.sources.tron_http import API_KEY_HEADER, NodeClient, NodeError, NodeProvider
from tests.live.httpd import Server

KEY = "k3y-5ecret-0123456789"
HEAD = orjson.dumps({"blockID": "ab" * 32, "block_header": {"raw_data": {"number": 7}}})


def test_the_api_key_is_never_sent_across_a_redirect_to_another_host() -> None:
    with Server(lambda path, h, body: (200, {"Content-Type": "application/json"}, HEAD)) as other, \
            Server(lambda path, h, body: (307, {"Location": f"{other.url}{path}"}, b"")) as gateway:
        client = NodeClient(gateway.url, api_key=KEY)
        assert client.call("wallet/getnowblock") == orjson.loads(HEAD)  # the redirect was followed...
        assert gateway.requests[0][1][API_KEY_HEADER.lower()] == KEY
        assert other.requests  # ...to the other host, but without the key:
        assert all(API_KEY_HEADER.lower() not in h for _p, h in other.requests)


def test_a_same_origin_redirect_keeps_the_key_and_loops_are_fatal() -> None:
    def route(path: str, headers: dict[str, str], body: bytes):
        if path.startswith("/old/"):
            return 301, {"Location": path.replace("/old/", "/new/")}, b""
        if path.startswith("/loop"):
            return 302, {"Location": "/loop"}, b""
        if path.startswith("/file"):
            return 302, {"Location": "file:///etc/passwd"}, b""
        return 200, {}, HEAD

    with Server(route) as node:
        assert NodeClient(f"{node.url}/old", api_key=KEY).call("wallet/getnowblock") == orjson.loads(HEAD)
        assert [h.get(API_KEY_HEADER.lower()) for _p, h in node.requests] == [KEY, KEY]
        for base in ("loop", "file"):
            with pytest.raises(NodeError, match="check the node URL") as err:
                NodeClient(f"{node.url}/{base}").call("wallet/getnowblock")
            assert not err.value.retryable


def _big(n: int) -> bytes:
    return orjson.dumps({"block": [{"pad": "x" * n}]})


@pytest.mark.parametrize("how", ["content-length", "chunked", "gzip-bomb"])
def test_answers_over_the_cap_stop_there(how: str) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 16 MiB offered in 256 KiB pieces; the client should stop after ~1 MiB
            sent.append(1)
            yield b"x" * 262_144

    def route(path: str, headers: dict[str, str], body: bytes):
        if how == "content-length":
            return 200, {}, _big(2_000_000)
        if how == "chunked":
            return 200, {}, chunks()
        return 200, {"Content-Encoding": "gzip"}, gzip.compress(b" " * 20_000_000, 6)  # 20 MB from ~20 KB

    with Server(route) as node, pytest.raises(NodeError, match="over the 1,048,576-byte cap") as err:
        NodeClient(node.url, max_answer_bytes=2**20).call("wallet/getblockbylimitnext")
    assert err.value.too_large and err.value.retryable and err.value.method == "wallet/getblockbylimitnext"
    if how == "chunked":
        assert len(sent) < 64  # it stopped reading, so the sender stopped too


def test_a_dripping_node_is_a_timeout_not_a_hang() -> None:
    def drip() -> Iterator[bytes]:
        for _ in range(100):
            time.sleep(0.1)
            yield b" "

    with Server(lambda p, h, b: (200, {}, drip())) as node:
        provider = NodeProvider(node.url + "/", timeout_s=0.5, total_timeout_s=0.6)
        with pytest.raises(NodeError, match="timeout") as err:  # waited out, the answer would be "not JSON"
            provider.call("wallet/getnowblock", {})
        assert err.value.retryable


def test_errors_name_the_node_without_the_key_or_the_path_secret() -> None:
    path_secret = "0123456789abcdefGATEWAYKEY"

    def route(path: str, headers: dict[str, str], body: bytes):
        if path.endswith("getnowblock"):  # a node that echoes the request in its error page
            return 500, {}, f"boom: {headers.get(API_KEY_HEADER.lower())} on {path}".encode()
        if path.endswith("deep"):
            return 200, {}, b"[" * 5000 + b"]" * 5000
        return 200, {}, b"<html>proxy error</html>"

    with Server(route) as node:
        client = NodeClient(f"{node.url}/{path_secret}/", api_key=KEY)
        messages = []
        for method in ("wallet/getnowblock", "wallet/deep", "wallet/html"):
            with pytest.raises(NodeError) as err:
                client.call(method)
            assert err.value.retryable
            messages.append(str(err.value))
    assert "HTTP 500" in messages[0] and "not JSON" in messages[1] and "not JSON" in messages[2]
    for text in messages:
        assert KEY not in text and path_secret not in text and f"{node.url}/***" in text
    assert scrub(f"GET /{path_secret}/x with {KEY}") == "GET /***/x with ***"  # registered for every log line


def test_a_refused_connection_does_not_quote_the_path() -> None:
    client = NodeClient("http://127.0.0.1:9/SECRETPATHKEY123/")  # the discard port: nothing listens
    with pytest.raises(NodeError) as err:
        client.call("wallet/getnowblock")
    assert err.value.disconnected and "SECRETPATHKEY123" not in str(err.value)
