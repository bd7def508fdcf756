"""ClickHouse access through clickhouse-connect: DSN parsing, connection, schema migration.

One DSN selects the backend. ``chdb://PATH`` is the real ClickHouse engine in-process (chDB),
the default; ``http(s)://user:password@host:port/database`` is a server or cluster. Everything
above this module is the same code either way.

chDB allows one data directory per process and one process per data directory, so the embedded
default cannot be read by a second process while a run is going: the error says so.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pipeline.errors import ConfigError, StorageError

log = logging.getLogger(__name__)

DEFAULT_DSN = "chdb://./data/chdb"
DEFAULT_DATABASE = "tronrisk"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Dsn:
    """A parsed DSN; ``password`` is kept out of ``repr`` so it never reaches a log."""

    scheme: str  # chdb | http | https
    database: str
    path: str = ""  # chdb data directory
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""

    def __repr__(self) -> str:
        return f"Dsn({self.redacted()})"

    def __str__(self) -> str:  # an f-string of a Dsn never shows the password either
        return self.redacted()

    def redacted(self) -> str:
        if self.scheme == "chdb":
            return f"chdb://{self.path}?database={self.database}"
        user = f"{self.username}:***@" if self.password else f"{self.username}@"
        return f"{self.scheme}://{user}{self.host}:{self.port}/{self.database}"

    @property
    def embedded(self) -> bool:
        return self.scheme == "chdb"


def parse_dsn(dsn: str) -> Dsn:
    """Parse ``chdb://PATH[?database=NAME]`` or ``http(s)://[user[:pw]@]host[:port][/db]``.

    ``chdb://./data/chdb`` is a relative path: everything after ``chdb://`` up to ``?`` is the
    directory (urlparse would read ``.`` as a host).
    """
    if not isinstance(dsn, str) or "://" not in dsn:
        raise ConfigError(f"clickhouse DSN {_redact(dsn)!r}: expected chdb://PATH or http(s)://host:port/database")
    scheme, _, rest = dsn.partition("://")
    scheme = scheme.lower()
    if scheme == "chdb":
        path, _, query = rest.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        database = params.pop("database", DEFAULT_DATABASE)
        if params:
            raise ConfigError(f"clickhouse DSN {dsn!r}: unknown option(s) {', '.join(sorted(params))}")
        if not path or path in ("memory", ":memory:"):
            raise ConfigError(f"clickhouse DSN {dsn!r}: chdb needs a data directory, e.g. chdb://./data/chdb")
        _check_db(database, dsn)
        return Dsn("chdb", database, path=unquote(path))
    if scheme in ("http", "https"):
        url = urlparse(dsn)
        if not url.hostname:
            raise ConfigError(f"clickhouse DSN {_redact(dsn)!r}: missing host")
        try:
            port = url.port or (8443 if scheme == "https" else 8123)
        except ValueError:
            raise ConfigError(f"clickhouse DSN {_redact(dsn)!r}: port must be a number") from None
        database = unquote(url.path.strip("/")) or DEFAULT_DATABASE
        _check_db(database, dsn)
        return Dsn(scheme, database, host=url.hostname, port=port,
                   username=unquote(url.username or "default"), password=unquote(url.password or ""))
    raise ConfigError(f"clickhouse DSN {_redact(dsn)!r}: unknown scheme {scheme!r} (use chdb://, http:// or https://)")


def _check_db(database: str, dsn: str) -> None:
    if not _DB_NAME.match(database):
        raise ConfigError(f"clickhouse DSN {_redact(dsn)!r}: invalid database name {database!r}")


def _redact(dsn: str) -> str:
    from pipeline.redact import redact_dsn

    return redact_dsn(dsn)


def connect(dsn: str | Dsn, create_database: bool = True) -> Any:
    """A clickhouse-connect client on the DSN's database (created if missing).

    Raises :class:`StorageError` with one line saying what failed and how to fix it.
    """
    import clickhouse_connect  # heavy client: imported only where it is used

    d = parse_dsn(dsn) if isinstance(dsn, str) else dsn
    if d.password:
        from pipeline.redact import register_secret

        register_secret(d.password)  # a driver error or a debug log that quotes it is scrubbed
    try:
        if d.embedded:
            client = clickhouse_connect.get_client(interface="chdb", path=d.path)
        else:
            client = clickhouse_connect.get_client(
                interface=d.scheme, host=d.host, port=d.port, username=d.username,
                password=d.password, connect_timeout=10, send_receive_timeout=300)
        if create_database:
            client.command(f"CREATE DATABASE IF NOT EXISTS {d.database}")
        client.database = d.database
    except Exception as err:  # noqa: BLE001 - every driver failure becomes one clear line
        hint = ""
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if d.embedded and ("EmbeddedServer" in text or "another path" in text or "lock" in text.lower()):
            hint = (" (chDB allows one process per data directory: stop the other run, or use a "
                    "ClickHouse server with an http:// DSN to read while a run is going)")
        raise StorageError(f"cannot open ClickHouse at {d.redacted()}: {text}{hint}") from None
    return client


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every ``migrations/NNN_*.sql`` shipped with the package, in order."""
    out = []
    for entry in resources.files("pipeline.storage").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            out.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def migrate(client: Any, database: str) -> list[str]:
    """Apply the migrations not yet recorded in ``schema_migrations``; return their names.

    A migration that was applied and later edited is refused (checksum mismatch): schema history
    is append-only, as in any migration tool.
    """
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations (version UInt32, name String, "
        "checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version")
    done = {row[0]: row[1] for row in client.query(
        f"SELECT version, checksum FROM {database}.schema_migrations FINAL").result_rows}
    applied = []
    for version, name, sql in migration_files():
        checksum = hashlib.sha256(sql.encode()).hexdigest()[:16]
        if version in done:
            if done[version] != checksum:
                raise StorageError(f"migration {name} changed after it was applied to {database}; "
                                   "add a new migration instead of editing an applied one")
            continue
        for stmt in _statements(sql.replace("{db}", database)):
            try:
                client.command(stmt)
            except Exception as err:  # noqa: BLE001
                raise StorageError(f"migration {name} failed: {str(err).splitlines()[0]}") from None
        client.insert(f"{database}.schema_migrations", [(version, name, checksum)],
                      column_names=["version", "name", "checksum"])
        applied.append(name)
        log.info("applied migration %s to %s", name, database)
    return applied


def open_storage(dsn: str) -> tuple[Any, Dsn]:
    """Connect and migrate: what every command that writes or reads the tables calls first."""
    d = parse_dsn(dsn)
    client = connect(d)
    migrate(client, d.database)
    return client, d
