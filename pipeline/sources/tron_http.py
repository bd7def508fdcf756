"""The node's HTTP API through tronpy, with every failure classified where it happens.

tronpy's ``HTTPProvider`` sends ``TRON-PRO-API-KEY`` only when the URL contains "trongrid" (and
then falls back to tronpy's shared public keys when none is given), prints to stderr and rotates
keys on a 403 quota answer, and raises ``requests.HTTPError`` from ``raise_for_status`` on any
4xx/5xx. We keep its session and request code but own the key: the header is sent to whatever URL
the user gave a key for (a TronGrid mirror, a paid gateway), never a shared key, and a 403 quota
answer is a retryable :class:`NodeError` like a 429.

Retryable: timeouts, refused/reset connections, 429, 403 (quota), 5xx, a body that is not JSON,
and a ``{"Error": …}`` body (TronGrid answers some overloads that way). Fatal: other 4xx (a wrong
URL or path), which no amount of waiting fixes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from tronpy.exceptions import ApiError
from tronpy.providers import HTTPProvider

from pipeline.errors import PipelineError

log = logging.getLogger(__name__)


class NodeError(PipelineError):
    """A node call failed; ``retryable`` says whether waiting can help."""

    def __init__(self, message: str, retryable: bool = True, retry_after_s: float | None = None,
                 disconnected: bool = False, quota: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.disconnected = disconnected
        self.quota = quota


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


class NodeClient:
    """``call(method, params)`` against one full node (or TronGrid), raising :class:`NodeError`."""

    def __init__(self, endpoint: str, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        self.endpoint = endpoint.rstrip("/") + "/"
        self.provider = HTTPProvider(self.endpoint, timeout=timeout_s, api_key=api_key or None)
        self.provider.use_api_key = False  # we set the header ourselves, see the module doc
        self.provider.sess.headers.pop("Tron-Pro-Api-Key", None)
        if api_key:
            self.provider.sess.headers["TRON-PRO-API-KEY"] = api_key
        self.calls = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.calls += 1
        where = f"{self.endpoint}{method}"
        try:
            answer = self.provider.make_request(method, params or {})
        except requests.Timeout as err:
            raise NodeError(f"{where}: timeout ({err.__class__.__name__})") from None
        except requests.ConnectionError as err:
            raise NodeError(f"{where}: connection failed ({_short(err)})", disconnected=True) from None
        except requests.HTTPError as err:
            resp = err.response
            status = resp.status_code if resp is not None else 0
            body = resp.text[:200] if resp is not None else ""
            wait = retry_after(resp.headers.get("Retry-After")) if resp is not None else None
            if status in (429, 403) or status >= 500:
                raise NodeError(f"{where}: HTTP {status} {body}", retry_after_s=wait,
                                quota=status in (429, 403)) from None
            raise NodeError(f"{where}: HTTP {status} {body} (check the node URL)", retryable=False) from None
        except ApiError as err:  # tronpy's own "rate limit" when keys run out
            raise NodeError(f"{where}: {err}", quota=True) from None
        except ValueError as err:  # requests.JSONDecodeError: a proxy's HTML error page, a cut body
            raise NodeError(f"{where}: answer is not JSON ({_short(err)})") from None
        if isinstance(answer, dict) and "Error" in answer:
            raise NodeError(f"{where}: node error {str(answer['Error'])[:200]}")
        return answer


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]
