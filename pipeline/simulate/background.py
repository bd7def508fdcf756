"""Background traffic for one block, calibrated to the two real mainnet blocks in shared/data.

Those blocks (281 and 170 transactions) hold ~40-48% TriggerSmartContract (almost all USDT
``transfer``), ~23-40% TransferContract (a third of them 1-5 sun dust), ~7-13% delegation and
undelegation, 4-13% TRC10, and a little FreezeBalanceV2 and AccountCreate. Amounts are
heavy-tailed (lognormal bodies, Pareto tails for exchange withdrawals); exchange hot wallets sit on
one side of about a third of value transfers; a small share of contract calls fail.

Random numbers are drawn per block in a few vectorised numpy calls (kinds, Zipf users, uniforms,
normals), so the per-transaction loop only indexes lists: that is what makes 100k tx/s possible.
"""

from __future__ import annotations

import math
import random

import numpy as np

from pipeline.simulate.population import OTHER_TRC20, TRC10_ASSETS, USDT_HEX, Population
from pipeline.simulate.txbuild import (
    APPROVE,
    CREATE,
    DELEGATE,
    FREEZE,
    MAX_UINT256,
    TRC10,
    TRC20,
    TRC20_FROM,
    TRX,
    UNDELEGATE,
    Intent,
)

# (kind, share); "usdt" and "trc20_other" are both TRC20 transfers, split for calibration.
MIX: tuple[tuple[str, float], ...] = (
    ("usdt", 0.445), ("trc20_other", 0.03), (TRC20_FROM, 0.01), (APPROVE, 0.005), (TRX, 0.30),
    (TRC10, 0.06), (DELEGATE, 0.06), (UNDELEGATE, 0.06), (FREEZE, 0.02), (CREATE, 0.01),
)
_KINDS = [k for k, _ in MIX]
_CUM = np.cumsum([s for _, s in MIX]) / sum(s for _, s in MIX)
FAIL_RATE_CONTRACT = 0.04  # of TriggerSmartContract calls: ~2% of all transactions
TX_PER_BLOCK = (250, 300)
_exp = math.exp


class Background:
    """Draws the ordinary transactions of each block from a :class:`Population`."""

    def __init__(self, population: Population, rng: random.Random, seed: int,
                 tx_per_block: tuple[int, int] = TX_PER_BLOCK) -> None:
        self.pop = population
        self.rng = rng
        self.gen = np.random.Generator(np.random.PCG64([seed, 0x5EED]))
        self.lo, self.hi = tx_per_block

    def block(self) -> list[Intent]:
        rng, pop, gen = self.rng, self.pop, self.gen
        n = self.lo + int(rng.random() * (self.hi - self.lo + 1))
        kinds = np.searchsorted(_CUM, gen.random(n), side="right").tolist()
        uni = gen.random((n, 4)).tolist()
        normal = gen.standard_normal(n).tolist()
        users = pop.user_batch(gen, 2 * n)
        exchanges, n_ex, providers, dapps = pop.exchanges, len(pop.exchanges), pop.providers, pop.dapps
        out: list[Intent] = []
        append = out.append
        for k in range(n):
            kind = _KINDS[kinds[k]]
            u0, u1, u2, u3 = uni[k]
            z = normal[k]
            if kind == DELEGATE or kind == UNDELEGATE:
                append(Intent(kind, providers[int(u0 * len(providers))], users[2 * k],
                              max(1, int(5e9 * _exp(1.2 * z))), "ENERGY" if u1 < 0.85 else "BANDWIDTH"))
                continue
            if kind == FREEZE:
                append(Intent(FREEZE, users[2 * k], "", max(1, int(30e6 * _exp(1.5 * z))),
                              "ENERGY" if u1 < 0.8 else "BANDWIDTH"))
                continue
            if kind == CREATE:  # an exchange or a user activates a new account
                append(Intent(CREATE, exchanges[int(u1 * n_ex)] if u0 < 0.5 else users[2 * k], pop.fresh()))
                continue
            if kind == TRX and u0 < 0.33:  # dust spam, 1-5 sun, from a few spammers
                append(Intent(TRX, pop.spammers[int(u1 * 8)], users[2 * k], 1 + int(u2 * 5)))
                continue
            # a value transfer: pick who pays whom (deposit, withdrawal, peer, newcomer)
            if u0 < 0.18:
                src, dst = users[2 * k], exchanges[int(u1 * u1 * n_ex)]
            elif u0 < 0.34:
                src = exchanges[int(u1 * u1 * n_ex)]
                dst = pop.fresh() if u2 < 0.15 else users[2 * k]
            elif u0 < 0.92:
                src = users[2 * k]
                dst = pop.fresh() if u2 < 0.10 else users[2 * k + 1]
            else:
                src = pop.recent(rng)
                dst = exchanges[int(u1 * u1 * n_ex)] if u2 < 0.5 else users[2 * k]
            if kind == "usdt":
                if 0.18 <= u0 < 0.34 and u2 > 0.8:  # exchange withdrawals: Pareto tail
                    amount = int(min(5e12, 1e9 * rng.paretovariate(1.3)))
                else:
                    amount = int(min(5e12, 150e6 * _exp(1.8 * z))) + 1
                append(Intent(TRC20, src, dst, amount, USDT_HEX, ret=_ret(u3)))
            elif kind == TRX:
                append(Intent(TRX, src, dst, int(min(5e13, 50e6 * _exp(2.0 * z))) + 1))
            elif kind == "trc20_other":
                token, decimals = OTHER_TRC20[0] if u2 < 0.6 else OTHER_TRC20[int(u2 * 100) % len(OTHER_TRC20)]
                amount = (int(min(5e6, 100.0 * _exp(1.8 * z))) + 1) * 10**decimals
                append(Intent(TRC20, src, dst, amount, token, ret=_ret(u3)))
            elif kind == TRC10:
                append(Intent(TRC10, src, dst, int(min(1e12, 1e4 * _exp(2.5 * z))) + 1,
                              TRC10_ASSETS[int(u3 * len(TRC10_ASSETS))]))
            elif kind == TRC20_FROM:
                append(Intent(TRC20_FROM, dapps[int(u3 * len(dapps))], dst, int(min(1e12, 300e6 * _exp(1.5 * z))),
                              USDT_HEX, src=src, ret=_ret(u3 * 7 % 1.0)))
            else:  # APPROVE: to a dapp router, a third of them unlimited (legitimate hard negatives)
                amount = MAX_UINT256 if u2 < 0.3 else int(min(1e13, 1e9 * _exp(1.5 * z)))
                append(Intent(APPROVE, src, dapps[int(u3 * len(dapps))], amount, USDT_HEX))
        return out


def _ret(u: float) -> str:
    """Contract-call outcome from a uniform draw: ~4% fail, REVERT more often than OUT_OF_ENERGY."""
    if u >= FAIL_RATE_CONTRACT:
        return "SUCCESS"
    return "REVERT" if u < FAIL_RATE_CONTRACT * 0.6 else "OUT_OF_ENERGY"
