"""`plexus sim` command line and scenario-file validation."""

from __future__ import annotations

import json

import pytest
from plexus.sim import ScenarioError, load_scenario
from plexus.sim.cli import main
from plexus.sim.scenario import courier_position, normalize

REQUIRED_KEYS = {
    "delivery_ratio", "transmissions", "transmissions_per_bulletin", "cds_lower_bound", "airtime_s_total",
    "airtime_s_max_node", "duty_cycle_violations", "latency_s_p50", "latency_s_p95", "ack_ratio",
    "ack_latency_s_p95", "per_node", "collisions", "drops",
}


def one_error_line(capsys, code, expect):
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("plexus: error: ") and expect in lines[0]
    assert "Traceback" not in err and out == ""


def test_json_output(capsys):
    assert main(["line", "--json", "--router", "flood", "--seed", "2"]) == 0
    out, err = capsys.readouterr()
    m = json.loads(out)
    assert REQUIRED_KEYS <= set(m)
    assert m["router"] == "flood" and m["seed"] == 2 and m["scenario"] == "line" and m["nodes"] == 13


def test_table_output_without_json(capsys):
    assert main(["line"]) == 0
    out, _ = capsys.readouterr()
    assert "delivery ratio" in out and "transmissions" in out and "line" in out


def test_missing_file(capsys):
    one_error_line(capsys, main(["/nonexistent/dir/scn.json"]), "scenario file not found: /nonexistent/dir/scn.json")


def test_unknown_bundled_name(capsys):
    one_error_line(capsys, main(["townn"]), "no scenario file or bundled scenario named 'townn'")


def test_bad_json(tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text('{"name": "x",\n "nodes": [}\n')
    one_error_line(capsys, main([str(p)]), "is not valid JSON")
    p.write_text("")
    one_error_line(capsys, main([str(p)]), "line 1, column 1")


def test_schema_error_is_one_line(tmp_path, capsys):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"nodes": [{"name": "a", "pos": [0, 0]}], "traffic": [{"type": "bulletin", "t": 1, "node": "zz"}]}))
    one_error_line(capsys, main([str(p)]), "traffic[0].node: unknown node 'zz'")


def test_plot_writes_a_png(tmp_path, capsys):
    out = tmp_path / "run.png"
    assert main(["courier", "--json", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.loads(capsys.readouterr()[0])
    assert main(["line", "--plot", str(tmp_path / "nodir" / "x.png")]) == 1
    assert "cannot write plot" in capsys.readouterr()[1]


def test_wired_into_the_plexus_command(capsys):
    pcli = pytest.importorskip("plexus.cli")
    if "sim" not in getattr(pcli, "COMMANDS", {}):
        pytest.skip("plexus.cli has no sim command yet")
    assert pcli.main(["sim", "line", "--json"]) == 0
    assert REQUIRED_KEYS <= set(json.loads(capsys.readouterr()[0]))
    assert pcli.main(["sim", "/nonexistent.json"]) == 2
    assert "Traceback" not in capsys.readouterr()[1]


# ------------------------------------------------------------------ schema


def base(**kw):
    sc = {"name": "s", "duration_s": 100, "nodes": [{"name": "a", "pos": [0, 0]}, {"name": "b", "pos": [100, 0]}]}
    sc.update(kw)
    return sc


@pytest.mark.parametrize("raw, msg", [
    (base(colour="red"), "scenario: unknown field(s) colour"),
    (base(traffic=[{"type": "bulletin", "t": 500, "node": "a"}]), "traffic[0].t = 500 is after the end"),
    (base(traffic=[{"type": "shout", "t": 5, "node": "a"}]), "traffic[0].type"),
    (base(modem="LONG_FASTER"), "modem: unknown preset 'LONG_FASTER'"),
    (base(region="MARS"), "region: unknown 'MARS'"),
    (base(failures=[{"type": "partition", "t": 1, "groups": [["a"]]}]), "at least two groups"),
    (base(failures=[{"type": "off", "t": 1}]), "needs \"nodes\" or \"fraction\""),
    (base(failures=[{"type": "off", "t": 10, "until": 5, "nodes": ["a"]}]), "until < t"),
    ({"nodes": [{"name": "a"}]}, "node a: needs \"pos\""),
    ({"nodes": [{"name": "a", "pos": [0, 0]}, {"name": "a", "pos": [1, 1]}]}, "duplicate node name 'a'"),
    ({"nodes": []}, "no nodes"),
    (base(radio={"shadowing_db": "lots"}), "radio.shadowing_db must be a number"),
    (base(nodes=[{"name": "c", "courier": [[10, 0, 0], [5, 1, 1]]}]), "waypoint times must not decrease"),
    (base(links=[{"a": "a", "b": "a"}]), "two different nodes"),
    (base(traffic=[{"type": "drill", "t": 1, "node": "a", "confirm": {"prob": 2}}]), "confirm.prob must be <= 1.0"),
    ([1, 2], "scenario must be an object"),
])
def test_schema_errors(raw, msg):
    with pytest.raises(ScenarioError) as ei:
        normalize(raw)
    assert msg in str(ei.value)


def test_normal_form_and_generators():
    sc = normalize(base(
        modem={"sf": 9, "bw_hz": 125000},
        board={"preset": "generic", "tx_dbm": 14},
        traffic=[{"type": "bulletins", "count": 3, "start_s": 10, "interval_s": 20, "node": ["a", "b"]},
                 {"type": "drill", "t": 15, "node": "a"}],
        generate={"count": 5, "width_m": 1000},
        _comment="ignored",
    ))
    assert sc["modem"] == {"name": "custom", "sf": 9, "bw_hz": 125000, "cr": 5, "preamble": 8}
    assert sc["nodes"][0]["board"]["tx_dbm"] == 14 and sc["nodes"][0]["board"]["name"] == "generic"
    assert [(t["type"], t["t"], t["node"]) for t in sc["traffic"]] == [
        ("bulletin", 10.0, 0), ("drill", 15.0, 0), ("bulletin", 30.0, 1), ("bulletin", 50.0, 0)]
    assert sc["traffic"][1]["confirm"] == {"prob": 0.9, "delay_s": [10.0, 120.0]}
    assert len(sc["nodes"]) == 7 and sc["nodes"][2]["name"] == "g000"
    assert all(0 <= nd["pos"][0] <= 1000 for nd in sc["nodes"][2:])
    assert normalize(base(generate={"count": 5, "width_m": 1000}))["nodes"][3]["pos"] == sc["nodes"][3]["pos"]  # seeded layout
    assert normalize(base(generate={"count": 5, "width_m": 1000, "layout_seed": 7}))["nodes"][3]["pos"] != sc["nodes"][3]["pos"]
    assert sc["radio"]["capture_db"] == 6.0 and sc["region"]["duty_cycle"] == 0.10


def test_courier_interpolation():
    wp = [(10.0, 0.0, 0.0), (20.0, 100.0, 0.0), (30.0, 100.0, 50.0)]
    assert courier_position(wp, 0) == (0.0, 0.0)
    assert courier_position(wp, 15) == (50.0, 0.0)
    assert courier_position(wp, 25) == (100.0, 25.0)
    assert courier_position(wp, 99) == (100.0, 50.0)
    assert courier_position([(5.0, 1.0, 2.0)], 0) == (1.0, 2.0)


def test_load_scenario_by_path(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps(base()))
    sc = load_scenario(str(p))
    assert sc["source"] == str(p) and sc["index"] == {"a": 0, "b": 1}
