"""Run the test cases embedded in rule files: context values in, hit / no_hit / error out.

A case names only what its rule reads; everything else takes a neutral default (documented in
rules/README.md) so that a case stays short and keeps passing when unrelated fields are added.
Cases go through the same ``when`` prefilter and compiled closure as live traffic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from pipeline.records import FEATURE_NAMES, AddressFeatures, AddressUpdate, Kind, Transfer
from pipeline.rules.model import Case, Rule
from pipeline.rules.names import Env, MemoryWatchlists
from pipeline.tron.address import encode_raw

# Two fixed, valid mainnet-format addresses for the subject and its counterparty.
SUBJECT = encode_raw(bytes([0x41]) + bytes(range(1, 21)))
COUNTERPARTY = encode_raw(bytes([0x41]) + bytes(range(101, 121)))
CLOSER = encode_raw(bytes([0x41]) + bytes(range(201, 221)))  # a member case: the ring's closing sender
CASE_TS = 1_714_000_000_000  # 2024-04-24, mainnet-era event time
FEATURE_DEFAULTS = {name: 0.0 for name in FEATURE_NAMES} | {"watch_hops": 9.0, "age_s": 604_800.0}
_PREFERRED_KINDS = (Kind.TRC20_TRANSFER, Kind.TRX)  # the default kind of a case: USDT first

def list_severity(name: str) -> str:
    """Severity of a list named in a case: sanctions lists are critical, any other list high."""
    return "critical" if name.startswith(("ofac", "sanction")) else "high"



class CaseResult(NamedTuple):
    rule_id: str
    case: str
    expect: str
    got: str
    detail: str
    where: str

    @property
    def ok(self) -> bool:
        return self.expect == self.got


def build_update(rule: Rule, values: dict[str, Any]) -> AddressUpdate:
    """The AddressUpdate a case describes, with neutral defaults for what it does not name."""
    role = values.get("role", rule.roles[0])
    kind = values.get("kind", next((k for k in _PREFERRED_KINDS if k in rule.kinds), rule.kinds[0]))
    address = values.get("address", SUBJECT)
    counterparty = values.get("counterparty", COUNTERPARTY)
    if role == "member":  # as the flow builds it: the closing transfer, paying the counterparty
        sender, receiver = CLOSER, counterparty
    else:
        sender, receiver = (address, counterparty) if role == "sender" else (counterparty, address)
    from_address = values.get("from_address", sender)
    tx_id = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()
    is_token = kind in (Kind.TRC20_TRANSFER, Kind.TRC20_TRANSFER_FROM, Kind.TRC20_APPROVE)
    transfer = Transfer(
        id=f"{tx_id}:0",
        kind=kind,
        tx_id=values.get("tx_id", tx_id),
        index=0,
        block_number=values.get("block_number", 61_132_092),
        ts=values.get("ts", CASE_TS),
        from_address=from_address,
        to_address=values.get("to_address", receiver),
        caller=values.get("caller", from_address),
        token=values.get("token", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t" if is_token else ""),
        symbol=values.get("symbol", "USDT" if is_token else "TRX"),
        decimals=values.get("decimals", 6),
        amount_raw=values.get("amount_raw", 0),
        amount=float(values.get("amount", 0.0)),
        amount_usd=float(values.get("amount_usd", 0.0)),
        success=values.get("success", True),
        result=values.get("result", "SUCCESS" if values.get("success", True) else "REVERT"),
        contract_type=values.get("contract_type", ""),
        method=values.get("method", ""),
        extra="",
        source=values.get("source", "block"),
    )
    features = AddressFeatures(
        address=address,
        ts=transfer.ts,
        block_number=transfer.block_number,
        values=tuple(float(values.get(n, FEATURE_DEFAULTS[n])) for n in FEATURE_NAMES),
    )
    return AddressUpdate(address, role, counterparty, transfer, features,
                         int(values.get("counterparty_hops", 9)))


def case_watchlists(case: Case, u: AddressUpdate) -> MemoryWatchlists:
    """Lists of a case; keys may be a context name (``counterparty``) or a literal address."""
    known = {"address": u.address, "counterparty": u.counterparty, "from_address": u.transfer.from_address,
             "to_address": u.transfer.to_address, "caller": u.transfer.caller}
    by_list: dict[str, list[str]] = {}
    for key, names in case.lists.items():
        for name in names:
            by_list.setdefault(name, []).append(known.get(key, key))
    return MemoryWatchlists(by_list, {n: list_severity(n) for n in by_list})


def run_case(rule: Rule, case: Case, env: Env) -> CaseResult:
    """Evaluate one case against ``rule`` (compiled with ``env``, whose lists are swapped in)."""
    u = build_update(rule, case.values)
    where = f"{rule.path}:{case.line}"
    if u.role not in rule.roles or u.transfer.kind not in rule.kinds:
        return CaseResult(rule.id, case.name, case.expect, "no_hit",
                          f"filtered by when ({u.transfer.kind}, {u.role})", where)
    saved = env.lists
    env.lists = case_watchlists(case, u)
    try:
        hit = rule.compiled.fn(u)
        detail = repr(rule.compiled.evidence(u)) if hit else ""
    except Exception as err:  # noqa: BLE001 - an 'error' outcome is what the case may expect
        return CaseResult(rule.id, case.name, case.expect, "error", f"{type(err).__name__}: {err}", where)
    finally:
        env.lists = saved
    return CaseResult(rule.id, case.name, case.expect, "hit" if hit else "no_hit", detail, where)


def run_cases(rules: Sequence[Rule], env: Env) -> list[CaseResult]:
    """Every embedded case of every rule (disabled rules included: their cases must still hold)."""
    return [run_case(rule, case, env) for rule in rules for case in rule.cases]
