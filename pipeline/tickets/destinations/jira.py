"""Jira Cloud: create an issue (REST API v3, description in Atlassian Document Format).

Jira has no idempotency key, so every issue carries the label ``tronrisk-<group id>``: after an
attempt whose outcome is unknown the worker searches for that label (``POST /rest/api/3/search/jql``)
before creating again. Later alerts of a group are comments, each with the alert id in its text,
found the same way after an unknown outcome.
"""

from __future__ import annotations

import base64
import json

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


def adf(msg: Message) -> dict:
    """An ADF document: a link to the dashboard, a fact table as a bullet list, the evidence as code."""
    facts = [{"type": "listItem", "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": f"{k}: ", "marks": [{"type": "strong"}]},
        {"type": "text", "text": v or "-", **({"marks": [{"type": "link", "attrs": {"href": v}}]}
                                             if k == "Dashboard" else {})}]}]} for k, v in msg.facts()]
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": msg.summary}]},
        {"type": "bulletList", "content": facts},
        {"type": "heading", "attrs": {"level": 3}, "content": [{"type": "text", "text": "Evidence"}]},
        {"type": "codeBlock", "attrs": {"language": "json"},
         "content": [{"type": "text", "text": json.dumps(msg.evidence, indent=2, sort_keys=True)}]},
        {"type": "paragraph", "content": [{"type": "text", "text": f"tronrisk-alert:{msg.alert.alert_id}"}]},
    ]}


class JiraAdapter(Adapter):
    kind = "jira"
    can_find = True
    can_find_append = True

    def auth_headers(self) -> tuple[tuple[str, str], ...]:
        token = base64.b64encode(f"{self.dest.options['email']}:{self.dest.secret('api_token')}".encode()).decode()
        return (("Authorization", f"Basic {token}"), ("Accept", "application/json"))

    def group_label(self, msg: Message) -> str:
        return f"tronrisk-{msg.group_id}"

    def create(self, msg: Message) -> Request:
        o = self.dest.options
        fields = {"project": {"key": o["project"]}, "issuetype": {"name": o["issue_type"]},
                  "summary": msg.summary[:255], "description": adf(msg),
                  "labels": [*o["labels"], self.group_label(msg)]}
        priority = o["priorities"].get(msg.alert.severity)
        if priority:
            fields["priority"] = {"name": priority}
        return Request("POST", f"{self.dest.url}/rest/api/3/issue", json={"fields": fields},
                       headers=self.auth_headers())

    def append(self, msg: Message, ticket: Ticket) -> Request:
        return Request("POST", f"{self.dest.url}/rest/api/3/issue/{ticket.external_id}/comment",
                       json={"body": adf(msg)}, headers=self.auth_headers())

    def parse(self, msg: Message, response: Response, ticket: Ticket | None) -> Ticket:
        if ticket is not None:
            return ticket
        key = str((response.json() or {}).get("key", ""))
        return Ticket(key, f"{self.dest.url}/browse/{key}" if key else "")

    def find(self, http: Http, msg: Message) -> Ticket | None:
        req = Request("POST", f"{self.dest.url}/rest/api/3/search/jql", headers=self.auth_headers(), json={
            "jql": f'labels = "{self.group_label(msg)}" ORDER BY created ASC', "fields": ["summary"],
            "maxResults": 1}, max_response_bytes=MAX_LOOKUP_BYTES)
        issues = (checked(http.send(req)).json() or {}).get("issues") or []
        if not issues:
            return None
        key = str(issues[0]["key"])
        return Ticket(key, f"{self.dest.url}/browse/{key}")

    def find_append(self, http: Http, msg: Message, ticket: Ticket) -> bool:
        req = Request("GET", f"{self.dest.url}/rest/api/3/issue/{ticket.external_id}/comment",
                      headers=self.auth_headers(), params=(("maxResults", "100"), ("orderBy", "-created")),
                      max_response_bytes=MAX_LOOKUP_BYTES)
        comments = (checked(http.send(req)).json() or {}).get("comments") or []
        marker = f"tronrisk-alert:{msg.alert.alert_id}"
        return any(marker in json.dumps(c.get("body")) for c in comments)
