"""Labelled feature rows for the supervised scorer: from labelled chains, or from analyst reviews.

Chains: each directory holds ``blocks.jsonl.gz`` (or any replay input) and ``labels.csv``
(``address,typology,episode_id,role``). Its blocks go through the same pure stages as the flow
(decode, graph, features: :mod:`pipeline.offline`, no Bytewax, no database) and, like the scoring
stage, keep the latest update per (block, address): one row per address per block it was touched
in. A row's label is 1 when its address is labelled (any typology) in that chain. Groups (for the
calibration hold-out) are ``chain:address``: one address never sits on both sides.

Dispositions: a deployment learns from its own reviews. The latest ``close`` of each alert says
``true_positive`` (1) or ``false_positive`` (0); the features are the alerted address's stored
``address_features`` row at the alert's block (the latest one at or before it: ASOF join).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError, InputError, StorageError
from pipeline.records import FEATURE_NAMES

log = logging.getLogger(__name__)


@dataclass
class LabelledRows:
    """Feature rows with labels; ``addresses``/``chains`` say whose row each is (for evaluation)."""

    X: np.ndarray
    y: np.ndarray
    addresses: list[str]
    chains: list[str]
    sources: list[str] = field(default_factory=list)

    @property
    def groups(self) -> np.ndarray:
        return np.array([f"{c}:{a}" for c, a in zip(self.chains, self.addresses)])


def read_labels(chain_dir: str | Path) -> dict[str, str]:
    """``address -> typology`` from ``labels.csv`` (the first typology when an address has several)."""
    path = Path(chain_dir) / "labels.csv"
    if not path.is_file():
        raise InputError(f"{path}: no labels.csv in this chain directory")
    out: dict[str, str] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"address", "typology"} <= set(reader.fieldnames):
            raise InputError(f"{path}: line 1: expected columns address,typology,...")
        for line, row in enumerate(reader, start=2):
            addr = (row.get("address") or "").strip()
            if not addr:
                raise InputError(f"{path}: line {line}: empty address")
            out.setdefault(addr, (row.get("typology") or "").strip())
    return out


def replay_chain(chain_dir: str | Path, progress: bool = True) -> LabelledRows:
    """One labelled row per (address, block) the chain's replay touched."""
    from pipeline.offline import iter_updates

    chain_dir = Path(chain_dir)
    labels = read_labels(chain_dir)
    blocks = chain_dir / "blocks.jsonl.gz"
    source = str(blocks if blocks.is_file() else chain_dir)
    rows: list[tuple[float, ...]] = []
    addresses: list[str] = []
    bar = _bar(progress, desc=chain_dir.name, unit="blk")
    try:
        for updates in iter_updates(source):
            latest = {u.address: u for u in updates}
            for u in latest.values():
                rows.append(u.features.values)
                addresses.append(u.address)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if not rows:
        raise InputError(f"{source}: no address updates came out of the input")
    y = np.fromiter((a in labels for a in addresses), dtype=np.int8, count=len(addresses))
    return LabelledRows(np.asarray(rows, dtype=np.float64), y, addresses, [chain_dir.name] * len(rows),
                        [source])


def concat(parts: Sequence[LabelledRows]) -> LabelledRows:
    return LabelledRows(np.concatenate([p.X for p in parts]), np.concatenate([p.y for p in parts]),
                        [a for p in parts for a in p.addresses], [c for p in parts for c in p.chains],
                        [s for p in parts for s in p.sources])


def cap_negatives(data: LabelledRows, max_rows: int, seed: int) -> LabelledRows:
    """Keep every positive row and a seeded uniform sample of negatives, ``max_rows`` in all."""
    pos = np.flatnonzero(data.y == 1)
    neg = np.flatnonzero(data.y == 0)
    room = max(max_rows - len(pos), 0)
    if len(neg) <= room:
        return data
    keep = np.sort(np.concatenate([pos, np.random.default_rng(seed).choice(neg, room, replace=False)]))
    return LabelledRows(data.X[keep], data.y[keep], [data.addresses[i] for i in keep],
                        [data.chains[i] for i in keep], data.sources)


def dispositions_query() -> str:
    """Reviewed alerts (latest close per alert) ASOF-joined to the address's stored features."""
    cols = ", ".join(f"f.`{n}`" for n in FEATURE_NAMES)
    return (
        "SELECT a.address, a.block_number, r.disposition, " + cols + " FROM "
        "(SELECT alert_id, argMax(disposition, at) AS disposition FROM dispositions FINAL "
        " WHERE action = 'close' GROUP BY alert_id) AS r "
        "INNER JOIN (SELECT alert_id, any(address) AS address, any(block_number) AS block_number "
        " FROM alerts GROUP BY alert_id) AS a ON a.alert_id = r.alert_id "
        "ASOF INNER JOIN address_features AS f ON f.address = a.address AND f.block_number <= a.block_number "
        "WHERE r.disposition IN ('true_positive', 'false_positive') "
        "ORDER BY a.block_number, a.address")


def read_dispositions(dsn: Any) -> LabelledRows:
    """Labelled rows from analyst dispositions on the database at ``dsn`` (a str or parsed Dsn)."""
    from pipeline.storage.clickhouse import connect

    client = connect(dsn, create_database=False)
    try:
        result = client.query(dispositions_query()).result_rows
    except Exception as err:  # noqa: BLE001 - any driver failure becomes one clear line
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise StorageError(f"{dsn}: cannot read dispositions joined with address_features: {first}") from None
    finally:
        client.close()
    if not result:
        raise ConfigError(f"{dsn}: no closed alerts with a true_positive/false_positive disposition "
                          "and a stored address_features row")
    X = np.asarray([r[3:] for r in result], dtype=np.float64)
    y = np.array([1 if r[2] == "true_positive" else 0 for r in result], dtype=np.int8)
    log.info("dispositions: %d reviewed alerts (%d true positives)", len(y), int(y.sum()))
    return LabelledRows(X, y, [r[0] for r in result], ["dispositions"] * len(result),
                        ["clickhouse:dispositions"])


def _bar(enabled: bool, **kw: Any) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety, never a reason to fail
        return None
    return tqdm(**kw)
