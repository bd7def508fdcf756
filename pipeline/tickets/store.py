"""ClickHouse side of ticket delivery: read open outbox items, write new states, log attempts.

The outbox is a ReplacingMergeTree keyed by ``item_key`` with a ``version`` column: every state
change is an insert with a higher version, read back with ``FINAL``. The dataflow writes version
0, so a replayed ``pending`` row never wins over anything the worker recorded.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.tickets.destinations.base import Ticket
from pipeline.tickets.outbox import DELIVERED, OPEN_STATES, OUTBOX_COLUMNS, TICKET_COLUMNS, OutboxItem

_MS = {"ts", "next_attempt_at", "updated_at"}
_SELECT = ", ".join(f"toUnixTimestamp64Milli({c})" if c in _MS else c for c in OUTBOX_COLUMNS)


def next_version(item: OutboxItem) -> int:
    """Microseconds of wall clock, and always above the item's current version."""
    return max(item.version + 1, time.time_ns() // 1000)


class OutboxStore:
    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.db = database

    def _items(self, where: str, params: dict[str, Any], limit: int, order: str = "ts, alert_id") -> list[OutboxItem]:
        sql = (f"SELECT {_SELECT} FROM {self.db}.ticket_outbox FINAL WHERE {where} "
               f"ORDER BY {order} LIMIT {int(limit)}")
        return [OutboxItem(*row) for row in self.client.query(sql, parameters=params).result_rows]

    def open_items(self, limit: int) -> list[OutboxItem]:
        """Items still to deliver, oldest alert first (so a group's first alert creates its ticket)."""
        states = ", ".join(f"'{s}'" for s in OPEN_STATES)
        return self._items(f"state IN ({states})", {}, limit)

    def list(self, state: str = "", destination: str = "", limit: int = 50) -> list[OutboxItem]:
        conds, params = ["1"], {}
        if state:
            conds.append("state = {state:String}")
            params["state"] = state
        if destination:
            conds.append("destination = {dest:String}")
            params["dest"] = destination
        return self._items(" AND ".join(conds), params, limit, order="updated_at DESC, item_key")

    def find(self, ident: str) -> list[OutboxItem]:
        """Items whose item key, alert id or group id is ``ident``."""
        return self._items("item_key = {i:String} OR alert_id = {i:String} OR group_id = {i:String}",
                           {"i": ident}, 1000)

    def group_ticket(self, destination: str, group_id: str) -> Ticket | None:
        """The ticket an earlier alert of this group created, if one was delivered."""
        rows = self.client.query(
            f"SELECT external_id, external_url FROM {self.db}.ticket_outbox FINAL WHERE destination = {{d:String}} "
            f"AND group_id = {{g:String}} AND state = '{DELIVERED}' AND external_id != '' ORDER BY ts LIMIT 1",
            parameters={"d": destination, "g": group_id}).result_rows
        return Ticket(*rows[0]) if rows else None

    def put(self, items: list[OutboxItem]) -> None:
        if items:
            self.client.insert(f"{self.db}.ticket_outbox", [tuple(i) for i in items], column_names=OUTBOX_COLUMNS)

    def log(self, rows: list[tuple]) -> None:
        """Append attempt records (``TICKET_COLUMNS`` order) to ``tickets``."""
        if rows:
            self.client.insert(f"{self.db}.tickets", rows, column_names=TICKET_COLUMNS)

    def attempts(self, ident: str, limit: int = 100) -> list[tuple]:
        return self.client.query(
            f"SELECT toUnixTimestamp64Milli(attempted_at), {', '.join(TICKET_COLUMNS[1:])} FROM {self.db}.tickets "
            "WHERE item_key = {i:String} OR alert_id = {i:String} OR group_id = {i:String} "
            f"ORDER BY attempted_at LIMIT {int(limit)}", parameters={"i": ident}).result_rows

    def counts(self) -> dict[tuple[str, str], int]:
        rows = self.client.query(f"SELECT destination, state, count() FROM {self.db}.ticket_outbox FINAL "
                                 "GROUP BY destination, state").result_rows
        return {(d, s): n for d, s, n in rows}
