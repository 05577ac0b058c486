"""A deterministic mesh of real plexnode cores for tests (the aioquic style).

Time is stepped by hand; links are explicit (with optional loss); a frame reaches every linked
neighbour after its airtime, except those transmitting at the time (half-duplex). No collisions
unless a test asks for them: each test controls exactly what is lost.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from pathlib import Path

from plexnode.core import Node
from plexnode.store import Store
from plexus.crypto import HostCrypto
from plexwire import group, msg

CRYPTO = HostCrypto()


def seed_of(label: str) -> bytes:
    return hashlib.sha256(b"plexus test\x00" + label.encode()).digest()


class Mesh:
    def __init__(self, n: int, links=None, router: str = "plexus", seed: int = 1, beacon_s: int = 0, cfg: dict | None = None,
                 members=("alice",), time_s: int = 90_000_000, tmp: Path | None = None, quorum: int = 1,
                 doc_extra: dict | None = None):
        self.tmp = Path(tmp or tempfile.mkdtemp(prefix="plexus-mesh-"))
        self.names = ["n%d" % i for i in range(n)]
        self.seeds = {nm: seed_of(nm) for nm in self.names}
        self.member_seeds = {m: seed_of("member " + m) for m in members}
        doc = group.make_doc(
            "Test group",
            [{"name": m, "key": CRYPTO.public_key(s).hex(), "contact": "call " + m} for m, s in self.member_seeds.items()],
            [{"name": nm, "key": CRYPTO.public_key(s).hex(), "holder": "holder of " + nm, "contact": "door " + nm}
             for nm, s in self.seeds.items()],
            quorum_k=quorum,
        )
        doc.update(doc_extra or {})
        self.doc = doc
        self.secret = seed_of("group secret")
        self.rng = random.Random(seed)
        self.now = 0
        self.links: dict[tuple[int, int], float] = {}
        if links is None:
            links = [(i, i + 1) for i in range(n - 1)]
        for link in links:
            a, b = link[0], link[1]
            loss = link[2] if len(link) > 2 else 0.0
            self.links[(a, b)] = loss
            self.links[(b, a)] = loss
        self.up = [True] * n
        self.nodes: list[Node] = []
        for i, nm in enumerate(self.names):
            c = {"name": nm, "router": router, "beacon_s": beacon_s, "time": time_s, "first_beacon_ms": 5000}
            c.update(cfg or {})
            self.nodes.append(self.make_node(i, c))
        self.inflight: list[tuple[int, int, bytes]] = []  # (arrival ms, sender, frame)
        self.busy_until = [0] * n
        self.events: list[list[tuple]] = [[] for _ in range(n)]
        self.sent: list[tuple[int, int, bytes]] = []
        self.drop_next: set[tuple[int, int]] = set()

    def make_node(self, i: int, c: dict, store_bytes: int = 512 * 1024) -> Node:
        roster = group.Roster(self.doc)
        store = Store(str(self.tmp / ("%s.log" % self.names[i])), store_bytes, governance_kinds=msg.GOVERNANCE_KINDS)
        return Node(c, roster, self.secret, self.seeds[self.names[i]], store, random.Random(1000 + i), CRYPTO, now_ms=self.now)

    def neighbours(self, i: int):
        return [b for (a, b) in self.links if a == i]

    def drain(self, i: int) -> None:
        while True:
            ev = self.nodes[i].next_event()
            if ev is None:
                return
            self.events[i].append((self.now,) + tuple(ev))

    def step_to(self, t_ms: int) -> None:
        """Run every node until time t_ms."""
        while True:
            nxt = t_ms + 1
            for i, nd in enumerate(self.nodes):
                if not self.up[i]:
                    continue
                tm = nd.get_timer()
                if tm is not None:
                    nxt = min(nxt, max(tm, self.busy_until[i], self.now))
            for arr, _, _ in self.inflight:
                nxt = min(nxt, arr)
            if nxt > t_ms:
                self.now = t_ms
                return
            self.now = max(self.now, nxt)
            # deliveries first
            due = [f for f in self.inflight if f[0] <= self.now]
            self.inflight = [f for f in self.inflight if f[0] > self.now]
            for arr, s, fr in due:
                for r in self.neighbours(s):
                    if not self.up[r] or self.busy_until[r] > arr - self.nodes[s].airtime(len(fr)) // 1000:
                        continue
                    if (s, r) in self.drop_next:
                        self.drop_next.discard((s, r))
                        continue
                    if self.rng.random() < self.links[(s, r)]:
                        continue
                    self.nodes[r].receive_frame(fr, -90, 5.0, self.now)
                    self.drain(r)
            for i, nd in enumerate(self.nodes):
                if not self.up[i] or self.busy_until[i] > self.now:
                    continue
                tm = nd.get_timer()
                if tm is not None and tm <= self.now:
                    frames = nd.frames_to_send(self.now)
                    self.drain(i)
                    for fr in frames:
                        air = nd.airtime(len(fr)) // 1000 + 1
                        self.busy_until[i] = self.now + air
                        self.inflight.append((self.now + air, i, fr))
                        self.sent.append((self.now, i, fr))
                    if not frames and nd.get_timer() is not None and nd.get_timer() <= self.now:
                        # nothing sendable yet (duty cycle): look again a little later
                        self.busy_until[i] = self.now + 50

    def run(self, seconds: float) -> None:
        self.step_to(self.now + int(seconds * 1000))

    def kinds(self, i: int, name: str):
        return [e for e in self.events[i] if e[1] == name]

    def delivered(self, mid: bytes):
        return [i for i in range(len(self.nodes)) if self.nodes[i].store.has(mid)]


# ---- governance tests: a one-node Mesh and its members

def signed(m: Mesh, who: str, kind: int, fields: dict, t: int) -> bytes:
    """A message signed by member `who` of the mesh's group (or by any other seed name: an outsider)."""
    s = m.member_seeds[who] if who in m.member_seeds else seed_of(who)
    u = msg.encode_unsigned(kind, fields, msg.key_id(CRYPTO.public_key(s)), t)
    return msg.finish(u, CRYPTO.sign(s, msg.signing_bytes(m.nodes[0].group_id, u)))


def give(m: Mesh, inner: bytes):
    """Hand a message to node 0 as if a laptop posted it: (accepted, id or drop reason)."""
    return m.nodes[0].handle_inner(inner, None, None, 0, m.now, b"", True)


def kid(m: Mesh, who: str) -> bytes:
    return msg.key_id(CRYPTO.public_key(m.member_seeds[who]))
