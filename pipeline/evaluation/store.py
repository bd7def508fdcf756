"""Read what evaluation needs from ClickHouse: the alerts (FINAL) and the transaction count.

An alert's ``details`` JSON may name the other members of the structure it found under
``"members"`` (a list of base58 addresses); they are read here so the metric can credit them.
Anything else in ``details`` is ignored, and a ``details`` that is not such JSON names no members.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson

from pipeline.errors import StorageError
from pipeline.evaluation.metrics import AlertRow

log = logging.getLogger(__name__)


def read_alerts(client: Any) -> Iterator[AlertRow]:
    """Every alert, deduplicated by the table engine (FINAL), streamed in blocks."""
    sql = "SELECT alert_id, address, tx_id, rule_id, tags, status, details FROM alerts FINAL"
    try:
        with client.query_row_block_stream(sql) as stream:
            for block in stream:
                for alert_id, address, tx_id, rule_id, tags, status, details in block:
                    yield AlertRow(alert_id, address, tx_id, rule_id, tuple(tags or ()), status, members_of(details))
    except StorageError:
        raise
    except Exception as err:  # noqa: BLE001 - driver errors become one clear line
        raise StorageError(f"cannot read alerts: {str(err).splitlines()[0] if str(err) else err}") from None


def members_of(details: str | bytes | None) -> tuple[str, ...]:
    """``details.members`` as a tuple of non-empty strings; () when absent or malformed."""
    if not details or b'"members"' not in (details if isinstance(details, bytes) else details.encode()):
        return ()
    try:
        doc = orjson.loads(details)
    except orjson.JSONDecodeError:
        return ()
    members = doc.get("members") if isinstance(doc, dict) else None
    if not isinstance(members, list):
        return ()
    return tuple(m for m in members if isinstance(m, str) and m)


def count_transactions(client: Any) -> int:
    """Distinct transactions seen in blocks (``transfers`` holds one row per decoded transfer)."""
    try:
        return int(client.command("SELECT uniqExact(tx_id) FROM transfers WHERE source = 'block'") or 0)
    except Exception as err:  # noqa: BLE001
        raise StorageError(f"cannot count transactions: {str(err).splitlines()[0] if str(err) else err}") from None
