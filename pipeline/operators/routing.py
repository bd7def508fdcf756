"""Route annotated transfers to address shards: sender's shard, receiver's shard, and the shards
of the other addresses on the cycles a transfer closed (``member`` touches, rare).

Why a fixed shard count: Bytewax assigns keys to workers, so if the key were the worker count,
features would change with the deployment. The key is ``shard_of(address, n_shards)`` with a
stable crc32 and a FIXED ``n_shards``; each shard's state sees exactly the same ordered sequence
of touches whatever the number of workers, hence identical outputs with 1 or N workers.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.operators.graph import NO_FACTS, Annotated, CycleMember, GraphFacts
from pipeline.operators.windows import DEFAULT_SHARDS, shard_of
from pipeline.records import Transfer

SENDER = "sender"
RECEIVER = "receiver"
MEMBER = "member"  # on a cycle the transfer closed, between its receiver and its sender

# (role, transfer, facts): one side of one transfer, for the shard of that side's address; a
# member touch carries a CycleMember (address, cycles, its own and the receiver's exposure)
Touch = tuple[str, Transfer, GraphFacts | CycleMember]


def route(annotated: Iterable[Annotated], n_shards: int = DEFAULT_SHARDS) -> dict[int, list[Touch]]:
    """Split a batch into per-shard touch lists, keeping batch order inside every shard.

    Empty addresses are skipped (nothing to key them by). A self-transfer yields two touches,
    sender then receiver, for the same shard. Cycle members follow the receiver, in the order the
    graph stage lists them.
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
        if facts is not NO_FACTS and facts.members:  # most transfers: the shared empty facts
            for m in facts.members:
                s = shard_of(m.address, n_shards)
                lst = out.get(s)
                if lst is None:
                    lst = out[s] = []
                lst.append((MEMBER, t, m))
    return out


def route_items(annotated: Iterable[Annotated], n_shards: int = DEFAULT_SHARDS) -> list[tuple[str, list[Touch]]]:
    """:func:`route` as Bytewax ``(key, value)`` items, keys as strings, in shard order."""
    return [(str(k), v) for k, v in sorted(route(annotated, n_shards).items())]
