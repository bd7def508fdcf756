"""Synthetic data for the anomaly tests: small, seeded, shaped like real feature vectors.

A plain module (not conftest.py) so `from anomaly_data import ...` cannot collide with tests/conftest.py.
"""

from __future__ import annotations

import numpy as np

from pipeline.records import FEATURE_NAMES, AddressFeatures, AddressUpdate, Kind, Transfer
from tests.conftest import SHARED

OFAC = SHARED / "lists" / "ofac_sdn_trx.txt"
COL = {n: j for j, n in enumerate(FEATURE_NAMES)}


def normal_features(n: int, seed: int) -> np.ndarray:
    """Feature rows of ordinary addresses: a few transfers, lognormal USD volumes, bounded ratios,
    and the rare-event counts (cycles, dust, approvals, ...) mostly zero, as on the real chain."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(0.02, size=(n, len(FEATURE_NAMES))).astype(np.float64)  # rare events
    for name in ("tx_in_count", "tx_out_count"):
        X[:, COL[name]] = rng.poisson(3.0, n)
    for name in ("distinct_in", "distinct_out"):  # never more than the transfers
        X[:, COL[name]] = np.minimum(rng.poisson(2.0, n), X[:, COL[name.replace("distinct", "tx") + "_count"]])
    for name in ("fan_in_10m", "fan_out_10m"):
        X[:, COL[name]] = rng.poisson(1.0, n)
    X[:, COL["usd_in"]] = rng.lognormal(5.0, 1.0, n)
    X[:, COL["usd_out"]] = rng.lognormal(5.0, 1.0, n)
    X[:, COL["pass_through_delay_s"]] = rng.lognormal(6.0, 1.0, n)
    X[:, COL["age_s"]] = rng.uniform(60, 86_400, n)
    X[:, COL["pass_through_ratio"]] = rng.uniform(0, 1, n)
    X[:, COL["exposure_score"]] = rng.uniform(0, 0.2, n)
    X[:, COL["watch_hops"]] = rng.choice([2.0, 3.0, 9.0], size=n, p=[0.1, 0.2, 0.7])
    return X


# Outliers shaped like typologies: each moves a few related features far outside normal data.
PERTURBATIONS: tuple[dict[str, float], ...] = (
    {"usd_out": 5e8, "usd_in": 4e8, "tx_out_count": 400.0},                # whale-sized pass-through
    {"fan_in_10m": 4000.0, "distinct_in": 3000.0, "tx_in_count": 3500.0, "usd_in": 3e7},  # fan-in
    {"cycle_count": 900.0, "lookalike_count": 300.0, "dust_in": 500.0},    # cycles + poisoning
    {"fan_out_10m": 2000.0, "distinct_out": 2500.0, "tx_out_count": 3000.0, "usd_out": 2e7},
)


def outliers(seed: int = 7) -> tuple[np.ndarray, list[set[str]]]:
    """Outlier rows and, for each, the set of features that were perturbed."""
    X = normal_features(len(PERTURBATIONS), seed)
    for i, changes in enumerate(PERTURBATIONS):
        for name, value in changes.items():
            X[i, COL[name]] = value
    return X, [set(changes) for changes in PERTURBATIONS]


def real_addresses(n: int) -> list[str]:
    """Real base58 TRON addresses (OFAC SDN list) so subjects look like the stream's."""
    return [line.strip() for line in OFAC.read_text().splitlines() if line.strip()][:n]


def make_update(address: str, values: np.ndarray, ts: int, tx_id: str,
                source: str = "block") -> AddressUpdate:
    t = Transfer(id=f"{tx_id}:0", kind=Kind.TRX, tx_id=tx_id, index=0, block_number=61132092 + ts // 3000,
                 ts=ts, from_address=address, to_address="", caller=address, token="TRX", symbol="TRX",
                 decimals=6, amount_raw=1_000_000, amount=1.0, amount_usd=0.12, success=True,
                 result="SUCCESS", contract_type="TransferContract", method="", extra="{}", source=source)
    f = AddressFeatures(address, ts, t.block_number, tuple(float(v) for v in values))
    return AddressUpdate(address=address, role="sender", counterparty="", transfer=t, features=f)
