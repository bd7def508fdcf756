"""The suite's pooling, floors, cache and one tiny end-to-end `evaluate --suite` (a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.evaluation import AlertRow, Labels, evaluate
from pipeline.evaluation import suite as suite_module
from pipeline.evaluation.metrics import LabelledEpisode
from pipeline.evaluation.suite import SUITE, SuiteChain, chain_key, chains_for, materialise
from pipeline.evaluation.suite_report import ChainResult, Floors, amlsim_checks, pool, split_checks
from pipeline.simulate.profile import TUNING, VALIDATION
from run_pipeline import main


def _report(alerts: list[AlertRow], tx_count: int):
    eps = {"f1": LabelledEpisode("fan_in", frozenset("AB")), "f2": LabelledEpisode("fan_in", frozenset("C")),
           "c1": LabelledEpisode("cycle", frozenset("XY"))}
    return evaluate(alerts, Labels({"fan_in": frozenset("ABC"), "cycle": frozenset("XY")}, None, eps), tx_count)


def test_pool_adds_counts_before_dividing() -> None:
    one = _report([AlertRow("a", "A", "t", "r", ("fan_in",), members=("B",)),
                   AlertRow("b", "X", "t", "r", ("cycle",))], tx_count=1000)
    two = _report([AlertRow("c", "Q", "t", "r", ("fan_in",))], tx_count=3000)
    s = pool("tuning", [ChainResult("c1", "tuning", one, 1.0), ChainResult("c2", "tuning", two, 1.0)])
    assert (s.tx_count, s.alerts) == (4000, 3) and s.per_1k == pytest.approx(0.75)
    fan_in = s.typologies["fan_in"]
    assert (fan_in.tp, fan_in.predicted, fan_in.labelled) == (2, 3, 6)
    eps = {e.typology: e for e in s.episodes}
    assert (eps["fan_in"].episodes, eps["fan_in"].found) == (4, 1) and (eps["cycle"].found, eps["cycle"].episodes) == (1, 2)
    assert s.min_episode_recall == ("fan_in", 0.25)
    assert (s.overall.tp, s.overall.predicted) == (3, 4)
    f1_fan_in = 2 * (2 / 3) * (2 / 6) / (2 / 3 + 2 / 6)
    f1_cycle = 2 * 1.0 * 0.25 / 1.25  # X found in the first chain; X Y labelled in both
    assert s.macro_f1 == pytest.approx((f1_fan_in + f1_cycle) / 2)
    checks = split_checks(s)
    assert [c.passed for c in checks] == [False, True, False, True]
    assert [c.passed for c in split_checks(s, Floors(episode_recall=0.2, macro_f1=0.3))] == [True, True, True, True]


def test_amlsim_checks_use_node_level_figures() -> None:
    rep = evaluate([AlertRow("a", "A", "t", "r", ()), AlertRow("b", "Z", "t", "r", ())],
                   Labels({"fan_in": frozenset("AB")}, None), tx_count=10)
    f1, precision = amlsim_checks(rep)
    assert f1.value == pytest.approx(0.5) and f1.passed
    assert precision.value == pytest.approx(0.5) and precision.passed


def test_suite_splits_differ_and_are_well_formed() -> None:
    tuning, validation = chains_for("tuning"), chains_for("validation")
    assert 2 <= len(tuning) <= 3 and 2 <= len(validation) <= 3 and len(chains_for("all")) == len(SUITE)
    assert {c.profile for c in tuning} == {TUNING} and {c.profile for c in validation} == {VALIDATION}
    assert not {c.seed for c in tuning} & {c.seed for c in validation}
    assert len({c.name for c in SUITE}) == len(SUITE)
    with pytest.raises(Exception, match="--split"):
        chains_for("test")


def test_chain_key_follows_spec_and_code(tmp_path: Path) -> None:
    chain = SuiteChain("t", "tuning", TUNING, seed=1, blocks=30, episodes=1, n_users=2_000)
    assert chain_key(chain, "v1") == chain_key(SuiteChain("t", "tuning", TUNING, 1, 30, 1, 2_000), "v1")
    assert chain_key(chain, "v1") != chain_key(chain, "v2")
    assert chain_key(chain, "v1") != chain_key(SuiteChain("t", "tuning", TUNING, 2, 30, 1, 2_000), "v1")
    assert chain_key(chain, "v1") != chain_key(SuiteChain("t", "tuning", VALIDATION, 1, 30, 1, 2_000), "v1")
    folder, meta, reused = materialise(chain, tmp_path, "v1")
    assert not reused and (folder / "labels.csv").is_file() and meta["blocks"] == 30
    again, _, reused = materialise(chain, tmp_path, "v1")
    assert reused and again == folder
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary directory left behind


def test_evaluate_suite_end_to_end_on_a_tiny_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    tiny = (SuiteChain("tiny-t", "tuning", TUNING, seed=5, blocks=80, episodes=1, n_users=3_000),
            SuiteChain("tiny-v", "validation", VALIDATION, seed=6, blocks=80, episodes=1, n_users=3_000))
    monkeypatch.setattr(suite_module, "SUITE", tiny)
    out = tmp_path / "suite.json"
    assert main(["evaluate", "--suite", "--cache", str(tmp_path / "cache"), "--no-amlsim", "--jobs", "2",
                 "--no-progress", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tiny-t (tuning" in text and "validation (never tune on this split)" in text
    assert "PASS" in text or "FAIL" in text
    doc = json.loads(out.read_text())
    assert set(doc["splits"]) == {"tuning", "validation"} and doc["failures"] == []
    for name in ("tiny-t", "tiny-v"):
        chain = doc["chains"][name]
        assert chain["tx_count"] > 1000 and len(chain["episodes"]) == 12
        assert all(e["episodes"] == 1 for e in chain["episodes"])
    assert not (tmp_path / "cache" / "runs").exists() or not any((tmp_path / "cache" / "runs").iterdir())


def test_a_failing_replay_is_one_line_naming_the_chain_and_the_workers_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(suite_module, "SUITE", (SuiteChain("tiny-bad", "tuning", TUNING, 5, 20, 1, 2_000),))
    config = tmp_path / "bad.toml"
    config.write_text("[analytics]\nno_such_setting = 1\n")
    code = main(["evaluate", "--suite", "--cache", str(tmp_path / "cache"), "--no-amlsim", "--no-progress",
                 "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "tiny-bad: replay failed" in err and "no_such_setting" in err
