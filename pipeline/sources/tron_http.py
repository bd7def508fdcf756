"""The node's HTTP API through tronpy, with every failure classified where it happens.

tronpy's ``HTTPProvider`` sends ``TRON-PRO-API-KEY`` only when the URL contains "trongrid" (and
then falls back to tronpy's shared public keys when none is given), prints to stderr and rotates
keys on a 403 quota answer, follows redirects with every session header, and reads answers whole.
:class:`NodeProvider` keeps its session but owns the request (so it can also be handed to
``tronpy.Tron(provider=…)``):

* the key is sent to the origin (scheme, host, port) the user gave it for, never a shared key, and
  never to another origin: redirects are followed by hand (at most :data:`MAX_REDIRECTS`), and a
  hop to another origin goes without the key (``requests`` strips only ``Authorization``);
* every answer is read streamed and stops at ``max_answer_bytes`` (decompressed size: a gzip bomb
  stops there too), and within ``total_timeout_s`` overall, not only per socket read, so a node
  that drips one byte at a time cannot hold the follower;
* bodies are parsed with orjson (bounded nesting depth: a deeply nested answer is an error, not a
  ``RecursionError``);
* error messages name the node by :func:`pipeline.redact.redact_url` and are scrubbed of the key
  and the URL's secret parts, since gateways put keys in the path and a node may echo headers.

Retryable: timeouts, refused/reset connections, 429, 403 (quota), 5xx, a body that is not JSON,
an answer over the size cap (``too_large``: the caller decides whether a smaller request helps),
and a ``{"Error": …}`` body (TronGrid answers some overloads that way). Fatal: other 4xx (a wrong
URL or path) and redirect loops, which no amount of waiting fixes.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3
from tronpy.providers import HTTPProvider

from pipeline.errors import PipelineError
from pipeline.redact import redact_url, register_secret, scrub, url_secrets

log = logging.getLogger(__name__)

API_KEY_HEADER = "TRON-PRO-API-KEY"
DEFAULT_MAX_ANSWER_BYTES = 64 * 2**20
MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 256 * 1024


class NodeError(PipelineError):
    """A node call failed; ``retryable`` says whether waiting can help."""

    def __init__(self, message: str, retryable: bool = True, retry_after_s: float | None = None,
                 disconnected: bool = False, quota: bool = False, too_large: bool = False,
                 method: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.disconnected = disconnected
        self.quota = quota
        self.too_large = too_large  # the answer was over the size cap
        self.method = method


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``: where a credential may go."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def parse_answer(body: bytes) -> Any:
    """The JSON of a node answer; ``ValueError`` (orjson's) when it is not JSON or nests too deep."""
    return orjson.loads(body)


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class NodeProvider(HTTPProvider):
    """tronpy's provider with the key, size cap and redirect handling of the module doc."""

    def __init__(self, endpoint: str, api_key: str | None = None, timeout_s: float = 10.0,
                 max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 total_timeout_s: float | None = None) -> None:
        super().__init__(endpoint, timeout=timeout_s, api_key=None)
        self.use_api_key = False  # never tronpy's shared keys, see the module doc
        self.sess.headers.pop("Tron-Pro-Api-Key", None)
        self._api_key = api_key or None
        self.max_answer_bytes = max_answer_bytes
        self.total_timeout_s = total_timeout_s if total_timeout_s is not None else max(30.0, 6 * timeout_s)
        self.origin = origin(endpoint)
        self.where = redact_url(endpoint)
        register_secret(self._api_key, *url_secrets(endpoint))

    def post(self, method: str, params: Any) -> requests.Response:
        """POST ``params`` to ``method``, following redirects by hand; the body is read (capped) into
        ``response._content``. Raises ``requests`` exceptions, or :class:`_TooLarge`."""
        url = urljoin(self.endpoint_uri, method)
        deadline = time.monotonic() + self.total_timeout_s
        for _hop in range(MAX_REDIRECTS + 1):
            same = origin(url) == self.origin
            headers = {API_KEY_HEADER: self._api_key} if self._api_key and same else None
            resp = self.sess.post(url, json=params, headers=headers, timeout=self.timeout, stream=True,
                                  allow_redirects=False)
            try:
                location = resp.headers.get("Location")
                if resp.status_code in _REDIRECTS and location:
                    nxt = urljoin(url, location)
                    if urlsplit(nxt).scheme.lower() not in ("http", "https"):
                        raise requests.exceptions.InvalidSchema("redirect to a URL that is not http(s)")
                    if origin(nxt) != self.origin and same:
                        log.warning("%s redirects to %s, another origin: following without the API key",
                                    self.where, redact_url(nxt))
                    url = nxt
                    continue
                resp._content = _read_capped(resp, self.max_answer_bytes, deadline)
                return resp
            finally:
                resp.close()
        raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def make_request(self, method: str, params: Any = None) -> Any:
        """tronpy's entry point: the parsed answer, or a classified :class:`NodeError`."""
        return self.call(method, params or {})

    def call(self, method: str, params: dict[str, Any]) -> Any:
        where = f"{self.where} {method}"
        try:
            resp = self.post(method, params)
        except _TooLarge as err:
            raise NodeError(scrub(f"{where}: answer over the {self.max_answer_bytes:,}-byte cap "
                                  f"({err.size:,} bytes read or announced)"), too_large=True,
                            method=method) from None
        except (requests.TooManyRedirects, requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidURL) as err:
            raise NodeError(scrub(f"{where}: {_short(err)} (check the node URL)"), retryable=False,
                            method=method) from None
        except requests.Timeout as err:
            raise NodeError(scrub(f"{where}: timeout ({err.__class__.__name__})"), method=method) from None
        except requests.ConnectionError as err:
            raise NodeError(scrub(f"{where}: connection failed ({_short(err)})"), disconnected=True,
                            method=method) from None
        except requests.RequestException as err:  # invalid URL or header from a redirect, chunked errors
            raise NodeError(scrub(f"{where}: request failed ({_short(err)})"), method=method) from None
        status = resp.status_code
        if status >= 400:
            body = _excerpt(resp.content)
            wait = retry_after(resp.headers.get("Retry-After"))
            if status in (429, 403) or status >= 500:
                raise NodeError(scrub(f"{where}: HTTP {status} {body}"), retry_after_s=wait,
                                quota=status in (429, 403), method=method)
            raise NodeError(scrub(f"{where}: HTTP {status} {body} (check the node URL)"), retryable=False,
                            method=method)
        try:
            answer = parse_answer(resp.content)
        except ValueError as err:  # a proxy's HTML error page, a cut body, nesting beyond 1024
            raise NodeError(scrub(f"{where}: answer is not JSON ({_short(err)})"), method=method) from None
        if isinstance(answer, dict) and "Error" in answer:
            raise NodeError(scrub(f"{where}: node error {str(answer['Error'])[:200]}"), method=method)
        return answer


def _read_capped(resp: requests.Response, cap: int, deadline: float) -> bytes:
    """The decoded body, refusing more than ``cap`` bytes and reading past ``deadline``.

    ``read1`` returns what has arrived (bounded decompression included), so the deadline is
    checked between small reads rather than after a read that a slow sender can stretch.
    """
    announced = resp.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > cap:
        raise _TooLarge(int(announced))
    buf = bytearray()
    raw = resp.raw
    while True:
        if time.monotonic() > deadline:
            raise requests.Timeout(f"answer not complete after {len(buf):,} bytes")
        try:
            chunk = raw.read1(_CHUNK, decode_content=True)
        except urllib3.exceptions.TimeoutError as err:
            raise requests.Timeout(str(err)) from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as err:  # reset, cut, gzip
            raise requests.ConnectionError(f"reading the answer: {type(err).__name__}: {err}") from None
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > cap:
            raise _TooLarge(len(buf))


def _excerpt(body: bytes) -> str:
    return body[:200].decode("utf-8", "replace").replace("\n", " ")


class NodeClient:
    """``call(method, params)`` against one full node (or TronGrid), raising :class:`NodeError`."""

    def __init__(self, endpoint: str, api_key: str | None = None, timeout_s: float = 10.0,
                 max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES) -> None:
        self.endpoint = endpoint.rstrip("/") + "/"
        self.provider = NodeProvider(self.endpoint, api_key, timeout_s, max_answer_bytes)
        self.where = self.provider.where
        self.calls = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.calls += 1
        return self.provider.call(method, params or {})

    def close(self) -> None:
        self.provider.sess.close()


def _short(err: BaseException) -> str:
    """The first line of a library error, without the request path it quotes (it may hold a key)."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return _URL_IN_ERROR.sub(r"\1***", text)[:200]


_URL_IN_ERROR = re.compile(r"(with url: |url: )\S+")
