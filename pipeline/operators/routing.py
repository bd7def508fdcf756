"""Route annotated transfers to address shards: sender's shard and receiver's shard.

Why a fixed shard count: Bytewax assigns keys to workers, so if the key were the worker count,
features would change with the deployment. The key is ``shard_of(address, n_shards)`` with a
stable crc32 and a FIXED ``n_shards``; each shard's state sees exactly the same ordered sequence
of touches whatever the number of workers, hence identical outputs with 1 or N workers.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.operators.graph import Annotated, GraphFacts
from pipeline.operators.windows import DEFAULT_SHARDS, shard_of
from pipeline.records import Transfer

SENDER = "sender"
RECEIVER = "receiver"

# (role, transfer, facts): one side of one transfer, for the shard of that side's address
Touch = tuple[str, Transfer, GraphFacts]


def route(annotated: Iterable[Annotated], n_shards: int = DEFAULT_SHARDS) -> dict[int, list[Touch]]:
    """Split a batch into per-shard touch lists, keeping batch order inside every shard.

    Empty addresses are skipped (nothing to key them by). A self-transfer yields two touches,
    sender then receiver, for the same shard.
    """
    out: dict[int, list[Touch]] = {}
    for t, facts in annotated:
        a = t.from_address
        if a:
            s = shard_of(a, n_shards)
            lst = out.get(s)
            if lst is None:
                lst = out[s] = []
            lst.append((SENDER, t, facts))
        b = t.to_address
        if b:
            s = shard_of(b, n_shards)
            lst = out.get(s)
            if lst is None:
                lst = out[s] = []
            lst.append((RECEIVER, t, facts))
    return out


def route_items(annotated: Iterable[Annotated], n_shards: int = DEFAULT_SHARDS) -> list[tuple[str, list[Touch]]]:
    """:func:`route` as Bytewax ``(key, value)`` items, keys as strings, in shard order."""
    return [(str(k), v) for k, v in sorted(route(annotated, n_shards).items())]
