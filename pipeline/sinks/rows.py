"""Records -> ClickHouse rows, and each table's column list.

``Transfer`` and ``Alert`` are NamedTuples whose field order *is* the table's column order, so they
are inserted as they are: no per-row conversion in the hot path. Column lists live here, next to
the conversions, and a test checks them against the DDL in ``pipeline/storage/migrations``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pipeline.records import FEATURE_NAMES, AddressFeatures, Alert, Block, DeadLetter, Transfer

COLUMNS: dict[str, tuple[str, ...]] = {
    "blocks": ("number", "block_id", "parent_hash", "ts", "witness", "tx_count", "source"),
    "transfers": tuple("idx" if f == "index" else f for f in Transfer._fields),
    "alerts": Alert._fields,
    "address_features": ("address", "ts", "block_number", *FEATURE_NAMES),
    "minute_stats": ("minute", "token", "symbol", "tx_count", "failed_count", "volume", "volume_usd",
                     "distinct_senders", "distinct_receivers"),
    "dead_letters": ("id", "source", "position", "reason", "raw", "seen_at"),
    "checkpoints": ("source", "block_number", "block_id", "ts", "committed_at"),
    "model_drift": ("window_start", "window_end", "model_version", "feature", "psi", "n"),
}


def _merge_columns() -> None:
    """Tables owned by feature packages declare their columns next to their row builders."""
    from pipeline.allowlists import COLUMNS as ALLOW
    from pipeline.audit.store import COLUMNS as AUDIT
    from pipeline.live.health import HEALTH_COLUMNS
    from pipeline.live.pending import LEAD_COLUMNS
    from pipeline.live.reorg import ORPHANED_COLUMNS
    from pipeline.tickets.outbox import COLUMNS as TICKETS

    live = {"source_health": HEALTH_COLUMNS, "pending_lead_times": LEAD_COLUMNS,
            "orphaned_blocks": ORPHANED_COLUMNS}
    for extra in (AUDIT, TICKETS, live, ALLOW):
        for table, cols in extra.items():
            COLUMNS.setdefault(table, tuple(cols))


_merge_columns()


def block_rows(blocks: Iterable[Block]) -> list[tuple]:
    return [b[:7] for b in blocks]


def dead_letter_rows(letters: Iterable[DeadLetter]) -> list[tuple]:
    """Dead letters are keyed by where and why, so the same bad input is one row however often seen."""
    return [(dead_letter_id(d), *d) for d in letters]


def dead_letter_id(d: DeadLetter) -> str:
    return hashlib.blake2b(f"{d.source}\x1f{d.position}\x1f{d.reason}".encode(), digest_size=12).hexdigest()


def feature_rows(features: Iterable[AddressFeatures]) -> list[tuple]:
    return [(f.address, f.ts, f.block_number, *f.values) for f in features]


def checkpoint_row(block: Block, committed_at: int) -> tuple:
    return (block.source, block.number, block.block_id, block.ts, committed_at)
