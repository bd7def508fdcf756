"""The train command end to end on a real (tiny) replay: the shipped mainnet block fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.anomaly.persistence import load
from pipeline.cli.cmd_train import parse_params
from pipeline.errors import ConfigError
from tests.conftest import SHARED

BLOCKS = SHARED / "tron"


def _run(argv: list[str]) -> int:
    import run_pipeline

    return run_pipeline.main(argv)


def test_train_from_real_blocks_writes_a_loadable_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(json.loads((BLOCKS / f).read_text())) for f in
                             ("mainnet_block_60836289_visible.json", "mainnet_block_61132092_hex.json")) + "\n")
    rc = _run(["train", "--input", str(src), "--detector", "iforest,hbos", "--out", str(tmp_path / "m"),
               "--param", "hbos.n_bins=8", "--param", "iforest.n_estimators=10", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    card = json.loads((tmp_path / "m" / "hbos" / "card.json").read_text())
    assert card["training"]["first_block"] == 60836289 and card["training"]["last_block"] == 61132092
    assert card["training"]["rows"] > 100
    assert f"version {card['version']}" in out and "blocks 60836289 .. 61132092" in out
    assert load(tmp_path / "m" / "hbos").version == card["version"] and card["params"] == {"n_bins": 8}
    assert f"sha256 {card['sha256']} (pin it: analytics.model_sha256)" in out
    assert load(tmp_path / "m" / "hbos", sha256=card["sha256"]).version == card["version"]
    assert sorted(p.name for p in (tmp_path / "m" / "hbos").iterdir()) == ["card.json", "detector.npz"]
    forest = json.loads((tmp_path / "m" / "iforest" / "card.json").read_text())
    assert forest["params"] == {"n_estimators": 10} and "model iforest (iforest)" in out


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["train", "--input", str(tmp_path / "x"), "--detector", "forest"]) == 2
    assert "--detector: unknown forest" in capsys.readouterr().err
    assert _run(["train", "--clickhouse", "chdb://" + str(tmp_path / "db"), "--since", "yesterday"]) == 2
    assert "--since: 'yesterday' is neither" in capsys.readouterr().err


def test_parse_params() -> None:
    items = ["iforest.n_estimators=50", "alpha=0.2", "lof.algorithm=kd_tree", "bootstrap=true"]
    assert parse_params(items, "iforest") == {"n_estimators": 50, "alpha": 0.2, "bootstrap": True}
    assert parse_params(items, "lof") == {"alpha": 0.2, "algorithm": "kd_tree", "bootstrap": True}
    with pytest.raises(ConfigError, match="not \\[DETECTOR.\\]KEY=VALUE"):
        parse_params(["n_estimators"], "iforest")
