"""Hot reload of rule files for long-running mode.

The flow calls :meth:`RuleWatcher.poll` once per batch; it costs one monotonic-clock read until
the check interval has passed, then a ``stat`` of each rule file. A changed file is reloaded with
:func:`~pipeline.rules.engine.reload_ruleset`, so a broken edit leaves the old rules in force and
is reported in ``last_errors`` and the log instead of stopping the pipeline. Files are read through
:mod:`pipeline.yamlsafe`, so an edit cannot make a reload cost more than its size allows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import RuleError
from pipeline.rules.engine import RuleSet, reload_ruleset
from pipeline.rules.loader import rule_files
from pipeline.yamlsafe import MAX_BYTES

log = logging.getLogger(__name__)


class RuleWatcher:
    """Holds the current :class:`RuleSet` and swaps it when the rule files change on disk."""

    def __init__(self, ruleset: RuleSet, paths: Sequence[str | Path], interval_s: float = 5.0, *,
                 max_bytes: int = MAX_BYTES) -> None:
        self.ruleset = ruleset
        self.paths = list(paths)
        self.interval_s = interval_s
        self.max_bytes = max_bytes  # a larger rule file is refused unread (analytics.max_yaml_bytes)
        self.last_errors: list[str] = []
        self._next_check = time.monotonic() + interval_s
        self._signature = self._stat()

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = rule_files(self.paths)
        except RuleError:
            return ()
        out = []
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            out.append((str(f), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def poll(self, force: bool = False) -> bool:
        """Reload if the files changed; True when a new rule set is now in force."""
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self.interval_s
        signature = self._stat()
        if signature == self._signature and not force:
            return False
        self._signature = signature
        new, self.last_errors = reload_ruleset(self.ruleset, self.paths, max_bytes=self.max_bytes)
        changed = new is not self.ruleset
        self.ruleset = new
        return changed
