"""Profiles: the distributions a simulated chain draws its episodes and benign look-alikes from.

A detector tuned on one simulator learns that simulator's constants (every fan-in has 8-14 fresh
sources, every episode fits in two minutes) instead of the behaviour. So each episode draws its
parameters from the wide ranges of a :class:`Profile` (participants, amounts and their rounding,
token, duration, cuts, address ages, gas top-ups, retries, ordinary side activity), and the
background carries ordinary behaviours that look like laundering (:class:`BenignMix`).

Three profiles ship:

* :data:`CLASSIC`: the simulator's historical shapes (fresh addresses, mostly USDT, 3-14
  participants, two minutes, no look-alikes). The default of :class:`SimConfig`, so tests and
  benchmarks keep their workload; not a yardstick.
* :data:`TUNING`: what detectors may be tuned on (thresholds, features, the supervised scorer).
* :data:`VALIDATION`: differs from tuning in its ranges (wider and shifted participant counts,
  slower timing, more pre-existing addresses, another token mix) and its benign mix (heavier).
  **Never use it to choose a threshold or a feature**: it is the figure the README, the main job
  and the issue's floors report, and it means something only while nothing was fitted to it.

Ranges are inclusive ``(lo, hi)``; counts are drawn uniformly, amounts and durations
log-uniformly (so both ends of a wide range are common). Rates are per simulated hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

IntRange = tuple[int, int]
FloatRange = tuple[float, float]


@dataclass(frozen=True)
class BenignMix:
    """Ordinary behaviours that resemble typologies, with their rates (instances per hour) and
    ranges. None of their addresses or transactions is ever labelled."""

    deposit_sweep: float = 0.0  # customers pay a deposit address, it sweeps to the exchange hot wallet
    payout: float = 0.0  # exchange withdrawal batches, payroll, airdrops: one source, many recipients
    merchant_pull: float = 0.0  # owners approve a processor; it pulls transferFrom into a merchant
    dex_swap: float = 0.0  # a user pays a router, the router pays out another token
    mm_round_trip: float = 0.0  # market makers cycle funds among a few long-lived addresses
    otc: float = 0.0  # large round amounts between a few parties
    gas_station: float = 0.0  # one address sends many small TRX transfers or delegations
    dust_spam: float = 0.0  # tiny token or TRX amounts to many addresses
    fresh_mover: float = 0.0  # a fresh address receives a large amount and moves it on later
    sweep_deposits: IntRange = (1, 4)  # customer payments into one deposit address
    sweep_delay: IntRange = (1, 600)  # blocks between the last deposit and the sweep
    payout_recipients: IntRange = (5, 40)
    merchant_owners: IntRange = (3, 25)
    mm_parties: IntRange = (3, 5)
    mm_laps: IntRange = (1, 3)
    otc_trades: IntRange = (2, 6)
    gas_recipients: IntRange = (10, 60)
    spam_recipients: IntRange = (20, 120)
    mover_delay: IntRange = (20, 1200)

    def rates(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in BENIGN_BEHAVIOURS}


BENIGN_BEHAVIOURS: tuple[str, ...] = ("deposit_sweep", "payout", "merchant_pull", "dex_swap", "mm_round_trip",
                                      "otc", "gas_station", "dust_spam", "fresh_mover")


@dataclass(frozen=True)
class Profile:
    """Per-episode parameter ranges of the typologies, and the benign mix of the background."""

    name: str
    tx_per_block: IntRange = (250, 300)  # background transactions per 3 s block
    amount_usd: FloatRange = (800.0, 10_000.0)  # a typical leg, log-uniform
    rounding: tuple[float, float, float] = (0.0, 0.0, 1.0)  # weights of round / cents / odd amounts
    tokens: tuple[float, float, float] = (0.1, 0.9, 0.0)  # weights of TRX / USDT / USDC
    fan: IntRange = (8, 14)  # fan-in sources, fan-out recipients
    width: IntRange = (5, 10)  # intermediates of scatter-gather, sides of gather-scatter, mules, stack width
    hops: IntRange = (6, 10)  # peel chain length
    cycle_len: IntRange = (3, 6)
    stack_depth: IntRange = (2, 2)  # layers between origin and sink
    sanction_hops: IntRange = (0, 2)  # intermediaries between a listed address and the recipient
    span_blocks: IntRange = (20, 40)  # how long an episode takes, first to last step (3 s blocks)
    fee: FloatRange = (0.005, 0.02)  # the cut an intermediary keeps
    peel: FloatRange = (0.02, 0.08)  # the share a peel hop sends off
    p_existing: float = 0.0  # a participant is a pre-existing background user (else a new address)
    p_aged: float = 0.0  # a new participant first gets an ordinary history (hours before)
    p_gas_topup: float = 0.0  # an intermediary about to move TRC20 first receives TRX for fees
    p_energy: float = 0.0  # ... or an energy delegation from a rental provider
    p_retry: float = 0.0  # a TRC20 leg first fails (REVERT / OUT_OF_ENERGY) and is retried
    p_side_activity: float = 0.0  # a participant also transacts ordinarily during the episode
    benign: BenignMix = field(default_factory=BenignMix)

    def with_tx_per_block(self, lo: int, hi: int) -> Profile:
        return replace(self, tx_per_block=(lo, hi))


CLASSIC = Profile("classic")

TUNING = Profile(
    "tuning",
    tx_per_block=(50, 70),
    amount_usd=(150.0, 60_000.0),
    rounding=(0.3, 0.3, 0.4),
    tokens=(0.25, 0.6, 0.15),
    fan=(3, 30),
    width=(2, 12),
    hops=(3, 10),
    cycle_len=(3, 6),
    stack_depth=(2, 3),
    sanction_hops=(0, 2),
    span_blocks=(8, 1200),
    fee=(0.0, 0.03),
    peel=(0.01, 0.12),
    p_existing=0.3,
    p_aged=0.3,
    p_gas_topup=0.3,
    p_energy=0.15,
    p_retry=0.05,
    p_side_activity=0.3,
    benign=BenignMix(deposit_sweep=120.0, payout=12.0, merchant_pull=6.0, dex_swap=60.0, mm_round_trip=3.0,
                     otc=4.0, gas_station=4.0, dust_spam=4.0, fresh_mover=10.0),
)

VALIDATION = Profile(
    "validation",
    tx_per_block=(45, 65),
    amount_usd=(60.0, 200_000.0),
    rounding=(0.45, 0.2, 0.35),
    tokens=(0.35, 0.35, 0.3),
    fan=(5, 45),
    width=(3, 16),
    hops=(4, 14),
    cycle_len=(3, 8),
    stack_depth=(2, 4),
    sanction_hops=(0, 3),
    span_blocks=(30, 2400),
    fee=(0.0, 0.05),
    peel=(0.005, 0.2),
    p_existing=0.5,
    p_aged=0.4,
    p_gas_topup=0.45,
    p_energy=0.25,
    p_retry=0.1,
    p_side_activity=0.5,
    benign=BenignMix(deposit_sweep=200.0, payout=20.0, merchant_pull=10.0, dex_swap=90.0, mm_round_trip=5.0,
                     otc=7.0, gas_station=7.0, dust_spam=7.0, fresh_mover=18.0,
                     sweep_deposits=(1, 6), sweep_delay=(1, 1200), payout_recipients=(8, 80),
                     merchant_owners=(5, 40), mm_parties=(3, 6), mm_laps=(1, 4), otc_trades=(2, 8),
                     gas_recipients=(15, 90), spam_recipients=(30, 200), mover_delay=(40, 2400)),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (CLASSIC, TUNING, VALIDATION)}
