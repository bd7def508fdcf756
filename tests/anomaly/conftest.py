"""Fixtures of the anomaly tests; the data builders live in anomaly_data.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests.anomaly.anomaly_data import normal_features


@pytest.fixture(scope="session")
def train_X() -> np.ndarray:
    return normal_features(400, seed=1)
