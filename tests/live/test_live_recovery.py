"""kill -9 in live mode: follow a devnet with recovery on, kill mid-stream, restart, and end with
exactly the data of an uninterrupted live run over the same blocks."""

import subprocess
import sys

from pipeline.devnet import Chain, Devnet, DevnetConfig
from tests.conftest import ROOT
from tests.live.conftest import first_number
from tests.test_recovery import ENV, _digest, _kill_after_block


def _cmd(url, chdb, first, last, recovery):
    return [sys.executable, str(ROOT / "run_pipeline.py"), "--log-level", "INFO", "run", "--node", url,
            "--confirmations", "0", "--from-block", str(first), "--to-block", str(last),
            "--clickhouse", f"chdb://{chdb}", "--no-progress", "--recovery-dir", str(recovery)]


def test_kill_9_while_following_a_node_then_resume_equals_an_uninterrupted_run(tmp_path, live_chain):
    first = first_number(live_chain)
    last = first + len(live_chain) - 1
    env = dict(ENV, TRONRISK_PIPELINE_EPOCH_INTERVAL_S="0.5")
    with Devnet(Chain.from_dicts(live_chain), DevnetConfig(serve_all=True)) as net:
        clean = tmp_path / "clean"
        out = subprocess.run(_cmd(net.http_url, clean, first, last, tmp_path / "rec_clean"), env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    expected = _digest(clean)
    assert expected["blocks"][0] == len(live_chain)

    # Blocks appear one every 0.3 s, so the run follows the head block by block and can be
    # killed in the middle of the chain.
    with Devnet(Chain.from_dicts(live_chain), DevnetConfig(speed=10.0, initial_blocks=1)) as net:
        crashed, recovery = tmp_path / "crashed", tmp_path / "rec"
        code, seen = _kill_after_block(_cmd(net.http_url, crashed, first, last, recovery), env, first + 15)
        assert code == -9 and first + 15 <= seen < last
        resumed = subprocess.run(_cmd(net.http_url, crashed, first, last, recovery), env=env,
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
    got = _digest(crashed)
    for table in ("blocks", "transfers", "alerts", "address_features", "minute_stats", "checkpoints",
                  "audit_records", "evidence", "audit_chain"):
        assert got[table] == expected[table], table
