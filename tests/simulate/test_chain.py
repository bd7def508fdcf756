"""The simulated chain has the node's shape, decodes cleanly, and is reproducible by seed."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.operators.decode import decode_block
from pipeline.records import DeadLetter, Kind
from pipeline.simulate.chain import SimConfig, parse_rates
from pipeline.simulate.output import read_blocks
from pipeline.simulate.run import simulate
from pipeline.simulate.typologies import TYPOLOGIES
from pipeline.tron.address import hex_to_base58, validate_base58
from pipeline.tron.tokens import USDT, TokenRegistry
from tests.conftest import SHARED

HEX64 = re.compile(r"^[0-9a-f]{64}$")
FILES = ("blocks.jsonl.gz", "labels.csv", "labelled_txs.csv", "meta.json")
TOKENS = TokenRegistry.build()


def _digest(folder: Path) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in FILES}


def _decode(folder: Path) -> list:
    out = []
    for i, block in enumerate(read_blocks(folder / "blocks.jsonl.gz")):
        decoded = decode_block(block, "sim", str(i), TOKENS)
        assert not isinstance(decoded, DeadLetter), decoded
        assert decoded.dead_letters == [], decoded.dead_letters[:1]
        out.append(decoded)
    return out


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path, sim_hex: Path) -> None:
    again = tmp_path / "again"
    simulate(SimConfig(blocks=60, seed=11, n_users=5_000), again, progress=False)
    assert _digest(again) == _digest(sim_hex)
    other = tmp_path / "other"
    simulate(SimConfig(blocks=60, seed=12, n_users=5_000), other, progress=False)
    assert _digest(other)["blocks.jsonl.gz"] != _digest(sim_hex)["blocks.jsonl.gz"]


def test_blocks_have_the_node_shape_and_chain(sim_hex: Path) -> None:
    blocks = list(read_blocks(sim_hex / "blocks.jsonl.gz"))
    assert len(blocks) == 60
    seen_ids: set[str] = set()
    for prev, block in zip([None, *blocks], blocks):
        raw = block["block_header"]["raw_data"]
        assert set(raw) == {"number", "txTrieRoot", "witness_address", "parentHash", "version", "timestamp"}
        assert int(block["blockID"][:16], 16) == raw["number"]
        hex_to_base58(raw["witness_address"])
        if prev is not None:
            assert raw["parentHash"] == prev["blockID"]
            assert raw["timestamp"] - prev["block_header"]["raw_data"]["timestamp"] == 3000
            assert raw["number"] == prev["block_header"]["raw_data"]["number"] + 1
        assert 240 <= len(block["transactions"]) <= 340
        for tx in block["transactions"]:
            assert set(tx) == {"ret", "signature", "txID", "raw_data", "raw_data_hex"}
            assert HEX64.match(tx["txID"]) and tx["txID"] not in seen_ids
            seen_ids.add(tx["txID"])
            contract = tx["raw_data"]["contract"][0]
            assert contract["parameter"]["type_url"].endswith(contract["type"])
            assert ("fee_limit" in tx["raw_data"]) == (contract["type"] == "TriggerSmartContract")
            assert tx["raw_data_hex"].startswith("0a02" + tx["raw_data"]["ref_block_bytes"])
            for key, value in contract["parameter"]["value"].items():
                if key.endswith("address"):
                    hex_to_base58(value)  # raises on a malformed address


def test_visible_form_has_valid_base58_everywhere(sim_visible: Path) -> None:
    n = 0
    for block in read_blocks(sim_visible / "blocks.jsonl.gz"):
        validate_base58(block["block_header"]["raw_data"]["witness_address"])
        for tx in block["transactions"]:
            for key, value in tx["raw_data"]["contract"][0]["parameter"]["value"].items():
                if key.endswith("address"):
                    validate_base58(value)
                    n += 1
    assert n > 10_000
    assert sum(1 for _ in _decode(sim_visible)) == 30


def test_contract_mix_and_failures_match_mainnet_calibration(sim_hex: Path) -> None:
    transfers = [t for d in _decode(sim_hex) for t in d.transfers]
    total = len({t.tx_id for t in transfers})
    by_type = Counter(t.contract_type for t in transfers)
    share = {k: v / total for k, v in by_type.items()}
    assert 0.40 <= share["TriggerSmartContract"] <= 0.55
    assert 0.22 <= share["TransferContract"] <= 0.38
    assert 0.03 <= share["TransferAssetContract"] <= 0.10
    assert 0.07 <= share["DelegateResourceContract"] + share["UnDelegateResourceContract"] <= 0.18
    usdt = sum(1 for t in transfers if t.kind == Kind.TRC20_TRANSFER and t.token == USDT) / total
    assert 0.38 <= usdt <= 0.50
    failed = sum(1 for t in transfers if not t.success) / total
    assert 0.01 <= failed <= 0.03
    assert {t.result for t in transfers if not t.success} <= {"REVERT", "OUT_OF_ENERGY"}
    amounts = sorted(t.amount_raw for t in transfers if t.kind == Kind.TRC20_TRANSFER and t.token == USDT)
    assert amounts[len(amounts) * 99 // 100] > 20 * amounts[len(amounts) // 2]  # heavy tail
    meta = json.loads((sim_hex / "meta.json").read_text())
    assert meta["tx_count"] == total and meta["blocks"] == 60


def test_every_typology_is_labelled_with_its_transactions(sim_hex: Path) -> None:
    with open(sim_hex / "labels.csv") as fh:
        labels = list(csv.DictReader(fh))
    with open(sim_hex / "labelled_txs.csv") as fh:
        tx_labels = list(csv.DictReader(fh))
    assert {r["typology"] for r in labels} == set(TYPOLOGIES)
    assert {r["typology"] for r in tx_labels} == set(TYPOLOGIES)
    for r in labels:
        validate_base58(r["address"])
        assert r["episode_id"].startswith(r["typology"] + "-") and r["role"]
    tx_ids = {t.tx_id for d in _decode(sim_hex) for t in d.transfers}
    assert {r["tx_id"] for r in tx_labels} <= tx_ids


def test_typology_semantics(sim_hex: Path) -> None:
    transfers = {t.tx_id: t for d in _decode(sim_hex) for t in d.transfers}
    with open(sim_hex / "labelled_txs.csv") as fh:
        by_typology: dict[str, list] = {}
        for r in csv.DictReader(fh):
            by_typology.setdefault(r["typology"], []).append(transfers[r["tx_id"]])
    assert any(t.kind == Kind.TRC20_APPROVE and t.amount_raw == 2**256 - 1 for t in by_typology["approval_phishing"])
    assert any(t.kind == Kind.TRC20_TRANSFER_FROM for t in by_typology["approval_phishing"])
    assert any(t.kind == Kind.PERMISSION_UPDATE for t in by_typology["permission_takeover"])
    ofac = set((SHARED / "lists" / "ofac_sdn_trx.txt").read_text().split())
    assert any(t.from_address in ofac for t in by_typology["sanctioned_exposure"])
    poison = by_typology["address_poisoning"]
    assert any(t.kind == Kind.TRC20_TRANSFER_FROM and t.amount_raw == 0 for t in poison)
    cyc = [t for t in by_typology["cycle"]]
    senders, receivers = {t.from_address for t in cyc}, {t.to_address for t in cyc}
    assert senders == receivers  # every member pays and is paid: the funds come back


def test_poisoning_lookalike_shares_ends_with_a_real_counterparty(sim_hex: Path) -> None:
    transfers = [t for d in _decode(sim_hex) for t in d.transfers]
    with open(sim_hex / "labels.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["typology"] == "address_poisoning"]
    episodes: dict[str, dict[str, str]] = {}
    for r in rows:
        episodes.setdefault(r["episode_id"], {})[r["role"]] = r["address"]
    assert episodes
    for roles in episodes.values():
        victim, look = roles["victim"], roles["lookalike"]
        paid = {t.to_address for t in transfers if t.from_address == victim and t.kind == Kind.TRC20_TRANSFER}
        assert any(p != look and p[:4] == look[:4] and p[-4:] == look[-4:] for p in paid)


def test_default_hour_labels_at_most_one_percent(tmp_path: Path) -> None:
    meta = simulate(SimConfig(blocks=300, seed=3), tmp_path, progress=False)
    assert 0 < meta["labelled_address_share"] <= 0.01
    assert set(meta["typology_counts"]) == set(TYPOLOGIES)


def test_parse_rates() -> None:
    rates = parse_rates("all=2,fan_in=6,cycle=0")
    assert rates["fan_in"] == 6 and rates["cycle"] == 0 and rates["stack"] == 2
    for bad in ("nope=1", "fan_in", "fan_in=x"):
        with pytest.raises(ConfigError):
            parse_rates(bad)
    with pytest.raises(ConfigError):
        SimConfig(blocks=0)
