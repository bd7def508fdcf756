"""The benchmark's input: a simulated chain, generated once per (seed, size) and reused.

A benchmark must replay the same bytes every time, so the chain is keyed by seed and block count
(``sim_<seed>_<blocks>/``) and regenerated only when its ``meta.json`` is missing or says
otherwise. Paced runs replay a prefix of it (real time is 3 s per block), written beside it.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError

log = logging.getLogger(__name__)

TX_PER_BLOCK = 275  # what the simulator averages; used only to turn --tx into a block count
BLOCKS_FILE = "blocks.jsonl.gz"


@dataclass(frozen=True)
class Chain:
    """A simulated chain on disk: its blocks file and what ``meta.json`` says about it."""

    directory: Path
    seed: int
    blocks: int
    transactions: int

    @property
    def blocks_file(self) -> Path:
        return self.directory / BLOCKS_FILE


def blocks_for(tx: int) -> int:
    """Blocks needed for about ``tx`` transactions (at least one)."""
    return max(1, -(-tx // TX_PER_BLOCK))


def ensure_chain(out: Path, seed: int, blocks: int) -> tuple[Chain, bool]:
    """The chain for ``(seed, blocks)`` under ``out``; returns it and whether it was generated now."""
    directory = out / f"sim_{seed}_{blocks}"
    meta = _read_meta(directory)
    if meta is not None and meta.get("seed") == seed and meta.get("blocks") == blocks \
            and (directory / BLOCKS_FILE).is_file():
        return Chain(directory, seed, blocks, int(meta["tx_count"])), False
    from pipeline.simulate.chain import SimConfig
    from pipeline.simulate.run import simulate

    log.info("simulating %d blocks (seed %d) into %s", blocks, seed, directory)
    meta = simulate(SimConfig(blocks=blocks, seed=seed), directory, progress=False)
    return Chain(directory, seed, blocks, int(meta["tx_count"])), True


def _read_meta(directory: Path) -> dict | None:
    path = directory / "meta.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a half-written run: regenerate


def prefix(chain: Chain, blocks: int) -> tuple[Path, int]:
    """A replay file holding the chain's first ``blocks`` lines (written once); returns it and its tx count.

    Paced runs use a prefix: at mainnet pace a block takes 3 s of wall time.
    """
    blocks = min(blocks, chain.blocks)
    path = chain.directory / f"prefix_{blocks}.jsonl"
    count_path = path.with_suffix(".tx")
    if path.is_file() and count_path.is_file():
        return path, int(count_path.read_text())
    import orjson

    tx = 0
    tmp = path.with_suffix(".tmp")
    try:
        with gzip.open(chain.blocks_file, "rb") as src, open(tmp, "wb") as dst:
            for i, line in enumerate(src):
                if i >= blocks:
                    break
                dst.write(line)
                try:
                    tx += len(orjson.loads(line).get("transactions") or ())
                except (orjson.JSONDecodeError, AttributeError):
                    pass  # the replay turns it into a dead letter; nothing to count
    except OSError as err:
        raise InputError(f"{chain.blocks_file}: cannot read ({err})") from None
    tmp.replace(path)
    count_path.write_text(str(tx))
    return path, tx
