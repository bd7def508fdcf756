"""Subcommands of ``run_pipeline.py``.

Each ``pipeline/cli/cmd_<name>.py`` module defines ``register(subparsers)``, which adds its parser
and sets ``func`` to a callable ``(args) -> int`` (the exit code). Modules are discovered by name,
so adding a command is adding a file. Errors are raised as :class:`pipeline.errors.PipelineError`
and printed by ``run_pipeline.py`` as one line.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register_all(subparsers: argparse._SubParsersAction) -> None:
    """Import every ``cmd_*`` module in this package, in name order, and let it register."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{info.name}").register(subparsers)
