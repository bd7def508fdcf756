"""Hand-built transfer sequences and a runner for graph -> route -> shards, as the flow wires them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import pytest

from pipeline.operators.features import ShardState
from pipeline.operators.graph import GraphStage
from pipeline.operators.routing import route
from pipeline.operators.windows import WindowConfig
from pipeline.records import AddressUpdate, Kind, Transfer

T0 = 1_714_000_000_000  # ms, a 2024 block time


class Chain:
    """Builds transfers with deterministic ids; ``at`` is seconds after ``T0``."""

    def __init__(self) -> None:
        self._ids = itertools.count()

    def tx(self, at: float, a: str, b: str, usd: float = 10.0, kind: str = Kind.TRX,
           raw: int | None = None, ok: bool = True) -> Transfer:
        i = next(self._ids)
        ts = T0 + int(at * 1000)
        amount_raw = int(usd * 1_000_000) if raw is None else raw
        return Transfer(f"{i:064x}:0", kind, f"{i:064x}", 0, 60_000_000 + int(at // 3), ts, a, b, a,
                        "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "USDT", 6, amount_raw, usd, usd, ok,
                        "SUCCESS" if ok else "REVERT", "", "", "")


def batches(transfers: Iterable[Transfer]) -> list[list[Transfer]]:
    """Group consecutive transfers of the same block (same ts), as decode emits them."""
    return [list(g) for _, g in itertools.groupby(transfers, key=lambda t: t.ts)]


class Runner:
    """One graph stage and ``n_shards`` shard states, fed block by block."""

    def __init__(self, config: WindowConfig | None = None, watch: Iterable[str] = ()) -> None:
        self.config = config or WindowConfig()
        self.graph = GraphStage(self.config, frozenset(watch))
        self.shards = [ShardState(self.config) for _ in range(self.config.n_shards)]

    def feed(self, transfers: Iterable[Transfer]) -> list[AddressUpdate]:
        out: list[AddressUpdate] = []
        for batch in batches(transfers):
            for s, touches in sorted(route(self.graph.process(batch), self.config.n_shards).items()):
                out.extend(self.shards[s].process(touches))
        return out

    def last(self, updates: list[AddressUpdate], address: str, role: str | None = None) -> dict[str, float]:
        """Features of the last update of ``address`` (optionally in ``role``)."""
        for u in reversed(updates):
            if u.address == address and (role is None or u.role == role):
                return u.features.as_dict()
        raise AssertionError(f"no update for {address} {role}")


@pytest.fixture
def chain() -> Chain:
    return Chain()


@pytest.fixture
def runner() -> Callable[..., Runner]:
    return Runner
