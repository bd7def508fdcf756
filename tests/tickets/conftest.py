"""Fixtures of the ticket tests: a real tracker server on 127.0.0.1, real chDB, routing text."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.records import Alert
from pipeline.storage.clickhouse import open_storage
from pipeline.tickets import load_routing_text
from pipeline.tickets.routing import Routing
from tests.tickets.trackers import Tracker

SECRET_OLD = "whsec_" + base64.b64encode(b"old-secret-0123456789abcdef").decode()
SECRET_NEW = "whsec_" + base64.b64encode(b"new-secret-0123456789abcdef").decode()
ENV = {"HOOK_NEW": SECRET_NEW, "HOOK_OLD": SECRET_OLD, "JIRA_TOKEN": "jira-token-xyz", "SNOW_PW": "snow-pw",
       "PD_KEY": "pd-routing-key-123", "OG_KEY": "og-key-456", "GH_TOKEN": "ghp_token789"}
T0 = 1_750_000_000_000  # ms; alerts are detected "now" in tests that age them


def make_alert(n: int, address: str = "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf", ts: int = T0, severity: str = "high",
               rule_id: str = "large_transfer", score: float = 75.0, detected_at: int | None = None,
               status: str = "confirmed", tags: tuple[str, ...] = ("large_transfer",)) -> Alert:
    detected_at = detected_at or int(time.time() * 1000)  # max_age counts from detection
    return Alert(f"{n:032x}", ts + n, detected_at, 61132092, f"{n:064x}", address, rule_id, "v1",
                 severity, score, status, "block", f"Large transfer #{n}", tags,
                 json.dumps({"transfer_id": f"{n:064x}:0", "values": {"amount_usd": 250000.0 + n}}))


def routing_yaml(url: str, group: str = "alert", timeout: float = 2.0, extra: str = "") -> str:
    window = "\n    window: 1h" if group == "subject" else ""
    return f"""
dashboard_url: "https://dash.example/alert?id={{alert_id}}"
delivery: {{max_attempts: 8, base_delay: 0.05, max_delay: 0.4, poll_interval: 0.05, max_age: 1d}}
destinations:
  hook: {{kind: webhook, url: "{url}/hook", timeout: {timeout}, secrets: [{{env: HOOK_NEW}}, {{env: HOOK_OLD}}]}}
  jira: {{kind: jira, url: "{url}", project: RISK, email: bot@example.com, api_token: {{env: JIRA_TOKEN}},
          timeout: {timeout}, priorities: {{high: High}}}}
  snow: {{kind: servicenow, url: "{url}", username: bot, password: {{env: SNOW_PW}}, timeout: {timeout},
          fields: {{category: security}}}}
  pd: {{kind: pagerduty, url: "{url}/v2/enqueue", routing_key: {{env: PD_KEY}}, timeout: {timeout}}}
  og: {{kind: opsgenie, url: "{url}", api_key: {{env: OG_KEY}}, timeout: {timeout}}}
  gh: {{kind: github, url: "{url}", repo: acme/cases, token: {{env: GH_TOKEN}}, timeout: {timeout}}}
{extra}
routes:
  - name: all
    match: {{min_severity: high}}
    group: {group}{window}
    destinations: [DESTS]
"""


def make_routing(url: str, dests: str, group: str = "alert", timeout: float = 2.0) -> Routing:
    return load_routing_text(routing_yaml(url, group, timeout).replace("DESTS", dests), "routing.yaml", ENV)


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    t = Tracker().start()
    yield t
    t.stop()


@pytest.fixture(scope="session")
def _ticket_db(chdb_dir: Path):
    """One migrated database for the ticket tests (migrating costs seconds per database on chDB)."""
    client, _dsn = open_storage(f"chdb://{chdb_dir}?database=tickets_{os.getpid()}")
    return client


@pytest.fixture
def storage(_ticket_db):
    """The ticket tables, emptied: each test starts from an empty outbox and attempt log."""
    for table in ("ticket_outbox", "tickets"):
        _ticket_db.command(f"TRUNCATE TABLE {_ticket_db.database}.{table}")
    return _ticket_db
