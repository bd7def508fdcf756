"""Chains for devnet tests, built from the real mainnet blocks (``hex_block``/``visible_block``)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipeline.devnet import Chain, Devnet, DevnetConfig

USDT_TX = "661f1df88ce02b746efe7449c3c7a04d6d21a7fc019723c92679228d8275ad57"


def chain_of(template: dict[str, Any], n: int, txs_per_block: int = 20,
             full_first: bool = False) -> list[dict[str, Any]]:
    """``n`` linked blocks, each carrying a slice of the real block's transactions.

    Block 0 keeps real txIDs (all of the real block's with ``full_first``); later blocks get derived ids so every txID is unique in the chain.
    """
    raw0 = template["block_header"]["raw_data"]
    number0, ts0 = raw0["number"], raw0["timestamp"]
    txs = template["transactions"]
    parent = raw0["parentHash"]
    blocks = []
    for i in range(n):
        number = number0 + i
        start = (i * txs_per_block) % max(1, len(txs) - txs_per_block)
        chosen = copy.deepcopy(txs if i == 0 and full_first else txs[start:start + txs_per_block])
        if i:
            for tx in chosen:
                tx["txID"] = hashlib.sha256(f"{tx['txID']}:{i}".encode()).hexdigest()
        block_id = f"{number:016x}" + hashlib.sha256(f"block:{number}".encode()).hexdigest()[16:]
        header = copy.deepcopy(template["block_header"])
        header["raw_data"].update(number=number, parentHash=parent, timestamp=ts0 + 3000 * i)
        blocks.append({"blockID": block_id, "block_header": header, "transactions": chosen})
        parent = block_id
    return blocks




@pytest.fixture
def devnet_factory() -> Iterator[Callable[..., Devnet]]:
    """Start devnets on ephemeral ports; every one is stopped at the end of the test."""
    started: list[Devnet] = []

    def make(blocks: list[dict[str, Any]], **config: Any) -> Devnet:
        devnet = Devnet(Chain.from_dicts(blocks), DevnetConfig(**config)).start()
        started.append(devnet)
        return devnet

    yield make
    for devnet in started:
        devnet.stop()


@pytest.fixture(scope="session")
def hex_chain(hex_block: dict[str, Any]) -> list[dict[str, Any]]:
    return chain_of(hex_block, 12)


@pytest.fixture(scope="session")
def visible_chain(visible_block: dict[str, Any]) -> list[dict[str, Any]]:
    return chain_of(visible_block, 6, full_first=True)
