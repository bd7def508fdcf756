"""Apply a :class:`~pipeline.live.follower.Reorg` to storage: mark, remove, re-evaluate.

Runs in the ClickHouse sink's single partition, *after* flushing what it buffered (the old
branch's rows are then stored, the new branch's not yet, since the reorg item precedes the new
branch in the stream). Every statement is idempotent, so a replay after a crash, or the same reorg
found again after a restart, can run it again:

1. ``orphaned_blocks``: one row per orphaned block, with the new branch's id and transaction ids
   at that height (audit trail; dashboards can anti-join on it). This is an ordinary insert, so the
   kept ids travel in the request body, however many there are.
2. ``blocks``: the orphaned rows are re-inserted with ``orphaned = 1`` (``INSERT … SELECT`` from
   the table itself; ReplacingMergeTree keeps the last insert per ``(number, block_id)``).
3. ``alerts``: alerts at an orphaned height whose transaction is not in the new block at that
   height are re-inserted with ``status = 'dropped'``; if the new branch carries the transaction
   elsewhere and the rule fires again, its (later) confirmed row with the same id wins.
4. ``transfers``: rows at an orphaned height whose transaction the new block at that height does
   not hold are removed with a lightweight ``DELETE`` (supported by chDB and ClickHouse >= 23.3;
   ``transfers`` has no block id, so a mark could not tell the two branches apart). Transactions
   the new block keeps have the same ids and are simply written again.

Steps 3 and 4 read the kept ids from the rows step 1 stored (a subquery on ``orphaned_blocks``),
and the heights and block ids are server-side query parameters: no id is ever written into the
SQL text, so the statements stay a few hundred bytes whether the new block keeps 5 transactions
or 5,000 (with the ids in the text, a busy block went over ``max_query_size``, 256 KiB, and the
reorg could not be applied), and a hostile block id cannot change the SQL. Every statement is
retried like the sink's inserts (:func:`pipeline.storage.retry.with_retry`).

Not re-done: features and rolling windows already absorbed the orphaned transfers (they age out
with the window); minute aggregates of the orphaned minutes keep the old counts.
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.live.follower import Reorg
from pipeline.storage.retry import with_retry

log = logging.getLogger(__name__)

ORPHANED_COLUMNS = ("number", "block_id", "new_block_id", "kept_tx_ids", "source", "ancestor", "detected_at")
_ALERT_COLUMNS = ("alert_id, ts, detected_at, block_number, tx_id, address, rule_id, rule_version, "
                  "severity, risk_score, status, source, title, tags, details")
# The orphaned (height, block id) pairs, as parameters; and the (height, tx id) pairs the new branch
# keeps at those heights, read back from the rows step 1 stored.
_ORPHANED = "has(arrayZip({heights:Array(UInt64)}, {block_ids:Array(String)}), (number, block_id))"
_KEPT = f"SELECT number, arrayJoin(kept_tx_ids) FROM {{db}}.orphaned_blocks FINAL WHERE {_ORPHANED}"
_GONE = "block_number IN {heights:Array(UInt64)} AND (block_number, tx_id) NOT IN (" + _KEPT + ")"
# A mutation whose WHERE reads another table is "nondeterministic" to a replicated server; ours
# reads rows that never change once written (step 1 precedes it), so it is safe to allow.
_MUTATION_SETTINGS = {"allow_nondeterministic_mutations": 1}


def orphaned_rows(reorg: Reorg) -> list[tuple]:
    """Rows for ``orphaned_blocks``."""
    return [(h, bid, new, list(kept), reorg.source, reorg.ancestor, reorg.detected_at)
            for (h, bid), new, kept in zip(reorg.orphaned, reorg.new_ids, reorg.kept_tx_ids)]


def reorg_parameters(reorg: Reorg) -> dict[str, list[Any]]:
    """The server-side parameters of :func:`reorg_statements`."""
    return {"heights": [int(h) for h, _ in reorg.orphaned], "block_ids": [str(b) for _, b in reorg.orphaned]}


def reorg_statements(database: str, reorg: Reorg) -> list[str]:
    """The SQL of steps 2-4 of the module doc (step 1 is a plain insert of :func:`orphaned_rows`),
    to run with :func:`reorg_parameters`; the text does not depend on the ids."""
    if not reorg.orphaned:
        return []
    gone = _GONE.replace("{db}", database)
    # positional, no aliases: in ClickHouse a SELECT alias named like a column shadows it in WHERE
    select_alerts = _ALERT_COLUMNS.replace("detected_at", "now64(3)").replace("status,", "'dropped',")
    return [
        (f"INSERT INTO {database}.blocks (number, block_id, parent_hash, ts, witness, tx_count, source, "
         f"orphaned) SELECT number, block_id, parent_hash, ts, witness, tx_count, source, 1 "
         f"FROM {database}.blocks FINAL WHERE {_ORPHANED} AND orphaned = 0"),
        (f"INSERT INTO {database}.alerts ({_ALERT_COLUMNS}) SELECT {select_alerts} "
         f"FROM {database}.alerts FINAL WHERE {gone} AND status != 'dropped'"),
        f"DELETE FROM {database}.transfers WHERE {gone}",
    ]


def apply_reorg(client: Any, database: str, reorg: Reorg, retry_budget_s: float = 300.0) -> None:
    """Run the whole reorg handling against ClickHouse (see the module doc), each step retried."""
    if not reorg.orphaned:
        return
    what = f"reorg above block {reorg.ancestor}"
    with_retry(lambda: client.insert(f"{database}.orphaned_blocks", orphaned_rows(reorg),
                                     column_names=ORPHANED_COLUMNS, settings={"async_insert": 0}),
               f"{what}: insert into {database}.orphaned_blocks", retry_budget_s)
    params = reorg_parameters(reorg)
    for step, stmt in zip(("blocks", "alerts", "transfers"), reorg_statements(database, reorg)):
        settings = _MUTATION_SETTINGS if stmt.startswith("DELETE") else None
        with_retry(lambda stmt=stmt, settings=settings: client.command(stmt, parameters=params,
                                                                       settings=settings),
                   f"{what}: {step}", retry_budget_s)
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
