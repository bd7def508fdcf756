"""Pending sources against the devnet: websocket with a drop and reconnect, and polling."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import ConfigError
from pipeline.live.health import SourceHealth
from pipeline.sources.mempool import PendingTx, WebsocketPendingSource
from pipeline.sources.mempool_poll import PollingPendingSource
from tests.live.conftest import drive, first_number


def _txs(items: list[Any]) -> list[PendingTx]:
    return [i for i in items if isinstance(i, PendingTx)]


def _has(ids: set[str]):
    return lambda items: ids <= {p.tx["txID"] for p in _txs(items)}


def test_websocket_drop_and_reconnect_loses_nothing(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    devnet.set_head(first + 5)  # paused: block first+6's transactions sit in the pool
    pending = {t["txID"] for t in live_chain[6]["transactions"]}
    src = WebsocketPendingSource(devnet.ws_url, heartbeat_s=1.0, max_backoff_s=0.2, health_every_s=0)
    part = src.build_part("mempool", "mempool", None)
    try:
        items = drive(part, _has(pending))
        assert devnet.drop_websockets() == 1  # cut without a close frame
        ghost = devnet.ghost()  # announced while we are disconnected
        devnet.set_head(first + 6)  # the block lands; the next one's txs enter the pool
        nxt = {t["txID"] for t in live_chain[7]["transactions"]}
        items += drive(part, _has(nxt | {ghost}))
    finally:
        part.close()
    ids = [p.tx["txID"] for p in _txs(items)]
    assert len(ids) == len(set(ids))  # the feed's replay after reconnect is deduplicated
    assert pending | nxt | {ghost} <= set(ids)
    assert all(p.seen_at > 0 and p.seq > 0 and p.source == "mempool" for p in _txs(items))
    health = [i for i in items if isinstance(i, SourceHealth)]
    assert health[-1].reconnects_total >= 1 and health[-1].errors_total >= 1
    assert part.snapshot() == len(ids)


def test_websocket_reconnects_after_devnet_restart(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    devnet.set_head(first + 2)
    part = WebsocketPendingSource(devnet.ws_url, max_backoff_s=0.2).build_part("m", "m", None)
    try:
        drive(part, _has({t["txID"] for t in live_chain[3]["transactions"]}))
        devnet.restart(down_s=0.5)
        ghost = devnet.ghost()
        drive(part, _has({ghost}))
        assert part.health.reconnects >= 1 and part.health.connected
    finally:
        part.close()


def test_polling_the_pending_pool(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    devnet.set_head(first + 8)
    pending = {t["txID"] for t in live_chain[9]["transactions"]}
    part = PollingPendingSource(devnet.http_url, poll_s=0.05).build_part("m", "m", None)
    items = drive(part, _has(pending))
    devnet.fail_next(2, status=429, retry_after=0)
    ghost = devnet.ghost()
    items += drive(part, _has({ghost}))
    ids = [p.tx["txID"] for p in _txs(items)]
    assert len(ids) == len(set(ids)) and pending | {ghost} <= set(ids)
    assert part.health.errors >= 1


def test_bad_mempool_url() -> None:
    with pytest.raises(ConfigError, match="ws://"):
        WebsocketPendingSource("http://x")
