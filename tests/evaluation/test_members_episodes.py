"""Alerts that name members, and episode recall: hand-built alerts and labels, figures worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.evaluation import AlertRow, Labels, evaluate, load_labels
from pipeline.evaluation.metrics import LabelledEpisode, episode_recall
from pipeline.evaluation.store import members_of

EPISODES = {
    "fan_in-0001": LabelledEpisode("fan_in", frozenset({"A", "B", "C"})),
    "fan_in-0002": LabelledEpisode("fan_in", frozenset({"D", "E"})),
    "cycle-0001": LabelledEpisode("cycle", frozenset({"X", "Y"})),
    "cycle-0002": LabelledEpisode("cycle", frozenset({"Q"})),
}
LABELS = Labels({"fan_in": frozenset("ABCDE"), "cycle": frozenset("XYQ")}, None, EPISODES)


def _line(report, name):
    return next(x for x in report.typologies if x.name == name)


def test_members_count_as_predicted_addresses_for_the_alerts_tags() -> None:
    alerts = [AlertRow("a1", "A", "t1", "fan_in.hub", ("fan_in",), members=("B", "Z", "")),
              AlertRow("a2", "W", "t2", "cycle.ring", ("cycle",), members=("X", "Y", "W"))]
    report = evaluate(alerts, LABELS, tx_count=1000)
    fan_in = _line(report, "fan_in")
    assert (fan_in.address.tp, fan_in.address.predicted, fan_in.address.labelled) == (2, 3, 5)  # A B Z
    cycle = _line(report, "cycle")
    assert (cycle.address.tp, cycle.address.predicted) == (2, 3)  # W X Y; W counted once
    assert (report.overall.address.tp, report.overall.address.predicted) == (4, 6)
    assert report.alerts == 2  # members do not multiply alert rows


def test_without_members_only_the_subject_counts() -> None:
    report = evaluate([AlertRow("a1", "A", "t1", "fan_in.hub", ("fan_in",))], LABELS, tx_count=1000)
    assert _line(report, "fan_in").address.predicted == 1


def test_episode_recall_tagged_and_lenient() -> None:
    alerts = [
        AlertRow("a1", "Z", "t1", "fan_in.hub", ("fan_in",), members=("C",)),  # fan_in-0001 via a member
        AlertRow("a2", "D", "t2", "anomaly.iforest", ()),                     # fan_in-0002: lenient only
        AlertRow("a3", "X", "t3", "fan_in.hub", ("fan_in",)),                 # cycle-0001: wrong tag, lenient
        AlertRow("a4", "Q", "t4", "cycle.ring", ("cycle",), "dropped"),       # never landed: finds nothing
    ]
    rows = {e.typology: e for e in evaluate(alerts, LABELS, tx_count=100).episodes}
    assert (rows["fan_in"].episodes, rows["fan_in"].found, rows["fan_in"].found_any) == (2, 1, 2)
    assert (rows["cycle"].episodes, rows["cycle"].found, rows["cycle"].found_any) == (2, 0, 1)
    assert rows["fan_in"].recall == 0.5 and rows["cycle"].recall_any == 0.5
    assert [e.typology for e in episode_recall([], EPISODES)] == ["fan_in", "cycle"]


def test_no_episode_labels_no_episode_rows() -> None:
    report = evaluate([], Labels({"fan_in": frozenset("A")}, None), tx_count=10)
    assert report.episodes == () and report.as_dict()["episodes"] == []


def test_a_typology_with_labels_and_no_predictions_has_f1_zero() -> None:
    report = evaluate([AlertRow("a1", "A", "t1", "fan_in.hub", ("fan_in",))], LABELS, tx_count=10)
    cycle = _line(report, "cycle")
    assert cycle.address.precision is None and cycle.address.f1 == 0.0
    assert report.macro[0].f1 == pytest.approx((2 * 1.0 * 0.2 / 1.2 + 0.0) / 2)  # the miss drags the mean


@pytest.mark.parametrize(("details", "members"), [
    ('{"members": ["TA", "TB"], "member_roles": ["source", "source"]}', ("TA", "TB")),
    (b'{"members": ["TA", 7, "", null]}', ("TA",)),
    ('{"members": "TA"}', ()),
    ('{"other": 1}', ()),
    ('["members"]', ()),
    ('{"members": [', ()),
    ("", ()),
    (None, ()),
])
def test_members_of_details(details, members) -> None:
    assert members_of(details) == members


def test_load_labels_builds_episodes(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("address,typology,episode_id,role\nA,fan_in,e1,source\nB,fan_in,e1,hub\n"
                                         "A,cycle,e2,member\nX,cycle,e2,member\n")
    labels = load_labels(tmp_path)
    assert labels.episodes == {"e1": LabelledEpisode("fan_in", frozenset("AB")),
                               "e2": LabelledEpisode("cycle", frozenset("AX"))}
    (tmp_path / "old.csv").write_text("address,typology\nA,fan_in\n")
    assert load_labels(tmp_path / "old.csv").episodes is None
