"""Benign look-alikes: each has the shape it imitates, comes at its rate, and is never labelled."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pipeline.simulate.benign import Benign
from pipeline.simulate.chain import BLOCKS_PER_HOUR, SimConfig, Simulator
from pipeline.simulate.population import Population
from pipeline.simulate.profile import TUNING, VALIDATION
from pipeline.simulate.txbuild import APPROVE, DELEGATE, TRC20_FROM, TRX
from pipeline.tron.address import hex_to_base58

MIX = VALIDATION.benign


@pytest.fixture
def benign() -> Benign:
    return Benign(Population(5, n_users=3_000), random.Random(5), MIX, seed=5)


def _many(benign: Benign, name: str, n: int = 40) -> list:
    return [benign.behaviours[name]() for _ in range(n)]


def test_deposit_sweep_is_a_pass_through_into_the_hot_wallet(benign: Benign) -> None:
    exchanges = set(benign.pop.exchanges)
    for steps in _many(benign, "deposit_sweep"):
        t_sweep, sweep = max(steps, key=lambda s: s[0])
        assert sweep.to in exchanges
        deposits = [it for _, it in steps if it.to == sweep.owner and it.owner not in exchanges
                    and it.kind != DELEGATE]
        assert MIX.sweep_deposits[0] <= len(deposits) <= MIX.sweep_deposits[1]
        assert sweep.amount == sum(it.amount for it in deposits)  # the whole balance moves on
        assert all(t < t_sweep for t, it in steps if it is not sweep)


def test_payouts_fan_out_from_one_source(benign: Benign) -> None:
    for steps in _many(benign, "payout"):
        assert len({it.owner for _, it in steps}) == 1
        assert MIX.payout_recipients[0] <= len(steps) <= MIX.payout_recipients[1]


def test_merchant_pull_one_spender_many_owners_into_one_merchant(benign: Benign) -> None:
    for steps in _many(benign, "merchant_pull"):
        approvals = [it for _, it in steps if it.kind == APPROVE]
        pulls = [it for _, it in steps if it.kind == TRC20_FROM]
        assert len({it.to for it in approvals}) == 1 and len(approvals) == len(pulls) >= MIX.merchant_owners[0]
        assert {it.owner for it in pulls} == {approvals[0].to} and len({it.to for it in pulls}) == 1
        assert {it.src for it in pulls} == {it.owner for it in approvals}


def test_swaps_pay_out_another_token(benign: Benign) -> None:
    routers = set(benign.pop.dapps)
    for steps in _many(benign, "dex_swap"):
        (_, sell), (_, buy) = steps[-2], steps[-1]
        assert buy.owner in routers and buy.to == (sell.src or sell.owner)
        assert (buy.token or buy.kind) != (sell.token or sell.kind)


def test_market_makers_close_cycles_and_otc_trades_are_round(benign: Benign) -> None:
    for steps in _many(benign, "mm_round_trip"):
        legs = [it for _, it in steps]
        assert legs[-1].to == legs[0].owner and len({it.owner for it in legs}) >= MIX.mm_parties[0]
    for steps in _many(benign, "otc"):
        assert all(it.amount % 1_000_000 == 0 and it.amount >= 10_000_000_000 for _, it in steps)


def test_gas_stations_and_spam_send_many_small_things_from_one_address(benign: Benign) -> None:
    for steps in _many(benign, "gas_station"):
        assert len({it.owner for _, it in steps}) == 1 and len(steps) >= MIX.gas_recipients[0]
        assert all(it.kind == DELEGATE or (it.kind == TRX and it.amount <= 33_000_000) for _, it in steps)
    for steps in _many(benign, "dust_spam"):
        assert len({it.owner for _, it in steps}) == 1 and len(steps) >= MIX.spam_recipients[0]


def test_fresh_mover_moves_a_large_sum_on_later(benign: Benign) -> None:
    for steps in _many(benign, "fresh_mover"):
        (t0, first), rest = steps[0], steps[1:]
        assert all(it.owner == first.to and t >= t0 + MIX.mover_delay[0] for t, it in rest)
        assert sum(it.amount for _, it in rest) <= first.amount


def test_look_alikes_come_at_their_rates_and_are_never_labelled() -> None:
    blocks = 600
    sim = Simulator(SimConfig(blocks=blocks, seed=21, n_users=3_000, profile=TUNING))
    tx_addresses: dict[str, set[str]] = {}
    for block in sim.blocks():
        for tx in block["transactions"]:
            value = tx["raw_data"]["contract"][0]["parameter"]["value"]
            ends = {value.get(k) for k in ("owner_address", "to_address", "receiver_address")}
            data = value.get("data", "")
            if data:  # TRC20 calldata: the 20-byte addresses in the argument words
                ends |= {"41" + data[8 + 64 * k + 24:8 + 64 * k + 64] for k in range(2)}
            tx_addresses[tx["txID"]] = {e for e in ends if e}
    hours = blocks / BLOCKS_PER_HOUR
    for name, rate in TUNING.benign.rates().items():
        assert sim.benign_counts[name] == round(rate * hours), name
    cast = set(sim.benign.processors + sim.benign.merchants + sim.benign.otc_desks + sim.benign.gas_stations
               + sim.benign.payers + sim.benign.spammers + [a for g in sim.benign.mm_groups for a in g])
    deposits = {a for pool in sim.benign.deposits.values() for a in pool}
    labelled_addresses = {a for a, *_ in sim.labels}
    assert not (cast | deposits) & labelled_addresses
    seen = Counter()
    for ends in tx_addresses.values():
        seen["cast"] += bool(ends & cast)
        seen["deposit"] += bool(ends & deposits)
    assert seen["cast"] > 200 and seen["deposit"] > 100
    labelled_txs = {t for t, *_ in sim.labelled_txs}
    assert not any(tx_addresses[t] & (cast | deposits) for t in labelled_txs)
    assert hex_to_base58(next(iter(cast)))  # cast addresses are valid TRON addresses
