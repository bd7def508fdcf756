"""Read ground-truth labels written by the simulator (or the AMLSim importer).

``labels.csv`` has a header ``address,typology,episode_id,role``; ``labelled_txs.csv`` next to it
has ``tx_id,typology,episode_id``. Either the file or the directory holding it may be given.
Every role (source, mule, victim, ...) counts as a positive address for its typology. Without
``labelled_txs.csv`` transaction-level figures are reported as unavailable; without an
``episode_id`` column in ``labels.csv``, episode recall is.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from pipeline.errors import InputError
from pipeline.evaluation.metrics import LabelledEpisode, Labels

log = logging.getLogger(__name__)

ADDRESS_FILE = "labels.csv"
TX_FILE = "labelled_txs.csv"


def _read(path: Path, key: str, episodes: dict[str, tuple[str, set[str]]] | None = None) -> dict[str, set[str]]:
    """Typology -> values of column ``key``; fills ``episodes`` (id -> typology, values) when given
    and the file has an ``episode_id`` column."""
    out: dict[str, set[str]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            missing = [c for c in (key, "typology") if c not in fields]
            if missing:
                raise InputError(f"{path}:1: missing column(s) {', '.join(missing)} (header is {','.join(fields)})")
            for row in reader:
                value, typology = (row.get(key) or "").strip(), (row.get("typology") or "").strip()
                if not value or not typology:
                    raise InputError(f"{path}:{reader.line_num}: empty {key} or typology")
                out.setdefault(typology, set()).add(value)
                episode = (row.get("episode_id") or "").strip() if episodes is not None else ""
                if episode:
                    episodes.setdefault(episode, (typology, set()))[1].add(value)
    except OSError as err:
        raise InputError(f"{path}: cannot read labels: {err.strerror or err}") from err
    return out


def load_labels(path: str | Path) -> Labels:
    """Labels from ``labels.csv`` (or a directory holding it) and ``labelled_txs.csv`` beside it."""
    p = Path(path)
    address_file = p / ADDRESS_FILE if p.is_dir() else p
    if not address_file.is_file():
        raise InputError(f"{address_file}: labels file not found")
    episodes: dict[str, tuple[str, set[str]]] = {}
    addresses = _read(address_file, "address", episodes)
    tx_file = address_file.with_name(TX_FILE)
    txs = _read(tx_file, "tx_id") if tx_file.is_file() else None
    if txs is None:
        log.warning("%s not found: transaction-level figures unavailable", tx_file)
    return Labels({t: frozenset(v) for t, v in addresses.items()},
                  {t: frozenset(v) for t, v in txs.items()} if txs is not None else None,
                  {e: LabelledEpisode(t, frozenset(v)) for e, (t, v) in episodes.items()} if episodes else None)
