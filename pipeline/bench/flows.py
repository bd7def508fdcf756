"""The benchmark's dataflow, built the way :func:`pipeline.runner.replay` builds it, for cluster runs.

``replay`` runs in one process. A multi-process run needs the same flow in every process, each
started with its process id and the address list, so this module has a module-level factory that
``bytewax.run`` can call::

    python -m bytewax.run "pipeline.bench.flows:replay_flow('IN.jsonl.gz', 'chdb:///tmp/x')" \\
        -i0 -a "127.0.0.1:2101;127.0.0.1:2102"      # and -i1 in the second process

Only the worker owning the ClickHouse sink's single partition opens chDB (the sink builds its
client lazily in ``build_part``), so the processes do not contend for the data directory.

The harness itself runs cluster members through :func:`pipeline.runner.replay` with
``process_id``/``addresses`` (the path ``run --processes N`` takes); this factory is for launching
the same flow by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bytewax.dataflow import Dataflow

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
    return build_flow(FlowSpec(
        source=ReplaySource(tuple(paths), "replay", speed, settings.pipeline.batch_blocks),
        dsn=settings.clickhouse.dsn,
        tokens=settings.token_registry(),
        flush_rows=settings.clickhouse.flush_rows,
        max_delay_s=settings.clickhouse.max_delay_ms / 1000.0,
        analytics=analytics,
        on_block=on_block,
        on_commit=on_commit,
    ))


def replay_flow(path: str, dsn: str, speed: float = 0.0, config: str | None = None) -> Dataflow:
    """Factory for ``python -m bytewax.run``: settings from ``config``/environment, DSN as given."""
    return make_flow([path], load_settings(config, overrides={"clickhouse.dsn": dsn}), speed)
