"""Per-address risk features, one state object per address shard.

The flow keys touches by shard (``routing.route``) and runs one :class:`ShardState` per key in a
``stateful_batch`` step (``pipeline.analytics``); every output depends only on the ordered touches
of that shard, so results are the same with 1 or N workers.

Feed block transfers only: state is event-time history, and a pending (mempool) transfer would
be counted again when its block arrives. Events later than the allowed lateness are clamped to
it (counted in ``ShardState.late``), never dropped.

Feature definitions (refining the comments on ``records.FEATURE_NAMES``; "window" = long window,
event time, ending at the address's latest event):

* ``tx_in_count``/``tx_out_count``, ``usd_in``/``usd_out``: successful value movements
  (``Kind.VALUE_MOVEMENTS``) received/sent, and their USD value (0 for unpriced tokens).
* ``distinct_in``/``distinct_out``: distinct senders/receivers; ``fan_in_10m``/``fan_out_10m``
  the same over the short window.
* ``pass_through_ratio``: ``min(usd_out, usd_in) / usd_in`` over the window (0 without inflow).
* ``pass_through_delay_s``: seconds from the latest inflow to the outflow that followed it, for
  the latest such outflow in the window; the window length when there is none.
* ``age_s``: since first seen, capped at the first-seen horizon (addresses quiet for longer are
  forgotten). Every touch counts, not only value movements. An address back after its window
  expired gets its first-seen time from the fixed-size first-seen table (``first_seen``), at
  one-second resolution.
* ``zero_value_in``: inbound value movements with ``amount_raw == 0``; ``dust_in``: inbound with
  ``0 < amount_usd < dust_usd``.
* ``lookalike_count``: counterparties in the window (either direction) sharing their first 4 and
  last 4 base58 characters with another counterparty in the window.
* ``cycle_count``: cycles of <= 4 hops in the window this address is on (per the graph stage):
  closed by a value movement it sent or received, or passing through it when others closed
  them -- then it gets a ``member`` update of its own, with the closing transfer, so every
  address of a ring is seen at the moment the ring closes, not only the two at its last edge.
  (Only for a ring: an edge closing more than ``RING_MAX_CYCLES`` cycles at once names no
  members, see :mod:`pipeline.operators.graph`.)
* ``watch_hops``/``exposure_score``: from the graph stage, for this address, right after the
  transfer (0 = on a watchlist, 9 = none within ``max_hops``).
* ``approvals_unlimited``: TRC20 approvals granted (as owner) with ``amount_raw >= 2**255``.
  The spender's age is the spender's own ``age_s`` on its ``receiver`` update of the approval.
* ``failed_out``: failed transactions sent, any kind, in the short window.
* ``permission_changes``: successful permission updates sent in the window.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pipeline.operators.address_state import (
    APPROVE,
    CYCLE,
    FAILED,
    FLAG_DUST,
    FLAG_ZERO,
    IN,
    OUT,
    PERMISSION,
    AddrState,
)
from pipeline.operators.first_seen import FirstSeenTable
from pipeline.operators.routing import RECEIVER, SENDER, Touch
from pipeline.operators.windows import NO_HOPS, UNLIMITED_ALLOWANCE, WindowConfig
from pipeline.records import FEATURE_NAMES, AddressFeatures, AddressUpdate, Kind

log = logging.getLogger(__name__)

_VALUE = Kind.VALUE_MOVEMENTS
_APPROVE = Kind.TRC20_APPROVE
_PERMISSION = Kind.PERMISSION_UPDATE

FEATURE_COLUMNS: tuple[str, ...] = ("address", "ts", "block_number", *FEATURE_NAMES)
_HOPS_AS_FLOAT = tuple(float(h) for h in range(NO_HOPS + 1))  # watch_hops is 0..NO_HOPS


class ShardState:
    """Window state of every address of one shard, plus their first-seen times. Picklable.

    ``states`` (an ``OrderedDict`` in order of last touch) holds the active addresses; expiry
    pops from its front those untouched for ``long + lateness`` (everything in them has expired)
    into ``first_seen``, a :class:`FirstSeenTable` of fixed size that keeps only first/last seen
    until the horizon passes. Per-address entries are evicted when the address is touched.
    Memory is therefore the window's content plus a table allocated once.
    """

    def __init__(self, config: WindowConfig | None = None) -> None:
        self.config = config or WindowConfig()
        self.clock = 0
        self.states: OrderedDict[str, AddrState] = OrderedDict()
        # retired addresses (no window state left): address -> first/last seen, fixed memory
        self.first_seen = FirstSeenTable(self.config.shard_first_seen_capacity)
        self.late = 0  # touches later than the allowed lateness (clamped, counted)

    def process(self, touches: Iterable[Touch]) -> list[AddressUpdate]:
        """Apply a batch of touches (in routing order) and return one update per touch."""
        cfg = self.config
        long_ms, short_ms, lateness = cfg.long_ms, cfg.short_ms, cfg.lateness_ms
        horizon_ms = cfg.horizon_ms
        long_s = long_ms / 1000.0
        horizon_s = horizon_ms / 1000.0
        dust = cfg.dust_usd
        states, first_seen = self.states, self.first_seen
        out: list[AddressUpdate] = []
        append = out.append
        new = tuple.__new__
        hops_f = _HOPS_AS_FLOAT
        clock, late = self.clock, 0
        for role, t, facts in touches:
            ts = t.ts
            if ts > clock:
                clock = ts
            elif ts < clock - lateness:
                ts = clock - lateness
                late += 1
            member = False
            if role == SENDER:
                hops, score, cp_hops, _, cycles, _ = facts  # one unpack, not four lookups
                addr, cp = t.from_address, t.to_address
            elif role == RECEIVER:
                cp_hops, _, hops, score, cycles, _ = facts
                addr, cp = t.to_address, t.from_address
            else:  # a cycle member: the transfer's receiver is where its path back starts
                addr, cycles, hops, score, cp_hops = facts
                cp, member = t.to_address, True

            st = states.get(addr)
            if st is None:  # not active in the window: maybe remembered from earlier
                st = states[addr] = AddrState()
                seen = first_seen.pop(addr, ts - horizon_ms)
                st.first = ts if seen is None or seen > ts else seen
                now = st.last_ts = ts
            else:
                states.move_to_end(addr)
                now = st.last_ts
                if now <= ts - horizon_ms or ts < st.first:  # quiet past the horizon, or a late block
                    st.first = ts
                if ts > now:
                    now = st.last_ts = ts

            if member:
                st.add((ts, CYCLE, cp, 0.0, 0, cycles))
            elif not t.success:
                if role == SENDER:
                    st.add((ts, FAILED, cp, 0.0, 0, 0))
            else:
                kind = t.kind
                if kind in _VALUE:
                    if role == SENDER:
                        st.add_flow(ts, OUT, cp, t.amount_usd, 0, cycles)
                    else:
                        usd = t.amount_usd
                        flags = FLAG_ZERO if t.amount_raw == 0 else (FLAG_DUST if 0.0 < usd < dust else 0)
                        st.add_flow(ts, IN, cp, usd, flags, cycles)
                elif role == SENDER:
                    if kind == _APPROVE and t.amount_raw >= UNLIMITED_ALLOWANCE:
                        st.add((ts, APPROVE, cp, 0.0, 0, 0))
                    elif kind == _PERMISSION:
                        st.add((ts, PERMISSION, cp, 0.0, 0, 0))
            entries = st.entries
            n = len(entries)
            short_cut = now - short_ms
            long_cut = now - long_ms
            if (st.shead < n and entries[st.shead][0] <= short_cut) or (
                    st.head < n and entries[st.head][0] <= long_cut):
                st.evict(long_cut, short_cut)

            usd_in = st.usd_in
            ratio = (st.usd_out / usd_in if st.usd_out < usd_in else 1.0) if usd_in > 0.0 else 0.0
            pt_at = st.pt_at
            delay = st.pt_delay if pt_at >= 0 and pt_at > long_cut else long_s
            age = (now - st.first) / 1000.0
            values = (
                st.n_in, st.n_out, usd_in, st.usd_out, st.d_in, st.d_out, st.fan_in, st.fan_out,
                ratio, delay, age if age <= horizon_s else horizon_s,
                st.zero_in, st.dust_in, st.look, st.cycles,
                hops_f[hops], score, st.approvals, st.failed, st.perms,
            )
            # tuple.__new__ skips the NamedTuple constructor frame: two records per touch
            append(new(AddressUpdate, (addr, role, cp, t,
                                       new(AddressFeatures, (addr, t.ts, t.block_number, values)), cp_hops)))
        self.clock = clock
        self.late += late
        self.expire()
        return out

    def expire(self) -> None:
        """Retire addresses whose whole window has passed; forget them after the horizon.

        A retired address keeps only its first and last seen times in ``first_seen``, so its age
        survives a quiet spell shorter than the horizon; a touch brings it back into ``states``.
        Nothing needs forgetting explicitly: the table ignores, and reuses, entries last seen
        before the horizon.
        """
        cfg = self.config
        cutoff = self.clock - cfg.long_ms - cfg.lateness_ms
        forget_before = self.clock - cfg.horizon_ms
        states, put = self.states, self.first_seen.put
        while states:
            addr, st = next(iter(states.items()))
            if st.last_ts > cutoff:
                break
            states.popitem(last=False)
            put(addr, st.first, st.last_ts, forget_before)

    def stats(self) -> dict[str, int]:
        return {
            "addresses": len(self.states),
            "first_seen": self.first_seen.used + len(self.states),  # remembered (some may be stale)
            "first_seen_evicted": self.first_seen.evicted,  # live entries lost to a full bucket
            "entries": sum(st.window_size() for st in self.states.values()),
            "late": self.late,
        }


def feature_rows(features: Iterable[AddressFeatures]) -> list[list[Any]]:
    """Rows for the ClickHouse ``address_features`` table, in :data:`FEATURE_COLUMNS` order.

    ``ts`` becomes a timezone-aware UTC ``datetime`` (``DateTime64(3, 'UTC')``), every feature a
    float (``Float64``).
    """
    fromts = datetime.fromtimestamp
    return [[f.address, fromts(f.ts / 1000.0, UTC), f.block_number, *f.values] for f in features]
