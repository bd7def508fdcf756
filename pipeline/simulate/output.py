"""Replay files and ground truth on disk, byte-identical for identical input.

``blocks.jsonl.gz`` is gzip with ``mtime=0`` and no file name in its header, lines are orjson of
dicts whose key order is fixed by construction, CSV rows come in generation order: so the same
seed gives the same bytes, which is what lets tests (and users) compare runs by checksum.
"""

from __future__ import annotations

import csv
import gc
import gzip
import json
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import InputError

BLOCKS_FILE = "blocks.jsonl.gz"
LABELS_FILE = "labels.csv"
LABELLED_TXS_FILE = "labelled_txs.csv"
META_FILE = "meta.json"
LABEL_HEADER = ("address", "typology", "episode_id", "role")
TX_LABEL_HEADER = ("tx_id", "typology", "episode_id")
_FLUSH_BYTES = 4 << 20


def prepare_dir(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create output directory ({err})") from err
    return out


def write_blocks(path: Path, blocks: Iterable[dict[str, Any]], compresslevel: int = 3) -> int:
    """Write one block per line, gzip-compressed deterministically; returns the block count.

    Compression runs in a second thread (zlib releases the GIL), fed ~4 MB chunks in order
    through a bounded queue, so generating and compressing overlap on two cores without changing
    a byte of the output.
    """
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def compress() -> None:
        try:
            with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                          compresslevel=compresslevel) as gz:
                while (chunk := chunks.get()) is not None:
                    gz.write(chunk)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(err)
            while chunks.get() is not None:  # drain so the producer never blocks
                pass

    worker = threading.Thread(target=compress, name="gzip-writer", daemon=True)
    worker.start()
    n, size, buf = 0, 0, []
    dumps = orjson.dumps
    try:
        for block in blocks:
            line = dumps(block)
            buf.append(line)
            size += len(line)
            n += 1
            if size >= _FLUSH_BYTES:
                chunks.put(b"\n".join(buf) + b"\n")
                buf, size = [], 0
        if buf:
            chunks.put(b"\n".join(buf) + b"\n")
    finally:
        chunks.put(None)
        worker.join()
    if failure:
        raise InputError(f"{path}: cannot write ({failure[0]})") from failure[0]
    return n


def write_csv(path: Path, header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
    n = 0
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_blocks(path: Path) -> Iterator[dict[str, Any]]:
    """Blocks back from a ``.jsonl.gz`` written here (for tests and tools)."""
    with gzip.open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield orjson.loads(line)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building millions of acyclic dicts (it costs ~30% otherwise);
    reference counting still frees everything, and the previous state is restored."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
