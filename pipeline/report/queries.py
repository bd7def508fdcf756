"""Run a dashboard panel's SQL against ClickHouse exactly as Grafana would send it.

Shared by the HTML report and the dashboard tests, so what the tests check is what the report
draws and what Grafana shows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.errors import StorageError
from pipeline.report.dashboards import Panel
from pipeline.report.macros import TimeRange, VarValue, expand

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PanelData:
    panel: Panel
    sql: str  # as sent, macros expanded
    columns: tuple[str, ...]
    types: tuple[str, ...]  # ClickHouse type names, e.g. DateTime64(3, 'UTC'), Float64, String
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]


def is_time_type(t: str) -> bool:
    return t.removeprefix("Nullable(").startswith(("DateTime", "Date"))


def is_numeric_type(t: str) -> bool:
    t = t.removeprefix("Nullable(").removeprefix("LowCardinality(")
    return t.startswith(("UInt", "Int", "Float", "Decimal", "Bool"))


def run_panel(client: Any, panel: Panel, rng: TimeRange,
              variables: Mapping[str, VarValue] | None = None) -> PanelData:
    """Expand the panel's macros and variables for ``rng`` and run its query.

    Raises :class:`StorageError` naming the panel when ClickHouse refuses the query.
    """
    sql = expand(panel.sql, rng, variables)
    try:
        result = client.query(sql)
    except Exception as err:  # noqa: BLE001 - any driver error becomes one line naming the panel
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StorageError(f"panel {panel.title!r} (id {panel.id}): {first[:300]}") from None
    types = tuple(getattr(t, "name", str(t)) for t in result.column_types)
    return PanelData(panel, sql, tuple(result.column_names), types, list(result.result_rows))


def data_range(client: Any, max_span: timedelta = timedelta(hours=24)) -> TimeRange:
    """The event-time range the stored blocks cover (at most ``max_span``, ending at the newest block).

    The report draws the data that is there, whether it came from a replay of 2024 blocks or from
    a live node a second ago; Grafana's wall display uses "now-1h" instead.
    """
    try:
        row = client.query("SELECT min(ts), max(ts), count() FROM blocks WHERE orphaned = 0").result_rows[0]
    except Exception as err:  # noqa: BLE001 - e.g. an empty database: say what to do
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StorageError(f"cannot read the blocks table ({first[:200]}); run the pipeline into this "
                           "database first") from None
    if not row[2]:
        end = datetime.now(UTC)
        return TimeRange(end - timedelta(hours=1), end)
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in row[:2])
    end = end + timedelta(seconds=1)
    return TimeRange(max(start, end - max_span), end)
