"""plexus.sim radio model: path loss, SF floors, capture, half-duplex, listen-before-talk."""

from __future__ import annotations

import math

import pytest
from plexus.sim import radio, run_scenario
from plexus.sim.stubs import make_scripted_node

LONG_FAST = {"name": "LONG_FAST", "sf": 11, "bw_hz": 250000, "cr": 5, "preamble": 16}


# ------------------------------------------------------------------ pure functions


def test_path_loss_monotone_in_distance_and_exponent():
    f = 869_525_000
    ds = [1, 2, 10, 50, 100, 500, 1000, 3000, 10000, 40000]
    for n in (2.0, 2.7, 3.5, 4.0):
        pls = [radio.path_loss_db(d, f, n) for d in ds]
        assert all(b > a for a, b in zip(pls, pls[1:])), n
    assert radio.path_loss_db(1000, f, 4.0) > radio.path_loss_db(1000, f, 3.0)
    # 10*n dB per decade
    assert radio.path_loss_db(1000, f, 3.5) - radio.path_loss_db(100, f, 3.5) == pytest.approx(35.0)


def test_free_space_reference_and_noise_floor():
    # Friis at 1 m, 869.525 MHz: 20 log10(4 pi f / c) = 31.2 dB
    assert radio.free_space_loss_db(1.0, 869_525_000) == pytest.approx(31.23, abs=0.01)
    assert radio.noise_floor_dbm(250_000) == pytest.approx(-174 + 53.98 + 6, abs=0.01)
    assert radio.noise_floor_dbm(125_000, 3.0) == pytest.approx(-174 + 50.97 + 3, abs=0.01)
    assert radio.sensitivity_dbm(11, 250_000) == pytest.approx(-131.52, abs=0.01)


def test_sf_floors_match_sx1276_table_13():
    assert radio.SNR_FLOOR_DB == {6: -5.0, 7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
    sens = [radio.sensitivity_dbm(sf, 125_000) for sf in range(7, 13)]
    assert all(b < a for a, b in zip(sens, sens[1:]))
    with pytest.raises(ValueError):
        radio.snr_floor_db(13)
    s = radio.sensitivity_dbm(11, 250_000)
    assert radio.receivable(s, -17.5, 11, s)
    assert not radio.receivable(s - 0.01, -17.51, 11, s)


def test_capture_rule_is_exact_at_6_db():
    assert radio.captures(-100.0, -106.0)
    assert not radio.captures(-100.0, -105.99)
    assert not radio.captures(-106.0, -100.0)
    assert radio.captures(-90.0, -120.0)


def test_shadowing_symmetric_seeded_and_order_independent():
    a = radio.Shadowing(6.0, 42)
    b = radio.Shadowing(6.0, 42)
    vals = [a(i, j) for i in range(10) for j in range(10) if i != j]
    assert all(a(i, j) == a(j, i) for i in range(10) for j in range(10))
    # asked in a different order, same values
    assert [b(j, i) for i in reversed(range(10)) for j in reversed(range(10)) if i != j][::-1] == vals
    c = radio.Shadowing(6.0, 43)
    assert any(c(i, j) != a(i, j) for i in range(10) for j in range(i + 1, 10))
    sd = math.sqrt(sum(v * v for v in vals) / len(vals))
    assert 3.0 < sd < 9.0
    assert radio.Shadowing(0.0, 1)(1, 2) == 0.0


def test_airtime_comes_from_plexwire():
    from plexwire.airtime import time_on_air_us

    assert radio.time_on_air_us(50, LONG_FAST) == time_on_air_us(50, 11, 250000, cr=5, preamble=16)


# ------------------------------------------------------------------ engine radio rules


def _table(tx: dict, links: list, *, duration=10, radio_cfg=None, modem="LONG_FAST", extra_nodes=("R",)):
    names = list(tx) + [n for n in extra_nodes if n not in tx]
    rc = {"lbt_jitter_ms": [0, 0]}
    rc.update(radio_cfg or {})
    return {
        "name": "radio-test", "duration_s": duration, "seed": 1, "modem": modem, "radio": rc,
        "nodes": [{"name": n, "config": {"tx": tx.get(n, [])}} for n in names],
        "links": [{"a": a, "b": b, **kw} for a, b, kw in links],
    }


def _rx(res, node):
    return [p for _t, kind, p in res.events[node] if kind == "rx"]


def _tx_times(res, node):
    return [r.t_us for r in res.tx_log if r.node == node]


NO_CAD = {"cad_symbols": 1e6}


@pytest.mark.parametrize("weak_rssi, a_survives", [(-106.0, True), (-105.9, False), (-112.0, True), (-101.0, False)])
def test_capture_in_engine_at_exactly_6_db(weak_rssi, a_survives):
    # A and B are hidden from each other; both hit R at the same instant.
    sc = _table({"A": [[1000, 30]], "B": [[1000, 30]]},
                [("A", "R", {"rssi": -100.0}), ("B", "R", {"rssi": weak_rssi})])
    res = run_scenario(sc, node_factory=make_scripted_node)
    got = _rx(res, "R")
    if a_survives:
        assert len(got) == 1 and got[0]["rssi"] == -100
    else:
        assert got == []
        assert res.metrics["collisions"] == 2
        assert res.metrics["per_node"]["R"]["drops"] == {"busy": 1, "collision": 1}


def test_stronger_frame_in_preamble_takes_the_lock_but_not_after():
    pre_ms = (16 + 4.25) * 2048 / 250  # preamble of LongFast, ms
    # B (weak) first, A (7 dB stronger) 10 ms later: still in B's preamble -> A received
    sc = _table({"B": [[1000, 30]], "A": [[1010, 30]]},
                [("A", "R", {"rssi": -100.0}), ("B", "R", {"rssi": -107.0})])
    got = _rx(run_scenario(sc, node_factory=make_scripted_node), "R")
    assert [g["rssi"] for g in got] == [-100]
    # A arrives after B's preamble: the receiver is busy with B, and A ruins B -> nothing
    late = int(1000 + pre_ms + 20)
    sc = _table({"B": [[1000, 30]], "A": [[late, 30]]},
                [("A", "R", {"rssi": -100.0}), ("B", "R", {"rssi": -107.0})])
    res = run_scenario(sc, node_factory=make_scripted_node)
    assert _rx(res, "R") == []
    assert res.metrics["drops"]["busy"] == 1 and res.metrics["drops"]["collision"] == 1
    # the weak one first and the strong one much later (after B ended): both received
    sc = _table({"B": [[1000, 30]], "A": [[3000, 30]]},
                [("A", "R", {"rssi": -100.0}), ("B", "R", {"rssi": -107.0})])
    assert len(_rx(run_scenario(sc, node_factory=make_scripted_node), "R")) == 2


def test_half_duplex_transmitting_node_misses_a_frame():
    # R transmits from 1000 ms (about 0.5 s); A's frame starts at 1100: R misses it, C hears it.
    sc = _table({"R": [[1000, 30]], "A": [[1100, 20]]},
                [("A", "R", {"rssi": -90.0}), ("A", "C", {"rssi": -90.0})],
                radio_cfg=NO_CAD, extra_nodes=("R", "C"))
    res = run_scenario(sc, node_factory=make_scripted_node)
    assert _rx(res, "R") == []
    assert len(_rx(res, "C")) == 1
    assert res.metrics["per_node"]["R"]["drops"] == {"half_duplex": 1}
    # starting to transmit in the middle of a reception loses that frame too
    sc = _table({"A": [[1000, 30]], "R": [[1100, 20]]},
                [("A", "R", {"rssi": -90.0}), ("A", "C", {"rssi": -90.0})],
                radio_cfg=NO_CAD, extra_nodes=("R", "C"))
    res = run_scenario(sc, node_factory=make_scripted_node)
    assert _rx(res, "R") == []
    assert len(_rx(res, "C")) == 1
    # without the overlap R hears A
    sc = _table({"A": [[1000, 30]], "R": [[3000, 20]]},
                [("A", "R", {"rssi": -90.0})], radio_cfg=NO_CAD, extra_nodes=("R",))
    assert len(_rx(run_scenario(sc, node_factory=make_scripted_node), "R")) == 1


@pytest.mark.parametrize("modem, floor", [("SHORT_FAST", -7.5), ("MEDIUM_SLOW", -15.0), ("LONG_FAST", -17.5), ("LONG_SLOW", -20.0)])
def test_sf_floor_decides_reception(modem, floor):
    for snr, ok in ((floor, True), (floor + 3, True), (floor - 0.1, False)):
        sc = _table({"A": [[1000, 20]]}, [("A", "R", {"snr": snr})], modem=modem, duration=30)
        got = _rx(run_scenario(sc, node_factory=make_scripted_node), "R")
        assert (len(got) == 1) is ok, (modem, snr)
        if ok:
            assert got[0]["snr"] == pytest.approx(snr, abs=0.01)


def test_position_mode_range_follows_link_budget():
    # heltec_v3: 22 dBm + 2 + 2 dBi; sensitivity SF11/250k -131.5 -> 157.5 dB budget
    f = 869_525_000
    budget = 22 + 4 - radio.sensitivity_dbm(11, 250_000)
    d_max = 10 ** ((budget - radio.free_space_loss_db(1.0, f)) / 35.0)
    for d, ok in ((0.95 * d_max, True), (1.05 * d_max, False)):
        sc = {"name": "p", "duration_s": 10, "radio": {"path_loss_exponent": 3.5, "shadowing_db": 0},
              "nodes": [{"name": "A", "pos": [0, 0], "config": {"tx": [[1000, 20]]}}, {"name": "R", "pos": [d, 0]}]}
        res = run_scenario(sc, node_factory=make_scripted_node)
        assert (len(_rx(res, "R")) == 1) is ok
        assert (res.graph.number_of_edges() == 1) is ok


def test_listen_before_talk_defers_then_both_get_through():
    links = [("A", "R", {"rssi": -100.0}), ("B", "R", {"rssi": -101.0}), ("A", "B", {"rssi": -95.0})]
    # B wants to send 100 ms into A's frame: it hears A, waits for the end (jitter 0), no collision
    res = run_scenario(_table({"A": [[1000, 30]], "B": [[1100, 30]]}, links), node_factory=make_scripted_node)
    a_end = res.tx_log[0].t_us + res.tx_log[0].airtime_us
    assert _tx_times(res, "B") == [a_end]
    assert len(_rx(res, "R")) == 2
    # B starts 5 ms after A: inside the 2-symbol CAD window (16.4 ms) it cannot see A -> collision
    res = run_scenario(_table({"A": [[1000, 30]], "B": [[1005, 30]]}, links), node_factory=make_scripted_node)
    assert _tx_times(res, "B") == [1_005_000]
    assert _rx(res, "R") == []
    # a frame below B's sensitivity does not make B defer
    weak = [("A", "R", {"rssi": -100.0}), ("B", "R", {"rssi": -120.0}), ("A", "B", {"snr": -25.0})]
    res = run_scenario(_table({"A": [[1000, 30]], "B": [[1100, 30]]}, weak), node_factory=make_scripted_node)
    assert _tx_times(res, "B") == [1_100_000]


def test_lbt_jitter_is_seeded():
    links = [("A", "R", {"rssi": -100.0}), ("B", "R", {"rssi": -101.0}), ("A", "B", {"rssi": -95.0})]
    sc = _table({"A": [[1000, 30]], "B": [[1100, 30]]}, links, radio_cfg={"lbt_jitter_ms": [0, 500]})
    t1 = [_tx_times(run_scenario(sc, seed=s, node_factory=make_scripted_node), "B") for s in (1, 1, 2, 3)]
    assert t1[0] == t1[1]
    assert len({t[0] for t in t1}) > 1


def test_link_loss_probability():
    sc = _table({"A": [[1000 + 1000 * k, 20] for k in range(200)]}, [("A", "R", {"rssi": -90.0, "loss": 0.3})], duration=300)
    res = run_scenario(sc, node_factory=make_scripted_node)
    n = len(_rx(res, "R"))
    assert 110 < n < 170
    assert res.metrics["drops"]["link_loss"] == 200 - n
