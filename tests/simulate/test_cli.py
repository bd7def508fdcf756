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


def test_simulate_with_a_profile_records_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_pipeline.main(["simulate", "--blocks", "40", "--seed", "2", "--users", "2000", "--out", str(tmp_path),
                              "--profile", "validation", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "profile: validation" in out and "deposit_sweep" in out
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["profile"] == "validation" and meta["benign_counts"]["deposit_sweep"] > 0
    assert len(meta["generator_version"]) == 16


def test_main_job_chain_is_validation_and_reused_only_when_identical(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli.cmd_demo import _simulated_chain

    _simulated_chain(tmp_path, 30, 4, "validation", progress=False)
    assert "(validation profile)" in capsys.readouterr().out
    assert json.loads((tmp_path / "meta.json").read_text())["profile"] == "validation"
    _simulated_chain(tmp_path, 30, 4, "validation", progress=False)
    assert "Reusing" in capsys.readouterr().out
    _simulated_chain(tmp_path, 30, 4, "tuning", progress=False)  # another profile: generated again
    assert "Simulated" in capsys.readouterr().out
    assert json.loads((tmp_path / "meta.json").read_text())["profile"] == "tuning"
