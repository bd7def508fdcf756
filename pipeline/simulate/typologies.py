"""Injected money-laundering and fraud typologies: each call draws one labelled episode.

Shapes follow AMLworld's laundering patterns (fan-in/out, scatter-gather, gather-scatter, cycle,
stack, peel chain, pass-through mules) and the TRON-specific frauds analysts see most: address
poisoning, approval phishing, sanctioned exposure and account permission takeover.

Every parameter is drawn per episode from the chain's profile (:mod:`pipeline.simulate.profile`)
through an :class:`~pipeline.simulate.episode.EpisodeBuilder`: how many participants, whether
they are new or long-standing addresses, the token, the amounts and their rounding, the cuts, and
how long the scheme takes (seconds to hours). The *shape* is what stays: that is what a detector
should learn. Every participant is labelled with its role; the exchanges schemes cash out to,
rental providers and the ordinary side activity are not.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.simulate.episode import Episode, EpisodeBuilder, Kit, split
from pipeline.simulate.population import USDC_HEX, USDT_HEX
from pipeline.simulate.txbuild import APPROVE, MAX_UINT256, PERMISSION, TRC20, TRC20_FROM, TRX, Intent

# re-exported for callers that built episodes by hand
__all__ = ["TYPOLOGIES", "Episode", "EpisodeBuilder", "Kit"]


def _n(c: EpisodeBuilder, bounds: tuple[int, int]) -> int:
    return c.rng.randint(*bounds)


def _cash_out(c: EpisodeBuilder, t: int, src: str, amount: int) -> None:
    """Send ``amount`` to an exchange in one to three pieces from ``t`` on."""
    for part in split(amount, c.rng.randint(1, 3), c.rng):
        c.pay(t, src, c.pop.exchange(c.rng), part)
        t = c.after(t, 0.0, 0.05)


def fan_in(c: EpisodeBuilder) -> Episode:
    sources = c.parties("source", _n(c, c.p.fan))
    collector = c.party("collector")
    total = 0
    for s in sources:
        amount = c.amount()
        c.pay(c.at(0.0, 0.7), s, collector, amount)
        total += amount
    _cash_out(c, c.at(0.75, 1.0), collector, c.cut(total))
    return c.done()


def fan_out(c: EpisodeBuilder) -> Episode:
    source = c.funder = c.party("source")
    recipients = c.parties("recipient", _n(c, c.p.fan))
    if c.rng.random() < 0.5:  # the pot arrives first, from an exchange withdrawal
        c.pay(c.lead, c.pop.exchange(c.rng), source, c.amount(len(recipients)), labelled=False)
    for d in recipients:
        t = c.at(0.05, 0.8)
        amount = c.amount()
        c.pay(t, source, d, amount)
        if c.rng.random() < 0.3:
            c.pay(c.after(t, 0.02, 0.2), d, c.pop.exchange(c.rng), c.cut(amount))
    return c.done()


def scatter_gather(c: EpisodeBuilder) -> Episode:
    origin = c.funder = c.party("origin")
    mids = c.parties("intermediate", _n(c, c.p.width))
    gatherer = c.party("gatherer")
    for m in mids:
        amount = c.amount()
        c.pay(c.at(0.0, 0.4), origin, m, amount)
        c.pay(c.at(0.45, 1.0), m, gatherer, c.cut(amount))
    return c.done()


def gather_scatter(c: EpisodeBuilder) -> Episode:
    sources = c.parties("source", _n(c, c.p.width))
    hub = c.party("hub")
    sinks = c.parties("recipient", _n(c, c.p.width))
    total = 0
    for s in sources:
        amount = c.amount()
        c.pay(c.at(0.0, 0.45), s, hub, amount)
        total += amount
    for d, part in zip(sinks, split(c.cut(total), len(sinks), c.rng)):
        c.pay(c.at(0.5, 1.0), hub, d, part)
    return c.done()


def cycle(c: EpisodeBuilder) -> Episode:
    members = c.parties("member", _n(c, c.p.cycle_len))
    amount = c.amount(3.0)
    laps = 2 if c.rng.random() < 0.25 else 1
    legs = len(members) * laps
    times = sorted(c.at(0.0, 1.0) for _ in range(legs))
    for k in range(legs):
        i = k % len(members)
        c.pay(max(times[k], times[k - 1] + 1 if k else 0), members[i], members[(i + 1) % len(members)], amount)
        amount = c.cut(amount)
    return c.done()


def stack(c: EpisodeBuilder) -> Episode:
    origin = c.funder = c.party("origin")
    width, depth = _n(c, c.p.width), _n(c, c.p.stack_depth)
    layers = [c.parties(f"layer{k + 1}", width) for k in range(depth)]
    sink = c.party("sink")
    for lane in range(width):
        amount, t, src = c.amount(), c.at(0.0, 0.2), origin
        for k in range(depth):
            c.pay(t, src, layers[k][lane], amount)
            src, amount = layers[k][lane], c.cut(amount)
            t = c.at((k + 1) / (depth + 1), (k + 1.8) / (depth + 1))
        c.pay(t, src, sink, amount)
    return c.done()


def peel_chain(c: EpisodeBuilder) -> Episode:
    hops = c.parties("hop", _n(c, c.p.hops))
    amount = c.amount(8.0)
    times = sorted(c.at(0.0, 1.0) for _ in range(len(hops) - 1))
    for i in range(len(hops) - 1):
        t = max(times[i], times[i - 1] + 1 if i else 0)
        times[i] = t
        peel = amount - c.cut(amount, c.p.peel)
        c.pay(t, hops[i], c.pop.exchange(c.rng), max(1, peel))
        amount -= peel
        c.pay(t + (c.rng.random() < 0.5), hops[i], hops[i + 1], amount)
    return c.done()


def mule_pass_through(c: EpisodeBuilder) -> Episode:
    source = c.funder = c.party("source")
    mules = c.parties("mule", _n(c, c.p.width))
    exit_ = c.party("exit")
    total = 0
    for m in mules:
        t, amount = c.at(0.0, 0.6), c.amount()
        c.pay(t, source, m, amount)
        forwarded = c.cut(amount)
        c.pay(c.after(t, 0.0, 0.25), m, exit_, forwarded)
        total += forwarded
    _cash_out(c, c.at(0.9, 1.0), exit_, c.cut(total))
    return c.done()


def address_poisoning(c: EpisodeBuilder) -> Episode:
    """A victim pays its regular counterparty; a lookalike (same 4+4 chars) then poisons its history."""
    r = c.rng
    regular, look = c.kit.lookalikes[int(r.random() * len(c.kit.lookalikes))]
    victim = c.victim()
    c.known(look, "lookalike")
    attacker = c.party("attacker", may_exist=False)
    token = USDT_HEX if c.token == "TRX" else c.token
    paid = c.amount(token=token)
    t0 = c.at(0.0, 0.2)
    for k in range(r.randint(1, 3)):  # the victim's real habit (not labelled: ordinary payments)
        c.pay(max(0, t0 - k * r.randint(1, 200)), victim, regular, c.cut(paid, (0.0, 0.5)), token, labelled=False)
    t = c.after(t0, 0.0, 0.3)
    c.step(t, Intent(TRC20_FROM, attacker, look, 0, token, src=victim))
    if r.random() < 0.7:
        c.step(c.after(t, 0.0, 0.1), Intent(TRC20, look, victim, r.randint(1, 1_000_000), token))
    if r.random() < 0.5:
        c.step(c.after(t, 0.0, 0.1), Intent(TRX, look, victim, r.randint(1, 100_000)))
    if r.random() < 0.35:
        c.pay(c.at(0.7, 1.0), victim, look, paid, token)
    return c.done()


def approval_phishing(c: EpisodeBuilder) -> Episode:
    """An approval (usually unlimited) to the attacker's spender, a transferFrom drain, dispersal."""
    r = c.rng
    victim = c.victim()
    spender, drain = c.party("spender", may_exist=False), c.party("drain")
    c.funder = spender
    token = USDT_HEX if c.token == "TRX" else c.token
    stolen = c.amount(4.0, token=token)
    allowance = MAX_UINT256 if r.random() < 0.75 else stolen * r.randint(1, 20)
    t = c.at(0.0, 0.1)
    c.step(t, Intent(APPROVE, victim, spender, allowance, token))
    t = c.after(t, 0.0, 0.4)
    c.step(t, Intent(TRC20_FROM, spender, drain, stolen, token, src=victim))
    outs = c.parties("dispersal", max(2, _n(c, c.p.width) // 2))
    for d, part in zip(outs, split(c.cut(stolen), len(outs), r)):
        t2 = c.after(t, 0.0, 0.4)
        c.pay(t2, drain, d, part, token)
        if r.random() < 0.5:
            c.pay(c.after(t2, 0.0, 0.3), d, c.pop.exchange(r), c.cut(part), token)
    return c.done()


def sanctioned_exposure(c: EpisodeBuilder) -> Episode:
    """Funds from an OFAC-listed address reach a recipient directly or through a few hops."""
    r = c.rng
    sanctioned = c.known(c.kit.sanctioned[int(r.random() * len(c.kit.sanctioned))], "sanctioned")
    hops = c.parties("intermediary", _n(c, c.p.sanction_hops))
    recipient = c.party("recipient")
    path = [sanctioned, *hops, recipient]
    amount = c.amount(2.0)
    times = sorted(c.at(0.0, 1.0) for _ in range(len(path) - 1))
    for i in range(len(path) - 1):
        c.pay(times[i] + i, path[i], path[i + 1], amount)
        amount = c.cut(amount)
    return c.done()


def permission_takeover(c: EpisodeBuilder) -> Episode:
    """AccountPermissionUpdate hands owner and active keys to a foreign address, then outflows."""
    r = c.rng
    victim = c.victim()
    controller = c.party("controller", may_exist=False)
    receivers = c.parties("receiver", r.randint(2, max(2, c.p.width[1] // 3)))
    t = c.at(0.0, 0.3)
    c.step(t, Intent(PERMISSION, victim, controller))
    c.funder = victim
    for d in receivers:
        token = r.choice(("TRX", USDT_HEX, USDC_HEX, c.token))
        c.pay(c.after(t, 0.0, 0.6), victim, d, c.amount(token=token), token)
    return c.done()


TYPOLOGIES: dict[str, Callable[[EpisodeBuilder], Episode]] = {
    "fan_in": fan_in, "fan_out": fan_out, "scatter_gather": scatter_gather, "gather_scatter": gather_scatter,
    "cycle": cycle, "stack": stack, "peel_chain": peel_chain, "mule_pass_through": mule_pass_through,
    "address_poisoning": address_poisoning, "approval_phishing": approval_phishing,
    "sanctioned_exposure": sanctioned_exposure, "permission_takeover": permission_takeover,
}
