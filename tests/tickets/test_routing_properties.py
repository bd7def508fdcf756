"""Property tests: whatever a routing file holds, loading it either works or is a clean error.

"Clean": a :class:`RoutingError` whose every line is ``routing.yaml:LINE: reason``, one line, at
most 400 characters, never the value of a secret. Three generators: arbitrary text, YAML documents
built from the routing vocabulary (so the validator's deeper branches are reached), and the
shipped file with one line replaced by arbitrary text.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.tickets import load_routing_text
from pipeline.tickets.errors import RoutingError
from tests.tickets.conftest import ENV

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "rules" / "tickets" / "routing.yaml").read_text().replace("enabled: false", "enabled: true")
NOWHERE = Path("/nonexistent/tronrisk-secrets")  # {file: ...} secrets resolve under it, and fail
LINE = re.compile(r"^routing\.yaml:\d+: \S")
WORDS = [
    "destinations", "routes", "delivery", "dashboard_url", "kind", "url", "enabled", "timeout", "secrets",
    "headers", "match", "group", "window", "continue", "name", "min_severity", "severities", "rules",
    "tags", "min_risk_score", "rule_action", "statuses", "sources", "webhook", "jira", "github",
    "pagerduty", "servicenow", "opsgenie", "project", "email", "api_token", "token", "repo",
    "routing_key", "api_key", "username", "password", "max_attempts", "base_delay", "max_delay",
    "max_age", "poll_interval", "batch", "env", "file", "HOOK_NEW", "JIRA_TOKEN", "alert", "subject",
    "high", "critical", "confirmed", "https://example.com/h", "http://127.0.0.1:9/x", "http://10.0.0.1/",
    "https://u:p@h/", "1h", "0", "../etc/passwd", "/etc/hostname", "{alert_id}", "acme/cases"]
SCALARS = st.one_of(st.sampled_from(WORDS), st.integers(-10, 10**6), st.floats(allow_nan=True), st.booleans(),
                    st.none(), st.text(max_size=20))
TREES = st.recursive(SCALARS, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(WORDS), kids, max_size=5)), max_leaves=30)
DOCS = st.dictionaries(st.sampled_from(["destinations", "routes", "delivery", "dashboard_url", "extra"]),
                       TREES, max_size=4)


def _check(text: str) -> None:
    try:
        load_routing_text(text, "routing.yaml", ENV, NOWHERE)
    except RoutingError as err:
        assert err.errors, "an error with no lines"
        for line in err.errors:
            assert LINE.match(line) and "\n" not in line and len(line) <= 400, line
            assert not any(v in line for v in ENV.values()), line  # secrets never quoted


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_documents_in_the_routing_vocabulary(doc: dict) -> None:
    _check(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, SHIPPED.count("\n") - 1), st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_the_shipped_file_with_one_line_replaced(index: int, replacement: str) -> None:
    lines = SHIPPED.splitlines()
    lines[index] = replacement
    _check("\n".join(lines) + "\n")
