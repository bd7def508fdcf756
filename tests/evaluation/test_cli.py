"""``evaluate`` end to end on a real embedded ClickHouse (chDB)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline.storage.clickhouse import open_storage
from run_pipeline import main


def test_evaluate_reads_alerts_final_and_counts_txs(chdb_dsn: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = open_storage(chdb_dsn)
    ts = datetime(2024, 4, 25, tzinfo=timezone.utc)
    cols = ["alert_id", "ts", "detected_at", "tx_id", "address", "rule_id", "status", "source", "tags"]
    client.insert("alerts", [
        ("a1", ts, ts, "t1", "A", "fan_in.hub", "pending", "mempool", ["fan_in"]),
        ("a1", ts, ts, "t1", "A", "fan_in.hub", "confirmed", "block", ["fan_in"]),  # same alert, confirmed
        ("a2", ts, ts, "t5", "Z", "fan_in.hub", "confirmed", "block", ["fan_in"]),
        ("a3", ts, ts, "t6", "C", "anomaly.iforest", "confirmed", "block", []),
        ("a4", ts, ts, "t7", "B", "fan_in.hub", "dropped", "mempool", ["fan_in"]),
    ], column_names=cols)
    client.insert("transfers", [(f"t{i}:0", f"t{i}", "block") for i in range(1, 9)] + [("t1:1", "t1", "block")],
                  column_names=["id", "tx_id", "source"])
    (tmp_path / "labels.csv").write_text("address,typology,episode_id,role\nA,fan_in,e1,hub\nB,fan_in,e1,leaf\n")
    (tmp_path / "labelled_txs.csv").write_text("tx_id,typology,episode_id\nt1,fan_in,e1\nt2,fan_in,e1\n")
    out_json = tmp_path / "report.json"
    assert main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--clickhouse", chdb_dsn,
                 "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "fan_in" in text and "anomaly.iforest" in text
    doc = json.loads(out_json.read_text())
    assert doc["tx_count"] == 8 and doc["alerts"] == 3
    fan_in = next(t for t in doc["typologies"] if t["name"] == "fan_in")
    assert fan_in["address"] == {"predicted": 2, "labelled": 2, "tp": 1, "precision": 0.5, "recall": 0.5,
                                 "f1": 0.5, "precision_any": 0.5}
    assert fan_in["tx"]["tp"] == 1 and fan_in["alerts_per_1k_tx"] == pytest.approx(250.0)


def test_evaluate_bad_labels_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--labels", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.csv" in err and len(err.strip().splitlines()) == 1


def test_evaluate_reads_members_from_details(chdb_dsn: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = open_storage(chdb_dsn)
    ts = datetime(2024, 4, 25, tzinfo=timezone.utc)
    cols = ["alert_id", "ts", "detected_at", "tx_id", "address", "rule_id", "status", "source", "tags", "details"]
    client.insert("alerts", [
        ("m1", ts, ts, "t1", "A", "fan_in.hub", "confirmed", "block", ["fan_in"],
         '{"members": ["B", "C"], "member_roles": ["source", "source"], "evidence": {"n": 2}}'),
        ("m2", ts, ts, "t2", "Z", "fan_in.hub", "confirmed", "block", ["fan_in"], "not json"),
    ], column_names=cols)
    client.insert("transfers", [("t1:0", "t1", "block"), ("t2:0", "t2", "block")],
                  column_names=["id", "tx_id", "source"])
    (tmp_path / "labels.csv").write_text("address,typology,episode_id,role\nA,fan_in,e1,collector\n"
                                         "B,fan_in,e1,source\nD,fan_in,e2,source\n")
    assert main(["evaluate", "--labels", str(tmp_path), "--clickhouse", chdb_dsn, "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fan_in = next(t for t in doc["typologies"] if t["name"] == "fan_in")
    assert (fan_in["address"]["tp"], fan_in["address"]["predicted"]) == (2, 4)  # A B C Z named; A B labelled
    assert doc["episodes"] == [{"typology": "fan_in", "episodes": 2, "found": 1, "found_any": 1,
                                "recall": 0.5, "recall_any": 0.5}]


def test_evaluate_needs_labels_or_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate"]) == 2
    assert "--suite" in capsys.readouterr().err
