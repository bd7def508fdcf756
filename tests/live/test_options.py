"""``run --node`` options build the sources, starting from ClickHouse when there is no snapshot."""

from __future__ import annotations

import argparse

import pytest

from pipeline.errors import ConfigError
from pipeline.sources.live_options import add_live_arguments, live_sources
from pipeline.sources.mempool import WebsocketPendingSource
from pipeline.sources.mempool_poll import PollingPendingSource
from pipeline.storage.clickhouse import open_storage


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_live_arguments(p)
    return p.parse_args(list(argv))


def test_live_sources_from_args(chdb_dsn: str) -> None:
    client, dsn = open_storage(chdb_dsn)
    s = live_sources(_parse("--node", "http://127.0.0.1:1", "--mempool", "ws://127.0.0.1:2/p",
                            "--confirmations", "5", "--api-key", "k"), client)
    assert s.node.start == -1 and s.node.confirmations == 5 and s.node.api_key == "k"
    assert isinstance(s.pending, WebsocketPendingSource) and s.pending_timeout_s == 120.0
    client.insert(f"{dsn.database}.checkpoints", [("node", 41, "x", 0, 0)],
                  column_names=["source", "block_number", "block_id", "ts", "committed_at"])
    s = live_sources(_parse("--node", "http://127.0.0.1:1", "--mempool", "poll"), client)
    assert s.node.start == 42 and isinstance(s.pending, PollingPendingSource)
    assert live_sources(_parse("--node", "http://h:1", "--from-block", "7"), client).node.start == 7
    with pytest.raises(ConfigError, match="mempool"):
        live_sources(_parse("--node", "http://h:1", "--mempool", "tcp://x"), client)
    with pytest.raises(ConfigError, match="pending-timeout"):
        live_sources(_parse("--node", "http://h:1", "--pending-timeout", "0"), client)


def test_resume_after_a_stop_in_the_middle_of_a_reorg(chdb_dsn: str) -> None:
    from pipeline.sources.node import resume_state

    client, dsn = open_storage(chdb_dsn)
    cols = ["number", "block_id", "parent_hash", "ts", "witness", "tx_count", "source", "orphaned"]
    rows = [(n, f"a{n}", f"a{n - 1}", 0, "", 0, "node", 0) for n in range(100, 106)]
    rows += [(n, f"a{n}", f"a{n - 1}", 0, "", 0, "node", 1) for n in (104, 105)]  # reorg marked them
    rows += [(104, "b104", "a103", 0, "", 0, "node", 0)]  # the new branch got as far as 104
    client.insert(f"{dsn.database}.blocks", rows[:6], column_names=cols)
    client.insert(f"{dsn.database}.blocks", rows[6:], column_names=cols)
    client.insert(f"{dsn.database}.checkpoints", [("node", 105, "a105", 0, 0)],
                  column_names=["source", "block_number", "block_id", "ts", "committed_at"])
    state = resume_state(client, "node", None, keep=4)
    assert state.next_height == 105  # not 106: height 105 of the new branch is still to come
    assert [(r.number, r.block_id) for r in state.recent] == [(102, "a102"), (103, "a103"), (104, "b104")]
    assert resume_state(client, "node", 101, keep=4).next_height == 101
