"""``AuditAppender``: resumes the chain from ClickHouse, skips facts already chained, writes.

Writers take turns (the sink's process during a run; the analyst CLI, between the pipeline's
batches on a server DSN — with chDB they cannot even overlap). Before each batch the appender
re-reads the head (last seq, hash, ts) and asks ClickHouse which of the batch's record ids are
already chained (in chunks, so memory is bounded by the batch), so a replay or a retried batch
never forks or duplicates the chain. After each insert it checks that nobody appended in the
same instant (a true race of two writers) and stops with an error naming it if so.

Heads are recorded in ``audit_heads``: anchors that ``audit verify`` compares with the chain. With
a :class:`~pipeline.audit.keys.Signing` (every writer the commands and the pipeline build), the head
after each appended batch is signed with the Ed25519 key kept outside ClickHouse and also written
to a head file outside the database: one signature per batch, never per record. Without one
(library use, old chains) heads are unsigned, every ``head_every`` records and on ``close``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from pipeline.audit.chain import FIELDS, GENESIS, AuditChain, AuditRecord, ChainRow, Kind
from pipeline.audit.keys import Signing, write_head_file
from pipeline.errors import StorageError

log = logging.getLogger(__name__)

COLUMNS: dict[str, tuple[str, ...]] = {
    "audit_log": FIELDS,
    "audit_heads": ("seq", "hash", "recorded_at", "key_id", "signature"),
    "dispositions": ("alert_id", "at", "action", "disposition", "analyst", "note", "record_id"),
    "evidence": ("alert_id", "ts", "address", "rule_id", "rule_version", "created_at", "triggers",
                 "definition", "features", "neighbourhood", "neighbourhood_rows"),
}
_CHUNK = 2_000  # ids per dedup query


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AuditAppender:
    """Append audit records to ``{database}.audit_log`` idempotently; see the module docstring."""

    def __init__(self, client: Any, database: str, head_every: int = 1_000,
                 signing: Signing | None = None) -> None:
        self.client = client
        self.database = database
        self.head_every = head_every
        self.signing = signing
        self.chain = self._load_head()
        self._last_head_seq = self.chain.seq if signing is None else -1

    def _load_head(self) -> AuditChain:
        rows = self.client.query(
            f"SELECT seq, hash, toUnixTimestamp64Milli(ts) FROM {self.database}.audit_log "
            "ORDER BY seq DESC LIMIT 1").result_rows
        if not rows:
            return AuditChain()
        seq, h, ts = rows[0]
        return AuditChain(int(seq), h, int(ts))

    def _existing(self, column: str, values: Sequence[str], extra: str = "") -> set[str]:
        found: set[str] = set()
        for i in range(0, len(values), _CHUNK):
            chunk = list(values[i:i + _CHUNK])
            found.update(r[0] for r in self.client.query(
                f"SELECT DISTINCT {column} FROM {self.database}.audit_log "
                f"WHERE {column} IN %(v)s {extra}", parameters={"v": chunk}).result_rows)
        return found

    def pending(self, records: Iterable[AuditRecord]) -> list[AuditRecord]:
        """The records not yet chained (nor repeated in this batch), alert kinds resolved."""
        unique: dict[str, AuditRecord] = {}
        for r in records:
            unique.setdefault(r.record_id, r)
        if not unique:
            return []
        done = self._existing("record_id", list(unique))
        todo = [r for rid, r in unique.items() if rid not in done]
        alert_subjects = [r.subject for r in todo if r.kind == Kind.ALERT_CREATED]
        if not alert_subjects:
            return todo
        created = self._existing("subject", alert_subjects, f"AND kind = '{Kind.ALERT_CREATED}'")
        out = []
        for r in todo:
            if r.kind == Kind.ALERT_CREATED:
                if r.subject in created:
                    r = r._replace(kind=Kind.ALERT_STATUS_CHANGED)
                created.add(r.subject)
            out.append(r)
        return out

    def append(self, records: Iterable[AuditRecord], resolved: bool = False) -> list[ChainRow]:
        """Chain and write the new records; returns the rows written (empty if all were known).

        ``resolved``: ``records`` come from :meth:`pending` already (the hook adds evidence digests
        to the new ones in between), so the dedup queries are not repeated.
        """
        todo = list(records) if resolved else self.pending(records)
        if not todo:
            return []
        # Re-read the head: cheap (last row of a table sorted by seq), and it lets writers take
        # turns (the analyst CLI between the pipeline's batches on a server DSN); only a true
        # race inside one append is left for the check after the insert.
        fresh = self._load_head()
        self.chain.seq, self.chain.last_hash = fresh.seq, fresh.last_hash
        self.chain.last_ts = max(self.chain.last_ts, fresh.last_ts)
        before = self.chain.head, self.chain.last_ts
        rows = self.chain.append(todo)
        token = hashlib.sha256(f"{rows[0].prev_hash}{rows[-1].hash}".encode()).hexdigest()
        try:
            self.client.insert(f"{self.database}.audit_log", rows, column_names=COLUMNS["audit_log"],
                               settings={"insert_deduplication_token": token, "async_insert": 0})
        except Exception as err:  # noqa: BLE001 - the chain state must not run ahead of storage
            (self.chain.seq, self.chain.last_hash), self.chain.last_ts = before
            raise StorageError(f"audit append to {self.database}.audit_log failed: "
                               f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
        after = self.client.query(
            f"SELECT count(), max(seq) FROM {self.database}.audit_log WHERE seq > %(s)s",
            parameters={"s": before[0][0]}).result_rows[0]
        if int(after[0]) != len(rows) or int(after[1]) != rows[-1].seq:
            raise StorageError(f"{self.database}.audit_log: another writer appended after seq "
                               f"{before[0][0]} (found {after[0]} rows, wrote {len(rows)}); the audit "
                               "chain needs a single writer — run `audit verify` to see the fork")
        crossed = self.chain.seq // self.head_every > self._last_head_seq // self.head_every
        if self.signing is not None or crossed:  # signing: one signed head per batch
            self.record_head()
        log.debug("audit: chained %d records, head seq %d", len(rows), self.chain.seq)
        return rows

    def record_head(self) -> tuple[int, str] | None:
        """Write the stored chain's head to ``audit_heads`` (idempotent: keyed by seq), signed and
        also written to a head file when signing. The head is re-read first, so it also covers
        what other writers appended since this appender's last batch."""
        seq, h = chain_head(self.client, self.database)
        if seq == 0 or seq == self._last_head_seq or (self.signing is None and self._has_head(seq)):
            return None
        now = _now_ms()
        if self.signing is not None:
            head = self.signing.signer.sign(self.database, seq, h, now)
            row = (seq, h, now, head.key_id, head.signature)
        else:
            row = (seq, h, now, "", "")
        self.client.insert(f"{self.database}.audit_heads", [row], column_names=COLUMNS["audit_heads"])
        if self.signing is not None and self.signing.heads_dir is not None:
            write_head_file(self.signing.heads_dir, self.database, head)
        self._last_head_seq = seq
        return seq, h

    def _has_head(self, seq: int) -> bool:
        return bool(self.client.query(f"SELECT 1 FROM {self.database}.audit_heads WHERE seq = %(s)s",
                                      parameters={"s": seq}).result_rows)

    def close(self) -> None:
        self.record_head()


def chain_head(client: Any, database: str) -> tuple[int, str]:
    """The last (seq, hash) of the stored chain; (0, GENESIS) when empty."""
    rows = client.query(f"SELECT seq, hash FROM {database}.audit_log ORDER BY seq DESC LIMIT 1").result_rows
    return (int(rows[0][0]), rows[0][1]) if rows else (0, GENESIS)
