"""Training data for the ``train`` command: feature rows from ClickHouse or from an offline replay.

Why a bounded sample: a day of mainnet is tens of millions of address updates, far more than a
detector needs and more than fits comfortably in memory. Offline input goes through a seeded
reservoir (uniform over the whole input, fixed memory); ClickHouse input is sampled *in the server*
by a hash of (address, ts) so the same table and bounds always give the same rows.

The training population must be the one the scorer sees, or calibration is off: the scoring stage
scores the *latest update per (block, address)*, and ``address_features`` stores exactly those
snapshots, so offline input is reduced the same way (:func:`latest_per_block`) before sampling.
Sampling every update instead over-represents busy hub addresses (dozens of updates per block),
which pushes the training score distribution up and every live score down.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.anomaly.model import TrainingInfo
from pipeline.errors import ConfigError, StorageError
from pipeline.records import FEATURE_NAMES, AddressUpdate

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class TrainingData:
    X: np.ndarray
    info: TrainingInfo


def parse_time(text: str, flag: str) -> int:
    """``--since``/``--until`` as ms since epoch: integer ms, or ISO date/datetime (UTC if no zone)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        t = dt.datetime.fromisoformat(text)  # 3.11 accepts a trailing Z
    except ValueError:
        raise ConfigError(f"{flag}: {text!r} is neither ms since epoch nor an ISO date/time "
                          "(e.g. 2024-04-25 or 2024-04-25T12:00:00Z)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


class Reservoir:
    """Uniform sample of at most ``size`` feature rows from a stream (Algorithm R), seeded."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 1:
            raise ValueError("reservoir size must be >= 1")
        self.size = size
        self.rows = np.empty((size, len(FEATURE_NAMES)), dtype=np.float64)
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.first_block: int | None = None
        self.last_block: int | None = None

    def add(self, updates: Iterable[AddressUpdate]) -> None:
        for u in updates:
            f = u.features
            self.first_ts = f.ts if self.first_ts is None else min(self.first_ts, f.ts)
            self.last_ts = f.ts if self.last_ts is None else max(self.last_ts, f.ts)
            self.first_block = f.block_number if self.first_block is None else min(self.first_block, f.block_number)
            self.last_block = f.block_number if self.last_block is None else max(self.last_block, f.block_number)
            if self.seen < self.size:
                self.rows[self.seen] = f.values
            else:
                j = int(self._rng.integers(0, self.seen + 1))
                if j < self.size:
                    self.rows[j] = f.values
            self.seen += 1

    def data(self, source: str) -> TrainingData:
        n = min(self.seen, self.size)
        info = TrainingInfo(rows=n, first_ts=self.first_ts, last_ts=self.last_ts,
                            first_block=self.first_block, last_block=self.last_block, source=source)
        return TrainingData(self.rows[:n].copy(), info)


def _iter_updates(input_path: str) -> Iterator[list[AddressUpdate]]:
    try:
        from pipeline.offline import iter_updates
    except ImportError as err:
        raise ConfigError(
            f"--input {input_path}: offline feature extraction (pipeline.offline.iter_updates) is not "
            f"available in this checkout ({err}); train from stored features with --clickhouse DSN "
            "instead") from None
    return iter_updates(input_path)


def latest_per_block(updates: list[AddressUpdate]) -> list[AddressUpdate]:
    """The last update of each address in one block's updates: the rows the scoring stage scores."""
    return list({u.address: u for u in updates}.values())


def read_offline(input_path: str, *, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0,
                 progress: bool = True) -> TrainingData:
    """Run decode + graph features over replay input and sample the resulting update snapshots."""
    reservoir = Reservoir(max_rows, seed)
    batches = _iter_updates(input_path)
    bar = _bar(progress, desc="features", unit="upd")
    try:
        for batch in batches:
            reservoir.add(latest_per_block(batch))
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    if reservoir.seen == 0:
        raise ConfigError(f"--input {input_path}: no address updates came out of the input")
    log.info("offline: %d updates seen, %d sampled", reservoir.seen, min(reservoir.seen, max_rows))
    return reservoir.data(f"offline:{input_path}")


def clickhouse_query(since_ms: int | None, until_ms: int | None, keep_per_million: int | None,
                     max_rows: int) -> str:
    """The sampling query on ``address_features`` (bounds are validated ints, never raw text)."""
    cols = ", ".join(f"`{n}`" for n in FEATURE_NAMES)
    where = ["1"]
    if since_ms is not None:
        where.append(f"ts >= fromUnixTimestamp64Milli(toInt64({int(since_ms)}), 'UTC')")
    if until_ms is not None:
        where.append(f"ts < fromUnixTimestamp64Milli(toInt64({int(until_ms)}), 'UTC')")
    if keep_per_million is not None:
        where.append(f"cityHash64(address, ts) % 1000000 < {int(keep_per_million)}")
    return (f"SELECT toUnixTimestamp64Milli(ts) AS ts_ms, block_number, {cols} FROM address_features "
            f"WHERE {' AND '.join(where)} ORDER BY ts, address LIMIT {int(max_rows)}")


def read_clickhouse(dsn: str, *, since_ms: int | None = None, until_ms: int | None = None,
                    max_rows: int = DEFAULT_MAX_ROWS, progress: bool = True) -> TrainingData:
    """Read a deterministic sample of ``address_features`` rows in ``[since, until)``."""
    from pipeline.storage.clickhouse import connect

    client = connect(dsn, create_database=False)
    bounds = _count_sql(since_ms, until_ms)
    try:
        total = int(client.query(bounds).result_rows[0][0])
        keep = None if total <= max_rows else max(1, int(1_000_000 * max_rows / total * 1.05))
        rows = client.query(clickhouse_query(since_ms, until_ms, keep, max_rows)).result_rows
    except Exception as err:  # noqa: BLE001 - any driver failure becomes one clear line
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise StorageError(f"{dsn}: cannot read address_features: {first}") from None
    if not rows:
        raise ConfigError(f"{dsn}: address_features has no rows in the requested range")
    arr = np.asarray(rows, dtype=np.float64)
    log.info("clickhouse: %d rows in range, %d read", total, len(arr))
    ts, blocks = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    info = TrainingInfo(rows=len(arr), first_ts=int(ts.min()), last_ts=int(ts.max()),
                        first_block=int(blocks.min()), last_block=int(blocks.max()),
                        source="clickhouse:address_features")
    return TrainingData(arr[:, 2:], info)


def _count_sql(since_ms: int | None, until_ms: int | None) -> str:
    q = clickhouse_query(since_ms, until_ms, None, 1)
    where = q[q.index("WHERE"): q.index("ORDER BY")]
    return f"SELECT count() FROM address_features {where}"


def _bar(enabled: bool, **kw: Any) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety, never a reason to fail
        return None
    return tqdm(**kw)
