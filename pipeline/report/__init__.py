"""Dashboards without Grafana: the panel SQL of ``dashboards/json`` run and drawn as one HTML page.

``write_report(client, out_path)`` renders the wall display's panels (big numbers, time series,
bars, donut, tables as inline SVG and HTML: no script, no CDN, no network) over the stored data's
time range and returns the file's path. :mod:`pipeline.report.macros` expands the Grafana
ClickHouse plugin's macros, :mod:`pipeline.report.dashboards` reads the dashboard JSON.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "write_report": "pipeline.report.html", "render_report": "pipeline.report.html",
    "load_dashboards": "pipeline.report.dashboards", "find_dashboard": "pipeline.report.dashboards",
    "expand": "pipeline.report.macros", "TimeRange": "pipeline.report.macros",
    "run_panel": "pipeline.report.queries", "data_range": "pipeline.report.queries",
}
__all__ = ["TimeRange", "data_range", "expand", "find_dashboard", "load_dashboards", "render_report",
           "run_panel", "write_report"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
