"""A hostile replay corpus made from the two real mainnet blocks, with what each item must become.

Good blocks are the real blocks renumbered (fresh heights, times, ids and txIDs, chained parent
hashes). Every hostile item is a mutated copy of a good block, a broken line, or a broken file,
and is recorded with the one dead letter it must produce: its position (``file:line``,
``file:line#txN``, ``file#i`` or ``file``) and a piece of its reason. Good blocks -- and blocks
that lost one transaction -- are recorded with the transactions and record counts they must have
in storage, counted by decoding the *clean* block (before the mutation).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.operators.decode import decode_block
from pipeline.tron.tokens import TokenRegistry

TOKENS = TokenRegistry.build()
DEEP = 300  # deeper than orjson.dumps accepts (255), shallower than orjson.loads refuses (1024)
LONG = 1_000_000  # characters in a "very long string"
BOMB_LIMITS = {"TRONRISK_LIMITS_MAX_STREAM_BYTES": str(64 << 20), "TRONRISK_LIMITS_MAX_DOCUMENT_BYTES": str(32 << 20)}


@dataclass
class Expected:
    dead: dict[str, tuple[str, str]] = field(default_factory=dict)  # position -> (kind, reason part)
    blocks: dict[int, tuple[int, set[str], int]] = field(default_factory=dict)  # height -> (tx_count, tx ids, records)
    kinds: list[str] = field(default_factory=list)  # every hostile kind, dead letter or tolerated
    tolerated: list[str] = field(default_factory=list)  # kinds that are harmless: no dead letter


def _raw(b: dict) -> dict:
    return b["block_header"]["raw_data"]


def _deep(marker: str) -> str:
    return f"__DEEP_{marker}__"


class Corpus:
    """Writes files into ``root`` and records what each line must become."""

    def __init__(self, root: Path, hex_block: dict, visible_block: dict) -> None:
        self.root = root
        self.templates = [hex_block, visible_block]
        self.height = 70_000_000
        self.ts = 1_720_000_000_000
        self.parent = "ab" * 32
        self.expected = Expected()
        self.written: list[dict] = []  # good blocks, for duplicates and reordering

    # -- good blocks --------------------------------------------------------------------------
    def good(self, template: int | None = None) -> dict:
        """The next good block (alternating templates), with fresh height, time and ids."""
        t = self.templates[(self.height if template is None else template) % 2]
        b = copy.deepcopy(t)
        self.height += 1
        self.ts += 3000
        block_id = f"{self.height:016x}" + hashlib.sha256(f"b{self.height}".encode()).hexdigest()[16:]
        _raw(b).update(number=self.height, timestamp=self.ts, parentHash=self.parent)
        b["blockID"] = block_id
        self.parent = block_id
        for tx in b["transactions"]:
            tx["txID"] = hashlib.sha256(f"{tx['txID']}:{self.height}".encode()).hexdigest()
        return b

    def expect_block(self, b: dict, bad_tx: int | None = None) -> None:
        clean = decode_block(b, "corpus", "clean", TOKENS)
        assert not clean.dead_letters, clean.dead_letters[:1]
        ids = {tx["txID"] for tx in b["transactions"]}
        records = len(clean.transfers)
        if bad_tx is not None:
            lost = b["transactions"][bad_tx]["txID"]
            ids.discard(lost)
            records -= sum(1 for t in clean.transfers if t.tx_id == lost)
        self.expected.blocks[_raw(b)["number"]] = (len(b["transactions"]), ids, records)

    # -- writing ------------------------------------------------------------------------------
    def jsonl(self, name: str, lines: list[Callable[[str, int], bytes]], gz: bool = False) -> Path:
        """Write ``lines``; each is a callable ``(path, line_number) -> bytes`` that records its
        own expectation (so positions are right whatever the order)."""
        path = self.root / name
        body = b"".join(make(str(path), i + 1) + b"\n" for i, make in enumerate(lines))
        path.write_bytes(gzip.compress(body) if gz else body)
        return path

    def line_good(self, template: int | None = None) -> Callable[[str, int], bytes]:
        def make(_path: str, _line: int) -> bytes:
            b = self.good(template)
            self.expect_block(b)
            self.written.append(b)
            return orjson.dumps(b)
        return make

    def line_header(self, kind: str, mutate: Callable[[dict], Any], reason: str) -> Callable[[str, int], bytes]:
        """A block whose header is unusable: one dead letter for the whole block."""
        def make(path: str, line: int) -> bytes:
            b = self.good()
            self.height -= 1  # the height is not used up: the next good block takes it
            self.parent = _raw(b)["parentHash"]
            mutate(b)
            self._dead(f"{path}:{line}", kind, reason)
            return _dump(b)
        return make

    def line_tx(self, kind: str, contract_type: str, mutate: Callable[[dict, dict], Any], reason: str,
                template: int = 0) -> Callable[[str, int], bytes]:
        """A good block in which the first transaction of ``contract_type`` is made hostile."""
        def make(path: str, line: int) -> bytes:
            b = self.good(template)
            j = next(i for i, tx in enumerate(b["transactions"])
                     if tx["raw_data"]["contract"][0]["type"] == contract_type)
            self.expect_block(b, bad_tx=j)
            tx = b["transactions"][j]
            mutate(tx, b)
            self._dead(f"{path}:{line}#tx{j}", kind, reason)
            return _dump(b)
        return make

    def line_tolerated(self, kind: str, mutate: Callable[[dict], Any]) -> Callable[[str, int], bytes]:
        """Hostile-looking but harmless (a field decode never reads): the block is stored whole."""
        def make(_path: str, _line: int) -> bytes:
            b = self.good(0)
            self.expect_block(b)
            mutate(b)
            self.expected.kinds.append(kind)
            self.expected.tolerated.append(kind)
            return _dump(b)
        return make

    def line_raw(self, kind: str, data: bytes, reason: str) -> Callable[[str, int], bytes]:
        def make(path: str, line: int) -> bytes:
            self._dead(f"{path}:{line}", kind, reason)
            return data
        return make

    def line_repeat(self, kind: str, which: Callable[[], dict], reason: str) -> Callable[[str, int], bytes]:
        """A block already written again (duplicate) or an older one (out of order)."""
        def make(path: str, line: int) -> bytes:
            self._dead(f"{path}:{line}", kind, reason)
            return orjson.dumps(which())
        return make

    def _dead(self, position: str, kind: str, reason: str) -> None:
        assert position not in self.expected.dead, position
        self.expected.dead[position] = (kind, reason)
        self.expected.kinds.append(kind)


def _dump(b: dict) -> bytes:
    """JSON of ``b`` with ``__DEEP_x__`` markers replaced by arrays nested ``DEEP`` levels.

    The standard library's encoder: orjson refuses integers beyond 64 bits, which are cases here.
    """
    text = json.dumps(b, separators=(",", ":")).encode()
    nested = b"[" * DEEP + b"]" * DEEP
    while b'"__DEEP_' in text:
        start = text.index(b'"__DEEP_')
        end = text.index(b'__"', start) + 3
        text = text[:start] + nested + text[end:]
    return text


def gzip_bomb(size: int, byte: bytes = b"0") -> bytes:
    """``size`` bytes of one byte value as one gzip member (a few hundred to one)."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)  # level 1: ~230:1 on one byte value, and fast to make
    piece = byte * (1 << 20)
    return b"".join(z.compress(piece) for _ in range(size >> 20)) + z.flush()
