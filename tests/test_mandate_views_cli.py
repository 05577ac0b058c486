"""`plexus mandate elect|handover`, `draw --max-consecutive`, and the ledger's governance views
(`plexus ledger decisions|mandates`, the export) end to end against the real core on a pseudo-terminal."""

from __future__ import annotations

import json
import time

import clikit
import pytest
from plexus import export as exportmod
from plexus import govview
from plexus.cli import main


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    with clikit.world(tmp_path, monkeypatch, ("ana", "ben", "cai", "dee")) as w:
        capsys.readouterr()
        yield w.vn


def run_json(capsys, argv):
    capsys.readouterr()
    assert main(argv + ["--json"]) == 0, capsys.readouterr()
    return json.loads(capsys.readouterr().out)


def adopt(port, pid, who=("cai", "dee")):
    assert main(["ledger", "sync", "--port", port]) == 0  # consent finds its target in the local ledger
    for w in who:
        assert main(["consent", pid, "--port", port, "--as", w]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0


def test_draw_with_a_cap_on_consecutive_terms(world, capsys):
    port = world.port
    assert main(["post", "seed", "--port", port, "--as", "ana"]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    firsts = []
    for _ in range(2):
        time.sleep(1.1)  # the seed bulletin must be older than the draw; each term starts later
        # three seats of four, twice: somebody holds two terms in a row
        d = run_json(capsys, ["mandate", "draw", "--role", "care", "--seats", "3", "--term", "1h", "--port", port,
                              "--as", "ben"])
        assert d["node"]["accepted"] and d["excluded"] == []
        adopt(port, d["id"])
        firsts.append(set(d["holders"]))
    both = firsts[0] & firsts[1]
    assert both
    time.sleep(1.1)
    d = run_json(capsys, ["mandate", "draw", "--role", "care", "--seats", "1", "--max-consecutive", "2", "--port", port,
                          "--as", "ben"])
    assert d["node"]["accepted"]  # the node recomputed the draw with the same exclusions
    assert set(d["excluded"]) == both and not set(d["holders"]) & both
    assert main(["ledger", "sync", "--port", port]) == 0
    assert main(["ledger", "verify"]) == 0
    capsys.readouterr()
    assert main(["mandate", "draw", "--role", "care", "--max-consecutive", "9", "--port", port, "--as", "ben"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_elect_needs_quorum_and_respects_the_cap(world, capsys):
    port = world.port
    d = run_json(capsys, ["mandate", "elect", "--role", "treasury", "--holder", "ana", "--holder", "ben", "--term", "30d",
                          "--port", port, "--as", "cai"])
    assert d["node"]["accepted"] and sorted(d["holders"]) == ["ana", "ben"] and d["seed"] is None
    adopt(port, d["id"], who=("cai",))
    rows = run_json(capsys, ["mandate", "list"])
    assert rows[0]["state"] == "pending" and rows[0]["method"] == "election"  # one consent below the quorum
    assert not world.core.gov.adopted(bytes.fromhex(d["id"]))
    adopt(port, d["id"], who=("dee",))
    rows = run_json(capsys, ["mandate", "list"])
    assert rows[0]["state"] == "active" and rows[0]["consents"] == 2
    assert world.core.gov.adopted(bytes.fromhex(d["id"]))
    # next term: Ana may not serve again under --exclude-last; the CLI says so in one line, before posting
    time.sleep(1.1)  # a later term
    capsys.readouterr()
    assert main(["mandate", "elect", "--role", "treasury", "--holder", "ana", "--exclude-last", "--port", port,
                 "--as", "cai"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not eligible" in err and "ana" in err
    assert main(["mandate", "elect", "--role", "treasury", "--holder", "zed", "--port", port, "--as", "cai"]) == 2
    assert main(["mandate", "draw", "--elect", "--role", "treasury", "--holder", "cai", "--seats", "2", "--port", port,
                 "--as", "cai"]) == 2
    capsys.readouterr()
    d2 = run_json(capsys, ["mandate", "draw", "--elect", "--role", "treasury", "--holder", "cai", "--exclude-last",
                           "--port", port, "--as", "ana"])
    assert d2["node"]["accepted"] and d2["holders"] == ["cai"] and sorted(d2["excluded"]) == ["ana", "ben"]


def test_handover_record_and_mandates_view(world, capsys, tmp_path):
    port = world.port
    capsys.readouterr()
    assert main(["mandate", "handover", "--role", "care", "--port", port, "--as", "ana"]) == 2  # no ledger yet
    assert "no ledger at" in capsys.readouterr().err and not (tmp_path / "ledger.sqlite").exists()
    assert main(["ledger", "sync", "--port", port]) == 0
    capsys.readouterr()
    assert main(["mandate", "handover", "--role", "care", "--port", port, "--as", "ana"]) == 2  # nothing has ended
    assert "no expired or recalled mandate" in capsys.readouterr().err
    a = run_json(capsys, ["mandate", "elect", "--role", "care", "--holder", "ana", "--port", port, "--as", "ben"])
    adopt(port, a["id"])
    r = run_json(capsys, ["mandate", "recall", a["id"], "--reason", "moved away", "--port", port, "--as", "ben"])
    adopt(port, r["id"])
    time.sleep(1.1)
    b = run_json(capsys, ["mandate", "elect", "--role", "care", "--holder", "ben", "--holder", "cai", "--port", port,
                          "--as", "dee"])
    capsys.readouterr()
    assert main(["mandate", "handover", "--role", "care", "--port", port, "--as", "ana"]) == 2  # successor not adopted
    adopt(port, b["id"])
    h = run_json(capsys, ["mandate", "handover", "--role", "care", "--note", "keys with Ben", "--port", port, "--as", "ana"])
    assert h["from"] == a["id"] and h["to"] == b["id"] and h["node"]["accepted"]
    assert main(["ledger", "sync", "--port", port]) == 0
    t_json = time.time()
    v = run_json(capsys, ["ledger", "mandates"])
    care = v["roles"][0]
    assert care["role"] == "care" and [c["holders"] for c in care["current"]] == [["ben", "cai"]]
    assert care["current"][0]["left_s"] > 29 * 86400
    hist = {x["id"]: x for x in care["history"]}
    assert hist[a["id"]]["state"] == "recalled" and hist[a["id"]]["recall_reason"] == "moved away"
    assert hist[a["id"]]["handed_over_to"] == [b["id"]] and hist[b["id"]]["took_over_from"] == [a["id"]]
    assert v["handovers"][0]["note"] == "keys with Ben" and v["handovers"][0]["by"] == "ana"
    capsys.readouterr()
    assert main(["ledger", "mandates"]) == 0
    out = capsys.readouterr().out
    assert "current mandates" in out and "took over from %s" % a["id"][:12] in out and "recalled" in out
    # the table was drawn a moment after the JSON: its countdown is the JSON one, less the seconds in between
    shown = {govview.fmt_span(care["current"][0]["left_s"] - d) for d in range(int(time.time() - t_json) + 2)}
    assert "keys" in out and any(x in out for x in shown) and care["current"][0]["left"].startswith(("29d", "30d"))
    assert main(["ledger", "show", "--kind", "succession"]) == 0
    assert "hand-over: mandate %s to mandate %s: keys with Ben" % (a["id"][:12], b["id"][:12]) in capsys.readouterr().out
    assert main(["ledger", "verify"]) == 0


def test_decisions_view_flags_publication_over_24_hours(world, capsys, monkeypatch, tmp_path):
    port = world.port
    texts = ["Decision: rent strike from Monday", "Decision: food bank on Fridays", "Decision: repaint the hall",
             "Decision: never decided"]
    for t in texts:
        assert main(["post", t, "--decision", "--port", port, "--as", "ana"]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    ids = {d["text"]: d["id"] for d in run_json(capsys, ["ledger", "decisions"])["decisions"]}
    for t in texts[:3]:
        adopt(port, ids[t])
    assert main(["consent", ids[texts[3]], "--port", port, "--as", "cai"]) == 0  # one below the quorum
    assert main(["ledger", "sync", "--port", port]) == 0
    v = {d["text"]: d for d in run_json(capsys, ["ledger", "decisions"])["decisions"]}
    assert [v[t]["state"] for t in texts] == ["adopted", "adopted", "adopted", "pending"]
    assert v[texts[0]]["consents"] == ["cai", "dee"] and v[texts[0]]["quorum"] == 2
    assert v[texts[3]]["consents"] == ["cai"] and v[texts[3]]["decided"] is None
    assert not any(d["flagged"] for d in v.values())
    decided = {t: v[t]["decided"] for t in texts[:3]}
    # the first export publishes decisions 0-2 exactly 24 h after the first was decided
    now = decided[texts[0]] + 86400
    monkeypatch.setattr(exportmod, "plexus_now", lambda: now)
    assert main(["ledger", "export", "--text", str(tmp_path / "sheet.txt")]) == 0
    sheet = (tmp_path / "sheet.txt").read_text()
    assert "DECISIONS: ADOPTED OR PENDING" in sheet and "after: 1d 0h" in sheet
    v = {d["text"]: d for d in run_json(capsys, ["ledger", "decisions"])["decisions"]}
    assert v[texts[0]]["publication_delay_s"] == 86400 and not v[texts[0]]["flagged"]  # exactly 24 h: not flagged
    assert v[texts[0]]["published_by"].startswith("text ")
    assert v[texts[3]]["published"] is None  # pending: nothing to publish yet
    # a later export does not move the first publication
    monkeypatch.setattr(exportmod, "plexus_now", lambda: now + 5000)
    assert main(["ledger", "export", "--html", str(tmp_path / "wall")]) == 0
    html = (tmp_path / "wall" / "index.html").read_text()
    assert "Decisions: adopted or pending" in html and "<td>1d 0h</td>" in html and "FLAGGED" not in html
    v2 = {d["text"]: d for d in run_json(capsys, ["ledger", "decisions"])["decisions"]}
    assert v2[texts[0]]["published"] == now
    # a decision adopted later and published one second over 24 h is flagged, in the view and on the sheet
    adopt(port, ids[texts[3]], who=("dee",))
    late = run_json(capsys, ["ledger", "decisions"])["decisions"]
    d3 = next(d for d in late if d["text"] == texts[3])
    assert d3["state"] == "adopted"
    # unpublished for exactly 24 h: not yet flagged; one second more: flagged
    monkeypatch.setattr(exportmod, "plexus_now", lambda: d3["decided"] + 86400)
    assert not next(d for d in run_json(capsys, ["ledger", "decisions"])["decisions"] if d["text"] == texts[3])["flagged"]
    monkeypatch.setattr(exportmod, "plexus_now", lambda: d3["decided"] + 86401)
    d3 = next(d for d in run_json(capsys, ["ledger", "decisions"])["decisions"] if d["text"] == texts[3])
    assert d3["flagged"] and "not published" in d3["flag"]
    assert main(["ledger", "export", "--text", str(tmp_path / "sheet2.txt")]) == 0
    assert "FLAGGED: published 1d 0h after the decision (over 24 h)" in (tmp_path / "sheet2.txt").read_text()
    d3 = next(d for d in run_json(capsys, ["ledger", "decisions"])["decisions"] if d["text"] == texts[3])
    assert d3["flagged"] and d3["publication_delay_s"] == 86401
    capsys.readouterr()
    assert main(["ledger", "decisions"]) == 0
    out = capsys.readouterr().out
    assert "FLAGGED" in out and "4 decisions, 4 adopted, 0 pending, 1 flagged" in out
