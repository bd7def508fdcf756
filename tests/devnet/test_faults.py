"""Injected faults behave as a live-mode client will meet them: over real sockets."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from tronpy import Tron
from tronpy.providers import HTTPProvider


def _num(block: dict[str, Any]) -> int:
    return block["block_header"]["raw_data"]["number"]


def test_429_with_retry_after_then_recovery(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, serve_all=True)
    devnet.fail_next(2, status=429, retry_after=2)
    url = devnet.http_url + "/wallet/getnowblock"
    first, second, third = (requests.post(url, json={}) for _ in range(3))
    assert first.status_code == second.status_code == 429
    assert first.headers["Retry-After"] == "2" and "Error" in first.json()
    assert third.status_code == 200 and _num(third.json()) == _num(hex_chain[-1])
    # tronpy surfaces it as an HTTP error the live source must retry
    devnet.fail_next(1, status=503)
    with pytest.raises(requests.HTTPError):
        Tron(HTTPProvider(devnet.http_url)).get_latest_block()
    assert Tron(HTTPProvider(devnet.http_url)).get_latest_block_number() == _num(hex_chain[-1])


def test_control_endpoint_and_slow_answers(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, serve_all=True)
    r = requests.post(devnet.http_url + "/devnet/fail", json={"count": 1, "status": 503})
    assert r.json() == {"errors": 1, "delays": 0}
    assert requests.get(devnet.http_url + "/devnet/status").status_code == 200  # control is never faulted
    assert requests.get(devnet.http_url + "/wallet/getnodeinfo").status_code == 503
    requests.post(devnet.http_url + "/devnet/slow", json={"count": 1, "seconds": 0.4})
    t0 = time.monotonic()
    assert requests.get(devnet.http_url + "/wallet/getnodeinfo").status_code == 200
    assert time.monotonic() - t0 >= 0.4
    assert requests.post(devnet.http_url + "/devnet/nosuch", json={}).status_code == 404


def test_reorg_changes_hashes_and_successor_parent(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, serve_all=True)
    first = _num(hex_chain[0])
    head = devnet.set_head(first + 6)
    tron = Tron(HTTPProvider(devnet.http_url))
    before = {n: tron.get_block(n, visible=False) for n in (head - 2, head - 1, head)}
    dropped_tx = before[head]["transactions"][-1]["txID"]
    forked = requests.post(devnet.http_url + "/devnet/reorg", json={"depth": 2}).json()["forked"]
    assert forked == [head - 1, head]
    after = {n: tron.get_block(n, visible=False) for n in (head - 2, head - 1, head)}
    assert after[head - 2]["blockID"] == before[head - 2]["blockID"]  # common ancestor kept
    for n in (head - 1, head):
        assert after[n]["blockID"] != before[n]["blockID"]
        assert after[n]["blockID"][:16] == f"{n:016x}"  # TRON ids start with the height
        assert len(after[n]["transactions"]) == len(before[n]["transactions"]) - 1
    assert after[head - 1]["block_header"]["raw_data"]["parentHash"] == before[head - 2]["blockID"]
    assert after[head]["block_header"]["raw_data"]["parentHash"] == after[head - 1]["blockID"]
    assert tron.get_latest_block_id() == after[head]["blockID"]
    devnet.set_head(head + 1)
    successor = tron.get_block(head + 1)
    assert successor["block_header"]["raw_data"]["parentHash"] == after[head]["blockID"]
    # the transaction left out of the fork is gone from the chain
    r = requests.post(devnet.http_url + "/wallet/gettransactionbyid", json={"value": dropped_tx})
    assert r.json() == {}


def test_node_restart_keeps_port_and_chain_moves_on(devnet_factory: Any, hex_chain: list[dict]) -> None:
    devnet = devnet_factory(hex_chain, initial_blocks=3, speed=10)  # a block every 0.3 s
    port, tron = devnet.port, Tron(HTTPProvider(devnet.http_url, timeout=2))
    head_before = tron.get_latest_block_number()
    requests.post(devnet.http_url + "/devnet/restart", json={"down_s": 0.7})
    time.sleep(0.2)
    with pytest.raises(requests.ConnectionError):
        requests.get(devnet.http_url + "/wallet/getnowblock", timeout=1)
    deadline = time.monotonic() + 5
    while True:
        try:
            head_after = tron.get_latest_block_number()
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "devnet did not come back"
            time.sleep(0.05)
    assert devnet.port == port
    assert head_after > head_before  # blocks kept coming while the node was down
