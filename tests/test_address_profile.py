"""``address``: one address's lists, transfers, alerts and feature history, read back from chDB.

The feature snapshots are the real ones: a hand-built transfer sequence goes through the graph
stage and the address shards, and every update of the subject is stored as the flow stores it.
The expected figures are computed from that sequence in the test, not copied from a run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.address_profile import profile
from pipeline.errors import AddressError, ConfigError
from pipeline.operators.features import ShardState
from pipeline.operators.graph import GraphStage
from pipeline.operators.routing import route
from pipeline.operators.windows import WindowConfig
from pipeline.records import Alert
from pipeline.sinks.rows import feature_rows
from pipeline.sinks.writer import ClickHouseWriter
from pipeline.storage.clickhouse import open_storage
from pipeline.tron.address import base58_to_hex, to_base58
from pipeline.watchlists import load_watchlists
from tests.operators.conftest import Chain

ROOT = Path(__file__).resolve().parents[1]
LISTS = load_watchlists(ROOT / "rules" / "lists")
SUBJECT = min(LISTS.addresses)  # on the shipped OFAC list
A, B, C = (to_base58("41" + f"{i:02x}" * 20) for i in (0xA1, 0xB2, 0xC3))


def _sequence() -> list:
    chain = Chain()
    return [chain.tx(0, A, SUBJECT, usd=100.0), chain.tx(3, B, SUBJECT, usd=250.0),
            chain.tx(6, SUBJECT, C, usd=300.0), chain.tx(9, SUBJECT, C, usd=40.0, ok=False),
            chain.tx(12, A, B, usd=5.0)]


def _alerts() -> list[Alert]:
    ts = _sequence()[2].ts
    return [Alert("al-high", ts, ts + 5, 1, "tx1", SUBJECT, "sanctioned_direct", "v1", "critical", 95.0,
                  "confirmed", "block", "Sanctioned address active", ("sanctions",), "{}"),
            Alert("al-low", ts + 3000, ts + 3005, 2, "tx2", SUBJECT, "large_transfer", "v1", "low", 20.0,
                  "confirmed", "block", "Large transfer", ("size",), "{}"),
            Alert("al-reorged", ts + 6000, ts + 6005, 3, "tx3", SUBJECT, "large_transfer", "v1", "high", 60.0,
                  "dropped", "block", "Large transfer", ("size",), "{}")]  # its block was reorged away


def seed(dsn: str) -> list:
    """Run the sequence through the real stages and store transfers, features and alerts."""
    config = WindowConfig()
    graph, shards = GraphStage(config, LISTS.addresses), {}
    updates = []
    for t in _sequence():
        for key, touches in sorted(route(graph.process([t]), config.n_shards).items()):
            updates.extend(shards.setdefault(key, ShardState(config)).process(touches))
    mine = [u for u in updates if u.address == SUBJECT]
    client, d = open_storage(dsn)
    writer = ClickHouseWriter(client, d.database)
    writer.add("transfers", list(_sequence()))
    writer.add("address_features", feature_rows(u.features for u in mine))
    writer.add("alerts", _alerts())
    writer.flush()
    client.close()
    return mine


@pytest.fixture
def stored(chdb_dsn):
    mine = seed(chdb_dsn)
    client, d = open_storage(chdb_dsn)
    yield client, d.database, mine
    client.close()


def test_the_profile_adds_up_what_was_stored(stored):
    client, db, mine = stored
    seq = _sequence()
    p = profile(client, db, SUBJECT, LISTS)
    assert p["lists"] == [{"list": e.list_name, "label": e.label, "severity": e.severity}
                          for e in LISTS.entries_of(SUBJECT)] and p["lists"]
    out = [t for t in seq if t.from_address == SUBJECT]
    assert p["sent"] == {"transfers": len(out), "succeeded": sum(t.success for t in out),
                         "usd": sum(t.amount_usd for t in out if t.success),  # the failed 40 did not move
                         "counterparties": 1, "first_ts": out[0].ts, "last_ts": out[-1].ts}
    inn = [t for t in seq if t.to_address == SUBJECT]
    assert p["received"]["transfers"] == len(inn) and p["received"]["counterparties"] == 2
    assert p["received"]["usd"] == pytest.approx(sum(t.amount_usd for t in inn))
    assert p["alerts"]["total"] == 2 and p["alerts"]["high_or_critical"] == 1  # the reorged one left out
    assert [a["alert_id"] for a in p["alerts"]["newest"]] == ["al-low", "al-high"]  # newest first

    f = p["features"]
    assert f["snapshots"] == len({u.transfer.ts for u in mine}) == 4
    latest = mine[-1].features
    assert f["latest"] == {"ts": latest.ts, "block_number": latest.block_number, **latest.as_dict()}
    # the real features: the failed payment is a failed outflow, not a value movement
    assert (f["latest"]["tx_out_count"], f["latest"]["failed_out"], f["latest"]["watch_hops"]) == (1, 1, 0)
    assert [h["ts"] for h in f["history"]] == sorted((u.transfer.ts for u in mine), reverse=True)


def test_limits_bound_what_is_returned_and_hex_names_the_same_address(stored):
    client, db, mine = stored
    p = profile(client, db, base58_to_hex(SUBJECT), LISTS, history=2, alerts=1)
    assert p["address"] == SUBJECT
    assert [h["ts"] for h in p["features"]["history"]] == [mine[-1].transfer.ts, mine[-2].transfer.ts]
    assert p["features"]["snapshots"] == 4  # the count is of everything stored, not of what is shown
    assert [a["alert_id"] for a in p["alerts"]["newest"]] == ["al-low"] and p["alerts"]["total"] == 2


def test_an_address_never_seen_has_an_empty_profile_and_a_bad_one_is_refused(stored):
    client, db, _ = stored
    p = profile(client, db, A, LISTS)  # sent and received, but no features or alerts stored for it
    assert p["lists"] == [] and p["sent"]["transfers"] == 2 and p["alerts"]["total"] == 0
    assert p["features"] == {"snapshots": 0, "first_ts": None, "last_ts": None, "latest": None, "history": []}
    with pytest.raises(AddressError, match="checksum"):
        profile(client, db, SUBJECT[:-1] + ("1" if SUBJECT[-1] != "1" else "2"), LISTS)
    with pytest.raises(ConfigError, match="at least 1"):
        profile(client, db, SUBJECT, LISTS, history=0)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_pipeline.py"), *args], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_command_prints_the_profile_and_its_json(tmp_path):
    dsn = f"chdb://{tmp_path / 'chdb'}"
    seeded = subprocess.run([sys.executable, "-c", f"from tests.test_address_profile import seed; seed({dsn!r})"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert seeded.returncode == 0, seeded.stderr
    shown = _cli("address", SUBJECT, "--history", "3", "--clickhouse", dsn)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"address {SUBJECT}"
    assert lines[1].startswith("  lists: ofac_sdn_trx (")
    assert "sent: 2 transfers (1 failed), $300.00 moved, 1 counterparties" in shown.stdout
    assert "alerts: 2 (1 high or critical; reorged ones left out), newest 2:" in shown.stdout
    assert "features: 4 snapshots" in shown.stdout and "history (newest 3; in = tx_in_count" in shown.stdout
    assert any(ln.split()[:2] == ["failed_out", "1"] for ln in lines)

    as_json = json.loads(_cli("address", SUBJECT, "--json", "--clickhouse", dsn).stdout)
    assert as_json["features"]["latest"]["usd_in"] == 350 and len(as_json["features"]["history"]) == 4

    bad = _cli("address", "Tnope", "--clickhouse", dsn)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Tnope" in bad.stderr
    zero = _cli("address", SUBJECT, "--history", "0", "--clickhouse", dsn)
    assert zero.returncode == 2 and "--history: must be at least 1, got 0" in zero.stderr
