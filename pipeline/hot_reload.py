"""Rule files, watchlists and allow lists edited while the flow runs: reloaded in place, never a restart.

Why one object per process: Bytewax workers are threads of one process, and three kinds of
stateful step read what these files say -- the graph stage (which addresses are listed: exposure
starts there), the address shards (the rule set, whose ``listed(...)`` reads the lists) and the
pending pool (the feature-free rules); the allow lists are read by the rules (their cooldowns and
``allowlisted(...)``, through the rule set's ``env``) and by the scoring stage. Each step calls
:meth:`HotReload.poll` once per batch and compares the objects it applied with
:attr:`HotReload.ruleset` / :attr:`HotReload.watchlists` / :attr:`HotReload.allowlists`; when they
differ it swaps the new ones in between two batches, keeping its own state (features,
cooldowns, exposure). Polling costs one clock read until ``interval_s`` has passed, then a
``stat`` per file, once per process whatever the number of steps.

A reload that fails (a half-saved edit, a typo in a list) keeps what is in force and logs every
problem as ``file:line``: a monitor must not go blind, nor stop, because of an edit. Listeners
(the audit trail) hear about every rule set, watchlist and allow-list snapshot put into service.

Reloads happen at wall-clock moments, so which block is the first to see an edit depends on
timing; everything else stays a pure function of the input.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.allowlists import AllowlistLoader, AllowSet
from pipeline.rules.reload import RuleWatcher
from pipeline.watchlists import WatchlistLoader, WatchlistSet
from pipeline.yamlsafe import MAX_BYTES

log = logging.getLogger(__name__)

Listener = Callable[[Any, WatchlistSet | None], None]  # (rule set or None, watchlists or None)
AllowListener = Callable[[AllowSet], None]


class HotReload:
    """The rule set and watchlists in force for this process; :meth:`poll` picks up edits.

    ``ruleset`` is the one loaded at start (``None``: no rules), ``rule_paths`` where it came
    from; ``lists`` the loader of the watchlist directory (``None``: no lists); ``allow`` the loader
    of the allow-list directory (``None``: none), put into the rules' ``env``. ``interval_s`` is
    how often the files are looked at (0: at every poll; ``math.inf``: never). It holds a lock and
    file loaders, so it is not picklable: each process builds its own
    (:func:`pipeline.assemble.analytics_spec`), and a resumed step asks it for what is in force.
    """

    def __init__(self, ruleset: Any, rule_paths: Sequence[str | Path], lists: WatchlistLoader | None,
                 interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 allow: AllowlistLoader | None = None, *, max_yaml_bytes: int = MAX_BYTES) -> None:
        self._rules = (RuleWatcher(ruleset, rule_paths, interval_s=0.0, max_bytes=max_yaml_bytes)
                       if ruleset is not None else None)
        self._lists = lists
        self._allow = allow
        self._allow_listeners: list[AllowListener] = []
        if allow is not None and self._rules is not None:
            ruleset.env.allow = allow.current()
            allow.known_rules = self._rule_ids  # a reload checks scopes against the rules then in force
        self.interval_s = interval_s
        self._clock = clock
        self._next = clock() + interval_s
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self.reloads = 0  # successful swaps (rules or lists)

    @property
    def ruleset(self) -> Any:
        return self._rules.ruleset if self._rules is not None else None

    @property
    def watchlists(self) -> WatchlistSet | None:
        return self._lists.current() if self._lists is not None else None

    @property
    def allowlists(self) -> AllowSet | None:
        return self._allow.current() if self._allow is not None else None

    def _rule_ids(self) -> set[str]:
        return {r.id for r in self.ruleset.rules}

    @property
    def last_errors(self) -> list[str]:
        """Problems of the last failed reload (rules and lists), empty when the files are good."""
        errors = list(self._rules.last_errors) if self._rules is not None else []
        for loader in (self._lists, self._allow):
            if loader is not None and loader.last_error:
                errors.append(loader.last_error)
        return errors

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(ruleset, watchlists)`` with what each successful reload puts in force
        (``None`` for the part that did not change)."""
        self._listeners.append(listener)

    def subscribe_allowlists(self, listener: AllowListener) -> None:
        """Call ``listener(allowlists)`` with each allow-list snapshot a reload puts in force."""
        self._allow_listeners.append(listener)

    def poll(self) -> None:
        """Look at the files if ``interval_s`` has passed; put in force what changed and loads."""
        now = self._clock()
        if now < self._next:
            return
        with self._lock:
            if now < self._next:  # another worker thread looked meanwhile
                return
            self._next = now + self.interval_s
            lists = None
            if self._lists is not None and self._lists.maybe_reload():
                lists = self._lists.current()
                if self._rules is not None:  # the rules' listed(...) read the new lists at once
                    self._rules.ruleset.set_watchlists(lists)
                log.info("watchlists reloaded: %d addresses on %d list(s)", len(lists), len(lists.lists))
            rules = self._rules.ruleset if self._rules is not None and self._rules.poll(force=False) else None
            allow = None  # after the rules: an entry may name a rule added in the same edit
            if self._allow is not None and self._allow.maybe_reload():
                allow = self._allow.current()
                if self._rules is not None:  # the cooldowns and allowlisted(...) read it at once
                    self._rules.ruleset.env.allow = allow
                log.info("allow lists reloaded: %d entries for %d addresses on %d list(s)",
                         allow.size, len(allow), len(allow.lists))
            if rules is None and lists is None and allow is None:
                return
            self.reloads += 1
            if rules is not None or lists is not None:
                for listener in self._listeners:
                    listener(rules, lists)
            if allow is not None:
                for allow_listener in self._allow_listeners:
                    allow_listener(allow)
