"""The audit hook loses no committed alert: pending until written, and reconciled at the next start.

The review's crash window: alerts committed to ``alerts`` but not yet chained (the hook batches
them, and runs after the checkpoint commit) when the process dies, or when a retry budget runs out
in live mode without recovery. Nothing replays them, so the next start must find and chain them.
"""

from __future__ import annotations

import orjson
import pytest

from pipeline.audit.chain import Kind
from pipeline.audit.check import verify_clickhouse
from pipeline.audit.hook import AuditHook
from pipeline.audit.keys import generate_keypair, load_public
from pipeline.config import AuditSettings
from pipeline.errors import StorageError
from pipeline.sinks.writer import ClickHouseWriter
from tests.audit.conftest import make_alert


@pytest.fixture
def audit(tmp_path):
    private, public, _ = generate_keypair(tmp_path / "keys")
    return AuditSettings(signing_key_file=str(private), heads_dir=str(tmp_path / "heads")), load_public(public)


def _chained(client, db):
    return client.query(f"SELECT subject, kind, actor, JSONExtractBool(payload, 'reconciled') FROM {db}.audit_log "
                        f"WHERE kind IN ('{Kind.ALERT_CREATED}', '{Kind.ALERT_STATUS_CHANGED}') ORDER BY seq").result_rows


def test_a_failed_chaining_keeps_the_alerts_until_they_are_written(store, chdb_dsn, audit):
    client, db = store
    settings, verifier = audit
    hook = AuditHook(chdb_dsn, evidence=False, audit=settings)
    writer = ClickHouseWriter(client, db, on_commit=hook)
    writer.add("alerts", [make_alert(i) for i in range(3)])
    writer.flush()
    real, calls = hook._chain, []

    def failing(appender, alerts, reconciled=False):
        calls.append(len(alerts))
        if len(calls) == 1:
            raise StorageError("audit append failed: Code: 60. UNKNOWN_TABLE (an error not worth retrying)")
        return real(appender, alerts, reconciled)

    hook._chain = failing
    with pytest.raises(StorageError):
        hook.sync()
    assert len(hook._pending) == 3 and _chained(client, db) == []  # nothing lost, nothing chained
    hook.sync()
    assert [r[0] for r in _chained(client, db)] == ["alert0000", "alert0001", "alert0002"]
    assert hook._pending == []
    hook.close()
    assert verify_clickhouse(client, db, verifier, None).ok


def test_alerts_committed_before_a_crash_are_reconciled_at_the_next_start(store, chdb_dsn, audit):
    client, db = store
    settings, verifier = audit
    first = AuditHook(chdb_dsn, evidence=True, audit=settings, max_wait_s=3600)
    writer = ClickHouseWriter(client, db, on_commit=first)
    writer.add("alerts", [make_alert(i) for i in range(4)])
    writer.flush()
    first.sync()  # chained and signed
    writer.add("alerts", [make_alert(i) for i in range(4, 9)] + [make_alert(2, "dropped")])
    writer.flush()  # committed; the hook holds them for its next batch ...
    assert len(first._pending) == 6
    del first, writer  # ... and the process dies: no sync, no close
    lost = verify_clickhouse(client, db, verifier, None)
    assert lost.first.kind == "unchained" and "alert alert0002 (status dropped)" in lost.first.message

    restarted = AuditHook(chdb_dsn, evidence=True, audit=settings)
    writer = ClickHouseWriter(client, db, on_commit=restarted)
    writer.add("alerts", [make_alert(20)])  # the new run's first commit: its own alert is not "lost"
    writer.flush()
    restarted.sync()
    assert restarted.reconciled == 6
    restarted.close()
    rows = _chained(client, db)
    reconciled = [(s, k) for s, k, actor, flag in rows if flag]
    assert sorted(reconciled) == sorted([(f"alert{i:04d}", Kind.ALERT_CREATED) for i in range(4, 9)]
                                        + [("alert0002", Kind.ALERT_STATUS_CHANGED)])
    assert all(actor == "reconcile" for _, _, actor, flag in rows if flag)
    assert ("alert0020", Kind.ALERT_CREATED, "pipeline", False) in rows
    payload = orjson.loads(client.query(f"SELECT payload FROM {db}.audit_log WHERE subject = 'alert0006'").result_rows[0][0])
    assert payload["evidence_sha256"] and payload["details_sha256"]  # the bundle is built and chained too
    result = verify_clickhouse(client, db, verifier, None)
    assert result.ok, result.problems
    assert AuditHook(chdb_dsn, evidence=False, audit=settings).reconcile() == 0  # once only
