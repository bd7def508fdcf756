"""The recovery directory is trusted input (Bytewax unpickles its snapshots): private, or refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.runner import recovery_config


def test_created_private_and_initialised(tmp_path: Path) -> None:
    path = tmp_path / "a" / "rec"
    config = recovery_config(str(path))
    assert config is not None and stat.S_IMODE(path.stat().st_mode) == 0o700
    assert any(path.iterdir())  # Bytewax's partition database
    assert recovery_config(str(path)) is not None  # resuming from it is fine
    assert recovery_config("") is None


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_directory_others_can_write_is_refused_untouched(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(ConfigError, match=r"--recovery-dir .*shared: owned by another user or writable by"):
        recovery_config(str(path))
    assert list(path.iterdir()) == []  # nothing initialised in it


def test_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match=r"--recovery-dir .*f: cannot create \(File exists\)"):
        recovery_config(str(tmp_path / "f"))
