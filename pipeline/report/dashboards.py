"""Read the provisioned Grafana dashboards: panels, their SQL and the variables' default values.

The dashboards under ``dashboards/`` are the single source of the panel SQL: Grafana runs it, the
HTML report and the tests read it from the same JSON. Only the parts we need are modelled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.report.macros import ALL, VarValue

log = logging.getLogger(__name__)

PLUGIN_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_REF = "${datasource}"
# the repository checkout (pip install -e): dashboards/ sits next to pipeline/
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "json"


@dataclass(frozen=True, slots=True)
class Panel:
    id: int
    title: str
    type: str  # stat | timeseries | piechart | bargauge | barchart | table | text | row
    sql: str  # the first target's rawSql ("" for text and row panels)
    grid: tuple[int, int, int, int]  # x, y, w, h in Grafana's 24-column grid
    unit: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_query(self) -> bool:
        return bool(self.sql.strip())


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    path: Path
    panels: tuple[Panel, ...]
    variables: dict[str, VarValue]  # default selections
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def panel(self, title: str) -> Panel:
        for p in self.panels:
            if p.title == title:
                return p
        raise KeyError(f"{self.path.name}: no panel titled {title!r}")


def _walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _walk(p.get("panels") or [])  # collapsed rows keep their panels inside


def _default(var: dict[str, Any]) -> VarValue:
    current = var.get("current") or {}
    value = current.get("value", var.get("query", "") if var.get("type") in ("textbox", "constant") else "")
    if var.get("includeAll") and (value in ("", None, ALL, [ALL]) or value == ["$__all"]):
        return ALL
    return value


def load_dashboard(path: Path) -> Dashboard:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"dashboard {path}: {err}") from None
    panels = []
    for p in sorted(_walk(doc.get("panels", [])), key=lambda p: (p.get("gridPos", {}).get("y", 0),
                                                                 p.get("gridPos", {}).get("x", 0))):
        targets = p.get("targets") or []
        g = p.get("gridPos") or {}
        unit = (((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit")) or ""
        panels.append(Panel(int(p.get("id", 0)), str(p.get("title", "")), str(p.get("type", "")),
                            str(targets[0].get("rawSql", "")) if targets else "",
                            (g.get("x", 0), g.get("y", 0), g.get("w", 12), g.get("h", 8)), unit, p))
    variables = {v["name"]: _default(v) for v in (doc.get("templating") or {}).get("list", [])
                 if v.get("type") != "datasource"}
    return Dashboard(str(doc.get("uid", "")), str(doc.get("title", "")), path, tuple(panels), variables, doc)


def load_dashboards(folder: Path | None = None) -> list[Dashboard]:
    folder = folder or DEFAULT_DIR
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ConfigError(f"no dashboards (*.json) in {folder}")
    return [load_dashboard(f) for f in files]


def find_dashboard(uid: str, folder: Path | None = None) -> Dashboard:
    for d in load_dashboards(folder):
        if d.uid == uid:
            return d
    raise ConfigError(f"no dashboard with uid {uid!r} in {folder or DEFAULT_DIR}")
