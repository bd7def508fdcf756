"""``train-gbm``: fit the supervised scorer (gradient-boosted trees) on labelled feature rows.

Labels come from labelled chains (``--input DIR [DIR ...]``, each with blocks.jsonl.gz and
labels.csv; features are computed offline by the flow's pure stages; a row is labelled when its
address is in labels.csv) or from a deployment's own reviews (``--from-dispositions --clickhouse
DSN``: closed alerts, true_positive = 1, false_positive = 0, joined with stored address_features).

A quarter of the addresses is held out to calibrate the probability (isotonic) and choose the
threshold (best F1) unless ``--threshold`` is given. ``--validate DIR [DIR ...]`` then scores
labelled validation chains with the final model and writes address-level precision/recall per
typology into the card; they never influence the model. The model goes to ``--out`` as
``model.npz`` (plain arrays, no pickle) + ``card.json``; point ``analytics.supervised_model`` at it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-gbm",
                              help="fit the supervised scorer on labelled chains or dispositions",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", nargs="+", metavar="DIR", help="labelled chain directories (tuning split)")
    src.add_argument("--from-dispositions", action="store_true",
                     help="labels from analyst dispositions in --clickhouse (alerts + address_features)")
    p.add_argument("--clickhouse", metavar="DSN",
                   help="database holding dispositions, alerts, address_features")
    p.add_argument("--validate", nargs="+", default=[], metavar="DIR",
                   help="labelled validation chains: figures for the card, computed after training")
    p.add_argument("--out", default="models/gbm", metavar="DIR", help="model directory (default models/gbm)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threshold", type=float, default=None,
                   help="alert probability (0-1); default: best F1 on the held-out addresses")
    p.add_argument("--max-rows", type=int, default=600_000,
                   help="training rows cap: all positives, a seeded sample of negatives (default 600000)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="HistGradientBoostingClassifier parameter, repeatable (e.g. max_iter=300)")
    p.add_argument("--threads", type=int, default=1,
                   help="OpenMP threads for fitting (default 1: extra threads spin on a busy machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.anomaly import supervised_data as sd
    from pipeline.anomaly.supervised import SupervisedModel
    from pipeline.anomaly.supervised_eval import address_figures, format_figures
    from pipeline.anomaly.supervised_store import read_card, save, write_card
    from pipeline.cli.cmd_train import parse_params

    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        raise ConfigError(f"--threshold: {args.threshold} is not a probability in (0, 1]")
    if args.max_rows < 100:
        raise ConfigError("--max-rows: need at least 100 rows")
    if args.from_dispositions != bool(args.clickhouse):
        raise ConfigError("--from-dispositions and --clickhouse DSN go together")
    params = parse_params(args.param, "gbm")
    progress = not args.no_progress
    if args.input:
        data = sd.concat([sd.replay_chain(d, progress) for d in args.input])
        source: dict[str, Any] = {"source": "labelled chains", "inputs": list(args.input)}
    else:
        from pipeline.cli.cmd_train import _dsn

        data = sd.read_dispositions(_dsn(args.clickhouse))
        source = {"source": "dispositions", "inputs": ["clickhouse:dispositions"]}
    data = sd.cap_negatives(data, args.max_rows, args.seed)
    if data.y.min() == data.y.max():
        raise ConfigError("the training rows have only one label; need both labelled and unlabelled rows")
    model = SupervisedModel(seed=args.seed, params=params, n_threads=max(1, args.threads))
    log.info("fitting gbm on %d rows (%d labelled)", len(data.y), int(data.y.sum()))
    try:
        model.fit(data.X, data.y, groups=data.groups, threshold=args.threshold)
    except TypeError as err:  # an unknown --param reaches the estimator's constructor
        raise ConfigError(f"--param: {err}") from None
    except ValueError as err:
        raise ConfigError(f"cannot fit: {err}") from None
    out = save(model, args.out, {"training": {**model.fit_info, **source}})
    if args.validate:  # the model is final and saved: these figures only describe it
        val = sd.concat([sd.replay_chain(d, progress) for d in args.validate])
        typ = {Path(d).name: sd.read_labels(d) for d in args.validate}
        figures = address_figures(model, val, typ)
        card = read_card(out)
        card["validation"] = {"inputs": list(args.validate), **figures}
        write_card(out, card)
        print(format_figures(figures))
    print(describe(read_card(out), out))
    return 0


def describe(card: dict[str, Any], path: Any) -> str:
    t = card["training"]
    lines = [f"model {card['name']} ({card['detector']}) version {card['version']} -> {path}",
             f"  trained on {t['rows']} rows ({t['positives']} labelled) from {t['source']}: "
             f"{', '.join(t['inputs'])}",
             f"  {t['trees']} trees fitted on {t['fit_rows']} rows; calibration and threshold on "
             f"{t['holdout_rows']} held-out rows; seed {card['seed']}",
             f"  alert threshold p >= {card['threshold']:.4f}"]
    v = card.get("validation")
    if v:
        lines.append(f"  validation: precision {v['precision']}, recall {v['recall']} "
                     f"({v['flagged_addresses']} flagged of {v['addresses']} addresses)")
    return "\n".join(lines)
