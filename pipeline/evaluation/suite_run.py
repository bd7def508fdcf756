"""``evaluate --suite``: generate what is missing, replay every chain in its own process, report.

Each chain (and the AMLSim sample) is replayed by :mod:`pipeline.evaluation.suite_worker` into a
fresh chDB directory that is deleted afterwards; ``--jobs N`` runs N of them at once (each replay
is one busy core plus the engine's background work, so more jobs than cores only adds contention).
The alerts come back as JSON and are scored here, in the parent, against the chain's labels.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.evaluation import suite as suite_module
from pipeline.evaluation.labels import load_labels
from pipeline.evaluation.metrics import AlertRow, Report, evaluate
from pipeline.evaluation.suite import (
    AmlsimSample,
    SuiteChain,
    chains_for,
    generator_version,
    materialise,
    materialise_amlsim,
)
from pipeline.evaluation.suite_report import (
    FLOORS,
    ChainResult,
    Floors,
    amlsim_checks,
    format_amlsim,
    format_chain,
    format_checks,
    format_split,
    pool,
    split_checks,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class SuiteError(PipelineError):
    """A chain of the suite could not be replayed (the worker's own error line is in the message)."""


@dataclass(frozen=True)
class Job:
    name: str
    split: str  # tuning | validation | amlsim
    folder: Path
    blocks: int


@dataclass
class JobOutcome:
    job: Job
    alerts: list[AlertRow]
    tx_count: int
    seconds: float


def replay_job(job: Job, cache: Path, config: str | None, on_blocks: Callable[[int], None]) -> JobOutcome:
    """Run the worker on ``job`` and read its alerts back; raises :class:`SuiteError` on failure."""
    runs = cache / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{job.name}-", dir=runs))
    out, log_path = work / "result.json", work / "worker.log"
    cmd = [sys.executable, "-m", "pipeline.evaluation.suite_worker", "--input", str(job.folder / "blocks.jsonl.gz"),
           "--dsn", f"chdb://{work / 'chdb'}", "--out", str(out)]
    if config:
        cmd += ["--config", str(Path(config).resolve())]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    started, done = time.monotonic(), 0
    try:
        with open(log_path, "wb") as log, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env,
                                                           text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("progress "):
                    n = int(line.split()[1])
                    on_blocks(n - done)
                    done = n
            code = proc.wait()
        if code != 0 or not out.is_file():
            lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
            last = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else "")
            raise SuiteError(f"{job.name}: replay failed (exit {code}): {last.removeprefix('error: ')[:300]}")
        doc = orjson.loads(out.read_bytes())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    alerts = [AlertRow(a[0], a[1], a[2], a[3], tuple(a[4]), a[5], tuple(a[6])) for a in doc["alerts"]]
    return JobOutcome(job, alerts, int(doc["tx_count"]), time.monotonic() - started)


def _prepare(chains: list[SuiteChain], amlsim: AmlsimSample | None, cache: Path, say: Callable[[str], None],
             progress: bool) -> list[Job]:
    version = generator_version()
    jobs: list[Job] = []
    bar = tqdm(total=len(chains) + (amlsim is not None), unit="chain", desc="generate", disable=not progress,
               leave=False)
    try:
        for chain in chains:
            folder, meta, reused = materialise(chain, cache, version)
            say(f"{'reused' if reused else 'generated'} {chain.name}: {meta['tx_count']:,} tx, {meta['blocks']:,} "
                f"blocks ({chain.profile.name} profile, seed {chain.seed}) in {folder}")
            jobs.append(Job(chain.name, chain.split, folder, meta["blocks"]))
            bar.update(1)
        if amlsim is not None:
            folder, meta, reused = materialise_amlsim(amlsim, cache)
            say(f"{'reused' if reused else 'converted'} {amlsim.name}: {meta['tx_count']:,} tx, {meta['blocks']:,} "
                f"blocks from {amlsim.folder}")
            jobs.append(Job(amlsim.name, "amlsim", folder, meta["blocks"]))
            bar.update(1)
    finally:
        bar.close()
    return jobs


def run_suite(split: str = "all", cache: Path = Path("data/suite"), config: str | None = None, jobs: int = 1,
              amlsim: AmlsimSample | None = None, progress: bool = True, floors: Floors = FLOORS,
              suite: tuple[SuiteChain, ...] | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate, replay and score; prints as it goes and returns the JSON document of the run.

    A chain whose replay fails is reported (``doc["failures"]``) and the others still run.
    """
    if jobs < 1:
        raise PipelineError(f"--jobs must be >= 1, got {jobs}")
    started = time.monotonic()
    chains = chains_for(split, suite_module.SUITE if suite is None else suite)
    todo = _prepare(chains, amlsim, cache, say, progress)
    bar = tqdm(total=sum(j.blocks for j in todo), unit="block", desc="replay", disable=not progress,
               mininterval=0.5, leave=False)
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            bar.update(n)

    failures: list[str] = []
    outcomes: dict[str, JobOutcome] = {}
    reports: dict[str, Report] = {}
    doc: dict[str, Any] = {"split": split, "config": config, "floors": floors.__dict__, "splits": {}, "chains": {}}
    with ThreadPoolExecutor(max_workers=jobs) as pool_:
        futures = [pool_.submit(replay_job, j, cache, config, advance) for j in todo]
        for fut in as_completed(futures):  # each chain's table as soon as its replay is done
            try:
                o = fut.result()
            except SuiteError as err:
                failures.append(str(err))
                continue
            outcomes[o.job.name] = o
            reports[o.job.name] = report = evaluate(o.alerts, load_labels(o.job.folder), o.tx_count)
            if o.job.split != "amlsim":
                doc["chains"][o.job.name] = dict(report.as_dict(), split=o.job.split, seconds=round(o.seconds, 1))
                with lock:
                    bar.clear()
                    say("\n" + format_chain(ChainResult(o.job.name, o.job.split, report, o.seconds)))
                    bar.refresh()
    bar.close()
    summaries = {}
    for split_name in ("tuning", "validation"):
        results = [ChainResult(j.name, split_name, reports[j.name], outcomes[j.name].seconds)
                   for j in todo if j.split == split_name and j.name in outcomes]
        if results:
            summaries[split_name] = summary = pool(split_name, results)
            say("")
            say(format_split(summary))
            doc["splits"][split_name] = dict(summary.as_dict(), checks=[c.as_dict() for c in split_checks(summary, floors)])
    aml_report: Report | None = None
    if amlsim is not None and amlsim.name in outcomes:
        o = outcomes[amlsim.name]
        aml_report = reports[amlsim.name]
        say("")
        say(format_amlsim(amlsim.name, aml_report, o.seconds))
        doc["amlsim"] = dict(aml_report.as_dict(), name=amlsim.name, seconds=round(o.seconds, 1),
                             checks=[c.as_dict() for c in amlsim_checks(aml_report, floors)])
    say("")
    say("Summary against the issue's floors (pooled over each split's chains)")
    for split_name, summary in summaries.items():
        say(format_checks(f"{split_name}{' (never tune on this split)' if split_name == 'validation' else ''}",
                          split_checks(summary, floors)))
    if aml_report is not None:
        say(format_checks(amlsim.name if amlsim else "amlsim", amlsim_checks(aml_report, floors)))
    elapsed = time.monotonic() - started
    doc["seconds"] = round(elapsed, 1)
    doc["failures"] = failures
    say("\nep R: share of episodes an alert of their typology named (subject or details.members); ep R*: named "
        "by any alert; addr P/R/F1 and tp/pred/lab: address level over the addresses alerts name.")
    say(f"Suite run in {elapsed:.0f} s ({len(outcomes)} replays, --jobs {jobs}); "
        "definitions: pipeline/evaluation/metrics.py, floors: pipeline/evaluation/suite_report.py.")
    for failure in failures:
        say(f"FAILED {failure}")
    return doc
