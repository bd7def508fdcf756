"""The alert budget and per-subject correlation (pure: no Bytewax)."""

from __future__ import annotations

import pickle

import orjson

from pipeline.operators.alert_budget import AlertGovernor, BudgetConfig, combine
from pipeline.records import Alert

T0 = 1_714_000_000_000


def alert(n: int, address: str, risk: float, severity: str = "high", at_s: int = 0, rule: str = "r",
          tags: tuple[str, ...] = ("fan_in",)) -> Alert:
    return Alert(f"id{n}", T0 + at_s * 1000, 0, 1, f"tx{n}", address, rule, "v1", severity, risk,
                 "confirmed", "block", f"title {n}", tags, orjson.dumps({"n": n}).decode())


def test_noisy_or_combines_independent_evidence():
    assert combine([60.0, 60.0]) == 84.0
    assert combine([0.0]) == 0.0 and combine([100.0, 10.0]) == 100.0
    assert combine([50.0, 50.0, 50.0]) > combine([50.0, 50.0]) > 50.0


def test_when_the_bucket_runs_low_only_strong_alerts_pass_and_the_held_are_counted():
    gov = AlertGovernor(BudgetConfig(per_1k=2.0, burst_tx=10_000, window_ms=0))  # a bucket of 20
    batch = [alert(i, f"Ta{i}", risk) for i, risk in enumerate([30.0, 95.0, 50.0, 92.0])]
    out = gov.admit(batch, tx_count=1500)  # 1,500 tx earn 3 rows
    assert sorted(a.risk_score for a in out) == [92.0, 95.0]  # the weak wait for a fuller bucket
    assert sum(gov.held.values()) == 2
    assert gov.admit([alert(9, "Tz", 99.0)], tx_count=0) == [alert(9, "Tz", 99.0)]
    assert gov.admit([alert(8, "Ty", 99.0)], tx_count=0) == []  # nothing left until more tx arrive
    gov.admit([], tx_count=10_000)  # a quiet stretch fills the bucket: now a weak alert passes too
    assert len(gov.admit([alert(10, "Tx", 30.0)], tx_count=0)) == 1


def test_critical_alerts_are_never_held_back_but_spend_the_budget():
    gov = AlertGovernor(BudgetConfig(per_1k=1.0, window_ms=0))
    out = gov.admit([alert(1, "Ts", 95.0, "critical"), alert(2, "Tt", 60.0)], tx_count=0)
    assert [a.alert_id for a in out] == ["id1"]
    assert gov.tokens < 0  # the next ordinary alert waits for the budget to refill
    assert gov.admit([alert(3, "Tu", 60.0)], tx_count=500) == []


def test_the_bucket_is_capped_so_a_quiet_stretch_does_not_buy_a_flood():
    gov = AlertGovernor(BudgetConfig(per_1k=2.0, burst_tx=10_000, window_ms=0))
    gov.admit([], tx_count=10_000_000)
    assert gov.tokens == 20.0
    assert len(gov.admit([alert(i, f"Tq{i}", 95.0) for i in range(100)], tx_count=0)) == 20


def test_alerts_about_one_subject_within_the_window_are_one_row():
    gov = AlertGovernor(BudgetConfig(per_1k=0.0, window_ms=3_600_000))
    (first,) = gov.admit([alert(1, "Tsubj", 60.0, rule="a", tags=("fan_in",))], 1000)
    (merged,) = gov.admit([alert(2, "Tsubj", 60.0, "critical", at_s=600, rule="b", tags=("cycle",))], 1000)
    assert merged.alert_id == first.alert_id and merged.rule_id == "a"
    assert merged.risk_score == 84.0 and merged.severity == "critical"
    assert merged.tags == ("fan_in", "cycle")
    assert orjson.loads(merged.details)["correlated"][0]["rule_id"] == "b"
    # after the window the subject opens a new alert
    (later,) = gov.admit([alert(3, "Tsubj", 40.0, at_s=3700)], 1000)
    assert later.alert_id == "id3"
    assert gov.merged == 1


def test_a_grown_structure_replaces_its_row_and_keeps_what_was_folded_in():
    gov = AlertGovernor(BudgetConfig(per_1k=0.0))
    gov.admit([alert(1, "Tsubj", 60.0)], 100)
    gov.admit([alert(2, "Tsubj", 50.0, at_s=10, rule="other")], 100)
    grown = alert(1, "Tsubj", 75.0, at_s=20)._replace(details=orjson.dumps({"members": ["Ta", "Tb"]}).decode())
    (out,) = gov.admit([grown], 100)
    details = orjson.loads(out.details)
    assert out.alert_id == "id1" and details["members"] == ["Ta", "Tb"]
    assert details["correlated"][0]["rule_id"] == "other"
    assert out.risk_score >= 75.0


def test_state_is_bounded_and_picklable():
    gov = AlertGovernor(BudgetConfig(per_1k=0.0, window_ms=60_000))
    for k in range(200):
        gov.admit([alert(k, f"Taddr{k}", 50.0, at_s=60 * k)], 100)
    assert len(gov.open) <= 2
    clone = pickle.loads(pickle.dumps(gov))
    nxt = [alert(999, "Taddr199", 50.0, at_s=60 * 199 + 5)]
    assert clone.admit(nxt, 10) == gov.admit(nxt, 10)


def test_correlated_alerts_pool_the_members_they_name():
    gov = AlertGovernor(BudgetConfig(per_1k=0.0))
    a = alert(1, "Tsubj", 60.0)._replace(details=orjson.dumps({"members": ["Ta"], "member_roles": ["source"]}).decode())
    b = alert(2, "Tsubj", 50.0, at_s=30)._replace(
        details=orjson.dumps({"members": ["Ta", "Tb", "Tsubj"], "member_roles": ["x", "receiver", "y"]}).decode())
    gov.admit([a], 10)
    (merged,) = gov.admit([b], 10)
    d = orjson.loads(merged.details)
    assert d["members"] == ["Ta", "Tb"] and d["member_roles"] == ["source", "receiver"]
