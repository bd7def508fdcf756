"""The delivery worker: sends outbox items to their destinations, exactly one ticket per group.

A thread in the process that owns ClickHouse polls ``ticket_outbox`` for open items and delivers
them, so the dataflow never waits for a tracker. Per item:

1. Where the tracker cannot deduplicate, ``sending`` (attempts + 1) is recorded *before* the
   request: if the process dies after the request reached the tracker but before the answer was
   recorded, the next worker knows the outcome is unknown. Outcomes are buffered and written once
   per pass (and with the next ``sending`` marker): losing them in a crash only causes a resend
   that is deduplicated, or a look-up.
2. After an unknown outcome (``sending`` found on start, a timeout, a 5xx) the next attempt
   first asks the tracker whether the ticket exists when the tracker cannot deduplicate (Jira
   label, GitHub body marker, ServiceNow ``correlation_id``); trackers that deduplicate on our
   id (Standard Webhooks ``webhook-id``, PagerDuty ``dedup_key``, Opsgenie ``alias``) just get
   the same request again. Where neither is possible (appending a note), the resend is logged
   as ``ambiguous`` in ``tickets``.
3. 2xx -> ``delivered`` with the external ticket id; 408/425/429/5xx/no answer -> ``retry``
   after exponential backoff with jitter, or after ``Retry-After`` when longer, and the whole
   destination waits as long (a rate limit is per destination); other 4xx -> ``dead`` (a
   request the tracker refuses will be refused again: fix the configuration, then ``tickets
   retry``); 410 Gone -> the destination is disabled and its items parked as ``disabled``;
   past ``max_attempts`` or ``max_age`` -> ``dead`` with the last error. Redirects are not
   followed (a 3xx is ``dead``: our headers never go to another URL), a URL outside the
   destination policy is never requested (``dead``), and answers are read up to a cap
   (:class:`pipeline.tickets.destinations.base.Http`).

A group's alerts are delivered in event-time order, and a later alert waits while the first one
has not created the ticket, so a group never opens two tickets. Every attempt lands in ``tickets``,
and every delivery is chained in the audit trail (``audit``: ``ticket_delivered`` records, after the
outcomes are written).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.tickets.destinations import (
    Adapter,
    Http,
    Message,
    Response,
    Ticket,
    TransportError,
    adapter_for,
)
from pipeline.tickets.destinations.base import HttpStatusError, RefusedRequest
from pipeline.tickets.outbox import DEAD, DELIVERED, DISABLED, RETRY, SENDING, OutboxItem
from pipeline.tickets.routing import Routing
from pipeline.tickets.store import OutboxStore, next_version

log = logging.getLogger(__name__)

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
_CACHE_MAX = 10_000


@dataclass
class _Result:
    outcome: str  # delivered | recovered | retry | dead | disabled
    status: int = 0
    error: str = ""
    ticket: Ticket | None = None
    retry_after_s: float = 0.0


def retry_after(value: str | None, now: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); 0 if absent."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return 0.0


class DeliveryWorker:
    """Deliver the outbox; ``run_once`` for one pass, ``start``/``stop`` for a background thread.

    ``client_factory()`` returns a clickhouse-connect client on the pipeline's database (its
    ``database`` attribute names it), created in the worker's own thread. ``after_send`` is a
    fault-injection hook called after a tracker answered and before the outcome is recorded;
    ``audit`` chains the ``ticket_delivered`` records (the pipeline's audit hook ``record``, or an
    ``AuditAppender.append`` in ``tickets deliver``).
    """

    def __init__(self, client_factory: Callable[[], Any], routing: Routing, *, database: str | None = None,
                 rng: random.Random | None = None, after_send: Callable[[OutboxItem, Response | None], None] | None = None,
                 audit: Callable[[list], object] | None = None) -> None:
        self.client_factory = client_factory
        self.routing = routing
        self.policy = routing.delivery
        self.database = database
        self.rng = rng or random.Random()
        self.after_send = after_send
        self._store: OutboxStore | None = None
        self._adapters: dict[str, tuple[Adapter, Http]] = {}
        self._disabled: set[str] = set()
        self._dest_wait: dict[str, float] = {}
        self._tickets: dict[tuple[str, str], Ticket] = {}
        self._puts: list[OutboxItem] = []  # outcomes not yet written (see _flush)
        self._logs: list[tuple] = []
        self.audit = audit
        self._delivered: list = []  # ticket_delivered audit records not chained yet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> DeliveryWorker:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ticket-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for _adapter, http in self._adapters.values():
            http.close()
        self._adapters.clear()

    def drain(self, timeout_s: float) -> dict[str, int]:
        """Deliver until nothing is open or ``timeout_s`` passed (end of a replay, the CLI); totals."""
        deadline = time.monotonic() + timeout_s
        totals: dict[str, int] = {}
        while True:
            for k, v in self.run_once().items():
                totals[k] = totals.get(k, 0) + v
            deliverable = [i for i in self.store.open_items(self.policy.batch) if self._adapter(i.destination)]
            if not deliverable or time.monotonic() >= deadline:
                return totals  # items of destinations absent from the routing wait for a later run
            self._stop.wait(min(self.policy.poll_interval_s, max(0.0, deadline - time.monotonic())))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception as err:  # noqa: BLE001 - a storage hiccup must not end delivery
                self.error = err
                log.warning("ticket delivery pass failed: %s", str(err).splitlines()[0] if str(err) else err)
                busy = {}
            if not busy.get("sent"):
                self._stop.wait(self.policy.poll_interval_s)

    @property
    def store(self) -> OutboxStore:
        if self._store is None:
            client = self.client_factory()
            self._store = OutboxStore(client, self.database or client.database)
        return self._store

    # -- one pass ----------------------------------------------------------------------------
    def run_once(self, now: float | None = None) -> dict[str, int]:
        """Deliver every due item once; returns counts per outcome (and ``sent`` requests)."""
        try:
            counts = self._pass(now)
        except Exception:
            self._flush()  # best effort: keep what was learnt before the failure
            raise
        self._flush()
        return counts

    def _flush(self) -> None:
        """Write buffered outcomes: one insert per table per pass instead of per item."""
        puts, logs = self._puts, self._logs
        self._puts, self._logs = [], []
        self.store.put(puts)
        self.store.log(logs)
        if self._delivered and self.audit is not None:
            self.audit(self._delivered)  # deterministic ids: a retried chaining is deduplicated
        self._delivered = []

    def _pass(self, now: float | None) -> dict[str, int]:
        counts: dict[str, int] = {}
        groups: dict[tuple[str, str], list[OutboxItem]] = {}
        for item in self.store.open_items(self.policy.batch):
            groups.setdefault((item.destination, item.group_id), []).append(item)
        for (dest, _gid), items in groups.items():
            for item in items:
                if self._stop.is_set() and self._thread is not None:
                    return counts
                t = time.time() if now is None else now
                if item.next_attempt_at > t * 1000 or self._dest_wait.get(dest, 0.0) > t:
                    break  # later alerts of the group wait for this one
                outcome = self._deliver(item, t)
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome != "skipped":
                    counts["sent"] = counts.get("sent", 0) + 1
                if outcome not in (DELIVERED, "recovered"):
                    break
        return counts

    def _adapter(self, dest: str) -> tuple[Adapter, Http] | None:
        if dest not in self._adapters:
            d = self.routing.destinations.get(dest)
            if d is None or not d.enabled:
                return None
            self._adapters[dest] = (adapter_for(d), Http(d.timeout_s, self.routing.allowed_hosts))
        return self._adapters[dest]

    def _ticket(self, item: OutboxItem) -> Ticket | None:
        if item.group_id == item.alert_id:
            return None  # one alert per group: this item is the group
        key = (item.destination, item.group_id)
        if key not in self._tickets:
            found = self.store.group_ticket(*key)
            if found is None:
                return None
            if len(self._tickets) >= _CACHE_MAX:
                self._tickets.clear()
            self._tickets[key] = found
        return self._tickets[key]

    def _deliver(self, item: OutboxItem, now: float) -> str:
        pair = self._adapter(item.destination)
        if pair is None or item.destination in self._disabled:
            why = "destination disabled (410 Gone)" if item.destination in self._disabled else \
                "destination missing or disabled in the routing file"
            if item.destination in self._disabled:
                self._record(item, now, _Result(DISABLED, error=why), "create", item.attempts)
                return DISABLED
            return "skipped"  # left pending: enabling the destination delivers it
        adapter, http = pair
        ticket = self._ticket(item)
        msg = Message(item.alert(), item.item_key, item.group_id, item.route, self.routing.link(item.alert_id),
                      first=ticket is None)
        action = "create" if ticket is None else "append"
        # An earlier attempt may have reached the tracker: a "sending" left by a crash, any failed
        # attempt, or an operator's retry of a dead item (state "retry" with attempts reset).
        uncertain = item.state in (SENDING, RETRY) or item.attempts > 0
        # Where the tracker deduplicates on our id, resending is harmless: no marker is needed,
        # and the outcome may wait for the end-of-pass flush.
        dedup_now = adapter.dedup_create if ticket is None else adapter.dedup_append
        attempt = item.attempts + 1
        started = time.monotonic()
        current = item  # the row the outcome replaces
        try:
            if uncertain:
                found = self._recover(adapter, http, msg, ticket)
                if found is not None:
                    self._record(item, now, _Result("recovered", ticket=found), action, item.attempts)
                    return "recovered"
                can_find = adapter.can_find if ticket is None else adapter.can_find_append
                if not dedup_now and not can_find and item.state == SENDING:
                    self._logs.append(self._log_row(item, now, action, item.attempts, "ambiguous", 0,
                                                    "earlier attempt's outcome unknown and the tracker cannot be "
                                                    "asked: a duplicate is possible", ticket, 0))
            current = item._replace(state=SENDING, attempts=attempt, updated_at=int(now * 1000),
                                    version=next_version(item))
            if not dedup_now:
                # Durable before the request: a crash after it leaves "sending", which makes the next
                # worker look the ticket up (or record the ambiguity). Earlier outcomes ride along.
                self._puts.append(current)
                self.store.put(self._puts)
                self._puts = []
            request = adapter.create(msg) if ticket is None else adapter.append(msg, ticket)
            response = http.send(request)
            if self.after_send is not None:
                self.after_send(item, response)
            result = self._classify(adapter, msg, response, ticket)
        except TransportError as err:
            if self.after_send is not None:
                self.after_send(item, None)
            result = _Result(RETRY, error=f"no answer: {err}")
        except HttpStatusError as err:
            result = self._classify(adapter, msg, err.response, ticket, lookup=True)
        except RefusedRequest as err:  # the URL breaks the destination policy: fix the routing file
            result = _Result(DEAD, error=str(err))
        duration = int((time.monotonic() - started) * 1000)
        self._record(current, now, result, action, attempt, duration)
        return result.outcome

    def _recover(self, adapter: Adapter, http: Http, msg: Message, ticket: Ticket | None) -> Ticket | None:
        """After an unknown outcome: the ticket (or append) an earlier attempt made, if it exists."""
        if ticket is None and adapter.can_find:
            return adapter.find(http, msg)
        if ticket is not None and adapter.can_find_append and adapter.find_append(http, msg, ticket):
            return ticket
        return None

    def _classify(self, adapter: Adapter, msg: Message, response: Response, ticket: Ticket | None,
                  lookup: bool = False) -> _Result:
        status = response.status
        if 200 <= status < 300 and not lookup:
            return _Result(DELIVERED, status, ticket=adapter.parse(msg, response, ticket))
        text = response.body[:300].decode("utf-8", "replace").replace("\n", " ")
        if 300 <= status < 400:  # never followed: requests would re-send our credentials to the Location
            text = "redirect not followed; point the destination at the final URL"
        error = f"{'lookup ' if lookup else ''}HTTP {status}: {text}"
        if status == 410:
            return _Result(DISABLED, status, error)
        if status in RETRYABLE:
            ra = retry_after(response.headers.get("Retry-After") or response.headers.get("retry-after"), time.time())
            return _Result(RETRY, status, error, retry_after_s=ra)
        return _Result(DEAD, status, error)

    def _record(self, item: OutboxItem, now: float, r: _Result, action: str, attempt: int, duration: int = 0) -> None:
        outcome, state = r.outcome, r.outcome
        next_at = item.next_attempt_at
        if outcome in (DELIVERED, "recovered"):
            state = DELIVERED
            assert r.ticket is not None
            self._tickets[(item.destination, item.group_id)] = r.ticket
            if self.audit is not None:
                from pipeline.audit.facts import ticket_delivered_record

                self._delivered.append(ticket_delivered_record(
                    item.alert_id, item.destination, r.status, attempt, item.address, r.ticket.external_id))
            if outcome == "recovered":
                log.info("ticket %s: found %s created by an earlier attempt", item.item_key, r.ticket.external_id)
        elif outcome == RETRY:
            age = now - item.alert().detected_at / 1000
            if attempt >= self.policy.max_attempts or age >= self.policy.max_age_s:
                state = outcome = DEAD
                r.error = f"gave up after {attempt} attempts: {r.error}"
            else:
                delay = min(self.policy.max_delay_s, self.policy.base_delay_s * 2 ** max(attempt - 1, 0))
                delay = delay / 2 + self.rng.uniform(0, delay / 2)  # equal jitter: spread, but never 0
                delay = max(delay, r.retry_after_s)
                next_at = int((now + delay) * 1000)
                self._dest_wait[item.destination] = now + delay
        elif outcome == DISABLED and item.destination not in self._disabled:
            self._disabled.add(item.destination)
            log.error("ticket destination %s answered 410 Gone: disabled; its items are parked as 'disabled' "
                      "(tickets retry --destination %s after fixing it)", item.destination, item.destination)
        if state == DEAD:
            log.error("ticket %s to %s is dead: %s", item.item_key, item.destination, r.error)
        ext = r.ticket or Ticket(item.external_id, item.external_url)
        self._puts.append(item._replace(state=state, attempts=attempt, next_attempt_at=next_at, last_error=r.error,
                                        external_id=ext.external_id, external_url=ext.external_url,
                                        updated_at=int(now * 1000), version=next_version(item)))
        self._logs.append(self._log_row(item, now, action, attempt, outcome, r.status, r.error, r.ticket, duration))
        if len(self._puts) >= 100:
            self._flush()

    @staticmethod
    def _log_row(item: OutboxItem, now: float, action: str, attempt: int, outcome: str, status: int, error: str,
                 ticket: Ticket | None, duration: int) -> tuple:
        t = ticket or Ticket("")
        return (int(now * 1000), item.item_key, item.destination, item.group_id, item.alert_id, action, attempt,
                outcome, status, error, t.external_id, t.external_url, duration)
