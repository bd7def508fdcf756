"""Watchlists: files of known-bad (or known-interesting) addresses under ``rules/lists/``.

Formats, one list per file, named by the file stem:

* ``NAME.txt``: one address per line (base58 ``T…`` or 21-byte hex ``41…``); ``#`` starts a
  comment, blank lines are ignored. Label and severity come from an optional sidecar
  ``NAME.yaml`` (``label:``, ``severity:``, any other keys such as ``source`` are kept as
  metadata); without one the label is the stem and the severity ``high``.
* ``NAME.csv``: header ``address,label,severity`` (label and severity optional per row, falling
  back to the sidecar or the defaults), ``#`` comment lines allowed.

Files whose names start with ``LICENSE``, ``README`` or ``NOTICE`` are attribution, not lists.

Why every bad line is an error: a typo in a sanctions list silently dropped is a sanctioned
address never flagged. :func:`load_watchlists` collects every problem as ``file:line: reason``;
strict mode (the default) raises one :class:`ConfigError` listing them all, lenient mode keeps
the good lines, logs each problem and exposes them in ``WatchlistSet.problems``.

A :class:`WatchlistSet` is an immutable snapshot; :class:`WatchlistLoader` re-reads the directory
when a file's mtime or size changes and hands out a new snapshot, so lists reload without a
restart (and a broken edit keeps the last good snapshot, logged, rather than stopping the flow).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from pipeline.errors import AddressError, ConfigError, PipelineError
from pipeline.records import SEVERITIES
from pipeline.tron.address import to_base58
from pipeline.yamlsafe import YamlError, load_yaml_file, plain

log = logging.getLogger(__name__)

DEFAULT_SEVERITY = "high"
_SKIP_PREFIXES = ("license", "readme", "notice")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True, slots=True)
class Entry:
    """One address on one list."""

    list_name: str
    label: str
    severity: str


@dataclass(frozen=True, slots=True)
class ListInfo:
    name: str
    label: str
    severity: str
    path: str
    size: int
    meta: Mapping[str, object] = field(default_factory=dict)


class WatchlistSet:
    """Immutable snapshot of every list. ``address in snapshot`` is a frozenset lookup."""

    def __init__(self, entries: Mapping[str, tuple[Entry, ...]], lists: Mapping[str, ListInfo],
                 problems: tuple[str, ...] = ()) -> None:
        self._entries = MappingProxyType(dict(entries))
        self.lists = MappingProxyType(dict(lists))
        self.addresses: frozenset[str] = frozenset(self._entries)
        self.problems = problems

    def __reduce__(self) -> tuple:  # picklable for Bytewax snapshots despite the read-only views
        return (WatchlistSet, (dict(self._entries), dict(self.lists), self.problems))

    def __contains__(self, address: object) -> bool:
        return address in self.addresses

    def __iter__(self) -> Iterator[str]:
        return iter(self.addresses)

    def __len__(self) -> int:
        return len(self.addresses)

    def entries_of(self, address: str) -> tuple[Entry, ...]:
        return self._entries.get(address, ())

    def lists_of(self, address: str) -> tuple[str, ...]:
        """Names of the lists holding ``address`` (sorted), ``()`` when none."""
        return tuple(e.list_name for e in self._entries.get(address, ()))

    def labels_of(self, address: str) -> tuple[str, ...]:
        return tuple(e.label for e in self._entries.get(address, ()))

    def severity_of(self, address: str) -> str | None:
        """The highest severity of any list entry for ``address``; None when not listed."""
        entries = self._entries.get(address)
        if not entries:
            return None
        return max((e.severity for e in entries), key=_SEVERITY_RANK.__getitem__)

    def label(self, list_name: str) -> str:
        return self.lists[list_name].label

    def severity(self, list_name: str) -> str:
        return self.lists[list_name].severity


def _skip(path: Path) -> bool:
    return path.name.lower().startswith(_SKIP_PREFIXES)


def _list_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigError(f"{directory}: watchlist directory does not exist")
    return sorted(p for p in directory.iterdir()
                  if p.suffix.lower() in (".txt", ".csv") and p.is_file() and not _skip(p))


def _sidecar(path: Path, problems: list[str]) -> tuple[str, str, dict[str, object]]:
    label, severity, meta = path.stem, DEFAULT_SEVERITY, {}
    for ext in (".yaml", ".yml"):
        side = path.with_suffix(ext)
        if not side.is_file():
            continue
        try:  # no aliases, bounded size: a sidecar is re-read by hot reload (pipeline.yamlsafe)
            data = plain(load_yaml_file(side)) or {}
        except YamlError as err:
            problems.append(str(err))
            break
        if not isinstance(data, dict):
            problems.append(f"{side}:1: expected a mapping with label and severity")
            break
        meta = {str(k): v for k, v in data.items()}
        label = str(meta.pop("label", label))
        severity = str(meta.pop("severity", severity)).lower()
        if severity not in _SEVERITY_RANK:
            problems.append(f"{side}:1: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
            severity = DEFAULT_SEVERITY
        break
    return label, severity, meta


def _rows(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of the data lines of a TXT or CSV list."""
    if path.suffix.lower() == ".txt":
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                yield n, [line]
        return
    lines = text.splitlines()
    reader = csv.reader(io.StringIO("\n".join(lines)))
    for n, row in enumerate(reader, 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if n == 1 and row[0].strip().lower() == "address":
            continue
        yield n, [c.strip() for c in row]


def _load_file(path: Path, entries: dict[str, list[Entry]], problems: list[str]) -> ListInfo:
    label, severity, meta = _sidecar(path, problems)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path}:1: cannot read: {err}")
        return ListInfo(path.stem, label, severity, str(path), 0, meta)
    seen: set[str] = set()
    for n, fields in _rows(path, text):
        raw = fields[0]
        try:
            address = to_base58(raw)
        except AddressError as err:
            problems.append(f"{path}:{n}: invalid address {raw!r} ({err})")
            continue
        row_label = fields[1] if len(fields) > 1 and fields[1] else label
        row_sev = fields[2].lower() if len(fields) > 2 and fields[2] else severity
        if row_sev not in _SEVERITY_RANK:
            problems.append(f"{path}:{n}: severity {row_sev!r} is not one of {', '.join(SEVERITIES)}")
            continue
        if address in seen:
            continue  # duplicates inside one list are harmless
        seen.add(address)
        entries.setdefault(address, []).append(Entry(path.stem, row_label, row_sev))
    return ListInfo(path.stem, label, severity, str(path), len(seen), meta)


def load_watchlists(directory: str | os.PathLike[str], strict: bool = True) -> WatchlistSet:
    """Load every list under ``directory``; see the module docstring for formats and errors."""
    entries: dict[str, list[Entry]] = {}
    problems: list[str] = []
    lists: dict[str, ListInfo] = {}
    for path in _list_files(Path(directory)):
        if path.stem in lists:
            problems.append(f"{path}:1: list name {path.stem!r} already used by {lists[path.stem].path}")
            continue
        lists[path.stem] = _load_file(path, entries, problems)
    if problems and strict:
        raise ConfigError(f"{len(problems)} problem(s) in watchlists: " + "; ".join(problems))
    for problem in problems:
        log.warning("watchlist: %s", problem)
    frozen = {a: tuple(sorted(es, key=lambda e: e.list_name)) for a, es in entries.items()}
    log.info("loaded %d watchlisted addresses from %d list(s) in %s", len(frozen), len(lists), directory)
    return WatchlistSet(frozen, lists, tuple(problems))


class WatchlistLoader:
    """Hands out the current snapshot and reloads it when the directory's files change.

    Change detection compares ``(name, mtime_ns, size)`` of every list and sidecar file; it costs
    one ``stat`` per file, so call :meth:`maybe_reload` once per batch, not per transfer.
    Subclasses load another kind of list from the same kind of directory (``_load``).
    """

    kind = "watchlist"

    def __init__(self, directory: str | os.PathLike[str], strict: bool = True,
                 min_interval_s: float = 5.0) -> None:
        self.directory = Path(directory)
        self.strict = strict
        self.min_interval_s = min_interval_s
        self._checked_at = time.monotonic()
        self.last_error: str | None = None
        self._signature = self._scan()
        self._current = self._load()  # the first load must succeed

    def current(self) -> WatchlistSet:
        return self._current

    def _load(self) -> WatchlistSet:
        return load_watchlists(self.directory, self.strict)

    def _scan(self) -> tuple[tuple[str, int, int], ...]:
        if not self.directory.is_dir():
            raise ConfigError(f"{self.directory}: {self.kind} directory does not exist")
        out = []
        for p in sorted(self.directory.iterdir()):
            if p.suffix.lower() in (".txt", ".csv", ".yaml", ".yml") and not _skip(p):
                st = p.stat()
                out.append((p.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def poll(self) -> WatchlistSet:
        """The current snapshot, checking the files at most every ``min_interval_s`` seconds.

        Cheap enough to call once per block from the flow (file polling is operations, not event
        time, so the monotonic clock is the right one here).
        """
        now = time.monotonic()
        if now - self._checked_at >= self.min_interval_s:
            self._checked_at = now
            self.maybe_reload()
        return self._current

    def maybe_reload(self) -> bool:
        """Reload if any file changed; True when a new snapshot is in place.

        A reload that fails keeps the previous snapshot and records the reason in ``last_error``
        (logged): a half-saved edit must not blind a running monitor.
        """
        try:  # the directory may be mid-deploy (renamed, a file half-replaced): never fatal here
            signature = self._scan()
            if signature == self._signature:
                return False
            self._signature = signature
            snapshot = self._load()
        except (PipelineError, OSError) as err:
            self.last_error = str(err)
            log.error("%s reload failed, keeping the previous lists: %s", self.kind, err)
            return False
        self.last_error = None
        self._current = snapshot
        return True
