"""Allow lists (pipeline.allowlists): parsing, file:line errors, event-time expiry, scopes, and the
one suppression function as the rule engine, the scoring stage, the pending pool and the backtest
use it. Real files in a temporary directory; addresses are valid base58check."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import pytest

from pipeline.allowlists import (
    AllowlistLoader,
    load_allowlists,
    parse_expiry,
    parse_scope,
    suppress,
    suppressed_rows,
)
from pipeline.audit.facts import allowlist_loaded_records
from pipeline.errors import ConfigError
from pipeline.live.pending import pending_evaluator
from pipeline.operators.scoring import ScoringStage
from pipeline.records import Alert
from pipeline.rules.backtest import run_backtest
from pipeline.rules.cases import CASE_TS, COUNTERPARTY, SUBJECT, build_update
from pipeline.rules.compiler import compile_expression
from pipeline.rules.engine import RuleSet
from pipeline.rules.errors import ExpressionError
from pipeline.rules.loader import load_rules_text
from pipeline.rules.names import Env
from pipeline.tron.address import base58_to_hex, encode_raw
from tests.operators.test_scoring import _update

ROOT = Path(__file__).resolve().parents[1]
HOT, ROUTER, OTHER = (encode_raw(bytes([0x41]) + bytes([i]) * 20) for i in (7, 8, 9))
DAY_MS = 86_400_000
KNOWN = {"fan_in_burst", "large_transfer", "large_inflow", "mule_pass_through"}

PACK = """\
rules:
  - id: large_inflow
    title: Large inflow
    description: A large amount arrives.
    tags: [large_transfer]
    severity: medium
    when: {kinds: value, role: receiver}
    condition: amount_usd >= 1000
    cooldown: 1h
  - id: fan_in_burst
    title: Fan-in
    description: Many senders.
    tags: [fan_in]
    severity: high
    when: {kinds: value, role: receiver}
    condition: fan_in_10m >= 8
    cooldown: 1h
"""


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def _alert(rule_id: str, address: str, ts: int, block: int = 1) -> Alert:
    return Alert(f"{rule_id}{address}{ts}", ts, 0, block, f"tx{ts}", address, rule_id, "v", "high", 0.0,
                 "confirmed", "block", "t", (), "{}")


# -- parsing ---------------------------------------------------------------------------------------


def test_good_csv_and_txt_lines_load_with_sidecar_defaults(tmp_path):
    _write(tmp_path, "services.csv",
           "# known services\n"
           "category,address,scope,reason,expires\n"  # a header puts the columns in any order
           f"exchange,{HOT},*,Exchange hot wallet (OPS-1),\n"
           f"router,{base58_to_hex(ROUTER)},\"large_inflow,fan_in_burst\",DEX router,2024-04-30\n"
           f"processor,{OTHER},anomaly.*;fan_*,Processor pulls,2024-04-30T12:00:00+02:00\n"
           f"exchange,{HOT},*,Exchange hot wallet (OPS-1),\n")  # the same line twice is one entry
    _write(tmp_path, "hot.txt", f"# from the exchange's disclosure\n{HOT}  # comment\n")
    _write(tmp_path, "hot.yaml", "scope: [large_inflow]\nreason: Disclosed hot wallets\ncategory: Exchange\n"
                                 "expires: 2024-05-01\nsource: disclosure\n")
    allow = load_allowlists(tmp_path, known_rules=KNOWN)
    assert sorted(allow.lists) == ["hot", "services"] and allow.size == 4 and len(allow) == 3
    assert allow.lists["hot"].meta == {"source": "disclosure"} and allow.lists["services"].entries == 3
    hot_entries = {e.list_name: e for e in allow.entries_of(HOT)}
    assert hot_entries["services"].scope == ("*",) and hot_entries["services"].expires_ms is None
    assert hot_entries["hot"].scope == ("large_inflow",) and hot_entries["hot"].category == "exchange"
    assert hot_entries["hot"].where == f"{tmp_path / 'hot.txt'}:2"
    (router,) = allow.entries_of(ROUTER)  # the hex form is read as base58
    assert router.scope == ("large_inflow", "fan_in_burst") and router.reason == "DEX router"
    assert router.expires_ms == parse_expiry("2024-05-01T00:00:00Z")  # a date holds through that day
    (other,) = allow.entries_of(OTHER)
    assert other.scope == ("anomaly.*", "fan_*") and other.expires_ms == parse_expiry("2024-04-30T10:00:00Z")


def test_shipped_directory_is_empty_but_valid_and_its_readme_is_not_a_list():
    allow = load_allowlists(ROOT / "rules" / "allow", known_rules=KNOWN)
    assert list(allow.lists) == ["services"] and allow.size == 0 and allow.problems == ()


def test_every_bad_line_is_reported_with_file_and_line(tmp_path):
    bad = _write(tmp_path, "bad.csv",
                 f"{HOT},*,,fine\n"
                 f"{HOT[:-1]}X,*,,checksum\n"
                 f"{ROUTER},large_inflw,,typo in a rule id\n"
                 f"{ROUTER},nothing_*,,a prefix of no rule\n"
                 f"{ROUTER},*,next tuesday,bad expiry\n"
                 f"{ROUTER},*,,\n"
                 f"{ROUTER},,,no scope\n"
                 f"{ROUTER},*;large_inflow,,star and more\n"
                 f"{ROUTER},*,,reason,two words\n"
                 f"{ROUTER},large_inflow,fan_in_burst,,unquoted commas,exchange\n")
    txt = _write(tmp_path, "noreason.txt", f"{OTHER}\n")
    with pytest.raises(ConfigError) as err:
        load_allowlists(tmp_path, known_rules=KNOWN)
    msg = str(err.value)
    assert msg.startswith("10 problem(s) in allow lists: ")
    for line, reason in [(2, "invalid address"),
                         (3, "unknown rule id 'large_inflw'; did you mean large_inflow?"),
                         (4, "scope 'nothing_*' matches no rule"),
                         (5, "expiry 'next tuesday' is not an ISO date"),
                         (6, "missing reason"), (7, "missing scope"),
                         (8, "scope '*;large_inflow': '*' already covers every rule"),
                         (9, "category 'two words' must be one word"), (10, "6 fields, at most 5")]:
        assert f"{bad}:{line}: {reason}" in msg, reason
    assert f"{txt}:1: missing reason" in msg and "checksum" in msg
    lenient = load_allowlists(tmp_path, strict=False, known_rules=KNOWN)
    assert len(lenient.problems) == 10 and lenient.size == 1 and HOT in lenient
    # without a rule set to check against, ids are not judged (rules validate does judge them)
    assert len(load_allowlists(tmp_path, strict=False).problems) == 8


def test_a_bad_header_and_a_bad_sidecar_are_reported(tmp_path):
    _write(tmp_path, "a.csv", "address,scope,reasons\n")
    _write(tmp_path, "b.txt", f"{HOT}\n")
    _write(tmp_path, "b.yaml", "reason: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_allowlists(tmp_path)
    assert f"{tmp_path / 'a.csv'}:1: header address, scope, reasons" in str(err.value)
    assert f"{tmp_path / 'b.yaml'}:" in str(err.value) and "invalid YAML" in str(err.value)
    with pytest.raises(ConfigError, match="allow-list directory does not exist"):
        load_allowlists(tmp_path / "missing")


def test_scope_and_expiry_parsers():
    assert parse_scope(" large_inflow ; fan_* , large_inflow") == ("large_inflow", "fan_*")
    assert parse_scope("anomaly.iforest", KNOWN) == ("anomaly.iforest",)  # models are not checked
    assert parse_expiry("") is None and parse_expiry("never") is None and parse_expiry(None) is None
    assert parse_expiry("2024-04-25") == parse_expiry("2024-04-26T00:00:00") == parse_expiry("20240425")
    assert parse_expiry("2024-04-25T02:00:00+02:00") == parse_expiry("2024-04-25T00:00:00Z")
    assert parse_expiry("2024-04-25T00:00:00Z") == 1_714_003_200_000
    with pytest.raises(ValueError, match="not an ISO date"):
        parse_expiry("31/12/2024")


# -- effect: expiry in event time, scopes ----------------------------------------------------------


def test_expiry_compares_with_event_time_and_is_logged_once(tmp_path, caplog):
    _write(tmp_path, "x.csv", f"{HOT},*,2024-04-25,hot wallet\n")
    allow = load_allowlists(tmp_path)
    end = parse_expiry("2024-04-25")
    before, after = _alert("large_inflow", HOT, end - 1), _alert("large_inflow", HOT, end)
    with caplog.at_level(logging.INFO, logger="pipeline.allowlists"):
        kept, dropped = suppress([before, after, after._replace(alert_id="again", ts=end + DAY_MS)], allow)
    assert [s.alert for s in dropped] == [before] and [a.ts for a in kept] == [end, end + DAY_MS]
    expired = [r for r in caplog.records if "expired" in r.getMessage()]
    assert len(expired) == 1 and "2024-04-26T00:00:00Z" in expired[0].getMessage()


def test_global_per_rule_and_prefix_scopes(tmp_path):
    _write(tmp_path, "x.csv", f"{HOT},*,,every rule\n{ROUTER},large_inflow,,one rule\n"
                              f"{OTHER},anomaly.*;fan_*,,models and a family\n")
    allow = load_allowlists(tmp_path)
    t = CASE_TS
    cases = {("large_inflow", HOT): "x", ("anomaly.iforest", HOT): "x",
             ("large_inflow", ROUTER): "x", ("fan_in_burst", ROUTER): None,
             ("anomaly.ecod", OTHER): "x", ("fan_in_burst", OTHER): "x", ("large_inflow", OTHER): None,
             ("large_inflow", SUBJECT): None}
    for (rule, address), expect in cases.items():
        entry = allow.match(rule, address, t)
        assert (entry.list_name if entry else None) == expect, (rule, address)
    kept, dropped = suppress([_alert(r, a, t) for r, a in cases], allow)
    assert len(dropped) == 5 and len(kept) == 3
    row = suppressed_rows(dropped[:1])[0]
    assert row[5:7] == (HOT, "large_inflow") and row[10:] == ("x", "", "every rule", None)
    assert suppress([], None) == ([], []) and suppress([_alert("r", HOT, t)], None)[1] == []


# -- where alerts are finished: before every cooldown ----------------------------------------------


def test_rule_engine_a_suppressed_alert_holds_no_cooldown(tmp_path):
    """Entry until t0+10 min; rule cooldown 1 h. The alert at t0+15 min is raised only because the
    suppressed ones at t0 and t0+5 min did not start the cooldown."""
    _write(tmp_path, "x.csv", f"{SUBJECT},large_inflow,{_iso(CASE_TS + 600_000)},under review\n")
    allow = load_allowlists(tmp_path, known_rules=KNOWN)

    def run(allow_set):
        env = Env(allow=allow_set)
        rs = RuleSet(load_rules_text(PACK, "pack.yaml", env), env)
        rule = rs.rule("large_inflow")
        out = []
        for minute in (0, 5, 15, 20):
            at = CASE_TS + minute * 60_000
            u = build_update(rule, {"amount_usd": 5000, "ts": at, "tx_id": f"t{minute}"})
            out += suppress(rs.evaluate([u]), rs.env.allow)[0]
        return [(a.ts - CASE_TS) // 60_000 for a in out]

    assert run(None) == [0]  # without the list: one alert, the rest inside its cooldown
    assert run(allow) == [15]  # t20 is inside the cooldown t15 started


def test_scoring_suppresses_rule_and_anomaly_alerts_before_the_anomaly_cooldown(tmp_path):
    from tests.operators.test_scoring import Scorer

    expires = 10 * 3000  # the updates' event times are block * 3000 ms
    _write(tmp_path, "x.csv", f"{HOT},anomaly.*;large_inflow,{_iso(expires)},exchange\n")
    stage = ScoringStage(Scorer(), min_rows=1, cooldown_ms=3_600_000)
    stage.allow = load_allowlists(tmp_path)
    for seq, b in enumerate((5, 12, 14)):  # anomalous (score 99) in every block; expired from block 10 on
        stage.expect(b, 1, seq=seq)
        stage.add(b, [_update(b, HOT, value=99.0)], [_alert("large_inflow", HOT, b * 3000, b)])
    out = stage.take(force=True)
    kept, suppressed = out.alerts, out.suppressed
    assert [(s.alert.rule_id, s.alert.block_number) for s in suppressed] == [
        ("large_inflow", 5), ("anomaly.t", 5)]
    # block 12's anomaly alert is raised: the suppressed one of block 5 did not start the cooldown;
    # block 14's is inside the cooldown block 12 started
    assert sorted((a.rule_id, a.block_number) for a in kept) == [
        ("anomaly.t", 12), ("large_inflow", 12), ("large_inflow", 14)]
    assert stage.suppressed == Counter({("large_inflow", "x"): 1, ("anomaly.t", "x"): 1})
    assert "allow" not in stage.__getstate__()  # lists come from their files, not from snapshots


def test_pending_alerts_of_an_allowlisted_subject_are_suppressed(tmp_path):
    _write(tmp_path, "x.csv", f"{SUBJECT},*,,exchange\n")
    env = Env(allow=load_allowlists(tmp_path))
    rs = RuleSet(load_rules_text(PACK, "pack.yaml", env), env)
    evaluate, ids = pending_evaluator(rs)
    assert ids == ["large_inflow"]  # fan_in_burst needs a feature
    rule = rs.rule("large_inflow")
    mine = build_update(rule, {"amount_usd": 5000, "source": "mempool"}).transfer
    theirs = build_update(rule, {"amount_usd": 5000, "source": "mempool", "address": HOT}).transfer
    assert [a.address for a in evaluate([mine, theirs])] == [HOT]


def test_backtest_counts_what_the_lists_suppressed(tmp_path):
    _write(tmp_path, "x.csv", f"{SUBJECT},large_inflow,,exchange\n")
    env = Env(allow=load_allowlists(tmp_path))
    rs = RuleSet(load_rules_text(PACK, "pack.yaml", env), env)
    rule = rs.rule("large_inflow")
    batch = [build_update(rule, {"amount_usd": 5000, "address": a, "fan_in_10m": 9}) for a in (SUBJECT, HOT)]
    report = run_backtest(rs, [batch])
    assert report.alerts == Counter({"large_inflow": 1, "fan_in_burst": 2})
    assert report.suppressed == Counter({("large_inflow", "x"): 1})
    rows = {r["rule"]: r for r in report.rule_rows(rs, None)}
    assert rows["large_inflow"]["suppressed"] == 1 and rows["fan_in_burst"]["suppressed"] == 0


# -- rule functions --------------------------------------------------------------------------------


def test_allowlisted_functions_read_the_entry_in_force_at_the_transfers_time(tmp_path):
    _write(tmp_path, "x.csv", f"{COUNTERPARTY},fan_in_burst,{_iso(CASE_TS + 1)},hot wallet,exchange\n"
                              f"{SUBJECT},*,,router,router\n")
    env = Env(allow=load_allowlists(tmp_path))
    rule = load_rules_text(PACK, "pack.yaml", env)[0]

    def fires(expr: str, **values) -> bool:
        return bool(compile_expression(expr, env).fn(build_update(rule, {"ts": CASE_TS} | values)))

    assert fires("allowlisted(counterparty)")  # whatever the entry's scope: a known service
    assert fires("allowlisted_as(counterparty, 'exchange') and allowlisted_as(address, 'Router')")
    assert not fires("allowlisted_as(counterparty, 'router')")
    assert not fires("allowlisted(counterparty)", ts=CASE_TS + 1)  # expired at that event time
    assert not fires("allowlisted(to_address)", address=HOT)
    assert fires("not allowlisted(counterparty)", ts=CASE_TS + DAY_MS)
    assert not compile_expression("allowlisted(counterparty)", Env()).fn(build_update(rule, {}))
    for expr, message in [("allowlisted(1)", "argument 1 of allowlisted() must be str"),
                          ("allowlisted_as(counterparty)", "allowlisted_as() takes 2 arguments"),
                          ("allowlist(counterparty)", "did you mean allowlisted")]:
        with pytest.raises(ExpressionError, match=re.escape(message)):
            compile_expression(expr, env)


# -- reload and audit ------------------------------------------------------------------------------


def test_loader_reloads_an_edit_keeps_the_last_good_lists_and_checks_rules_in_force(tmp_path):
    import os

    path = _write(tmp_path, "x.csv", f"{HOT},large_inflow,,hot wallet\n")
    known = set(KNOWN)
    loader = AllowlistLoader(tmp_path, known_rules=lambda: known)
    first = loader.current()
    path.write_text(f"{HOT},new_rule,,hot wallet\n")
    os.utime(path, ns=(5, 5))
    assert loader.maybe_reload() is False and loader.current() is first  # new_rule does not exist
    assert f"{path}:1: unknown rule id 'new_rule'" in loader.last_error
    known.add("new_rule")  # ... until a rule reload brings it
    path.write_text(f"{HOT},new_rule,,hot wallet \n")
    os.utime(path, ns=(6, 6))
    assert loader.maybe_reload() is True and loader.current().entries_of(HOT)[0].scope == ("new_rule",)
    assert loader.last_error is None


def test_each_list_version_is_an_audit_record_with_a_content_digest(tmp_path):
    path = _write(tmp_path, "x.csv", f"{HOT},*,,hot wallet\n")
    (before,) = allowlist_loaded_records(load_allowlists(tmp_path))
    path.write_text(f"{HOT},*,,hot wallet: reviewed again\n")
    (after,) = allowlist_loaded_records(load_allowlists(tmp_path))
    assert before.kind == after.kind == "allowlist_loaded" and before.subject == "x"
    assert before.record_id != after.record_id and '"entries":1' in after.payload


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def test_the_scoring_step_stores_and_tickets_only_what_is_not_suppressed(tmp_path):
    """The Bytewax shell around the scoring stage: the outbox is built from the kept alerts only,
    and the suppressed ones go to their own table."""
    from pipeline.analytics import AnalyticsSpec, _ScoringLogic
    from pipeline.hot_reload import HotReload
    from pipeline.tickets import load_routing_text
    from tests.tickets.conftest import ENV, routing_yaml

    _write(tmp_path, "x.csv", f"{HOT},*,,exchange hot wallet\n")
    routes = routing_yaml("http://127.0.0.1:9").split("routes:")[0] + "routes:\n  - {destinations: [hook]}\n"
    hot = HotReload(None, [], None, allow=AllowlistLoader(tmp_path))
    logic = _ScoringLogic(AnalyticsSpec(routing=load_routing_text(routes, "routing.yaml", ENV), hot=hot,
                                        min_score_rows=1, budget=None), None)
    alerts = [_alert("large_inflow", a, 3000) for a in (HOT, ROUTER)]
    updates = [_update(1, HOT), _update(1, ROUTER)]
    out, _ = logic.on_batch([("expect", 1, 2, 0), ("updates", 1, updates, alerts)])
    tables = dict(out)
    assert [a.address for a in tables["alerts"]] == [ROUTER]
    assert {row[4] for row in tables["ticket_outbox"]} == {alerts[1].alert_id}  # alert_id column
    assert [row[5] for row in tables["suppressed_alerts"]] == [HOT]
