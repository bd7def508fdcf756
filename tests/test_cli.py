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


def test_main_job_runs_with_no_arguments_and_prints_a_summary(tmp_path):
    out = cli(cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Ingested 2 blocks, 451 transactions" in out.stdout
    assert "trc20_transfer" in out.stdout and "Alerts:" in out.stdout
    assert (tmp_path / "data" / "chdb").is_dir()
