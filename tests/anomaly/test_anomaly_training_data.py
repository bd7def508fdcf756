"""Training data: a real chDB ``address_features`` table, the offline reservoir, time parsing."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipeline.anomaly.training import Reservoir, latest_per_block, parse_time, read_clickhouse
from pipeline.errors import ConfigError
from pipeline.records import FEATURE_NAMES
from tests.anomaly.anomaly_data import make_update, normal_features, real_addresses

T0 = 1_714_000_002_000


def test_read_clickhouse_samples_the_range(chdb_dsn: str) -> None:
    from pipeline.storage.clickhouse import open_storage

    client, _ = open_storage(chdb_dsn)
    X = normal_features(300, seed=60)
    addrs = real_addresses(30)
    rows = [[addrs[i % 30], dt.datetime.fromtimestamp((T0 + i * 3000) / 1000, dt.UTC), 61_200_000 + i,
             *X[i].tolist()] for i in range(300)]
    client.insert("address_features", rows, column_names=["address", "ts", "block_number", *FEATURE_NAMES])
    data = read_clickhouse(chdb_dsn, since_ms=T0 + 100 * 3000, until_ms=T0 + 200 * 3000, progress=False)
    assert data.X.shape == (100, len(FEATURE_NAMES))
    assert np.allclose(data.X, X[100:200])
    assert (data.info.first_block, data.info.last_block) == (61_200_100, 61_200_199)
    assert (data.info.first_ts, data.info.last_ts) == (T0 + 300_000, T0 + 199 * 3000)
    sampled = read_clickhouse(chdb_dsn, max_rows=120, progress=False)
    assert 60 <= len(sampled.X) <= 120  # hash sampling in the server, capped
    again = read_clickhouse(chdb_dsn, max_rows=120, progress=False)
    assert np.array_equal(sampled.X, again.X)  # deterministic
    with pytest.raises(ConfigError, match="no rows in the requested range"):
        read_clickhouse(chdb_dsn, since_ms=T0 + 10**9, progress=False)


def test_reservoir_is_bounded_uniform_and_seeded() -> None:
    X = normal_features(500, seed=61)
    ups = [make_update(f"A{i}", X[i], T0 + i, f"{i:064x}") for i in range(500)]
    r = Reservoir(50, seed=1)
    r.add(ups)
    d = r.data("test")
    assert d.X.shape == (50, len(FEATURE_NAMES)) and r.seen == 500
    assert d.info.first_ts == T0 and d.info.last_ts == T0 + 499 and d.info.rows == 50
    r2 = Reservoir(50, seed=1)
    r2.add(ups)
    assert np.array_equal(r2.data("test").X, d.X)
    # rows from late in the stream get in: not just the first 50
    late = {tuple(row) for row in X[250:]}
    assert any(tuple(row) in late for row in d.X)


def test_latest_per_block_keeps_each_address_last_update() -> None:
    X = normal_features(3, seed=62)
    ups = [make_update("A", X[0], T0, "a" * 64), make_update("B", X[1], T0, "b" * 64),
           make_update("A", X[2], T0, "c" * 64)]
    assert [u.transfer.tx_id for u in latest_per_block(ups)] == ["c" * 64, "b" * 64]


def test_parse_time() -> None:
    assert parse_time("2024-04-25", "--since") == 1_714_003_200_000
    assert parse_time("2024-04-25T00:00:00+02:00", "--since") == 1_714_003_200_000 - 7_200_000
    assert parse_time("1714003200000", "--until") == 1_714_003_200_000
    with pytest.raises(ConfigError, match="--until: 'soon'"):
        parse_time("soon", "--until")
