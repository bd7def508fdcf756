"""The readable end-of-run summary: what was ingested, what was found, where it is.

Counts are read back from ClickHouse with ``FINAL`` (the tables deduplicate on ids), so the
summary shows what is stored, not what the run believes it sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.records import SEVERITIES
from pipeline.storage.clickhouse import Dsn


@dataclass
class RunStats:
    """What the running flow observed; filled by callbacks from the dataflow."""

    blocks: int = 0
    transactions: int = 0
    records: int = 0
    dead_letters: int = 0
    committed: dict[str, int] = field(default_factory=dict)

    def on_commit(self, written: dict[str, list[tuple]]) -> None:
        for table, rows in written.items():
            self.committed[table] = self.committed.get(table, 0) + len(rows)


def stored_counts(client: Any) -> dict[str, Any]:
    q = client.query
    out: dict[str, Any] = {}
    out["blocks"], out["first_block"], out["last_block"], out["transactions"] = q(
        "SELECT count(), min(number), max(number), sum(tx_count) FROM blocks FINAL WHERE orphaned = 0").result_rows[0]
    out["kinds"] = q("SELECT kind, count() AS n, countIf(NOT success) FROM transfers FINAL "
                     "GROUP BY kind ORDER BY n DESC").result_rows
    out["tokens"] = q("SELECT symbol, token, count() AS n, sum(amount), sum(amount_usd) FROM transfers FINAL "
                      "WHERE kind IN ('trx_transfer','trc10_transfer','trc20_transfer','trc20_transfer_from') "
                      "AND success GROUP BY symbol, token ORDER BY sum(amount_usd) DESC, n DESC LIMIT 8").result_rows
    out["alerts"] = dict(q("SELECT severity, count() FROM alerts FINAL GROUP BY severity").result_rows)
    out["top_rules"] = q("SELECT rule_id, count() AS n FROM alerts FINAL GROUP BY rule_id "
                         "ORDER BY n DESC LIMIT 8").result_rows
    out["suppressed"] = q("SELECT rule_id, list_name, count() AS n FROM suppressed_alerts FINAL "
                          "GROUP BY rule_id, list_name ORDER BY n DESC, rule_id, list_name").result_rows
    out["dead_letters"] = q("SELECT count() FROM dead_letters FINAL").result_rows[0][0]
    out["dead_reasons"] = q("SELECT reason, count() AS n FROM dead_letters FINAL GROUP BY reason "
                            "ORDER BY n DESC LIMIT 5").result_rows
    return out


def render(counts: dict[str, Any], dsn: Dsn, seconds: float, stats: RunStats) -> str:
    lines = []
    rate = stats.transactions / seconds if seconds > 0 else 0.0
    lines.append(f"Ingested {stats.blocks:,} blocks, {stats.transactions:,} transactions "
                 f"in {seconds:.1f} s ({rate:,.0f} tx/s).")
    if counts["blocks"]:
        lines.append(f"Stored: {counts['blocks']:,} blocks ({counts['first_block']:,} .. {counts['last_block']:,}).")
    lines.append("")
    lines.append("Records by kind                     count   failed")
    for kind, n, failed in counts["kinds"]:
        lines.append(f"  {kind:<30} {n:>9,} {failed:>8,}")
    if counts["tokens"]:
        lines.append("")
        lines.append("Tokens moved (successful)     transfers            amount          USD")
        for symbol, token, n, amount, usd in counts["tokens"]:
            label = symbol or token[:12]
            lines.append(f"  {label:<26} {n:>10,} {amount:>17,.2f} {usd:>12,.0f}")
    lines.append("")
    alerts = counts["alerts"]
    total = sum(alerts.values())
    by_sev = ", ".join(f"{s} {alerts.get(s, 0):,}" for s in reversed(SEVERITIES))
    lines.append(f"Alerts: {total:,} ({by_sev})")
    for rule, n in counts["top_rules"]:
        lines.append(f"  {rule:<40} {n:>8,}")
    suppressed = counts.get("suppressed") or []
    if suppressed:  # what the allow lists (rules/allow/) kept out of the alerts, per rule and list
        total = sum(n for _, _, n in suppressed)
        lines.append(f"Suppressed by allow lists: {total:,} (not alerted, not ticketed)")
        for rule, name, n in suppressed[:8]:
            lines.append(f"  {rule + ' / ' + name:<40} {n:>8,}")
    lines.append(f"Dead letters: {counts['dead_letters']:,}")
    for reason, n in counts["dead_reasons"]:
        lines.append(f"  {n:>6,}  {reason[:100]}")
    lines.append("")
    lines.append(f"Data: {dsn.redacted()}")
    if dsn.embedded:
        lines.append("Query it (embedded chDB; no other process may hold the directory meanwhile):")
        lines.append(f"  python -c \"import clickhouse_connect as c; print(c.get_client(interface='chdb', "
                     f"path='{dsn.path}').query('SELECT rule_id, count() FROM {dsn.database}.alerts FINAL "
                     f"GROUP BY rule_id').result_rows)\"")
    else:
        lines.append(f"Query it: clickhouse client --host {dsn.host} -d {dsn.database} "
                     "-q 'SELECT rule_id, count() FROM alerts FINAL GROUP BY rule_id'")
    return "\n".join(lines)
