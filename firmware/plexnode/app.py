"""The device application: the sans-I/O core (plexnode.core.Node) driven by asyncio tasks.

    import asyncio
    from plexnode import app
    if not app.safe_mode():
        asyncio.run(app.main())

Files on the device (fs_root + ...):
    /board.json          board profile (boards/*.json)
    /config.json         {"name", "region", "modem" (preset name or [sf, bw, cr, preamble]), "router", ...}
    /group.json          roster document (plexwire.group)
    /group.secret.json   {"secret": hex, "epoch": int} (+ "prev_secret", "prev_epoch", "rekey", "grace_end" after a rekey)
    /node.key            32-byte Ed25519 seed (created on first start if missing)
    /store.log           message store (plexnode.store)

Tasks: radio (receive, timers, transmit with TX-done timeout and CAD), host link (stdin lines with "~"
to core.host_request, replies and EVENT lines to stdout), ui (display, button, LED/buzzer) and the main
loop (watchdog).  Everything hardware-ish is injectable so tests run the whole app under the MicroPython
WebAssembly port with a fake `machine`, fake stdin/stdout and a simulated clock.
An exception in one handler is counted in App.errors and logged as one line; the node keeps going.

Radio interrupts: the driver's ISR on DIO0 (SX127x) / DIO1 (SX126x) only sets a flag and, on ports whose
asyncio has ThreadSafeFlag (the ESP32 firmware), sets that flag too: the radio task sleeps in
`ThreadSafeFlag.wait()` until the interrupt or the next core timer.  asyncio.Event must not be set from
an ISR or a micropython.schedule() callback (docs.micropython.org, "Writing interrupt handlers",
section "Interfacing to asyncio"), so without ThreadSafeFlag (the WebAssembly test port) the task sleeps
in IRQ_SLICE_MS steps checking the flag and the line level: no SPI traffic until the chip signals.
Either way a forced read of the IRQ register every RADIO_WATCHDOG_MS recovers a missed interrupt, and a
board without an IRQ line (or config "radio_irq": false) polls the chip every POLL_MS.
"""

import binascii
import json
import sys
import time

try:
    import asyncio
except ImportError:  # older MicroPython
    import uasyncio as asyncio  # type: ignore[no-redef]

from plexwire import airtime, group, hostlink, msg

from plexnode import ed25519
from plexnode.core import Node
from plexnode.store import Store

# Channel centre per duty-cycle region (docs/hardware.md, docs/scenarios.md); config "freq_hz" overrides.
REGION_FREQ_HZ = {"EU_868": 869525000, "EU_868_1": 868100000, "EU_433": 433875000, "US_915": 906875000}

TX_MARGIN_MS = 500  # TX-done timeout = airtime + this
STATUS_REFRESH_MS = 5000
POLL_MS = 20  # radio polling period when there is no DIO interrupt
IRQ_SLICE_MS = 5  # flag check period while waiting for the DIO interrupt without ThreadSafeFlag
RADIO_WATCHDOG_MS = 1000  # forced IRQ-register read with the interrupt armed (a missed edge); config "radio_poll_ms"


# ---------------------------------------------------------------------------------------------- helpers


def _hex(b):
    return binascii.hexlify(b).decode()


def event_line(ev):
    """A core event as an unsolicited EVENT line (SPEC.md section 7.2), None for other events.
    {"type": kind, ...data} with bytes as hex; the virtual node sends the same lines."""
    kind = ev[0]
    if kind != "message" and kind != "alert" and kind != "receipt":
        return None
    out = {"type": kind}
    data = ev[1] if len(ev) > 1 else {}
    for k in data:
        v = data[k]
        out[k] = _hex(v) if isinstance(v, (bytes, bytearray)) else v
    return hostlink.encode(hostlink.EVENT, 0, json.dumps(out).encode())


class Crypto:
    """The core's crypto provider over plexnode.ed25519."""

    def public_key(self, seed):
        return ed25519.public_key(seed)

    def sign(self, seed, message):
        return ed25519.sign(seed, message)

    def verify(self, public, message, signature):
        try:
            return bool(ed25519.verify(public, message, signature))
        except Exception:
            return False


class Clock:
    """Plain growing milliseconds from time.ticks_ms() (wrap-safe), and asyncio sleeping."""

    def __init__(self):
        self._ticks = getattr(time, "ticks_ms", None)
        self._diff = getattr(time, "ticks_diff", None)
        if self._ticks is None:  # CPython

            def _t():
                return int(time.monotonic() * 1000)

            def _d(a, b):
                return a - b

            self._ticks = _t
            self._diff = _d
        self._last = self._ticks()
        self._ms = 0

    def now(self):
        t = self._ticks()
        d = self._diff(t, self._last)
        if d > 0:
            self._ms += d
            self._last = t
        return self._ms

    async def sleep(self, ms):
        if hasattr(asyncio, "sleep_ms"):
            await asyncio.sleep_ms(ms)
        else:
            await asyncio.sleep(ms / 1000)

    async def wait_flag(self, flag, ms):
        """Wait up to ms for an asyncio.ThreadSafeFlag; True if it was set."""
        try:
            if hasattr(asyncio, "wait_for_ms"):
                await asyncio.wait_for_ms(flag.wait(), ms)
            else:
                await asyncio.wait_for(flag.wait(), ms / 1000)
            return True
        except asyncio.TimeoutError:
            return False


class _StdinLines:
    """Device stdin as an async line reader (asyncio.StreamReader over sys.stdin)."""

    def __init__(self, stream=None):
        self._r = asyncio.StreamReader(stream or sys.stdin)

    async def readline(self):
        return await self._r.readline()


class _StdoutBytes:
    def __init__(self):
        self._o = getattr(sys.stdout, "buffer", sys.stdout)

    def write(self, b):
        self._o.write(b)


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _exists(path):
    try:
        open(path, "rb").close()
        return True
    except OSError:
        return False


def load_config(fs_root=""):
    """(cfg dict, Roster, secret bytes, epoch, node seed) from the device's JSON files."""
    cfg = _read_json(fs_root + "/config.json")
    roster = group.Roster(_read_json(fs_root + "/group.json"))
    sec = _read_json(fs_root + "/group.secret.json")
    secret = binascii.unhexlify(sec["secret"])
    epoch = int(sec.get("epoch", 0))
    kpath = fs_root + "/node.key"
    if _exists(kpath):
        with open(kpath, "rb") as f:
            seed = f.read()
    else:
        import os

        seed = os.urandom(32)
        with open(kpath, "wb") as f:
            f.write(seed)
    if len(seed) != 32:
        raise ValueError("node.key must hold a 32-byte seed")
    return cfg, roster, secret, epoch, seed


def load_prev_key(fs_root=""):
    """(secret, epoch, rekey id or None, grace end in Plexus s or 0) of the previous epoch while a rekey's grace
    window runs, else None."""
    return prev_key(_read_json(fs_root + "/group.secret.json"))


def prev_key(sec):
    """The previous epoch's key from a key-state document (group.secret.json, Node.key_state()), or None."""
    if "prev_secret" not in sec:
        return None
    rid = sec.get("rekey")
    return (binascii.unhexlify(sec["prev_secret"]), int(sec["prev_epoch"]), binascii.unhexlify(rid) if rid else None,
            int(sec.get("grace_end", 0)))


def save_keys(fs_root, node):
    """Persist the group keys after a rekey (SPEC.md s.8.4): written aside, then renamed over the old file,
    so a power cut leaves either the old or the new keys, never half a file."""
    from plexnode.store import _replace

    path = fs_root + "/group.secret.json"
    d = _read_json(path)
    for k in ("prev_secret", "prev_epoch", "rekey", "grace_end"):
        d.pop(k, None)
    d.update(node.key_state())
    with open(path + ".new", "w") as f:
        f.write(json.dumps(d))
    _replace(path + ".new", path)


def core_config(cfg):
    """The core's cfg from config.json: a modem preset name becomes (sf, bw, cr, preamble)."""
    c = dict(cfg)
    m = c.get("modem", "LONG_FAST")
    if isinstance(m, str):
        m = airtime.MODEM_PRESETS[m.upper()]
    c["modem"] = tuple(m)
    return c


def safe_mode(machine=None, fs_root=""):
    """True if the board's button is held at boot: main.py then returns to the REPL without the app."""
    try:
        if machine is None:
            machine = __import__("machine")  # the device module (not followed by the type checker)
        from plexnode.board import load_profile

        b = load_profile(fs_root + "/board.json")["button"]
        if b is None:
            return False
        P = machine.Pin
        al = b.get("active_low", True)
        pin = P(b["pin"], P.IN, P.PULL_UP if al else P.PULL_DOWN)
        held = (not pin.value()) if al else bool(pin.value())
        if held:
            print("plexus: button held at boot: safe mode, app not started")
        return held
    except Exception as e:  # a broken profile must not lock the user out of the REPL
        print("plexus: safe-mode check failed: %r" % (e,))
        return False


# ---------------------------------------------------------------------------------------------- the app


class App:
    def __init__(self, machine=None, stdin=None, stdout=None, fs_root="", clock=None, board=None, rng=None, flag_factory=None):
        self.fs_root = fs_root
        self.clock = clock or Clock()
        self.stdout = stdout if stdout is not None else _StdoutBytes()
        self._stdin = stdin
        self.machine = machine
        self.errors = {}
        self.running = True
        self.radio = None
        self.display = None
        self.button = None
        self.signals = None
        self.wdt = None
        self.board = board
        self.latest_message = None
        self.latest_alert = None  # event dict of the newest alert
        self.confirmed = []
        self.rx_frames = 0
        self.tx_frames = 0
        self.wdt_feeds = 0
        self._status_at = None
        self._tsf = None
        self._poke = False
        self._flag_factory = flag_factory if flag_factory is not None else getattr(asyncio, "ThreadSafeFlag", None)
        self.radio_polls = 0  # IRQ-register reads forced by the watchdog (or polling without IRQ)
        self.radio_wakeups = 0  # radio task wake-ups by the interrupt
        now = self.clock.now()
        self._polled_at = now
        cfg, roster, secret, epoch, seed = load_config(fs_root)
        self.cfg = core_config(cfg)
        if rng is None:
            import random as rng  # MicroPython has no random.Random: the module is the generator
        store = Store(fs_root + "/store.log", int(cfg.get("store_bytes", 256 * 1024)), governance_kinds=msg.GOVERNANCE_KINDS)
        self.core = Node(self.cfg, roster, secret, seed, store, rng, Crypto(), now, epoch, load_prev_key(fs_root))
        self.core.on_keys = lambda node: save_keys(fs_root, node)
        self.roster = roster
        self._hw(now)

    # --- set-up --------------------------------------------------------------------------------
    def _hw(self, now):
        m = self.machine
        if m is None:
            return
        if self.board is None:
            try:
                from plexnode.board import Board, load_profile

                self.board = Board(load_profile(self.fs_root + "/board.json"), m)
                self.board.power_on()
            except Exception as e:
                self.fail("board", e)
                return
        b = self.board
        try:
            use_irq = bool(self.cfg.get("radio_irq", True))
            tsf = None
            if use_irq and self._flag_factory is not None:
                tsf = self._flag_factory()
            r = b.radio(irq_callback=tsf.set if tsf is not None else None, irq=use_irq)
            self._tsf = tsf if r.uses_irq else None
            sf, bw, cr, pre = self.cfg["modem"]
            freq = self.cfg.get("freq_hz") or REGION_FREQ_HZ.get(self.cfg.get("region", "EU_868"), 869525000)
            pwr = min(int(self.cfg.get("tx_power_dbm", 14)), b.profile["radio"].get("max_power_dbm", 14))
            r.configure(freq, sf=sf, bw_hz=bw, cr=cr, preamble=pre, sync_word=self.cfg.get("sync_word", 0x12), tx_power_dbm=pwr)
            r.start_recv()
            self.radio = r
        except Exception as e:
            self.fail("radio_init", e)
        for name in ("display", "signals"):
            try:
                setattr(self, name, getattr(b, name)())
            except Exception as e:
                self.fail(name + "_init", e)
        try:
            self.button = b.button(now)
        except Exception as e:
            self.fail("button_init", e)
        wd = getattr(m, "WDT", None)
        if wd is not None and self.cfg.get("wdt_ms", 30000):
            try:
                self.wdt = wd(timeout=int(self.cfg.get("wdt_ms", 30000)))
            except Exception as e:
                self.fail("wdt_init", e)

    # --- errors and logging ---------------------------------------------------------------------
    def log(self, text):
        try:
            self.stdout.write(("# plexus: %s\n" % text).encode())
        except Exception:
            pass

    def fail(self, where, exc):
        self.errors[where] = self.errors.get(where, 0) + 1
        self.log("%s error: %r" % (where, exc))

    # --- events from the core ------------------------------------------------------------------
    def drain(self):
        core = self.core
        while True:
            ev = core.next_event()
            if ev is None:
                return
            try:
                self.on_event(ev)
            except Exception as e:
                self.fail("event", e)

    def on_event(self, ev):
        kind = ev[0]
        if kind == "host":
            self.stdout.write(ev[1])
            return
        line = event_line(ev)
        if line is not None:
            self.stdout.write(line)
        now = self.clock.now()
        if kind == "message":
            d = ev[1]
            if "text" in d and d.get("kind") != "alert":
                self.latest_message = d
                if self.display is not None:
                    self.display.show_message(self._author(d.get("origin")), d["text"])
                    self._status_at = None
                if self.signals is not None:
                    self.signals.play("rx", now)
        elif kind == "alert":
            d = ev[1]
            self.latest_alert = d
            real = bool(d.get("real"))
            if self.display is not None:
                self.display.show_alert("real" if real else "drill", d.get("text", ""))
                self._status_at = None
            if self.signals is not None:
                self.signals.play("alert" if real else "drill", now)
        elif kind == "tx":
            if self.signals is not None:
                self.signals.play("tx", now)

    def _author(self, kid):
        if kid is None:
            return "?"
        e = self.roster.get(kid)
        if e is not None and getattr(e, "name", None):
            return e.name
        return _hex(kid[:4])

    # --- radio ---------------------------------------------------------------------------------
    async def radio_task(self):
        core = self.core
        while self.running:
            try:
                await self._radio_step()
            except Exception as e:
                self.fail("radio", e)
                if self.radio is not None:
                    try:
                        self.radio.standby()
                        self.radio.start_recv()
                    except Exception as e2:
                        self.fail("radio_recover", e2)
            self.drain()
            await self._radio_wait(self._radio_wait_ms(core))

    def _radio_wait_ms(self, core):
        """Until the next core timer, at most POLL_MS (polling) or until the watchdog poll (interrupts)."""
        cap = POLL_MS
        r = self.radio
        if r is not None and r.uses_irq:
            cap = int(self.cfg.get("radio_poll_ms", RADIO_WATCHDOG_MS)) - (self.clock.now() - self._polled_at)
            if cap < 1:
                cap = 1
        t = core.get_timer()
        if t is None:
            return cap
        d = t - self.clock.now()
        return 1 if d < 1 else (cap if d > cap else d)

    async def _radio_wait(self, ms):
        """Sleep up to ms, returning early when the radio raises its interrupt."""
        r = self.radio
        if r is None or not r.uses_irq:
            await self.clock.sleep(ms)
            return
        if r.irq_pending():  # flag set, or the line is still high (an edge we did not see)
            self.radio_wakeups += 1
            return
        self._poke = False
        tsf = self._tsf
        wf = getattr(self.clock, "wait_flag", None)
        if tsf is not None and wf is not None:
            if await wf(tsf, ms):
                self.radio_wakeups += 1
            return
        end = self.clock.now() + ms
        while True:
            left = end - self.clock.now()
            if left <= 0:
                return
            await self.clock.sleep(IRQ_SLICE_MS if left > IRQ_SLICE_MS else left)
            if r.irq_pending():
                self.radio_wakeups += 1
                return
            if self._poke:
                return

    def wake_radio(self):
        """The core may have a new timer (a host request or a button press queued a frame): end the radio
        task's wait so it is seen now, not at the next interrupt or watchdog poll."""
        self._poke = True
        if self._tsf is not None:
            self._tsf.set()  # safe from any context

    def _watchdog_poll(self, r):
        """With the interrupt armed, read the IRQ register anyway every radio_poll_ms (missed edges)."""
        now = self.clock.now()
        if now - self._polled_at >= int(self.cfg.get("radio_poll_ms", RADIO_WATCHDOG_MS)):
            self._polled_at = now
            self.radio_polls += 1
            r.poll(True)

    async def _radio_step(self):
        core = self.core
        r = self.radio
        if r is not None:
            if r.uses_irq:
                self._watchdog_poll(r)
            else:
                self.radio_polls += 1
            self._take_frames(r)
        now = self.clock.now()
        t = core.get_timer()
        if t is None or t > now:
            return
        frames = core.frames_to_send(now)
        self.drain()
        for fr in frames:
            await self._transmit(fr)

    def _take_frames(self, r):
        """Hand every frame the driver holds to the core (with the interrupt armed, recv() reads the chip
        only when it signalled).  Also called before CAD and TX, whose forced IRQ read may fetch a frame."""
        core = self.core
        while True:
            got = r.recv()
            if got is None:
                return
            self.rx_frames += 1
            try:
                core.receive_frame(got[0], got[1], got[2], self.clock.now())
            except Exception as e:
                self.fail("receive_frame", e)
            self.drain()

    async def _transmit(self, fr):
        r = self.radio
        if r is None:
            return  # no radio: the frame is dropped (the core already accounted its airtime)
        self._take_frames(r)
        if hasattr(r, "start_cad"):
            for _ in range(3):
                if not await self._channel_busy(r):
                    break
                await self.clock.sleep(20 + self.core._rand(200))
        self._take_frames(r)
        r.send(fr)
        limit = self.core.airtime(len(fr)) // 1000 + TX_MARGIN_MS
        t0 = self.clock.now()
        while not r.tx_done():
            if self.clock.now() - t0 > limit:
                r.poll(True)  # a TX-done interrupt we missed?
                if r.tx_done():
                    break
                self.fail("tx_timeout", "no TX done after %d ms" % limit)
                r.standby()
                r.start_recv()
                return
            await self._radio_wait(5)
        self.tx_frames += 1

    async def _channel_busy(self, r):
        try:
            r.start_cad()
        except Exception as e:
            self.fail("cad", e)
            return False
        t0 = self.clock.now()
        while True:
            res = r.cad_result()
            if res is not None:
                return res
            if self.clock.now() - t0 > 100:
                r.poll(True)  # a CAD-done interrupt we missed?
                res = r.cad_result()
                if res is not None:
                    return res
                r.standby()
                r.start_recv()
                return False
            await self.clock.sleep(2)

    # --- host link -----------------------------------------------------------------------------
    async def host_task(self):
        stdin = self._stdin if self._stdin is not None else _StdinLines()
        while self.running:
            try:
                line = await stdin.readline()
            except Exception as e:
                self.fail("stdin", e)
                await self.clock.sleep(100)
                continue
            if line is None:
                continue
            if not line:
                await self.clock.sleep(20)
                continue
            if isinstance(line, str):
                line = line.encode()
            if len(line) > hostlink.MAX_LINE or hostlink.MARK not in line:
                continue
            try:
                self.core.host_request(line, self.clock.now())
            except Exception as e:
                self.fail("host", e)
            self.drain()
            self.wake_radio()

    # --- display, button, signals ----------------------------------------------------------------
    def status_dict(self, now):
        core = self.core
        st = {"name": core.name, "group": getattr(self.roster, "name", None), "neighbours": len(core.neighbours(now))}
        if self.board is not None:
            try:
                mv = self.board.battery_mv()
                if mv is not None:
                    from plexnode.board import battery_pct

                    st["battery_mv"] = mv
                    st["battery_pct"] = battery_pct(mv)
            except Exception as e:
                self.fail("battery", e)
        budget = core.duty.budget_us
        if budget:
            st["duty_pct"] = (core.duty.used_us(now) * 1000 // budget) / 10
            st["duty_limit_pct"] = core.duty.cap_permille // 10
        st["line1"] = "msgs %d" % core.store.count
        return st

    def show_status(self, now):
        if self.display is not None:
            self.display.show_status(self.status_dict(now))
        self._status_at = now

    def on_button(self, ev, now):
        a = self.latest_alert
        if ev == "short":
            if a is not None and a["id"] not in self.confirmed:
                if self.core.confirm_alert(a["id"], now):
                    self.wake_radio()
                    self.confirmed.append(a["id"])
                    if self.signals is not None:
                        self.signals.play("ack", now, force=True)
                    self.drain()
                    return
            self.show_status(now)
        elif ev == "long":
            self.show_status(now)

    async def ui_task(self):
        while self.running:
            try:
                now = self.clock.now()
                if self.button is not None:
                    ev = self.button.poll(now)
                    if ev is not None:
                        self.on_button(ev, now)
                if self.signals is not None:
                    self.signals.tick(now)
                d = self.display
                if d is not None:
                    if d.screen == "none" or (d.screen == "status" and (self._status_at is None or now - self._status_at >= STATUS_REFRESH_MS)):
                        self.show_status(now)
                    else:
                        d.tick(now)
            except Exception as e:
                self.fail("ui", e)
            await self.clock.sleep(20)

    # --- main loop ---------------------------------------------------------------------------------
    async def run(self, run_ms=None):
        self.log("node %s up (key id %s)" % (self.core.name, _hex(self.core.kid)))
        tasks = [asyncio.create_task(self.radio_task()), asyncio.create_task(self.host_task()), asyncio.create_task(self.ui_task())]
        end = None if run_ms is None else self.clock.now() + run_ms
        while self.running:
            if self.wdt is not None:
                self.wdt.feed()
                self.wdt_feeds += 1
            if end is not None and self.clock.now() >= end:
                self.running = False
                break
            await self.clock.sleep(100)
        for t in tasks:
            try:
                t.cancel()
            except Exception:
                pass
        return self


async def main(machine=None, stdin=None, stdout=None, fs_root="", run_ms=None, clock=None, rng=None):
    """Run the node.  On the device call with no arguments; tests inject everything and get the App back."""
    if machine is None:
        try:
            machine = __import__("machine")  # the device module (not followed by the type checker)
        except ImportError:
            machine = None
    a = App(machine=machine, stdin=stdin, stdout=stdout, fs_root=fs_root, clock=clock, rng=rng)
    return await a.run(run_ms)
