"""The fixed-memory first-seen table: lookups, horizon, full buckets, memory that does not grow."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from pipeline.operators.first_seen import WAYS, FirstSeenTable, fingerprint

T = 1_714_000_000_000  # ms


def test_remembers_first_and_last_seen_at_second_resolution():
    table = FirstSeenTable(64)
    table.put("TAlice", T + 1_500, T + 9_999, T - 1)
    assert table.get("TAlice", T) == (T + 1_000, T + 9_000)
    assert table.pop("TAlice", T) == T + 1_000
    assert table.get("TAlice", 0) is None and table.pop("TAlice", 0) is None  # popped: gone
    assert table.used == 0


def test_an_entry_last_seen_before_the_horizon_is_forgotten():
    table = FirstSeenTable(64)
    table.put("TBob", T, T + 60_000, 0)
    assert table.pop("TBob", T + 60_000) is None  # last seen exactly at the cut: too old
    table.put("TBob", T, T + 60_000, 0)
    assert table.pop("TBob", T + 59_000) == T


def colliding(n: int, buckets: int) -> list[str]:
    """``n`` addresses whose fingerprints fall in bucket 0 of a table with ``buckets`` buckets."""
    out, i = [], 0
    while len(out) < n:
        address = f"T{i:033d}"
        if fingerprint(address) % buckets == 0:
            out.append(address)
        i += 1
    return out


def test_a_full_bucket_overwrites_its_least_recently_seen_entry_and_counts_live_losses():
    table = FirstSeenTable(4 * WAYS)
    same_bucket = colliding(WAYS + 2, table.buckets)
    for k, address in enumerate(same_bucket[:WAYS]):
        table.put(address, T, T + k * 1000, 0)
    assert table.used == WAYS and table.evicted == 0
    # stale victim (last seen before the horizon cut): overwritten, not counted as a loss
    table.put(same_bucket[WAYS], T, T + 50_000, T + 500)
    assert table.get(same_bucket[0], 0) is None and table.evicted == 0
    # live victim: the least recently seen of the rest (same_bucket[1], last seen at T + 1 s)
    table.put(same_bucket[WAYS + 1], T, T + 60_000, T)
    assert table.evicted == 1 and table.get(same_bucket[1], 0) is None
    assert all(table.get(a, 0) is not None for a in same_bucket[2:])
    assert table.used == WAYS


def test_a_popped_slot_is_reused():
    table = FirstSeenTable(WAYS)  # one bucket
    addresses = colliding(WAYS + 1, table.buckets)
    for address in addresses[:WAYS]:
        table.put(address, T, T, 0)
    assert table.pop(addresses[3], 0) == T
    table.put(addresses[WAYS], T, T + 1000, 0)
    assert table.evicted == 0 and table.used == WAYS
    assert all(table.get(a, 0) is not None for a in addresses if a != addresses[3])


def test_pickles_with_its_contents():
    table = FirstSeenTable(1000)
    for i in range(300):
        table.put(f"T{i}", T + i * 1000, T + i * 2000, 0)
    clone = pickle.loads(pickle.dumps(table))
    assert clone.used == 300 and clone.capacity == table.capacity
    assert all(clone.get(f"T{i}", 0) == (T + i * 1000, T + i * 2000) for i in range(300))


def test_fingerprint_is_the_same_in_another_process():
    # bucket placement must survive a restart from a snapshot (unlike salted str hashes)
    code = "from pipeline.operators.first_seen import fingerprint; print(fingerprint('TXYZ'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == fingerprint("TXYZ") != 0


def test_memory_is_allocated_once_and_does_not_grow_with_addresses():
    table = FirstSeenTable(10_000)
    size = table.capacity
    assert size >= 10_000 and size % WAYS == 0
    for i in range(50_000):  # five times the capacity, in time order
        table.put(f"T{i}", T + i * 1000, T + i * 1000, T + (i - 20_000) * 1000)
    assert table.capacity == size and len(table.first) == len(table.last) == size
    assert table.used <= size
    assert table.get("T49999", 0) == (T + 49_999_000, T + 49_999_000)  # the newest survive


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        FirstSeenTable(0)
