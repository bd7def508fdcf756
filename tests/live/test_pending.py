"""Pending lifecycle: pure tracker, feature-free rule choice, and the Bytewax step end to end."""

from __future__ import annotations

import os
import time
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from pipeline.live.pending import PendingTracker, feature_free, pending_evaluator
from pipeline.operators.decode import decode_block, decode_transaction
from pipeline.records import Kind
from pipeline.rules.engine import alert_id, load_ruleset
from pipeline.sources.live_flow import PendingSpec, build_pending
from pipeline.sources.mempool import PendingTx
from pipeline.tron.tokens import TokenRegistry

RULES = """
rules:
  - id: any_outflow
    title: Any value out
    description: fires on every value movement (test rule, feature-free)
    tags: [large_transfer]
    severity: medium
    when: {kinds: value, role: sender}
    condition: amount >= 0
  - id: new_address_inflow
    title: Inflow to a new address
    description: needs a feature, so it must not run on pending transactions
    tags: [new_address]
    severity: low
    when: {kinds: value, role: receiver}
    condition: age_s < 3600
"""


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("rules") / "test.yaml"
    path.write_text(RULES)
    return load_ruleset([path])


@pytest.fixture(scope="module")
def tokens() -> TokenRegistry:
    return TokenRegistry.build()


def _pending(block: dict[str, Any], tokens: TokenRegistry) -> list[Any]:
    return [t for tx in block["transactions"] for t in decode_transaction(tx, tokens, 0, 0, source="mempool")]


def _value_tx(block: dict[str, Any], tokens: TokenRegistry) -> list[Any]:
    """The transfers of the block's first transaction that moves value."""
    return [next(t for t in _pending(block, tokens) if t.kind in Kind.VALUE_MOVEMENTS)]


def test_only_feature_free_rules_run_on_pending(ruleset: Any) -> None:
    assert [feature_free(r) for r in ruleset.rules] == [True, False]
    _evaluate, ids = pending_evaluator(ruleset)
    assert ids == ["any_outflow"]


def test_tracker_pending_confirmed_dropped(ruleset: Any, tokens: TokenRegistry, live_chain: list[dict]) -> None:
    evaluate, _ = pending_evaluator(ruleset)
    tracker = PendingTracker(evaluate, timeout_ms=60_000, max_tracked=100)
    block, ghost_block = live_chain[5], live_chain[6]
    now = 1_700_000_000_000
    pend = tracker.on_pending(_pending(block, tokens), now)
    assert pend.alerts and {a.status for a in pend.alerts} == {"pending"}
    assert {a.source for a in pend.alerts} == {"mempool"} and {a.rule_id for a in pend.alerts} == {"any_outflow"}
    assert all(a.block_number == 0 for a in pend.alerts)
    ghost = tracker.on_pending(_value_tx(ghost_block, tokens), now + 1_000)
    assert len(ghost.alerts) == 1
    assert tracker.on_pending(_pending(block, tokens), now + 5).alerts == []  # seen already
    decoded = decode_block(block, "node", "x", tokens)
    landed = tracker.on_block(decoded.transfers, now + 4_000)
    # the same alert ids, now confirmed with the block's height and time; lead time recorded
    assert sorted(a.alert_id for a in landed.alerts) == sorted(a.alert_id for a in pend.alerts)
    assert {a.status for a in landed.alerts} == {"confirmed"}
    assert {a.block_number for a in landed.alerts} == {decoded.block.number}
    assert {a.ts for a in landed.alerts} == {decoded.block.ts}
    assert len(landed.leads) == len(block["transactions"]) and {x.lead_ms for x in landed.leads} == {4_000}
    one = pend.alerts[0]
    assert one.alert_id == alert_id(one.rule_id, one.address, one.tx_id)
    assert tracker.expire(now + 60_000).alerts == []  # ghost seen at now+1000: not yet
    dropped = tracker.expire(now + 61_000)
    assert [a.alert_id for a in dropped.alerts] == [ghost.alerts[0].alert_id]
    assert dropped.alerts[0].status == "dropped" and len(tracker) == 0
    # announced after its block landed: ignored
    assert tracker.on_pending(_pending(block, tokens), now + 70_000).alerts == []


def test_tracker_is_bounded(tokens: TokenRegistry, live_chain: list[dict]) -> None:
    tracker = PendingTracker(None, max_tracked=5, landed_memory=3)
    tracker.on_pending(_pending(live_chain[1], tokens), 1)
    assert len(tracker) == 5 and tracker.evicted == 3
    tracker.on_block(decode_block(live_chain[2], "n", "x", tokens).transfers, 2)
    assert len(tracker._landed) == 3


def test_pending_step_in_a_dataflow(ruleset: Any, tokens: TokenRegistry, live_chain: list[dict]) -> None:
    block, other = live_chain[8], live_chain[9]
    now = int(time.time() * 1000)
    pend = [PendingTx("mempool", i, now, tx) for i, tx in enumerate(block["transactions"])]
    ghost_id = _value_tx(other, tokens)[0].tx_id
    ghost_tx = next(tx for tx in other["transactions"] if tx["txID"] == ghost_id)
    ghost = PendingTx("mempool", 99, now - 10 * 60_000, ghost_tx)  # long overdue
    bad = PendingTx("mempool", 100, now, {"txID": "zz"})
    flow = Dataflow("pending_test")
    # one input so that the block comes after its pending transactions, as on a live chain
    items = op.input("in", flow, TestingSource([*pend, ghost, bad, decode_block(block, "node", "x", tokens)]))
    pending = op.filter("p", items, lambda x: isinstance(x, PendingTx))
    blocks = op.filter("b", items, lambda x: not isinstance(x, PendingTx))
    out: list[Any] = []
    rows = build_pending(blocks, pending, PendingSpec(tokens, ruleset, timeout_s=120))
    op.output("out", rows, TestingSink(out))
    run_main(flow)
    alerts = [a for table, rs in out if table == "alerts" for a in rs]
    by_id: dict[str, list[str]] = {}
    for a in alerts:
        by_id.setdefault(a.alert_id, []).append(a.status)
    ghost_ids = {a.alert_id for a in alerts if a.tx_id == ghost.tx["txID"]}
    assert ghost_ids and all(by_id[i] == ["pending", "dropped"] for i in ghost_ids)
    landed = [i for i in by_id if i not in ghost_ids]
    assert landed and all(by_id[i] == ["pending", "confirmed"] for i in landed)
    assert all(a.risk_score > 0 for a in alerts)
    leads = [r for table, rs in out if table == "pending_lead_times" for r in rs]
    assert len(leads) == len(block["transactions"])
    dead = [r for table, rs in out if table == "dead_letters" for r in rs]
    assert len(dead) == 1 and "txID" in dead[0][3]


def test_a_rule_edited_while_running_reaches_pending_transactions(tmp_path, tokens: TokenRegistry,
                                                                   live_chain: list[dict]) -> None:
    from pipeline.hot_reload import HotReload
    from pipeline.sources.live_flow import _PendingLogic

    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("amount >= 0", "amount < 0"))  # never fires
    now = [0.0]
    hot = HotReload(load_ruleset([path]), [path], None, interval_s=1.0, clock=lambda: now[0])
    logic = _PendingLogic(PendingSpec(tokens, hot.ruleset, timeout_s=120, recovery=False, hot=hot), None)

    def alerts(block: dict) -> list[Any]:
        seen = int(time.time() * 1000)
        rows, _ = logic.on_batch([PendingTx("mempool", i, seen, tx) for i, tx in enumerate(block["transactions"])])
        return [a for table, rs in rows if table == "alerts" for a in rs]

    assert alerts(live_chain[3]) == []
    path.write_text(RULES)
    os.utime(path, ns=(7, 7))
    now[0] = 1.0
    fired = alerts(live_chain[4])
    assert fired and {a.rule_id for a in fired} == {"any_outflow"} and {a.status for a in fired} == {"pending"}
