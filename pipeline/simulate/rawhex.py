"""Protobuf encoding of ``Transaction.raw`` as the hex string the node puts in ``raw_data_hex``.

Real blocks carry ``raw_data_hex`` next to ``raw_data``; consumers (and tronpy) may read either,
so the simulator emits a faithful encoding rather than filler. It works on hex strings directly
(addresses are already 21-byte hex inside the simulator) because concatenating a few short
strings is far cheaper than building protobuf messages. Field numbers follow java-tron's
``Tron.proto`` / ``contract/*.proto``; proto3 zero values are omitted, as the node does.
"""

from __future__ import annotations

from functools import lru_cache

# ContractType enum values of java-tron's Transaction.Contract.
CONTRACT_TYPE_NUMBER = {
    "AccountCreateContract": 0,
    "TransferContract": 1,
    "TransferAssetContract": 2,
    "TriggerSmartContract": 31,
    "AccountPermissionUpdateContract": 46,
    "FreezeBalanceV2Contract": 54,
    "UnfreezeBalanceV2Contract": 55,
    "DelegateResourceContract": 57,
    "UnDelegateResourceContract": 58,
}
TYPE_URL_PREFIX = "type.googleapis.com/protocol."
RESOURCE_NUMBER = {"BANDWIDTH": 0, "ENERGY": 1, "TRON_POWER": 2}


def varint(n: int) -> str:
    """Unsigned LEB128 varint of ``n`` as hex."""
    if n < 0x80:
        return f"{n:02x}"
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return out.hex()


def _len(hex_body: str) -> str:
    return varint(len(hex_body) // 2)


def field_bytes(tag: str, hex_body: str) -> str:
    """A length-delimited field: tag byte(s), varint length, body."""
    return tag + _len(hex_body) + hex_body


@lru_cache(maxsize=64)
def _contract_head(contract_type: str) -> tuple[str, str]:
    """``(08 <type>, 0a <len> <type_url>)`` for a contract type, computed once."""
    url = (TYPE_URL_PREFIX + contract_type).encode().hex()
    number = CONTRACT_TYPE_NUMBER[contract_type]
    return ("08" + varint(number) if number else ""), field_bytes("0a", url)


@lru_cache(maxsize=1024)
def contract_frame(contract_type: str, value_len: int, permission_id: int | None) -> tuple[str, str]:
    """Everything of field 11 (``contract``) around a value of ``value_len`` bytes: ``(head, tail)``.

    Lengths depend only on the contract type, the value's length and the permission id, so the
    frame is computed once per combination and the hot path is two concatenations.
    """
    type_part, url_part = _contract_head(contract_type)
    any_len = len(url_part) // 2 + 1 + len(varint(value_len)) // 2 + value_len
    tail = "28" + varint(permission_id) if permission_id else ""
    contract_len = len(type_part) // 2 + 1 + len(varint(any_len)) // 2 + any_len + len(tail) // 2
    head = "5a" + varint(contract_len) + type_part + "12" + varint(any_len) + url_part + "12" + varint(value_len)
    return head, tail


def raw_hex(contract_type: str, value_hex: str, ref_block_bytes: str, ref_block_hash: str,
            expiration: int, timestamp: int | None, fee_limit: int | None = None,
            permission_id: int | None = None) -> str:
    """``Transaction.raw`` with one contract, as ``raw_data_hex``."""
    type_part, url_part = _contract_head(contract_type)
    any_msg = url_part + field_bytes("12", value_hex)
    contract = type_part + field_bytes("12", any_msg)
    if permission_id:
        contract += "28" + varint(permission_id)
    out = "0a02" + ref_block_bytes + "2208" + ref_block_hash + "40" + varint(expiration) + field_bytes(
        "5a", contract)
    if timestamp is not None:
        out += "70" + varint(timestamp)
    if fee_limit:
        out += "9001" + varint(fee_limit)
    return out


# --- contract values (each returns the encoded inner message as hex) ---

def transfer_value(owner: str, to: str, amount: int) -> str:
    return "0a15" + owner + "1215" + to + ("18" + varint(amount) if amount else "")


def trigger_value(owner: str, contract: str, data: str, call_value: int | None = None) -> str:
    """``call_value`` is encoded whenever present in the JSON, even 0 (some wallets set it)."""
    return "0a15" + owner + "1215" + contract + ("18" + varint(call_value) if call_value is not None else "") + \
        field_bytes("22", data)


def asset_value(asset_name_hex: str, owner: str, to: str, amount: int) -> str:
    return field_bytes("0a", asset_name_hex) + "1215" + owner + "1a15" + to + (
        "20" + varint(amount) if amount else "")


def delegate_value(owner: str, resource: str, balance: int, receiver: str, lock: bool = False,
                   lock_period: int = 0) -> str:
    res = RESOURCE_NUMBER[resource]
    out = "0a15" + owner + ("10" + varint(res) if res else "") + "18" + varint(balance) + "2215" + receiver
    if lock:
        out += "2801"
    if lock_period:
        out += "30" + varint(lock_period)
    return out


def undelegate_value(owner: str, resource: str, balance: int, receiver: str) -> str:
    return delegate_value(owner, resource, balance, receiver)


def freeze_v2_value(owner: str, frozen_balance: int, resource: str) -> str:
    res = RESOURCE_NUMBER[resource]
    return "0a15" + owner + "10" + varint(frozen_balance) + ("18" + varint(res) if res else "")


def account_create_value(owner: str, account: str) -> str:
    return "0a15" + owner + "1215" + account


def permission_value(ptype: int, pid: int, name: str, threshold: int, keys: list[tuple[str, int]],
                     operations: str = "") -> str:
    """``Permission`` message: type, id, permission_name, threshold, operations, keys."""
    out = ("08" + varint(ptype) if ptype else "") + ("10" + varint(pid) if pid else "")
    out += field_bytes("1a", name.encode().hex()) + "20" + varint(threshold)
    if operations:
        out += field_bytes("32", operations)
    for address, weight in keys:
        out += field_bytes("3a", "0a15" + address + "10" + varint(weight))
    return out


def permission_update_value(owner: str, owner_perm_hex: str, active_perms_hex: list[str]) -> str:
    out = "0a15" + owner + field_bytes("12", owner_perm_hex)
    for active in active_perms_hex:
        out += field_bytes("22", active)
    return out
