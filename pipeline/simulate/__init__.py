"""A labelled TRON chain simulator and an AMLSim importer: data to tune, demo and test against.

``simulate(SimConfig(blocks=1200, seed=0), Path("data/sim"))`` writes one simulated hour as replay
input (``blocks.jsonl.gz`` of ``/wallet/getblockbynum`` objects) plus ground truth
(``labels.csv``, ``labelled_txs.csv``, ``meta.json``); ``Simulator(cfg).blocks()`` streams the
same blocks in memory. ``import_amlsim(folder, out)`` converts IBM AMLSim output to the same
format. Everything is deterministic by seed and never imports Bytewax.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Resolved on first use, so ``python -m pipeline.simulate.lookalikes`` does not import the whole
# simulator (and its own module) before running.
_EXPORTS = {
    "SimConfig": "pipeline.simulate.chain", "Simulator": "pipeline.simulate.chain",
    "parse_rates": "pipeline.simulate.chain", "simulate": "pipeline.simulate.run",
    "import_amlsim": "pipeline.simulate.amlsim", "TYPOLOGIES": "pipeline.simulate.typologies",
}
__all__ = ["TYPOLOGIES", "SimConfig", "Simulator", "import_amlsim", "parse_rates", "simulate"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
