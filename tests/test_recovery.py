"""Crash recovery: kill -9 in the middle of a replay, restart, and end with exactly the data of an
uninterrupted run (compared by ids, counts and full contents, read with FINAL).

Each run is a real subprocess with its own chDB directory (one process per data directory), and
the comparison is read by subprocesses too.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

DIGEST = r"""
import sys, json, hashlib, clickhouse_connect
c = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1]); c.database = "tronrisk"
q = {"transfers": "SELECT id, kind, amount_raw FROM transfers FINAL ORDER BY id",
     "blocks": "SELECT number, block_id FROM blocks FINAL ORDER BY number",
     "alerts": "SELECT alert_id, rule_id, address, tx_id, severity, round(risk_score, 3), status, details "
               "FROM alerts FINAL ORDER BY alert_id",
     "address_features": "SELECT * FROM address_features FINAL ORDER BY address, ts",
     "minute_stats": "SELECT * FROM minute_stats FINAL ORDER BY minute, token",
     "checkpoints": "SELECT source, block_number FROM checkpoints FINAL",
     # Audit records carry the wall time they were chained at, so two runs' hashes differ; what
     # must match is which facts were chained (each once), and the chain must verify.
     "audit_records": "SELECT kind, record_id FROM audit_log ORDER BY record_id",
     "evidence": "SELECT alert_id FROM evidence FINAL ORDER BY alert_id"}
out = {}
for table, sql in q.items():
    rows = c.query(sql).result_rows
    out[table] = [len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()]
dupes = c.query("SELECT count() - uniqExact(record_id) FROM audit_log").result_rows[0][0]
from pipeline.audit.check import verify_clickhouse
result = verify_clickhouse(c, "tronrisk")
out["audit_chain"] = [dupes, bool(result.ok)]
print(json.dumps(out))
"""


def _cmd(chain, chdb, recovery=None):
    cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "--log-level", "INFO", "run", "--input",
           str(chain / "blocks.jsonl.gz"), "--clickhouse", f"chdb://{chdb}", "--no-progress"]
    return cmd + (["--recovery-dir", str(recovery)] if recovery else [])


def _digest(chdb):
    out = subprocess.run([sys.executable, "-c", DIGEST, str(chdb)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from pipeline.simulate import SimConfig, parse_rates, simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(SimConfig(blocks=160, seed=11, rates=parse_rates("all=16")), out, progress=False)
    return out


def _kill_after_block(cmd, env, block_at_least):
    """Start the run, wait for a commit past ``block_at_least``, then SIGKILL it mid-stream."""
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen = -1
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        m = re.search(r"checkpoint block (\d+)", line)
        if m:
            seen = int(m.group(1))
            if seen >= block_at_least:
                os.kill(proc.pid, signal.SIGKILL)
                break
        if time.monotonic() > deadline:
            break
    proc.wait(timeout=60)
    return proc.returncode, seen


ENV = dict(os.environ, TRONRISK_PIPELINE_EPOCH_INTERVAL_S="1", TRONRISK_CLICKHOUSE_MAX_DELAY_MS="100")


@pytest.fixture(scope="module")
def uninterrupted(chain, tmp_path_factory):
    clean = tmp_path_factory.mktemp("clean") / "chdb"
    assert subprocess.run(_cmd(chain, clean), env=ENV, capture_output=True, timeout=600).returncode == 0
    return _digest(clean)


@pytest.mark.parametrize("kill_at", [0.35, 0.7])
def test_kill_9_mid_replay_then_resume_equals_an_uninterrupted_run(tmp_path, chain, uninterrupted, kill_at):
    meta = json.loads((chain / "meta.json").read_text())
    first, blocks = meta["start_height"], meta["blocks"]
    env = ENV
    expected = uninterrupted
    assert expected["blocks"][0] == blocks and expected["alerts"][0] > 10
    assert expected["audit_chain"] == [0, True] and expected["evidence"][0] == expected["alerts"][0]

    crashed, recovery = tmp_path / "crashed", tmp_path / "recovery"
    code, seen = _kill_after_block(_cmd(chain, crashed, recovery), env, first + int(blocks * kill_at))
    assert code == -signal.SIGKILL, "the run finished before it could be killed"
    assert first <= seen < first + blocks - 1
    resumed = subprocess.run(_cmd(chain, crashed, recovery), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _digest(crashed) == expected


def test_two_processes_store_exactly_what_one_process_stores(tmp_path, chain, uninterrupted):
    """Bytewax cluster mode on one machine (`run --processes 2`): same rows, ids and contents."""
    two = tmp_path / "two"
    cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "run", "--input", str(chain / "blocks.jsonl.gz"),
           "--clickhouse", f"chdb://{two}", "--processes", "2"]
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Ingested 160 blocks" in out.stdout
    assert _digest(two) == uninterrupted


def test_an_unwritable_store_is_waited_out_and_nothing_is_lost(tmp_path, chain, uninterrupted):
    """The embedded data directory made unwritable mid-run (the immutable attribute binds root
    too), then writable again: the run waits, says so, resumes, and stores exactly the clean run."""
    chdb = tmp_path / "chdb"
    cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "--log-level", "INFO", "run", "--input",
           str(chain / "blocks.jsonl.gz"), "--clickhouse", f"chdb://{chdb}", "--no-progress"]
    proc = subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    log_lines = []
    locked = False
    try:
        for line in proc.stderr:
            log_lines.append(line)
            if not locked and "checkpoint block" in line:
                subprocess.run(["chattr", "-R", "+i", str(chdb / "store")], check=True)
                locked, locked_at = True, time.monotonic()
            if locked and "waiting for ClickHouse" in line and time.monotonic() - locked_at > 3:
                break
    finally:
        if locked:
            subprocess.run(["chattr", "-R", "-i", str(chdb / "store")], check=True)
    _, rest = proc.communicate(timeout=600)
    log_lines.append(rest)
    assert proc.returncode == 0, "".join(log_lines)[-2000:]
    text = "".join(log_lines)
    assert "waiting for ClickHouse" in text and "Operation not permitted" in text and "ClickHouse is back" in text
    assert _digest(chdb) == uninterrupted
