"""tronpy, unchanged, against the devnet over real sockets on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import requests
from tronpy import Tron
from tronpy.exceptions import BlockNotFound
from tronpy.providers import HTTPProvider

from tests.devnet.conftest import USDT_TX


def test_latest_block_and_block_by_number(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, initial_blocks=5, speed=0.01)  # head frozen by slow speed
    tron = Tron(HTTPProvider(devnet.http_url))
    first = hex_chain[0]["block_header"]["raw_data"]["number"]
    latest = tron.get_latest_block()
    assert latest["block_header"]["raw_data"]["number"] == first + 4
    assert tron.get_latest_block_number() == first + 4
    assert tron.get_latest_block_id() == hex_chain[4]["blockID"]
    assert tron.get_latest_solid_block_number() == first  # solid lag 19 clamps to the first block
    # get_block defaults to visible=True: base58 addresses converted from the hex input
    owner = latest["transactions"][0]["raw_data"]["contract"][0]["parameter"]["value"]["owner_address"]
    assert owner.startswith("T")
    # visible=False is the stored hex block, byte for byte
    assert tron.get_block(first + 2, visible=False) == hex_chain[2]
    with pytest.raises(BlockNotFound):
        tron.get_block(first + 5)  # exists in the input, not produced yet
    with pytest.raises(BlockNotFound):
        tron.get_block(first - 1)
    by_id = tron.get_block(hex_chain[3]["blockID"], visible=False)
    assert by_id["blockID"] == hex_chain[3]["blockID"]


def test_block_range_and_missing_shapes(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, serve_all=True)
    first = hex_chain[0]["block_header"]["raw_data"]["number"]
    url = devnet.http_url + "/wallet/getblockbylimitnext"
    got = requests.post(url, json={"startNum": first + 2, "endNum": first + 6}).json()
    assert [b["block_header"]["raw_data"]["number"] for b in got["block"]] == list(range(first + 2, first + 6))
    # a range past the head is cut at the head; one beyond the chain is {} ; > 100 blocks is {}
    tail = requests.get(url, params={"startNum": first + 10, "endNum": first + 20}).json()
    assert len(tail["block"]) == 2
    assert requests.post(url, json={"startNum": first + 50, "endNum": first + 60}).json() == {}
    assert requests.post(url, json={"startNum": first, "endNum": first + 101}).json() == {}
    missing = requests.post(devnet.http_url + "/wallet/getblockbynum", json={"num": first + 999})
    assert missing.status_code == 200 and missing.json() == {}
    bad = requests.post(devnet.http_url + "/wallet/getblockbynum", json={"num": "x"}).json()
    assert "Error" in bad
    assert requests.get(devnet.http_url + "/wallet/nosuchthing").status_code == 404
    latest = requests.get(devnet.http_url + "/wallet/getblockbylatestnum", params={"num": 3}).json()
    assert [b["block_header"]["raw_data"]["number"] for b in latest["block"]] == [first + 9, first + 10, first + 11]


def test_transaction_info_matches_real_receipt(devnet_factory: Any, visible_chain: list[dict],
                                               shared_data: Any) -> None:
    devnet = devnet_factory(visible_chain, serve_all=True)
    tron = Tron(HTTPProvider(devnet.http_url))
    real = orjson.loads((shared_data / "tron" / "mainnet_txinfo_661f1df8_visible.json").read_bytes())
    info = tron.get_transaction_info(USDT_TX)
    assert info["blockNumber"] == real["blockNumber"]
    assert info["contract_address"] == real["contract_address"]
    assert info["log"] == real["log"]  # the synthesized Transfer event is the real one
    assert info["receipt"]["result"] == "SUCCESS" and info["fee"] > 0
    assert tron.get_transaction(USDT_TX)["txID"] == USDT_TX
    # the whole block's receipts, hex form: log address without the 41 prefix, as the node prints it
    number = visible_chain[0]["block_header"]["raw_data"]["number"]
    infos = requests.post(devnet.http_url + "/wallet/gettransactioninfobyblocknum", json={"num": number}).json()
    assert len(infos) == len(visible_chain[0]["transactions"])
    usdt = next(i for i in infos if i["id"] == USDT_TX)
    assert usdt["log"][0]["address"] == "a614f803b6fd780986a42c78ec9c7f77e6ded13c"
    assert usdt["contract_address"] == "41a614f803b6fd780986a42c78ec9c7f77e6ded13c"
    assert requests.post(devnet.http_url + "/wallet/gettransactioninfobyblocknum",
                         json={"num": number + 100}).json() == []


def test_nodeinfo_and_solidity_view(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, serve_all=True, solid_lag=3)
    tron = Tron(HTTPProvider(devnet.http_url))
    last = hex_chain[-1]["block_header"]["raw_data"]["number"]
    assert tron.get_node_info()["block"] == f"Num:{last},ID:{hex_chain[-1]['blockID']}"
    assert tron.get_latest_solid_block_number() == last - 3
    assert tron.get_latest_solid_block()["block_header"]["raw_data"]["number"] == last - 3
    solid_missing = requests.post(devnet.http_url + "/walletsolidity/getblockbynum", json={"num": last}).json()
    assert solid_missing == {}
