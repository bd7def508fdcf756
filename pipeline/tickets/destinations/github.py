"""GitHub issues (REST API): one issue per ticket, later alerts of a group as comments.

GitHub has no idempotency key, so each issue body ends with ``<!-- tronrisk-group:ID -->`` and
each comment with ``<!-- tronrisk-alert:ID -->``; after an attempt whose outcome is unknown the
worker lists the newest issues carrying the first configured label (the list endpoint, not the
search API, whose index lags) and looks for the marker before creating again.
"""

from __future__ import annotations

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


class GitHubAdapter(Adapter):
    kind = "github"
    can_find = True
    can_find_append = True

    def auth_headers(self) -> tuple[tuple[str, str], ...]:
        return (("Authorization", f"Bearer {self.dest.secret('token')}"), ("Accept", "application/vnd.github+json"),
                ("X-GitHub-Api-Version", "2022-11-28"))

    def _repo(self) -> str:
        return f"{self.dest.url}/repos/{self.dest.options['repo']}"

    def create(self, msg: Message) -> Request:
        body = f"**{msg.summary}**\n\n[Open in the dashboard]({msg.link})\n\n{msg.markdown()}"
        return Request("POST", f"{self._repo()}/issues", headers=self.auth_headers(), json={
            "title": msg.summary[:256], "body": body, "labels": list(self.dest.options["labels"])})

    def append(self, msg: Message, ticket: Ticket) -> Request:
        body = f"Another alert for this ticket: **{msg.summary}**\n\n{msg.markdown()}"
        return Request("POST", f"{self._repo()}/issues/{ticket.external_id}/comments",
                       headers=self.auth_headers(), json={"body": body})

    def parse(self, msg: Message, response: Response, ticket: Ticket | None) -> Ticket:
        if ticket is not None:
            return ticket
        data = response.json() or {}
        return Ticket(str(data.get("number", "")), str(data.get("html_url", "")))

    def find(self, http: Http, msg: Message) -> Ticket | None:
        marker = f"<!-- tronrisk-group:{msg.group_id} -->"
        labels = self.dest.options["labels"]
        params = [("state", "all"), ("sort", "created"), ("direction", "desc"), ("per_page", "100")]
        if labels:
            params.append(("labels", labels[0]))
        for page in (1, 2, 3):
            issues = checked(http.send(Request("GET", f"{self._repo()}/issues", headers=self.auth_headers(),
                                               params=(*params, ("page", str(page))),
                                               max_response_bytes=MAX_LOOKUP_BYTES))).json() or []
            for issue in issues:
                if "pull_request" not in issue and marker in (issue.get("body") or ""):
                    return Ticket(str(issue["number"]), str(issue.get("html_url", "")))
            if len(issues) < 100:
                break
        return None

    def find_append(self, http: Http, msg: Message, ticket: Ticket) -> bool:
        marker = f"<!-- tronrisk-alert:{msg.alert.alert_id} -->"
        comments = checked(http.send(Request(
            "GET", f"{self._repo()}/issues/{ticket.external_id}/comments", headers=self.auth_headers(),
            params=(("per_page", "100"),), max_response_bytes=MAX_LOOKUP_BYTES))).json() or []
        return any(marker in (c.get("body") or "") for c in comments)
