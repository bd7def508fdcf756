"""The ``rules`` subcommands through the real entry point (run_pipeline.main)."""

from pathlib import Path

from run_pipeline import main

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def test_rules_test_passes_over_the_default_pack(capsys):
    assert main(["rules", "test", str(ROOT / "rules")]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "rules without cases" not in out
    summary = out.strip().splitlines()[-1]
    passed, total = summary.split()[0].split("/")
    assert passed == total and int(total) >= 30


def test_rules_validate_default_pack_and_every_typology_is_covered(capsys):
    assert main(["rules", "validate", str(ROOT / "rules")]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
    from pipeline.rules import load_rules
    from pipeline.operators.structures import STRUCTURES
    from pipeline.rules.model import TYPOLOGY_TAGS

    rules = load_rules([ROOT / "rules"])
    tags = {t for r in rules for t in r.tags}
    assert {"large_transfer", "blacklist", "failed_burst"} <= tags
    # laundering shapes are the structural detectors' (operators/structures.py); rules do the rest
    assert set(TYPOLOGY_TAGS) <= tags | {t for _, _, shape_tags, _ in STRUCTURES.values() for t in shape_tags}
    for rule in rules:
        assert rule.description and {c.expect for c in rule.cases} >= {"hit", "no_hit"}, rule.id


def test_rules_validate_reports_each_problem_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n    title: X\n    description: D\n    tags: [cycle]\n"
                   "    severity: high\n    condition: cycle_cnt > 1\n")
    assert main(["rules", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:7: rule 'x': column 16: condition: unknown name 'cycle_cnt'; did you mean cycle_count?" in err


def test_rules_test_fails_with_exit_1_and_points_at_the_case(tmp_path, capsys):
    pack = tmp_path / "p.yaml"
    pack.write_text("rules:\n  - id: x\n    title: X\n    description: D\n    tags: [cycle]\n"
                    "    severity: high\n    condition: cycle_count > 1\n    tests:\n"
                    "      - {name: wrong, input: {cycle_count: 1}, expect: hit}\n"
                    "      - {name: right, input: {cycle_count: 2}, expect: hit}\n")
    assert main(["rules", "test", str(pack)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and f"{pack}:9" in out and "1/2 cases passed" in out


def test_rules_backtest_end_to_end_on_real_blocks(capsys):
    code = main(["rules", "backtest", "--input", str(SHARED / "tron" / "mainnet_block_61132092_hex.json"),
                 "--rules", str(ROOT / "rules"), "--lists", str(ROOT / "rules" / "lists")])
    assert code == 0
    out = capsys.readouterr().out
    updates = int(out.split()[0])
    assert updates > 500  # 281 transactions, two sides each
    assert "poisoning_zero_transfer_from" in out and "permission_takeover_outflow" in out


def test_rules_validate_checks_allow_lists_against_the_rules(tmp_path, capsys):
    from pipeline.rules.cases import SUBJECT

    allow = tmp_path / "allow"
    allow.mkdir()
    (allow / "x.csv").write_text(f"{SUBJECT},sanctioned_direkt;anomaly.*,,exchange hot wallet\n")
    assert main(["rules", "validate", str(ROOT / "rules"), "--allow", str(allow)]) == 1
    err = capsys.readouterr().err
    assert f"{allow / 'x.csv'}:1: unknown rule id 'sanctioned_direkt'; did you mean sanctioned_direct?" in err
    assert err.strip().endswith("1 problem(s) in allow lists")
    (allow / "x.csv").write_text(f"{SUBJECT},sanctioned_direct;anomaly.*,,exchange hot wallet\n")
    assert main(["rules", "validate", str(ROOT / "rules"), "--allow", str(allow)]) == 0
    assert "1 allow-list entries in 1 list(s)" in capsys.readouterr().out
    assert main(["rules", "validate", str(ROOT / "rules"), "--allow", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_rules_backtest_applies_allow_lists(tmp_path, capsys):
    """The busiest subject of the real block's alerts, allow-listed for its rule: its alerts move
    from the rule's count to the suppressed count, and nothing else changes."""
    from collections import Counter

    from pipeline.rules import load_ruleset
    from pipeline.rules.backtest import offline_updates

    block = str(SHARED / "tron" / "mainnet_block_61132092_hex.json")
    rules = tmp_path / "inflow.yaml"  # the default pack raises nothing on two ordinary blocks
    rules.write_text("rules:\n  - id: usdt_inflow\n    title: USDT in\n    description: Any USDT received.\n"
                     "    tags: [large_transfer]\n    severity: low\n"
                     "    when: {kinds: value, role: receiver}\n"
                     "    condition: symbol == 'USDT' and amount_usd > 0\n")
    ruleset = load_ruleset([rules])
    subjects = Counter()
    for batch in offline_updates(block, frozenset()):
        subjects.update((a.rule_id, a.address) for a in ruleset.evaluate(batch))
    (rule, subject), n = subjects.most_common(1)[0]
    allow = tmp_path / "allow"
    allow.mkdir()
    (allow / "known.csv").write_text(f"address,scope,reason\n{subject},{rule},test: known service\n")

    def run(directory: str) -> str:
        assert main(["rules", "backtest", "--input", block, "--rules", str(rules), "--lists", "",
                     "--allow", directory]) == 0
        return capsys.readouterr().out

    plain, allowed = run(""), run(str(allow))
    total = int(plain.split(", ")[1].split()[0])
    assert f", {total - n} alerts, {n} suppressed by allow lists" in allowed.splitlines()[0]
    table = [ln.split() for ln in allowed.splitlines() if ln.startswith(f"{rule}  ")]
    assert table[-1] == [rule, "known", str(n)]  # the suppressed table: rule, list, count
