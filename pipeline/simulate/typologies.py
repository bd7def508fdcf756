"""Injected money-laundering and fraud typologies: each call draws one labelled episode.

An episode is a list of ``(block_offset, intent, labelled)`` steps plus the roles of the
addresses involved. Shapes follow AMLworld's laundering patterns (fan-in/out, scatter-gather,
gather-scatter, cycle, stack, peel chain, pass-through mules) and the TRON-specific frauds
analysts see most: address poisoning, approval phishing, sanctioned exposure and account
permission takeover. Offsets stay within ~40 blocks (two minutes) so even short runs hold whole
episodes; amounts are USDT base units (6 decimals) unless stated.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import NamedTuple

from pipeline.simulate.population import USDT_HEX, Population
from pipeline.simulate.txbuild import APPROVE, MAX_UINT256, PERMISSION, TRC20, TRC20_FROM, TRX, Intent

Step = tuple[int, Intent, bool]


class Episode(NamedTuple):
    steps: list[Step]
    roles: list[tuple[str, str]]  # (hex address, role)


class Ctx(NamedTuple):
    """What typology generators draw from: the cast, a seeded rng, and the shipped lists."""

    pop: Population
    rng: random.Random
    sanctioned: list[str]  # hex
    lookalikes: list[tuple[str, str]]  # (regular counterparty hex, lookalike hex)

    def new(self) -> str:
        """A fresh address for an episode; kept out of the background's newcomer ring so labelled
        addresses do not also turn up in unrelated background transactions."""
        return self.pop.fresh(remember=False)

    def victim(self) -> str:
        """An existing user drawn uniformly (not by activity), so no busy user is a serial victim."""
        return self.pop.users[int(self.rng.random() * len(self.pop.users))]


def usdt(rng: random.Random, lo: float, hi: float) -> int:
    """Log-uniform USDT amount between ``lo`` and ``hi`` whole dollars, in base units."""
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))) * 1_000_000)


def _pay(src: str, dst: str, amount: int, token: str = USDT_HEX) -> Intent:
    return Intent(TRX, src, dst, amount) if token == "TRX" else Intent(TRC20, src, dst, amount, token)


def fan_in(c: Ctx) -> Episode:
    r, collector = c.rng, c.new()
    sources = [c.new() for _ in range(r.randint(8, 14))]
    steps: list[Step] = [(r.randint(0, 20), _pay(s, collector, usdt(r, 800, 9_900)), True) for s in sources]
    steps.append((24, _pay(collector, c.pop.exchange(r), usdt(r, 5_000, 50_000)), True))
    return Episode(steps, [(s, "source") for s in sources] + [(collector, "collector")])


def fan_out(c: Ctx) -> Episode:
    r, source = c.rng, c.new()
    recipients = [c.new() for _ in range(r.randint(8, 14))]
    steps: list[Step] = [(r.randint(0, 20), _pay(source, d, usdt(r, 500, 9_000)), True) for d in recipients]
    return Episode(steps, [(source, "source")] + [(d, "recipient") for d in recipients])


def scatter_gather(c: Ctx) -> Episode:
    r, origin, gatherer = c.rng, c.new(), c.new()
    mids = [c.new() for _ in range(r.randint(5, 10))]
    steps: list[Step] = []
    for m in mids:
        amount = usdt(r, 2_000, 9_500)
        steps.append((r.randint(0, 8), _pay(origin, m, amount), True))
        steps.append((r.randint(10, 25), _pay(m, gatherer, amount * 99 // 100), True))
    roles = [(origin, "origin")] + [(m, "intermediate") for m in mids] + [(gatherer, "gatherer")]
    return Episode(steps, roles)


def gather_scatter(c: Ctx) -> Episode:
    r, hub = c.rng, c.new()
    sources = [c.new() for _ in range(r.randint(5, 10))]
    sinks = [c.new() for _ in range(r.randint(5, 10))]
    steps: list[Step] = [(r.randint(0, 10), _pay(s, hub, usdt(r, 1_000, 9_000)), True) for s in sources]
    steps += [(r.randint(14, 28), _pay(hub, d, usdt(r, 800, 7_000)), True) for d in sinks]
    return Episode(steps, [(s, "source") for s in sources] + [(hub, "hub")] + [(d, "recipient") for d in sinks])


def cycle(c: Ctx) -> Episode:
    r = c.rng
    members = [c.new() for _ in range(r.randint(3, 6))]
    token = "TRX" if r.random() < 0.3 else USDT_HEX
    amount = usdt(r, 3_000, 60_000) * (8 if token == "TRX" else 1)
    steps: list[Step] = []
    for i, m in enumerate(members):
        steps.append((3 * i + r.randint(0, 2), _pay(m, members[(i + 1) % len(members)], amount, token), True))
        amount = amount * r.randint(980, 995) // 1000
    return Episode(steps, [(m, "member") for m in members])


def stack(c: Ctx) -> Episode:
    r, origin, sink = c.rng, c.new(), c.new()
    width = r.randint(3, 5)
    layer1 = [c.new() for _ in range(width)]
    layer2 = [c.new() for _ in range(width)]
    steps: list[Step] = []
    for a, b in zip(layer1, layer2):
        amount = usdt(r, 3_000, 20_000)
        steps.append((r.randint(0, 3), _pay(origin, a, amount), True))
        steps.append((r.randint(6, 10), _pay(a, b, amount * 99 // 100), True))
        steps.append((r.randint(13, 18), _pay(b, sink, amount * 98 // 100), True))
    roles = [(origin, "origin")] + [(a, "layer1") for a in layer1] + [(b, "layer2") for b in layer2]
    return Episode(steps, roles + [(sink, "sink")])


def peel_chain(c: Ctx) -> Episode:
    r = c.rng
    hops = [c.new() for _ in range(r.randint(6, 10))]
    token = "TRX" if r.random() < 0.4 else USDT_HEX
    amount = usdt(r, 20_000, 200_000) * (8 if token == "TRX" else 1)
    steps: list[Step] = []
    for i in range(len(hops) - 1):
        peel = amount * r.randint(2, 8) // 100
        steps.append((3 * i, _pay(hops[i], c.pop.exchange(r), peel, token), True))
        amount -= peel
        steps.append((3 * i + 1, _pay(hops[i], hops[i + 1], amount, token), True))
    return Episode(steps, [(h, "hop") for h in hops])


def mule_pass_through(c: Ctx) -> Episode:
    r, source, exit_ = c.rng, c.new(), c.new()
    mules = [c.new() for _ in range(r.randint(3, 6))]
    steps: list[Step] = []
    for m in mules:
        t, amount = r.randint(0, 15), usdt(r, 1_000, 15_000)
        steps.append((t, _pay(source, m, amount), True))
        steps.append((t + r.randint(1, 2), _pay(m, exit_, amount * r.randint(95, 99) // 100), True))
    steps.append((22, _pay(exit_, c.pop.exchange(r), usdt(r, 3_000, 40_000)), True))
    return Episode(steps, [(source, "source")] + [(m, "mule") for m in mules] + [(exit_, "exit")])


def address_poisoning(c: Ctx) -> Episode:
    """A victim pays its regular counterparty; a lookalike (same 4+4 chars) then poisons its history."""
    r = c.rng
    regular, look = c.lookalikes[int(r.random() * len(c.lookalikes))]
    victim, attacker = c.victim(), c.new()
    paid = usdt(r, 200, 20_000)
    steps: list[Step] = [(0, _pay(victim, regular, paid), False), (1, _pay(victim, regular, paid // 2), False)]
    steps.append((r.randint(2, 4), Intent(TRC20_FROM, attacker, look, 0, USDT_HEX, src=victim), True))
    steps.append((r.randint(3, 6), _pay(look, victim, r.randint(1_000, 1_000_000)), True))
    if r.random() < 0.5:
        steps.append((r.randint(3, 6), Intent(TRX, look, victim, r.randint(1, 100_000)), True))
    if r.random() < 0.35:
        steps.append((r.randint(10, 30), _pay(victim, look, paid), True))
    return Episode(steps, [(victim, "victim"), (look, "lookalike"), (attacker, "attacker")])


def approval_phishing(c: Ctx) -> Episode:
    """Unlimited approve to a fresh spender, then a transferFrom drain and dispersal."""
    r = c.rng
    victim, spender, drain = c.victim(), c.new(), c.new()
    stolen = usdt(r, 1_000, 80_000)
    steps: list[Step] = [(0, Intent(APPROVE, victim, spender, MAX_UINT256, USDT_HEX), True),
                         (r.randint(3, 15), Intent(TRC20_FROM, spender, drain, stolen, USDT_HEX, src=victim), True)]
    outs = [c.new() for _ in range(r.randint(3, 5))]
    left = stolen
    for d in outs:
        part = left * r.randint(25, 45) // 100
        steps.append((r.randint(17, 27), _pay(drain, d, part), True))
        left -= part
    steps.append((r.randint(30, 36), _pay(outs[0], c.pop.exchange(r), usdt(r, 200, 5_000)), True))
    roles = [(victim, "victim"), (spender, "spender"), (drain, "drain")] + [(d, "dispersal") for d in outs]
    return Episode(steps, roles)


def sanctioned_exposure(c: Ctx) -> Episode:
    """Funds from an OFAC-listed address reach a recipient directly or through 1-2 hops."""
    r = c.rng
    sanctioned = c.sanctioned[int(r.random() * len(c.sanctioned))]
    hops = [c.new() for _ in range(r.choice((0, 1, 1, 2)))]
    recipient = c.new()
    path = [sanctioned] + hops + [recipient]
    amount, steps = usdt(r, 2_000, 200_000), []
    for i in range(len(path) - 1):
        steps.append((4 * i + r.randint(0, 2), _pay(path[i], path[i + 1], amount), True))
        amount = amount * r.randint(97, 99) // 100
    roles = [(sanctioned, "sanctioned")] + [(h, "intermediary") for h in hops] + [(recipient, "recipient")]
    return Episode(steps, roles)


def permission_takeover(c: Ctx) -> Episode:
    """AccountPermissionUpdate hands owner and active keys to a foreign address, then outflows."""
    r = c.rng
    victim, controller = c.victim(), c.new()
    receivers = [c.new() for _ in range(r.randint(2, 3))]
    steps: list[Step] = [(0, Intent(PERMISSION, victim, controller), True)]
    for d in receivers:
        steps.append((r.randint(2, 10), _pay(victim, d, usdt(r, 1_000, 50_000)), True))
    steps.append((r.randint(2, 10), Intent(TRX, victim, receivers[0], usdt(r, 100, 5_000)), True))
    return Episode(steps, [(victim, "victim"), (controller, "controller")] + [(d, "receiver") for d in receivers])


TYPOLOGIES: dict[str, Callable[[Ctx], Episode]] = {
    "fan_in": fan_in, "fan_out": fan_out, "scatter_gather": scatter_gather, "gather_scatter": gather_scatter,
    "cycle": cycle, "stack": stack, "peel_chain": peel_chain, "mule_pass_through": mule_pass_through,
    "address_poisoning": address_poisoning, "approval_phishing": approval_phishing,
    "sanctioned_exposure": sanctioned_exposure, "permission_takeover": permission_takeover,
}
