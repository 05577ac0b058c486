"""`plexus mandate elect|draw --start`: a term elected (or drawn) ahead of time, checked by the real core."""

from __future__ import annotations

import json
import time

from plexus.cli import main
from plexus.client import plexus_time
from test_mandate_cli import world  # noqa: F401  (the fixture: four members, a virtual node)

DAY = 86400


def _json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_elect_ahead_of_time_is_upcoming_then_active(world, capsys):  # noqa: F811
    port = world.port
    now = plexus_time()
    d = _json(capsys, "mandate", "elect", "--role", "treasurer", "--holder", "cai", "--start", "+7d", "--term", "30d",
              "--port", port, "--as", "ana", "--json")
    assert now + 7 * DAY <= d["start"] <= now + 7 * DAY + 5 and d["end"] == d["start"] + 30 * DAY and d["node"]["accepted"]
    assert main(["ledger", "sync", "--port", port]) == 0  # consent finds the mandate in the local ledger
    for w in ("ana", "ben"):
        assert main(["consent", d["id"], "--port", port, "--as", w]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    capsys.readouterr()
    rows = _json(capsys, "mandate", "list", "--json")
    assert [(r["role"], r["state"]) for r in rows] == [("treasurer", "upcoming")]
    gov = world.core.gov
    assert gov.adopted(bytes.fromhex(d["id"]))
    kid = next(k for k, e in world.core.roster.entries.items() if e.name == "cai")
    assert not gov.holds(kid, now + DAY, "treasurer") and gov.holds(kid, d["start"] + 1, "treasurer")
    # an absolute UTC date, and the text output says when the term begins
    day = time.strftime("%Y-%m-%d", time.gmtime(now + 1704067200 + 40 * DAY))
    assert main(["mandate", "elect", "--role", "minutes", "--holder", "dee", "--start", day, "--port", port,
                 "--as", "ana"]) == 0
    assert "from %s 00:00 UTC until" % day in capsys.readouterr().out


def test_draw_with_start_and_start_mistakes(world, capsys):  # noqa: F811
    port = world.port
    assert main(["post", "seed", "--port", port, "--as", "ana"]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    time.sleep(1.1)
    capsys.readouterr()
    now = plexus_time()
    d = _json(capsys, "mandate", "draw", "--role", "care", "--start", "+12h", "--term", "1w", "--port", port, "--as", "ben",
              "--json")
    assert d["start"] >= now + 12 * 3600 and d["node"]["accepted"]  # the node recomputed the draw with this start
    for bad, why in (("2020-01-01", "in the past"), ("next week", "UTC date"), ("+400d", "a year ahead")):
        assert main(["mandate", "elect", "--role", "x", "--holder", "ana", "--start", bad, "--port", port, "--as", "ana"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err, err


def test_a_term_that_overlaps_one_of_the_same_role_is_posted_with_a_note(world, capsys):  # noqa: F811
    port = world.port
    first = _json(capsys, "mandate", "elect", "--role", "treasurer", "--holder", "cai", "--term", "30d",
                  "--port", port, "--as", "ana", "--json")
    assert main(["ledger", "sync", "--port", port]) == 0
    capsys.readouterr()
    # the next term, after this one: no note
    assert main(["mandate", "elect", "--role", "treasurer", "--holder", "dee", "--start", "+31d", "--port", port,
                 "--as", "ana"]) == 0
    assert "overlaps" not in capsys.readouterr().err
    # a term starting in 7 days overlaps the pending one: posted, with one note saying so
    assert main(["mandate", "elect", "--role", "treasurer", "--holder", "ben", "--start", "+7d", "--port", port,
                 "--as", "ana"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("note: this term overlaps the treasurer term of cai (pending, ")
    assert first["id"] and "both would hold the role until" in err
    # another role: no note
    assert main(["mandate", "elect", "--role", "minutes", "--holder", "ben", "--port", port, "--as", "ana"]) == 0
    assert "overlaps" not in capsys.readouterr().err
