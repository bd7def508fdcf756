"""The toolkit typology generators draw an episode with: participants, amounts, timing, tokens.

Every knob comes from the chain's :class:`~pipeline.simulate.profile.Profile`, drawn per episode,
so no detector can key on a constant. An :class:`EpisodeBuilder` collects the steps
``(block_offset, intent, labelled)`` and the roles; on top of what a typology asks for it adds
what real operators do around a scheme:

* participants are new addresses, new addresses given an ordinary history first (*aged*), or
  pre-existing users of the background (who keep transacting there);
* an intermediary about to move TRC20 is first sent TRX for fees (by the scheme's funder, labelled,
  or by an exchange withdrawal, not) or gets an energy delegation from a rental provider (not
  labelled: the provider is an ordinary business);
* a TRC20 leg sometimes fails (REVERT / OUT_OF_ENERGY) and is retried blocks later;
* participants also make ordinary payments while the scheme runs (unlabelled).

Offsets are blocks after the episode's start; an episode never runs past ``room`` blocks (the
chain's end), so long episodes are cut shorter near the end of a chain rather than truncated.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from pipeline.simulate.population import USDC_HEX, USDT_HEX, Population
from pipeline.simulate.profile import Profile
from pipeline.simulate.txbuild import DELEGATE, TRC20, TRX, Intent
from pipeline.tron.tokens import TRX as TRX_INFO

Step = tuple[int, Intent, bool]
TOKENS = ("TRX", USDT_HEX, USDC_HEX)
_BUSIEST = 200  # the busiest users are hubs of the background; never drafted into an episode


class Episode(NamedTuple):
    steps: list[Step]
    roles: list[tuple[str, str]]  # (hex address, role)


class Kit(NamedTuple):
    """What every episode of a chain draws from: the cast, a seeded rng, the lists, the profile."""

    pop: Population
    rng: random.Random
    sanctioned: list[str]  # hex
    lookalikes: list[tuple[str, str]]  # (regular counterparty hex, lookalike hex)
    profile: Profile


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def token_units(usd: float, token: str) -> int:
    """Base units (sun or 6-decimal token units) worth ``usd`` dollars."""
    return int(usd / TRX_INFO.usd_price * 1_000_000) if token == "TRX" else int(usd * 1_000_000)


def rounded(units: int, mode: str, rng: random.Random) -> int:
    """Round the way people do: two significant whole units, whole cents, or not at all."""
    if mode == "round":
        whole = max(1, units // 1_000_000)
        step = 10 ** max(0, len(str(whole)) - 2)
        if rng.random() < 0.5 and step >= 10:
            step //= 2 if rng.random() < 0.5 else 1
        return max(1, round(whole / step)) * step * 1_000_000
    if mode == "cents":
        return max(10_000, units // 10_000 * 10_000)
    return max(1, units + int(rng.random() * 999))


class EpisodeBuilder:
    """Collects one episode's steps and roles; see the module docstring for what it adds."""

    def __init__(self, kit: Kit, room: int) -> None:
        self.kit, self.rng, self.pop, self.p = kit, kit.rng, kit.pop, kit.profile
        r, p = self.rng, self.p
        self.steps: list[Step] = []
        self.roles: list[tuple[str, str]] = []
        self.token = r.choices(TOKENS, weights=p.tokens)[0]
        self.mode = r.choices(("round", "cents", "odd"), weights=p.rounding)[0]
        room = max(1, room)
        # a lead-in for aged participants' ordinary history, then the scheme itself
        self.lead = min(room // 4, r.randint(60, 600)) if p.p_aged > 0 else 0
        self.span = max(1, min(room - self.lead, int(log_uniform(r, *p.span_blocks))))
        self.funder = ""  # who tops up intermediaries' gas, when the scheme pays for it itself
        self._fuelled: set[str] = set()
        self._parties: list[str] = []

    # participants -----------------------------------------------------------------------------
    def party(self, role: str, may_exist: bool = True) -> str:
        """A labelled participant: a pre-existing user, an aged new address, or a new one."""
        r, p = self.rng, self.p
        if may_exist and r.random() < p.p_existing:
            users = self.pop.users
            address = users[_BUSIEST + int(r.random() * (len(users) - _BUSIEST))]
        else:
            address = self.pop.fresh(remember=False)
            if r.random() < p.p_aged and self.lead > 1:
                self._history(address)
        self.roles.append((address, role))
        self._parties.append(address)
        return address

    def parties(self, role: str, n: int, may_exist: bool = True) -> list[str]:
        return [self.party(role, may_exist) for _ in range(n)]

    def known(self, address: str, role: str) -> str:
        """A labelled participant that exists already (a victim, a listed address)."""
        self.roles.append((address, role))
        return address

    def victim(self) -> str:
        users = self.pop.users
        return self.known(users[_BUSIEST + int(self.rng.random() * (len(users) - _BUSIEST))], "victim")

    def _history(self, address: str) -> None:
        """An aged address: funded by an exchange and paying someone, before the scheme starts."""
        r, pop = self.rng, self.pop
        t = int(r.random() * self.lead * 0.5)
        self.steps.append((t, _pay(pop.exchange(r), address, token_units(log_uniform(r, 20, 2_000), USDT_HEX),
                                   USDT_HEX), False))
        for _ in range(r.randint(0, 2)):
            t2 = t + 1 + int(r.random() * max(1, self.lead - t - 1))
            self.steps.append((t2, _pay(address, pop.user(r), token_units(log_uniform(r, 5, 200), USDT_HEX),
                                        USDT_HEX), False))

    # amounts and timing ---------------------------------------------------------------------------
    def usd(self, scale: float = 1.0) -> float:
        lo, hi = self.p.amount_usd
        return log_uniform(self.rng, lo, hi) * scale

    def amount(self, scale: float = 1.0, token: str | None = None) -> int:
        """A source leg's amount in the episode's token, rounded the episode's way."""
        return rounded(token_units(self.usd(scale), token or self.token), self.mode, self.rng)

    def cut(self, amount: int, frac_range: tuple[float, float] | None = None) -> int:
        """What is left after an intermediary keeps its fee (or a peel) drawn from the profile."""
        lo, hi = frac_range or self.p.fee
        left = int(amount * (1.0 - self.rng.uniform(lo, hi)))
        return rounded(left, "cents", self.rng) if self.mode != "odd" else max(1, left)

    def at(self, lo: float, hi: float) -> int:
        """A block offset between fractions ``lo`` and ``hi`` of the scheme's span."""
        return self.lead + int(self.span * self.rng.uniform(lo, hi))

    def after(self, t: int, lo: float = 0.0, hi: float = 0.15) -> int:
        """An offset a little after ``t``: at least one block, at most ``hi`` of the span later."""
        return t + 1 + int(self.span * self.rng.uniform(lo, hi))

    # steps ---------------------------------------------------------------------------------------
    def pay(self, t: int, src: str, dst: str, amount: int, token: str | None = None, labelled: bool = True) -> None:
        """A value transfer, with the gas top-up, energy rental and failed retry the profile asks for."""
        token = token or self.token
        r, p = self.rng, self.p
        if token != "TRX" and labelled and src not in self._fuelled and src != self.funder:
            self._fuelled.add(src)
            u = r.random()
            before = max(0, t - 1 - int(r.random() * 40))
            if u < p.p_gas_topup:
                gas = rounded(token_units(log_uniform(r, 2, 15), "TRX"), "round", r)
                if self.funder and r.random() < 0.6:
                    self.steps.append((before, Intent(TRX, self.funder, src, gas), True))
                else:
                    self.steps.append((before, Intent(TRX, self.pop.exchange(r), src, gas), False))
            elif u < p.p_gas_topup + p.p_energy:
                provider = self.pop.providers[int(r.random() * len(self.pop.providers))]
                self.steps.append((before, Intent(DELEGATE, provider, src, int(log_uniform(r, 1e9, 2e10)), "ENERGY"),
                                   False))
        if token != "TRX" and r.random() < p.p_retry:
            failed = "REVERT" if r.random() < 0.6 else "OUT_OF_ENERGY"
            self.steps.append((t, Intent(TRC20, src, dst, amount, token, ret=failed), labelled))
            t += 1 + int(r.random() * 20)
        self.steps.append((t, _pay(src, dst, amount, token), labelled))

    def step(self, t: int, intent: Intent, labelled: bool = True) -> None:
        self.steps.append((t, intent, labelled))

    def done(self) -> Episode:
        """Add the participants' ordinary side activity and return the episode."""
        r, p, pop = self.rng, self.p, self.pop
        end = self.lead + self.span
        for address in self._parties:
            if r.random() >= p.p_side_activity:
                continue
            for _ in range(r.randint(1, 4)):
                t = self.lead + int(r.random() * (end - self.lead))
                usd = log_uniform(r, 3, 500)
                if r.random() < 0.5:
                    self.steps.append((t, _pay(address, pop.user(r), token_units(usd, USDT_HEX), USDT_HEX), False))
                else:
                    self.steps.append((t, Intent(TRX, pop.user(r), address, token_units(usd, "TRX")), False))
        return Episode(self.steps, self.roles)


def _pay(src: str, dst: str, amount: int, token: str) -> Intent:
    return Intent(TRX, src, dst, amount) if token == "TRX" else Intent(TRC20, src, dst, amount, token)


def split(total: int, n: int, rng: random.Random) -> list[int]:
    """``total`` cut into ``n`` uneven positive parts (random weights)."""
    weights = [0.3 + rng.random() for _ in range(n)]
    s = sum(weights)
    parts = [max(1, int(total * w / s)) for w in weights]
    return parts
