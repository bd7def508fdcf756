"""Evidence bundle per alert, written at detection time into ``evidence`` (keyed by alert_id).

The rolling windows forget; a regulator asks months later. So when alerts are committed, this
module copies what justified each one out of the live tables into one row: the triggering
transfer(s), the rule definition and version (or the model version and its feature explanation),
the subject's features at detection time, and its neighbourhood — transfers in the window touching
the subject (hop 1) and its direct counterparties (hop 2), capped at ``max_rows``.

It reads ``transfers`` and ``address_features``, which the writer flushes before ``alerts``
(see ``pipeline.sinks.writer.FLUSH_ORDER``), so called after an alerts commit it sees their data.
Work is per chunk of alerts: one query per hop per chunk, memory bounded by the chunk.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from pipeline.audit.chain import canonical_json
from pipeline.records import FEATURE_NAMES, Alert

log = logging.getLogger(__name__)

_CHUNK = 500
TRANSFER_COLUMNS = ("id", "kind", "tx_id", "block_number", "ts", "from_address", "to_address", "token",
                    "symbol", "amount_raw", "amount", "amount_usd", "success", "source")
_SELECT = ", ".join("toUnixTimestamp64Milli(ts) AS ts_ms" if c == "ts" else
                    "toString(amount_raw) AS amount_raw_text" if c == "amount_raw" else c
                    for c in TRANSFER_COLUMNS)


def rule_definitions(ruleset: Any) -> dict[str, dict[str, Any]]:
    """What each rule said when it fired, by rule id (from a loaded ``RuleSet``)."""
    out = {}
    for r in getattr(ruleset, "rules", ()) or ():
        out[r.id] = {"type": "rule", "id": r.id, "version": r.version, "title": r.title,
                     "description": r.description, "severity": r.severity, "condition": r.condition,
                     "kinds": list(r.kinds), "roles": list(r.roles), "subject": r.subject,
                     "cooldown_s": r.cooldown_s, "risk_score": r.risk_score, "where": f"{r.path}:{r.line}"}
    return out


def _definition(a: Alert, definitions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    known = definitions.get(a.rule_id)
    if known is not None and known.get("version", a.rule_version) == a.rule_version:
        return dict(known)
    try:
        details = orjson.loads(a.details) if a.details else {}
    except orjson.JSONDecodeError:
        details = {}
    if isinstance(details, dict) and "model_version" in details:
        return {"type": "model", "id": a.rule_id, "version": a.rule_version,
                "detector": details.get("detector"), "score": details.get("score"),
                "top_features": details.get("top_features")}
    return {"type": "rule", "id": a.rule_id, "version": a.rule_version, "definition": "not loaded"}


def _transfers(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(TRANSFER_COLUMNS, r)) for r in rows]


def build_evidence(client: Any, database: str, alerts: Sequence[Alert | tuple],
                   definitions: Mapping[str, Mapping[str, Any]] | None = None,
                   window_ms: int = 3_600_000, max_rows: int = 200) -> list[tuple]:
    """Evidence rows (``store.COLUMNS['evidence']`` order) for ``alerts``."""
    out: list[tuple] = []
    defs = definitions or {}
    now = time.time_ns() // 1_000_000
    items = [a if isinstance(a, Alert) else Alert(*a) for a in alerts]
    for i in range(0, len(items), _CHUNK):
        chunk = items[i:i + _CHUNK]
        lo, hi = min(a.ts for a in chunk) - window_ms, max(a.ts for a in chunk)
        trig = defaultdict(list)
        for t in _transfers(client.query(
                f"SELECT {_SELECT} FROM {database}.transfers WHERE tx_id IN %(t)s LIMIT 1 BY id",
                parameters={"t": sorted({a.tx_id for a in chunk})}).result_rows):
            trig[t["tx_id"]].append(t)
        windows = sorted({(a.address, a.ts - window_ms, a.ts) for a in chunk})
        hop1 = _around(client, database, windows, max_rows)
        cp_windows = sorted({(t["to_address"] if t["from_address"] == w[0] else t["from_address"], w[1], w[2])
                             for w, near in hop1.items() for t in near} - set(windows))
        hop2 = _around(client, database, cp_windows, 10)
        feats = _features(client, database, sorted({a.address for a in chunk}), lo, hi)
        for a in chunk:
            w = (a.address, a.ts - window_ms, a.ts)
            near = list(hop1.get(w, ()))
            seen = {t["id"] for t in near}
            for t in near[:]:
                cp = t["to_address"] if t["from_address"] == a.address else t["from_address"]
                for u in hop2.get((cp, w[1], w[2]), ()):
                    if len(near) >= max_rows:
                        break
                    if u["id"] not in seen:
                        seen.add(u["id"])
                        near.append({**u, "hop": 2})
            near = near[:max_rows]
            at = [f for f in feats.get(a.address, ()) if f["ts"] <= a.ts]
            features = max(at, key=lambda f: f["ts"]) if at else {}
            out.append((a.alert_id, a.ts, a.address, a.rule_id, a.rule_version, now,
                        canonical_json(trig.get(a.tx_id, [])), canonical_json(_definition(a, defs)),
                        canonical_json(features), canonical_json(near), len(near)))
    return out


def _around(client: Any, database: str, windows: Sequence[tuple[str, int, int]],
            per_window: int) -> dict[tuple[str, int, int], list[dict[str, Any]]]:
    """Transfers touching ``address`` within [lo, hi] for each window, newest first, at most
    ``per_window`` each. Windows are per alert, not per address: a busy address's newest rows over
    the whole chunk's span could all postdate one of its alerts."""
    found: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for i in range(0, len(windows), _CHUNK):
        part = list(windows[i:i + _CHUNK])
        addrs, los, his = [w[0] for w in part], [w[1] for w in part], [w[2] for w in part]
        rows = client.query(
            f"WITH {_array(addrs)} AS w_a, {_array(los)} AS w_lo, {_array(his)} AS w_hi "
            f"SELECT * FROM (SELECT k, {_SELECT} FROM {database}.transfers "
            "ARRAY JOIN arrayFilter(i -> (w_a[i] = from_address OR w_a[i] = to_address) "
            "AND toUnixTimestamp64Milli(ts) BETWEEN w_lo[i] AND w_hi[i], range(1, length(w_a) + 1)) AS k "
            "WHERE (from_address IN %(s)s OR to_address IN %(s)s) "
            "AND ts BETWEEN fromUnixTimestamp64Milli(toInt64(%(lo)s), 'UTC') "
            "AND fromUnixTimestamp64Milli(toInt64(%(hi)s), 'UTC') "
            "ORDER BY ts DESC LIMIT 1 BY k, id) ORDER BY ts_ms DESC, id LIMIT %(n)s BY k",
            parameters={"s": sorted(set(addrs)), "lo": min(los), "hi": max(his), "n": per_window}).result_rows
        for r in rows:
            found[part[r[0] - 1]].append({**dict(zip(TRANSFER_COLUMNS, r[1:])), "hop": 1})
    return found


def _array(values: Sequence[Any]) -> str:
    """A ClickHouse array literal of ints or of strings (quotes and backslashes escaped)."""
    if values and isinstance(values[0], str):
        return "[" + ",".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values) + "]"
    return "CAST([" + ",".join(str(int(v)) for v in values) + "], 'Array(Int64)')"


def _features(client: Any, database: str, addresses: list[str], lo: int, hi: int) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = defaultdict(list)
    cols = ", ".join(FEATURE_NAMES)
    for i in range(0, len(addresses), _CHUNK):
        rows = client.query(
            f"SELECT address, toUnixTimestamp64Milli(ts), block_number, {cols} FROM {database}.address_features "
            "WHERE address IN %(a)s AND ts BETWEEN fromUnixTimestamp64Milli(toInt64(%(lo)s), 'UTC') "
            "AND fromUnixTimestamp64Milli(toInt64(%(hi)s), 'UTC') ORDER BY ts DESC LIMIT 20 BY address",
            parameters={"a": addresses[i:i + _CHUNK], "lo": lo, "hi": hi}).result_rows
        for r in rows:
            found[r[0]].append({"ts": r[1], "block_number": r[2], "values": dict(zip(FEATURE_NAMES, r[3:]))})
    return found


EVIDENCE_HASHED = ("triggers", "definition", "features", "neighbourhood")  # in this order, \x1f-separated
EVIDENCE_DIGEST_SQL = "lower(hex(SHA256(concat(" + ", '\\x1f', ".join(EVIDENCE_HASHED) + "))))"


def evidence_sha256(row: Sequence[Any]) -> str:
    """Digest of an evidence row's content (``store.COLUMNS['evidence']`` order), chained in the
    alert's ``alert_created`` record. ClickHouse computes the same from the stored row
    (``EVIDENCE_DIGEST_SQL``), which is how ``audit verify`` sees an edited bundle (``created_at``
    is wall clock: not hashed)."""
    return hashlib.sha256("\x1f".join(row[6:10]).encode()).hexdigest()


def write_evidence(client: Any, database: str, alerts: Sequence[Alert | tuple],
                   definitions: Mapping[str, Mapping[str, Any]] | None = None,
                   window_ms: int = 3_600_000, max_rows: int = 200) -> dict[str, str]:
    """Build and insert the evidence of committed ``alerts``; returns its digest per alert id.

    Idempotent: ``evidence`` is a ReplacingMergeTree on alert_id (the hook writes a bundle only for
    alerts chained for the first time, so the chained digest is the stored bundle's).
    """
    from pipeline.audit.store import COLUMNS

    rows = build_evidence(client, database, alerts, definitions, window_ms, max_rows)
    if rows:
        client.insert(f"{database}.evidence", rows, column_names=COLUMNS["evidence"])
    return {r[0]: evidence_sha256(r) for r in rows}
