"""The rolling transfer graph: watchlist exposure and short cycles, one stage before the shards.

Why a single stage: per-address features (``features.py``) partition cleanly by address, but
"how many hops to a sanctioned address" and "does this edge close a cycle" need other addresses'
edges. Rather than a distributed graph protocol (non-deterministic, chatty), one keyed stage keeps
the whole windowed graph and annotates each transfer with a few numbers (:class:`GraphFacts`);
the shards then only read them. Its output is a pure function of the transfer sequence, so
features are identical with 1 or N workers downstream. What partitioning it would take, and cost,
is in ``docs/graph-partitioning.md``.

Why it stays cheap (target well under 10 µs per transfer):

* a ``networkx.DiGraph`` holds one edge per (sender, receiver) pair seen in the long window, with
  the latest timestamp; an expiry wheel (one bucket per block timestamp, buckets in time order)
  files each edge once, under the time it was created, and a refreshed edge is re-filed under its
  latest time only when its bucket comes due -- so eviction is O(1) per edge (a heap of
  ``(ts, u, v)`` cost O(log E) comparisons, and ties on ``ts`` compared address strings scattered
  over the heap: 9% of the feature benchmark), and the graph (and everything hung on its nodes)
  is bounded by the window's content;
* the edges of one block share one attribute dict, ``{"ts": block time}``, owned by that block's
  bucket (a refresh points the edge at the newer bucket's dict); a bucket keeps its edges as two
  lists of endpoints: a quarter of a million fewer live objects than a dict and a tuple per edge,
  which the whole process feels as fewer cache misses;
* exposure propagates along each new edge only (receiver inherits ``hops+1`` and
  ``score*decay`` from the sender, the sender inherits from the receiver: paying a sanctioned
  address is exposure too) -- in time order, which is how tainted funds actually move; the score
  also fades linearly to zero over the long window, so old exposure weighs less and then expires;
  each exposure remembers the listed address it came from, so a delisting withdraws it at once;
* a cycle closed by a new edge u->v is a path v ~> u of <= 3 hops already in the window (a
  repeated transfer on an edge already in the window closes nothing new, so each cycle is counted
  once, by the transfer that completed it); it is counted meet-in-the-middle from the smaller side,
  never with a hub (degree > ``hub_degree``: exchange traffic, no signal) at an end, never
  expanding one, and with a fixed ``cycle_budget`` of membership checks per transfer.

Adjacency is read through ``DiGraph._succ``/``_pred`` (the dict-of-dicts networkx has used since
1.x): a view object per lookup would cost more than the whole search in the common case.
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

import networkx as nx

from pipeline.operators.windows import NO_HOPS, WindowConfig
from pipeline.records import Kind, Transfer

log = logging.getLogger(__name__)

_VALUE = Kind.VALUE_MOVEMENTS


class CycleMember(NamedTuple):
    """An address inside a cycle that a transfer closed: neither its sender nor its receiver."""

    address: str
    cycles: int  # how many of the cycles closed by the transfer pass through it
    hops: int  # its own watchlist exposure, as of the transfer
    score: float
    cp_hops: int  # the transfer's receiver's hops: the counterparty of the member's update


class GraphFacts(NamedTuple):
    """What the graph stage knows about one transfer's two addresses, right after it."""

    from_hops: int = NO_HOPS
    from_score: float = 0.0
    to_hops: int = NO_HOPS
    to_score: float = 0.0
    cycles: int = 0  # cycles of <= 4 hops closed by this transfer's edge (new in the window)
    # the other addresses on those cycles, sorted, when they form a ring (<= RING_MAX_CYCLES)
    members: tuple[CycleMember, ...] = ()


NO_FACTS = GraphFacts()
# Members are named only when the new edge closes at most this many cycles: a ring (with at most
# one chord), not a mesh. On the simulated chain 7% of transfers close a cycle, with ~5 members
# on average when every cycle's members were named: a third more shard touches, mostly in
# neighbourhoods of mutual payers whose two ends already carry the count. A ring closes one.
RING_MAX_CYCLES = 2
_NO_PATHS: tuple[int, dict[str, int] | None] = (0, None)
Annotated = tuple[Transfer, GraphFacts]


class GraphStage:
    """Windowed transfer graph with exposure and cycle facts. Picklable; bounded by the window.

    ``watchlist`` is any iterable of addresses (a ``WatchlistSet`` or a set), copied into a
    frozenset; swap it with :meth:`set_watchlist` after a reload (``pipeline.hot_reload``).
    """

    def __init__(self, config: WindowConfig | None = None, watchlist: Iterable[str] = frozenset()) -> None:
        self.config = config or WindowConfig()
        self.watchlist: frozenset[str] = frozenset(watchlist)
        self.graph = nx.DiGraph()
        self.clock = 0  # max event time seen, ms
        # expiry wheel: ts -> (the edge attributes {"ts": ts}, senders, receivers) of the edges
        # filed under ts; _due holds those ts in increasing order
        self._wheel: dict[int, tuple[dict[str, int], list[str], list[str]]] = {}
        self._due: deque[int] = deque()
        # address -> [hops, hops_until_ms, score, score_at_ms, hops_origin, score_origin]; only
        # for nodes in the graph. An origin is the listed address the exposure came from.
        self._exposure: dict[str, list] = {}

    def set_watchlist(self, watchlist: Iterable[str]) -> int:
        """Swap in a reloaded watchlist (kept as a frozenset: membership is the hot path).

        Addresses new to the list expose their neighbourhood in the window at once, rather than
        only through edges that arrive later: a counterparty paid ten minutes before the listing
        is one hop from a sanctioned address now. Returns how many addresses gained exposure.

        Addresses taken off a list (a delisting, or a list entry that was a mistake) withdraw at
        once the exposure that came from them: every entry whose hops or score originated at a
        delisted address loses it, so "indirect sanctions exposure" stops firing on the next
        transfer rather than an hour later. Those addresses (and the delisted ones) then get what
        the addresses still listed account for, rebuilt in time order (:meth:`_reexpose`).
        """
        new = frozenset(watchlist)
        added = new - self.watchlist
        removed = self.watchlist - new
        self.watchlist = new
        exposed = self._expose_neighbourhood(added) if added else 0
        if removed:
            lost = self._withdraw(removed)
            exposed += self._reexpose(lost | removed)
        return exposed

    # -- public API ---------------------------------------------------------------------------

    def process(self, transfers: Iterable[Transfer]) -> list[Annotated]:
        """Annotate a batch of transfers (block order) with their graph facts."""
        out: list[Annotated] = []
        append = out.append
        cfg = self.config
        lateness = cfg.lateness_ms
        for t in transfers:
            ts = t.ts
            if ts > self.clock:
                self.clock = ts
                self._evict(ts - cfg.long_ms)
            elif ts < self.clock - lateness:
                ts = self.clock - lateness
            if t.kind in _VALUE and t.success:
                append((t, self._add_edge(t.from_address, t.to_address, ts)))
            else:
                append((t, self._read(t.from_address, t.to_address, ts)))
        return out

    def exposure(self, address: str, now: int | None = None) -> tuple[int, float]:
        """``(hops, score)`` of one address at ``now`` (default: the stage clock)."""
        return self._get(address, self.clock if now is None else now)

    def stats(self) -> dict[str, int]:
        return {
            "nodes": self.graph.number_of_nodes(),
            "edges": self.graph.number_of_edges(),
            "filed": sum(len(b[1]) for b in self._wheel.values()),  # == edges: each filed once
            "exposed": len(self._exposure),
        }

    # -- internals ----------------------------------------------------------------------------

    def _get(self, a: str, now: int) -> tuple[int, float]:
        if a in self.watchlist:
            return 0, 1.0
        e = self._exposure.get(a)
        if e is None:
            return NO_HOPS, 0.0
        hops = e[0] if e[1] > now else NO_HOPS
        age = now - e[3]
        window = self.config.long_ms
        score = e[2] * (1.0 - age / window) if age < window else 0.0
        return hops, score

    def _read(self, u: str, v: str, now: int) -> GraphFacts:
        exp, watch = self._exposure, self.watchlist
        if not (u in exp or v in exp or u in watch or v in watch):
            return NO_FACTS
        hu, su = self._get(u, now) if u else (NO_HOPS, 0.0)
        hv, sv = self._get(v, now) if v else (NO_HOPS, 0.0)
        if hu == NO_HOPS and hv == NO_HOPS and su == 0.0 and sv == 0.0:
            return NO_FACTS
        return GraphFacts(hu, su, hv, sv, 0)

    def _origin(self, a: str) -> tuple[str, str]:
        """The listed addresses ``a``'s hops and score came from (``a`` itself when listed)."""
        if a in self.watchlist:
            return a, a
        e = self._exposure.get(a)
        return (e[4], e[5]) if e is not None else ("", "")

    def _offer(self, a: str, hops: int, score: float, now: int, origin: tuple[str, str]) -> None:
        """Give ``a`` exposure ``(hops, score)`` learned at ``now`` if better than what it has;
        ``origin`` names the listed addresses that hops and score came from."""
        e = self._exposure.get(a)
        if e is None:
            self._exposure[a] = [hops, now + self.config.long_ms, score, now, origin[0], origin[1]]
            return
        cur_hops, cur_score = self._get(a, now)
        if hops <= cur_hops:
            e[0] = hops
            e[1] = now + self.config.long_ms
            e[4] = origin[0]
        if score >= cur_score:
            e[2] = score
            e[3] = now
            e[5] = origin[1]

    def _withdraw(self, delisted: frozenset[str]) -> set[str]:
        """Take back the hops and scores that came from ``delisted`` addresses; drop entries left
        with neither. Returns the addresses that lost something. One pass over the exposure map,
        which only a reload that removes addresses pays for."""
        exposure = self._exposure
        hit: set[str] = set()
        for a in list(exposure):
            e = exposure[a]
            lost = False
            if e[4] in delisted:
                e[0], e[1], e[4], lost = NO_HOPS, 0, "", True
            if e[5] in delisted:
                e[2], e[5], lost = 0.0, "", True
            if lost:
                hit.add(a)
                if e[0] == NO_HOPS and e[2] == 0.0:
                    del exposure[a]
        return hit

    def _expose_neighbourhood(self, listed: Iterable[str]) -> int:
        """Breadth-first from newly ``listed`` addresses over the window graph, both directions
        (exposure also flows both ways along a new edge), up to ``max_hops``: hop ``h`` gets
        score ``decay**h`` as of the stage clock, through :meth:`_offer` (kept when better).

        Hubs (degree > ``hub_degree``) receive exposure but are not expanded beyond the listed
        address's own neighbours: every customer of an exchange that once received from a
        sanctioned address is not two hops from it in any useful sense, and expanding one would
        touch the whole window. Cost: a bounded walk per listed address present in the graph.
        """
        succ, pred = self.graph._succ, self.graph._pred
        cfg, now, watch = self.config, self.clock, self.watchlist
        cap = cfg.hub_degree
        frontier = [(a, a) for a in sorted(listed) if a in succ]  # (address, listed origin)
        seen = {a for a, _ in frontier}
        exposed = 0
        for hops in range(1, cfg.max_hops + 1):
            score = cfg.decay ** hops
            ahead: list[tuple[str, str]] = []
            for a, origin in frontier:
                out_, in_ = succ[a], pred[a]
                if hops > 1 and (len(out_) > cap or len(in_) > cap):
                    continue
                for b in (*out_, *in_):
                    if b in seen or b in watch:
                        continue
                    seen.add(b)
                    self._offer(b, hops, score, now, (origin, origin))
                    ahead.append((b, origin))
                    exposed += 1
            frontier = ahead
        return exposed

    def _reexpose(self, targets: set[str]) -> int:
        """After a delisting: what the addresses still listed account for, for ``targets`` only
        (the addresses that lost exposure, and the delisted ones), as propagation along the
        window's transfers would have given it -- over paths whose transfers run forward in time,
        with the score and the hop expiry timed from the path's last transfer -- so a delisting
        never raises or refreshes anyone's exposure. Hubs are not walked through (as in
        :meth:`_expose_neighbourhood`). Returns how many offers were made. Cost: a bounded walk
        per listed address in the graph, paid only by a reload that removes addresses.
        """
        if not targets:
            return 0
        succ, pred = self.graph._succ, self.graph._pred
        cfg, watch = self.config, self.watchlist
        cap = cfg.hub_degree
        offered = 0
        for origin in sorted(a for a in watch if a in succ):
            frontier: dict[str, int] = {origin: -1}  # address -> earliest time it was reached
            seen = {origin}
            for hops in range(1, cfg.max_hops + 1):
                score = cfg.decay ** hops
                ahead: dict[str, int] = {}
                for a, since in frontier.items():
                    out_, in_ = succ[a], pred[a]
                    if hops > 1 and (len(out_) > cap or len(in_) > cap):
                        continue
                    for neighbours in (out_, in_):
                        for b, attrs in neighbours.items():
                            at = attrs["ts"]  # the edge's latest transfer
                            if at >= since and b not in seen and b not in watch and at < ahead.get(b, at + 1):
                                ahead[b] = at
                for b, at in ahead.items():
                    seen.add(b)
                    if b in targets:
                        self._offer(b, hops, score, at, (origin, origin))
                        offered += 1
                frontier = ahead
        return offered

    def _add_edge(self, u: str, v: str, now: int) -> GraphFacts:
        if not u or not v or u == v:
            return self._read(u, v, now)
        cfg = self.config
        succ_u = self.graph._succ.get(u)
        data = succ_u.get(v) if succ_u is not None else None
        if data is None:  # a new edge: count the cycles it closes (each cycle once per window)
            cycles, on_path = self._count_paths(u, v)
            self._link(u, v, now)
        else:
            cycles, on_path = 0, None
            if now > data["ts"]:  # point the edge at this block's attributes; re-filed when due
                succ_u[v] = self.graph._pred[v][u] = self._bucket(now)[0]
        ring = on_path if on_path and cycles <= RING_MAX_CYCLES else None
        exp, watch = self._exposure, self.watchlist
        if u in exp or v in exp or u in watch or v in watch:
            hu, su = self._get(u, now)
            hv, sv = self._get(v, now)
            ou, ov = self._origin(u), self._origin(v)
            if hu < cfg.max_hops and hv != 0:
                self._offer(v, hu + 1, su * cfg.decay, now, ou)
            if hv < cfg.max_hops and hu != 0:
                self._offer(u, hv + 1, sv * cfg.decay, now, ov)
            hu2, su2 = self._get(u, now)
            hv2, sv2 = self._get(v, now)
            if cycles or hu2 != NO_HOPS or hv2 != NO_HOPS or su2 or sv2:
                members = self._members(ring, now, hv2) if ring else ()
                return GraphFacts(hu2, su2, hv2, sv2, cycles, members)
            return NO_FACTS
        if not cycles:
            return NO_FACTS
        return GraphFacts(cycles=cycles, members=self._members(ring, now, NO_HOPS) if ring else ())

    def _members(self, on_path: dict[str, int], now: int, receiver_hops: int) -> tuple[CycleMember, ...]:
        """The intermediate addresses of the cycles just closed, with their own exposure and the
        receiver's hops (their counterparty on the update), sorted by address: set iteration
        order follows string hashes, which differ between processes."""
        return tuple(CycleMember(a, n, *self._get(a, now), receiver_hops) for a, n in sorted(on_path.items()))

    def _link(self, u: str, v: str, now: int) -> None:
        """``graph.add_edge(u, v, ts=now)`` for an edge known to be new, on networkx's adjacency
        dicts directly (as networkx itself does): the public call costs more than the rest of
        the transfer's graph work. Eviction removes edges and bare nodes the same way. The edge
        is filed in the wheel under ``now`` and shares that bucket's attribute dict."""
        g = self.graph
        succ, pred, nodes = g._succ, g._pred, g._node
        if u not in succ:
            succ[u], pred[u], nodes[u] = {}, {}, {}
        if v not in succ:
            succ[v], pred[v], nodes[v] = {}, {}, {}
        attrs, senders, receivers = self._bucket(now)
        succ[u][v] = pred[v][u] = attrs
        senders.append(u)
        receivers.append(v)

    def _count_paths(self, u: str, v: str) -> tuple[int, dict[str, int] | None]:
        """Simple paths v ~> u of 1..3 hops already in the graph: cycles the edge u->v closes,
        and how many of them pass through each intermediate address (``None`` when none do).

        Cycles with a hub at an end are not counted: when u or v pays, or is paid by, more than
        ``hub_degree`` addresses in the window, the edge is exchange or contract traffic, and a
        user who withdraws from an exchange and deposits back closes a "cycle" that says nothing
        about laundering. On the 1M-transaction simulated chain 63% of the searches had such a
        hub at an end, and dropping them took the graph stage from ~11 to ~8.5 µs per transaction.

        Meet in the middle with C-level key-set intersections: 2 hops is succ(v) & pred(u);
        3 hops expands the smaller of the two by one more step, skipping hubs in the middle too.
        There are no self-loops, so the only invalid meeting points to subtract are the path's
        own ends. The intermediates are collected only while the count is within a ring's
        (``RING_MAX_CYCLES``): past it they are not named, and a mesh can hold thousands.
        """
        succ = self.graph._succ
        pred = self.graph._pred
        sv = succ.get(v)
        pu = pred.get(u)
        if not sv or not pu:
            return _NO_PATHS
        cap = self.config.hub_degree
        n_sv, n_pu = len(sv), len(pu)
        if n_sv > cap or n_pu > cap or len(pred[v]) > cap or len(succ.get(u, ())) > cap:
            return _NO_PATHS  # an end is a hub: every customer of an exchange closes cycles through it
        n = 1 if u in sv else 0
        sv_keys, pu_keys = sv.keys(), pu.keys()
        on_path: dict[str, int] | None = None
        middle = sv_keys & pu_keys  # 2 hops: v -> a -> u
        if middle:
            n += len(middle)
            if n <= RING_MAX_CYCLES:
                on_path = dict.fromkeys(middle, 1)
        budget = self.config.cycle_budget - min(n_sv, n_pu)
        if n_sv <= n_pu:  # 3 hops: v -> a -> b -> u, expanding successors of v
            for a in sv:
                sa = succ[a]
                n_sa = len(sa)
                if n_sa > cap or a == u:
                    continue
                budget -= min(n_sa, n_pu)
                if budget < 0:
                    break
                common = sa.keys() & pu_keys
                if common:
                    common.discard(v)  # v -> a -> v -> u is not a simple path
                    if common:
                        n += len(common)
                        if n <= RING_MAX_CYCLES:  # past it the members are not named
                            on_path = _on_path(on_path, a, common)
        else:  # 3 hops, expanding predecessors of u
            for b in pu:
                pb = pred[b]
                n_pb = len(pb)
                if n_pb > cap or b == v:
                    continue
                budget -= min(n_pb, n_sv)
                if budget < 0:
                    break
                common = pb.keys() & sv_keys
                if common:
                    common.discard(u)  # v -> u -> b -> u is not a simple path
                    if common:
                        n += len(common)
                        if n <= RING_MAX_CYCLES:
                            on_path = _on_path(on_path, b, common)
        return n, on_path

    def _bucket(self, ts: int) -> tuple[dict[str, int], list[str], list[str]]:
        """The wheel's bucket for ``ts``, created on first use (nearly always after the last one)."""
        bucket = self._wheel.get(ts)
        if bucket is None:
            bucket = self._wheel[ts] = ({"ts": ts}, [], [])
            due = self._due
            if not due or due[-1] < ts:
                due.append(ts)
            else:  # a late block, within the allowed lateness
                due.insert(bisect.bisect_left(due, ts), ts)
        return bucket

    def _evict(self, cutoff: int) -> None:
        """Drop edges whose latest transfer is at or before ``cutoff``; drop nodes left bare."""
        due = self._due
        if not due or due[0] > cutoff:
            return
        g = self.graph
        succ, pred, wheel = g._succ, g._pred, self._wheel
        while due and due[0] <= cutoff:
            attrs, senders, receivers = wheel.pop(due.popleft())
            for u, v in zip(senders, receivers):
                current = succ[u][v]
                if current is not attrs:  # refreshed since: file it under its latest time, whose
                    later = wheel[current["ts"]]  # bucket is still ahead (times only increase)
                    later[1].append(u)
                    later[2].append(v)
                    continue
                del succ[u][v]
                del pred[v][u]
                for node in (u, v):
                    if not succ[node] and not pred[node]:  # bare: no edge left to remove with it
                        del succ[node], pred[node], g._node[node]
                        self._exposure.pop(node, None)
        exposure = self._exposure
        if len(exposure) > 2 * len(succ) + 1024:
            log.warning("exposure map larger than graph: %d vs %d nodes", len(exposure), len(succ))



def _on_path(on_path: dict[str, int] | None, pivot: str, others: set[str]) -> dict[str, int]:
    """Count 3-hop paths through ``pivot`` and each of ``others`` (the middle two addresses)."""
    if on_path is None:
        on_path = {}
    on_path[pivot] = on_path.get(pivot, 0) + len(others)
    for x in others:
        on_path[x] = on_path.get(x, 0) + 1
    return on_path
