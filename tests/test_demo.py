"""`make demo` end to end: bulletin, drill with report and phone chain, ledger synced and verified, plot."""

import json

from plexus.cli import main
from plexus.ledger import Ledger


def test_demo_town(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "DRILL REPORT" in text and "verify: OK" in text
    rep = json.loads((out / "drill-report.json").read_text())
    assert rep["expected"] == 29 and rep["reached"] >= 27
    # the phone chain: silent nodes first, then those reached where nobody pressed confirm
    chain = rep["phone_chain"]
    assert {r["node"] for r in rep["rows"] if r["reached_s"] is None} == {p["node"] for p in chain if p["state"] == "silent"}
    assert {r["node"] for r in rep["rows"] if r["reached_s"] is not None and r["confirmed_s"] is None} == {
        p["node"] for p in chain if p["state"] == "reached, not confirmed"}
    assert [p["state"] for p in chain] == sorted((p["state"] for p in chain), key=lambda s: s != "silent")
    assert all(p["contact"] for p in chain)
    assert len(chain) == rep["expected"] - rep["confirmed"]
    if rep["confirmed"] < rep["expected"]:
        assert "Every node" not in text and "PHONE CHAIN" in text
    # a confirmed node whose "reached" receipt was dropped shows reached = confirmed, marked, and explained
    for r in rep["rows"]:
        if r["confirmed_s"] is not None and not r["reached_receipt"]:
            assert r["reached_s"] == r["confirmed_s"]
    assert any(not r["reached_receipt"] for r in rep["rows"]) and 'no separate "reached" receipt' in text
    assert "None" not in text
    # the real node core runs the demo, and the summary line is whole even when piped
    assert "core plexnode" in " ".join(text.split()) and "core custom" not in text
    assert any(line.startswith("ledger ") and line.rstrip().endswith("verify: OK") for line in text.splitlines())
    assert (out / "town.png").stat().st_size > 10_000
    led = Ledger(out / "ledger.sqlite")
    assert led.verify().ok
    led.close()
    # the first town bulletin is a decision: the assembly consents, `plexus ledger decisions` shows it adopted
    assert main(["ledger", "decisions", "--ledger", str(out / "ledger.sqlite"), "--json"]) == 0
    decs = json.loads(capsys.readouterr().out)
    decs = decs["decisions"] if isinstance(decs, dict) else decs
    assert [(d["text"], d["state"]) for d in decs] == [("Assembly moved to the library, Thursday 19:00", "adopted")]
    # the printed sheet has the drill as a report, not a key dump
    sheet = (out / "ledger.txt").read_text()
    assert "* Drill #1: Phone-tree drill: press confirm" in sheet and "started:" in sheet and "None" not in sheet
    assert "confirm_s_p50" not in sheet and "phone_chain" not in sheet


def test_raid_drill_report_names_silent_nodes_and_articulation_points():
    """Issue 6: on the raid scenario the report lists the switched-off nodes as silent and names the articulation points."""
    import networkx as nx
    from plexus import drill
    from plexus.sim import nodes as simnodes
    from plexus.sim.engine import run_scenario
    from plexus.sim.scenario import resolve

    raw = json.loads(resolve("raid").read_text())
    raw["traffic"].append({"type": "drill", "t": 2000, "node": "t00", "text": "after the raid: who is left?"})
    for seed in (1, 3):
        r = run_scenario(raw, "plexus", seed)
        rep = drill.report_from_sim(r, simnodes.context()["roster"])[0]
        off = {n for n, iv in r.off.items() if iv}
        assert len(off) == 8
        assert {p["node"] for p in rep["phone_chain"] if p["state"] == "silent"} == off
        # the rest of the chain: reached, nobody pressed confirm
        assert all(p["state"] == "reached, not confirmed" for p in rep["phone_chain"] if p["node"] not in off)
        on = [n for n in r.graph.nodes if n not in off]
        assert rep["single_points_of_failure"] == sorted(nx.articulation_points(r.graph.subgraph(on)))
