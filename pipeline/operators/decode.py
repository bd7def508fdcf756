"""Decode one TRON block, as ``/wallet/getblockbynum`` returns it, into typed records.

Works on both forms the node serves: hex (``41…`` addresses, ``visible=false``, the default) and
base58 (``visible=true``); the form is read per transaction from its owner address, so mixed input
is fine. Every transaction yields at least one record: contract types we understand become typed
transfers or account events, anything else a generic ``other`` event. A transaction that does not
have the node's shape becomes a dead letter naming the JSON field, and the rest of the block is
kept. Failed transactions (``contractRet`` other than ``SUCCESS``) are kept and marked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.errors import DecodeError
from pipeline.records import Block, DeadLetter, DecodedBlock, Kind, Transfer
from pipeline.tron.address import to_base58, word_to_base58
from pipeline.tron.tokens import TokenRegistry

SEL_TRANSFER = "a9059cbb"
SEL_TRANSFER_FROM = "23b872dd"
SEL_APPROVE = "095ea7b3"
INT64_MAX = 2**63 - 1
UNLIMITED_APPROVAL = 2**255  # allowances at or above this are "unlimited" (max uint256 in practice)
_RAW_LIMIT = 65536  # dead letters keep at most this many characters of the raw input

Params = dict[str, Any]


class _Tx:
    """Per-transaction context shared by the contract handlers (built once per transaction).

    Handlers raise :class:`DecodeError` with a field path *relative to the contract's value*;
    :func:`decode_transaction` prefixes the full path. Building paths only on failure keeps string
    formatting out of the hot path (TRON carries ~120 tx/s; a replay, hundreds of thousands).
    """

    __slots__ = ("block_number", "result", "source", "success", "tokens", "ts", "tx_id")

    def __init__(self, tx_id: str, block_number: int, ts: int, result: str, success: bool,
                 source: str, tokens: TokenRegistry) -> None:
        self.tx_id = tx_id
        self.block_number = block_number
        self.ts = ts
        self.result = result
        self.success = success
        self.source = source
        self.tokens = tokens


def _addr(value: Params, key: str, required: bool = True) -> str:
    raw = value.get(key)
    if type(raw) is str and raw:
        try:
            return to_base58(raw)
        except DecodeError as err:
            raise DecodeError(str(err), key) from None
    if raw is None or raw == "":
        if required:
            raise DecodeError("missing address", key)
        return ""
    raise DecodeError(f"address must be a string, got {type(raw).__name__}", key)


def _int(value: Params, key: str) -> int:
    raw = value.get(key, 0)  # protobuf JSON omits zero values
    if type(raw) is int and 0 <= raw <= INT64_MAX:  # no honest protobuf value exceeds int64
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise DecodeError(f"must be an integer, got {raw!r:.40}", key)
    if raw < 0:
        raise DecodeError(f"must not be negative, got {raw}", key)
    raise DecodeError(f"exceeds int64, got {raw}", key)


_new_transfer = tuple.__new__  # Transfer(...) without NamedTuple's Python-level __new__
_SCALE = tuple(10**d for d in range(78))  # token decimals are validated to 0..77


def _record(ctx: _Tx, index: int, kind: str, contract_type: str, src: str, dst: str, caller: str,
            token: str, symbol: str, decimals: int, raw: int, usd_price: float, method: str = "",
            extra: str = "") -> Transfer:
    amount = raw / _SCALE[decimals] if decimals else float(raw)
    return _new_transfer(Transfer, (
        f"{ctx.tx_id}:{index}", kind, ctx.tx_id, index, ctx.block_number, ctx.ts, src, dst, caller,
        token, symbol, decimals, raw, amount, amount * usd_price, ctx.success, ctx.result,
        contract_type, method, extra, ctx.source,
    ))


def _extra(**fields: Any) -> str:
    return orjson.dumps(fields).decode()


def _trx(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    owner = _addr(v, "owner_address")
    trx = ctx.tokens.trx
    return _record(ctx, i, Kind.TRX, ctype, owner, _addr(v, "to_address"), owner,
                   "TRX", "TRX", trx.decimals, _int(v, "amount"), trx.usd_price)


def _trc10(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    owner = _addr(v, "owner_address")
    name = v.get("asset_name", "")
    if not isinstance(name, str):
        raise DecodeError("must be a string", "asset_name")
    if len(v.get("owner_address", "")) == 42:
        try:  # hex form: the asset id's ASCII digits, hex-encoded
            name = bytes.fromhex(name).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            raise DecodeError(f"not hex-encoded ASCII: {name!r:.40}", "asset_name") from None
    info = ctx.tokens.trc10(name)
    return _record(ctx, i, Kind.TRC10, ctype, owner, _addr(v, "to_address"), owner,
                   info.token, info.symbol, info.decimals, _int(v, "amount"), info.usd_price)


def _trigger(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    owner = _addr(v, "owner_address")
    contract = _addr(v, "contract_address")
    data = v.get("data", "")
    if not isinstance(data, str):
        raise DecodeError("calldata must be a hex string", "data")
    selector = data[:8].lower()
    info = ctx.tokens.trc20(contract)
    try:
        if selector == SEL_TRANSFER and len(data) >= 136:
            return _record(ctx, i, Kind.TRC20_TRANSFER, ctype, owner, word_to_base58(data[8:72]), owner,
                           contract, info.symbol, info.decimals, int(data[72:136], 16), info.usd_price,
                           "transfer")
        if selector == SEL_TRANSFER_FROM and len(data) >= 200:
            return _record(ctx, i, Kind.TRC20_TRANSFER_FROM, ctype, word_to_base58(data[8:72]),
                           word_to_base58(data[72:136]), owner, contract, info.symbol, info.decimals,
                           int(data[136:200], 16), info.usd_price, "transferFrom")
        if selector == SEL_APPROVE and len(data) >= 136:
            return _record(ctx, i, Kind.TRC20_APPROVE, ctype, owner, word_to_base58(data[8:72]), owner,
                           contract, info.symbol, info.decimals, int(data[72:136], 16), 0.0, "approve")
    except ValueError:
        raise DecodeError(f"calldata is not hexadecimal: {data[:72].lower()!r}", "data") from None
    # Any other call (swaps, short or odd calldata): kept as a contract call carrying the TRX sent.
    trx = ctx.tokens.trx
    return _record(ctx, i, Kind.CONTRACT_CALL, ctype, owner, contract, owner, "TRX", "TRX",
                   trx.decimals, _int(v, "call_value"), trx.usd_price, selector,
                   _extra(selector=selector, data_len=len(data) // 2))


def _resource(kind: str, target_key: str | None, amount_key: str) -> Callable[..., Transfer]:
    def handle(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
        owner = _addr(v, "owner_address")
        target = _addr(v, target_key) if target_key else ""
        extra = {"resource": v.get("resource", "BANDWIDTH")}
        if "lock" in v:
            extra["lock"] = bool(v["lock"])
            extra["lock_period"] = _int(v, "lock_period")  # validated: it is written as JSON
        trx = ctx.tokens.trx
        return _record(ctx, i, kind, ctype, owner, target, owner, "TRX", "TRX", trx.decimals,
                       _int(v, amount_key), trx.usd_price, extra=orjson.dumps(extra).decode())
    return handle


def _keys(perm: Any, where: str) -> list[str]:
    if not isinstance(perm, dict):
        raise DecodeError("permission must be an object", where)
    out = []
    for j, key in enumerate(perm.get("keys", ()) or ()):
        if not isinstance(key, dict):
            raise DecodeError("key must be an object", f"{where}.keys[{j}]")
        try:
            out.append(_addr(key, "address"))
        except DecodeError as err:
            raise DecodeError(err.reason, f"{where}.keys[{j}].{err.field}") from None
    return out


def _permission(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    """AccountPermissionUpdate: the addresses that control the account after the update.

    ``to_address`` is the first owner key that is not the account itself (the takeover
    signature: control handed to a foreign key), or empty if the owner keeps sole control.
    """
    owner = _addr(v, "owner_address")
    owner_keys = _keys(v["owner"], "owner") if "owner" in v else []
    active_keys: list[str] = []
    for j, perm in enumerate(v.get("actives", ()) or ()):
        active_keys.extend(_keys(perm, f"actives[{j}]"))
    foreign = [k for k in owner_keys + active_keys if k != owner]
    threshold = v["owner"].get("threshold", 1) if isinstance(v.get("owner"), dict) else 1
    return _record(ctx, i, Kind.PERMISSION_UPDATE, ctype, owner, foreign[0] if foreign else "", owner,
                   "TRX", "TRX", ctx.tokens.trx.decimals, 0, 0.0,
                   extra=_extra(owner_keys=owner_keys, active_keys=active_keys,
                                owner_threshold=threshold, foreign_keys=len(set(foreign))))


def _account_create(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    owner = _addr(v, "owner_address")
    return _record(ctx, i, Kind.ACCOUNT_CREATE, ctype, owner, _addr(v, "account_address"), owner,
                   "TRX", "TRX", 6, 0, 0.0)


def _contract_create(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    owner = _addr(v, "owner_address")
    new = v.get("new_contract") or {}
    name = new.get("name", "") if isinstance(new, dict) else ""
    return _record(ctx, i, Kind.CONTRACT_CREATE, ctype, owner, "", owner, "TRX", "TRX", 6,
                   0, 0.0, extra=_extra(name=str(name)[:128]))


def _other(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    owner = _addr(v, "owner_address", required=False)
    return _record(ctx, i, Kind.OTHER, ctype, owner, "", owner, "TRX", "TRX", 6, 0, 0.0,
                   extra=_extra(keys=sorted(v)[:20]))


HANDLERS: dict[str, Callable[[_Tx, int, str, Params], Transfer]] = {
    "TransferContract": _trx,
    "TransferAssetContract": _trc10,
    "TriggerSmartContract": _trigger,
    "FreezeBalanceV2Contract": _resource(Kind.FREEZE, None, "frozen_balance"),
    "UnfreezeBalanceV2Contract": _resource(Kind.UNFREEZE, None, "unfreeze_balance"),
    "FreezeBalanceContract": _resource(Kind.FREEZE, None, "frozen_balance"),
    "UnfreezeBalanceContract": _resource(Kind.UNFREEZE, None, "unfreeze_balance"),
    "DelegateResourceContract": _resource(Kind.DELEGATE, "receiver_address", "balance"),
    "UnDelegateResourceContract": _resource(Kind.UNDELEGATE, "receiver_address", "balance"),
    "AccountPermissionUpdateContract": _permission,
    "AccountCreateContract": _account_create,
    "CreateSmartContract": _contract_create,
}


def decode_transaction(tx: Any, tokens: TokenRegistry, block_number: int, ts: int,
                       source: str = "block", field: str = "transaction") -> list[Transfer]:
    """All records of one transaction; raises :class:`DecodeError` naming the bad field."""
    if not isinstance(tx, dict):
        raise DecodeError("transaction must be an object", field)
    tx_id = tx.get("txID")
    if type(tx_id) is not str or len(tx_id) != 64:
        raise DecodeError(f"txID must be 64 hex characters, got {tx_id!r:.80}", f"{field}.txID")
    raw_data = tx.get("raw_data")
    if not isinstance(raw_data, dict):
        raise DecodeError("missing raw_data object", f"{field}.raw_data")
    contracts = raw_data.get("contract")
    if not isinstance(contracts, list) or not contracts:
        raise DecodeError("missing contract list", f"{field}.raw_data.contract")
    if source == "mempool":
        result = "PENDING"
    else:
        ret = tx.get("ret")
        if isinstance(ret, list) and ret and isinstance(ret[0], dict):
            result = str(ret[0].get("contractRet", "DEFAULT"))
        else:
            result = "UNKNOWN"
    if not ts:
        ts = raw_data.get("timestamp", 0) if isinstance(raw_data.get("timestamp"), int) else 0
    ctx = _Tx(tx_id, block_number, ts, result, result == "SUCCESS" or result == "PENDING", source, tokens)
    out = []
    for i, contract in enumerate(contracts):
        param = contract.get("parameter") if isinstance(contract, dict) else None
        value = param.get("value") if isinstance(param, dict) else None
        ctype = contract.get("type") if value is not None else None
        if type(ctype) is not str or not isinstance(value, dict):
            where = f"{field}.raw_data.contract[{i}]"
            if not isinstance(contract, dict):
                raise DecodeError("contract must be an object", where)
            raise DecodeError("contract needs a type and parameter.value", where)
        try:
            out.append(HANDLERS.get(ctype, _other)(ctx, i, ctype, value))
        except DecodeError as err:
            raise DecodeError(err.reason, f"{field}.raw_data.contract[{i}].parameter.value.{err.field}") from None
    return out


def _block_header(payload: dict[str, Any]) -> tuple[int, str, str, int, str]:
    header = payload.get("block_header")
    raw = header.get("raw_data") if isinstance(header, dict) else None
    if not isinstance(raw, dict):
        raise DecodeError("missing block_header.raw_data", "block_header.raw_data")
    number = raw.get("number", 0)
    ts = raw.get("timestamp")
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise DecodeError(f"must be a non-negative integer, got {number!r:.40}", "block_header.raw_data.number")
    if isinstance(ts, bool) or not isinstance(ts, int) or ts <= 0:
        raise DecodeError(f"must be a positive integer (ms), got {ts!r:.40}", "block_header.raw_data.timestamp")
    block_id = payload.get("blockID")
    if not isinstance(block_id, str) or len(block_id) != 64:
        raise DecodeError(f"must be 64 hex characters, got {block_id!r:.80}", "blockID")
    parent = raw.get("parentHash", "")
    witness = raw.get("witness_address", "")
    if witness:
        try:
            witness = to_base58(witness) if isinstance(witness, str) else ""
        except DecodeError:
            raise DecodeError(f"invalid address {witness!r:.60}", "block_header.raw_data.witness_address") from None
    return number, block_id, str(parent), ts, witness


def raw_excerpt(payload: Any) -> str:
    """The raw JSON of a bad input, cut to a size a dead-letter row can hold."""
    try:
        text = orjson.dumps(payload).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(payload)
    return text[:_RAW_LIMIT]


def decode_block(payload: Any, source: str, position: str, tokens: TokenRegistry) -> DecodedBlock | DeadLetter:
    """Decode a whole block; a block whose header is unusable is one dead letter.

    Transactions that fail individually become dead letters (with the transaction's index in the
    field path); the block and its other transactions are kept.
    """
    if not isinstance(payload, dict):
        return DeadLetter(source, position, "block must be a JSON object", raw_excerpt(payload), _now())
    try:
        number, block_id, parent, ts, witness = _block_header(payload)
    except DecodeError as err:
        return DeadLetter(source, position, str(err), raw_excerpt(payload), _now())
    txs = payload.get("transactions", [])  # an empty block omits the list
    if not isinstance(txs, list):
        return DeadLetter(source, position, "transactions: must be a list", raw_excerpt(payload), _now())
    records: list[Transfer] = []
    dead: list[DeadLetter] = []
    for j, tx in enumerate(txs):
        try:
            records.extend(decode_transaction(tx, tokens, number, ts, "block", f"transactions[{j}]"))
        except DecodeError as err:
            dead.append(DeadLetter(source, f"{position}#tx{j}", f"block {number}: {err}",
                                   raw_excerpt(tx), _now()))
    block = Block(number, block_id, parent, ts, witness, len(txs), source)
    return DecodedBlock(block, records, dead)


def _now() -> int:
    return int(time.time() * 1000)


