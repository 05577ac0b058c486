"""plexus sim engine + metrics: determinism, delivery with the stub, reachability over time, duty audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import networkx as nx
import pytest
from plexus.sim import load_scenario, run_scenario
from plexus.sim.engine import Engine
from plexus.sim.metrics import audit_duty_cycle, greedy_cds, percentile
from plexus.sim.stubs import make_scripted_node, make_stub_node

REQUIRED_KEYS = {
    "delivery_ratio", "transmissions", "transmissions_per_bulletin", "cds_lower_bound", "airtime_s_total",
    "airtime_s_max_node", "duty_cycle_violations", "latency_s_p50", "latency_s_p95", "ack_ratio",
    "ack_latency_s_p95", "per_node", "collisions", "drops",
}


def line(n=13, spacing=3000, **extra):
    sc = {"name": "line-t", "duration_s": 300, "seed": 1, "radio": {"path_loss_exponent": 3.5, "shadowing_db": 0},
          "nodes": [{"name": "l%02d" % i, "pos": [i * spacing, 0]} for i in range(n)], "traffic": []}
    sc.update(extra)
    return sc


def stub(sc, **kw):
    return run_scenario(sc, node_factory=make_stub_node, **kw)


# ------------------------------------------------------------------ determinism


def test_same_seed_same_run_other_seed_other_run():
    a = stub("town", seed=3)
    b = stub("town", seed=3)
    c = stub("town", seed=4)
    assert a.tx_log == b.tx_log
    assert a.metrics == b.metrics
    assert a.events == b.events
    assert a.tx_log != c.tx_log
    assert set(a.graph.edges()) != set(c.graph.edges())  # shadowing is drawn from the run seed


def test_deterministic_across_processes_and_hash_seeds():
    outs = []
    for hs in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hs)
        code = ("import json; from plexus.sim import run_scenario; from plexus.sim.stubs import make_stub_node; "
                "r = run_scenario('courier', seed=5, node_factory=make_stub_node); "
                "print(json.dumps(r.metrics, sort_keys=True)); print(len(r.tx_log), r.tx_log[-1])")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout)
    assert outs[0] == outs[1]


# ------------------------------------------------------------------ delivery with the stub


def test_line_of_12_hops_delivers_everything_in_hop_order():
    res = stub(line(traffic=[{"type": "bulletin", "t": 10, "node": "l00"}]))
    g = res.graph
    assert g.number_of_edges() == 12 and nx.diameter(g) == 12
    m = res.metrics
    assert m["reachable_pairs"] == 12 and m["delivered_pairs"] == 12 and m["delivery_ratio"] == 1.0
    assert m["cds_lower_bound"] == 11
    (mid,) = res.deliveries
    t = res.deliveries[mid]
    times = [t["l%02d" % i] for i in range(1, 13)]
    assert times == sorted(times) and times[-1] > times[0]
    hops = [p["hops"] for _t, k, p in res.events["l12"] if k == "message"]
    assert hops == [12]
    assert m["transmissions"] == 13  # the origin and each of the 12 others once (hop limit 15)
    assert m["latency_s_p95"] >= m["latency_s_p50"] > 0


def test_hop_limit_caps_delivery_and_the_ratio_uses_reachable_pairs():
    sc = line(traffic=[{"type": "bulletin", "t": 10, "node": "l00"}])
    for nd in sc["nodes"]:
        nd["config"] = {"hop_limit": 4}
    res = stub(sc)
    m = res.metrics
    (mid,) = res.deliveries
    assert sorted(res.deliveries[mid]) == ["l01", "l02", "l03", "l04"]
    assert m["reachable_pairs"] == 12 and m["delivered_pairs"] == 4
    assert m["delivery_ratio"] == pytest.approx(4 / 12, abs=1e-4)
    assert m["drops"]["core.hop_limit"] >= 1
    assert m["per_node"]["l12"]["delivery_ratio"] == 0.0 and m["per_node"]["l02"]["delivery_ratio"] == 1.0


def test_transmissions_and_airtime_add_up():
    res = stub("line")
    m = res.metrics
    assert m["transmissions"] == len(res.tx_log) == sum(v["tx"] for v in m["per_node"].values())
    assert m["airtime_s_total"] == pytest.approx(sum(r.airtime_us for r in res.tx_log) / 1e6, abs=1e-3)
    assert m["airtime_s_max_node"] == max(v["airtime_s"] for v in m["per_node"].values())
    assert m["transmissions_per_bulletin"] == pytest.approx(m["transmissions"] / 3, abs=0.01)
    assert [r.t_us for r in res.tx_log] == sorted(r.t_us for r in res.tx_log)


# ------------------------------------------------------------------ reachability over time


def test_partition_that_heals_counts_as_reachable_and_the_flood_misses_it():
    sc = line(n=5, traffic=[{"type": "bulletin", "t": 10, "node": "l00"}],
              failures=[{"type": "partition", "t": 0, "until": 100, "groups": [["l00", "l01"], ["l02", "l03", "l04"]]}])
    res = stub(sc)
    (mid,) = res.reachable
    assert res.reachable[mid] == ["l01", "l02", "l03", "l04"]
    assert sorted(res.deliveries[mid]) == ["l01"]  # the flood ran while the partition stood
    assert res.metrics["delivery_ratio"] == 0.25
    assert res.metrics["per_node"]["l02"]["rx"] == 0
    # a partition that never heals: the far side is not reachable, so the ratio is 1
    sc["failures"][0]["until"] = None
    res = stub(sc)
    assert list(res.reachable.values()) == [["l01"]]
    assert res.metrics["delivery_ratio"] == 1.0


def test_courier_journeys_respect_time():
    sc = {"name": "c", "duration_s": 400, "seed": 1, "radio": {"path_loss_exponent": 3.5, "shadowing_db": 0, "courier_step_s": 5},
          "nodes": [{"name": "a0", "pos": [0, 0]}, {"name": "a1", "pos": [500, 0]},
                    {"name": "b0", "pos": [20000, 0]}, {"name": "b1", "pos": [20500, 0]},
                    {"name": "bike", "courier": [[0, 0, 0], [100, 0, 0], [200, 20000, 0]]}],
          "traffic": [{"type": "bulletin", "t": 10, "node": "a0"},
                      {"type": "bulletin", "t": 11, "node": "b0"},
                      {"type": "bulletin", "t": 300, "node": "b1"}]}
    res = stub(sc)
    r = [res.reachable[p["id"]] for p in res.posts]
    assert r[0] == ["a1", "b0", "b1", "bike"]  # carried A -> B by the bike
    assert r[1] == ["b1", "bike"]  # the bike meets b0 only after it left A: no journey back in time
    assert r[2] == ["b0", "bike"]
    # the t=0 graph has the bike in A
    assert set(nx.node_connected_component(res.graph, "a0")) == {"a0", "a1", "bike"}
    # the stub floods at once, so the bike relays a0's bulletin in A only
    assert sorted(res.deliveries[res.posts[0]["id"]]) == ["a1", "bike"]
    assert res.metrics["reachable_pairs"] == 8 and res.metrics["delivered_pairs"] < 8


def test_bundled_courier_needs_the_courier():
    res = stub("courier")
    comps = sorted(len(c) for c in nx.connected_components(res.graph))
    assert comps == [8, 9]
    m = res.metrics
    assert m["reachable_pairs"] == 3 * 16  # every bulletin can reach every other node via the bike
    assert m["delivered_pairs"] < m["reachable_pairs"]


def test_raid_switched_off_nodes_are_not_reachable_afterwards():
    res = stub("raid")
    off = {n for n, iv in res.off.items() if iv}
    assert len(off) == 8  # round(0.3 * 27)
    assert all(iv == [(1800.0, None)] for n, iv in res.off.items() if n in off)
    for p in res.posts:
        reach = set(res.reachable[p["id"]])
        if p["t_ms"] > 1_800_000:
            assert not reach & off
            assert not set(res.deliveries[p["id"]]) & off
        else:
            assert reach & off
    for n in off:
        assert all(r.t_us < 1_800_000_000 for r in res.tx_log if r.node == n)
    assert res.metrics["per_node"][sorted(off)[0]]["off"] == [[1800.0, None]]


def test_off_interval_then_back_on():
    sc = line(n=3, traffic=[{"type": "bulletin", "t": 10, "node": "l00"}, {"type": "bulletin", "t": 200, "node": "l00"}],
              failures=[{"type": "off", "t": 5, "until": 100, "nodes": ["l01"]}])
    res = stub(sc)
    a, b = res.posts
    assert res.reachable[a["id"]] == ["l01", "l02"]  # l01 is back at 100 s, and then l02 can hear it
    assert res.deliveries[a["id"]] == {}
    assert sorted(res.deliveries[b["id"]]) == ["l01", "l02"]
    assert res.off["l01"] == [(5.0, 100.0)]


# ------------------------------------------------------------------ drills


def small_drill(prob=1.0):
    return line(n=5, duration_s=400, traffic=[{"type": "drill", "t": 10, "node": "l00", "confirm": {"prob": prob, "delay_s": [5, 30]}}])


def test_drill_acks_come_back_to_the_caller():
    res = stub(small_drill())
    m = res.metrics
    assert m["drills"] == 1 and m["alert_delivery_ratio"] == 1.0
    assert m["confirmations_pressed"] == 4
    assert 0.5 <= m["ack_ratio"] <= 1.0
    assert m["ack_latency_s_p95"] > 0 and m["confirm_latency_s_p95"] >= 5
    receipts = [p for _t, k, p in res.events["l00"] if k == "receipt"]
    assert len(receipts) == m["confirmed_receipts"]
    assert m["delivery_ratio"] is None  # no bulletins
    none = stub(small_drill(prob=0.0)).metrics
    assert none["confirmations_pressed"] == 0 and none["ack_ratio"] is None


def test_receipt_semantics_are_pluggable():
    seen = []

    def parser(payload):
        seen.append(payload)
        return None

    res = run_scenario(small_drill(), node_factory=make_stub_node, receipt_parser=parser)
    assert seen and res.metrics["confirmed_receipts"] == 0 and res.metrics["ack_ratio"] == 0.0


# ------------------------------------------------------------------ factory contract


def test_node_factory_is_called_with_the_documented_keywords():
    calls = []

    def factory(name, **kw):
        calls.append((name, kw))
        return make_stub_node(name, **kw)

    sc = line(n=3)
    sc["nodes"][1]["config"] = {"role": "relay"}
    run_scenario(sc, router="managed", seed=9, node_factory=factory)
    assert [c[0] for c in calls] == ["l00", "l01", "l02"]
    for i, (_name, kw) in enumerate(calls):
        assert set(kw) == {"index", "router", "seed", "modem", "region", "board", "config"}
        assert kw["index"] == i and kw["router"] == "managed" and isinstance(kw["seed"], int)
        assert kw["modem"] == {"name": "LONG_FAST", "sf": 11, "bw_hz": 250000, "cr": 5, "preamble": 16}
        assert kw["region"]["name"] == "EU_868" and kw["region"]["duty_cycle"] == 0.10
        assert kw["board"]["name"] == "heltec_v3"
    assert calls[1][1]["config"] == {"role": "relay"}
    assert len({kw["seed"] for _n, kw in calls}) == 3
    with pytest.raises(ValueError):
        run_scenario(sc, router="nope", node_factory=make_stub_node)


def test_lagging_timer_does_not_stall_the_run():
    class Lazy:
        """Claims a timer is due forever but never sends."""

        name = "lazy"
        node_id = b"\x01" * 8

        def __init__(self, *a, **k):
            pass

        def get_timer(self):
            return 0

        def frames_to_send(self, now):
            return []

        def handle_timer(self, now):
            pass

        def next_event(self):
            return None

        def receive_frame(self, *a):
            pass

    res = run_scenario(line(n=1, duration_s=3600), node_factory=lambda name, **kw: Lazy())
    assert 0 < res.metrics["spurious_timer_polls"] < 5000


# ------------------------------------------------------------------ metrics helpers


def test_duty_cycle_auditor_catches_a_violating_log():
    H = 3_600_000_000
    budget = 360_000_000  # EU 10 %
    # 10 frames of 40 s within one hour: 400 s > 360 s; the 10th frame ends the violation
    log = [(k * 300_000_000, 40_000_000) for k in range(10)]
    v, peak = audit_duty_cycle(log, budget)
    assert v == 1 and peak == 400_000_000
    # the same frames spread over two hours: fine
    v, peak = audit_duty_cycle([(k * 800_000_000, 40_000_000) for k in range(10)], budget)
    assert v == 0 and peak <= 200_000_000
    # exactly at the budget is allowed
    assert audit_duty_cycle([(k * 100_000_000, 36_000_000) for k in range(10)], budget)[0] == 0
    # partial overlap is clipped: frame [0, 100 s] + 300 s at the end of the hour window
    v, peak = audit_duty_cycle([(0, 100_000_000), (H + 50_000_000 - 300_000_000, 300_000_000)], budget)
    assert peak == 300_000_000 + 50_000_000 and v == 0
    v, _ = audit_duty_cycle([(0, 100_000_000), (H + 50_000_000 - 320_000_000, 320_000_000)], budget)
    assert v == 1
    assert audit_duty_cycle([], budget) == (0, 0)


def test_engine_audits_the_tx_log():
    # one node sending a 255-byte LongFast frame every 5 s for an hour: ~50 % duty cycle
    tx = [[1000 + 5000 * k, 255] for k in range(700)]
    sc = {"name": "loud", "duration_s": 3600, "nodes": [{"name": "L", "config": {"tx": tx}}, {"name": "R"}],
          "links": [{"a": "L", "b": "R"}]}
    m = run_scenario(sc, node_factory=make_scripted_node).metrics
    assert m["duty_cycle_violations"] > 0 and m["duty_cycle_violating_nodes"] == 1
    assert m["per_node"]["L"]["duty_peak_pct"] > 10.0 and m["per_node"]["R"]["duty_cycle_violations"] == 0
    sc["region"] = "US_915"
    assert run_scenario(sc, node_factory=make_scripted_node).metrics["duty_cycle_violations"] == 0


def test_greedy_cds_and_percentiles():
    path = {i: [j for j in (i - 1, i + 1) if 0 <= j < 5] for i in range(5)}
    assert greedy_cds(path) == [1, 2, 3]
    star = {0: [1, 2, 3, 4], 1: [0], 2: [0], 3: [0], 4: [0]}
    assert greedy_cds(star) == [0]
    two = {0: [1], 1: [0], 2: [3, 4], 3: [2], 4: [2], 5: []}
    assert greedy_cds(two) == [0, 2]
    g = nx.random_geometric_graph(60, 0.25, seed=3)
    adj = {u: sorted(g[u]) for u in g}
    cds = set(greedy_cds(adj))
    for comp in nx.connected_components(g):
        if len(comp) > 1:
            sub = cds & comp
            assert nx.is_dominating_set(g.subgraph(comp), sub) and nx.is_connected(g.subgraph(sub))
    assert percentile([], 50) is None
    assert percentile([3, 1, 2, 4], 50) == 2 and percentile([3, 1, 2, 4], 95) == 4 and percentile([7], 95) == 7


def test_json_metrics_have_the_required_keys():
    res = stub("town")
    m = res.metrics
    assert REQUIRED_KEYS <= set(m)
    json.dumps(m)  # serialisable as is
    assert set(m["per_node"]) == set(res.names) and len(res.names) == 30
    assert m["drills"] == 1 and m["bulletins"] == 5 and m["ack_ratio"] is not None
    assert m["cds_lower_bound"] >= 1 and m["cds_lower_bound"] < 30


def test_bundled_scenarios_load_and_static_graphs_are_connected():
    for name, n, connected in (("town", 30, True), ("line", 13, True), ("raid", 30, True), ("festival", 100, True), ("courier", 17, False)):
        sc = load_scenario(name)
        assert len(sc["nodes"]) == n and sc["modem"]["name"] == "LONG_FAST"
        g = Engine(sc, "flood", sc["seed"], make_stub_node).static_graph()
        assert nx.is_connected(g) is connected, name


def test_scenario_forms_are_equivalent_and_status_is_collected(tmp_path):
    from plexus.sim.scenario import normalize

    raw = line(n=4, traffic=[{"type": "bulletin", "t": 10, "node": "l00"}])
    p = tmp_path / "l.json"
    p.write_text(json.dumps(raw))
    runs = [stub(raw), stub(normalize(raw)), stub(str(p))]
    assert runs[0].tx_log == runs[1].tx_log == runs[2].tx_log
    st = runs[0].status
    assert set(st) == {"l00", "l01", "l02", "l03"} and st["l03"]["stored"] == 1 and st["l00"]["tx_frames"] == 1


def test_a_bulletin_can_be_a_decision_and_the_core_label_can_be_given():
    """`"decision": true` on a bulletin posts a decision bulletin (the real core stores it flagged); the bundled
    town's first bulletin is one; a given factory is labelled "custom" unless the caller says what it builds."""
    from plexus.sim import nodes as simnodes
    from plexus.sim.scenario import ScenarioError, normalize
    from plexwire import msg

    assert load_scenario("town")["traffic"][0] == {
        "type": "bulletin", "t": 60, "node": 0, "text": "Assembly moved to the library, Thursday 19:00", "decision": True}
    assert all("decision" not in it for it in load_scenario("town")["traffic"][1:])
    with pytest.raises(ScenarioError, match=r"traffic\[0\]\.decision must be true or false"):
        normalize(line(n=2, traffic=[{"type": "bulletin", "t": 10, "node": "l00", "decision": "yes"}]))
    raw = line(n=3, spacing=1000, traffic=[{"type": "bulletin", "t": 10, "node": "l00", "text": "we decide", "decision": True},
                                           {"type": "bulletin", "t": 20, "node": "l01", "text": "just news"}])
    cores = {}

    def factory(name, **kw):
        cores[name] = simnodes.make_core_node(name, **kw)
        return cores[name]

    res = run_scenario(raw, node_factory=factory, core="plexnode")
    assert res.metrics["core"] == "plexnode"
    assert run_scenario(raw, node_factory=make_stub_node).metrics["core"] == "custom"  # the stub takes the flag too
    from plexus.ledger import Entry

    flags = {}
    for i, rec in enumerate(cores["l02"].store.since(0, 64)):
        e = Entry(i + 1, bytes(16), rec[4])
        if e.kind in (msg.BULLETIN, msg.BULLETIN_LONG):
            flags[e.text] = bool(e.msg.f["flags"] & msg.BULLETIN_DECISION)
    assert flags == {"we decide": True, "just news": False}
