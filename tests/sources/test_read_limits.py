"""Replay files are untrusted: over-long lines, gzip bombs and huge documents cost a dead letter.

The limits are set small here so that each case is a few MB; the defaults (8 MiB lines, 128 MiB
documents, 64 GiB per gzipped stream) are the same code with bigger numbers.
"""

import gzip
import zlib

import orjson

from pipeline.config import LimitSettings, load_settings
from pipeline.sources import files
from pipeline.sources.files import ReadLimits, block_height, iter_replay, split_lines

SMALL = ReadLimits(max_line_bytes=1000, max_document_bytes=100_000, max_stream_bytes=1_000_000)


def _block(height):
    return orjson.dumps({"blockID": f"{height:064x}", "block_header": {"raw_data": {
        "number": height, "timestamp": 1_700_000_000_000 + 3000 * height}}, "transactions": []})


def _lines(chunks, max_line):
    return [x for batch in split_lines(iter(chunks), max_line) for x in batch]


def test_lines_spread_over_many_chunks_are_joined_and_numbering_is_kept():
    text = b"alpha\n\nbeta-gamma\nlast"
    for size in (1, 2, 3, 7, len(text)):
        chunks = [text[i:i + size] for i in range(0, len(text), size)]
        assert _lines(chunks, 100) == [b"alpha", b"", b"beta-gamma", b"last"]


def test_an_over_long_line_is_reported_by_size_and_the_next_line_survives():
    long = b"x" * 5000
    for size in (10, 999, 4096, 10_000):  # the long line inside one chunk, or spread over many
        data = b"ok1\n" + long + b"\nok2\n" + long
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        out = _lines(chunks, 1000)
        assert out[0] == b"ok1" and out[2] == b"ok2" and len(out) == 4
        assert isinstance(out[1], files._LongLine) and out[1].size == 5000
        assert isinstance(out[3], files._LongLine) and out[3].size == 5000


def test_a_long_line_is_never_held_whole():
    """Peak memory while a 64 MiB line streams past a 4 KiB limit: one chunk, not the line."""
    import tracemalloc

    def chunks():
        for _ in range(64):
            yield b"y" * (1 << 20)  # 64 MiB without a newline, made one chunk at a time
        yield b"\nafter\n"

    tracemalloc.start()
    try:
        out = [x for batch in split_lines(chunks(), 4096) for x in batch]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(out[0], files._LongLine) and out[0].size == 64 << 20 and out[1] == b"after"
    assert peak < 8 << 20, f"held {peak:,} bytes"


def test_long_line_in_a_file_is_one_error_item_naming_file_and_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_bytes(b"\n".join([_block(1), b'{"pad": "' + b"z" * 5000 + b'"}', _block(2)]) + b"\n")
    items = list(iter_replay([f], limits=SMALL))
    assert [block_height(i.payload) for i in items] == [1, None, 2]
    assert items[1].where == f"{f}:2" and "exceeds limits.max_line_bytes" in items[1].error
    assert items[1].raw == ""  # nothing of the long line is kept


def _bomb(size, byte=b"0"):
    """A gzip stream of ``size`` bytes of one repeated byte (compresses ~1000:1)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = byte * (1 << 20)
    out = [z.compress(piece) for _ in range(size >> 20)]
    return b"".join(out) + z.flush()


def test_gzip_bomb_in_a_jsonl_stream_stops_at_the_limit_after_the_good_lines(tmp_path, monkeypatch):
    seen = []
    real = files._decompressed

    def spy(*args, **kwargs):
        for piece in real(*args, **kwargs):
            seen.append(len(piece))
            yield piece

    monkeypatch.setattr(files, "_decompressed", spy)
    f = tmp_path / "bomb.jsonl.gz"
    f.write_bytes(gzip.compress(_block(1) + b"\n" + _block(2) + b"\n") + _bomb(16 << 20))
    items = list(iter_replay([f], limits=SMALL))
    assert [block_height(i.payload) for i in items[:2]] == [1, 2] and len(items) == 3
    assert items[2].where == f"{f}:3" and "limits.max_stream_bytes" in items[2].error
    assert sum(seen) <= SMALL.max_stream_bytes  # stopped there, not after inflating all 16 MB
    assert max(seen) <= files._CHUNK  # and never more than one bounded piece at a time


def test_gzip_bomb_as_a_json_document_is_refused_at_the_document_limit(tmp_path):
    f = tmp_path / "bomb.json.gz"
    f.write_bytes(_bomb(4 << 20, b" "))
    [item] = list(iter_replay([f], limits=SMALL))
    assert item.payload is None and item.where == str(f)
    assert "limits.max_document_bytes" in item.error and "JSON Lines" in item.error


def test_documents_under_the_limit_and_empty_files(tmp_path):
    ok = tmp_path / "a.json.gz"
    ok.write_bytes(gzip.compress(orjson.dumps({"block": [orjson.loads(_block(5)), orjson.loads(_block(6))]})))
    empty = tmp_path / "b.json"
    empty.write_bytes(b"  \n")
    items = list(iter_replay([ok, empty], limits=SMALL))
    assert [block_height(i.payload) for i in items] == [5, 6, None]
    assert items[2].error == "empty file" and items[2].where == str(empty)


def test_limit_settings_are_validated_and_mirror_the_reader_defaults():
    assert tuple(vars(LimitSettings()).values()) == tuple(ReadLimits())
    assert load_settings(env={"TRONRISK_LIMITS_MAX_LINE_BYTES": "4096"}).limits.max_line_bytes == 4096
    import pytest

    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="limits.max_stream_bytes: must be > 0"):
        load_settings(env={"TRONRISK_LIMITS_MAX_STREAM_BYTES": "0"})
