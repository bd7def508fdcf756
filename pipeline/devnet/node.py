"""The TRON full-node HTTP API over a replayed chain: request in, real-node-shaped answer out.

This is the transport-free core of the devnet (the HTTP and websocket servers only move bytes),
so every endpoint can be exercised without sockets. Shapes follow java-tron: ``{}`` for a block or
transaction that does not exist (yet), ``[]`` for receipts of a missing block, ``{"Error": …}``
for a bad parameter, base58 addresses when ``visible`` is true. ``/walletsolidity/…`` answers
from the solidified head, ``solid_lag`` blocks behind the head.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from pipeline.devnet.chain import Chain
from pipeline.devnet.clock import HeadClock
from pipeline.devnet.pending import PendingPool
from pipeline.devnet.receipts import block_infos
from pipeline.devnet.visible import convert_transaction

log = logging.getLogger(__name__)

BLOCK_LIMIT = 100  # java-tron's cap for getblockbylimitnext / getblockbylatestnum
EMPTY = b"{}"


class Answer(NamedTuple):
    status: int
    body: bytes
    # run by the HTTP front once the response is written and flushed: a control that takes the
    # listener down (restart) must not cut its own answer off
    then: Callable[[], None] | None = None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _int(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    if value is None or value == "":
        raise ValueError(f'"{name}" is required')
    if isinstance(value, bool):
        raise ValueError(f'For input string: "{value}"')
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f'For input string: "{value}"') from None


def _error(message: str) -> Answer:
    return Answer(200, orjson.dumps({"Error": message}))


class NodeApi:
    """Answers ``/wallet/*`` and ``/walletsolidity/*`` requests from a chain, a clock and a pool."""

    def __init__(self, chain: Chain, clock: HeadClock, pool: PendingPool, solid_lag: int = 19) -> None:
        self.chain = chain
        self.clock = clock
        self.pool = pool
        self.solid_lag = max(0, solid_lag)
        self._routes: dict[str, Callable[[dict[str, Any], bool, bool], Answer]] = {
            "getnowblock": self._nowblock,
            "getblockbynum": self._blockbynum,
            "getblockbyid": self._blockbyid,
            "getblockbylimitnext": self._limitnext,
            "getblockbylatestnum": self._latestnum,
            "getnodeinfo": self._nodeinfo,
            "gettransactioninfobyblocknum": self._infos_by_block,
            "gettransactionbyid": self._tx_by_id,
            "gettransactioninfobyid": self._info_by_id,
            "getpendingsize": self._pending_size,
            "gettransactionlistfrompending": self._pending_list,
            "gettransactionfrompending": self._pending_tx,
            "getchainparameters": lambda p, v, s: Answer(200, b'{"chainParameter":[]}'),
        }

    # -- heights ---------------------------------------------------------------------------
    def head(self) -> int:
        return self.chain.first_number + self.clock.head_index()

    def solid_head(self) -> int:
        return max(self.chain.first_number, self.head() - self.solid_lag)

    def _visible_height(self, number: int, solid: bool) -> bool:
        return self.chain.first_number <= number <= (self.solid_head() if solid else self.head())

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, path: str, params: dict[str, Any]) -> Answer:
        """Answer one request; ``path`` like ``/wallet/getblockbynum``, params from query and body."""
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in ("wallet", "walletsolidity"):
            return Answer(404, orjson.dumps({"Error": f"no such endpoint: {path}"}))
        route = self._routes.get(parts[1].lower())
        if route is None:
            return Answer(404, orjson.dumps({"Error": f"no such endpoint: {path}"}))
        try:
            return route(params, _truthy(params.get("visible", False)), parts[0] == "walletsolidity")
        except ValueError as err:
            return _error(f"class java.lang.NumberFormatException : {err}")

    # -- blocks ----------------------------------------------------------------------------
    def _nowblock(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        return Answer(200, self.chain.render(self.solid_head() if solid else self.head(), visible)[0])

    def _blockbynum(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        number = _int(params, "num")
        if not self._visible_height(number, solid):
            return Answer(200, EMPTY)
        return Answer(200, self.chain.render(number, visible)[0])

    def _blockbyid(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        value = str(params.get("value", ""))
        number = self.chain.number_of_id(value.lower())
        if number is None or not self._visible_height(number, solid):
            return Answer(200, EMPTY)
        return Answer(200, self.chain.render(number, visible)[0])

    def _blocks(self, start: int, end: int, visible: bool, solid: bool) -> Answer:
        top = self.solid_head() if solid else self.head()
        numbers = range(max(start, self.chain.first_number), min(end, top + 1))
        if not numbers:
            return Answer(200, EMPTY)
        parts = [self.chain.render(n, visible)[0] for n in numbers]
        return Answer(200, b'{"block":[' + b",".join(parts) + b"]}")

    def _limitnext(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        start, end = _int(params, "startNum"), _int(params, "endNum")
        if start < 0 or end <= start or end - start > BLOCK_LIMIT:
            return Answer(200, EMPTY)
        return self._blocks(start, end, visible, solid)

    def _latestnum(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        count = _int(params, "num")
        if count <= 0 or count > BLOCK_LIMIT:
            return Answer(200, EMPTY)
        top = self.solid_head() if solid else self.head()
        return self._blocks(top - count + 1, top + 1, visible, solid)

    def _nodeinfo(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        head, solid_head = self.head(), self.solid_head()
        info = {
            "beginSyncNum": self.chain.first_number,
            "block": f"Num:{head},ID:{self.chain.block_id(head)}",
            "solidityBlock": f"Num:{solid_head},ID:{self.chain.block_id(solid_head)}",
            "currentConnectCount": 1, "activeConnectCount": 1, "passiveConnectCount": 0,
            "totalFlow": 0, "peerList": [],
            "configNodeInfo": {"codeVersion": "devnet", "versionNum": "devnet", "p2pVersion": "devnet",
                               "listenPort": 0, "discoverEnable": False, "activeNodeSize": 0,
                               "passiveNodeSize": 0, "sendNodeSize": 0, "maxConnectCount": 1,
                               "sameIpMaxConnectCount": 1, "backupListenPort": 0, "backupMemberSize": 0,
                               "backupPriority": 0, "dbVersion": 2, "minParticipationRate": 0,
                               "supportConstant": False, "minTimeRatio": 0.0, "maxTimeRatio": 5.0,
                               "allowCreationOfContracts": 0, "allowAdaptiveEnergy": 0},
            "machineInfo": {"threadCount": 1, "deadLockThreadCount": 0, "cpuCount": 1},
            "cheatWitnessInfoMap": {},
        }
        return Answer(200, orjson.dumps(info))

    # -- transactions and receipts ---------------------------------------------------------
    def _infos_by_block(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        number = _int(params, "num")
        if not self._visible_height(number, solid):
            return Answer(200, b"[]")
        return Answer(200, orjson.dumps(block_infos(self.chain.block(number, False), visible)))

    def _find_landed(self, tx_id: str, solid: bool) -> tuple[int, dict[str, Any]] | None:
        number = self.chain.height_of_tx(tx_id.lower())
        if number is None or not self._visible_height(number, solid):
            return None
        for tx in self.chain.block(number, False).get("transactions") or ():
            if tx.get("txID") == tx_id.lower():
                return number, tx
        return None  # left out of a reorged block

    def _tx_by_id(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        found = self._find_landed(str(params.get("value", "")), solid)
        if found is None:
            return Answer(200, EMPTY)
        return Answer(200, orjson.dumps(convert_transaction(found[1], True) if visible else found[1]))

    def _info_by_id(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        tx_id = str(params.get("value", "")).lower()
        found = self._find_landed(tx_id, solid)
        if found is None:
            return Answer(200, EMPTY)
        infos = block_infos(self.chain.block(found[0], False), visible)
        return Answer(200, orjson.dumps(next((i for i in infos if i["id"] == tx_id), {})))

    # -- pending pool ----------------------------------------------------------------------
    def _pending_size(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        return Answer(200, orjson.dumps({"pendingSize": len(self.pool.ids())}))

    def _pending_list(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        ids = self.pool.ids()
        return Answer(200, orjson.dumps({"txId": ids}) if ids else EMPTY)

    def _pending_tx(self, params: dict[str, Any], visible: bool, solid: bool) -> Answer:
        tx = self.pool.get(str(params.get("value", "")).lower(), visible)
        return Answer(200, orjson.dumps(tx) if tx is not None else EMPTY)
