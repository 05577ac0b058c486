"""`plexus drill` end to end: the CLI, through real pyserial, against real firmware cores wired into a line mesh.

n0 (the caller's node) - n1 - n2 - n3, and n3 is switched off (no frames reach it or leave it). The laptop signs
a drill, posts it to n0 and watches receipts; n2's holder confirms with `plexus drill confirm`; n1 only
reports "reached"; n3 stays silent and must be in the phone chain.

The cores' random jitter is narrowed (at most ~4 s instead of up to 58 s for a "reached" receipt) so the
test is quick; everything else (relaying, receipts hop by hop, acknowledgements, the tally) is the real core.
"""

from __future__ import annotations

import _thread
import collections
import io
import json
import random
import threading
import time

import pytest
from plexus import cli, keys
from plexus.cli import main
from plexus.client import plexus_time
from plexus.crypto import HostCrypto
from plexus.ledger import Ledger
from plexus.virtual import VirtualNode
from plexwire import group as pgroup
from plexwire import msg


class QuickRng(random.Random):
    """The core draws its delays as getrandbits(24) % window: with 12 bits every delay is at most ~4 s."""

    def getrandbits(self, k: int) -> int:
        return super().getrandbits(min(k, 12))


class LineMesh:
    """Virtual nodes in a line; one thread serves every pty and carries frames to the neighbours."""

    def __init__(self, doc: dict, secret: bytes, seeds: list[bytes], names: list[str], home, off: set[int]):
        self.q: collections.deque = collections.deque()
        self.off = off
        self.nodes = []
        for i, (seed, name) in enumerate(zip(seeds, names)):
            vn = VirtualNode(
                doc,
                secret,
                seed,
                home / ("%s.log" % name),
                name,
                radio=lambda fr, i=i: self.q.append((i, fr)),
                time_s=plexus_time(),
            )
            vn.core.rng = QuickRng(i)
            vn.core.reached_hold_ms = 0  # "reached" receipts are held back 150 s by default; this test runs in real time
            self.nodes.append(vn)
        self.sent = [0] * len(self.nodes)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            for vn in self.nodes:
                vn.step(0.002)
            while self.q:
                i, fr = self.q.popleft()
                self.sent[i] += 1
                if i in self.off:
                    continue
                for j in (i - 1, i + 1):
                    if 0 <= j < len(self.nodes) and j not in self.off:
                        self.nodes[j].receive(fr)

    def close(self) -> None:
        self.running = False
        self.thread.join(5)
        for vn in self.nodes:
            vn.close()


@pytest.fixture
def mesh(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "drill", ("plexus.commands.drill", "alert drills: start, report, confirm"))
    assert main(["keys", "new", "alice"]) == 0
    alice = keys.load_key("alice")
    names = ["n0", "n1", "n2", "n3"]
    seeds = [bytes([0x40 + i]) * 32 for i in range(4)]
    nodes = [
        {
            "name": n,
            "key": HostCrypto().public_key(s).hex(),
            "holder": "holder of " + n,
            "contact": "+49 30 555 01%02d" % i,
        }
        for i, (n, s) in enumerate(zip(names, seeds))
    ]
    doc = pgroup.make_doc("Tenants", [{"name": "alice", "key": alice.pub.hex()}], nodes, quorum_k=1)
    secret = bytes(range(32))
    (tmp_path / "group.json").write_text(json.dumps(doc))
    (tmp_path / "group.secret.json").write_text(
        json.dumps({"v": 1, "group_id": doc["group_id"], "secret": secret.hex(), "epoch": 0})
    )
    m = LineMesh(doc, secret, seeds, names, tmp_path, off={3})
    capsys.readouterr()
    yield m, tmp_path
    m.close()


def _seen_alert(vn: VirtualNode) -> bytes | None:
    for aid, st in list(vn.core.alerts.items()):
        if not st["origin"]:
            return aid
    return None


def test_drill_end_to_end_reached_confirmed_silent_and_stored(mesh, capsys):
    m, home = mesh
    n0, n1, n2, _n3 = m.nodes
    t0 = time.monotonic()
    n1_kid, n2_kid = n1.core.kid, n2.core.kid
    result: dict = {}

    def holder() -> None:
        # plays n2's holder (presses confirm once the alert is there), then Ctrl-C once every expected receipt is back
        try:
            while time.monotonic() - t0 < 25:
                aid = _seen_alert(n2)
                if aid is not None:
                    break
                time.sleep(0.05)
            result["aid"] = aid
            result["confirm_rc"] = main(["drill", "confirm", aid.hex(), "--port", n2.port])
            while time.monotonic() - t0 < 25:
                t = n0.core.tally.get(aid, {})
                if n1_kid in t and t.get(n2_kid, [0])[0] == msg.RECEIPT_CONFIRMED:
                    break
                time.sleep(0.05)
            time.sleep(0.6)  # the EVENT lines are on their way through the pty
        finally:
            result["ctrl_c_at"] = time.monotonic() - t0
            _thread.interrupt_main()

    th = threading.Thread(target=holder, daemon=True)
    th.start()
    try:
        rc = main(
            ["drill", "start", "Drill: meet at the yard", "--port", n0.port, "--wait", "60s", "--as", "alice", "--json"]
        )
    except KeyboardInterrupt:  # only if the interrupt came after the command had finished
        rc = -1
    th.join(5)
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    assert rc == 0 and result["confirm_rc"] == 0
    assert elapsed < 30, elapsed  # ended by the adaptive stop, not by --wait
    assert "confirmed alert %s" % result["aid"].hex() in out
    rep = json.loads(out[out.index("{") :])
    assert rep["alert"] == result["aid"].hex() and rep["caller"] == "n0" and rep["ended_early"] is True
    assert (rep["expected"], rep["reached"], rep["confirmed"]) == (3, 2, 1)
    rows = {r["node"]: r for r in rep["rows"]}
    assert rows["n1"]["reached_s"] is not None and rows["n1"]["confirmed_s"] is None and rows["n1"]["hops"] == 1
    assert rows["n2"]["confirmed_s"] is not None and rows["n2"]["hops"] == 2 and rows["n2"]["via"] == "n1"
    assert rows["n3"]["reached_s"] is None
    assert rep["relay_tree"] == [["n0", "n1"], ["n1", "n2"]]
    assert rep["single_points_of_failure"] == ["n1"]
    # the phone chain: the silent node first, then n1, reached but nobody pressed confirm there
    assert rep["phone_chain"] == [
        {"node": "n3", "holder": "holder of n3", "contact": "+49 30 555 0103", "state": "silent"},
        {"node": "n1", "holder": "holder of n1", "contact": "+49 30 555 0101", "state": "reached, not confirmed"},
    ]
    # n2's "reached" receipt is usually dropped because its holder confirmed first (it waits 2 s or more): then its
    # reached time is the confirmation's, and the report marks it
    n2_marked = not rows["n2"]["reached_receipt"]
    if n2_marked:
        assert rows["n2"]["reached_s"] == rows["n2"]["confirmed_s"]
    assert rows["n1"]["reached_receipt"] is True
    # stored in the default ledger; `drill report` reads it back in every format
    with Ledger(home / "ledger.sqlite") as led:
        stored = led.reports("drill")
    assert len(stored) == 1 and stored[0]["data"]["alert"] == rep["alert"]
    assert main(["drill", "report"]) == 0
    text = capsys.readouterr().out
    assert "PHONE CHAIN" in text and "holder of n3" in text and "reached   2 of 3 (66.7 %)" in text
    assert "None" not in text and "Every node" not in text
    assert "1 of 3 nodes confirmed; 1 silent, 1 reached but not confirmed" in text
    assert "reached, not confirmed: the radio got it, nobody pressed" in text
    n2_row = next(line for line in text.splitlines() if line.startswith("n2 "))
    n1_row = next(line for line in text.splitlines() if line.startswith("n1 "))
    assert n2_row.split()[2].endswith("*") is n2_marked and ('no separate "reached" receipt' in text) is n2_marked
    assert not n1_row.split()[2].endswith("*")
    assert main(["drill", "report", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["phone_chain"][0]["node"] == "n3"
    page = home / "drill.html"
    assert main(["drill", "report", "--format", "html", "--out", str(page)]) == 0
    assert "holder of n3" in page.read_text() and "Reached 2 of 3" in page.read_text()
    # the switched-off node never heard anything
    assert _seen_alert(m.nodes[3]) is None


def test_drill_start_ends_by_itself_after_wait(mesh, capsys):
    m, home = mesh
    t0 = time.monotonic()
    assert (
        main(["drill", "start", "short drill", "--port", m.nodes[3].port, "--wait", "2s", "--as", "alice", "--real"])
        == 0
    )
    assert 2 <= time.monotonic() - t0 < 10
    out = capsys.readouterr().out
    # n3 is switched off: nobody is reached, all three others are in the phone chain
    assert "reached   0 of 3 (0.0 %)  p50 -  p95 -" in out and "PHONE CHAIN" in out
    assert "None" not in out and "within - (p95)" in out
    for n in ("n0", "n1", "n2"):
        assert "holder of %s" % n in out
    assert "stored in the ledger as drill report 1" in out
    # it went out as a real alert, signed by alice, and the node is its caller
    ((aid, st),) = m.nodes[3].core.alerts.items()
    assert st["origin"] is True and st["real"] is True
    assert main(["drill", "report", "--all", "--format", "json"]) == 0
    (stored,) = json.loads(capsys.readouterr().out)
    assert stored["alert"] == aid.hex() and stored["real"] is True and stored["author"] == "alice"


def test_help_and_one_line_errors(mesh, capsys):
    m, _ = mesh
    with pytest.raises(SystemExit) as ex:
        main(["drill", "start", "--help"])
    assert ex.value.code == 0
    h = capsys.readouterr().out
    assert "--wait" in h and "--real" in h and "--as" in h
    for argv in (
        ["drill", "start", "x", "--port", m.nodes[0].port, "--wait", "soon", "--as", "alice"],
        ["drill", "start", "x", "--port", m.nodes[0].port, "--wait", "0s", "--as", "alice"],
        ["drill", "start", "x", "--port", m.nodes[0].port, "--as", "mallory"],
        ["drill", "confirm", "abc", "--port", m.nodes[0].port],
        ["drill", "confirm", "00" * 16, "--port", m.nodes[0].port],
        ["drill", "report"],
    ):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc != 0, argv
        assert err.count("\n") == 1 and err.startswith("plexus: error:") and "Traceback" not in err, (argv, err)


class _TallyOnlyClient:
    """A node whose EVENT lines never arrive: the watch must fall back to polling TALLY."""

    def __init__(self, aid: bytes, kid_hex: str):
        self.aid, self.kid_hex, self.polls = aid, kid_hex, 0

    def events(self, wait: float = 0.0) -> list:
        time.sleep(min(wait, 0.05))
        return []

    def tally(self, aid: bytes) -> dict:
        assert aid == self.aid
        self.polls += 1
        return {
            "alert": aid.hex(),
            "receipts": [
                {
                    "node": self.kid_hex,
                    "name": "n1",
                    "state": "confirmed",
                    "hops": 1,
                    "via": 7,
                    "t_reached": 1000,
                    "t_confirmed": 4000,
                }
            ],
        }


def test_watch_falls_back_to_tally_and_stops_when_everyone_confirmed(monkeypatch):
    from plexus import drill as drillmod
    from plexus.commands import drill as drillcmd
    from rich.console import Console

    monkeypatch.setattr(drillcmd, "TALLY_EVERY_S", 0.1)
    kid = bytes(range(8))
    nodes = [{"name": "n1", "short": msg.short_id(kid), "holder": "h", "contact": "c", "kid": kid.hex()}]
    aid = bytes(16)
    tally = drillmod.Tally(aid, nodes, 50_000)
    c = _TallyOnlyClient(aid, kid.hex())
    t0 = time.monotonic()
    assert drillcmd.watch(c, tally, "x", 30, Console(file=io.StringIO())) is False
    assert time.monotonic() - t0 < 5 and c.polls >= 1
    assert tally.all_confirmed()
    # the caller's own "message" event anchors node time: the tally's node milliseconds become report times
    assert tally.on_event({"type": "message", "id": aid.hex(), "t": 0}, 99_999) is False
    assert tally.on_tally(c.tally(aid), 99_999) is True  # laptop arrival times give way to the node's earlier ones
    assert (tally.seconds("n1", "reached"), tally.seconds("n1", "confirmed")) == (1.0, 4.0)
    assert tally.on_tally(c.tally(aid), 99_999) is False  # nothing new
    tally2 = drillmod.Tally(aid, nodes, 50_000)
    tally2.on_event({"type": "message", "id": aid.hex(), "t": 0}, 50_000)
    tally2.on_tally(c.tally(aid), 99_999)
    assert (tally2.seconds("n1", "reached"), tally2.seconds("n1", "confirmed")) == (1.0, 4.0)
    rep = drillmod.build_report("x", "n0", tally2.started_ms, nodes, tally2.receipts())
    assert rep["confirmed"] == 1 and rep["rows"][0]["confirmed_s"] == 4.0 and rep["phone_chain"] == []
    assert "Every node confirmed." in drillmod.as_text(rep)
    # TALLY's t_reached is 1000, not t_confirmed: a "reached" receipt of its own came
    assert rep["rows"][0]["reached_receipt"] is True and rep["rows"][0]["reached_s"] == 1.0
    # a receipt's signed time (from an EVENT) wins over the arrival time the tally gives
    tally2.on_event(
        {
            "type": "receipt",
            "alert": aid.hex(),
            "node": kid.hex(),
            "state": "reached",
            "hops": 1,
            "via": 7,
            "t": 9000,
            "at_s": 0,
        },
        60_000,
    )
    assert tally2.seconds("n1", "reached") == 0.0


def test_parse_duration():
    from plexus.drill import parse_duration

    assert parse_duration("90s") == 90 and parse_duration("10m") == 600 and parse_duration("1h") == 3600
    assert parse_duration("1m30s") == 90 and parse_duration("45") == 45
    for bad in ("", "soon", "-5s", "0", "10 m", "5x", "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
