"""The world the CLI tests run in: members with keys in PLEXUS_HOME, the group made with `plexus group init`, and
the real core serving it as a virtual node on a pseudo-terminal."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Iterator

from plexus.cli import main
from plexus.crypto import HostCrypto
from plexus.virtual import VirtualNode

HUB = b"\x05" * 32  # the seed of the node the laptop talks to
LOST = b"\x06" * 32  # a second node of the roster (seized, lost...)
PLEXUS_EPOCH = 1704067200  # SPEC s.6: Plexus time counts seconds from 2024-01-01T00:00:00Z


def start_node(home: Path, doc: dict, secret: bytes, seed: bytes = HUB, name: str = "hub") -> tuple[VirtualNode, threading.Thread]:
    vn = VirtualNode(doc, secret, seed, home / "node.log", name, time_s=int(time.time()) - PLEXUS_EPOCH)
    t = threading.Thread(target=vn.serve_forever, daemon=True)
    t.start()
    return vn, t


class World:
    def __init__(self, home: Path, doc: dict, vn: VirtualNode, thread: threading.Thread):
        self.home, self.doc, self.vn, self.thread = home, doc, vn, thread


@contextlib.contextmanager
def world(home: Path, monkeypatch, members: tuple[str, ...], nodes: dict[str, bytes] | None = None,
          quorum: int = 2) -> Iterator[World]:
    """`plexus keys new` for each member, `plexus group init` with them (and `nodes`: name -> seed), then the hub."""
    monkeypatch.setenv("PLEXUS_HOME", str(home))
    for w in members:
        assert main(["keys", "new", w]) == 0
    argv = ["group", "init", "--name", "Union"]
    for w in members:
        argv += ["--member", "%s=%s" % (w, w)]
    c = HostCrypto()
    for name, seed in (nodes or {}).items():
        argv += ["--node", "%s=%s" % (name, c.public_key(seed).hex())]
    assert main(argv + ["--quorum", str(quorum)]) == 0
    doc = json.loads((home / "group.json").read_text())
    sec = json.loads((home / "group.secret.json").read_text())
    vn, t = start_node(home, doc, bytes.fromhex(sec["secret"]))
    try:
        yield World(home, doc, vn, t)
    finally:
        vn.close()
        t.join(2)


def provision_emulator(tmp_path, monkeypatch):
    """A raw-REPL board emulator for `plexus node provision` (tests/replemu.py), with the firmware built and the
    provision verb registered; a generator for a pytest fixture (yields the emulator, closes it after)."""
    from mpyrig import ensure_build
    from plexus import provision, virtual
    from replemu import ReplEmulator
    from test_provision import ROOT

    ensure_build()
    real = ROOT / "firmware" / "main.py"
    if not real.is_file():
        real = tmp_path / "main.py"
        real.write_text("from plexnode import app\n")
    monkeypatch.setattr(provision, "MAIN_PY", real)
    monkeypatch.setitem(virtual.SUBCOMMANDS, "provision", (provision.add_arguments, provision.run, "provision a board"))
    e = ReplEmulator(tmp_path / "board").start()
    yield e
    e.close()


def one_line_error(capsys) -> str:
    """The stderr of a refused command: one line, `plexus: error: ...`, no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("plexus: error: "), err
    return err


def ok(capsys, *argv) -> str:
    """Run `plexus ARGV`, assert it succeeded, return its stdout."""
    from plexus.cli import main

    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out
