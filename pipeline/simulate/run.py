"""Run a simulation to files: blocks, labels, labelled transactions and a meta summary."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.simulate import output
from pipeline.simulate.chain import BLOCK_MS, SimConfig, Simulator
from pipeline.tron.address import hex_to_base58

log = logging.getLogger(__name__)
SIMULATE_DIR = Path(__file__).resolve().parent


def generator_version() -> str:
    """Hash of the simulator's code and data files: what a cached chain was made by.

    Any edit to the generators, the profiles or the shipped lists changes it, so a cache keyed on it
    (``evaluate --suite``, the main job) regenerates exactly when the chain would differ.
    """
    h = hashlib.sha256()
    for path in sorted(p for p in SIMULATE_DIR.iterdir() if p.is_file() and p.suffix in (".py", ".json", ".txt")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _with_progress(blocks: Iterator[dict[str, Any]], total: int, progress: bool | None) -> Iterator[dict[str, Any]]:
    bar = tqdm(total=total, unit="block", disable=progress is False or (progress is None and total < 2000),
               mininterval=0.5, leave=False)
    try:
        for block in blocks:
            yield block
            bar.update(1)
    finally:
        bar.close()


def _by_typology(labels: list[tuple[str, str, str, str]],
                 txs: list[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    """Per typology: episodes, distinct labelled addresses and labelled transactions."""
    out: dict[str, dict[str, Any]] = {}
    for address, typology, episode, _ in labels:
        entry = out.setdefault(typology, {"episodes": set(), "addresses": set(), "txs": 0})
        entry["episodes"].add(episode)
        entry["addresses"].add(address)
    for _, typology, _ in txs:
        out.setdefault(typology, {"episodes": set(), "addresses": set(), "txs": 0})["txs"] += 1
    return {t: {"episodes": len(e["episodes"]), "addresses": len(e["addresses"]), "txs": e["txs"]}
            for t, e in out.items()}


def simulate(cfg: SimConfig, out_dir: Path, progress: bool | None = None) -> dict[str, Any]:
    """Generate ``cfg.blocks`` blocks into ``out_dir``; returns (and writes) the meta summary.

    ``progress`` None shows a bar on long runs only (tqdm hides it when stderr is not a tty).
    """
    out = output.prepare_dir(out_dir)
    version = generator_version()  # read before generating: the code that runs is the code on disk now
    sim = Simulator(cfg)
    t0 = time.perf_counter()
    with output.gc_paused():
        n_blocks = output.write_blocks(out / output.BLOCKS_FILE, _with_progress(sim.blocks(), cfg.blocks, progress))
    elapsed = time.perf_counter() - t0
    labels = [(hex_to_base58(a), t, e, r) for a, t, e, r in sim.labels]
    output.write_csv(out / output.LABELS_FILE, output.LABEL_HEADER, labels)
    output.write_csv(out / output.LABELLED_TXS_FILE, output.TX_LABEL_HEADER, sim.labelled_txs)
    labelled_addresses = len({row[0] for row in labels})
    seen = sim.pop.addresses_seen()
    meta = {
        "generator": "pipeline.simulate",
        "seed": cfg.seed,
        "profile": cfg.profile.name,
        "generator_version": version,
        "blocks": n_blocks,
        "visible": cfg.visible,
        "start_height": cfg.start_height,
        "start_ts": cfg.start_ts,
        "end_ts": cfg.start_ts + (n_blocks - 1) * BLOCK_MS,
        "tx_count": sim.tx_count,
        "failed_tx_count": sim.failed,
        "contract_counts": dict(sorted(sim.contract_counts().items())),
        "rates_per_hour": dict(sorted(cfg.rates.items())),
        "typology_counts": {t: n for t, n in sim.episode_counts.items() if n},
        "benign_counts": {b: n for b, n in sim.benign_counts.items() if n},
        "labelled_by_typology": _by_typology(labels, sim.labelled_txs),
        "labelled_addresses": labelled_addresses,
        "labelled_txs": len(sim.labelled_txs),
        "addresses_seen": seen,
        "labelled_address_share": round(labelled_addresses / max(1, seen), 6),
        "files": [output.BLOCKS_FILE, output.LABELS_FILE, output.LABELLED_TXS_FILE, output.META_FILE],
    }
    output.write_meta(out / output.META_FILE, meta)
    log.info("simulated %d blocks, %d tx in %.2f s", n_blocks, sim.tx_count, elapsed)
    return dict(meta, elapsed_s=elapsed)
