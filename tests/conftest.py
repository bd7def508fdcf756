"""Shared fixtures: real data from ../shared/data and a real embedded ClickHouse (chDB).

chDB binds one data directory per process, so the whole test session shares one directory and
each test gets its own database in it (``chdb_dsn``): real engine, isolated tables.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
_SHARED_CANDIDATES = [ROOT.parent / "shared" / "data"]
SHARED = next((p for p in _SHARED_CANDIDATES if p.is_dir()), ROOT.parent / "shared" / "data")
TRON = SHARED / "tron"
HEX_BLOCK = TRON / "mainnet_block_61132092_hex.json"
VISIBLE_BLOCK = TRON / "mainnet_block_60836289_visible.json"
_counter = itertools.count()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared fixtures not found at {SHARED}: the tests use the real data in ../shared/data")
    return SHARED


@pytest.fixture(scope="session")
def hex_block(shared_data: Path) -> dict:
    return orjson.loads(HEX_BLOCK.read_bytes())


@pytest.fixture(scope="session")
def visible_block(shared_data: Path) -> dict:
    return orjson.loads(VISIBLE_BLOCK.read_bytes())


@pytest.fixture(scope="session")
def expected_trc20(shared_data: Path) -> list[dict]:
    # stdlib json: one expected value is 10**22, which orjson would read as a float
    return [json.loads(line) for line in (TRON / "expected_trc20_calls.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def chdb_dsn(chdb_dir: Path) -> str:
    """A DSN on the session's chDB directory with a database of this test's own."""
    return f"chdb://{chdb_dir}?database=t{os.getpid()}_{next(_counter)}"
