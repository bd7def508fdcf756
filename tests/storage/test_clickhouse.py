import re

import pytest

from pipeline.errors import ConfigError, StorageError
from pipeline.records import FEATURE_NAMES
from pipeline.sinks.rows import COLUMNS
from pipeline.storage.clickhouse import migrate, migration_files, open_storage, parse_dsn


@pytest.mark.parametrize("dsn,expect", [
    ("chdb://./data/chdb", ("chdb", "./data/chdb", "tronrisk")),
    ("chdb:///var/lib/x?database=risk", ("chdb", "/var/lib/x", "risk")),
    ("http://u:secret@ch.local:8123/risk", ("http", "ch.local", "risk")),
    ("https://ch.example.com", ("https", "ch.example.com", "tronrisk")),
])
def test_dsn_forms(dsn, expect):
    d = parse_dsn(dsn)
    assert (d.scheme, d.path or d.host, d.database) == expect
    assert "secret" not in repr(d) and "secret" not in d.redacted()


@pytest.mark.parametrize("dsn,message", [
    ("ftp://x", "unknown scheme 'ftp'"),
    ("chdb://", "needs a data directory"),
    ("chdb://./x?database=a-b", "invalid database name"),
    ("chdb://./x?color=red", "unknown option"),
    ("localhost:8123", "expected chdb://PATH"),
    ("http://u:pw@:8123/db", "missing host"),
])
def test_bad_dsns_are_one_clear_line(dsn, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_dsn(dsn)
    assert "\n" not in str(err.value) and "pw@" not in str(err.value)


def test_migrations_create_every_table_and_are_idempotent(chdb_dsn):
    client, d = open_storage(chdb_dsn)
    tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
    assert set(COLUMNS) <= tables
    assert migrate(client, d.database) == []  # nothing left to apply on a second start
    versions = [v for v, _, _ in migration_files()]
    assert versions == sorted(set(versions))


def test_ddl_columns_match_the_row_mappings(chdb_dsn):
    client, _ = open_storage(chdb_dsn)
    for table, columns in COLUMNS.items():
        described = [r[0] for r in client.query(f"DESCRIBE TABLE {table}").result_rows
                     if r[2] not in ("MATERIALIZED", "ALIAS")]
        assert [c for c in described if c != "orphaned"] == list(columns), table
    features = [r[0] for r in client.query("DESCRIBE TABLE address_features").result_rows][3:]
    assert features == list(FEATURE_NAMES)


def test_unreachable_server_is_a_storage_error_naming_it():
    from pipeline.storage.clickhouse import connect

    with pytest.raises(StorageError, match=re.escape("http://default@127.0.0.1:1/tronrisk")):
        connect("http://127.0.0.1:1/tronrisk")
