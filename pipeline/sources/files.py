"""Reading replay input: the formats of DESIGN.md, as a resumable stream of blocks.

- JSON Lines (``.jsonl``, optionally ``.gz``): one ``/wallet/getblockbynum`` object per line;
- a ``.json`` (optionally ``.gz``) file: one block object, a ``/wallet/getblockbylimitnext``
  ``{"block": [...]}`` object, or a JSON list of blocks;
- a directory of such files, read in name order.

Each item has a position ``(file_index, item_index)`` so a reader can resume exactly after the
last item it emitted. A line that is not valid JSON is not an exception: it is yielded as an
error with ``file:line`` so it can become a dead letter while the stream goes on.
"""

from __future__ import annotations

import gzip
import io
import queue
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from pipeline.errors import InputError

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")


class ReplayItem(NamedTuple):
    file_index: int
    item_index: int
    where: str  # "path:line" (JSONL) or "path#i" (a block inside a JSON document)
    payload: Any  # the parsed block, or None when ``error`` is set
    error: str
    raw: str  # the undecodable text, for the dead letter (empty when parsed)


def resolve_inputs(paths: list[str] | tuple[str, ...]) -> list[Path]:
    """Expand files and directories into the ordered list of replay files; fail on missing ones."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and f.name.endswith(SUFFIXES))
            if not found:
                raise InputError(f"{path}: directory holds no replay files ({', '.join(SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    if not files:
        raise InputError("no replay input given")
    return files


def _open(path: Path) -> io.BufferedIOBase:
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None


def _is_lines(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson"))


class _ReadFailure(NamedTuple):
    error: str


_CHUNK = 1 << 22  # bytes per read (compressed reads are an eighth): few, large handoffs between threads
_AHEAD = 4  # chunks the reader may hold ahead of the parser: memory stays a few tens of MB


def _decompressed(fh: io.BufferedIOBase, gzipped: bool) -> Iterator[bytes]:
    """The file's bytes, gunzipped member by member when ``gzipped``.

    zlib is used directly rather than :mod:`gzip` so that a truncated file still yields every
    byte before the cut (``GzipFile.read`` discards the chunk it was decompressing), and the
    truncation is then raised as ``EOFError``.
    """
    if not gzipped:
        while data := fh.read(_CHUNK):
            yield data
        return
    member = zlib.decompressobj(wbits=31)
    fed = False
    while raw := fh.read(_CHUNK // 8):
        while raw:
            fed = True
            yield member.decompress(raw)
            if member.eof:  # a multi-member file: the next member starts in unused_data
                raw, member, fed = member.unused_data, zlib.decompressobj(wbits=31), False
            else:
                raw = b""
    if fed and not member.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


def _read_chunks(fh: io.BufferedIOBase, gzipped: bool, out: queue.Queue, stop: threading.Event) -> None:
    """Reader thread: read and decompress into lists of complete lines.

    File reads and zlib release the GIL, so decompression overlaps the JSON parsing and decoding
    done on the dataflow's thread (an eighth of a decode-and-store replay when done serially). A read error
    ends the stream with a :class:`_ReadFailure` after every complete line before it.
    """
    tail = b""
    try:
        with fh:
            for data in _decompressed(fh, gzipped):
                if stop.is_set():
                    return
                lines = (tail + data).split(b"\n")
                tail = lines.pop()
                out.put(lines)
        out.put([tail] if tail else [])
        out.put(None)
    except (OSError, EOFError, zlib.error) as err:  # truncated or corrupt gzip and the like
        out.put(_ReadFailure(str(err)))


def _prefetched_lines(path: Path) -> Iterator[bytes | _ReadFailure]:
    """The lines of ``path`` (without newlines), read ahead by a thread; a ``_ReadFailure`` last
    if the file could not be read to its end. Closing the iterator stops the thread."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - opened here (a missing file is the caller's InputError), closed by the reader thread
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None
    chunks: queue.Queue = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()
    reader = threading.Thread(target=_read_chunks, args=(fh, path.name.endswith(".gz"), chunks, stop),
                              name=f"read:{path.name}", daemon=True)
    reader.start()
    try:
        while (chunk := chunks.get()) is not None:
            if isinstance(chunk, _ReadFailure):
                yield chunk
                return
            yield from chunk
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue, then let it end
            try:
                chunks.get_nowait()
            except queue.Empty:
                reader.join(0.05)


def iter_file(path: Path, file_index: int, start_item: int = 0) -> Iterator[ReplayItem]:
    """Items of one file from ``start_item`` on (item = line for JSONL, block for JSON)."""
    if _is_lines(path):
        for i, line in enumerate(_prefetched_lines(path)):
            if isinstance(line, _ReadFailure):
                yield ReplayItem(file_index, 1 << 62, f"{path}:end", None, f"unreadable file tail: {line.error}", "")
                return
            if i < start_item or not line.strip():
                continue
            try:
                yield ReplayItem(file_index, i, f"{path}:{i + 1}", orjson.loads(line), "", "")
            except orjson.JSONDecodeError as err:
                yield ReplayItem(file_index, i, f"{path}:{i + 1}", None, f"invalid JSON: {err}",
                                 line[:65536].decode("utf-8", "replace"))
        return
    with _open(path) as fh:
        try:
            data = fh.read()
        except (OSError, EOFError) as err:
            yield ReplayItem(file_index, 0, f"{path}", None, f"unreadable file: {err}", "")
            return
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        yield ReplayItem(file_index, 0, f"{path}", None, f"invalid JSON: {err}",
                         data[:65536].decode("utf-8", "replace"))
        return
    if isinstance(doc, dict) and isinstance(doc.get("block"), list):
        blocks = doc["block"]  # /wallet/getblockbylimitnext
    elif isinstance(doc, list):
        blocks = doc
    else:
        blocks = [doc]
    for i, block in enumerate(blocks):
        if i >= start_item:
            yield ReplayItem(file_index, i, f"{path}#{i}", block, "", "")


def iter_replay(files: list[Path], start: tuple[int, int] = (0, 0)) -> Iterator[ReplayItem]:
    """All items of all files, resuming at ``start = (file_index, item_index)``."""
    first_file, first_item = start
    for index, path in enumerate(files):
        if index < first_file:
            continue
        yield from iter_file(path, index, first_item if index == first_file else 0)


def block_height(payload: Any) -> int | None:
    """The block number if the payload looks like a block, else None (decode will say why)."""
    try:
        number = payload["block_header"]["raw_data"].get("number", 0)
    except (KeyError, TypeError, AttributeError):
        return None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def block_timestamp(payload: Any) -> int | None:
    try:
        ts = payload["block_header"]["raw_data"]["timestamp"]
    except (KeyError, TypeError):
        return None
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None
