"""Devnets over real sockets for live-mode tests, and helpers that drive source partitions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import pytest

from pipeline.devnet import Chain, Devnet, DevnetConfig
from tests.devnet.conftest import chain_of


@pytest.fixture(scope="session")
def live_chain(hex_block: dict[str, Any]) -> list[dict[str, Any]]:
    """40 linked blocks of 8 real transactions each (unique txIDs)."""
    return chain_of(hex_block, 40, txs_per_block=8)


@pytest.fixture
def devnet(live_chain: list[dict[str, Any]]) -> Iterator[Devnet]:
    """A devnet whose head is moved by hand (paused), so tests do not depend on timing."""
    net = Devnet(Chain.from_dicts(live_chain), DevnetConfig(initial_blocks=1, speed=1.0)).start()
    net.pause()
    yield net
    net.stop()


def first_number(chain: list[dict[str, Any]]) -> int:
    return chain[0]["block_header"]["raw_data"]["number"]


def drive(part: Any, until: Callable[[list[Any]], bool], timeout_s: float = 15.0) -> list[Any]:
    """Call ``next_batch`` as Bytewax would (honouring ``next_awake``) until ``until(items)``."""
    items: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while not until(items):
        assert time.monotonic() < deadline, f"timed out; got {len(items)} items: {items[-3:]!r:.500}"
        awake = part.next_awake()
        if awake is not None:
            from datetime import datetime

            delay = (awake - datetime.now(UTC)).total_seconds()
            if delay > 0:
                time.sleep(min(delay, 0.05))
                continue
        try:
            items.extend(part.next_batch())
        except StopIteration:
            break
    return items
