"""Pure pieces of live mode: follower, backoff, Retry-After, health rows, reorg SQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline.live.backoff import Backoff
from pipeline.live.follower import BlockRef, Follower, FollowState, ForkTooDeep
from pipeline.live.health import HEALTH_COLUMNS, HealthMeter
from pipeline.live.reorg import orphaned_rows, reorg_parameters, reorg_statements
from pipeline.redact import register_secret
from pipeline.sources.tron_http import retry_after


def _id(n: int, branch: str = "a") -> str:
    return f"{n:016x}" + branch * 48


def _block(n: int, branch: str = "a", parent_branch: str | None = None) -> dict:
    return {"blockID": _id(n, branch), "transactions": [{"txID": f"{branch}{n}"}],
            "block_header": {"raw_data": {"number": n, "parentHash": _id(n - 1, parent_branch or branch)}}}


def _follow(f: Follower, *numbers: int) -> None:
    for n in numbers:
        ref = BlockRef(n, _id(n), _id(n - 1))
        assert f.links(ref)
        f.accept(ref)


def test_follower_links_accepts_and_bounds_memory() -> None:
    f = Follower(FollowState(10), keep=3)
    _follow(f, 10, 11, 12, 13)
    assert [r.number for r in f.recent] == [11, 12, 13] and f.next_height == 14
    assert not f.links(BlockRef(14, _id(14, "b"), _id(13, "b")))
    assert f.state() == FollowState(14, tuple(f.recent))


def test_fork_resolved_to_common_ancestor() -> None:
    f = Follower(FollowState(10), keep=8)
    _follow(f, 10, 11, 12, 13)
    chain = {10: _block(10), 11: _block(11), 12: _block(12, "b", "a"), 13: _block(13, "b")}
    asked: list[int] = []
    reorg = f.resolve_fork("node", lambda n: asked.append(n) or chain.get(n))
    assert asked == [13, 12, 11]
    assert reorg.ancestor == 11 and reorg.orphaned == ((12, _id(12)), (13, _id(13)))
    assert reorg.new_ids == (_id(12, "b"), _id(13, "b")) and reorg.kept_tx_ids == (("b12",), ("b13",))
    assert f.next_height == 12 and f.recent[-1].number == 11


def test_fork_deeper_than_memory_and_failing_fetch_leave_state() -> None:
    f = Follower(FollowState(10), keep=2)
    _follow(f, 10, 11, 12)
    with pytest.raises(ForkTooDeep):
        f.resolve_fork("node", lambda n: _block(n, "c"))
    before = f.state()

    def broken(n: int) -> dict:
        raise ConnectionError("node down")

    with pytest.raises(ConnectionError):
        f.resolve_fork("node", broken)
    assert f.state() == before


def test_gap_is_not_parent_checked() -> None:
    f = Follower(FollowState(5))
    _follow(f, 5)
    f.skip_gap(6)
    assert f.links(BlockRef(7, _id(7), "whatever"))
    with pytest.raises(ForkTooDeep):
        f.resolve_fork("node", lambda n: None)


def test_backoff_grows_caps_jitters_and_honours_retry_after() -> None:
    b = Backoff(base_s=1.0, cap_s=8.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(6)]
    for i, d in enumerate(delays):
        ceiling = min(8.0, 2.0 ** i)
        assert ceiling / 2 <= d <= ceiling
    assert len(set(delays)) == len(delays)  # jittered
    assert b.next_delay(retry_after_s=20.0) == 20.0
    b.reset()
    assert b.next_delay() <= 1.0


def test_retry_after_header_forms() -> None:
    assert retry_after("3") == 3.0 and retry_after(None) is None and retry_after("soon") is None
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after(when) <= 31


def test_health_row() -> None:
    m = HealthMeter("node", every_s=5)
    m.head = 110
    for n in range(100, 105):
        m.emitted(n, 1_000_000)
    m.error("HTTP 429")
    assert m.due(now=m._mark[0] + 5) and not m.due(now=m._mark[0] + 1)
    row = m.row(now=m._mark[0] + 2.0, wall_ms=1_010_000)
    assert len(row) == len(HEALTH_COLUMNS)
    assert (row.last_height, row.lag_blocks, row.lag_s, row.blocks_per_s) == (104, 6, 10.0, 2.5)
    assert row.errors_total == 1 and row.last_error == "HTTP 429"
    register_secret("health-secret-42")
    m.error("HTTP 401 for key health-secret-42")
    assert m.row().last_error == "HTTP 401 for key ***"


def test_reorg_sql_carries_no_ids_in_its_text() -> None:
    f = Follower(FollowState(10), keep=8)
    _follow(f, 10, 11, 12)
    reorg = f.resolve_fork("node", lambda n: {11: _block(11), 12: _block(12, "b")}.get(n))
    statements = reorg_statements("db", reorg)
    blocks_sql, alerts_sql, delete_sql = statements
    assert reorg_parameters(reorg) == {"heights": [12], "block_ids": [_id(12)]}
    assert "orphaned = 0" in blocks_sql and "'dropped'" in alerts_sql and " AS " not in alerts_sql
    assert "db.orphaned_blocks FINAL" in delete_sql and delete_sql.startswith("DELETE FROM db.transfers")
    assert orphaned_rows(reorg)[0][:4] == (12, _id(12), _id(12, "b"), ["b12"])
    # hostile ids and 5,000 kept transactions change the parameters and rows, never the SQL text
    evil = reorg._replace(orphaned=((12, "x') OR 1=1 --"),),
                          kept_tx_ids=(tuple(f"{i:064x}" for i in range(5000)),))
    assert reorg_statements("db", evil) == statements
    assert all(len(sql) < 1000 for sql in statements)


def test_reorg_guard_drops_late_alerts_of_orphaned_blocks() -> None:
    from pipeline.live.reorg import ReorgGuard
    from pipeline.records import Alert

    f = Follower(FollowState(10), keep=8)
    _follow(f, 10, 11, 12)
    reorg = f.resolve_fork("node", lambda n: {11: _block(11), 12: _block(12, "b")}.get(n))
    guard = ReorgGuard(max_heights=2)
    late = [Alert("x", 0, 0, h, tx, "T", "r", "v", "low", 25.0, "confirmed", "block", "", (), "{}")
            for h, tx in ((12, "a12"), (12, "b12"), (11, "a11"))]
    assert guard.fix(late) == late
    guard.remember(reorg)
    assert [a.status for a in guard.fix(late)] == ["dropped", "confirmed", "confirmed"]
    for n in (20, 21, 22):  # bounded: older heights are forgotten
        guard.remember(reorg._replace(orphaned=((n, "z"),), kept_tx_ids=((),)))
    assert guard.fix(late) == late


def test_a_pending_feed_dead_letter_becomes_a_dead_letters_row() -> None:
    from pipeline.records import DeadLetter
    from pipeline.sinks.rows import dead_letter_id
    from pipeline.sources.live_flow import side_rows

    letter = DeadLetter("mempool", "seq 7", "pending: 'seq' must be an integer", '{"seq":"x"}', 1)
    assert side_rows(letter) == [("dead_letters", [(dead_letter_id(letter), *letter)])]
