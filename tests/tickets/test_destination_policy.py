"""Finding 11 of issue 21: where ticket destinations may point, what they may read, what they get.

Each attack as reported, against real HTTP servers on 127.0.0.1: plain ``http://`` with
credentials to another host, no host allowlist, ``{file: ...}`` secrets from any path, redirects
that re-send our headers to another server, and answers read whole however large or slow.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_settings
from pipeline.tickets import DeliveryWorker, load_routing, load_routing_text, outbox_rows
from pipeline.tickets.destinations import Http, Message, Request, TransportError, adapter_for
from pipeline.tickets.destinations.base import MAX_RESPONSE_BYTES, RefusedRequest, checked
from pipeline.tickets.errors import RoutingError
from pipeline.tickets.outbox import COLUMNS
from pipeline.tickets.policy import DestinationPolicy, host_allowed, url_problem
from pipeline.tickets.store import OutboxStore
from tests.tickets.conftest import ENV, make_alert

Answer = Callable[[BaseHTTPRequestHandler], None]


class Endpoint:
    """A server on 127.0.0.1 that records every request and answers with ``answer(handler)``."""

    def __init__(self, answer: Answer) -> None:
        self.requests: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.requests.append({"method": self.command, "path": self.path, "body": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                try:
                    answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PATCH = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _json(status: int = 200, body: bytes = b'{"ok": true}', **headers: str) -> Answer:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
    return answer


@pytest.fixture
def endpoints() -> Iterator[Callable[[Answer], Endpoint]]:
    made: list[Endpoint] = []

    def make(answer: Answer) -> Endpoint:
        made.append(Endpoint(answer))
        return made[-1]
    yield make
    for e in made:
        e.close()


def hook_routing(url: str, extra: str = "", **policy: Any) -> str:
    return f"""
delivery: {{max_attempts: 3, base_delay: 0.05, max_delay: 0.1, poll_interval: 0.05}}
destinations:
  hook: {{kind: webhook, url: "{url}", timeout: 2, secrets: [{{env: HOOK_NEW}}]{extra}}}
routes:
  - {{name: all, destinations: [hook]}}
"""


# -- where a destination may point ------------------------------------------------------------------
@pytest.mark.parametrize("url,why", [
    ("http://tracker.internal/hook", "plain http:// is only allowed to 127.0.0.1, ::1, localhost"),
    ("http://user:pw@10.0.0.5:8080/hook", "credentials in the URL are not allowed"),
    ("https://user:pw@tracker.example/hook", "credentials in the URL are not allowed"),
    ("https:///hook", "expected https://host/"),
    ("https://tracker.example:99999999/", "malformed URL"),
    ("file:///etc/passwd", "expected https://host/"),
])
def test_insecure_urls_are_refused_at_load(url: str, why: str) -> None:
    with pytest.raises(RoutingError) as err:
        load_routing_text(hook_routing(url), "routing.yaml", ENV)
    (line,) = err.value.errors
    assert line.startswith("routing.yaml:4: destination 'hook': url: ") and why in line, line
    assert "pw" not in line.split("url: ", 1)[1]  # the message never repeats the credentials


def test_https_anywhere_and_http_to_loopback_only_are_accepted() -> None:
    for url in ("https://tracker.example/hook", "http://127.0.0.1:1/hook", "http://localhost:1/x", "http://[::1]:1/"):
        assert url_problem(url) is None, url


def test_allowlist_of_hosts() -> None:
    policy = DestinationPolicy(allowed_hosts=(".atlassian.net", "hooks.example.com"))
    ok = load_routing_text(hook_routing("https://HOOKS.example.com/x"), "routing.yaml", ENV, policy=policy)
    assert ok.allowed_hosts == (".atlassian.net", "hooks.example.com")
    for url in ("https://metadata.internal/latest", "https://evil-hooks.example.com/", "http://127.0.0.1:9/x",
                "https://atlassian.net.evil.example/"):
        with pytest.raises(RoutingError, match=r"routing.yaml:4: .*is not in tickets.allowed_hosts"):
            load_routing_text(hook_routing(url), "routing.yaml", ENV, policy=policy)
    assert host_allowed("acme.atlassian.net", policy.allowed_hosts)
    assert not host_allowed("atlassian.net", policy.allowed_hosts)  # ".x" means subdomains only


def test_allowlist_and_secrets_dir_come_from_the_settings(tmp_path: Path) -> None:
    (tmp_path / "tronrisk.toml").write_text('[tickets]\nallowed_hosts = ["hooks.example.com"]\n'
                                            'secrets_dir = "secrets"\n')
    settings = load_settings(str(tmp_path / "tronrisk.toml"), env={})
    policy = DestinationPolicy.from_settings(settings)
    assert policy == DestinationPolicy(("hooks.example.com",), str(tmp_path / "secrets"), 1 << 20)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "hook").write_text(ENV["HOOK_NEW"])
    routing_file = tmp_path / "routing.yaml"
    text = hook_routing("https://hooks.example.com/x").replace("{env: HOOK_NEW}", "{file: hook}")
    routing_file.write_text(text)
    routing = load_routing(routing_file, env={}, policy=policy)
    assert routing.destinations["hook"].secret("secrets") == ENV["HOOK_NEW"]


def test_every_request_is_checked_again(endpoints) -> None:
    server = endpoints(_json())
    with pytest.raises(RefusedRequest, match=r"is not in tickets\.allowed_hosts"):
        Http(2, ("tracker.example",)).send(Request("POST", server.url + "/x", json={}))
    with pytest.raises(RefusedRequest, match="plain http://"):
        Http(2).send(Request("POST", "http://192.0.2.1/x", json={}))
    assert server.requests == []  # nothing left the process


# -- where a file secret may be read from -----------------------------------------------------------
@pytest.fixture
def secret_dirs(tmp_path: Path) -> tuple[Path, Path]:
    inside, outside = tmp_path / "secrets", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (inside / "hook").write_text(ENV["HOOK_NEW"] + "\n")
    (outside / "stolen").write_text(ENV["HOOK_OLD"])
    return inside, outside


@pytest.mark.parametrize("ref,why", [
    ("../elsewhere/stolen", "'..' is not allowed"),
    ("{outside}/stolen", "outside the secrets directory"),
    ("link-out", "outside the secrets directory"),
    ("/etc/hostname", "outside the secrets directory"),
    ("fifo", "not a regular file"),
    ("subdir", "not a regular file"),
    (".", "outside the secrets directory"),
])
def test_file_secrets_only_from_under_the_secrets_directory(secret_dirs, ref: str, why: str) -> None:
    inside, outside = secret_dirs
    (inside / "link-out").symlink_to(outside / "stolen")
    os.mkfifo(inside / "fifo")  # would block a plain read forever
    (inside / "subdir").mkdir()
    secret = "{file: " + ref.format(outside=outside) + "}"
    text = hook_routing("https://h.example/x").replace("{env: HOOK_NEW}", secret)
    with pytest.raises(RoutingError) as err:
        load_routing_text(text, "routing.yaml", {}, inside)
    (line,) = err.value.errors
    assert line.startswith("routing.yaml:4: destination 'hook': secrets: secret file:") and why in line, line
    assert ENV["HOOK_OLD"] not in line


def test_file_secrets_inside_the_directory_work_through_symlinks_that_stay_inside(secret_dirs) -> None:
    inside, _ = secret_dirs
    (inside / "..data").mkdir()  # the layout of a Kubernetes secret volume
    (inside / "..data" / "token").write_text(ENV["HOOK_NEW"])
    (inside / "token").symlink_to(inside / "..data" / "token")
    for ref in ("hook", "token", str(inside / "hook")):
        text = hook_routing("https://h.example/x").replace("{env: HOOK_NEW}", "{file: " + ref + "}")
        routing = load_routing_text(text, "routing.yaml", {}, inside)
        assert routing.destinations["hook"].secret("secrets") == ENV["HOOK_NEW"]


# -- what goes over the wire ------------------------------------------------------------------------
def test_redirects_are_not_followed_and_our_headers_stay_home(endpoints, storage) -> None:
    """The reported attack: a destination answering 307 to another server received the signed body
    and every header again (an extra ``X-Api-Key`` here) from requests' redirect handling."""
    elsewhere = endpoints(_json())
    tracker = endpoints(_json(307, b"", Location=elsewhere.url + "/collect"))
    text = hook_routing(tracker.url + "/hook", extra=', headers: {X-Api-Key: k-123}')
    routing = load_routing_text(text, "routing.yaml", ENV)
    rows = outbox_rows([make_alert(1)], routing)
    storage.insert(f"{storage.database}.ticket_outbox", rows, column_names=COLUMNS["ticket_outbox"])
    worker = DeliveryWorker(lambda: storage, routing)
    worker.run_once()
    assert len(tracker.requests) == 1 and tracker.requests[0]["headers"]["x-api-key"] == "k-123"
    assert elsewhere.requests == []
    (item,) = OutboxStore(storage, storage.database).list("", "", 10)
    assert item.state == "dead"
    assert item.last_error == "HTTP 307: redirect not followed; point the destination at the final URL"


def test_answers_are_read_up_to_a_cap(endpoints) -> None:
    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.end_headers()
        chunk = b"[" + b"0," * 32768
        for _ in range(10_000):  # 640 MB if read whole
            h.wfile.write(chunk)

    server = endpoints(endless)
    response = Http(5).send(Request("GET", server.url + "/issues"))
    assert response.status == 200 and response.truncated and len(response.body) == MAX_RESPONSE_BYTES
    with pytest.raises(TransportError, match="look-up answer longer than"):
        checked(response)  # a cut look-up is not "no such ticket" (that would open a duplicate)
    big = Http(5).send(Request("GET", server.url + "/issues", max_response_bytes=1 << 20))
    assert big.truncated and len(big.body) == 1 << 20


def test_a_truncated_lookup_retries_instead_of_opening_a_duplicate(endpoints) -> None:
    issues = b"[" + b",".join([b'{"number": 1, "body": "' + b"x" * 1000 + b'"}'] * 9000) + b"]"  # ~9 MB
    server = endpoints(_json(200, issues))
    routing = load_routing_text(f"""
destinations:
  gh: {{kind: github, url: "{server.url}", repo: acme/cases, token: {{env: GH_TOKEN}}}}
routes:
  - {{name: all, destinations: [gh]}}
""", "routing.yaml", ENV)
    adapter = adapter_for(routing.destinations["gh"])
    msg = Message(make_alert(1), "k", "g1", "all", "https://dash.example/1")
    with pytest.raises(TransportError, match="look-up answer longer than"):
        adapter.find(Http(5), msg)


def test_a_slow_drip_answer_ends_at_the_timeout(endpoints) -> None:
    def drip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        for _ in range(200):  # one byte every 50 ms: each read is on time, the whole never is
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.05)

    server = endpoints(drip)
    with pytest.raises(TransportError, match="not complete within the timeout"):
        Http(0.5).send(Request("GET", server.url + "/slow"))
