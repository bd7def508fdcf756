"""The node source against the devnet over real sockets, driven partition by partition."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pipeline.errors import ConfigError
from pipeline.live.follower import FollowState, Reorg
from pipeline.live.health import SourceHealth
from pipeline.records import DeadLetter, RawBlock
from pipeline.sources.node import NodeSource
from tests.live.conftest import drive, first_number


def _blocks(items: list[Any]) -> list[RawBlock]:
    return [i for i in items if isinstance(i, RawBlock)]


def _heights(items: list[Any]) -> list[int]:
    return [b.payload["block_header"]["raw_data"]["number"] for b in _blocks(items)]


def _source(devnet: Any, **kw: Any) -> NodeSource:
    kw.setdefault("confirmations", 0)
    kw.setdefault("poll_s", 0.05)
    kw.setdefault("base_backoff_s", 0.05)
    kw.setdefault("max_backoff_s", 0.3)
    return NodeSource(devnet.http_url, **kw)


def _reached(height: int):
    return lambda items: bool(_heights(items)) and _heights(items)[-1] >= height


def test_catch_up_in_ranges_then_follow_head(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    head = devnet.set_head(first + 30)
    src = _source(devnet, start=first + 2, batch_blocks=10, confirmations=3)
    part = src.build_part("in", "node", None)
    items = drive(part, _reached(head - 3))
    assert _heights(items) == list(range(first + 2, head - 3 + 1))
    calls_catch_up = part.node.calls
    # ranges while behind: ~3 range calls + one receipts call per block + head reads, not 2 per block + 1
    assert calls_catch_up <= 2 + 3 + len(_heights(items)) + 2
    for block in _blocks(items):
        receipts = block.payload["_receipts"]
        assert [r["id"] for r in receipts] == [t["txID"] for t in block.payload["transactions"]]
        assert block.source == "node" and block.position == str(block.payload["block_header"]["raw_data"]["number"])
    # at the head: nothing new until the head moves, then one by one, K blocks behind
    assert _blocks(drive(part, lambda it: True) + part.next_batch()) == []
    devnet.set_head(head + 2)
    more = drive(part, _reached(head - 1))
    assert _heights(more) == [head - 2, head - 1]
    assert part.snapshot().next_height == head


def test_restart_from_snapshot_no_gap_no_duplicate(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    head = devnet.set_head(first + 20)
    src = _source(devnet, start=first, batch_blocks=4)
    part = src.build_part("in", "node", None)
    before = drive(part, _reached(first + 9))
    snap = part.snapshot()
    part.close()
    assert _heights(before)[-1] == first + 11  # three ranges of 4
    assert snap.next_height == first + 12 and snap.recent[-1].number == first + 11
    resumed = src.build_part("in", "node", snap)  # as Bytewax does after a crash
    after = drive(resumed, _reached(head))
    got = _heights(before) + _heights(after)
    assert got == list(range(first, head + 1))
    # the snapshot carries the hashes: a fork right at the resume point is still detected
    assert resumed.follower.recent[0].block_id


def test_reorg_of_depth_two_detected_and_new_branch_emitted(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    head = devnet.set_head(first + 10)
    part = _source(devnet, start=first).build_part("in", "node", None)
    old = {b.position: b.payload["blockID"] for b in _blocks(drive(part, _reached(head)))}
    forked = devnet.reorg(depth=2, drop_txs=1)
    assert forked == [head - 1, head]
    devnet.set_head(head + 1)
    items = drive(part, _reached(head + 1))
    reorgs = [i for i in items if isinstance(i, Reorg)]
    assert len(reorgs) == 1
    r = reorgs[0]
    assert r.ancestor == head - 2 and r.depth == 2
    assert r.orphaned == ((head - 1, old[str(head - 1)]), (head, old[str(head)]))
    new = {b.position: b.payload for b in _blocks(items)}
    assert _heights(items) == [head - 1, head, head + 1]  # the new branch, after the reorg item
    assert items.index(r) < items.index(_blocks(items)[0])
    assert r.new_ids == (new[str(head - 1)]["blockID"], new[str(head)]["blockID"])
    assert all(new[str(h)]["blockID"] != old[str(h)] for h in (head - 1, head))
    assert set(r.kept_tx_ids[1]) == {t["txID"] for t in new[str(head)]["transactions"]}
    assert len(r.kept_tx_ids[1]) == 7  # the fork left one transaction out
    assert new[str(head + 1)]["block_header"]["raw_data"]["parentHash"] == new[str(head)]["blockID"]
    assert part.health.reorgs == 1


def test_429_and_5xx_bursts_and_node_restart_survived(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    head = devnet.set_head(first + 12)
    src = _source(devnet, start=first, batch_blocks=3, timeout_s=2, health_every_s=0)
    part = src.build_part("in", "node", None)
    devnet.fail_next(3, status=429, retry_after=1)
    t0 = time.monotonic()
    items = drive(part, _reached(first + 2))
    assert time.monotonic() - t0 >= 0.9  # Retry-After honoured (backoff alone would be < 0.3 s)
    devnet.fail_next(2, status=503, retry_after=0)
    devnet.fail_next(2, status=502)
    devnet.fail_next(1, status=403)
    items += drive(part, _reached(first + 7))
    devnet.restart(down_s=0.6, wait=False)
    time.sleep(0.1)
    items += drive(part, _reached(head), timeout_s=20)
    assert _heights(items) == list(range(first, head + 1))  # no gap, no duplicate
    health = [i for i in items if isinstance(i, SourceHealth)]
    assert health[-1].errors_total >= 8 and health[-1].reconnects_total >= 1
    assert health[-1].connected and health[-1].last_height == head
    assert not [i for i in items if isinstance(i, DeadLetter)]


def test_gap_is_a_dead_letter_never_a_silent_skip(devnet: Any, live_chain: list[dict],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    first = first_number(live_chain)
    devnet.set_head(first + 3)
    part = _source(devnet, start=first - 2, gap_attempts=2).build_part("in", "node", None)
    items = drive(part, _reached(first + 3))
    dead = [i for i in items if isinstance(i, DeadLetter)]
    assert [d.position for d in dead] == [str(first - 2), str(first - 1)]
    assert all(d.reason.startswith("gap: block") for d in dead)
    assert "gap: block" in caplog.text and any(r.levelname == "ERROR" for r in caplog.records)
    assert _heights(items) == list(range(first, first + 4))


def test_bounded_run_and_settings_checked(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    devnet.set_head(first + 10)
    part = _source(devnet, start=first, end=first + 4).build_part("in", "node", None)
    assert _heights(drive(part, lambda it: False)) == list(range(first, first + 5))
    with pytest.raises(ConfigError, match="confirmations"):
        NodeSource(devnet.http_url, confirmations=-2)
    with pytest.raises(ConfigError, match="http"):
        NodeSource("127.0.0.1:1")
    assert FollowState(5).next_height == 5


def test_follows_the_solidified_block(devnet: Any, live_chain: list[dict]) -> None:
    first = first_number(live_chain)
    devnet.set_head(first + 25)  # solidified head = head - 19
    part = _source(devnet, confirmations=-1).build_part("in", "node", None)  # no start: the target
    items = drive(part, _reached(first + 6))
    assert _heights(items) == [first + 6] and part.health.head == first + 6
    devnet.set_head(first + 28)
    assert _heights(drive(part, _reached(first + 9))) == [first + 7, first + 8, first + 9]
