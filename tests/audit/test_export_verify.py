"""Export -> verify, and every tampering kind detected with the offending record named."""

from __future__ import annotations

import csv
import json

import orjson
import pytest

from pipeline.audit.chain import ChainRow, Kind, row_hash
from pipeline.audit.check import verify_clickhouse, verify_dir
from pipeline.audit.export import export_audit
from pipeline.audit.facts import alert_records
from pipeline.audit.formats import read_rows
from pipeline.audit.store import AuditAppender
from pipeline.errors import ConfigError
from tests.audit.conftest import ADDR, OTHER, make_alert


@pytest.fixture
def chained(store):
    client, db = store
    app = AuditAppender(client, db, head_every=8)
    for k in range(4):
        app.append(alert_records([make_alert(k * 6 + i, address=ADDR if i % 2 else OTHER) for i in range(6)]))
    app.close()
    return client, db


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_then_verify_succeeds_and_is_itself_audited(chained, tmp_path, fmt):
    client, db = chained
    m = export_audit(client, db, tmp_path / "x", fmt, rows_per_file=10, actor="auditor")
    assert m["records"] == 24 and [f["rows"] for f in m["files"]] == [10, 10, 4]
    assert m["head"]["seq"] == 24 and m["seq_ranges"] == [[1, 24]]
    rows = [r for f in m["files"] for r in read_rows(tmp_path / "x" / f["name"], fmt)]
    assert [r.seq for r in rows] == list(range(1, 25))
    result = verify_dir(tmp_path / "x", client, db)
    assert result.ok, result.problems
    last = client.query(f"SELECT kind, subject, actor FROM {db}.audit_log ORDER BY seq DESC LIMIT 1").result_rows[0]
    assert last == (Kind.EXPORT, m["manifest_sha256"], "auditor")
    assert verify_dir(tmp_path / "x").ok  # without storage too


def test_filtered_exports_by_address_and_time(chained, tmp_path):
    client, db = chained
    m = export_audit(client, db, tmp_path / "a", "jsonl", address=ADDR)
    assert m["records"] == 12 and len(m["seq_ranges"]) == 12
    assert verify_dir(tmp_path / "a", client, db).ok
    ts = [r[0] for r in client.query(f"SELECT toUnixTimestamp64Milli(ts) FROM {db}.audit_log ORDER BY seq").result_rows]
    m = export_audit(client, db, tmp_path / "t", "csv", from_ms=ts[0], to_ms=ts[-1] + 1)
    assert m["records"] == 25  # the 24 alerts + the first export's record
    assert verify_dir(tmp_path / "t", client, db).ok
    with pytest.raises(ConfigError):
        export_audit(client, db, tmp_path / "bad", "jsonl", address="x' OR 1=1 --")


def _jsonl(path):
    return path.read_text().splitlines()


def _export_jsonl(chained, tmp_path):
    client, db = chained
    m = export_audit(client, db, tmp_path / "x", "jsonl")
    return tmp_path / "x", tmp_path / "x" / m["files"][0]["name"]


def _first_problem(directory):
    result = verify_dir(directory)
    assert not result.ok
    return result.first


def test_edited_field_in_an_export_is_named(chained, tmp_path):
    d, f = _export_jsonl(chained, tmp_path)
    lines = _jsonl(f)
    rec = json.loads(lines[9])
    rec["actor"] = "someone-else"
    lines[9] = json.dumps(rec)
    f.write_text("\n".join(lines) + "\n")
    p = _first_problem(d)
    assert (p.kind, p.seq, p.record_id) == ("modified", 10, rec["record_id"])
    assert any("SHA-256" in str(x) for x in verify_dir(d).problems)


def test_deleted_row_in_an_export_is_named(chained, tmp_path):
    d, f = _export_jsonl(chained, tmp_path)
    lines = _jsonl(f)
    del lines[4]
    f.write_text("\n".join(lines) + "\n")
    p = _first_problem(d)
    assert (p.kind, p.seq) == ("removed", 5)


def test_deleted_last_row_in_an_export_is_named(chained, tmp_path):
    d, f = _export_jsonl(chained, tmp_path)
    f.write_text("\n".join(_jsonl(f)[:-1]) + "\n")
    p = _first_problem(d)
    assert (p.kind, p.seq) == ("removed", 24)


def test_inserted_row_in_an_export_is_named(chained, tmp_path):
    d, f = _export_jsonl(chained, tmp_path)
    lines = _jsonl(f)
    prev = ChainRow(**json.loads(lines[6]))
    fields = (prev.seq + 1, "e" * 32, Kind.DISPOSITION, "alert0006", ADDR, prev.ts, "mallory",
              '{"disposition":"false_positive"}', prev.hash)
    fake = ChainRow(*fields, row_hash(*fields))
    lines.insert(7, orjson.dumps(fake._asdict()).decode())
    f.write_text("\n".join(lines) + "\n")
    p = _first_problem(d)
    assert (p.kind, p.record_id) == ("inserted", "e" * 32)


def test_swapped_rows_in_a_csv_export_are_named(chained, tmp_path):
    client, db = chained
    m = export_audit(client, db, tmp_path / "x", "csv")
    f = tmp_path / "x" / m["files"][0]["name"]
    rows = list(csv.reader(f.open(newline="")))
    rows[12], rows[13] = rows[13], rows[12]  # data rows seq 12 and 13 (row 0 is the header)
    with f.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    p = _first_problem(tmp_path / "x")
    assert (p.kind, p.seq, p.record_id) == ("reordered", 13, rows[12][1])


def test_edited_manifest_is_detected(chained, tmp_path):
    client, db = chained
    d, _ = _export_jsonl(chained, tmp_path)
    m = orjson.loads((d / "manifest.json").read_bytes())
    m["filters"]["address"] = ADDR  # claim it was an address export
    (d / "manifest.json").write_bytes(orjson.dumps(m))
    p = _first_problem(d)
    assert p.kind == "manifest" and "manifest_sha256" in p.message
    # re-computing the digest does not help: the chained export record carries the original
    from pipeline.audit.export import manifest_digest

    m["manifest_sha256"] = manifest_digest(m)
    (d / "manifest.json").write_bytes(orjson.dumps(m))
    result = verify_dir(d, client, db)
    assert not result.ok and all(x.kind == "manifest" for x in result.problems)
    assert any("no export record" in x.message for x in result.problems)


# --- tampering inside ClickHouse -------------------------------------------------------------

def _mutate(client, sql):
    client.command(sql, settings={"mutations_sync": 2})


def test_stored_chain_field_edit_is_named(chained):
    client, db = chained
    rid = client.query(f"SELECT record_id FROM {db}.audit_log WHERE seq = 7").result_rows[0][0]
    _mutate(client, f"ALTER TABLE {db}.audit_log UPDATE payload = '{{}}' WHERE seq = 7")
    p = verify_clickhouse(client, db).first
    assert (p.kind, p.seq, p.record_id) == ("modified", 7, rid)


def test_stored_chain_deleted_row_is_named(chained):
    client, db = chained
    _mutate(client, f"ALTER TABLE {db}.audit_log DELETE WHERE seq = 11")
    p = verify_clickhouse(client, db).first
    assert (p.kind, p.seq) == ("removed", 11)


def test_stored_chain_inserted_row_is_named(chained):
    client, db = chained
    prev = ChainRow(*client.query(
        f"SELECT seq, record_id, kind, subject, address, toUnixTimestamp64Milli(ts), actor, payload, "
        f"prev_hash, hash FROM {db}.audit_log WHERE seq = 15").result_rows[0])
    fields = (16, "d" * 32, Kind.DISPOSITION, "alert0015", ADDR, prev.ts, "mallory", "{}", prev.hash)
    client.insert(f"{db}.audit_log", [(*fields, row_hash(*fields))],
                  column_names=list(ChainRow._fields))
    p = verify_clickhouse(client, db).first
    assert (p.kind, p.record_id) == ("inserted", "d" * 32)


def test_stored_chain_swapped_rows_are_named(chained):
    client, db = chained
    rid = client.query(f"SELECT record_id FROM {db}.audit_log WHERE seq = 5").result_rows[0][0]
    cols = "seq, record_id, kind, subject, address, toUnixTimestamp64Milli(ts), actor, payload, prev_hash, hash"
    a, b = client.query(f"SELECT {cols} FROM {db}.audit_log WHERE seq IN (4, 5) ORDER BY seq").result_rows
    _mutate(client, f"ALTER TABLE {db}.audit_log DELETE WHERE seq IN (4, 5)")  # seq is the sort key
    client.insert(f"{db}.audit_log", [(5, *a[1:]), (4, *b[1:])], column_names=list(ChainRow._fields))
    p = verify_clickhouse(client, db).first
    assert p.kind == "reordered" and p.record_id == rid


def test_rewritten_tail_is_caught_by_the_recorded_heads(chained):
    client, db = chained
    # recompute every hash from seq 3 on after an edit: the chain is self-consistent again...
    cols = "seq, record_id, kind, subject, address, toUnixTimestamp64Milli(ts), actor, payload, prev_hash, hash"
    rows = [ChainRow(*r) for r in client.query(f"SELECT {cols} FROM {db}.audit_log ORDER BY seq").result_rows]
    prev = rows[1].hash
    forged = []
    for r in rows[2:]:
        r = r._replace(prev_hash=prev, actor="rewritten")
        r = r._replace(hash=row_hash(*r[:9]))
        forged.append(r)
        prev = r.hash
    _mutate(client, f"ALTER TABLE {db}.audit_log DELETE WHERE seq >= 3")
    client.insert(f"{db}.audit_log", forged, column_names=list(ChainRow._fields))
    result = verify_clickhouse(client, db)
    assert result.chain.ok  # ... so only the anchors can tell
    assert result.first.kind == "head" and result.first.seq == 12  # the first head (every 8, per batch)
