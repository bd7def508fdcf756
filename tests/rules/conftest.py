"""Fixtures of the rule tests: real mainnet blocks through the real decode, graph and features."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.operators.decode import decode_block
from pipeline.operators.features import ShardState
from pipeline.operators.graph import GraphStage
from pipeline.operators.routing import route
from pipeline.records import AddressUpdate, DecodedBlock

TRON = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tron"
BLOCKS = ("mainnet_block_61132092_hex.json", "mainnet_block_60836289_visible.json")


def build_mainnet_updates(watchlist: frozenset[str] = frozenset()) -> list[AddressUpdate]:
    """AddressUpdates of the two real mainnet blocks, as the graph and feature stages emit them."""
    from pipeline.tron.tokens import TokenRegistry

    tokens = TokenRegistry.build()
    transfers = []
    for name in sorted(BLOCKS, key=lambda n: n.split("_")[2]):  # block height order
        out = decode_block(orjson.loads((TRON / name).read_bytes()), "file", name, tokens)
        assert isinstance(out, DecodedBlock), out
        transfers.extend(out.transfers)
    annotated = GraphStage(watchlist=watchlist).process(transfers)
    shards: dict[int, ShardState] = {}
    updates: list[AddressUpdate] = []
    for shard, touches in sorted(route(annotated).items()):
        updates.extend(shards.setdefault(shard, ShardState()).process(touches))
    return updates


@pytest.fixture(scope="session")
def mainnet_updates() -> list[AddressUpdate]:
    if not TRON.is_dir():
        pytest.fail(f"shared fixtures not found at {TRON}")
    return build_mainnet_updates()
