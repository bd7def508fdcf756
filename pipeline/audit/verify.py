"""Recompute a chain and name the first record that was modified, removed, inserted or reordered.

Rows arrive in stored order (``ORDER BY seq`` from ClickHouse, file order from an export). The
verifier keeps the two previous rows and peeks one ahead — constant memory on any length — and
classifies the first break:

* **modified**: the row's hash does not match its fields (if it matches with another ``seq``
  nearby, the row was moved: **reordered**);
* **removed**: ``seq`` jumps ahead and nothing fills the gap;
* **reordered**: ``seq`` jumps ahead and the missing one follows, or ``seq`` goes backwards;
* **inserted**: a row whose removal restores the chain (a duplicate ``seq``, or a row the next one
  skips over to link to its predecessor).

An export may be filtered (``--address``): ``expected`` ranges say which seqs it should contain;
the link (``prev_hash``) is checked between consecutive seqs, and a jump between ranges is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from pipeline.audit.chain import GENESIS, ChainRow, recompute, row_hash

_MOVED_SEARCH = 16  # how far a moved row's original seq is searched for


@dataclass(frozen=True)
class Problem:
    # modified | removed | inserted | reordered | head | signature | unsigned | unchained | manifest | file
    kind: str
    seq: int
    record_id: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class ChainReport:
    records: int = 0
    first_seq: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _name(r: ChainRow) -> str:
    return f"seq {r.seq} (record_id {r.record_id}, kind {r.kind}, subject {r.subject})"


class _Ranges:
    """Which seqs are expected next: contiguous ranges [a, b], e.g. [[1, 1000000]]."""

    def __init__(self, ranges: Sequence[Sequence[int]] | None) -> None:
        self.ranges = [(int(a), int(b)) for a, b in ranges] if ranges is not None else None
        self.i = 0

    def first(self) -> int | None:
        return self.ranges[0][0] if self.ranges else (None if self.ranges is not None else 1)

    def after(self, seq: int) -> tuple[int | None, bool]:
        """(next expected seq, whether it must link to ``seq``'s hash)."""
        if self.ranges is None:
            return seq + 1, True
        while self.i < len(self.ranges) and self.ranges[self.i][1] < seq:
            self.i += 1
        if self.i < len(self.ranges) and self.ranges[self.i][0] <= seq < self.ranges[self.i][1]:
            return seq + 1, True
        if self.i + 1 < len(self.ranges) and self.ranges[self.i][1] == seq:
            return self.ranges[self.i + 1][0], False
        if self.i < len(self.ranges) and self.ranges[self.i][0] > seq:
            return self.ranges[self.i][0], False
        return None, False


def verify_rows(rows: Iterable[ChainRow | tuple], expected: Sequence[Sequence[int]] | None = None,
                first_prev_hash: str | None = GENESIS) -> ChainReport:
    """Check ``rows`` in order; stop at the first problem (everything after it is suspect anyway).

    ``expected=None`` means the whole chain from seq 1 (whose ``prev_hash`` must be ``GENESIS``);
    ``first_prev_hash=None`` trusts the first row's link (an export starting mid-chain).
    """
    report = ChainReport()
    ranges = _Ranges(expected)
    it: Iterator[ChainRow] = (r if isinstance(r, ChainRow) else ChainRow(*r) for r in rows)
    cur = next(it, None)
    pp: ChainRow | None = None
    p: ChainRow | None = None
    while cur is not None:
        nxt = next(it, None)
        problem = _check(cur, p, pp, nxt, ranges, first_prev_hash)
        if problem is not None:
            report.problems.append(problem)
            return report
        if p is None:
            report.first_seq = cur.seq
        report.records += 1
        report.last_seq, report.last_hash = cur.seq, cur.hash
        pp, p, cur = p, cur, nxt
    end = None if expected is None else ranges.after(p.seq)[0] if p is not None else ranges.first()
    if end is not None:
        after = f"after {_name(p)}" if p is not None else "at the start"
        report.problems.append(Problem("removed", end, "", f"removed: record seq {end} and later are "
                                       f"missing ({after}); the export ends early"))
    return report


def _links(a: ChainRow | None, b: ChainRow, ranges: _Ranges) -> bool:
    if a is None:
        return False
    want, linked = ranges.after(a.seq)
    return b.seq == want and (not linked or b.prev_hash == a.hash)


def _check(r: ChainRow, p: ChainRow | None, pp: ChainRow | None, n: ChainRow | None, ranges: _Ranges,
           first_prev_hash: str | None) -> Problem | None:
    if recompute(r) != r.hash:
        for seq in range(max(1, r.seq - _MOVED_SEARCH), r.seq + _MOVED_SEARCH + 1):
            if seq != r.seq and row_hash(seq, *r[1:9]) == r.hash:
                return Problem("reordered", r.seq, r.record_id,
                               f"reordered: record chained at seq {seq} (record_id {r.record_id}) "
                               f"was moved to seq {r.seq}")
        return Problem("modified", r.seq, r.record_id,
                       f"modified: {_name(r)}: its hash does not match its fields")
    if p is None:
        want = ranges.first()
        if want is not None and r.seq > want and not (n is not None and n.seq == want):
            return Problem("removed", want, "", f"removed: records seq {want}..{r.seq - 1} are missing "
                                                f"before {_name(r)}")
        if want is not None and r.seq != want:
            return Problem("reordered", r.seq, r.record_id, f"reordered: {_name(r)} is first, "
                                                            f"seq {want} expected")
        if first_prev_hash is not None and r.prev_hash != first_prev_hash:
            return Problem("inserted", r.seq, r.record_id, f"inserted: {_name(r)} does not link to the "
                                                           "chain's start (prev_hash)")
        return None
    if _links(p, r, ranges):
        return None
    want, _ = ranges.after(p.seq)
    if pp is not None and _links(pp, r, ranges) and not (n is not None and _links(p, n, ranges)):
        return Problem("inserted", p.seq, p.record_id, f"inserted: {_name(p)} is not part of the chain "
                                                       f"({_name(r)} links to the record before it)")
    if r.seq == p.seq:
        return Problem("inserted", r.seq, r.record_id, f"inserted: {_name(r)} duplicates seq {r.seq}")
    if want is not None and r.seq > want:
        if n is not None and n.seq == want:
            return Problem("reordered", r.seq, r.record_id, f"reordered: {_name(r)} comes before seq {want}")
        return Problem("removed", want, "", f"removed: record(s) seq {want}..{r.seq - 1} missing between "
                                            f"{_name(p)} and {_name(r)}")
    if r.seq < p.seq:
        return Problem("reordered", r.seq, r.record_id, f"reordered: {_name(r)} comes after seq {p.seq}")
    if n is not None and _links(p, n, ranges):
        return Problem("inserted", r.seq, r.record_id, f"inserted: {_name(r)} is not part of the chain "
                                                       f"(the next record links to seq {p.seq})")
    return Problem("inserted", r.seq, r.record_id,
                   f"inserted or replaced: {_name(r)} does not link to {_name(p)} (prev_hash differs)")
