"""RSS sampling, latency bookkeeping, percentiles and the py-spy profile reader."""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.bench.probes import LatencyTracker, RssSampler, distribution, percentile, rss_mb
from pipeline.bench.profile import summarize_collapsed


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 95) == 3.0
    assert math.isnan(percentile([], 50))


def test_latency_counts_first_commit_of_a_blocks_alerts_only() -> None:
    lat = LatencyTracker()
    lat.on_block(10)
    lat.on_block(11)
    lat.on_commit({"blocks": [(10,), (11,)], "alerts": [("a", 0, 0, 10)]})
    lat.on_commit({"alerts": [("b", 0, 0, 10), ("c", 0, 0, 99)]})  # later alerts of 10; 99 never entered
    s = lat.summary()
    assert s["alert"]["n"] == 1 and s["block_commit"]["n"] == 2
    assert set(lat.alert_s) == {10}
    assert lat.alert_s[10] >= 0


def test_distribution_of_nothing_is_empty() -> None:
    assert distribution([]) == {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}


def test_rss_quarters_follow_progress_not_time() -> None:
    assert rss_mb() > 0
    s = RssSampler(interval_s=10.0)
    s.samples = [(0.0, 0, 100.0), (1.0, 25, 200.0), (2.0, 50, 220.0), (3.0, 75, 230.0), (4.0, 100, 242.0),
                 (5.0, 100, 300.0)]
    out = s.summary(100)
    assert out["quarters_mb"] == [200.0, 220.0, 230.0, 242.0]
    assert out["peak_mb"] == 300.0 and out["final_mb"] == 300.0
    assert out["growth_q2_to_end"] == round(242 / 220 - 1, 4)


def test_sampler_thread_samples_and_stops() -> None:
    s = RssSampler(interval_s=0.01).start()
    s.blocks = 4
    s.stop()
    assert len(s.samples) >= 2 and s.samples[-1][1] == 4


def test_profile_summary_reads_collapsed_stacks(tmp_path: Path) -> None:
    raw = tmp_path / "p.collapsed"
    raw.write_text(
        "process 1:\"python\";thread (0x1);main (run.py:5);decode_block (/x/pipeline/operators/decode.py:40) 30\n"
        "process 1:\"python\";thread (0x1);main (run.py:5);loads (/v/site-packages/orjson/__init__.py:1) 10\n")
    out = summarize_collapsed(raw)
    assert out["samples"] == 40
    assert out["self_by_file"][0] == ["pipeline/operators/decode.py", 0.75]
    assert out["self_by_function"][1] == ["loads (orjson/__init__.py)", 0.25]
    # frames on every stack (the entry point) are left out of the inclusive view
    assert [name for name, _ in out["inclusive_by_function"]] == [
        "decode_block (pipeline/operators/decode.py)", "loads (orjson/__init__.py)"]
