"""``demo``: the main job, what ``python run_pipeline.py`` runs with no arguments.

Simulates three hours of labelled TRON traffic drawn from the *validation* profile (the chain of
the suite's ``validation-1``: deterministic by seed, reused when already generated), runs the full
pipeline on it into the embedded ClickHouse, and ends with the run summary and the evaluation of
the alerts against the simulator's ground truth. The validation profile, not the tuning one, so the
figures the main job prints are those of a chain nothing was tuned on.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import resources
from pathlib import Path

from pipeline.cli.common import add_common, settings_from
from pipeline.evaluation.suite import chains_for
from pipeline.runner import replay
from pipeline.storage.clickhouse import connect, parse_dsn
from pipeline.summary import render, stored_counts

_DEMO = chains_for("validation")[0]  # the main job replays the suite's first validation chain


def sample_paths() -> list[str]:
    """The real mainnet blocks bundled with the package (see pipeline/samples/mainnet/NOTICE.md)."""
    folder = resources.files("pipeline.samples").joinpath("mainnet")
    return sorted(str(p) for p in folder.iterdir() if p.name.endswith(".json"))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="the main job: simulate a labelled chain, run the full pipeline, evaluate",
        description="The main job (also what runs with no command): simulates a labelled TRON chain "
                    "(3 hours of mainnet-like traffic from the validation profile by default: randomised "
                    "laundering and fraud episodes among benign look-alikes), runs decode, graph features, "
                    "rules and anomaly scoring into the embedded ClickHouse, and prints a summary and the "
                    "evaluation against the labels.")
    p.add_argument("--blocks", type=int, default=_DEMO.blocks,
                   help=f"blocks to simulate (3 s each; default {_DEMO.blocks} = {_DEMO.blocks // 1200} h)")
    p.add_argument("--seed", type=int, default=_DEMO.seed, help=f"simulator seed (default {_DEMO.seed})")
    p.add_argument("--profile", default="validation", choices=("validation", "tuning", "classic"),
                   help="episode and look-alike distributions (default validation: the one nothing is tuned on)")
    p.add_argument("--sim-dir", default="data/sim", help="where the simulated chain goes (default data/sim)")
    p.add_argument("--keep", action="store_true",
                   help="keep what the database holds (default: an embedded chDB database is emptied first, "
                        "so the summary shows this run; a server database is never emptied)")
    p.add_argument("--sample", action="store_true",
                   help="replay the two bundled real mainnet blocks instead of a simulated chain")
    add_common(p)
    p.set_defaults(func=main)


def _simulated_chain(sim_dir: Path, blocks: int, seed: int, profile: str, progress: bool) -> Path:
    """Generate the chain unless ``sim_dir`` already holds the same seed, size, profile and generator."""
    from dataclasses import replace

    from pipeline.simulate.profile import PROFILES
    from pipeline.simulate.run import generator_version, simulate

    meta = sim_dir / "meta.json"
    version = generator_version()
    if meta.is_file():
        try:
            old = json.loads(meta.read_text())
            if ((old.get("seed"), old.get("blocks"), old.get("profile"), old.get("generator_version"))
                    == (seed, blocks, profile, version) and (sim_dir / "blocks.jsonl.gz").is_file()):
                print(f"Reusing the simulated chain in {sim_dir} (seed {seed}, {blocks} blocks, {profile} profile).")
                return sim_dir
        except (OSError, ValueError):
            pass
    started = time.monotonic()
    cfg = replace(_DEMO.sim_config(blocks=blocks, seed=seed), profile=PROFILES[profile])
    info = simulate(cfg, sim_dir, progress=progress)
    print(f"Simulated {info['blocks']:,} blocks, {info['tx_count']:,} transactions ({profile} profile), "
          f"{info['labelled_addresses']:,} labelled addresses in {time.monotonic() - started:.1f} s -> {sim_dir}")
    return sim_dir


def main(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    dsn = parse_dsn(settings.clickhouse.dsn)
    progress = not args.no_progress
    if args.sample:
        result = replay(sample_paths(), settings, progress=progress, source_name="sample")
        print(render(stored_counts(connect(dsn)), dsn, result.seconds, result.stats))
        return 0
    sim_dir = _simulated_chain(Path(args.sim_dir), args.blocks, args.seed, args.profile, progress)
    if dsn.embedded and not args.keep:
        client = connect(dsn)
        client.command(f"DROP DATABASE IF EXISTS {dsn.database}")
        client.close()
        from pipeline.audit.keys import heads_dir_for, retire_head_files

        retire_head_files(heads_dir_for(settings.audit, settings.clickhouse.dsn), dsn.database)  # a new chain
        print(f"Starting from an empty database {dsn.database} in {dsn.path} (--keep to keep it).")
    result = replay([str(sim_dir / "blocks.jsonl.gz")], settings, progress=progress, source_name="simulator")
    client = connect(dsn)
    print()
    print(render(stored_counts(client), dsn, result.seconds, result.stats))
    from pipeline.evaluation import evaluate, format_report, load_labels
    from pipeline.evaluation.store import count_transactions, read_alerts

    labels_path = sim_dir / "labels.csv"
    report = evaluate(read_alerts(client), load_labels(labels_path), count_transactions(client))
    print()
    note = {"validation": "validation profile: a chain no threshold or feature was tuned on",
            "tuning": "TUNING profile: figures on the chain detectors are tuned on, optimistic",
            "classic": "classic profile: the historical fixed shapes, not a yardstick"}[args.profile]
    print(format_report(report, f"Alerts against the simulator's ground truth ({note}; {labels_path})"))
    if args.profile == "validation" and args.blocks == _DEMO.blocks and args.seed == _DEMO.seed:
        print("This is the suite's chain validation-1; `run_pipeline.py evaluate --suite` scores all of them.")
    from pipeline.report import write_report

    print(f"\nWall display (self-contained HTML, no Grafana needed): {write_report(client, 'data/report.html')}")
    return 0
