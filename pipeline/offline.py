"""Decode and graph features without Bytewax, for commands that read history in one pass.

Rule backtests, model training and the benchmark's stage breakdown need the exact address
updates the streaming flow would compute, but not its runtime. This runs the same pure stages in
the same order: decode each block, annotate it in the graph stage, route touches to shards, and
let each shard's state produce updates. Because a shard's output depends only on the ordered
touches it receives, this gives the same features as the dataflow with any number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pipeline.operators.decode import decode_block
from pipeline.operators.features import ShardState
from pipeline.operators.graph import GraphStage
from pipeline.operators.routing import route
from pipeline.operators.windows import WindowConfig
from pipeline.records import AddressUpdate, DecodedBlock
from pipeline.sources.files import iter_replay, resolve_inputs
from pipeline.tron.tokens import TokenRegistry


class FeatureEngine:
    """Graph stage + all shards in one object: ``process(block) -> updates`` in routing order."""

    def __init__(self, config: WindowConfig | None = None, watchlist: frozenset[str] = frozenset()) -> None:
        self.config = config or WindowConfig()
        self.graph = GraphStage(self.config, watchlist)
        self.shards: dict[int, ShardState] = {}

    def process(self, block: DecodedBlock) -> list[AddressUpdate]:
        annotated = self.graph.process(block.transfers)
        out: list[AddressUpdate] = []
        for shard, touches in sorted(route(annotated, self.config.n_shards).items()):
            out.extend(self.shard(shard).process(touches))
        return out

    def shard(self, key: int) -> ShardState:
        """The state of shard ``key``, created on first use."""
        state = self.shards.get(key)
        if state is None:
            state = self.shards[key] = ShardState(self.config)
        return state


def iter_blocks(paths: Sequence[str], tokens: TokenRegistry | None = None) -> Iterator[DecodedBlock]:
    """Decoded blocks of the replay input, in order; unusable input is skipped (see ``run``)."""
    tokens = tokens or TokenRegistry.build()
    last = -1
    for item in iter_replay(resolve_inputs(list(paths))):
        if item.payload is None:
            continue
        out = decode_block(item.payload, "offline", item.where, tokens)
        if isinstance(out, DecodedBlock) and out.block.number > last:
            last = out.block.number
            yield out


def iter_updates(paths: str | Sequence[str], config: WindowConfig | None = None,
                 watchlist: frozenset[str] | None = None,
                 tokens: TokenRegistry | None = None) -> Iterator[list[AddressUpdate]]:
    """One list of address updates per block of the replay input, as the flow computes them.

    ``watchlist`` defaults to the lists shipped under ``rules/lists``.
    """
    if isinstance(paths, str):
        paths = [paths]
    if watchlist is None:
        watchlist = default_watchlist()
    engine = FeatureEngine(config, watchlist)
    for block in iter_blocks(paths, tokens):
        yield engine.process(block)


def default_watchlist() -> frozenset[str]:
    from pathlib import Path

    from pipeline.watchlists import load_watchlists

    lists_dir = Path(__file__).resolve().parents[1] / "rules" / "lists"
    if not lists_dir.is_dir():
        return frozenset()
    return load_watchlists(lists_dir).addresses
