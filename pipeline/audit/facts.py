"""Builders of audit records for each kind of fact, with their deterministic ids.

The id says what makes a fact *the same fact* on a replay: an alert reaching a status (alert id +
status), a rule or model version being loaded (id + version), a ticket delivered (alert id +
endpoint), an analyst action (alert id + time + analyst), an export (manifest digest).

Alerts are the one case whose kind depends on history: the first status chained for an alert id is
``alert_created``, any later one ``alert_status_changed``; the appender decides (it knows the chain).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from pipeline.audit.chain import AuditRecord, Kind, canonical_json, make_record
from pipeline.records import Alert

ALERT_FACT = "alert_status"  # the id namespace shared by alert_created and alert_status_changed


def details_sha256(details: str) -> str:
    """SHA-256 of an alert's ``details`` JSON as stored (ClickHouse: ``lower(hex(SHA256(details)))``)."""
    return hashlib.sha256(details.encode()).hexdigest()


def alert_record(alert: Alert | tuple, evidence_sha256: str = "", reconciled: bool = False) -> AuditRecord:
    """``alert_created`` for now; :class:`AuditAppender` relabels a later status as a change.

    The payload carries what the alert decided (severity, score, rule version) and a digest of its
    ``details`` — and, once the evidence bundle is written, of the bundle — so neither can be edited
    in ClickHouse without ``audit verify`` seeing it. The id includes a digest of the decision: a
    replay that decides the same thing is the same fact; one that decides differently (an edited
    rule) is chained as a change instead of being silently absorbed. ``reconciled``: chained at a
    later start because the alert was stored but its record was lost (see ``reconcile``).
    """
    a = Alert(*alert) if not isinstance(alert, Alert) else alert
    risk = round(float(a.risk_score), 4)
    digest = details_sha256(a.details)
    payload = {"status": a.status, "ts": a.ts, "detected_at": a.detected_at,
               "block_number": a.block_number, "tx_id": a.tx_id, "rule_id": a.rule_id,
               "rule_version": a.rule_version, "severity": a.severity,
               "risk_score": risk, "source": a.source, "details_sha256": digest}
    if evidence_sha256:
        payload["evidence_sha256"] = evidence_sha256
    if reconciled:
        payload["reconciled"] = True
    decision = f"{a.rule_version}\x1f{a.severity}\x1f{risk:.2f}\x1f{digest}"
    return make_record(Kind.ALERT_CREATED, a.alert_id, payload, ALERT_FACT, a.status,
                       hashlib.sha256(decision.encode()).hexdigest()[:16], address=a.address,
                       actor="reconcile" if reconciled else "pipeline")


def with_evidence(record: AuditRecord, evidence_sha256: str) -> AuditRecord:
    """The same fact with the digest of the evidence bundle written for it (same record id)."""
    payload = orjson.loads(record.payload)
    payload["evidence_sha256"] = evidence_sha256
    return record._replace(payload=canonical_json(payload))


def alert_records(alerts: Iterable[Alert | tuple]) -> list[AuditRecord]:
    return [alert_record(a) for a in alerts]


def rules_loaded_records(ruleset: Any) -> list[AuditRecord]:
    """One record per rule version loaded (RuleSet.rules have ``.version``, content-derived)."""
    out = []
    for rule in getattr(ruleset, "rules", ()) or ():
        payload = {"rule_id": rule.id, "version": rule.version, "severity": rule.severity,
                   "enabled": bool(rule.enabled), "where": f"{rule.path}:{rule.line}"}
        out.append(make_record(Kind.RULES_LOADED, rule.id, payload, rule.version))
    return out


def watchlist_loaded_records(watchlists: Any) -> list[AuditRecord]:
    """One record per list in force (a ``WatchlistSet``), versioned by a SHA-256 of its sorted
    addresses: which sanctions list an alert was (or was not) raised against is itself evidence."""
    members: dict[str, list[str]] = {name: [] for name in watchlists.lists}
    for address in watchlists:
        for entry in watchlists.entries_of(address):
            members[entry.list_name].append(address)
    out = []
    for name, info in sorted(watchlists.lists.items()):
        digest = hashlib.sha256("\n".join(sorted(members[name])).encode()).hexdigest()
        payload = {"list": name, "label": info.label, "severity": info.severity,
                   "addresses": len(members[name]), "sha256": digest, "path": str(info.path)}
        out.append(make_record(Kind.WATCHLIST_LOADED, name, payload, digest))
    return out


def allowlist_loaded_records(allowlists: Any) -> list[AuditRecord]:
    """One record per allow list in force (an ``AllowSet``), versioned by the SHA-256 of its entries
    (address, scope, expiry, reason, category): what was suppressed, and why, is evidence too."""
    out = []
    for name, info in sorted(allowlists.lists.items()):
        payload = {"list": name, "entries": info.entries, "sha256": info.sha256, "path": str(info.path)}
        out.append(make_record(Kind.ALLOWLIST_LOADED, name, payload, info.sha256))
    return out


def model_loaded_record(name: str, version: str, card: Mapping[str, Any] | None = None) -> AuditRecord:
    """A model version (content-derived id from its card) being put into service."""
    payload = {"model": name, "version": version}
    if card:
        payload.update({k: card[k] for k in ("detector", "features", "libraries") if k in card})
    return make_record(Kind.MODEL_LOADED, name, payload, version)


def ticket_delivered_record(alert_id: str, endpoint: str, status: int | str, attempts: int,
                            address: str = "", external_id: str = "") -> AuditRecord:
    """A ticket delivered for an alert: ``endpoint`` is the destination's name (never its URL,
    which may carry a token), ``external_id`` the tracker's ticket id."""
    payload = {"endpoint": endpoint, "status": status, "attempts": attempts}
    if external_id:
        payload["external_id"] = external_id
    return make_record(Kind.TICKET_DELIVERED, alert_id, payload, endpoint, address=address)


def disposition_record(alert_id: str, address: str, action: str, disposition: str, analyst: str,
                       note: str, at: int) -> AuditRecord:
    payload = {"action": action, "disposition": disposition, "note": note, "at": at}
    return make_record(Kind.DISPOSITION, alert_id, payload, action, disposition, analyst, at,
                       address=address, actor=analyst)


def export_record(manifest_sha256: str, summary: Mapping[str, Any], actor: str) -> AuditRecord:
    return make_record(Kind.EXPORT, manifest_sha256, dict(summary), actor=actor)
