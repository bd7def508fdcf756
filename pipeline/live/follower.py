"""Which block comes next, and is it on the chain we have been following? (pure)

The follower remembers the ids of the last ``keep`` blocks it emitted. A new block whose
``parentHash`` is not the id of the last emitted block means the node switched branches: the
follower walks back, asking the node for its block at each remembered height, until the ids agree
again (the common ancestor). Every remembered block above the ancestor is orphaned; the caller
emits a :class:`Reorg` and resumes at ``ancestor + 1`` on the new branch.

A reorg deeper than the memory cannot be resolved here: :class:`ForkTooDeep` says so, and the
caller turns it into a loud error and a dead letter (never a silent splice of two branches).

A height the node could not serve (a gap, see ``pipeline.sources.node``) is remembered with an
empty id: the next block is accepted whatever its parent, since nothing is known to compare with.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from pipeline.errors import DecodeError


class BlockRef(NamedTuple):
    number: int
    block_id: str  # "" for a height that was skipped as a gap
    parent_hash: str


class Reorg(NamedTuple):
    """The node replaced blocks we already emitted.

    ``orphaned`` are the old branch's ``(height, block_id)`` in ascending order; ``new_ids`` the new
    branch's ids at the same heights and ``kept_tx_ids`` the transactions of those new blocks, so
    storage can remove exactly what the new branch no longer holds (see ``pipeline.live.reorg``).
    """

    source: str
    ancestor: int  # highest height common to both branches
    orphaned: tuple[tuple[int, str], ...]
    new_ids: tuple[str, ...]
    kept_tx_ids: tuple[tuple[str, ...], ...]
    detected_at: int  # wall clock ms

    @property
    def depth(self) -> int:
        return len(self.orphaned)

    @property
    def heights(self) -> tuple[int, ...]:
        return tuple(h for h, _ in self.orphaned)


class FollowState(NamedTuple):
    """Resume state: the next height to emit and the last emitted blocks (oldest first)."""

    next_height: int  # -1: not decided yet (start at the head target)
    recent: tuple[BlockRef, ...] = ()


class ForkTooDeep(Exception):
    """The new branch forks below everything remembered; carries the lowest height compared."""

    def __init__(self, lowest: int) -> None:
        super().__init__(f"reorg deeper than the remembered blocks (compared down to {lowest})")
        self.lowest = lowest


_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
MAX_HEIGHT = 2**63 - 1


def block_ref(block: Mapping[str, Any]) -> BlockRef:
    """The header fields the follower needs, validated; :class:`DecodeError` names the bad field.

    A node's JSON omits zero values, so a missing ``number`` is 0 (the genesis block) and a
    missing ``parentHash`` is "" (nothing to link to); anything present must have its type.
    """
    try:
        raw = block["block_header"]["raw_data"]
        number = raw.get("number", 0)
        block_id = block["blockID"]
        parent = raw.get("parentHash", "")
    except (KeyError, TypeError, AttributeError) as err:
        raise DecodeError(f"missing {err}", "block_header.raw_data") from None
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_HEIGHT:
        raise DecodeError(f"bad number {number!r:.30}", "block_header.raw_data.number")
    if not isinstance(block_id, str) or not _HEX64.fullmatch(block_id):
        raise DecodeError(f"bad blockID {block_id!r:.70}", "blockID")
    if not isinstance(parent, str) or (parent and not _HEX64.fullmatch(parent)):
        raise DecodeError(f"bad parentHash {parent!r:.70}", "block_header.raw_data.parentHash")
    return BlockRef(number, block_id, parent)


def tx_ids(block: Mapping[str, Any]) -> tuple[str, ...]:
    """The block's transaction ids in order ("" where one has none); nothing for a bad list."""
    txs = block.get("transactions") if isinstance(block, Mapping) else None
    if not isinstance(txs, list):
        return ()
    return tuple(tx["txID"] if isinstance(tx.get("txID"), str) else ""
                 for tx in txs if isinstance(tx, Mapping))


class Follower:
    """Linkage checks and reorg resolution over a bounded window of emitted block ids."""

    def __init__(self, state: FollowState, keep: int = 32) -> None:
        self.keep = max(1, keep)
        self.next_height = state.next_height
        self.recent: list[BlockRef] = list(state.recent[-self.keep:])

    def state(self) -> FollowState:
        return FollowState(self.next_height, tuple(self.recent))

    def links(self, ref: BlockRef) -> bool:
        """Does ``ref`` continue what we emitted? (True when nothing is known to compare with.)"""
        if not self.recent:
            return True
        last = self.recent[-1]
        if not last.block_id or last.number != ref.number - 1:
            return True
        return ref.parent_hash == last.block_id

    def accept(self, ref: BlockRef) -> None:
        self.recent.append(ref)
        if len(self.recent) > self.keep:
            del self.recent[0]
        self.next_height = ref.number + 1

    def skip_gap(self, height: int) -> None:
        """Move past a height the node cannot serve; its successor will not be parent-checked."""
        self.accept(BlockRef(height, "", ""))

    def resolve_fork(self, source: str, fetch: Callable[[int], Mapping[str, Any] | None]) -> Reorg:
        """Walk back through the remembered blocks to the common ancestor; see the module doc.

        ``fetch(height)`` returns the node's block at that height now (None if it has none).
        The state changes only when the fork is resolved, so a failing ``fetch`` (an exception)
        leaves the follower as it was and the caller can simply retry.
        """
        orphaned: list[tuple[int, str]] = []
        new_ids: list[str] = []
        kept: list[tuple[str, ...]] = []
        ancestor_index = -1
        for i in range(len(self.recent) - 1, -1, -1):
            mine = self.recent[i]
            if not mine.block_id:
                raise ForkTooDeep(mine.number)  # a gap: nothing to compare below it
            theirs = fetch(mine.number)
            if not isinstance(theirs, Mapping):
                theirs = None
            if theirs is not None and theirs.get("blockID") == mine.block_id:
                ancestor_index = i
                break
            orphaned.append((mine.number, mine.block_id))
            new_ids.append(str(theirs.get("blockID", "")) if theirs else "")
            kept.append(tx_ids(theirs) if theirs else ())
        if ancestor_index < 0:
            raise ForkTooDeep(self.recent[0].number if self.recent else self.next_height)
        ancestor = self.recent[ancestor_index]
        del self.recent[ancestor_index + 1:]
        self.next_height = ancestor.number + 1
        return Reorg(source, ancestor.number, tuple(reversed(orphaned)), tuple(reversed(new_ids)),
                     tuple(reversed(kept)), int(time.time() * 1000))
