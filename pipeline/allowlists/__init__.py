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

from pipeline.allowlists.entries import (
    COLUMNS,
    EMPTY,
    AllowEntry,
    AllowListInfo,
    AllowSet,
    Suppression,
    count,
    describe,
    suppress,
    suppressed_rows,
)
from pipeline.allowlists.files import (
    ANOMALY_PREFIX,
    FIELDS,
    AllowlistLoader,
    load_allowlists,
    make_entry,
    parse_expiry,
    parse_scope,
)

__all__ = [
    "ANOMALY_PREFIX", "COLUMNS", "EMPTY", "FIELDS", "AllowEntry", "AllowListInfo", "AllowSet", "AllowlistLoader",
    "Suppression", "count", "describe", "load_allowlists", "make_entry", "parse_expiry", "parse_scope",
    "suppress", "suppressed_rows",
]
