"""Flags shared by the commands that run the pipeline, mapped onto :mod:`pipeline.config`."""

from __future__ import annotations

import argparse

from pipeline.config import Settings, load_settings


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clickhouse", metavar="DSN",
                   help="chdb://PATH (embedded, default chdb://./data/chdb) or http(s)://user:pw@host:port/db")
    p.add_argument("--workers", type=int, help="Bytewax worker threads in this process (default 1)")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (default ./tronrisk.toml if present)")
    p.add_argument("--recovery-dir", metavar="DIR",
                   help="Bytewax crash recovery: snapshot progress and state here every epoch and resume "
                        "from it after a crash (delete DIR to start over; created private: its "
                        "snapshots are pickles, trusted input)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, overrides={
        "clickhouse.dsn": args.clickhouse,
        "pipeline.workers": args.workers,
        "pipeline.recovery_dir": getattr(args, "recovery_dir", None),
    })
