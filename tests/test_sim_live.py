"""Live simulation: `plexus sim --realtime --listen` with a virtual node (`plexus node virtual --sim`) joined to it,
driven end to end by the CLI through real pyserial; the sim runs 25x faster than the wall clock."""

from __future__ import annotations

import functools
import threading
import time

import pytest
from plexus.cli import main
from plexus.sim import live
from plexus.sim import scenario as scn
from plexus.sim.engine import run_scenario
from plexus.virtual import SimClient, SimJoinError

SPEED = 25.0


def _line(duration=400, links=False):
    raw = {"name": "mini", "duration_s": duration, "seed": 3, "modem": "LONG_FAST", "region": "EU_868", "board": "heltec_v3",
           "radio": {"path_loss_exponent": 3.5, "shadowing_db": 0.0},
           "nodes": [{"name": "a", "pos": [0, 0]}, {"name": "b", "pos": [3000, 0]}, {"name": "c", "pos": [6000, 0]}],
           "traffic": [{"type": "bulletin", "t": 40, "node": "c", "text": "posted inside the sim"}]}  # after the joins
    if links:
        for n in raw["nodes"]:
            del n["pos"]
        raw["links"] = [{"a": "a", "b": "b"}, {"a": "b", "b": "c"}]
    return scn.normalize(raw)


class LiveSim:
    def __init__(self, sc, home):
        self.ready = threading.Event()
        self.box: dict = {}

        def on_start(eng):
            self.eng = eng
            live.write_home(home)
            self.ready.set()

        fac = functools.partial(live.LiveEngine, speed=SPEED, listen=("127.0.0.1", 0), on_start=on_start)
        self.thread = threading.Thread(target=lambda: self.box.setdefault("result", run_scenario(sc, engine_factory=fac)),
                                       daemon=True)
        self.thread.start()
        assert self.ready.wait(30)

    def wait_sim(self, t_s, timeout=40.0):
        end = time.monotonic() + timeout
        while self.eng.now < t_s * 1e6 and time.monotonic() < end:
            time.sleep(0.02)

    def texts(self, name):
        i = self.eng.names.index(name)
        return [p.get("text") for _, k, p in list(self.eng.events[i]) if k == "message" and isinstance(p, dict)]

    def stop(self):
        self.eng.stop()
        self.thread.join(10)
        return self.box.get("result")


@pytest.fixture
def sim(tmp_path, monkeypatch):
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    s = LiveSim(_line(), tmp_path)
    yield s
    s.stop()


def _join(sim, *args, **kw):
    cl = SimClient(sim.eng.address, *args, **kw)
    t = threading.Thread(target=cl.serve_forever, daemon=True)
    t.start()
    return cl, t


def test_cli_posts_into_and_syncs_from_a_live_simulated_mesh(sim, capsys):
    cl, t = _join(sim, "laptop", (-2000.0, 0.0))
    try:
        assert cl.welcome["index"] == 3
        sim.wait_sim(20)
        assert cl.now() >= 19_000  # the core runs on the sim's clock (its own would say about 1 s)
        assert main(["post", "hello from the laptop", "--port", cl.port, "--as", "assembly"]) == 0
        assert "accepted" in capsys.readouterr().out
        deadline = time.monotonic() + 40
        while "hello from the laptop" not in sim.texts("c") and time.monotonic() < deadline:
            time.sleep(0.05)
        # two radio hops away (a relays to b, b to c): it went over the simulated air
        assert all("hello from the laptop" in sim.texts(n) for n in ("a", "b", "c"))
        assert sim.eng.tx_count[3] >= 1 and sim.eng.rx_ok[3] >= 1
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # until the sim's own bulletin (t=40 s) has come over the air too
            assert main(["ledger", "sync", "--port", cl.port]) == 0
            capsys.readouterr()
            assert main(["ledger", "show", "--json"]) == 0
            shown = capsys.readouterr().out
            if "posted inside the sim" in shown:
                break
            time.sleep(0.2)
        assert "posted inside the sim" in shown and "hello from the laptop" in shown
        assert main(["ledger", "verify"]) == 0
    finally:
        cl.close()
        t.join(5)
    res = sim.stop()
    assert res is not None and res.metrics["nodes"] == 4 and res.metrics["per_node"]["laptop"]["tx"] >= 1


def test_a_node_out_of_range_hears_nothing_and_reaches_no_one(sim, capsys):
    cl, t = _join(sim, "faraway", (200_000.0, 0.0))
    try:
        sim.wait_sim(15)
        assert main(["post", "anyone there?", "--port", cl.port, "--as", "assembly"]) == 0
        sim.wait_sim(sim.eng.now / 1e6 + 60)
        assert sim.eng.tx_count[3] >= 1  # it did transmit ...
        assert not any("anyone there?" in sim.texts(n) for n in ("a", "b", "c"))  # ... into nothing
        assert sim.eng.rx_ok[3] == 0 and cl.vn.store.count == 1
    finally:
        cl.close()
        t.join(5)
    deadline = time.monotonic() + 10
    while sim.eng.on[3] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sim.eng.on[3]  # a node that left has no radio on the air any more


def test_join_errors_are_one_clear_answer(sim, tmp_path):
    with pytest.raises(SimJoinError, match="already in the simulation"):
        SimClient(sim.eng.address, "b", (0.0, 0.0))
    with pytest.raises(SimJoinError, match="links"):
        SimClient(sim.eng.address, "x", links=[{"node": "nobody", "rssi": -90}])
    sim.stop()
    with pytest.raises(SimJoinError, match="no simulator"):
        SimClient(sim.eng.address, "late", (0.0, 0.0), timeout=2)


def test_link_table_scenarios_join_by_links(tmp_path, monkeypatch):
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    s = LiveSim(_line(links=True), tmp_path)
    try:
        with pytest.raises(SimJoinError, match="link table"):
            SimClient(s.eng.address, "p", (0.0, 0.0))
        cl, t = _join(s, "linked", links=[{"node": "c", "rssi": -100}])
        try:
            deadline = time.monotonic() + 40
            while cl.vn.store.count == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert cl.vn.store.count == 1  # c's bulletin, heard over the link (or by anti-entropy)
        finally:
            cl.close()
            t.join(5)
    finally:
        s.stop()


def test_cli_mistakes_are_one_line(capsys):
    assert main(["sim", "line", "--listen", "127.0.0.1:0"]) == 2
    assert "--realtime" in capsys.readouterr().err
    assert main(["sim", "line", "--realtime", "--speed", "0"]) == 2
    assert "--speed" in capsys.readouterr().err
    assert main(["node", "virtual", "--sim", "127.0.0.1:1"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no simulator" in err
    assert main(["node", "virtual", "--sim", "127.0.0.1:x"]) != 0
    assert "HOST:PORT" in capsys.readouterr().err


def test_the_whole_flow_with_the_real_commands(tmp_path, monkeypatch, capsys):
    """`plexus sim --realtime --listen` and `plexus node virtual --sim` as processes, the laptop CLI in between."""
    import json
    import os
    import re
    import subprocess
    import sys

    raw = {"name": "cli-line", "duration_s": 100, "seed": 3, "modem": "LONG_FAST", "region": "EU_868",
           "board": "heltec_v3", "radio": {"path_loss_exponent": 3.5, "shadowing_db": 0.0},
           "nodes": [{"name": "a", "pos": [0, 0]}, {"name": "b", "pos": [3000, 0]}],
           "traffic": [{"type": "bulletin", "t": 60, "node": "b", "text": "from the simulated mesh"}]}
    scen = tmp_path / "cli-line.json"
    scen.write_text(json.dumps(raw))
    home = tmp_path / "home"
    env = dict(os.environ, PLEXUS_HOME=str(home))
    sim = subprocess.Popen([sys.executable, "-m", "plexus", "sim", str(scen), "--realtime", "--speed", str(SPEED),
                            "--listen", "127.0.0.1:0", "--home", str(home), "--json"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    vn = None
    try:
        line = sim.stderr.readline()
        m = re.search(r"listening on ([\d.]+:\d+)", line)
        assert m, line
        vn = subprocess.Popen([sys.executable, "-m", "plexus", "node", "virtual", "--sim", m.group(1), "--at=-1000,0",
                               "--name", "laptop"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = vn.stdout.readline()
        port = re.search(r" on (/dev/\S+),", first)
        assert port, first + vn.stderr.read()
        monkeypatch.setenv("PLEXUS_HOME", str(home))
        assert main(["post", "from the laptop", "--port", port.group(1), "--as", "assembly"]) == 0
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            capsys.readouterr()
            assert main(["ledger", "sync", "--port", port.group(1)]) == 0
            assert main(["ledger", "show", "--json"]) == 0
            if "from the simulated mesh" in capsys.readouterr().out:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the simulated node's bulletin never reached the virtual node")
        out, err = sim.communicate(timeout=30)  # the run ends after 100 simulated seconds
        assert sim.returncode == 0, err
        metrics = json.loads(out)
        assert metrics["per_node"]["laptop"]["tx"] >= 1 and metrics["per_node"]["laptop"]["rx"] >= 1
        assert metrics["nodes"] == 3 and metrics["delivery_ratio"] == 1.0
        assert vn.wait(timeout=10) == 0 and "the simulation ended" in vn.stdout.read()
    finally:
        for p in (sim, vn):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
