"""One address as an analyst needs to see it: lists, stored activity, alerts and feature history.

Why it exists: an alert says *that* an address scored; ``address_features`` holds *why* -- the
windowed features right after each of its blocks. This reads them back for one address, next to
the lists it is on, its alerts and its stored transfers, so "why did this address score as it
did, and since when" is one command (``run_pipeline.py address``) rather than four queries.

Every query filters on the table's leading key column (``address`` for ``address_features``,
``from_address``/``to_address`` bloom-filter indexes on ``transfers``) and is bounded by a limit
or an aggregate, so a profile costs the same on an hour of data as on a year.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.errors import ConfigError
from pipeline.records import FEATURE_NAMES, Kind
from pipeline.tron.address import to_base58
from pipeline.watchlists import WatchlistSet

# The features shown in the history table, with their short headers, in reading order: activity,
# counterparties, flow-through, then exposure. The full snapshot (every column) is in ``latest``.
HISTORY_COLUMNS = {"tx_in_count": "in", "tx_out_count": "out", "usd_in": "usd_in", "usd_out": "usd_out",
                   "fan_in_10m": "fan_in", "fan_out_10m": "fan_out", "pass_through_ratio": "pass",
                   "lookalike_count": "lookalike", "cycle_count": "cycles", "watch_hops": "hops",
                   "exposure_score": "exposure"}


def normalise(address: str) -> str:
    """Base58 form of ``address`` (base58 or 21-byte hex); an ``AddressError`` says what is wrong."""
    return to_base58(address.strip())


def _ms(value: Any) -> int:
    """Milliseconds since the epoch from a ClickHouse DateTime64 (a datetime) or a number."""
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)
    return int(value)


def profile(client: Any, database: str, address: str, lists: WatchlistSet | None = None,
            history: int = 20, alerts: int = 20) -> dict[str, Any]:
    """Everything stored about ``address``: a JSON-ready dict (times in ms since the epoch).

    ``history`` bounds the feature snapshots returned (newest first), ``alerts`` the alerts;
    both must be at least 1.
    """
    if history < 1 or alerts < 1:
        raise ConfigError(f"history and alerts must be at least 1, got {history} and {alerts}")
    address = normalise(address)
    params = {"a": address, "h": int(history), "n": int(alerts)}
    db = database

    snapshots = client.query(
        f"SELECT ts, block_number, {', '.join(FEATURE_NAMES)} FROM {db}.address_features FINAL "
        "WHERE address = %(a)s ORDER BY ts DESC, block_number DESC LIMIT %(h)s", parameters=params).result_rows
    count_row = client.query(f"SELECT count(), min(ts), max(ts) FROM {db}.address_features FINAL "
                             "WHERE address = %(a)s", parameters=params).result_rows[0]
    history_rows = [{"ts": _ms(r[0]), "block_number": int(r[1]), **dict(zip(FEATURE_NAMES, r[2:]))}
                    for r in snapshots]

    # USD: value that moved (successful value movements), not failed calls or frozen TRX;
    # counterparties: addresses only (a freeze has none)
    value = f"success AND kind IN ({', '.join(repr(k) for k in sorted(Kind.VALUE_MOVEMENTS))})"
    sent, received = (client.query(
        f"SELECT count(), countIf(success), sumIf(amount_usd, {value}), uniqExactIf({other}, {other} != ''), "
        f"min(ts), max(ts) FROM {db}.transfers FINAL WHERE {side} = %(a)s", parameters=params).result_rows[0]
        for side, other in (("from_address", "to_address"), ("to_address", "from_address")))

    # alerts withdrawn by a reorg ('dropped') are not the address's
    alert_rows = client.query(
        f"SELECT alert_id, ts, rule_id, severity, risk_score, status, title FROM {db}.alerts FINAL "
        "WHERE address = %(a)s AND status != 'dropped' ORDER BY ts DESC, alert_id LIMIT %(n)s",
        parameters=params).result_rows
    alert_total = client.query(f"SELECT count(), countIf(severity IN ('high', 'critical')) "
                               f"FROM {db}.alerts FINAL WHERE address = %(a)s AND status != 'dropped'",
                               parameters=params).result_rows[0]

    def side(row: tuple) -> dict[str, Any]:
        n, ok, usd, counterparties, first, last = row
        return {"transfers": int(n), "succeeded": int(ok), "usd": float(usd or 0.0),
                "counterparties": int(counterparties),
                "first_ts": _ms(first) if n else None, "last_ts": _ms(last) if n else None}

    entries = lists.entries_of(address) if lists is not None else ()
    return {
        "address": address,
        "lists": [{"list": e.list_name, "label": e.label, "severity": e.severity} for e in entries],
        "sent": side(sent),
        "received": side(received),
        "alerts": {"total": int(alert_total[0]), "high_or_critical": int(alert_total[1]),
                   "newest": [dict(zip(("alert_id", "ts", "rule_id", "severity", "risk_score", "status",
                                        "title"), (r[0], _ms(r[1]), *r[2:]))) for r in alert_rows]},
        "features": {"snapshots": int(count_row[0]),
                     "first_ts": _ms(count_row[1]) if count_row[0] else None,
                     "last_ts": _ms(count_row[2]) if count_row[0] else None,
                     "latest": history_rows[0] if history_rows else None,
                     "history": history_rows},
    }
