"""Every feature on small hand-built sequences: values, window expiry, late blocks."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from pipeline.operators.features import FEATURE_COLUMNS, ShardState, feature_rows
from pipeline.operators.routing import RECEIVER, SENDER
from pipeline.operators.windows import WindowConfig
from pipeline.records import FEATURE_NAMES, Kind

H = 3600.0


def test_counts_volumes_and_distinct_counterparties(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "A", "X", 100), chain.tx(3, "B", "X", 50), chain.tx(6, "A", "X", 25),
                  chain.tx(9, "X", "C", 60)])
    f = r.last(ups, "X")
    assert (f["tx_in_count"], f["usd_in"], f["distinct_in"]) == (3.0, 175.0, 2.0)
    assert (f["tx_out_count"], f["usd_out"], f["distinct_out"]) == (1.0, 60.0, 1.0)
    a = r.last(ups, "A")
    assert (a["tx_out_count"], a["usd_out"], a["distinct_out"], a["tx_in_count"]) == (2.0, 125.0, 1.0, 0.0)
    assert len(ups) == 8 and {u.role for u in ups} == {SENDER, RECEIVER}
    assert all(len(u.features.values) == len(FEATURE_NAMES) for u in ups)


def test_long_window_expiry(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "A", "X", 100), chain.tx(1800, "B", "X", 50), chain.tx(H + 1, "C", "X", 1)])
    f = r.last(ups, "X")  # the t=0 transfer left the 1 h window
    assert (f["tx_in_count"], f["usd_in"], f["distinct_in"]) == (2.0, 51.0, 2.0)
    ups = r.feed([chain.tx(2 * H + 10, "D", "X", 7)])
    f = r.last(ups, "X")
    assert (f["tx_in_count"], f["usd_in"], f["distinct_in"]) == (1.0, 7.0, 1.0)


def test_fan_in_out_short_window(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "A", "X"), chain.tx(60, "B", "X"), chain.tx(120, "B", "X"),
                  chain.tx(700, "C", "X"), chain.tx(701, "X", "D"), chain.tx(702, "X", "E")])
    f = r.last(ups, "X")
    assert f["fan_in_10m"] == 2.0  # B and C; A (t=0) is older than 10 min
    assert f["distinct_in"] == 3.0
    assert f["fan_out_10m"] == 2.0
    ups = r.feed([chain.tx(1400, "F", "X")])
    assert r.last(ups, "X")["fan_in_10m"] == 1.0 and r.last(ups, "X")["fan_out_10m"] == 0.0


def test_pass_through_ratio_and_delay(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "A", "M", 1000), chain.tx(30, "B", "M", 1000), chain.tx(42, "M", "C", 1500)])
    f = r.last(ups, "M")
    assert f["pass_through_ratio"] == 0.75
    assert f["pass_through_delay_s"] == 12.0  # from the latest inflow (t=30)
    quiet = r.last(ups, "A")
    assert quiet["pass_through_ratio"] == 0.0 and quiet["pass_through_delay_s"] == H
    ups = r.feed([chain.tx(50, "M", "D", 5000)])
    assert r.last(ups, "M")["pass_through_ratio"] == 1.0  # capped at 1
    ups = r.feed([chain.tx(H + 60, "E", "M", 10)])  # the outflows left the window
    f = r.last(ups, "M")
    assert f["pass_through_delay_s"] == H and f["pass_through_ratio"] == 0.0


def test_age_capped_and_forgotten_after_horizon(chain, runner):
    cfg = WindowConfig(long_ms=60_000, short_ms=10_000, lateness_ms=1_000, horizon_ms=300_000)
    r = runner(cfg)
    ups = r.feed([chain.tx(0, "A", "B"), chain.tx(90, "A", "C")])
    assert r.last(ups, "A")["age_s"] == 90.0
    assert r.last(ups, "C")["age_s"] == 0.0
    ups = r.feed([chain.tx(250, "A", "D"), chain.tx(290, "A", "D")])
    assert r.last(ups, "A")["age_s"] == 290.0
    ups = r.feed([chain.tx(400, "A", "D")])
    assert r.last(ups, "A")["age_s"] == 300.0  # capped at the horizon
    # B was last seen at t=0: more than the horizon ago, so it is forgotten and starts again
    ups = r.feed([chain.tx(500, "E", "F"), chain.tx(501, "B", "E")])
    assert r.last(ups, "B")["age_s"] == 0.0


def test_zero_value_and_dust_inflows(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "P", "V", 0.0, Kind.TRC20_TRANSFER, raw=0),
                  chain.tx(3, "Q", "V", 0.5, Kind.TRC20_TRANSFER),
                  chain.tx(6, "R", "V", 100.0, Kind.TRC20_TRANSFER),
                  chain.tx(9, "V", "S", 0.0, Kind.TRC20_TRANSFER, raw=0)])
    f = r.last(ups, "V")
    assert (f["zero_value_in"], f["dust_in"], f["tx_in_count"]) == (1.0, 1.0, 3.0)
    ups = r.feed([chain.tx(H + 4, "R", "V", 100.0)])
    f = r.last(ups, "V")
    assert (f["zero_value_in"], f["dust_in"]) == (0.0, 0.0)
    r2 = runner(WindowConfig(dust_usd=1000.0))
    assert r2.last(r2.feed([chain.tx(0, "R", "V", 100.0)]), "V")["dust_in"] == 1.0


def test_lookalike_counterparties(chain, runner):
    real = "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8"
    fake1 = "TJRaZZZZZZZZZZZZZZZZZZZZZZZZZZRTv8"
    fake2 = "TJRaYYYYYYYYYYYYYYYYYYYYYYYYYYRTv8"
    other = "TXyzabcdefghijkmnopqrstuvwxyz12345"
    victim = "TVictimVictimVictimVictimVictim111"
    r = runner()
    ups = r.feed([chain.tx(0, victim, real, 500), chain.tx(3, other, victim, 1)])
    assert r.last(ups, victim)["lookalike_count"] == 0.0
    ups = r.feed([chain.tx(6, fake1, victim, 0.0, Kind.TRC20_TRANSFER, raw=0)])
    assert r.last(ups, victim)["lookalike_count"] == 2.0  # real and fake1
    ups = r.feed([chain.tx(9, fake2, victim, 0.0, Kind.TRC20_TRANSFER, raw=0)])
    assert r.last(ups, victim)["lookalike_count"] == 3.0
    # the real payee leaves the window first, then the fakes
    ups = r.feed([chain.tx(H + 1, other, victim, 1)])
    assert r.last(ups, victim)["lookalike_count"] == 2.0
    ups = r.feed([chain.tx(H + 10, other, victim, 1)])
    assert r.last(ups, victim)["lookalike_count"] == 0.0


def test_cycles_up_to_four_hops(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "A", "B"), chain.tx(3, "B", "C"), chain.tx(6, "C", "A")])
    assert r.last(ups, "A")["cycle_count"] == 1.0 and r.last(ups, "C")["cycle_count"] == 1.0
    # B, in the middle of the ring, is told at once: a member update with the closing transfer
    member = [u for u in ups if u.role == "member"]
    assert [(u.address, u.transfer.id, u.counterparty) for u in member] == [("B", ups[-1].transfer.id, "A")]
    assert member[0].features.as_dict()["cycle_count"] == 1.0
    assert r.last(ups, "B", "sender")["cycle_count"] == 0.0  # its own transfer closed nothing
    ups = r.feed([chain.tx(9, "C", "A")])  # same edge again: no new cycle
    assert r.last(ups, "A")["cycle_count"] == 1.0 and all(u.role != "member" for u in ups)
    ups = r.feed([chain.tx(12, "P", "Q"), chain.tx(15, "Q", "R"), chain.tx(18, "R", "S"),
                  chain.tx(21, "S", "P")])
    assert r.last(ups, "P")["cycle_count"] == 1.0  # 4 hops
    assert sorted(u.address for u in ups if u.role == "member") == ["Q", "R"]
    assert r.last(ups, "Q")["cycle_count"] == 1.0 and r.last(ups, "R")["cycle_count"] == 1.0
    ups = r.feed([chain.tx(H / 2, "B", "Z")])
    assert r.last(ups, "B")["cycle_count"] == 1.0  # still on the ring while its edges are in the window
    ups = r.feed([chain.tx(24, "K1", "K2"), chain.tx(27, "K2", "K3"), chain.tx(30, "K3", "K4"),
                  chain.tx(33, "K4", "K5"), chain.tx(36, "K5", "K1")])
    assert r.last(ups, "K1")["cycle_count"] == 0.0  # 5 hops: too long
    ups = r.feed([chain.tx(H + 7, "A", "Z")])
    assert r.last(ups, "A")["cycle_count"] == 0.0  # expired with the window
    ups = r.feed([chain.tx(2 * H, "B", "C"), chain.tx(2 * H + 3, "C", "A")])  # A->B expired
    assert r.last(ups, "A")["cycle_count"] == 0.0


def test_watchlist_hops_and_exposure(chain, runner):
    r = runner(watch={"W"})
    ups = r.feed([chain.tx(0, "W", "A", 100), chain.tx(0, "A", "B"), chain.tx(0, "B", "C"),
                  chain.tx(0, "C", "D")])
    hops = {a: r.last(ups, a)["watch_hops"] for a in "WABCD"}
    assert hops == {"W": 0.0, "A": 1.0, "B": 2.0, "C": 3.0, "D": 9.0}
    scores = [r.last(ups, a)["exposure_score"] for a in "WABCD"]
    assert scores == [1.0, 0.5, 0.25, 0.125, 0.0]
    a_to_b = next(u for u in ups if u.address == "B" and u.role == RECEIVER)
    assert a_to_b.counterparty_hops == 1
    # paying a listed address is exposure too
    ups = r.feed([chain.tx(1800, "E", "W", 5)])
    e = r.last(ups, "E")
    assert e["watch_hops"] == 1.0 and e["exposure_score"] == 0.5
    # exposure fades with time and expires with the window
    ups = r.feed([chain.tx(1800, "F", "A")])
    assert 0.0 < r.last(ups, "A")["exposure_score"] < 0.5 and r.last(ups, "A")["watch_hops"] == 1.0
    ups = r.feed([chain.tx(H + 1, "G", "A")])
    f = r.last(ups, "A")
    assert f["watch_hops"] == 9.0 and f["exposure_score"] == 0.0


def test_approvals_unlimited_and_spender_age(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "S", "Z"), chain.tx(600, "O", "S", 0.0, Kind.TRC20_APPROVE, raw=2**256 - 1),
                  chain.tx(603, "O", "N", 0.0, Kind.TRC20_APPROVE, raw=2**256 - 1),
                  chain.tx(606, "O", "S", 0.0, Kind.TRC20_APPROVE, raw=10**6)])
    o = r.last(ups, "O", SENDER)
    assert o["approvals_unlimited"] == 2.0
    assert o["tx_out_count"] == 0.0 and o["cycle_count"] == 0.0  # approvals are not value
    spender_new = next(u for u in ups if u.address == "N" and u.role == RECEIVER)
    spender_old = next(u for u in ups if u.address == "S" and u.role == RECEIVER)
    assert spender_new.features.as_dict()["age_s"] == 0.0
    assert spender_old.features.as_dict()["age_s"] == 600.0
    assert r.graph.stats()["edges"] == 1  # only S->Z
    ups = r.feed([chain.tx(H + 601, "O", "Q")])
    assert r.last(ups, "O")["approvals_unlimited"] == 1.0


def test_failed_out_short_window_and_permission_changes(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "A", "B", ok=False), chain.tx(3, "A", "C", kind=Kind.CONTRACT_CALL, ok=False),
                  chain.tx(6, "A", "", kind=Kind.PERMISSION_UPDATE, raw=0)])
    a = r.last(ups, "A")
    assert (a["failed_out"], a["permission_changes"], a["tx_out_count"]) == (2.0, 1.0, 0.0)
    assert r.last(ups, "B")["failed_out"] == 0.0 and r.last(ups, "B")["tx_in_count"] == 0.0
    assert not any(u.address == "" for u in ups)  # empty addresses get no update
    ups = r.feed([chain.tx(700, "A", "D")])
    a = r.last(ups, "A")
    assert (a["failed_out"], a["permission_changes"]) == (0.0, 1.0)
    ups = r.feed([chain.tx(H + 7, "A", "D")])
    assert r.last(ups, "A")["permission_changes"] == 0.0


def test_out_of_order_block_within_lateness(chain, runner):
    r = runner()  # lateness 30 s
    ups = r.feed([chain.tx(100, "A", "X", 10), chain.tx(90, "B", "X", 20)])
    f = r.last(ups, "X")
    assert (f["tx_in_count"], f["usd_in"], f["distinct_in"]) == (2.0, 30.0, 2.0)
    # the late entry expires at its own time (90 s + 1 h), before the one at 100 s
    ups = r.feed([chain.tx(H + 95, "C", "X", 1)])
    f = r.last(ups, "X")
    assert (f["tx_in_count"], f["usd_in"]) == (2.0, 11.0)
    ups = r.feed([chain.tx(H + 101, "C", "X", 1)])
    assert r.last(ups, "X")["tx_in_count"] == 2.0  # only the inflows at H+95 and H+101 remain
    assert r.last(ups, "X")["usd_in"] == 2.0


def test_late_block_in_short_window_and_beyond_lateness(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(1000, "A", "X"), chain.tx(985, "B", "X"), chain.tx(1599, "C", "X")])
    assert r.last(ups, "X")["fan_in_10m"] == 2.0  # B (t=985) expired from 10 min before A (t=1000)
    ups = r.feed([chain.tx(1601, "D", "X")])
    assert r.last(ups, "X")["fan_in_10m"] == 2.0  # C and D: A (t=1000) expired too
    r2 = runner()
    ups = r2.feed([chain.tx(1000, "A", "X"), chain.tx(100, "B", "X")])  # 900 s late: clamped
    assert r2.last(ups, "X")["tx_in_count"] == 2.0
    assert sum(s.late for s in r2.shards) >= 1


def test_feature_rows_match_columns(chain, runner):
    r = runner()
    ups = r.feed([chain.tx(0, "A", "B", 12.5)])
    rows = feature_rows(u.features for u in ups)
    assert FEATURE_COLUMNS[:3] == ("address", "ts", "block_number")
    assert FEATURE_COLUMNS[3:] == FEATURE_NAMES
    assert all(len(row) == len(FEATURE_COLUMNS) for row in rows)
    assert rows[0][0] == "A" and rows[0][1] == datetime.fromtimestamp(ups[0].features.ts / 1000, UTC)
    assert rows[0][3 + FEATURE_NAMES.index("usd_out")] == 12.5
    assert all(isinstance(v, float) for row in rows for v in row[3:])


def test_shard_state_pickles_and_resumes_identically(chain, runner):
    r = runner()
    first = [chain.tx(i * 3, f"A{i % 7}", f"B{i % 5}", i) for i in range(40)]
    rest = [chain.tx(120 + i * 3, f"B{i % 5}", f"A{i % 3}", i) for i in range(40)]
    r.feed(first)
    clone = runner()
    clone.graph = pickle.loads(pickle.dumps(r.graph))
    clone.shards = [pickle.loads(pickle.dumps(s)) for s in r.shards]
    assert isinstance(clone.shards[0], ShardState)
    a = r.feed(rest)
    b = clone.feed(rest)
    assert [u.features for u in a] == [u.features for u in b]
    assert sum(u.role != "member" for u in a) == 80 and any(u.role == "member" for u in a)


def test_retired_address_keeps_its_age_until_the_horizon(chain, runner):
    cfg = WindowConfig(long_ms=60_000, short_ms=10_000, lateness_ms=1_000, horizon_ms=300_000, n_shards=1)
    r = runner(cfg)
    r.feed([chain.tx(0, "A", "B", 5)])
    r.feed([chain.tx(200, "X", "Y")])  # the shard clock passes A's window: A is retired
    shard = r.shards[0]
    assert "A" not in shard.states and shard.first_seen.get("A", 0) == (chain_ts(0), chain_ts(0))
    ups = r.feed([chain.tx(250, "A", "C")])
    a = r.last(ups, "A")
    assert a["age_s"] == 250.0 and a["tx_out_count"] == 1.0 and a["distinct_out"] == 1.0
    r.feed([chain.tx(700, "X", "Y")])  # B (t=0) is now past the horizon: forgotten entirely
    assert shard.first_seen.get("B", chain_ts(700) - cfg.horizon_ms) is None and "B" not in shard.states
    assert shard.first_seen.get("A", 0) == (chain_ts(0), chain_ts(250))  # retired again, first kept
    stats = shard.stats()
    assert stats["first_seen"] == shard.first_seen.used + len(shard.states) and stats["first_seen_evicted"] == 0


def chain_ts(at: float) -> int:
    from tests.operators.conftest import T0

    return T0 + int(at * 1000)
