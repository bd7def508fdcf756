"""Structural detectors: laundering and fraud shapes seen on the whole transfer graph.

Why shapes and not per-address thresholds: a rule such as "a young address receives from 8
senders averaging 1,500 USD within 10 minutes" learns the constants of the chain it was tuned
on (the age of a fresh address in a short replay, a two-minute episode, USDT-sized amounts) and
fires on every exchange deposit address and payment processor of a chain it was not. What a
laundering structure *is* transfers across chains: several addresses that exist for the
structure (their whole activity in the window is the structure) moving the same value on.
So the detectors here describe behaviour, amount-agnostically, in event time:

* **Flow tracing.** A value transfer ``u -> v`` that forwards most of one earlier inflow of ``u``
  (same token, ``min_forward``..``max_forward`` of it, within the window), sent by a *simple*
  address (a handful of transfers each way in the window: not a service), is a *hop*. The inflow
  it continues carries the chain's origin and the hops so far, so every inflow knows the path it
  came by. From that, as the transfers arrive:

  - a path that returns to an address already on it is a **cycle** (time-respecting, by
    construction, up to ``max_path`` hops);
  - a path of ``chain_min`` or more hops is a **peel chain** when its hops also pay small
    amounts aside (the peels), a **stack** (layering chain) when they do not;
  - ``parallel_min`` or more paths from one origin converging on one address, through distinct
    intermediaries, are a **scatter-gather** (one layer), a **mule pass-through** when the
    intermediaries forwarded within ``fast_hold_ms``, or a **stack** (two layers or more).

* **Dedicated counterparties.** A **fan-in** is an address receiving from ``fan_min`` or more
  senders that each paid nobody else in the window (they exist to feed it), while the collector
  itself pays at most a few exits; a **fan-out** is the mirror (receivers funded by nobody else,
  a source funded by a few); both at once is a **gather-scatter** hub. Inflows *pulled* by a third
  party (``transferFrom`` signed by a spender: payment processors) are not sources.

* **Approval drains.** A ``transferFrom`` signed by a spender that a victim approved in the
  window for an unlimited amount, when that spender holds approvals from only a few owners in
  the window (a payment processor holds many) and pulls to itself or to a fresh address.

Services stay out by behaviour, not by list: an address with more than ``max_entries`` transfers
in one direction within the window (exchange hot wallets, routers, processors, gas stations) is
*busy*: it is never a hop, a dedicated member or a subject. Transfers below ``min_usd`` (dust,
unpriced tokens) count towards how busy an address is and nothing else: poisoning has rules of
its own. A fan's members must also be most of what its subject does (``concentration`` of its
counterparties): an ordinary wallet that happens to pay a few rarely seen addresses is not a
fan-out.

Every alert names the other members of the structure in ``details.members`` (with
``member_roles``), and is re-emitted under the same id, with the members it has gained, when the
structure grows (at most ``max_updates`` times), so storage keeps one row per structure.

State is bounded by the window: per address at most ``max_entries`` inflows and outflows, and
addresses untouched for a window are dropped (``_expire``). One instance holds the whole graph,
so it runs inside the single graph key, in block order: its output is a pure function of the
transfer sequence.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from pipeline.errors import ConfigError
from pipeline.records import Alert, Kind, Transfer, alert_id

_VALUE = Kind.VALUE_MOVEMENTS
_APPROVE = Kind.TRC20_APPROVE
_PULL = Kind.TRC20_TRANSFER_FROM
UNLIMITED = 2**255
RULE_VERSION = "s1"
# A structure's risk, which orders it under the alert budget: a base per shape, from how often that
# shape named labelled addresses on the suite's *tuning* split (stacks and cycles ~0.8-0.95, fan-outs
# and peel chains ~0.5), plus one point per member named, up to ten.
BASE_RISK = {"stack": 85.0, "cycle": 85.0, "fan_in": 80.0, "structuring": 80.0, "gather_scatter": 75.0,
             "scatter_gather": 70.0, "mule_pass_through": 70.0, "peel_chain": 65.0, "fan_out": 60.0,
             "approval_drain": 90.0}

# structure -> (rule id, severity, tags, title)
STRUCTURES: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "fan_in": ("structure.fan_in", "high", ("fan_in",), "Fan-in: dedicated senders converge on one collector"),
    "fan_out": ("structure.fan_out", "high", ("fan_out",), "Fan-out: one source funds dedicated receivers"),
    "gather_scatter": ("structure.gather_scatter", "high", ("gather_scatter",),
                       "Gather-scatter: a hub pools dedicated senders and pays dedicated receivers"),
    "scatter_gather": ("structure.scatter_gather", "high", ("scatter_gather",),
                       "Scatter-gather: funds split over intermediaries re-converge"),
    # relaying at once is what mules do, but a fast scatter-gather looks the same: both are named
    "mule_pass_through": ("structure.mule_pass_through", "high", ("mule_pass_through", "scatter_gather"),
                          "Mule pass-through: intermediaries relay one source's funds at once"),
    "stack": ("structure.stack", "high", ("stack",), "Layering: value passed on through several hops"),
    "peel_chain": ("structure.peel_chain", "high", ("peel_chain",),
                   "Peel chain: value passed hop to hop, a small part peeled off at each"),
    "structuring": ("structure.structuring", "high", ("fan_in",),
                    "Structuring: several senders pay one collector again and again"),
    "cycle": ("structure.cycle", "high", ("cycle",), "Cycle: value returns to where it started"),
    "approval_drain": ("structure.approval_drain", "critical", ("approval_phishing",),
                       "Approval drain: a rarely approved spender pulls an unlimited allowance"),
}


@dataclass(frozen=True, slots=True)
class StructureConfig:
    """Knobs of the structural detectors (event time, ms). Validated once."""

    window_ms: int = 7_200_000  # how far back a structure may reach (2 h)
    max_entries: int = 48  # transfers kept per address and direction; more within the window = busy
    min_usd: float = 1.0  # smaller transfers do not count (dust, spam)
    fan_min: int = 5  # dedicated counterparties of a fan-in / fan-out
    dedicated_degree: int = 1  # a dedicated member's distinct counterparties on the other side
    exit_max: int = 3  # a collector pays at most this many (a source is funded by at most this many)
    concentration: float = 0.7  # dedicated members are at least this share of a fan's counterparties
    loose_concentration: float = 0.5  # ... or this share, with one more far-side counterparty, when
    # the value is conserved through the fan's subject
    repeat_min: int = 3  # a structuring sender pays the collector at least this often in the window
    repeat_senders: int = 3  # ... and there are at least this many of them
    simple_max: int = 8  # a hop has at most this many transfers each way in the window
    min_forward: float = 0.75  # a hop forwards at least this share of one inflow ...
    max_forward: float = 1.005  # ... and at most this (a little over: rounding)
    chain_min: int = 3  # hops of a chain
    parallel_min: int = 3  # converging paths of a scatter-gather / stack
    fast_hold_ms: int = 120_000  # a mule forwards within this
    max_path: int = 6  # longest path traced (cycles up to this many hops)
    max_updates: int = 3  # re-emissions of one structure as it grows
    settle_ms: int = 300_000  # a structure is confirmed this long after it formed (0: at once)
    approval_owners_max: int = 3  # a spender approved by more owners in the window is a service

    def __post_init__(self) -> None:
        if self.window_ms <= 0 or self.max_entries < 4:
            raise ConfigError("structures: window_ms must be > 0 and max_entries >= 4")
        if not 0.0 < self.min_forward <= 1.0 <= self.max_forward:
            raise ConfigError("structures: need 0 < min_forward <= 1 <= max_forward")
        if min(self.fan_min, self.chain_min, self.parallel_min) < 2 or self.max_path < 3:
            raise ConfigError("structures: fan_min, chain_min, parallel_min >= 2 and max_path >= 3")


# An inflow: [ts, src, token, amount, usd, origin, path, hold_ms, pulled, used, tx_id]
_TS, _SRC, _TOKEN, _AMOUNT, _USD, _ORIGIN, _PATH, _HOLD, _PULLED, _USED, _TX = range(11)
# An outflow: (ts, dst, usd)
# A structure found: (kind, subject, {address: role}, evidence)
Finding = tuple[str, str, dict[str, str], dict[str, object]]


class _Node:
    __slots__ = ("ins", "last", "outs", "paths")

    def __init__(self, n: int) -> None:
        self.ins: deque[list] = deque(maxlen=n)
        self.outs: deque[tuple[int, str, float]] = deque(maxlen=n)
        self.last = 0
        # origin -> {first intermediary: (path, max hold ms)}: paths converging here
        self.paths: dict[str, dict[str, tuple[tuple[str, ...], int]]] | None = None


class _Found:
    """One structure found, kept so it can be re-emitted under the same id as it grows."""

    __slots__ = ("aid", "emitted", "members", "updates")

    def __init__(self, aid: str) -> None:
        self.aid = aid
        self.members: dict[str, str] = {}
        self.emitted = 0
        self.updates = 0


class StructureDetector:
    """Holds the windowed flows of every address and emits structural alerts. Picklable."""

    def __init__(self, config: StructureConfig | None = None) -> None:
        self.config = config or StructureConfig()
        self.nodes: OrderedDict[str, _Node] = OrderedDict()
        self.clock = 0
        # spender -> {owner: ts of the latest unlimited approval}
        self.approvals: dict[str, dict[str, int]] = {}
        # (structure, subject) -> what was emitted, with when it expires
        self.found: dict[tuple[str, str], tuple[_Found, int]] = {}
        # origins and gatherers of converging paths -> until when: their fan shape is named there
        self.diamonds: dict[str, int] = {}
        # structures formed but not yet confirmed: (kind, subject) -> [due, transfer, roles, evidence]
        self.pending: dict[tuple[str, str], list] = {}
        self._swept = 0

    # -- public API ---------------------------------------------------------------------------

    def process(self, transfers: Iterable[Transfer]) -> list[Alert]:
        """Feed one block's transfers (in order); return the structures confirmed or grown."""
        cfg = self.config
        for t in transfers:
            if not t.success:
                continue
            ts = t.ts
            if ts > self.clock:
                self.clock = ts
                self._expire(ts - cfg.window_ms)
            if t.kind in _VALUE:
                if t.from_address and t.to_address and t.from_address != t.to_address:
                    now = max(ts, self.clock - cfg.window_ms)
                    if t.amount_usd >= cfg.min_usd:
                        for finding in self._flow(t, now):
                            self._candidate(t, *finding)
                    else:  # counts towards how busy both sides are, and nothing else
                        self._node(t.from_address, now).outs.append((now, t.to_address, 0.0))
                        self._node(t.to_address, now).ins.append(
                            [now, t.from_address, "", 0.0, 0.0, "", (), 0, False, True, t.tx_id])
            elif t.kind == _APPROVE and t.amount_raw >= UNLIMITED and t.from_address and t.to_address:
                self.approvals.setdefault(t.to_address, {})[t.from_address] = ts
        return self._settle(self.clock)

    def flush(self) -> list[Alert]:
        """At the end of the input: confirm what is pending with what is known by now."""
        return self._settle(None)

    def stats(self) -> dict[str, int]:
        return {"nodes": len(self.nodes), "structures": len(self.found),
                "pending": len(self.pending), "spenders": len(self.approvals)}

    # -- flows ----------------------------------------------------------------------------------

    def _node(self, a: str, now: int) -> _Node:
        n = self.nodes.get(a)
        if n is None:
            n = self.nodes[a] = _Node(self.config.max_entries)
        else:
            self.nodes.move_to_end(a)
        n.last = now
        cutoff = now - self.config.window_ms
        ins, outs = n.ins, n.outs
        while ins and ins[0][_TS] < cutoff:
            ins.popleft()
        while outs and outs[0][0] < cutoff:
            outs.popleft()
        return n

    def _busy(self, n: _Node) -> bool:
        """More transfers in one direction within the window than a structure member makes."""
        m = self.config.max_entries
        return len(n.ins) >= m or len(n.outs) >= m

    def _simple(self, n: _Node | None) -> bool:
        """Few transfers each way in the window: what a hop of a laundering path looks like."""
        m = self.config.simple_max
        return n is None or (len(n.ins) <= m and len(n.outs) <= m)

    def _flow(self, t: Transfer, now: int) -> list[Finding]:
        cfg = self.config
        u, v = t.from_address, t.to_address
        nu, nv = self._node(u, now), self._node(v, now)
        pulled = t.kind == _PULL and t.caller and t.caller != u
        found: list[Finding] = []
        # does u forward one of its inflows? (a hop continues that inflow's path)
        origin, path, hold = u, (), 0
        if not pulled and len(nu.ins) <= cfg.simple_max and len(nu.outs) < cfg.simple_max:
            hop = self._match(nu, t)
            if hop is not None:
                hop[_USED] = True
                if hop[_PATH]:
                    origin, path = hop[_ORIGIN], hop[_PATH] + (u,)
                else:
                    origin, path = hop[_SRC], (u,)
                hold = max(hop[_HOLD], now - hop[_TS])
        nu.outs.append((now, v, t.amount_usd))
        nv.ins.append([now, u, t.token, t.amount, t.amount_usd, origin, path, hold, bool(pulled), False, t.tx_id])
        if path and len(path) <= cfg.max_path:
            found.extend(self._traced(origin, path, hold, v, nv))
        if pulled:
            found.extend(self._drain(t, now))
        if not pulled:
            found.extend(self._fan(v, nv, inbound=True))
            found.extend(self._structuring(u, v, nv))
        found.extend(self._fan(u, nu, inbound=False))
        if len(nu.ins) >= cfg.fan_min:  # a collector passing on what its fan brought in
            found.extend(self._fan(u, nu, inbound=True))
        return found

    def _match(self, n: _Node, t: Transfer) -> list | None:
        """The newest unused inflow of the same token that ``t`` forwards most of."""
        lo, hi = self.config.min_forward, self.config.max_forward
        x = t.amount
        for e in reversed(n.ins):
            if e[_USED] or e[_PULLED] or e[_TOKEN] != t.token:
                continue
            if e[_SRC] == t.to_address and not e[_PATH]:  # straight back to the sender: a refund
                continue
            y = e[_AMOUNT]
            if y > 0 and lo * y <= x <= hi * y:
                return e
        return None

    def _traced(self, origin: str, path: tuple[str, ...], hold: int, v: str, nv: _Node) -> list[Finding]:
        cfg = self.config
        if v == origin or v in path:  # the value came back: a cycle
            ring = (origin, *path) if v == origin else path[path.index(v):]
            if len(ring) < 3:
                return []
            for kind in ("stack", "peel_chain"):  # the chain that closed was this ring all along
                self.pending.pop((kind, origin), None)
            return [("cycle", min(ring), {a: "member" for a in ring}, {"hops": len(ring)})]
        found: list[Finding] = []
        if len(path) >= cfg.chain_min:
            peels = sum(1 for h in path if self._peeled(h, path, v))
            kind = "peel_chain" if peels * 2 >= len(path) else "stack"
            roles = {origin: "origin", **{h: "hop" for h in path}, v: "end"}
            found.append((kind, origin, roles, {"hops": len(path), "peels": peels, "hold_max_s": hold // 1000}))
        # converging paths from one origin
        if nv.paths is None:
            nv.paths = {}
        if origin not in nv.paths and len(nv.paths) >= cfg.max_entries:
            del nv.paths[next(iter(nv.paths))]  # the oldest origin: bounded like the flows
        by_first = nv.paths.setdefault(origin, {})
        by_first[path[0]] = (path, hold)
        if len(by_first) >= cfg.parallel_min:
            layers = max(len(p) for p, _ in by_first.values())
            slowest = max(h for _, h in by_first.values())
            if layers >= 2:
                kind = "stack"
            elif slowest <= cfg.fast_hold_ms:
                kind = "mule_pass_through"
            else:
                kind = "scatter_gather"
            roles = {origin: "origin"}
            for p, _ in by_first.values():
                for h in p:
                    roles[h] = "intermediary"
            roles[v] = "gatherer"
            until = self.clock + cfg.window_ms
            self.diamonds[origin] = self.diamonds[v] = until
            found.append((kind, v, roles, {"paths": len(by_first), "layers": layers,
                                          "hold_max_s": slowest // 1000}))
        return found

    def _peeled(self, hop: str, path: tuple[str, ...], end: str) -> bool:
        """``hop`` also paid someone off the path (the peel)."""
        n = self.nodes.get(hop)
        if n is None:
            return False
        on_path = set(path)
        on_path.add(end)
        return any(dst not in on_path for _, dst, _ in n.outs)

    def _fan(self, subject: str, n: _Node, inbound: bool) -> list[Finding]:
        """Fan-in (``inbound``: ``subject`` received) or fan-out, and gather-scatter at a hub.

        Members qualify in one of two ways. *Strictly*: each has ``subject`` as its only
        counterparty on its far side, and they are ``concentration`` of the subject's
        counterparties. *Loosely* (two far-side counterparties, half of the subject's), when the
        value is conserved through the subject as well (a collector that passed on most of what
        its fan brought in, a hub that paid out what it pooled): in a sparse background many
        ordinary wallets have a few rarely seen counterparties; few of them move the same value
        on. A fan-out's source is funded by at most ``exit_max`` (else it is a hub or a busy
        wallet) and pays varied amounts (``_varied``: not a payroll or an airdrop).
        """
        cfg = self.config
        if len(n.ins if inbound else n.outs) < cfg.fan_min or self._busy(n):
            return []  # the common case, decided without building a set
        least = cfg.min_usd
        ins = {e[_SRC] for e in n.ins if not e[_PULLED] and e[_USD] >= least}
        outs = {d for _, d, usd in n.outs if usd >= least}
        cps, other = (ins, outs) if inbound else (outs, ins)
        if len(cps) < cfg.fan_min:
            return []
        mine = self._members(cps, subject, inbound, strict=True)
        loose = mine is None
        if loose:
            mine = self._members(cps, subject, inbound, strict=False)
            if mine is None:
                return []
        if self._diamond_end(subject):  # the converging end of a scatter-gather, named there
            return []
        if len(other) > cfg.exit_max:  # pays (or is funded by) many: a hub, if they are dedicated too
            theirs = self._members(other, subject, not inbound, strict=True)
            if theirs is None:
                theirs = self._members(other, subject, not inbound, strict=False)
                loose = True
            if theirs is None:
                return []
            sources, sinks = (mine, theirs) if inbound else (theirs, mine)
            if loose and not self._passed_on(n, set(sources), set(sinks)):
                return []
            if not self._mostly(n, set(sources) | set(sinks)):
                return []
            roles = {s: "source" for s in sources} | {d: "recipient" for d in sinks} | {subject: "hub"}
            return [("gather_scatter", subject, roles, {"sources": len(sources), "recipients": len(sinks),
                                                        "conserved": loose})]
        if not self._mostly(n, set(mine)):
            return []
        if inbound:
            if loose and not self._passed_on(n, set(mine), None):
                return []
            roles = {s: "source" for s in mine} | {subject: "collector"}
            return [("fan_in", subject, roles, {"sources": len(mine), "exits": len(other), "conserved": loose})]
        if not self._varied(n, set(mine)):  # a payroll's few salary levels, an airdrop's one amount
            return []
        roles = {subject: "source"} | {d: "recipient" for d in mine}
        return [("fan_out", subject, roles, {"recipients": len(mine), "funders": len(other), "conserved": loose})]

    def _members(self, cps: set[str], subject: str, senders: bool, strict: bool) -> list[str] | None:
        """The dedicated counterparties if they make a fan (enough of them, most of ``cps``)."""
        cfg = self.config
        share = cfg.concentration if strict else cfg.loose_concentration
        degree = cfg.dedicated_degree if strict else cfg.dedicated_degree + 1
        mine = self._dedicated(cps, subject, senders, misses=int((1.0 - share) * len(cps)), degree=degree)
        return mine if len(mine) >= cfg.fan_min and len(mine) >= share * len(cps) else None

    def _mostly(self, n: _Node, members: set[str]) -> bool:
        """The legs with ``members`` are at least half of everything ``n`` did in the window, dust
        and unpriced tokens included: the structure is what the address is for, not a corner of
        an ordinary wallet's day."""
        legs = sum(1 for e in n.ins if e[_SRC] in members) + sum(1 for x in n.outs if x[1] in members)
        return 2 * legs >= len(n.ins) + len(n.outs)

    def _varied(self, n: _Node, sinks: set[str]) -> bool:
        """Payments to ``sinks`` of varied amounts (at least half of them distinct, to the cent):
        a sum split up, not a payroll of a few salary levels or an airdrop of one amount."""
        amounts = [round(usd, 2) for _, d, usd in n.outs if d in sinks]
        return len(set(amounts)) * 2 >= len(amounts)

    def _passed_on(self, n: _Node, sources: set[str] | None, sinks: set[str] | None) -> bool:
        """Value conserved through ``n``: what it paid (to ``sinks``, or to anyone) is most of what
        it received (from ``sources``, or from anyone), and not more than it received."""
        least = self.config.min_usd
        got = sum(e[_USD] for e in n.ins if e[_USD] >= least and (sources is None or e[_SRC] in sources))
        paid = sum(usd for _, d, usd in n.outs if usd >= least and (sinks is None or d in sinks))
        every_in = sum(e[_USD] for e in n.ins)
        return got > 0 and self.config.min_forward * got <= paid <= self.config.max_forward * max(got, every_in)

    def _structuring(self, sender: str, subject: str, n: _Node) -> list[Finding]:
        """Several senders each paying ``subject`` again and again (``repeat_min`` times or more in
        the window), making most of what it receives: one sum split into many transfers from
        several accounts. Unlike a fan's members, these senders may do other things too; the
        guard is that repeated senders are most of the subject's inflows, which an ordinary
        wallet or a service, paid by many different people, never shows."""
        cfg = self.config
        least = cfg.min_usd
        if len(n.ins) < cfg.repeat_min * cfg.repeat_senders:
            return []
        if sum(1 for e in n.ins if e[_SRC] == sender and e[_USD] >= least) < cfg.repeat_min:
            return []
        counts: dict[str, int] = {}
        total = 0
        for e in n.ins:
            if e[_USD] >= least and not e[_PULLED]:
                counts[e[_SRC]] = counts.get(e[_SRC], 0) + 1
                total += 1
        repeated = sorted(a for a, c in counts.items() if c >= cfg.repeat_min)
        if len(repeated) < cfg.repeat_senders:
            return []
        share = sum(counts[a] for a in repeated) / total
        if share < 0.5:
            return []
        roles = {a: "source" for a in repeated} | {subject: "collector"}
        return [("structuring", subject, roles, {"repeated_senders": len(repeated),
                                                 "repeated_share": round(share, 2)})]

    def _diamond_end(self, a: str) -> bool:
        return self.diamonds.get(a, 0) > self.clock

    def _dedicated(self, cps: set[str], subject: str, senders: bool, misses: int, degree: int) -> list[str]:
        """The counterparties whose only counterparties on the far side, in the window, include
        ``subject`` and at most ``dedicated_degree`` in all: they exist for this structure.
        Gives up (returns what it has) after ``misses`` that are not: the caller needs most."""
        k = degree
        m = self.config.max_entries
        out = []
        nodes = self.nodes
        for c in sorted(cps):  # in a fixed order: with the early exit, set order would change results
            n = nodes.get(c)
            if n is not None and len(n.ins) < m and len(n.outs) < m:
                side = n.outs if senders else n.ins
                if len(side) <= 16:  # a handful of transfers: look closer
                    far = {x[1] for x in side}
                    if subject in far and len(far) <= k:
                        out.append(c)
                        continue
            misses -= 1
            if misses < 0:
                break
        return sorted(out)

    def _drain(self, t: Transfer, now: int) -> list[Finding]:
        spender, owner = t.caller, t.from_address
        owners = self.approvals.get(spender)
        if not owners or owner not in owners or now - owners[owner] > self.config.window_ms:
            return []
        live = self._approvers(spender, now)
        if live > self.config.approval_owners_max:
            return []
        roles = {spender: "spender", t.to_address: "drain", owner: "victim"}
        return [("approval_drain", owner, roles, {"owners_approving_spender": live,
                                                  "pulled_usd": round(t.amount_usd, 2)})]

    def _approvers(self, spender: str, now: int) -> int:
        owners = self.approvals.get(spender) or {}
        return sum(1 for ts in owners.values() if now - ts <= self.config.window_ms)

    # -- confirmation -----------------------------------------------------------------------------

    def _candidate(self, t: Transfer, kind: str, subject: str, roles: dict[str, str],
                   evidence: dict[str, object]) -> None:
        """Hold a structure until ``settle_ms`` has passed: what its members do meanwhile (a
        "dedicated" sender that turns out to pay everyone, a hop that turns out to be a busy
        wallet seen for the first time) decides whether it stands. Early in a stream every
        address looks new and dedicated; a few minutes later the services have shown themselves."""
        key = (kind, subject)
        held = self.pending.get(key)
        if held is None:
            self.pending[key] = [t.ts + self.config.settle_ms, t, dict(roles), evidence]
        else:
            held[1] = t
            held[2].update(roles)
            held[3] = evidence

    def _settle(self, now: int | None) -> list[Alert]:
        out: dict[str, Alert] = {}
        if not self.pending:
            return []
        due = [k for k, v in self.pending.items() if now is None or v[0] <= now]
        for key in due:
            _, t, roles, evidence = self.pending.pop(key)
            kind, subject = key
            roles = self._confirm(kind, subject, roles, t)
            if roles:
                a = self._publish(kind, subject, t, roles, evidence)
                if a is not None:
                    out[a.alert_id] = a
        return list(out.values())

    def _confirm(self, kind: str, subject: str, roles: dict[str, str], t: Transfer) -> dict[str, str] | None:
        """The structure's members as they stand now, or None if it no longer holds."""
        nodes = self.nodes
        if kind == "structuring":
            n = nodes.get(subject)
            if n is None or not n.ins:
                return roles
            last = n.ins[-1][_SRC]
            found = self._structuring(last, subject, n) if last in roles else []
            return found[0][2] if found else roles
        if kind in ("fan_in", "fan_out", "gather_scatter"):
            n = nodes.get(subject)
            if n is None:
                return roles  # gone quiet for a whole window since: nothing contradicts it
            for inbound in (True, False):
                for k, s, r, _ in self._fan(subject, n, inbound):
                    if k == kind and s == subject:
                        return r
            return None
        if kind == "approval_drain":
            spender = next((a for a, r in roles.items() if r == "spender"), "")
            if self._approvers(spender, self.clock) > self.config.approval_owners_max:
                return None
            for drain in [a for a, r in roles.items() if r == "drain"]:  # where the pulled funds went
                n = nodes.get(drain)
                if n is not None and self._simple(n):
                    for _, d, usd in n.outs:
                        if usd >= self.config.min_usd:
                            roles.setdefault(d, "dispersal")
            return roles
        middle = ("hop", "intermediary", "member")
        if all(self._simple(nodes.get(a)) and not (nodes.get(a) and self._busy(nodes[a]))
               for a, r in roles.items() if r in middle):
            return roles
        return None

    # -- alerts ---------------------------------------------------------------------------------

    def _publish(self, kind: str, subject: str, t: Transfer, roles: dict[str, str],
                 evidence: dict[str, object]) -> Alert | None:
        rule_id, severity, tags, title = STRUCTURES[kind]
        key = (kind, subject)
        entry = self.found.get(key)
        if entry is None or entry[1] <= t.ts:
            found = _Found(alert_id(rule_id, subject, t.tx_id))
        else:
            found = entry[0]
        before = len(found.members)
        for a, r in roles.items():
            if a != subject:
                found.members.setdefault(a, r)
        grown = len(found.members) > before
        self.found[key] = (found, t.ts + self.config.window_ms)
        if found.emitted and (not grown or found.updates >= self.config.max_updates):
            return None
        found.updates += 1 if found.emitted else 0
        found.emitted = 1
        members = sorted(found.members)
        risk = min(99.0, BASE_RISK[kind] + min(10, len(members)))
        details = orjson.dumps({
            "structure": kind, "transfer_id": t.id, "members": members,
            "member_roles": [found.members[m] for m in members], "evidence": evidence,
        }, option=orjson.OPT_SORT_KEYS).decode()
        return Alert(alert_id=found.aid, ts=t.ts, detected_at=time.time_ns() // 1_000_000,
                     block_number=t.block_number, tx_id=t.tx_id, address=subject, rule_id=rule_id,
                     rule_version=RULE_VERSION, severity=severity, risk_score=risk,
                     status="pending" if t.source == "mempool" else "confirmed", source=t.source,
                     title=title, tags=tags, details=details)

    def _expire(self, cutoff: int) -> None:
        nodes = self.nodes
        while nodes:
            a, n = next(iter(nodes.items()))
            if n.last >= cutoff:
                break
            nodes.popitem(last=False)
        if self.clock - self._swept < self.config.window_ms // 8:
            return
        self._swept = self.clock  # found structures and approvals past the window go, now and then
        self.found = {k: v for k, v in self.found.items() if v[1] > self.clock}
        self.diamonds = {a: until for a, until in self.diamonds.items() if until > self.clock}
        if self.approvals:
            self.approvals = {s: o for s, o in ((s, {k: ts for k, ts in o.items() if ts >= cutoff})
                                                for s, o in self.approvals.items()) if o}
