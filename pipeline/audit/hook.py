"""The post-commit audit hook: runs in the sink's process after each committed insert batch.

Why after the commit, in the sink, rather than as a Bytewax step producing audit rows:

* the chain is one total order with one writer; the sink is already the single partition (one
  worker, one process) that owns the ClickHouse connection — chDB allows no other — so the hook
  is that single writer with no extra routing;
* the chain's state (last seq, hash) lives in ClickHouse, not in a Bytewax snapshot: a resumed
  run reads the head back and dedups on record ids, so at-least-once delivery after a resume can
  never fork the chain, and no snapshot can disagree with what is stored;
* audit records describe what was *stored*: ``alert_created`` is chained only once the alert row
  is committed, and the evidence is read from the committed ``transfers``/``address_features``.

Failure semantics: the hook runs inside ``ClickHouseWriter.flush``, which the sink calls before
every snapshot; an exception fails the flush, so the epoch is replayed after a restart and the
hook sees the same alerts again (deduplicated). Committed alerts stay in the pending list until
their records are written. What no replay brings back — alerts committed just before a crash, or
before a retry budget ran out in a live run without recovery — is found at the next start:
``reconcile`` chains every stored alert that has no record for its status (marked ``reconciled``),
so no committed alert is ever missing from the trail. The cost is one dedup query, one insert, one
signed head and the evidence queries per batch that contains alerts; batches without alerts cost
nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.audit.chain import AuditRecord, ChainRow, Kind
from pipeline.audit.evidence import write_evidence
from pipeline.audit.facts import alert_record, with_evidence
from pipeline.audit.store import AuditAppender
from pipeline.errors import PipelineError
from pipeline.records import Alert
from pipeline.storage.retry import with_retry

log = logging.getLogger(__name__)


class AuditHook:
    """``on_commit`` callable: evidence + alert facts for every committed alerts batch.

    ``startup`` are facts chained before anything else (rules/model versions loaded): at the
    first committed batch of any table, so a run records what was in force even if it never
    raises an alert;
    ``definitions`` are rule definitions by id for the evidence (``evidence.rule_definitions``);
    ``audit`` the ``[audit]`` settings (the signing key and head files; defaults when None).
    """

    def __init__(self, dsn: str, startup: Sequence[AuditRecord] = (),
                 definitions: Mapping[str, Mapping[str, Any]] | None = None,
                 evidence: bool = True, window_ms: int = 3_600_000, head_every: int = 1_000,
                 batch_alerts: int = 2_000, max_wait_s: float = 5.0, audit: Any = None) -> None:
        self.dsn = dsn
        self.audit = audit
        self.startup = list(startup)
        self.definitions = dict(definitions or {})
        self.evidence = evidence
        self.window_ms = window_ms
        self.head_every = head_every
        self.batch_alerts = batch_alerts  # chain when this many alerts are waiting ...
        self.max_wait_s = max_wait_s  # ... or the oldest has waited this long
        self._client: Any = None
        self._database = ""
        self._appender: AuditAppender | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple] = []  # committed alerts not chained yet (bounded: see __call__)
        self._facts: list[AuditRecord] = []  # what hot reloads put in force, not chained yet
        self._last = time.monotonic()
        self.reconciled = 0  # lost alerts chained when this hook opened the log

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_client=None, _appender=None, _lock=None, _pending=[], _facts=[])  # per process
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _open(self) -> AuditAppender:
        if self._appender is None:
            from pipeline.audit.keys import signing_for
            from pipeline.config import AuditSettings
            from pipeline.storage.clickhouse import open_storage

            if self._client is None:
                self._client, d = open_storage(self.dsn)
                self._database = d.database
            signing = signing_for(self.audit or AuditSettings(), self.dsn)
            appender = AuditAppender(self._client, self._database, self.head_every, signing)
            if self.startup:
                appender.append(self.startup)  # may fail and be retried: keep nothing until it is in
            self._reconcile(appender)
            self._appender = appender
        return self._appender

    def reconcile(self) -> int:
        """Open the audit log now (start-up facts, then :meth:`_reconcile`); returns how many lost
        alerts were chained. The pipeline does this at its first committed batch."""
        with self._lock:
            if self._appender is not None:
                return 0
            with_retry(self._open, "opening the audit log")
            return self.reconciled

    def _reconcile(self, appender: AuditAppender) -> int:
        """Chain the stored alerts that have no record for their status: committed by an earlier
        run that stopped (crash, exhausted retry) before chaining them. This run's own committed
        alerts are pending here and chained next, normally."""
        mine = {(a[0], a[10]) for a in self._pending}
        total = 0
        for chunk in unchained_alerts(self._client, self._database):
            lost = [a for a in chunk if (a.alert_id, a.status) not in mine]
            total += len(self._chain(appender, lost, reconciled=True))
        self.reconciled = total
        if total:
            log.warning("audit: %d stored alert(s) had no audit record (a run stopped before chaining them); "
                        "chained now, marked reconciled", total)
        return total

    def _chain(self, appender: AuditAppender, alerts: Sequence[Alert | tuple],
               reconciled: bool = False) -> list[ChainRow]:
        """Records for ``alerts``; the evidence bundle written (and its digest chained) for each
        alert chained for the first time, so the chained digest is the stored bundle's."""
        items = [a if isinstance(a, Alert) else Alert(*a) for a in alerts]
        todo = appender.pending([alert_record(a, reconciled=reconciled) for a in items])
        created = {r.subject for r in todo if r.kind == Kind.ALERT_CREATED}
        if self.evidence and created:
            first: dict[str, Alert] = {}
            for a in items:
                if a.alert_id in created:
                    first.setdefault(a.alert_id, a)
            digests = write_evidence(self._client, self._database, list(first.values()), self.definitions,
                                     self.window_ms)
            todo = [with_evidence(r, digests[r.subject])
                    if r.kind == Kind.ALERT_CREATED and r.subject in digests else r for r in todo]
        return appender.append(todo, resolved=True)

    def __call__(self, committed: Mapping[str, list[tuple]]) -> None:
        """Take committed alerts; chain them in batches (every query costs a round trip)."""
        alerts = committed.get("alerts")
        with self._lock:
            if alerts:
                self._pending.extend(alerts)
            if len(self._pending) >= self.batch_alerts or (
                    self._pending and time.monotonic() - self._last >= self.max_wait_s) or (
                    committed and (self._facts or (self.startup and self._appender is None))):
                self._process()  # a reload's facts, or the start-up facts, wait for no alert

    def sync(self) -> None:
        """Chain everything taken so far. With recovery on the sink calls this after every batch it
        commits (see ``pipeline.sinks.clickhouse``), so an alert is chained before Bytewax records
        its epoch as done; otherwise at the end of the run."""
        with self._lock:
            self._process()

    def _process(self) -> None:
        appender = with_retry(self._open, "opening the audit log")
        self._last = time.monotonic()
        if self._facts:  # before the alerts: what was in force when they were chained
            facts = self._facts
            with_retry(lambda: appender.append(facts), f"{len(facts)} audit records of a reload")
            self._facts = []
        alerts = list(self._pending)
        if not alerts:
            return
        # Both writes are idempotent (evidence keyed by alert id, records deduplicated by id), so a
        # storage outage is waited out like any other write; the alerts stay pending until written.
        rows = with_retry(lambda: self._chain(appender, alerts), f"audit records of {len(alerts)} alerts")
        del self._pending[:len(alerts)]
        log.debug("audit: %d alerts committed, %d new audit records", len(alerts), len(rows))

    def record(self, records: Sequence[AuditRecord]) -> int:
        """Chain other facts from this process (ticket deliveries, rules reloaded); thread-safe."""
        with self._lock:
            return len(with_retry(lambda: self._open().append(records), f"{len(records)} audit records"))

    def reloaded(self, ruleset: Any, watchlists: Any) -> None:
        """:class:`pipeline.hot_reload.HotReload` listener: chain the rule versions and lists a
        reload put in force (either may be ``None``: unchanged), and give evidence the new rule
        definitions.

        The records are not written here: the reload is noticed on a worker thread of any
        process, and only the sink's process owns the store (chDB allows no other). They are
        chained after the next committed batch of any table (a block's transfers are enough),
        before that batch's alerts if it has any.
        """
        from pipeline.audit.evidence import rule_definitions
        from pipeline.audit.facts import rules_loaded_records, watchlist_loaded_records

        records = rules_loaded_records(ruleset) if ruleset is not None else []
        if watchlists is not None:
            records += watchlist_loaded_records(watchlists)
        with self._lock:
            if ruleset is not None:
                self.definitions = rule_definitions(ruleset)
            self._facts.extend(records)

    def allowlists_loaded(self, allowlists: Any) -> None:
        """The allow lists in force at start and after each reload (``HotReload.subscribe_allowlists``):
        chained as :meth:`reloaded` chains watchlists, after the next committed batch."""
        from pipeline.audit.facts import allowlist_loaded_records

        records = allowlist_loaded_records(allowlists)
        with self._lock:
            self._facts.extend(records)

    def close(self) -> None:
        """Chain what is left and record the final head (call at the end of a run).

        A failure here is logged, not raised: the run's data is committed, and the next start
        reconciles the alerts left unchained (``audit verify`` names them meanwhile)."""
        with self._lock:
            try:
                if self._pending or (self._facts and self._appender is not None):
                    self._process()
                if self._appender is not None:
                    self._appender.close()
            except PipelineError as err:
                log.error("audit: %d committed alert(s) not chained at the end of the run (%s); the next "
                          "start chains them as reconciled", len(self._pending), err)
            finally:
                if self._client is not None:
                    self._client.close()
                self._appender = self._client = None


def audit_hook(dsn: str, ruleset: Any = None, scorer: Any = None, window_ms: int = 3_600_000,
               watchlists: Any = None, audit: Any = None) -> AuditHook:
    """The hook for a run: chains the rule, model and watchlist versions in service, then every alert.

    ``ruleset`` is a ``pipeline.rules.engine.RuleSet`` (rules carry content-derived ``.version``),
    ``scorer`` an ``AnomalyScorer`` (each model has a content-derived ``.version``, its card's id).
    """
    from pipeline.audit.evidence import rule_definitions
    from pipeline.audit.facts import model_loaded_record, rules_loaded_records, watchlist_loaded_records

    startup = rules_loaded_records(ruleset) if ruleset is not None else []
    if watchlists is not None:
        startup += watchlist_loaded_records(watchlists)
    for model in getattr(scorer, "models", ()) or ():
        card = {"detector": getattr(model, "detector", model.name),
                "features": list(getattr(model, "feature_names", ()))}
        startup.append(model_loaded_record(f"anomaly.{model.name}", model.version, card))
    return AuditHook(dsn, startup, rule_definitions(ruleset), window_ms=window_ms, audit=audit)


_ALERT_SELECT = ("alert_id, toUnixTimestamp64Milli(ts), toUnixTimestamp64Milli(detected_at), block_number, "
                 "tx_id, address, rule_id, rule_version, severity, risk_score, status, source, title, tags, "
                 "details")
_CHAINED = ("SELECT subject, JSONExtractString(payload, 'status') FROM {db}.audit_log "
            f"WHERE kind IN ('{Kind.ALERT_CREATED}', '{Kind.ALERT_STATUS_CHANGED}')")


def unchained_alerts(client: Any, database: str, chunk: int = 2_000):
    """Stored alerts (``FINAL``: their current status) with no audit record for that status, oldest
    first, in chunks (keyset pagination on (ts, alert_id): memory bounded by the chunk)."""
    after_ts, after_id = -1, ""
    while True:
        rows = client.query(
            f"SELECT {_ALERT_SELECT} FROM {database}.alerts FINAL "
            "WHERE (toUnixTimestamp64Milli(ts), alert_id) > (%(ts)s, %(id)s) "
            f"AND (alert_id, status) NOT IN ({_CHAINED.format(db=database)}) "
            "ORDER BY ts, alert_id LIMIT %(n)s",
            parameters={"ts": after_ts, "id": after_id, "n": chunk}).result_rows
        if not rows:
            return
        yield [Alert(*r[:13], tuple(r[13]), r[14]) for r in rows]
        after_ts, after_id = rows[-1][1], rows[-1][0]
        if len(rows) < chunk:
            return
