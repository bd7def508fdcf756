"""Signed audit heads (finding 8): keys, head files, and a database writer who rewrites history.

The attack of the review: change an alert's severity in ClickHouse, recompute the chain and the
heads with plain SHA-256, and ask ``audit verify``. It used to say ok; the chain alone still does
(asserted below, so the test shows what the signatures add), but verification now fails.
"""

from __future__ import annotations

import base64
import logging
import stat

import orjson
import pytest

from pipeline.audit.chain import ChainRow, row_hash
from pipeline.audit.check import verify_clickhouse
from pipeline.audit.facts import alert_records
from pipeline.audit.hook import AuditHook
from pipeline.audit.keys import (
    HeadSigner,
    Signing,
    data_dir,
    generate_keypair,
    load_public,
    load_signer,
    load_verifier,
    read_head_files,
)
from pipeline.audit.store import AuditAppender
from pipeline.config import AuditSettings, load_settings
from pipeline.errors import ConfigError
from pipeline.sinks.writer import ClickHouseWriter
from tests.audit.conftest import make_alert

COLS = "seq, record_id, kind, subject, address, toUnixTimestamp64Milli(ts), actor, payload, prev_hash, hash"


@pytest.fixture
def keys(tmp_path):
    private, public, _ = generate_keypair(tmp_path / "keys")
    return AuditSettings(signing_key_file=str(private)), load_public(public), tmp_path / "heads"


@pytest.fixture
def signed(store, chdb_dsn, keys):
    """Ten alerts committed through the pipeline's hook in three batches: heads signed per batch."""
    client, db = store
    settings, verifier, heads = keys
    hook = AuditHook(chdb_dsn, evidence=False, audit=AuditSettings(signing_key_file=settings.signing_key_file,
                                                                    heads_dir=str(heads)))
    writer = ClickHouseWriter(client, db, on_commit=hook)
    for batch in ([0, 1, 2, 3], [4, 5, 6], [7, 8, 9]):
        writer.add("alerts", [make_alert(i) for i in batch])
        writer.flush()
        hook.sync()
    hook.close()
    return client, db, verifier, heads


def _verify(client, db, verifier, heads, tail=0):
    return verify_clickhouse(client, db, verifier, heads, tail)


def _mutate(client, sql):
    client.command(sql, settings={"mutations_sync": 2})


def test_keygen_writes_an_owner_only_private_key_and_never_overwrites(tmp_path):
    private, public, kid = generate_keypair(tmp_path)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    signer = load_signer(AuditSettings(signing_key_file=str(private)), "chdb://unused")
    verifier = load_public(public)
    assert signer.key_id == verifier.key_id == kid
    head = signer.sign("db", 7, "ab" * 32, 1_700_000_000_000)
    assert verifier.verify("db", head)
    assert not verifier.verify("db", head._replace(hash="cd" * 32))  # another hash
    assert not verifier.verify("other_db", head)  # a head of one chain is no head of another
    with pytest.raises(ConfigError, match="never overwritten"):
        generate_keypair(tmp_path)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(signer)


def test_the_key_comes_from_the_environment_and_never_shows(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secret = base64.b64encode(raw).decode()
    settings = load_settings(env={"TRONRISK_AUDIT_SIGNING_KEY": secret})
    assert secret not in repr(settings) and secret not in str(settings)
    signer = load_signer(settings.audit, "chdb://unused")
    assert signer.source == "audit.signing_key" and secret not in repr(signer)
    assert load_verifier(settings.audit, "chdb://unused").key_id == signer.key_id
    with pytest.raises(ConfigError, match="not an Ed25519 private key") as err:
        load_signer(AuditSettings(signing_key="bm90IGEga2V5"), "chdb://unused")
    assert "bm90IGEga2V5" not in str(err.value)


def test_the_demo_key_is_made_on_first_use_in_a_private_file(tmp_path, caplog):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    caplog.set_level(logging.WARNING, logger="pipeline.audit.keys")
    first = load_signer(AuditSettings(), dsn)
    key = data_dir(dsn) / "audit" / "signing.key"
    assert key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert str(key) in caplog.text and "generated a signing key" in caplog.text
    assert load_signer(AuditSettings(), dsn).key_id == first.key_id  # made once, then reused
    assert load_verifier(AuditSettings(), dsn).key_id == first.key_id  # from signing.pub beside it
    with pytest.raises(ConfigError, match="verify_key_file"):
        load_verifier(AuditSettings(), f"chdb://{tmp_path / 'elsewhere' / 'chdb'}")


def test_each_committed_batch_gets_one_signed_head_in_the_database_and_in_a_file(signed):
    client, db, verifier, heads = signed
    stored = client.query(f"SELECT seq, key_id, signature != '' FROM {db}.audit_heads FINAL ORDER BY seq").result_rows
    assert [(s, k, ok) for s, k, ok in stored] == [(4, verifier.key_id, 1), (7, verifier.key_id, 1),
                                                     (10, verifier.key_id, 1)]
    in_files = [h for h, _ in read_head_files(heads, db)]
    assert [h.seq for h in in_files] == [4, 7, 10] and all(verifier.verify(db, h) for h in in_files)
    result = _verify(client, db, verifier, heads)
    assert result.ok, result.problems


def _rewrite_severity(client, db, alert_id: str, severity: str) -> None:
    """The attacker of finding 8: no key, but write access to every table."""
    _mutate(client, f"ALTER TABLE {db}.alerts UPDATE severity = '{severity}' WHERE alert_id = '{alert_id}'")
    rows = [ChainRow(*r) for r in client.query(f"SELECT {COLS} FROM {db}.audit_log ORDER BY seq").result_rows]
    forged, prev = [], None
    for r in rows:
        if r.subject == alert_id:
            payload = orjson.loads(r.payload)
            payload["severity"] = severity
            r = r._replace(payload=orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode())
        if prev is not None:
            r = r._replace(prev_hash=prev)
        r = r._replace(hash=row_hash(*r[:9]))  # plain SHA-256, recomputed
        forged.append(r)
        prev = r.hash
    _mutate(client, f"TRUNCATE TABLE {db}.audit_log")
    client.insert(f"{db}.audit_log", forged, column_names=list(ChainRow._fields))
    heads = client.query(f"SELECT seq, recorded_at, key_id, signature FROM {db}.audit_heads FINAL").result_rows
    _mutate(client, f"TRUNCATE TABLE {db}.audit_heads")  # heads recomputed too, old signatures kept
    by_seq = {r.seq: r.hash for r in forged}
    client.insert(f"{db}.audit_heads", [(s, by_seq[s], at, k, sig) for s, at, k, sig in heads],
                  column_names=["seq", "hash", "recorded_at", "key_id", "signature"])


def test_finding_8_a_recomputed_chain_and_heads_no_longer_verify(signed):
    client, db, verifier, heads = signed
    _rewrite_severity(client, db, "alert0005", "low")
    without_keys = verify_clickhouse(client, db)
    assert without_keys.chain.ok and not [p for p in without_keys.problems if p.kind == "head"]  # as before
    result = _verify(client, db, verifier, heads)
    assert not result.ok
    first = result.first
    # the files outside the database still hold the heads that were signed: records 5..7 moved away
    assert first.kind == "modified" and first.seq == 7 and "seq 5..7" in first.message, first
    signatures = [p for p in result.problems if p.kind == "signature"]
    assert {p.seq for p in signatures} == {7, 10}  # the copied signatures do not cover the new hashes
    assert all("record_id" in p.message and "not signed by the audit key" in p.message for p in signatures)


def test_finding_8_without_the_head_files_the_forged_heads_fail_their_signatures(signed):
    client, db, verifier, _heads = signed
    _rewrite_severity(client, db, "alert0005", "low")
    result = _verify(client, db, verifier, None)
    assert [p.kind for p in result.problems][:2] == ["signature", "signature"]
    assert "bad signature: the head at seq 7 (record_id" in result.first.message


def test_deleting_every_head_leaves_an_unsigned_tail_that_fails(signed):
    client, db, verifier, _heads = signed
    _rewrite_severity(client, db, "alert0005", "low")
    _mutate(client, f"TRUNCATE TABLE {db}.audit_heads")
    result = _verify(client, db, verifier, None)
    assert result.first.kind == "unsigned" and result.first.seq == 1
    assert "10 record(s), seq 1..10" in result.first.message and "record_id" in result.first.message


def test_a_head_signed_with_another_key_is_a_bad_signature(signed, tmp_path):
    client, db, verifier, heads = signed
    _, _, _ = generate_keypair(tmp_path / "mallory")
    mallory = load_signer(AuditSettings(signing_key_file=str(tmp_path / "mallory" / "signing.key")), "chdb://x")
    seq, h = client.query(f"SELECT seq, hash FROM {db}.audit_log ORDER BY seq DESC LIMIT 1").result_rows[0]
    forged = mallory.sign(db, seq, h, 1)
    client.insert(f"{db}.audit_heads", [tuple(forged)], column_names=["seq", "hash", "recorded_at", "key_id", "signature"])
    result = _verify(client, db, verifier, heads)
    assert result.first.kind == "signature" and f"names key {mallory.key_id}" in result.first.message


def test_an_unsigned_tail_is_accepted_only_up_to_the_setting(signed):
    client, db, verifier, heads = signed
    AuditAppender(client, db).append(alert_records([make_alert(20), make_alert(21)]))  # no key here
    assert _verify(client, db, verifier, heads).first.kind == "unsigned"
    relaxed = _verify(client, db, verifier, heads, tail=2)
    assert relaxed.ok and any("not signed yet" in n for n in relaxed.notes)


def test_cutting_the_chain_is_caught_by_the_head_files(signed):
    client, db, verifier, heads = signed
    _mutate(client, f"ALTER TABLE {db}.audit_log DELETE WHERE seq > 7")
    _mutate(client, f"ALTER TABLE {db}.audit_heads DELETE WHERE seq > 7")
    result = _verify(client, db, verifier, heads)
    assert result.first.kind == "removed" and result.first.seq == 10 and "ends at seq 7" in result.first.message


def test_editing_only_the_alerts_table_is_named(signed):
    client, db, verifier, heads = signed
    _mutate(client, f"ALTER TABLE {db}.alerts UPDATE severity = 'low' WHERE alert_id = 'alert0003'")
    result = _verify(client, db, verifier, heads)
    assert result.chain.ok and result.first.kind == "modified"
    assert "alert alert0003" in result.first.message and "severity 'low'" in result.first.message
    assert "says 'high'" in result.first.message
    _mutate(client, f"ALTER TABLE {db}.alerts UPDATE severity = 'high', details = '{{}}' WHERE alert_id = 'alert0003'")
    assert "has details" in _verify(client, db, verifier, heads).first.message


def test_signing_writers_share_the_chain_with_the_analyst_cli(store, keys):
    client, db = store
    settings, verifier, heads = keys
    signing = Signing(load_signer(settings, "chdb://x"), heads)
    assert isinstance(signing.signer, HeadSigner)
    pipeline_side, analyst_side = AuditAppender(client, db, signing=signing), AuditAppender(client, db, signing=signing)
    pipeline_side.append(alert_records([make_alert(1)]))
    analyst_side.append(alert_records([make_alert(2)]))
    pipeline_side.append(alert_records([make_alert(3)]))
    assert [r[0] for r in client.query(f"SELECT seq FROM {db}.audit_heads FINAL ORDER BY seq").result_rows] == [1, 2, 3]
    writer = ClickHouseWriter(client, db)  # the alerts themselves, as the sink stored them
    writer.add("alerts", [make_alert(i) for i in (1, 2, 3)])
    writer.flush()
    assert _verify(client, db, verifier, heads).ok


def test_head_files_of_a_dropped_database_are_moved_aside_not_deleted(signed):
    from pipeline.audit.keys import retire_head_files

    _client, db, _verifier, heads = signed
    moved = retire_head_files(heads, db)
    assert moved is not None and moved.name.startswith(f"{db}.dropped-") and any(moved.iterdir())
    assert list(read_head_files(heads, db)) == [] and retire_head_files(heads, db) is None
