"""One small simulated run stored in chDB, shared by the dashboard and report tests.

150 simulated blocks (7.5 minutes, crossing an hour boundary so a model-drift window closes) plus
two unusable lines (so dead letters exist) are replayed through the full pipeline into a database
of the session's chDB directory, once per test session (~15 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.report.macros import TimeRange

HOUR_MS = 3_600_000
START_TS = 1_714_000_002_000 // HOUR_MS * HOUR_MS - 180_000  # 3 minutes before an hour boundary
_cache: dict[Path, "StoredRun"] = {}


@dataclass(frozen=True)
class StoredRun:
    dsn: str
    data: TimeRange  # the event-time range of the stored blocks
    wide: TimeRange  # data range up to now: covers wall-clock columns (dead_letters.seen_at) too
    address: str  # the address with the most alerts, for the drill-down variables


def stored_run(chdb_dir: Path, tmp: Path) -> StoredRun:
    if chdb_dir in _cache:
        return _cache[chdb_dir]
    from pipeline.config import load_settings
    from pipeline.report.queries import data_range
    from pipeline.runner import replay
    from pipeline.simulate import SimConfig, simulate
    from pipeline.storage.clickhouse import connect

    simulate(SimConfig(blocks=150, seed=7, start_ts=START_TS), tmp, progress=False)
    bad = tmp / "bad.jsonl"
    bad.write_text('{"not a block": true}\nthis is not json\n')
    dsn = f"chdb://{chdb_dir}?database=dashboards_sim"
    settings = load_settings(env={}, overrides={"clickhouse.dsn": dsn})
    replay([str(tmp / "blocks.jsonl.gz"), str(bad)], settings, progress=False)
    client = connect(dsn)
    data = data_range(client)
    address = client.query("SELECT address FROM alerts FINAL GROUP BY address "
                           "ORDER BY count() DESC, address LIMIT 1").result_rows[0][0]
    wide = TimeRange(data.start - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1))
    _cache[chdb_dir] = StoredRun(dsn, data, wide, address)
    return _cache[chdb_dir]
