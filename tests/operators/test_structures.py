"""Structural detectors on hand-built sequences: each shape fires, its benign look-alike does not."""

from __future__ import annotations

import pickle

import orjson

from pipeline.operators.structures import StructureConfig, StructureDetector
from pipeline.records import Alert, Kind
from tests.operators.conftest import Chain, batches

SETTLE_S = 300  # the default settle time, seconds


def run(transfers, config: StructureConfig | None = None, flush: bool = True) -> list[Alert]:
    det = StructureDetector(config)
    out: dict[str, Alert] = {}
    for batch in batches(sorted(transfers, key=lambda t: t.ts)):
        out.update((a.alert_id, a) for a in det.process(batch))
    if flush:
        out.update((a.alert_id, a) for a in det.flush())
    return list(out.values())


def kinds(alerts: list[Alert]) -> dict[str, Alert]:
    return {orjson.loads(a.details)["structure"]: a for a in alerts}


def members(a: Alert) -> set[str]:
    return set(orjson.loads(a.details)["members"])


def later(chain: Chain, at: float) -> list:
    """Unrelated traffic after ``at``, so event time passes the settle point."""
    return [chain.tx(at + 3 * i, f"Tbg{i}a", f"Tbg{i}b", 5.0) for i in range(0, SETTLE_S // 3 + 20, 5)]


def test_fan_in_of_dedicated_senders_names_them(chain: Chain):
    sources = [f"Tsrc{i}" for i in range(7)]
    txs = [chain.tx(30 * i, s, "Tcollector", 900.0 + 37 * i) for i, s in enumerate(sources)]
    txs.append(chain.tx(400, "Tcollector", "Texit", 6000.0))
    found = kinds(run(txs + later(chain, 420)))
    assert set(found) == {"fan_in"}
    a = found["fan_in"]
    assert a.address == "Tcollector" and a.tags == ("fan_in",)
    assert members(a) == set(sources)  # the exit is not named: it is not a dedicated sender


def test_busy_wallet_is_no_collector_once_it_shows_itself(chain: Chain):
    # the first minute looks like a fan-in (every sender seen once); then the wallet turns out to
    # receive from everyone: the structure does not survive the settle time
    txs = [chain.tx(3 * i, f"Tuser{i}", "Thot", 50.0 + i) for i in range(120)]
    assert run(txs + later(chain, 900)) == []


def test_merchant_paid_by_ordinary_users_is_no_fan_in(chain: Chain):
    # customers also pay others: not dedicated to the merchant
    txs = []
    for i in range(8):
        txs.append(chain.tx(20 * i, f"Tcust{i}", "Tshop", 30.0))
        txs.append(chain.tx(20 * i + 5, f"Tcust{i}", f"Tother{i}", 12.0))
        txs.append(chain.tx(20 * i + 7, f"Tcust{i}", f"Tmore{i}", 9.0))
    assert run(txs + later(chain, 300)) == []


def test_processor_pulls_are_not_sources(chain: Chain):
    txs = [chain.tx(10 * i, f"Towner{i}", "Tmerchant", 40.0, kind=Kind.TRC20_TRANSFER_FROM)._replace(
        caller="Tprocessor") for i in range(8)]
    assert run(txs + later(chain, 200)) == []


def test_fan_out_to_fresh_receivers(chain: Chain):
    txs = [chain.tx(0, "Tfunder", "Tsplitter", 20_000.0)]
    recipients = [f"Trcpt{i}" for i in range(6)]
    txs += [chain.tx(60 + 9 * i, "Tsplitter", r, 3000.0 - 100 * i) for i, r in enumerate(recipients)]
    found = kinds(run(txs + later(chain, 200)))
    assert set(found) == {"fan_out"}
    assert found["fan_out"].address == "Tsplitter" and members(found["fan_out"]) == set(recipients)


def test_gas_station_paying_everyone_is_busy(chain: Chain):
    txs = [chain.tx(0, "Towner", "Tgas", 5000.0)]
    txs += [chain.tx(3 + 3 * i, "Tgas", f"Tnewbie{i}", 3.0) for i in range(70)]
    assert run(txs + later(chain, 400)) == []


def test_gather_scatter_hub(chain: Chain):
    txs = [chain.tx(6 * i, f"Tin{i}", "Thub", 2000.0 + i) for i in range(5)]
    txs += [chain.tx(60 + 6 * i, "Thub", f"Tout{i}", 1800.0 + i) for i in range(5)]
    found = kinds(run(txs + later(chain, 120)))
    assert "gather_scatter" in found and found["gather_scatter"].address == "Thub"
    assert members(found["gather_scatter"]) == {f"Tin{i}" for i in range(5)} | {f"Tout{i}" for i in range(5)}


def _parallel(chain: Chain, hold_s: float, width: int = 4) -> list:
    txs = []
    for i in range(width):
        txs.append(chain.tx(3 * i, "Torigin", f"Tmid{i}", 5000.0 + 10 * i))
        txs.append(chain.tx(3 * i + hold_s, f"Tmid{i}", "Tgather", (5000.0 + 10 * i) * 0.98))
    return txs


def test_scatter_gather_and_mules_are_told_apart_by_holding_time(chain: Chain):
    slow = kinds(run(_parallel(chain, hold_s=900) + later(chain, 1000)))
    assert "scatter_gather" in slow and slow["scatter_gather"].address == "Tgather"
    assert members(slow["scatter_gather"]) >= {"Torigin"} | {f"Tmid{i}" for i in range(4)}
    fast = kinds(run(_parallel(Chain(), hold_s=3) + later(chain, 100)))
    assert "mule_pass_through" in fast and "scatter_gather" not in fast


def test_two_layer_parallel_paths_are_a_stack(chain: Chain):
    txs = []
    for i in range(3):
        txs.append(chain.tx(3 * i, "Torigin", f"Tl1_{i}", 8000.0 + i))
        txs.append(chain.tx(30 + 3 * i, f"Tl1_{i}", f"Tl2_{i}", (8000.0 + i) * 0.99))
        txs.append(chain.tx(60 + 3 * i, f"Tl2_{i}", "Tsink", (8000.0 + i) * 0.98))
    found = kinds(run(txs + later(chain, 100)))
    assert "stack" in found and found["stack"].address == "Tsink"
    assert members(found["stack"]) == {"Torigin"} | {f"Tl1_{i}" for i in range(3)} | {f"Tl2_{i}" for i in range(3)}


def test_peel_chain_and_plain_layering_chain(chain: Chain):
    hops = [f"Thop{i}" for i in range(5)]
    txs, amount = [chain.tx(0, "Tstart", hops[0], 50_000.0)], 50_000.0
    for i in range(len(hops) - 1):
        peel = amount * 0.05
        txs.append(chain.tx(20 * i + 10, hops[i], f"Tcashout{i}", peel))
        amount -= peel
        txs.append(chain.tx(20 * i + 11, hops[i], hops[i + 1], amount))
    found = kinds(run(txs + later(chain, 120)))
    assert "peel_chain" in found and members(found["peel_chain"]) >= set(hops)
    plain = [chain.tx(0, "Ta", "Tb", 7000.0), chain.tx(60, "Tb", "Tc", 6990.0),
             chain.tx(120, "Tc", "Td", 6980.0), chain.tx(180, "Td", "Te", 6970.0)]
    assert set(kinds(run(plain + later(chain, 200)))) == {"stack"}


def test_time_respecting_cycle_up_to_six_hops(chain: Chain):
    ring = [f"Tring{i}" for i in range(6)]
    txs = [chain.tx(40 * i, ring[i], ring[(i + 1) % 6], 12_000.0 - 50 * i) for i in range(6)]
    found = kinds(run(txs + later(chain, 300)))
    assert set(found) == {"cycle"} and members(found["cycle"]) | {found["cycle"].address} == set(ring)
    # the same edges out of time order carry no value around: no cycle
    shuffled = [chain.tx(40 * (5 - i), ring[i], ring[(i + 1) % 6], 12_000.0) for i in range(6)]
    assert run(shuffled + later(chain, 300)) == []


def test_refund_and_market_maker_round_trips_are_no_cycle(chain: Chain):
    refund = [chain.tx(0, "Tbuyer", "Tseller", 300.0), chain.tx(30, "Tseller", "Tbuyer", 300.0)]
    assert run(refund + later(chain, 60)) == []
    # three market makers pass inventory round and round: after the first lap they are busy
    mm = ["Tmm0", "Tmm1", "Tmm2"]
    txs = [chain.tx(9 * k + 3 * i, mm[i], mm[(i + 1) % 3], 20_000.0) for k in range(12) for i in range(3)]
    assert run(txs + later(chain, 200)) == []


def test_deposit_address_sweeping_to_a_hot_wallet_is_nothing(chain: Chain):
    txs = []
    for i in range(60):  # users pay their deposit addresses, which sweep to the exchange
        txs.append(chain.tx(6 * i, f"Tcustomer{i}", f"Tdeposit{i}", 100.0 + i))
        txs.append(chain.tx(6 * i + 3, f"Tdeposit{i}", "Texchange", 100.0 + i))
    assert run(txs + later(chain, 400)) == []


def test_approval_drain_by_a_rarely_approved_spender(chain: Chain):
    unlimited = 2**256 - 1
    txs = [chain.tx(0, "Tvictim", "Tspender", 0.0, kind=Kind.TRC20_APPROVE, raw=unlimited),
           chain.tx(30, "Tvictim", "Tdrain", 25_000.0, kind=Kind.TRC20_TRANSFER_FROM)._replace(caller="Tspender")]
    found = kinds(run(txs + later(chain, 60)))
    assert set(found) == {"approval_drain"}
    a = found["approval_drain"]
    assert a.address == "Tvictim" and members(a) == {"Tspender", "Tdrain"} and a.severity == "critical"


def test_payment_processor_approved_by_many_owners_is_no_drain(chain: Chain):
    unlimited = 2**256 - 1
    txs = []
    for i in range(8):
        txs.append(chain.tx(5 * i, f"Tpayer{i}", "Tprocessor", 0.0, kind=Kind.TRC20_APPROVE, raw=unlimited))
        txs.append(chain.tx(5 * i + 2, f"Tpayer{i}", "Tshop", 45.0,
                            kind=Kind.TRC20_TRANSFER_FROM)._replace(caller="Tprocessor"))
    assert run(txs + later(chain, 100)) == []


def test_pending_structures_wait_for_the_settle_time_unless_flushed(chain: Chain):
    txs = _parallel(chain, hold_s=3)
    assert run(txs, flush=False) == []  # formed, not yet confirmed
    assert run(txs, flush=True)  # the end of the input confirms what is known by then
    assert run(txs, StructureConfig(settle_ms=0), flush=False)  # no settle time: at once


def test_a_growing_structure_keeps_its_alert_id_and_gains_members(chain: Chain):
    det = StructureDetector(StructureConfig(settle_ms=0))
    sources = [f"Tgrow{i}" for i in range(5 + StructureConfig().max_updates)]  # found at 5, then grows
    seen: dict[str, Alert] = {}
    for i, s in enumerate(sources):
        for a in det.process([chain.tx(10 * i, s, "Tpool", 500.0)]):
            seen.setdefault(a.alert_id, a)
            seen[a.alert_id] = a
    assert len(seen) == 1
    (a,) = seen.values()
    assert members(a) == set(sources)


def test_state_is_bounded_by_the_window_and_survives_a_snapshot(chain: Chain):
    cfg = StructureConfig(window_ms=600_000)
    det = StructureDetector(cfg)
    for k in range(40):  # 40 windows' worth of ever-new addresses
        det.process([chain.tx(60 * k + i * 0.01, f"Tx{k}_{i}", f"Ty{k}_{i}", 20.0) for i in range(50)])
    assert det.stats()["nodes"] <= 2 * 50 * 11  # what the last window (10 one-minute blocks) holds, at most
    clone = pickle.loads(pickle.dumps(det))
    nxt = [chain.tx(60 * 41, "Tp", "Tq", 30.0)]
    assert clone.process(nxt) == det.process(nxt)


def test_structuring_several_senders_paying_again_and_again(chain: Chain):
    senders = ["Tsmurf0", "Tsmurf1", "Tsmurf2"]
    txs = [chain.tx(40 * k + 7 * i, s, "Tpot", 9.0 + k + i) for k in range(4) for i, s in enumerate(senders)]
    txs += [chain.tx(500 + i, f"Tsmurf{i}", f"Televate{i}", 50.0) for i in range(3)]  # they do other things too
    found = kinds(run(txs + later(chain, 600)))
    assert "structuring" in found and found["structuring"].tags == ("fan_in",)
    assert found["structuring"].address == "Tpot" and members(found["structuring"]) == set(senders)


def test_regular_customers_among_many_one_off_ones_are_no_structuring(chain: Chain):
    txs = [chain.tx(30 * k + 3 * i, f"Tregular{i}", "Tcafe", 4.5) for k in range(4) for i in range(3)]
    txs += [chain.tx(2 + 5 * j, f"Twalkin{j}", "Tcafe", 6.0) for j in range(30)]
    assert "structuring" not in kinds(run(txs + later(chain, 400)))
