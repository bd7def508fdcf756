"""Watchlists: the shipped OFAC list, user TXT/CSV lists, file:line errors, reload."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.operators.graph import GraphStage
from pipeline.tron.address import base58_to_hex
from pipeline.watchlists import WatchlistLoader, load_watchlists
from tests.conftest import SHARED
from tests.operators.conftest import Chain

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "rules" / "lists"
SHARED_OFAC = SHARED / "lists" / "ofac_sdn_trx.txt"
OFAC = [line.strip() for line in SHIPPED.joinpath("ofac_sdn_trx.txt").read_text().splitlines() if line.strip()]
GOOD1, GOOD2, GOOD3 = OFAC[:3]


def test_shipped_ofac_list_with_attribution():
    w = load_watchlists(SHIPPED)
    assert len(OFAC) == 184 and len(w) == 184  # the LICENSE file is not read as a list
    assert w.lists_of(GOOD1) == ("ofac_sdn_trx",)
    assert w.severity_of(GOOD1) == "critical" and w.severity("ofac_sdn_trx") == "critical"
    assert "OFAC" in w.label("ofac_sdn_trx") and "OFAC" in w.labels_of(GOOD1)[0]
    assert w.lists_of("TXYZnotlisted") == () and w.severity_of("TXYZnotlisted") is None
    assert (SHIPPED / "LICENSE-ofac-list-MIT.txt").read_text().startswith("MIT License")
    # the shipped copy is the shared fixture, unchanged
    assert SHIPPED.joinpath("ofac_sdn_trx.txt").read_bytes() == SHARED_OFAC.read_bytes()


def test_user_txt_and_csv_lists_with_labels_and_hex(tmp_path):
    (tmp_path / "scam.txt").write_text(f"# collectors\n{GOOD1}\n\n{base58_to_hex(GOOD2)}  # hex form\n")
    (tmp_path / "scam.yaml").write_text("label: Scam collectors\nseverity: medium\nsource: tips\n")
    (tmp_path / "mixed.csv").write_text(f"address,label,severity\n{GOOD2},mixer,low\n# note\n{GOOD3},,\n")
    w = load_watchlists(tmp_path)
    assert w.lists_of(GOOD2) == ("mixed", "scam")
    assert w.severity_of(GOOD2) == "medium"  # the highest of its entries
    assert w.labels_of(GOOD2) == ("mixer", "Scam collectors")
    assert [(e.label, e.severity) for e in w.entries_of(GOOD3)] == [("mixed", "high")]  # defaults
    assert w.lists["scam"].meta == {"source": "tips"} and w.lists["scam"].size == 2
    assert GOOD1 in w and "T123" not in w


def test_every_bad_line_is_reported_with_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_text(f"{GOOD1}\nnot-an-address\n{GOOD2}\n{GOOD3[:-1]}X\n")
    (tmp_path / "bad2.csv").write_text(f"address,label,severity\n{GOOD1},x,apocalyptic\n")
    with pytest.raises(ConfigError) as err:
        load_watchlists(tmp_path)
    msg = str(err.value)
    assert f"{tmp_path / 'bad.txt'}:2: invalid address 'not-an-address'" in msg
    assert f"{tmp_path / 'bad.txt'}:4:" in msg and "checksum" in msg
    assert f"{tmp_path / 'bad2.csv'}:2: severity 'apocalyptic'" in msg
    assert msg.startswith("3 problem(s)")
    lenient = load_watchlists(tmp_path, strict=False)
    assert len(lenient.problems) == 3
    assert GOOD1 in lenient and GOOD2 in lenient and lenient.lists_of(GOOD1) == ("bad",)


def test_bad_sidecar_is_reported(tmp_path):
    (tmp_path / "x.txt").write_text(f"{GOOD1}\n")
    (tmp_path / "x.yaml").write_text("label: [unclosed\n")
    with pytest.raises(ConfigError, match=r"x\.yaml:\d+: invalid YAML"):
        load_watchlists(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_watchlists(tmp_path / "missing")


def test_reload_on_change_keeps_old_snapshot_and_survives_bad_edits(tmp_path):
    shutil.copy(SHIPPED / "ofac_sdn_trx.txt", tmp_path / "ofac_sdn_trx.txt")
    (tmp_path / "mine.txt").write_text(f"{GOOD1}\n")
    loader = WatchlistLoader(tmp_path)
    before = loader.current()
    assert loader.maybe_reload() is False
    mine = tmp_path / "mine.txt"
    mine.write_text(f"{GOOD1}\n{GOOD2}\n# and one more\n")
    os.utime(mine, ns=(1, 1))  # a different mtime even on coarse filesystems
    assert loader.maybe_reload() is True
    after = loader.current()
    assert after is not before and after.lists_of(GOOD2) == ("mine", "ofac_sdn_trx")
    assert before.lists_of(GOOD2) == ("ofac_sdn_trx",)  # old snapshot untouched
    mine.write_text(f"{GOOD1}\nTbroken\n")
    os.utime(mine, ns=(2, 2))
    assert loader.maybe_reload() is False
    assert loader.current() is after and "mine.txt:2" in (loader.last_error or "")
    mine.write_text(f"{GOOD3}\n")
    os.utime(mine, ns=(3, 3))
    assert loader.maybe_reload() is True and loader.last_error is None
    assert loader.current().lists_of(GOOD1) == ("ofac_sdn_trx",)


def test_graph_stage_uses_a_loaded_watchlist():
    w = load_watchlists(SHIPPED)
    chain = Chain()
    g = GraphStage(watchlist=w)
    (_, facts), = g.process([chain.tx(0, GOOD1, "TVictimVictimVictimVictimVictim111", 5000)])
    assert (facts.from_hops, facts.to_hops, facts.to_score) == (0, 1, 0.5)


def test_a_resumed_graph_stage_takes_the_lists_in_force_now(tmp_path):
    """The flow's graph step (analytics._GraphLogic) applies HotReload's lists to a graph restored
    from a snapshot taken before the list changed: the resume uses today's lists, not the old."""
    import pickle

    from pipeline.analytics import AnalyticsSpec, _GraphLogic
    from pipeline.hot_reload import HotReload
    from pipeline.records import Block, DecodedBlock

    (tmp_path / "mine.txt").write_text(f"{GOOD1}\n")
    loader = WatchlistLoader(tmp_path)
    chain = Chain()

    def block(n: int, *transfers) -> DecodedBlock:
        return DecodedBlock(Block(n, f"b{n}", f"b{n - 1}", transfers[0].ts, "w", len(transfers), "t"),
                            list(transfers), [])

    def facts(out):
        return [item[1][1][0][2] for item in out if item[1][0] == "touches"]

    spec = AnalyticsSpec(watchlist=loader.current().addresses, hot=HotReload(None, [], loader, 0.0))
    logic = _GraphLogic(spec, None)
    out, _ = logic.on_batch([block(1, chain.tx(0, GOOD2, "TA"))])
    assert facts(out)[0].from_hops == 9
    saved = pickle.dumps((logic.graph, logic.seq, logic.structures))  # what a snapshot holds
    (tmp_path / "mine.txt").write_text(f"{GOOD1}\n{GOOD2}\n")
    os.utime(tmp_path / "mine.txt", ns=(5, 5))
    resumed = _GraphLogic(spec, saved)
    out, _ = resumed.on_batch([block(2, chain.tx(3, "TB", "TC"))])
    hops, score = resumed.graph.exposure("TA")  # GOOD2's earlier counterparty, exposed at once
    assert hops == 1 and 0.49 < score <= 0.5  # (fading over the window since the listing)
    out, _ = resumed.on_batch([block(3, chain.tx(6, GOOD2, "TB"))])
    assert (facts(out)[0].from_hops, facts(out)[0].to_hops) == (0, 1)
    snap = pickle.loads(pickle.dumps(loader.current()))
    assert snap.lists_of(GOOD2) == ("mine",) and snap.severity("mine") == "high"
