"""Reading allow lists from ``rules/allow/``: parsing, ``file:line`` errors, hot-reloadable loader.

The format is described in :mod:`pipeline.allowlists`; what a loaded list is, in
:mod:`pipeline.allowlists.entries`.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import logging
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pipeline.allowlists.entries import EPOCH, MS, AllowEntry, AllowListInfo, AllowSet, iso
from pipeline.errors import AddressError, ConfigError
from pipeline.operators.structures import STRUCTURES
from pipeline.tron.address import to_base58
from pipeline.watchlists import WatchlistLoader, _skip
from pipeline.yamlsafe import YamlError, load_yaml_file, plain

FIELDS = ("address", "scope", "expires", "reason", "category")
ANOMALY_PREFIX = "anomaly."  # model alerts' rule ids (pipeline.anomaly.scorer)
STRUCTURE_RULE_IDS = frozenset(rule_id for rule_id, *_ in STRUCTURES.values())
_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_\-]*")

log = logging.getLogger(__name__)


def parse_scope(text: str, known: Collection[str] | None = None) -> tuple[str, ...]:
    """``"*"`` or ids/prefixes separated by ``,``/``;``; raises ValueError saying what is wrong."""
    items = list(dict.fromkeys(s.strip() for s in re.split(r"[,;]", text) if s.strip()))
    if not items:
        raise ValueError("missing scope (* for every rule, or rule ids / prefixes such as anomaly.*)")
    if "*" in items:
        if len(items) > 1:
            raise ValueError(f"scope {text.strip()!r}: '*' already covers every rule; give it alone")
        return ("*",)
    if known is not None:  # the structural detectors' ids are always in force
        known = set(known) | STRUCTURE_RULE_IDS
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
        return (datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) - EPOCH) // MS
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expiry {text!r} is not an ISO date (2025-12-31) or date-time "
                         "(2025-12-31T18:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MS


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
        try:  # no aliases, bounded size: a sidecar is re-read by hot reload (pipeline.yamlsafe)
            data = plain(load_yaml_file(side)) or {}
        except YamlError as err:
            problems.append(str(err))
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
    lines = sorted("\t".join([a, ",".join(s), iso(x), r, c]) for a, s, x, r, c in kept)
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
