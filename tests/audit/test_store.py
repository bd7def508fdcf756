"""AuditAppender on real chDB: resume, dedup on replay (no fork, no duplicate), heads."""

from __future__ import annotations

import pytest

from pipeline.audit.chain import Kind
from pipeline.audit.check import verify_clickhouse
from pipeline.audit.facts import alert_records, model_loaded_record, ticket_delivered_record
from pipeline.audit.hook import AuditHook
from pipeline.audit.store import AuditAppender, chain_head
from pipeline.errors import StorageError
from pipeline.sinks.writer import ClickHouseWriter
from tests.audit.conftest import make_alert


def _log(client, db):
    return client.query(f"SELECT seq, kind, subject FROM {db}.audit_log ORDER BY seq").result_rows


def test_replaying_the_same_alerts_neither_forks_nor_duplicates_the_chain(store):
    client, db = store
    alerts = [make_alert(i) for i in range(50)]
    first = AuditAppender(client, db).append(alert_records(alerts))
    assert len(first) == 50
    head = chain_head(client, db)
    # a replay: same alerts again, through a fresh appender (a restarted process) and in new order
    again = AuditAppender(client, db)
    assert again.append(alert_records(reversed(alerts))) == []
    assert again.append(alert_records(alerts[:10] + alerts[:10])) == []
    assert chain_head(client, db) == head
    assert client.query(f"SELECT count(), uniqExact(record_id), uniqExact(seq) FROM {db}.audit_log").result_rows[0] == (50, 50, 50)
    assert verify_clickhouse(client, db).ok


def test_a_later_status_is_chained_once_as_a_status_change(store):
    client, db = store
    app = AuditAppender(client, db)
    app.append(alert_records([make_alert(1, "pending")]))
    app.append(alert_records([make_alert(1, "pending"), make_alert(1, "confirmed")]))
    app.append(alert_records([make_alert(1, "confirmed")]))
    assert [r[1] for r in _log(client, db)] == [Kind.ALERT_CREATED, Kind.ALERT_STATUS_CHANGED]


def test_appender_resumes_the_chain_from_storage(store):
    client, db = store
    AuditAppender(client, db).append(alert_records([make_alert(i) for i in range(3)]))
    rows = AuditAppender(client, db).append([model_loaded_record("anomaly.iforest", "abc123"),
                                             ticket_delivered_record("alert0000", "http://x/hook", 200, 1)])
    assert [r.seq for r in rows] == [4, 5]
    stored3 = client.query(f"SELECT hash FROM {db}.audit_log WHERE seq = 3").result_rows[0][0]
    assert rows[0].prev_hash == stored3
    assert verify_clickhouse(client, db).ok


def test_heads_are_recorded_periodically_and_on_close(store):
    client, db = store
    app = AuditAppender(client, db, head_every=10)
    for k in range(3):
        app.append(alert_records([make_alert(k * 7 + i) for i in range(7)]))  # seq 7, 14, 21
    heads = client.query(f"SELECT seq FROM {db}.audit_heads FINAL ORDER BY seq").result_rows
    assert [h[0] for h in heads] == [14, 21]
    app.append(alert_records([make_alert(99)]))
    app.close()
    heads = client.query(f"SELECT seq FROM {db}.audit_heads FINAL ORDER BY seq").result_rows
    assert [h[0] for h in heads] == [14, 21, 22]


def test_a_racing_second_writer_is_detected_instead_of_forking_silently(store):
    client, db = store
    a, b = AuditAppender(client, db), AuditAppender(client, db)
    a.append(alert_records([make_alert(1)]))

    class Racing:  # b's insert lands right after another writer's, inside b's append
        def __getattr__(self, name):
            return getattr(client, name)

        def insert(self, *args, **kwargs):
            a.append(alert_records([make_alert(3)]))
            return client.insert(*args, **kwargs)

    b.client = Racing()
    with pytest.raises(StorageError, match="another writer"):
        b.append(alert_records([make_alert(2)]))
    assert not verify_clickhouse(client, db).ok  # the fork is visible to verify


def test_hook_chains_startup_facts_once_and_every_committed_alert(store, chdb_dsn):
    client, db = store
    hook = AuditHook(chdb_dsn, startup=[model_loaded_record("anomaly.iforest", "v9")], evidence=False)
    writer = ClickHouseWriter(client, db, on_commit=hook)
    writer.add("alerts", [make_alert(1, "pending"), make_alert(2)])
    writer.flush()
    writer.add("alerts", [make_alert(1, "confirmed"), make_alert(2)])  # status change + replay
    writer.flush()
    hook.close()
    again = AuditHook(chdb_dsn, startup=[model_loaded_record("anomaly.iforest", "v9")], evidence=False)
    again({"alerts": [make_alert(2)]})  # a restarted run: nothing new
    again.close()
    assert [r[1:] for r in _log(client, db)] == [
        (Kind.MODEL_LOADED, "anomaly.iforest"), (Kind.ALERT_CREATED, "alert0001"),
        (Kind.ALERT_CREATED, "alert0002"), (Kind.ALERT_STATUS_CHANGED, "alert0001")]
    assert verify_clickhouse(client, db).ok


def test_a_run_without_alerts_still_chains_what_was_in_force(store, chdb_dsn):
    """Start-up versions at the first committed batch of any table, a reload's lists at the next:
    a compliance export must show which sanctions list was screened even when nothing matched."""
    from pipeline.watchlists import load_watchlists
    from tests.conftest import ROOT

    client, db = store
    hook = AuditHook(chdb_dsn, startup=[model_loaded_record("anomaly.iforest", "v9")], evidence=False)
    hook({})  # nothing committed: nothing to say yet
    assert _log(client, db) == []
    hook({"transfers": [("tx1",)]})
    assert [r[1:] for r in _log(client, db)] == [(Kind.MODEL_LOADED, "anomaly.iforest")]
    hook.reloaded(None, load_watchlists(ROOT / "rules" / "lists"))
    hook({"transfers": [("tx2",)]})
    hook.close()
    assert [r[1:] for r in _log(client, db)] == [
        (Kind.MODEL_LOADED, "anomaly.iforest"), (Kind.WATCHLIST_LOADED, "ofac_sdn_trx")]
    assert verify_clickhouse(client, db).ok


def test_column_lists_match_the_ddl(store):
    from pipeline.audit.store import COLUMNS

    client, db = store
    for table, columns in COLUMNS.items():
        described = [r[0] for r in client.query(f"DESCRIBE TABLE {db}.{table}").result_rows]
        assert described == list(columns), table


def test_writers_taking_turns_share_one_chain(store, chdb_dsn):
    """The analyst CLI between the pipeline's batches (server DSN): no fork, no error."""
    import pickle

    client, db = store
    pipeline_side = AuditAppender(client, db)
    analyst_side = AuditAppender(client, db)
    pipeline_side.append(alert_records([make_alert(1)]))
    analyst_side.append([ticket_delivered_record("alert0001", "http://x/hook", 200, 1)])
    pipeline_side.append(alert_records([make_alert(2)]))
    assert [r[0] for r in _log(client, db)] == [1, 2, 3]
    assert verify_clickhouse(client, db).ok
    hook = pickle.loads(pickle.dumps(AuditHook(chdb_dsn, evidence=False)))  # picklable for Bytewax
    assert hook.record([ticket_delivered_record("alert0002", "http://x/hook", 200, 2)]) == 1
    hook.close()
