"""Golden tests of the decoder on the real mainnet blocks in ../shared/data/tron."""

import copy
from collections import Counter

import pytest

from pipeline.operators.decode import decode_block, decode_transaction
from pipeline.records import DeadLetter, DecodedBlock, Kind
from pipeline.tron.address import hex_to_base58
from pipeline.tron.tokens import TokenRegistry

TOKENS = TokenRegistry.build()

# Contract-type counts as listed in ../shared/data/SOURCES.md
HEX_TYPES = {"TransferContract": 114, "TriggerSmartContract": 112, "UnDelegateResourceContract": 22,
             "DelegateResourceContract": 20, "TransferAssetContract": 11, "AccountCreateContract": 2}
VISIBLE_TYPES = {"TriggerSmartContract": 82, "TransferContract": 39, "TransferAssetContract": 23,
                 "UnDelegateResourceContract": 18, "DelegateResourceContract": 6, "FreezeBalanceV2Contract": 2}


def decode(payload):
    out = decode_block(payload, "test", "fixture", TOKENS)
    assert isinstance(out, DecodedBlock)
    return out


@pytest.mark.parametrize("fixture,types,count", [("hex_block", HEX_TYPES, 281), ("visible_block", VISIBLE_TYPES, 170)])
def test_every_transaction_decodes_and_type_counts_match_sources(request, fixture, types, count):
    out = decode(request.getfixturevalue(fixture))
    assert out.dead_letters == []
    assert out.block.tx_count == count == len(out.transfers)
    assert dict(Counter(t.contract_type for t in out.transfers)) == types
    assert len({t.id for t in out.transfers}) == count
    assert all(t.id == f"{t.tx_id}:{t.index}" for t in out.transfers)
    assert all(t.ts == out.block.ts and t.block_number == out.block.number for t in out.transfers)


def test_every_trc20_call_matches_the_independent_expectation(hex_block, visible_block, expected_trc20):
    decoded = {t.tx_id: t for b in (hex_block, visible_block) for t in decode(b).transfers
               if t.kind in (Kind.TRC20_TRANSFER, Kind.TRC20_TRANSFER_FROM)}
    assert len(decoded) == len(expected_trc20) == 194
    # SOURCES.md counts 58 such words; the file itself marks 59. Either way the decoder must cope.
    assert sum(e["addr_word_has_41_prefix"] for e in expected_trc20) >= 58
    for e in expected_trc20:
        t = decoded[e["txid"]]
        assert (t.method, t.from_address, t.to_address, t.amount_raw, t.token, t.block_number, t.ts,
                t.result) == (e["method"], e["from"], e["to"], e["value"], e["token"], e["block"],
                              e["block_ts"], e["contractRet"]), e["txid"]
        if e["method"] == "transferFrom":
            assert t.kind == Kind.TRC20_TRANSFER_FROM and t.caller  # the signer is the spender


def test_usdt_amounts_are_exact_and_valued_in_usd(hex_block):
    usdt = [t for t in decode(hex_block).transfers if t.symbol == "USDT"]
    assert usdt and all(t.decimals == 6 for t in usdt)
    for t in usdt:
        assert t.amount == t.amount_raw / 1_000_000
        assert t.amount_usd == t.amount


def _to_visible(block: dict) -> dict:
    """The same block as the node serves it with visible=true: base58 addresses, plain asset ids."""
    out = copy.deepcopy(block)
    raw = out["block_header"]["raw_data"]
    raw["witness_address"] = hex_to_base58(raw["witness_address"])
    for tx in out["transactions"]:
        for c in tx["raw_data"]["contract"]:
            v = c["parameter"]["value"]
            for key, val in list(v.items()):
                if key.endswith("_address") and isinstance(val, str) and val.startswith("41"):
                    v[key] = hex_to_base58(val)
            if "asset_name" in v:
                v["asset_name"] = bytes.fromhex(v["asset_name"]).decode()
    return out


def test_hex_and_visible_forms_of_the_same_block_decode_to_the_same_records(hex_block):
    from_hex = decode(hex_block)
    from_visible = decode(_to_visible(hex_block))
    assert from_hex.block == from_visible.block
    assert from_hex.transfers == from_visible.transfers


def test_transaction_by_id_fixture_decodes_like_its_block(shared_data, visible_block):
    import orjson

    tx = orjson.loads((shared_data / "tron" / "mainnet_tx_661f1df8_visible.json").read_bytes())
    in_block = {t.tx_id: t for t in decode(visible_block).transfers}
    alone = decode_transaction(tx, TOKENS, in_block[tx["txID"]].block_number, in_block[tx["txID"]].ts)
    assert alone == [in_block[tx["txID"]]]


def test_failed_transactions_are_kept_and_marked(hex_block):
    block = copy.deepcopy(hex_block)
    block["transactions"][5]["ret"][0]["contractRet"] = "REVERT"
    out = decode(block)
    failed = [t for t in out.transfers if not t.success]
    assert len(out.transfers) == 281 and len(failed) == 1 and failed[0].result == "REVERT"


def test_unknown_contract_types_are_kept_as_generic_events(hex_block):
    block = copy.deepcopy(hex_block)
    c = block["transactions"][0]["raw_data"]["contract"][0]
    c["type"] = "VoteWitnessContract"
    c["parameter"]["value"] = {"owner_address": c["parameter"]["value"]["owner_address"], "votes": []}
    out = decode(block)
    assert out.transfers[0].kind == Kind.OTHER and out.transfers[0].contract_type == "VoteWitnessContract"
    assert len(out.transfers) == 281


def test_a_bad_transaction_becomes_a_dead_letter_naming_the_field_and_the_rest_is_kept(hex_block):
    block = copy.deepcopy(hex_block)
    block["transactions"][7]["raw_data"]["contract"][0]["parameter"]["value"]["owner_address"] = "41deadbeef"
    out = decode(block)
    assert len(out.transfers) == 280
    [dead] = out.dead_letters
    assert "transactions[7].raw_data.contract[0].parameter.value.owner_address" in dead.reason
    assert dead.position == "fixture#tx7" and "41deadbeef" in dead.raw


def test_a_lock_period_beyond_int64_is_a_dead_letter_not_a_crash(hex_block):
    # found by the property test: the value was copied into the JSON 'extra' column unchecked
    block = copy.deepcopy(hex_block)
    j = next(j for j, tx in enumerate(block["transactions"])
             if tx["raw_data"]["contract"][0]["type"] == "DelegateResourceContract")
    value = block["transactions"][j]["raw_data"]["contract"][0]["parameter"]["value"]
    value["lock"], value["lock_period"] = True, 2**64
    out = decode(block)
    assert len(out.transfers) == 280
    [dead] = out.dead_letters
    assert f"transactions[{j}].raw_data.contract[0].parameter.value.lock_period" in dead.reason
    assert "exceeds int64" in dead.reason


@pytest.mark.parametrize("mutate,field", [
    (lambda b: b.pop("block_header"), "block_header.raw_data"),
    (lambda b: b["block_header"]["raw_data"].update(timestamp="yesterday"), "timestamp"),
    (lambda b: b.update(blockID=7), "blockID"),
    (lambda b: b.update(transactions={"not": "a list"}), "transactions"),
])
def test_an_unusable_block_is_one_dead_letter_with_the_reason(hex_block, mutate, field):
    block = copy.deepcopy(hex_block)
    mutate(block)
    out = decode_block(block, "test", "f:1", TOKENS)
    assert isinstance(out, DeadLetter) and field in out.reason and out.position == "f:1"


def test_permission_update_names_the_foreign_key(visible_block):
    owner, foreign = "TPPcToZG9CbSq2NUxBUPfcNmqD6sXVWuQD", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    tx = {"txID": "ab" * 32, "ret": [{"contractRet": "SUCCESS"}], "raw_data": {"contract": [{
        "type": "AccountPermissionUpdateContract", "parameter": {"value": {
            "owner_address": owner,
            "owner": {"type": "Owner", "permission_name": "owner", "threshold": 1,
                      "keys": [{"address": foreign, "weight": 1}]},
            "actives": [{"type": "Active", "threshold": 1, "keys": [{"address": foreign, "weight": 1}]}]}}}]}}
    [rec] = decode_transaction(tx, TOKENS, 1, 1000)
    assert rec.kind == Kind.PERMISSION_UPDATE and rec.from_address == owner and rec.to_address == foreign
    assert '"foreign_keys":1' in rec.extra


def test_unlimited_approval_is_decoded_exactly():
    owner, spender = "TPPcToZG9CbSq2NUxBUPfcNmqD6sXVWuQD", "TXH4gi8prE1mCrnVkMA8JJRkZAJY8xvoDu"
    from pipeline.tron.address import base58_to_hex

    data = "095ea7b3" + base58_to_hex(spender)[2:].rjust(64, "0") + "f" * 64
    tx = {"txID": "cd" * 32, "ret": [{"contractRet": "SUCCESS"}], "raw_data": {"contract": [{
        "type": "TriggerSmartContract", "parameter": {"value": {
            "owner_address": owner, "contract_address": "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "data": data}}}]}}
    [rec] = decode_transaction(tx, TOKENS, 1, 1000)
    assert (rec.kind, rec.from_address, rec.to_address, rec.amount_raw) == (
        Kind.TRC20_APPROVE, owner, spender, 2**256 - 1)
