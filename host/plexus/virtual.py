"""A virtual node: the real firmware core (plexnode) serving the real host link on a pseudo-terminal.

Every CLI flow can be run against it through real pyserial, exactly as against a board on USB.
Its radio is absent (frames it would send are counted and dropped) unless it is given a `radio`
callback, which is how a simulator can attach it to a mesh: `SimClient` joins a running
`plexus sim --realtime --listen` (protocol in plexus.sim.live), with the sim's clock as the core's.
"""

from __future__ import annotations

import json
import os
import random
import select
import socket
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Callable

from plexnode.app import event_line, prev_key
from plexnode.core import Node
from plexnode.store import Store
from plexwire import group, hostlink, msg

from plexus import provision
from plexus.crypto import HostCrypto


def _ms() -> int:
    return int(time.monotonic() * 1000)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte to a (possibly non-blocking) pty master, waiting while it is full."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 0.1)
            continue
        view = view[n:]


class VirtualNode:
    def __init__(self, roster_doc: dict, secret: bytes, node_seed: bytes, store_path: str | os.PathLike,
                 name: str = "virtual", epoch: int = 0, radio: Callable[[bytes], None] | None = None,
                 capacity: int = 4 * 1024 * 1024, time_s: int | None = None, clock: Callable[[], int] | None = None):
        self.roster = group.Roster(roster_doc)
        # the node's own key file (as group.secret.json on a device): after a rekey it holds the new epoch
        self.keys_path = Path(str(store_path) + ".keys.json")
        prev = None
        if self.keys_path.exists():
            ks = json.loads(self.keys_path.read_text())
            secret, epoch = bytes.fromhex(ks["secret"]), int(ks["epoch"])
            prev = prev_key(ks)
        self.store = Store(str(store_path), capacity, governance_kinds=msg.GOVERNANCE_KINDS)
        cfg = {"name": name, "beacon_s": 0 if radio is None else 600}
        if time_s:
            cfg["time"] = time_s
        self.t0 = _ms()
        self.clock = clock  # the core's clock in ms (default: monotonic since start)
        self.core = Node(cfg, self.roster, secret, node_seed, self.store, random.Random(), HostCrypto(), now_ms=0, epoch=epoch,
                         prev=prev)
        self.core.on_keys = self._save_keys
        self.radio = radio
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.buf = bytearray()
        self.running = True
        self._serving: threading.Thread | None = None  # the thread in serve_forever, if any

    def _save_keys(self, node: Node) -> None:
        tmp = self.keys_path.with_name(self.keys_path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(node.key_state()))
        os.replace(tmp, self.keys_path)

    def now(self) -> int:
        return self.clock() if self.clock is not None else _ms() - self.t0

    def _write(self, data: bytes) -> None:
        write_all(self.master, data)

    def _drain(self) -> None:
        while True:
            ev = self.core.next_event()
            if ev is None:
                return
            if ev[0] == "host":
                self._write(ev[1])
            else:
                line = event_line(ev)
                if line is not None:
                    self._write(line)

    def step(self, timeout: float = 0.05) -> None:
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            self.feed(data)
        self.tick()

    def feed(self, data: bytes) -> None:
        """Bytes from the laptop: complete host-link lines go to the core, replies and events go back."""
        self.buf.extend(data)
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0:
                if len(self.buf) > hostlink.MAX_LINE:
                    self.buf = bytearray()
                break
            line = bytes(self.buf[: nl + 1])
            del self.buf[: nl + 1]
            if hostlink.MARK in line:
                self.core.host_request(line, self.now())
                self._drain()

    def tick(self) -> None:
        """Let the core act on its timers; frames go to the radio callback (or nowhere)."""
        now = self.now()
        t = self.core.get_timer()
        if t is not None and t <= now:
            for fr in self.core.frames_to_send(now):
                if self.radio is not None:
                    self.radio(fr)
            self._drain()

    def receive(self, fr: bytes, rssi: int = -90, snr: float = 5.0) -> None:
        self.core.receive_frame(fr, rssi, snr, self.now())
        self._drain()

    def serve_forever(self) -> None:
        self._serving = threading.current_thread()
        try:
            while self.running:
                self.step()
        finally:
            self._serving = None

    def close(self) -> None:
        self.running = False
        t = self._serving
        if t is not None and t is not threading.current_thread():
            # let the serving thread finish its step (<= 50 ms of select) before its descriptors and store go: a
            # closed descriptor number can be reused at once by another file
            t.join(2.0)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.store.close()


class SimJoinError(Exception):
    """The simulator refused the join, or is not there."""


class SimClient:
    """A virtual node whose radio is a place in a live simulation (`plexus sim --realtime --listen`).

    It joins with a position (or a link list), takes the group, secret and node key the simulator gives it,
    and then runs the core on the sim's clock: frames it sends go to the sim's air, frames the sim's radio
    model lets it receive come back."""

    def __init__(self, address: tuple[str, int], name: str = "virtual", pos: tuple[float, float] | None = None,
                 links: list[dict] | None = None, store: str | os.PathLike | None = None, timeout: float = 10.0):
        try:
            self.sock = socket.create_connection(address, timeout=timeout)
        except OSError as e:
            raise SimJoinError("no simulator at %s:%d (%s)" % (address[0], address[1], e.strerror or e)) from None
        self.buf = bytearray()
        join: dict = {"op": "join", "name": name}
        if links is not None:
            join["links"] = links
        else:
            join["pos"] = list(pos) if pos is not None else [0.0, 0.0]
        self._send(join)
        w = self._read_line(timeout)
        if w is None or w.get("op") != "welcome":
            self.sock.close()
            raise SimJoinError("the simulator refused: %s" % ((w or {}).get("error") or "no answer"))
        self.welcome = w
        self.speed = float(w["speed"])
        self._base = (int(w["t_ms"]), time.monotonic())
        self._last = int(w["t_ms"])
        self.ended = False
        if store is None:
            self._tmp = tempfile.mkdtemp(prefix="plexus-virtual-")
            store = Path(self._tmp) / "store.log"
        self.vn = VirtualNode(w["group"], bytes.fromhex(w["secret"]), bytes.fromhex(w["node_seed"]), store, w["name"],
                              int(w.get("epoch", 0)), radio=self._tx, time_s=int(w["time0"]), clock=self.now)
        self.port = self.vn.port
        self.sock.setblocking(False)

    def now(self) -> int:
        t0, w0 = self._base
        t = max(int(t0 + (time.monotonic() - w0) * 1000.0 * self.speed), self._last)
        self._last = t
        return t

    def _sync(self, t_ms: int) -> None:
        self._base = (int(t_ms), time.monotonic())

    def _send(self, obj: dict) -> None:
        data = json.dumps(obj).encode() + b"\n"
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        except OSError:
            self.ended = True
        finally:
            self.sock.setblocking(False)

    def _read_line(self, timeout: float) -> dict | None:
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            self.buf.extend(data)
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    def _tx(self, frame: bytes) -> None:
        self._send({"op": "tx", "data": bytes(frame).hex()})

    def _from_sim(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.ended = True
            return
        self.buf.extend(data)
        while b"\n" in self.buf:
            line, _, rest = bytes(self.buf).partition(b"\n")
            self.buf = bytearray(rest)
            try:
                m = json.loads(line)
                op = m["op"]
            except (ValueError, KeyError, TypeError):
                continue  # bad input from the sim is dropped, like bad radio input
            if "t_ms" in m:
                self._sync(m["t_ms"])
            if op == "rx":
                try:
                    self.vn.receive(bytes.fromhex(m["data"]), int(m["rssi"]), float(m["snr"]))
                except (KeyError, ValueError, TypeError):
                    continue
            elif op == "end":
                self.ended = True

    def step(self, timeout: float = 0.05) -> None:
        vn = self.vn
        t = vn.core.get_timer()
        if t is not None:
            # a timer already due that produced nothing (the core sends at most one frame per call, and may keep a
            # timer due) must not turn this into a busy loop: poll it again after 2 ms of wall time at the least
            timeout = min(timeout, max(0.002, (int(t) - self.now()) / 1000.0 / self.speed))
        fds: list = [vn.master, self.sock]
        r, _, _ = select.select(fds, [], [], timeout)
        if vn.master in r:
            try:
                data = os.read(vn.master, 65536)
            except OSError:
                data = b""
            vn.feed(data)
        if self.sock in r:
            self._from_sim()
        vn.tick()

    def serve_forever(self) -> None:
        while self.vn.running and not self.ended:
            self.step()

    def close(self) -> None:
        if not self.ended:
            self._send({"op": "bye"})
        self.sock.close()
        self.vn.close()


def _parse_at(s: str) -> tuple[float, float]:
    from plexus.cli import UserError

    try:
        x, y = s.split(",")
        return float(x), float(y)
    except ValueError:
        raise UserError("bad --at %r: write X,Y in metres, e.g. --at 1500,200" % s) from None


def _parse_link(s: str) -> dict:
    from plexus.cli import UserError

    name, sep, rssi = s.rpartition(":")
    try:
        if not sep or not name:
            raise ValueError
        return {"node": name, "rssi": float(rssi)}
    except ValueError:
        raise UserError("bad --link %r: write NODE:RSSI_DBM, e.g. --link n03:-95" % s) from None


def add_arguments(p) -> None:
    p.add_argument("--group", help="roster document (default: $PLEXUS_HOME/group.json)")
    p.add_argument("--name", default="virtual", help="node name (its key is kept in $PLEXUS_HOME/nodes/NAME.key)")
    p.add_argument("--store", help="message store file (default: $PLEXUS_HOME/nodes/NAME.log; with --sim a new temporary one)")
    p.add_argument("--sim", metavar="HOST:PORT", help="join a running `plexus sim --realtime --listen HOST:PORT` "
                   "(its group and clock; the node's radio is a place in the simulated mesh)")
    p.add_argument("--at", metavar="X,Y", help="with --sim: position in metres in the scenario's plane (default 0,0; negative: --at=-500,0)")
    p.add_argument("--link", metavar="NODE:RSSI", action="append",
                   help="with --sim: a link to a simulated node instead of a position (repeat it)")


def run_sim(args) -> int:
    from plexus.cli import UserError
    from plexus.sim.live import parse_address

    try:
        addr = parse_address(args.sim)
    except ValueError as e:
        raise UserError(str(e)) from None
    pos = _parse_at(args.at) if args.at else None
    links = [_parse_link(x) for x in args.link] if args.link else None
    lock = lock_store(args.store, args.name) if args.store else None
    try:
        sc = SimClient(addr, args.name, pos, links, args.store)
    except BaseException as e:
        if lock is not None:
            os.close(lock)
        if isinstance(e, SimJoinError):
            raise UserError(str(e)) from None
        raise
    w = sc.welcome
    print("virtual node %s on %s, in the simulation at %s:%d (node %d, sim time %.1f s, speed x%g)"
          % (w["name"], sc.port, addr[0], addr[1], w["index"], w["t_ms"] / 1000.0, sc.speed))
    print("use it as --port %s (with PLEXUS_HOME set to the simulation's home); Ctrl-C stops it" % sc.port)
    sys.stdout.flush()
    try:
        sc.serve_forever()
        if sc.ended:
            print("the simulation ended")
    except KeyboardInterrupt:
        pass
    finally:
        sc.close()
        if lock is not None:
            os.close(lock)
    return 0


def lock_store(store: str | os.PathLike, name: str) -> int:
    """Hold an exclusive lock on STORE.lock for as long as the returned fd stays open: one node per store file."""
    import fcntl

    from plexus.cli import UserError

    lpath = str(store) + ".lock"
    try:
        fd = os.open(lpath, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise UserError("cannot use the store %s: %s" % (store, e.strerror or e)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError("node %s is already running (%s is locked)" % (name, lpath)) from None
    return fd


def run(args) -> int:
    from plexus import groupcfg, keys
    from plexus.cli import UserError

    try:
        keys.check_name(args.name, "node")
    except keys.KeyStoreError as e:
        raise UserError(str(e)) from None
    if args.sim:
        return run_sim(args)
    if args.at or args.link:
        raise UserError("--at and --link go with --sim HOST:PORT")

    gpath = groupcfg.group_path(args.group)
    if not gpath.exists():
        raise UserError("no group at %s: create one with `plexus group init`" % gpath)
    doc = json.loads(gpath.read_text())
    sec = json.loads(groupcfg.secret_path(gpath).read_text())
    home = keys.home()
    ndir = home / "nodes"
    ndir.mkdir(parents=True, exist_ok=True)
    kfile = ndir / (args.name + ".key")
    if not kfile.exists():
        kfile.write_bytes(os.urandom(32))
        kfile.chmod(0o600)
    seed = kfile.read_bytes()
    store = Path(args.store) if args.store else ndir / (args.name + ".log")
    lock = lock_store(store, args.name)
    try:
        vn = VirtualNode(doc, bytes.fromhex(sec["secret"]), seed, store, args.name, sec.get("epoch", 0),
                         time_s=int(time.time()) - 1704067200)
    except BaseException:
        os.close(lock)
        raise
    pub = HostCrypto().public_key(seed)
    print("virtual node %s on %s (node key %s, key id %s)" % (args.name, vn.port, pub.hex(), msg.key_id(pub).hex()))
    print("use it as --port %s; Ctrl-C stops it" % vn.port)
    sys.stdout.flush()
    try:
        vn.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        vn.close()
        os.close(lock)
    return 0


SUBCOMMANDS = {
    "virtual": (add_arguments, run, "run the real node core on a pseudo-terminal (a node without hardware)"),
    "provision": (provision.add_arguments, provision.run,
                  "flash MicroPython, upload the firmware and node configuration, check the node answers"),
}
