"""``run --node …`` options and the live sources they build (called by ``pipeline.cli.cmd_run``).

::

    run --node URL [--api-key-file FILE] [--from-block N] [--confirmations K] [--mempool ws://…|wss://…|poll]
        [--pending-timeout S] [--to-block N]

Where to start when Bytewax has no snapshot: ``--from-block``, else the block after the last
committed one in ClickHouse ``checkpoints`` for this source (with the ids of the stored blocks just
below it, so a reorg across the restart is still detected), else the head target.

The API key comes from ``--api-key``, ``--api-key-file``, ``[node] api_key_file`` or ``[node]
api_key`` / ``TRONRISK_NODE_API_KEY``, first found wins. ``--api-key`` works but warns: every local
user sees a process's arguments in ``ps``. The limits on node answers and on the pending feed come
from ``[node]`` (:class:`pipeline.config.NodeSettings`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from pipeline.config import NodeSettings
from pipeline.errors import ConfigError
from pipeline.redact import read_secret_file, register_secret, warn_command_line
from pipeline.sources.mempool import WebsocketPendingSource
from pipeline.sources.mempool_poll import PollingPendingSource
from pipeline.sources.node import NodeSource, resume_state

API_KEY_ENV = "TRONRISK_NODE_API_KEY"


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live mode (instead of --input)")
    g.add_argument("--node", metavar="URL", help="follow a TRON full node or TronGrid (http(s)://…)")
    g.add_argument("--api-key", metavar="KEY", default=None,
                   help=f"TRON-PRO-API-KEY for TronGrid or a gateway; visible in `ps`: prefer --api-key-file "
                        f"or {API_KEY_ENV}")
    g.add_argument("--api-key-file", metavar="FILE", default=None,
                   help="read the TRON-PRO-API-KEY from FILE (one line; chmod 600)")
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


def api_key(args: argparse.Namespace, node: NodeSettings) -> str | None:
    """The node API key, from the first of ``--api-key``, ``--api-key-file``, ``node.api_key_file``,
    ``node.api_key`` that is set; registered so no log line or error can show it."""
    flag_file = getattr(args, "api_key_file", None)
    if args.api_key and flag_file:
        raise ConfigError("give --api-key or --api-key-file, not both")
    if args.api_key:
        warn_command_line("--api-key", f"--api-key-file FILE or {API_KEY_ENV}")
        register_secret(args.api_key)
        return args.api_key
    if flag_file:
        return read_secret_file(flag_file, "--api-key-file")
    if node.api_key_file:
        return read_secret_file(node.api_key_file, "node.api_key_file")
    register_secret(node.api_key)
    return node.api_key or None


def live_sources(args: argparse.Namespace, client: Any, source_name: str = "node",
                 node: NodeSettings | None = None) -> LiveSources:
    """Build the sources from parsed ``args`` and the ``[node]`` settings; ``client`` is a
    ClickHouse client on the database (for the checkpoint). The key is never logged."""
    node = node or NodeSettings()
    key = api_key(args, node)
    state = resume_state(client, source_name, args.from_block)
    source = NodeSource(args.node, key, source_name, args.confirmations, state.next_height,
                        recent=state.recent, end=args.to_block, max_answer_bytes=node.max_answer_bytes)
    pending: WebsocketPendingSource | PollingPendingSource | None = None
    if args.mempool == "poll":
        pending = PollingPendingSource(args.node, key, max_answer_bytes=node.max_answer_bytes)
    elif args.mempool:
        pending = WebsocketPendingSource(args.mempool, queue_size=node.pending_queue_messages,
                                         queue_bytes=node.pending_queue_bytes,
                                         max_message_bytes=node.pending_max_message_bytes)
    if args.pending_timeout <= 0:
        raise ConfigError(f"--pending-timeout must be > 0, got {args.pending_timeout}")
    return LiveSources(source, pending, args.pending_timeout)
