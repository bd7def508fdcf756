"""Malformed rule files are rejected with file:line, the rule id and what is wrong."""

import pytest

from pipeline.rules.loader import RuleSetError, load_rules, load_rules_text

GOOD = """\
rules:
  - id: big_usdt
    title: Big USDT
    description: A large USDT transfer.
    tags: [large_transfer]
    severity: high
    when: {kinds: [trc20_transfer], role: sender}
    condition: amount_usd >= 1_000_000
    cooldown: 10m
    tests:
      - {name: big, input: {amount_usd: 2000000}, expect: hit}
"""


def rule_file(condition: str = "amount_usd >= 1", **extra: str) -> str:
    lines = ["rules:", "  - id: r1", "    title: T", "    description: D", "    tags: [large_transfer]",
             "    severity: high", f"    condition: {condition}"]
    lines += [f"    {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def errors_of(text: str) -> list[str]:
    with pytest.raises(RuleSetError) as info:
        load_rules_text(text, "pack.yaml")
    return info.value.errors


def test_good_rule_loads_with_defaults_and_a_content_version():
    (rule,) = load_rules_text(GOOD, "pack.yaml")
    assert (rule.id, rule.severity, rule.cooldown_s, rule.subject, rule.actions) == (
        "big_usdt", "high", 600, "self", ("alert",))
    assert rule.kinds == ("trc20_transfer",) and rule.roles == ("sender",)
    assert rule.risk_score == 75.0 and rule.where == "pack.yaml:2"
    (same,) = load_rules_text("# a comment moves lines but not content\n" + GOOD, "other.yaml")
    assert same.version == rule.version and len(rule.version) == 16
    (changed,) = load_rules_text(GOOD.replace("1_000_000", "2_000_000"), "pack.yaml")
    assert changed.version != rule.version
    (tests_changed,) = load_rules_text(GOOD.replace("2000000", "3000000"), "pack.yaml")
    assert tests_changed.version == rule.version  # cases do not change what the rule does


def test_bad_yaml_names_file_and_line():
    (err,) = errors_of("rules:\n  - id: x\n    title: [unclosed\n")
    assert err.startswith("pack.yaml:") and "invalid YAML" in err


def test_duplicate_yaml_key_is_an_error_not_last_wins():
    (err,) = errors_of(rule_file() + "    severity: low\n")
    assert err.startswith("pack.yaml:8:") and "duplicate key 'severity'" in err


def test_unknown_rule_key_suggests_the_closest():
    (err,) = errors_of(rule_file(condtion="x"))
    assert err.startswith("pack.yaml:8: rule 'r1': unknown key 'condtion'; did you mean condition")


def test_unknown_field_in_condition_has_line_column_and_suggestion():
    (err,) = errors_of(rule_file("amount_usd > 1 and fan_in_1m > 3"))
    assert err == ("pack.yaml:7: rule 'r1': column 35: condition: unknown name 'fan_in_1m'; "
                   "did you mean fan_in_10m, fan_out_10m?")


def test_error_inside_a_multiline_block_condition_points_at_its_line():
    text = rule_file("|\n      amount_usd > 1\n        and age > 3")
    (err,) = errors_of(text)
    assert err.startswith("pack.yaml:9: rule 'r1': column 13: condition: unknown name 'age'")
    assert "did you mean age_s" in err


@pytest.mark.parametrize("condition,message", [
    ("\"amount_usd > 'big'\"", "cannot compare num > str"),
    ("transfer.amount > 1", "attribute access is not allowed"),
    ("\"__import__('os').system('x')\"", "dunder names are not allowed"),
    ("\"lambda: true\"", "'lambda' is not allowed"),
    ("address[0] == 'T'", "subscripts are not allowed"),
    ("amount_usd", "must be a bool expression"),
])
def test_type_errors_and_forbidden_constructs_are_rejected_at_load(condition, message):
    (err,) = errors_of(rule_file(condition))
    assert err.startswith("pack.yaml:7: rule 'r1': column ") and message in err


@pytest.mark.parametrize("extra,message", [
    ({"severity": "urgent"}, "'severity': unknown value 'urgent'"),
    ({"subject": "spender"}, "'subject': unknown value 'spender'"),
    ({"actions": "[alert, tiket]"}, "did you mean ticket?"),
    ({"cooldown": "soon"}, "'cooldown' must be seconds"),
    ({"when": "{kinds: [trc20_transfr]}"}, "unknown kind 'trc20_transfr'; did you mean trc20_transfer"),
    ({"when": "{role: spender}"}, "unknown role 'spender'"),
    ({"when": "{kind: value}"}, "unknown key 'kind'; did you mean kinds?"),
    ({"enabled": "maybe"}, "'enabled' must be true or false"),
    ({"risk_score": "150"}, "within 0-100"),
    ({"tests": "[{input: {amount_usdt: 3}, expect: hit}]"}, "unknown input 'amount_usdt'; did you mean amount_usd"),
    ({"tests": "[{input: {amount_usd: big}, expect: hit}]"}, "input 'amount_usd' must be num"),
    ({"tests": "[{input: {}, expect: fire}]"}, "'expect': unknown value 'fire'"),
])
def test_bad_settings_name_the_key_and_the_rule(extra, message):
    (err,) = errors_of(rule_file(**extra).replace("    severity: high\n", "", 1 if "severity" in extra else 0))
    assert "rule 'r1'" in err and message in err, err


def test_missing_required_key_and_misspelt_tag():
    (err,) = errors_of(rule_file().replace("    title: T\n", ""))
    assert err == "pack.yaml:2: rule 'r1': missing required key 'title'"
    (err,) = errors_of(rule_file().replace("large_transfer", "fan_inn"))
    assert "unknown tag 'fan_inn'; did you mean fan_in" in err


def test_all_problems_are_collected_and_duplicate_ids_across_files_reported(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    broken = ["  - id: broken", "    title: B", "    description: D", "    tags: [cycle]",
              "    severity: low", "    condition: cycle_count >"]
    (tmp_path / "b.yaml").write_text(GOOD + "\n".join(broken) + "\n")
    with pytest.raises(RuleSetError) as info:
        load_rules([tmp_path])
    errors = info.value.errors
    assert len(errors) == 2
    assert errors[0].startswith(f"{tmp_path / 'b.yaml'}:17: rule 'broken': column ")
    assert "unexpected end of expression" in errors[0]
    assert errors[1] == (f"{tmp_path / 'b.yaml'}:2: rule 'big_usdt': duplicate id "
                         f"(first defined at {tmp_path / 'a.yaml'}:2)")
    assert str(info.value).endswith("(and 1 more)")


def test_file_shape_errors(tmp_path):
    assert "a mapping with a 'rules:' list" in errors_of("- id: x\n")[0]
    assert "unknown top-level key 'rule'" in errors_of("rules: []\nrule: []\n")[0]
    with pytest.raises(RuleSetError, match="no such rule file"):
        load_rules([tmp_path / "missing.yaml"])
