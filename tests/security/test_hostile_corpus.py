"""One real ``run --input DIR`` over a hostile corpus: the process survives it, keeps every good
block whole, turns each bad item into exactly one dead letter with its reason, and stays small.

The corpus (tests/security/corpus.py) is built by the test from the real mainnet blocks: wrong
types and ranges in every header field, bad txID/parentHash/blockID/contractRet, invalid addresses
in every address field, huge/negative/fractional amounts, deep nesting (the two findings that
stopped the pipeline), very long strings and lines, non-UTF-8 bytes, control characters, NaN and
Infinity, non-object JSON, empty files, gzip bombs, a truncated gzip, duplicated and reordered
blocks. One subprocess runs the full pipeline (analytics included) over all of it, so the suite
pays for one run; its peak RSS is read from ``wait4`` of that child alone.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT
from tests.security.corpus import BOMB_LIMITS, LONG, Corpus, _deep, _raw, gzip_bomb

# The run's peak RSS must stay under 2.5 GB. Measured: 719-784 MB when this file runs alone, up to
# 1.9 GB for the same child inside the whole suite (cause not found yet: the child is measured
# alone, with wait4; see the session-6 note on issue 21).
PEAK_RSS_LIMIT_MB = 2560
BAD_ADDRESS = "41" + "0" * 38 + "zz"  # 42 characters, the hex form's prefix, not hex
BAD_CHECKSUM = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u"  # USDT's address with the last character changed


def _value(tx: dict) -> dict:
    return tx["raw_data"]["contract"][0]["parameter"]["value"]


def _set(**kv):
    return lambda tx, _b: _value(tx).update(kv)


def _as_permission_update(keys: list, threshold) -> callable:
    def mutate(tx, _b):
        owner = _value(tx)["owner_address"]
        tx["raw_data"]["contract"][0]["type"] = "AccountPermissionUpdateContract"
        tx["raw_data"]["contract"][0]["parameter"]["value"] = {
            "owner_address": owner, "owner": {"permission_name": "owner", "threshold": threshold,
                                              "keys": [{"address": k, "weight": 1} for k in keys or [owner]]}}
    return mutate


def _as_contract_create(name) -> callable:
    def mutate(tx, _b):
        owner = _value(tx)["owner_address"]
        tx["raw_data"]["contract"][0]["type"] = "CreateSmartContract"
        tx["raw_data"]["contract"][0]["parameter"]["value"] = {"owner_address": owner, "new_contract": {"name": name}}
    return mutate


def _contract(**kv):
    return lambda tx, _b: tx["raw_data"]["contract"][0].update(kv)


def _tx(**kv):
    return lambda tx, _b: tx.update(kv)


def _ret(value):
    return lambda tx, _b: tx["ret"][0].update(contractRet=value)


def _duplicate_txid(tx, b):
    tx["txID"] = b["transactions"][0]["txID"] if b["transactions"][0] is not tx else b["transactions"][1]["txID"]


HEADER = [  # (kind, mutation of a good block, part of the reason)
    ("header number: string", lambda b: _raw(b).update(number="70000001"), "number: must be an integer"),
    ("header number: negative", lambda b: _raw(b).update(number=-5), "number: must be >= 0"),
    ("header number: beyond int64", lambda b: _raw(b).update(number=2**63), "number: exceeds int64"),
    ("header number: fraction", lambda b: _raw(b).update(number=1.5), "number: must be an integer"),
    ("header timestamp: year 3000 (finding 2)", lambda b: _raw(b).update(timestamp=32_503_680_000_000),
     "timestamp: must be a time in ms between 2018-06-25 and 2100-01-01"),
    ("header timestamp: before genesis", lambda b: _raw(b).update(timestamp=1_000_000_000_000), "timestamp: must be a time"),
    ("header timestamp: seconds, not ms", lambda b: _raw(b).update(timestamp=1_720_000_000), "timestamp: must be a time"),
    ("header timestamp: string", lambda b: _raw(b).update(timestamp="2024-07-03"), "timestamp: must be an integer"),
    ("header timestamp: missing", lambda b: _raw(b).pop("timestamp"), "timestamp: must be an integer"),
    ("header blockID: short", lambda b: b.update(blockID="abc"), "blockID: must be 64 hex"),
    ("header blockID: not hex", lambda b: b.update(blockID="zz" * 32), "blockID: must be 64 hex"),
    ("header blockID: number", lambda b: b.update(blockID=12345), "blockID: must be 64 hex"),
    ("header parentHash: not hex", lambda b: _raw(b).update(parentHash="g" * 64), "parentHash: must be 64 hex"),
    ("header parentHash: very long string", lambda b: _raw(b).update(parentHash="a" * LONG), "parentHash: must be 64 hex"),
    ("header parentHash: deep nesting", lambda b: _raw(b).update(parentHash=_deep("p")), "parentHash: must be 64 hex"),
    ("header witness_address: invalid", lambda b: _raw(b).update(witness_address=BAD_ADDRESS), "witness_address"),
    ("header witness_address: object", lambda b: _raw(b).update(witness_address={"a": 1}), "witness_address"),
    ("header: block_header missing", lambda b: b.pop("block_header"), "missing block_header.raw_data"),
    ("header: raw_data a list", lambda b: b["block_header"].update(raw_data=[]), "missing block_header.raw_data"),
    ("header: transactions an object", lambda b: b.update(transactions={"0": 1}), "transactions: must be a list"),
]

TX = [  # (kind, contract type of the victim, mutation, part of the reason[, template])
    ("txID: not hex", "TransferContract", _tx(txID="zz" * 32), "txID: must be 64 hex"),
    ("txID: short", "TransferContract", _tx(txID="abc"), "txID: must be 64 hex"),
    ("txID: number", "TransferContract", _tx(txID=7), "txID: must be 64 hex"),
    ("txID: duplicated in the block", "TriggerSmartContract", _duplicate_txid, "duplicate txID"),
    ("contractRet: object", "TransferContract", _ret({"a": [1, 2]}), "contractRet: must be an enum name"),
    ("contractRet: very long string", "TransferContract", _ret("S" * LONG), "contractRet: must be an enum name"),
    ("contractRet: junk string", "TransferContract", _ret("success'; DROP TABLE x"), "contractRet: must be an enum name"),
    ("amount: negative", "TransferContract", _set(amount=-1), "amount: must be >= 0"),
    ("amount: beyond int64", "TransferContract", _set(amount=2**63), "amount: exceeds int64"),
    ("amount: beyond uint64 (a float once parsed)", "TransferContract", _set(amount=2**70), "amount: must be an integer"),
    ("amount: string", "TransferContract", _set(amount="100"), "amount: must be an integer"),
    ("amount: fraction", "TransferContract", _set(amount=1.5), "amount: must be an integer"),
    ("owner_address: invalid hex", "TransferContract", _set(owner_address=BAD_ADDRESS), "owner_address"),
    ("to_address: bad checksum", "TransferContract", _set(to_address=BAD_CHECKSUM), "to_address"),
    ("to_address: number", "TransferContract", _set(to_address=41), "to_address: address must be a string"),
    ("contract_address: invalid", "TriggerSmartContract", _set(contract_address=BAD_ADDRESS), "contract_address"),
    ("receiver_address: invalid", "DelegateResourceContract", _set(receiver_address=BAD_CHECKSUM), "receiver_address"),
    ("account_address: invalid", "AccountCreateContract", _set(account_address="T" * 34), "account_address"),
    ("permission key address: invalid", "TransferContract", _as_permission_update([BAD_ADDRESS], 1),
     "owner.keys[0].address"),
    ("owner_address: very long string", "TransferContract", _set(owner_address="A" * LONG), "owner_address"),
    ("owner_address: deep nesting", "TransferContract", _set(owner_address=_deep("o")), "owner_address"),
    ("resource: deep nesting (finding 1)", "DelegateResourceContract", _set(resource=_deep("r")),
     "resource: must be an enum name"),
    ("permission threshold: deep nesting (finding 1)", "TransferContract",
     _as_permission_update([], _deep("t")), "owner.threshold: must be an integer"),
    ("contract name: deep nesting", "TransferContract", _as_contract_create(_deep("n")),
     "new_contract.name: must be a string"),
    ("lock: string", "DelegateResourceContract", _set(lock="yes"), "lock: must be true or false"),
    ("calldata: not hex", "TriggerSmartContract", _set(data="a9059cbb" + "zz" * 64), "calldata must be a hex string"),
    ("calldata: whitespace in a word", "TriggerSmartContract", _set(data="a9059cbb" + " 1" * 64),
     "calldata must be a hex string"),
    ("asset_name: control characters", "TransferAssetContract", _set(asset_name="0102"), "has control characters"),
    ("asset_name: very long", "TransferAssetContract", _set(asset_name="31" * 1000), "at most 64 characters"),
    ("contract type: control characters", "TransferContract", _contract(type="Transfer\u0000Contract"),
     "not a contract type name"),
    ("contract list: empty", "TransferContract", lambda tx, _b: tx["raw_data"].update(contract=[]), "missing contract list"),
    ("contract: not an object", "TransferContract", lambda tx, _b: tx["raw_data"].update(contract=[5]),
     "contract must be an object"),
    ("raw_data: a string", "TransferContract", _tx(raw_data="raw"), "missing raw_data object"),
]

LINES = [  # (kind, bytes of the line, part of the reason)
    ("line: JSON array", b"[1, 2, 3]", "block must be a JSON object"),
    ("line: JSON string", b'"a block"', "block must be a JSON object"),
    ("line: JSON number", b"42", "block must be a JSON object"),
    ("line: JSON null", b"null", "block must be a JSON object"),
    ("line: truncated JSON", b'{"blockID": "00", "block_header": {"raw_data": {"number": 1', "invalid JSON"),
    ("line: NaN", b'{"blockID": NaN}', "invalid JSON"),
    ("line: Infinity", b'{"block_header": {"raw_data": {"number": Infinity}}}', "invalid JSON"),
    ("line: non-UTF-8 bytes", b'{"blockID": "\xff\xfe\xfd"}', "invalid JSON"),
    ("line: raw control character in a string", b'{"blockID": "a\x01b"}', "invalid JSON"),
    ("line: lone surrogate escape", b'{"blockID": "\\ud800"}', "invalid JSON"),
    ("line: nesting deeper than 1024", b"[" * 2000 + b"]" * 2000, "invalid JSON"),
]


def _build(root: Path, hex_block: dict, visible_block: dict) -> Corpus:
    c = Corpus(root, hex_block, visible_block)
    lines = [c.line_good(), c.line_good()]
    for kind, mutate, reason in HEADER:
        lines += [c.line_header(kind, mutate, reason), c.line_good()]
    for kind, ctype, mutate, reason in TX:
        lines += [c.line_tx(kind, ctype, mutate, reason), c.line_good()]
    for kind, data, reason in LINES:
        lines += [c.line_raw(kind, data, reason), c.line_good()]
    lines += [c.line_tolerated("raw_data_hex: truncated protobuf",
                               lambda b: b["transactions"][0].update(raw_data_hex=b["transactions"][0]["raw_data_hex"][:7])),
              c.line_tolerated("raw_data_hex: not hex", lambda b: b["transactions"][1].update(raw_data_hex="zz" * 40)),
              c.line_tolerated("string with escaped NUL in an unread field",
                               lambda b: b["transactions"][0].update(signature=["\u0000" * 10])),
              c.line_good()]
    c.jsonl("00_blocks.jsonl", lines)

    c.jsonl("01_long_line.jsonl", [c.line_good(), c.line_raw(
        "line: 9 MiB, over limits.max_line_bytes (finding 6)", b'{"pad": "' + b"a" * (9 << 20) + b'"}',
        "exceeds limits.max_line_bytes"), c.line_good()])

    bomb = root / "02_bomb.jsonl.gz"  # good lines, then a member inflating to 128 MiB (2x the limit) without a newline
    head = c.jsonl("02_head.tmp", [c.line_good(), c.line_good()])
    bomb.write_bytes(gzip.compress(head.read_bytes()) + gzip_bomb(128 << 20))
    head.unlink()
    c._dead(f"{bomb}:3", "gzip bomb in a JSONL stream (finding 6)", "limits.max_stream_bytes")

    doc = root / "03_bomb.json.gz"
    doc.write_bytes(gzip_bomb(64 << 20, b" "))  # 2x the limit
    c._dead(str(doc), "gzip bomb as a .json.gz document (finding 6)", "limits.max_document_bytes")

    (root / "04_empty.json").write_bytes(b"")
    c._dead(str(root / "04_empty.json"), "empty .json file", "empty file")
    (root / "05_empty.jsonl").write_bytes(b"")
    c.expected.kinds.append("empty .jsonl file")
    c.expected.tolerated.append("empty .jsonl file")

    truncated = _truncated_gzip(c, root / "06_truncated.jsonl.gz")
    c._dead(truncated, "truncated gzip", "unreadable file tail")

    first = c.good()
    c.expect_block(first)
    middle = copy_block = c.good()
    c.height -= 1  # the bad block's height is taken by the next good one
    c.parent = _raw(copy_block)["parentHash"]
    copy_block.pop("blockID")
    last = c.good()
    c.expect_block(last)
    limitnext = root / "07_limitnext.json"
    limitnext.write_bytes(orjson.dumps({"block": [first, middle, last]}))
    c._dead(f"{limitnext}#1", "getblockbylimitnext answer with a bad block inside", "blockID: must be 64 hex")

    (root / "08_scalar.json").write_bytes(b"42")
    c._dead(f"{root / '08_scalar.json'}#0", ".json document that is a number", "block must be a JSON object")

    c.jsonl("09_order.jsonl", [
        c.line_good(),
        c.line_repeat("duplicated block", lambda: c.written[-1], "duplicate block"),
        c.line_repeat("reordered (older) block", lambda: c.written[-3], "out-of-order block"),
        c.line_header("bad header claiming height 2**62", lambda b: _raw(b).update(number=2**62, parentHash="x"),
                      "parentHash: must be 64 hex"),
        c.line_good(),  # still stored: the bad header did not move the ordering guard
    ])
    return c


def _truncated_gzip(c: Corpus, path: Path) -> str:
    """Three good lines, gzipped, cut inside the last: the complete lines survive."""
    before = dict(c.expected.blocks)
    tmp = c.jsonl(path.name + ".tmp", [c.line_good(), c.line_good(), c.line_good()])
    data = gzip.compress(tmp.read_bytes())[:-2000]
    tmp.unlink()
    path.write_bytes(data)
    readable = zlib.decompressobj(wbits=31).decompress(data)
    survivors = readable.count(b"\n")
    new = [h for h in c.expected.blocks if h not in before]
    assert 0 < survivors < len(new)
    for height in new[survivors:]:
        del c.expected.blocks[height]
    return f"{path}:{survivors + 1}"


def _run_measured(cmd: list[str], env: dict[str, str], out: Path, timeout_s: float) -> tuple[int, int]:
    """Run ``cmd``; (exit code, peak RSS in MB of that child alone, from wait4)."""
    with open(out.with_suffix(".out"), "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, cwd=ROOT)
    killer = threading.Timer(timeout_s, proc.kill)  # a hang fails the test instead of the suite
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss // 1024


_QUERY = """
import json, sys
from pipeline.storage.clickhouse import connect
c = connect(sys.argv[1])
q = lambda sql: [list(r) for r in c.query(sql).result_rows]
print(json.dumps({
    "blocks": q("SELECT number, tx_count FROM blocks FINAL"),
    "transfers": q("SELECT block_number, uniqExact(tx_id), count() FROM transfers FINAL GROUP BY block_number"),
    "dead": q("SELECT position, reason FROM dead_letters FINAL"),
}))
"""


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, hex_block, visible_block):
    root = tmp_path_factory.mktemp("hostile")
    corpus_dir = root / "corpus"
    corpus_dir.mkdir()
    corpus = _build(corpus_dir, hex_block, visible_block)
    dsn = f"chdb://{root / 'db'}"
    env = {**os.environ, **BOMB_LIMITS}
    code, rss_mb = _run_measured([sys.executable, str(ROOT / "run_pipeline.py"), "run", "--input", str(corpus_dir),
                                  "--clickhouse", dsn, "--no-progress"], env, root / "run", timeout_s=600)
    stderr = (root / "run.err").read_text(errors="replace")
    query = subprocess.run([sys.executable, "-c", _QUERY, dsn], capture_output=True, text=True, cwd=ROOT,
                           timeout=120, check=False)
    stored = json.loads(query.stdout) if query.returncode == 0 else {}
    return corpus, code, rss_mb, stderr, stored


def test_the_corpus_has_at_least_30_kinds(corpus_run):
    corpus = corpus_run[0]
    assert len(set(corpus.expected.kinds)) == len(corpus.expected.kinds) >= 30
    assert len(corpus.expected.dead) >= 30


def test_the_run_exits_0_and_stays_under_the_memory_bound(corpus_run):
    _, code, rss_mb, stderr, stored = corpus_run
    assert code == 0, stderr[-3000:]
    assert stored, "the stored tables could not be read"
    assert rss_mb < PEAK_RSS_LIMIT_MB, f"peak RSS {rss_mb} MB"
    print(f"\ncorpus run: peak RSS {rss_mb} MB")


def test_every_good_block_is_stored_with_every_transaction(corpus_run):
    corpus, _, _, _, stored = corpus_run
    expected = corpus.expected.blocks
    assert {n: tx for n, tx in stored["blocks"]} == {n: e[0] for n, e in expected.items()}
    per_block = {n: (txs, records) for n, txs, records in stored["transfers"]}
    assert per_block == {n: (len(e[1]), e[2]) for n, e in expected.items()}
    assert sum(e[2] for e in expected.values()) > 10_000


def test_each_bad_item_is_exactly_one_dead_letter_with_its_reason(corpus_run):
    corpus, _, _, _, stored = corpus_run
    dead: dict[str, list[str]] = {}
    for position, reason in stored["dead"]:
        dead.setdefault(position, []).append(reason)
    expected = corpus.expected.dead
    assert sorted(dead) == sorted(expected), (set(dead) ^ set(expected))
    for position, (kind, part) in expected.items():
        [reason] = dead[position]
        assert part in reason, f"{kind}: {reason!r}"
        assert len(reason) < 1000, f"{kind}: reason of {len(reason)} characters"
