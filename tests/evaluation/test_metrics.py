"""Evaluation metrics on small hand-built alerts and labels, with figures worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.evaluation import AlertRow, Labels, evaluate, format_report, load_labels

LABELS = Labels(
    addresses={"fan_in": frozenset({"A", "B", "C", "D"}), "cycle": frozenset({"X", "Y"})},
    txs={"fan_in": frozenset({"t1", "t2", "t3"}), "cycle": frozenset({"t9"})},
)
ALERTS = [
    AlertRow("a1", "A", "t1", "rules.fan_in", ("fan_in",)),
    AlertRow("a2", "B", "t2", "rules.fan_in", ("fan_in",)),
    AlertRow("a3", "Z", "t7", "rules.fan_in", ("fan_in",)),        # false positive
    AlertRow("a4", "X", "", "rules.cycle", ("cycle",)),             # window alert: no tx
    AlertRow("a5", "C", "t3", "anomaly.iforest", ()),              # untagged detector
    AlertRow("a6", "Q", "t8", "anomaly.iforest", ()),
    AlertRow("a7", "D", "t4", "rules.fan_in", ("fan_in",), "dropped"),  # never landed: excluded
    AlertRow("a1", "A", "t1", "rules.fan_in", ("fan_in",)),          # duplicate id: counted once
]


def _line(report, name):  # noqa: ANN001, ANN202
    return next(x for x in report.typologies + report.rules if x.name == name)


def test_per_typology_address_and_tx_figures() -> None:
    report = evaluate(ALERTS, LABELS, tx_count=2000)
    fan_in = _line(report, "fan_in")
    assert (fan_in.address.tp, fan_in.address.predicted, fan_in.address.labelled) == (2, 3, 4)
    assert fan_in.address.precision == pytest.approx(2 / 3) and fan_in.address.recall == pytest.approx(0.5)
    assert fan_in.address.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert (fan_in.tx.tp, fan_in.tx.predicted, fan_in.tx.labelled) == (2, 3, 3)
    assert fan_in.alerts == 3 and fan_in.per_1k == pytest.approx(1.5)
    cycle = _line(report, "cycle")
    assert cycle.address.precision == 1.0 and cycle.address.recall == 0.5
    assert cycle.tx.predicted == 0 and cycle.tx.precision is None and cycle.tx.recall == 0.0
    assert cycle.tx.f1 == 0.0  # nothing predicted, something missed: F1 0, not undefined


def test_overall_macro_and_rules() -> None:
    report = evaluate(ALERTS, LABELS, tx_count=2000)
    assert report.alerts == 6
    overall = report.overall
    # every alert, untagged included: A B Z X C Q predicted; A B C X labelled
    assert (overall.address.tp, overall.address.predicted, overall.address.labelled) == (4, 6, 6)
    assert (overall.tx.tp, overall.tx.predicted, overall.tx.labelled) == (3, 5, 4)
    assert overall.per_1k == pytest.approx(3.0)
    address_macro = report.macro[0]
    assert address_macro.precision == pytest.approx((2 / 3 + 1.0) / 2)
    assert address_macro.recall == pytest.approx((0.5 + 0.5) / 2)
    anomaly = _line(report, "anomaly.iforest")  # untagged: judged against every label
    assert (anomaly.address.tp, anomaly.address.predicted) == (1, 2)
    assert anomaly.address.recall == pytest.approx(1 / 6)
    rule = _line(report, "rules.fan_in")
    assert rule.address.labelled == 4 and rule.address.tp == 2


def test_cross_typology_hit_counts_in_precision_any() -> None:
    labels = Labels({"fan_out": frozenset({"A"})}, None)
    report = evaluate([AlertRow("a", "A", "t", "r", ("fan_in",))], labels, tx_count=0)
    fan_in = _line(report, "fan_in")
    assert fan_in.address.precision == 0.0 and fan_in.address.as_dict()["precision_any"] == 1.0
    assert fan_in.tx is None and report.overall.per_1k is None
    assert [t.name for t in report.typologies] == ["fan_in", "fan_out"]


def test_no_alerts_gives_zero_recall_and_undefined_precision() -> None:
    report = evaluate([], LABELS, tx_count=100)
    assert all(t.address.recall == 0.0 and t.address.precision is None for t in report.typologies)
    text = format_report(report)
    assert "fan_in" in text and "overall" in text and " - " in text


def test_report_json_and_table() -> None:
    report = evaluate(ALERTS, LABELS, tx_count=2000)
    doc = report.as_dict()
    assert doc["overall"]["address"]["tp"] == 4 and doc["alerts_per_1k_tx"] == pytest.approx(3.0)
    assert {r["name"] for r in doc["rules"]} == {"rules.fan_in", "rules.cycle", "anomaly.iforest"}
    text = format_report(report, "t")
    assert "2/3/4" in text and "anomaly.iforest" in text


def test_load_labels(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("address,typology,episode_id,role\nA,fan_in,e1,source\n"
                                         "B,fan_in,e1,hub\nX,cycle,e2,member\n")
    labels = load_labels(tmp_path)
    assert labels.addresses == {"fan_in": {"A", "B"}, "cycle": {"X"}} and labels.txs is None
    (tmp_path / "labelled_txs.csv").write_text("tx_id,typology,episode_id\nt1,fan_in,e1\n")
    assert load_labels(tmp_path / "labels.csv").txs == {"fan_in": {"t1"}}
    (tmp_path / "bad.csv").write_text("addr,kind\nA,fan_in\n")
    with pytest.raises(InputError, match="bad.csv:1: missing column"):
        load_labels(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="not found"):
        load_labels(tmp_path / "nope.csv")
