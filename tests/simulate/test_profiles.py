"""Domain-randomised typologies: ranges honoured, labels complete, seeds reproducible, splits differ.

Episodes are drawn straight from the generators (no blocks rendered), a few hundred per test, so
these run in well under a second each.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter

import pytest

from pipeline.simulate.chain import SANCTIONS_FILE, load_sanctions
from pipeline.simulate.episode import Episode, EpisodeBuilder, Kit, rounded
from pipeline.simulate.lookalikes import load_pool
from pipeline.simulate.population import USDC_HEX, USDT_HEX, Population
from pipeline.simulate.profile import CLASSIC, TUNING, VALIDATION, Profile
from pipeline.simulate.txbuild import APPROVE, PERMISSION, TRC20, TRC20_FROM
from pipeline.simulate.typologies import TYPOLOGIES
from pipeline.tron.address import base58_to_hex

POP = Population(4, n_users=3_000)
POOL = [(base58_to_hex(a), base58_to_hex(b)) for a, b in load_pool()]
SANCTIONED = load_sanctions(SANCTIONS_FILE)
ROOM = 5_000


def _draw(profile: Profile, typology: str, n: int, seed: int = 1, pop: Population = POP) -> list[Episode]:
    kit = Kit(pop, random.Random(seed), SANCTIONED, POOL, profile)
    return [TYPOLOGIES[typology](EpisodeBuilder(kit, ROOM)) for _ in range(n)]


def _count(ep: Episode, role: str) -> int:
    return sum(1 for _, r in ep.roles if r == role)


def _labelled(ep: Episode) -> list:
    return [it for _, it, labelled in ep.steps if labelled]


@pytest.mark.parametrize("profile", [TUNING, VALIDATION])
def test_participant_counts_stay_in_the_profiles_ranges_and_cover_them(profile: Profile) -> None:
    checks = {"fan_in": ("source", profile.fan), "fan_out": ("recipient", profile.fan),
              "scatter_gather": ("intermediate", profile.width), "mule_pass_through": ("mule", profile.width),
              "peel_chain": ("hop", profile.hops), "cycle": ("member", profile.cycle_len),
              "sanctioned_exposure": ("intermediary", profile.sanction_hops)}
    for typology, (role, (lo, hi)) in checks.items():
        counts = [_count(ep, role) for ep in _draw(profile, typology, 150)]
        assert lo <= min(counts) and max(counts) <= hi, typology
        assert max(counts) - min(counts) >= (hi - lo) // 2, f"{typology}: {min(counts)}..{max(counts)} too narrow"
    depths = {sum(1 for _, r in ep.roles if r.startswith("layer")) // max(1, _count(ep, "layer1"))
              for ep in _draw(profile, "stack", 100)}
    assert depths == set(range(profile.stack_depth[0], profile.stack_depth[1] + 1))


@pytest.mark.parametrize("profile", [TUNING, VALIDATION])
def test_timing_tokens_and_rounding_vary_within_the_profile(profile: Profile) -> None:
    episodes = [ep for t in TYPOLOGIES for ep in _draw(profile, t, 40, seed=7)]
    spans = []
    tokens: Counter[str] = Counter()
    round_amounts = 0
    for ep in episodes:
        offsets = [t for t, _, labelled in ep.steps if labelled]
        spans.append(max(offsets) - min(offsets))
        for it in _labelled(ep):
            tokens["TRX" if it.kind == "trx" else it.token] += it.kind in ("trx", TRC20, TRC20_FROM)
            round_amounts += it.amount >= 1_000_000 and it.amount % 1_000_000 == 0
    lo, hi = profile.span_blocks
    assert min(spans) <= 3 * lo and max(spans) >= hi // 3, (min(spans), max(spans))
    assert max(spans) <= hi + 700  # + the aged lead-in and retries
    assert tokens["TRX"] and tokens[USDT_HEX] and tokens[USDC_HEX]
    assert round_amounts > 50


def test_address_ages_mix_new_aged_and_existing_users() -> None:
    users = set(POP.users)
    existing = new = aged = 0
    for ep in _draw(VALIDATION, "fan_in", 60):
        unlabelled_in = {it.to for _, it, labelled in ep.steps if not labelled}
        for address, _ in ep.roles:
            if address in users:
                existing += 1
            elif address in unlabelled_in:
                aged += 1
            else:
                new += 1
    total = existing + new + aged
    assert 0.35 < existing / total < 0.65 and aged > 0.05 * total and new > 0.1 * total


@pytest.mark.parametrize("profile", [CLASSIC, TUNING, VALIDATION])
def test_every_participant_is_labelled_and_every_labelled_step_is_the_schemes(profile: Profile) -> None:
    exchanges = set(POP.exchanges)
    for typology in TYPOLOGIES:
        for ep in _draw(profile, typology, 30, seed=3):
            roles = {a for a, _ in ep.roles}
            touched = set()
            for it in _labelled(ep):
                ends = {it.owner, it.to, it.src} - {""}
                assert ends <= roles | exchanges, (typology, it)
                touched |= ends
            assert roles <= touched, (typology, roles - touched)
            assert all(r for _, r in ep.roles)


def test_gas_topups_energy_retries_and_side_activity_appear() -> None:
    kinds: Counter[str] = Counter()
    for typology in ("scatter_gather", "stack", "mule_pass_through", "peel_chain"):
        for ep in _draw(VALIDATION, typology, 40, seed=11):
            for _, it, labelled in ep.steps:
                if it.ret != "SUCCESS":
                    kinds["retry"] += 1
                    assert labelled
                elif it.kind == "delegate":
                    kinds["energy"] += 1
                    assert not labelled and it.owner in POP.providers
                elif it.kind == "trx" and it.amount <= 15_000_000 and labelled:
                    kinds["gas"] += 1
                elif not labelled:
                    kinds["ordinary"] += 1
    assert all(kinds[k] > 5 for k in ("retry", "energy", "gas", "ordinary")), kinds


def test_classic_profile_keeps_the_historical_shapes() -> None:
    for ep in _draw(CLASSIC, "fan_in", 30):
        offsets = [t for t, _, _ in ep.steps]
        assert max(offsets) <= 45 and all(t >= 0 for t in offsets)
        assert all(a not in set(POP.users) for a, _ in ep.roles)
        assert all(labelled for _, _, labelled in ep.steps)


def test_frauds_keep_their_signature_steps() -> None:
    for ep in _draw(TUNING, "approval_phishing", 20):
        assert sum(it.kind == APPROVE for it in _labelled(ep)) == 1 and any(it.kind == TRC20_FROM for it in _labelled(ep))
    for ep in _draw(TUNING, "permission_takeover", 20):
        assert sum(it.kind == PERMISSION for it in _labelled(ep)) == 1
    for ep in _draw(TUNING, "address_poisoning", 20):
        zero = [it for it in _labelled(ep) if it.kind == TRC20_FROM]
        assert len(zero) == 1 and zero[0].amount == 0 and zero[0].token in (USDT_HEX, USDC_HEX)


def test_same_seed_same_episodes_other_seed_differs() -> None:
    def draw(seed: int) -> list[Episode]:  # a new cast each time: the cast's own stream advances too
        return _draw(TUNING, "stack", 5, seed=seed, pop=Population(4, n_users=3_000))

    assert draw(2) == draw(2)
    assert draw(2) != draw(3)


def test_validation_differs_from_tuning_in_ranges_and_benign_mix() -> None:
    assert VALIDATION.fan[1] > TUNING.fan[1] and VALIDATION.fan[0] > TUNING.fan[0]
    assert VALIDATION.span_blocks[1] > TUNING.span_blocks[1] and VALIDATION.span_blocks[0] > TUNING.span_blocks[0]
    assert VALIDATION.tokens != TUNING.tokens and VALIDATION.p_existing > TUNING.p_existing
    t_rates, v_rates = TUNING.benign.rates(), VALIDATION.benign.rates()
    assert all(v_rates[k] > t_rates[k] > 0 for k in t_rates)
    sizes = {p.name: statistics.mean(_count(ep, "source") for ep in _draw(p, "fan_in", 80)) for p in (TUNING, VALIDATION)}
    assert sizes["validation"] > sizes["tuning"] + 4


@pytest.mark.parametrize(("units", "mode", "check"), [
    (12_345_678_901, "round", lambda v: v % 100_000_000 == 0),
    (12_345_678, "cents", lambda v: v == 12_340_000),
    (12_345_678, "odd", lambda v: 12_345_678 <= v < 12_346_678),
    (3, "round", lambda v: v == 1_000_000),
])
def test_rounding_modes(units: int, mode: str, check) -> None:
    assert check(rounded(units, mode, random.Random(1)))
