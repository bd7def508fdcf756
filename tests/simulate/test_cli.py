"""``simulate`` and ``import-amlsim`` through run_pipeline.py's real argument parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import run_pipeline


@pytest.mark.parametrize("command", ["simulate", "import-amlsim"])
def test_help_exits_zero(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_pipeline.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_simulate_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_pipeline.main(["simulate", "--blocks", "5", "--seed", "1", "--users", "2000", "--out", str(tmp_path),
                              "--rates", "all=0,fan_in=1", "--visible", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "simulated 5 blocks" in out and "fan_in 1" in out
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["typology_counts"] == {"fan_in": 1} and meta["visible"] is True


def test_bad_rates_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_pipeline.main(["simulate", "--blocks", "5", "--out", str(tmp_path), "--rates", "bogus=1"]) == 2
    assert "unknown typology 'bogus'" in capsys.readouterr().err
