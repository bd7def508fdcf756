"""``audit``: export the hash-chained audit log and verify exports or the stored chain.

* ``audit export --from T --to T [--address A] --format csv|jsonl|parquet --out DIR``: streams the
  records recorded in [from, to) to files plus ``manifest.json``, and chains an ``export`` record.
* ``audit verify DIR [--clickhouse DSN]``: recompute the chain in an export (and, with a DSN,
  check the manifest against the stored chain); ``audit verify --clickhouse DSN``: the whole
  stored chain, its signed heads (database and head files) and the stored alerts and evidence
  against it. Exit 0 when intact; 1 naming the first record modified, removed, inserted or
  reordered, a bad signature, or an unsigned tail longer than ``audit.max_unsigned_tail``.
* ``audit keygen --out DIR``: a new Ed25519 key pair for signing the chain's heads.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime

from pipeline.errors import ConfigError


def parse_time(text: str | None, flag: str) -> int | None:
    """ISO date or date-time (UTC unless an offset is given) or ms since epoch -> ms."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected an ISO date/time (2026-01-31, 2026-01-31T12:00) "
                          "or milliseconds since the epoch") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audit", help="export and verify the tamper-evident audit trail",
                              description="Export the hash-chained audit log; verify exports or the stored chain.")
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    e = sub.add_parser("export", help="stream audit records to files plus manifest.json",
                       description="Stream the audit records recorded in [--from, --to) (optionally about "
                                   "one address) to DIR as csv, jsonl or parquet, with manifest.json "
                                   "(files, SHA-256, row counts, chain head, query). The export is chained.")
    e.add_argument("--from", dest="from_", metavar="TIME", help="start (inclusive), ISO UTC or ms")
    e.add_argument("--to", metavar="TIME", help="end (exclusive), ISO UTC or ms")
    e.add_argument("--address", help="only records about this address (base58)")
    e.add_argument("--format", required=True, choices=("csv", "jsonl", "parquet"))
    e.add_argument("--out", required=True, metavar="DIR", help="new or empty directory")
    e.add_argument("--rows-per-file", type=int, default=1_000_000, help="split files at N rows (default 1M)")
    e.add_argument("--by", metavar="NAME", help="who exports (default: the OS user)")
    _storage_flags(e)
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("verify", help="recompute the chain of an export or of the stored log",
                       description="Verify an export directory (files, manifest, chain) or, with only "
                                   "--clickhouse, the whole stored chain and its recorded heads. Names the "
                                   "first record modified, removed, inserted or reordered.")
    v.add_argument("dir", nargs="?", metavar="DIR", help="an export directory")
    v.add_argument("--public-key", metavar="FILE",
                   help="the audit public key (default: [audit] verify_key_file, else the signing key's)")
    v.add_argument("--heads-dir", metavar="DIR", help="signed head files (default: [audit] heads_dir)")
    v.add_argument("--max-unsigned-tail", type=int, metavar="N",
                   help="records after the last signed head to accept ([audit] max_unsigned_tail, 0)")
    _storage_flags(v)
    v.set_defaults(func=cmd_verify)

    k = sub.add_parser("keygen", help="make an Ed25519 key pair that signs the audit chain's heads",
                       description="Write DIR/signing.key (private, mode 0600) and DIR/signing.pub. Keep the "
                                   "private key where ClickHouse's writers cannot reach it and point [audit] "
                                   "signing_key_file at it; give auditors the public key.")
    k.add_argument("--out", required=True, metavar="DIR",
                   help="directory for the two files (never overwritten)")
    k.set_defaults(func=cmd_keygen)


def _storage_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clickhouse", metavar="DSN",
                   help="chdb://PATH (default from settings, chdb://./data/chdb) or http(s)://user:pw@host:port/db")
    p.add_argument("--config", metavar="FILE", help="TOML settings file (default ./tronrisk.toml if present)")


def _open(args: argparse.Namespace):
    client, db, _ = _open_with_settings(args)
    return client, db


def _open_with_settings(args: argparse.Namespace):
    from pipeline.config import load_settings
    from pipeline.storage.clickhouse import open_storage

    overrides = {"clickhouse.dsn": args.clickhouse,
                 "audit.verify_key_file": getattr(args, "public_key", None),
                 "audit.heads_dir": getattr(args, "heads_dir", None),
                 "audit.max_unsigned_tail": getattr(args, "max_unsigned_tail", None)}
    settings = load_settings(args.config, overrides=overrides)
    client, dsn = open_storage(settings.clickhouse.dsn)
    return client, dsn.database, settings


def cmd_export(args: argparse.Namespace) -> int:
    import time

    from pipeline.audit.export import export_audit

    from_ms, to_ms = parse_time(args.from_, "--from"), parse_time(args.to, "--to")
    if from_ms is not None and to_ms is not None and from_ms >= to_ms:
        raise ConfigError("--from must be before --to")
    if args.rows_per_file < 1:
        raise ConfigError("--rows-per-file must be >= 1")
    from pipeline.audit.keys import signing_for

    client, db, settings = _open_with_settings(args)
    started = time.monotonic()
    m = export_audit(client, db, args.out, args.format, from_ms, to_ms, args.address,
                     actor=args.by or getpass.getuser(), rows_per_file=args.rows_per_file,
                     signing=signing_for(settings.audit, settings.clickhouse.dsn))
    seconds = time.monotonic() - started
    print(f"exported {m['records']:,} audit records to {args.out} in {len(m['files'])} file(s) "
          f"({seconds:.1f} s); chain head seq {m['head']['seq']} {m['head']['hash'][:16]}…; "
          f"manifest {m['manifest_sha256'][:16]}…")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.audit.check import verify_clickhouse, verify_dir

    if args.dir is None and args.clickhouse is None:
        raise ConfigError("audit verify: give an export DIR, or --clickhouse DSN to verify the stored chain")
    if args.dir is not None:
        client, db = _open(args) if args.clickhouse else (None, "")
        result = verify_dir(args.dir, client, db)
    else:
        from pipeline.audit.keys import heads_dir_for, load_verifier

        client, db, settings = _open_with_settings(args)
        a, dsn = settings.audit, settings.clickhouse.dsn
        result = verify_clickhouse(client, db, load_verifier(a, dsn), heads_dir_for(a, dsn),
                                   a.max_unsigned_tail)
    for note in result.notes:
        print(f"note: {note}")
    if result.ok:
        c = result.chain
        print(f"ok: {result.what}: {c.records:,} records, seq {c.first_seq}..{c.last_seq} intact, "
              f"last hash {c.last_hash[:16]}…")
        return 0
    print(f"TAMPERED: {result.what}: {result.first}", file=sys.stderr)
    for extra in result.problems[1:]:
        print(f"  also: {extra}", file=sys.stderr)
    return 1


def cmd_keygen(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.audit.keys import generate_keypair

    private, public, kid = generate_keypair(Path(args.out))
    print(f"audit signing key {private} (mode 0600) and public key {public}, key id {kid}")
    print(f"set [audit] signing_key_file = \"{private}\" where the pipeline runs, and give auditors {public}")
    return 0
