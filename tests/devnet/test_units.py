"""Pure parts of the devnet: form conversion, receipts, clock, replay reading."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.devnet.chain import Chain
from pipeline.devnet.clock import HeadClock
from pipeline.devnet.receipts import APPROVAL_TOPIC, TRANSFER_TOPIC, trc20_log
from pipeline.devnet.visible import convert_block, is_visible_block
from pipeline.errors import InputError
from pipeline.tron.address import is_valid
from tests.devnet.conftest import chain_of


def test_hex_visible_round_trip_on_real_block(hex_block: dict[str, Any]) -> None:
    visible = convert_block(hex_block, True)
    assert is_visible_block(visible) and not is_visible_block(hex_block)
    assert convert_block(visible, False) == hex_block
    kinds = {}
    for tx in visible["transactions"]:
        contract = tx["raw_data"]["contract"][0]
        kinds.setdefault(contract["type"], contract["parameter"]["value"])
    assert all(is_valid(v["owner_address"]) and v["owner_address"][0] == "T" for v in kinds.values())
    assert kinds["TransferAssetContract"]["asset_name"].isdigit()  # TRC10 id as text, not hex


def test_visible_block_converts_to_hex(visible_block: dict[str, Any]) -> None:
    hexed = convert_block(visible_block, False)
    tx = hexed["transactions"][0]["raw_data"]["contract"][0]["parameter"]["value"]
    assert tx["owner_address"].startswith("41") and len(tx["owner_address"]) == 42
    assert convert_block(hexed, True) == visible_block


def test_trc20_logs_for_transfer_from_and_approve() -> None:
    owner, token = "41" + "11" * 20, "41" + "a6" * 20
    a, b = "0" * 24 + "22" * 20, "0" * 24 + "33" * 20
    value = f"{12345:064x}"
    log = trc20_log(owner, token, "23b872dd" + a + b + value)
    assert log == {"address": "a6" * 20, "topics": [TRANSFER_TOPIC, a, b], "data": value}
    approve = trc20_log(owner, token, "095ea7b3" + a + "f" * 64)
    assert approve["topics"] == [APPROVAL_TOPIC, "0" * 24 + "11" * 20, a]
    assert trc20_log(owner, token, "deadbeef" + a) is None


def test_clock_advances_pauses_and_resumes() -> None:
    now = [100.0]
    clock = HeadClock(10, 3.0, initial_index=2, now=lambda: now[0])
    assert clock.head_index() == 2
    now[0] += 2.9
    assert clock.head_index() == 2
    now[0] += 0.2
    assert clock.head_index() == 3
    assert clock.time_of(5) == pytest.approx(109.0)
    clock.pause()
    now[0] += 30
    assert clock.head_index() == 3
    clock.resume()
    now[0] += 3.0
    assert clock.head_index() == 4
    now[0] += 1000
    assert clock.head_index() == 9  # never past the chain


def test_replay_input_gzip_dir_and_limitnext(tmp_path: Path, hex_block: dict[str, Any]) -> None:
    blocks = chain_of(hex_block, 4, txs_per_block=3)
    with gzip.open(tmp_path / "blocks.jsonl.gz", "wb") as fh:
        fh.write(b"\n".join(orjson.dumps(b) for b in blocks[:3]) + b"\n")
    (tmp_path / "more.json").write_bytes(orjson.dumps({"block": blocks[2:]}))  # block 2 twice: deduplicated
    (tmp_path / "labels.csv").write_text("address,typology,episode_id,role\n")
    chain = Chain.from_path(tmp_path)
    assert len(chain) == 4 and chain.first_number == blocks[0]["block_header"]["raw_data"]["number"]
    assert chain.block_id(chain.last_number) == blocks[-1]["blockID"]
    assert chain.height_of_tx(blocks[3]["transactions"][0]["txID"]) == chain.last_number
    with pytest.raises(InputError, match="not found"):
        Chain.from_path(tmp_path / "nope.jsonl")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="bad.jsonl:1"):
        Chain.from_path(tmp_path / "bad.jsonl")


def test_disjoint_real_blocks_are_rechained(hex_block: dict[str, Any], visible_block: dict[str, Any]) -> None:
    chain = Chain.from_dicts([hex_block, visible_block])
    assert len(chain) == 2 and chain.last_number == chain.first_number + 1
    assert chain.parent_hash(chain.last_number) == chain.block_id(chain.first_number)
    second = chain.block(chain.last_number, False)
    assert second["transactions"][0]["txID"] == hex_block["transactions"][0]["txID"]
