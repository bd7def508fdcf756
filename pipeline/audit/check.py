"""``audit verify``: check an export directory or the stored chain, in bounded memory.

* ``verify_dir``: the manifest's own digest, each file's SHA-256 and row count, and the chain
  inside the files (each row's hash, links, the seqs the manifest says were exported); with a
  client, also that the manifest's digest was chained as an ``export`` record and that the
  exported head/first/last hashes are the stored chain's.
* ``verify_clickhouse``: the whole stored chain from seq 1; every head in ``audit_heads`` and in
  the head files, signatures checked with the public key (``anchors``); the unsigned tail; and the
  stored alerts and evidence bundles against their records (``consistency``).

Problems are listed most specific first: the first record that was touched, then file and
manifest findings (a modified row also changes its file's digest).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.audit.anchors import check_anchors
from pipeline.audit.chain import FIELDS, ChainRow, Kind
from pipeline.audit.consistency import check_alerts, check_evidence
from pipeline.audit.export import MANIFEST, export_query, manifest_digest
from pipeline.audit.formats import file_sha256, read_rows
from pipeline.audit.keys import HeadVerifier
from pipeline.audit.verify import ChainReport, Problem, verify_rows
from pipeline.errors import InputError


@dataclass
class VerifyResult:
    what: str
    chain: ChainReport
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


def load_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        manifest = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{path}: no manifest (is {directory} an audit export?)") from None
    except orjson.JSONDecodeError as err:
        raise InputError(f"{path}: not JSON ({err})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise InputError(f"{path}: not an audit export manifest (no files list)")
    return manifest


def verify_dir(directory: str | Path, client: Any = None, database: str = "") -> VerifyResult:
    d = Path(directory)
    m = load_manifest(d)
    fmt = m.get("format", "")
    result = VerifyResult(str(d), ChainReport())
    late: list[Problem] = []
    if manifest_digest(m) != m.get("manifest_sha256"):
        late.append(Problem("manifest", 0, "", f"manifest edited: {d / MANIFEST} does not match its "
                                               "manifest_sha256"))
    file_problems: list[Problem] = []

    def rows() -> Iterator[ChainRow]:
        for f in m["files"]:
            path = d / str(f.get("name", ""))
            if not path.is_file():
                file_problems.append(Problem("file", 0, "", f"removed: file {path.name} listed in the "
                                                            "manifest is missing"))
                continue
            n = 0
            for r in read_rows(path, fmt):
                n += 1
                yield r
            if n != f.get("rows"):
                file_problems.append(Problem("file", 0, "", f"file {path.name}: {n} rows, manifest says "
                                                            f"{f.get('rows')}"))

    first = m.get("first") or {}
    last = m.get("last") or {}
    ranges = m.get("seq_ranges")
    if ranges is None and first and last:  # too many ranges to list: check what can be checked
        result.notes.append("the manifest lists no seq ranges: gaps inside the export are not checked")
        ranges = [[first["seq"], last["seq"]]] if not (m.get("filters") or {}).get("address") else None
    result.chain = verify_rows(rows(), expected=ranges if ranges is not None else [],
                               first_prev_hash=first.get("prev_hash"))
    for f in m["files"]:  # digests of every file, even those the chain check stopped before
        path = d / str(f.get("name", ""))
        if path.is_file() and file_sha256(path) != f.get("sha256"):
            file_problems.append(Problem("file", 0, "", f"file {path.name}: SHA-256 differs from the manifest"))
    result.problems += result.chain.problems + file_problems
    if result.chain.ok and last and (result.chain.last_seq, result.chain.last_hash) != (last.get("seq"), last.get("hash")):
        late.append(Problem("manifest", result.chain.last_seq, "", "manifest edited: its last record "
                            f"(seq {last.get('seq')}) is not the export's (seq {result.chain.last_seq})"))
    if result.chain.records != m.get("records"):
        late.append(Problem("manifest", 0, "", f"manifest says {m.get('records')} records, the files "
                                               f"hold {result.chain.records}"))
    listed = {str(f.get("name")) for f in m["files"]} | {MANIFEST}
    for extra in sorted(p.name for p in d.iterdir() if p.name not in listed):
        result.notes.append(f"file {extra} is not listed in the manifest (ignored)")
    if client is not None:
        late += _against_storage(m, client, database or m.get("database", ""))
    result.problems += late
    return result


def _against_storage(m: dict[str, Any], client: Any, database: str) -> list[Problem]:
    out = []
    rec = client.query(f"SELECT seq FROM {database}.audit_log WHERE kind = %(k)s AND subject = %(s)s",
                       parameters={"k": Kind.EXPORT, "s": m.get("manifest_sha256", "")}).result_rows
    if not rec:
        out.append(Problem("manifest", 0, "", "manifest edited (or not made by this system): no export "
                                              f"record in {database}.audit_log carries its digest"))
    points = [("head", m.get("head") or {}, "hash"), ("last", m.get("last") or {}, "hash")]
    for name, point, key in points:
        if point.get("seq"):
            got = client.query(f"SELECT hash FROM {database}.audit_log WHERE seq = %(s)s",
                               parameters={"s": int(point["seq"])}).result_rows
            if not got or got[0][0] != point.get(key):
                out.append(Problem("manifest", int(point["seq"]), "", f"manifest {name} (seq {point['seq']}) "
                                                                      "does not match the stored chain"))
    want = export_query(database, int((m.get("head") or {}).get("seq", 0)), *(
        (m.get("filters") or {}).get(k) for k in ("from_ms", "to_ms", "address")))
    if want != m.get("query"):
        out.append(Problem("manifest", 0, "", "manifest edited: its query does not match its filters and head"))
    return out


def verify_clickhouse(client: Any, database: str, verifier: HeadVerifier | None = None,
                      heads_dir: Path | None = None, max_unsigned_tail: int = 0) -> VerifyResult:
    """The whole stored chain from seq 1; then its heads (signatures with ``verifier``, the head files
    in ``heads_dir``, the unsigned tail) and the stored alerts and evidence against it."""
    cols = ", ".join("toUnixTimestamp64Milli(ts)" if f == "ts" else f for f in FIELDS)

    def rows() -> Iterator[tuple]:
        with client.query_row_block_stream(f"SELECT {cols} FROM {database}.audit_log ORDER BY seq",
                                           settings={"max_threads": 1}) as s:
            for block in s:
                yield from block

    result = VerifyResult(f"{database}.audit_log", verify_rows(rows()))
    result.problems += result.chain.problems
    if result.chain.ok:
        anchors = check_anchors(client, database, result.chain.last_seq, verifier, heads_dir,
                                max_unsigned_tail)
        result.problems += anchors.problems
        result.notes += anchors.notes
    result.problems += check_alerts(client, database) + check_evidence(client, database)
    return result
