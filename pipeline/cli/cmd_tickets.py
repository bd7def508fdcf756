"""``run_pipeline.py tickets``: look at, retry and test ticket delivery (see docs/tickets.md)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_ROUTING = Path(__file__).resolve().parents[2] / "rules" / "tickets" / "routing.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tickets", help="ticket outbox: list, show, retry, deliver, validate routing, send a test ticket",
        description="Alerts matching rules/tickets/routing.yaml are queued in ClickHouse (ticket_outbox) by the "
                    "pipeline and delivered by its worker; every attempt is logged in 'tickets'. With the "
                    "embedded chDB these commands need the pipeline stopped (one process per data directory).")
    sub = p.add_subparsers(dest="tickets_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser, storage: bool = True) -> None:
        q.add_argument("--routing", default=str(DEFAULT_ROUTING), metavar="FILE",
                       help="routing file (default rules/tickets/routing.yaml)")
        if storage:
            q.add_argument("--clickhouse", metavar="DSN", help="chdb://PATH (default from settings) or http(s)://...")
            q.add_argument("--config", metavar="FILE", help="TOML settings file (default ./tronrisk.toml if present)")

    q = sub.add_parser("list", help="outbox items, newest first, and counts per destination and state")
    common(q)
    q.add_argument("--state", choices=("pending", "sending", "retry", "delivered", "dead", "disabled"))
    q.add_argument("--destination", metavar="NAME")
    q.add_argument("--limit", type=int, default=50)
    q.set_defaults(func=run_list)

    q = sub.add_parser("show", help="one item (by item key, alert id or group id) with every attempt")
    common(q)
    q.add_argument("id")
    q.set_defaults(func=run_show)

    q = sub.add_parser("retry", help="queue items again: by id, or every dead/disabled item (--dead, --disabled)")
    common(q)
    q.add_argument("id", nargs="?", help="item key, alert id or group id")
    q.add_argument("--dead", action="store_true", help="every dead item")
    q.add_argument("--disabled", action="store_true", help="every item parked by a 410 Gone")
    q.add_argument("--destination", metavar="NAME", help="only this destination")
    q.add_argument("--deliver", action="store_true", help="deliver now, in this process, instead of leaving it "
                                                          "to the pipeline's worker")
    q.add_argument("--timeout", type=float, default=60.0, help="with --deliver: give up after this many seconds")
    q.set_defaults(func=run_retry)

    q = sub.add_parser("deliver", help="deliver the open outbox items now, in this process, then exit")
    common(q)
    q.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds (default 60)")
    q.set_defaults(func=run_deliver)

    q = sub.add_parser("validate", help="load the routing file and print what it does")
    common(q, storage=False)
    q.set_defaults(func=run_validate)

    q = sub.add_parser("test", help="send a signed sample alert to DESTINATION and print the answer")
    common(q, storage=False)
    q.add_argument("destination")
    q.set_defaults(func=run_test)


def _routing(args: argparse.Namespace):
    from pipeline.config import load_settings
    from pipeline.tickets import load_routing
    from pipeline.tickets.policy import DestinationPolicy

    policy = DestinationPolicy.from_settings(load_settings(getattr(args, "config", None)))
    return load_routing(args.routing, policy=policy)


def _store(args: argparse.Namespace):
    from pipeline.config import load_settings
    from pipeline.storage.clickhouse import open_storage
    from pipeline.tickets.store import OutboxStore

    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.clickhouse})
    client, dsn = open_storage(settings.clickhouse.dsn)
    return OutboxStore(client, dsn.database)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) if ms else "-"


def run_list(args: argparse.Namespace) -> int:
    store = _store(args)
    items = store.list(args.state or "", args.destination or "", args.limit)
    print(f"{'item key':32}  {'destination':12} {'state':9} {'att':>3}  {'updated (UTC)':19}  {'ticket':16}  alert / error")
    for i in items:
        tail = i.last_error[:60] if i.state in ("retry", "dead", "disabled") else f"{i.severity} {i.alert_id}"
        print(f"{i.item_key:32}  {i.destination:12} {i.state:9} {i.attempts:>3}  {_when(i.updated_at):19}  "
              f"{(i.external_id or '-')[:16]:16}  {tail}")
    counts = store.counts()
    if counts:
        print("\n" + ", ".join(f"{d}/{s}: {n}" for (d, s), n in sorted(counts.items())))
    else:
        print("(outbox is empty)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from pipeline.tickets.errors import DeliveryError

    store = _store(args)
    items = store.find(args.id)
    if not items:
        raise DeliveryError(f"tickets show {args.id}: no outbox item has this item key, alert id or group id")
    for i in items:
        print(f"{i.item_key}  {i.destination}  route {i.route}  group {i.group_id}  alert {i.alert_id}")
        print(f"  state {i.state}, {i.attempts} attempt(s), next {_when(i.next_attempt_at)}, "
              f"ticket {i.external_id or '-'} {i.external_url}")
        if i.last_error:
            print(f"  last error: {i.last_error}")
    for row in store.attempts(args.id):
        at, _key, dest, _gid, _aid, action, attempt, outcome, status, error, ext, _url, ms = row
        print(f"  {_when(at)}  {dest:12} {action:6} #{attempt:<3} {outcome:10} {status or '-':>3} {ms:>5} ms  "
              f"{ext or ''} {error[:80]}")
    return 0


def run_retry(args: argparse.Namespace) -> int:
    from pipeline.tickets.errors import DeliveryError
    from pipeline.tickets.outbox import DEAD, DELIVERED, DISABLED, RETRY
    from pipeline.tickets.store import next_version

    if not args.id and not (args.dead or args.disabled):
        raise DeliveryError("tickets retry: give an ID, --dead or --disabled")
    store = _store(args)
    if args.id:
        items = store.find(args.id)
        if not items:
            raise DeliveryError(f"tickets retry {args.id}: no outbox item has this item key, alert id or group id")
    else:
        items = [i for s in ((DEAD,) if args.dead else ()) + ((DISABLED,) if args.disabled else ())
                 for i in store.list(s, args.destination or "", 100_000)]
    items = [i for i in items if not args.destination or i.destination == args.destination]
    done = [i for i in items if i.state == DELIVERED]
    todo = [i for i in items if i.state != DELIVERED]
    now = int(time.time() * 1000)
    # "retry" with a fresh budget: the worker treats it as an unknown outcome and first looks the
    # ticket up where it can (a dead item's last attempt may have reached the tracker).
    store.put([i._replace(state=RETRY, attempts=0, next_attempt_at=0, updated_at=now, version=next_version(i))
               for i in todo])
    print(f"queued {len(todo)} item(s) again" + (f"; {len(done)} already delivered left alone "
                                                  "(sending again would open a second ticket)" if done else ""))
    if args.deliver and todo:
        return _drain(args, store)
    return 0


def run_deliver(args: argparse.Namespace) -> int:
    return _drain(args, _store(args))


def _drain(args: argparse.Namespace, store) -> int:
    from pipeline.audit.keys import signing_for
    from pipeline.audit.store import AuditAppender
    from pipeline.config import load_settings
    from pipeline.tickets import DeliveryWorker

    settings = load_settings(args.config, overrides={"clickhouse.dsn": args.clickhouse})
    signing = signing_for(settings.audit, settings.clickhouse.dsn)
    audit = AuditAppender(store.client, store.db, signing=signing)  # every delivery is chained
    worker = DeliveryWorker(lambda: store.client, _routing(args), database=store.db, audit=audit.append)
    totals = worker.drain(args.timeout)
    worker.stop()
    left = len([i for i in store.open_items(100_000) if i.destination in worker.routing.destinations
                and worker.routing.destinations[i.destination].enabled])
    totals.pop("sent", None)
    print("delivery: " + (", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or "nothing due")
          + (f"; {left} item(s) still open (retrying later)" if left else ""))
    return 0 if not left and not totals.get("dead") else 1


def run_validate(args: argparse.Namespace) -> int:
    routing = _routing(args)
    print(f"{args.routing}: OK")
    for d in routing.destinations.values():
        print(f"  destination {d.name}: {d.kind} {d.url} {'enabled' if d.enabled else 'disabled'}")
    for r in routing.routes:
        group = "one ticket per alert" if r.group == "alert" else f"one ticket per address per {r.window_s}s"
        print(f"  route {r.name}: {group} -> {', '.join(r.destinations)}{'' if r.stop else ' (continue)'}")
    return 0


def run_test(args: argparse.Namespace) -> int:
    from pipeline.tickets.destinations import Http, Message, TransportError, adapter_for
    from pipeline.tickets.destinations.base import RefusedRequest
    from pipeline.tickets.errors import DeliveryError
    from pipeline.tickets.testing import sample_alert

    routing = _routing(args)
    dest = routing.destinations.get(args.destination)
    if dest is None:
        raise DeliveryError(f"tickets test: unknown destination {args.destination!r}; known: "
                            f"{', '.join(routing.destinations) or '(none)'} in {args.routing}")
    if not dest.enabled:
        raise DeliveryError(f"tickets test: destination {dest.name!r} is disabled in {dest.where}")
    alert = sample_alert()
    adapter = adapter_for(dest)
    msg = Message(alert, "test", alert.alert_id, "test", routing.link(alert.alert_id))
    http = Http(dest.timeout_s, routing.allowed_hosts)
    try:
        response = http.send(adapter.create(msg))
    except (TransportError, RefusedRequest) as err:
        raise DeliveryError(f"tickets test {dest.name}: no answer from {dest.url}: {err}") from None
    finally:
        http.close()
    ok = 200 <= response.status < 300
    ticket = adapter.parse(msg, response, None) if ok else None
    print(f"{dest.name} ({dest.kind}) answered HTTP {response.status}"
          + (f": ticket {ticket.external_id} {ticket.external_url}".rstrip() if ticket else
             f": {response.body[:300].decode('utf-8', 'replace')}"))
    return 0 if ok else 1
