"""``run --node …`` options and the live sources they build (called by ``pipeline.cli.cmd_run``).

::

    run --node URL [--api-key KEY] [--from-block N] [--confirmations K] [--mempool ws://…|wss://…|poll]
        [--pending-timeout S] [--to-block N]

Where to start when Bytewax has no snapshot: ``--from-block``, else the block after the last
committed one in ClickHouse ``checkpoints`` for this source (with the ids of the stored blocks just
below it, so a reorg across the restart is still detected), else the head target.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ConfigError
from pipeline.sources.mempool import WebsocketPendingSource
from pipeline.sources.mempool_poll import PollingPendingSource
from pipeline.sources.node import NodeSource, resume_state

API_KEY_ENV = "TRONRISK_NODE_API_KEY"


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live mode (instead of --input)")
    g.add_argument("--node", metavar="URL", help="follow a TRON full node or TronGrid (http(s)://…)")
    g.add_argument("--api-key", metavar="KEY", default=None,
                   help=f"TRON-PRO-API-KEY for TronGrid or a gateway (or set {API_KEY_ENV})")
    g.add_argument("--from-block", type=int, default=None, metavar="N",
                   help="first block when there is no checkpoint (default: the last committed block + 1, else the head)")
    g.add_argument("--to-block", type=int, default=None, metavar="N", help="stop after this block (default: follow for ever)")
    g.add_argument("--confirmations", type=int, default=19, metavar="K",
                   help="follow K blocks behind the head; -1 = the solidified block (default 19)")
    g.add_argument("--mempool", metavar="ws://…|poll", default=None,
                   help="pending transactions from a websocket feed, or 'poll' the node's pending pool")
    g.add_argument("--pending-timeout", type=float, default=120.0, metavar="S",
                   help="a pending transaction not in a block after S seconds is dropped (default 120)")


@dataclass(frozen=True)
class LiveSources:
    node: NodeSource
    pending: WebsocketPendingSource | PollingPendingSource | None
    pending_timeout_s: float


def live_sources(args: argparse.Namespace, client: Any, source_name: str = "node",
                 api_key: str | None = None) -> LiveSources:
    """Build the sources from parsed ``args``; ``client`` is a ClickHouse client on the database
    (for the checkpoint); ``api_key`` comes from the settings (``[node] api_key`` or
    ``TRONRISK_NODE_API_KEY``) when ``--api-key`` is not given. The key is never logged."""
    api_key = args.api_key or api_key or None
    state = resume_state(client, source_name, args.from_block)
    node = NodeSource(args.node, api_key, source_name, args.confirmations, state.next_height,
                      recent=state.recent, end=args.to_block)
    pending: WebsocketPendingSource | PollingPendingSource | None = None
    if args.mempool == "poll":
        pending = PollingPendingSource(args.node, api_key)
    elif args.mempool:
        pending = WebsocketPendingSource(args.mempool)
    if args.pending_timeout <= 0:
        raise ConfigError(f"--pending-timeout must be > 0, got {args.pending_timeout}")
    return LiveSources(node, pending, args.pending_timeout)
