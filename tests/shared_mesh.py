# A tiny mesh harness in the MicroPython subset: the same source runs under CPython and, from the
# .mpy files, under real MicroPython (tests/test_core_mpy.py). Deterministic: its own LCG, no wall
# clock, a fake signature scheme (the core is crypto-agnostic; Ed25519 is tested on its own).
import hashlib

from plexnode.core import Node
from plexnode.store import Store
from plexwire import group, hostlink, msg


class Lcg:
    def __init__(self, seed):
        self.x = seed & 0xFFFFFFFF

    def getrandbits(self, n):
        out = 0
        got = 0
        while got < n:
            self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
            out = (out << 16) | (self.x >> 15)
            got += 16
        return out & ((1 << n) - 1)


class FakeCrypto:
    """pub = H(seed); sig = H(pub || msg) twice. Deterministic and cheap; not a real signature."""

    def public_key(self, seed):
        return hashlib.sha256(b"fake-pub" + bytes(seed)).digest()

    def sign(self, seed, m):
        h = hashlib.sha256(b"fake-sig" + self.public_key(seed) + bytes(m)).digest()
        return h + h

    def verify(self, pub, m, sig):
        h = hashlib.sha256(b"fake-sig" + bytes(pub) + bytes(m)).digest()
        return bytes(sig) == h + h


CRYPTO = FakeCrypto()


def _seed(label):
    return hashlib.sha256(b"shared mesh " + label.encode()).digest()


class MiniMesh:
    def __init__(self, n, links, root, beacon_s=0):
        self.n = n
        self.now = 0
        self.links = {}
        for a, b in links:
            self.links[(a, b)] = True
            self.links[(b, a)] = True
        seeds = [_seed("node %d" % i) for i in range(n)]
        doc = {"v": 1, "name": "mini", "quorum": {"k": 1},
               "members": [{"name": "alice", "key": CRYPTO.public_key(_seed("alice")).hex() if hasattr(b"", "hex") else ""}],
               "nodes": [{"name": "n%d" % i, "key": _hexs(CRYPTO.public_key(seeds[i]))} for i in range(n)]}
        doc["members"][0]["key"] = _hexs(CRYPTO.public_key(_seed("alice")))
        self.nodes = []
        for i in range(n):
            st = Store(root + "/n%d.log" % i, 65536, (6, 7, 8, 9, 10, 11))
            cfg = {"name": "n%d" % i, "beacon_s": beacon_s, "time": 90000000, "first_beacon_ms": 3000}
            self.nodes.append(Node(cfg, group.Roster(doc), _seed("secret"), seeds[i], st, Lcg(100 + i), CRYPTO, 0))
        self.inflight = []
        self.busy = [0] * n
        self.sent = 0
        self.events = [[] for _ in range(n)]

    def drain(self, i):
        while True:
            e = self.nodes[i].next_event()
            if e is None:
                return
            self.events[i].append(e)

    def run(self, until):
        while True:
            nxt = until + 1
            for i in range(self.n):
                t = self.nodes[i].get_timer()
                if t is not None:
                    nxt = min(nxt, max(t, self.busy[i], self.now))
            for f in self.inflight:
                nxt = min(nxt, f[0])
            if nxt > until:
                self.now = until
                return
            self.now = max(self.now, nxt)
            due = [f for f in self.inflight if f[0] <= self.now]
            self.inflight = [f for f in self.inflight if f[0] > self.now]
            for arr, s, fr in due:
                for r in range(self.n):
                    if (s, r) in self.links and self.busy[r] <= arr - self.nodes[s].airtime(len(fr)) // 1000:
                        self.nodes[r].receive_frame(fr, -90, 5, self.now)
                        self.drain(r)
            for i in range(self.n):
                if self.busy[i] > self.now:
                    continue
                t = self.nodes[i].get_timer()
                if t is not None and t <= self.now:
                    out = self.nodes[i].frames_to_send(self.now)
                    self.drain(i)
                    for fr in out:
                        air = self.nodes[i].airtime(len(fr)) // 1000 + 1
                        self.busy[i] = self.now + air
                        self.inflight.append((self.now + air, i, fr))
                        self.sent += 1
                    if not out and self.nodes[i].get_timer() is not None and self.nodes[i].get_timer() <= self.now:
                        self.busy[i] = self.now + 50

    def holders(self, mid):
        return [i for i in range(self.n) if self.nodes[i].store.has(mid)]


def _hexs(b):
    import binascii

    return binascii.hexlify(b).decode()


def scenario_line(root):
    m = MiniMesh(7, [(i, i + 1) for i in range(6)], root)
    mid = m.nodes[0].post_bulletin("assembly at 7", 0)
    m.run(60000)
    ev = [e for e in m.events[6] if e[0] == "message"]
    return {"holders": m.holders(mid), "sent": m.sent, "hops_at_end": ev[0][1]["hops"] if ev else None}


def scenario_gate(root):
    m = MiniMesh(2, [(0, 1)], root)
    n0 = m.nodes[0]
    n1 = m.nodes[1]
    good = n0._sign(msg.BULLETIN, {"flags": 0, "text": "hello"}, 0)
    gk = n0._gk()
    n1.receive_frame(gk.seal(good[:-64] + bytes(64), 3), -80, 5, 0)  # forged signature
    n1.receive_frame(b"\x10" * 30, -80, 5, 0)  # not this group
    f = gk.seal(good, 3)
    n1.receive_frame(f, -80, 5, 0)
    n1.receive_frame(f, -80, 5, 10)  # replay / echo
    d = n1.status()["drops"]
    keys = sorted(d)
    return {"drops": [[k, d[k]] for k in keys], "stored": n1.store.count}


def scenario_drill(root):
    m = MiniMesh(4, [(0, 1), (1, 2), (2, 3)], root)
    aid = m.nodes[0].start_drill("drill", 0)
    m.run(70000)
    m.nodes[3].confirm_alert(aid, m.now)
    m.run(m.now + 240000)  # "reached" receipts are held back 150 s (a press within the hold replaces them)
    t = m.nodes[0].tally_json(aid)["receipts"]
    return {"tally": sorted([[r["name"], r["state"], r["hops"]] for r in t])}


def scenario_partition(root):
    m = MiniMesh(4, [(0, 1), (1, 2), (2, 3)], root, beacon_s=60)
    del m.links[(1, 2)]
    del m.links[(2, 1)]
    a = m.nodes[0].post_bulletin("left", 1000)
    b = m.nodes[3].post_bulletin("right", 1000)
    m.run(60000)
    before = [m.holders(a), m.holders(b)]
    m.links[(1, 2)] = True
    m.links[(2, 1)] = True
    m.run(600000)
    return {"before": before, "after": [m.holders(a), m.holders(b)]}


def scenario_hostlink(root):
    m = MiniMesh(1, [], root)
    n = m.nodes[0]
    for k in range(3):
        n.post_bulletin("b%d" % k, 0)
    n.host_request(hostlink.encode(hostlink.SYNC, 1, hostlink.pack_sync_request(0, 10)), 0)
    m.drain(0)
    line = [e for e in m.events[0] if e[0] == "host"][-1][1]
    op, req, body = hostlink.decode_line(line.strip())
    nxt, more, recs = hostlink.unpack_sync_reply(body)
    return {"op": op, "n": len(recs), "more": more, "texts": [msg.decode(hostlink.unpack_record(r)[0]).f["text"] for s, r in recs]}


def scenario_governance(root):
    from plexwire import governance

    T = 90000000
    names = ["ana", "ben", "cai"]
    seeds = {}
    for nm in names:
        seeds[nm] = _seed("member " + nm)
    doc = {"v": 1, "name": "gov", "quorum": {"k": 2}, "mandate_kinds": ["alert_real"],
           "members": [{"name": nm, "key": _hexs(CRYPTO.public_key(seeds[nm]))} for nm in names],
           "nodes": [{"name": "n0", "key": _hexs(CRYPTO.public_key(_seed("node 0")))}]}
    st = Store(root + "/gov.log", 65536, (6, 7, 8, 9, 10, 11))
    node = Node({"name": "n0", "time": T}, group.Roster(doc), _seed("secret"), _seed("node 0"), st, Lcg(7), CRYPTO, 0)

    def signed(who, kind, f, t):
        u = msg.encode_unsigned(kind, f, msg.key_id(CRYPTO.public_key(seeds[who])), t)
        return msg.finish(u, CRYPTO.sign(seeds[who], msg.signing_bytes(node.group_id, u)))

    def give(inner):
        return node.handle_inner(inner, None, None, 0, 0, b"", True)

    out = {}
    b = signed("ana", msg.BULLETIN, {"flags": 0, "text": "seed"}, T - 10)
    give(b)
    seed_id = msg.message_id(b)
    elig = governance.eligible_members(node.roster)
    holders = governance.draw(node.group_id, "coord", T, T + 1000, seed_id, elig, 1)
    others = [k for k in elig if k not in holders]
    f = {"role": "coord", "start": T, "end": T + 1000, "method": 0, "seed": seed_id, "holders": [others[0]]}
    out["rigged"] = give(signed("ben", msg.MANDATE, f, T + 1))[1]
    f["holders"] = holders
    ok, mid = give(signed("ben", msg.MANDATE, f, T + 1))
    holder = [nm for nm in names if msg.key_id(CRYPTO.public_key(seeds[nm])) == holders[0]][0]
    other = [nm for nm in names if nm != holder][0]
    alert = {"flags": msg.ALERT_REAL, "text": "a"}
    out["before_quorum"] = give(signed(holder, msg.ALERT, alert, T + 5))[1]
    give(signed("ana", msg.CONSENT, {"target": mid, "stance": 1}, T + 6))
    give(signed("cai", msg.CONSENT, {"target": mid, "stance": 1}, T + 7))
    out["holder"] = give(signed(holder, msg.ALERT, {"flags": msg.ALERT_REAL, "text": "b"}, T + 8))[0]
    out["other"] = give(signed(other, msg.ALERT, {"flags": msg.ALERT_REAL, "text": "c"}, T + 9))[1]
    out["expired"] = give(signed(holder, msg.ALERT, {"flags": msg.ALERT_REAL, "text": "d"}, T + 1000))[1]
    return out


SCENARIOS = ["scenario_line", "scenario_gate", "scenario_drill", "scenario_partition", "scenario_hostlink", "scenario_governance"]
