"""Convert node JSON between the hex form (``visible=false``) and the base58 form (``visible=true``).

The real node renders the same protobuf two ways: address bytes as ``41…`` hex or base58check,
name bytes (``asset_name``, ``account_name``…) as hex or UTF-8 text. The devnet stores each block
in whatever form its input used and converts on the way out when a client asks for the other one,
so either kind of replay file can be served both ways. Only the fields the node converts are
touched: keys named ``address`` or ending in ``_address``, and the bytes-typed name fields.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import AddressError
from pipeline.tron.address import base58_to_hex, hex_to_base58

# Bytes-typed text fields that java-tron prints as UTF-8 when visible=true.
NAME_FIELDS = frozenset({"asset_name", "account_name", "name", "abbr", "description", "url"})


def _is_address_key(key: str) -> bool:
    return key == "address" or key.endswith("_address")


def _addr_to_visible(value: str) -> str:
    if len(value) == 42 and value[:2] == "41":
        try:
            return hex_to_base58(value.lower())
        except AddressError:
            return value
    return value


def _addr_to_hex(value: str) -> str:
    if value[:1] == "T":
        try:
            return base58_to_hex(value)
        except AddressError:
            return value
    return value


def _name_to_visible(value: str) -> str:
    try:
        return bytes.fromhex(value).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return value


def _name_to_hex(value: str) -> str:
    return value.encode("utf-8").hex()


def convert_value(obj: Any, visible: bool) -> Any:
    """Return a copy of a contract ``parameter.value`` (or any nested part) in the wanted form."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, val in obj.items():
            if isinstance(val, str):
                if _is_address_key(key):
                    val = _addr_to_visible(val) if visible else _addr_to_hex(val)
                elif key in NAME_FIELDS:
                    val = _name_to_visible(val) if visible else _name_to_hex(val)
            elif isinstance(val, (dict, list)):
                val = convert_value(val, visible)
            out[key] = val
        return out
    if isinstance(obj, list):
        return [convert_value(item, visible) for item in obj]
    return obj


def convert_transaction(tx: dict[str, Any], visible: bool) -> dict[str, Any]:
    """A transaction in the wanted form; the input is not modified."""
    raw = tx.get("raw_data")
    if not isinstance(raw, dict):
        return dict(tx)
    contracts = []
    for contract in raw.get("contract") or ():
        param = contract.get("parameter") if isinstance(contract, dict) else None
        if isinstance(param, dict) and isinstance(param.get("value"), dict):
            contract = {**contract, "parameter": {**param, "value": convert_value(param["value"], visible)}}
        contracts.append(contract)
    return {**tx, "raw_data": {**raw, "contract": contracts}}


def convert_block(block: dict[str, Any], visible: bool) -> dict[str, Any]:
    """A whole ``getblockbynum`` object in the wanted form; the input is not modified."""
    out = dict(block)
    header = block.get("block_header")
    if isinstance(header, dict) and isinstance(header.get("raw_data"), dict):
        raw = dict(header["raw_data"])
        if isinstance(raw.get("witness_address"), str):
            conv = _addr_to_visible if visible else _addr_to_hex
            raw["witness_address"] = conv(raw["witness_address"])
        out["block_header"] = {**header, "raw_data": raw}
    if "transactions" in block:
        out["transactions"] = [convert_transaction(tx, visible) for tx in block["transactions"]]
    return out


def is_visible_block(block: dict[str, Any]) -> bool:
    """True when the block is in base58 form, judged by the witness or the first owner address."""
    try:
        witness = block["block_header"]["raw_data"].get("witness_address")
    except (KeyError, TypeError, AttributeError):
        witness = None
    if isinstance(witness, str) and witness:
        return witness[0] == "T"
    for tx in block.get("transactions") or ():
        try:
            owner = tx["raw_data"]["contract"][0]["parameter"]["value"]["owner_address"]
        except (KeyError, IndexError, TypeError):
            continue
        return isinstance(owner, str) and owner[:1] == "T"
    return False
