"""Checks that turn untrusted JSON values into the bounded scalars records are made of.

Node answers, replay files and pending messages are untrusted (DESIGN.md, trust boundaries):
decode copies only values that passed these checks into records, so nothing downstream -- the
minute aggregates, the ``DateTime`` columns, a dead letter's reason -- meets a value its type cannot
hold. Each check raises :class:`DecodeError` naming the field; none of them can raise anything else,
whatever the value (a 10 MB string, a list nested 1,000 deep, a 5,000-digit integer).
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.errors import DecodeError
from pipeline.tron.address import to_base58

INT64_MAX = 2**63 - 1
# Event time must fit every column that holds it. TRON's mainnet started on 2018-06-25; the
# ``minute_stats.minute`` column is a ``DateTime`` (UInt32 seconds: before 2106-02-07). A fixed
# bound keeps decode deterministic: the same input gives the same records whenever it is replayed.
TS_MIN_MS = 1_529_884_800_000  # 2018-06-25T00:00:00Z
TS_MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
# Transaction results the node reports (Transaction.Result.contractResult in TRON's protocol).
CONTRACT_RESULTS = frozenset({
    "DEFAULT", "SUCCESS", "REVERT", "BAD_JUMP_DESTINATION", "OUT_OF_MEMORY", "PRECOMPILED_CONTRACT",
    "STACK_TOO_SMALL", "STACK_TOO_LARGE", "ILLEGAL_OPERATION", "STACK_OVERFLOW", "OUT_OF_ENERGY",
    "OUT_OF_TIME", "JVM_STACK_OVER_FLOW", "UNKNOWN", "TRANSFER_FAILED", "INVALID_CODE",
})

hex64 = re.compile(r"[0-9a-fA-F]{64}").fullmatch
is_hex = re.compile(r"[0-9a-fA-F]*").fullmatch  # (string, pos, endpos): calldata words
# An enum name as protobuf's JSON renders it (a result or resource code the node may add later).
enum_name = re.compile(r"[A-Z][A-Z0-9_]{0,39}").fullmatch


def show(value: Any, limit: int = 40) -> str:
    """A short, safe preview of a bad value for an error message.

    ``f"{value!r:.40}"`` would build the whole repr first: unbounded work for a huge string, and a
    ``RecursionError`` for a deeply nested list. Containers are named by type and size instead.
    """
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        if -(10**limit) < value < 10**limit:
            return str(value)
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'} of {len(value)} items"
    return f"a {type(value).__name__}"


def hex_id(value: Any, field: str) -> str:
    """A 32-byte id (txID, blockID, parentHash): 64 hex characters."""
    if type(value) is str and hex64(value):
        return value
    raise DecodeError(f"must be 64 hex characters, got {show(value, 80)}", field)


def int64(value: Any, field: str, low: int = 0) -> int:
    """An integer in ``low..INT64_MAX`` (no honest protobuf value exceeds int64)."""
    if type(value) is int and low <= value <= INT64_MAX:
        return value
    if type(value) is not int:
        raise DecodeError(f"must be an integer, got {show(value)}", field)
    if value < low:
        raise DecodeError(f"must be >= {low}, got {show(value)}", field)
    raise DecodeError(f"exceeds int64, got {show(value)}", field)


def timestamp_ms(value: Any, field: str) -> int:
    """Milliseconds since the epoch, between TRON's genesis and 2100 (see ``TS_MIN_MS``)."""
    if type(value) is int and TS_MIN_MS <= value < TS_MAX_MS:
        return value
    if type(value) is not int:
        raise DecodeError(f"must be an integer (ms), got {show(value)}", field)
    raise DecodeError(f"must be a time in ms between 2018-06-25 and 2100-01-01, got {show(value)}", field)


def enum(value: Any, field: str, default: str) -> str:
    """A protobuf enum name (``ENERGY``, ``OUT_OF_ENERGY``): upper-case, at most 40 characters."""
    if value is None:
        return default
    if type(value) is str and enum_name(value):
        return value
    raise DecodeError(f"must be an enum name (A-Z, 0-9, _; up to 40), got {show(value)}", field)


def contract_result(value: Any, field: str) -> str:
    """``contractRet``: a known result, or an enum-shaped name a newer node may report."""
    if type(value) is str and value in CONTRACT_RESULTS:
        return value
    return enum(value, field, "DEFAULT")


def boolean(value: Any, field: str) -> bool:
    if type(value) is bool:
        return value
    raise DecodeError(f"must be true or false, got {show(value)}", field)


def short_text(value: Any, field: str, limit: int = 128) -> str:
    """A free-text name (contract name, TRC10 asset id): a string, cut to ``limit`` characters."""
    if value is None:
        return ""
    if type(value) is str:
        return value[:limit]
    raise DecodeError(f"must be a string, got {show(value)}", field)


def parse_block_header(payload: Any) -> tuple[int, str, str, int, str]:
    """``(number, blockID, parentHash, timestamp, witness)`` of a block, each validated, after
    checking that its ``transactions`` (if any) are a list: what makes a block usable at all.

    Raises :class:`DecodeError` naming the field (and nothing else, whatever the payload). The
    replay source calls it too, so a block that will be a dead letter cannot move the ordering
    guard (and make the real block at that height a "duplicate").
    """
    try:
        return _block_header(payload)
    except DecodeError:
        raise
    except Exception as err:  # noqa: BLE001
        raise DecodeError(unexpected(err), "block_header") from None


def _block_header(payload: Any) -> tuple[int, str, str, int, str]:
    if not isinstance(payload, dict):
        raise DecodeError(f"block must be a JSON object, got {show(payload)}")
    header = payload.get("block_header")
    raw = header.get("raw_data") if isinstance(header, dict) else None
    if not isinstance(raw, dict):
        raise DecodeError("missing block_header.raw_data", "block_header.raw_data")
    number = int64(raw.get("number", 0), "block_header.raw_data.number")
    ts = timestamp_ms(raw.get("timestamp"), "block_header.raw_data.timestamp")
    block_id = hex_id(payload.get("blockID"), "blockID")
    parent = raw.get("parentHash")  # absent only in hand-made input; when present, a real id
    parent = "" if parent is None else hex_id(parent, "block_header.raw_data.parentHash")
    witness = raw.get("witness_address", "")
    if witness:
        if type(witness) is not str:
            raise DecodeError(f"must be an address string, got {show(witness)}",
                              "block_header.raw_data.witness_address")
        try:
            witness = to_base58(witness)
        except DecodeError:
            raise DecodeError(f"invalid address {show(witness, 60)}", "block_header.raw_data.witness_address") from None
    if not isinstance(payload.get("transactions", []), list):  # an empty block omits the list
        raise DecodeError(f"must be a list, got {show(payload['transactions'])}", "transactions")
    return number, block_id, parent, ts, witness


def unexpected(err: BaseException) -> str:
    """The reason for a failure no check foresaw: its type and first line, bounded."""
    text = str(err).splitlines()[0] if str(err) else ""
    return f"cannot decode ({type(err).__name__}: {text[:200]})" if text else f"cannot decode ({type(err).__name__})"
