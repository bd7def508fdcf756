"""What a rule expression can see: fields, features, constants and whitelisted functions.

Every name resolves at compile time to a typed accessor that reads straight from the
:class:`~pipeline.records.AddressUpdate` tuple by position (``u[3][i]`` is a transfer field,
``u[4][3][k]`` a feature): no per-update context dict is ever built, so a rule that reads three
names costs three tuple lookups however many names exist. Watchlists are reached only through
the :class:`Watchlists` protocol, implemented by ``pipeline.watchlists``, and allow lists through
:class:`Allowlists`, implemented by ``pipeline.allowlists``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, Protocol

from pipeline.records import FEATURE_NAMES, SEVERITIES, AddressFeatures, AddressUpdate, Kind, Transfer

NUM, STR, BOOL = "num", "str", "bool"
UNLIMITED = 2**255  # TRC20 "infinite" approvals are 2**256-1 or close to it; anything >= 2**255


class Watchlists(Protocol):
    """Watchlist membership, as the rule engine needs it (implemented in ``pipeline.watchlists``)."""

    def lists_of(self, address: str) -> tuple[str, ...]:
        """Names of the lists (e.g. ``("ofac",)``) that contain ``address``; ``()`` if none."""
        ...

    def severity_of(self, address: str) -> str | None:
        """Highest severity among the lists containing ``address`` (``SEVERITIES``); None or ""."""
        ...


class MemoryWatchlists:
    """A small in-memory :class:`Watchlists`: for embedded rule tests, backtests and unit tests."""

    def __init__(
        self,
        lists: Mapping[str, Iterable[str]] | None = None,
        severities: Mapping[str, str] | None = None,
    ) -> None:
        self._severity = {name: "high" for name in (lists or {})} | dict(severities or {})
        index: dict[str, list[str]] = {}
        for name, addresses in (lists or {}).items():
            for address in addresses:
                index.setdefault(address, []).append(name)
        self._index = {a: tuple(sorted(set(n))) for a, n in index.items()}

    def lists_of(self, address: str) -> tuple[str, ...]:
        return self._index.get(address, ())

    def severity_of(self, address: str) -> str:
        names = self._index.get(address)
        if not names:
            return ""
        return max((self._severity.get(n, "high") for n in names), key=SEVERITIES.index)


EMPTY_WATCHLISTS = MemoryWatchlists()


class Allowlists(Protocol):
    """Allow-list entries in force at an event time (implemented in ``pipeline.allowlists``)."""

    def match(self, rule_id: str, address: str, ts: int) -> object | None:
        """The entry suppressing ``rule_id``'s alerts about ``address`` at ``ts``; None if none."""
        ...

    def allowed(self, address: str, ts: int) -> bool:
        """``address`` has an entry in force at ``ts`` (any scope)."""
        ...

    def allowed_as(self, address: str, category: str, ts: int) -> bool:
        """``address`` has an entry of ``category`` in force at ``ts``."""
        ...


class _NoAllowlists:
    def match(self, rule_id: str, address: str, ts: int) -> None:
        return None

    def allowed(self, address: str, ts: int) -> bool:
        return False

    def allowed_as(self, address: str, category: str, ts: int) -> bool:
        return False


EMPTY_ALLOWLISTS = _NoAllowlists()


class Env:
    """Run-time environment shared by the closures of one rule set (swappable watchlists and
    allow lists)."""

    __slots__ = ("allow", "lists")

    def __init__(self, lists: Watchlists | None = None, allow: Allowlists | None = None) -> None:
        self.lists: Watchlists = lists if lists is not None else EMPTY_WATCHLISTS
        self.allow: Allowlists = allow if allow is not None else EMPTY_ALLOWLISTS


class Field(NamedTuple):
    type: str
    getter: Callable[[AddressUpdate], object]
    doc: str


def _transfer_field(name: str) -> Callable[[AddressUpdate], object]:
    i = Transfer._fields.index(name)
    return lambda u: u[3][i]


def _feature(name: str) -> Callable[[AddressUpdate], object]:
    k = FEATURE_NAMES.index(name)
    v = AddressFeatures._fields.index("values")
    return lambda u: u[4][v][k]


def _update_field(name: str) -> Callable[[AddressUpdate], object]:
    i = AddressUpdate._fields.index(name)
    return lambda u: u[i]


_TRANSFER_FIELDS = {
    "kind": (STR, "record kind, e.g. 'trc20_transfer' (see KIND_* constants)"),
    "token": (STR, "token contract (TRC20) or asset id (TRC10); '' for TRX"),
    "symbol": (STR, "token symbol, e.g. 'USDT', 'TRX'"),
    "decimals": (NUM, "token decimals"),
    "amount": (NUM, "decimal amount in token units"),
    "amount_usd": (NUM, "USD value; 0 where the token has no configured price"),
    "amount_raw": (NUM, "exact integer amount in base units (compare with UNLIMITED)"),
    "success": (BOOL, "the transaction succeeded"),
    "result": (STR, "contract result, e.g. 'SUCCESS', 'REVERT', 'OUT_OF_ENERGY'"),
    "method": (STR, "TRC20 method name or 4-byte selector"),
    "contract_type": (STR, "TRON contract type, e.g. 'TriggerSmartContract'"),
    "block_number": (NUM, "block height"),
    "ts": (NUM, "block timestamp, ms since epoch UTC (event time)"),
    "tx_id": (STR, "transaction id"),
    "from_address": (STR, "value sender (approve: owner; delegate: owner)"),
    "to_address": (STR, "value receiver (approve: spender; delegate: receiver)"),
    "caller": (STR, "transaction signer (the spender of a transferFrom)"),
    "source": (STR, "'block' or 'mempool'"),
}

FIELDS: dict[str, Field] = {
    name: Field(t, _transfer_field(name), doc) for name, (t, doc) in _TRANSFER_FIELDS.items()
}
FIELDS.update({
    "role": Field(STR, _update_field("role"), "'sender' or 'receiver': the subject's side; 'member': on a cycle the transfer closed"),
    "address": Field(STR, _update_field("address"), "the updated address (the subject's side)"),
    "counterparty": Field(STR, _update_field("counterparty"), "the other side of the transfer"),
    "counterparty_hops": Field(
        NUM, _update_field("counterparty_hops"), "counterparty's watchlist hop distance (9 = none)"
    ),
})
for _name in FEATURE_NAMES:
    FIELDS[_name] = Field(NUM, _feature(_name), "address feature (see FEATURE_NAMES)")

KIND_CONSTANTS = {
    f"KIND_{attr}": getattr(Kind, attr)
    for attr in dir(Kind)
    if attr.isupper() and isinstance(getattr(Kind, attr), str)
}
CONSTANTS: dict[str, tuple[str, object]] = {
    "UNLIMITED": (NUM, UNLIMITED),
    "VALUE_KINDS": ("list<str>", tuple(sorted(Kind.VALUE_MOVEMENTS))),
    **{name: (STR, value) for name, value in KIND_CONSTANTS.items()},
}


def lookalike(a: str, b: str, head: int = 4, tail: int = 4) -> bool:
    """Distinct addresses sharing ``head`` leading (after 'T') and ``tail`` trailing characters.

    This is what address-poisoning vanity addresses imitate: wallets show the first and last
    few characters. The leading 'T' of every TRON address is not counted.
    """
    return (
        a != b
        and len(a) > head + tail
        and a[1 : 1 + head] == b[1 : 1 + head]
        and a[-tail:] == b[-tail:]
    )


class Function(NamedTuple):
    """A whitelisted function: argument types (``*`` suffix = repeatable), result type, impl.

    ``needs_env`` functions get the :class:`Env` as first argument and are never constant-folded;
    ``event_time`` ones also get the transfer's ``ts`` as last argument (allow-list expiry is in
    event time, and a rule should not have to pass it).
    """

    args: tuple[str, ...]
    min_args: int
    result: str
    impl: Callable[..., object]
    needs_env: bool
    doc: str
    event_time: bool = False


FUNCTIONS: dict[str, Function] = {
    "min": Function((NUM, NUM + "*"), 2, NUM, min, False, "smallest of two or more numbers"),
    "max": Function((NUM, NUM + "*"), 2, NUM, max, False, "largest of two or more numbers"),
    "abs": Function((NUM,), 1, NUM, abs, False, "absolute value"),
    "round": Function((NUM,), 1, NUM, round, False, "nearest integer"),
    "len": Function((STR,), 1, NUM, len, False, "length of a string"),
    "lower": Function((STR,), 1, STR, str.lower, False, "lower-case string"),
    "startswith": Function((STR, STR), 2, BOOL, str.startswith, False, "a starts with b"),
    "endswith": Function((STR, STR), 2, BOOL, str.endswith, False, "a ends with b"),
    "lookalike": Function(
        (STR, STR, NUM, NUM), 2, BOOL, lookalike, False,
        "a and b differ but share head (4) leading and tail (4) trailing characters",
    ),
    "listed": Function(
        (STR,), 1, BOOL, lambda env, a: bool(env.lists.lists_of(a)), True,
        "address is on any watchlist",
    ),
    "listed_on": Function(
        (STR, STR), 2, BOOL, lambda env, a, name: name in env.lists.lists_of(a), True,
        "address is on the named watchlist, e.g. listed_on(counterparty, 'ofac')",
    ),
    "list_severity": Function(
        (STR,), 1, STR, lambda env, a: env.lists.severity_of(a) or "", True,
        "highest severity of the lists containing the address, '' if none",
    ),
    "allowlisted": Function(
        (STR,), 1, BOOL, lambda env, a, ts: env.allow.allowed(a, ts), True,
        "address is on an allow list (rules/allow/) at the transfer's time, e.g. a known exchange", True,
    ),
    "allowlisted_as": Function(
        (STR, STR), 2, BOOL, lambda env, a, category, ts: env.allow.allowed_as(a, category, ts), True,
        "address is on an allow list with that category, e.g. allowlisted_as(to_address, 'exchange')", True,
    ),
}

ALL_NAMES: tuple[str, ...] = tuple(FIELDS) + tuple(CONSTANTS)
