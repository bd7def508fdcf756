"""Settings shared by the graph stage and the per-address feature shards.

Both stages must agree on the windows (an exposure fact expires with the edge that carried it;
an address's counters expire with the same long window), so one frozen config object is built
once and validated in its constructor; nothing here reads the environment.

All times are event time in milliseconds (block timestamps), never the wall clock.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from pipeline.errors import ConfigError

DEFAULT_SHARDS = 32
NO_HOPS = 9  # watch_hops value meaning "no watchlisted address within max_hops"
UNLIMITED_ALLOWANCE = 2**255  # approvals at or above this are "unlimited" (max uint256 in practice)


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Windows and thresholds for graph and features.

    ``long_ms`` / ``short_ms``: sliding windows (1 h / 10 min) for counters and fan-in/out.
    ``lateness_ms``: how far out of order a block may arrive and still be placed in its window;
    anything later is treated as arriving at the lateness boundary (counted, never dropped), so
    state never has to reopen an evicted window.
    ``horizon_ms``: first-seen memory; an address inactive for longer is forgotten and its
    ``age_s`` is capped at this horizon.
    ``first_seen_capacity``: addresses the first-seen tables hold in all (split evenly across
    the shards, allocated once; 16 bytes each): size it for the distinct addresses seen within
    the horizon -- the default, 4 Mi (64 MiB), covers a day of mainnet (~2-3 M) with room.
    ``dust_usd``: inbound transfers with 0 < USD < this are dust.
    ``max_hops`` / ``decay``: watchlist exposure propagates at most this many hops, the score is
    multiplied by ``decay`` per hop.
    ``hub_degree``: nodes with more successors/predecessors than this are hubs (exchange hot
    wallets): the cycle search does not count cycles with a hub at an end and does not expand
    hubs; ``cycle_budget`` caps the membership checks of one search, so a single transfer can
    never cost more than a fixed amount of work.
    """

    long_ms: int = 3_600_000
    short_ms: int = 600_000
    lateness_ms: int = 30_000
    horizon_ms: int = 86_400_000
    first_seen_capacity: int = 4_194_304
    dust_usd: float = 1.0
    max_hops: int = 3
    decay: float = 0.5
    hub_degree: int = 64
    cycle_budget: int = 256
    n_shards: int = DEFAULT_SHARDS

    def __post_init__(self) -> None:
        if not 0 < self.short_ms <= self.long_ms:
            raise ConfigError(f"windows: need 0 < short_ms <= long_ms, got {self.short_ms}, {self.long_ms}")
        if not 0 <= self.lateness_ms < self.short_ms:
            raise ConfigError(f"windows: need 0 <= lateness_ms < short_ms, got {self.lateness_ms}")
        if self.horizon_ms < self.long_ms:
            raise ConfigError(f"windows: horizon_ms {self.horizon_ms} must be >= long_ms {self.long_ms}")
        if not 1 <= self.max_hops < NO_HOPS:
            raise ConfigError(f"windows: max_hops must be 1..{NO_HOPS - 1}, got {self.max_hops}")
        if not 0.0 < self.decay < 1.0:
            raise ConfigError(f"windows: decay must be in (0, 1), got {self.decay}")
        if self.dust_usd < 0:
            raise ConfigError(f"windows: dust_usd must be >= 0, got {self.dust_usd}")
        if self.hub_degree < 1 or self.cycle_budget < 1:
            raise ConfigError("windows: hub_degree and cycle_budget must be >= 1")
        if not 1 <= self.n_shards <= 4096:
            raise ConfigError(f"windows: n_shards must be 1..4096, got {self.n_shards}")
        if self.first_seen_capacity < 1:
            raise ConfigError(f"windows: first_seen_capacity must be >= 1, got {self.first_seen_capacity}")

    @property
    def shard_first_seen_capacity(self) -> int:
        """One shard's share of ``first_seen_capacity``."""
        return -(-self.first_seen_capacity // self.n_shards)


def shard_of(address: str, n_shards: int = DEFAULT_SHARDS) -> int:
    """Stable shard of an address: crc32, identical in every process (unlike ``hash()``)."""
    return zlib.crc32(address.encode()) % n_shards
