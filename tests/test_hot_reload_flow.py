"""Editing a watchlist and a rule file while the real dataflow runs: both take effect, no restart.

The edits are made from the flow's own progress hook (``on_block``) once a given number of blocks
has been decoded, so they land in the middle of the run. Which block is the first to see an edit
depends on the wall clock (that is what hot reload is); the assertions allow for the few blocks
that may already be past decode but not yet through the shards when a file changes.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.offline import iter_blocks
from pipeline.records import Kind
from pipeline.runner import replay
from pipeline.storage.clickhouse import connect

ROOT = Path(__file__).resolve().parents[1]
LIST_AT, RULE_AT = 20, 40  # blocks decoded before each edit
SLACK = 10  # blocks that may be in flight between decode and the shards when a file changes

NEW_RULE = """rules:
  - id: hot_reloaded_large_inflow
    title: Large inflow (added while running)
    description: Written into the rule directory in the middle of a run, to prove it is picked up.
    tags: [test]
    severity: low
    when: {kinds: value, role: receiver}
    condition: amount_usd >= 10000
    cooldown: 1h
"""


@pytest.fixture(scope="module")
def sim_chain(tmp_path_factory):
    from pipeline.simulate import SimConfig, simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(SimConfig(blocks=80, seed=3), out, progress=False)
    return out / "blocks.jsonl.gz"


def _busiest_receiver(chain: Path) -> tuple[str, int]:
    """The address paid most often after the list edit, and the first block it is paid in then."""
    paid: Counter[str] = Counter()
    first: dict[str, int] = {}
    for i, block in enumerate(iter_blocks([str(chain)])):
        if i < LIST_AT + SLACK:
            continue
        for t in block.transfers:
            if t.kind in Kind.VALUE_MOVEMENTS and t.success and t.from_address and t.to_address:
                paid[t.to_address] += 1
                first.setdefault(t.to_address, block.block.number)
    address, _ = paid.most_common(1)[0]
    return address, first[address]


def test_edited_lists_and_rules_reach_the_running_flow_and_the_audit_trail(chdb_dsn, sim_chain, tmp_path):
    rules, lists = tmp_path / "rules", tmp_path / "lists"
    rules.mkdir()
    for pack in (ROOT / "rules").glob("*.yaml"):
        shutil.copy(pack, rules)
    shutil.copytree(ROOT / "rules" / "lists", lists)
    target, _ = _busiest_receiver(sim_chain)
    settings = load_settings(env={}, overrides={
        "clickhouse.dsn": chdb_dsn, "analytics.model": "", "analytics.rules": [str(rules)],
        "analytics.watchlists": str(lists), "analytics.reload_interval_s": 0.001,
        # this test counts the hits of a rule added mid-run: no budget, no correlation in between
        "analytics.alert_budget_per_1k": 0, "analytics.correlation_window_s": 0})

    decoded: list[int] = []

    def edit_files(block) -> None:
        decoded.append(block.block.number)
        if len(decoded) == LIST_AT:
            (lists / "scam.txt").write_text(f"# reported to us today\n{target}\n")
        elif len(decoded) == RULE_AT:
            (rules / "hot.yaml").write_text(NEW_RULE)

    replay([str(sim_chain)], settings, progress=False, on_block=edit_files)
    list_block, rule_block = decoded[LIST_AT - 1], decoded[RULE_AT - 1]

    c = connect(chdb_dsn)
    blacklist = c.query("SELECT block_number, details FROM alerts FINAL "
                        "WHERE rule_id = 'blacklist_interaction'").result_rows
    assert blacklist, "the list added mid-run raised no alert"
    assert min(b for b, _ in blacklist) > list_block - SLACK  # nothing before the list existed
    assert all(target in d for _, d in blacklist)  # and only about the address put on it
    new_rule = c.query("SELECT min(block_number), count() FROM alerts FINAL "
                       "WHERE rule_id = 'hot_reloaded_large_inflow'").result_rows[0]
    assert new_rule[1] > 0 and new_rule[0] > rule_block - SLACK

    facts = c.query("SELECT kind, subject, payload FROM audit_log ORDER BY seq").result_rows
    lists_chained = {s: json.loads(p) for k, s, p in facts if k == "watchlist_loaded"}
    assert lists_chained["scam"]["addresses"] == 1 and lists_chained["ofac_sdn_trx"]["addresses"] == 184
    assert ("rules_loaded", "hot_reloaded_large_inflow") in {(k, s) for k, s, _ in facts}
    # the reload's records come before the first alert of the new rule in the chain
    kinds_subjects = [(k, s) for k, s, _ in facts]
    loaded_at = kinds_subjects.index(("rules_loaded", "hot_reloaded_large_inflow"))
    first_new_alert = min(i for i, (k, _s, p) in enumerate(facts)
                          if k == "alert_created" and json.loads(p)["rule_id"] == "hot_reloaded_large_inflow")
    assert loaded_at < first_new_alert
