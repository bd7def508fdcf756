"""What every destination shares: the message to deliver, the HTTP call, the adapter contract.

An adapter turns a :class:`Message` into an HTTP request for its tracker's API and reads the
ticket id out of the answer. It also says how the tracker protects against duplicates, which is
what the worker needs after an attempt whose outcome is unknown (timeout, crash after sending):

* ``dedup_create`` - the tracker deduplicates on our id (Standard Webhooks ``webhook-id``,
  PagerDuty ``dedup_key``, Opsgenie ``alias``): sending again is safe;
* ``find`` - otherwise, can we find the ticket an unacknowledged attempt may have created
  (Jira by label, GitHub by a marker in the body, ServiceNow by ``correlation_id``)?
* the same two for appending a later alert of a group to an existing ticket.

:class:`Http` is the only way out: it checks every URL against the destination policy
(:mod:`pipeline.tickets.policy`), never follows a redirect (``requests`` would re-send our
``Authorization`` header to wherever a 3xx points) and reads at most ``max_response_bytes`` of an
answer within the destination's timeout, so a hostile or broken endpoint cannot hold the worker or
fill its memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import requests

from pipeline.records import Alert
from pipeline.tickets.policy import url_problem
from pipeline.tickets.routing import Destination

USER_AGENT = "tronrisk-tickets/1"
MAX_RESPONSE_BYTES = 64 * 1024  # an answer names a ticket: a few hundred bytes
MAX_LOOKUP_BYTES = 8 << 20  # a look-up lists issues or comments (GitHub: 100 bodies per page)


class Ticket(NamedTuple):
    external_id: str
    external_url: str = ""


@dataclass(frozen=True)
class Message:
    """One alert to deliver to one destination, as the first (create) or a later (append) alert."""

    alert: Alert
    item_key: str
    group_id: str
    route: str
    link: str  # the analyst dashboard URL of this alert
    first: bool = True  # create a ticket; False: append to the group's ticket

    @property
    def evidence(self) -> Any:
        try:
            return json.loads(self.alert.details) if self.alert.details else {}
        except ValueError:
            return {"raw": self.alert.details}

    @property
    def summary(self) -> str:
        a = self.alert
        return f"[{a.severity.upper()}] {a.title or a.rule_id} - {a.address}"

    def iso_ts(self) -> str:
        return datetime.fromtimestamp(self.alert.ts / 1000, tz=UTC).isoformat(timespec="milliseconds")

    def facts(self) -> list[tuple[str, str]]:
        a = self.alert
        return [("Rule", f"{a.rule_id} (version {a.rule_version})"), ("Severity", a.severity),
                ("Risk score", f"{a.risk_score:g}"), ("Subject address", a.address),
                ("Transaction", a.tx_id), ("Block", str(a.block_number)), ("Event time", self.iso_ts()),
                ("Status", f"{a.status} ({a.source})"), ("Tags", ", ".join(a.tags)), ("Alert id", a.alert_id),
                ("Dashboard", self.link)]

    def text(self) -> str:
        """Plain-text body: facts, then the evidence as indented JSON."""
        lines = [f"{k}: {v}" for k, v in self.facts()]
        return "\n".join([*lines, "", "Evidence:", json.dumps(self.evidence, indent=2, sort_keys=True)])

    def markdown(self) -> str:
        rows = "\n".join(f"| {k} | {v} |" for k, v in self.facts())
        return (f"| | |\n|---|---|\n{rows}\n\n<details><summary>Evidence</summary>\n\n```json\n"
                f"{json.dumps(self.evidence, indent=2, sort_keys=True)}\n```\n</details>\n\n"
                f"<!-- tronrisk-group:{self.group_id} -->\n<!-- tronrisk-alert:{self.alert.alert_id} -->")


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    json: Any = None
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    max_response_bytes: int = MAX_RESPONSE_BYTES  # look-ups ask for more (MAX_LOOKUP_BYTES)


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes  # at most the request's max_response_bytes
    truncated: bool = False  # the answer was longer than that

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class TransportError(Exception):
    """No HTTP answer (timeout, refused, reset): the request may or may not have arrived."""


class RefusedRequest(Exception):
    """The request was not sent: its URL breaks the destination policy (a configuration error)."""


class Http:
    """requests with a per-destination timeout; never raises for an HTTP status.

    ``allowed_hosts`` is ``tickets.allowed_hosts``; every URL is checked before it is sent.
    """

    def __init__(self, timeout_s: float, allowed_hosts: Sequence[str] = ()) -> None:
        self.timeout_s = timeout_s
        self.allowed_hosts = tuple(allowed_hosts)
        self.session = requests.Session()

    def send(self, req: Request) -> Response:
        why = url_problem(req.url, self.allowed_hosts)
        if why is not None:
            raise RefusedRequest(f"not sent: {why}")
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **dict(req.headers)}
        if req.json is not None:
            body = json.dumps(req.json, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            body = req.body
        try:
            r = self.session.request(req.method, req.url, data=body, headers=headers, stream=True,
                                     params=list(req.params) or None, timeout=self.timeout_s,
                                     allow_redirects=False)
            deadline = time.monotonic() + self.timeout_s  # requests bounds each read; the body gets one more
            try:
                content, truncated = _read_capped(r, req.max_response_bytes, deadline)
            finally:
                r.close()
        except requests.RequestException as err:
            raise TransportError(f"{type(err).__name__}: {_first_line(err)}") from None
        return Response(r.status_code, dict(r.headers), content, truncated)

    def close(self) -> None:
        self.session.close()


def _read_capped(r: requests.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, read before ``deadline``; (bytes, longer than that?).

    The body is read as sent (we ask for ``identity``; a compressed answer stays compressed and is
    simply not JSON), so a small answer cannot expand into a large one.
    """
    chunks: list[bytes] = []
    size = 0
    read = getattr(r.raw, "read1", r.raw.read)  # urllib3 2: whatever has arrived, not a full 16 KiB
    while chunk := read(16384, decode_content=False):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
        if time.monotonic() > deadline:
            raise requests.Timeout("answer not complete within the timeout")
    return b"".join(chunks), False


def _first_line(err: Exception) -> str:
    text = str(err)
    return text.splitlines()[0][:300] if text else ""


class HttpStatusError(Exception):
    """A lookup call answered with a non-2xx status (the worker classifies it like a send)."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


def checked(response: Response) -> Response:
    """A look-up's answer, whole and 2xx: a cut answer must not read as "no such ticket"."""
    if not 200 <= response.status < 300:
        raise HttpStatusError(response)
    if response.truncated:
        raise TransportError(f"look-up answer longer than {len(response.body)} bytes; not read")
    return response


class Adapter:
    """Base adapter; subclasses build requests for one tracker API."""

    kind = ""
    dedup_create = False
    dedup_append = False

    def __init__(self, dest: Destination) -> None:
        self.dest = dest

    def auth_headers(self) -> tuple[tuple[str, str], ...]:
        return ()

    def create(self, msg: Message) -> Request:
        raise NotImplementedError

    def append(self, msg: Message, ticket: Ticket) -> Request:
        return self.create(msg)

    def parse(self, msg: Message, response: Response, ticket: Ticket | None) -> Ticket:
        """The ticket the answer names; for an append, the group's ticket."""
        return ticket or Ticket(msg.group_id)

    can_find = False  # find() can tell whether the group's ticket exists
    can_find_append = False  # find_append() can tell whether this alert was appended

    def find(self, http: Http, msg: Message) -> Ticket | None:
        """The ticket of ``msg.group_id`` if one exists (only called when ``can_find``)."""
        return None

    def find_append(self, http: Http, msg: Message, ticket: Ticket) -> bool:
        """Whether this alert is already on ``ticket`` (only called when ``can_find_append``)."""
        return False
