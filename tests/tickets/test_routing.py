"""routing.yaml: the shipped file loads; every mistake is one line naming file:line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.tickets import load_routing, load_routing_text
from pipeline.tickets.errors import RoutingError
from pipeline.tickets.routing import Match
from pipeline.tickets.secrets import Secret
from tests.tickets.conftest import ENV, make_alert

ROOT = Path(__file__).resolve().parents[2]
BASE = """destinations:
  hook:
    kind: webhook
    url: https://example.com/hook
    secrets: [{env: HOOK_NEW}]
routes:
  - name: r
    destinations: [hook]
"""


def test_shipped_routing_loads_without_secrets_because_destinations_ship_disabled():
    routing = load_routing(ROOT / "rules" / "tickets" / "routing.yaml", env={})
    assert [r.name for r in routing.routes] == ["critical-page", "cases", "high-risk"]
    assert not any(d.enabled for d in routing.destinations.values())
    assert routing.routes[1].group == "subject" and routing.routes[1].window_s == 6 * 3600
    assert routing.delivery.max_delay_s == 600 and routing.delivery.max_attempts == 12


def test_shipped_routing_enabled_needs_its_secrets(tmp_path):
    text = (ROOT / "rules" / "tickets" / "routing.yaml").read_text().replace("enabled: false", "enabled: true")
    with pytest.raises(RoutingError) as err:
        load_routing_text(text, "routing.yaml", {})
    assert "routing.yaml:21: destination 'soc-webhook': secrets: secret env:TRONRISK_WEBHOOK_SECRET is not set" in \
        err.value.errors
    assert len(err.value.errors) == 6  # every destination reported at once


@pytest.mark.parametrize("old,new,message", [
    ("kind: webhook", "kind: webhok", "routing.yaml:3: destination 'hook': kind must be one of"),
    ("kind: webhook", "kind: webhok", "did you mean webhook?"),
    ("    url: https://example.com/hook\n", "", "routing.yaml:2: destination 'hook': missing required key 'url'"),
    ("url: https://example.com/hook", "url: ftp://x", "routing.yaml:4: destination 'hook': url: expected https://"),
    ("url: https", "urll: https", "routing.yaml:4: destination 'hook': unknown webhook key 'urll'; did you mean url?"),
    ("secrets: [{env: HOOK_NEW}]", "secrets: [whsec_abc]", "routing.yaml:5: destination 'hook': secrets: a secret is"),
    ("secrets: [{env: HOOK_NEW}]", "secrets: {env: HOOK_NEW}", "secrets: expected a list of secrets"),
    ("secrets: [{env: HOOK_NEW}]", "secrets: [{env: NOPE}]", "secret env:NOPE is not set"),
    ("destinations: [hook]", "destinations: [hookk]", "routing.yaml:8: route #1: unknown destination 'hookk'; did you"),
    ("destinations: [hook]", "destinations: []", "routing.yaml:8: route #1: destinations: expected a non-empty"),
    ("  - name: r\n", "  - name: r\n    group: address\n", "routing.yaml:8: route #1: group must be one of alert,"),
    ("  - name: r\n", "  - name: r\n    window: 1h\n", "routing.yaml:8: route #1: window applies to group: subject"),
    ("  - name: r\n", "  - name: r\n    group: subject\n    window: soon\n", "routing.yaml:9: route #1: window: expected"),
    ("  - name: r\n", "  - name: r\n    match: {min_severity: hihg}\n",
     "routing.yaml:8: route #1: match.min_severity: 'hihg' is not one of"),
    ("  - name: r\n", "  - name: r\n    match: {min_risk_score: 101}\n", "match.min_risk_score: expected 0..100"),
    ("  - name: r\n", "  - name: r\n    match: {tag: [x]}\n", "unknown match key 'tag'; did you mean tags?"),
    ("  - name: r\n", "  - name: r\n    match: {statuses: [confirmd]}\n", "'confirmd' is not one of pending,"),
    ("routes:", "delivery: {max_attempts: 0}\nroutes:", "routing.yaml:6: delivery: max_attempts: expected a positive"),
    ("routes:", "rotues: []\nroutes:", "routing.yaml:6: unknown top-level key 'rotues'; did you mean routes?"),
    ("routes:", "dashboard_url: https://x/\nroutes:", "routing.yaml:6: dashboard_url must be a string containing"),
    ("    kind: webhook\n", "    kind: webhook\n    kind: jira\n", "routing.yaml:4: invalid YAML: duplicate key 'kind'"),
])
def test_errors_name_file_line_and_fix(old, new, message):
    assert old in BASE
    with pytest.raises(RoutingError) as err:
        load_routing_text(BASE.replace(old, new, 1), "routing.yaml", ENV)
    assert message in str(err.value.errors), err.value.errors


def test_secrets_from_files_are_hidden(tmp_path):
    (tmp_path / "hook.secret").write_text(ENV["HOOK_NEW"] + "\n")
    routing = load_routing_text(BASE.replace("{env: HOOK_NEW}", "{file: hook.secret}"), "r.yaml", {}, tmp_path)
    (secret,) = routing.destinations["hook"].secrets["secrets"]
    assert secret.reveal() == ENV["HOOK_NEW"]
    shown = repr(routing.destinations["hook"]) + str(secret)
    assert ENV["HOOK_NEW"] not in shown and f"file:{tmp_path / 'hook.secret'}" in shown
    with pytest.raises(RoutingError, match="r.yaml:5: .*cannot read"):
        load_routing_text(BASE.replace("{env: HOOK_NEW}", "{file: missing}"), "r.yaml", {}, tmp_path)


def test_secret_equality_does_not_need_reveal():
    assert Secret("a", "env:X") == Secret("a", "env:Y") and Secret("a", "env:X") != Secret("b", "env:X")


@pytest.mark.parametrize("match,alert,hit", [
    (Match(min_severity="high"), make_alert(1, severity="high"), True),
    (Match(min_severity="high"), make_alert(1, severity="medium"), False),
    (Match(min_severity="high"), make_alert(1, severity="critical"), True),
    (Match(severities=frozenset({"low"})), make_alert(1, severity="critical"), False),
    (Match(rules=frozenset({"large_transfer"})), make_alert(1), True),
    (Match(rules=frozenset({"other"})), make_alert(1), False),
    (Match(tags=frozenset({"fan_in", "large_transfer"})), make_alert(1), True),
    (Match(tags=frozenset({"fan_in"})), make_alert(1), False),
    (Match(min_risk_score=80), make_alert(1, score=79.9), False),
    (Match(min_risk_score=80), make_alert(1, score=80), True),
    (Match(rule_action=True), make_alert(1, rule_id="declares_ticket"), True),
    (Match(rule_action=True), make_alert(1), False),
    (Match(), make_alert(1, status="dropped"), False),  # a dropped mempool alert never opens a ticket
    (Match(), make_alert(1, status="pending"), True),
    (Match(statuses=frozenset({"confirmed"})), make_alert(1, status="pending"), False),
])
def test_match_table(match, alert, hit):
    assert match(alert, frozenset({"declares_ticket"})) is hit
