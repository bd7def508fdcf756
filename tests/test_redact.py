"""The one redaction helper: URLs, DSNs, registered secrets in free text and in every log line,
secret files; and the settings that read passwords and keys from files instead of the command line."""

from __future__ import annotations

import logging
import os

import pytest

from pipeline.config import load_settings
from pipeline.errors import ConfigError
from pipeline.redact import read_secret_file, redact_dsn, redact_url, register_secret, scrub, url_secrets
from pipeline.storage.clickhouse import parse_dsn


@pytest.mark.parametrize("url,shown", [
    ("http://127.0.0.1:8090", "http://127.0.0.1:8090"),
    ("https://api.trongrid.io/", "https://api.trongrid.io"),
    ("https://tron.gw.example/abcdef0123456789/", "https://tron.gw.example/***"),
    ("https://gw.example/v1/KEY?apikey=s3cret#frag", "https://gw.example/***?***#***"),
    ("https://user:pw@node.example:8443/x", "https://***@node.example:8443/***"),
    ("wss://feed.example/pending/KEY123", "wss://feed.example/***"),
    ("http://[::1]:8090/", "http://[::1]:8090"),
    ("not a url", "<unparseable URL>"),
    ("http://host:99999999/", "<unparseable URL>"),
])
def test_redact_url_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("dsn,shown", [
    ("https://user:pa:ss@w/ord@ch.example:8443/tronrisk", "https://user:***@ch.example:8443/tronrisk"),
    ("http://default@127.0.0.1:8123/db", "http://default@127.0.0.1:8123/db"),
    ("http://u:secret@h:1/db?password=x", "http://u:***@h:1/db?***"),
    ("chdb://./data/chdb?database=x", "chdb://./data/chdb?database=x"),
    ("u:secret@host", "<not a DSN: 13 characters>"),
])
def test_redact_dsn_hides_the_whole_password(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


def test_dsn_errors_and_str_never_show_the_password() -> None:
    with pytest.raises(ConfigError) as err:
        parse_dsn("mysql://u:p@ssw0rd-x@h/db")  # a password holding '@' used to leak its tail
    assert "ssw0rd" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_dsn("u:hunter22@host")
    assert "hunter22" not in str(err.value)
    assert "pw4567" not in f"{parse_dsn('https://u:pw4567@h:8443/db')}"


def test_registered_secrets_are_scrubbed_from_text_and_from_every_log_line(
        caplog: pytest.LogCaptureFixture) -> None:
    url = "https://gw.example/0123456789abcdefPATH/?key=qwerty123"
    assert set(url_secrets(url)) == {"0123456789abcdefPATH", "qwerty123"}
    assert url_secrets("https://admin:pw12@h/v1/") == ["pw12"]
    assert url_secrets("https://0123456789KEYASUSER@h/") == ["0123456789KEYASUSER"]
    register_secret(*url_secrets(url), "tok", None)  # too short to be a secret: left alone
    assert scrub(f"POST {url}wallet/x; tok") == "POST https://gw.example/***/?key=***wallet/x; tok"
    with caplog.at_level(logging.DEBUG, logger="tests.third_party"):  # any library's logger, e.g. urllib3's
        logging.getLogger("tests.third_party").debug("%s \"POST %s HTTP/1.1\" 200", "https://gw.example:443",
                                                           "/0123456789abcdefPATH/wallet/getnowblock")
    shown = caplog.records[-1].getMessage()
    assert shown == 'https://gw.example:443 "POST /***/wallet/getnowblock HTTP/1.1" 200'


def test_secret_files(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    good = tmp_path / "key"
    good.write_text("  k-from-file-123\n")
    good.chmod(0o600)
    assert read_secret_file(good, "--api-key-file") == "k-from-file-123"
    assert scrub("k-from-file-123") == "***"
    loose = tmp_path / "loose"
    loose.write_text("k-loose-4567\n")
    os.chmod(loose, 0o644)
    with caplog.at_level(logging.WARNING):
        read_secret_file(loose, "node.api_key_file")
    assert "can be read by other users" in caplog.text and "k-loose" not in caplog.text
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "two").write_text("a-line-one\nline-two\n")
    for name, message in (("missing", "file not found"), ("empty", "file is empty"),
                          ("two", "expected one line")):
        with pytest.raises(ConfigError, match=f"--api-key-file .*{name}: {message}"):
            read_secret_file(tmp_path / name, "--api-key-file")


def test_password_file_fills_the_dsn_and_a_password_flag_warns(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "ch.pw").write_text("p@ss/w:rd-123\n")
    (tmp_path / "ch.pw").chmod(0o600)
    conf = tmp_path / "risk.toml"
    conf.write_text('[clickhouse]\ndsn = "https://reader@ch.example:8443/tronrisk"\n'
                    'password_file = "ch.pw"\n')
    with caplog.at_level(logging.WARNING):
        s = load_settings(str(conf), env={})  # the file's path is relative to the config file
    d = parse_dsn(s.clickhouse.dsn)
    assert (d.username, d.password) == ("reader", "p@ss/w:rd-123")
    assert (d.host, d.port, d.database) == ("ch.example", 8443, "tronrisk")
    assert "p@ss" not in repr(s) and "p%40ss" not in repr(s) and not caplog.records
    assert scrub(s.clickhouse.dsn) == "https://reader:***@ch.example:8443/tronrisk"
    embedded = load_settings(env={"TRONRISK_CLICKHOUSE_PASSWORD_FILE": str(tmp_path / "absent")})
    assert embedded.clickhouse.dsn.startswith("chdb://")  # no password to fill: the file is not even read
    with caplog.at_level(logging.WARNING):
        load_settings(env={}, overrides={"clickhouse.dsn": "https://u:flagpass1@h:8443/db"})
    assert "a password in --clickhouse on the command line is visible to other users in `ps`" in caplog.text
    assert "flagpass1" not in caplog.text
