"""Hot reload of rules and watchlists (pipeline.hot_reload) and exposure for newly listed addresses.

Real files in a temporary directory; edits are made the way an operator makes them (rewrite the
file), and ``os.utime`` pins a new mtime so the change is seen whatever the file system's clock
resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.hot_reload import HotReload
from pipeline.operators.graph import GraphStage
from pipeline.operators.windows import NO_HOPS, WindowConfig
from pipeline.rules.engine import load_ruleset
from pipeline.watchlists import WatchlistLoader
from tests.operators.conftest import Chain

ROOT = Path(__file__).resolve().parents[2]
OFAC = [a for a in (ROOT / "rules" / "lists" / "ofac_sdn_trx.txt").read_text().split() if a.startswith("T")]
LISTED, LATER = OFAC[0], OFAC[1]

RULE = """rules:
  - id: blacklisted_counterparty
    title: Counterparty on a list
    description: Value moves to or from a listed address.
    tags: [watchlist]
    severity: {severity}
    when: {{kinds: value}}
    condition: listed(counterparty)
    cooldown: 1h
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def files(tmp_path):
    rules, lists = tmp_path / "rules", tmp_path / "lists"
    rules.mkdir()
    lists.mkdir()
    _write(rules / "pack.yaml", RULE.format(severity="high"), 1)
    _write(lists / "scam.txt", f"{LISTED}\n", 1)
    return rules, lists


def _hot(rules: Path, lists: Path, clock: Clock, interval_s: float = 5.0) -> HotReload:
    loader = WatchlistLoader(lists)
    return HotReload(load_ruleset([rules], loader.current()), [rules], loader, interval_s, clock=clock)


def test_an_edited_list_is_in_force_after_the_interval_and_listeners_hear_of_it(files):
    rules, lists = files
    clock = Clock()
    hot = _hot(rules, lists, clock)
    heard = []
    hot.subscribe(lambda rs, wl: heard.append((rs, wl)))
    before_rules, before_lists = hot.ruleset, hot.watchlists
    assert LISTED in before_lists and LATER not in before_lists

    _write(lists / "scam.txt", f"{LISTED}\n{LATER}\n", 2)
    clock.now = 4.9
    hot.poll()  # the interval has not passed: the files are not even looked at
    assert hot.watchlists is before_lists and heard == []
    clock.now = 5.0
    hot.poll()
    assert LATER in hot.watchlists and hot.watchlists is not before_lists
    assert hot.ruleset is before_rules  # the rules did not change ...
    assert hot.ruleset.env.lists is hot.watchlists  # ... but their listed(...) reads the new lists
    assert heard == [(None, hot.watchlists)] and hot.reloads == 1
    clock.now = 10.0
    hot.poll()  # nothing changed since: no new snapshot, nobody told
    assert len(heard) == 1


def test_a_rule_edit_swaps_the_rule_set_and_a_broken_edit_keeps_the_one_in_force(files):
    rules, lists = files
    clock = Clock()
    hot = _hot(rules, lists, clock, interval_s=1.0)
    heard = []
    hot.subscribe(lambda rs, wl: heard.append((rs, wl)))
    first = hot.ruleset

    _write(rules / "pack.yaml", RULE.format(severity="critial"), 2)  # a typo
    clock.now = 1.0
    hot.poll()
    assert hot.ruleset is first and heard == []
    assert len(hot.last_errors) == 1 and "pack.yaml:" in hot.last_errors[0]
    assert "critical" in hot.last_errors[0]  # the closest valid value is suggested

    _write(rules / "pack.yaml", RULE.format(severity="critical"), 3)
    clock.now = 2.0
    hot.poll()
    assert hot.ruleset is not first and hot.last_errors == []
    assert hot.ruleset.rule("blacklisted_counterparty").severity == "critical"
    assert heard == [(hot.ruleset, None)]
    assert hot.ruleset.env is first.env  # one environment: the lists stay shared


def test_a_broken_list_keeps_the_lists_in_force_and_names_the_line(files):
    rules, lists = files
    clock = Clock()
    hot = _hot(rules, lists, clock, interval_s=1.0)
    good = hot.watchlists
    _write(lists / "scam.txt", f"{LISTED}\nTnotAnAddress\n", 2)
    clock.now = 1.0
    hot.poll()
    assert hot.watchlists is good and hot.reloads == 0
    assert any("scam.txt:2" in e for e in hot.last_errors)


def test_without_an_interval_the_files_are_never_looked_at_again(files):
    rules, lists = files
    clock = Clock()
    hot = _hot(rules, lists, clock, interval_s=float("inf"))
    _write(lists / "scam.txt", f"{LISTED}\n{LATER}\n", 2)
    clock.now = 1e9
    hot.poll()
    assert LATER not in hot.watchlists


NEW_RULE = """rules:
  - id: large_inflow
    title: Large inflow
    description: Added in the same edit as the allow-list entry naming it.
    tags: [large_transfer]
    severity: low
    when: {kinds: value, role: receiver}
    condition: amount_usd >= 1000
"""


def test_an_edited_allow_list_reaches_the_rules_and_the_audit_listener_and_a_broken_one_does_not(files):
    from pipeline.allowlists import AllowlistLoader

    rules, lists = files
    allow_dir = rules.parent / "allow"
    allow_dir.mkdir()
    _write(allow_dir / "x.csv", f"{LATER},*,,exchange hot wallet\n", 1)
    clock = Clock()
    loader = WatchlistLoader(lists)
    hot = HotReload(load_ruleset([rules], loader.current()), [rules], loader, 5.0, clock=clock,
                    allow=AllowlistLoader(allow_dir))
    heard = []
    hot.subscribe_allowlists(heard.append)
    first = hot.allowlists
    assert LATER in first and hot.ruleset.env.allow is first  # in force in the rules from the start

    _write(allow_dir / "x.csv", f"{LATER},*,,exchange hot wallet\n"
                                f"{LISTED},blacklisted_counterparty,,our test\n", 2)
    clock.now = 4.9
    hot.poll()
    assert hot.allowlists is first and heard == []
    clock.now = 5.0
    hot.poll()
    assert LISTED in hot.allowlists and hot.ruleset.env.allow is hot.allowlists and heard == [hot.allowlists]
    assert hot.reloads == 1

    # a rule and an entry naming it, in one edit: the entry is checked against the new rule set
    _write(rules / "more.yaml", NEW_RULE, 3)
    _write(allow_dir / "x.csv", f"{LATER},large_inflow,,exchange hot wallet\n", 3)
    clock.now = 10.0
    hot.poll()
    assert hot.last_errors == [] and hot.allowlists.entries_of(LATER)[0].scope == ("large_inflow",)
    assert hot.ruleset.rule("large_inflow") and hot.ruleset.env.allow is hot.allowlists
    good = hot.allowlists

    _write(allow_dir / "x.csv", f"{LATER},large_inflow,,\n", 4)  # the reason was deleted
    clock.now = 15.0
    hot.poll()
    assert hot.allowlists is good and len(heard) == 2
    assert any(f"{allow_dir / 'x.csv'}:1: missing reason" in e for e in hot.last_errors)


# -- the graph stage: newly listed addresses expose their window neighbourhood at once -------------

SMALL = WindowConfig(long_ms=600_000, short_ms=60_000, lateness_ms=0, horizon_ms=600_000, n_shards=4,
                     hub_degree=3)


def test_listing_an_address_exposes_its_neighbourhood_up_to_max_hops_in_both_directions(chain: Chain):
    g = GraphStage(SMALL)
    # P -> W -> A -> B -> C -> D, and Q pays P: W is listed later
    g.process([chain.tx(0, "P", "W"), chain.tx(0, "W", "A"), chain.tx(3, "A", "B"), chain.tx(3, "B", "C"),
               chain.tx(6, "C", "D"), chain.tx(6, "Q", "P")])
    assert all(g.exposure(a) == (NO_HOPS, 0.0) for a in "PWABCDQ")
    assert g.set_watchlist(["W"]) == 5  # P, A (1 hop); Q, B (2); C (3); D is 4 hops away
    assert g.exposure("W") == (0, 1.0)
    assert g.exposure("A") == (1, 0.5) and g.exposure("P") == (1, 0.5)  # paid by / paying W
    assert g.exposure("B") == (2, 0.25) and g.exposure("Q") == (2, 0.25)
    assert g.exposure("C") == (3, 0.125) and g.exposure("D") == (NO_HOPS, 0.0)
    # the facts of the next transfer carry it, as if the edges had arrived after the listing
    (_, facts), = g.process([chain.tx(9, "B", "E")])
    assert (facts.from_hops, facts.to_hops) == (2, 3)
    assert g.set_watchlist(["W"]) == 0  # nothing new on the list: nothing to do


def test_the_backfill_does_not_walk_through_hubs_and_exposure_fades_with_the_window(chain: Chain):
    g = GraphStage(SMALL)
    g.process([chain.tx(0, "W", "HUB")] + [chain.tx(0, "HUB", f"U{i}") for i in range(5)]
              + [chain.tx(0, "W", "A"), chain.tx(0, "A", "B")])
    g.set_watchlist(["W"])
    assert g.exposure("HUB")[0] == 1  # the hub itself was paid by W ...
    assert all(g.exposure(f"U{i}") == (NO_HOPS, 0.0) for i in range(5))  # ... its customers are not
    assert g.exposure("B")[0] == 2  # an ordinary address is walked through
    later = chain.tx(SMALL.long_ms / 1000 + 1, "X", "Y")
    g.process([later])
    assert g.exposure("A") == (NO_HOPS, 0.0) and g.stats()["exposed"] == 0  # the window moved on


def test_a_delisting_withdraws_the_exposure_it_passed_on_at_once(chain: Chain):
    g = GraphStage(SMALL, ["W"])
    # exposure reaches A and then B through transfers, in time order
    g.process([chain.tx(0, "W", "A"), chain.tx(3, "A", "B"), chain.tx(3, "X", "Y")])
    assert g.exposure("A")[0] == 1 and g.exposure("B")[0] == 2
    assert g.exposure("A")[1] > 0.0 and g.exposure("B")[1] > 0.0
    g.set_watchlist([])
    assert g.exposure("W") == (NO_HOPS, 0.0)
    assert g.exposure("A") == (NO_HOPS, 0.0) and g.exposure("B") == (NO_HOPS, 0.0)
    assert g.stats()["exposed"] == 0  # withdrawn, not left to fade over the hour
    (_, facts), = g.process([chain.tx(6, "B", "C")])  # and nothing is passed on any more
    assert (facts.from_hops, facts.to_hops, facts.from_score, facts.to_score) == (NO_HOPS, NO_HOPS, 0.0, 0.0)


def test_after_a_delisting_exposure_from_addresses_still_listed_is_kept_or_found_again(chain: Chain):
    g = GraphStage(SMALL, ["W1", "W2"])
    g.process([chain.tx(0, "W1", "A"),   # A: 1 hop from W1
               chain.tx(0, "W2", "B"),   # B: 1 hop from W2
               chain.tx(3, "B", "A")])   # A: 2 hops from W2 as well, but 1 from W1 wins
    assert g.exposure("A") == (1, pytest.approx(0.5 * (1 - 3 / 600)))  # faded for 3 s of 600
    b = g.exposure("B")
    g.set_watchlist(["W2"])
    assert g.exposure("B") == b  # came from W2: untouched
    assert g.exposure("A") == (2, 0.25)  # W1's hop withdrawn; W2's two hops found by the walk
    g.set_watchlist(["W2", "W1"])  # listed again: the walk from W1 puts the hop back
    assert g.exposure("A") == (1, 0.5)


def test_a_delisting_never_raises_or_refreshes_exposure_and_respects_time_order(chain: Chain):
    g = GraphStage(SMALL, ["W1", "W2"])  # a 600 s window
    g.process([chain.tx(0, "X", "B"),      # X pays B before B is exposed: no taint flows to X
               chain.tx(10, "W2", "B"),    # B: 1 hop from W2, at 10 s
               chain.tx(13, "B", "A"),     # A: 2 hops from W2, at 13 s
               chain.tx(500, "W1", "A")])  # A: 1 hop from W1, at 500 s
    g.process([chain.tx(590, "P", "Q")])
    assert g.exposure("A") == (1, pytest.approx(0.5 * (1 - 90 / 600)))
    g.set_watchlist(["W2"])
    # back to what W2 accounts for, as of the transfer that carried it (13 s), not refreshed
    assert g.exposure("A") == (2, pytest.approx(0.25 * (1 - 577 / 600)))
    assert g.exposure("X") == (NO_HOPS, 0.0)
    g.process([chain.tx(614, "P", "Q")])
    assert g.exposure("A")[0] == NO_HOPS  # its two hops expire with the 13 s transfer's window


def test_a_delisted_address_keeps_what_addresses_still_listed_give_it(chain: Chain):
    g = GraphStage(SMALL, ["Y", "X"])
    g.process([chain.tx(0, "Y", "X"), chain.tx(3, "X", "C")])
    assert g.exposure("X") == (0, 1.0) and g.exposure("C")[0] == 1
    g.set_watchlist(["Y"])
    assert g.exposure("X")[0] == 1 and g.exposure("C")[0] == 2  # now through Y


def test_delisting_an_address_nobody_was_exposed_through_changes_nothing(chain: Chain):
    g = GraphStage(SMALL, ["W", "Z"])
    g.process([chain.tx(0, "W", "A"), chain.tx(3, "A", "B")])
    before = {a: g.exposure(a) for a in "AB"}
    assert g.set_watchlist(["W"]) == 0  # Z exposed nobody: no walk, no change
    assert {a: g.exposure(a) for a in "AB"} == before


def test_a_list_directory_moved_away_mid_deploy_keeps_the_lists_and_comes_back(files):
    rules, lists = files
    clock = Clock()
    hot = _hot(rules, lists, clock, interval_s=1.0)
    good = hot.watchlists
    moved = lists.with_name("lists.old")
    lists.rename(moved)
    clock.now = 1.0
    hot.poll()  # must not raise inside the dataflow
    assert hot.watchlists is good and any("does not exist" in e for e in hot.last_errors)
    moved.rename(lists)
    _write(lists / "scam.txt", f"{LISTED}\n{LATER}\n", 9)
    clock.now = 2.0
    hot.poll()
    assert LATER in hot.watchlists and hot.last_errors == []
