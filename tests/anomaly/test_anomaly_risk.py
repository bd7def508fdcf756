"""The risk formula: documented anchor values, bounds and monotonicity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.anomaly.risk import SEVERITY_POINTS, anomaly_evidence, risk_score
from pipeline.records import SEVERITIES

severities = st.sampled_from([None, *SEVERITIES])
scores = st.one_of(st.none(), st.floats(min_value=0.0, max_value=100.0))


@pytest.mark.parametrize(("severity", "anomaly", "expected"), [
    ("high", None, 75.0),
    ("critical", None, 95.0),
    (None, 99.0, 40.0),
    (None, 99.9, 60.0),
    (None, 100.0, 80.0),        # anomaly alone is capped below "critical"
    (None, None, 0.0),
    ("high", 99.9, 82.5),       # 75 + 25 * 60 / 200
    ("medium", 99.0, 60.0),     # 50 + 50 * 40 / 200
    ("critical", 100.0, 97.0),  # 95 + 5 * 80 / 200
    ("info", 50.0, 10.0 + 90 * (20 * 0.30103) / 200),
])
def test_anchor_values(severity: str | None, anomaly: float | None, expected: float) -> None:
    assert risk_score(severity, anomaly) == pytest.approx(expected, abs=0.01)


def test_every_severity_has_points_in_order() -> None:
    assert list(SEVERITY_POINTS) == list(SEVERITIES)
    assert [SEVERITY_POINTS[s] for s in SEVERITIES] == sorted(SEVERITY_POINTS.values())


def test_unknown_severity_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown severity 'severe'"):
        risk_score("severe", 10.0)


def test_nan_anomaly_counts_as_missing() -> None:
    assert risk_score("low", float("nan")) == 25.0 and anomaly_evidence(float("nan")) == 0.0


@given(severities, scores)
def test_bounded(severity: str | None, anomaly: float | None) -> None:
    assert 0.0 <= risk_score(severity, anomaly) <= 100.0


@given(severities, st.floats(0.0, 100.0), st.floats(0.0, 100.0))
def test_monotonic_in_anomaly(severity: str | None, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert risk_score(severity, lo) <= risk_score(severity, hi)


@given(scores)
def test_monotonic_in_severity(anomaly: float | None) -> None:
    risks = [risk_score(s, anomaly) for s in SEVERITIES]
    assert risks == sorted(risks)


def test_docstring_examples_run() -> None:
    import doctest

    from pipeline.anomaly import model, risk

    for module in (risk, model):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
