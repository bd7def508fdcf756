"""Finding 10: secrets on the command line, in `train`'s errors, and the API key's sources.

``train --clickhouse http://user:password@…`` printed the DSN with its password when the server
answered an error. The ClickHouse here is a stand-in on 127.0.0.1 that speaks just enough of the
HTTP interface for clickhouse-connect to connect (version, settings) and then refuses the query,
the way a server without ``address_features`` does.
"""

from __future__ import annotations

import argparse
import base64
import logging
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.config import NodeSettings
from pipeline.errors import ConfigError
from pipeline.sources.live_options import add_live_arguments, api_key, live_sources
from pipeline.storage.clickhouse import open_storage
from tests.conftest import ROOT
from tests.live.httpd import Server

PASSWORD = "s3cret-Pa55word"


def _clickhouse(path: str, headers: dict[str, str], body: bytes):
    text = parse_qs(urlsplit(path).query).get("query", [""])[0] + body.decode("utf-8", "replace")
    if "version()" in text:
        return 200, {}, b"24.8.1.1\tUTC\n"
    if "system.settings" in text:
        return 200, {}, b""  # Native format, no blocks: no settings
    return 404, {"X-ClickHouse-Exception-Code": "60"}, (
        b"Code: 60. DB::Exception: Unknown table expression identifier 'address_features'. (UNKNOWN_TABLE)\n")


def _train(dsn: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "run_pipeline.py"), "train", "--clickhouse", dsn, "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=False)


def _auth(headers: dict[str, str]) -> str:
    if "x-clickhouse-key" in headers:
        return headers["x-clickhouse-key"]
    return base64.b64decode(headers.get("authorization", "Basic Og==").split()[1]).decode().partition(":")[2]


def test_train_never_prints_the_dsn_password(tmp_path: Any) -> None:
    with Server(_clickhouse) as ch:
        out = _train(f"{ch.url.replace('http://', f'http://default:{PASSWORD}@')}/tronrisk")
        assert out.returncode == 2 and "cannot read address_features" in out.stderr
        assert PASSWORD not in out.stderr + out.stdout and "default:***@127.0.0.1" in out.stderr
        assert "visible to other users in `ps`" in out.stderr  # the password was on the command line
        assert _auth(ch.requests[0][1]) == PASSWORD
        # the same password from a file: sent to the server, never printed, no warning
        secret = tmp_path / "ch.pw"
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)
        env = {"PATH": "/usr/bin:/bin", "TRONRISK_CLICKHOUSE_PASSWORD_FILE": str(secret)}
        ch.requests.clear()
        out = _train(f"{ch.url.replace('http://', 'http://default@')}/tronrisk", env)
        assert out.returncode == 2 and "cannot read address_features" in out.stderr
        assert PASSWORD not in out.stderr and "`ps`" not in out.stderr
        assert _auth(ch.requests[0][1]) == PASSWORD


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_live_arguments(p)
    return p.parse_args(["--node", "http://127.0.0.1:1", *argv])


def test_the_api_key_comes_from_flag_file_or_settings_and_the_flag_warns(
        tmp_path: Any, chdb_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("key-from-file-1\n")
    key_file.chmod(0o600)
    settings_file = tmp_path / "key2"
    settings_file.write_text("key-from-settings-file\n")
    settings_file.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert api_key(_args("--api-key-file", str(key_file)), NodeSettings(api_key="x")) == "key-from-file-1"
        assert api_key(_args(), NodeSettings(api_key="k-env", api_key_file=str(settings_file))) == \
            "key-from-settings-file"
        assert api_key(_args(), NodeSettings(api_key="k-env-12345")) == "k-env-12345"
        assert api_key(_args(), NodeSettings()) is None
        assert not caplog.records
        client, _ = open_storage(chdb_dsn)
        sources = live_sources(_args("--api-key", "k-flag-12345", "--mempool", "poll"), client,
                               node=NodeSettings(max_answer_bytes=2**20))
    assert sources.node.api_key == sources.pending.api_key == "k-flag-12345"
    assert sources.node.max_answer_bytes == sources.pending.max_answer_bytes == 2**20
    [warning] = caplog.records
    assert warning.getMessage().startswith("--api-key on the command line is visible to other users in `ps`")
    with pytest.raises(ConfigError, match="not both"):
        api_key(_args("--api-key", "a", "--api-key-file", str(key_file)), NodeSettings())
    ws = live_sources(_args("--mempool", "ws://127.0.0.1:2/p"), client,
                      node=NodeSettings(pending_max_message_bytes=4096, pending_queue_bytes=8192,
                                        pending_queue_messages=10)).pending
    assert (ws.max_message_bytes, ws.queue_bytes, ws.queue_size) == (4096, 8192, 10)
