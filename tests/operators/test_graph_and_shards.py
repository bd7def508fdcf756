"""Graph stage bounds, hub caps, and identical outputs whatever the number of workers."""

from __future__ import annotations

import pickle
import random

from pipeline.operators.features import ShardState
from pipeline.operators.graph import NO_FACTS, RING_MAX_CYCLES, GraphStage
from pipeline.operators.routing import MEMBER, RECEIVER, SENDER, route, route_items
from pipeline.operators.windows import NO_HOPS, WindowConfig, shard_of
from pipeline.records import Kind
from tests.operators.conftest import Chain, batches

SMALL = WindowConfig(long_ms=60_000, short_ms=10_000, lateness_ms=2_000, horizon_ms=180_000)


def synthetic(chain: Chain, n: int, n_addr: int, seed: int, per_block: int = 8) -> list:
    """A random stream with hubs, repeats, approvals and failures, 3 s blocks."""
    rng = random.Random(seed)
    pool = [f"T{seed}addr{i:05d}xyz" for i in range(n_addr)]
    hubs = pool[:3]
    kinds = [Kind.TRX] * 5 + [Kind.TRC20_TRANSFER] * 4 + [Kind.TRC20_APPROVE]
    out = []
    for i in range(n):
        a = rng.choice(hubs) if rng.random() < 0.2 else rng.choice(pool)
        b = rng.choice(hubs) if rng.random() < 0.2 else rng.choice(pool)
        kind = rng.choice(kinds)
        raw = 2**256 - 1 if kind == Kind.TRC20_APPROVE else None
        usd = rng.choice([0.0, 0.3, 5.0, 120.0, 9000.0])
        out.append(chain.tx((i // per_block) * 3, a, b, usd, kind, raw=raw if usd else 0 if raw is None else raw,
                            ok=rng.random() > 0.03))
    return out


def test_shard_of_is_stable_and_in_range():
    # pinned: a shard must not move between processes, runs or Python versions (hash() would)
    assert shard_of("TA3rH2A7iHnm6pKH8gr9cK1EZnShnmZdFg", 32) == 29
    assert {shard_of(f"T{i}", 4) for i in range(100)} == {0, 1, 2, 3}


def test_route_sends_each_side_to_its_shard(chain):
    ts = [chain.tx(0, "A", "B"), chain.tx(0, "C", ""), chain.tx(0, "D", "D")]
    routed = route([(t, NO_FACTS) for t in ts], 8)
    touches = [(role, t.id) for lst in routed.values() for role, t, _ in lst]
    assert len(touches) == 5  # C's empty receiver is skipped; D->D gives two touches
    assert all(shard_of(t.from_address if role == SENDER else t.to_address, 8) == s
               for s, lst in routed.items() for role, t, _ in lst)
    items = route_items([(t, NO_FACTS) for t in ts], 8)
    assert [int(k) for k, _ in items] == sorted(routed)
    d = routed[shard_of("D", 8)]
    assert [r for r, t, _ in d if t.to_address == "D"] == [SENDER, RECEIVER]


def _run_groups(stream: list, n_groups: int, snapshot_at: int | None = None) -> list:
    """Simulate ``n_groups`` workers: the fixed shards are spread over them; results merged."""
    cfg = SMALL
    graph = GraphStage(cfg)
    workers: list[dict[int, ShardState]] = [
        {s: ShardState(cfg) for s in range(cfg.n_shards) if s % n_groups == w} for w in range(n_groups)]
    out = []
    for i, batch in enumerate(batches(stream)):
        annotated = graph.process(batch)
        for key, touches in route_items(annotated, cfg.n_shards):
            updates = workers[int(key) % n_groups][int(key)].process(touches)
            out.extend((u.transfer.id, u.role, u.features, u.counterparty_hops) for u in updates)
        if snapshot_at is not None and i == snapshot_at:  # a Bytewax snapshot and resume
            graph = pickle.loads(pickle.dumps(graph))
            workers = pickle.loads(pickle.dumps(workers))
    return sorted(out, key=lambda x: (x[0], x[1]))


def test_identical_outputs_with_1_2_4_workers(chain):
    stream = synthetic(chain, 3000, 300, seed=1)
    one = _run_groups(stream, 1)
    assert len(one) > 5000
    assert _run_groups(stream, 2) == one
    assert _run_groups(stream, 4, snapshot_at=100) == one
    assert any(f.values[14] > 0 for _, _, f, _ in one)  # some cycles were found
    assert any(f.values[13] > 0 or f.values[7] > 1 for _, _, f, _ in one)


def test_state_stays_bounded_on_a_long_stream(chain):
    """20 windows of stream: state after the first windows does not grow with length."""
    stream = synthetic(chain, 16_000, 2_000, seed=2, per_block=8)  # 6000 s = 100 long windows
    graph = GraphStage(SMALL, {"T2addr00007xyz"})
    shards = [ShardState(SMALL) for _ in range(SMALL.n_shards)]
    sizes = []
    for i, batch in enumerate(batches(stream)):
        for s, touches in route(graph.process(batch), SMALL.n_shards).items():
            shards[s].process(touches)
        if i % 100 == 99:
            st = [sh.stats() for sh in shards]
            sizes.append((graph.stats()["edges"], graph.stats()["nodes"],
                          sum(x["entries"] for x in st), sum(x["addresses"] for x in st),
                          sum(x["first_seen"] for x in st), sum(len(x) for sh in shards for x in
                                                              (sh.states,))))
    assert len(sizes) >= 6
    warm = sizes[2:len(sizes) // 2]
    late = sizes[len(sizes) // 2:]
    for col in range(5):
        assert max(x[col] for x in late) <= 1.3 * max(x[col] for x in warm) + 10, (col, sizes)
    # entries are evicted when their address is touched, and idle addresses dropped after
    # long + lateness: so at most two windows of touches (8 per 3 s block, 2 sides) are held
    assert max(x[2] for x in sizes) <= 2 * 8 * (2 * SMALL.long_ms + SMALL.lateness_ms) // 3000
    assert graph.stats()["filed"] == graph.stats()["edges"]


def test_graph_evicts_everything_after_a_quiet_window(chain):
    g = GraphStage(SMALL, {"W"})
    g.process([chain.tx(0, "W", "A"), chain.tx(0, "A", "B"), chain.tx(3, "B", "W")])
    assert g.stats()["edges"] == 3 and g.stats()["exposed"] == 2
    g.process([chain.tx(64, "X", "Y")])
    assert g.stats() == {"nodes": 2, "edges": 1, "filed": 1, "exposed": 0}
    assert g.exposure("A") == (9, 0.0) and g.exposure("W") == (0, 1.0)


def test_a_refreshed_edge_lives_a_window_from_its_latest_transfer_and_a_late_one_from_its_own(chain):
    g = GraphStage(SMALL)  # long window 60 s, lateness 2 s
    g.process([chain.tx(0, "A", "B")])
    g.process([chain.tx(30, "A", "B"), chain.tx(30, "C", "D")])  # A->B refreshed at 30 s
    g.process([chain.tx(29, "E", "F")])  # late, within the lateness: filed between two buckets
    g.process([chain.tx(61, "X", "Y")])  # A->B's first bucket is due: re-filed under 30 s
    assert g.graph.has_edge("A", "B") and g.stats()["filed"] == g.stats()["edges"] == 4
    g.process([chain.tx(89.5, "X", "Z")])  # 29 s is due, 30 s is not
    assert not g.graph.has_edge("E", "F") and g.graph.has_edge("A", "B") and g.graph.has_edge("C", "D")
    g.process([chain.tx(90, "X", "Z")])
    assert not g.graph.has_edge("A", "B") and not g.graph.has_edge("C", "D")
    assert g.stats() == {"nodes": 3, "edges": 2, "filed": 2, "exposed": 0}


def test_hub_edges_are_not_expanded_and_work_is_capped(chain):
    cfg = WindowConfig(hub_degree=8, cycle_budget=64)
    g = GraphStage(cfg)
    # a hub fans out to 50 addresses, each of which pays B; B then pays the hub
    txs = [chain.tx(0, "HUB", f"U{i}") for i in range(50)] + [chain.tx(0, f"U{i}", "B") for i in range(50)]
    g.process(txs)
    facts = g.process([chain.tx(3, "B", "HUB")])[0][1]
    assert facts.cycles == 0  # both sides of the meet are hubs (> 8): not expanded
    small = GraphStage(WindowConfig(hub_degree=64, cycle_budget=10_000))
    small.process(txs)
    assert small.process([chain.tx(3, "B", "HUB")])[0][1].cycles == 50  # HUB->Ui->B->HUB, each i
    # 3-hop paths HUB -> Ui -> Vi -> B: the budget bounds the membership checks of the search
    deep = ([chain.tx(0, "HUB", f"U{i}") for i in range(50)] + [chain.tx(0, f"U{i}", f"V{i}") for i in range(50)]
            + [chain.tx(0, f"V{i}", "B") for i in range(50)])
    found = []
    for budget in (10_000, 60):
        g = GraphStage(WindowConfig(hub_degree=64, cycle_budget=budget))
        g.process(deep)
        found.append(g.process([chain.tx(3, "B", "HUB")])[0][1].cycles)
    assert found[0] == 50 and found[1] < 50


def test_cycles_through_a_hub_end_are_not_counted_and_the_same_loop_without_the_hub_is(chain):
    cfg = WindowConfig(hub_degree=8)
    # an "exchange" X pays 20 customers; customer C0 deposits back: C0 -> X closes X -> C0 -> X
    g = GraphStage(cfg)
    g.process([chain.tx(0, "X", f"C{i}") for i in range(20)])
    assert g.process([chain.tx(3, "C0", "X")])[0][1].cycles == 0  # X has 20 successors: a hub
    # the same loop where no end is a hub is a cycle
    g = GraphStage(cfg)
    g.process([chain.tx(0, "Y", f"C{i}") for i in range(5)])
    assert g.process([chain.tx(3, "C0", "Y")])[0][1].cycles == 1
    # a hub that only receives (many predecessors) closing a loop back to it is a hub end too
    g = GraphStage(cfg)
    g.process([chain.tx(0, f"D{i}", "SINK") for i in range(20)] + [chain.tx(0, "SINK", "A")])
    assert g.process([chain.tx(3, "A", "D0")])[0][1].cycles == 1  # D0 -> SINK -> A -> D0: ends A, D0
    assert g.process([chain.tx(3, "A", "SINK")])[0][1].cycles == 0  # end SINK has 20 payers


def test_an_address_entry_list_holds_at_most_as_many_dead_entries_as_live_ones(chain):
    state = ShardState(SMALL)
    for i in range(400):  # one payment every 9 s: ~7 entries live in the 60 s window
        state.process([(RECEIVER, chain.tx(i * 9, "P", "R"), NO_FACTS)])
        st = state.states["R"]
        live = len(st.entries) - st.head
        assert len(st.entries) <= 2 * live + 1
    assert 5 <= live <= 8


def test_watchlist_swap_and_non_value_kinds_do_not_propagate(chain):
    g = GraphStage(SMALL)
    out = g.process([chain.tx(0, "W", "A", kind=Kind.TRC20_APPROVE, raw=1), chain.tx(0, "W", "B")])
    assert out[0][1] == NO_FACTS and out[1][1] == NO_FACTS
    g.set_watchlist(["W"])
    approve, transfer = g.process([chain.tx(3, "W", "A", kind=Kind.TRC20_APPROVE, raw=1), chain.tx(3, "W", "B")])
    assert (approve[1].from_hops, approve[1].to_hops) == (0, 9)
    assert (transfer[1].from_hops, transfer[1].to_hops) == (0, 1)
    assert g.exposure("A") == (9, 0.0)


def test_a_closing_edge_names_the_other_addresses_on_its_ring(chain):
    g = GraphStage(WindowConfig(hub_degree=64), ["W"])
    # a 3-hop path B -> M1 -> N1 -> A and a 2-hop path B -> M2 -> A; W pays N1 and B
    g.process([chain.tx(0, "B", "M1"), chain.tx(0, "M1", "N1"), chain.tx(0, "N1", "A"),
               chain.tx(0, "B", "M2"), chain.tx(0, "M2", "A"), chain.tx(0, "W", "N1"), chain.tx(0, "W", "B")])
    (_, facts), = g.process([chain.tx(3, "A", "B")])
    assert facts.cycles == 2  # A->B->M2->A, A->B->M1->N1->A
    # sorted by address, each with its own exposure, and the receiver's (B: 1 hop) as the
    # counterparty's, as of the transfer
    assert [(m.address, m.cycles, m.hops, m.cp_hops) for m in facts.members] == [
        ("M1", 1, NO_HOPS, 1), ("M2", 1, NO_HOPS, 1), ("N1", 1, 1, 1)]
    routed = route([(chain.tx(3, "A", "B"), facts)], 8)
    members = sorted((m.address, s) for s, lst in routed.items() for role, _, m in lst if role == MEMBER)
    assert members == sorted((a, shard_of(a, 8)) for a in ("M1", "M2", "N1"))
    # the same edge again closes nothing new, and names nobody
    assert g.process([chain.tx(6, "A", "B")])[0][1].members == ()


def test_an_edge_closing_a_mesh_of_cycles_counts_them_but_names_no_members(chain):
    g = GraphStage(WindowConfig(hub_degree=64))
    g.process([chain.tx(0, "B", f"U{i}") for i in range(RING_MAX_CYCLES + 1)]
              + [chain.tx(0, f"U{i}", "A") for i in range(RING_MAX_CYCLES + 1)])
    facts = g.process([chain.tx(3, "A", "B")])[0][1]
    assert facts.cycles == RING_MAX_CYCLES + 1 and facts.members == ()
    g = GraphStage(WindowConfig(hub_degree=64))
    g.process([chain.tx(0, "B", f"U{i}") for i in range(RING_MAX_CYCLES)]
              + [chain.tx(0, f"U{i}", "A") for i in range(RING_MAX_CYCLES)])
    facts = g.process([chain.tx(3, "A", "B")])[0][1]
    assert [m.address for m in facts.members] == [f"U{i}" for i in range(RING_MAX_CYCLES)]
