"""The command line as a user meets it: a real subprocess, exit codes and one-line errors."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def cli(*args, cwd=ROOT, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _commands():
    import run_pipeline

    parser = run_pipeline.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


def test_every_command_has_help():
    commands = _commands()
    assert {"run", "demo"} <= set(commands)
    for command in commands:
        out = cli(command, "--help")
        assert out.returncode == 0 and "usage:" in out.stdout, command


@pytest.mark.parametrize("args,message", [
    (["run", "--input", "/no/such/file.jsonl"], "error: /no/such/file.jsonl: no such file or directory"),
    (["run", "--input", ".", "--clickhouse", "mysql://x"], "unknown scheme 'mysql'"),
    (["run", "--input", ".", "--workers", "0"], "pipeline.workers: must be > 0"),
])
def test_errors_are_one_line_and_exit_non_zero(args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_main_job_without_a_command_simulates_runs_and_evaluates(tmp_path):
    # The main job with its options (a shorter chain than the default hour, to keep the suite fast).
    out = cli("--blocks", "150", "--no-progress", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Simulated 150 blocks" in out.stdout
    assert "Ingested 150 blocks" in out.stdout and "trc20_transfer" in out.stdout
    assert "Alerts against the simulator's ground truth" in out.stdout and "sanctioned_exposure" in out.stdout
    assert (tmp_path / "data" / "chdb").is_dir() and (tmp_path / "data" / "sim" / "labels.csv").is_file()
    again = cli("--blocks", "150", "--no-progress", cwd=tmp_path, timeout=300)
    assert "Reusing the simulated chain" in again.stdout
    summary = lambda text: text[text.index("Alerts:"):text.index("Dead letters")]  # noqa: E731
    assert summary(again.stdout) == summary(out.stdout)


def test_sample_mode_replays_the_bundled_mainnet_blocks(tmp_path):
    out = cli("demo", "--sample", "--no-progress", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Ingested 2 blocks, 451 transactions" in out.stdout and "USDT" in out.stdout
