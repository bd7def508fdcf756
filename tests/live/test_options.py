"""``run --node`` options build the sources, starting from ClickHouse when there is no snapshot."""

from __future__ import annotations

import argparse

import pytest

from pipeline.errors import ConfigError
from pipeline.sources.live_options import add_live_arguments, live_sources
from pipeline.sources.mempool import PollingPendingSource, WebsocketPendingSource
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
