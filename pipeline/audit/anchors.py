"""Check the chain's signed heads: signatures, agreement with the chain, and the unsigned tail.

A recomputed chain is self-consistent, so only anchors the rewriter could not make tell: heads
signed with the audit key (:mod:`pipeline.audit.keys`), read from ``audit_heads`` and from the head
files outside the database. For each head:

* a signature that does not verify with the public key (or names another key) is a forgery:
  **bad signature**, naming the head and the record at its seq;
* a validly signed head whose hash is not the chain's at its seq means records up to it were
  rewritten (**modified**: the range between the last signed head that still matches and this
  one), or that the chain was cut (**removed**: the head is past its end);
* the records after the last valid signed head are the **unsigned tail**: anyone who can write the
  database could have rewritten them, so more than ``max_unsigned_tail`` fails verification.

Unsigned heads (written before signing existed, or by a forger) anchor nothing, but one that
disagrees with the chain is still reported. Memory: heads are read in pages of ``_PAGE`` (the
database) or one day-file at a time, and the chain rows they name are fetched per page.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.audit.keys import HeadVerifier, SignedHead, read_head_files
from pipeline.audit.verify import Problem

_PAGE = 5_000


@dataclass
class AnchorReport:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed: int = 0  # valid signed heads that match the chain
    last_signed: int = 0  # the highest seq such a head covers


def _db_heads(client: Any, database: str) -> Iterator[tuple[SignedHead, str]]:
    after = -1
    while True:
        rows = client.query(
            "SELECT seq, hash, toUnixTimestamp64Milli(recorded_at), key_id, signature "
            f"FROM {database}.audit_heads FINAL WHERE seq > %(a)s ORDER BY seq LIMIT %(n)s",
            parameters={"a": after, "n": _PAGE}).result_rows
        for r in rows:
            yield SignedHead(int(r[0]), r[1], int(r[2]), r[3], r[4]), f"{database}.audit_heads"
        if len(rows) < _PAGE:
            return
        after = int(rows[-1][0])


def _pages(heads: Iterable[tuple[SignedHead, str]]) -> Iterator[list[tuple[SignedHead, str]]]:
    page: list[tuple[SignedHead, str]] = []
    for h in heads:
        page.append(h)
        if len(page) >= _PAGE:
            yield page
            page = []
    if page:
        yield page


def _records(client: Any, database: str, seqs: list[int]) -> dict[int, tuple[str, str, str, str]]:
    """seq -> (hash, record_id, kind, subject) of the chain rows at ``seqs``."""
    if not seqs:
        return {}
    return {int(r[0]): (r[1], r[2], r[3], r[4]) for r in client.query(
        f"SELECT seq, hash, record_id, kind, subject FROM {database}.audit_log WHERE seq IN %(s)s",
        parameters={"s": sorted(set(seqs))}).result_rows}


def _name(seq: int, rec: tuple[str, str, str, str] | None) -> str:
    if rec is None:
        return f"seq {seq}"
    return f"seq {seq} (record_id {rec[1]}, kind {rec[2]}, subject {rec[3]})"


def check_anchors(client: Any, database: str, chain_last: int, verifier: HeadVerifier | None,
                  heads_dir: Path | None = None, max_unsigned_tail: int = 0) -> AnchorReport:
    """Check every head in ``audit_heads`` and in ``heads_dir`` against the (already recomputed)
    chain ending at ``chain_last``; ``verifier`` None checks hashes only (no signatures, no tail)."""
    report = AnchorReport()
    matched = array("q")  # seqs of valid signed heads that match the chain
    mismatched: list[tuple[int, str, tuple | None]] = []
    sources: list[Iterable[tuple[SignedHead, str]]] = [_db_heads(client, database)]
    if heads_dir is not None:
        if (heads_dir / database).is_dir():
            sources.append(read_head_files(heads_dir, database))
        else:
            report.notes.append(f"no head files in {heads_dir / database}: only the heads stored in "
                                f"{database}.audit_heads were checked")
    for source in sources:
        for page in _pages(source):
            recs = _records(client, database, [h.seq for h, _ in page if h.seq > 0])
            for head, where in page:
                _check_one(database, head, where, recs.get(head.seq), chain_last, verifier, report,
                           matched, mismatched)
    if mismatched:
        ordered = sorted(matched)
        seq, where, rec = min(mismatched, key=lambda m: m[0])
        below = ordered[bisect_left(ordered, seq) - 1] if bisect_left(ordered, seq) else 0
        report.problems.insert(0, Problem(
            "modified", seq, rec[1] if rec else "",
            f"modified: a record in seq {below + 1}..{seq} was rewritten: the chain no longer matches the "
            f"signed head at {_name(seq, rec)} ({where})"
            + (f", but still matches the one at seq {below}" if below else "")))
    if verifier is None:
        report.notes.append("head signatures not checked (no public key given)")
        return report
    tail = chain_last - report.last_signed
    if tail > max_unsigned_tail:
        first = report.last_signed + 1
        rec = _records(client, database, [first]).get(first)
        report.problems.append(Problem(
            "unsigned", first, rec[1] if rec else "",
            f"unsigned: {tail} record(s), seq {first}..{chain_last}, come after the last signed head "
            f"(seq {report.last_signed}), first {_name(first, rec)}; audit.max_unsigned_tail is "
            f"{max_unsigned_tail}: anyone who can write the database could have rewritten them"))
    elif tail:
        report.notes.append(f"{tail} record(s) after the last signed head (seq {report.last_signed}) are "
                            f"not signed yet (audit.max_unsigned_tail {max_unsigned_tail})")
    return report


def _check_one(database: str, head: SignedHead, where: str, rec: tuple | None, chain_last: int,
               verifier: HeadVerifier | None, report: AnchorReport, matched: array,
               mismatched: list) -> None:
    if head.seq < 0:
        report.problems.append(Problem("head", 0, "", f"head file {where}: not a signed head (unreadable)"))
        return
    forged = head.signature and verifier is not None and (
        head.key_id != verifier.key_id or not verifier.verify(database, head))
    if forged:
        other = (" does not verify with" if head.key_id == verifier.key_id
                 else f" names key {head.key_id}, not")
        report.problems.append(Problem(
            "signature", head.seq, rec[1] if rec else "",
            f"bad signature: the head at {_name(head.seq, rec)} ({where}){other} the audit public key "
            f"{verifier.key_id} ({verifier.source}): it was not signed by the audit key"))
        return
    if rec is None:
        end = f"ends at seq {chain_last}" if head.seq > chain_last else "has no such record"
        signed = "signed " if head.signature else ""
        report.problems.append(Problem("removed", head.seq, "", f"removed: a {signed}head ({where}) covers "
                                                                f"seq {head.seq}, but the chain {end}"))
        return
    if rec[0] != head.hash:
        if head.signature and verifier is not None:
            mismatched.append((head.seq, where, rec))
        else:
            report.problems.append(Problem(
                "head", head.seq, rec[1], f"modified: records up to {_name(head.seq, rec)} were rewritten "
                f"(recorded head {head.hash[:16]}…, chain has {rec[0][:16]}…; {where})"))
        return
    if head.signature and verifier is not None:
        matched.append(head.seq)
        report.signed += 1
        report.last_signed = max(report.last_signed, head.seq)
