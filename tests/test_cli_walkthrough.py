"""Defects a newcomer's walkthrough of the `plexus` CLI found, end to end: ledger readers that created ledgers,
consents to made-up ids, node names that escape $PLEXUS_HOME/nodes, two virtual nodes on one store, help lines that
left verbs out, and messages that were noisy or said the wrong thing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import clikit
import pytest
from plexus import cli, virtual
from plexus import ledger as ledgermod
from plexus.cli import main

ZERO = "0" * 32


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("plexus: error: ") and "Traceback" not in err, err
    return err


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    with clikit.world(tmp_path, monkeypatch, ("ana", "ben", "cai")) as w:
        capsys.readouterr()
        yield w


def _sync(port: str) -> None:
    assert main(["ledger", "sync", "--port", port, "--no-progress"]) == 0


# ---- 1. commands that only read a ledger never create one


READERS = [
    ["ledger", "verify"],
    ["ledger", "show"],
    ["ledger", "decisions"],
    ["ledger", "mandates"],
    ["ledger", "export", "--text", "SHEET"],
    ["mandate", "list"],
]


@pytest.mark.parametrize("argv", READERS, ids=lambda a: "-".join(a[:2]))
@pytest.mark.parametrize("where", ["typo.sqlite", "nonexistent-dir/l.sqlite"])
def test_a_reader_refuses_a_missing_ledger_and_creates_nothing(world, capsys, tmp_path, argv, where):
    path = tmp_path / where
    argv = [str(tmp_path / "sheet.txt") if a == "SHEET" else a for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv + ["--ledger", str(path)]) == 2
    err = one_line_error(capsys)
    assert "no ledger at %s (run `plexus ledger sync` first)" % path in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file, no directory, no sheet


@pytest.mark.parametrize("argv", READERS, ids=lambda a: "-".join(a[:2]))
def test_a_reader_in_an_empty_home_leaves_no_ledger_behind(tmp_path, monkeypatch, capsys, argv):
    home = tmp_path / "home"
    monkeypatch.setenv("PLEXUS_HOME", str(home))
    argv = [str(tmp_path / "sheet.txt") if a == "SHEET" else a for a in argv]
    assert main(argv) == 2
    assert "no ledger at %s" % (home / "ledger.sqlite") in one_line_error(capsys)
    assert not home.exists() and not (tmp_path / "sheet.txt").exists()


def test_the_library_opens_read_only_without_creating(tmp_path):
    with pytest.raises(ledgermod.LedgerError, match="no ledger at"):
        ledgermod.Ledger(tmp_path / "sub" / "l.sqlite", create=False)
    assert list(tmp_path.iterdir()) == []


def test_sync_creates_the_ledger_but_not_a_mistyped_directory(world, capsys, tmp_path):
    port = world.vn.port
    assert main(["post", "hello", "--port", port, "--as", "ana"]) == 0
    bad = tmp_path / "nonexistent-dir" / "l.sqlite"
    assert main(["ledger", "sync", "--port", port, "--ledger", str(bad)]) == 2
    assert "no directory %s" % bad.parent in one_line_error(capsys)
    assert not bad.parent.exists()
    mine = tmp_path / "mine.sqlite"
    assert main(["ledger", "sync", "--port", port, "--ledger", str(mine), "--no-progress"]) == 0
    assert mine.is_file()
    capsys.readouterr()
    assert main(["ledger", "verify", "--ledger", str(mine)]) == 0
    assert "ledger OK: 1 records" in capsys.readouterr().out


# ---- 2. consent only to what the local ledger holds (or --force)


def test_consent_to_a_made_up_id_is_refused_unless_forced(world, capsys, tmp_path):
    port = world.vn.port
    count = world.vn.store.count
    # not in the ledger (there is none yet): consent syncs the ledger from the node, then refuses what neither holds
    assert main(["consent", ZERO, "--port", port, "--as", "ana"]) == 2
    err = one_line_error(capsys)
    assert "no message %s on the node %s or in the ledger (mistyped? --force to consent anyway)" % (ZERO, port) in err
    assert world.vn.store.count == count  # nothing posted
    # a proposal posted a moment ago, not synced yet: consent finds it on the node (no `ledger sync` needed first)
    assert main(["post", "Decision: paint the hall", "--decision", "--port", port, "--as", "ben", "--json"]) == 0
    pid = json.loads(capsys.readouterr().out)["id"]
    assert main(["consent", pid, "--port", port, "--as", "ben", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == pid
    # a unique prefix still resolves
    assert main(["consent", pid[:8], "--port", port, "--as", "ana", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == pid
    assert main(["consent", "ffff", "--port", port, "--as", "cai"]) == 2
    assert "no message ffff" in one_line_error(capsys)
    # --force signs it anyway (the node takes a consent to an id it has not seen)
    assert main(["consent", ZERO, "--port", port, "--as", "ana", "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == ZERO
    assert world.vn.store.count == count + 4


# ---- 3. node names and one node per store


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", ""])
def test_node_virtual_refuses_a_name_that_is_not_a_plain_name(world, capsys, tmp_path, monkeypatch, name):
    monkeypatch.setattr(virtual.VirtualNode, "serve_forever", lambda self: None)  # were it accepted: no hang
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["node", "virtual", "--name", name]) == 2
    assert "bad node name" in one_line_error(capsys)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_a_second_virtual_node_on_the_same_store_is_refused(world, capsys, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    first = subprocess.Popen([sys.executable, "-m", "plexus", "node", "virtual", "--name", "hub"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = first.stdout.readline()
        assert re.match(r"virtual node hub on /dev/\S+", line), line + first.stderr.read()
        lock = tmp_path / "nodes" / "hub.log.lock"
        # a process too: were it not refused it would serve forever (the timeout fails the test instead of hanging)
        second = subprocess.run([sys.executable, "-m", "plexus", "node", "virtual", "--name", "hub"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        assert second.stderr == "plexus: error: node hub is already running (%s is locked)\n" % lock
    finally:
        first.terminate()
        first.wait(10)
    fd = virtual.lock_store(tmp_path / "nodes" / "hub.log", "hub")  # released when the node ended
    os.close(fd)


# ---- 4. help lines name every verb


def test_every_registered_verb_is_in_the_help_summary(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {a.dest: a.help for a in sub._choices_actions}
    with pytest.raises(SystemExit):
        main(["--help"])
    page = " ".join(capsys.readouterr().out.split())
    nested = 0
    for name, (modname, _) in cli.COMMANDS.items():
        verbs = list(getattr(cli._load(modname), "SUBCOMMANDS", {}) or {})
        if not verbs:
            continue
        nested += 1
        listed = helps[name].rsplit(": ", 1)[1].split(", ")
        assert listed == verbs, name
        assert "%s %s" % (name, helps[name]) in page
    assert nested >= 6
    assert "init, show, add, update, revoke, rekey" in page and "decisions, mandates" in page


# ---- 5. messages


def test_a_missing_port_is_one_clean_line(world, capsys):
    assert main(["post", "hi", "--port", "/dev/pts/9999", "--as", "ana"]) == 3
    err = one_line_error(capsys)
    assert err == "plexus: error: cannot open /dev/pts/9999: no such file or device\n"


def test_export_to_an_unwritable_place_names_it(world, capsys, tmp_path):
    _sync(world.vn.port)
    capsys.readouterr()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    dest = blocker / "wall"
    assert main(["ledger", "export", "--html", str(dest)]) != 0
    err = one_line_error(capsys)
    assert err.startswith("plexus: error: cannot write %s: " % dest) and "Errno" not in err
    assert main(["ledger", "export", "--text", str(dest)]) != 0
    assert "cannot write %s: " % dest in one_line_error(capsys)


def test_sync_against_a_silent_port_prints_only_the_error(world, capsys):
    master, slave = os.openpty()
    try:
        assert main(["ledger", "sync", "--port", os.ttyname(slave), "--timeout", "0.2"]) == 3
        err = capsys.readouterr().err
        assert err.startswith("plexus: error: no answer from the node") and err.count("\n") == 1, repr(err)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("argv, says", [
    (["--seats", "0"], "--seats must be at least 1"),
    (["--seats", "-2"], "--seats must be at least 1"),
    (["--role", ""], "--role must not be empty"),
    (["--role", "  "], "--role must not be empty"),
])
def test_mandate_draw_says_what_is_wrong(world, capsys, argv, says):
    base = ["mandate", "draw", "--port", world.vn.port, "--as", "ana"]
    if "--role" not in argv:
        base += ["--role", "care"]
    assert main(base + argv) == 2
    assert one_line_error(capsys) == "plexus: error: %s\n" % says
    assert main(["mandate", "elect", "--holder", "ana", "--role", "care", "--port", world.vn.port] + argv) == 2
    assert says in one_line_error(capsys)



@pytest.mark.parametrize("argv, needle", [
    (["consent", "abcd", "--stance", "maybe"], "plexus consent: error: argument --stance: invalid choice: 'maybe'"),
    (["mandate", "draw", "--role", "x"], "plexus mandate draw: error: the following arguments are required: --port"),
    (["bogus"], "plexus: error: argument COMMAND: invalid choice: 'bogus'"),
])
def test_command_line_mistakes_are_one_line_too(argv, needle, capsys):
    """argparse's own errors: one line naming the mistake and where help is, not the usage block first."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(needle) and err.count("\n") == 1 and "usage:" not in err
    assert err.rstrip().endswith("--help)")
