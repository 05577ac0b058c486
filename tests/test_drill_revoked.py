"""Drills after a revocation or a rekey, and how the ledger renders drills, REVOKE and REKEY: end to end through
the CLI against the real core on a pseudo-terminal (tests/clikit.py: members ana, ben, cai; nodes hub and lost)."""

from __future__ import annotations

import json

import clikit
import pytest
from clikit import HUB, LOST
from plexus import drill
from plexus.cli import main


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    with clikit.world(tmp_path, monkeypatch, ("ana", "ben", "cai"), {"hub": HUB, "lost": LOST}) as w:
        capsys.readouterr()
        yield tmp_path, w.vn


def ok(capsys, *argv) -> str:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _adopt(capsys, port: str, rid: str) -> None:
    for w in ("ana", "ben"):
        ok(capsys, "consent", rid, "--port", port, "--as", w)
    ok(capsys, "ledger", "sync", "--port", port)


def _drill(capsys, port: str, text: str) -> tuple[str, dict]:
    out = ok(capsys, "drill", "start", text, "--port", port, "--wait", "1s", "--as", "ana")
    rep = json.loads(ok(capsys, "drill", "report", "--json"))
    return out, rep


def test_a_revoked_node_is_not_expected_and_the_counts_agree(world, capsys, tmp_path):
    _, vn = world
    port = vn.port
    # before: the other node, lost, is expected (and silent: it is not on the air)
    out, rep = _drill(capsys, port, "DRILL 1")
    assert rep["expected"] == 1 and [p["node"] for p in rep["phone_chain"]] == ["lost"]
    rid = json.loads(ok(capsys, "group", "revoke", "lost", "--reason", "seized", "--port", port, "--as", "ana", "--json"))["id"]
    _adopt(capsys, port, rid)
    out, rep = _drill(capsys, port, "DRILL 2")
    assert rep["expected"] == 0 and rep["phone_chain"] == [] and rep["rows"] == []
    assert rep["not_expected"] == [{"node": "lost", "why": "revoked, seized or lost"}]
    assert "called from hub; 0 nodes expected" in out and "not expected: lost (revoked, seized or lost)" in out
    assert "No nodes were expected (the roster has no other active nodes)." in out
    assert "reached   0 of 0 (-)  p50 -  p95 -" in out and "within - (p95)" in out
    assert "None" not in out and "PHONE CHAIN" not in out and "SILENT" not in out and "Every node" not in out
    # the ledger's view of the same alert agrees with the report: 0 of 0
    ok(capsys, "ledger", "sync", "--port", port)
    sheet = tmp_path / "wall.txt"
    ok(capsys, "ledger", "export", "--text", str(sheet))
    text = sheet.read_text()
    assert "DRILL 2\n    => reached 0 of 0 nodes, confirmed 0" in text
    assert "DRILL 1\n    => reached 0 of 1 nodes, confirmed 0" in text
    # REVOKE in words, in the export and in `ledger show`
    assert "revoke lost (seized or lost)" in text and "reason 1" not in text
    shown = ok(capsys, "ledger", "show")
    assert "revoke lost (seized or lost)" in shown and "reason 1" not in shown


def test_a_node_left_out_of_an_adopted_rekey_is_not_expected(world, capsys, tmp_path):
    _, vn = world
    port = vn.port
    d = json.loads(ok(capsys, "group", "rekey", "--without", "lost", "--port", port, "--as", "ben", "--json"))
    # pending: the rekey is not adopted yet, lost still holds the current key
    ok(capsys, "ledger", "sync", "--port", port)
    _out, rep = _drill(capsys, port, "before the rekey")
    assert rep["expected"] == 1
    _adopt(capsys, port, d["id"])
    out, rep = _drill(capsys, port, "after the rekey")
    assert rep["expected"] == 0 and rep["not_expected"] == [{"node": "lost", "why": "left out of the rekey to epoch 1"}]
    assert "No nodes were expected" in out
    # REKEY in words, not raw JSON
    shown = ok(capsys, "ledger", "show")
    assert "rekey to epoch 1 (wraps for 1 node; without lost)" in shown and '"frag_hashes"' not in shown
    html_dir = tmp_path / "wall"
    ok(capsys, "ledger", "export", "--html", str(html_dir))
    page = (html_dir / "index.html").read_text()
    assert "rekey to epoch 1 (wraps for 1 node; without lost)" in page
    # a node that joins after the rekey (ROSTER adopted later) was provisioned with the new key: it is expected
    from plexus.crypto import HostCrypto

    late = HostCrypto().public_key(b"\x07" * 32).hex()
    rid = json.loads(ok(capsys, "group", "add", "--node", "late=" + late, "--port", port, "--as", "ana", "--json"))["id"]
    _adopt(capsys, port, rid)
    _out, rep = _drill(capsys, port, "after the new node joined")
    assert rep["expected"] == 1 and [p["node"] for p in rep["phone_chain"]] == ["late"]
    assert rep["not_expected"] == [{"node": "lost", "why": "left out of the rekey to epoch 1"}]
    assert "add node late" in ok(capsys, "ledger", "show")


def test_the_exported_drill_report_is_a_readable_sheet(world, capsys, tmp_path):
    """The stored report of a drill as the export prints it: labelled lines, times in UTC, the phone chain with
    contacts from the roster, no raw keys or None."""
    _, vn = world
    _out, rep = _drill(capsys, vn.port, "Meet at the yard")
    sheet = tmp_path / "wall.txt"
    ok(capsys, "ledger", "export", "--text", str(sheet), "--html", str(tmp_path / "wall"))
    text = sheet.read_text()
    sect = text[text.index("REPORTS: DRILL (1)"):]
    assert "* Drill #1: Meet at the yard" in sect
    assert "caller:        hub (posted by ana)" in sect
    assert "expected:      1 node\n" in sect
    assert "reached:       0 of 1 (0.0 %); p50 -, p95 -" in sect
    assert "confirmed:     0 of 1 (0.0 %); p50 -, p95 -" in sect
    assert " UTC" in sect.split("started:")[1].splitlines()[0]
    assert "0 of 1 nodes confirmed; 1 silent: phone or visit them." in sect
    assert "silent: nothing came back from these nodes:" in sect and "[ ] lost" in sect
    for raw in ("None", "confirm_s_p50", "ended_early", "port:", "/dev/pts", "phone_chain", "1795"):
        assert raw not in sect, raw
    page = (tmp_path / "wall" / "index.html").read_text()
    assert "Drill #1: Meet at the yard" in page and "Phone chain, silent: nothing came back" in page
    assert "confirm_s_p50" not in page and "None" not in page


def test_report_text_for_edge_cases():
    """build_report and as_text without a mesh: nothing expected; everyone confirmed; reached only via a confirmation."""
    nodes = [{"name": "a", "short": 1, "holder": "A", "contact": "+1"}, {"name": "b", "short": 2, "holder": "B", "contact": "+2"},
             {"name": "c", "short": 3, "holder": "C", "contact": "+3"}]
    empty = drill.build_report("x", "me", 0, [], [])
    t = drill.as_text(empty)
    assert "No nodes were expected" in t and "None" not in t and "(-)" in t and "Every node" not in t
    recs = [{"node": "a", "state": "reached", "hops": 1, "via": 9, "t": 2000, "at_s": None},
            {"node": "b", "state": "confirmed", "hops": 2, "via": 1, "t": 93000, "at_s": None},
            {"node": "a", "state": "confirmed", "hops": 1, "via": 9, "t": 5000, "at_s": None}]
    rep = drill.build_report("x", "me", 0, nodes, recs)
    rows = {r["node"]: r for r in rep["rows"]}
    assert rows["a"]["reached_receipt"] and (rows["a"]["reached_s"], rows["a"]["confirmed_s"]) == (2.0, 5.0)
    assert not rows["b"]["reached_receipt"] and rows["b"]["reached_s"] == rows["b"]["confirmed_s"] == 93.0
    t = drill.as_text(rep)
    assert [line.split()[2] for line in t.splitlines() if line[:2] in ("a ", "b ")] == ["2.0", "93.0*"]
    assert drill.REACHED_NOTE in t and "2 of 3 nodes confirmed; 1 silent: phone or visit them." in t
    everyone = drill.build_report("x", "me", 0, nodes[:1], recs[:1] + recs[2:])
    t = drill.as_text(everyone)
    assert "Every node confirmed." in t and "PHONE CHAIN" not in t and drill.REACHED_NOTE not in t
    html = drill.as_html(rep)
    assert "93.0*" in html and "None" not in html and "silent: nothing came back" in html
