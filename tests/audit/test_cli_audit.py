"""``alerts`` and ``audit`` as an analyst meets them: real subprocesses on their own chDB directory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SEED = textwrap.dedent("""
    import sys
    from pipeline.audit.hook import AuditHook
    from pipeline.sinks.writer import ClickHouseWriter
    from pipeline.storage.clickhouse import open_storage
    from tests.audit.conftest import make_alert
    dsn = sys.argv[1]
    client, d = open_storage(dsn)
    hook = AuditHook(dsn)
    w = ClickHouseWriter(client, d.database, on_commit=hook)
    w.add("alerts", [make_alert(i) for i in range(3)])
    w.flush()
    hook.close()
""")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return _run(str(ROOT / "run_pipeline.py"), *args)


def test_review_export_and_verify_from_the_command_line(tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    seeded = _run("-c", SEED, dsn)
    assert seeded.returncode == 0, seeded.stderr

    closed = _cli("alerts", "close", "alert0001", "--disposition", "true_positive", "--by", "carol",
                  "--note", "matches the typology", "--clickhouse", dsn)
    assert closed.returncode == 0, closed.stderr
    assert "closed alert0001 as true_positive by carol (audit seq 4)" in closed.stdout

    listed = _cli("alerts", "list", "--clickhouse", dsn)
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("alert0001"))
    assert "closed true_positive by carol" in line
    assert "open" in next(ln for ln in listed.stdout.splitlines() if ln.startswith("alert0002"))

    shown = _cli("alerts", "show", "alert0001", "--clickhouse", dsn)
    assert shown.returncode == 0, shown.stderr
    for needle in ('"transfer_id": "tx:0"', "evidence bundle", "review history (1)", "disposition  by carol",
                   "alert_created"):
        assert needle in shown.stdout, needle

    out = tmp_path / "export"
    exported = _cli("audit", "export", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "parquet",
                    "--out", str(out), "--by", "auditor", "--clickhouse", dsn)
    assert exported.returncode == 0, exported.stderr
    assert "exported 4 audit records" in exported.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == 4 and manifest["head"]["seq"] == 4

    ok = _cli("audit", "verify", str(out), "--clickhouse", dsn)
    assert ok.returncode == 0 and "ok:" in ok.stdout, ok.stderr
    whole = _cli("audit", "verify", "--clickhouse", dsn)
    assert whole.returncode == 0 and "5 records" in whole.stdout, whole.stderr

    manifest["records"] = 3
    (out / "manifest.json").write_text(json.dumps(manifest))
    bad = _cli("audit", "verify", str(out))
    assert bad.returncode == 1 and bad.stderr.startswith("TAMPERED:") and "manifest" in bad.stderr

    missing = _cli("alerts", "show", "nope", "--clickhouse", dsn)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: alert nope: not found in tronrisk.alerts"
