"""Hostile input, property-based: whatever a pending feed or a node answers, the parsing functions
return records, "unusable" values or dead letters -- never an exception.

Hypothesis throws arbitrary JSON (and arbitrary bytes) at the pending-message parser, the polled
transaction check, the pending-lifecycle step, and every function that reads a node answer; and
mutates real mainnet transactions and blocks so the interesting branches are reached too.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.live.answers import block_or_none, block_timestamp, head_height, range_blocks, receipts_for
from pipeline.live.feed import FeedTx, Rejected, check_transaction, parse_frame
from pipeline.live.follower import BlockRef, Follower, FollowState, ForkTooDeep, tx_ids
from pipeline.records import DeadLetter
from pipeline.sources.live_flow import PendingSpec, _PendingLogic
from pipeline.sources.mempool import PendingTx
from pipeline.sources.tron_http import parse_answer
from pipeline.tron.tokens import TokenRegistry
from tests.conftest import HEX_BLOCK

FULL = orjson.loads(HEX_BLOCK.read_bytes())
BLOCK = {**FULL, "transactions": FULL["transactions"][:4]}  # small enough to copy hundreds of times
TX = BLOCK["transactions"][0]
HEX64 = re.compile(r"[0-9a-fA-F]{64}")
KEYS = ["type", "seq", "seen_at", "transaction", "txID", "raw_data", "block", "blockID", "block_header",
        "number", "parentHash", "timestamp", "transactions", "id", "Error"]
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

junk = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=40) | st.sampled_from(["pending_transaction", "ab" * 32, TX["txID"], ""]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5),
    max_leaves=15,
)


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an int beyond 64 bits: send it as text, as a node could
        return repr(value).encode()


def _mutate(doc: Any, picks: list[tuple[int, Any]]) -> Any:
    """``doc`` with a few values anywhere inside (chosen by the ints) replaced by junk."""
    doc = copy.deepcopy(doc)
    for n, value in picks:
        parent: Any = None
        key: Any = None
        node = doc
        for depth in range(1 + n % 6):
            if isinstance(node, dict) and node:
                k: Any = sorted(node)[(n >> depth) % len(node)]
            elif isinstance(node, list) and node:
                k = (n >> depth) % len(node)
            else:
                break
            parent, key, node = node, k, node[k]
        if parent is not None:
            parent[key] = value
    return doc


@PROPS
@given(value=junk)
def test_any_json_message_is_a_transaction_a_rejection_or_ignored(value: Any) -> None:
    out = parse_frame(_dumps(value), 4 * 2**20)
    assert out is None or isinstance(out, (FeedTx, Rejected))
    if isinstance(out, FeedTx):
        assert HEX64.fullmatch(out.tx_id) and 0 <= out.seq < 2**63 and isinstance(out.tx["raw_data"], dict)
    if isinstance(out, Rejected):
        assert out.reason and len(out.raw) <= 300


@PROPS
@given(data=st.binary(max_size=300) | st.text(max_size=300), limit=st.integers(1, 400))
def test_any_bytes_are_parsed_without_raising(data: bytes | str, limit: int) -> None:
    out = parse_frame(data, limit)
    assert out is None or isinstance(out, (FeedTx, Rejected))
    try:
        parse_answer(data if isinstance(data, bytes) else data.encode())
    except ValueError:
        pass  # "not JSON": the node client's retryable error


@PROPS
@given(picks=st.lists(st.tuples(st.integers(0, 10**6), junk), min_size=1, max_size=3),
       seq=junk, seen_at=junk)
def test_mutated_real_pending_messages_pass_through_the_lifecycle_step(picks: list, seq: Any,
                                                                      seen_at: Any) -> None:
    tx = _mutate(TX, picks)
    message = {"type": "pending_transaction", "seq": seq, "seen_at": seen_at, "transaction": tx}
    out = parse_frame(_dumps(message), 4 * 2**20)
    assert isinstance(out, (FeedTx, Rejected))
    checked = check_transaction(tx, TX["txID"])
    assert isinstance(checked, (str, Rejected))
    logic = _PendingLogic(PendingSpec(TokenRegistry.build(), recovery=False), None)
    rows, _ = logic.on_batch([PendingTx("mempool", 1, 1_714_000_000_000, tx)])
    for table, batch in rows:
        assert table in ("alerts", "pending_lead_times", "dead_letters") and batch


@PROPS
@given(answer=junk, start=st.integers(0, 2**40))
def test_any_node_answer_yields_blocks_or_a_reason(answer: Any, start: int) -> None:
    blocks, why = range_blocks(answer, start)
    assert isinstance(why, str)
    numbers = [b["block_header"]["raw_data"].get("number", 0) for b in blocks]
    assert numbers == list(range(start, start + len(blocks)))
    head = head_height(answer)
    assert (isinstance(head, int) and head >= 0) or (isinstance(head, str) and head)
    assert block_or_none(answer) is None or isinstance(block_or_none(answer), dict)
    if isinstance(answer, dict):
        assert isinstance(tx_ids(answer), tuple) and isinstance(block_timestamp(answer), int)
    assert isinstance(receipts_for(answer, BLOCK, 1), (list, str))


@PROPS
@given(picks=st.lists(st.tuples(st.integers(0, 10**6), junk), min_size=1, max_size=3))
def test_mutated_real_blocks_and_receipts_yield_blocks_or_a_reason(picks: list) -> None:
    block = _mutate(BLOCK, picks)
    number = BLOCK["block_header"]["raw_data"]["number"]
    blocks, why = range_blocks({"block": [block]}, number)
    assert blocks in ([], [block]) and (blocks or why)
    receipts = receipts_for(_mutate([{"id": t} for t in tx_ids(BLOCK)], picks), block, number)
    assert isinstance(receipts, (list, str))
    follower = Follower(FollowState(number + 1, (BlockRef(number, BLOCK["blockID"], ""),)))
    try:
        follower.resolve_fork("node", lambda _h: block)
    except ForkTooDeep:
        pass


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(junk, max_size=5))
def test_dead_letters_from_polled_answers_are_made_of_text(ids: list) -> None:
    for value in ids:
        checked = check_transaction(value, "ab" * 32)
        if isinstance(checked, Rejected):
            letter = DeadLetter("mempool", "txid x", f"pending: {checked.reason}", checked.raw, 0)
            assert all(isinstance(f, str) for f in letter[:4])
