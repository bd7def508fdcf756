"""Each destination's requests match its API: first alert of a group creates, later ones append."""

from __future__ import annotations

import base64
import json

from pipeline.tickets import DeliveryWorker
from pipeline.tickets.outbox import group_id
from pipeline.tickets.store import OutboxStore
from tests.tickets.conftest import make_alert, make_routing
from tests.tickets.test_delivery import drain, enqueue

ALERTS = [make_alert(1), make_alert(2)]  # same subject, same hour: one group


def deliver(tracker, storage, dest: str):
    routing = make_routing(tracker.url, dest, group="subject")
    enqueue(storage, ALERTS, routing)
    drain(DeliveryWorker(lambda: storage, routing))
    items = OutboxStore(storage, storage.database).list(limit=10)
    assert {i.state for i in items} == {"delivered"}
    assert len({(i.external_id, i.external_url) for i in items}) == 1  # both alerts name the same ticket
    return group_id(routing.routes[0], ALERTS[0]), items[0]


def body(req: dict) -> dict:
    return json.loads(req["body"])


def adf_ok(node: dict) -> None:
    """The ADF rules Jira enforces: typed nodes, non-empty text nodes, doc version 1."""
    assert isinstance(node.get("type"), str)
    if node["type"] == "text":
        assert node["text"]
    for child in node.get("content", []):
        adf_ok(child)


def test_jira(tracker, storage):
    gid, item = deliver(tracker, storage, "jira")
    create, comment = tracker.posts("/rest/api/3/issue")
    assert create["path"] == "/rest/api/3/issue"
    assert create["headers"]["authorization"] == "Basic " + base64.b64encode(b"bot@example.com:jira-token-xyz").decode()
    fields = body(create)["fields"]
    assert fields["project"] == {"key": "RISK"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"].startswith("[HIGH] Large transfer #1")
    assert fields["labels"] == ["tronrisk", f"tronrisk-{gid}"] and fields["priority"] == {"name": "High"}
    doc = fields["description"]
    assert doc["type"] == "doc" and doc["version"] == 1
    adf_ok(doc)
    assert any(n["type"] == "codeBlock" and "250001" in n["content"][0]["text"] for n in doc["content"])
    assert "https://dash.example/alert?id=" + ALERTS[0].alert_id in json.dumps(doc)
    assert comment["path"] == "/rest/api/3/issue/RISK-1/comment"
    adf_ok(body(comment)["body"])
    assert ALERTS[1].alert_id in json.dumps(body(comment)["body"])
    assert (item.external_id, item.external_url) == ("RISK-1", f"{tracker.url}/browse/RISK-1")
    assert len(tracker.jira) == 1


def test_servicenow(tracker, storage):
    gid, item = deliver(tracker, storage, "snow")
    create, note = tracker.posts("/api/now/table/incident")
    assert create["method"] == "POST" and create["query"]["sysparm_fields"] == ["sys_id,number"]
    assert create["headers"]["authorization"] == "Basic " + base64.b64encode(b"bot:snow-pw").decode()
    b = body(create)
    assert b["correlation_id"] == gid and b["correlation_display"] == "tronrisk"
    assert (b["urgency"], b["impact"], b["category"]) == ("1", "2", "security")
    assert "Evidence:" in b["description"] and ALERTS[0].address in b["short_description"]
    assert note["method"] == "PATCH" and note["path"] == f"/api/now/table/incident/{1:032x}"
    assert ALERTS[1].alert_id in body(note)["work_notes"]
    assert item.external_id == "INC0000001" and item.external_url.endswith(f"sys_id={1:032x}")


def test_pagerduty(tracker, storage):
    gid, item = deliver(tracker, storage, "pd")
    first, second = tracker.posts("/v2/enqueue")
    b = body(first)
    assert "authorization" not in first["headers"]  # the routing key travels in the body
    assert (b["routing_key"], b["event_action"], b["dedup_key"]) == ("pd-routing-key-123", "trigger", gid)
    p = b["payload"]
    assert (p["severity"], p["source"], p["component"]) == ("error", ALERTS[0].address, "large_transfer")
    assert p["timestamp"].endswith("+00:00") and len(p["summary"]) <= 1024
    assert p["custom_details"]["evidence"]["values"]["amount_usd"] == 250001.0
    assert b["links"][0]["href"].endswith(ALERTS[0].alert_id)
    assert body(second)["dedup_key"] == gid  # later alerts join the same PagerDuty alert
    assert list(tracker.pd) == [gid] and item.external_id == gid


def test_opsgenie(tracker, storage):
    gid, item = deliver(tracker, storage, "og")
    create, note = tracker.posts("/v2/alerts")
    assert create["headers"]["authorization"] == "GenieKey og-key-456"
    b = body(create)
    assert b["alias"] == gid and len(b["message"]) <= 130 and b["priority"] == "P2"
    assert b["entity"] == ALERTS[0].address and "tronrisk" in b["tags"]
    assert all(isinstance(v, str) for v in b["details"].values())
    assert note["path"] == f"/v2/alerts/{gid}/notes" and note["query"]["identifierType"] == ["alias"]
    assert ALERTS[1].alert_id in body(note)["note"]
    assert tracker.og[gid]["count"] == 1 and item.external_id == gid


def test_github(tracker, storage):
    gid, item = deliver(tracker, storage, "gh")
    create, comment = tracker.posts("/repos/acme/cases/issues")
    h = create["headers"]
    assert h["authorization"] == "Bearer ghp_token789" and h["accept"] == "application/vnd.github+json"
    assert h["x-github-api-version"] == "2022-11-28"
    b = body(create)
    assert b["labels"] == ["tronrisk"] and b["title"].startswith("[HIGH]")
    assert f"<!-- tronrisk-group:{gid} -->" in b["body"] and "https://dash.example/alert?id=" in b["body"]
    assert comment["path"] == "/repos/acme/cases/issues/1/comments"
    assert f"<!-- tronrisk-alert:{ALERTS[1].alert_id} -->" in body(comment)["body"]
    assert item.external_id == "1" and item.external_url.endswith("/acme/cases/issues/1")


def test_webhook_grouped_events(tracker, storage):
    deliver(tracker, storage, "hook")
    types = [json.loads(r["body"])["type"] for r in tracker.posts("/hook")]
    assert types == ["ticket.opened", "ticket.appended"]
    assert len(tracker.webhooks) == 2  # one webhook-id per alert
