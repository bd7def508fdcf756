"""The simulated chain: blocks with background traffic, benign look-alikes and labelled episodes.

Deterministic by seed: every random draw comes from ``random.Random`` streams seeded from the
run's seed (one for content, one for ids and signatures, one for the cast), and nothing reads the
clock. Blocks are 3 s apart, ``blockID`` starts with the height, ``parentHash`` chains. Pending
episode steps are kept only until their block is built, so memory is bounded by the episodes in
flight; labels grow with the number of episodes (not transactions), as ground truth must.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, InputError
from pipeline.simulate.background import Background
from pipeline.simulate.benign import Benign
from pipeline.simulate.episode import EpisodeBuilder, Kit
from pipeline.simulate.lookalikes import load_pool
from pipeline.simulate.population import Population
from pipeline.simulate.profile import CLASSIC, Profile
from pipeline.simulate.txbuild import CONTRACT_TYPE, Intent, TxFactory
from pipeline.simulate.typologies import TYPOLOGIES
from pipeline.tron.address import base58_to_hex

log = logging.getLogger(__name__)

SANCTIONS_FILE = Path(__file__).with_name("ofac_sdn_trx.txt")  # copy of shared/data/lists, see NOTICE.md
BLOCK_MS = 3_000
BLOCKS_PER_HOUR = 1_200
DEFAULT_RATE = 4.0  # episodes per typology per simulated hour
DEFAULT_START_TS = 1_714_000_002_000  # 2024-04-24, near the real fixture blocks
DEFAULT_START_HEIGHT = 61_200_000


@dataclass(frozen=True)
class SimConfig:
    """Settings of one run; validated once here so the generator can trust them."""

    blocks: int
    seed: int = 0
    visible: bool = False
    rates: dict[str, float] = field(default_factory=lambda: {t: DEFAULT_RATE for t in TYPOLOGIES})
    start_ts: int = DEFAULT_START_TS
    start_height: int = DEFAULT_START_HEIGHT
    n_users: int = 40_000
    sanctions_file: Path = SANCTIONS_FILE
    profile: Profile = CLASSIC  # episode parameter ranges and benign mix (pipeline/simulate/profile.py)

    def __post_init__(self) -> None:
        if self.blocks < 1:
            raise ConfigError(f"--blocks must be >= 1, got {self.blocks}")
        unknown = set(self.rates) - set(TYPOLOGIES)
        if unknown:
            raise ConfigError(f"--rates: unknown typologies {sorted(unknown)}; known: {', '.join(TYPOLOGIES)}")
        if any(v < 0 for v in self.rates.values()):
            raise ConfigError("--rates: episode rates must be >= 0")


def parse_rates(text: str) -> dict[str, float]:
    """``"all=2,fan_in=6"`` -> per-typology episodes per simulated hour (others keep the default)."""
    rates = {t: DEFAULT_RATE for t in TYPOLOGIES}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            rate = float(value)
        except ValueError:
            raise ConfigError(f"--rates: {part!r} is not NAME=EPISODES_PER_HOUR") from None
        if not sep:
            raise ConfigError(f"--rates: {part!r} is not NAME=EPISODES_PER_HOUR")
        if name == "all":
            rates = {t: rate for t in TYPOLOGIES}
        elif name in TYPOLOGIES:
            rates[name] = rate
        else:
            raise ConfigError(f"--rates: unknown typology {name!r}; known: all, {', '.join(TYPOLOGIES)}")
    return rates


def load_sanctions(path: Path) -> list[str]:
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines()]
    except OSError as err:
        raise InputError(f"{path}: cannot read sanctions list ({err})") from err
    return [base58_to_hex(a) for a in lines if a and not a.startswith("#")]


def plan_episodes(cfg: SimConfig, rng: random.Random) -> list[tuple[int, str]]:
    """Episode start blocks, spread evenly (with jitter) over the run; every typology with a
    positive rate gets at least one episode, so short runs still contain all of them. When the
    profile's episodes can last long, the last stretch of the chain (up to a quarter) gets no new
    starts, so long episodes are not all squeezed into the blocks left."""
    plan = []
    usable = cfg.blocks * (1.0 - min(0.25, cfg.profile.span_blocks[1] / (2.0 * cfg.blocks)))
    for name in TYPOLOGIES:
        rate = cfg.rates.get(name, 0.0)
        if rate <= 0:
            continue
        count = max(1, round(rate * cfg.blocks / BLOCKS_PER_HOUR))
        width = usable / count
        for k in range(count):
            plan.append((min(cfg.blocks - 1, int(width * k + rng.random() * width * 0.8)), name))
    plan.sort()
    return plan


def plan_benign(cfg: SimConfig, rng: random.Random) -> list[tuple[int, str]]:
    """Start blocks of benign look-alikes: each behaviour at its rate, uniformly over the run."""
    plan = []
    for name, rate in cfg.profile.benign.rates().items():
        count = round(rate * cfg.blocks / BLOCKS_PER_HOUR)
        plan += [(int(rng.random() * cfg.blocks), name) for _ in range(count)]
    plan.sort()
    return plan


class Simulator:
    """Iterate :meth:`blocks` for node-shaped block dicts; labels accumulate as it goes."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(f"content:{cfg.seed}")
        self._id_rng = random.Random(f"ids:{cfg.seed}")
        self.pop = Population(cfg.seed, n_users=cfg.n_users)
        self.background = Background(self.pop, self.rng, cfg.seed, cfg.profile.tx_per_block)
        self.factory = TxFactory(self.rng, cfg.visible)
        pool = [(base58_to_hex(a), base58_to_hex(b)) for a, b in load_pool()]
        self.kit = Kit(self.pop, self.rng, load_sanctions(cfg.sanctions_file), pool, cfg.profile)
        self.plan = deque(plan_episodes(cfg, random.Random(f"plan:{cfg.seed}")))
        self.benign = Benign(self.pop, self.rng, cfg.profile.benign, cfg.seed)
        self.benign_plan = deque(plan_benign(cfg, random.Random(f"benign-plan:{cfg.seed}")))
        self.benign_counts: dict[str, int] = dict.fromkeys(self.benign.behaviours, 0)
        self.pending: dict[int, list[Intent]] = {}
        self.labels: list[tuple[str, str, str, str]] = []  # hex address, typology, episode, role
        self.labelled_txs: list[tuple[str, str, str]] = []  # tx id, typology, episode
        self.episode_counts: dict[str, int] = {t: 0 for t in TYPOLOGIES}
        self.tx_count = 0
        self.kind_counts: dict[str, int] = dict.fromkeys(CONTRACT_TYPE, 0)
        self.failed = 0

    def _start_episodes(self, i: int) -> None:
        last = self.cfg.blocks - 1
        while self.plan and self.plan[0][0] <= i:
            _, name = self.plan.popleft()
            self.episode_counts[name] += 1
            eid = f"{name}-{self.episode_counts[name]:04d}"
            episode = TYPOLOGIES[name](EpisodeBuilder(self.kit, last - i))
            for address, role in episode.roles:
                self.labels.append((address, name, eid, role))
            for offset, intent, labelled in sorted(episode.steps, key=lambda s: s[0]):
                if labelled:
                    intent = intent._replace(label=(name, eid))
                self.pending.setdefault(min(last, i + offset), []).append(intent)
        while self.benign_plan and self.benign_plan[0][0] <= i:
            _, name = self.benign_plan.popleft()
            self.benign_counts[name] += 1
            for offset, intent in sorted(self.benign.behaviours[name](), key=lambda s: s[0]):
                if i + offset <= last:  # unlabelled, so cut at the chain's end rather than squeezed into it
                    self.pending.setdefault(i + offset, []).append(intent)

    def contract_counts(self) -> dict[str, int]:
        """Transactions so far per node contract type (``TriggerSmartContract``, ...)."""
        out: dict[str, int] = {}
        for kind, n in self.kind_counts.items():
            if n:
                out[CONTRACT_TYPE[kind]] = out.get(CONTRACT_TYPE[kind], 0) + n
        return out

    def blocks(self) -> Iterator[dict[str, Any]]:
        cfg, rng, ids = self.cfg, self.rng, self._id_rng
        recent: deque[tuple[int, str, int]] = deque(maxlen=32)  # (height, blockID, ts)
        parent = f"{cfg.start_height - 1:016x}" + ids.randbytes(24).hex()
        witnesses = self.pop.witnesses
        for i in range(cfg.blocks):
            height, ts = cfg.start_height + i, cfg.start_ts + i * BLOCK_MS
            self._start_episodes(i)
            intents = self.background.block()
            extra = self.pending.pop(i, None)
            if extra:  # episode steps at random places in the block, keeping their order
                slots = sorted(int(rng.random() * (len(intents) + 1)) for _ in extra)
                for k in range(len(extra) - 1, -1, -1):
                    intents.insert(slots[k], extra[k])
            ref_h, ref_id, ref_ts = recent[-2] if len(recent) >= 2 else (height - 1, parent, ts - BLOCK_MS)
            self.factory.begin_block(ts, f"{ref_h & 0xFFFF:04x}", ref_id[16:32], ref_ts)
            n = len(intents)
            id_blob = ids.randbytes(32 * n).hex()
            sig_blob = ids.randbytes(64 * n).hex()
            build = self.factory.build
            txs = []
            counts = self.kind_counts
            for k, it in enumerate(intents):
                tx_id = id_blob[64 * k:64 * k + 64]
                txs.append(build(it, tx_id, sig_blob[128 * k:128 * k + 128] + ("00", "01")[k & 1]))
                counts[it.kind] += 1
                if it.label is not None:
                    self.labelled_txs.append((tx_id, it.label[0], it.label[1]))
                if it.ret != "SUCCESS":
                    self.failed += 1
            self.tx_count += n
            block_id = f"{height:016x}" + ids.randbytes(24).hex()
            witness = witnesses[height % len(witnesses)]
            yield {
                "blockID": block_id,
                "block_header": {
                    "raw_data": {"number": height, "txTrieRoot": ids.randbytes(32).hex(),
                                 "witness_address": self.factory.address(witness), "parentHash": parent,
                                 "version": 29, "timestamp": ts},
                    "witness_signature": ids.randbytes(65).hex(),
                },
                "transactions": txs,
            }
            recent.append((height, block_id, ts))
            parent = block_id
