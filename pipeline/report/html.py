"""The wall display as one self-contained HTML file: same panels, same SQL, no Grafana.

Panels are laid out on Grafana's 24-column grid from their ``gridPos``; each panel's SQL comes out
of ``dashboards/json/wall.json``, is expanded for the stored data's time range and run, and the
rows are drawn according to the panel type (stat -> big numbers, timeseries -> lines or stacked
bars, bargauge/barchart -> horizontal bars, piechart -> donut, table -> table). Inline SVG and CSS
only: the file opens offline, in a browser on a wall or attached to an email.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, StorageError
from pipeline.report import svg
from pipeline.report.dashboards import Dashboard, Panel, find_dashboard
from pipeline.report.macros import TimeRange, VarValue
from pipeline.report.queries import PanelData, data_range, is_numeric_type, is_time_type, run_panel

log = logging.getLogger(__name__)

WALL_UID = "tronrisk-wall"
ROW_PX = 40  # one Grafana grid row, as drawn in the report
COL_PX = 62  # one of the 24 grid columns at the report's design width

_CSS = """
*{box-sizing:border-box}body{margin:0;background:#111217;color:#d8d9da;font-family:Inter,Helvetica,Arial,sans-serif}
header{display:flex;justify-content:space-between;align-items:baseline;padding:14px 20px 4px}
h1{font-size:30px;margin:0;font-weight:600}header .range{color:#8e8e8e;font-size:16px}
.grid{display:grid;grid-template-columns:repeat(24,1fr);grid-auto-rows:ROWPXpx;gap:8px;padding:12px 20px 20px}
.panel{background:#181b1f;border:1px solid #22252b;border-radius:4px;padding:8px 12px;display:flex;flex-direction:column;min-width:0;overflow:hidden}
.panel h2{font-size:18px;margin:0 0 6px;font-weight:500;color:#ccccdc;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.body{flex:1;min-height:0;display:flex;align-items:center;justify-content:center}
.body svg.chart{width:100%;height:100%}
.stats{display:flex;gap:18px;width:100%;justify-content:space-around;align-items:center}
.stat{text-align:center;min-width:0}.stat .v{font-size:64px;font-weight:700;line-height:1.05}
.stat .n{font-size:18px;color:#aaa;text-transform:uppercase;letter-spacing:.05em}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{padding:3px 6px;border-bottom:1px solid #2c3235;text-align:left;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:260px}
th{color:#8e8e8e;font-weight:500}.nodata{color:#8e8e8e;font-size:20px}.err{color:#e24d42;font-size:14px}
footer{color:#6e6e6e;font-size:12px;padding:0 20px 16px}
""".replace("ROWPX", str(ROW_PX))


def _fixed_colors(panel: Panel) -> dict[str, str]:
    out = {}
    for o in (panel.raw.get("fieldConfig") or {}).get("overrides") or []:
        if (o.get("matcher") or {}).get("id") == "byName":
            for prop in o.get("properties") or []:
                if prop.get("id") == "color" and isinstance(prop.get("value"), dict):
                    out[o["matcher"]["options"]] = prop["value"].get("fixedColor", "")
    return out


def _default_color(panel: Panel) -> str:
    c = ((panel.raw.get("fieldConfig") or {}).get("defaults") or {}).get("color") or {}
    return c.get("fixedColor") or "#73bf69"


def _numeric(data: PanelData) -> list[int]:
    return [i for i, t in enumerate(data.types) if is_numeric_type(t)]


def _labels(data: PanelData) -> int | None:
    return next((i for i, t in enumerate(data.types) if not is_numeric_type(t) and not is_time_type(t)), None)


def _value_field(panel: Panel, data: PanelData) -> int:
    """The column ``reduceOptions.fields`` (``/^name$/``) selects, else the first numeric one."""
    pattern = ((panel.raw.get("options") or {}).get("reduceOptions") or {}).get("fields") or ""
    if pattern.startswith("/") and pattern.endswith("/"):
        rx = re.compile(pattern[1:-1])
        for i, name in enumerate(data.columns):
            if rx.search(name):
                return i
    nums = _numeric(data)
    if not nums:
        raise PipelineError(f"panel {panel.title!r}: no numeric column in {data.columns}")
    return nums[0]


def _threshold_color(panel: Panel, value: float) -> str:
    steps = ((((panel.raw.get("fieldConfig") or {}).get("defaults") or {}).get("thresholds") or {})
             .get("steps") or [])
    chosen = svg.color(0)
    for s in steps:
        if s.get("value") is None or value >= float(s["value"]):
            chosen = s.get("color", chosen)
    return chosen


def _stat(panel: Panel, data: PanelData) -> str:
    colors, default = _fixed_colors(panel), _default_color(panel)
    row = data.rows[0]
    tiles = []
    for i in _numeric(data):
        name = data.columns[i]
        value = svg.fmt(row[i], panel.unit)
        tiles.append(f'<div class="stat"><div class="v" style="color:{colors.get(name, default)}">{escape(value)}</div>'
                     f'<div class="n">{escape(name.replace("_", " "))}</div></div>')
    return f'<div class="stats">{"".join(tiles)}</div>'


def _timeseries(panel: Panel, data: PanelData, width: int, height: int) -> str:
    t_idx = data.columns.index("time") if "time" in data.columns else next(
        i for i, t in enumerate(data.types) if is_time_type(t))
    label = _labels(data)
    nums = [i for i in _numeric(data) if i != t_idx]
    times = sorted({r[t_idx] for r in data.rows})
    pos = {t: k for k, t in enumerate(times)}
    series: dict[str, list[float]] = {}
    for r in data.rows:
        for i in nums:
            name = str(r[label]) if label is not None else data.columns[i]
            if label is not None and len(nums) > 1:
                name = f"{name} {data.columns[i]}"
            series.setdefault(name, [0.0] * len(times))[pos[r[t_idx]]] += float(r[i] or 0)
    custom = ((panel.raw.get("fieldConfig") or {}).get("defaults") or {}).get("custom") or {}
    bars = custom.get("drawStyle") == "bars"
    stacked = (custom.get("stacking") or {}).get("mode") == "normal"
    times_utc = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]
    return svg.time_chart(times_utc, series, bars=bars, stacked=stacked, unit=panel.unit,
                          width=width, height=height, title=panel.title)


def _bars(panel: Panel, data: PanelData, width: int, height: int) -> str:
    label = _labels(data)
    vi = _value_field(panel, data)
    labels = [str(r[label]) if label is not None else str(k + 1) for k, r in enumerate(data.rows)]
    values = [float(r[vi] or 0) for r in data.rows]
    defaults = (panel.raw.get("fieldConfig") or {}).get("defaults") or {}
    if (defaults.get("color") or {}).get("mode") == "thresholds":
        colors = [_threshold_color(panel, v) for v in values]
    else:
        colors = None
    return svg.hbar_chart(labels, values, unit=panel.unit, max_value=defaults.get("max"), colors=colors,
                          width=width, height=height, title=panel.title)


def _pie(panel: Panel, data: PanelData, width: int, height: int) -> str:
    label = _labels(data)
    vi = _value_field(panel, data)
    return svg.donut([str(r[label]) if label is not None else "" for r in data.rows],
                     [float(r[vi] or 0) for r in data.rows], width=width, height=height, title=panel.title)


def _table(data: PanelData, limit: int = 20) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in data.columns)
    rows = "".join("<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in r) + "</tr>" for r in data.rows[:limit])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _cell(v: Any) -> str:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, float):
        return svg.fmt(v)
    return str(v)


def render_panel(panel: Panel, data: PanelData) -> str:
    """The inner HTML of one panel (an SVG chart, big numbers or a table)."""
    _x, _y, w, h = panel.grid
    width, height = w * COL_PX, h * ROW_PX - 44
    if not data.rows:
        return '<div class="nodata">No data</div>'
    kind = panel.type
    if kind == "stat":
        return _stat(panel, data)
    if kind == "timeseries":
        return _timeseries(panel, data, width, height)
    if kind in ("bargauge", "barchart"):
        return _bars(panel, data, width, height)
    if kind == "piechart":
        return _pie(panel, data, width, height)
    return _table(data)


def render_report(client: Any, rng: TimeRange | None = None, dashboard: Dashboard | None = None,
                  variables: Mapping[str, VarValue] | None = None) -> str:
    """The report page for ``dashboard`` (default: the wall display) over ``rng`` (default: the data's range)."""
    dashboard = dashboard or find_dashboard(WALL_UID)
    rng = rng or data_range(client)
    values = {**dashboard.variables, **(variables or {})}
    cells = []
    for panel in dashboard.panels:
        if not panel.has_query:
            continue
        x, y, w, h = panel.grid
        try:
            inner = render_panel(panel, run_panel(client, panel, rng, values))
        except StorageError as err:
            log.warning("%s", err)
            inner = f'<div class="err">{escape(str(err))}</div>'
        cells.append(f'<section class="panel" data-panel-type="{panel.type}" data-panel-id="{panel.id}" '
                     f'style="grid-column:{x + 1}/span {w};grid-row:{y + 1}/span {h}">'
                     f'<h2 title="{escape(str(panel.raw.get("description", "")))}">{escape(panel.title)}</h2>'
                     f'<div class="body">{inner}</div></section>')
    span = f"{rng.start:%Y-%m-%d %H:%M:%S} – {rng.end:%Y-%m-%d %H:%M:%S} UTC"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(dashboard.title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>'
            f'<header><h1>{escape(dashboard.title)}</h1><div class="range">{escape(span)} · '
            f'bucket {rng.interval()} s</div></header><main class="grid">{"".join(cells)}</main>'
            f'<footer>Panels and SQL from {escape(dashboard.path.name)} (uid {escape(dashboard.uid)}); '
            f'generated {generated} without Grafana.</footer></body></html>')


def write_report(client: Any, out_path: str | Path = "data/report.html", rng: TimeRange | None = None,
                 dashboard: Dashboard | None = None) -> Path:
    """Render the wall display into ``out_path`` (parents created) and return its absolute path."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(client, rng, dashboard), encoding="utf-8")
    log.info("report written to %s", out)
    return out.resolve()
