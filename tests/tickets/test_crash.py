"""Tickets across a crash: kill -9 mid-replay with delivery on, resume, and every routed alert has
exactly one ticket — on a webhook receiver (which deduplicates on webhook-id) and on Jira (which
does not: the worker's "sending" record and look-up must prevent a second issue)."""

import subprocess
import sys

from tests.conftest import ROOT
from tests.test_recovery import ENV as RUN_ENV
from tests.test_recovery import _kill_after_block
from tests.tickets.conftest import ENV as SECRETS
from tests.tickets.conftest import routing_yaml

HIGH = r"""
import sys, clickhouse_connect
c = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1]); c.database = "tronrisk"
print(sorted(r[0] for r in c.query("SELECT alert_id FROM alerts FINAL WHERE severity IN ('high', 'critical')").result_rows))
"""


def test_kill_9_with_delivery_on_then_resume_gives_one_ticket_per_alert(tmp_path, tracker):
    import json

    from pipeline.simulate import SimConfig, parse_rates, simulate

    chain = tmp_path / "sim"
    simulate(SimConfig(blocks=160, seed=21, rates=parse_rates("all=16")), chain, progress=False)
    first = json.loads((chain / "meta.json").read_text())["start_height"]
    routing = tmp_path / "routing.yaml"
    routing.write_text(routing_yaml(tracker.url).replace("DESTS", "hook, jira"))
    env = dict(RUN_ENV, **SECRETS, TRONRISK_TICKETS_ENABLED="true", TRONRISK_TICKETS_ROUTING=str(routing))
    chdb, recovery = tmp_path / "chdb", tmp_path / "rec"
    cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "--log-level", "INFO", "run", "--input",
           str(chain / "blocks.jsonl.gz"), "--clickhouse", f"chdb://{chdb}", "--no-progress",
           "--recovery-dir", str(recovery)]

    code, seen = _kill_after_block(cmd, env, first + 80)
    assert code == -9 and seen < first + 159
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    out = subprocess.run([sys.executable, "-c", HIGH, str(chdb)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    routed = eval(out.stdout)  # noqa: S307 - our own list
    assert len(routed) >= 5
    assert sorted(tracker.webhooks) and len(tracker.webhooks) == len(routed)  # one webhook-id per alert
    titles = [issue["fields"]["summary"] for issue in tracker.jira.values()]
    assert len(tracker.jira) == len(routed), titles  # one Jira issue per alert, none twice
