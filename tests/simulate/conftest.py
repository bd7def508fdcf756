"""One small simulated chain per test session, shared by the simulator tests (generation is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.simulate.chain import SimConfig
from pipeline.simulate.run import simulate

BLOCKS = 60


@pytest.fixture(scope="session")
def sim_hex(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim_hex")
    simulate(SimConfig(blocks=BLOCKS, seed=11, n_users=5_000), out, progress=False)
    return out


@pytest.fixture(scope="session")
def sim_visible(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim_visible")
    simulate(SimConfig(blocks=30, seed=12, visible=True, n_users=5_000), out, progress=False)
    return out
