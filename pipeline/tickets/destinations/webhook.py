"""Generic signed webhooks following the Standard Webhooks specification (standardwebhooks.com).

Headers ``webhook-id`` (stable across retries: receivers deduplicate on it), ``webhook-timestamp``
(seconds, of this attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of
``id.timestamp.body`` keyed with the base64-decoded ``whsec_`` secret. With several secrets
configured (rotation), the header carries one space-separated signature per secret, so receivers
holding either the old or the new secret verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

from pipeline.tickets.destinations.base import Adapter, Message, Request, Response, Ticket


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def event(msg: Message) -> dict:
    """The Standard Webhooks payload shape: ``type``, ``timestamp``, ``data``.

    The timestamp is the alert's detection time, not the attempt's, so a retried body is
    byte-identical (only the signed ``webhook-timestamp`` header changes).
    """
    a = msg.alert
    data = {**a._asdict(), "tags": list(a.tags), "details": msg.evidence, "dashboard_url": msg.link,
            "group_id": msg.group_id, "route": msg.route}
    ts = datetime.fromtimestamp(a.detected_at / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return {"type": "ticket.opened" if msg.first else "ticket.appended", "timestamp": ts.replace("+00:00", "Z"),
            "data": data}


class WebhookAdapter(Adapter):
    kind = "webhook"
    dedup_create = True
    dedup_append = True

    def message_id(self, msg: Message) -> str:
        return f"msg_{msg.alert.alert_id}"

    def create(self, msg: Message, now: float | None = None) -> Request:
        body = json.dumps(event(msg), separators=(",", ":"), sort_keys=True).encode()
        msg_id = self.message_id(msg)
        ts = int(time.time() if now is None else now)
        signatures = " ".join(sign(s.reveal(), msg_id, ts, body) for s in self.dest.secrets["secrets"])
        headers = (("Content-Type", "application/json"), ("webhook-id", msg_id), ("webhook-timestamp", str(ts)),
                   ("webhook-signature", signatures),
                   *((str(k), str(v)) for k, v in self.dest.options["headers"].items()))
        return Request("POST", self.dest.url, body=body, headers=headers)

    def append(self, msg: Message, ticket: Ticket) -> Request:
        return self.create(msg)

    def parse(self, msg: Message, response: Response, ticket: Ticket | None) -> Ticket:
        if ticket is not None:
            return ticket
        data = response.json()
        ext = str(data.get("id", "")) if isinstance(data, dict) else ""
        url = str(data.get("url", "")) if isinstance(data, dict) else ""
        return Ticket(ext or self.message_id(msg), url)
