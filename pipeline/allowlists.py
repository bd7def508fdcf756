"""Allow (suppression) lists: known services whose alerts are expected, under ``rules/allow/``.

Why: exchange hot wallets, DEX routers, payment processors and energy-rental services make most
false positives -- a hot wallet's fan-in, a processor pulling with transferFrom, a router's round
trips. An entry says, for one address, which alerts are expected (*scope*), until when (*expiry*,
in event time) and why (*reason*, required: a suppression nobody can explain is a blind spot nobody
can review), optionally with a *category* (``exchange``, ``router``, ``processor``, ...).

Formats, one list per file, named by the file stem (as the watchlists, :mod:`pipeline.watchlists`):

* ``NAME.csv``: columns ``address,scope,expires,reason,category``. A header row is optional (without
  one, that order); with one, columns are matched by name. A scope holding commas must be quoted,
  or written with ``;``.
* ``NAME.txt``: one address per line (base58 or ``41…`` hex), ``#`` starts a comment; scope,
  expires, reason and category come from a sidecar ``NAME.yaml``.
* A CSV cell left empty takes the sidecar's value. Scope and reason are required, from the row or
  the sidecar: suppressing every rule for an address must be written down as ``*``.

Scope: ``*`` (every rule and model), or rule ids separated by ``,`` or ``;``, each exact
(``large_transfer``) or a prefix ending in ``*`` (``anomaly.*``, ``fan_*``). Ids are checked
against the rule set when it is known (unknown ids are errors, with a suggestion); ``anomaly.``
ids name models, which can be trained or turned off without touching the lists, so they are not.

Expiry: an ISO date (the entry holds through that day, UTC), an ISO date-time (no offset = UTC),
or empty / ``never``. It is compared with the alert's *event time*, never the wall clock, so a
replay of last year's blocks applies last year's entries. An entry is ignored from its expiry on,
with one info log line the first time that happens.

Effect: :func:`suppress` is the one place an allow list takes effect. The scoring stage runs it on
rule and anomaly alerts (before the anomaly cooldown), the pending pool on pending alerts, and
``rules backtest`` on what it counts. A suppressed alert is not stored as an alert nor ticketed; it
is written to ``suppressed_alerts`` (with the list, reason and category that suppressed it) and
counted per rule and list in the run summary and the log, so the lists' effect stays visible. The
rule engine asks :meth:`AllowSet.match` too, before its cooldown: a suppressed alert must not hold
the cooldown, or the first real alert after an entry expires (or is removed) would be lost.

Errors are as the watchlists': every bad line is ``file:line: reason``; strict loading (start-up,
``rules validate``) raises one :class:`ConfigError` listing them all; a hot reload that fails keeps
the lists in force (:class:`AllowlistLoader`).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from pipeline.errors import AddressError, ConfigError
from pipeline.records import Alert
from pipeline.tron.address import to_base58
from pipeline.watchlists import WatchlistLoader, _skip

log = logging.getLogger(__name__)

FIELDS = ("address", "scope", "expires", "reason", "category")
ANOMALY_PREFIX = "anomaly."  # model alerts' rule ids (pipeline.anomaly.scorer)
_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_\-]*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

COLUMNS: dict[str, tuple[str, ...]] = {
    "suppressed_alerts": ("alert_id", "ts", "detected_at", "block_number", "tx_id", "address", "rule_id",
                          "rule_version", "severity", "source", "list_name", "category", "reason",
                          "expires_at"),
}


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One address on one allow list, for the rules in ``scope`` until ``expires_ms`` (event time)."""

    list_name: str
    address: str
    scope: tuple[str, ...]  # ("*",) or exact ids and prefixes ending in "*"
    expires_ms: int | None  # ms since epoch UTC; None = never
    reason: str
    category: str
    where: str  # file:line

    def covers(self, rule_id: str) -> bool:
        for item in self.scope:
            if item == "*" or item == rule_id or (item[-1] == "*" and rule_id.startswith(item[:-1])):
                return True
        return False

    def in_force(self, ts: int) -> bool:
        return self.expires_ms is None or ts < self.expires_ms


@dataclass(frozen=True, slots=True)
class AllowListInfo:
    name: str
    path: str
    entries: int
    sha256: str  # of the entries as loaded: the version chained in the audit trail
    meta: Mapping[str, object] = field(default_factory=dict)


class AllowSet:
    """Immutable snapshot of every allow list; implements ``pipeline.rules.names.Allowlists``.

    Lookups cost one dict probe for an address on no list, the common case.
    """

    def __init__(self, entries: Mapping[str, Sequence[AllowEntry]], lists: Mapping[str, AllowListInfo],
                 problems: Sequence[str] = ()) -> None:
        self._entries = {a: tuple(es) for a, es in entries.items()}
        self.lists = dict(lists)
        self.problems = tuple(problems)
        self._expired_seen: set[str] = set()  # entries already logged as expired (by where)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, address: object) -> bool:
        return address in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    @property
    def size(self) -> int:
        """Entries on all lists (an address may have several)."""
        return sum(len(es) for es in self._entries.values())

    def entries_of(self, address: str) -> tuple[AllowEntry, ...]:
        return self._entries.get(address, ())

    def match(self, rule_id: str, address: str, ts: int) -> AllowEntry | None:
        """The entry that suppresses ``rule_id``'s alert about ``address`` at event time ``ts``."""
        entries = self._entries.get(address)
        if entries is None:
            return None
        for e in entries:
            if e.covers(rule_id):
                if e.in_force(ts):
                    return e
                self._expired(e, ts)
        return None

    def allowed(self, address: str, ts: int) -> bool:
        """``address`` has an entry in force at ``ts``, whatever its scope (a known service)."""
        return self._any(address, ts, None)

    def allowed_as(self, address: str, category: str, ts: int) -> bool:
        """As :meth:`allowed`, for entries of ``category`` (case-insensitive)."""
        return self._any(address, ts, category.lower())

    def _any(self, address: str, ts: int, category: str | None) -> bool:
        for e in self._entries.get(address, ()):
            if category is None or e.category == category:
                if e.in_force(ts):
                    return True
                self._expired(e, ts)
        return False

    def _expired(self, e: AllowEntry, ts: int) -> None:
        if e.where in self._expired_seen:
            return
        self._expired_seen.add(e.where)  # a set add under the GIL: at worst logged twice, never lost
        log.info("allow list %s: the entry for %s expired at %s and is ignored from event time %s on (%s)",
                 e.list_name, e.address, _iso(e.expires_ms), _iso(ts), e.where)


EMPTY = AllowSet({}, {})


class Suppression(NamedTuple):
    alert: Alert
    entry: AllowEntry


def suppress(alerts: Sequence[Alert], allow: Any) -> tuple[list[Alert], list[Suppression]]:
    """Split ``alerts`` into those to keep and those an allow list suppresses at their event time.

    ``allow`` is an :class:`AllowSet` (or anything with its ``match``); None suppresses nothing.
    """
    if allow is None or not alerts:
        return list(alerts), []
    kept: list[Alert] = []
    dropped: list[Suppression] = []
    for a in alerts:
        entry = allow.match(a.rule_id, a.address, a.ts)
        if entry is None:
            kept.append(a)
        else:
            dropped.append(Suppression(a, entry))
    return kept, dropped


def suppressed_rows(suppressions: Sequence[Suppression]) -> list[tuple]:
    """Rows of ``suppressed_alerts`` (columns in :data:`COLUMNS`)."""
    return [(a.alert_id, a.ts, a.detected_at, a.block_number, a.tx_id, a.address, a.rule_id, a.rule_version,
             a.severity, a.source, e.list_name, e.category, e.reason, e.expires_ms)
            for a, e in suppressions]


def count(suppressions: Sequence[Suppression], counts: Counter[tuple[str, str]]) -> None:
    """Add ``suppressions`` to ``counts`` keyed by (rule id, list name)."""
    for a, e in suppressions:
        counts[(a.rule_id, e.list_name)] += 1


def describe(counts: Mapping[tuple[str, str], int], top: int = 8) -> str:
    """``"12 alerts (large_transfer/exchanges 10, anomaly.iforest/exchanges 2)"``: for log lines."""
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{rule}/{name} {n}" for (rule, name), n in ordered]
    more = f", +{len(parts) - top} more" if len(parts) > top else ""
    return f"{total} alert{'s' if total != 1 else ''} ({', '.join(parts[:top])}{more})"


# -- parsing -------------------------------------------------------------------------------------------


def parse_scope(text: str, known: Collection[str] | None = None) -> tuple[str, ...]:
    """``"*"`` or ids/prefixes separated by ``,``/``;``; raises ValueError saying what is wrong."""
    items = list(dict.fromkeys(s.strip() for s in re.split(r"[,;]", text) if s.strip()))
    if not items:
        raise ValueError("missing scope (* for every rule, or rule ids / prefixes such as anomaly.*)")
    if "*" in items:
        if len(items) > 1:
            raise ValueError(f"scope {text.strip()!r}: '*' already covers every rule; give it alone")
        return ("*",)
    for item in items:
        body = item.removesuffix("*")
        if not _ID.fullmatch(body):
            raise ValueError(f"scope item {item!r} is not a rule id or a prefix ending in *")
        if known is None or body.startswith(ANOMALY_PREFIX) or ANOMALY_PREFIX.startswith(body):
            continue
        if item.endswith("*"):
            if not any(k.startswith(body) for k in known):
                raise ValueError(f"scope {item!r} matches no rule")
        elif item not in known:
            close = difflib.get_close_matches(item, list(known), n=1)
            raise ValueError(f"unknown rule id {item!r}" + (f"; did you mean {close[0]}?" if close else ""))
    return tuple(items)


def parse_expiry(value: object) -> int | None:
    """ms since epoch UTC at which an entry stops applying; None = never. Raises ValueError.

    A date means through that day (UTC): the entry stops at the next midnight.
    """
    if value is None or isinstance(value, datetime | date):
        text = "" if value is None else value.isoformat()
    else:
        text = str(value).strip()
    if not text or text.lower() == "never":
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return (datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) - _EPOCH) // _MS
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expiry {text!r} is not an ISO date (2025-12-31) or date-time "
                         "(2025-12-31T18:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def _iso(ms: int | None) -> str:
    return "never" if ms is None else (_EPOCH + ms * _MS).isoformat().replace("+00:00", "Z")


def make_entry(list_name: str, where: str, values: Mapping[str, object],
               known: Collection[str] | None = None) -> AllowEntry:
    """One entry from its column values (sidecar defaults already applied); raises ValueError."""
    raw = str(values.get("address") or "").strip()
    try:
        address = to_base58(raw)
    except AddressError as err:
        raise ValueError(f"invalid address {raw!r} ({err})") from None
    reason = str(values.get("reason") or "").strip()
    if not reason:
        raise ValueError("missing reason (say why this address's alerts are expected)")
    scope = parse_scope(str(values.get("scope") or ""), known)
    expires = parse_expiry(values.get("expires"))
    category = str(values.get("category") or "").strip().lower()
    if category and not _CATEGORY.fullmatch(category):
        raise ValueError(f"category {category!r} must be one word (letters, digits, _ or -), e.g. exchange")
    return AllowEntry(list_name, address, scope, expires, reason, category, where)


def _sidecar(path: Path, problems: list[str]) -> tuple[dict[str, object], dict[str, object]]:
    """(column defaults, other metadata) from ``NAME.yaml``/``NAME.yml`` next to a list file."""
    for ext in (".yaml", ".yml"):
        side = path.with_suffix(ext)
        if not side.is_file():
            continue
        try:
            data = yaml.safe_load(side.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{side}:1: cannot read: {err}")
            return {}, {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            problems.append(f"{side}:{line}: invalid YAML: {getattr(err, 'problem', err)}")
            return {}, {}
        if not isinstance(data, dict):
            problems.append(f"{side}:1: expected a mapping (scope, expires, reason, category)")
            return {}, {}
        meta = {str(k): v for k, v in data.items()}
        defaults = {k: meta.pop(k) for k in FIELDS[1:] if k in meta}
        if isinstance(defaults.get("scope"), list):
            defaults["scope"] = ",".join(map(str, defaults["scope"]))
        return defaults, meta
    return {}, {}


def _rows(path: Path, text: str, problems: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, {column: value})`` of the data lines of a TXT or CSV allow list."""
    if path.suffix.lower() == ".txt":
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                yield n, {"address": line}
        return
    columns: tuple[str, ...] = FIELDS
    first = True
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        n = reader.line_num
        cells = [c.strip() for c in row]
        if not "".join(cells) or cells[0].startswith("#"):
            continue
        if first:
            first = False
            if "address" in (c.lower() for c in cells):  # a header: columns by name
                names = tuple(c.lower() for c in cells)
                unknown = [c for c in names if c not in FIELDS]
                if unknown or len(set(names)) != len(names):
                    problems.append(f"{path}:{n}: header {', '.join(cells)}: the columns are "
                                    f"{', '.join(FIELDS)}, each at most once")
                    return
                columns = names
                continue
        if len(cells) > len(columns):
            problems.append(f"{path}:{n}: {len(cells)} fields, at most {len(columns)} "
                            f"({', '.join(columns)}); quote a scope or reason that holds commas, "
                            "or separate rule ids with ;")
            continue
        yield n, dict(zip(columns, cells))


def _load_file(path: Path, known: Collection[str] | None, entries: dict[str, list[AllowEntry]],
               problems: list[str]) -> AllowListInfo:
    defaults, meta = _sidecar(path, problems)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not data
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path}:1: cannot read: {err}")
        return AllowListInfo(path.stem, str(path), 0, "", meta)
    kept: dict[tuple, AllowEntry] = {}
    for n, cells in _rows(path, text, problems):
        values = {k: cells.get(k) or defaults.get(k) for k in FIELDS}
        try:
            entry = make_entry(path.stem, f"{path}:{n}", values, known)
        except ValueError as err:
            problems.append(f"{path}:{n}: {err}")
            continue
        key = (entry.address, entry.scope, entry.expires_ms, entry.reason, entry.category)
        if key not in kept:  # the same line twice is harmless
            kept[key] = entry
    for entry in kept.values():
        entries.setdefault(entry.address, []).append(entry)
    lines = sorted("\t".join([a, ",".join(s), _iso(x), r, c]) for a, s, x, r, c in kept)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return AllowListInfo(path.stem, str(path), len(kept), digest, meta)


def load_allowlists(directory: str | os.PathLike[str], strict: bool = True,
                    known_rules: Collection[str] | None = None) -> AllowSet:
    """Load every allow list under ``directory``; see the module docstring for formats and errors.

    ``known_rules``: the rule ids in force, to reject scopes naming no rule; None skips the check.
    ``strict=False`` keeps the good lines and leaves the problems in ``AllowSet.problems`` for the
    caller to report.
    """
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"{root}: allow-list directory does not exist")
    files = sorted(p for p in root.iterdir()
                   if p.suffix.lower() in (".txt", ".csv") and p.is_file() and not _skip(p))
    entries: dict[str, list[AllowEntry]] = {}
    problems: list[str] = []
    lists: dict[str, AllowListInfo] = {}
    for path in files:
        if path.stem in lists:
            problems.append(f"{path}:1: list name {path.stem!r} already used by {lists[path.stem].path}")
            continue
        lists[path.stem] = _load_file(path, known_rules, entries, problems)
    if problems and strict:
        raise ConfigError(f"{len(problems)} problem(s) in allow lists: " + "; ".join(problems))
    allow = AllowSet(entries, lists, problems)
    log.info("loaded %d allow-list entries for %d addresses from %d list(s) in %s",
             allow.size, len(allow), len(lists), directory)
    return allow


class AllowlistLoader(WatchlistLoader):
    """:class:`WatchlistLoader`'s change detection and keep-the-last-good reloads, for allow lists.

    ``known_rules`` is a collection of rule ids, or a callable returning the ids in force at each
    load (a rule added by a hot reload can be allow-listed at once); None skips the check.
    """

    kind = "allow-list"

    def __init__(self, directory: str | os.PathLike[str], strict: bool = True, min_interval_s: float = 5.0,
                 known_rules: Collection[str] | Callable[[], Collection[str] | None] | None = None) -> None:
        self.known_rules = known_rules
        super().__init__(directory, strict, min_interval_s)

    def _load(self) -> AllowSet:  # type: ignore[override]
        known = self.known_rules() if callable(self.known_rules) else self.known_rules
        return load_allowlists(self.directory, self.strict, known)

    def current(self) -> AllowSet:  # type: ignore[override]
        return self._current  # type: ignore[return-value]
