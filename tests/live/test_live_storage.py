"""Live flow into real chDB: resume from ClickHouse, a reorg marked/removed/re-evaluated, health rows."""

from __future__ import annotations

import time
from functools import partial
from typing import Any, NamedTuple

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from pipeline import flow as core
from pipeline.live.follower import Reorg
from pipeline.live.health import SourceHealth
from pipeline.records import Alert
from pipeline.sinks.clickhouse import PART
from pipeline.sources.live_flow import LiveClickHouseSink, side_rows
from pipeline.sources.node import NodeSource, resume_state, start_height
from pipeline.storage.clickhouse import open_storage
from pipeline.tron.tokens import TokenRegistry
from tests.live.conftest import first_number

LIVE: tuple[type, ...] = (Reorg, SourceHealth)


def _decode(tokens: TokenRegistry, item: Any) -> Any:
    """The wiring proposed for pipeline.flow._decode: live items pass through."""
    return item if isinstance(item, (*LIVE, _Late)) else core._decode(tokens, item)


class _Late(NamedTuple):
    alerts: list[Alert]


def _rows(item: Any) -> list[Any]:
    """The wiring proposed for pipeline.flow._storage_rows."""
    if isinstance(item, _Late):
        time.sleep(1.0)  # after the node source's blocks and reorg have reached the sink
        return [("alerts", item.alerts)]
    return side_rows(item) if isinstance(item, LIVE) else core._storage_rows(item)


def _run(source: NodeSource, dsn: str, late: list[Alert] | None = None) -> None:
    """The live flow; ``late`` alerts enter the sink after everything else (a lagging analytics)."""
    flow = Dataflow("live_test")
    raw = op.input("input", flow, source)
    if late:
        raw = op.merge("with_late", raw, op.input("late", flow, TestingSource([_Late(late)])))
    decoded = op.map("decode", raw, partial(_decode, TokenRegistry.build()))
    rows = op.flat_map("storage_rows", decoded, _rows)
    keyed = op.key_on("to_sink", op.filter("nonempty", rows, lambda tr: bool(tr[1])), lambda _tr: PART)
    op.output("clickhouse", keyed, LiveClickHouseSink(dsn, 10_000, 0.05))
    run_main(flow)


def _alert(tx_id: str, block_number: int, status: str = "confirmed") -> Alert:
    return Alert(f"a-{tx_id[:8]}", 1_714_000_000_000, 1_714_000_000_000, block_number, tx_id, "TAddr", "r1",
                 "v1", "high", 75.0, status, "block", "t", ("x",), "{}")


def test_reorg_between_runs_resumed_from_clickhouse(devnet: Any, live_chain: list[dict], chdb_dsn: str) -> None:
    client, dsn = open_storage(chdb_dsn)
    first = first_number(live_chain)
    head = devnet.set_head(first + 6)
    assert start_height(client, "node", None) == -1
    kw = {"confirmations": 0, "poll_s": 0.05, "base_backoff_s": 0.05, "health_every_s": 0}
    _run(NodeSource(devnet.http_url, start=first, end=head, **kw), chdb_dsn)
    assert start_height(client, "node", None) == head + 1
    assert start_height(client, "node", first + 2) == first + 2
    old = dict(client.query("SELECT number, block_id FROM blocks FINAL").result_rows)
    assert sorted(old) == list(range(first, head + 1))
    top_txs = [t["txID"] for t in live_chain[6]["transactions"]]
    # alerts already written for the block that will be orphaned: one tx stays, the last one goes
    client.insert(f"{dsn.database}.alerts", [_alert(top_txs[0], head), _alert(top_txs[-1], head)],
                  column_names=Alert._fields)

    devnet.reorg(depth=2, drop_txs=1)
    devnet.set_head(head + 2)
    state = resume_state(client, "node", None, keep=8)
    assert state.next_height == head + 1 and [r.number for r in state.recent] == list(range(head - 7 + 1, head + 1))
    late = _alert(top_txs[-2], head - 1)._replace(alert_id="late-old-branch")
    late = late._replace(tx_id=[t["txID"] for t in live_chain[5]["transactions"]][-1])  # left out at head-1
    _run(NodeSource(devnet.http_url, start=state.next_height, recent=state.recent, end=head + 2, **kw), chdb_dsn,
         late=[late])

    q = lambda sql: client.query(sql).result_rows
    orphaned = q("SELECT number, block_id FROM blocks FINAL WHERE orphaned = 1 ORDER BY number")
    assert orphaned == [(head - 1, old[head - 1]), (head, old[head])]
    canonical = dict(q("SELECT number, block_id FROM blocks FINAL WHERE orphaned = 0"))
    assert sorted(canonical) == list(range(first, head + 3))
    assert canonical[head] != old[head] and canonical[head - 2] == old[head - 2]
    # transfers: the tx the fork left out is gone, the others are there once
    at_head = {r[0] for r in q(f"SELECT tx_id FROM transfers FINAL WHERE block_number = {head}")}
    assert at_head == set(top_txs[:-1])
    assert q(f"SELECT count() FROM transfers FINAL WHERE block_number = {head}")[0][0] == 7
    # alerts: the orphaned tx's alert is dropped, the kept one stays confirmed
    status = dict(q("SELECT tx_id, status FROM alerts FINAL"))
    assert status == {top_txs[0]: "confirmed", top_txs[-1]: "dropped", late.tx_id: "dropped"}
    reorgs = q("SELECT number, block_id, new_block_id, length(kept_tx_ids), ancestor FROM orphaned_blocks FINAL "
               "ORDER BY number")
    assert reorgs == [(head - 1, old[head - 1], canonical[head - 1], 7, head - 2),
                      (head, old[head], canonical[head], 7, head - 2)]
    health = q("SELECT source, last_height, reorgs_total, connected FROM source_health FINAL ORDER BY at DESC LIMIT 1")
    assert health[0][0] == "node" and health[0][2] == 1 and health[0][3]
    assert q("SELECT block_number FROM checkpoints FINAL WHERE source = 'node'") == [(head + 2,)]
