"""The scenario suite: which chains the yardstick replays, and generating them once (cached).

Two splits of simulated chains plus the IBM AMLSim fan-in sample:

* **tuning**: chains drawn from :data:`~pipeline.simulate.profile.TUNING`. Tune on these.
* **validation**: chains drawn from :data:`~pipeline.simulate.profile.VALIDATION`, which differs
  from tuning in seeds, in parameter ranges and in benign mix. **The validation split is never used
  to choose a threshold or a feature**; it is what the README, the main job and the issue's floors
  report, and it stays meaningful only while nothing is fitted to it.

Each chain is ~200k transactions, the size the full default pipeline replays in about a minute on
a 2-core machine. To get hours of chain time (episodes last up to ~2,400 blocks) at that size, the
background runs at 45-70 transactions per block instead of mainnet's ~270: the rates that matter to
detection (episodes and look-alikes per hour) are per hour, not per transaction.

Chains are cached under ``data/suite/<name>-<key>/`` where the key hashes the chain's spec (its
profile included) and the generator's code and data files, so editing either regenerates, and
nothing else does. A chain is written to a temporary directory and renamed when complete, so an
interrupted generation is never mistaken for a cached one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError
from pipeline.simulate.chain import BLOCKS_PER_HOUR, SimConfig
from pipeline.simulate.profile import TUNING, VALIDATION, Profile
from pipeline.simulate.run import SIMULATE_DIR, generator_version
from pipeline.simulate.typologies import TYPOLOGIES

SPLITS = ("tuning", "validation")
DEFAULT_CACHE = Path("data/suite")
# The AMLSim sample shipped with the shared fixtures, next to the repository.
DEFAULT_AMLSIM = Path(__file__).resolve().parents[3] / "shared" / "data" / "amlsim" / "20K_fanin200"
_COMPLETE = "suite.json"


@dataclass(frozen=True)
class SuiteChain:
    """One simulated chain of the suite."""

    name: str
    split: str
    profile: Profile
    seed: int
    blocks: int
    episodes: int  # per typology
    n_users: int = 40_000

    @property
    def rate(self) -> float:
        """Episodes per typology per simulated hour."""
        return self.episodes / (self.blocks / BLOCKS_PER_HOUR)

    def sim_config(self, blocks: int | None = None, seed: int | None = None) -> SimConfig:
        """This chain's settings; ``blocks``/``seed`` give a chain of the same kind, longer or shorter."""
        return SimConfig(blocks=blocks or self.blocks, seed=self.seed if seed is None else seed,
                         rates=dict.fromkeys(TYPOLOGIES, self.rate), n_users=self.n_users, profile=self.profile)


@dataclass(frozen=True)
class AmlsimSample:
    """An AMLSim output folder converted by ``import-amlsim`` (node-level figures)."""

    name: str
    folder: Path
    typology: str = "fan_in"


SUITE: tuple[SuiteChain, ...] = (
    SuiteChain("tuning-1", "tuning", TUNING, seed=1001, blocks=3_000, episodes=20),
    SuiteChain("tuning-2", "tuning", TUNING, seed=1002, blocks=3_000, episodes=20),
    SuiteChain("tuning-3", "tuning", TUNING, seed=1003, blocks=3_000, episodes=20),
    SuiteChain("validation-1", "validation", VALIDATION, seed=9001, blocks=3_600, episodes=20, n_users=60_000),
    SuiteChain("validation-2", "validation", VALIDATION, seed=9002, blocks=3_600, episodes=20, n_users=60_000),
    SuiteChain("validation-3", "validation", VALIDATION, seed=9003, blocks=3_600, episodes=20, n_users=60_000),
)


def chains_for(split: str, suite: tuple[SuiteChain, ...] = SUITE) -> list[SuiteChain]:
    """The chains of ``split`` (``tuning``, ``validation`` or ``all``)."""
    if split not in (*SPLITS, "all"):
        raise InputError(f"--split: expected tuning, validation or all, got {split!r}")
    return [c for c in suite if split == "all" or c.split == split]


def _code_version(files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def chain_key(chain: SuiteChain, version: str) -> str:
    return hashlib.sha256(f"{chain!r}\0{version}".encode()).hexdigest()[:12]


def amlsim_key(sample: AmlsimSample) -> str:
    files = [SIMULATE_DIR / "amlsim.py", SIMULATE_DIR / "txbuild.py", SIMULATE_DIR / "output.py",
             sample.folder / "nodes.csv", sample.folder / "transactions.csv"]
    return hashlib.sha256(f"{sample.typology}\0{_code_version(files)}".encode()).hexdigest()[:12]


def _cached(target: Path, make: Callable[[Path], dict]) -> tuple[Path, dict, bool]:
    """``target`` if complete, else build it in ``target.tmp`` and rename; returns (dir, meta, reused)."""
    marker = target / _COMPLETE
    if marker.is_file():
        return target, json.loads(marker.read_text()), True
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    meta = make(tmp)
    (tmp / _COMPLETE).write_text(json.dumps(meta, sort_keys=True) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target, meta, False


def materialise(chain: SuiteChain, cache: Path, version: str | None = None) -> tuple[Path, dict, bool]:
    """Generate ``chain`` into the cache unless it is there; returns (dir, meta, reused)."""
    from pipeline.simulate.run import simulate

    target = cache / f"{chain.name}-{chain_key(chain, version or generator_version())}"

    def make(tmp: Path) -> dict:
        meta = simulate(chain.sim_config(), tmp, progress=False)
        return {"tx_count": meta["tx_count"], "blocks": meta["blocks"], "seed": chain.seed,
                "profile": chain.profile.name, "elapsed_s": round(meta["elapsed_s"], 2)}

    return _cached(target, make)


def materialise_amlsim(sample: AmlsimSample, cache: Path) -> tuple[Path, dict, bool]:
    """Convert the AMLSim folder with ``import-amlsim``'s converter unless cached."""
    from pipeline.simulate.amlsim import import_amlsim

    if not (sample.folder / "nodes.csv").is_file():
        raise InputError(f"{sample.folder}: AMLSim sample not found (nodes.csv missing); give --amlsim DIR")
    target = cache / f"{sample.name}-{amlsim_key(sample)}"

    def make(tmp: Path) -> dict:
        meta = import_amlsim(sample.folder, tmp, typology=sample.typology)
        return {"tx_count": meta["tx_count"], "blocks": meta["blocks"], "source": str(sample.folder)}

    return _cached(target, make)
