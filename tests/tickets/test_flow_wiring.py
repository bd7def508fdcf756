"""Through the real dataflow: alerts of a replay reach a webhook exactly once (needs the wiring).

Skipped until ``Settings.tickets`` exists (the wiring described in the ticket report adds it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from tests.tickets.conftest import ENV

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "pipeline" / "samples" / "mainnet"

pytestmark = pytest.mark.skipif(not hasattr(Settings(), "tickets"), reason="tickets not wired into settings yet")


def test_replay_queues_and_delivers_every_alert_once(tracker, chdb_dsn, tmp_path, monkeypatch):
    from pipeline.runner import replay
    from pipeline.storage.clickhouse import open_storage

    monkeypatch.setenv("HOOK_NEW", ENV["HOOK_NEW"])
    routing = tmp_path / "routing.yaml"
    routing.write_text(f"""
destinations:
  hook: {{kind: webhook, url: "{tracker.url}/hook", secrets: [{{env: HOOK_NEW}}]}}
routes:
  - {{name: everything, match: {{statuses: [pending, confirmed]}}, destinations: [hook]}}
""")
    settings = load_settings(None, env={}, overrides={
        "clickhouse.dsn": chdb_dsn, "analytics.model": "", "tickets.enabled": True,
        "tickets.routing": str(routing), "tickets.drain_s": 20.0,
        # two blocks earn less than one row of the alert budget: every rule hit is a row here
        "analytics.alert_budget_per_1k": 0, "analytics.correlation_window_s": 0})
    paths = sorted(str(p) for p in SAMPLES.glob("*.json"))
    for _ in range(2):  # the second replay of the same input must not send anything again
        replay(paths, settings, progress=False)
    client, _ = open_storage(chdb_dsn)
    alert_ids = {r[0] for r in client.query("SELECT alert_id FROM alerts FINAL").result_rows}
    assert alert_ids, "the sample blocks raise no alert: nothing was tested"
    assert set(tracker.webhooks) == {f"msg_{a}" for a in alert_ids}
    twice = {k: len(d) for k, d in tracker.webhooks.items() if len(d) != 1}
    rules = dict(client.query("SELECT alert_id, rule_id FROM alerts FINAL").result_rows)
    assert not twice, {k: (n, rules.get(k[4:])) for k, n in twice.items()}  # not even a deduplicated resend
