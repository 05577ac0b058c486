"""A virtual node: the real firmware core (plexnode) serving the real host link on a pseudo-terminal.

Every CLI flow can be run against it through real pyserial, exactly as against a board on USB.
Its radio is absent (frames it would send are counted and dropped) unless it is given a `radio`
callback, which is how a simulator can attach it to a mesh.
"""

from __future__ import annotations

import json
import os
import random
import select
import sys
import time
import tty
from pathlib import Path
from typing import Callable

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


def event_line(ev: tuple) -> bytes | None:
    """A core event as an unsolicited EVENT line for the laptop (SPEC.md section 7.2)."""
    kind, data = ev[0], ev[1] if len(ev) > 1 else {}
    if kind not in ("message", "alert", "receipt"):
        return None
    out = {"type": kind}
    for k, v in data.items():
        out[k] = v.hex() if isinstance(v, (bytes, bytearray)) else v
    return hostlink.encode(hostlink.EVENT, 0, json.dumps(out).encode())


class VirtualNode:
    def __init__(self, roster_doc: dict, secret: bytes, node_seed: bytes, store_path: str | os.PathLike,
                 name: str = "virtual", epoch: int = 0, radio: Callable[[bytes], None] | None = None,
                 capacity: int = 4 * 1024 * 1024, time_s: int | None = None):
        self.roster = group.Roster(roster_doc)
        # the node's own key file (as group.secret.json on a device): after a rekey it holds the new epoch
        self.keys_path = Path(str(store_path) + ".keys.json")
        prev = None
        if self.keys_path.exists():
            ks = json.loads(self.keys_path.read_text())
            secret, epoch = bytes.fromhex(ks["secret"]), int(ks["epoch"])
            if "prev_secret" in ks:
                prev = (bytes.fromhex(ks["prev_secret"]), int(ks["prev_epoch"]), bytes.fromhex(ks.get("rekey", "")) or None,
                        int(ks.get("grace_end", 0)))
        self.store = Store(str(store_path), capacity, governance_kinds=msg.GOVERNANCE_KINDS)
        cfg = {"name": name, "beacon_s": 0 if radio is None else 600}
        if time_s:
            cfg["time"] = time_s
        self.t0 = _ms()
        self.core = Node(cfg, self.roster, secret, node_seed, self.store, random.Random(), HostCrypto(), now_ms=0, epoch=epoch,
                         prev=prev)
        self.core.on_keys = self._save_keys
        self.radio = radio
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.buf = bytearray()
        self.running = True

    def _save_keys(self, node: Node) -> None:
        tmp = self.keys_path.with_name(self.keys_path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(node.key_state()))
        os.replace(tmp, self.keys_path)

    def now(self) -> int:
        return _ms() - self.t0

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
        while self.running:
            self.step()

    def close(self) -> None:
        self.running = False
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.store.close()


def add_arguments(p) -> None:
    p.add_argument("--group", help="roster document (default: $PLEXUS_HOME/group.json)")
    p.add_argument("--name", default="virtual", help="node name (its key is kept in $PLEXUS_HOME/nodes/NAME.key)")
    p.add_argument("--store", help="message store file (default: $PLEXUS_HOME/nodes/NAME.log)")


def run(args) -> int:
    from plexus import groupcfg, keys
    from plexus.cli import UserError

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
    vn = VirtualNode(doc, bytes.fromhex(sec["secret"]), seed, store, args.name, sec.get("epoch", 0),
                     time_s=int(time.time()) - 1704067200)
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
    return 0


SUBCOMMANDS = {
    "virtual": (add_arguments, run, "run the real node core on a pseudo-terminal (a node without hardware)"),
    "provision": (provision.add_arguments, provision.run,
                  "flash MicroPython, upload the firmware and node configuration, check the node answers"),
}
