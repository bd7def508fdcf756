"""Bytewax source following a TRON node's head: ranges when behind, one by one at the head.

Follows the head at ``confirmations`` blocks (``-1``: the solidified block, ``/walletsolidity``),
fetches ``getblockbylimitnext`` ranges while behind and ``getblockbynum`` at the head, attaches
each block's receipts (``gettransactioninfobyblocknum``) as ``payload["_receipts"]``, and checks
every block's ``parentHash`` against the blocks it emitted (:mod:`pipeline.live.follower`): a
switch of branch is emitted as a :class:`Reorg` item followed by the new branch.

Never sleeps: waits (polling the head, backing off) go through ``next_awake``. Failures are
classified in :mod:`pipeline.sources.tron_http`; retryable ones back off exponentially with
jitter (honouring ``Retry-After``) and retry for ever, since a node that is down or rate-limiting
will come back. A height the node keeps answering as missing although its head is past it is a
*gap*: after ``gap_attempts`` tries it is logged as an error and emitted as a ``DeadLetter``, and
following goes on -- never a silent skip.

Every answer is read with a size cap (``max_answer_bytes``, see :mod:`pipeline.sources.tron_http`)
and validated before use (:mod:`pipeline.live.answers`): no answer can raise out of the source. A
range over the cap is asked again in halves; a single block over it is a gap (tries, then a dead
letter and the next height); receipts over it are like receipts never served; a head block over
it is retried with backoff and dead-lettered. The node is named by its redacted URL everywhere
(logs, ``source_health``, ``dead_letters``): gateways put keys in the path.

Snapshot: the next height and the ids of the last ``keep`` emitted blocks (:class:`FollowState`),
taken after the last item emitted. Without a snapshot the source starts at ``start`` (see
:func:`start_height`: ``--from-block``, else the ``checkpoints`` table) or at the head target.
Health rows (:class:`SourceHealth`) are emitted every ``health_every_s`` seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from pipeline.errors import ConfigError
from pipeline.live.answers import block_or_none, block_timestamp, head_height, range_blocks, receipts_for
from pipeline.live.backoff import Backoff
from pipeline.live.follower import BlockRef, Follower, FollowState, ForkTooDeep, Reorg, block_ref, tx_ids
from pipeline.live.health import HealthMeter, SourceHealth
from pipeline.records import DeadLetter, RawBlock
from pipeline.redact import redact_url
from pipeline.sources.tron_http import DEFAULT_MAX_ANSWER_BYTES, NodeClient, NodeError

log = logging.getLogger(__name__)

START_AT_HEAD = -1
RANGE_LIMIT = 100  # java-tron's cap for getblockbylimitnext
NodeItem = RawBlock | Reorg | DeadLetter | SourceHealth

__all__ = ["START_AT_HEAD", "FollowState", "NodeItem", "NodeSource", "Reorg", "start_height"]


def start_height(client: Any, source_name: str, from_block: int | None) -> int:
    """Where a run with no Bytewax snapshot starts: ``from_block`` if given, else the block after the
    last committed one in ``checkpoints`` for ``source_name``, else :data:`START_AT_HEAD`.

    ``client`` is a clickhouse-connect client on the pipeline's database.
    """
    if from_block is not None:
        if from_block < 0:
            raise ConfigError(f"--from-block must be >= 0, got {from_block}")
        return from_block
    rows = client.query("SELECT max(block_number), count() FROM checkpoints FINAL WHERE source = {s:String}",
                        parameters={"s": source_name}).result_rows
    if rows and rows[0][1]:
        return int(rows[0][0]) + 1
    return START_AT_HEAD


def resume_state(client: Any, source_name: str, from_block: int | None, keep: int = 64) -> FollowState:
    """:func:`start_height` plus the ids of the stored blocks just below it (``blocks``, not
    orphaned), so a run resumed from ClickHouse alone still detects a reorg at its first block.

    A run that stopped in the middle of a reorg (old branch marked orphaned, new branch not yet
    as high as the checkpoint, which never moves back) resumes right after the highest canonical
    block instead of at the checkpoint, so the new branch's lower heights are not skipped.
    """
    start = start_height(client, source_name, from_block)
    if start <= 0:
        return FollowState(start)
    rows = client.query(
        "SELECT number, block_id, parent_hash, orphaned FROM blocks FINAL WHERE source = {s:String} "
        "AND number < {n:UInt64} AND number >= {lo:UInt64} ORDER BY number, orphaned",
        parameters={"s": source_name, "n": start, "lo": max(0, start - keep)}).result_rows
    canonical = [BlockRef(int(n), str(b), str(p)) for n, b, p, o in rows if not o]
    orphaned_above = [int(n) for n, _b, _p, o in rows if o and (not canonical or n > canonical[-1].number)]
    if from_block is None and canonical and orphaned_above and canonical[-1].number < start - 1:
        log.warning("%s: blocks %d..%d were orphaned before the last stop; resuming at %d on the new branch",
                    source_name, min(orphaned_above), max(orphaned_above), canonical[-1].number + 1)
        start = canonical[-1].number + 1
    # only a run of consecutive heights ending right below the start can be checked against
    tail: list[BlockRef] = []
    for ref in reversed(canonical):
        if ref.number != start - 1 - len(tail):
            break
        tail.append(ref)
    return FollowState(start, tuple(reversed(tail)))


@dataclass(frozen=True)
class NodeSource(FixedPartitionedSource[NodeItem, FollowState]):
    """Follow ``endpoint`` (a full node or TronGrid URL); see the module doc."""

    endpoint: str
    api_key: str | None = None
    source_name: str = "node"
    confirmations: int = 19
    start: int = START_AT_HEAD
    batch_blocks: int = 50
    poll_s: float = 1.0
    timeout_s: float = 10.0
    keep: int = 64
    gap_attempts: int = 5
    base_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    health_every_s: float = 10.0
    end: int | None = None  # stop after emitting this height (bounded runs, tests); None: follow for ever
    recent: tuple[BlockRef, ...] = ()  # ids of the blocks below ``start`` (see :func:`resume_state`)
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES  # size cap on every node answer

    def __post_init__(self) -> None:
        if self.confirmations < -1:
            raise ConfigError(f"--confirmations must be >= 0 (or -1 for the solidified block), got {self.confirmations}")
        if not 1 <= self.batch_blocks <= RANGE_LIMIT:
            raise ConfigError(f"node batch_blocks must be 1..{RANGE_LIMIT}, got {self.batch_blocks}")
        if not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"--node {redact_url(self.endpoint)}: expected an http(s):// URL")
        if self.max_answer_bytes < 1024:
            raise ConfigError(f"node.max_answer_bytes must be >= 1024, got {self.max_answer_bytes}")

    def list_parts(self) -> list[str]:
        return [self.source_name]

    def build_part(self, step_id: str, for_part: str, resume_state: FollowState | None) -> _NodePartition:
        state = resume_state or FollowState(self.start, self.recent)
        log.info("%s: following %s at %s, from %s", self.source_name, redact_url(self.endpoint),
                 "the solidified block" if self.confirmations < 0 else f"{self.confirmations} confirmations",
                 "the snapshot" if resume_state else ("the head" if self.start < 0 else f"block {state.next_height}"))
        return _NodePartition(self, state)


class _NodePartition(StatefulSourcePartition[NodeItem, FollowState]):
    def __init__(self, cfg: NodeSource, state: FollowState) -> None:
        self.cfg = cfg
        self.node = NodeClient(cfg.endpoint, cfg.api_key, cfg.timeout_s, cfg.max_answer_bytes)
        self._batch = cfg.batch_blocks  # halved when a range answer is over the size cap
        self.follower = Follower(state, cfg.keep)
        self.backoff = Backoff(base_s=cfg.base_backoff_s, cap_s=cfg.max_backoff_s)
        self.health = HealthMeter(cfg.source_name, cfg.health_every_s)
        self._target = -1  # last known target height
        self._wake = 0.0  # monotonic time before which next_batch does nothing
        self._gap_tries: dict[int, int] = {}
        self._receipt_tries = (0, -1)  # (tries, height) of the receipts being waited for
        self._failing_since = 0.0

    # -- Bytewax ---------------------------------------------------------------------------
    def next_batch(self) -> list[NodeItem]:
        now = time.monotonic()
        out: list[NodeItem] = []
        end = self.cfg.end
        if end is not None and self.follower.next_height > end:
            raise StopIteration
        if now >= self._wake:
            try:
                self._step(out)
                self._recovered()
            except NodeError as err:
                self._failed(err, out)
        if self.health.due():
            out.append(self.health.row())
        return out

    def next_awake(self) -> datetime | None:
        delay = self._wake - time.monotonic()
        if delay <= 0:
            return None
        return datetime.now(UTC) + timedelta(seconds=delay)

    def snapshot(self) -> FollowState:
        return self.follower.state()

    def close(self) -> None:
        self.node.close()

    # -- following -------------------------------------------------------------------------
    def _head_target(self) -> int:
        method = "walletsolidity/getnowblock" if self.cfg.confirmations < 0 else "wallet/getnowblock"
        head = head_height(self.node.call(method, {}))
        if isinstance(head, str):
            raise NodeError(f"{self.node.where} {method}: unusable head block ({head})", method=method)
        self.health.head = head
        return head if self.cfg.confirmations < 0 else head - self.cfg.confirmations

    def _step(self, out: list[NodeItem]) -> None:
        f = self.follower
        if f.next_height < 0 or f.next_height > self._target:
            self._target = self._head_target()
            self.health.target = self._target
            if f.next_height < 0:
                f.next_height = max(0, self._target)
            if f.next_height > self._target:
                self._wake = time.monotonic() + self.cfg.poll_s  # at the head: poll again later
                return
        start = f.next_height
        last = self._target if self.cfg.end is None else min(self._target, self.cfg.end)
        count = min(self._batch, last - start + 1)
        try:
            blocks, why = self._fetch_range(start, count)
        except NodeError as err:
            if not err.too_large:
                raise
            log.error("%s: %s", self.cfg.source_name, err)
            blocks, why = [], str(err)
        if not blocks:
            self._missing(start, out, why)
            return
        self._gap_tries.pop(start, None)
        for block in blocks:
            ref = block_ref(block)
            if not f.links(ref):
                self._reorg(out)
                return
            receipts = self._receipts(block, ref, out)
            if receipts is not None:
                block["_receipts"] = receipts
            out.append(RawBlock(self.cfg.source_name, str(ref.number), block))
            f.accept(ref)
            self.health.emitted(ref.number, block_timestamp(block))

    def _fetch_range(self, start: int, count: int) -> tuple[list[dict[str, Any]], str]:
        """Blocks ``start..`` in order, cut at the first one missing, unusable or out of sequence,
        with the reason for a cut (:func:`pipeline.live.answers.range_blocks`). A range answer over
        the size cap is asked again in halves; a single block over it raises (``too_large``)."""
        while True:
            try:
                if count <= 1:
                    answer = self.node.call("wallet/getblockbynum", {"num": start, "visible": False})
                else:
                    answer = self.node.call("wallet/getblockbylimitnext",
                                            {"startNum": start, "endNum": start + count, "visible": False})
            except NodeError as err:
                if not err.too_large or count <= 1:
                    raise
                self._batch = count = max(1, count // 2)
                log.warning("%s: a range from block %d is over the node answer cap; asking for %d block(s) "
                            "at a time", self.cfg.source_name, start, count)
                continue
            return range_blocks(answer, start)

    def _receipts(self, block: dict[str, Any], ref: BlockRef, out: list[NodeItem]) -> list[dict[str, Any]] | None:
        """The block's receipts, checked to belong to it (retryable :class:`NodeError` if not yet).

        A node that never serves them (a lite full node without the transaction-info store) would
        stall following for ever: after ``2 * gap_attempts`` tries the block goes on without
        ``_receipts`` and a dead letter says so.
        """
        if not tx_ids(block):
            return []
        try:
            infos = receipts_for(self.node.call("wallet/gettransactioninfobyblocknum",
                                                {"num": ref.number, "visible": False}), block, ref.number)
        except NodeError as err:
            if not err.too_large:
                raise
            log.error("%s: %s", self.cfg.source_name, err)
            infos = f"block {ref.number}: receipts answer over the node answer cap"
        if isinstance(infos, str):
            tries = self._receipt_tries[0] + 1 if self._receipt_tries[1] == ref.number else 1
            self._receipt_tries = (tries, ref.number)
            if tries < 2 * self.cfg.gap_attempts:
                raise NodeError(infos)
            reason = f"receipts: {infos}"
            log.error("%s: %s after %d tries; block emitted without receipts", self.cfg.source_name, reason, tries)
            out.append(DeadLetter(self.cfg.source_name, str(ref.number), reason, "", _now_ms()))
            return None
        return infos

    def _missing(self, height: int, out: list[NodeItem], why: str = "") -> None:
        """The node does not serve ``height`` (or serves it unusable or over the size cap) although
        its target is at or past it."""
        tries = self._gap_tries.get(height, 0) + 1
        self._gap_tries[height] = tries
        detail = f": {why}" if why else ""
        if tries < self.cfg.gap_attempts:
            self._wake = time.monotonic() + self.backoff.next_delay()
            log.warning("%s: block %d missing on the node (target %d), try %d of %d%s",
                        self.cfg.source_name, height, self._target, tries, self.cfg.gap_attempts, detail)
            return
        del self._gap_tries[height]
        reason = (f"gap: block {height} unavailable from {self.node.where} after {tries} tries "
                  f"(node target {self._target}){detail}; skipped")
        log.error("%s: %s", self.cfg.source_name, reason)
        self.health.gaps += 1
        out.append(DeadLetter(self.cfg.source_name, str(height), reason, "", _now_ms()))
        self.follower.skip_gap(height)

    def _reorg(self, out: list[NodeItem]) -> None:
        f = self.follower

        def fetch(height: int) -> dict[str, Any] | None:
            return block_or_none(self.node.call("wallet/getblockbynum", {"num": height, "visible": False}))

        try:
            reorg = f.resolve_fork(self.cfg.source_name, fetch)
        except ForkTooDeep as err:
            reason = f"{err}: the last {len(f.recent)} emitted blocks are all orphaned; continuing on the new branch"
            log.error("%s: %s", self.cfg.source_name, reason)
            out.append(DeadLetter(self.cfg.source_name, str(f.next_height), f"reorg: {reason}", "", _now_ms()))
            f.recent.clear()  # the next block is taken as it comes
            return
        self.health.reorgs += 1
        log.warning("%s: reorg of depth %d: heights %s replaced, resuming at %d", self.cfg.source_name,
                    reorg.depth, ",".join(map(str, reorg.heights)), f.next_height)
        out.append(reorg)

    # -- failures --------------------------------------------------------------------------
    def _failed(self, err: NodeError, out: list[NodeItem]) -> None:
        if not err.retryable:
            raise err
        self.health.error(str(err))
        if err.too_large:  # the head block (or a reorg's) over the cap: loud, and on record
            out.append(DeadLetter(self.cfg.source_name, err.method or "node", f"node answer: {err}", "",
                                  _now_ms()))
        if err.disconnected and self.health.connected:
            self.health.connected = False
            log.warning("%s: node unreachable: %s", self.cfg.source_name, err)
        cap = 300.0 if err.quota and err.retry_after_s is None and "403" in str(err) else None
        delay = self.backoff.next_delay(err.retry_after_s, cap)
        self._wake = time.monotonic() + delay
        if not self._failing_since:
            self._failing_since = time.monotonic()
        level = logging.ERROR if self.backoff.attempts >= 8 or err.too_large else logging.WARNING
        log.log(level, "%s: %s; retry %d in %.1f s", self.cfg.source_name, err, self.backoff.attempts, delay)

    def _recovered(self) -> None:
        if self._failing_since:
            log.warning("%s: node answering again after %.1f s of failures", self.cfg.source_name,
                        time.monotonic() - self._failing_since)
            self._failing_since = 0.0
        if not self.health.connected:
            self.health.connected = True
            self.health.reconnected()
        self.backoff.reset()


def _now_ms() -> int:
    return int(time.time() * 1000)
