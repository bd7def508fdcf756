"""Convert IBM AMLSim output (``nodes.csv``, ``transactions.csv``) into replay input and labels.

Each account becomes a deterministic TRON address (BLAKE2b of its id), each transaction a USDT
``transfer`` of its value (6 decimals), and simulation steps map onto consecutive 3 s blocks in
order (a step with more than ``per_block`` transactions spans several blocks, and every step
starts a new block), so event time preserves AMLSim's ordering. Labels: every ``isFraud`` account
with AMLSim's typology (``fan_in`` for the shipped 20K_fanin200 sample). AMLSim's sample does not
say which pattern a transaction belongs to, so labelled transactions are derived as those between
two fraud accounts: an approximation, stated in meta.json.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.simulate import output
from pipeline.simulate.chain import BLOCK_MS, DEFAULT_START_HEIGHT, DEFAULT_START_TS
from pipeline.simulate.population import USDT_HEX
from pipeline.simulate.txbuild import TRC20, Intent, TxFactory
from pipeline.tron.address import hex_to_base58

log = logging.getLogger(__name__)


def account_address(node_id: str) -> str:
    """Deterministic 21-byte hex address of an AMLSim account id."""
    return "41" + hashlib.blake2b(f"amlsim:{node_id}".encode(), digest_size=20).hexdigest()


@dataclass(frozen=True)
class AmlsimTx:
    src: str
    dst: str
    amount: int  # USDT base units
    step: int
    row: int  # line number in transactions.csv, for ids and error messages


def _open_csv(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}:1: missing columns {missing} (have {reader.fieldnames})")
            yield from enumerate(reader, start=2)
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err})") from err


def read_amlsim(folder: Path) -> tuple[dict[str, bool], list[AmlsimTx]]:
    """Accounts (id -> is fraud) and transactions ordered by step (stable within a step)."""
    nodes: dict[str, bool] = {}
    path = folder / "nodes.csv"
    for line, row in _open_csv(path, ("nodeid", "isFraud")):
        nodes[row["nodeid"]] = row["isFraud"].strip() in ("1", "true", "True")
    txs: list[AmlsimTx] = []
    path = folder / "transactions.csv"
    for line, row in _open_csv(path, ("sourceNodeId", "targetNodeId", "value", "time")):
        try:
            txs.append(AmlsimTx(row["sourceNodeId"], row["targetNodeId"], round(float(row["value"]) * 1_000_000),
                                int(row["time"]), line))
        except ValueError as err:
            raise InputError(f"{path}:{line}: bad value or time ({err})") from err
    txs.sort(key=lambda t: t.step)
    return nodes, txs


def _blocks(txs: list[AmlsimTx], per_block: int) -> Iterator[list[AmlsimTx]]:
    i = 0
    while i < len(txs):
        step = txs[i].step
        j = i
        while j < len(txs) and j - i < per_block and txs[j].step == step:
            j += 1
        yield txs[i:j]
        i = j


def import_amlsim(folder: Path, out_dir: Path, typology: str = "fan_in", per_block: int = 300,
                  visible: bool = False, start_ts: int = DEFAULT_START_TS,
                  start_height: int = DEFAULT_START_HEIGHT) -> dict[str, Any]:
    """Write blocks.jsonl.gz, labels.csv, labelled_txs.csv and meta.json; returns the meta."""
    nodes, txs = read_amlsim(folder)
    out = output.prepare_dir(out_dir)
    fraud = {n for n, f in nodes.items() if f}
    factory = TxFactory(random.Random("amlsim"), visible)
    labelled: list[tuple[str, str, str]] = []
    episode = f"amlsim-{typology}"
    addr_cache: dict[str, str] = {}

    def addr(node_id: str) -> str:
        a = addr_cache.get(node_id)
        if a is None:
            a = addr_cache[node_id] = account_address(node_id)
        return a

    def blocks() -> Iterator[dict[str, Any]]:
        parent = f"{start_height - 1:016x}" + hashlib.blake2b(b"amlsim:genesis", digest_size=24).hexdigest()
        for i, chunk in enumerate(_blocks(txs, per_block)):
            height, ts = start_height + i, start_ts + i * BLOCK_MS
            factory.begin_block(ts, f"{(height - 1) & 0xFFFF:04x}", parent[16:32], ts - BLOCK_MS)
            body = []
            for t in chunk:
                tx_id = hashlib.blake2b(f"amlsim:tx:{t.row}".encode(), digest_size=32).hexdigest()
                sig = tx_id + tx_id + "00"  # placeholder of the right shape; nothing verifies it
                body.append(factory.build(Intent(TRC20, addr(t.src), addr(t.dst), t.amount, USDT_HEX), tx_id, sig))
                if t.src in fraud and t.dst in fraud:
                    labelled.append((tx_id, typology, episode))
            block_id = f"{height:016x}" + hashlib.blake2b(f"amlsim:block:{height}".encode(), digest_size=24).hexdigest()
            yield {"blockID": block_id,
                   "block_header": {"raw_data": {"number": height, "txTrieRoot": "0" * 64,
                                                 "witness_address": factory.address(addr("witness")),
                                                 "parentHash": parent, "version": 29, "timestamp": ts},
                                    "witness_signature": "0" * 130},
                   "transactions": body}
            parent = block_id

    with output.gc_paused():
        n_blocks = output.write_blocks(out / output.BLOCKS_FILE, blocks())
    labels = [(hex_to_base58(addr(n)), typology, episode, "fraud") for n in sorted(fraud, key=_node_key)]
    output.write_csv(out / output.LABELS_FILE, output.LABEL_HEADER, labels)
    output.write_csv(out / output.LABELLED_TXS_FILE, output.TX_LABEL_HEADER, labelled)
    meta = {
        "generator": "pipeline.simulate.amlsim",
        "source": str(folder),
        "accounts": len(nodes),
        "fraud_accounts": len(fraud),
        "blocks": n_blocks,
        "tx_count": len(txs),
        "steps": len({t.step for t in txs}),
        "visible": visible,
        "start_height": start_height,
        "start_ts": start_ts,
        "end_ts": start_ts + max(0, n_blocks - 1) * BLOCK_MS,
        "typology_counts": {typology: 1},
        "labelled_addresses": len(labels),
        "labelled_txs": len(labelled),
        "labelled_txs_rule": "transactions between two isFraud accounts (AMLSim does not export pattern membership)",
        "token": hex_to_base58(USDT_HEX),
    }
    output.write_meta(out / output.META_FILE, meta)
    return meta


def _node_key(node_id: str) -> tuple[int, str]:
    return (int(node_id), node_id) if node_id.isdigit() else (1 << 62, node_id)
