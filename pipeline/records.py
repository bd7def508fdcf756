"""Typed records that flow between the stages: the contracts every module builds against.

Hot-path records are ``typing.NamedTuple``: immutable, typed, no per-instance ``__dict__``, and
about four times cheaper to build and to pickle (Bytewax pickles items between workers) than a
frozen dataclass. Ids are deterministic so that replays deduplicate downstream:
a transfer is ``tx_id:index``; an alert id is a hash of rule id, subject and trigger.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Kind:
    """What a decoded record is. One record per value movement or account event."""

    TRX = "trx_transfer"
    TRC10 = "trc10_transfer"
    TRC20_TRANSFER = "trc20_transfer"
    TRC20_TRANSFER_FROM = "trc20_transfer_from"
    TRC20_APPROVE = "trc20_approve"
    CONTRACT_CALL = "contract_call"  # a TriggerSmartContract that is not a TRC20 call we decode
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    DELEGATE = "delegate_resource"
    UNDELEGATE = "undelegate_resource"
    PERMISSION_UPDATE = "permission_update"
    ACCOUNT_CREATE = "account_create"
    CONTRACT_CREATE = "contract_create"
    OTHER = "other"  # any other contract type: kept, never dropped

    VALUE_MOVEMENTS = frozenset({TRX, TRC10, TRC20_TRANSFER, TRC20_TRANSFER_FROM})
    ALL = (
        TRX, TRC10, TRC20_TRANSFER, TRC20_TRANSFER_FROM, TRC20_APPROVE, CONTRACT_CALL, FREEZE,
        UNFREEZE, DELEGATE, UNDELEGATE, PERMISSION_UPDATE, ACCOUNT_CREATE, CONTRACT_CREATE, OTHER,
    )


class RawBlock(NamedTuple):
    """A block exactly as the node returned it, tagged with where it came from.

    ``position`` is what a dead letter or a log line needs to find it again: ``file:line`` for
    replay input, ``height`` for a node.
    """

    source: str
    position: str
    payload: dict[str, Any]


class Block(NamedTuple):
    number: int
    block_id: str
    parent_hash: str
    ts: int  # block timestamp, ms since epoch UTC: the event time of everything in the block
    witness: str
    tx_count: int
    source: str


class Transfer(NamedTuple):
    """One value movement or account event (``kind``), addresses in base58.

    ``from_address``/``to_address`` follow the value: for ``trc20_transfer_from`` the ``from``
    argument and ``to`` argument, with the transaction's signer in ``caller`` (the spender); for
    ``trc20_approve`` the owner and the spender; for delegation the owner and the receiver.
    ``amount_raw`` is exact in the token's base unit; ``amount`` is decimal; ``amount_usd`` is 0.0
    where the token has no USD price configured.
    """

    id: str
    kind: str
    tx_id: str
    index: int
    block_number: int
    ts: int
    from_address: str
    to_address: str
    caller: str
    token: str
    symbol: str
    decimals: int
    amount_raw: int
    amount: float
    amount_usd: float
    success: bool
    result: str
    contract_type: str
    method: str
    extra: str  # compact JSON with kind-specific detail (resource, permission keys, calldata head)
    source: str = "block"  # "block" or "mempool"


class DeadLetter(NamedTuple):
    """Input that could not be used, with the reason and enough raw text to investigate."""

    source: str
    position: str
    reason: str
    raw: str
    seen_at: int  # wall clock ms, for operators; not part of any id


class DecodedBlock(NamedTuple):
    block: Block
    transfers: list[Transfer]
    dead_letters: list[DeadLetter]


SEVERITIES = ("info", "low", "medium", "high", "critical")


def alert_id(rule_id: str, subject: str, trigger: str) -> str:
    """The DESIGN contract's deterministic alert id: blake2b-128 hex of rule id, subject address
    and trigger (tx id or window id), so replays give the same id and storage deduplicates."""
    import hashlib

    return hashlib.blake2b(f"{rule_id}\x1f{subject}\x1f{trigger}".encode(), digest_size=16).hexdigest()


class Alert(NamedTuple):
    """The ``alerts`` contract of DESIGN.md; ``details`` is JSON evidence."""

    alert_id: str
    ts: int
    detected_at: int
    block_number: int
    tx_id: str
    address: str
    rule_id: str
    rule_version: str
    severity: str
    risk_score: float
    status: str  # pending | confirmed | dropped
    source: str  # block | mempool
    title: str
    tags: tuple[str, ...]
    details: str


# Numeric per-address features, in the order models consume them. Computed over the rolling
# windows by pipeline.operators (graph + features); rules see them by these names.
FEATURE_NAMES: tuple[str, ...] = (
    "tx_in_count",          # inbound value transfers in the long window (1 h)
    "tx_out_count",         # outbound value transfers in the long window
    "usd_in",               # inbound USD volume in the long window
    "usd_out",              # outbound USD volume in the long window
    "distinct_in",          # distinct senders in the long window
    "distinct_out",         # distinct receivers in the long window
    "fan_in_10m",           # distinct senders in the short window (10 min)
    "fan_out_10m",          # distinct receivers in the short window
    "pass_through_ratio",   # share of USD inflow forwarded out in the window (0..1)
    "pass_through_delay_s", # seconds from the latest inflow to the outflow that followed it
    "age_s",                # seconds since first seen (capped at the first-seen horizon)
    "zero_value_in",        # zero-value inbound transfers in the window
    "dust_in",              # inbound transfers below the dust threshold in the window
    "lookalike_count",      # counterparties sharing >=4 leading and >=4 trailing chars with another
    "cycle_count",          # short cycles (<=4 hops) through this address in the window
    "watch_hops",           # hop distance to the nearest watchlisted address (0..3; 9 = none)
    "exposure_score",       # decayed exposure to watchlisted addresses (0..1)
    "approvals_unlimited",  # unlimited TRC20 approvals granted in the window
    "failed_out",           # failed outbound transactions in the short window
    "permission_changes",   # account permission updates in the long window
)


class AddressFeatures(NamedTuple):
    """A snapshot of one address's features right after an update, in event time."""

    address: str
    ts: int
    block_number: int
    values: tuple[float, ...]  # aligned with FEATURE_NAMES

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values))


class AddressUpdate(NamedTuple):
    """One address touched by one transfer, with its features right after the update.

    The graph stage emits one per involved address (``role`` ``sender`` for ``from_address``,
    ``receiver`` for ``to_address``); the rule engine evaluates rules on these, and the anomaly
    scorer batches their ``features``. ``counterparty`` is the other side of the transfer.
    ``counterparty_hops`` is the counterparty's watchlist hop distance as the graph stage knew it
    (9 = none), so rules can see one hop further than the subject's own features.
    """

    address: str
    role: str
    counterparty: str
    transfer: Transfer
    features: AddressFeatures
    counterparty_hops: int = 9
