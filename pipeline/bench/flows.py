"""The benchmark's dataflow, built the way :func:`pipeline.runner.replay` builds it, for cluster runs.

``replay`` runs in one process. A multi-process run needs the same flow in every process, each
started with its process id and the address list, so this module has a module-level factory that
``bytewax.run`` can call::

    python -m bytewax.run "pipeline.bench.flows:replay_flow('IN.jsonl.gz', 'chdb:///tmp/x')" \\
        -i0 -a "127.0.0.1:2101;127.0.0.1:2102"      # and -i1 in the second process

Only the worker owning the ClickHouse sink's single partition opens chDB (the sink builds its
client lazily in ``build_part``), so the processes do not contend for the data directory.

Known crash, worked around here: closing a chDB client on a Bytewax *worker thread* -- any run
with more than one worker, threads (``-w2``) or processes -- aborts the process with
``double free or corruption (out)`` after all data is written, and the other cluster members then
hang on a dead peer. Closing the same client from a plain Python thread works (and so does a
single-worker run, whose worker is the main thread). Until the ClickHouse sink does that itself,
:func:`make_flow` wraps the flow's sink so its ``close`` runs on a short-lived Python thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from pipeline.config import Settings, load_settings
from pipeline.flow import FlowSpec, build_flow
from pipeline.records import DecodedBlock
from pipeline.sources.replay import ReplaySource


def make_flow(paths: Sequence[str], settings: Settings, speed: float = 0.0,
              on_block: Callable[[DecodedBlock], None] | None = None,
              on_commit: Callable[[dict[str, list[tuple]]], None] | None = None) -> Dataflow:
    """The full default flow (decode, storage rows, minute stats, analytics) over replay files."""
    analytics = None
    if settings.analytics.enabled:
        from pipeline.analytics import build_analytics
        from pipeline.assemble import analytics_spec

        spec = analytics_spec(settings)
        analytics = build_analytics(spec) if spec is not None else None
    flow = build_flow(FlowSpec(
        source=ReplaySource(tuple(paths), "replay", speed, settings.pipeline.batch_blocks),
        dsn=settings.clickhouse.dsn,
        tokens=settings.token_registry(),
        flush_rows=settings.clickhouse.flush_rows,
        max_delay_s=settings.clickhouse.max_delay_ms / 1000.0,
        analytics=analytics,
        on_block=on_block,
        on_commit=on_commit,
    ))
    _close_sinks_off_worker_thread(flow)
    return flow


def _close_sinks_off_worker_thread(flow: Dataflow) -> None:
    for step in flow.substeps:
        sink = getattr(step, "sink", None)
        if isinstance(sink, FixedPartitionedSink) and not isinstance(sink, _OffThreadClose):
            object.__setattr__(step, "sink", _OffThreadClose(sink))


class _OffThreadClose(FixedPartitionedSink):
    """Delegates to ``inner``; each partition's ``close`` runs on a fresh Python thread."""

    def __init__(self, inner: FixedPartitionedSink) -> None:
        self.inner = inner

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def part_fn(self, item_key: str) -> int:
        return self.inner.part_fn(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> StatefulSinkPartition:
        return _OffThreadClosePartition(self.inner.build_part(step_id, for_part, resume_state))


class _OffThreadClosePartition(StatefulSinkPartition):
    def __init__(self, inner: StatefulSinkPartition) -> None:
        self.inner = inner

    def write_batch(self, values: list) -> None:
        self.inner.write_batch(values)

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def close(self) -> None:
        errors: list[BaseException] = []

        def close() -> None:
            try:
                self.inner.close()
            except BaseException as err:  # noqa: BLE001 - re-raised on the worker thread
                errors.append(err)

        t = threading.Thread(target=close, name="sink-close")
        t.start()
        t.join()
        if errors:
            raise errors[0]


def replay_flow(path: str, dsn: str, speed: float = 0.0, config: str | None = None) -> Dataflow:
    """Factory for ``python -m bytewax.run``: settings from ``config``/environment, DSN as given."""
    return make_flow([path], load_settings(config, overrides={"clickhouse.dsn": dsn}), speed)


def run_cluster(flow: Dataflow, process_id: int, addresses: list[str]) -> None:
    """Run this process's share of a multi-process dataflow (one worker thread per process)."""
    from bytewax.run import cli_main

    cli_main(flow, workers_per_process=1, process_id=process_id, addresses=addresses)
