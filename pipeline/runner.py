"""Run a replay end to end in this process: the piece ``run``, the main job and ``bench`` share.

Errors raised inside Bytewax steps reach us wrapped in Bytewax's own exception types; the
original :class:`PipelineError` is found on the cause chain and re-raised as it was, so the CLI
can still print one clear line. Any other exception that stops the dataflow (a bug, a library
failing on input nobody foresaw) becomes a :class:`DataflowError` naming the step and the root
cause in one line; the traceback goes to the debug log. A final flush that failed while the
sink was closing (the sink never raises there: see :mod:`pipeline.sinks.clickhouse`) is raised
here once the dataflow has stopped. So a run that cannot make progress always ends, non-zero,
with one line -- it never hangs and never reports success.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bytewax.inputs import Source

from pipeline.assemble import sink_delay_s
from pipeline.config import Settings
from pipeline.errors import ConfigError, PipelineError
from pipeline.flow import Analytics, FlowSpec, build_flow, run
from pipeline.records import DecodedBlock
from pipeline.sinks.clickhouse import release_abort_signal, take_close_failures
from pipeline.sources.files import ReadLimits, resolve_inputs
from pipeline.sources.replay import ReplaySource
from pipeline.summary import RunStats

log = logging.getLogger(__name__)


class DataflowError(PipelineError):
    """The dataflow stopped on an exception that is not a :class:`PipelineError`."""


@dataclass
class ReplayResult:
    stats: RunStats
    seconds: float


def replay(paths: Sequence[str], settings: Settings, speed: float = 0.0, progress: bool = True,
           analytics: Analytics | None = None, source_name: str = "replay",
           on_block: Callable[[DecodedBlock], None] | None = None,
           on_commit: Callable[[dict[str, list[tuple]]], None] | None = None,
           process_id: int | None = None, addresses: list[str] | None = None) -> ReplayResult:
    """Replay files through the full flow into ``settings.clickhouse.dsn``; blocks until done.

    ``on_block`` sees each decoded block as it enters the analytics, ``on_commit`` the rows of each
    committed insert batch per table (both called from worker threads): the benchmark's hooks.
    """
    resolve_inputs(list(paths))  # fail fast, in this thread, on a missing file
    source = ReplaySource(tuple(paths), source_name, speed, settings.pipeline.batch_blocks,
                          ReadLimits(**dataclasses.asdict(settings.limits)))
    return execute(source, settings, progress, analytics, on_block, on_commit, process_id, addresses,
                   paced=speed > 0)


def execute(source: Source, settings: Settings, progress: bool = True, analytics: Analytics | None = None,
            on_block: Callable[[DecodedBlock], None] | None = None,
            on_commit: Callable[[dict[str, list[tuple]]], None] | None = None,
            process_id: int | None = None, addresses: list[str] | None = None,
            pending: Source | None = None, pending_timeout_s: float = 120.0, live: bool = False,
            paced: bool = False) -> ReplayResult:
    """Run the full flow on any block ``source`` (replay files or a node) until it ends.

    ``paced`` (or ``live``): blocks arrive at chain pace, so buffers flush sooner (latency over
    batch size; see ``clickhouse.live_max_delay_ms`` and ``analytics.live_max_wait_ms``).
    """
    paced = paced or live
    audit = None
    spec_ = None
    if analytics is None and settings.analytics.enabled:
        from pipeline.analytics import build_analytics
        from pipeline.assemble import analytics_spec

        spec_ = spec = analytics_spec(settings, paced)
        analytics = build_analytics(spec) if spec is not None else None
        if spec is not None:  # the audit trail chains what the sink commits (pipeline/audit/hook.py)
            from pipeline.audit.hook import audit_hook

            audit = audit_hook(settings.clickhouse.dsn, spec.ruleset, spec.scorer,
                               window_ms=settings.analytics.long_window_s * 1000,
                               watchlists=spec.hot.watchlists if spec.hot is not None else None,
                               audit=settings.audit)
            if spec.hot is not None:  # what a reload puts in force is chained like the start's
                spec.hot.subscribe(audit.reloaded)
                if spec.hot.allowlists is not None:
                    audit.allowlists_loaded(spec.hot.allowlists)
                    spec.hot.subscribe_allowlists(audit.allowlists_loaded)
            on_commit = audit if on_commit is None else _both(audit, on_commit)
    stats = RunStats()
    bar = _progress_bar() if progress else None

    def block_seen(block: DecodedBlock) -> None:
        if on_block is not None:
            on_block(block)
        stats.blocks += 1
        stats.transactions += block.block.tx_count
        stats.records += len(block.transfers)
        stats.dead_letters += len(block.dead_letters)
        if bar is not None:
            bar.update(1)
            if stats.blocks % 20 == 0:
                elapsed = max(time.monotonic() - started, 1e-9)
                bar.set_postfix_str(f"{stats.transactions / elapsed:,.0f} tx/s", refresh=False)

    pending_spec = None
    if pending is not None:
        from pipeline.sources.live_flow import PendingSpec

        pending_spec = PendingSpec(settings.token_registry(), getattr(spec_, "ruleset", None), pending_timeout_s,
                                   recovery=bool(settings.pipeline.recovery_dir), hot=getattr(spec_, "hot", None))
    spec = FlowSpec(
        source=source,
        pending=pending,
        pending_spec=pending_spec,
        live=live,
        dsn=settings.clickhouse.dsn,
        tokens=settings.token_registry(),
        flush_rows=settings.clickhouse.flush_rows,
        max_delay_s=sink_delay_s(settings, paced),
        analytics=analytics,
        on_block=block_seen,
        on_commit=stats.on_commit if on_commit is None else _both(stats.on_commit, on_commit),
        on_sync=audit.sync if audit is not None else None,
        durable=bool(settings.pipeline.recovery_dir),
    )
    delivery = None
    # Delivery runs where ClickHouse is owned; cluster members leave it to `tickets deliver`.
    if settings.tickets.enabled and analytics is not None and process_id is None:
        from pipeline.tickets.service import routing_for, start_delivery

        delivery = start_delivery(settings.clickhouse.dsn, routing_for(settings),
                                  audit=audit.record if audit is not None else None)  # deliveries are chained
    started = time.monotonic()
    take_close_failures()  # a previous run's, in this process: not ours
    if settings.clickhouse.dsn.startswith("chdb://"):
        release_abort_signal()  # the engine started above (audit hook, live mode) installed it
    try:
        run(build_flow(spec), workers=settings.pipeline.workers,
            epoch_interval_s=settings.pipeline.epoch_interval_s,
            recovery=recovery_config(settings.pipeline.recovery_dir),
            process_id=process_id, addresses=addresses)
        failures = take_close_failures()
        if failures:
            raise failures[0]
    except Exception as err:  # noqa: BLE001 - whatever stopped the dataflow, as one line
        raise dataflow_error(err) from None
    finally:
        if bar is not None:
            bar.close()
        if delivery is not None:
            delivery.drain(settings.tickets.drain_s)  # what is still open stays in the outbox
            delivery.stop()
        if audit is not None:
            audit.close()  # records the final chain head
    return ReplayResult(stats, time.monotonic() - started)


def recovery_config(directory: str):
    """Bytewax recovery in ``directory``, created (one partition) on first use; None when unset.

    With recovery on, every epoch (``pipeline.epoch_interval_s``) snapshots the source position and
    all operator state; after a crash the same command resumes from the last snapshot, and the
    idempotent tables absorb what is written twice. A finished run's directory resumes at its end:
    delete it to replay the same input again from the start.

    The directory is trusted input: Bytewax stores operator state as pickles and unpickles them on
    resume, so whoever can write a snapshot runs code as the pipeline. It is created private (0700),
    and a directory that another user owns or that others can write is refused.
    """
    if not directory:
        return None
    from bytewax.recovery import RecoveryConfig, init_db_dir

    path = Path(directory)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--recovery-dir {path}: cannot create ({err.strerror})") from None
    private_dir(path, "--recovery-dir")
    if not any(path.iterdir()):
        init_db_dir(path, 1)
    return RecoveryConfig(path)


def private_dir(path: Path, what: str) -> None:
    """Refuse a directory whose contents someone else could replace (ConfigError naming it)."""
    import os
    import stat

    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{what} {path}: not a directory")
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{what} {path}: owned by another user or writable by others; its snapshots are "
                          f"unpickled on resume (code execution): use a directory only this user can write "
                          f"(chmod 700)")


def _both(first: Callable[[dict[str, list[tuple]]], None],
          second: Callable[[dict[str, list[tuple]]], None]) -> Callable[[dict[str, list[tuple]]], None]:
    def call(rows: dict[str, list[tuple]]) -> None:
        first(rows)
        second(rows)
    return call


def dataflow_error(err: BaseException) -> PipelineError:
    """What stopped a dataflow, as one :class:`PipelineError`: the original one if there is one on
    the cause chain, else a :class:`DataflowError` naming the Bytewax step and the root cause."""
    cause = find_pipeline_error(err)
    if cause is not None:
        return cause
    log.debug("the dataflow stopped", exc_info=err)
    step, root, seen = "", err, set()
    node: BaseException | None = err
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        found = _STEP.search(str(node))
        step = step or (found.group(1) if found else "")
        root = node
        node = node.__cause__ or node.__context__
    text = str(root).splitlines()[0][:300] if str(root) else ""
    where = f' in step "{step}"' if step else ""
    return DataflowError(f"the dataflow stopped{where}: {type(root).__name__}"
                         + (f": {text}" if text else "") + " (--log-level DEBUG shows the traceback)")


_STEP = re.compile(r'in step "([^"]+)"')


def find_pipeline_error(err: BaseException | None) -> PipelineError | None:
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, PipelineError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _progress_bar():
    from tqdm import tqdm

    return tqdm(unit=" blocks", desc="replay", dynamic_ncols=True, mininterval=0.5)
