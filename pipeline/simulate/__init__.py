"""A labelled TRON chain simulator and an AMLSim importer: data to tune, demo and test against.

``simulate(SimConfig(blocks=1200, seed=0), Path("data/sim"))`` writes one simulated hour as replay
input (``blocks.jsonl.gz`` of ``/wallet/getblockbynum`` objects) plus ground truth
(``labels.csv``, ``labelled_txs.csv``, ``meta.json``); ``Simulator(cfg).blocks()`` streams the
same blocks in memory. ``import_amlsim(folder, out)`` converts IBM AMLSim output to the same
format. Everything is deterministic by seed and never imports Bytewax.
"""

from __future__ import annotations

from pipeline.simulate.amlsim import import_amlsim
from pipeline.simulate.chain import SimConfig, Simulator, parse_rates
from pipeline.simulate.run import simulate
from pipeline.simulate.typologies import TYPOLOGIES

__all__ = ["TYPOLOGIES", "SimConfig", "Simulator", "import_amlsim", "parse_rates", "simulate"]
