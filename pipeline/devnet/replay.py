"""Read replay input (DESIGN.md format) as raw JSON lines, one block object each.

Accepted: JSON Lines, plain or gzip, one ``/wallet/getblockbynum`` object per line; a
``/wallet/getblockbylimitnext`` ``{"block": [...]}`` file; or a directory of such files (read in
name order, other files such as ``labels.csv`` ignored). Lines are yielded as bytes so the devnet
can keep and serve them without re-encoding.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson

from pipeline.errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")


def input_files(path: str | Path) -> list[Path]:
    """The replay files at ``path`` (a file or a directory), in the order they are read."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(SUFFIXES))
        if not files:
            raise InputError(f"{p}: directory holds no replay files ({', '.join(SUFFIXES)})")
        return files
    if not p.is_file():
        raise InputError(f"{p}: replay input not found")
    return [p]


def _open_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                with gzip.open(fh) as gz:
                    return gz.read()
            return fh.read()
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot read replay input: {err}") from err


def iter_block_lines(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(position, json_bytes)`` for every block object in the input, position ``file:line``."""
    files = input_files(path)
    for file in files:
        data = _open_bytes(file)
        stripped = data.lstrip()
        if len(files) > 1 and b'"block_header"' not in stripped[:65536]:
            log.warning("%s: skipped, it does not hold block objects", file)
            continue
        if stripped.startswith(b"{") and b"\n{" not in stripped.rstrip():
            # A single JSON document: one block, or a getblockbylimitnext {"block": [...]} answer.
            try:
                doc = orjson.loads(stripped)
            except orjson.JSONDecodeError as err:
                raise InputError(f"{file}:1: not JSON: {err}") from err
            if isinstance(doc, dict) and isinstance(doc.get("block"), list):
                for i, block in enumerate(doc["block"]):
                    yield f"{file}:block[{i}]", orjson.dumps(block)
            elif isinstance(doc, dict) and doc:
                yield f"{file}:1", orjson.dumps(doc)
            continue
        for lineno, line in enumerate(data.split(b"\n"), start=1):
            line = line.strip()
            if line:
                yield f"{file}:{lineno}", line
