"""pipeline.yamlsafe: hostile rule and routing YAML fails fast, small and as one ``file:line`` line.

Finding 5 of issue 21: a 506-byte rule file of nested YAML aliases (a "billion laughs") took 35 s
and 1.6 GB to load, because the expanded value was quoted whole into an error message; hot reload
would have done the same inside the running pipeline.
"""

from __future__ import annotations

import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from pipeline.allowlists import load_allowlists
from pipeline.errors import ConfigError
from pipeline.hot_reload import HotReload
from pipeline.rules.engine import load_ruleset
from pipeline.rules.loader import RuleSetError, load_rules, load_rules_text
from pipeline.rules.reload import RuleWatcher
from pipeline.watchlists import load_watchlists
from pipeline.yamlsafe import MAX_DEPTH, MarkedMap, YamlError, excerpt, load_yaml, load_yaml_file, plain

GOOD_RULE = textwrap.dedent("""\
    rules:
      - id: big
        title: Big transfer
        description: A transfer of at least a million USD.
        tags: [large_transfer]
        severity: high
        condition: amount_usd >= 1000000
    """)


def billion_laughs(levels: int = 9) -> str:
    """The attack as reported: each level a list of nine aliases of the level below, quoted into the
    error for ``severity`` (which must be a string). 9 levels = 9**9 = 387 million strings."""
    names = "abcdefghijk"
    lines = [f"      &{names[0]} [l,l,l,l,l,l,l,l,l],"]
    for i in range(1, levels - 1):
        lines.append(f"      &{names[i]} [{','.join(['*' + names[i - 1]] * 9)}],")
    return ("rules:\n  - id: x\n    title: t\n    description: d\n    tags: [fan_in]\n"
            "    condition: \"true\"\n    when:\n      kinds: [\n" + "\n".join(lines) + "]\n"
            f"    severity: [{','.join(['*' + names[levels - 2]] * 9)}]\n")


def test_the_reported_billion_laughs_rule_file_fails_at_once_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "lol.yaml"
    path.write_text(billion_laughs())
    assert len(path.read_bytes()) < 600  # the size of the file in the report
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(RuleSetError) as err:
            load_rules([path])
        cpu = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.errors == [f"{path}:9: invalid YAML: anchors (&a) are not allowed"]
    assert cpu < 1.0 and peak < 5_000_000, (cpu, peak)  # before: 35 s and 1.6 GB


def test_a_broken_hot_reload_keeps_the_rules_in_force_and_reports_one_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD_RULE)
    ruleset = load_ruleset([path])
    hot = HotReload(ruleset, [path], None, interval_s=0.0)
    path.write_text(billion_laughs())
    hot.poll()
    assert hot.ruleset is ruleset and hot.reloads == 0
    assert hot.last_errors == [f"{path}:9: invalid YAML: anchors (&a) are not allowed"]
    path.write_text(GOOD_RULE.replace("1000000", "2000000"))
    hot.poll()
    assert hot.ruleset is not ruleset and hot.last_errors == [] and hot.reloads == 1


def test_a_rule_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD_RULE + "#" * 2000 + "\n")
    with pytest.raises(RuleSetError) as err:
        load_rules([path], max_bytes=1000)
    assert err.value.errors == [f"{path}:1: larger than 1,000 bytes (setting analytics.max_yaml_bytes)"]
    watcher = RuleWatcher(load_ruleset([tmp_path / "rules.yaml"]), [path], interval_s=0.0, max_bytes=1000)
    kept = watcher.ruleset
    assert watcher.poll(force=True) is False and watcher.ruleset is kept
    assert "larger than 1,000 bytes" in watcher.last_errors[0]
    assert len(load_rules([path])) == 1  # the default limit (1 MiB) takes it


@pytest.mark.parametrize("text,line,reason", [
    ("a: &x 1\nb: *x\n", 1, "anchors (&x) are not allowed"),
    ("a: *nowhere\n", 1, "aliases (*nowhere) are not allowed"),
    ("a: 1\nb: !!python/object/apply:os.system [id]\n", 2, "tag 'tag:yaml.org,2002:python/object/apply"),
    ("a: !!binary aGVsbG8=\n", 1, "tag 'tag:yaml.org,2002:binary' is not allowed"),
    ("a: !custom x\n", 1, "tag '!custom' is not allowed"),
    ("a:\n  b: 1\n  b: 2\n", 3, "duplicate key 'b'"),
    ("a: 1\nb: " + "9" * 5000 + "\n", 2, "cannot read value: Exceeds the limit"),
    ("when: 2024-02-30\n", 1, "cannot read value: day is out of range for month"),
    ("a: 1\n" + "b: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n", 2,
     f"nested deeper than {MAX_DEPTH} levels"),
    ("a: 1\nb: \x07\n", 2, "unacceptable character #x0007"),
    ("a: b: c\n", 1, "mapping values are not allowed"),
    ("a: 1\n---\nb: 2\n", 2, "expected a single document"),
    ("? [a, b]\n: 1\n", 1, "mapping keys must be plain scalars"),
])
def test_refusals_name_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(YamlError) as err:
        load_yaml(text, "f.yaml")
    assert err.value.line == line and reason in err.value.reason, str(err.value)
    assert str(err.value).startswith(f"f.yaml:{line}: ") and len(str(err.value)) < 250


def test_too_many_values(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.yamlsafe as ys

    monkeypatch.setattr(ys, "MAX_NODES", 50)
    assert len(load_yaml("[" + ",".join(["1"] * 48) + "]", "f.yaml")) == 48
    with pytest.raises(YamlError, match=r"f.yaml:1: invalid YAML: more than 50 values"):
        load_yaml("[" + ",".join(["1"] * 60) + "]", "f.yaml")


def test_positions_and_plain_values_survive() -> None:
    doc = load_yaml("top: 1\nnested:\n  inner: [x, {k: v}]\n  flag: yes\n", "f.yaml")
    assert isinstance(doc, MarkedMap) and doc.key_lines == {"top": 1, "nested": 2}
    assert doc["nested"].line == 3 and doc["nested"].key_lines == {"inner": 3, "flag": 4}
    assert doc["nested"].value_nodes["inner"].start_mark.column == 9
    assert plain(doc) == {"top": 1, "nested": {"inner": ["x", {"k": "v"}], "flag": True}}
    assert type(plain(doc)["nested"]["inner"][1]) is dict  # no YAML nodes: picklable for snapshots


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(YamlError, match=r"missing.yaml: cannot read"):
        load_yaml_file(tmp_path / "missing.yaml")
    (tmp_path / "latin.yaml").write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(YamlError, match=r"latin.yaml:2: not UTF-8 text"):
        load_yaml_file(tmp_path / "latin.yaml")


def test_rule_errors_quote_only_an_excerpt_of_a_huge_value() -> None:
    text = GOOD_RULE.replace("severity: high", "severity: [" + ", ".join(["x" * 1000] * 500) + "]")
    with pytest.raises(RuleSetError) as err:
        load_rules_text(text, "r.yaml")
    (line,) = err.value.errors
    assert line.startswith("r.yaml:6: rule 'big': 'severity' must be a string, got list ['xxx")
    assert len(line) < 200


def test_excerpt_is_bounded_without_building_the_whole_repr() -> None:
    assert excerpt("short") == "'short'"
    deep: list = []
    for _ in range(50):
        deep = [deep] * 10  # 10**50 leaves if walked
    assert len(excerpt(deep)) <= 60 and len(excerpt("y" * 10**6)) <= 60


@pytest.mark.parametrize("load", [load_watchlists, load_allowlists])
def test_list_sidecars_share_the_loader(tmp_path: Path, load) -> None:
    """Watchlist and allow-list sidecars (``NAME.yaml``) are re-read by hot reload too."""
    (tmp_path / "l.txt").write_text("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t\n")
    (tmp_path / "l.yaml").write_text("reason: &r [x, x]\nlabel: [*r, *r]\n")
    with pytest.raises(ConfigError) as err:
        load(tmp_path)
    assert f"{tmp_path / 'l.yaml'}:1: invalid YAML: anchors (&r) are not allowed" in str(err.value)
