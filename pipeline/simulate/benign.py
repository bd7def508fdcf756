"""Ordinary behaviours that look like laundering: the hard negatives of the background.

On mainnet the shapes detectors look for are mostly innocent: every exchange deposit address is a
pass-through that sweeps into a hot wallet (fan-in), every withdrawal batch or payroll is a fan-out,
payment processors pull with approve + transferFrom, routers take one token and pay out another,
market makers move funds round in circles, OTC desks trade large round sums, gas stations send many
small TRX transfers, spammers dust thousands of addresses, and a new address that receives a large
sum and moves it on later is usually someone moving house. Each behaviour here draws its own
parameters per instance from the profile's :class:`~pipeline.simulate.profile.BenignMix`, and
nothing it does is ever labelled.

The long-lived actors (processors, merchants, market-making groups, OTC desks, gas stations,
payroll payers, spammers) are drawn once per chain from their own seeded stream, so they recur
across instances the way real businesses do.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pipeline.simulate.episode import TOKENS, log_uniform, rounded, token_units
from pipeline.simulate.population import OTHER_TRC20, USDC_HEX, USDT_HEX, Population
from pipeline.simulate.profile import BenignMix
from pipeline.simulate.txbuild import APPROVE, DELEGATE, MAX_UINT256, TRC20, TRC20_FROM, TRX, Intent

Steps = list[tuple[int, Intent]]
_STABLE_WEIGHTS = (0.15, 0.7, 0.15)  # TRX / USDT / USDC for ordinary payments


def _pay(src: str, dst: str, amount: int, token: str) -> Intent:
    return Intent(TRX, src, dst, amount) if token == "TRX" else Intent(TRC20, src, dst, amount, token)


class Benign:
    """Draws benign look-alike instances; each call returns ``(block_offset, intent)`` steps."""

    def __init__(self, pop: Population, rng: random.Random, mix: BenignMix, seed: int) -> None:
        self.pop, self.rng, self.mix = pop, rng, mix
        cast = random.Random(f"benign-cast:{seed}")

        def many(n: int) -> list[str]:
            return ["41" + cast.randbytes(20).hex() for _ in range(n)]

        self.processors = many(8)
        self.merchants = many(40)
        self.mm_groups = [many(cast.randint(*mix.mm_parties)) for _ in range(12)]
        self.otc_desks = many(6)
        self.gas_stations = many(6)
        self.payers = many(20)  # payroll and airdrop senders
        self.spammers = many(10)
        self.deposits: dict[str, list[str]] = {}  # exchange -> deposit addresses in use (they recur)
        self.behaviours: dict[str, Callable[[], Steps]] = {
            "deposit_sweep": self.deposit_sweep, "payout": self.payout, "merchant_pull": self.merchant_pull,
            "dex_swap": self.dex_swap, "mm_round_trip": self.mm_round_trip, "otc": self.otc,
            "gas_station": self.gas_station, "dust_spam": self.dust_spam, "fresh_mover": self.fresh_mover,
        }

    def _token(self) -> str:
        return self.rng.choices(TOKENS, weights=_STABLE_WEIGHTS)[0]

    def _amount(self, lo: float, hi: float, token: str) -> int:
        r = self.rng
        return rounded(token_units(log_uniform(r, lo, hi), token), r.choice(("round", "cents", "odd", "odd")), r)

    def _user(self) -> str:
        return self.pop.user(self.rng)

    def deposit_sweep(self) -> Steps:
        """Customers pay a deposit address; the exchange tops up its gas and sweeps it to the hot wallet."""
        r, pop, mix = self.rng, self.pop, self.mix
        exchange = pop.exchange(r)
        pool = self.deposits.setdefault(exchange, [])
        if pool and r.random() < 0.4:
            deposit = pool[int(r.random() * len(pool))]
        else:
            deposit = pop.fresh()
            pool.append(deposit)
            if len(pool) > 200:
                pool.pop(0)
        token = self._token()
        steps: Steps = []
        t, total = 0, 0
        for _ in range(r.randint(*mix.sweep_deposits)):
            amount = self._amount(20, 30_000, token)
            steps.append((t, _pay(self._user(), deposit, amount, token)))
            total += amount
            t += int(log_uniform(r, 1, 400))
        t += r.randint(*mix.sweep_delay)
        if token != "TRX":
            if r.random() < 0.6:
                steps.append((t - 1, Intent(TRX, exchange, deposit, rounded(token_units(log_uniform(r, 3, 10), "TRX"),
                                                                             "round", r))))
            else:
                provider = pop.providers[int(r.random() * len(pop.providers))]
                steps.append((t - 1, Intent(DELEGATE, provider, deposit, int(log_uniform(r, 1e9, 1e10)), "ENERGY")))
        steps.append((t, _pay(deposit, exchange, total, token)))
        return steps

    def payout(self) -> Steps:
        """An exchange withdrawal batch, a payroll run or an airdrop: one source, many recipients."""
        r, pop = self.rng, self.pop
        kind = r.random()
        n = r.randint(*self.mix.payout_recipients)
        steps: Steps = []
        if kind < 0.5:  # withdrawals: varied amounts, within minutes
            src, token = pop.exchange(r), self._token()
            for _ in range(n):
                dst = pop.fresh() if r.random() < 0.15 else self._user()
                steps.append((int(r.random() * 60), _pay(src, dst, self._amount(30, 50_000, token), token)))
        elif kind < 0.8:  # payroll: a few round salary levels, one run
            src, token = self.payers[int(r.random() * len(self.payers))], r.choice((USDT_HEX, USDC_HEX))
            levels = [rounded(token_units(log_uniform(r, 500, 8_000), token), "round", r) for _ in range(3)]
            for _ in range(n):
                steps.append((int(r.random() * 20), _pay(src, self._user(), r.choice(levels), token)))
        else:  # airdrop: the same small amount of a project token to many
            src = self.payers[int(r.random() * len(self.payers))]
            token, decimals = OTHER_TRC20[1 + int(r.random() * (len(OTHER_TRC20) - 1))]
            amount = r.randint(1, 500) * 10**decimals
            for _ in range(n):
                dst = pop.fresh() if r.random() < 0.3 else self._user()
                steps.append((int(r.random() * 100), Intent(TRC20, src, dst, amount, token)))
        return steps

    def merchant_pull(self) -> Steps:
        """Owners approve a processor; it pulls their payments into a merchant, which sweeps out."""
        r, pop = self.rng, self.pop
        spender = self.processors[int(r.random() * len(self.processors))]
        merchant = self.merchants[int(r.random() * len(self.merchants))]
        token = r.choice((USDT_HEX, USDT_HEX, USDC_HEX))
        steps: Steps = []
        total = 0
        for _ in range(r.randint(*self.mix.merchant_owners)):
            owner, t = self._user(), int(r.random() * 600)
            amount = self._amount(5, 3_000, token)
            allowance = MAX_UINT256 if r.random() < 0.5 else amount * r.randint(1, 12)
            steps.append((t, Intent(APPROVE, owner, spender, allowance, token)))
            steps.append((t + int(log_uniform(r, 1, 300)), Intent(TRC20_FROM, spender, merchant, amount, token,
                                                                  src=owner)))
            total += amount
        if r.random() < 0.5:
            steps.append((900 + int(r.random() * 300), _pay(merchant, pop.exchange(r), total, token)))
        return steps

    def dex_swap(self) -> Steps:
        """A user pays a router one token (directly, or approve + transferFrom) and gets another back."""
        r, pop = self.rng, self.pop
        router = pop.dapps[int(r.random() * len(pop.dapps))]
        user = self._user()
        sell, buy = r.sample(TOKENS, 2)
        usd = log_uniform(r, 10, 40_000)
        amount = rounded(token_units(usd, sell), r.choice(("round", "odd")), r)
        steps: Steps = []
        if sell != "TRX" and r.random() < 0.5:
            steps.append((0, Intent(APPROVE, user, router, MAX_UINT256, sell)))
            steps.append((1, Intent(TRC20_FROM, router, router, amount, sell, src=user)))
        else:
            steps.append((0, _pay(user, router, amount, sell)))
        steps.append((1 + (r.random() < 0.3), _pay(router, user, token_units(usd * r.uniform(0.985, 0.998), buy), buy)))
        return steps

    def mm_round_trip(self) -> Steps:
        """A market maker rebalances round its few long-lived wallets: large cycles, repeatedly."""
        r = self.rng
        group = self.mm_groups[int(r.random() * len(self.mm_groups))]
        token = r.choice((USDT_HEX, USDT_HEX, "TRX"))
        steps: Steps = []
        t = 0
        amount = self._amount(20_000, 800_000, token)
        for _ in range(r.randint(*self.mix.mm_laps)):
            for i, a in enumerate(group):
                steps.append((t, _pay(a, group[(i + 1) % len(group)], amount, token)))
                t += int(log_uniform(r, 1, 200))
                amount = int(amount * r.uniform(0.9, 1.1))
        return steps

    def otc(self) -> Steps:
        """An OTC desk trades large round sums with a client, in both directions."""
        r = self.rng
        desk = self.otc_desks[int(r.random() * len(self.otc_desks))]
        client = self._user() if r.random() < 0.6 else self.pop.exchange(r)
        steps: Steps = []
        t = 0
        for _ in range(r.randint(*self.mix.otc_trades)):
            usd = rounded(token_units(log_uniform(r, 50_000, 2_000_000), USDT_HEX), "round", r) / 1e6
            token = r.choice(TOKENS)
            a, b = (client, desk) if r.random() < 0.5 else (desk, client)
            steps.append((t, _pay(a, b, rounded(token_units(usd, token), "round", r), token)))
            t += int(log_uniform(r, 1, 400))
        return steps

    def gas_station(self) -> Steps:
        """A gas station or energy-rental service: many small TRX transfers or delegations."""
        r, pop = self.rng, self.pop
        station = self.gas_stations[int(r.random() * len(self.gas_stations))]
        steps: Steps = []
        for _ in range(r.randint(*self.mix.gas_recipients)):
            dst = pop.fresh() if r.random() < 0.2 else self._user()
            t = int(r.random() * 600)
            if r.random() < 0.6:
                steps.append((t, Intent(TRX, station, dst, rounded(token_units(log_uniform(r, 0.2, 8), "TRX"),
                                                                        r.choice(("round", "odd")), r))))
            else:
                steps.append((t, Intent(DELEGATE, station, dst, int(log_uniform(r, 1e9, 3e10)), "ENERGY")))
        return steps

    def dust_spam(self) -> Steps:
        """Tiny TRX, tiny or zero token transfers to many addresses in a burst."""
        r = self.rng
        spammer = self.spammers[int(r.random() * len(self.spammers))]
        kind = r.random()
        steps: Steps = []
        for _ in range(r.randint(*self.mix.spam_recipients)):
            dst, t = self._user(), int(r.random() * 40)
            if kind < 0.4:
                steps.append((t, Intent(TRX, spammer, dst, r.randint(1, 1_000))))
            elif kind < 0.8:
                token, decimals = OTHER_TRC20[1 + int(r.random() * (len(OTHER_TRC20) - 1))]
                steps.append((t, Intent(TRC20, spammer, dst, r.randint(1, 10) * 10 ** max(0, decimals - 2), token)))
            else:
                steps.append((t, Intent(TRC20, spammer, dst, r.choice((0, 1, 10)), r.choice((USDT_HEX, USDC_HEX)))))
        return steps

    def fresh_mover(self) -> Steps:
        """A new address receives a large sum and, later, moves it on whole or in a few parts."""
        r, pop = self.rng, self.pop
        fresh = pop.fresh()
        token = self._token()
        amount = self._amount(5_000, 500_000, token)
        src = pop.exchange(r) if r.random() < 0.6 else self._user()
        steps: Steps = [(0, _pay(src, fresh, amount, token))]
        t = r.randint(*self.mix.mover_delay)
        parts = r.choice((1, 1, 1, 2, 3))
        for _ in range(parts):
            dst = pop.exchange(r) if r.random() < 0.4 else self._user()
            steps.append((t, _pay(fresh, dst, amount // parts, token)))
            t += int(log_uniform(r, 1, 100))
        return steps
