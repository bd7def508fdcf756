"""Who transacts: recurring users with Zipf activity, exchange hot wallets, resource providers,
and a stream of brand-new addresses.

Every address is 21-byte hex drawn from a seeded generator, so a seed fixes the whole cast.
State is bounded: the recurring population is fixed at start, new addresses live in a ring of
recent ones, and "addresses seen" is counted (a bounded set of touched users plus a counter of
fresh ones) rather than remembered, so memory does not grow with the run.
"""

from __future__ import annotations

import random
from collections import deque
from itertools import accumulate

import numpy as np

from pipeline.tron.address import base58_to_hex
from pipeline.tron.tokens import DEFAULT_TRC20, USDC, USDT

USDT_HEX = base58_to_hex(USDT)
USDC_HEX = base58_to_hex(USDC)
# The other TRC20 tokens background traffic uses, with decimals (USDC first: the common one).
OTHER_TRC20 = tuple((base58_to_hex(t.token), t.decimals) for t in DEFAULT_TRC20 if t.token != USDT)
TRC10_ASSETS = ("1002000", "1004937", "1005027", "1005023", "1005026", "1004978")


class Population:
    """The cast of a simulated chain, drawn once from ``seed``."""

    def __init__(self, seed: int, n_users: int = 40_000, n_exchanges: int = 12, n_providers: int = 40,
                 n_dapps: int = 6, n_witnesses: int = 27, zipf_s: float = 0.85, recent_cap: int = 4096) -> None:
        self._addr_rng = random.Random(f"population:{seed}")
        self.users = self._many(n_users)
        self.user_cum = list(accumulate((i + 1) ** -zipf_s for i in range(n_users)))
        self._user_cum_np = np.asarray(self.user_cum)
        self.exchanges = self._many(n_exchanges)
        self.exchange_cum = list(accumulate((i + 1) ** -1.0 for i in range(n_exchanges)))
        self.providers = self._many(n_providers)  # energy rental services: delegate / undelegate
        self.dapps = self._many(n_dapps)  # routers and DEX contracts: legitimate transferFrom callers
        self.spammers = self._many(8)  # dust senders, as on mainnet (1-5 sun TRX transfers)
        self.witnesses = self._many(n_witnesses)
        self._fresh_rng = random.Random(f"fresh:{seed}")
        self.recent_new: deque[str] = deque(maxlen=recent_cap)
        self.fresh_count = 0
        self._touched: set[int] = set()  # user indices touched; bounded by n_users

    def _many(self, n: int) -> list[str]:
        blob = self._addr_rng.randbytes(20 * n).hex()
        return ["41" + blob[i * 40:(i + 1) * 40] for i in range(n)]

    def fresh(self, remember: bool = True) -> str:
        """A never-seen address; remembered in the ring of recent new addresses if ``remember``."""
        self.fresh_count += 1
        address = "41" + self._fresh_rng.randbytes(20).hex()
        if remember:
            self.recent_new.append(address)
        return address

    def user_indices(self, rng: random.Random, k: int) -> list[int]:
        """``k`` user indices with Zipf-skewed activity (index 0 is the busiest)."""
        n = len(self.users)
        idx = rng.choices(range(n), cum_weights=self.user_cum, k=k)
        self._touched.update(idx)
        return idx

    def user_batch(self, gen: np.random.Generator, k: int) -> list[str]:
        """``k`` Zipf-drawn users in one vectorised draw (the background's hot path)."""
        cum = self._user_cum_np
        idx = np.searchsorted(cum, gen.random(k) * cum[-1], side="right").tolist()
        self._touched.update(idx)
        users = self.users
        return [users[i] for i in idx]

    def user(self, rng: random.Random) -> str:
        return self.users[self.user_indices(rng, 1)[0]]

    def exchange(self, rng: random.Random) -> str:
        return rng.choices(self.exchanges, cum_weights=self.exchange_cum)[0]

    def recent(self, rng: random.Random) -> str:
        """A recently created address (new users start transacting), else a fresh one."""
        if self.recent_new:
            return self.recent_new[int(rng.random() * len(self.recent_new))]
        return self.fresh()

    def addresses_seen(self) -> int:
        """Distinct addresses that have appeared so far (users touched + fresh + fixed roles)."""
        return (len(self._touched) + self.fresh_count + len(self.exchanges) + len(self.providers)
                + len(self.dapps) + len(self.spammers))
