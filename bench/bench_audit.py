"""Audit export of >= 1M records in bounded memory: peak RSS and rows/s per format, then verify.

Usage: ``python bench/bench_audit.py [--records 1000000] [--formats jsonl,csv,parquet] [--dir DIR]
[--append-batches 50] [--batch 2000]``

1. Populates a fresh chDB directory with ``--records`` chained audit records (alert facts with
   realistic payloads), through ``AuditChain`` and 100k-row inserts (setup, timed separately).
2. For each format, runs ``audit export`` in a *fresh child process* that opens the storage,
   resets its peak RSS (``/proc/self/clear_refs``, so chDB's start-up peak is not counted), exports,
   and reports rows/s, peak RSS (VmHWM) and the growth over its RSS before the export — what the
   export itself holds.
3. Runs ``audit verify DIR`` on the last export in a child process (rows/s, peak RSS).
4. What signing costs the pipeline: ``--append-batches`` batches of ``--batch`` alert records
   appended through ``AuditAppender`` as the audit hook does, unsigned (a head every 1,000
   records) and signed (an Ed25519-signed head per batch, in ``audit_heads`` and a head file),
   each into a fresh database; then ``audit verify`` of the signed chain.

A small ``--records`` run next to a large one shows the peak does not grow with the export size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from pipeline.storage.clickhouse import open_storage
mode, dsn, arg = sys.argv[1], sys.argv[2], sys.argv[3]
client, d = open_storage(dsn)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
try:  # reset the peak (VmHWM) so it measures the export alone, not chDB start-up
    open("/proc/self/clear_refs", "w").write("5")
    reset = True
except OSError:
    reset = False
before = status("VmRSS")
t0 = time.perf_counter()
rows = 0
if mode == "export":
    from pipeline.audit.export import export_audit
    fmt, out = arg.split(":", 1)
    samples = {{}}
    total = int(client.query(f"SELECT count() FROM {{d.database}}.audit_log").result_rows[0][0])
    def on_rows(n):
        q = min(4, 4 * n // max(total, 1))
        if q and q not in samples:
            samples[q] = status("VmRSS")
    rows = export_audit(client, d.database, out, fmt, actor="bench", on_rows=on_rows)["records"]
elif mode == "open":
    time.sleep(2.0)  # chDB's own background work after start-up, for comparison
elif mode == "verify":
    from pipeline.audit.check import verify_dir
    r = verify_dir(arg)
    assert r.ok, r.problems
    rows = r.chain.records
seconds = time.perf_counter() - t0
print(json.dumps({{"rows": rows, "rss_quartiles": [samples.get(q) for q in (1, 2, 3, 4)] if mode == "export" else [], "seconds": seconds, "rss_before_mb": before, "reset": reset,
                  "peak_rss_mb": status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def populate(dsn: str, n: int) -> float:
    from pipeline.audit.chain import AuditChain
    from pipeline.audit.facts import alert_record
    from pipeline.audit.store import COLUMNS
    from pipeline.records import Alert
    from pipeline.storage.clickhouse import open_storage

    client, d = open_storage(dsn)
    chain = AuditChain()
    t0 = time.perf_counter()
    batch = 100_000
    for start in range(0, n, batch):
        recs = []
        for i in range(start, min(n, start + batch)):
            a = Alert(f"{i:032x}", 1_700_000_000_000 + i, 1_700_000_000_500 + i, 60_000_000 + i // 300,
                      f"{i * 7919:064x}", f"T{i % 50_000:033d}", "structuring.fan_in", "3f2a9c1d0b7e",
                      "high", 82.5, "confirmed", "block", "Fan-in", ("structuring",), "{}")
            recs.append(alert_record(a))
        client.insert(f"{d.database}.audit_log", chain.append(recs), column_names=COLUMNS["audit_log"])
    client.close()
    return time.perf_counter() - t0


def append_cost(work: Path, batches: int, size: int) -> None:
    """Per-batch cost of chaining alerts, unsigned vs signed (what the audit hook pays per batch).

    The two chains are appended in alternation, batch by batch, so load from other processes on
    the machine hits both alike."""
    from pipeline.audit.check import verify_clickhouse
    from pipeline.audit.facts import alert_records
    from pipeline.audit.keys import Signing, generate_keypair, load_public, load_signer
    from pipeline.audit.store import AuditAppender
    from pipeline.config import AuditSettings
    from pipeline.records import Alert
    from pipeline.storage.clickhouse import open_storage

    private, public, _ = generate_keypair(work / "keys")
    signing = Signing(load_signer(AuditSettings(signing_key_file=str(private)), "chdb://unused"), work / "heads")
    client, _ = open_storage(f"chdb://{work / 'chdb'}?database=append_unsigned")
    open_storage(f"chdb://{work / 'chdb'}?database=append_signed")
    apps = {"unsigned": AuditAppender(client, "append_unsigned"),
            "signed": AuditAppender(client, "append_signed", signing=signing)}
    times = dict.fromkeys(apps, 0.0)
    for b in range(batches):
        records = alert_records(
            Alert(f"{b:08x}{i:024x}", 1_700_000_000_000 + i, 1_700_000_000_500 + i, 60_000_000 + b, f"{i:064x}",
                  f"T{i % 5_000:033d}", "structuring.fan_in", "3f2a9c1d0b7e", "high", 82.5, "confirmed", "block",
                  "Fan-in", ("structuring",), '{"transfer_id":"x:0"}') for i in range(size))
        for name in (("unsigned", "signed") if b % 2 else ("signed", "unsigned")):
            t0 = time.perf_counter()
            apps[name].append(records)
            times[name] += time.perf_counter() - t0
    for name, app in apps.items():
        app.close()
        per = times[name] / batches
        heads = client.query(f"SELECT count() FROM {app.database}.audit_heads FINAL").result_rows[0][0]
        print(f"append {name:8s} {batches} batches x {size:,} records: {per * 1000:7.1f} ms/batch "
              f"({size / per:,.0f} records/s), {heads} heads")
    t0 = time.perf_counter()
    r = verify_clickhouse(client, "append_signed", load_public(public), work / "heads")
    assert r.ok, r.problems
    print(f"verify signed chain ({batches * size:,} records): {time.perf_counter() - t0:.1f} s")
    print(f"signing adds {(times['signed'] - times['unsigned']) / batches * 1000:+.1f} ms per committed batch")
    client.close()


def child(mode: str, dsn: str, arg: str) -> dict:
    code = CHILD.format(root=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, mode, dsn, arg], check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--formats", default="jsonl,csv,parquet")
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed at the end)")
    ap.add_argument("--append-batches", type=int, default=50, help="batches for the signing cost (0 = skip)")
    ap.add_argument("--batch", type=int, default=2000, help="alert records per batch (the hook's batch_alerts)")
    args = ap.parse_args()
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_audit_"))
    dsn = f"chdb://{work / 'chdb'}"
    try:
        print(f"populating {args.records:,} chained audit records ...", flush=True)
        secs = populate(dsn, args.records)
        print(f"  setup: {args.records / secs:,.0f} records/s chained and inserted ({secs:.1f} s)")
        base = child("open", dsn, "-")
        print(f"baseline (Python + chDB open, idle 2 s): RSS {base['rss_before_mb']:.0f} MB, peak "
              f"{base['peak_rss_mb']:.0f} MB (+{base['peak_rss_mb'] - base['rss_before_mb']:.0f} MB)"
              + ("" if base["reset"] else " (peak RSS could not be reset: figures include start-up)"))
        last = None
        for fmt in args.formats.split(","):
            out = work / f"export_{fmt}"
            r = child("export", dsn, f"{fmt}:{out}")
            size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
            print(f"export {fmt:8s} {r['rows']:>10,} rows  {r['rows'] / r['seconds']:>9,.0f} rows/s  "
                  f"{r['seconds']:6.1f} s  peak RSS {r['peak_rss_mb']:5.0f} MB "
                  f"(+{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB over its start)  files {size:,.0f} MB")
            print("         RSS at 25/50/75/100% of the rows: "
                  + " / ".join("-" if v is None else f"{v:.0f}" for v in r["rss_quartiles"]) + " MB")
            last = out
        if last is not None:
            r = child("verify", dsn, str(last))
            print(f"verify {last.name}: {r['rows']:,} rows  {r['rows'] / r['seconds']:,.0f} rows/s  "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB (+{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB over its start)")
        if args.append_batches > 0:
            append_cost(work, args.append_batches, args.batch)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
