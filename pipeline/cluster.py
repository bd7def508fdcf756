"""Several Bytewax processes on one machine: ``run --processes N``.

Bytewax's cluster mode runs the same dataflow in N processes that exchange items over TCP. Each
process is started as ``run_pipeline.py run … --process-id I --addresses A0;A1;…`` and builds the
same flow; Bytewax assigns every partition to one worker of the cluster. The replay source has one
partition and the ClickHouse sink has one partition, so exactly one process reads the input and
exactly one opens ClickHouse (chDB allows one process per data directory); graph, shards and
scoring are spread over all workers by key. Because address work is keyed by a fixed shard count,
the results are the same as with one process.

Across machines, run the same command on each host with ``--process-id`` and the full, ordered
``--addresses`` list (``host:port`` per process); with chDB every process must be able to reach the
one that owns the sink, so use a ClickHouse server DSN there. Only on a trusted network: Bytewax's
connections between members are unauthenticated and unencrypted and carry pickled Python objects,
so anyone who can reach a member's port can make it run code. :func:`free_addresses` binds the
loopback interface for that reason.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.errors import PipelineError

log = logging.getLogger(__name__)
RUN_PIPELINE = Path(__file__).resolve().parents[1] / "run_pipeline.py"


def free_addresses(n: int, host: str = "127.0.0.1") -> list[str]:
    """``n`` distinct free TCP ports on ``host`` (bound briefly to reserve them from the OS)."""
    socks, out = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
            out.append(f"{host}:{s.getsockname()[1]}")
    finally:
        for s in socks:
            s.close()
    return out


def run_local_cluster(member_args: Sequence[str], processes: int, timeout_s: float | None = None,
                      env: Mapping[str, str] | None = None) -> float:
    """Start ``processes`` members with ``member_args`` (a ``run`` command line) and wait for all;
    ``env`` is added to their environment (settings that must not appear in ``ps``, like a DSN).

    Returns the wall time. A member that fails stops the others and raises one clear error with
    the last line it printed.
    """
    addresses = ";".join(free_addresses(processes))
    procs = []
    started = time.monotonic()
    for i in range(processes):
        cmd = [sys.executable, str(RUN_PIPELINE), *member_args, "--no-progress",
               "--process-id", str(i), "--addresses", addresses]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, **env} if env else None))
    failed: tuple[int, str] | None = None
    try:
        for i, p in enumerate(procs):
            _, err = p.communicate(timeout=timeout_s)
            if p.returncode != 0 and failed is None:
                lines = [ln for ln in err.strip().splitlines() if ln.strip()]
                failed = (i, lines[-1] if lines else f"exit code {p.returncode}")
                for other in procs:
                    if other.poll() is None:
                        other.terminate()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if failed is not None:
        raise PipelineError(f"cluster process {failed[0]} of {processes} failed: {failed[1]}")
    return time.monotonic() - started
