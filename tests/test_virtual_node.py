"""End to end: the CLI, through real pyserial, against the real firmware core on a pseudo-terminal."""

from __future__ import annotations

import json
import threading

import pytest
from plexus.cli import main
from plexus.virtual import VirtualNode


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    assert main(["keys", "new", "alice"]) == 0
    assert main(["keys", "new", "bob"]) == 0
    assert main(["group", "init", "--name", "Tenants", "--member", "alice=alice", "--member", "bob=bob", "--quorum", "2"]) == 0
    doc = json.loads((tmp_path / "group.json").read_text())
    sec = json.loads((tmp_path / "group.secret.json").read_text())
    vn = VirtualNode(doc, bytes.fromhex(sec["secret"]), b"\x07" * 32, tmp_path / "node.log", "hub", time_s=90_000_000)
    t = threading.Thread(target=vn.serve_forever, daemon=True)
    t.start()
    capsys.readouterr()
    yield vn, tmp_path
    vn.close()
    t.join(2)


def test_post_sync_verify_export_against_the_virtual_node(world, capsys):
    vn, home = world
    port = vn.port
    assert main(["post", "Decision: rent strike from Monday", "--port", port, "--decision", "--as", "alice"]) == 0
    mid = capsys.readouterr().out.split()[2]
    assert main(["post", "x" * 180, "--port", port, "--as", "bob"]) == 0  # a one-fragment long bulletin
    # not in a ledger yet (there is none): consent syncs it from the node first, then finds the id
    assert main(["consent", mid, "--port", port, "--as", "bob"]) == 0
    assert (home / "ledger.sqlite").exists()
    assert vn.store.count == 3
    assert main(["ledger", "sync", "--port", port]) == 0
    assert "1 new" in capsys.readouterr().out  # the consent; the two posts came with consent's own sync
    assert main(["ledger", "sync", "--port", port]) == 0
    assert "0 new" in capsys.readouterr().out
    assert main(["ledger", "verify"]) == 0
    assert "ledger OK: 3 records" in capsys.readouterr().out
    assert main(["ledger", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    kinds = sorted(r["kind"] for r in (shown["records"] if isinstance(shown, dict) else shown))
    assert kinds == ["bulletin", "bulletin_long", "consent"]
    out = home / "wall"
    assert main(["ledger", "export", "--html", str(out)]) == 0
    page = next(out.glob("*.html")).read_text()
    assert "rent strike" in page


def test_user_mistakes_are_one_line_not_tracebacks(world, capsys):
    vn, _ = world
    assert main(["post", "hello", "--port", "/dev/does-not-exist", "--as", "alice"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main(["post", "hello", "--port", vn.port, "--as", "nobody"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
