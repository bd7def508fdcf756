"""Hostile input, property-based: whatever JSON arrives, decode returns records or dead letters.

The decoder is the edge of the system; an exception there would stop the stream. Hypothesis
mutates real mainnet blocks (wrong types, missing keys, huge and negative numbers, junk strings,
deep nesting) and also throws arbitrary JSON values at it.
"""

import copy

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.operators.decode import decode_block
from pipeline.records import DeadLetter, DecodedBlock
from pipeline.tron.tokens import TokenRegistry
from tests.conftest import HEX_BLOCK, VISIBLE_BLOCK

TOKENS = TokenRegistry.build()
BLOCKS = [orjson.loads(HEX_BLOCK.read_bytes()), orjson.loads(VISIBLE_BLOCK.read_bytes())]

junk = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=50) | st.sampled_from(["41" + "0" * 40, "T" * 34, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", ""]),
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


def _check(out):
    assert isinstance(out, (DecodedBlock, DeadLetter))
    if isinstance(out, DecodedBlock):
        for t in out.transfers:
            assert t.id == f"{t.tx_id}:{t.index}" and t.amount_raw >= 0
        for d in out.dead_letters:
            assert d.reason and d.position.startswith("p#tx")
    else:
        assert out.reason and len(out.raw) <= 65536


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
