"""``run_pipeline.py tickets``: test sends a signed sample; list, show, retry and deliver operate the outbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from run_pipeline import build_parser
from tests.tickets.conftest import ENV, SECRET_OLD, make_alert, make_routing, routing_yaml
from tests.tickets.test_delivery import enqueue

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> int:
    args = build_parser().parse_args(["tickets", *argv])
    return args.func(args)


@pytest.fixture
def routing_file(tracker, tmp_path, monkeypatch) -> str:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "routing.yaml"
    path.write_text(routing_yaml(tracker.url).replace("DESTS", "hook, jira"))
    return str(path)


def test_test_sends_a_signed_sample(tracker, routing_file, capsys):
    assert run("test", "hook", "--routing", routing_file) == 0
    (msg_id,) = tracker.webhooks
    (d,) = tracker.webhooks[msg_id]
    payload = Webhook(SECRET_OLD).verify(d["body"], d["headers"])
    assert payload["data"]["rule_id"] == "tickets_test" and msg_id.startswith("msg_test")
    assert "hook (webhook) answered HTTP 200" in capsys.readouterr().out
    assert run("test", "jira", "--routing", routing_file) == 0
    assert f"ticket RISK-1 {tracker.url}/browse/RISK-1" in capsys.readouterr().out
    assert run("test", "hook", "--routing", routing_file) == 0
    assert len(tracker.webhooks) == 2  # a fresh id per test, so a deduplicating receiver sees it


def test_test_reports_a_refusal(tracker, routing_file, capsys):
    tracker.faults.append(("status", 401))
    assert run("test", "jira", "--routing", routing_file) == 1
    assert "jira (jira) answered HTTP 401" in capsys.readouterr().out


def test_dead_item_listed_retried_delivered_and_shown(tracker, routing_file, storage, chdb_dir, capsys):
    dsn = ["--clickhouse", f"chdb://{chdb_dir}?database={storage.database}", "--routing", routing_file]
    alert = make_alert(3)
    enqueue(storage, [alert], make_routing(tracker.url, "jira"))
    tracker.faults.append(("status", 400))
    assert run("deliver", *dsn) == 1
    assert "dead 1" in capsys.readouterr().out
    assert run("list", "--state", "dead", *dsn) == 0
    out = capsys.readouterr().out
    assert "jira/dead: 1" in out and "HTTP 400" in out
    assert run("retry", alert.alert_id, "--deliver", *dsn) == 0
    assert "queued 1 item(s) again" in capsys.readouterr().out
    assert len(tracker.jira) == 1
    assert run("retry", alert.alert_id, *dsn) == 0  # a delivered item is never sent again
    assert "queued 0 item(s) again; 1 already delivered left alone" in capsys.readouterr().out
    assert run("show", alert.alert_id, *dsn) == 0
    out = capsys.readouterr().out
    assert "state delivered" in out and "RISK-1" in out
    assert out.index(" dead ") < out.index(" delivered ")  # both attempts, in order


def test_errors_are_one_line():
    r = subprocess.run([sys.executable, "run_pipeline.py", "tickets", "test", "nope"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2
    known = "soc-webhook, jira, servicenow, pagerduty, opsgenie, github"
    assert r.stderr.strip().splitlines() == [
        f"error: tickets test: unknown destination 'nope'; known: {known} in {ROOT / 'rules' / 'tickets' / 'routing.yaml'}"]


def test_retry_of_a_dead_item_looks_the_ticket_up_first(tracker, routing_file, storage, chdb_dir, capsys):
    """The last attempt timed out after Jira created the issue: a retry must find it, not re-create it."""
    from dataclasses import replace

    from pipeline.tickets import DeliveryWorker

    routing = make_routing(tracker.url, "jira", timeout=0.3)
    routing = replace(routing, delivery=replace(routing.delivery, max_attempts=1))
    alert = make_alert(4)
    enqueue(storage, [alert], routing)
    tracker.faults.append(("slow", 0.8))
    DeliveryWorker(lambda: storage, routing).drain(5)
    dsn = ["--clickhouse", f"chdb://{chdb_dir}?database={storage.database}", "--routing", routing_file]
    assert run("list", "--state", "dead", *dsn) == 0
    assert "gave up after 1 attempts: no answer" in capsys.readouterr().out
    assert len(tracker.jira) == 1  # created, but the answer came too late
    assert run("retry", "--dead", "--deliver", *dsn) == 0
    assert "recovered 1" in capsys.readouterr().out
    assert len(tracker.jira) == 1
