"""The incremental aggregates equal a brute-force recomputation over the window, late blocks included."""

from __future__ import annotations

import random

import pytest

from pipeline.operators.routing import SENDER
from pipeline.operators.windows import WindowConfig
from pipeline.records import FEATURE_NAMES, Kind

CFG = WindowConfig(long_ms=60_000, short_ms=15_000, lateness_ms=5_000, horizon_ms=600_000)
IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}
# lookalike pairs share 4 leading and 4 trailing characters
ADDRS = ["TAAAA111xxxxZZZZ", "TAAAA222yyyyZZZZ", "TAAAA333wwwwZZZZ", "TBBBB111xxxxQQQQ",
         "TBBBB999xxxxQQQQ", "TCCCCxyz", "TDDDDuvwtrs", "TEEEE0000", "TFFFF1234abcd"]


def stream(chain, seed: int, n: int = 500) -> list:
    """Random transfers among few addresses; ~10% of blocks arrive up to lateness late."""
    rng = random.Random(seed)
    out, clock = [], 0.0
    for _ in range(n):
        clock += rng.choice([0.0, 1.0, 3.0, 9.0])
        at = clock - rng.uniform(0, CFG.lateness_ms / 1000 - 0.5) if rng.random() < 0.1 else clock
        a, b = rng.sample(ADDRS, 2)
        kind = rng.choice([Kind.TRX, Kind.TRC20_TRANSFER, Kind.TRC20_TRANSFER, Kind.TRC20_APPROVE])
        usd = rng.choice([0.0, 0.5, 3.0, 250.0])
        raw = 2**256 - 1 if kind == Kind.TRC20_APPROVE and rng.random() < 0.5 else (0 if usd == 0 else None)
        out.append(chain.tx(round(at, 3), a, b, usd, kind, raw=raw, ok=rng.random() > 0.1))
    return out


def expected(history: list[tuple[int, str, object]]) -> dict[str, float]:
    """Recompute from every touch of one address so far: ``(ts, role, transfer)``."""
    now = max(ts for ts, _, _ in history)
    long_ = [(ts, r, t) for ts, r, t in history if ts > now - CFG.long_ms]
    short = [(ts, r, t) for ts, r, t in history if ts > now - CFG.short_ms]

    def flows(rows, role):
        return [t for _, r, t in rows if r == role and t.success and t.kind in Kind.VALUE_MOVEMENTS]

    ins, outs = flows(long_, "receiver"), flows(long_, SENDER)
    cps = {t.from_address for t in ins} | {t.to_address for t in outs}
    groups: dict[str, int] = {}
    for cp in cps:
        groups[cp[:4] + cp[-4:]] = groups.get(cp[:4] + cp[-4:], 0) + 1
    return {
        "tx_in_count": len(ins), "tx_out_count": len(outs),
        "usd_in": sum(t.amount_usd for t in ins), "usd_out": sum(t.amount_usd for t in outs),
        "distinct_in": len({t.from_address for t in ins}), "distinct_out": len({t.to_address for t in outs}),
        "fan_in_10m": len({t.from_address for t in flows(short, "receiver")}),
        "fan_out_10m": len({t.to_address for t in flows(short, SENDER)}),
        "zero_value_in": sum(t.amount_raw == 0 for t in ins),
        "dust_in": sum(t.amount_raw != 0 and 0 < t.amount_usd < CFG.dust_usd for t in ins),
        "lookalike_count": sum(k for k in groups.values() if k >= 2),
        "approvals_unlimited": sum(r == SENDER and t.success and t.kind == Kind.TRC20_APPROVE
                                   and t.amount_raw >= 2**255 for _, r, t in long_),
        "failed_out": sum(r == SENDER and not t.success for _, r, t in short),
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_incremental_features_match_recomputation(chain, runner, seed):
    r = runner(CFG)
    history: dict[str, list] = {}
    checked = late = 0
    for t in stream(chain, seed):
        late += t.ts < max((h[-1][0] for h in history.values()), default=0)
        for u in r.feed([t]):
            history.setdefault(u.address, []).append((u.transfer.ts, u.role, u.transfer))
            want = expected(history[u.address])
            got = {k: u.features.values[IDX[k]] for k in want}
            assert got == pytest.approx(want, abs=1e-6), (u.address, u.transfer.ts)
            checked += 1
    assert checked > 900 and late > 10
