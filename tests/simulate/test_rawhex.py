"""raw_data_hex from the simulator's encoder must equal the node's, byte for byte, on real blocks."""

from __future__ import annotations

import json

from pipeline.simulate import rawhex
from pipeline.tron.address import base58_to_hex
from tests.conftest import SHARED

DATA = SHARED / "tron"


def _h(value: str) -> str:
    return value if value.startswith("41") and len(value) == 42 else base58_to_hex(value)


def _value_hex(ctype: str, v: dict, visible: bool) -> str | None:
    if ctype == "TransferContract":
        return rawhex.transfer_value(_h(v["owner_address"]), _h(v["to_address"]), v.get("amount", 0))
    if ctype == "TriggerSmartContract":
        return rawhex.trigger_value(_h(v["owner_address"]), _h(v["contract_address"]), v["data"],
                                    v.get("call_value"))
    if ctype == "TransferAssetContract":
        name = v["asset_name"].encode().hex() if visible else v["asset_name"]
        return rawhex.asset_value(name, _h(v["owner_address"]), _h(v["to_address"]), v["amount"])
    if ctype == "DelegateResourceContract":
        return rawhex.delegate_value(_h(v["owner_address"]), v.get("resource", "BANDWIDTH"), v["balance"],
                                     _h(v["receiver_address"]), v.get("lock", False), v.get("lock_period", 0))
    if ctype == "UnDelegateResourceContract":
        return rawhex.undelegate_value(_h(v["owner_address"]), v.get("resource", "BANDWIDTH"), v["balance"],
                                       _h(v["receiver_address"]))
    if ctype == "FreezeBalanceV2Contract":
        return rawhex.freeze_v2_value(_h(v["owner_address"]), v["frozen_balance"], v.get("resource", "BANDWIDTH"))
    if ctype == "AccountCreateContract":
        return rawhex.account_create_value(_h(v["owner_address"]), _h(v["account_address"]))
    return None


def test_raw_hex_matches_every_real_transaction() -> None:
    checked = 0
    for name, visible in (("mainnet_block_61132092_hex.json", False), ("mainnet_block_60836289_visible.json", True)):
        block = json.loads((DATA / name).read_text())
        for tx in block["transactions"]:
            raw = tx["raw_data"]
            c = raw["contract"][0]
            value_hex = _value_hex(c["type"], c["parameter"]["value"], visible)
            assert value_hex is not None, c["type"]
            got = rawhex.raw_hex(c["type"], value_hex, raw["ref_block_bytes"], raw["ref_block_hash"],
                                 raw["expiration"], raw.get("timestamp"), raw.get("fee_limit"),
                                 c.get("Permission_id"))
            if got != tx["raw_data_hex"] and c["type"] == "TriggerSmartContract":
                # some wallets encode call_value=0, which the node's JSON then omits
                v = dict(c["parameter"]["value"], call_value=0)
                got = rawhex.raw_hex(c["type"], _value_hex(c["type"], v, visible) or "", raw["ref_block_bytes"],
                                     raw["ref_block_hash"], raw["expiration"], raw.get("timestamp"),
                                     raw.get("fee_limit"), c.get("Permission_id"))
            assert got == tx["raw_data_hex"], tx["txID"]
            checked += 1
    assert checked == 281 + 170


def test_varint_known_values() -> None:
    assert rawhex.varint(0) == "00"
    assert rawhex.varint(300) == "ac02"
    assert rawhex.varint(1714038912000) == "80e8b8a5f131"


def test_contract_frame_equals_generic_encoding() -> None:
    value = rawhex.transfer_value("41" + "11" * 20, "41" + "22" * 20, 10**12)
    for pid in (None, 3):
        head, tail = rawhex.contract_frame("TransferContract", len(value) // 2, pid)
        generic = rawhex.raw_hex("TransferContract", value, "abcd", "00" * 8, 1, None, None, pid)
        assert "0a02abcd2208" + "00" * 8 + "4001" + head + value + tail == generic
