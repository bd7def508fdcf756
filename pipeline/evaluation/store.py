"""Read what evaluation needs from ClickHouse: the alerts (FINAL) and the transaction count."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from pipeline.errors import StorageError
from pipeline.evaluation.metrics import AlertRow

log = logging.getLogger(__name__)


def read_alerts(client: Any) -> Iterator[AlertRow]:
    """Every alert, deduplicated by the table engine (FINAL), streamed in blocks."""
    sql = "SELECT alert_id, address, tx_id, rule_id, tags, status FROM alerts FINAL"
    try:
        with client.query_row_block_stream(sql) as stream:
            for block in stream:
                for alert_id, address, tx_id, rule_id, tags, status in block:
                    yield AlertRow(alert_id, address, tx_id, rule_id, tuple(tags or ()), status)
    except StorageError:
        raise
    except Exception as err:  # noqa: BLE001 - driver errors become one clear line
        raise StorageError(f"cannot read alerts: {str(err).splitlines()[0] if str(err) else err}") from None


def count_transactions(client: Any) -> int:
    """Distinct transactions seen in blocks (``transfers`` holds one row per decoded transfer)."""
    try:
        return int(client.command("SELECT uniqExact(tx_id) FROM transfers WHERE source = 'block'") or 0)
    except Exception as err:  # noqa: BLE001
        raise StorageError(f"cannot count transactions: {str(err).splitlines()[0] if str(err) else err}") from None
