"""Opsgenie Alert API v2: create with ``alias`` = the ticket's group id; later alerts as notes.

Opsgenie deduplicates creates on ``alias`` (an open alert with the same alias has its count
raised instead of a second alert), so a retried create is safe. Notes (``POST
/v2/alerts/{alias}/notes?identifierType=alias``) cannot be looked up: an unknown outcome there is
recorded as ``ambiguous``. Requests are processed asynchronously (202 + ``requestId``).
"""

from __future__ import annotations

from urllib.parse import quote

from pipeline.tickets.destinations.base import Adapter, Message, Request, Response, Ticket

_PRIORITY = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4", "info": "P5"}


class OpsgenieAdapter(Adapter):
    kind = "opsgenie"
    dedup_create = True

    def auth_headers(self) -> tuple[tuple[str, str], ...]:
        return (("Authorization", f"GenieKey {self.dest.secret('api_key')}"),)

    def create(self, msg: Message) -> Request:
        a = msg.alert
        details = {k.lower().replace(" ", "_"): v[:8000] for k, v in msg.facts()}
        body = {"message": msg.summary[:130], "alias": msg.group_id, "description": msg.text()[:15000],
                "tags": [*self.dest.options["tags"], *a.tags][:20], "details": details, "entity": a.address,
                "source": "tronrisk", "priority": _PRIORITY[a.severity]}
        if self.dest.options["responders"]:
            body["responders"] = self.dest.options["responders"]
        return Request("POST", f"{self.dest.url}/v2/alerts", json=body, headers=self.auth_headers())

    def append(self, msg: Message, ticket: Ticket) -> Request:
        return Request("POST", f"{self.dest.url}/v2/alerts/{quote(ticket.external_id, safe='')}/notes",
                       json={"note": f"{msg.summary}\n\n{msg.text()}"[:25000], "source": "tronrisk"},
                       headers=self.auth_headers(), params=(("identifierType", "alias"),))

    def parse(self, msg: Message, response: Response, ticket: Ticket | None) -> Ticket:
        return ticket or Ticket(msg.group_id, f"{self.dest.url}/v2/alerts/{msg.group_id}?identifierType=alias")
