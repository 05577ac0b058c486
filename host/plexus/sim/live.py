"""`plexus sim SCENARIO --realtime [--speed X] [--listen HOST:PORT]`: the simulator paced to the wall clock,
with external radios (a `plexus node virtual --sim HOST:PORT`) joining the simulated air over TCP.

The protocol (docs/scenarios.md, "Live mode", is normative) is newline-delimited JSON objects, one per line,
binary data as hex:

* client -> sim ``{"op": "join", "name": NAME, "pos": [x_m, y_m]}`` or ``{"op": "join", "name": NAME,
  "links": [{"node": NAME, "rssi": dBm}, ...]}``; sim -> client ``{"op": "welcome", "index", "name", "t_ms",
  "speed", "time0", "group", "secret", "epoch", "node_seed"}`` (or ``{"op": "error", "error": TEXT}`` and close).
* client -> sim ``{"op": "tx", "data": HEX}``: a frame the node's core wants on the air. The simulator treats it
  like any simulated node's frame: listen-before-talk, airtime, half-duplex, collisions, capture.
* sim -> client ``{"op": "rx", "data": HEX, "rssi": int, "snr": float, "t_ms": int}`` for every frame the
  external node's radio receives under the sim's radio model, and ``{"op": "time", "t_ms": int}`` about
  every 100 ms of wall time; ``{"op": "end", "t_ms": int}`` when the run is over.

Simulated time runs at `speed` times the wall clock; a client's core clock is the sim's (t_ms, extrapolated at
`speed` between messages). The group, its secret and the node's key are the simulator's own (a deterministic
simulation group); nothing here is for use outside a simulation, and the listener binds to localhost unless told
otherwise.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections import Counter
from typing import Any, Callable

from plexus.sim import radio
from plexus.sim.engine import _PROGRESS, NEG_INF, Engine

WALL_POLL_S = 0.1  # how often clients get a time message
SEND_TIMEOUT_S = 2.0


class RemoteCore:
    """Stands in the engine for a node whose core runs elsewhere: frames in from the client, frames out to it."""

    def __init__(self, node_id: bytes, send: Callable[[dict], None]):
        self.node_id = node_id
        self._send = send
        self.out: list[bytes] = []
        self.due_ms = 0

    def queue(self, frame: bytes, now_ms: int) -> None:
        if not self.out:
            self.due_ms = now_ms
        self.out.append(frame)

    def get_timer(self) -> int | None:
        return self.due_ms if self.out else None

    def handle_timer(self, now_ms: int) -> None:
        pass

    def frames_to_send(self, now_ms: int) -> list[bytes]:
        out, self.out = self.out, []
        return out

    def next_event(self) -> None:
        return None

    def receive_frame(self, data: bytes, rssi: int, snr: float, now_ms: int) -> None:
        self._send({"op": "rx", "data": bytes(data).hex(), "rssi": int(rssi), "snr": float(snr), "t_ms": int(now_ms)})

    def status(self) -> dict:
        return {"external": True}


class _Peer:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.index: int | None = None
        self.closed = False

    def send(self, obj: dict) -> None:
        if self.closed:
            return
        try:
            self.sock.settimeout(SEND_TIMEOUT_S)  # a client that stops reading is dropped, never waited for
            self.sock.sendall(json.dumps(obj).encode() + b"\n")
            self.sock.setblocking(False)
        except OSError:
            self.closed = True


def parse_address(s: str) -> tuple[str, int]:
    host, sep, port = s.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", s
    try:
        p = int(port)
    except ValueError:
        raise ValueError("bad address %r: write HOST:PORT, e.g. 127.0.0.1:7070" % s) from None
    if not 0 <= p < 65536:
        raise ValueError("bad port in %r" % s)
    return host or "127.0.0.1", p


class LiveEngine(Engine):
    """An Engine whose event loop keeps pace with the wall clock (times `speed`) and serves external radios.

    Pacing rides on the engine's own progress events (one every `tick` of simulated time): at each, the loop
    waits for the wall clock and serves the network meanwhile, so the default (as-fast-as-possible) loop is
    untouched. Frames from a client enter at the tick it arrived in (<= 5 ms of simulated time late, or two
    wall-clock ms times `speed` when that is more)."""

    def __init__(self, sc: dict, router: str, seed: int, node_factory: Any, progress: Callable[[float, float], None] | None = None,
                 speed: float = 1.0, listen: tuple[str, int] | None = None,
                 on_start: Callable[[LiveEngine], None] | None = None):
        super().__init__(sc, router, seed, node_factory, self._pace)
        self.user_progress = progress
        self.speed = float(speed)
        if not self.speed > 0:
            raise ValueError("speed must be positive")
        self.tick_us = max(5000, int(2000 * self.speed))
        self._next_tick = 0
        self.on_start = on_start
        self.peers: list[_Peer] = []
        self.external: list[int] = []
        self.server: socket.socket | None = None
        self.address: tuple[str, int] | None = None
        if listen is not None:
            self.server = socket.create_server(listen, reuse_port=False)
            self.server.setblocking(False)
            self.address = self.server.getsockname()[:2]
        self.t0 = time.monotonic()
        self._last_time_msg = 0.0
        self.stopped = False

    # ---- pacing

    def run(self) -> None:
        if self.on_start is not None:
            self.on_start(self)
        self.t0 = time.monotonic()
        self._push(0, 3, _PROGRESS)  # the first pacing tick; each tick schedules the next
        try:
            super().run()
        finally:
            for p in self.peers:
                p.send({"op": "end", "t_ms": self.now // 1000})
                p.sock.close()
            if self.server is not None:
                self.server.close()

    def _pace(self, t_s: float, end_s: float) -> None:
        if self.now >= self._next_tick:
            self._next_tick = self.now + self.tick_us
            if self._next_tick < self.duration_us:
                self._push(self._next_tick, 3, _PROGRESS)
        target = self.t0 + self.now / 1e6 / self.speed
        while True:
            left = target - time.monotonic()
            self._poll(max(0.0, min(left, 0.05)))
            if left <= 0 or self.stopped:
                break
        if self.stopped:
            self.heap.clear()
        if self.user_progress is not None:
            self.user_progress(t_s, end_s)

    def stop(self) -> None:
        """Ask the run to end at the next tick (from another thread: a test, a signal handler)."""
        self.stopped = True

    # ---- network

    def _poll(self, timeout: float) -> None:
        socks: list[Any] = [p.sock for p in self.peers if not p.closed]
        if self.server is not None:
            socks.append(self.server)
        if not socks:
            if timeout > 0:
                time.sleep(timeout)
            return
        r, _, _ = select.select(socks, [], [], timeout)
        for s in r:
            if s is self.server:
                try:
                    c, _ = self.server.accept()
                except OSError:
                    continue
                c.setblocking(False)
                self.peers.append(_Peer(c))
                continue
            peer = next(p for p in self.peers if p.sock is s)
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self._gone(peer)
                continue
            peer.buf.extend(data)
            while b"\n" in peer.buf:
                line, _, rest = bytes(peer.buf).partition(b"\n")
                peer.buf = bytearray(rest)
                self._handle(peer, line)
        wall = time.monotonic()
        if wall - self._last_time_msg >= WALL_POLL_S:
            self._last_time_msg = wall
            for p in self.peers:
                if p.index is not None:
                    p.send({"op": "time", "t_ms": self.now // 1000})
        for p in self.peers:
            if p.closed:
                self._gone(p)  # a failed send closed it: its radio leaves the air too
        self.peers = [p for p in self.peers if not p.closed]

    def _gone(self, peer: _Peer) -> None:
        peer.closed = True
        peer.sock.close()
        if peer.index is not None and self.on[peer.index]:
            self._set_off(peer.index)  # its radio leaves the air
            self._snapshot()

    def _handle(self, peer: _Peer, line: bytes) -> None:
        try:
            m = json.loads(line)
            op = m["op"]
        except (ValueError, KeyError, TypeError):
            peer.send({"op": "error", "error": "not a JSON object with an op"})
            return
        if op == "join":
            if peer.index is not None:
                peer.send({"op": "error", "error": "already joined"})
                return
            try:
                i = self.add_external(str(m.get("name") or "virtual"), m.get("pos"), m.get("links"), peer.send)
            except ValueError as e:
                peer.send({"op": "error", "error": str(e)})
                self._gone(peer)
                return
            peer.index = i
            from plexus.sim import nodes as simnodes

            ctx = simnodes.context()
            peer.send({"op": "welcome", "index": i, "name": self.names[i], "t_ms": self.now // 1000, "speed": self.speed,
                       "time0": simnodes.SIM_TIME0, "group": ctx.get("doc"), "secret": ctx["secret"].hex(), "epoch": 0,
                       "node_seed": simnodes.node_seed(i).hex()})
        elif op == "tx":
            if peer.index is None or not self.on[peer.index]:
                return
            try:
                data = bytes.fromhex(m["data"])
            except (KeyError, ValueError, TypeError):
                peer.send({"op": "error", "error": "tx needs data (hex)"})
                return
            i = peer.index
            core = self.cores[i]
            core.queue(data, self.now // 1000)
            self._arm(i)
        elif op == "bye":
            self._gone(peer)
        else:
            peer.send({"op": "error", "error": "unknown op %r" % op})

    # ---- joining

    def add_external(self, name: str, pos: Any = None, links: Any = None,
                     send: Callable[[dict], None] | None = None) -> int:
        """Add a node whose core is remote; returns its index. Position (free-space model) or a link list."""
        from plexus.sim import nodes as simnodes

        if name in self.sc["index"]:
            raise ValueError("a node named %r is already in the simulation" % name)
        if self.n >= simnodes.MAX_SIM_NODES:
            raise ValueError("the simulation is full")
        table = self.sc["links"] is not None
        if links is None and (pos is None or table):
            raise ValueError("join needs %s" % ("links (this scenario uses a link table)" if table else "pos or links"))
        lk: list[tuple[int, float]] = []
        if links is not None:
            try:
                for ln in links:
                    j = self.sc["index"][ln["node"]]
                    lk.append((j, float(ln["rssi"])))
            except (KeyError, TypeError, ValueError):
                raise ValueError("links must be [{\"node\": NAME, \"rssi\": dBm}, ...] naming simulated nodes") from None
        else:
            try:
                pos = (float(pos[0]), float(pos[1]))
            except (TypeError, ValueError, IndexError):
                raise ValueError("pos must be [x_m, y_m]") from None
        i = self.n
        board = dict(self.sc["nodes"][0]["board"])
        self.sc["nodes"].append({"name": name, "pos": pos if links is None else None, "courier": None, "board": board,
                                 "config": {}, "confirm": None, "external": True})
        self.sc["index"][name] = i
        self.names.append(name)
        self.n += 1
        self.noise.append(radio.noise_floor_dbm(self.modem["bw_hz"], board["noise_figure_db"]))
        self.sens.append(self.noise[i] + self.snr_floor)
        self.nbrs.append({})
        self.is_courier.append(False)
        self.pos.append(pos if links is None else None)
        if links is not None:
            for j, p in lk:
                self.nbrs[i][j] = p
                self.nbrs[j][i] = p
                if self.loss is not None:
                    self.loss[(i, j)] = self.loss[(j, i)] = 0.0
            self.nbrs[i] = dict(sorted(self.nbrs[i].items()))
        else:
            self.tx_dbm.append(min(board["tx_dbm"], self.region["tx_dbm_max"]))
            self.gain.append(board["gain_dbi"])
            for j in range(i):
                if self.pos[j] is not None:
                    self._set_pair(i, j)
                    self._set_pair(j, i)
        self.static_nbrs0.append({})  # not in the t=0 graph: the scenario's metrics stay about its own nodes
        self.on.append(True)
        self.tx_frame.append(None)
        self.deferred.append(False)
        self.timer_gen.append(0)
        self.timer_at.append(None)
        self.locked.append(None)
        self.lock_pow.append(0.0)
        self.lock_maxint.append(NEG_INF)
        for lst in (self.airtime_us, self.tx_count, self.rx_ok, self.empty_polls, self.spurious_polls):
            lst.append(0)
        self.tx_queue.append([])
        self.active.append({})
        for g in self.part_groups:
            g.append(-1)
        self.radio_drops.append(Counter())
        self.core_drops.append(Counter())
        self.events.append([])
        self.off_intervals.append([])
        crypto = simnodes.context()["crypto"]
        core = RemoteCore(bytes(simnodes.msg.key_id(crypto.public_key(simnodes.node_seed(i)))), send or (lambda m: None))
        self.cores.append(core)
        self.node_ids.append(core.node_id)
        self.by_id[core.node_id] = i
        self.external.append(i)
        simnodes.name_slot(i, name)
        return i

    def _courier_edges(self) -> tuple:
        ext = set(self.external)
        out = []
        for c, outs, ins in super()._courier_edges():
            out.append((c, tuple(r for r in outs if r not in ext), tuple(s for s in ins if s not in ext)))
        return tuple(out)


def write_home(home: str | os.PathLike) -> dict:
    """A $PLEXUS_HOME for the simulation's group: group.json, group.secret.json and the assembly member's key,
    so `plexus post` / `plexus ledger sync` work against a virtual node joined to the live simulation."""
    from pathlib import Path

    from plexwire import group as pgroup

    from plexus import keys
    from plexus.sim import nodes as simnodes

    ctx = simnodes.context()
    h = Path(home)
    h.mkdir(parents=True, exist_ok=True)
    doc = ctx["doc"]
    gid = pgroup.Roster(doc).group_id.hex()
    (h / "group.json").write_text(json.dumps(doc, indent=1))
    sp = h / "group.secret.json"
    sp.write_text(json.dumps({"v": 1, "group_id": gid, "secret": ctx["secret"].hex(), "epoch": 0}))
    sp.chmod(0o600)
    ks = h / "keys"  # keys.keystore_dir() of PLEXUS_HOME=h
    if not (ks / ("assembly" + keys.SUFFIX)).exists():
        keys.new_key("assembly", ks, seed=ctx["assembly_seed"])
    return {"home": str(h), "group_id": gid, "member": "assembly"}
