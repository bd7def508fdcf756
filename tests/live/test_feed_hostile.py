"""Finding 3: a hostile pending feed cannot stop or stall the websocket source (real server).

One message with ``"seq": "x"`` used to raise in the reader thread: the thread died, none of the
next 48 transactions arrived, and health still said connected.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pipeline.errors import PipelineError
from pipeline.live.health import SourceHealth
from pipeline.records import DeadLetter
from pipeline.sources.mempool import PendingTx, WebsocketPendingSource
from tests.live.conftest import drive
from tests.live.wsfeed import Feed, pending


def _txs(live_chain: list[dict], n: int) -> list[dict[str, Any]]:
    return [tx for block in live_chain[1:] for tx in block["transactions"]][:n]


def _of(items: list[Any], kind: type) -> list[Any]:
    return [i for i in items if isinstance(i, kind)]


def _source(url: str, **kw: Any) -> WebsocketPendingSource:
    kw.setdefault("max_backoff_s", 0.2)
    kw.setdefault("health_every_s", 0)
    return WebsocketPendingSource(url, **kw)


def test_a_bad_seq_is_a_dead_letter_and_the_next_48_transactions_arrive(live_chain: list[dict]) -> None:
    good = _txs(live_chain, 48)
    frames = [pending(good[0], "x")] + [pending(tx, i + 1) for i, tx in enumerate(good)]
    with Feed([frames]) as feed:
        part = _source(feed.url).build_part("m", "m", None)
        try:
            items = drive(part, lambda it: len(_of(it, PendingTx)) >= 48)
            assert part._thread.is_alive() and part.health.connected
        finally:
            part.close()
    assert [p.tx["txID"] for p in _of(items, PendingTx)] == [tx["txID"] for tx in good]
    [letter] = _of(items, DeadLetter)
    assert letter.reason.startswith("pending: 'seq' must be an integer") and '"seq":"x"' in letter.raw
    assert _of(items, SourceHealth)[-1].errors_total == 1


def test_malformed_messages_of_every_kind_are_dead_letters_and_the_feed_goes_on(live_chain: list) -> None:
    good = _txs(live_chain, 3)
    bad: list[bytes | str] = [
        b"not json", b"[1, 2]", b'{"type": 5}', "{\"type\": \"pending_transaction\", \"seq\": 1e999}",
        pending(good[0], -1), pending(good[0], True),
        pending(good[0], 7).replace(b'"seq":7', b'"seq":18446744073709551616'),
        pending(good[0], 1, seen_at="yesterday"), pending(good[0], 1, seen_at=-5),
        pending({"txID": "zz", "raw_data": {}}, 1), pending({"txID": "ab" * 32}, 1), pending([1], 1),
        b"[" * 3000 + b"]" * 3000,
    ]
    frames = bad + [b'{"type": "hello", "head": 1}'] + [pending(tx, i + 10) for i, tx in enumerate(good)]
    with Feed([frames]) as feed:
        part = _source(feed.url).build_part("m", "m", None)
        try:
            items = drive(part, lambda it: len(_of(it, PendingTx)) >= 3)
        finally:
            part.close()
    letters = _of(items, DeadLetter)
    assert len(letters) == len(bad)  # one each; the hello is not an error
    assert len({(d.position, d.reason) for d in letters}) == len(bad)  # distinct dead-letter ids
    assert [p.tx["txID"] for p in _of(items, PendingTx)] == [tx["txID"] for tx in good]


def test_a_frame_over_the_size_limit_is_refused_then_the_feed_reconnects(live_chain: list[dict]) -> None:
    good = _txs(live_chain, 4)
    huge = pending({**good[0], "pad": "x" * 100_000}, 1)
    with Feed([[pending(good[0], 1), huge], [pending(tx, i + 1) for i, tx in enumerate(good)]]) as feed:
        part = _source(feed.url, max_message_bytes=64 * 1024).build_part("m", "m", None)
        try:
            items = drive(part, lambda it: len(_of(it, PendingTx)) >= 4)
        finally:
            part.close()
    assert feed.connections >= 2 and part.health.reconnects >= 1
    assert any("over the 65,536-byte limit" in d.reason for d in _of(items, DeadLetter))
    assert [p.tx["txID"] for p in _of(items, PendingTx)] == [tx["txID"] for tx in good]  # replay deduplicated


def test_a_full_queue_drops_and_dead_letters_instead_of_blocking(live_chain: list[dict]) -> None:
    good = _txs(live_chain, 20)
    with Feed([[pending(tx, i + 1) for i, tx in enumerate(good)]]) as feed:
        part = _source(feed.url, queue_size=5, queue_wait_s=0.05).build_part("m", "m", None)
        try:  # nobody drains the queue until the reader has given up on 15 messages
            _wait(lambda: part.dropped_full >= 15)
            items = drive(part, lambda it: len(_of(it, PendingTx)) >= 5)
        finally:
            part.close()
    assert len(_of(items, PendingTx)) == 5 and part.dropped_full == 15
    assert sum("queue full" in d.reason for d in _of(items, DeadLetter)) == 15


def test_a_client_thread_that_dies_is_noticed_restarted_then_fatal(live_chain: list[dict]) -> None:
    good = _txs(live_chain, 2)
    with Feed([[pending(tx, i + 1) for i, tx in enumerate(good)]]) as feed:
        part = _source(feed.url, max_restarts=2).build_part("m", "m", None)
        try:
            drive(part, lambda it: len(_of(it, PendingTx)) >= 2)

            async def broken() -> None:
                raise RuntimeError("bug in the reader")

            part._client = broken  # every reader thread started from now on dies at once
            part._stop.set()  # end the healthy one
            part._thread.join(5)
            part._stop.clear()
            for expected in (1, 2):
                part.next_batch()
                assert part._deaths == expected and not part.health.connected
                assert part.health.last_error.startswith("websocket client stopped")
                part._thread.join(5)
            fatal = (r"pending feed ws://127\.0\.0\.1:\d+/\*\*\* cannot be read "
                     r"\(3 client failure\(s\) in a row\): RuntimeError: bug in the reader")
            with pytest.raises(PipelineError, match=fatal):
                part.next_batch()
        finally:
            part.close()


def _wait(condition: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
