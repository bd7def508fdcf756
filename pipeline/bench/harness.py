"""Run every measurement of one benchmark invocation and assemble the report (a plain dict -> JSON).

Order: input (generated or reused), parse-only baseline, end-to-end replay, stage breakdown,
paced replays for latency, then the multi-process run. Each measured replay is a
:mod:`pipeline.bench.worker` subprocess on a fresh chDB directory under ``out/runs/``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.bench.dataset import blocks_for, ensure_chain, prefix
from pipeline.bench.profile import summarize_collapsed
from pipeline.errors import PipelineError
from pipeline.sources.files import iter_replay, resolve_inputs

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
TARGET_TX_S = 20_000
TARGET_P99_X10_MS = 1_000.0
TARGET_RSS_GROWTH = 0.10


class BenchError(PipelineError):
    """A measured run failed; the message holds the worker's last error line."""


@dataclass(frozen=True)
class BenchConfig:
    tx: int = 1_000_000
    seed: int = 0
    out: Path = Path("bench/out")
    pace: tuple[tuple[float, int], ...] = ((1.0, 100), (10.0, 300))  # (speed, blocks) per paced run
    processes: int = 1
    config: str | None = None  # settings file for the workers
    profile: bool = False  # py-spy record the end-to-end run
    latency_only: bool = False  # only the paced runs
    timeout_s: float = 3600.0
    extra: dict[str, Any] = field(default_factory=dict)


def run_bench(cfg: BenchConfig, say=print) -> dict[str, Any]:
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"version": 1, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "machine": _machine(),
                              "config": {"tx": cfg.tx, "seed": cfg.seed, "processes": cfg.processes,
                                         "pace": [list(p) for p in cfg.pace], **cfg.extra}}
    t0 = time.perf_counter()
    chain, generated = ensure_chain(out, cfg.seed, blocks_for(cfg.tx))
    report["input"] = {"path": str(chain.blocks_file), "blocks": chain.blocks, "transactions": chain.transactions,
                       "generated": generated, "prepare_s": round(time.perf_counter() - t0, 2)}
    say(f"input: {chain.blocks:,} blocks, {chain.transactions:,} tx ({'generated' if generated else 'reused'}) "
        f"at {chain.directory}")

    if not cfg.latency_only:
        say("parse-only baseline ...")
        report["parse_only"] = parse_only(chain.blocks_file)

        say("end-to-end replay (1 process) ...")
        profile_file = out / "runs" / "e2e.collapsed" if cfg.profile else None
        e2e = _worker("replay", chain.blocks_file, out / "runs" / "e2e", cfg, profile_to=profile_file)
        e2e["tx_per_s"] = round(e2e["transactions"] / max(e2e["seconds"], 1e-9), 1)
        report["end_to_end"] = e2e
        report["ratio_to_parse"] = round(e2e["tx_per_s"] / report["parse_only"]["tx_per_s"], 4)
        if profile_file is not None and profile_file.is_file():
            report["profile"] = summarize_collapsed(profile_file)

        say("stage breakdown ...")
        report["stages"] = stage_breakdown(_worker("stages", chain.blocks_file, out / "runs" / "stages", cfg), e2e)

    report["latency"] = {}
    for speed, blocks in cfg.pace:
        path, _tx = prefix(chain, blocks)
        say(f"paced replay x{speed:g}: {blocks} blocks (~{blocks * 3 / speed:.0f} s) ...")
        run = _worker("replay", path, out / "runs" / f"paced_x{speed:g}", cfg, speed=speed)
        report["latency"][f"x{speed:g}"] = {"speed": speed, "blocks": run["blocks"], "transactions": run["transactions"],
                                            "seconds": run["seconds"], **run["latency"]}

    if cfg.processes > 1 and not cfg.latency_only:
        say(f"end-to-end replay ({cfg.processes} processes) ...")
        report["processes"] = cluster(chain.blocks_file, out / "runs" / f"cluster_{cfg.processes}", cfg, e2e)
    report["targets"] = targets(report)
    report["total_s"] = round(time.perf_counter() - t0, 1)
    return report


def parse_only(path: Path) -> dict[str, Any]:
    """Read and JSON-decode every block of ``path``, nothing else: the ceiling for a Python pipeline."""
    t0 = time.perf_counter()
    blocks = tx = 0
    for item in iter_replay(resolve_inputs([str(path)])):
        if isinstance(item.payload, dict):
            blocks += 1
            tx += len(item.payload.get("transactions") or ())
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "blocks": blocks, "transactions": tx,
            "tx_per_s": round(tx / max(seconds, 1e-9), 1)}


def stage_breakdown(stages: dict[str, Any], e2e: dict[str, Any]) -> dict[str, Any]:
    """µs per transaction and share of each stage; "other" is what the flow costs beyond their sum."""
    tx = max(stages["counts"]["transactions"], 1)
    seconds = stages["seconds"]
    total = sum(seconds.values())
    per_stage = {name: {"seconds": s, "us_per_tx": round(s / tx * 1e6, 2), "share": round(s / total, 4) if total else 0.0}
                 for name, s in seconds.items()}
    e2e_us = e2e["seconds"] / max(e2e["transactions"], 1) * 1e6
    return {"per_stage": per_stage, "sum_us_per_tx": round(total / tx * 1e6, 2),
            "end_to_end_us_per_tx": round(e2e_us, 2),
            "other_us_per_tx": round(e2e_us - total / tx * 1e6, 2),
            "stages_only_tx_per_s": round(tx / max(total, 1e-9), 1),
            "counts": stages["counts"], "committed": stages["committed"]}


def cluster(path: Path, run_dir: Path, cfg: BenchConfig, single: dict[str, Any]) -> dict[str, Any]:
    """The same replay as ``cfg.processes`` Bytewax processes on 127.0.0.1; scaling vs one process."""
    n = cfg.processes
    _fresh(run_dir)
    addresses = ";".join(f"127.0.0.1:{port}" for port in _free_ports(n))
    procs = [subprocess.Popen(_command("cluster", path, run_dir / "chdb", cfg) +
                              ["--process-id", str(i), "--addresses", addresses],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True)
             for i in range(n)]
    # A member that dies leaves the others waiting for it forever: bound the wait by the 1-process run.
    deadline = time.monotonic() + min(cfg.timeout_s, max(120.0, 10.0 * single["seconds"]))
    results, errors = [], []
    for i, p in enumerate(procs):
        try:
            stdout, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
                q.communicate()
            return {"n": n, "error": f"process {i} did not finish in time (a member died or hangs)"}
        if p.returncode != 0:
            errors.append(f"process {i}: {_last_line(stderr)}")
        else:
            results.append(_last_json(stdout, stderr))
    if errors:
        return {"n": n, "error": "; ".join(errors)}
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    tx = sum(r["transactions"] for r in results)
    tx_s = tx / max(seconds, 1e-9)
    committed: dict[str, int] = {}
    for r in results:
        for table, k in r["committed"].items():
            committed[table] = committed.get(table, 0) + k
    return {"n": n, "seconds": round(seconds, 3), "transactions": tx, "tx_per_s": round(tx_s, 1),
            "scaling": round(tx_s / single["tx_per_s"], 4), "committed": committed,
            "per_process": [{k: r[k] for k in ("process_id", "seconds", "blocks", "transactions", "maxrss_mb")}
                            for r in results]}


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, reported (never asserted): value, target and whether it was met."""
    e2e = report.get("end_to_end")
    tx_s = e2e["tx_per_s"] if e2e else None
    out: dict[str, Any] = {"tx_per_s_one_process": {"value": tx_s, "target": TARGET_TX_S,
                                                    "met": None if tx_s is None else tx_s >= TARGET_TX_S}}
    x10 = report["latency"].get("x10", {}).get("alert", {})
    p99 = x10.get("p99_ms")
    out["p99_alert_latency_x10_ms"] = {"value": p99, "target": TARGET_P99_X10_MS,
                                       "met": None if p99 is None else p99 <= TARGET_P99_X10_MS}
    growth = e2e["rss"].get("growth_q2_to_end") if e2e else None
    out["rss_growth_q2_to_end"] = {"value": growth, "target": TARGET_RSS_GROWTH,
                                   "met": None if growth is None else abs(growth) <= TARGET_RSS_GROWTH}
    return out


def _worker(mode: str, path: Path, run_dir: Path, cfg: BenchConfig, speed: float = 0.0,
            profile_to: Path | None = None) -> dict[str, Any]:
    _fresh(run_dir)
    cmd = _command(mode, path, run_dir / "chdb", cfg, speed)
    if profile_to is not None:
        cmd = [_py_spy(), "record", "--format", "raw", "--rate", "50", "--nonblocking",
               "-o", str(profile_to), "--", *cmd]
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, env=_env(), timeout=cfg.timeout_s)
    except subprocess.TimeoutExpired:
        raise BenchError(f"bench {mode} run on {path} did not finish within {cfg.timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise BenchError(f"bench {mode} run on {path} failed: {_last_line(done.stderr)}")
    return _last_json(done.stdout, done.stderr)


def _command(mode: str, path: Path, chdb_dir: Path, cfg: BenchConfig, speed: float = 0.0) -> list[str]:
    cmd = [sys.executable, "-m", "pipeline.bench.worker", mode, "--input", str(path),
           "--dsn", f"chdb://{chdb_dir.resolve()}", "--speed", str(speed)]
    return cmd + (["--config", cfg.config] if cfg.config else [])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _fresh(run_dir: Path) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    return found


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _last_json(stdout: str, stderr: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"bench worker printed no figures: {_last_line(stderr)}")


def _machine() -> dict[str, Any]:
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_1m_at_start": load}
