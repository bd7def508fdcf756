"""Apply a :class:`~pipeline.live.follower.Reorg` to storage: mark, remove, re-evaluate.

Runs in the ClickHouse sink's single partition, *after* flushing what it buffered (the old
branch's rows are then stored, the new branch's not yet, since the reorg item precedes the new
branch in the stream). Every statement is idempotent, so a replay after a crash can run it again:

1. ``orphaned_blocks``: one row per orphaned block, with the new branch's id and transaction ids
   at that height (audit trail; dashboards can anti-join on it).
2. ``blocks``: the orphaned rows are re-inserted with ``orphaned = 1`` (``INSERT … SELECT`` from
   the table itself; ReplacingMergeTree keeps the last insert per ``(number, block_id)``).
3. ``alerts``: alerts at an orphaned height whose transaction is not in the new block at that
   height are re-inserted with ``status = 'dropped'``; if the new branch carries the transaction
   elsewhere and the rule fires again, its (later) confirmed row with the same id wins.
4. ``transfers``: rows at an orphaned height whose transaction the new block at that height does
   not hold are removed with a lightweight ``DELETE`` (supported by chDB and ClickHouse >= 23.3;
   ``transfers`` has no block id, so a mark could not tell the two branches apart). Transactions
   the new block keeps have the same ids and are simply written again.

Not re-done: features and rolling windows already absorbed the orphaned transfers (they age out
with the window); minute aggregates of the orphaned minutes keep the old counts.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.live.follower import Reorg

log = logging.getLogger(__name__)

ORPHANED_COLUMNS = ("number", "block_id", "new_block_id", "kept_tx_ids", "source", "ancestor", "detected_at")
_ALERT_COLUMNS = ("alert_id, ts, detected_at, block_number, tx_id, address, rule_id, rule_version, "
                  "severity, risk_score, status, source, title, tags, details")


def orphaned_rows(reorg: Reorg) -> list[tuple]:
    """Rows for ``orphaned_blocks``."""
    return [(h, bid, new, list(kept), reorg.source, reorg.ancestor, reorg.detected_at)
            for (h, bid), new, kept in zip(reorg.orphaned, reorg.new_ids, reorg.kept_tx_ids)]


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _per_height(reorg: Reorg, column: str) -> str:
    """``(block_number = h AND tx_id NOT IN (kept…)) OR …`` for every orphaned height."""
    parts = []
    for (h, _), kept in zip(reorg.orphaned, reorg.kept_tx_ids):
        cond = f"{column} = {int(h)}"
        if kept:
            cond += " AND tx_id NOT IN (" + ", ".join(_quote(t) for t in kept) + ")"
        parts.append(f"({cond})")
    return " OR ".join(parts) or "0"


def reorg_statements(database: str, reorg: Reorg) -> list[str]:
    """The SQL of steps 2-4 of the module doc (step 1 is a plain insert of :func:`orphaned_rows`)."""
    if not reorg.orphaned:
        return []
    pairs = ", ".join(f"({int(h)}, {_quote(b)})" for h, b in reorg.orphaned)
    where_tx = _per_height(reorg, "block_number")
    # positional, no aliases: in ClickHouse a SELECT alias named like a column shadows it in WHERE
    select_alerts = _ALERT_COLUMNS.replace("detected_at", "now64(3)").replace("status,", "'dropped',")
    return [
        (f"INSERT INTO {database}.blocks (number, block_id, parent_hash, ts, witness, tx_count, source, orphaned) "
        f"SELECT number, block_id, parent_hash, ts, witness, tx_count, source, 1 FROM {database}.blocks FINAL "
        f"WHERE (number, block_id) IN ({pairs}) AND orphaned = 0"),
        (f"INSERT INTO {database}.alerts ({_ALERT_COLUMNS}) SELECT {select_alerts} FROM {database}.alerts FINAL "
        f"WHERE ({where_tx}) AND status != 'dropped'"),
        f"DELETE FROM {database}.transfers WHERE {where_tx}",
    ]


def apply_reorg(client: Any, database: str, reorg: Reorg) -> None:
    """Run the whole reorg handling against ClickHouse (see the module doc)."""
    if not reorg.orphaned:
        return
    client.insert(f"{database}.orphaned_blocks", orphaned_rows(reorg), column_names=ORPHANED_COLUMNS)
    for stmt in reorg_statements(database, reorg):
        client.command(stmt)
    log.warning("%s: reorg of depth %d above block %d applied to storage: heights %s orphaned",
                reorg.source, reorg.depth, reorg.ancestor, ",".join(map(str, reorg.heights)))


class ReorgGuard:
    """Drops alerts of orphaned blocks that reach the sink *after* their reorg was applied.

    The analytics branch lags the blocks (scoring waits for complete blocks and micro-batches),
    so an alert computed on the old branch can arrive after :func:`apply_reorg` ran; written as
    it is, its ``confirmed`` row would replace the ``dropped`` one. The sink partition passes
    every ``alerts`` batch through :meth:`fix`. Bounded: the last ``max_heights`` orphaned heights,
    each with the newest branch's transaction ids.
    """

    def __init__(self, max_heights: int = 4096) -> None:
        self.max_heights = max_heights
        self._kept: dict[int, frozenset[str]] = {}

    def remember(self, reorg: Reorg) -> None:
        for (h, _), kept in zip(reorg.orphaned, reorg.kept_tx_ids):
            self._kept.pop(h, None)
            self._kept[h] = frozenset(kept)
        while len(self._kept) > self.max_heights:
            del self._kept[next(iter(self._kept))]

    def fix(self, alerts: list[Any]) -> list[Any]:
        if not self._kept:
            return alerts
        kept = self._kept
        return [a._replace(status="dropped")
                if a.block_number in kept and a.tx_id not in kept[a.block_number] and a.status != "dropped"
                else a for a in alerts]
