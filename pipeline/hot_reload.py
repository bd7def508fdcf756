"""Rule files and watchlists edited while the flow runs: reloaded in place, never a restart.

Why one object per process: Bytewax workers are threads of one process, and three kinds of
stateful step read what these files say -- the graph stage (which addresses are listed: exposure
starts there), the address shards (the rule set, whose ``listed(...)`` reads the lists) and the
pending pool (the feature-free rules). Each step calls :meth:`HotReload.poll` once per batch and
compares the objects it applied with :attr:`HotReload.ruleset` / :attr:`HotReload.watchlists`;
when they differ it swaps the new ones in between two batches, keeping its own state (features,
cooldowns, exposure). Polling costs one clock read until ``interval_s`` has passed, then a
``stat`` per file, once per process whatever the number of steps.

A reload that fails (a half-saved edit, a typo in a list) keeps what is in force and logs every
problem as ``file:line``: a monitor must not go blind, nor stop, because of an edit. Listeners
(the audit trail) hear about every rule set and watchlist snapshot put into service.

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

from pipeline.rules.reload import RuleWatcher
from pipeline.watchlists import WatchlistLoader, WatchlistSet

log = logging.getLogger(__name__)

Listener = Callable[[Any, WatchlistSet | None], None]  # (rule set or None, watchlists or None)


class HotReload:
    """The rule set and watchlists in force for this process; :meth:`poll` picks up edits.

    ``ruleset`` is the one loaded at start (``None``: no rules), ``rule_paths`` where it came
    from; ``lists`` the loader of the watchlist directory (``None``: no lists). ``interval_s`` is
    how often the files are looked at (0: at every poll; ``math.inf``: never). It holds a lock and
    file loaders, so it is not picklable: each process builds its own
    (:func:`pipeline.assemble.analytics_spec`), and a resumed step asks it for what is in force.
    """

    def __init__(self, ruleset: Any, rule_paths: Sequence[str | Path], lists: WatchlistLoader | None,
                 interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._rules = RuleWatcher(ruleset, rule_paths, interval_s=0.0) if ruleset is not None else None
        self._lists = lists
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
    def last_errors(self) -> list[str]:
        """Problems of the last failed reload (rules and lists), empty when the files are good."""
        errors = list(self._rules.last_errors) if self._rules is not None else []
        if self._lists is not None and self._lists.last_error:
            errors.append(self._lists.last_error)
        return errors

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(ruleset, watchlists)`` with what each successful reload puts in force
        (``None`` for the part that did not change)."""
        self._listeners.append(listener)

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
            if rules is None and lists is None:
                return
            self.reloads += 1
            for listener in self._listeners:
                listener(rules, lists)
