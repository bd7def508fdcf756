"""End to end: real mainnet blocks through the Bytewax flow into real chDB."""

import orjson
import pytest

from pipeline.config import load_settings
from pipeline.runner import replay
from pipeline.storage.clickhouse import connect

TABLES = ("blocks", "transfers", "dead_letters", "checkpoints", "minute_stats")


def _settings(dsn, workers=1):
    return load_settings(env={}, overrides={"clickhouse.dsn": dsn, "pipeline.workers": workers})


def _counts(client):
    return {t: client.query(f"SELECT count() FROM {t} FINAL").result_rows[0][0] for t in TABLES}


@pytest.fixture
def jsonl(tmp_path, hex_block, visible_block):
    f = tmp_path / "blocks.jsonl"
    f.write_bytes(orjson.dumps(visible_block) + b"\n" + orjson.dumps(hex_block) + b"\n")
    return f


def test_replay_stores_the_decoded_blocks_and_a_second_replay_changes_no_count(chdb_dsn, jsonl, expected_trc20):
    replay([str(jsonl)], _settings(chdb_dsn), progress=False)
    client = connect(chdb_dsn)
    first = _counts(client)
    assert first["blocks"] == 2 and first["transfers"] == 451 and first["dead_letters"] == 0
    rows = client.query("SELECT tx_id, method, from_address, to_address, toString(amount_raw), token "
                        "FROM transfers FINAL WHERE method IN ('transfer', 'transferFrom')").result_rows
    stored = {r[0]: r[1:] for r in rows}
    assert len(stored) == len(expected_trc20)
    for e in expected_trc20:
        assert stored[e["txid"]] == (e["method"], e["from"], e["to"], str(e["value"]), e["token"])
    assert client.query("SELECT block_number FROM checkpoints FINAL").result_rows == [(61132092,)]

    replay([str(jsonl)], _settings(chdb_dsn), progress=False)
    assert _counts(client) == first


def test_bad_lines_and_out_of_order_blocks_become_dead_letters_and_good_blocks_are_kept(
        chdb_dsn, tmp_path, hex_block, visible_block):
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(b"\n".join([
        orjson.dumps(visible_block),
        b'{"blockID": "truncated',
        orjson.dumps(hex_block),
        orjson.dumps(visible_block),  # out of order after 61132092
        orjson.dumps({"blockID": "x", "block_header": {"raw_data": {"number": 61132093}}}),
    ]) + b"\n")
    replay([str(f)], _settings(chdb_dsn), progress=False)
    client = connect(chdb_dsn)
    assert _counts(client)["transfers"] == 451
    reasons = dict(client.query("SELECT position, reason FROM dead_letters FINAL").result_rows)
    assert len(reasons) == 3
    assert "invalid JSON" in reasons[f"{f}:2"]
    assert reasons[f"{f}:4"] == "out-of-order block 60836289 after block 61132092"
    assert "timestamp" in reasons[f"{f}:5"]


def test_two_workers_store_the_same_rows_as_one(chdb_dsn, jsonl):
    one, two = chdb_dsn, chdb_dsn + "w2"
    replay([str(jsonl)], _settings(one, workers=1), progress=False)
    replay([str(jsonl)], _settings(two, workers=2), progress=False)
    q = "SELECT id, kind, from_address, to_address, toString(amount_raw) FROM transfers FINAL ORDER BY id"
    assert connect(one).query(q).result_rows == connect(two).query(q).result_rows
    assert _counts(connect(one)) == _counts(connect(two))
