"""Ticket routing: which alerts open tickets, grouped how, delivered where.

Routing is data (``rules/tickets/routing.yaml``), loaded and validated once; every problem is
reported as ``file:line: message`` like the rule engine does, all problems at once. The format is
documented in ``docs/tickets.md``. Routes are tried in order; an alert is sent by every route that
matches it (one outbox item per destination and alert: a second route to the same destination is
ignored), unless a matching route says ``continue: false`` (the default), which stops the search.
What a loaded routing is (:class:`Routing` and its parts) lives in :mod:`pipeline.tickets.model`.
"""

from __future__ import annotations

import base64
import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.records import SEVERITIES
from pipeline.tickets.errors import RoutingError
from pipeline.tickets.model import DeliveryPolicy, Destination, Match, Route, Routing
from pipeline.tickets.policy import DestinationPolicy, url_problem
from pipeline.tickets.secrets import Secret, resolve_secret
from pipeline.yamlsafe import MarkedMap, YamlError, load_yaml, read_yaml_file
from pipeline.yamlsafe import excerpt as _q

__all__ = ["DeliveryPolicy", "Destination", "Match", "Route", "Routing", "load_routing", "load_routing_text"]

KINDS = ("webhook", "jira", "servicenow", "pagerduty", "opsgenie", "github")
GROUPS = ("alert", "subject")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

# kind -> option -> (type, default; REQUIRED = must be given)
REQUIRED = object()
_OPTIONS: dict[str, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    "webhook": {"url": (str, REQUIRED), "headers": (dict, {})},
    "jira": {"url": (str, REQUIRED), "project": (str, REQUIRED), "issue_type": (str, "Task"),
             "email": (str, REQUIRED), "labels": (list, ["tronrisk"]), "priorities": (dict, {})},
    "servicenow": {"url": (str, REQUIRED), "username": (str, ""), "table": (str, "incident"),
                   "fields": (dict, {})},
    "pagerduty": {"url": (str, "https://events.pagerduty.com/v2/enqueue"), "source": (str, "tronrisk")},
    "opsgenie": {"url": (str, "https://api.opsgenie.com"), "responders": (list, []), "tags": (list, ["tronrisk"])},
    "github": {"url": (str, "https://api.github.com"), "repo": (str, REQUIRED), "labels": (list, ["tronrisk"])},
}
# kind -> secret name -> many (a list of secrets, e.g. rotation) or one
_SECRETS: dict[str, dict[str, bool]] = {
    "webhook": {"secrets": True},
    "jira": {"api_token": False},
    "servicenow": {"password": False, "token": False},  # basic (username + password) or bearer token
    "pagerduty": {"routing_key": False},
    "opsgenie": {"api_key": False},
    "github": {"token": False},
}
_COMMON = ("kind", "enabled", "timeout", "description")
_MATCH_KEYS = ("min_severity", "severities", "rules", "tags", "min_risk_score", "rule_action",
               "statuses", "sources")
_ROUTE_KEYS = ("name", "match", "group", "window", "destinations", "continue")
_DELIVERY = {"max_attempts": 12, "base_delay": 2, "max_delay": 600, "max_age": 86400,
             "poll_interval": 1, "batch": 200}
_TOP = ("dashboard_url", "delivery", "destinations", "routes")


def _empty() -> MarkedMap:
    m = MarkedMap()
    m.key_lines, m.value_nodes = {}, {}
    return m


class _Problem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def load_routing(path: str | Path, env: Mapping[str, str] | None = None,
                 policy: DestinationPolicy | None = None) -> Routing:
    """Load and validate a routing file; secrets of enabled destinations are resolved now.

    ``policy`` (from the settings) bounds where destinations may point and where secret files may
    be read from (by default the routing file's directory); see :mod:`pipeline.tickets.policy`.
    """
    p = Path(path)
    policy = policy or DestinationPolicy()
    try:
        text = read_yaml_file(p, max_bytes=policy.max_yaml_bytes)
    except YamlError as err:
        raise RoutingError([str(err)]) from None
    base = Path(policy.secrets_dir) if policy.secrets_dir else p.parent
    return load_routing_text(text, str(p), os.environ if env is None else env, base, policy)


def load_routing_text(text: str, path: str = "<string>", env: Mapping[str, str] | None = None,
                      base: Path | None = None, policy: DestinationPolicy | None = None) -> Routing:
    """Load and validate routing YAML; ``{file: ...}`` secrets are read from under directory ``base``."""
    errors: list[str] = []
    policy = policy or DestinationPolicy()
    try:
        doc = load_yaml(text, path, max_bytes=policy.max_yaml_bytes)
    except YamlError as err:
        raise RoutingError([str(err)]) from None
    if not isinstance(doc, MarkedMap):
        raise RoutingError([f"{path}:1: a routing file is a mapping with 'destinations:' and 'routes:'"])
    env = {} if env is None else env
    base = base or Path.cwd()

    def problem(line: int, msg: str) -> None:
        errors.append(f"{path}:{line}: {msg}")

    for key in doc:
        if key not in _TOP:
            problem(doc.key_lines[key], f"unknown top-level key {_q(key)}{_suggest(str(key), _TOP)}")
    dashboard = doc.get("dashboard_url", Routing.dashboard_url)
    if not isinstance(dashboard, str) or "{alert_id}" not in dashboard:
        problem(doc.key_lines.get("dashboard_url", 1), "dashboard_url must be a string containing {alert_id}")
        dashboard = Routing.dashboard_url
    delivery = DeliveryPolicy()
    try:
        delivery = _delivery(doc.get("delivery", _empty()))
    except _Problem as p:
        problem(p.line, f"delivery: {p}")
    destinations: dict[str, Destination] = {}
    dest_doc = doc.get("destinations", _empty())
    if not isinstance(dest_doc, MarkedMap):
        problem(doc.key_lines.get("destinations", 1), "'destinations' must be a mapping of name -> destination")
        dest_doc = _empty()
    for name, spec in dest_doc.items():
        line = dest_doc.key_lines[name]
        try:
            destinations[name] = _destination(str(name), spec, line, path, env, base, policy.allowed_hosts)
        except _Problem as p:
            problem(p.line, f"destination {_q(name)}: {p}")
    routes: list[Route] = []
    route_doc = doc.get("routes", [])
    if not isinstance(route_doc, list):
        problem(doc.key_lines.get("routes", 1), "'routes' must be a list of routes")
        route_doc = []
    seen: set[str] = set()
    for i, item in enumerate(route_doc):
        try:
            route = _route(item, i, path, set(dest_doc), doc.key_lines.get("routes", 1))
        except _Problem as p:
            problem(p.line, f"route #{i + 1}: {p}")
            continue
        if route.name in seen:
            problem(item.line, f"route {_q(route.name)}: duplicate name")
        seen.add(route.name)
        routes.append(route)
    if errors:
        raise RoutingError(errors)
    return Routing(tuple(routes), destinations, dashboard, delivery, source=path,
                   allowed_hosts=policy.allowed_hosts)


def _suggest(word: str, options: Any) -> str:
    if len(word) > 64:
        return ""
    close = difflib.get_close_matches(word, [str(o) for o in options], n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _check_keys(m: MarkedMap, allowed: Any, what: str) -> None:
    for key in m:
        if key not in allowed:
            raise _Problem(m.key_lines[key], f"unknown {what} key {_q(key)}{_suggest(str(key), allowed)}; "
                                             f"known: {', '.join(allowed)}")


def _duration(value: Any, line: int, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _DURATION.match(str(value).strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) <= 0:
        raise _Problem(line,
                       f"{what}: expected a positive duration (seconds or 30s/10m/1h/1d), got {_q(value)}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _delivery(m: Any) -> DeliveryPolicy:
    if not isinstance(m, MarkedMap):
        raise _Problem(1, "must be a mapping")
    _check_keys(m, tuple(_DELIVERY), "delivery")
    values: dict[str, float] = {}
    for key, default in _DELIVERY.items():
        raw = m.get(key, default)
        line = m.key_lines.get(key, m.line)
        if key in ("max_attempts", "batch"):
            if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
                raise _Problem(line, f"{key}: expected a positive integer, got {_q(raw)}")
            values[key] = raw
        elif isinstance(raw, float) and 0 < raw < float("inf"):
            values[key] = raw
        else:
            values[key] = _duration(raw, line, key)
    return DeliveryPolicy(int(values["max_attempts"]), float(values["base_delay"]), float(values["max_delay"]),
                          float(values["max_age"]), float(values["poll_interval"]), int(values["batch"]))


def _destination(name: str, m: Any, line: int, path: str, env: Mapping[str, str], base: Path,
                 allowed_hosts: tuple[str, ...] = ()) -> Destination:
    if not _NAME.match(name):
        raise _Problem(line, "names are [a-z0-9_.-], starting with a letter or digit")
    if not isinstance(m, MarkedMap):
        raise _Problem(line, "must be a mapping with at least 'kind'")
    kind = m.get("kind")
    if kind not in KINDS:
        raise _Problem(m.key_lines.get("kind", line), f"kind must be one of {', '.join(KINDS)}, "
                                                      f"got {_q(kind)}"
                       f"{_suggest(str(kind), KINDS)}")
    allowed = (*_COMMON, *_OPTIONS[kind], *_SECRETS[kind])
    _check_keys(m, allowed, f"{kind}")
    enabled = m.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _Problem(m.key_lines["enabled"], "enabled must be true or false")
    timeout = m.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
        raise _Problem(m.key_lines.get("timeout", line),
                       f"timeout: expected seconds in (0, 300], got {_q(timeout)}")
    options: dict[str, Any] = {}
    for key, (typ, default) in _OPTIONS[kind].items():
        if key not in m:
            if default is REQUIRED:
                raise _Problem(line, f"missing required key {_q(key)} for kind {kind}")
            options[key] = default
            continue
        if not isinstance(m[key], typ):
            raise _Problem(m.key_lines[key],
                           f"{key}: expected {getattr(typ, '__name__', typ)}, got {_q(m[key])}")
        options[key] = m[key]
    why = url_problem(str(options["url"]), allowed_hosts)
    if why is not None:
        raise _Problem(m.key_lines.get("url", line), f"url: {why}")
    if kind == "github" and not re.match(r"^[\w.-]+/[\w.-]+$", options["repo"]):
        raise _Problem(m.key_lines["repo"], f"repo: expected owner/name, got {_q(options['repo'])}")
    secrets: dict[str, tuple[Secret, ...]] = {}
    for key, many in _SECRETS[kind].items():
        if key not in m:
            continue
        refs = m[key]
        if many and not isinstance(refs, list):
            raise _Problem(m.key_lines[key], f"{key}: expected a list of secrets (newest first)")
        if not enabled:
            continue  # a disabled destination needs no secrets in this environment
        out = []
        for ref in refs if many else [refs]:
            try:
                out.append(resolve_secret(ref, env, base))
            except ValueError as err:
                raise _Problem(m.key_lines[key], f"{key}: {err}") from None
        secrets[key] = tuple(out)
    if enabled:
        _check_secrets(kind, secrets, options, m, line)
    return Destination(name, kind, options, secrets, enabled, float(timeout), f"{path}:{line}")


def _check_secrets(kind: str, secrets: dict[str, tuple[Secret, ...]], options: dict[str, Any],
                   m: MarkedMap, line: int) -> None:
    if kind == "servicenow":
        if not secrets.get("token") and not (secrets.get("password") and options["username"]):
            raise _Problem(line, "servicenow needs 'token' (bearer) or 'username' and 'password'")
        return
    (name,) = _SECRETS[kind]
    if not secrets.get(name):
        raise _Problem(line, f"missing secret {_q(name)} for kind {kind}")
    if kind == "webhook":
        for s in secrets[name]:
            raw = s.reveal().removeprefix("whsec_")
            try:
                if len(base64.b64decode(raw, validate=True)) < 16:
                    raise ValueError
            except ValueError:
                raise _Problem(m.key_lines[name], f"{s.source}: expected whsec_<base64 of >= 16 bytes>") from None


def _route(m: Any, i: int, path: str, destinations: set, line: int) -> Route:
    if not isinstance(m, MarkedMap):
        raise _Problem(line, "must be a mapping")
    _check_keys(m, _ROUTE_KEYS, "route")
    name = m.get("name", f"route{i + 1}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _Problem(m.key_lines.get("name", m.line), f"name must be [a-z0-9_.-], got {_q(name)}")
    dests = m.get("destinations")
    if not isinstance(dests, list) or not dests or not all(isinstance(d, str) for d in dests):
        raise _Problem(m.key_lines.get("destinations", m.line), "destinations: expected a non-empty list of names")
    for d in dests:
        if d not in destinations:
            raise _Problem(m.key_lines["destinations"],
                           f"unknown destination {_q(d)}{_suggest(d, destinations)}")
    group = m.get("group", "alert")
    if group not in GROUPS:
        raise _Problem(m.key_lines.get("group", m.line),
                       f"group must be one of {', '.join(GROUPS)}, got {_q(group)}")
    window = _duration(m.get("window", 3600), m.key_lines.get("window", m.line), "window")
    if "window" in m and group != "subject":
        raise _Problem(m.key_lines["window"], "window applies to group: subject only")
    stop = m.get("continue", False)
    if not isinstance(stop, bool):
        raise _Problem(m.key_lines["continue"], "continue must be true or false")
    match = _match(m.get("match", _empty()), m.key_lines.get("match", m.line))
    return Route(name, match, tuple(dict.fromkeys(dests)), group, window, not stop, f"{path}:{m.line}")


def _match(m: Any, line: int) -> Match:
    if not isinstance(m, MarkedMap):
        raise _Problem(line, "match must be a mapping")
    _check_keys(m, _MATCH_KEYS, "match")

    def names(key: str, allowed: tuple[str, ...] = ()) -> frozenset[str]:
        value = m.get(key, [])
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _Problem(m.key_lines[key], f"match.{key}: expected a list of names")
        for v in value:
            if allowed and v not in allowed:
                raise _Problem(m.key_lines[key], f"match.{key}: {_q(v)} is not one of {', '.join(allowed)}"
                                                 f"{_suggest(v, allowed)}")
        return frozenset(value)

    min_sev = m.get("min_severity", "")
    if min_sev and min_sev not in SEVERITIES:
        raise _Problem(m.key_lines["min_severity"], f"match.min_severity: {_q(min_sev)} is not one of "
                                                    f"{', '.join(SEVERITIES)}{_suggest(str(min_sev), SEVERITIES)}")
    score = m.get("min_risk_score", 0)
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100:
        raise _Problem(m.key_lines.get("min_risk_score", line),
                       f"match.min_risk_score: expected 0..100, got {_q(score)}")
    action = m.get("rule_action", False)
    if not isinstance(action, bool):
        raise _Problem(m.key_lines["rule_action"], "match.rule_action: expected true or false")
    statuses = names("statuses", ("pending", "confirmed", "dropped")) if "statuses" in m else Match.statuses
    return Match(min_sev, names("severities", SEVERITIES), names("rules"), names("tags"), float(score), action,
                 statuses, names("sources", ("block", "mempool")))
