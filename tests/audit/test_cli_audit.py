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


SEED_SIGNED = textwrap.dedent("""
    import sys
    from pipeline.audit.hook import AuditHook
    from pipeline.config import load_settings
    from pipeline.sinks.writer import ClickHouseWriter
    from pipeline.storage.clickhouse import open_storage
    from tests.audit.conftest import make_alert
    dsn, config = sys.argv[1], sys.argv[2]
    settings = load_settings(config, overrides={"clickhouse.dsn": dsn})
    client, d = open_storage(dsn)
    hook = AuditHook(dsn, evidence=False, audit=settings.audit)
    w = ClickHouseWriter(client, d.database, on_commit=hook)
    for batch in ([0, 1, 2, 3], [4, 5, 6], [7, 8, 9]):
        w.add("alerts", [make_alert(i) for i in batch])
        w.flush()
        hook.sync()
    hook.close()
""")
TAMPER = textwrap.dedent("""
    import sys
    from pipeline.storage.clickhouse import open_storage
    from tests.audit.test_signing import _rewrite_severity
    client, d = open_storage(sys.argv[1])
    _rewrite_severity(client, d.database, "alert0005", "low")
""")


def test_keygen_then_a_rewritten_chain_fails_verification_from_the_command_line(tmp_path):
    """Finding 8 end to end: the operator's own key pair, the review's attack, `audit verify`."""
    made = _cli("audit", "keygen", "--out", str(tmp_path / "keys"))
    assert made.returncode == 0 and "key id" in made.stdout, made.stderr
    config = tmp_path / "tronrisk.toml"
    config.write_text('[audit]\nsigning_key_file = "keys/signing.key"\nheads_dir = "heads"\n')  # relative to it
    dsn = f"chdb://{tmp_path / 'chdb'}"
    seeded = _run("-c", SEED_SIGNED, dsn, str(config))
    assert seeded.returncode == 0, seeded.stderr
    assert sorted(p.name for p in (tmp_path / "heads" / "tronrisk").iterdir())  # head files beside the key

    ok = _cli("audit", "verify", "--clickhouse", dsn, "--config", str(config))
    assert ok.returncode == 0 and "ok: tronrisk.audit_log: 10 records" in ok.stdout, ok.stderr

    tampered = _run("-c", TAMPER, dsn)
    assert tampered.returncode == 0, tampered.stderr
    bad = _cli("audit", "verify", "--clickhouse", dsn, "--config", str(config))
    assert bad.returncode == 1 and bad.stderr.startswith("TAMPERED: tronrisk.audit_log: modified: a record in seq 5..7")
    assert "bad signature" in bad.stderr  # the heads recomputed in the database carry signatures that no longer fit

    _cli("audit", "keygen", "--out", str(tmp_path / "other"))
    wrong = _cli("audit", "verify", "--clickhouse", dsn, "--config", str(config),
                 "--public-key", str(tmp_path / "other" / "signing.pub"))
    assert wrong.returncode == 1 and "names key" in wrong.stderr and "not signed by the audit key" in wrong.stderr
