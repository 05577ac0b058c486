"""`plexus mandate draw|list|recall` end to end against the real core on a pseudo-terminal."""

from __future__ import annotations

import json
import time

import clikit
import pytest
from plexus.cli import main


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    with clikit.world(tmp_path, monkeypatch, ("ana", "ben", "cai", "dee")) as w:
        capsys.readouterr()
        yield w.vn


def test_draw_consent_list_recall(world, capsys):
    port = world.port
    assert main(["mandate", "draw", "--role", "coordination", "--port", port, "--as", "ana"]) == 2  # no seed bulletin yet
    capsys.readouterr()
    assert main(["post", "Minutes: we rotate coordination monthly", "--port", port, "--as", "ana"]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    time.sleep(1.1)  # the seed bulletin must be older than the draw
    capsys.readouterr()
    assert main(["mandate", "draw", "--role", "coordination", "--seats", "2", "--term", "30d", "--port", port,
                 "--as", "ben", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["holders"]) == 2 and d["node"]["accepted"]
    mid = d["id"]
    assert main(["ledger", "sync", "--port", port]) == 0
    assert main(["mandate", "list", "--json"]) == 0
    capsys.readouterr()
    for w in ("ana", "cai"):
        assert main(["consent", mid, "--port", port, "--as", w]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    capsys.readouterr()
    assert main(["mandate", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["state"] == "active" and rows[0]["consents"] == 2 and rows[0]["days_left"] >= 29
    assert world.core.gov.adopted(bytes.fromhex(mid))
    # recall with quorum ends it at once
    assert main(["mandate", "recall", mid, "--reason", "missed two assemblies", "--port", port, "--as", "dee", "--json"]) == 0
    rid = json.loads(capsys.readouterr().out)["id"]
    assert main(["ledger", "sync", "--port", port]) == 0  # consent finds the recall in the local ledger
    for w in ("dee", "ana"):
        assert main(["consent", rid, "--port", port, "--as", w]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    capsys.readouterr()
    assert main(["mandate", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == "recalled"
    assert main(["ledger", "verify"]) == 0


def test_exclude_last_is_verified_by_the_node(world, capsys):
    port = world.port
    assert main(["post", "seed one", "--port", port, "--as", "ana"]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    time.sleep(1.1)
    capsys.readouterr()
    assert main(["mandate", "draw", "--role", "care", "--seats", "2", "--term", "1h", "--port", port, "--as", "ben", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["ledger", "sync", "--port", port]) == 0
    for w in ("ana", "cai"):
        assert main(["consent", first["id"], "--port", port, "--as", w]) == 0
    assert main(["ledger", "sync", "--port", port]) == 0
    time.sleep(1.1)
    capsys.readouterr()
    assert main(["mandate", "draw", "--role", "care", "--seats", "2", "--exclude-last", "--port", port, "--as", "ben",
                 "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["node"]["accepted"]
    assert not set(first["holders"]) & set(second["holders"])  # four members, two seats: the other two


def test_mistakes_are_one_line(world, capsys):
    assert main(["mandate", "draw", "--role", "x", "--term", "forever", "--port", world.port, "--as", "ana"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "term" in err
    assert main(["mandate", "recall", "zz", "--port", world.port, "--as", "ana"]) == 2
