"""Evidence bundles outlive the window; analyst actions reach dispositions, the chain and exports."""

from __future__ import annotations

import orjson
import pytest

from pipeline.audit.chain import Kind
from pipeline.audit.check import verify_clickhouse, verify_dir
from pipeline.audit.dispositions import list_alerts, record_action, show_alert
from pipeline.audit.evidence import EVIDENCE_DIGEST_SQL, write_evidence
from pipeline.audit.export import export_audit
from pipeline.audit.formats import read_rows
from pipeline.audit.hook import AuditHook
from pipeline.errors import ConfigError, InputError
from pipeline.records import FEATURE_NAMES, Transfer
from pipeline.sinks.writer import ClickHouseWriter
from tests.audit.conftest import ADDR, OTHER, make_alert

T0 = 1_700_000_000_000
CP = "TCounterpartyAddrXXXXXXXXXXXXXXXXX"
FAR = "TFarAwayAddressXXXXXXXXXXXXXXXXXXX"


def _transfer(i: int, frm: str, to: str, ts: int, tx: str | None = None) -> Transfer:
    return Transfer(f"{tx or f'tx{i:04d}'}:0", "trc20_transfer", tx or f"tx{i:04d}", 0, 100 + i, ts, frm, to, frm,
                    "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "USDT", 6, 10**12, 1e6, 1e6, True, "SUCCESS",
                    "TriggerSmartContract", "transfer", "{}")


@pytest.fixture
def world(store):
    """An alert on ADDR at T0+1: its trigger, a hop-1 and a hop-2 transfer, an old and a late one."""
    client, db = store
    w = ClickHouseWriter(client, db)
    alert = make_alert(1, ts=T0)  # alert0001, tx0001, ts T0+1
    w.add("transfers", [
        _transfer(1, CP, ADDR, T0 + 1),                     # the trigger (tx0001)
        _transfer(2, ADDR, OTHER, T0 - 60_000),             # hop 1
        _transfer(3, FAR, CP, T0 - 30_000),                 # hop 2 (touches the counterparty)
        _transfer(4, ADDR, FAR, T0 - 2 * 3_600_000),        # outside the 1 h window
        _transfer(5, ADDR, FAR, T0 + 600_000),              # after detection
    ])
    w.add("address_features", [(ADDR, T0 - 5, 99, *[float(i) for i in range(len(FEATURE_NAMES))]),
                               (ADDR, T0 + 600_000, 105, *[9.0] * len(FEATURE_NAMES))])
    w.add("alerts", [alert, make_alert(2, ts=T0, address=OTHER)])
    w.flush()
    return client, db, alert


def test_evidence_bundle_holds_trigger_definition_features_and_neighbourhood(world):
    client, db, alert = world
    defs = {"r.fan_in": {"type": "rule", "id": "r.fan_in", "version": "v1", "condition": "fan_in_10m >= 5"}}
    digests = write_evidence(client, db, [alert], defs)
    assert list(digests) == [alert.alert_id]
    # the digest the alert's audit record carries is the one ClickHouse computes from the stored row
    stored = client.query(f"SELECT {EVIDENCE_DIGEST_SQL} FROM {db}.evidence FINAL").result_rows
    assert stored == [(digests[alert.alert_id],)]
    # the window moves on: live tables lose the data, the bundle keeps it
    client.command(f"TRUNCATE TABLE {db}.transfers")
    client.command(f"TRUNCATE TABLE {db}.address_features")
    ev = show_alert(client, db, alert.alert_id)["evidence"]
    assert [t["id"] for t in ev["triggers"]] == ["tx0001:0"]
    assert ev["definition"]["condition"] == "fan_in_10m >= 5" and ev["definition"]["version"] == "v1"
    assert ev["features"]["ts"] == T0 - 5 and ev["features"]["values"]["tx_out_count"] == 1.0
    hops = {t["id"]: t["hop"] for t in ev["neighbourhood"]}
    assert hops == {"tx0001:0": 1, "tx0002:0": 1, "tx0003:0": 2}
    assert ev["neighbourhood_rows"] == 3


def test_evidence_is_bounded(world):
    client, db, alert = world
    w = ClickHouseWriter(client, db)
    w.add("transfers", [_transfer(100 + i, ADDR, f"TMany{i:030d}", T0 - i) for i in range(30)])
    w.flush()
    write_evidence(client, db, [alert], max_rows=10)
    ev = show_alert(client, db, alert.alert_id)["evidence"]
    assert ev["neighbourhood_rows"] == 10 and len(ev["neighbourhood"]) == 10


def test_hook_writes_evidence_for_committed_alerts(world, chdb_dsn):
    client, db, alert = world
    hook = AuditHook(chdb_dsn)
    hook({"alerts": [alert]})
    hook.close()
    assert show_alert(client, db, alert.alert_id)["evidence"]["triggers"][0]["tx_id"] == "tx0001"


def test_dispositions_latest_wins_history_kept_and_chained(world, tmp_path, chdb_dsn):
    client, db, alert = world
    assert AuditHook(chdb_dsn, evidence=False).reconcile() == 2  # the fixture stored them without a hook
    record_action(client, db, alert.alert_id, "ack", "alice", note="looking", at=T0 + 10)
    record_action(client, db, alert.alert_id, "close", "bob", "false_positive", "exchange wallet", at=T0 + 20)
    rows = {r["alert_id"]: r for r in list_alerts(client, db)}
    assert (rows["alert0001"]["action"], rows["alert0001"]["disposition"], rows["alert0001"]["analyst"]) == \
        ("close", "false_positive", "bob")
    assert rows["alert0002"]["action"] == ""
    assert [r["alert_id"] for r in list_alerts(client, db, status="closed")] == ["alert0001"]
    assert [r["alert_id"] for r in list_alerts(client, db, status="open")] == ["alert0002"]
    assert [r["alert_id"] for r in list_alerts(client, db, address=OTHER)] == ["alert0002"]
    info = show_alert(client, db, alert.alert_id)
    assert [h["action"] for h in info["history"]] == ["ack", "close"]
    assert info["review"]["note"] == "exchange wallet"
    assert [(a["kind"], a["actor"]) for a in info["audit"]] == [
        (Kind.ALERT_CREATED, "reconcile"), (Kind.DISPOSITION, "alice"), (Kind.DISPOSITION, "bob")]
    assert info["transfers"][0]["id"] == "tx0001:0" and info["features"]["ts"] == T0 - 5
    # in the exports
    m = export_audit(client, db, tmp_path / "x", "jsonl", address=ADDR)
    exported = [r for f in m["files"] for r in read_rows(tmp_path / "x" / f["name"], "jsonl")]
    closes = [orjson.loads(r.payload) for r in exported if r.kind == Kind.DISPOSITION]
    assert [c["disposition"] for c in closes] == ["", "false_positive"]
    assert verify_dir(tmp_path / "x", client, db).ok and verify_clickhouse(client, db).ok


def test_actions_are_validated(world):
    client, db, alert = world
    with pytest.raises(InputError, match="nope"):
        record_action(client, db, "nope", "ack", "alice")
    with pytest.raises(ConfigError, match="disposition"):
        record_action(client, db, alert.alert_id, "close", "alice", "maybe", "x")
    with pytest.raises(ConfigError, match="--by"):
        record_action(client, db, alert.alert_id, "ack", " ")
