"""Pending transactions: the pool endpoints and the websocket feed, before their block lands."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def _num(block: dict[str, Any]) -> int:
    return block["block_header"]["raw_data"]["number"]


async def _take(ws: Any, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            out.append(json.loads(await ws.recv()))
    return out


def test_pool_endpoints_show_next_block_before_it_lands(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain)
    head = devnet.set_head(_num(hex_chain[3]))
    api = devnet.http_url + "/wallet/"
    expected = [tx["txID"] for tx in hex_chain[4]["transactions"]]
    assert requests.get(api + "getpendingsize").json() == {"pendingSize": len(expected)}
    assert requests.post(api + "gettransactionlistfrompending", json={}).json() == {"txId": expected}
    tx = requests.post(api + "gettransactionfrompending", json={"value": expected[0], "visible": True}).json()
    assert tx["txID"] == expected[0] and tx["raw_data"]["contract"][0]["parameter"]["value"]["owner_address"][0] == "T"
    assert requests.post(api + "gettransactionbyid", json={"value": expected[0]}).json() == {}
    devnet.set_head(head + 1)
    assert requests.post(api + "gettransactionfrompending", json={"value": expected[0]}).json() == {}
    assert requests.post(api + "gettransactionbyid", json={"value": expected[0]}).json()["txID"] == expected[0]


def test_websocket_pushes_each_tx_before_its_block(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, speed=10, pending_lead=0.5)  # block every 0.3 s, announced 0.15 s early
    tx_block = {tx["txID"]: _num(b) for b in hex_chain for tx in b["transactions"]}

    async def run() -> list[tuple[dict[str, Any], int]]:
        got = []
        async with connect(devnet.ws_url) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello"
            async with asyncio.timeout(5):
                while len(got) < 3 * 20:
                    msg = json.loads(await ws.recv())
                    got.append((msg, devnet.head))  # head at arrival time
        return got

    got = asyncio.run(run())
    seqs = [m["seq"] for m, _ in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for msg, head_at_arrival in got:
        assert msg["type"] == "pending_transaction"
        assert head_at_arrival < tx_block[msg["transaction"]["txID"]]  # its block had not landed


def test_websocket_drop_and_reconnect_replays_pending(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain)
    devnet.set_head(_num(hex_chain[2]))  # paused: block 3's transactions are pending
    expected = [tx["txID"] for tx in hex_chain[3]["transactions"]]

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        async with connect(devnet.ws_url + "?visible=true") as ws:
            first = await _take(ws, 1 + len(expected))
            devnet.drop_websockets()
            try:
                async with asyncio.timeout(3):
                    await ws.recv()
                closed = False
            except ConnectionClosed:
                closed = True
        async with connect(devnet.ws_url) as ws:
            again = await _take(ws, 1 + len(expected))
        return first, again, closed

    first, again, closed = asyncio.run(run())
    assert closed
    assert first[0]["type"] == "hello" and first[0]["visible"] is True
    assert [m["transaction"]["txID"] for m in first[1:]] == expected
    assert first[1]["transaction"]["raw_data"]["contract"][0]["parameter"]["value"]["owner_address"][0] == "T"
    # the reconnecting client gets the same pending txs with the same seq: nothing lost, nothing renumbered
    assert [(m["seq"], m["transaction"]["txID"]) for m in again[1:]] == [
        (m["seq"], m["transaction"]["txID"]) for m in first[1:]]
    assert again[1]["transaction"]["raw_data"]["contract"][0]["parameter"]["value"]["owner_address"][:2] == "41"


def test_ghost_transaction_is_pending_but_never_lands(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain)
    devnet.set_head(_num(hex_chain[1]))

    async def run() -> tuple[str, list[dict[str, Any]]]:
        async with connect(devnet.ws_url) as ws:
            await _take(ws, 1 + len(hex_chain[2]["transactions"]))
            ghost = requests.post(devnet.http_url + "/devnet/ghost", json={}).json()["txID"]
            return ghost, await _take(ws, 1)

    ghost, pushed = asyncio.run(run())
    assert pushed[0]["transaction"]["txID"] == ghost
    api = devnet.http_url + "/wallet/"
    assert ghost in requests.get(api + "gettransactionlistfrompending").json()["txId"]
    assert requests.post(api + "gettransactionfrompending", json={"value": ghost}).json()["txID"] == ghost
    devnet.set_head(_num(hex_chain[-1]))
    for block in requests.post(api + "getblockbylimitnext", json={"startNum": _num(hex_chain[0]),
                                                                   "endNum": _num(hex_chain[-1]) + 1}).json()["block"]:
        assert ghost not in {tx["txID"] for tx in block["transactions"]}
    assert requests.post(api + "gettransactionbyid", json={"value": ghost}).json() == {}
    assert ghost in requests.get(api + "gettransactionlistfrompending").json()["txId"]  # until its ttl


def test_ghost_expires(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, serve_all=True, ghost_ttl_s=0.2)
    ghost = devnet.ghost()
    assert devnet.pool.ids() == [ghost]
    time.sleep(0.3)
    assert devnet.pool.ids() == []
