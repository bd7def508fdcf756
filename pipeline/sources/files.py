"""Reading replay input: the formats of DESIGN.md, as a resumable stream of blocks.

- JSON Lines (``.jsonl``, optionally ``.gz``): one ``/wallet/getblockbynum`` object per line;
- a ``.json`` (optionally ``.gz``) file: one block object, a ``/wallet/getblockbylimitnext``
  ``{"block": [...]}`` object, or a JSON list of blocks;
- a directory of such files, read in name order.

Each item has a position ``(file_index, item_index)`` so a reader can resume exactly after the
last item it emitted. A line that is not valid JSON is not an exception: it is yielded as an
error with ``file:line`` so it can become a dead letter while the stream goes on.

Replay files are untrusted, so reading is bounded (:class:`ReadLimits`, the ``[limits]``
settings): a JSONL line longer than ``max_line_bytes`` is skipped to the next newline without
being held; a gzipped JSONL file stops after ``max_stream_bytes`` decompressed (a gzip bomb); a
``.json`` document is refused past ``max_document_bytes``. Each is one error item naming the file
and line, and memory stays at a few chunks plus one line whatever the input.
"""

from __future__ import annotations

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
_RAW_LIMIT = 65536  # characters of an unparsable line kept for its dead letter


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


def _is_lines(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson"))


class ReadLimits(NamedTuple):
    """Bounds on what one replay file may make us hold or do (``[limits]`` in the settings).

    Replay files are untrusted input: a line with no newline for gigabytes, or a small gzip that
    inflates a thousandfold, must cost a dead letter, not the process's memory.
    """

    max_line_bytes: int = 8 << 20  # a JSONL line (one block; a TRON block is at most ~2 MB)
    max_document_bytes: int = 128 << 20  # a whole .json/.json.gz document, decompressed
    max_stream_bytes: int = 64 << 30  # a gzipped JSONL file, decompressed (a gzip bomb)


DEFAULT_LIMITS = ReadLimits()


class _ReadFailure(NamedTuple):
    error: str


class _LongLine(NamedTuple):
    """A JSONL line longer than the limit: skipped to the next newline, never held in memory."""

    size: int  # bytes seen before the newline (or the end of the file)


class _LimitExceeded(Exception):
    pass


_CHUNK = 1 << 22  # bytes per read (compressed reads are an eighth): few, large handoffs between threads
_AHEAD = 4  # chunks the reader may hold ahead of the parser: memory stays a few tens of MB


def _decompressed(fh: io.BufferedIOBase, gzipped: bool, limit: int = 0, what: str = "") -> Iterator[bytes]:
    """The file's bytes, gunzipped member by member when ``gzipped``, in pieces of at most ``_CHUNK``.

    zlib is used directly rather than :mod:`gzip` so that a truncated file still yields every
    byte before the cut (``GzipFile.read`` discards the chunk it was decompressing), and the
    truncation is then raised as ``EOFError``. Each ``decompress`` call is capped at ``_CHUNK``
    bytes of output, so a gzip bomb never inflates more than that at once; past ``limit``
    decompressed bytes (0: none) ``_LimitExceeded`` is raised, naming the setting ``what``.
    """
    if not gzipped:
        while data := fh.read(_CHUNK):
            yield data
        return
    member = zlib.decompressobj(wbits=31)
    fed = False
    total = 0
    while raw := fh.read(_CHUNK // 8):
        while True:
            fed = True
            data = member.decompress(raw, _CHUNK)
            if data:
                total += len(data)
                if limit and total > limit:
                    raise _LimitExceeded(f"decompressed size exceeds {what} ({limit:,} bytes): a gzip bomb?")
                yield data
            if member.eof:  # a multi-member file: the next member starts in unused_data
                raw, member, fed = member.unused_data, zlib.decompressobj(wbits=31), False
                if not raw:
                    break
            elif member.unconsumed_tail or len(data) == _CHUNK:  # more output is due from this input
                raw = member.unconsumed_tail
            else:
                break
    if fed and not member.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


def split_lines(chunks: Iterator[bytes], max_line: int) -> Iterator[list[bytes | _LongLine]]:
    """Complete lines (without newlines) of a stream of chunks, a list per chunk.

    A line spread over chunks is kept as a list of parts and joined once (linear, where
    ``tail + data`` per chunk would be quadratic on a long line); a line that grows past
    ``max_line`` is dropped as it streams and reported as a ``_LongLine``, so at most ``max_line``
    bytes of one line are ever held. The last line needs no newline.
    """
    parts: list[bytes] = []
    size = 0
    skipping = False
    for data in chunks:
        first = data.find(b"\n")
        if first < 0:
            size += len(data)
            if not skipping and size > max_line:
                skipping = True
                parts.clear()
            elif not skipping:
                parts.append(data)
            continue
        size += first
        if skipping or size > max_line:
            out: list[bytes | _LongLine] = [_LongLine(size)]
        else:
            out = [b"".join([*parts, data[:first]]) if parts else data[:first]]
        last = data.rfind(b"\n")
        if last > first:
            out.extend(line if len(line) <= max_line else _LongLine(len(line))
                       for line in data[first + 1:last].split(b"\n"))
        tail = data[last + 1:]
        size, skipping = len(tail), len(tail) > max_line
        parts = [] if skipping or not tail else [tail]
        yield out
    if skipping:
        yield [_LongLine(size)]
    elif parts:
        yield [b"".join(parts)]


def _read_chunks(fh: io.BufferedIOBase, gzipped: bool, limits: ReadLimits, out: queue.Queue,
                 stop: threading.Event) -> None:
    """Reader thread: read, decompress and split into lists of complete lines.

    File reads and zlib release the GIL, so decompression overlaps the JSON parsing and decoding
    done on the dataflow's thread (an eighth of a decode-and-store replay when done serially). A read error
    or a limit ends the stream with a :class:`_ReadFailure` after every complete line before it.
    """
    try:
        with fh:
            data = _decompressed(fh, gzipped, limits.max_stream_bytes, "limits.max_stream_bytes")
            for lines in split_lines(data, limits.max_line_bytes):
                if stop.is_set():
                    return
                out.put(lines)
        out.put(None)
    except (OSError, EOFError, zlib.error, _LimitExceeded) as err:  # truncated or corrupt gzip and the like
        out.put(_ReadFailure(str(err)))


def _prefetched_lines(path: Path, limits: ReadLimits) -> Iterator[bytes | _LongLine | _ReadFailure]:
    """The lines of ``path`` (without newlines), read ahead by a thread; a ``_ReadFailure`` last
    if the file could not be read to its end. Closing the iterator stops the thread."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - opened here (a missing file is the caller's InputError), closed by the reader thread
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None
    chunks: queue.Queue = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()
    reader = threading.Thread(target=_read_chunks,
                              args=(fh, path.name.endswith(".gz"), limits, chunks, stop),
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


def iter_file(path: Path, file_index: int, start_item: int = 0,
              limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[ReplayItem]:
    """Items of one file from ``start_item`` on (item = line for JSONL, block for JSON)."""
    if _is_lines(path):
        yield from _iter_lines(path, file_index, start_item, limits)
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; a failed open is the caller's InputError
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None
    try:
        with fh:
            data = b"".join(_decompressed(fh, path.name.endswith(".gz"), limits.max_document_bytes,
                                          "limits.max_document_bytes (use JSON Lines for more)"))
    except (OSError, EOFError, zlib.error, _LimitExceeded) as err:
        yield ReplayItem(file_index, 0, f"{path}", None, f"unreadable file: {err}", "")
        return
    if not data.strip():
        yield ReplayItem(file_index, 0, f"{path}", None, "empty file", "")
        return
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        yield ReplayItem(file_index, 0, f"{path}", None, f"invalid JSON: {err}",
                         data[:_RAW_LIMIT].decode("utf-8", "replace"))
        return
    del data
    if isinstance(doc, dict) and isinstance(doc.get("block"), list):
        blocks = doc["block"]  # /wallet/getblockbylimitnext
    elif isinstance(doc, list):
        blocks = doc
    else:
        blocks = [doc]
    for i, block in enumerate(blocks):
        if i >= start_item:
            yield ReplayItem(file_index, i, f"{path}#{i}", block, "", "")


def _iter_lines(path: Path, file_index: int, start_item: int, limits: ReadLimits) -> Iterator[ReplayItem]:
    i = -1
    for i, line in enumerate(_prefetched_lines(path, limits)):
        if isinstance(line, _ReadFailure):
            # Resume state past the end of the file: the tail cannot be read any better next time.
            yield ReplayItem(file_index, 1 << 62, f"{path}:{i + 1}", None, f"unreadable file tail: {line.error}", "")
            return
        if i < start_item:
            continue
        if isinstance(line, _LongLine):
            yield ReplayItem(file_index, i, f"{path}:{i + 1}", None,
                             f"line of {line.size:,} bytes or more exceeds limits.max_line_bytes "
                             f"({limits.max_line_bytes:,}); skipped to the next newline", "")
            continue
        if not line.strip():
            continue
        try:
            yield ReplayItem(file_index, i, f"{path}:{i + 1}", orjson.loads(line), "", "")
        except orjson.JSONDecodeError as err:
            yield ReplayItem(file_index, i, f"{path}:{i + 1}", None, f"invalid JSON: {err}",
                             line[:_RAW_LIMIT].decode("utf-8", "replace"))


def iter_replay(files: list[Path], start: tuple[int, int] = (0, 0),
                limits: ReadLimits = DEFAULT_LIMITS) -> Iterator[ReplayItem]:
    """All items of all files, resuming at ``start = (file_index, item_index)``."""
    first_file, first_item = start
    for index, path in enumerate(files):
        if index < first_file:
            continue
        yield from iter_file(path, index, first_item if index == first_file else 0, limits)


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
