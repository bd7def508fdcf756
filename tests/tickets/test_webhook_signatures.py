"""Standard Webhooks signatures verify with the reference implementation, across a rotation."""

from __future__ import annotations

import base64

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from pipeline.tickets import DeliveryWorker, load_routing_text
from pipeline.tickets.errors import RoutingError
from tests.tickets.conftest import ENV, SECRET_NEW, SECRET_OLD, make_alert, make_routing, routing_yaml
from tests.tickets.test_delivery import drain, enqueue

OTHER = "whsec_" + base64.b64encode(b"someone-else-0123456789abcdef").decode()


def test_every_delivery_verifies_with_old_and_new_secret(tracker, storage):
    routing = make_routing(tracker.url, "hook")
    enqueue(storage, [make_alert(i) for i in range(4)], routing)
    drain(DeliveryWorker(lambda: storage, routing))
    assert len(tracker.webhooks) == 4
    for msg_id, deliveries in tracker.webhooks.items():
        (d,) = deliveries
        assert msg_id.startswith("msg_")
        assert len(d["headers"]["webhook-signature"].split(" ")) == 2  # one v1 signature per secret
        for secret in (SECRET_NEW, SECRET_OLD):  # a receiver on either side of the rotation verifies
            payload = Webhook(secret).verify(d["body"], d["headers"])
            assert payload["type"] == "ticket.opened"
            assert payload["data"]["alert_id"] == msg_id.removeprefix("msg_")
            assert payload["data"]["dashboard_url"] == f"https://dash.example/alert?id={payload['data']['alert_id']}"
            assert payload["data"]["details"]["values"]["amount_usd"] >= 250000  # evidence as JSON, not a string
        with pytest.raises(WebhookVerificationError):
            Webhook(OTHER).verify(d["body"], d["headers"])
        with pytest.raises(WebhookVerificationError):  # a tampered body fails
            Webhook(SECRET_NEW).verify(d["body"].replace(b"high", b"info"), d["headers"])


def test_after_rotation_only_the_new_secret_signs(tracker, storage):
    yaml_text = routing_yaml(tracker.url).replace("DESTS", "hook").replace(", {env: HOOK_OLD}", "")
    routing = load_routing_text(yaml_text, "routing.yaml", ENV)
    enqueue(storage, [make_alert(7)], routing)
    drain(DeliveryWorker(lambda: storage, routing))
    (d,) = next(iter(tracker.webhooks.values()))
    Webhook(SECRET_NEW).verify(d["body"], d["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_OLD).verify(d["body"], d["headers"])


def test_secret_must_be_whsec_base64():
    with pytest.raises(RoutingError, match=r"routing.yaml:5: destination 'hook'.*env:HOOK_NEW: expected whsec_"):
        load_routing_text(routing_yaml("https://x.example").replace("DESTS", "hook"), "routing.yaml",
                          {**ENV, "HOOK_NEW": "not base64 !"})
