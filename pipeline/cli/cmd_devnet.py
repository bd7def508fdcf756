"""``run_pipeline.py devnet``: serve a replayed chain as a local TRON full node, until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import time

log = logging.getLogger(__name__)

DEFAULT_INPUT = "data/sim"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "devnet", help="serve replay blocks over the TRON node HTTP API and a pending-tx websocket",
        description="Serve a chain of blocks (replay input: JSONL/gzip of getblockbynum objects, a "
                    "getblockbylimitnext file, or a directory of them) as a local TRON full node: "
                    "/wallet/getnowblock, getblockbynum, getblockbylimitnext, gettransactioninfobyblocknum, "
                    "pending-pool endpoints and more, so tronpy's HTTPProvider works against it; plus a "
                    "websocket pushing each transaction shortly before its block. The head advances one "
                    "block every 3 s / SPEED. Faults for testing live mode: POST /devnet/{fail,slow,reorg,"
                    "ghost,drop_ws,restart,head,status} (see pipeline/devnet/server.py).")
    p.add_argument("--input", metavar="FILE|DIR", default=DEFAULT_INPUT,
                   help=f"replay input (default {DEFAULT_INPUT}, e.g. the output of `simulate`)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="HTTP API port (default 8090; 0 = any free port)")
    p.add_argument("--ws-port", type=int, default=8091,
                   help="websocket port for pending transactions (default 8091; 0 = any)")
    p.add_argument("--speed", type=float, default=1.0, help="blocks come every 3 s / SPEED (default 1)")
    p.add_argument("--all", action="store_true", dest="serve_all", help="serve every block at once")
    p.add_argument("--initial-blocks", type=int, default=1, metavar="N",
                   help="blocks already produced at start, so a client can catch up (default 1)")
    p.add_argument("--solid-lag", type=int, default=19, help="solidified head lags the head by this many blocks")
    p.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.devnet import Devnet, DevnetConfig  # imported on use: keeps --help fast

    config = DevnetConfig(host=args.host, port=args.port, ws_port=args.ws_port, speed=args.speed,
                          serve_all=args.serve_all, initial_blocks=args.initial_blocks,
                          solid_lag=args.solid_lag)
    devnet = Devnet.from_path(args.input, config)
    devnet.start()
    chain = devnet.chain
    every = "all at once" if args.serve_all else f"one every {config.interval_s:g} s"
    print(f"devnet serving blocks {chain.first_number}..{chain.last_number} ({len(chain)} blocks, {every})")
    print(f"  node API   {devnet.http_url}   e.g. tronpy Tron(HTTPProvider(\"{devnet.http_url}\"))")
    print(f"  pending    {devnet.ws_url}   (?visible=true for base58 addresses)")
    print(f"  control    POST {devnet.http_url}/devnet/status | fail | slow | reorg | ghost | drop_ws | restart | head")
    print("Ctrl-C to stop.", flush=True)
    deadline = time.monotonic() + args.duration if args.duration > 0 else None
    last_head = -1
    try:
        while deadline is None or time.monotonic() < deadline:
            head = devnet.head
            if head != last_head:
                log.info("devnet head %d", head)
                last_head = head
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        status = devnet.status()
        devnet.stop()
    print(f"devnet stopped at head {status['head']} (pending txs pushed: {status['ws_sent']}, "
          f"faults injected: {status['faults_injected']})")
    return 0
