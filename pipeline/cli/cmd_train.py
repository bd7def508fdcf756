"""``train``: fit anomaly detectors on address feature vectors and write versioned models.

Input is either stored features (``--clickhouse DSN`` reads table ``address_features`` within
``--since``/``--until``) or replay files run through decode + graph features offline
(``--input PATH``). Each detector named in ``--detector`` is fitted on the same sample with the same
seed and saved under ``--out`` as ``<detector>/{detector.npz,card.json}`` (the path the
configuration's ``analytics.model`` names; ``--keep-versions`` writes ``<detector>-<version>/``
instead and never overwrites). The command ends with a readable summary of every card.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="fit anomaly detectors and write versioned models",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", metavar="PATH", help="replay file or directory (features computed offline)")
    src.add_argument("--clickhouse", metavar="DSN", help="read table address_features from this DSN")
    p.add_argument("--since", help="first event time (ISO date/time, UTC, or ms) for --clickhouse")
    p.add_argument("--until", help="end of the range, exclusive (ISO date/time, UTC, or ms)")
    p.add_argument("--detector", default="iforest",
                   help="iforest, hbos, ecod, copod, lof, or a comma list of them (default iforest)")
    p.add_argument("--out", default="models", metavar="DIR", help="where models are written (default models/)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--contamination", type=float, default=0.01, help="expected outlier share (default 0.01)")
    p.add_argument("--threshold", type=float, default=99.0,
                   help="calibrated score (0-100) at which an alert is raised (default 99.0)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="detector parameter, repeatable; DETECTOR.KEY=VALUE applies to one detector only "
                        "(e.g. iforest.n_estimators=50, hbos.n_bins=20, lof.n_neighbors=35); recorded in the card")
    p.add_argument("--max-rows", type=int, default=200_000, help="training sample size cap (default 200000)")
    p.add_argument("--keep-versions", action="store_true",
                   help="write <detector>-<version>/ instead of replacing <detector>/")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.anomaly.detectors import DETECTORS
    from pipeline.anomaly.training import parse_time, read_clickhouse, read_offline

    detectors = [d.strip() for d in args.detector.split(",") if d.strip()]
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown or not detectors:
        raise ConfigError(f"--detector: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(DETECTORS)}")
    if not 0.0 <= args.threshold <= 100.0:
        raise ConfigError(f"--threshold: {args.threshold} is outside the calibrated 0-100 scale")
    if not 0.0 < args.contamination <= 0.5:
        raise ConfigError(f"--contamination: {args.contamination} must be in (0, 0.5]")
    if args.max_rows < 10:
        raise ConfigError("--max-rows: need at least 10 rows")
    params = {d: parse_params(args.param, d) for d in detectors}  # validate before reading data
    progress = not args.no_progress
    if args.input:
        if args.since or args.until:
            raise ConfigError("--since/--until apply to --clickhouse; for --input pass the files to use")
        data = read_offline(args.input, max_rows=args.max_rows, seed=args.seed, progress=progress)
    else:
        since = parse_time(args.since, "--since") if args.since else None
        until = parse_time(args.until, "--until") if args.until else None
        if since is not None and until is not None and until <= since:
            raise ConfigError(f"--until ({args.until}) must be after --since ({args.since})")
        data = read_clickhouse(_dsn(args.clickhouse), since_ms=since, until_ms=until,
                               max_rows=args.max_rows, progress=progress)
    if len(data.X) < 10:
        raise ConfigError(f"only {len(data.X)} training rows; need at least 10")
    for detector in detectors:
        path = fit_and_save(detector, data, args, params[detector])
        print(describe(path))
    return 0


def _dsn(flag: str) -> Any:
    """The DSN as a parsed :class:`~pipeline.storage.clickhouse.Dsn`, through the settings (so
    ``[clickhouse] password_file`` and ``TRONRISK_CLICKHOUSE_*`` apply, and a password on the command
    line warns). Messages that quote it show it redacted: its ``str`` hides the password."""
    from pipeline.config import load_settings
    from pipeline.storage.clickhouse import parse_dsn

    return parse_dsn(load_settings(None, overrides={"clickhouse.dsn": flag}).clickhouse.dsn)


def parse_params(items: list[str], detector: str) -> dict[str, Any]:
    """``[DETECTOR.]KEY=VALUE`` strings -> the dict for ``detector``; values become int, float,
    bool or stay strings. Unprefixed keys apply to every detector."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        owner, dot, name = key.strip().rpartition(".")
        if not sep or not name.isidentifier():
            raise ConfigError(f"--param: {item!r} is not [DETECTOR.]KEY=VALUE")
        if dot and owner != detector:
            continue
        key = name
        value: Any = raw.strip()
        for conv in (int, float):
            try:
                value = conv(raw)
                break
            except ValueError:
                continue
        if raw.strip().lower() in ("true", "false"):
            value = raw.strip().lower() == "true"
        out[key] = value
    return out


def fit_and_save(detector: str, data: Any, args: argparse.Namespace, params: dict[str, Any]) -> Path:
    from pipeline.anomaly.model import AnomalyModel
    from pipeline.anomaly.persistence import save

    model = AnomalyModel(detector, seed=args.seed, contamination=args.contamination,
                         threshold=args.threshold, params=params)
    log.info("fitting %s on %d rows", detector, len(data.X))
    try:
        model.fit(data.X, info=data.info)
    except TypeError as err:  # an unknown --param reaches the estimator's constructor
        raise ConfigError(f"--param for {detector}: {err}") from None
    return save(model, args.out, versioned=args.keep_versions)


def describe(path: Path) -> str:
    """A readable summary of a saved model card."""
    import datetime as dt
    import json

    card = json.loads((path / "card.json").read_text())
    t = card["training"]

    def when(ms: int | None) -> str:
        return "?" if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

    s = card["score_summary"]
    libs = ", ".join(f"{k} {v}" for k, v in card["libraries"].items())
    return "\n".join([
        f"model {card['name']} ({card['detector']}) version {card['version']} -> {path}",
        (f"  trained on {t['rows']} rows from {t['source']}, {when(t['first_ts'])} .. {when(t['last_ts'])} "
         f"UTC, blocks {t['first_block']} .. {t['last_block']} (fit on {card['fit_rows']})"),
        (f"  seed {card['seed']}, contamination {card['contamination']}, alert threshold {card['threshold']} "
         "(calibrated 0-100)"),
        (f"  raw training scores: p50 {s['p50']:.4g}, p90 {s['p90']:.4g}, p99 {s['p99']:.4g}, "
         f"p99.9 {s['p99.9']:.4g}, max {s['max']:.4g}"),
        f"  {len(card['features'])} features, log1p on {len(card['transform']['log1p'])}; {libs}",
        f"  sha256 {card['sha256']} (pin it: analytics.model_sha256)",
    ])
