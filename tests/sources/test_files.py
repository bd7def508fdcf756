import gzip

import orjson
import pytest

from pipeline.errors import InputError
from pipeline.sources.files import block_height, iter_replay, resolve_inputs


def _blocks(n, start=100):
    return [{"blockID": f"{start + i:016x}" + "0" * 48,
             "block_header": {"raw_data": {"number": start + i, "timestamp": 1_700_000_000_000 + 3000 * i}},
             "transactions": []} for i in range(n)]


def test_jsonl_gzip_limitnext_and_single_block_files_in_a_directory(tmp_path, hex_block):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b"\n".join(orjson.dumps(b) for b in _blocks(3))))
    (tmp_path / "b.json").write_bytes(orjson.dumps({"block": _blocks(2, start=200)}))
    (tmp_path / "c.json").write_bytes(orjson.dumps(hex_block))
    (tmp_path / "notes.txt").write_text("ignored")
    items = list(iter_replay(resolve_inputs([str(tmp_path)])))
    assert [block_height(i.payload) for i in items] == [100, 101, 102, 200, 201, 61132092]
    assert items[0].where.endswith("a.jsonl.gz:1") and items[3].where.endswith("b.json#0")


def test_malformed_line_is_an_error_item_with_file_and_line_and_reading_goes_on(tmp_path):
    lines = [orjson.dumps(b) for b in _blocks(3)]
    lines.insert(1, b'{"block_header": {"raw_data": ')
    f = tmp_path / "x.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    items = list(iter_replay([f]))
    assert [i.error != "" for i in items] == [False, True, False, False]
    assert items[1].where == f"{f}:2" and "invalid JSON" in items[1].error and items[1].raw.startswith('{"block_')


def test_resume_starts_after_the_last_item(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(b) for b in _blocks(5)))
    g = tmp_path / "y.jsonl"
    g.write_bytes(b"\n".join(orjson.dumps(b) for b in _blocks(2, start=105)))
    assert [block_height(i.payload) for i in iter_replay([f, g], (0, 3))] == [103, 104, 105, 106]
    assert [block_height(i.payload) for i in iter_replay([f, g], (1, 1))] == [106]


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="nope.jsonl: no such file"):
        resolve_inputs([str(tmp_path / "nope.jsonl")])
    with pytest.raises(InputError, match="no replay files"):
        resolve_inputs([str(tmp_path)])


def test_gzip_lines_match_gzip_module_including_multi_member_and_truncation(tmp_path):
    import gzip as gz

    blocks = _blocks(3000)
    payload = b"\n".join(orjson.dumps(b) for b in blocks) + b"\n"
    f = tmp_path / "m.jsonl.gz"
    f.write_bytes(gz.compress(payload[:70_000]) + gz.compress(payload[70_000:]))  # two members
    heights = [block_height(i.payload) for i in iter_replay([f])]
    assert heights == list(range(100, 3100))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(f.read_bytes()[:-200])
    items = list(iter_replay([cut]))
    assert items[-1].payload is None and "unreadable file tail" in items[-1].error
    assert [block_height(i.payload) for i in items[:-1]] == list(range(100, 100 + len(items) - 1))


def test_a_truncated_gzip_yields_every_complete_line_before_the_cut(tmp_path):
    import gzip as gz
    import zlib

    payload = b"\n".join(orjson.dumps(b) for b in _blocks(5000)) + b"\n"
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gz.compress(payload)[:-5000])
    readable = zlib.decompressobj(wbits=31).decompress(cut.read_bytes())  # what survives the cut
    items = list(iter_replay([cut]))
    assert items[-1].payload is None and "unreadable file tail" in items[-1].error
    assert len(items) - 1 == readable.count(b"\n") > 4000  # no complete line is lost with the tail


def test_stopping_early_ends_the_reader_thread(tmp_path):
    import threading

    f = tmp_path / "a.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps(b) for b in _blocks(20000)))
    items = iter_replay([f])
    assert block_height(next(items).payload) == 100
    items.close()
    assert not [t for t in threading.enumerate() if t.name == "read:a.jsonl"]
