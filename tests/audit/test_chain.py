"""The pure chain and verifier: hashes, links, and each tampering kind named (no storage)."""

from __future__ import annotations

import itertools

import pytest

from pipeline.audit.chain import GENESIS, AuditChain, ChainRow, Kind, make_record, recompute, row_hash
from pipeline.audit.verify import verify_rows


def _chain(n: int, start_ts: int = 1_700_000_000_000) -> list[ChainRow]:
    clock = itertools.count(start_ts, 1000)
    chain = AuditChain(clock=lambda: next(clock))
    rows: list[ChainRow] = []
    for i in range(n):
        rows += chain.append([make_record(Kind.ALERT_CREATED, f"alert{i}", {"i": i, "note": "é"}, "x",
                                          address=f"TAddr{i % 3}")])
    return rows


def test_chain_links_every_row_to_its_predecessor_and_hashes_all_fields():
    rows = _chain(5)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert all(recompute(r) == r.hash for r in rows)
    # every field is covered by the hash
    for i in range(9):
        changed = list(rows[2][:9])
        changed[i] = changed[i] + 1 if isinstance(changed[i], int) else changed[i] + "x"
        assert row_hash(*changed) != rows[2].hash


def test_chain_ts_never_goes_backwards_so_time_ranges_are_seq_ranges():
    times = iter([5000, 3000, 7000])
    chain = AuditChain(clock=lambda: next(times))
    ts = [chain.append([make_record(Kind.EXPORT, str(i), {})])[0].ts for i in range(3)]
    assert ts == [5000, 5000, 7000]


def test_record_ids_are_deterministic_per_fact():
    a = make_record(Kind.RULES_LOADED, "r1", {"v": 1}, "v1")
    assert a.record_id == make_record(Kind.RULES_LOADED, "r1", {"v": 2}, "v1").record_id
    assert a.record_id != make_record(Kind.RULES_LOADED, "r1", {"v": 1}, "v2").record_id


def test_intact_chain_verifies():
    report = verify_rows(_chain(20))
    assert report.ok and report.records == 20 and report.last_seq == 20


def _first(rows):
    report = verify_rows(rows)
    assert not report.ok
    return report.problems[0]


def test_edited_field_is_named_as_modified():
    rows = _chain(10)
    rows[4] = rows[4]._replace(payload=rows[4].payload.replace('"i":4', '"i":40'))
    p = _first(rows)
    assert (p.kind, p.seq, p.record_id) == ("modified", 5, rows[4].record_id)


def test_deleted_row_is_named_as_removed():
    rows = _chain(10)
    del rows[6]
    p = _first(rows)
    assert (p.kind, p.seq) == ("removed", 7)
    assert "seq 7..7" in p.message


def test_swapped_rows_are_named_as_reordered():
    rows = _chain(10)
    rows[3], rows[4] = rows[4], rows[3]
    p = _first(rows)
    assert (p.kind, p.seq) == ("reordered", 5)


def test_swapped_seq_values_are_named_as_reordered():
    """In storage a swap exchanges seq values: the moved record's hash matches another seq."""
    rows = _chain(10)
    a, b = rows[3], rows[4]
    rows[3], rows[4] = b._replace(seq=4), a._replace(seq=5)
    p = _first(rows)
    assert p.kind == "reordered" and p.record_id == b.record_id and "chained at seq 5" in p.message


@pytest.mark.parametrize("before", [True, False])
def test_inserted_row_with_a_valid_hash_is_named(before):
    rows = _chain(10)
    prev = rows[4]
    fake_fields = (prev.seq + 1, "f" * 32, Kind.DISPOSITION, "alert5", "TAddr", prev.ts, "mallory", "{}", prev.hash)
    fake = ChainRow(*fake_fields, row_hash(*fake_fields))
    rows.insert(5 if before else 6, fake)
    p = _first(rows)
    assert p.kind == "inserted" and p.record_id == "f" * 32


def test_inserted_row_with_a_wrong_hash_is_named():
    rows = _chain(10)
    rows.insert(3, rows[2]._replace(record_id="f" * 32, hash="0" * 64))
    p = _first(rows)
    assert p.record_id == "f" * 32 and p.kind in ("modified", "inserted")


def test_missing_tail_of_an_expected_range_is_reported():
    rows = _chain(10)
    report = verify_rows(rows[:8], expected=[[1, 10]])
    assert not report.ok and report.problems[0].kind == "removed" and report.problems[0].seq == 9


def test_filtered_export_ranges_allow_declared_gaps_only():
    rows = _chain(10)
    picked = [r for r in rows if r.seq in (2, 3, 7, 8, 9)]
    assert verify_rows(picked, expected=[[2, 3], [7, 9]], first_prev_hash=None).ok
    without = [r for r in picked if r.seq != 8]
    p = verify_rows(without, expected=[[2, 3], [7, 9]], first_prev_hash=None).problems[0]
    assert (p.kind, p.seq) == ("removed", 8)
