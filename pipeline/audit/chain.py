"""The hash chain: canonical encoding, record hashes, and the pure ``AuditChain``.

Every audit row is ``(seq, record_id, kind, subject, address, ts, actor, payload, prev_hash,
hash)`` where ``hash`` is SHA-256 over the canonical JSON of all other fields (keys sorted, no
whitespace, UTF-8; ``payload`` is itself canonical JSON, hashed as the string stored) and
``prev_hash`` is the previous row's hash (64 zeros for the first). Editing any field, removing,
inserting or reordering a row breaks either a row's own hash or the link to its successor, so a
verifier that recomputes the chain names the first record that was touched.

``record_id`` is deterministic (hash of kind + subject + version), so the appender can skip
records already chained: a replay never forks or duplicates the chain.

``ts`` is when the audit log recorded the fact (wall clock, ms UTC), kept non-decreasing along the
chain, so a time range of the log is a contiguous range of ``seq``. Event times live in payloads.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import orjson

GENESIS = "0" * 64
FIELDS = ("seq", "record_id", "kind", "subject", "address", "ts", "actor", "payload", "prev_hash", "hash")


class Kind:
    """What an audit record says happened."""

    ALERT_CREATED = "alert_created"
    ALERT_STATUS_CHANGED = "alert_status_changed"
    TICKET_DELIVERED = "ticket_delivered"
    RULES_LOADED = "rules_loaded"
    MODEL_LOADED = "model_loaded"
    WATCHLIST_LOADED = "watchlist_loaded"
    ALLOWLIST_LOADED = "allowlist_loaded"
    DISPOSITION = "disposition"
    EXPORT = "export"


class AuditRecord(NamedTuple):
    """A fact to chain: everything but the chain position (seq, ts, hashes)."""

    record_id: str
    kind: str
    subject: str
    address: str
    actor: str
    payload: str  # canonical JSON (see canonical_json)


class ChainRow(NamedTuple):
    """One row of ``audit_log``, field order = column order = export order."""

    seq: int
    record_id: str
    kind: str
    subject: str
    address: str
    ts: int  # ms since epoch UTC
    actor: str
    payload: str
    prev_hash: str
    hash: str


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8: one byte string per value, whoever encodes it."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def record_id(kind: str, subject: str, *version: object) -> str:
    """Deterministic id: the same fact (kind, subject, version) always gets the same id."""
    text = "\x1f".join([kind, subject, *map(str, version)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def make_record(kind: str, subject: str, payload: Mapping[str, Any], *version: object,
                address: str = "", actor: str = "pipeline") -> AuditRecord:
    return AuditRecord(record_id(kind, subject, *version), kind, subject, address, actor,
                       canonical_json(payload))


def row_hash(seq: int, record_id: str, kind: str, subject: str, address: str, ts: int, actor: str,
             payload: str, prev_hash: str) -> str:
    """SHA-256 over the canonical JSON of the row's fields (all but ``hash``)."""
    body = orjson.dumps({"actor": actor, "address": address, "kind": kind, "payload": payload,
                         "prev_hash": prev_hash, "record_id": record_id, "seq": seq,
                         "subject": subject, "ts": ts}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


def recompute(row: ChainRow | tuple) -> str:
    return row_hash(*row[:9])


class AuditChain:
    """Pure chain state (last seq, hash, ts): ``append`` turns records into chained rows.

    Holds no rows: memory is constant whatever the length of the chain. ``clock`` is injectable
    so tests get deterministic timestamps.
    """

    def __init__(self, seq: int = 0, last_hash: str = GENESIS, last_ts: int = 0,
                 clock: Callable[[], int] | None = None) -> None:
        self.seq = seq
        self.last_hash = last_hash
        self.last_ts = last_ts
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)

    @property
    def head(self) -> tuple[int, str]:
        return self.seq, self.last_hash

    def append(self, records: Iterable[AuditRecord]) -> list[ChainRow]:
        rows = []
        ts = max(self.clock(), self.last_ts)  # non-decreasing: a time range is a seq range
        for r in records:
            seq = self.seq + 1
            h = row_hash(seq, r.record_id, r.kind, r.subject, r.address, ts, r.actor, r.payload,
                         self.last_hash)
            rows.append(ChainRow(seq, r.record_id, r.kind, r.subject, r.address, ts, r.actor,
                                 r.payload, self.last_hash, h))
            self.seq, self.last_hash = seq, h
        self.last_ts = ts
        return rows
