"""Expand a Grafana ClickHouse panel query the way Grafana and the plugin would, without Grafana.

The same SQL feeds the dashboards and the HTML report, and the tests run it against chDB: so the
substitution must match what ``grafana-clickhouse-datasource`` (v4) does at query time:

1. the frontend resolves ``$__conditionalAll(condition, $var)`` (``1=1`` when ``var`` selects
   All or nothing) and then template variables, formatting a multi-value selection as
   ``'a','b'`` and a single value as the bare text (``CHDatasource.applyTemplateVariables``) —
   unescaped — unless the reference names a Grafana format, ``${var:format}``, applied as
   Grafana's format registry does (see :func:`format_value`);
2. the backend expands the time macros (``pkg/macros/macros.go``): ``$__timeFilter(col)`` ->
   ``col >= toDateTime(FROM) AND col <= toDateTime(TO)`` in epoch seconds, the ``_ms`` forms with
   ``fromUnixTimestamp64Milli``, ``$__timeInterval(col)`` ->
   ``toStartOfInterval(toDateTime(col), INTERVAL N second)``, ``$__interval_s`` -> ``N``.

Anything that still looks like a macro or a variable afterwards is an error naming it, so a typo
in a dashboard fails a test instead of failing on a wall display.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from pipeline.errors import PipelineError

ALL = "$__all"
VarValue = str | Sequence[str] | None

# Grafana's "nice" intervals, the ones its auto interval snaps to (seconds)
_NICE_INTERVALS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
                   21600, 43200, 86400, 604800)


class MacroError(PipelineError):
    """A panel query uses a macro or a variable that cannot be expanded; names the query."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A dashboard time range (UTC) and the bucket width Grafana would pick for it."""

    start: datetime
    end: datetime
    interval_s: int = 0  # 0 = pick one giving about ``max_points`` buckets

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeRange needs timezone-aware datetimes (UTC)")
        if self.end <= self.start:
            raise ValueError(f"time range ends ({self.end}) before it starts ({self.start})")

    def interval(self, max_points: int = 40) -> int:
        if self.interval_s > 0:
            return self.interval_s
        want = int((self.end - self.start).total_seconds()) / max_points
        return next((n for n in _NICE_INTERVALS if n >= want), _NICE_INTERVALS[-1])

    @property
    def from_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def to_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def utc(value: str | float | datetime) -> datetime:
    """A UTC datetime from ISO 8601 text, epoch seconds/milliseconds, or a datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        n = float(value)
        return datetime.fromtimestamp(n / 1000 if n > 1e11 else n, UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MacroError(f"time {value!r}: expected ISO 8601 (2024-04-24T23:00:00Z) or epoch seconds") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def macro_args(sql: str, open_at: int) -> tuple[list[str], int]:
    """Arguments of the call whose ``(`` is at ``open_at`` (commas at depth 1), and the end index."""
    depth, start, args = 0, open_at + 1, []
    for i in range(open_at, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i].strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(sql[start:i].strip())
            start = i + 1
    raise MacroError(f"unbalanced parentheses after position {open_at} in: {sql[open_at:open_at + 60]!r}")


def _is_all(value: VarValue) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value in ("", ALL)
    return len(value) == 0 or ALL in value


def _conditional_all(sql: str, variables: Mapping[str, VarValue]) -> str:
    token = "$__conditionalAll("
    at = sql.rfind(token)
    while at != -1:
        args, end = macro_args(sql, at + len(token) - 1)
        if len(args) != 2:
            raise MacroError(f"$__conditionalAll takes (condition, $variable), got {len(args)} argument(s)")
        name = args[1].strip().lstrip("$").strip("{}")
        if name not in variables:
            raise MacroError(f"$__conditionalAll refers to unknown variable {args[1]!r}")
        phrase = "1=1" if _is_all(variables[name]) else args[0]
        sql = sql[:at] + phrase + sql[end:]
        at = sql.rfind(token)
    return sql


_VAR = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")


def _format(value: VarValue) -> str:
    """The plugin's own format (no ``:format`` given): multi-values quoted, nothing escaped."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return "'" + "','".join(value) + "'"


def _percent_encode(text: str) -> str:
    """Grafana's ``encodeURIComponentStrict``: UTF-8, every byte but RFC 3986 unreserved
    (``A-Z a-z 0-9 - _ . ~``) as ``%XX``. No quote or backslash can survive it."""
    return quote(text, safe="")


def _sqlstring(text: str) -> str:
    """Grafana's ``sqlstring``: ``'`` doubled, ``"`` as ``\\"``, in single quotes. A backslash is left
    alone, and ClickHouse reads ``\\'`` as an escaped quote: with ClickHouse this format is NOT
    enough on its own for untrusted text (the dashboards use ``percentencode``)."""
    return "'" + text.replace("'", "''").replace('"', '\\"') + "'"


FORMATS: dict[str, Callable[[list[str] | str], str]] = {
    "raw": lambda v: v if isinstance(v, str) else ",".join(v),
    "csv": lambda v: v if isinstance(v, str) else ",".join(v),
    "pipe": lambda v: v if isinstance(v, str) else "|".join(v),
    "sqlstring": lambda v: _sqlstring(v) if isinstance(v, str) else ",".join(map(_sqlstring, v)),
    "singlequote": lambda v: ("'" + v.replace("'", "\\'") + "'") if isinstance(v, str)
    else ",".join("'" + x.replace("'", "\\'") + "'" for x in v),
    "doublequote": lambda v: ('"' + v.replace('"', '\\"') + '"') if isinstance(v, str)
    else ",".join('"' + x.replace('"', '\\"') + '"' for x in v),
    "percentencode": lambda v: _percent_encode(v if isinstance(v, str) else "{" + ",".join(v) + "}"),
    "json": lambda v: v if isinstance(v, str) else json.dumps(list(v), separators=(",", ":")),
}


def format_value(value: VarValue, fmt: str | None) -> str:
    """``value`` as Grafana interpolates ``${var:fmt}`` (``fmt`` None: the plugin's own format).

    All (or nothing) with a format: Grafana would list every option, which a query variable
    only knows at run time; it is formatted here as an empty selection. The dashboards only use a
    formatted multi-value under ``$__conditionalAll``, which drops the condition for All anyway.
    """
    if fmt is None:
        return _format(value)
    if fmt not in FORMATS:
        raise MacroError(f"unknown variable format :{fmt} (known: {', '.join(sorted(FORMATS))})")
    if _is_all(value) and value not in ("",):
        value = []
    return FORMATS[fmt](value if isinstance(value, str) else list(value or []))


def _variables(sql: str, variables: Mapping[str, VarValue]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if name not in variables:
            raise MacroError(f"unknown template variable ${name} in: {sql.strip()[:80]!r}")
        return format_value(variables[name], m.group(2))

    return _VAR.sub(sub, sql)


def _dt(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _dt64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _time_macros(rng: TimeRange) -> dict[str, tuple[int, Callable[[list[str]], str]]]:
    """name -> (argument count, expansion), after ``pkg/macros/macros.go``."""
    n = rng.interval()
    s, e = rng.start, rng.end
    return {
        "fromTime": (0, lambda a: _dt(s)),
        "toTime": (0, lambda a: _dt(e)),
        "fromTime_ms": (0, lambda a: _dt64(s)),
        "toTime_ms": (0, lambda a: _dt64(e)),
        "timeFilter": (1, lambda a: f"{a[0]} >= {_dt(s)} AND {a[0]} <= {_dt(e)}"),
        "timeFilter_ms": (1, lambda a: f"{a[0]} >= {_dt64(s)} AND {a[0]} <= {_dt64(e)}"),
        "dateFilter": (1, lambda a: f"{a[0]} >= toDate('{s:%Y-%m-%d}') AND {a[0]} <= toDate('{e:%Y-%m-%d}')"),
        "dateTimeFilter": (2, lambda a: f"({a[0]} >= toDate('{s:%Y-%m-%d}') AND {a[0]} <= toDate('{e:%Y-%m-%d}'))"
                                        f" AND ({a[1]} >= {_dt(s)} AND {a[1]} <= {_dt(e)})"),
        "timeInterval": (1, lambda a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {n} second)"),
        "timeInterval_ms": (1, lambda a: f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {n * 1000} millisecond)"),
        "interval_s": (0, lambda a: str(n)),
    }


_MACRO = re.compile(r"\$__(\w+)")


def expand(sql: str, rng: TimeRange, variables: Mapping[str, VarValue] | None = None) -> str:
    """The SQL ClickHouse receives for panel query ``sql`` over ``rng`` with these variable values.

    >>> r = TimeRange(utc("2024-04-24T23:00:00Z"), utc("2024-04-24T23:10:00Z"))
    >>> expand("SELECT $__timeInterval(ts) AS time FROM t WHERE $__timeFilter(ts)", r)
    'SELECT toStartOfInterval(toDateTime(ts), INTERVAL 15 second) AS time FROM t WHERE ts >= toDateTime(1713999600) AND ts <= toDateTime(1714000200)'
    >>> expand("WHERE $__conditionalAll(severity IN (${severity}), $severity)", r, {"severity": ["high", "critical"]})
    "WHERE severity IN ('high','critical')"
    """
    variables = dict(variables or {})
    sql = _variables(_conditional_all(sql, variables), variables)
    macros = _time_macros(rng)
    out, pos = [], 0
    for m in _MACRO.finditer(sql):
        if m.start() < pos:
            continue
        name = m.group(1)
        if name not in macros:
            raise MacroError(f"unknown macro $__{name} in: {sql.strip()[:80]!r}")
        arity, fn = macros[name]
        out.append(sql[pos:m.start()])
        if arity:
            if m.end() >= len(sql) or sql[m.end()] != "(":
                raise MacroError(f"macro $__{name} needs {arity} argument(s) in parentheses")
            args, end = macro_args(sql, m.end())
            if len(args) != arity:
                raise MacroError(f"macro $__{name} takes {arity} argument(s), got {len(args)}")
            out.append(fn(args))
            pos = end
        else:
            out.append(fn([]))
            pos = m.end()
    out.append(sql[pos:])
    return "".join(out)
