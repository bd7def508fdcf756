"""PagerDuty Events API v2: ``trigger`` events with ``dedup_key`` = the ticket's group id.

PagerDuty deduplicates on ``dedup_key``: a repeated trigger for an open alert is added to that
alert's log instead of opening a new one, so a retry after an unknown outcome is safe, and later
alerts of a group are simply more triggers with the same key.
"""

from __future__ import annotations

from pipeline.tickets.destinations.base import Adapter, Message, Request, Response, Ticket

_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info"}


class PagerDutyAdapter(Adapter):
    kind = "pagerduty"
    dedup_create = True
    dedup_append = True

    def create(self, msg: Message) -> Request:
        a = msg.alert
        facts = dict(msg.facts())
        body = {"routing_key": self.dest.secret("routing_key"), "event_action": "trigger", "dedup_key": msg.group_id,
                "payload": {"summary": msg.summary[:1024], "source": a.address, "severity": _SEVERITY[a.severity],
                            "timestamp": msg.iso_ts(), "component": a.rule_id, "group": self.dest.options["source"],
                            "class": a.tags[0] if a.tags else a.rule_id,
                            "custom_details": {**facts, "evidence": msg.evidence}},
                "links": [{"href": msg.link, "text": "Alert in the analyst dashboard"}],
                "client": "tronrisk", "client_url": msg.link}
        return Request("POST", self.dest.url, json=body)

    def parse(self, msg: Message, response: Response, ticket: Ticket | None) -> Ticket:
        data = response.json() or {}
        return ticket or Ticket(str(data.get("dedup_key") or msg.group_id))
