"""Per-row scoring cost of every detector: one big batch vs one row per call, plus the full scorer.

Usage: ``python bench/bench_anomaly.py [--train-rows 20000] [--rows 2048] [--detectors iforest,hbos,...]``
``[--model DIR ...]`` (benchmark saved models instead of fitting on synthetic rows)

For each detector: fit on ``--train-rows`` synthetic feature rows (heavy-tailed counts and volumes,
mostly-zero rare events), then time ``score_batch`` on ``--rows`` rows in batches of 1, 64, 512 and
all at once, and the whole ``AnomalyScorer.score_rows`` path (matrix build, score, calibrate, drift,
explain + alert building for the rows above threshold). Prints microseconds per row and rows/s.
The figures say why scoring is per micro-batch: the per-call overhead dominates single-row calls.
Keep the sizes small on shared machines; each measurement repeats ``--repeat`` times (best kept).

``--sim DIR`` (a ``simulate`` output directory) instead replays DIR/blocks.jsonl.gz through the
offline feature engine (``pipeline.offline.iter_updates``), scores the real update stream in the
flow's micro-batches (latest update per block and address, ``--batch`` rows per call) with the
saved ``--model`` s (default models/iforest, models/hbos, models/ecod), and reports the scoring
throughput and each detector's address-level precision/recall against DIR/labels.csv at several
thresholds (an address counts as alerted if any of its updates reaches the threshold).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.anomaly.detectors import DETECTORS
from pipeline.anomaly.model import AnomalyModel
from pipeline.anomaly.persistence import load
from pipeline.anomaly.scorer import AnomalyScorer
from pipeline.records import FEATURE_NAMES, AddressFeatures, AddressUpdate, Kind, Transfer

COL = {n: j for j, n in enumerate(FEATURE_NAMES)}


def synthetic(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.poisson(0.05, size=(n, len(FEATURE_NAMES))).astype(np.float64)
    for name in ("tx_in_count", "tx_out_count", "distinct_in", "distinct_out"):
        X[:, COL[name]] = rng.poisson(3.0, n)
    for name in ("usd_in", "usd_out", "pass_through_delay_s"):
        X[:, COL[name]] = rng.lognormal(5.0, 2.0, n)
    X[:, COL["age_s"]] = rng.uniform(0, 86_400, n)
    X[:, COL["pass_through_ratio"]] = rng.uniform(0, 1, n)
    X[:, COL["watch_hops"]] = rng.choice([1.0, 2.0, 3.0, 9.0], size=n, p=[0.02, 0.08, 0.2, 0.7])
    return X


def updates(X: np.ndarray) -> list[AddressUpdate]:
    out = []
    for i, row in enumerate(X):
        addr = f"TBench{i:028d}"
        t = Transfer(f"{i:064x}:0", Kind.TRX, f"{i:064x}", 0, 61_200_000 + i // 300, 1_714_000_000_000 + i * 10,
                     addr, "TOther", addr, "TRX", "TRX", 6, 1, 1e-6, 0.0, True, "SUCCESS", "TransferContract",
                     "", "{}")
        out.append(AddressUpdate(addr, "sender", "TOther", t,
                                 AddressFeatures(addr, t.ts, t.block_number, tuple(row.tolist()))))
    return out


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def per_row_batches(model: AnomalyModel, X: np.ndarray, batch: int) -> None:
    for s in range(0, len(X), batch):
        model.score_batch(X[s:s + batch])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-rows", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=2048, help="rows scored per measurement")
    ap.add_argument("--single-rows", type=int, default=200, help="rows scored one per call (slow)")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--model", action="append", default=[], help="saved model dir (repeatable)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sim", metavar="DIR", help="evaluate saved models on a simulated chain instead")
    ap.add_argument("--batch", type=int, default=2000, help="--sim: rows per scoring call (default 2000)")
    args = ap.parse_args()
    if args.sim:
        return evaluate_sim(Path(args.sim), args.model or [f"models/{d}" for d in ("iforest", "hbos", "ecod")],
                            args.batch)

    X = synthetic(args.rows, seed=2)
    ups = updates(X)
    if args.model:
        models = [load(p) for p in args.model]
    else:
        train = synthetic(args.train_rows, seed=1)
        models = []
        for d in args.detectors.split(","):
            t = time.perf_counter()
            models.append(AnomalyModel(d, seed=0).fit(train))
            print(f"fit {d:8s} on {args.train_rows} rows: {time.perf_counter() - t:6.2f} s", flush=True)
    print(f"\nscoring {args.rows} rows (single-row: {args.single_rows} rows); microseconds per row, best of "
          f"{args.repeat}")
    header = f"{'detector':10s} {'1/call':>9s} {'64/call':>9s} {'512/call':>9s} {'all/call':>9s} " \
             f"{'scorer':>9s} {'rows/s (scorer)':>16s}"
    print(header)
    print("-" * len(header))
    for m in models:
        m.score_batch(X[:4])  # warm caches / JIT
        single = best_of(1, lambda m=m: per_row_batches(m, X[:args.single_rows], 1)) / args.single_rows
        cols = [best_of(args.repeat, lambda m=m, b=b: per_row_batches(m, X, b)) / len(X) for b in (64, 512, len(X))]
        scorer = AnomalyScorer(m, threshold=99.0, batch_size=len(X), drift_window_ms=3_600_000)
        full = best_of(args.repeat, lambda s=scorer: s.score_rows(ups)) / len(X)
        us = [1e6 * v for v in (single, *cols, full)]
        print(f"{m.name:10s} " + " ".join(f"{v:9.1f}" for v in us) + f" {1 / full:16,.0f}", flush=True)
    return 0


def evaluate_sim(sim: Path, model_dirs: list[str], batch: int) -> int:
    import csv

    from scipy.stats import rankdata

    from pipeline.offline import iter_updates

    models = [load(p) for p in model_dirs]
    labelled = {r["address"] for r in csv.DictReader((sim / "labels.csv").open())}
    scorer = AnomalyScorer(models, batch_size=batch)  # each model's own card threshold
    best: dict[str, dict[str, float]] = {m.name: {} for m in models}
    alerted: dict[str, set[str]] = {m.name: set() for m in models}
    pending: list[AddressUpdate] = []
    n_updates = n_rows = n_alerts = 0
    spent = 0.0
    t_all = time.perf_counter()

    def flush() -> None:
        nonlocal n_rows, n_alerts, spent
        t = time.perf_counter()
        alerts, _ = scorer.score_rows(pending)
        spent += time.perf_counter() - t
        n_rows += len(pending)
        n_alerts += len(alerts)
        for a in alerts:
            alerted[a.rule_id.split(".", 1)[1]].add(a.address)
        X = np.array([u.features.values for u in pending], dtype=np.float64)  # untimed: per-address max
        for m in models:
            top = best[m.name]
            for u, s in zip(pending, m.score(X).tolist()):
                if s > top.get(u.address, -1.0):
                    top[u.address] = s
        pending.clear()

    for updates in iter_updates(str(sim / "blocks.jsonl.gz")):
        n_updates += len(updates)
        pending.extend({u.address: u for u in updates}.values())  # latest per (block, address)
        if len(pending) >= batch:
            flush()
    flush()
    seen = set(best[models[0].name])
    print(f"{sim}: {n_updates:,} updates -> {n_rows:,} rows (latest per block and address), "
          f"{len(seen):,} addresses, {len(labelled & seen)} of {len(labelled)} labelled seen; "
          f"{time.perf_counter() - t_all:.1f} s in all")
    print(f"scorer ({', '.join(m.name for m in models)} at their card thresholds, batches of {batch}): "
          f"{spent:.2f} s = {1e6 * spent / max(n_rows, 1):.1f} us/row, {n_rows / max(spent, 1e-9):,.0f} rows/s, "
          f"{n_alerts:,} alerts")
    print("\naddress level: alerted = max calibrated score over the address's rows >= threshold; "
          "AUC = P(labelled address outranks an unlabelled one)")
    print(f"{'rule':16s} {'AUC':>6s} {'threshold':>9s} {'alerted':>8s} {'TP':>5s} {'precision':>9s} "
          f"{'recall':>7s} {'F1':>6s}")
    for m in models:
        addrs = sorted(seen)
        scores = np.array([best[m.name][a] for a in addrs])
        is_lab = np.array([a in labelled for a in addrs])
        ranks = rankdata(scores)
        n_pos, n_neg = int(is_lab.sum()), int((~is_lab).sum())
        auc = (ranks[is_lab].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1)
        for thr in (90.0, 99.0, 99.9, 99.99):
            hit = {a for a, s in best[m.name].items() if s >= thr}
            tp = len(hit & labelled)
            p = tp / len(hit) if hit else 0.0
            r = tp / len(labelled) if labelled else 0.0
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            print(f"{'anomaly.' + m.name:16s} {auc:6.3f} {thr:9.2f} {len(hit):8d} {tp:5d} {p:9.3f} {r:7.3f} {f1:6.3f}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
