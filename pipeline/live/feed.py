"""Pending-pool messages, validated before use (pure; never raises on any input).

A pending feed is untrusted: one frame with ``"seq": "x"`` used to raise inside the websocket
thread and end the feed silently. Every frame goes through :func:`parse_frame`, every polled
transaction through :func:`check_transaction`, and comes out as a :class:`FeedTx` (sizes, types
and ranges checked), a :class:`Rejected` (the reason, and an excerpt for the dead letter), or
``None`` for a well-formed message of another type (the devnet's ``hello``), which is not an error.

Only the envelope and the transaction's identity are checked here; the transaction's contents
are decoded (and dead-lettered field by field) downstream, as for transactions in blocks.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import orjson

PENDING_TYPE = "pending_transaction"
MAX_SEQ = 2**63 - 1
# wall-clock ms a feed may stamp: from 2017 (TRON's mainnet) to what DateTime64(3) columns hold
MIN_SEEN_AT_MS, MAX_SEEN_AT_MS = 1_500_000_000_000, 10_000_000_000_000
EXCERPT_CHARS = 300
_TX_ID = re.compile(r"[0-9a-fA-F]{64}")


class FeedTx(NamedTuple):
    seq: int  # the feed's sequence number (0 when it has none)
    seen_at: int  # wall ms the feed first saw it (0: not given, the reader stamps its own)
    tx: dict[str, Any]
    tx_id: str


class Rejected(NamedTuple):
    reason: str
    raw: str  # the start of the message, for the dead letter
    seq: int = -1  # the message's sequence number when it had a usable one


def excerpt(data: bytes | str | Any) -> str:
    """The first :data:`EXCERPT_CHARS` characters of a message, as text."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data[: EXCERPT_CHARS * 4]).decode("utf-8", "replace")[:EXCERPT_CHARS]
    if isinstance(data, str):
        return data[:EXCERPT_CHARS]
    try:
        return orjson.dumps(data, default=repr).decode()[:EXCERPT_CHARS]
    except (TypeError, orjson.JSONEncodeError):  # too deep, or not JSON at all
        return repr(type(data))[:EXCERPT_CHARS]


def parse_frame(frame: bytes | str, max_bytes: int) -> FeedTx | Rejected | None:
    """One websocket frame ``{"type": "pending_transaction", "seq": …, "seen_at": …, "transaction":
    {…}}``: a :class:`FeedTx`, a :class:`Rejected` with the reason, or None for another type."""
    size = len(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame)
    if size > max_bytes:
        return Rejected(f"message of {size:,} bytes is over the {max_bytes:,}-byte limit", excerpt(frame))
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError as err:
        return Rejected(f"message is not JSON ({str(err)[:120]})", excerpt(frame))
    if not isinstance(msg, dict):
        return Rejected(f"message must be a JSON object, got {type(msg).__name__}", excerpt(frame))
    kind = msg.get("type")
    if not isinstance(kind, str):
        return Rejected(f"'type' must be a string, got {type(kind).__name__}", excerpt(frame))
    if kind != PENDING_TYPE:
        return None
    seq = msg.get("seq", 0)
    if seq is None:
        seq = 0
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        return Rejected(f"'seq' must be an integer 0..2^63-1, got {seq!r:.40}", excerpt(frame))
    seen_at = msg.get("seen_at", 0)
    if seen_at is None:
        seen_at = 0
    if isinstance(seen_at, float) and seen_at.is_integer():
        seen_at = int(seen_at)
    if isinstance(seen_at, bool) or not isinstance(seen_at, int) or not (
            seen_at == 0 or MIN_SEEN_AT_MS <= seen_at <= MAX_SEEN_AT_MS):
        return Rejected(f"'seen_at' must be wall-clock milliseconds, got {seen_at!r:.40}", excerpt(frame),
                        seq)
    tx = msg.get("transaction")
    checked = check_transaction(tx)
    if isinstance(checked, Rejected):
        return checked._replace(raw=excerpt(frame), seq=seq)
    return FeedTx(seq, seen_at, tx, checked)


def check_transaction(tx: Any, expected_id: str | None = None) -> str | Rejected:
    """The ``txID`` of ``tx`` when it is an object with a 64-hex ``txID`` (equal to ``expected_id``
    when given) and a ``raw_data`` object; otherwise a :class:`Rejected` saying why."""
    if not isinstance(tx, dict):
        return Rejected(f"transaction must be a JSON object, got {type(tx).__name__}", excerpt(tx))
    tx_id = tx.get("txID")
    if not isinstance(tx_id, str) or not _TX_ID.fullmatch(tx_id):
        return Rejected(f"transaction txID must be 64 hex digits, got {tx_id!r:.80}", excerpt(tx))
    if expected_id is not None and tx_id.lower() != expected_id.lower():
        return Rejected(f"transaction {tx_id} answered for {expected_id:.80}", excerpt(tx))
    if not isinstance(tx.get("raw_data"), dict):
        return Rejected(f"transaction {tx_id}: raw_data must be a JSON object", excerpt(tx))
    return tx_id
