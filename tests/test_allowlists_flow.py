"""Allow lists in the real dataflow: an allow-listed subject's alert is not stored (it is kept in
``suppressed_alerts``, counted in the summary, its list chained in the audit trail) while the
identical alert of another subject -- and of the same subject under a rule out of the entry's
scope -- is stored. One real mainnet block, real chDB."""

from __future__ import annotations

import json
from collections import Counter

from pipeline.config import load_settings
from pipeline.offline import iter_blocks
from pipeline.runner import replay
from pipeline.storage.clickhouse import connect, parse_dsn
from pipeline.summary import render, stored_counts
from tests.conftest import HEX_BLOCK

RULE = """  - id: {id}
    title: USDT received
    description: Any USDT received (a test rule that fires on every USDT inflow).
    tags: [large_transfer]
    severity: low
    when: {{kinds: value, role: receiver}}
    condition: symbol == 'USDT' and amount_usd > 0
"""


def test_an_allowlisted_subjects_alert_is_suppressed_and_an_identical_one_is_stored(chdb_dsn, tmp_path):
    inflows = Counter(t.to_address for b in iter_blocks([str(HEX_BLOCK)]) for t in b.transfers
                      if t.symbol == "USDT" and t.amount_usd > 0 and t.success and t.to_address)
    (allowed, n_allowed), (other, _) = inflows.most_common(2)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "usdt.yaml").write_text("rules:\n" + RULE.format(id="usdt_in") + RULE.format(id="usdt_in_copy"))
    allow = tmp_path / "allow"
    allow.mkdir()
    (allow / "exchanges.csv").write_text("address,scope,expires,reason,category\n"
                                         f"{allowed},usdt_in,,test: a known hot wallet,exchange\n")
    settings = load_settings(env={}, overrides={
        "clickhouse.dsn": chdb_dsn, "analytics.model": "", "analytics.rules": [str(rules)],
        "analytics.allowlists": str(allow),
        # every rule hit a row: no budget, no correlation (this test counts raw hits)
        "analytics.alert_budget_per_1k": 0, "analytics.correlation_window_s": 0})
    replay([str(HEX_BLOCK)], settings, progress=False)

    c = connect(chdb_dsn)
    stored = Counter(c.query("SELECT rule_id, address FROM alerts FINAL").result_rows)
    assert stored[("usdt_in", other)] >= 1 and stored[("usdt_in_copy", other)] == stored[("usdt_in", other)]
    assert stored[("usdt_in", allowed)] == 0  # suppressed ...
    assert stored[("usdt_in_copy", allowed)] == n_allowed  # ... for the rule in its scope only
    suppressed = c.query("SELECT rule_id, address, list_name, category, reason, expires_at "
                         "FROM suppressed_alerts FINAL").result_rows
    row = ("usdt_in", allowed, "exchanges", "exchange", "test: a known hot wallet", None)
    assert suppressed == [row] * n_allowed

    counts = stored_counts(c)
    assert counts["suppressed"] == [("usdt_in", "exchanges", n_allowed)]
    text = render(counts, parse_dsn(chdb_dsn), 1.0, _Stats())
    assert f"Suppressed by allow lists: {n_allowed:,}" in text
    facts = c.query("SELECT subject, payload FROM audit_log WHERE kind = 'allowlist_loaded'").result_rows
    assert [(s, json.loads(p)["entries"]) for s, p in facts] == [("exchanges", 1)]


class _Stats:
    blocks = transactions = 1
