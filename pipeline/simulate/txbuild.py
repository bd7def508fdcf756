"""Turn transaction intents into ``/wallet/getblockbynum`` transaction objects.

An :class:`Intent` says what moves (kind, owner, receiver, amount, token); the factory renders it
exactly as the node would: key order, ``type_url``, ``Permission_id``, ``fee_limit`` for contract
calls, TRC20 calldata of 32-byte words (with the 0x41 byte in the address padding now and then,
as mainnet wallets do), hex or visible (base58) addresses, and a faithful ``raw_data_hex``.
Addresses are 21-byte hex (``41…``) inside the simulator; base58 comes from the codec's LRU cache.
Scalar randomness uses ``random.Random`` (tens of ns a draw), never the wall clock.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from pipeline.simulate import rawhex
from pipeline.tron.address import hex_to_base58

TRX = "trx"
TRC20 = "trc20"
TRC20_FROM = "trc20_from"
APPROVE = "approve"
TRC10 = "trc10"
DELEGATE = "delegate"
UNDELEGATE = "undelegate"
FREEZE = "freeze"
CREATE = "create"
PERMISSION = "permission"

CONTRACT_TYPE = {
    TRX: "TransferContract", TRC20: "TriggerSmartContract", TRC20_FROM: "TriggerSmartContract",
    APPROVE: "TriggerSmartContract", TRC10: "TransferAssetContract", DELEGATE: "DelegateResourceContract",
    UNDELEGATE: "UnDelegateResourceContract", FREEZE: "FreezeBalanceV2Contract",
    CREATE: "AccountCreateContract", PERMISSION: "AccountPermissionUpdateContract",
}
TYPE_URL = {k: rawhex.TYPE_URL_PREFIX + v for k, v in CONTRACT_TYPE.items()}
SEL_TRANSFER, SEL_TRANSFER_FROM, SEL_APPROVE = "a9059cbb", "23b872dd", "095ea7b3"
MAX_UINT256 = 2**256 - 1
FEE_LIMITS = (50_000_000, 100_000_000, 30_000_000, 225_000_000, 15_000_000, 75_600_000)
# operations bitmap wallets set for a default "active" permission (all common contract types)
_URL_TRIGGER = TYPE_URL[TRC20]
_FEE_HEX = tuple("9001" + rawhex.varint(f) for f in FEE_LIMITS)
_TS_POOL = 48  # distinct transaction timestamps per block (their varints computed once per block)
ACTIVE_OPERATIONS = "7fff1fc0033efb0f000000000000000000000000000000000000000000000000"


class Intent(NamedTuple):
    """One transaction to render. ``src`` is transferFrom's ``from``; ``label`` its episode."""

    kind: str
    owner: str
    to: str = ""
    amount: int = 0
    token: str = ""  # TRC20 contract hex, TRC10 asset id, or resource name
    src: str = ""
    ret: str = "SUCCESS"
    label: tuple[str, str] | None = None  # (typology, episode_id)


class TxFactory:
    """Renders intents for one block at a time; ``visible`` selects base58 addresses."""

    def __init__(self, rng: random.Random, visible: bool = False) -> None:
        self.rng = rng
        self.visible = visible
        self._a = hex_to_base58 if visible else _same
        self.ref_bytes = "0000"
        self.ref_hash = "0" * 16
        self.ref_ts = 0
        self.block_ts = 0

    def address(self, hex_address: str) -> str:
        """An internal (hex) address in this factory's output form."""
        return self._a(hex_address)

    def begin_block(self, block_ts: int, ref_bytes: str, ref_hash: str, ref_ts: int) -> None:
        """Set the block timestamp and reference block, and precompute the per-block hex pieces
        (the raw prefix, expirations and a pool of transaction timestamps with their varints)."""
        self.block_ts, self.ref_bytes, self.ref_hash, self.ref_ts = block_ts, ref_bytes, ref_hash, ref_ts
        self._pre = "0a02" + ref_bytes + "2208" + ref_hash + "40"
        self._exp = [(e, rawhex.varint(e)) for e in (ref_ts + 60_000, ref_ts + 300_000)]
        rng = self.rng
        stamps = sorted(block_ts - 300 - int(rng.random() * 8700) for _ in range(_TS_POOL))
        self._ts = [(t, "70" + rawhex.varint(t)) for t in stamps]

    def word(self, address: str) -> str:
        """ABI address word; ~30% carry the 0x41 byte in the padding, as on mainnet."""
        if self.rng.random() < 0.3:
            return "0000000000000000000000" + address
        return "000000000000000000000000" + address[2:]

    def build(self, it: Intent, tx_id: str, signature: str) -> dict[str, Any]:
        """The node's JSON for one intent (hot path: one branch per kind, precomputed frames)."""
        rng, a, kind = self.rng, self._a, it.kind
        permission_id = None
        if kind == TRC20 or kind == TRC20_FROM or kind == APPROVE:
            if kind == TRC20:
                data = SEL_TRANSFER + self.word(it.to) + f"{it.amount:064x}"
            elif kind == TRC20_FROM:
                data = SEL_TRANSFER_FROM + self.word(it.src) + self.word(it.to) + f"{it.amount:064x}"
            else:
                data = SEL_APPROVE + self.word(it.to) + f"{it.amount:064x}"
            value: dict[str, Any] = {"data": data, "owner_address": a(it.owner), "contract_address": a(it.token)}
            vhex = "0a15" + it.owner + "1215" + it.token + ("2244" if len(data) == 136 else "2264") + data
            j = int(rng.random() * 6)
            ts, ts_hex = self._ts[int(rng.random() * _TS_POOL)]
            expiration, exp_hex = self._exp[1] if rng.random() < 0.25 else self._exp[0]
            head, tail = rawhex.contract_frame("TriggerSmartContract", len(vhex) >> 1, None)
            return {"ret": [{"contractRet": it.ret}], "signature": [signature], "txID": tx_id,
                    "raw_data": {"contract": [{"parameter": {"value": value, "type_url": _URL_TRIGGER},
                                               "type": "TriggerSmartContract"}],
                                 "ref_block_bytes": self.ref_bytes, "ref_block_hash": self.ref_hash,
                                 "expiration": expiration, "fee_limit": FEE_LIMITS[j], "timestamp": ts},
                    "raw_data_hex": self._pre + exp_hex + head + vhex + tail + ts_hex + _FEE_HEX[j]}
        if kind == TRX:
            value = {"amount": it.amount, "owner_address": a(it.owner), "to_address": a(it.to)}
            vhex = rawhex.transfer_value(it.owner, it.to, it.amount)
        elif kind == TRC10:
            name_hex = it.token.encode().hex()
            value = {"amount": it.amount, "asset_name": it.token if self.visible else name_hex,
                     "owner_address": a(it.owner), "to_address": a(it.to)}
            vhex = rawhex.asset_value(name_hex, it.owner, it.to, it.amount)
        elif kind == DELEGATE or kind == UNDELEGATE:
            value = {"balance": it.amount}
            if it.token != "BANDWIDTH":
                value["resource"] = it.token
            value["receiver_address"] = a(it.to)
            if kind == DELEGATE:
                lock = rng.random() < 0.5
                if lock:
                    value["lock"] = True
                value["owner_address"] = a(it.owner)
                if lock:
                    value["lock_period"] = 28800
                vhex = rawhex.delegate_value(it.owner, it.token, it.amount, it.to, lock, 28800 if lock else 0)
            else:
                value["owner_address"] = a(it.owner)
                vhex = rawhex.undelegate_value(it.owner, it.token, it.amount, it.to)
            permission_id = 3 if rng.random() < 0.6 else None
        elif kind == FREEZE:
            value = {"resource": it.token, "frozen_balance": it.amount, "owner_address": a(it.owner)}
            vhex = rawhex.freeze_v2_value(it.owner, it.amount, it.token)
            permission_id = 3 if rng.random() < 0.5 else None
        elif kind == CREATE:
            value = {"owner_address": a(it.owner), "account_address": a(it.to)}
            vhex = rawhex.account_create_value(it.owner, it.to)
        elif kind == PERMISSION:
            value, vhex = self._permission(it.owner, it.to)
        else:
            raise ValueError(f"unknown intent kind {kind!r}")
        ctype = CONTRACT_TYPE[kind]
        contract: dict[str, Any] = {"parameter": {"value": value, "type_url": TYPE_URL[kind]}, "type": ctype}
        if permission_id:
            contract["Permission_id"] = permission_id
        ts, ts_hex = self._ts[int(rng.random() * _TS_POOL)]
        expiration, exp_hex = self._exp[0]
        head, tail = rawhex.contract_frame(ctype, len(vhex) >> 1, permission_id)
        return {"ret": [{"contractRet": it.ret}], "signature": [signature], "txID": tx_id,
                "raw_data": {"contract": [contract], "ref_block_bytes": self.ref_bytes,
                             "ref_block_hash": self.ref_hash, "expiration": expiration, "timestamp": ts},
                "raw_data_hex": self._pre + exp_hex + head + vhex + tail + ts_hex}

    def _permission(self, owner: str, key: str) -> tuple[dict[str, Any], str]:
        """Owner and active permissions both handed to ``key`` (a takeover's foreign key)."""
        a = self._a
        owner_perm = {"permission_name": "owner", "threshold": 1, "keys": [{"address": a(key), "weight": 1}]}
        active = {"type": "Active", "id": 2, "permission_name": "active", "threshold": 1,
                  "operations": ACTIVE_OPERATIONS, "keys": [{"address": a(key), "weight": 1}]}
        vhex = rawhex.permission_update_value(
            owner, rawhex.permission_value(0, 0, "owner", 1, [(key, 1)]),
            [rawhex.permission_value(2, 2, "active", 1, [(key, 1)], ACTIVE_OPERATIONS)])
        return {"owner_address": a(owner), "owner": owner_perm, "actives": [active]}, vhex


def _same(address: str) -> str:
    return address
