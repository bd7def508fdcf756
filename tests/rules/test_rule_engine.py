"""RuleSet.evaluate: alerts contract, deterministic ids, cooldowns, bounded state, reload."""

import json
import time
from pathlib import Path

from pipeline.records import SEVERITIES, Alert
from pipeline.rules import RuleWatcher, alert_id, load_rules_text, load_ruleset, reload_ruleset
from pipeline.rules.cases import build_update
from pipeline.rules.engine import RuleSet
from pipeline.rules.names import Env

ROOT = Path(__file__).resolve().parents[2]
OFAC_FILE = ROOT.parent / "shared" / "data" / "lists" / "ofac_sdn_trx.txt"

PACK = """\
rules:
  - id: fan_in
    title: Fan-in
    description: Many senders.
    tags: [fan_in]
    severity: medium
    when: {kinds: value, role: receiver}
    condition: fan_in_10m >= 8
    cooldown: 10m
  - id: spoof
    title: Zero transferFrom
    description: Spoofed history.
    tags: [address_poisoning]
    severity: high
    when: {kinds: [trc20_transfer_from]}
    condition: amount_raw == 0 and caller != from_address
    subject: caller
  - id: ratio
    title: Ratio
    description: Divides by a feature.
    tags: [fan_out]
    severity: low
    when: {kinds: value, role: sender}
    condition: usd_out / fan_out_10m > 100
"""


def ruleset(text: str = PACK, env: Env | None = None) -> RuleSet:
    env = env or Env()
    return RuleSet(load_rules_text(text, "pack.yaml", env), env)


def fan_in(ts: int, address: str | None = None, tx: str = "t1", source: str = "block"):
    rules = load_rules_text(PACK, "pack.yaml")
    values = {"role": "receiver", "fan_in_10m": 9, "ts": ts, "tx_id": tx, "source": source}
    if address:
        values["address"] = address
    return build_update(rules[0], values)


def test_alert_follows_the_contract_and_ids_are_deterministic():
    u = fan_in(1_714_000_000_000)
    (a,) = ruleset().evaluate([u])
    assert isinstance(a, Alert)
    assert a.alert_id == alert_id("fan_in", u.address, "t1") and len(a.alert_id) == 32
    assert (a.ts, a.block_number, a.tx_id, a.address) == (u.transfer.ts, u.transfer.block_number, "t1", u.address)
    assert (a.rule_id, a.severity, a.risk_score, a.status, a.source) == ("fan_in", "medium", 50.0, "confirmed", "block")
    assert a.severity in SEVERITIES and a.tags == ("fan_in",) and a.title == "Fan-in"
    assert abs(a.detected_at - time.time() * 1000) < 60_000
    details = json.loads(a.details)
    assert details == {"role": "receiver", "transfer_id": u.transfer.id, "values": {"fan_in_10m": 9.0}}
    (again,) = ruleset().evaluate([u])  # a replay in a fresh process gives the same id and version
    assert (again.alert_id, again.rule_version) == (a.alert_id, a.rule_version)


def test_mempool_alerts_are_pending():
    (a,) = ruleset().evaluate([fan_in(1_714_000_000_000, source="mempool")])
    assert (a.status, a.source) == ("pending", "mempool")


def test_cooldown_suppresses_per_subject_in_event_time_and_expires():
    rs = ruleset()
    t0 = 1_714_000_000_000
    first = rs.evaluate([fan_in(t0, tx="a"), fan_in(t0 + 1_000, tx="b")])
    assert [a.tx_id for a in first] == ["a"] and rs.suppressed["fan_in"] == 1
    other = rs.evaluate([fan_in(t0 + 2_000, address="TUGstC2pEk5LzP9yg4wVJGABw8DFjmAbK7", tx="c")])
    assert len(other) == 1  # another subject has its own cooldown
    assert rs.evaluate([fan_in(t0 + 599_999, tx="d")]) == []
    assert [a.tx_id for a in rs.evaluate([fan_in(t0 + 600_000, tx="e")])] == ["e"]


def test_cooldown_state_is_swept_in_event_time():
    rs = ruleset()
    t0 = 1_714_000_000_000
    rs.evaluate([fan_in(t0, address=f"addr{i}", tx=f"t{i}") for i in range(100)])
    assert rs.cooldown_entries == 100
    rs.evaluate([fan_in(t0 + 600_001, address="late", tx="z")])  # one longest cooldown later
    assert rs.cooldown_entries == 1


def test_subject_caller_and_one_alert_per_transfer_for_both_sides():
    rules = load_rules_text(PACK, "pack.yaml")
    spoofer = "TUGstC2pEk5LzP9yg4wVJGABw8DFjmAbK7"
    sender = build_update(rules[1], {"kind": "trc20_transfer_from", "role": "sender", "amount_raw": 0, "caller": spoofer})
    receiver = sender._replace(role="receiver", address=sender.counterparty, counterparty=sender.address)
    alerts = ruleset().evaluate([sender, receiver])
    assert [(a.rule_id, a.address) for a in alerts] == [("spoof", spoofer)]


def test_a_failing_condition_is_counted_and_the_others_still_run():
    rules = load_rules_text(PACK, "pack.yaml")
    bad = build_update(rules[2], {"role": "sender", "usd_out": 500, "fan_out_10m": 0})
    good = build_update(rules[2], {"role": "sender", "usd_out": 500, "fan_out_10m": 2, "tx_id": "ok"})
    rs = ruleset()
    alerts = rs.evaluate([bad, good])
    assert [a.tx_id for a in alerts] == ["ok"] and rs.errors["ratio"] == 1


def test_prefilter_skips_rules_whose_kind_or_role_does_not_match():
    rs = ruleset()
    u = fan_in(1_714_000_000_000)
    assert rs.evaluate([u._replace(role="sender")]) == []
    assert rs.evaluate([u._replace(transfer=u.transfer._replace(kind="freeze"))]) == []


def test_disabled_rules_do_not_run():
    rs = ruleset(PACK.replace("    cooldown: 10m\n", "    cooldown: 10m\n    enabled: false\n"))
    assert rs.evaluate([fan_in(1_714_000_000_000)]) == [] and len(rs) == 2


def test_reload_keeps_old_rules_on_error_and_carries_cooldowns(tmp_path):
    path = tmp_path / "pack.yaml"
    path.write_text(PACK)
    rs = load_ruleset([path])
    t0 = 1_714_000_000_000
    assert len(rs.evaluate([fan_in(t0, tx="a")])) == 1
    path.write_text(PACK.replace("fan_in_10m >= 8", "fan_in_10m >= = 8"))
    kept, errors = reload_ruleset(rs, [path])
    assert kept is rs and len(errors) == 1 and errors[0].startswith(f"{path}:8: rule 'fan_in': column ")
    path.write_text(PACK.replace("fan_in_10m >= 8", "fan_in_10m >= 7"))
    new, errors = reload_ruleset(rs, [path])
    assert new is not rs and errors == [] and new.rule("fan_in").condition == "fan_in_10m >= 7"
    assert new.rule("fan_in").version != rs.rule("fan_in").version
    assert new.evaluate([fan_in(t0 + 1_000, tx="b")]) == []  # the cooldown survived the reload


def test_watcher_reloads_changed_files_and_reports_broken_ones(tmp_path):
    path = tmp_path / "pack.yaml"
    path.write_text(PACK)
    watcher = RuleWatcher(load_ruleset([path]), [path], interval_s=3600)
    assert watcher.poll() is False  # interval not elapsed: no stat at all
    path.write_text(PACK.replace("severity: medium", "severity: mediun"))
    assert watcher.poll(force=True) is False and "did you mean medium" in watcher.last_errors[0]
    assert watcher.ruleset.rule("fan_in").severity == "medium"
    path.write_text(PACK.replace("severity: medium", "severity: critical"))
    assert watcher.poll(force=True) is True and watcher.last_errors == []
    assert watcher.ruleset.rule("fan_in").severity == "critical"


def test_default_pack_on_real_mainnet_blocks_with_the_real_watchlists(mainnet_updates, tmp_path):
    from pipeline.watchlists import load_watchlists

    shipped = load_watchlists(ROOT / "rules" / "lists")  # the real OFAC list and its sidecar
    rs = load_ruleset([ROOT / "rules"], shipped)
    alerts = rs.evaluate(mainnet_updates)
    assert sum(rs.errors.values()) == 0
    assert len(alerts) < len(mainnet_updates) // 20  # real traffic is mostly quiet
    for a in alerts:
        assert a.rule_id in {r.id for r in rs.enabled} and json.loads(a.details)["values"]
    # Sanction one real counterparty in a list of our own: the direct-exposure rule must fire.
    target = next(u for u in mainnet_updates if u.transfer.kind == "trc20_transfer" and u.role == "receiver")
    (tmp_path / "test_sanctions.txt").write_text(OFAC_FILE.read_text() + target.counterparty + "\n")
    (tmp_path / "test_sanctions.yaml").write_text("label: test sanctions\nseverity: critical\n")
    (tmp_path / "scam.txt").write_text(target.address + "\n")
    rs.set_watchlists(load_watchlists(tmp_path))
    hits = {(a.rule_id, a.address) for a in rs.evaluate([target])}
    assert ("sanctioned_direct", target.address) in hits
    assert ("blacklist_interaction", target.address) not in hits  # its counterparty is sanctioned


def test_severity_points_match_the_downstream_risk_formula():
    from pipeline.anomaly.risk import SEVERITY_POINTS, risk_score
    from pipeline.rules import RISK_SCORES

    assert RISK_SCORES == SEVERITY_POINTS
    assert all(risk_score(s, None) == RISK_SCORES[s] for s in SEVERITIES)


def test_cooldown_state_survives_a_snapshot_and_resume():
    import pickle

    rs = ruleset()
    t0 = 1_714_000_000_000
    assert len(rs.evaluate([fan_in(t0, tx="a")])) == 1
    snapshot = pickle.dumps(rs.export_state())
    resumed = ruleset()
    resumed.import_state(pickle.loads(snapshot))
    assert resumed.evaluate([fan_in(t0 + 1_000, tx="b")]) == []
    assert len(resumed.evaluate([fan_in(t0 + 600_000, tx="c")])) == 1
