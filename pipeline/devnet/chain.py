"""The devnet's chain: every block of the replay input, kept compressed, served by height.

Blocks are held as zlib-compressed original JSON (about a fifth of the text) plus the few header
fields the node needs to answer without parsing (number, id, parent, timestamp). Rendering a block
in the other address form, or with a reorg applied, parses it on demand; the last rendered answers
sit in a small LRU so a client polling the head costs nothing.

A reorg is an override per height: new block ids for the forked heights (the 8-byte number prefix
kept, the hash part changed), the parentHash chain re-linked through them, the block after the
fork pointing at the new tip, and optionally the last transactions of each forked block left out.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from pipeline.devnet.replay import iter_block_lines
from pipeline.devnet.visible import convert_block, is_visible_block
from pipeline.errors import InputError

log = logging.getLogger(__name__)

BLOCK_INTERVAL_MS = 3000
_LRU_SIZE = 64


class StoredBlock(NamedTuple):
    number: int
    block_id: str
    parent_hash: str
    timestamp: int
    tx_count: int
    visible: bool
    packed: bytes  # zlib of the original JSON


class Override(NamedTuple):
    """How a reorg changed one height: its id, its parent, how many trailing txs it lost."""

    block_id: str | None
    parent_hash: str | None
    drop_txs: int


def _header(block: dict[str, Any], position: str) -> tuple[int, str, str, int]:
    try:
        raw = block["block_header"]["raw_data"]
        return int(raw.get("number", 0)), str(block["blockID"]), str(raw.get("parentHash", "")), int(
            raw.get("timestamp", 0)
        )
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{position}: not a getblockbynum object (block_header.raw_data: {err})") from err


def _rechain(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Renumber blocks consecutively and re-link ids, parents and 3 s timestamps.

    Used when the input is not one chain (e.g. two real blocks from different days), so the
    devnet still serves a consistent chain; the transactions are untouched.
    """
    first = blocks[0]["block_header"]["raw_data"]
    number0, ts0 = int(first.get("number", 0)), int(first.get("timestamp", 0))
    parent = str(first.get("parentHash", "0" * 64))
    out = []
    for i, block in enumerate(blocks):
        number = number0 + i
        old_id = str(block.get("blockID", "")).rjust(64, "0")
        new_id = f"{number:016x}{old_id[16:]}"
        raw = {**block["block_header"]["raw_data"], "number": number, "parentHash": parent,
               "timestamp": ts0 + BLOCK_INTERVAL_MS * i}
        out.append({**block, "blockID": new_id, "block_header": {**block["block_header"], "raw_data": raw}})
        parent = new_id
    return out


class Chain:
    """All blocks of one replay input, addressed by height; safe to share between threads."""

    def __init__(self, blocks: list[StoredBlock]) -> None:
        if not blocks:
            raise InputError("devnet: replay input holds no blocks")
        self._blocks = blocks
        self.first_number = blocks[0].number
        self._tx_index: dict[str, int] = {}
        self._overrides: dict[int, Override] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._lru: OrderedDict[tuple[int, bool, int], tuple[bytes, dict[str, Any]]] = OrderedDict()

    # -- building --------------------------------------------------------------------------
    @classmethod
    def from_lines(cls, lines: Iterable[tuple[str, bytes]]) -> "Chain":
        """Build from ``(position, json_bytes)`` block lines, streaming: one block parsed at a time.

        Blocks are sorted by height and duplicates dropped; if they do not form one chain they are
        renumbered and re-linked (a warning says so).
        """
        by_number: dict[int, StoredBlock] = {}
        tx_index: dict[str, int] = {}
        for position, line in lines:
            try:
                block = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                raise InputError(f"{position}: not JSON: {err}") from err
            if not isinstance(block, dict):
                raise InputError(f"{position}: not a getblockbynum object")
            sb = cls._store(block, position, line)
            if sb.number in by_number:
                continue
            by_number[sb.number] = sb
            for tx in block.get("transactions") or ():
                if isinstance(tx, dict) and "txID" in tx:
                    tx_index[tx["txID"]] = sb.number
        stored = [by_number[n] for n in sorted(by_number)]
        if not cls._is_chain(stored):
            log.warning("devnet: input blocks are not one consecutive chain; renumbering %d blocks",
                        len(stored))
            dicts = _rechain([orjson.loads(zlib.decompress(sb.packed)) for sb in stored])
            moved = {sb.number: d["block_header"]["raw_data"]["number"] for sb, d in zip(stored, dicts)}
            tx_index = {tx: moved[n] for tx, n in tx_index.items()}
            stored = [cls._store(d, f"rechained[{i}]", orjson.dumps(d)) for i, d in enumerate(dicts)]
        chain = cls(stored)
        chain._tx_index = tx_index
        return chain

    @classmethod
    def from_dicts(cls, blocks: list[dict[str, Any]]) -> "Chain":
        """Build from parsed block objects (tests, the simulator in-process)."""
        return cls.from_lines((f"blocks[{i}]", orjson.dumps(b)) for i, b in enumerate(blocks))

    @classmethod
    def from_path(cls, path: str | Path) -> "Chain":
        """Load replay input (a file or a directory)."""
        chain = cls.from_lines(iter_block_lines(path))
        log.info("devnet: loaded %d blocks (%d..%d) from %s", len(chain), chain.first_number,
                 chain.last_number, path)
        return chain

    @staticmethod
    def _is_chain(ordered: list[StoredBlock]) -> bool:
        return all(cur.number == prev.number + 1 and cur.parent_hash == prev.block_id
                   for prev, cur in zip(ordered, ordered[1:]))

    @staticmethod
    def _store(block: dict[str, Any], position: str, line: bytes) -> StoredBlock:
        number, block_id, parent, ts = _header(block, position)
        return StoredBlock(number, block_id, parent, ts, len(block.get("transactions") or ()),
                           is_visible_block(block), zlib.compress(line, 1))

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def last_number(self) -> int:
        return self._blocks[-1].number

    def index_of(self, number: int) -> int | None:
        i = number - self.first_number
        return i if 0 <= i < len(self._blocks) else None

    def stored(self, number: int) -> StoredBlock:
        return self._blocks[number - self.first_number]

    def block_id(self, number: int) -> str:
        ov = self._overrides.get(number)
        return ov.block_id if ov and ov.block_id else self.stored(number).block_id

    def number_of_id(self, block_id: str) -> int | None:
        """The height whose current id is ``block_id`` (ids start with the height in hex)."""
        try:
            number = int(block_id[:16], 16)
        except ValueError:
            return None
        if self.index_of(number) is None or self.block_id(number) != block_id:
            return None
        return number

    def height_of_tx(self, tx_id: str) -> int | None:
        return self._tx_index.get(tx_id)

    def render(self, number: int, visible: bool) -> tuple[bytes, dict[str, Any] | None]:
        """The block's JSON bytes in the wanted form, and its dict when one had to be built."""
        sb = self.stored(number)
        ov = self._overrides.get(number)
        if ov is None and sb.visible == visible:
            return zlib.decompress(sb.packed), None
        body, block = self._render_dict(number, visible)
        return body, block

    def block(self, number: int, visible: bool) -> dict[str, Any]:
        """The block as a dict in the wanted form, reorg applied (cached; do not modify)."""
        return self._render_dict(number, visible)[1]

    def _render_dict(self, number: int, visible: bool) -> tuple[bytes, dict[str, Any]]:
        key = (number, visible, self._generation)
        with self._lock:
            hit = self._lru.get(key)
            if hit is not None:
                self._lru.move_to_end(key)
                return hit
        sb = self.stored(number)
        block = orjson.loads(zlib.decompress(sb.packed))
        if sb.visible != visible:
            block = convert_block(block, visible)
        ov = self._overrides.get(number)
        if ov is not None:
            raw = dict(block["block_header"]["raw_data"])
            if ov.parent_hash:
                raw["parentHash"] = ov.parent_hash
            block = {**block, "block_header": {**block["block_header"], "raw_data": raw}}
            if ov.block_id:
                block["blockID"] = ov.block_id
            txs = block.get("transactions") or []
            if ov.drop_txs and txs:
                kept = txs[: max(0, len(txs) - ov.drop_txs)]
                if kept:
                    block["transactions"] = kept
                else:
                    block.pop("transactions", None)
        out = (orjson.dumps(block), block)
        with self._lock:
            self._lru[key] = out
            while len(self._lru) > _LRU_SIZE:
                self._lru.popitem(last=False)
        return out

    # -- faults ----------------------------------------------------------------------------
    def reorg(self, tip: int, depth: int, drop_txs: int = 1) -> list[int]:
        """Replace heights ``tip-depth+1 .. tip`` with forked blocks; return the forked heights.

        The block after ``tip`` (if any) is re-parented onto the new tip, so a client that
        follows parentHash sees the fork whichever way it walks.
        """
        if depth < 1:
            raise ValueError("reorg depth must be >= 1")
        start = max(self.first_number, tip - depth + 1)
        with self._lock:
            self._generation += 1
            gen = self._generation
            parent = self.parent_hash(start)
            forked = []
            for number in range(start, tip + 1):
                old = self.block_id(number)
                digest = hashlib.sha256(f"{old}:fork:{gen}".encode()).hexdigest()
                new_id = f"{number:016x}{digest[16:]}"
                self._overrides[number] = Override(new_id, parent, drop_txs)
                parent = new_id
                forked.append(number)
            after = tip + 1
            if self.index_of(after) is not None:
                prev = self._overrides.get(after)
                self._overrides[after] = Override(prev.block_id if prev else None, parent,
                                                  prev.drop_txs if prev else 0)
            self._lru.clear()
        log.warning("devnet: reorg of depth %d at heights %d..%d", len(forked), start, tip)
        return forked

    def parent_hash(self, number: int) -> str:
        ov = self._overrides.get(number)
        return ov.parent_hash if ov and ov.parent_hash else self.stored(number).parent_hash
