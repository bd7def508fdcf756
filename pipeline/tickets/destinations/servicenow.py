"""ServiceNow: an incident through the Table API, ``correlation_id`` = the ticket's group id.

The Table API does not enforce uniqueness of ``correlation_id``, but it can be queried: after an
attempt whose outcome is unknown the worker looks the incident up by it before creating again.
Later alerts of a group are ``work_notes`` (PATCH), which cannot be looked up: an unknown outcome
there is recorded as ``ambiguous`` in ``tickets``.
"""

from __future__ import annotations

import base64

from pipeline.tickets.destinations.base import (
    MAX_LOOKUP_BYTES,
    Adapter,
    Http,
    Message,
    Request,
    Response,
    Ticket,
    checked,
)

# severity -> (urgency, impact); 1 = high
_LEVELS = {"critical": ("1", "1"), "high": ("1", "2"), "medium": ("2", "2"), "low": ("3", "3"), "info": ("3", "3")}


class ServiceNowAdapter(Adapter):
    kind = "servicenow"
    can_find = True

    def auth_headers(self) -> tuple[tuple[str, str], ...]:
        token = self.dest.secret("token")
        if token:
            auth = f"Bearer {token}"
        else:
            raw = f"{self.dest.options['username']}:{self.dest.secret('password')}"
            auth = "Basic " + base64.b64encode(raw.encode()).decode()
        return (("Authorization", auth), ("Accept", "application/json"))

    def _table(self) -> str:
        return f"{self.dest.url}/api/now/table/{self.dest.options['table']}"

    def _url(self, sys_id: str) -> str:
        return f"{self.dest.url}/nav_to.do?uri={self.dest.options['table']}.do?sys_id={sys_id}"

    def create(self, msg: Message) -> Request:
        urgency, impact = _LEVELS.get(msg.alert.severity, ("3", "3"))
        body = {"short_description": msg.summary[:160], "description": msg.text(), "correlation_id": msg.group_id,
                "correlation_display": "tronrisk", "urgency": urgency, "impact": impact,
                **self.dest.options["fields"]}
        return Request("POST", self._table(), json=body, headers=self.auth_headers(),
                       params=(("sysparm_fields", "sys_id,number"),))

    def append(self, msg: Message, ticket: Ticket) -> Request:
        sys_id = ticket.external_url.rpartition("sys_id=")[2]
        return Request("PATCH", f"{self._table()}/{sys_id}", json={"work_notes": f"{msg.summary}\n\n{msg.text()}"},
                       headers=self.auth_headers(), params=(("sysparm_fields", "sys_id,number"),))

    def parse(self, msg: Message, response: Response, ticket: Ticket | None) -> Ticket:
        if ticket is not None:
            return ticket
        result = (response.json() or {}).get("result") or {}
        return Ticket(str(result.get("number", "")), self._url(str(result.get("sys_id", ""))))

    def find(self, http: Http, msg: Message) -> Ticket | None:
        req = Request("GET", self._table(), headers=self.auth_headers(), params=(
            ("sysparm_query", f"correlation_id={msg.group_id}"), ("sysparm_fields", "sys_id,number"),
            ("sysparm_limit", "1")), max_response_bytes=MAX_LOOKUP_BYTES)
        rows = (checked(http.send(req)).json() or {}).get("result") or []
        return Ticket(str(rows[0]["number"]), self._url(str(rows[0]["sys_id"]))) if rows else None
