"""Regressions for the review's findings, each reproducing the original attack.

1. A contract field nested deeper than orjson.dumps accepts (``resource``, a permission
   ``threshold``) raised TypeError inside decode: the dataflow died (a crash loop in live mode,
   which resumes at the same height), on the block path and on the pending path.
2. A block timestamp in the year 3000 overflowed ``minute_stats.minute`` (DateTime) at insert; the
   failed write, then a second failure while Bytewax dropped the sink, aborted Rust, and chDB's
   SIGABRT handler hung the process for good.
6. Unbounded inputs (see also tests/sources/test_read_limits.py and the corpus): ids checked for
   length only or not at all.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import time

import bytewax.operators as op
import orjson
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from pipeline.config import load_settings
from pipeline.errors import DecodeError, StorageError
from pipeline.operators.decode import decode_block, decode_transaction
from pipeline.records import DecodedBlock
from pipeline.runner import DataflowError, dataflow_error, replay
from pipeline.sinks import clickhouse as sink
from pipeline.sources.live_flow import PendingSpec, build_pending
from pipeline.sources.mempool import PendingTx
from pipeline.storage.clickhouse import connect, open_storage
from pipeline.tron.tokens import TokenRegistry
from tests.conftest import ROOT

TOKENS = TokenRegistry.build()
NESTED = "[" * 300 + "]" * 300  # deeper than orjson.dumps accepts (255); orjson.loads takes it
YEAR_3000_MS = 32_503_680_000_000


def _first(block: dict, contract_type: str) -> int:
    return next(i for i, tx in enumerate(block["transactions"])
                if tx["raw_data"]["contract"][0]["type"] == contract_type)


def _with_nested(block: dict, j: int, field: str) -> bytes:
    """The block's JSON with ``field`` of transaction ``j``'s contract value nested 300 deep."""
    b = copy.deepcopy(block)
    b["transactions"][j]["raw_data"]["contract"][0]["parameter"]["value"][field] = "__NESTED__"
    return orjson.dumps(b).replace(b'"__NESTED__"', NESTED.encode())


def _permission_update(block: dict, j: int) -> dict:
    b = copy.deepcopy(block)
    tx = b["transactions"][j]
    owner = tx["raw_data"]["contract"][0]["parameter"]["value"]["owner_address"]
    tx["raw_data"]["contract"][0].update(type="AccountPermissionUpdateContract", parameter={"value": {
        "owner_address": owner, "owner": {"threshold": "__NESTED__", "keys": [{"address": owner, "weight": 1}]}}})
    return b


# -- finding 1 ------------------------------------------------------------------------------------
def test_finding1_nested_resource_is_one_dead_letter_and_the_block_is_stored(chdb_dsn, tmp_path, hex_block):
    j = _first(hex_block, "DelegateResourceContract")
    f = tmp_path / "nested.jsonl"
    f.write_bytes(_with_nested(hex_block, j, "resource") + b"\n")
    replay([str(f)], load_settings(env={}, overrides={"clickhouse.dsn": chdb_dsn, "analytics.enabled": False}),
           progress=False)
    client = connect(chdb_dsn)
    assert client.query("SELECT count() FROM transfers FINAL").result_rows[0][0] == len(hex_block["transactions"]) - 1
    [(position, reason)] = client.query("SELECT position, reason FROM dead_letters FINAL").result_rows
    assert position == f"{f}:1#tx{j}"
    assert f"transactions[{j}].raw_data.contract[0].parameter.value.resource: must be an enum name" in reason


def test_finding1_nested_threshold_and_any_unforeseen_error_stay_in_their_transaction(hex_block, monkeypatch):
    j = _first(hex_block, "TransferContract")
    payload = orjson.loads(orjson.dumps(_permission_update(hex_block, j)).replace(b'"__NESTED__"', NESTED.encode()))
    out = decode_block(payload, "t", "p", TOKENS)
    assert isinstance(out, DecodedBlock) and len(out.transfers) == len(hex_block["transactions"]) - 1
    [dead] = out.dead_letters
    assert "parameter.value.owner.threshold: must be an integer" in dead.reason
    # A failure no check foresaw (here: a handler that breaks) is that transaction's dead letter too.
    from pipeline.operators import decode

    def broken(*_args):
        raise KeyError("surprise")

    monkeypatch.setitem(decode.HANDLERS, "TransferContract", broken)
    out = decode_block(hex_block, "t", "p", TOKENS)
    n_trx = sum(1 for tx in hex_block["transactions"] if tx["raw_data"]["contract"][0]["type"] == "TransferContract")
    assert len(out.dead_letters) == n_trx and len(out.transfers) == len(hex_block["transactions"]) - n_trx
    assert "contract[0].parameter.value: cannot decode (KeyError: 'surprise')" in out.dead_letters[0].reason


def test_finding1_pending_path_turns_nested_fields_into_dead_letters(hex_block):
    """The pending step (pipeline/sources/live_flow.py) catches DecodeError only: decode must
    never raise anything else, so the same attack through the pending pool is a dead letter."""
    j = _first(hex_block, "DelegateResourceContract")
    hostile = orjson.loads(_with_nested(hex_block, j, "resource"))["transactions"][j]
    with pytest.raises(DecodeError, match="resource: must be an enum name"):
        decode_transaction(hostile, TOKENS, 0, 0, source="mempool")
    now = int(time.time() * 1000)
    good = hex_block["transactions"][_first(hex_block, "TransferContract")]
    flow = Dataflow("pending_hostile")
    items = op.input("in", flow, TestingSource([PendingTx("ws", 1, now, hostile), PendingTx("ws", 2, now, good)]))
    out: list = []
    rows = build_pending(op.filter("none", items, lambda _x: False), items, PendingSpec(TOKENS, None, 120))
    op.output("out", rows, TestingSink(out))
    run_main(flow)
    dead = [r for table, rs in out if table == "dead_letters" for r in rs]
    assert len(dead) == 1 and dead[0][2] == "seq 1" and "resource" in dead[0][3]


# -- finding 2 ------------------------------------------------------------------------------------
def _cli(args: list[str], timeout_s: float = 240) -> subprocess.CompletedProcess:
    """The real command in a subprocess; the timeout turns a hang into a failure, not a stuck suite."""
    return subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout_s, check=False)


def test_finding2_a_year_3000_block_is_a_dead_letter_and_the_run_exits_0(tmp_path, hex_block, visible_block):
    future = copy.deepcopy(hex_block)
    future["block_header"]["raw_data"]["timestamp"] = YEAR_3000_MS
    f = tmp_path / "future.jsonl"
    f.write_bytes(orjson.dumps(visible_block) + b"\n" + orjson.dumps(future) + b"\n")
    dsn = f"chdb://{tmp_path / 'db'}"
    done = _cli(["run", "--input", str(f), "--clickhouse", dsn, "--no-progress"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Stored: 1 blocks" in done.stdout and "Dead letters: 1" in done.stdout
    assert "timestamp: must be a time in ms between 2018-06-25 and 2100-01-01" in done.stdout


def test_finding2_a_write_that_fails_for_good_exits_non_zero_with_one_line(tmp_path, hex_block):
    """The sink's fatal path, reached the way finding 2 reached it: an insert ClickHouse refuses.
    Here ``minute_stats`` lost a column, so every insert into it fails (a schema error)."""
    dsn = f"chdb://{tmp_path / 'db'}"
    broken = subprocess.run([sys.executable, "-c", (
        "from pipeline.storage.clickhouse import open_storage\n"
        f"c, d = open_storage({dsn!r})\n"
        "c.command(f'ALTER TABLE {d.database}.minute_stats DROP COLUMN distinct_receivers')")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert broken.returncode == 0, broken.stderr[-2000:]
    f = tmp_path / "block.json"
    f.write_bytes(orjson.dumps(hex_block))
    done = _cli(["run", "--input", str(f), "--clickhouse", dsn, "--no-progress"])
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: insert of ") and "minute_stats failed" in last and "distinct_receivers" in last
    assert "Traceback" not in done.stderr and "aborting" not in done.stderr


def test_an_abort_under_chdb_ends_the_process_instead_of_hanging(tmp_path):
    """chDB's SIGABRT handler never returns; the sink gives SIGABRT its default action back."""
    code = ("import os\n"
            "from pipeline.sinks.clickhouse import ClickHouseSink\n"
            f"ClickHouseSink({f'chdb://{tmp_path}/db'!r}).build_part('s', 'clickhouse', None)\n"
            "os.abort()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120, check=False)
    assert done.returncode == -signal.SIGABRT


class _Counting:
    """A real client that counts inserts (to see whether close() tries again)."""

    def __init__(self, client) -> None:
        self.client, self.inserts = client, 0

    def insert(self, *args, **kwargs):
        self.inserts += 1
        return self.client.insert(*args, **kwargs)


def _partition(dsn: str, durable: bool):
    client, d = open_storage(dsn)
    client.command(f"ALTER TABLE {d.database}.dead_letters DROP COLUMN raw")
    counting = _Counting(client)
    writer = sink.ClickHouseWriter(counting, d.database, max_delay_s=3600)
    return sink._ClickHousePartition(client, writer, durable), counting


def test_a_failed_write_raises_once_and_close_neither_raises_nor_retries(chdb_dsn):
    part, counting = _partition(chdb_dsn, durable=True)
    row = ("id", "src", "pos", "reason", "raw", 0)
    with pytest.raises(StorageError, match="dead_letters failed"):
        part.write_batch([("dead_letters", [row])])
    tried = counting.inserts
    part.close()  # would raise again -- during unwinding, an abort -- before the fix
    assert counting.inserts == tried and sink.take_close_failures() == []


def test_a_final_flush_that_fails_in_close_is_handed_to_the_runner(chdb_dsn):
    part, _ = _partition(chdb_dsn, durable=False)
    part.write_batch([("dead_letters", [("id", "src", "pos", "reason", "raw", 0)])])  # buffered, not due
    part.close()
    [failure] = sink.take_close_failures()
    assert isinstance(failure, StorageError) and "dead_letters failed" in str(failure)


def test_a_non_pipeline_exception_in_a_step_becomes_one_line_naming_the_step():
    flow = Dataflow("boom")
    op.output("out", op.map("explode", op.input("in", flow, TestingSource([1])), lambda _x: orjson.dumps(
        orjson.loads(NESTED))), TestingSink([]))
    with pytest.raises(Exception) as caught:
        run_main(flow)
    err = dataflow_error(caught.value)
    assert isinstance(err, DataflowError) and "\n" not in str(err)
    assert 'in step "boom.explode' in str(err) and "TypeError: Recursion limit reached" in str(err)


# -- finding 6 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "value", "reason"), [
    (("txID",), "z" * 64, "txID: must be 64 hex characters"),
    (("ret", 0, "contractRet"), "x" * 100_000, "contractRet: must be an enum name"),
    (("ret", 0, "contractRet"), {"nested": [1]}, "contractRet: must be an enum name"),
])
def test_finding6_transaction_ids_and_results_are_validated(hex_block, path, value, reason):
    block = copy.deepcopy(hex_block)
    target = block["transactions"][0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    out = decode_block(block, "t", "p", TOKENS)
    [dead] = out.dead_letters
    assert reason in dead.reason and len(dead.reason) < 300
    assert len(out.transfers) == len(hex_block["transactions"]) - 1


@pytest.mark.parametrize(("field", "value"), [
    ("parentHash", "not a hash"), ("parentHash", "a" * 1_000_000), ("parentHash", ["a" * 64]),
    ("number", 2**63), ("timestamp", 1_000_000_000_000),
])
def test_finding6_header_fields_are_validated(hex_block, field, value):
    block = copy.deepcopy(hex_block)
    block["block_header"]["raw_data"][field] = value
    out = decode_block(block, "t", "p", TOKENS)
    assert not isinstance(out, DecodedBlock) and field in out.reason and len(out.reason) < 300

