"""Waiting for ClickHouse: one retry policy for every write the pipeline makes.

A stopped server, a full or read-only disk, a network cut: the write is retried with exponential
backoff (0.5 s doubling to 30 s) until the budget runs out, with a log line saying what is being
held and why; the caller blocks meanwhile, so Bytewax stops pulling input (backpressure) and memory
stays bounded. Errors that will fail the same way forever (schema, types, syntax) are raised at once.
Callers make their writes idempotent (dedup tokens, deterministic ids) so a retry after an answer
was lost does no harm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from pipeline.errors import StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

_FATAL = ("Code: 60", "Code: 16", "Code: 47", "Code: 53", "Code: 62", "Code: 81", "UNKNOWN_TABLE",
          "NO_SUCH_COLUMN", "TYPE_MISMATCH", "SYNTAX_ERROR", "Code: 6.", "Code: 27")


def retryable(message: str) -> bool:
    """Schema and type errors will fail the same way forever; connection, disk and load errors pass."""
    return not any(code in message for code in _FATAL)


def _client_side(err: Exception) -> bool:
    """Errors the client raises before anything is sent -- a column the table lacks, a value its
    type cannot hold -- fail the same way on every try (``ProgrammingError``/``DataError`` are
    clickhouse-connect's, raised while it serializes a batch)."""
    from clickhouse_connect.driver.exceptions import DataError, ProgrammingError

    return isinstance(err, (ProgrammingError, DataError, TypeError, ValueError))


def with_retry(write: Callable[[], T], what: str, budget_s: float = 300.0) -> T:
    """Call ``write`` until it succeeds; raise one :class:`StorageError` naming ``what`` otherwise."""
    delay, waited = 0.5, 0.0
    while True:
        try:
            result = write()
        except StorageError as err:  # already classified by a lower layer
            message = str(err)
        except Exception as err:  # noqa: BLE001 - classified below
            message = str(err).splitlines()[0] if str(err) else type(err).__name__
            if _client_side(err):
                raise StorageError(f"{what} failed: {message}") from None
        else:
            if waited:
                log.warning("ClickHouse is back: %s after %.0f s", what, waited)
            return result
        if not retryable(message) or waited >= budget_s:
            raise StorageError(f"{what} failed: {message}") from None
        log.warning("waiting for ClickHouse (%s): %s held, retry in %.1f s", message[:200], what, delay)
        time.sleep(delay)
        waited += delay
        delay = min(delay * 2, 30.0)
