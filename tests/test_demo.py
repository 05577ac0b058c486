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
    assert {r["node"] for r in rep["rows"] if r["reached_s"] is None} == {p["node"] for p in rep["phone_chain"]}
    assert all(p["contact"] for p in rep["phone_chain"])
    assert (out / "town.png").stat().st_size > 10_000
    led = Ledger(out / "ledger.sqlite")
    assert led.verify().ok


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
        assert {p["node"] for p in rep["phone_chain"]} == off
        on = [n for n in r.graph.nodes if n not in off]
        assert rep["single_points_of_failure"] == sorted(nx.articulation_points(r.graph.subgraph(on)))
