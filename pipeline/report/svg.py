"""Charts as inline SVG text, generated in Python: the report must open with no network at all.

Each function takes plain data and returns one ``<svg>`` element sized by ``viewBox`` (it scales
with its box). Colours follow Grafana's classic palette on a dark wall-display background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape

PALETTE = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0",
           "#508642", "#cca300", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477")
TEXT = "#d8d9da"
MUTED = "#8e8e8e"
GRID = "#2c3235"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def fmt(value: float | None, unit: str = "") -> str:
    """A value as a wall display shows it: compact, with its unit."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    v = float(value)
    if unit == "s":
        return _duration(v)
    prefix = "$" if unit == "currencyUSD" else ""
    a = abs(v)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= div:
            return f"{prefix}{v / div:.3g}{suffix}"
    if a == 0 or float(v).is_integer():
        return f"{prefix}{int(v)}"
    return f"{prefix}{v:.3g}" if a < 100 else f"{prefix}{v:.0f}"


def _duration(s: float) -> str:
    a = abs(s)
    for div, suffix in ((31_536_000, "y"), (86_400, "d"), (3600, "h"), (60, "min")):
        if a >= div:
            return f"{s / div:.3g} {suffix}"
    return f"{s:.3g} s" if a >= 0.01 or a == 0 else f"{s * 1000:.3g} ms"


def _nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < hi - step * 1e-9:  # the last tick is at or above the highest value
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" class="chart">'
            + "".join(body) + "</svg>")


def _text(x: float, y: float, s: str, size: int = 13, anchor: str = "start", fill: str = TEXT,
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}">{escape(s)}</text>')


def _legend(names: Sequence[str], x0: float, y0: float, width: float, size: int = 13) -> tuple[list[str], float]:
    """Legend swatches flowing left to right; returns the elements and the height used."""
    out, x, y = [], x0, y0
    for i, name in enumerate(names):
        w = 22 + len(name) * size * 0.58
        if x + w > x0 + width and x > x0:
            x, y = x0, y + size + 8
        out.append(f'<rect x="{x:.1f}" y="{y - size + 2:.1f}" width="12" height="12" rx="2" fill="{color(i)}"/>')
        out.append(_text(x + 17, y, name, size))
        x += w + 12
    return out, (y - y0) + size + 8


def time_chart(times: Sequence[datetime], series: dict[str, Sequence[float]], *, bars: bool = False,
               stacked: bool = False, unit: str = "", width: int = 900, height: int = 320,
               title: str = "") -> str:
    """Lines (or stacked bars) over a shared time axis; ``series`` values align with ``times``."""
    names = list(series)
    left, right, top = 64, 16, 12
    _, legend_h = _legend(names, left, 0, width - left - right)
    bottom = 34 + legend_h
    pw, ph = width - left - right, height - top - bottom
    n = len(times)
    if stacked:
        totals = [sum(float(series[s][i] or 0) for s in names) for i in range(n)]
        hi = max(totals or [1])
    else:
        hi = max((float(v or 0) for s in names for v in series[s]), default=1)
    ticks = _nice_ticks(0, hi or 1)
    top_v = ticks[-1] or 1
    t0 = times[0].timestamp() if n else 0
    t1 = times[-1].timestamp() if n else 1
    span = (t1 - t0) or 1
    slot = pw / max(n, 1)

    def xpos(i: int) -> float:
        return left + (slot * (i + 0.5) if bars else (times[i].timestamp() - t0) / span * pw)

    def ypos(v: float) -> float:
        return top + ph - (v / top_v) * ph

    body = [f'<rect x="0" y="0" width="{width}" height="{height}" fill="none"/>']
    for t in ticks:
        y = ypos(t)
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>')
        body.append(_text(left - 8, y + 4, fmt(t, unit), 12, "end", MUTED))
    for k in range(5 if n > 1 else n):
        i = round(k * (n - 1) / 4) if n > 1 else 0
        body.append(_text(xpos(i), top + ph + 18, times[i].strftime("%H:%M"), 12, "middle", MUTED))
    if bars:
        base = [0.0] * n
        bw = max(slot * 0.8, 1)
        for si, s in enumerate(names):
            for i, v in enumerate(series[s]):
                v = float(v or 0)
                if v <= 0:
                    continue
                b = base[i] if stacked else 0.0
                y1, y0 = ypos(b + v), ypos(b)
                body.append(f'<rect x="{xpos(i) - bw / 2:.1f}" y="{y1:.1f}" width="{bw:.1f}" '
                            f'height="{max(y0 - y1, 0.5):.1f}" fill="{color(si)}"/>')
                if stacked:
                    base[i] += v
    else:
        for si, s in enumerate(names):
            pts = " ".join(f"{xpos(i):.1f},{ypos(float(v or 0)):.1f}" for i, v in enumerate(series[s]))
            if n == 1:
                body.append(f'<circle cx="{xpos(0):.1f}" cy="{ypos(float(series[s][0] or 0)):.1f}" r="4" fill="{color(si)}"/>')
            else:
                area = f"{xpos(0):.1f},{ypos(0):.1f} {pts} {xpos(n - 1):.1f},{ypos(0):.1f}"
                body.append(f'<polygon points="{area}" fill="{color(si)}" fill-opacity="0.12"/>')
                body.append(f'<polyline points="{pts}" fill="none" stroke="{color(si)}" stroke-width="2.5"/>')
    body.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="{MUTED}"/>')
    body.extend(_legend(names, left, top + ph + 44, width - left - right)[0])
    return _svg(width, height, body, title)


def hbar_chart(labels: Sequence[str], values: Sequence[float], *, unit: str = "", max_value: float | None = None,
               colors: Sequence[str] | None = None, width: int = 900, height: int = 320, title: str = "",
               label_chars: int = 36) -> str:
    """Horizontal bars, one per label, value printed at the end of the bar."""
    n = max(len(labels), 1)
    row = (height - 8) / n
    size = int(max(11, min(20, row * 0.55)))
    longest = min(max((len(s) for s in labels), default=1), label_chars)
    label_size = max(9.0, min(size, (width * 0.48 - 16) / (longest * 0.68)))
    label_w = longest * label_size * 0.68 + 16
    value_w = 90
    pw = width - label_w - value_w - 10
    top = max(max_value or 0, max((float(v or 0) for v in values), default=0)) or 1
    body = []
    for i, (lab, v) in enumerate(zip(labels, values, strict=False)):
        y = 4 + i * row
        v = float(v or 0)
        fill = colors[i] if colors else color(i)
        short = lab if len(lab) <= label_chars else lab[: label_chars - 1] + "…"
        body.append(_text(label_w - 8, y + row / 2 + label_size * 0.35, short, int(label_size), "end"))
        body.append(f'<rect x="{label_w:.1f}" y="{y + row * 0.15:.1f}" width="{pw:.1f}" height="{row * 0.7:.1f}" '
                    f'fill="{GRID}" rx="2"/>')
        body.append(f'<rect x="{label_w:.1f}" y="{y + row * 0.15:.1f}" width="{max(pw * v / top, 1):.1f}" '
                    f'height="{row * 0.7:.1f}" fill="{fill}" rx="2"/>')
        body.append(_text(label_w + pw + 8, y + row / 2 + size * 0.35, fmt(v, unit), size, "start", TEXT, "bold"))
    return _svg(width, height, body, title)


def donut(labels: Sequence[str], values: Sequence[float], *, width: int = 600, height: int = 320,
          title: str = "") -> str:
    """A donut with a legend table (name, value, percent) on its right."""
    total = sum(float(v or 0) for v in values) or 1
    r = min(height / 2 - 10, width * 0.2)
    cx, cy, inner = r + 10, height / 2, r * 0.58
    body, angle = [], -math.pi / 2
    for i, v in enumerate(values):
        frac = float(v or 0) / total
        if frac <= 0:
            continue
        if frac >= 0.9999:
            body.append(f'<circle cx="{cx}" cy="{cy}" r="{(r + inner) / 2:.1f}" fill="none" stroke="{color(i)}" '
                        f'stroke-width="{r - inner:.1f}"/>')
            continue
        a1 = angle + frac * 2 * math.pi
        large = 1 if frac > 0.5 else 0
        p = [(cx + r * math.cos(angle), cy + r * math.sin(angle)), (cx + r * math.cos(a1), cy + r * math.sin(a1)),
             (cx + inner * math.cos(a1), cy + inner * math.sin(a1)), (cx + inner * math.cos(angle), cy + inner * math.sin(angle))]
        body.append(f'<path d="M{p[0][0]:.1f},{p[0][1]:.1f} A{r:.1f},{r:.1f} 0 {large} 1 {p[1][0]:.1f},{p[1][1]:.1f} '
                    f'L{p[2][0]:.1f},{p[2][1]:.1f} A{inner:.1f},{inner:.1f} 0 {large} 0 {p[3][0]:.1f},{p[3][1]:.1f} Z" '
                    f'fill="{color(i)}" stroke="#181b1f" stroke-width="1.5"/>')
        angle = a1
    body.append(_text(cx, cy + 4, fmt(total), 28, "middle", TEXT, "bold"))
    n = len(labels)
    row = min(26, (height - 10) / max(n, 1))
    size = int(max(10, min(16, row * 0.7)))
    x = cx + r + 20
    name_chars = max(4, int((width - 96 - x - size) / (size * 0.6)))
    for i, (lab, v) in enumerate(zip(labels, values, strict=False)):
        y = 8 + i * row + row * 0.7
        short = lab if len(lab) <= name_chars else lab[: name_chars - 1] + "…"
        body.append(f'<rect x="{x:.1f}" y="{y - size + 2:.1f}" width="{size - 2}" height="{size - 2}" rx="2" fill="{color(i)}"/>')
        body.append(_text(x + size + 4, y, short, size))
        body.append(_text(width - 48, y, fmt(v), size, "end", TEXT, "bold"))
        body.append(_text(width - 4, y, f"{float(v or 0) / total:.0%}", size, "end", MUTED))
    return _svg(width, height, body, title)
