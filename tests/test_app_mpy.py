"""The whole device app (plexnode.app) under real MicroPython: fake `machine` (tests/fakemachine.py) with a
register-level SX127x, fake stdin/stdout, a simulated clock, one simulated minute of traffic.

Frames and host-link lines are made in CPython (real Ed25519 via `cryptography`, real group key) and handed
to MicroPython as hex; what the app printed and sent comes back as JSON and is checked here in CPython.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from corekit import CRYPTO, Mesh
from plexwire import frame, hostlink, msg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FAKE_SRC = (HERE / "fakemachine.py").read_text()
BOARD = json.loads((ROOT / "boards" / "heltec_v2.json").read_text())  # SX1276
BOARD_SX126X = json.loads((ROOT / "boards" / "heltec_v3.json").read_text())  # SX1262 (TCXO, DIO2 RF switch)
BOARDS = {"sx127x": BOARD, "sx126x": BOARD_SX126X}
TIME_S = 90_000_000

# MicroPython-subset driver: runs the app for run_ms of simulated time while a scenario task injects traffic.
DRIVER = r'''
import asyncio, json, binascii, sys
import fakemachine as M
from plexnode import app as A
LAST = {}

class SimClock:
    def __init__(self):
        self.t = 0
        self.stopped = False
    def now(self):
        return self.t
    async def sleep(self, ms):
        end = self.t + (ms if ms > 0 else 1)
        await asyncio.sleep(0)
        while self.t < end and not self.stopped:
            await asyncio.sleep(0)
    async def wait_flag(self, flag, ms):
        # what app.Clock.wait_flag does with asyncio.wait_for_ms, in simulated time
        end = self.t + ms
        await asyncio.sleep(0)
        while not flag.state and self.t < end and not self.stopped:
            await asyncio.sleep(0)
        got = flag.state
        flag.state = False
        return got

class FakeTSF:
    # stands in for asyncio.ThreadSafeFlag (the WebAssembly port has none): set() from the ISR
    def __init__(self):
        self.state = False
        self.sets = 0
    def set(self):
        self.state = True
        self.sets += 1

def _attach(board):
    r = board["radio"]
    p = r["pins"]
    if r["family"] == "sx127x":
        return M.attach_sx127x(p["nss"], p["dio0"])
    return M.attach_sx126x(p["nss"], p["reset"], p["busy"], p["dio1"])

class FakeStdin:
    def __init__(self, clock):
        self.q = []
        self.clock = clock
    async def readline(self):
        if not self.q:
            await self.clock.sleep(10)
            return b""
        return self.q.pop(0)

class FakeStdout:
    def __init__(self):
        self.data = bytearray()
    def write(self, b):
        self.data.extend(b)

def _setup_fs(root, files):
    import os
    try:
        os.mkdir(root)
    except OSError:
        pass
    for name in files:
        v = files[name]
        with open(root + "/" + name, "wb") as f:
            f.write(binascii.unhexlify(v) if name == "node.key" else v.encode())

async def run_scenario(root, files, script, run_ms, step_ms=20, opts=None):
    opts = opts or {}
    _setup_fs(root, files)
    M.reset_all()
    M.IRQ_SUPPORT[0] = opts.get("irq", True)
    chip = _attach(json.loads(files["board.json"]))
    chip.dio_dead = opts.get("dead", False)
    clock = SimClock()
    sin = FakeStdin(clock)
    sout = FakeStdout()
    snaps = {}
    state = {"done": False}
    a = A.App(machine=M, stdin=sin, stdout=sout, fs_root=root, clock=clock,
              flag_factory=FakeTSF if opts.get("tsf") else None)
    LAST["app"] = a

    sent_at = []

    async def ticker():
        while not state["done"]:
            clock.t += step_ms
            chip.tick()
            while len(sent_at) < len(chip.sent):
                sent_at.append(clock.t)
            await asyncio.sleep(0)
        clock.stopped = True

    async def scenario():
        for at, what, arg in script:
            while clock.t < at and not state["done"]:
                await asyncio.sleep(0)
            if state["done"]:
                return
            if what == "rx":
                chip.inject(binascii.unhexlify(arg))
            elif what == "host":
                sin.q.append(arg.encode())
            elif what == "txhang":
                chip.tx_hang = bool(arg)
            elif what == "lose":
                M.LOSE_EDGES[0] = arg
            elif what == "dead":
                chip.dio_dead = bool(arg)
            elif what == "button":
                M.LEVELS[0] = arg
            elif what == "snap":
                d = a.display
                snaps[arg] = {"screen": d.screen, "title": d.title, "lines": d.lines, "led": M.LEVELS.get(25)}

    async def app_runner():
        await a.run(run_ms)
        state["done"] = True

    # everything runs in tasks that end together: the WebAssembly port resumes a top-level await only
    # when MicroPython's scheduler has nothing left to run
    tk = asyncio.create_task(ticker())
    sc = asyncio.create_task(scenario())
    ap = asyncio.create_task(app_runner())
    await ap
    await sc
    await tk
    for _ in range(5):
        await asyncio.sleep(0)
    return {
        "t": clock.t,
        "out": binascii.hexlify(sout.data).decode(),
        "sent": [binascii.hexlify(f).decode() for f in chip.sent],
        "sent_at": sent_at,
        "cads": chip.cads,
        "stored": a.core.store.count,
        "errors": a.errors,
        "drops": a.core.drops,
        "rx_frames": a.rx_frames,
        "tx_frames": a.tx_frames,
        "wdt_feeds": a.wdt_feeds,
        "wdt_timeout": M.WDTS[0].timeout if M.WDTS else None,
        "confirmed": [binascii.hexlify(x).decode() for x in a.confirmed],
        "snaps": snaps,
        "radio_rx_ok": a.radio.rx_ok if a.radio else None,
        "chip": a.radio.chip if a.radio else None,
        "uses_irq": a.radio.uses_irq if a.radio else None,
        "irq_count": a.radio.irq_count if a.radio else None,
        "irq_missed": a.radio.irq_missed if a.radio else None,
        "irq_reads": chip.irq_reads,
        "empty_irq_reads": chip.empty_irq_reads,
        "radio_polls": a.radio_polls,
        "radio_wakeups": a.radio_wakeups,
        "tsf_sets": a._tsf.sets if a._tsf is not None else None,
        "violations": getattr(chip, "violations", []),
    }
'''


def _traffic():
    """A group with the device (n0) and a neighbour (n1); frames from n1 and host-link lines from a member."""
    mesh = Mesh(2, time_s=TIME_S)
    doc, secret = mesh.doc, mesh.secret
    n1 = mesh.nodes[1]

    def frame_of(action):
        action()
        t = n1.get_timer()
        frames = n1.frames_to_send(t)
        assert len(frames) == 1
        return frames[0]

    b_id = n1.post_bulletin("Meeting moved to the library, 7pm", 0)
    bulletin = frame_of(lambda: None)
    a_id = n1.start_drill("Drill: check in please", 10)
    alert = frame_of(lambda: None)
    # a member's signed bulletin, POSTed over the host link
    alice = mesh.member_seeds["alice"]
    pub = CRYPTO.public_key(alice)
    unsigned = msg.encode_unsigned(msg.BULLETIN, {"flags": 0, "text": "From the laptop"}, msg.key_id(pub), TIME_S + 5)
    inner = msg.finish(unsigned, CRYPTO.sign(alice, msg.signing_bytes(n1.group_id, unsigned)))
    post = hostlink.encode(hostlink.POST, 7, hostlink.pack_record(inner))
    sync = hostlink.encode(hostlink.SYNC, 8, hostlink.pack_sync_request(0, 16))
    status = hostlink.encode(hostlink.STATUS, 9)
    files = {
        "board.json": json.dumps(BOARD),
        "config.json": json.dumps({"name": "n0", "region": "EU_868", "modem": "LONG_FAST", "time": TIME_S,
                                   "beacon_s": 600, "first_beacon_ms": 45000, "wdt_ms": 20000}),
        "group.json": json.dumps(doc),
        "group.secret.json": json.dumps({"secret": secret.hex(), "epoch": 0}),
        "node.key": mesh.seeds["n0"].hex(),
    }
    return {"files": files, "bulletin": bulletin, "b_id": b_id, "alert": alert, "a_id": a_id, "post": post,
            "sync": sync, "status": status, "secret": secret, "doc": doc, "post_inner": inner}


def _host_lines(out: bytes):
    """(op, req_id, body) of every host-link line the app wrote, and the plain log lines."""
    frames, logs = [], []
    for ln in out.split(b"\n"):
        if not ln:
            continue
        if b"~" in ln:
            frames.append(hostlink.decode_line(ln))
        else:
            logs.append(ln.decode())
    return frames, logs


def _run(mpy, tr, root, board=None, opts=None, script=None, run_ms=60000):
    files = dict(tr["files"])
    if board is not None:
        files["board.json"] = json.dumps(board)
    script = script if script is not None else _minute_script(tr)
    src = DRIVER
    code = (
        "import sys\ntry:\n    import os\n    os.mkdir('/fake')\nexcept OSError:\n    pass\n"
        "with open('/fake/fakemachine.py', 'w') as f:\n    f.write(%r)\n"
        "if '/fake' not in sys.path:\n    sys.path.append('/fake')\n" % FAKE_SRC
    )
    code += src + "\n_r = await asyncio.create_task(run_scenario(%r, %s, %s, %d, 20, %s))\nprint('@@' + json.dumps(_r))\n" % (
        root, json.dumps(files), json.dumps(script), run_ms, repr(opts or {}))
    out = mpy.run_async(code, timeout=600)
    line = [ln for ln in out.splitlines() if ln.startswith("@@")][-1]
    return json.loads(line[2:])


def _minute_script(tr):
    return [
        (1000, "rx", tr["bulletin"].hex()),
        (2000, "rx", "0123456789abcdef0011223344556677889900"),  # garbage: dropped, node keeps going
        (3000, "host", tr["post"].decode()),
        (2500, "snap", "after_bulletin"),
        (9000, "snap", "after_post"),
        (20000, "rx", tr["alert"].hex()),
        (22000, "snap", "after_alert"),
        (25000, "button", 0),
        (25200, "button", 1),
        (40000, "host", tr["sync"].decode()),
        (41000, "host", tr["status"].decode()),
        (41000, "host", "not a host-link line\n"),
    ]


@pytest.fixture(scope="module")
def traffic():
    return _traffic()


@pytest.fixture(scope="module", params=["sx127x", "sx126x"])
def minute(mpy, traffic, request):
    """One simulated minute on a Heltec V2 (SX1276 register model) and a Heltec V3 (SX1262 command model)."""
    r = _run(mpy, traffic, "/app_minute_" + request.param, BOARDS[request.param])
    assert r["chip"] == request.param
    return r


@pytest.mark.mpy
@pytest.mark.slow
def test_app_runs_a_simulated_minute(minute):
    r = minute
    assert r["t"] >= 60000
    assert r["violations"] == []
    assert r["wdt_timeout"] == 20000 and r["wdt_feeds"] >= 500  # fed every 100 ms of the minute
    assert r["errors"] == {}, r["errors"]
    assert r["radio_rx_ok"] == 3 and r["rx_frames"] == 3
    assert r["drops"] == {"malformed": 1}  # the garbage frame, and nothing else


@pytest.mark.mpy
@pytest.mark.slow
def test_app_radio_is_interrupt_driven(minute):
    """Every radio event came through the DIO interrupt; the IRQ register was read only for those, for the
    1 s watchdog poll and once before each CAD and TX (polling every 20 ms would read it ~3,000 times a minute,
    see the fallback test)."""
    r = minute
    assert r["uses_irq"] is True
    assert r["irq_count"] == r["radio_rx_ok"] + r["tx_frames"] + r["cads"]  # RxDone, TxDone, CadDone
    assert r["irq_missed"] == 0
    assert 55 <= r["radio_polls"] <= 61  # the watchdog, once a second
    forced = r["radio_polls"] + r["tx_frames"] + r["cads"]  # watchdog, and before every CAD and TX
    assert r["empty_irq_reads"] <= forced  # no other read ever found nothing
    assert r["irq_reads"] <= forced + r["irq_count"]
    assert r["radio_wakeups"] >= r["radio_rx_ok"]  # the waiting radio task was woken by each received frame


def _same_traffic_handled(r):
    assert r["errors"] == {}, r["errors"]
    assert r["radio_rx_ok"] == 3 and r["rx_frames"] == 3 and r["stored"] == 3
    assert r["drops"] == {"malformed": 1}
    assert r["tx_frames"] >= 4 and r["confirmed"]


@pytest.mark.mpy
@pytest.mark.slow
@pytest.mark.parametrize("chip", ["sx127x", "sx126x"])
def test_app_polling_fallback_without_pin_interrupts(mpy, traffic, chip):
    """A port/pin without interrupt support (Pin.irq raises): the driver polls the chip every 20 ms."""
    r = _run(mpy, traffic, "/app_poll_" + chip, BOARDS[chip], {"irq": False})
    _same_traffic_handled(r)
    assert r["uses_irq"] is False and r["irq_count"] == 0
    assert r["radio_polls"] >= 2900 and r["irq_reads"] >= 2900


@pytest.mark.mpy
@pytest.mark.slow
@pytest.mark.parametrize("chip", ["sx127x", "sx126x"])
def test_app_recovers_missed_interrupts(mpy, traffic, chip):
    """The DIO line never rises (every interrupt lost): the watchdog poll still finds each RxDone, TxDone and
    CadDone, so the node receives, stores, relays and confirms as before, with no TX timeout."""
    r = _run(mpy, traffic, "/app_dead_" + chip, BOARDS[chip], {"dead": True})
    _same_traffic_handled(r)
    assert r["uses_irq"] is True and r["irq_count"] == 0
    # every RxDone and TxDone was found by a forced read (CadDone too, but for a CAD cut off by the end of the run)
    assert r["radio_rx_ok"] + r["tx_frames"] <= r["irq_missed"] <= r["radio_rx_ok"] + r["tx_frames"] + r["cads"]


@pytest.mark.mpy
@pytest.mark.slow
def test_app_waits_on_threadsafe_flag_when_the_port_has_one(mpy, traffic):
    """The ESP32 path: the ISR sets an asyncio.ThreadSafeFlag (a stand-in here) the radio task waits on."""
    r = _run(mpy, traffic, "/app_tsf", BOARD, {"tsf": True})
    _same_traffic_handled(r)
    assert r["tsf_sets"] >= r["irq_count"] > 0  # every interrupt, and the host task's wake-ups
    assert r["radio_wakeups"] >= r["radio_rx_ok"]
    assert r["radio_polls"] <= 61 and r["irq_reads"] <= r["radio_polls"] + r["irq_count"] + r["tx_frames"] + r["cads"]


@pytest.mark.mpy
@pytest.mark.slow
def test_app_stores_and_relays_received_bulletin(minute, traffic):
    r = minute
    # bulletin from the radio + member post over the host link (the drill alert is stored too)
    assert r["stored"] == 3
    sent = [bytes.fromhex(s) for s in r["sent"]]
    tags = [frame.frame_tag(f) for f in sent]
    assert frame.frame_tag(traffic["bulletin"]) in tags  # relayed: the same sealed frame, new header
    relay = sent[tags.index(frame.frame_tag(traffic["bulletin"]))]
    assert frame.parse_header(relay).hops == 1
    gk = frame.GroupKey(traffic["secret"], 0)
    inners = [gk.open(f) for f in sent]
    assert traffic["post_inner"] in inners  # the host-posted bulletin went on air too
    assert r["tx_frames"] == len(sent) and r["cads"] >= len(sent)  # CAD before every transmission


@pytest.mark.mpy
@pytest.mark.slow
def test_app_host_link_replies_and_events(minute, traffic):
    frames, logs = _host_lines(bytes.fromhex(minute["out"]))
    by_req = {req: (op, body) for op, req, body in frames if req}
    op, body = by_req[7]
    assert op == hostlink.POST | hostlink.REPLY and json.loads(body)["accepted"] is True
    op, body = by_req[8]
    assert op == hostlink.SYNC | hostlink.REPLY
    nxt, more, recs = hostlink.unpack_sync_reply(body)
    inners = [hostlink.unpack_record(rec)[0] for _, rec in recs]
    assert len(recs) == 3 and traffic["post_inner"] in inners and not more
    op, body = by_req[9]
    st = json.loads(body)
    assert op == hostlink.STATUS | hostlink.REPLY and st["name"] == "n0" and st["stored"] == 3
    events = [json.loads(body) for op, req, body in frames if op == hostlink.EVENT]
    msgs = [e for e in events if e["type"] == "message"]
    assert traffic["b_id"].hex() in [e["id"] for e in msgs]
    assert any(e.get("text") == "Meeting moved to the library, 7pm" for e in msgs)
    alerts = [e for e in events if e["type"] == "alert"]
    assert [a["id"] for a in alerts] == [traffic["a_id"].hex()] and alerts[0]["real"] is False
    assert any("up" in ln for ln in logs)  # the start-up log line is not a host-link line


@pytest.mark.mpy
@pytest.mark.slow
def test_app_display_and_button_confirm(minute, traffic):
    s = minute["snaps"]
    assert s["after_bulletin"]["screen"] == "message"
    assert s["after_bulletin"]["title"] == "n1"
    assert "library" in " ".join(s["after_bulletin"]["lines"])
    assert s["after_post"]["title"] == "alice" and s["after_post"]["lines"] == ["From the laptop"]
    assert s["after_alert"]["screen"] == "alert" and s["after_alert"]["title"] == "-- DRILL --"
    # short press confirmed the drill: a signed receipt went out
    assert minute["confirmed"] == [traffic["a_id"].hex()]
    gk = frame.GroupKey(traffic["secret"], 0)
    kinds = [gk.open(bytes.fromhex(f))[0] for f in minute["sent"]]
    assert msg.RECEIPT in kinds, kinds


# --- the same app on CPython (fast; catches logic errors without the rig) -------------------------------


def test_app_on_cpython(tmp_path, traffic, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import fakemachine  # noqa: F401

    ns: dict = {}
    src = DRIVER
    exec(compile(src, "driver", "exec"), ns)
    script = [(1000, "rx", traffic["bulletin"].hex()), (3000, "host", traffic["post"].decode()), (9000, "snap", "s"),
              (12000, "host", traffic["sync"].decode())]
    r = asyncio.run(ns["run_scenario"](str(tmp_path), traffic["files"], script, 15000, 5))
    assert r["errors"] == {} and r["stored"] == 2
    assert frame.frame_tag(traffic["bulletin"]) in [frame.frame_tag(bytes.fromhex(f)) for f in r["sent"]]
    assert r["snaps"]["s"]["screen"] == "message"
    frames, _ = _host_lines(bytes.fromhex(r["out"]))
    assert {req for _, req, _ in frames if req} == {7, 8}
    sys.modules.pop("fakemachine", None)


def test_lost_edge_recovered_from_the_line_level(tmp_path, traffic, monkeypatch):
    """An edge the ISR never saw while the DIO line stays high (RxDone not cleared): the waiting radio task
    sees the level on its next flag check and services the chip well before the 1 s watchdog poll."""
    monkeypatch.syspath_prepend(str(HERE))
    ns: dict = {}
    exec(compile(DRIVER, "driver", "exec"), ns)
    script = [(500, "lose", 1), (1300, "rx", traffic["bulletin"].hex()), (1400, "snap", "s")]
    # no beacon: its random first time falls inside these 1.5 s one run in twenty, and its CadDone/TxDone edges
    # would then be counted (or lost) instead of the RxDone edge this test is about
    files = dict(traffic["files"])
    files["config.json"] = json.dumps(dict(json.loads(files["config.json"]), beacon_s=0))
    r = asyncio.run(ns["run_scenario"](str(tmp_path), files, script, 1500, 5, {}))
    assert r["uses_irq"] and r["irq_count"] == 0 and r["irq_missed"] == 0
    assert r["rx_frames"] == 1 and r["snaps"]["s"]["screen"] == "message"  # within 100 ms, no watchdog poll
    assert r["radio_polls"] == 1  # the watchdog ran at 1 s, before the frame, and not again until 2 s
    sys.modules.pop("fakemachine", None)


def test_interrupt_mode_transmits_as_promptly_as_polling(tmp_path, traffic, monkeypatch):
    """While the radio task waits for an interrupt, a frame the host link queued must still go out at once:
    the host task wakes the radio task (no one-second wait for the watchdog poll)."""
    import random

    monkeypatch.syspath_prepend(str(HERE))
    ns: dict = {}
    exec(compile(DRIVER, "driver", "exec"), ns)
    script = [(3000, "host", traffic["post"].decode()), (6000, "host", traffic["status"].decode())]
    runs = {}
    for name, opts in (("irq", {}), ("poll", {"irq": False})):
        random.seed(7)
        r = asyncio.run(ns["run_scenario"](str(tmp_path / name), traffic["files"], script, 8000, 5, opts))
        assert r["errors"] == {} and r["uses_irq"] is (name == "irq")
        runs[name] = r
    gk = frame.GroupKey(traffic["secret"], 0)
    at = {}
    for name, r in runs.items():
        inners = [gk.open(bytes.fromhex(f)) for f in r["sent"]]
        at[name] = r["sent_at"][inners.index(traffic["post_inner"])]
    assert 3000 < at["irq"] < 6000
    assert abs(at["irq"] - at["poll"]) <= 25, at  # same moment, within one polling period
    sys.modules.pop("fakemachine", None)


def test_handler_exception_is_counted_and_node_keeps_going(tmp_path, traffic, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    ns: dict = {}
    exec(compile(DRIVER, "driver", "exec"), ns)
    from plexnode.core import Node

    real = Node.receive_frame
    calls = []

    def flaky(self, data, rssi, snr, now):
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(self, data, rssi, snr, now)

    monkeypatch.setattr(Node, "receive_frame", flaky)
    script = [(500, "rx", traffic["alert"].hex()), (1000, "rx", traffic["bulletin"].hex())]
    r = asyncio.run(ns["run_scenario"](str(tmp_path), traffic["files"], script, 5000, 20))
    assert r["errors"] == {"receive_frame": 1} and len(calls) == 2
    assert r["stored"] == 1  # the frame after the failing one was handled
    _, logs = _host_lines(bytes.fromhex(r["out"]))
    assert any("receive_frame error" in ln and "boom" in ln for ln in logs)
    sys.modules.pop("fakemachine", None)


def test_safe_mode_when_button_held(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import fakemachine as fm
    from plexnode import app

    (tmp_path / "board.json").write_text(json.dumps(BOARD))
    fm.LEVELS.clear()
    fm.LEVELS[BOARD["button"]["pin"]] = 0  # held (active low)
    assert app.safe_mode(fm, str(tmp_path)) is True
    fm.LEVELS[BOARD["button"]["pin"]] = 1
    assert app.safe_mode(fm, str(tmp_path)) is False
    assert app.safe_mode(fm, str(tmp_path / "missing")) is False  # a broken profile never locks the REPL
    sys.modules.pop("fakemachine", None)


HEAP_SETUP = r'''
import gc, os, binascii, hashlib
from plexnode.store import Store
from plexwire import msg
def _fill(root, n):
    s = Store(root + "/store.log", 256 * 1024, governance_kinds=msg.GOVERNANCE_KINDS)
    for i in range(n):
        mid = hashlib.sha256(b"rec%d" % i).digest()[:16]
        s.add(mid, 1, bytes(100), 90000000 + i)
    c = s.count
    s.close()
    return c
'''


@pytest.mark.mpy
@pytest.mark.slow
def test_app_heap_budget_with_1000_stored(mpy_fresh, traffic):
    """Steady state of the running app with 1,000 stored bulletins retains <= 64 KB of heap: its state (core,
    store index, display buffer, drivers, tasks' leftovers), measured after every module it uses was imported
    (bytecode is not counted: on the device it can be frozen into flash).  Each step is its own run so the
    WebAssembly GC frees between them."""
    m = mpy_fresh
    src = DRIVER
    m.run("import sys\ntry:\n    import os\n    os.mkdir('/fake')\nexcept OSError:\n    pass\n"
          "with open('/fake/fakemachine.py', 'w') as f:\n    f.write(%r)\nsys.path.append('/fake')\n" % FAKE_SRC)
    m.run("import gc\ngc.collect()")
    base = m.eval_json("import gc\ngc.collect()", "gc.mem_alloc()")
    m.run(src + HEAP_SETUP + "\n_setup_fs('/h', %s)\n_n = _fill('/h', 1000)\nassert _n == 1000, _n\n" % json.dumps(traffic["files"]))
    # import every module the app loads lazily, so the difference below is the app's state, not code
    m.run("del _fill\nimport plexnode.board, plexnode.radio.sx127x, plexnode.display, plexnode.ui, plexnode.ed25519\n"
          "import plexnode.sync, random, plexnode.core\nimport gc\ngc.collect()")
    before = m.eval_json("import gc\ngc.collect()", "gc.mem_alloc()")
    script = [(1000, "rx", traffic["bulletin"].hex()), (3000, "host", traffic["sync"].decode())]
    out = m.run_async("_hr = await asyncio.create_task(run_scenario('/h', %s, %s, 10000))\n"
                      "print(_hr['stored'], _hr['errors'])\n" % (json.dumps(traffic["files"]), json.dumps(script)))
    assert out.split()[0] == "1001"
    # keep the app alive as the device would (its state referenced), drop everything else
    m.run("_keep = LAST['app']\ndel _hr\nimport gc\ngc.collect()")
    after = m.eval_json("import gc\ngc.collect()", "gc.mem_alloc()")
    retained = after - base
    app_only = after - before
    print("heap: %d bytes retained (%d bytes the app state alone)" % (retained, app_only))
    assert app_only <= 64 * 1024, app_only


def test_stuck_transmission_times_out_and_radio_returns_to_receive(tmp_path, traffic, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    ns: dict = {}
    exec(compile(DRIVER, "driver", "exec"), ns)
    script = [(0, "txhang", 1), (500, "rx", traffic["bulletin"].hex()), (8000, "txhang", 0),
              (9000, "rx", traffic["alert"].hex())]
    r = asyncio.run(ns["run_scenario"](str(tmp_path), traffic["files"], script, 15000, 20))
    assert r["errors"].get("tx_timeout", 0) >= 1  # the relay never got TxDone: standby, back to receive
    assert set(r["errors"]) == {"tx_timeout"}
    assert r["stored"] == 2 and r["rx_frames"] == 2  # still receiving after the stuck transmission
    assert r["tx_frames"] >= 1  # and transmitting again once the radio recovered
    assert len(r["sent"]) > r["tx_frames"]
    sys.modules.pop("fakemachine", None)


def test_app_on_cpython_against_the_strict_sx1262_model(tmp_path, traffic, monkeypatch):
    """The whole app on a Heltec V3 profile driving the datasheet-level SX1262 model of tests/chipmodels (BUSY
    handshake, standby-only configuration, TCXO and image calibration checks, DIO1 interrupt): it receives,
    relays, transmits the host's post, and never breaks a rule the chip would reject or misbehave on."""
    monkeypatch.syspath_prepend(str(HERE))
    import fakemachine as fm
    from chipmodels import SX126xModel
    from plexnode import app as A

    fm.reset_all()
    r = BOARD_SX126X["radio"]
    model = SX126xModel(tcxo_voltage=r["tcxo_voltage"], rf_switch_on_dio2=r["dio2_as_rf_switch"])
    pins = r["pins"]
    pinmap = {pins["nss"]: model.cs, pins["reset"]: model.reset, pins["busy"]: model.busy, pins["dio1"]: model.dio1}

    class Pin(fm.Pin):
        def __new__(cls, n, mode=-1, pull=-1, value=None):
            if n in pinmap:
                p = pinmap[n]
                if value is not None:
                    p.value(value)
                return p
            return fm.Pin.__new__(cls)

    machine = type("Machine", (), {"Pin": Pin, "SPI": staticmethod(lambda *a, **k: model.spi), "I2C": fm.I2C,
                                   "ADC": fm.ADC, "PWM": fm.PWM, "WDT": fm.WDT})
    files = dict(traffic["files"], **{"board.json": json.dumps(BOARD_SX126X)})
    for name, v in files.items():
        (tmp_path / name).write_bytes(bytes.fromhex(v) if name == "node.key" else v.encode())

    ns: dict = {}
    exec(compile(DRIVER, "driver", "exec"), ns)
    clock = ns["SimClock"]()
    sin = ns["FakeStdin"](clock)
    sout = ns["FakeStdout"]()
    a = A.App(machine=machine, stdin=sin, stdout=sout, fs_root=str(tmp_path), clock=clock)
    assert a.radio is not None and a.radio.chip == "sx126x" and a.radio.uses_irq
    pending = [(1000, traffic["bulletin"]), (2000, traffic["alert"])]

    async def scenario():
        runner = asyncio.create_task(a.run(12000))
        posted = False
        while a.running:
            clock.t += 5
            if model.tx_pending:
                model.complete_tx()
            if model._cad_pending:
                model.complete_cad(False)
            if pending and clock.t >= pending[0][0] and model.inject(pending[0][1], rssi_dbm=-90, snr_db=7.5):
                pending.pop(0)
            if clock.t >= 3000 and not posted:
                sin.q.append(traffic["post"])
                posted = True
            await asyncio.sleep(0)
        clock.stopped = True
        await runner

    asyncio.run(scenario())
    assert model.violations == [] and a.errors == {}, (model.violations, a.errors)
    assert not pending and a.rx_frames == 2 and a.core.store.count == 3
    assert a.radio.irq_count >= 2 + len(model.transmitted) and a.radio.irq_missed == 0
    sent = [f.payload for f in model.transmitted]
    gk = frame.GroupKey(traffic["secret"], 0)
    assert traffic["post_inner"] in [gk.open(f) for f in sent]
    assert frame.frame_tag(traffic["bulletin"]) in [frame.frame_tag(f) for f in sent]
    cfg = model.transmitted[-1].config
    assert abs(cfg["freq_hz"] - 869_525_000) <= 1 and cfg["sync_word16"] == 0x1424 and cfg["crc"] is True
    sys.modules.pop("fakemachine", None)
