"""The benchmark report as a readable table (the JSON is the report itself)."""

from __future__ import annotations

from typing import Any

STAGE_LABELS = {"read_parse": "read + JSON parse", "decode": "decode", "graph_features": "graph / features",
                "rules": "rules", "anomaly": "anomaly", "sinks": "sinks (rows + ClickHouse)"}


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f} ms"


def _met(t: dict[str, Any]) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[t["met"]]


W = 34


def render(r: dict[str, Any]) -> str:
    inp = r["input"]
    lines = [(f"Benchmark: {inp['transactions']:,} tx in {inp['blocks']:,} blocks (seed {r['config']['seed']}), "
             f"{r['machine']['cpus']} CPUs, Python {r['machine']['python']}"), ""]
    if "end_to_end" in r:
        lines += _throughput(r)
    lines += _latency(r) + _targets(r)
    return "\n".join(lines)


def _throughput(r: dict[str, Any]) -> list[str]:
    e2e, parse, w = r["end_to_end"], r["parse_only"], W
    lines: list[str] = []
    lines += [
        "Throughput",
        f"  {'parse only (read + orjson)':<{w}}{parse['tx_per_s']:>12,.0f} tx/s",
        f"  {'end to end, 1 process':<{w}}{e2e['tx_per_s']:>12,.0f} tx/s  ({e2e['seconds']:.1f} s)",
        f"  {'ratio end-to-end / parse':<{w}}{r['ratio_to_parse']:>12.3f}",
    ]
    procs = r.get("processes")
    if procs:
        if "error" in procs:
            lines.append(f"  {procs['n']} processes: not measured: {procs['error']}")
        else:
            lines.append(f"  {'end to end, ' + str(procs['n']) + ' processes':<{w}}{procs['tx_per_s']:>12,.0f} tx/s  "
                         f"({procs['seconds']:.1f} s, scaling x{procs['scaling']:.2f})")
    st = r["stages"]
    lines += ["", "Stage costs (pure stages on the same blocks)      µs/tx    share"]
    for name, s in st["per_stage"].items():
        lines.append(f"  {STAGE_LABELS.get(name, name):<{w + 10}}{s['us_per_tx']:>9.1f}  {s['share']:>6.1%}")
    lines += [f"  {'sum of stages':<{w + 10}}{st['sum_us_per_tx']:>9.1f}",
              f"  {'end to end (flow)':<{w + 10}}{st['end_to_end_us_per_tx']:>9.1f}",
              f"  {'other (dataflow runtime, joins)':<{w + 10}}{st['other_us_per_tx']:>9.1f}"]
    rss = e2e["rss"]
    q = " / ".join(f"{v:,.0f}" for v in rss["quarters_mb"])
    growth = rss.get("growth_q2_to_end")
    lines += ["", "Memory (end-to-end run)",
              f"  {'RSS at quarters Q1/Q2/Q3/Q4':<{w}}{q} MB",
              f"  {'peak / final RSS':<{w}}{rss['peak_mb']:,.0f} / {rss['final_mb']:,.0f} MB",
              f"  {'growth Q2 -> Q4':<{w}}{'-' if growth is None else f'{growth:+.1%}'}"]
    prof = r.get("profile")
    if prof and prof.get("samples"):
        lines += ["", f"Profile of the end-to-end run ({prof['samples']} samples), self time by file"]
        lines += [f"  {name[:70]:<72}{share:>6.1%}" for name, share in prof["self_by_file"][:10]]
        lines += ["  self time by function:"]
        lines += [f"  {name[:70]:<72}{share:>6.1%}" for name, share in prof["self_by_function"][:10]]
    return lines


def _latency(r: dict[str, Any]) -> list[str]:
    lines = ["", "Latency (paced replays)        blocks   alert p50 / p95 / p99 (n)        block commit p50 / p95 / p99"]
    for name, lat in r["latency"].items():
        a, b = lat["alert"], lat["block_commit"]
        lines.append(f"  {name:<8} {lat['blocks']:>18}   {_ms(a['p50_ms'])} / {_ms(a['p95_ms'])} / {_ms(a['p99_ms'])} "
                     f"({a['n']})   {_ms(b['p50_ms'])} / {_ms(b['p95_ms'])} / {_ms(b['p99_ms'])}")
    return lines


def _targets(r: dict[str, Any]) -> list[str]:
    t, w = r["targets"], W
    return ["", "Targets (reported, not asserted)",
              f"  {'>= 20,000 tx/s, 1 process':<{w}}{_met(t['tx_per_s_one_process'])}",
              f"  {'p99 block-to-alert <= 1 s at x10':<{w}}{_met(t['p99_alert_latency_x10_ms'])}",
            f"  {'RSS flat within 10% Q2 -> end':<{w}}{_met(t['rss_growth_q2_to_end'])}"]
