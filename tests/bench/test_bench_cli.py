"""``run_pipeline.py bench`` end to end on a tiny chain: every figure present and sane (no timing asserts).

The measured runs are subprocesses with their own chDB directories; this process never opens chDB.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from pipeline.cli import cmd_bench
from pipeline.errors import ConfigError

STAGES = {"read_parse", "decode", "graph_features", "rules", "anomaly", "sinks"}


def _args(tmp_path: Path, **kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd_bench.register(parser.add_subparsers())
    argv = ["bench", "--out", str(tmp_path / "out"), "--json", str(tmp_path / "bench.json")]
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}"] + ([str(value)] if value != "" else [])
    return parser.parse_args(argv)


def _ordered(dist: dict) -> None:
    assert dist["n"] > 0
    assert 0 < dist["p50_ms"] <= dist["p95_ms"] <= dist["p99_ms"] <= dist["max_ms"]


def test_tiny_bench_writes_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_bench.main(_args(tmp_path, tx=5000, seed=3, pace="50:20", processes=2)) == 0
    r = json.loads((tmp_path / "bench.json").read_text())

    assert r["input"]["blocks"] == 19 and r["input"]["transactions"] > 4000 and r["input"]["generated"]
    assert r["parse_only"]["transactions"] == r["input"]["transactions"]
    e2e = r["end_to_end"]
    assert e2e["transactions"] == r["input"]["transactions"] and e2e["blocks"] == 19
    assert e2e["tx_per_s"] > 0 and r["parse_only"]["tx_per_s"] > 0
    assert 0 < r["ratio_to_parse"] <= 1
    assert e2e["committed"]["transfers"] > 0 and e2e["committed"]["blocks"] == 19

    st = r["stages"]
    assert set(st["per_stage"]) == STAGES
    assert all(s["us_per_tx"] > 0 for s in st["per_stage"].values())
    assert math.isclose(sum(s["share"] for s in st["per_stage"].values()), 1.0, abs_tol=0.01)
    assert st["counts"]["transactions"] == e2e["transactions"] and st["counts"]["updates"] > 0
    # the stage run stores what the flow stores: same stages, same order, same alerts
    for table in ("blocks", "transfers", "address_features", "alerts"):
        assert st["committed"][table] == e2e["committed"][table], table

    rss = e2e["rss"]
    assert len(rss["quarters_mb"]) == 4 and all(q > 0 for q in rss["quarters_mb"])
    assert rss["peak_mb"] >= max(rss["quarters_mb"]) and rss["final_mb"] > 0
    assert rss["growth_q2_to_end"] is not None

    lat = r["latency"]["x50"]
    assert lat["speed"] == 50 and lat["blocks"] == 19
    _ordered(lat["alert"])
    _ordered(lat["block_commit"])
    assert lat["block_commit"]["n"] == 19

    procs = r["processes"]
    assert "error" not in procs, procs.get("error")
    assert procs["n"] == 2 and procs["transactions"] == e2e["transactions"] and procs["tx_per_s"] > 0
    assert procs["scaling"] > 0
    assert procs["committed"]["transfers"] == e2e["committed"]["transfers"]

    assert set(r["targets"]) == {"tx_per_s_one_process", "p99_alert_latency_x10_ms", "rss_growth_q2_to_end"}
    assert r["targets"]["p99_alert_latency_x10_ms"]["met"] is None  # no x10 run here
    out = capsys.readouterr().out
    assert "end to end, 1 process" in out and "x50" in out and "scaling" in out


def test_chain_is_reused_and_latency_only_skips_throughput(tmp_path: Path) -> None:
    assert cmd_bench.main(_args(tmp_path, tx=600, pace="100:3", latency="")) == 0
    first = json.loads((tmp_path / "bench.json").read_text())
    assert first["input"]["generated"] is True
    assert cmd_bench.main(_args(tmp_path, tx=600, pace="100:3", latency="")) == 0
    second = json.loads((tmp_path / "bench.json").read_text())
    assert second["input"]["generated"] is False
    assert "end_to_end" not in second and "stages" not in second
    assert second["latency"]["x100"]["block_commit"]["n"] == 3


@pytest.mark.parametrize("spec", ["10", "x:3", "0:5", "1:0"])
def test_bad_pace_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="--pace"):
        cmd_bench.parse_pace(spec)
