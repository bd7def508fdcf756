"""`run --node` end to end: the CLI follows a devnet over real sockets into chDB, then resumes
from its checkpoint without a gap or a duplicate."""

import subprocess
import sys

from pipeline.devnet import Chain, Devnet, DevnetConfig
from tests.conftest import ROOT
from tests.live.conftest import first_number

DIGEST = r"""
import sys, clickhouse_connect
c = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1]); c.database = "tronrisk"
print(c.query("SELECT count(), min(number), max(number), uniqExact(number) FROM blocks FINAL").result_rows[0])
print(c.query("SELECT count(), uniqExact(id) FROM transfers FINAL").result_rows[0])
print(c.query("SELECT block_number FROM checkpoints FINAL WHERE source = 'node'").result_rows[0][0])
"""


def _run(url, chdb, *extra):
    cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "run", "--node", url, "--confirmations", "0",
           "--clickhouse", f"chdb://{chdb}", "--no-progress", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _stored(chdb):
    out = subprocess.run([sys.executable, "-c", DIGEST, str(chdb)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [eval(line) for line in out.stdout.strip().splitlines()]  # noqa: S307 - our own tuples


def test_run_node_catches_up_then_resumes_from_its_checkpoint(tmp_path, live_chain):
    first = first_number(live_chain)
    with Devnet(Chain.from_dicts(live_chain), DevnetConfig(serve_all=True)) as net:
        chdb = tmp_path / "chdb"
        assert "Ingested 20 blocks" in _run(net.http_url, chdb, "--from-block", str(first),
                                            "--to-block", str(first + 19))
        blocks, transfers, checkpoint = _stored(chdb)
        assert blocks == (20, first, first + 19, 20) and checkpoint == first + 19
        assert transfers[0] == transfers[1] == 20 * 8
        # No --from-block: the run resumes after the last committed block.
        _run(net.http_url, chdb, "--to-block", str(first + 29))
        blocks, transfers, checkpoint = _stored(chdb)
        assert blocks == (30, first, first + 29, 30) and checkpoint == first + 29
        assert transfers[0] == transfers[1] == 30 * 8


def test_run_node_with_the_pending_feed_ends_at_to_block_and_records_lead_times(tmp_path, live_chain):
    import time

    first = first_number(live_chain)
    chdb = tmp_path / "chdb"
    with Devnet(Chain.from_dicts(live_chain), DevnetConfig(speed=10.0, initial_blocks=1)) as net:
        net.pause()  # hold the head until the run's websocket client is connected
        cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "run", "--node", net.http_url, "--confirmations", "0",
               "--clickhouse", f"chdb://{chdb}", "--no-progress", "--from-block", str(first),
               "--to-block", str(first + 8), "--mempool", net.ws_url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while net.status()["ws_clients"] == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        net.resume()
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "Ingested 9 blocks" in out  # the run ended at --to-block although the feed never ends
    leads = subprocess.run([sys.executable, "-c", DIGEST.split("print(")[0] +
                            "print(c.query('SELECT count(), min(lead_ms) >= 0 FROM pending_lead_times').result_rows[0])",
                            str(chdb)], capture_output=True, text=True, timeout=120)
    assert leads.returncode == 0, leads.stderr
    count, non_negative = eval(leads.stdout)  # noqa: S307 - our own tuple
    assert count >= 8 * 7 and non_negative  # most of the 8 transactions of each of blocks 1..8
