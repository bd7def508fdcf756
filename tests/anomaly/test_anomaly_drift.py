"""PSI: zero for identical distributions, large for shifted ones; windows emit bounded rows."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.anomaly.drift import DriftMonitor, DriftReference, psi
from pipeline.records import FEATURE_NAMES
from tests.anomaly.anomaly_data import COL, normal_features


@pytest.fixture(scope="module")
def ref(train_X: np.ndarray) -> DriftReference:
    return DriftReference.from_training(FEATURE_NAMES, train_X)


def test_psi_is_zero_for_identical_distribution(ref: DriftReference, train_X: np.ndarray) -> None:
    counts = ref.bin_counts(train_X)
    for j in range(len(FEATURE_NAMES)):
        assert psi(ref.expected[j], counts[j, : len(ref.expected[j])]) == pytest.approx(0.0, abs=1e-12)


def test_psi_is_small_for_a_fresh_sample_and_large_for_a_shift(ref: DriftReference) -> None:
    fresh = normal_features(2000, seed=9)
    shifted = fresh.copy()
    shifted[:, COL["usd_in"]] *= 50  # every address suddenly moves 50x the USD
    c_fresh, c_shift = ref.bin_counts(fresh), ref.bin_counts(shifted)
    j = COL["usd_in"]
    k = len(ref.expected[j])
    assert psi(ref.expected[j], c_fresh[j, :k]) < 0.1
    assert psi(ref.expected[j], c_shift[j, :k]) > 1.0
    other = COL["usd_out"]
    assert psi(ref.expected[other], c_shift[other, : len(ref.expected[other])]) < 0.1


def test_mostly_zero_feature_gets_zero_and_positive_bins(ref: DriftReference) -> None:
    j = COL["permission_changes"]
    assert ref.edges[j].tolist() == [0.0]  # bins "<= 0" and "> 0"
    assert ref.expected[j][0] > 0.9


def test_monitor_emits_one_row_per_feature_when_the_window_closes(ref: DriftReference,
                                                                   train_X: np.ndarray) -> None:
    mon = DriftMonitor(ref, "abc123", window_ms=60_000)
    assert mon.observe(train_X[:200], np.full(200, 120_000 + 5)) == []
    assert mon.observe(train_X[200:], np.full(200, 150_000)) == []   # same window
    late = mon.observe(train_X[:10], np.full(10, 10_000))            # late: counted in current
    assert late == []
    rows = mon.observe(train_X[:5], np.full(5, 185_000))              # next window closes the first
    assert [r.feature for r in rows] == list(FEATURE_NAMES)
    assert {(r.window_start, r.window_end, r.model_version, r.n) for r in rows} == {
        (120_000, 180_000, "abc123", 410)}
    assert max(r.psi for r in rows) < 0.05
    tail = mon.flush()
    assert len(tail) == len(FEATURE_NAMES) and tail[0].window_start == 180_000 and tail[0].n == 5
    assert mon.flush() == []
    assert mon._counts.shape == (len(FEATURE_NAMES), ref.n_bins)  # fixed size: bounded state


def test_reference_round_trips_through_the_card(ref: DriftReference) -> None:
    again = DriftReference.from_card(FEATURE_NAMES, ref.to_card())
    assert all(np.array_equal(a, b) for a, b in zip(again.edges, ref.edges))
    assert all(np.array_equal(a, b) for a, b in zip(again.expected, ref.expected))
