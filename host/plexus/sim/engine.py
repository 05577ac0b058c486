"""Discrete-event LoRa mesh engine: runs one node core per node over the radio model.

Time is kept in integer microseconds internally (airtime resolution); node cores see integer
milliseconds (``now_us // 1000``) as the contract requires.  Events live in a heapq ordered by
(time, priority, sequence number): frame ends (priority 0) are processed before anything else
that happens at the same microsecond, so a frame that ends at t never overlaps one that starts
at t.  Everything random comes from RNGs seeded from the run seed (one stream per purpose), and
nothing iterates over a hash-ordered container of strings, so a run is a pure function of
(scenario, router, seed, node factory).

Radio rules (docs/scenarios.md, "Radio model", says the same in prose):

* Link budget: mean RSSI from log-distance path loss + per-pair shadowing (radio.py), computed
  once for static pairs; pairs involving a courier are recomputed every ``courier_step_s``.
  Optional per-frame fading N(0, fading_db) is added per (frame, receiver).
* A receiver keeps, per frame on the air, the frame's power if it is at least
  (sensitivity - capture_db - 3*fading_db): anything weaker can never matter to the capture rule.
* Lock: an idle receiver (on, not transmitting, not locked) locks onto a frame whose power is
  >= its sensitivity when the frame starts.  While locked on g, a new frame f takes the lock only
  if f starts during g's preamble ((n_preamble + 4.25) symbols) and is >= capture_db stronger
  than g (g is then lost); otherwise f is lost at that receiver ("busy": its preamble went by
  while the radio was demodulating g) though it still interferes with g.  A frame that started
  while the receiver was transmitting or off is never locked (its preamble was missed).
* Capture: the locked frame is received iff its power is >= capture_db above every other frame
  that overlapped it in time at that receiver (exactly 6 dB survives, 5.99 dB does not).
* Half-duplex: a node that starts transmitting loses the frame it was locked on, and hears
  nothing while it transmits.  Back-to-back frames returned by one ``frames_to_send`` call are
  sent one after another without a new channel check.
* Listen-before-talk (CAD): a node about to transmit senses the channel busy if a frame whose
  power at the node is >= its sensitivity has been on the air for at least ``cad_symbols``
  symbol times; it then defers to the end of the last such frame plus a uniform random jitter
  (``lbt_jitter_ms``).  Frames younger than the CAD window are not seen: two nodes starting within
  it collide, as real CAD misses them.
* Link table mode: each listed link is symmetric with the given RSSI/SNR and loses each frame
  with probability ``loss`` (drawn per frame and receiver at the end of reception).
"""

from __future__ import annotations

import hashlib
import heapq
import importlib
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import networkx as nx

from plexus.sim import radio
from plexus.sim import scenario as scn

ROUTERS = ("plexus", "managed", "flood")

# event kinds
_FRAME_END = 0
_TX_NEXT = 1
_TIMER = 2
_TX_ATTEMPT = 3
_POST = 4
_CONFIRM = 5
_OFF = 6
_ON = 7
_PART_ON = 8
_PART_OFF = 9
_COURIER = 10
_PROGRESS = 11

NEG_INF = float("-inf")


class TxRecord(NamedTuple):
    """One transmitted frame: start time, node name, frame length (bytes), airtime."""

    t_us: int
    node: str
    length: int
    airtime_us: int


def derive_seed(seed: int, *labels: Any) -> int:
    h = hashlib.sha256(("%d|" % seed + "|".join(str(x) for x in labels)).encode()).digest()
    return int.from_bytes(h[:8], "big")


class _Frame:
    __slots__ = ("fid", "src", "data", "start", "end", "pre_end", "aborted", "rx")

    def __init__(self, fid: int, src: int, data: bytes, start: int, end: int, pre_end: int):
        self.fid = fid
        self.src = src
        self.data = data
        self.start = start
        self.end = end
        self.pre_end = pre_end
        self.aborted = False
        self.rx: list[tuple[int, float]] = []


@dataclass
class SimResult:
    """Outcome of ``run_scenario``.

    metrics      the dict ``--json`` prints (see metrics.py / docs/scenarios.md)
    events       node name -> [(t_ms, kind, payload)] as drained from the node core, in order
    graph        networkx.Graph of the static link graph (t=0 positions, both directions above the
                 SF floor); node attrs: pos, courier, board; edge attrs: rssi, snr (weaker direction)
    off          node name -> [(t_off_s, t_on_s or None)], the intervals each node was switched off
    tx_log       every transmitted frame as TxRecord(t_us, node, length, airtime_us), in time order
    deliveries   message id (bytes) -> {node name: t_ms of first delivery}
    posts        the bulletins/drills actually posted: dicts with id, type, origin (name), t_ms
    reachable    message id -> names of the nodes a journey reaches (metrics.reachability)
    receipts     "receipt" events: {"at": node name, "t_us": arrival, "payload": the event payload}
    presses      confirmations pressed: {"node", "post" (index into posts), "t_ms"}
    status       node name -> core.status() at the end of the run ({} if the core has none)
    """

    metrics: dict
    events: dict[str, list[tuple[int, str, dict]]]
    graph: Any
    off: dict[str, list[tuple[float, float | None]]]
    tx_log: list[TxRecord]
    deliveries: dict[bytes, dict[str, int]] = field(default_factory=dict)
    posts: list[dict] = field(default_factory=list)
    scenario: dict = field(default_factory=dict)
    router: str = "plexus"
    seed: int = 0
    names: list[str] = field(default_factory=list)
    receipts: list[dict] = field(default_factory=list)
    presses: list[dict] = field(default_factory=list)
    reachable: dict[bytes, list[str]] = field(default_factory=dict)
    status: dict[str, dict] = field(default_factory=dict)


NodeFactory = Callable[..., Any]


def default_node_factory() -> tuple[NodeFactory, str]:
    """The real core (plexus.sim.nodes.make_core_node) when present, else the flooding stub."""
    try:
        nodes = importlib.import_module("plexus.sim.nodes")
    except ModuleNotFoundError as exc:
        if exc.name not in ("plexus.sim.nodes",):
            raise
        from plexus.sim.stubs import make_stub_node

        return make_stub_node, "stub"
    return nodes.make_core_node, "plexnode"


class Engine:
    def __init__(
        self,
        sc: dict,
        router: str,
        seed: int,
        node_factory: NodeFactory,
        progress: Callable[[float, float], None] | None = None,
    ):
        self.sc = sc
        self.router = router
        self.seed = seed
        self.progress = progress
        self.modem = sc["modem"]
        self.region = sc["region"]
        r = sc["radio"]
        self.capture = float(r["capture_db"])
        self.fading = float(r["fading_db"])
        self.duration_us = int(round(sc["duration_s"] * 1e6))
        t_sym = radio.symbol_time_us(self.modem)
        self.pre_us = int(round(radio.preamble_time_us(self.modem)))
        self.cad_us = int(round(r["cad_symbols"] * t_sym))
        self.jitter_us = (int(r["lbt_jitter_ms"][0] * 1000), int(r["lbt_jitter_ms"][1] * 1000))
        self.courier_step_us = int(round(r["courier_step_s"] * 1e6))

        nodes = sc["nodes"]
        self.n = n = len(nodes)
        self.names = [nd["name"] for nd in nodes]
        sf, bw = self.modem["sf"], self.modem["bw_hz"]
        self.noise = [radio.noise_floor_dbm(bw, nd["board"]["noise_figure_db"]) for nd in nodes]
        self.sens = [self.noise[i] + radio.snr_floor_db(sf) for i in range(n)]
        self.snr_floor = radio.snr_floor_db(sf)
        self.margin = self.capture + 3.0 * self.fading  # how far below sensitivity a frame still matters

        self.rng_fading = random.Random(derive_seed(seed, "fading"))
        self.rng_loss = random.Random(derive_seed(seed, "loss"))
        self.rng_lbt = random.Random(derive_seed(seed, "lbt"))
        self.rng_confirm = random.Random(derive_seed(seed, "confirm"))
        self.shadow = radio.Shadowing(r["shadowing_db"], derive_seed(seed, "shadow") & 0x7FFFFFFF)

        # link state: nbrs[s][r] = mean received power of s's frames at r (only pairs that matter)
        self.nbrs: list[dict[int, float]] = [dict() for _ in range(n)]
        self.loss: dict[tuple[int, int], float] | None = None
        self.couriers = [i for i, nd in enumerate(nodes) if nd["courier"] is not None]
        self.is_courier = [nd["courier"] is not None for nd in nodes]
        self.pos: list[tuple[float, float] | None] = [nd["pos"] for nd in nodes]
        if sc["links"] is not None:
            self._build_link_table(sc["links"])
        else:
            f_hz = self.region["freq_hz"]
            self._rssi_fn = radio.make_link_budget(f_hz, r["path_loss_exponent"], r["ref_distance_m"], r["ref_loss_db"])
            self.tx_dbm = [min(nd["board"]["tx_dbm"], self.region["tx_dbm_max"]) for nd in nodes]
            self.gain = [nd["board"]["gain_dbi"] for nd in nodes]
            self._build_static()
            if self.couriers:
                self._move_couriers(0)
        # t=0 link state, for the static graph: sender -> receiver -> (up, mean power)
        self.static_nbrs0 = [{r: (self.link_up(s, r), p) for r, p in self.nbrs[s].items()} for s in range(n)]

        # per-node radio state
        self.on = [True] * n
        self.tx_frame: list[_Frame | None] = [None] * n
        self.tx_queue: list[list[bytes]] = [[] for _ in range(n)]
        self.deferred = [False] * n
        self.timer_gen = [0] * n
        self.timer_at: list[int | None] = [None] * n
        self.locked: list[_Frame | None] = [None] * n
        self.lock_pow = [0.0] * n
        self.lock_maxint = [NEG_INF] * n
        self.active: list[dict[int, tuple[float, _Frame]]] = [dict() for _ in range(n)]
        self.part_groups: list[list[int]] = []  # per partition: node -> group id (or -1)
        self.active_parts: list[int] = []

        # records
        self.heap: list[tuple] = []
        self.seq = 0
        self.fid = 0
        self.now = 0
        self.tx_log: list[TxRecord] = []
        self.airtime_us = [0] * n
        self.tx_count = [0] * n
        self.rx_ok = [0] * n
        self.radio_drops = [Counter() for _ in range(n)]  # type: list[Counter]
        self.core_drops = [Counter() for _ in range(n)]  # type: list[Counter]
        self.events: list[list[tuple[int, str, dict]]] = [[] for _ in range(n)]
        self.posts: list[dict] = []
        self.msg_index: dict[bytes, int] = {}  # message/alert id -> index in posts
        self.deliv: list[dict[int, int]] = []  # per post: node -> t_us first delivery
        self.empty_polls = [0] * n
        self.spurious_polls = [0] * n
        self.presses: list[dict] = []
        self.receipts: list[dict] = []
        self.off_intervals: list[list[list[Any]]] = [[] for _ in range(n)]
        self.skipped: list[dict] = []
        # topology snapshots for reachability: (t_us, on tuple, active partitions, courier edges)
        self.snapshots: list[tuple[int, tuple[bool, ...], tuple[int, ...], tuple]] = []
        self.reach: list[set[int]] = []

        self.cores: list[Any] = []
        for i, nd in enumerate(nodes):
            core = node_factory(
                nd["name"],
                index=i,
                router=router,
                seed=derive_seed(seed, "node", i) & 0x7FFFFFFF,
                modem=dict(self.modem),
                region=dict(self.region),
                board=dict(nd["board"]),
                config=dict(nd["config"]),
            )
            self.cores.append(core)
        self.node_ids = [bytes(c.node_id) for c in self.cores]
        self.by_id = {nid: i for i, nid in enumerate(self.node_ids)}

    # ------------------------------------------------------------ link budget

    def _pair_rssi(self, s: int, r: int) -> float:
        ps, pr = self.pos[s], self.pos[r]
        assert ps is not None and pr is not None
        d = math.hypot(ps[0] - pr[0], ps[1] - pr[1])
        return self._rssi_fn(d, self.tx_dbm[s], self.gain[s], self.gain[r], self.shadow(s, r))

    def _set_pair(self, s: int, r: int) -> None:
        p = self._pair_rssi(s, r)
        if p >= self.sens[r] - self.margin:
            self.nbrs[s][r] = p
        else:
            self.nbrs[s].pop(r, None)

    def _build_static(self) -> None:
        n = self.n
        for s in range(n):
            for r in range(s + 1, n):
                self._set_pair(s, r)
                self._set_pair(r, s)
        # canonical (index) order in every neighbour dict, so iteration never depends on build order
        self.nbrs = [dict(sorted(d.items())) for d in self.nbrs]

    def _build_link_table(self, links: list[dict]) -> None:
        self.loss = {}
        for ln in links:
            a, b = ln["a"], ln["b"]
            for s, r in ((a, b), (b, a)):
                if ln["rssi"] is not None:
                    p = ln["rssi"]
                elif ln["snr"] is not None:
                    p = self.noise[r] + ln["snr"]
                else:
                    p = self.sens[r] + 10.0
                self.nbrs[s][r] = p
                self.loss[(s, r)] = ln["loss"]
        self.nbrs = [dict(sorted(d.items())) for d in self.nbrs]

    def _move_couriers(self, t_us: int) -> None:
        for c in self.couriers:
            self.pos[c] = scn.courier_position(self.sc["nodes"][c]["courier"], t_us / 1e6)
        for c in self.couriers:
            for j in range(self.n):
                if j != c:
                    self._set_pair(c, j)
                    self._set_pair(j, c)

    def link_up(self, s: int, r: int) -> bool:
        """s -> r works on average: mean power at r >= sensitivity (i.e. mean SNR >= SF floor), loss < 1."""
        p = self.nbrs[s].get(r)
        if p is None or p < self.sens[r]:
            return False
        return self.loss is None or self.loss.get((s, r), 0.0) < 1.0

    def _courier_edges(self) -> tuple:
        out = []
        for c in self.couriers:
            outs = tuple(r for r in range(self.n) if r != c and self.link_up(c, r))
            ins = tuple(s for s in range(self.n) if s != c and self.link_up(s, c))
            out.append((c, outs, ins))
        return tuple(out)

    def _snapshot(self) -> None:
        snap = (self.now, tuple(self.on), tuple(self.active_parts), self._courier_edges())
        if self.snapshots and self.snapshots[-1][1:] == snap[1:]:
            return
        if self.snapshots and self.snapshots[-1][0] == self.now:
            self.snapshots[-1] = snap
        else:
            self.snapshots.append(snap)

    def _cut(self, s: int, r: int) -> bool:
        for p in self.active_parts:
            g = self.part_groups[p]
            gs, gr = g[s], g[r]
            if gs >= 0 and gr >= 0 and gs != gr:
                return True
        return False

    # ------------------------------------------------------------ event queue

    def _push(self, t: int, prio: int, kind: int, a: Any = None, b: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, prio, self.seq, kind, a, b))

    # ------------------------------------------------------------ node interaction

    def _drain(self, i: int) -> None:
        core = self.cores[i]
        now_ms = self.now // 1000
        evs = self.events[i]
        while True:
            ev = core.next_event()
            if ev is None:
                return
            kind = ev[0]
            payload = ev[1] if len(ev) > 1 else {}
            evs.append((now_ms, kind, payload))
            if kind == "message" or kind == "alert":
                mid = payload.get("id", payload.get("alert")) if isinstance(payload, dict) else None
                k = self.msg_index.get(bytes(mid)) if mid is not None else None
                if k is not None and self.posts[k]["origin"] != i:
                    d = self.deliv[k]
                    if i not in d:
                        d[i] = self.now
                        if self.posts[k]["type"] == "drill":
                            self._maybe_confirm(i, k)
            elif kind == "receipt":
                self.receipts.append({"at": i, "t_us": self.now, "payload": payload})
            elif kind == "drop":
                reason = payload.get("reason", "?") if isinstance(payload, dict) else str(payload)
                self.core_drops[i][str(reason)] += 1

    def _maybe_confirm(self, i: int, k: int) -> None:
        post = self.posts[k]
        model = self.sc["nodes"][i]["confirm"] or post["confirm"]
        if self.rng_confirm.random() < model["prob"]:
            lo, hi = model["delay_s"]
            t = self.now + int(round(self.rng_confirm.uniform(lo, hi) * 1e6))
            if t <= self.duration_us:
                self._push(t, 1, _CONFIRM, i, k)

    def _arm(self, i: int, floor: int | None = None) -> None:
        if not self.on[i] or self.tx_frame[i] is not None or self.tx_queue[i] or self.deferred[i]:
            return
        t = self.cores[i].get_timer()
        if t is None:
            if self.timer_at[i] is not None:
                self.timer_gen[i] += 1
                self.timer_at[i] = None
            return
        t_us = int(t) * 1000
        if floor is not None and t_us < floor:
            t_us = floor
        if t_us < self.now:
            t_us = self.now
        if self.timer_at[i] == t_us:
            return
        self.timer_gen[i] += 1
        self.timer_at[i] = t_us
        self._push(t_us, 1, _TIMER, i, self.timer_gen[i])

    def _busy_until(self, i: int) -> int | None:
        limit = self.now - self.cad_us
        sens = self.sens[i]
        end = None
        for p, f in self.active[i].values():
            if p >= sens and f.start <= limit and (end is None or f.end > end):
                end = f.end
        return end

    def _service(self, i: int) -> None:
        if not self.on[i] or self.tx_frame[i] is not None or self.tx_queue[i] or self.deferred[i]:
            return
        core = self.cores[i]
        now_ms = self.now // 1000
        t = core.get_timer()
        if t is None or int(t) > now_ms:
            self.empty_polls[i] = 0
            self._arm(i)
            return
        core.handle_timer(now_ms)
        self._drain(i)
        t = core.get_timer()
        if t is None or int(t) > now_ms:
            self.empty_polls[i] = 0
            self._arm(i)
            return
        busy = self._busy_until(i)
        if busy is not None:
            self.deferred[i] = True
            self.timer_gen[i] += 1
            self.timer_at[i] = None
            j = self.rng_lbt.randint(self.jitter_us[0], self.jitter_us[1])
            self._push(max(busy, self.now) + j, 1, _TX_ATTEMPT, i)
            return
        frames = core.frames_to_send(now_ms)
        self._drain(i)
        if frames:
            self.empty_polls[i] = 0
            self.tx_queue[i] = [bytes(f) for f in frames]
            self.timer_gen[i] += 1
            self.timer_at[i] = None
            self._start_tx(i)
        else:
            # The timer said "due" but nothing came out: poll again later, backing off
            # exponentially (1 ms .. 1 s) so a core whose get_timer() lags cannot stall the run.
            self.spurious_polls[i] += 1
            back = min(1 << min(self.empty_polls[i], 10), 1000)
            self.empty_polls[i] += 1
            self._arm(i, floor=(now_ms + back) * 1000)

    # ------------------------------------------------------------ the air

    def _start_tx(self, s: int) -> None:
        data = self.tx_queue[s].pop(0)
        now = self.now
        if len(data) > 255:
            self.radio_drops[s]["oversize_tx"] += 1
            self._push(now, 1, _TX_NEXT, s)
            return
        air = radio.time_on_air_us(len(data), self.modem)
        self.fid += 1
        f = _Frame(self.fid, s, data, now, now + air, now + self.pre_us)
        self.tx_frame[s] = f
        self.tx_log.append(TxRecord(now, self.names[s], len(data), air))
        self.airtime_us[s] += air
        self.tx_count[s] += 1
        if self.locked[s] is not None:  # half-duplex: stop receiving
            self.radio_drops[s]["half_duplex"] += 1
            self.locked[s] = None
        sens = self.sens
        cap = self.capture
        fading = self.fading
        gauss = self.rng_fading.gauss
        parts = bool(self.active_parts)
        on, tx_frame, locked = self.on, self.tx_frame, self.locked
        lock_pow, lock_maxint = self.lock_pow, self.lock_maxint
        rx = f.rx
        for r, mean in self.nbrs[s].items():
            if parts and self._cut(s, r):
                continue
            p = mean + gauss(0.0, fading) if fading > 0.0 else mean
            rx.append((r, p))
            act = self.active[r]
            if on[r]:
                ok = p >= sens[r]
                if tx_frame[r] is not None:
                    if ok:
                        self.radio_drops[r]["half_duplex"] += 1
                else:
                    g = locked[r]
                    if g is not None:
                        if p > lock_maxint[r]:
                            lock_maxint[r] = p
                        if ok:
                            if now < g.pre_end and p - lock_pow[r] >= cap:
                                self.radio_drops[r]["collision"] += 1  # g is lost to the stronger f
                                locked[r] = f
                                lock_pow[r] = p
                                m = NEG_INF
                                for q, _ in act.values():
                                    if q > m:
                                        m = q
                                lock_maxint[r] = m
                            else:
                                self.radio_drops[r]["busy"] += 1
                    elif ok:
                        locked[r] = f
                        lock_pow[r] = p
                        m = NEG_INF
                        for q, _ in act.values():
                            if q > m:
                                m = q
                        lock_maxint[r] = m
            act[f.fid] = (p, f)
        self._push(f.end, 0, _FRAME_END, f)

    def _frame_end(self, f: _Frame) -> None:
        cap = self.capture
        locked = self.locked
        now_ms = self.now // 1000
        loss = self.loss
        for r, p in f.rx:
            self.active[r].pop(f.fid, None)
            if locked[r] is f:
                locked[r] = None
                if f.aborted:
                    self.radio_drops[r]["truncated"] += 1
                elif p - self.lock_maxint[r] < cap:
                    self.radio_drops[r]["collision"] += 1
                elif loss is not None and self.rng_loss.random() < loss.get((f.src, r), 0.0):
                    self.radio_drops[r]["link_loss"] += 1
                else:
                    self.rx_ok[r] += 1
                    self.cores[r].receive_frame(f.data, int(round(p)), round(p - self.noise[r], 2), now_ms)
                    self._drain(r)
                    self._arm(r)
        s = f.src
        if self.tx_frame[s] is f:
            self.tx_frame[s] = None
            self._push(self.now, 1, _TX_NEXT, s)

    # ------------------------------------------------------------ scenario actions

    def _post(self, item: dict) -> None:
        i = item["node"]
        now_ms = self.now // 1000
        if not self.on[i]:
            self.skipped.append({"type": item["type"], "node": self.names[i], "t_ms": now_ms, "reason": "node off"})
            return
        core = self.cores[i]
        if item["type"] == "drill":
            mid = core.start_drill(item["text"], now_ms, real=False)
        else:
            # a decision bulletin (one that asks the members' consent) only when the scenario says so
            mid = core.post_bulletin(item["text"], now_ms, decision=True) if item.get("decision") else core.post_bulletin(item["text"], now_ms)
        mid = bytes(mid)
        self.msg_index[mid] = len(self.posts)
        self.posts.append({"id": mid, "type": item["type"], "origin": i, "t_us": self.now,
                           "confirm": item.get("confirm")})
        self.deliv.append({})
        self._drain(i)
        self._arm(i)

    def _set_off(self, i: int) -> None:
        if not self.on[i]:
            return
        self.on[i] = False
        self.off_intervals[i].append([self.now, None])
        f = self.tx_frame[i]
        if f is not None:
            f.aborted = True
            self.tx_frame[i] = None
        self.tx_queue[i] = []
        self.locked[i] = None
        self.deferred[i] = False
        self.timer_gen[i] += 1
        self.timer_at[i] = None

    def _set_on(self, i: int) -> None:
        if self.on[i]:
            return
        self.on[i] = True
        self.off_intervals[i][-1][1] = self.now
        self._arm(i)

    # ------------------------------------------------------------ main loop

    def _schedule_scenario(self) -> None:
        sc = self.sc
        for fl in sc["failures"]:
            t0 = int(round(fl["t"] * 1e6))
            t1 = None if fl["until"] is None else int(round(fl["until"] * 1e6))
            if fl["type"] == "off":
                for i in fl["nodes"]:
                    self._push(t0, 1, _OFF, i)
                    if t1 is not None:
                        self._push(t1, 1, _ON, i)
            else:
                g = [-1] * self.n
                for gid, members in enumerate(fl["groups"]):
                    for i in members:
                        g[i] = gid
                p = len(self.part_groups)
                self.part_groups.append(g)
                self._push(t0, 1, _PART_ON, p)
                if t1 is not None:
                    self._push(t1, 1, _PART_OFF, p)
        if self.couriers:
            t = self.courier_step_us
            while t <= self.duration_us:
                self._push(t, 1, _COURIER)
                t += self.courier_step_us
        for item in sc["traffic"]:
            self._push(int(round(item["t"] * 1e6)), 1, _POST, item)
        if self.progress is not None:
            step = max(self.duration_us // 100, 1)
            t = step
            while t < self.duration_us:
                self._push(t, 3, _PROGRESS)
                t += step

    def run(self) -> None:
        self._schedule_scenario()
        self._snapshot()
        for i in range(self.n):
            self._arm(i)
        heap = self.heap
        pop = heapq.heappop
        end = self.duration_us
        while heap:
            t, _prio, _seq, kind, a, b = pop(heap)
            if t > end:
                break
            self.now = t
            if kind == _FRAME_END:
                self._frame_end(a)
            elif kind == _TIMER:
                if self.timer_gen[a] == b and self.on[a]:
                    self.timer_at[a] = None
                    self._service(a)
            elif kind == _TX_NEXT:
                if self.on[a] and self.tx_frame[a] is None:
                    if self.tx_queue[a]:
                        self._start_tx(a)
                    else:
                        self._service(a)
            elif kind == _TX_ATTEMPT:
                if self.deferred[a]:
                    self.deferred[a] = False
                    self._service(a)
            elif kind == _POST:
                self._post(a)
            elif kind == _CONFIRM:
                i, k = a, b
                if self.on[i]:
                    mid = self.posts[k]["id"]
                    self.presses.append({"node": i, "post": k, "t_us": self.now})
                    self.cores[i].confirm_alert(mid, self.now // 1000)
                    self._drain(i)
                    self._arm(i)
            elif kind == _OFF:
                self._set_off(a)
                self._snapshot()
            elif kind == _ON:
                self._set_on(a)
                self._snapshot()
            elif kind == _PART_ON:
                if a not in self.active_parts:
                    self.active_parts.append(a)
                    self.active_parts.sort()
                self._snapshot()
            elif kind == _PART_OFF:
                if a in self.active_parts:
                    self.active_parts.remove(a)
                self._snapshot()
            elif kind == _COURIER:
                self._move_couriers(t)
                self._snapshot()
            elif kind == _PROGRESS:
                assert self.progress is not None
                self.progress(t / 1e6, end / 1e6)
        self.now = end
        if self.progress is not None:
            self.progress(end / 1e6, end / 1e6)

    # ------------------------------------------------------------ static graph

    def static_graph(self) -> nx.Graph:
        """Graph at t=0 (couriers at their first waypoint): edge iff both directions are up."""
        g = nx.Graph()
        for i, nd in enumerate(self.sc["nodes"]):
            g.add_node(self.names[i], pos=nd["pos"], courier=nd["courier"] is not None, board=nd["board"]["name"], index=i)
        for s in range(self.n):
            for r in range(s + 1, self.n):
                if self._up0(s, r) and self._up0(r, s):
                    p1, p2 = self.static_nbrs0[s][r][1], self.static_nbrs0[r][s][1]
                    p = min(p1, p2)
                    snr = min(p1 - self.noise[r], p2 - self.noise[s])
                    g.add_edge(self.names[s], self.names[r], rssi=round(p, 1), snr=round(snr, 1))
        return g

    def _up0(self, s: int, r: int) -> bool:
        e = self.static_nbrs0[s].get(r)
        return e is not None and e[0]


def run_scenario(
    scenario: dict | str,
    router: str = "plexus",
    seed: int | None = None,
    node_factory: NodeFactory | None = None,
    progress: Callable[[float, float], None] | None = None,
    receipt_parser: Callable[[Any], Any] | None = None,
    engine_factory: Callable[..., Engine] | None = None,
    core: str | None = None,
) -> SimResult:
    """Run one scenario and return a SimResult.

    scenario      a path / bundled name, a raw scenario dict (as in a JSON file) or a dict returned
                  by scenario.load_scenario
    router        "plexus" | "managed" | "flood", passed to the node factory
    seed          run seed (radio channel, LBT jitter, confirmations, node cores); default: the
                  scenario's own "seed"
    node_factory  callable(name, *, index, router, seed, modem, region, board, config) -> node core;
                  default: plexus.sim.nodes.make_core_node if that module exists, else the stub
    progress      optional callable(sim_time_s, duration_s), called about 100 times
    receipt_parser  optional replacement for metrics.parse_receipt (receipt event payload ->
                  (alert_id, node_id, state, t_ms) or None)
    engine_factory  optional Engine subclass (or factory with Engine's arguments), e.g. the wall-clock paced
                  plexus.sim.live.LiveEngine
    core          what node_factory builds, for the metrics' "core" label (e.g. "plexnode" for a factory that
                  wraps plexus.sim.nodes.make_core_node); default "custom" for a given factory
    """
    from plexus.sim import metrics as met

    if isinstance(scenario, str):
        sc = scn.load_scenario(scenario)
    elif isinstance(scenario, dict) and scenario.get("_normalized"):
        sc = scenario
    else:
        sc = scn.normalize(scenario)
    if router not in ROUTERS:
        raise ValueError("router must be one of %s" % ", ".join(ROUTERS))
    if seed is None:
        seed = sc["seed"]
    core_kind = core or "custom"
    if node_factory is None:
        node_factory, core_kind = default_node_factory()
    eng = (engine_factory or Engine)(sc, router, seed, node_factory, progress)
    eng.run()
    metrics = met.compute_metrics(eng, receipt_parser)
    metrics["core"] = core_kind
    names = eng.names
    return SimResult(
        metrics=metrics,
        events={names[i]: eng.events[i] for i in range(eng.n)},
        graph=eng.static_graph(),
        off={names[i]: [(a / 1e6, None if b is None else b / 1e6) for a, b in eng.off_intervals[i]] for i in range(eng.n)},
        tx_log=eng.tx_log,
        deliveries={p["id"]: {names[i]: t // 1000 for i, t in eng.deliv[k].items()} for k, p in enumerate(eng.posts)},
        posts=[{"id": p["id"], "type": p["type"], "origin": names[p["origin"]], "t_ms": p["t_us"] // 1000} for p in eng.posts],
        scenario=sc,
        router=router,
        seed=seed,
        names=list(names),
        receipts=[dict(r, at=names[r["at"]]) for r in eng.receipts],
        presses=[{"node": names[p["node"]], "post": p["post"], "t_ms": p["t_us"] // 1000} for p in eng.presses],
        reachable={p["id"]: [names[i] for i in sorted(eng.reach[k])] for k, p in enumerate(eng.posts)},
        status={names[i]: (dict(c.status()) if hasattr(c, "status") else {}) for i, c in enumerate(eng.cores)},
    )

