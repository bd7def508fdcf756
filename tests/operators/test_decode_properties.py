"""Hostile input, property-based: whatever JSON arrives, decode returns records or dead letters.

The decoder is the edge of the system; an exception there would stop the stream. Hypothesis
mutates real mainnet blocks (wrong types, missing keys, huge and negative numbers, junk strings,
deep nesting) and also throws arbitrary JSON values at it.
"""

import copy
import math
import re

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import DecodeError
from pipeline.operators.decode import decode_block, decode_transaction
from pipeline.operators.scalars import INT64_MAX, TS_MAX_MS, TS_MIN_MS
from pipeline.records import DeadLetter, DecodedBlock
from pipeline.tron.tokens import TokenRegistry
from tests.conftest import HEX_BLOCK, VISIBLE_BLOCK

TOKENS = TokenRegistry.build()
BLOCKS = [orjson.loads(HEX_BLOCK.read_bytes()), orjson.loads(VISIBLE_BLOCK.read_bytes())]

def _nested(depth: int) -> list:
    out: list = []
    for _ in range(depth):
        out = [out]
    return out


# What a hostile node or file can put in any field. Beyond orjson's own output (which is what
# replay reads), the live path parses with the standard library: integers of any size, NaN and
# Infinity, lone surrogates. Deep nesting goes past orjson.dumps' limit (255) and Python's repr's.
scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.integers(min_value=2**250)
    | st.floats() | st.text(max_size=50) | st.text(st.characters(codec=None, categories=None), max_size=20)
    | st.sampled_from(["41" + "0" * 40, "T" * 34, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "", "a" * 100_000,
                       "SUCCESS", "\ud800", "Transfer\x00Contract", "a9059cbb" + " 1" * 64])
    | st.integers(250, 1200).map(_nested)
)
junk = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _paths(node, prefix=()):
    """Every (container, key) path in a JSON document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


PATHS = [list(_paths(b)) for b in BLOCKS]


HEX64 = re.compile(r"[0-9a-fA-F]{64}")
ENUM = re.compile(r"[A-Z][A-Z0-9_]{0,39}")


def _check_record(t, mempool=False):
    """Every field of a record is a bounded scalar that storage can hold (the decode contract)."""
    assert t.id == f"{t.tx_id}:{t.index}" and HEX64.fullmatch(t.tx_id)
    assert 0 <= t.amount_raw < 2**256 and 0 <= t.block_number <= INT64_MAX
    assert TS_MIN_MS <= t.ts < TS_MAX_MS or (mempool and t.ts == 0)
    assert math.isfinite(t.amount) and math.isfinite(t.amount_usd)
    assert ENUM.fullmatch(t.result) and len(t.contract_type) <= 64
    assert len(t.token) <= 64 and len(t.symbol) <= 64 and 0 <= t.decimals <= 77
    for text in (t.from_address, t.to_address, t.caller, t.token, t.method, t.extra):
        text.encode("utf-8")  # a lone surrogate would fail the ClickHouse insert: the sink's fatal path
    orjson.loads(t.extra or "{}")
    assert len(t.extra) < 10_000


def _check(out):
    assert isinstance(out, (DecodedBlock, DeadLetter))
    if isinstance(out, DecodedBlock):
        assert HEX64.fullmatch(out.block.block_id) and TS_MIN_MS <= out.block.ts < TS_MAX_MS
        assert out.block.parent_hash == "" or HEX64.fullmatch(out.block.parent_hash)
        for t in out.transfers:
            _check_record(t)
        for d in out.dead_letters:
            assert d.reason and d.position.startswith("p#tx") and len(d.reason) <= 1000
            d.reason.encode("utf-8")
            d.raw.encode("utf-8", "surrogatepass")
    else:
        assert out.reason and len(out.raw) <= 65536 and len(out.reason) <= 1000
        out.reason.encode("utf-8")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 1), picks=st.lists(st.tuples(st.integers(0, 10**6), junk, st.booleans()),
                                                min_size=1, max_size=4))
def test_mutated_real_blocks_never_raise(which, picks):
    block = copy.deepcopy(BLOCKS[which])
    for index, value, delete in picks:
        path = PATHS[which][index % len(PATHS[which])]
        parent = block
        try:
            for key in path[:-1]:
                parent = parent[key]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _check(decode_block(block, "test", "p", TOKENS))


@settings(max_examples=300, deadline=None)
@given(payload=junk)
def test_arbitrary_json_values_never_raise(payload):
    _check(decode_block(payload, "test", "p", TOKENS))


TXS = [tx for b in BLOCKS for tx in b["transactions"]]
TX_PATHS = [list(_paths(tx)) for tx in TXS[:40]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, 39), picks=st.lists(st.tuples(st.integers(0, 10**6), junk, st.booleans()),
                                                min_size=1, max_size=3),
       source=st.sampled_from(["block", "mempool"]))
def test_mutated_real_transactions_raise_only_decode_errors(which, picks, source):
    """The pending path calls decode_transaction directly and catches DecodeError only."""
    tx = copy.deepcopy(TXS[which])
    for index, value, delete in picks:
        path = TX_PATHS[which][index % len(TX_PATHS[which])]
        parent = tx
        try:
            for key in path[:-1]:
                parent = parent[key]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        records = decode_transaction(tx, TOKENS, 61_000_000, 1_714_000_000_000 if source == "block" else 0, source)
    except DecodeError as err:
        assert err.field and len(str(err)) < 1000
        return
    assert records
    for t in records:
        _check_record(t, mempool=source == "mempool")


@settings(max_examples=200, deadline=None)
@given(tx=junk, source=st.sampled_from(["block", "mempool"]))
def test_arbitrary_json_as_a_transaction_raises_only_decode_errors(tx, source):
    try:
        records = decode_transaction(tx, TOKENS, 1, 1_714_000_000_000, source)
    except DecodeError:
        return
    pytest.fail(f"decoded junk into {records!r:.200}")


def test_deeply_nested_and_huge_values_are_dead_letters_not_crashes():
    nested = {"blockID": "0" * 64, "block_header": {"raw_data": {"number": 1, "timestamp": 1_700_000_000_000}},
              "transactions": [{"txID": "a" * 64, "raw_data": {"contract": [{"type": "TransferContract",
                                "parameter": {"value": {"owner_address": [[[[[[]]]]]], "amount": 2**80}}}]}}]}
    out = decode_block(nested, "test", "p", TOKENS)
    assert isinstance(out, DecodedBlock) and len(out.dead_letters) == 1 and out.transfers == []
    huge = copy.deepcopy(BLOCKS[0])
    trx = next(tx for tx in huge["transactions"] if tx["raw_data"]["contract"][0]["type"] == "TransferContract")
    trx["raw_data"]["contract"][0]["parameter"]["value"]["amount"] = 2**80
    out = decode_block(huge, "test", "p", TOKENS)
    assert isinstance(out, DecodedBlock) and len(out.transfers) == 280
    [dead] = out.dead_letters
    assert "exceeds int64" in dead.reason and "parameter.value.amount" in dead.reason
