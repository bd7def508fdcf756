"""What the node follower takes from node answers, validated (pure; never raises on any JSON).

A broken or hostile node can answer anything: a list where a block should be, a ``transactions``
that is a number, a head without a header. Each function here turns one answer into what the
follower needs, or into a plain "unusable" value with a reason, so the follower (see
:mod:`pipeline.sources.node`) treats a bad answer like a missing one -- retry, then a dead letter
and move on -- and no answer can raise out of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import DecodeError
from pipeline.live.follower import BlockRef, block_ref, tx_ids


def checked_ref(block: Any) -> BlockRef | str:
    """The block's :class:`BlockRef`, or the reason it has none."""
    if not isinstance(block, Mapping):
        return f"a block must be a JSON object, got {type(block).__name__}"
    try:
        return block_ref(block)
    except DecodeError as err:
        return str(err)


def head_height(answer: Any) -> int | str:
    """The height of a ``getnowblock`` answer, or the reason it is unusable."""
    ref = checked_ref(answer)
    return ref if isinstance(ref, str) else ref.number


def block_or_none(answer: Any) -> dict[str, Any] | None:
    """A ``getblockbynum`` answer as a block, or None (the node has no usable block there)."""
    if isinstance(answer, dict) and answer and not isinstance(checked_ref(answer), str):
        return answer
    return None


def range_blocks(answer: Any, start: int) -> tuple[list[dict[str, Any]], str]:
    """Blocks ``start, start+1, …`` from a ``getblockbylimitnext`` answer (``{"block": [...]}``) or
    a single ``getblockbynum`` block, cut at the first one missing, unusable or out of sequence;
    with the reason for the cut ("" when the answer was used whole)."""
    if isinstance(answer, dict) and "block" in answer:
        blocks = answer["block"]
        if not isinstance(blocks, list):
            return [], f"'block' must be a list, got {type(blocks).__name__}"
    elif isinstance(answer, dict):
        blocks = [answer] if answer else []
    else:
        return [], f"answer must be a JSON object, got {type(answer).__name__}"
    out: list[dict[str, Any]] = []
    for expected, block in enumerate(blocks, start):
        ref = checked_ref(block)
        if isinstance(ref, str):
            return out, f"block at {expected}: {ref}"
        if ref.number != expected:
            return out, f"block {ref.number} where {expected} was expected"
        out.append(block)
    return out, ""


def receipts_for(answer: Any, block: Mapping[str, Any], number: int) -> list[dict[str, Any]] | str:
    """The receipts (``gettransactioninfobyblocknum``) of ``block`` when the answer holds exactly one
    per transaction, else the reason (not served yet, another branch, or malformed)."""
    ids = tx_ids(block)
    if not ids:
        return []
    if not isinstance(answer, list) or not all(isinstance(i, dict) for i in answer):
        got = len(answer) if isinstance(answer, list) else 0
        return f"block {number}: {got} receipts for {len(ids)} transactions (not ready or another branch)"
    served = {i.get("id") if isinstance(i.get("id"), str) else None for i in answer}
    if served != set(ids):
        return (f"block {number}: {len(answer)} receipts for {len(ids)} transactions "
                "(not ready or another branch)")
    return answer


def block_timestamp(block: Mapping[str, Any]) -> int:
    """``block_header.raw_data.timestamp`` as an int (0 when absent or not a plain integer)."""
    try:
        ts = block["block_header"]["raw_data"].get("timestamp", 0)
    except (KeyError, TypeError, AttributeError):
        return 0
    return ts if isinstance(ts, int) and not isinstance(ts, bool) and 0 <= ts < 2**63 else 0
