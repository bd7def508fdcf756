"""Decode one TRON block, as ``/wallet/getblockbynum`` returns it, into typed records.

Works on both forms the node serves: hex (``41…`` addresses, ``visible=false``, the default) and
base58 (``visible=true``); the form is read per transaction from its owner address, so mixed input
is fine. Every transaction yields at least one record: contract types we understand become typed
transfers or account events, anything else a generic ``other`` event. A transaction that does not
have the node's shape becomes a dead letter naming the JSON field, and the rest of the block is
kept. Failed transactions (``contractRet`` other than ``SUCCESS``) are kept and marked.

The input is untrusted: only scalars that passed the checks of :mod:`pipeline.operators.scalars`
(types, int64 and uint256 ranges, 64-hex ids, timestamps between 2018 and 2100, enum-shaped
names) are copied into records, and *any* exception while decoding one transaction -- not only the
foreseen :class:`DecodeError` -- becomes that transaction's dead letter, so no input can stop the
stream (a stopped replay or live follower would resume at the same block: a crash loop).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.errors import DecodeError
from pipeline.operators.scalars import (
    CONTRACT_RESULTS,
    INT64_MAX,
    TS_MAX_MS,
    TS_MIN_MS,
    boolean,
    contract_result,
    enum,
    hex_id,
    int64,
    is_hex,
    parse_block_header,
    short_text,
    show,
    unexpected,
)
from pipeline.records import Block, DeadLetter, DecodedBlock, Kind, Transfer
from pipeline.tron.address import to_base58, word_to_base58
from pipeline.tron.tokens import TokenRegistry

SEL_TRANSFER = "a9059cbb"
SEL_TRANSFER_FROM = "23b872dd"
SEL_APPROVE = "095ea7b3"
UNLIMITED_APPROVAL = 2**255  # allowances at or above this are "unlimited" (max uint256 in practice)
_RAW_LIMIT = 65536  # dead letters keep at most this many characters of the raw input
_REASON_LIMIT = 1000  # and of the reason (every check already quotes values briefly)

Params = dict[str, Any]
_fromhex = bytes.fromhex
_RESOURCES = frozenset({"BANDWIDTH", "ENERGY", "TRON_POWER"})  # ResourceCode; a newer name passes ``enum``
_contract_type = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}").fullmatch  # a name we keep as ``other``


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
        except DecodeError as err:  # the codec's message quotes the value: only a short one
            raise DecodeError(str(err) if len(raw) <= 64 else f"not a TRON address: {show(raw)}", key) from None
    if raw is None or raw == "":
        if required:
            raise DecodeError("missing address", key)
        return ""
    raise DecodeError(f"address must be a string, got {show(raw)}", key)


def _int(value: Params, key: str) -> int:
    raw = value.get(key, 0)  # protobuf JSON omits zero values
    if type(raw) is int and 0 <= raw <= INT64_MAX:  # no honest protobuf value exceeds int64
        return raw
    return int64(raw, key)


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
    if type(name) is not str or len(name) > 64:  # an asset id (7 digits) or an old asset's name
        raise DecodeError(f"must be a string of at most 64 characters, got {show(name)}", "asset_name")
    if len(v["owner_address"]) == 42:
        try:  # hex form: the asset id's ASCII digits, hex-encoded
            name = bytes.fromhex(name).decode("ascii")
        except (ValueError, UnicodeDecodeError):
            raise DecodeError(f"not hex-encoded ASCII: {show(name)}", "asset_name") from None
    if not name.isprintable():
        raise DecodeError(f"has control characters: {show(name)}", "asset_name")
    info = ctx.tokens.trc10(name)
    return _record(ctx, i, Kind.TRC10, ctype, owner, _addr(v, "to_address"), owner,
                   info.token, info.symbol, info.decimals, _int(v, "amount"), info.usd_price)


def _trigger(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    owner = _addr(v, "owner_address")
    contract = _addr(v, "contract_address")
    data = v.get("data", "")
    if type(data) is not str:
        raise DecodeError(f"calldata must be a hex string, got {show(data, 72)}", "data")
    selector = data[:8].lower()
    info = ctx.tokens.trc20(contract)
    try:  # int(word, 16) alone would take whitespace, "_" and "0x": the words read are checked whole
        if selector == SEL_TRANSFER and len(data) >= 136:
            if len(_fromhex(data[8:136])) != 64:
                raise ValueError
            return _record(ctx, i, Kind.TRC20_TRANSFER, ctype, owner, word_to_base58(data[8:72]), owner,
                           contract, info.symbol, info.decimals, int(data[72:136], 16), info.usd_price,
                           "transfer")
        if selector == SEL_TRANSFER_FROM and len(data) >= 200:
            if len(_fromhex(data[8:200])) != 96:
                raise ValueError
            return _record(ctx, i, Kind.TRC20_TRANSFER_FROM, ctype, word_to_base58(data[8:72]),
                           word_to_base58(data[72:136]), owner, contract, info.symbol, info.decimals,
                           int(data[136:200], 16), info.usd_price, "transferFrom")
        if selector == SEL_APPROVE and len(data) >= 136:
            if len(_fromhex(data[8:136])) != 64:
                raise ValueError
            return _record(ctx, i, Kind.TRC20_APPROVE, ctype, owner, word_to_base58(data[8:72]), owner,
                           contract, info.symbol, info.decimals, int(data[72:136], 16), 0.0, "approve")
    except ValueError:
        raise DecodeError(f"calldata must be a hex string, got {show(data, 72)}", "data") from None
    # Any other call (swaps, short or odd calldata): kept as a contract call carrying the TRX sent.
    if not is_hex(selector):  # stored as ``method``: a hex selector, nothing else
        raise DecodeError(f"calldata must be a hex string, got {show(data, 72)}", "data")
    trx = ctx.tokens.trx
    return _record(ctx, i, Kind.CONTRACT_CALL, ctype, owner, contract, owner, "TRX", "TRX",
                   trx.decimals, _int(v, "call_value"), trx.usd_price, selector,
                   _extra(selector=selector, data_len=len(data) // 2))


def _resource(kind: str, target_key: str | None, amount_key: str) -> Callable[..., Transfer]:
    def handle(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
        owner = _addr(v, "owner_address")
        target = _addr(v, target_key) if target_key else ""
        # Copied into ``extra`` JSON, so validated like every other scalar (an object nested
        # deep enough here once stopped the whole stream inside orjson.dumps).
        resource = v.get("resource", "BANDWIDTH")
        if type(resource) is not str or resource not in _RESOURCES:
            resource = enum(v.get("resource"), "resource", "BANDWIDTH")
        extra: dict[str, Any] = {"resource": resource}
        if "lock" in v:
            extra["lock"] = boolean(v["lock"], "lock")
            extra["lock_period"] = _int(v, "lock_period")
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
    threshold = int64(v["owner"].get("threshold", 1), "owner.threshold") if "owner" in v else 1
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
    if not isinstance(new, dict):
        raise DecodeError(f"must be an object, got {show(new)}", "new_contract")
    name = short_text(new.get("name"), "new_contract.name")
    return _record(ctx, i, Kind.CONTRACT_CREATE, ctype, owner, "", owner, "TRX", "TRX", 6,
                   0, 0.0, extra=_extra(name=name))


def _other(ctx: _Tx, i: int, ctype: str, v: Params) -> Transfer:
    owner = _addr(v, "owner_address", required=False)
    return _record(ctx, i, Kind.OTHER, ctype, owner, "", owner, "TRX", "TRX", 6, 0, 0.0,
                   extra=_extra(keys=[k[:64] for k in sorted(v)[:20]]))


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
    """All records of one transaction; raises :class:`DecodeError` naming the bad field.

    Never raises anything else, whatever ``tx`` holds: the pending-pool path calls this directly
    and catches only :class:`DecodeError`.
    """
    try:
        return _decode_transaction(tx, tokens, block_number, ts, source)
    except Exception as err:  # noqa: BLE001 - an unforeseen failure is this transaction's error too
        raise _in(err, field) from None


def _in(err: Exception, field: str) -> DecodeError:
    """``err`` (raised with a field path relative to the transaction) under ``field``."""
    if isinstance(err, DecodeError):
        return DecodeError(err.reason, f"{field}.{err.field}" if err.field else field)
    return DecodeError(unexpected(err), field)


def _decode_transaction(tx: Any, tokens: TokenRegistry, block_number: int, ts: int,
                        source: str, block_ctx: _Tx | None = None) -> list[Transfer]:
    """The work of :func:`decode_transaction`; field paths are relative to the transaction, and
    built only on failure. This runs for every transaction, so the checks' fast paths are inline
    and a block's transactions share one context object (``block_ctx``): building it per
    transaction cost more than all the validation."""
    if not isinstance(tx, dict):
        raise DecodeError(f"transaction must be an object, got {show(tx)}")
    tx_id = tx.get("txID")
    try:  # 64 characters making 32 bytes: hex, with no room for the whitespace fromhex skips
        valid = type(tx_id) is str and len(tx_id) == 64 and len(_fromhex(tx_id)) == 32
    except ValueError:
        valid = False
    if not valid:
        hex_id(tx_id, "txID")  # raises, saying why
    raw_data = tx.get("raw_data")
    if not isinstance(raw_data, dict):
        raise DecodeError("missing raw_data object", "raw_data")
    contracts = raw_data.get("contract")
    if not isinstance(contracts, list) or not contracts:
        raise DecodeError("missing contract list", "raw_data.contract")
    if source == "mempool":
        result = "PENDING"
    else:
        ret = tx.get("ret")
        if isinstance(ret, list) and ret and isinstance(ret[0], dict):
            result = ret[0].get("contractRet")
            if type(result) is not str or result not in CONTRACT_RESULTS:
                result = contract_result(result, "ret[0].contractRet")
        else:
            result = "UNKNOWN"
    if not ts:  # a pending transaction: its own (client-set) time, if it is a plausible one
        own = raw_data.get("timestamp")
        ts = own if type(own) is int and TS_MIN_MS <= own < TS_MAX_MS else 0
    if block_ctx is None:
        ctx = _Tx(tx_id, block_number, ts, result, result == "SUCCESS" or result == "PENDING", source, tokens)
    else:
        ctx = block_ctx
        ctx.tx_id, ctx.result, ctx.success = tx_id, result, result == "SUCCESS"
    out = []
    for i, contract in enumerate(contracts):
        param = contract.get("parameter") if isinstance(contract, dict) else None
        value = param.get("value") if isinstance(param, dict) else None
        ctype = contract.get("type") if value is not None else None
        handler = HANDLERS.get(ctype) if type(ctype) is str else None
        if handler is None:
            where = f"raw_data.contract[{i}]"
            if not isinstance(contract, dict):
                raise DecodeError(f"contract must be an object, got {show(contract)}", where)
            if type(ctype) is not str or not isinstance(value, dict):
                raise DecodeError("contract needs a type and parameter.value", where)
            if not _contract_type(ctype):
                raise DecodeError(f"not a contract type name: {show(ctype)}", f"{where}.type")
            handler = _other
        try:
            out.append(handler(ctx, i, ctype, value))
        except Exception as err:  # noqa: BLE001 - named here, where the contract's path is known
            raise _in(err, f"raw_data.contract[{i}].parameter.value") from None
    return out


def raw_excerpt(payload: Any) -> str:
    """The raw JSON of a bad input, cut to a size a dead-letter row can hold.

    Never raises: a payload orjson cannot encode (nested deeper than 255) falls back to its
    repr, and one Python cannot repr (nested deeper than the recursion limit) to a note.
    """
    try:
        text = orjson.dumps(payload).decode()
    except (TypeError, orjson.JSONEncodeError):
        try:
            text = repr(payload)
        except Exception as err:  # noqa: BLE001 - RecursionError, MemoryError
            text = f"<not shown: {type(err).__name__}>"
    return text[:_RAW_LIMIT]


def decode_block(payload: Any, source: str, position: str, tokens: TokenRegistry) -> DecodedBlock | DeadLetter:
    """Decode a whole block; a block whose header is unusable is one dead letter.

    Transactions that fail individually become dead letters (with the transaction's index in the
    field path); the block and its other transactions are kept.
    """
    try:
        number, block_id, parent, ts, witness = parse_block_header(payload)
    except DecodeError as err:
        return DeadLetter(source, position, str(err)[:_REASON_LIMIT], raw_excerpt(payload), _now())
    txs = payload.get("transactions", [])  # a list: checked with the header
    records: list[Transfer] = []
    dead: list[DeadLetter] = []
    seen: set[str] = set()  # a txID twice would give two transactions the same record ids
    ctx = _Tx("", number, ts, "", False, "block", tokens)
    for j, tx in enumerate(txs):
        try:
            decoded = _decode_transaction(tx, tokens, number, ts, "block", ctx)
            tx_id = decoded[0].tx_id
            if tx_id in seen:
                raise DecodeError(f"duplicate txID {tx_id} in the block", "txID")
            seen.add(tx_id)
            records.extend(decoded)
        except Exception as err:  # noqa: BLE001 - whatever it is, it is this transaction's dead letter
            reason = f"block {number}: {_in(err, f'transactions[{j}]')}"
            dead.append(DeadLetter(source, f"{position}#tx{j}", reason[:_REASON_LIMIT], raw_excerpt(tx), _now()))
    block = Block(number, block_id, parent, ts, witness, len(txs), source)
    return DecodedBlock(block, records, dead)


def _now() -> int:
    return int(time.time() * 1000)


