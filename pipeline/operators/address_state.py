"""One address's sliding-window state: entries in event-time order plus running aggregates.

Why this shape: features are read after every touch, so they must be O(1) to read; recomputing
over the window would cost O(window) per transfer. Each touch appends one small tuple to a list
sorted by timestamp and adds itself to running aggregates; eviction walks two heads forward (one
for the long window, one for the short window, which is always a suffix of the long one) and
subtracts what it passes. A block that arrives late (within the allowed lateness) is inserted at
its sorted position, so it expires at ``ts + window`` like any other entry.

A list with head indices, compacted once half of it is dead, is used rather than a ``deque``: an
empty deque costs ~600 bytes and there is one state per active address. (Compacting only past 32
dead entries let a steadily active address carry up to 32 expired ones: on the simulated chain,
a quarter million dead tuples accumulating per 45 minutes while the window itself was flat.)

Lookalike counterparties (address poisoning: a vanity address copying the first and last
characters of a real counterparty) are counted with an index ``prefix4 + suffix4 -> distinct
counterparties``: a counterparty is a lookalike when its group holds at least two.
"""

from __future__ import annotations

from bisect import bisect_right

IN, OUT, APPROVE, PERMISSION, FAILED, CYCLE = 0, 1, 2, 3, 4, 5  # CYCLE: on a cycle others closed
FLAG_ZERO, FLAG_DUST = 1, 2

# entry: (ts, code, counterparty, usd, flags, cycles)
Entry = tuple[int, int, str, float, int, int]


def _ts(entry: Entry) -> int:
    return entry[0]


class AddrState:
    """Windowed aggregates of one address. Slotted: millions of these may be alive at once."""

    __slots__ = (
        "approvals",
        "cps",
        "cycles",
        "d_in",
        "d_out",
        "dust_in",
        "entries",
        "failed",
        "fan_in",
        "fan_out",
        "first",
        "groups",
        "head",
        "last_in_ts",
        "last_ts",
        "look",
        "n_in",
        "n_out",
        "perms",
        "pt_at",
        "pt_delay",
        "shead",
        "usd_in",
        "usd_out",
        "zero_in",
    )

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.head = 0  # first entry inside the long window
        self.shead = 0  # first entry inside the short window
        self.last_ts = 0
        self.first = 0  # first seen (event time ms), set by the shard
        # counters are floats: the feature vector is read after every touch, as floats
        self.n_in = self.n_out = self.d_in = self.d_out = 0.0
        self.usd_in = self.usd_out = 0.0
        self.zero_in = self.dust_in = self.cycles = self.approvals = self.perms = 0.0
        # counterparty -> [n_in, n_out] in the long window, [2], [3] the same in the short window
        # (one dict and one list per counterparty, not two: this is most of an address's memory)
        self.cps: dict[str, list[int]] = {}
        self.groups: dict[str, int] = {}  # prefix4+suffix4 -> distinct counterparties
        self.look = 0.0
        self.fan_in = self.fan_out = self.failed = 0.0
        self.last_in_ts = -1
        self.pt_delay = 0.0
        self.pt_at = -1

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)

    # -- updates ------------------------------------------------------------------------------

    def add_flow(self, ts: int, side: int, cp: str, usd: float, flags: int, cycles: int) -> None:
        """Hot path of :meth:`add` for a value movement (``side`` IN or OUT) arriving in order.

        The same arithmetic as ``add`` -> ``_long``/``_short`` with the sign fixed at +1, inlined:
        this runs twice per transfer.
        """
        entries = self.entries
        entry = (ts, side, cp, usd, flags, cycles)
        if entries and entries[-1][0] > ts:
            self.add(entry)
            return
        entries.append(entry)
        if cycles:
            self.cycles += cycles
        c = self.cps.get(cp)
        if c is None:
            c = self.cps[cp] = [0, 0, 0, 0]
            self._group(cp, 1)
        first = c[side] == 0
        c[side] += 1
        s_first = c[side + 2] == 0
        c[side + 2] += 1
        if side == IN:
            self.n_in += 1.0
            self.usd_in += usd
            if first:
                self.d_in += 1.0
            if s_first:
                self.fan_in += 1.0
            if flags:
                if flags & FLAG_ZERO:
                    self.zero_in += 1.0
                if flags & FLAG_DUST:
                    self.dust_in += 1.0
            self.last_in_ts = max(self.last_in_ts, ts)
        else:
            self.n_out += 1.0
            self.usd_out += usd
            if first:
                self.d_out += 1.0
            if s_first:
                self.fan_out += 1.0
            if 0 <= self.last_in_ts <= ts:
                self.pt_delay = (ts - self.last_in_ts) / 1000.0
                self.pt_at = ts

    def add(self, entry: Entry) -> None:
        """Insert ``entry`` at its event-time position and add it to the aggregates."""
        entries = self.entries
        ts = entry[0]
        if not entries or entries[-1][0] <= ts:
            entries.append(entry)
            in_short = True
        else:  # late block: keep the list sorted so it expires at its own time
            pos = bisect_right(entries, ts, lo=self.head, key=_ts)
            entries.insert(pos, entry)
            in_short = pos >= self.shead
            if not in_short:
                self.shead += 1
        self._long(entry, 1)
        if in_short:
            self._short(entry, 1)
        code = entry[1]
        if code == IN:
            self.last_in_ts = max(self.last_in_ts, ts)
        elif code == OUT and 0 <= self.last_in_ts <= ts:
            self.pt_delay = (ts - self.last_in_ts) / 1000.0
            self.pt_at = ts

    def evict(self, long_cutoff: int, short_cutoff: int) -> None:
        """Expire entries at or before each cutoff (event time, ms)."""
        entries = self.entries
        n = len(entries)
        i = self.shead
        while i < n and entries[i][0] <= short_cutoff:
            self._short(entries[i], -1)
            i += 1
        self.shead = i
        i = self.head
        while i < n and entries[i][0] <= long_cutoff:
            self._long(entries[i], -1)
            i += 1
        self.head = i
        if i and i * 2 >= n:  # at most as many dead entries as live ones: memory stays ~ the window
            del entries[:i]
            self.head = 0
            self.shead -= i
        if self.n_in == 0:
            self.usd_in = 0.0  # no float drift survives an empty window
        if self.n_out == 0:
            self.usd_out = 0.0

    def _long(self, e: Entry, s: int) -> None:
        code = e[1]
        if code == IN or code == OUT:
            cp = e[2]
            side = code  # 0 = in, 1 = out
            if code == IN:
                self.n_in += s
                self.usd_in += s * e[3]
                flags = e[4]
                if flags:
                    if flags & FLAG_ZERO:
                        self.zero_in += s
                    if flags & FLAG_DUST:
                        self.dust_in += s
            else:
                self.n_out += s
                self.usd_out += s * e[3]
            self.cycles += s * e[5]
            cps = self.cps
            c = cps.get(cp)
            if s > 0:
                if c is None:
                    c = cps[cp] = [0, 0, 0, 0]
                    self._group(cp, 1)
                if c[side] == 0:
                    if side:
                        self.d_out += 1
                    else:
                        self.d_in += 1
                c[side] += 1
            else:
                c[side] -= 1
                if c[side] == 0:
                    if side:
                        self.d_out -= 1
                    else:
                        self.d_in -= 1
                    if c[1 - side] == 0:
                        del cps[cp]
                        self._group(cp, -1)
        elif code == APPROVE:
            self.approvals += s
        elif code == PERMISSION:
            self.perms += s
        elif code == CYCLE:
            self.cycles += s * e[5]

    def _short(self, e: Entry, s: int) -> None:
        """Short-window side of an entry; always applied after ``_long`` on add, before it on evict."""
        code = e[1]
        if code == IN or code == OUT:
            c = self.cps[e[2]]
            k = code + 2
            before = c[k]
            c[k] = before + s
            if before == 0 or before + s == 0:
                if code:
                    self.fan_out += s
                else:
                    self.fan_in += s
        elif code == FAILED:
            self.failed += s

    def _group(self, cp: str, s: int) -> None:
        if len(cp) < 8:
            return
        key = cp[:4] + cp[-4:]  # what a poisoning vanity address copies
        groups = self.groups
        k = groups.get(key, 0)
        if s > 0:
            groups[key] = k + 1
            if k == 1:
                self.look += 2
            elif k > 1:
                self.look += 1
        else:
            if k <= 1:
                groups.pop(key, None)
            else:
                groups[key] = k - 1
            if k == 2:
                self.look -= 2
            elif k > 2:
                self.look -= 1

    # -- reads --------------------------------------------------------------------------------

    def pass_through(self, now: int, long_ms: int) -> tuple[float, float]:
        """``(ratio, delay_s)``: share of USD inflow sent on, and the latest in->out delay.

        The delay is capped at the long window and equals it when no outflow followed an
        inflow inside the window, so "small delay" rules never fire on quiet addresses.
        """
        ratio = min(self.usd_out, self.usd_in) / self.usd_in if self.usd_in > 0.0 else 0.0
        if self.pt_at >= 0 and now - self.pt_at < long_ms:
            return ratio, self.pt_delay
        return ratio, long_ms / 1000.0

    def window_size(self) -> int:
        return len(self.entries) - self.head
