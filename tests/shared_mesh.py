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
        self.doc = doc
        self.nodes = []
        for i in range(n):
            st = Store(root + "/n%d.log" % i, 65536, msg.GOVERNANCE_KINDS)
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


def _gov_node(root, name, k, lcg):
    """One node of a group of three members (ana, ben, cai; quorum k; real alerts need a mandate), the members'
    key ids, and a function that signs a message as one of them."""
    T = 90000000
    names = ["ana", "ben", "cai"]
    seeds = {}
    kid = {}
    for nm in names:
        seeds[nm] = _seed("member " + nm)
        kid[nm] = msg.key_id(CRYPTO.public_key(seeds[nm]))
    doc = {"v": 1, "name": name, "quorum": {"k": k}, "mandate_kinds": ["alert_real"],
           "members": [{"name": nm, "key": _hexs(CRYPTO.public_key(seeds[nm]))} for nm in names],
           "nodes": [{"name": "n0", "key": _hexs(CRYPTO.public_key(_seed("node 0")))}]}
    st = Store(root + "/" + name + ".log", 65536, msg.GOVERNANCE_KINDS)
    node = Node({"name": "n0", "time": T}, group.Roster(doc), _seed("secret"), _seed("node 0"), st, Lcg(lcg), CRYPTO, 0)

    def signed(who, kind, f, t):
        u = msg.encode_unsigned(kind, f, kid[who], t)
        return msg.finish(u, CRYPTO.sign(seeds[who], msg.signing_bytes(node.group_id, u)))

    return node, names, kid, signed


def scenario_governance(root):
    from plexwire import governance

    T = 90000000
    node, names, kid, signed = _gov_node(root, "gov", 2, 7)

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
    holder = [nm for nm in names if kid[nm] == holders[0]][0]
    other = [nm for nm in names if nm != holder][0]
    alert = {"flags": msg.ALERT_REAL, "text": "a"}
    out["before_quorum"] = give(signed(holder, msg.ALERT, alert, T + 5))[1]
    give(signed("ana", msg.CONSENT, {"target": mid, "stance": 1}, T + 6))
    give(signed("cai", msg.CONSENT, {"target": mid, "stance": 1}, T + 7))
    out["holder"] = give(signed(holder, msg.ALERT, {"flags": msg.ALERT_REAL, "text": "b"}, T + 8))[0]
    out["other"] = give(signed(other, msg.ALERT, {"flags": msg.ALERT_REAL, "text": "c"}, T + 9))[1]
    out["expired"] = give(signed(holder, msg.ALERT, {"flags": msg.ALERT_REAL, "text": "d"}, T + 1000))[1]
    return out


def scenario_mandate_rules(root):
    """Cap on consecutive terms (LOT and ELECTION), an election without quorum, hand-over records."""
    from plexwire import governance

    T = 90000000
    node, names, kid, signed = _gov_node(root, "rules", 1, 9)

    def give(inner):
        return node.handle_inner(inner, None, None, 0, 0, b"", True)

    def elect(who, start, holders, method, t, role="care"):
        f = {"role": role, "start": start, "end": start + 100, "method": msg.METHOD_ELECTION | method,
             "seed": bytes(16), "holders": sorted([kid[h] for h in holders])}
        return give(signed(who, msg.MANDATE, f, t))

    out = {}
    terms = []
    for i in range(2):  # Ana holds "care" two terms in a row, each adopted
        ok, mid = elect("ben", T + 100 * i, ["ana"], 0, T + 100 * i)
        give(signed("cai", msg.CONSENT, {"target": mid, "stance": 1}, T + 100 * i + 1))
        terms.append(mid)
    cap2 = 2 << msg.METHOD_CONSEC_SHIFT
    out["elect_capped"] = elect("ben", T + 200, ["ana"], cap2, T + 150)[1]
    out["elect_uncapped"] = elect("ben", T + 200, ["ana"], 0, T + 151)[0]
    b = signed("cai", msg.BULLETIN, {"flags": 0, "text": "seed"}, T + 140)
    give(b)
    sid = msg.message_id(b)
    elig = governance.eligible_members(node.roster, governance.excluded(node.gov.history("care"), T + 200, cap2))
    fair = governance.draw(node.group_id, "care", T + 200, T + 300, sid, elig, 2)
    f = {"role": "care", "start": T + 200, "end": T + 300, "method": cap2, "seed": sid,
         "holders": sorted([kid["ana"], kid["ben"]])}
    out["lot_capped_with_ana"] = give(signed("ben", msg.MANDATE, f, T + 160))[1]
    f["holders"] = fair
    ok, lot = give(signed("ben", msg.MANDATE, f, T + 161))
    out["lot_fair"] = ok
    out["lot_holders"] = sorted([nm for nm in names if kid[nm] in fair])
    # an elected mandate grants nothing before quorum
    ok, em = elect("ana", T + 1000, ["cai"], 0, T + 999)
    out["before_quorum"] = give(signed("cai", msg.ALERT, {"flags": msg.ALERT_REAL, "text": "x"}, T + 1001))[1]
    give(signed("ben", msg.CONSENT, {"target": em, "stance": 1}, T + 1002))
    out["after_quorum"] = give(signed("cai", msg.ALERT, {"flags": msg.ALERT_REAL, "text": "y"}, T + 1003))[0]
    # hand-over records: between two mandates of one role, signed by a member
    other = elect("ana", T + 2000, ["ben"], 0, T + 1999, "treasury")[1]
    out["handover"] = give(signed("ana", msg.SUCCESSION, {"prev": terms[0], "next": terms[1], "note": "keys"}, T + 100))[0]
    out["handover_wrong_role"] = give(signed("ana", msg.SUCCESSION, {"prev": terms[1], "next": other, "note": ""}, T + 200))[1]
    out["handover_by_node"] = give(node._sign(msg.SUCCESSION, {"prev": terms[1], "next": lot, "note": ""}, 0))[1]
    return out


def scenario_rekey(root):
    """Revocation after seizure (SPEC.md s.8.4): REVOKE n3, REKEY for n0..n2 with quorum consent while n2 is
    away; n0 and n1 switch, n2 gets the REKEY by anti-entropy under the old key and then the new bulletin; the
    seized n3 decodes nothing new and is not believed; a reboot keeps the epoch."""
    from plexnode import x25519
    from plexwire import rekey

    m = MiniMesh(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)], root, beacon_s=60)
    n0 = m.nodes[0]
    alice = _seed("alice")
    gid = n0.group_id

    def signed(kind, f, t):
        u = msg.encode_unsigned(kind, f, msg.key_id(CRYPTO.public_key(alice)), t)
        return msg.finish(u, CRYPTO.sign(alice, msg.signing_bytes(gid, u)))

    def post(inner, extra=b""):
        r = n0.handle_inner(inner, None, None, 0, m.now, extra, True)
        m.drain(0)
        return r

    out = {}
    T = 90000000
    ok, rid = post(signed(msg.REVOKE, {"key": m.nodes[3].kid, "reason": 1}, T + 1))
    post(signed(msg.CONSENT, {"target": rid, "stance": 1}, T + 2))
    m.run(m.now + 60000)
    out["revoked"] = [nd.roster.get(m.nodes[3].kid).revoked for nd in m.nodes[:3]]
    # the laptop's part: wrap a new secret for n0..n2 (the fake signature keys are not Ed25519 keys, so
    # each node's X25519 public key comes from its scalar here; the KDF binds U from the roster key as always)
    new = _seed("new secret")
    e = _seed("ephemeral")
    E = x25519.public_key(e)
    entries = []
    for i in range(3):
        nd = m.nodes[i]
        z = x25519.x25519(e, x25519.public_key(x25519.secret_scalar(nd.seed)))
        entries.append(rekey.wrap(nd.kid, new, rekey.wrap_key(gid, 1, E, x25519.public_u(nd.pub), z)))
    table = b"".join(sorted(entries))
    for a, b in ((0, 2), (1, 2), (2, 3)):
        del m.links[(a, b)]
        del m.links[(b, a)]
    ok, kid_ = post(signed(msg.REKEY, rekey.header_fields(1, E, table), T + 10), table)
    m.run(m.now + 30000)
    out["before_consent"] = [nd.epoch for nd in m.nodes]
    post(signed(msg.CONSENT, {"target": kid_, "stance": 1}, T + 11))
    m.run(m.now + 60000)
    out["epochs"] = [nd.epoch for nd in m.nodes]
    b = m.nodes[1].post_bulletin("new key", m.now)
    m.run(m.now + 120000)  # a collision with n0 may cost a minute: then n0 fetches it by sync
    out["bulletin"] = m.holders(b)
    for a, c in ((0, 2), (1, 2)):
        m.links[(a, c)] = True
        m.links[(c, a)] = True
    m.run(m.now + 900000)
    out["after_sync"] = m.holders(b)
    out["epochs_after"] = [nd.epoch for nd in m.nodes]
    out["seized_foreign"] = m.nodes[3].drops.get("foreign", 0) > 0
    out["seized_no_entry"] = m.nodes[3].drops.get("rekey_no_entry", 0)
    # the seized radio still signs with its (revoked) node key, under the only key it has
    n3 = m.nodes[3]
    forged = n3._sign(msg.BULLETIN, {"flags": 0, "text": "all clear, go home"}, m.now)
    before = [nd.drops.get("revoked", 0) for nd in m.nodes[:3]]
    m.inflight.append((m.now + 1200, 3, n3._gk().seal(forged, 15, n3.short, 0)))
    m.run(m.now + 60000)
    out["seized_post"] = m.holders(msg.message_id(forged))
    out["seized_not_believed"] = [nd.drops.get("revoked", 0) - before[i] for i, nd in enumerate(m.nodes[:3])]
    ks = n0.key_state()
    n0.store.close()
    st = Store(root + "/n0.log", 65536, msg.GOVERNANCE_KINDS)
    import binascii

    prev = (binascii.unhexlify(ks["prev_secret"]), ks["prev_epoch"], binascii.unhexlify(ks["rekey"]), ks["grace_end"])
    r = Node({"name": "n0", "time": 90000000}, group.Roster(m.doc),
             binascii.unhexlify(ks["secret"]), n0.seed, st, Lcg(9), CRYPTO, 0, ks["epoch"], prev)
    out["reboot"] = [r.epoch, sorted(r.keys), r.rekey_id == kid_, r.roster.get(m.nodes[3].kid).revoked]
    # the grace window continues after the reboot: the clock says 100 s are left of it
    r.set_time(ks["grace_end"] - 100, 5000)
    r.handle_timer(5000 + 99000)
    g = [r.grace_until, sorted(r.keys)]
    r.handle_timer(5000 + 100000)
    out["reboot_grace"] = g + [sorted(r.keys)]
    return out


SCENARIOS = ["scenario_line", "scenario_gate", "scenario_drill", "scenario_partition", "scenario_hostlink", "scenario_governance",
             "scenario_mandate_rules", "scenario_rekey"]
