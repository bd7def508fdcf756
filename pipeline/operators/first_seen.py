"""When an address was first and last seen, in memory fixed at start: a set-associative table.

Why a table and not a dict: ``age_s`` needs an address's first-seen time long after its window
state has expired (an address quiet for 5 hours is not new). Kept in a dict, that memory grows
with every distinct address seen within the horizon -- on mainnet some 2-3 million a day, ~300
bytes each as Python objects, and it grows for the whole first day of a run. Here each shard
allocates (and writes, so the pages are resident from the start) three flat arrays once:
16 bytes per slot, nothing allocated per address, and the same RSS at hour 1 and hour 100.
The arrays also pickle as three byte strings, which keeps recovery snapshots cheap.

Layout: ``slots = buckets * WAYS``; an address's 64-bit fingerprint (blake2b, the same in every
process, unlike ``hash()``) picks its bucket; the bucket's ``WAYS`` slots hold fingerprint, first
and last seen (whole seconds). A put into a full bucket overwrites its least recently seen slot:
entries past the horizon go first, so only a live address can be lost when a bucket really
overflows, and then it is the bucket's stalest one (it comes back with its age reset, and the
table counts it in ``evicted``, so undersizing shows in the stats instead of going unnoticed).
A 64-bit fingerprint makes a false match within a bucket vanishingly unlikely (~WAYS / 2**64).
"""

from __future__ import annotations

from array import array
from hashlib import blake2b

WAYS = 8  # slots per bucket: at 60% load a bucket overflows rarely, and a scan is 8 compares
_EMPTY = 0


def fingerprint(address: str) -> int:
    """Stable, non-zero 64-bit fingerprint of an address (0 marks an empty slot)."""
    return int.from_bytes(blake2b(address.encode(), digest_size=8).digest(), "little") or 1


class FirstSeenTable:
    """Fixed-capacity map ``address -> (first_ms, last_ms)`` at one-second resolution. Picklable."""

    __slots__ = ("buckets", "evicted", "first", "keys", "last", "used")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"first-seen capacity must be >= 1, got {capacity}")
        self.buckets = -(-capacity // WAYS)
        slots = self.buckets * WAYS
        # bytes(n) is written (not lazily mapped): the table is resident from the start
        self.keys = array("Q", bytes(8 * slots))
        self.first = array("I", bytes(4 * slots))  # seconds; uint32 holds timestamps to 2106
        self.last = array("I", bytes(4 * slots))
        self.used = 0  # occupied slots, stale ones included until overwritten
        self.evicted = 0  # live entries overwritten by a full bucket

    @property
    def capacity(self) -> int:
        return len(self.keys)

    def pop(self, address: str, not_before_ms: int) -> int | None:
        """Remove ``address``; its first-seen ms if it was last seen after ``not_before_ms``."""
        fp = fingerprint(address)
        base = (fp % self.buckets) * WAYS
        keys = self.keys
        for i in range(base, base + WAYS):
            if keys[i] == fp:
                keys[i] = _EMPTY
                self.used -= 1
                return self.first[i] * 1000 if self.last[i] * 1000 > not_before_ms else None
        return None

    def get(self, address: str, not_before_ms: int) -> tuple[int, int] | None:
        """``(first_ms, last_ms)`` of ``address`` if remembered and last seen after ``not_before_ms``."""
        fp = fingerprint(address)
        base = (fp % self.buckets) * WAYS
        for i in range(base, base + WAYS):
            if self.keys[i] == fp:
                last = self.last[i] * 1000
                return (self.first[i] * 1000, last) if last > not_before_ms else None
        return None

    def put(self, address: str, first_ms: int, last_ms: int, not_before_ms: int) -> None:
        """Remember ``address``; a full bucket loses its least recently seen entry.

        ``not_before_ms`` (the horizon cut) tells a stale victim, which is free to overwrite,
        from a live one, which is counted in ``evicted``. The scan may stop at the first empty
        slot: an address is here only while retired (the shard pops it when it becomes active
        again), so a later slot never holds a second copy.
        """
        fp = fingerprint(address)
        base = (fp % self.buckets) * WAYS
        keys, last = self.keys, self.last
        slot = -1
        oldest = 1 << 32
        for i in range(base, base + WAYS):
            key = keys[i]
            if key == fp or key == _EMPTY:
                slot = i
                break
            if last[i] < oldest:
                slot, oldest = i, last[i]
        if keys[slot] == _EMPTY:
            self.used += 1
        elif keys[slot] != fp and oldest * 1000 > not_before_ms:
            self.evicted += 1
        keys[slot] = fp
        self.first[slot] = first_ms // 1000
        last[slot] = last_ms // 1000
