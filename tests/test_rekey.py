"""Revocation after seizure (issue 7): REVOKE + REKEY with quorum consent, the new group key delivered to the
remaining nodes (flood, and anti-entropy for a node that was away), X25519 against RFC 7748 and `cryptography`."""

from __future__ import annotations

import json
import os

import pytest
from corekit import CRYPTO, Mesh, seed_of
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from plexnode import app as appmod
from plexnode import x25519
from plexnode.core import Node
from plexnode.store import Store
from plexus import client as clientmod
from plexwire import DecodeError, frame, group, hostlink, msg, rekey

T0 = 90_000_000
MEMBERS = ("ana", "ben", "cai")
H = bytes.fromhex


# ---------------------------------------------------------------- X25519 (RFC 7748)


def test_x25519_rfc7748_section_5_2_vectors():
    assert x25519.x25519(H("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                         H("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")) == \
        H("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    # the second vector's u has its top bit set: X25519 must mask it (RFC 7748 section 5)
    k2 = H("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d")
    u2 = H("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")
    assert x25519.x25519(k2, u2).hex().startswith("95cbde9476e8907d7aade45cb4b873f88b595a68799fa152")
    # iterated: k = u = 9, one iteration
    assert x25519.x25519(x25519.BASE, x25519.BASE) == H("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")


def test_x25519_rfc7748_section_6_1_diffie_hellman():
    a = H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    b = H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    pa = x25519.public_key(a)
    pb = x25519.public_key(b)
    assert pa == H("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert pb == H("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    k = H("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert x25519.x25519(a, pb) == k == x25519.x25519(b, pa)


def test_x25519_matches_cryptography_and_the_ed25519_key_relation():
    for i in range(6):
        seed = seed_of("x25519 %d" % i)
        # Ed25519 public point -> Montgomery u equals the X25519 public key of the RFC 8032 secret scalar
        u = x25519.public_u(CRYPTO.public_key(seed))
        sk = X25519PrivateKey.from_private_bytes(x25519.secret_scalar(seed))
        assert u == sk.public_key().public_bytes_raw()
        other = X25519PrivateKey.from_private_bytes(seed_of("peer %d" % i))
        assert x25519.x25519(x25519.secret_scalar(seed), other.public_key().public_bytes_raw()) == \
            other.exchange(X25519PublicKey.from_public_bytes(u))
    with pytest.raises(ValueError):
        x25519.public_u((1).to_bytes(32, "little"))  # the neutral point has no u


# ---------------------------------------------------------------- wire format


def test_rekey_table_layout_and_sizes():
    pubs = [CRYPTO.public_key(seed_of("node %d" % i)) for i in range(64)]
    key = _Member(seed_of("member ana"))
    gid = bytes(8)
    for n, frags in ((1, 1), (3, 1), (30, 8), (64, 17)):
        rec, secret = clientmod.rekey_record(key, gid, 1, pubs[:n], time_s=T0)
        inner, table = hostlink.unpack_record(rec)
        m = msg.decode(inner)
        assert len(table) == 56 * n and m.f["nfrag"] == frags and len(inner) == 129 + 6 * frags
        rekey.check_table(table)
        assert msg.check_long_text(m, table)
    with pytest.raises(clientmod.RecordError):
        clientmod.rekey_record(key, gid, 1, pubs + [CRYPTO.public_key(seed_of("one more"))], time_s=T0)
    with pytest.raises(DecodeError):
        rekey.check_table(table[56:112] + table[:56])  # entries must be sorted by key id
    with pytest.raises(DecodeError):
        rekey.check_table(table[:55])


# ---------------------------------------------------------------- the mesh


class _Member:
    def __init__(self, seed: bytes):
        self.seed = seed
        self.kid = msg.key_id(CRYPTO.public_key(seed))

    def sign_message(self, gid: bytes, kind: int, fields: dict, t: int) -> bytes:
        u = msg.encode_unsigned(kind, fields, self.kid, t)
        return msg.finish(u, CRYPTO.sign(self.seed, msg.signing_bytes(gid, u)))


def full_mesh(n: int, **kw) -> Mesh:
    links = [(a, b) for a in range(n) for b in range(a + 1, n)]
    return Mesh(n, links, members=MEMBERS, quorum=2, time_s=T0, **kw)


def member(m: Mesh, who: str) -> _Member:
    return _Member(m.member_seeds[who])


def post(m: Mesh, i: int, record: bytes):
    inner, extra = hostlink.unpack_record(record)
    r = m.nodes[i].handle_inner(inner, None, None, 0, m.now, extra, True)
    m.drain(i)
    return r


def consent_rec(m: Mesh, who: str, target: bytes, t: int) -> bytes:
    return clientmod.consent_record(member(m, who), m.nodes[0].group_id, target, "consent", t)


def revoke(m: Mesh, victim: int, t: int = T0 + 10) -> bytes:
    gid = m.nodes[0].group_id
    rec = hostlink.pack_record(member(m, "ana").sign_message(gid, msg.REVOKE, {"key": m.nodes[victim].kid, "reason": 1}, t))
    ok, rid = post(m, 0, rec)
    assert ok, rid
    for w in ("ana", "ben"):
        assert post(m, 0, consent_rec(m, w, rid, t + 1))[0]
    m.run(60)
    return rid


def rekey_rec(m: Mesh, keep: list[int], epoch: int = 1, t: int = T0 + 100) -> tuple[bytes, bytes]:
    return clientmod.rekey_record(member(m, "ben"), m.nodes[0].group_id, epoch, [m.nodes[i].pub for i in keep], time_s=t)


def bulletin(m: Mesh, i: int, text: str) -> bytes:
    return m.nodes[i].post_bulletin(text, m.now)


def test_revoke_then_rekey_locks_the_seized_node_out():
    m = full_mesh(4)
    seized = 3
    revoke(m, seized)
    assert all(nd.roster.get(m.nodes[seized].kid).revoked for nd in m.nodes[:3])
    rec, secret = rekey_rec(m, [0, 1, 2])
    ok, kid_ = post(m, 1, rec)
    assert ok, kid_
    m.run(30)
    # not yet: a REKEY needs the quorum like any governance change
    assert [nd.epoch for nd in m.nodes] == [0, 0, 0, 0]
    assert all(nd.store.has(kid_) for nd in m.nodes)  # header and wrap table arrived by flood (fragments)
    for w in ("ana", "cai"):
        assert post(m, 2, consent_rec(m, w, kid_, T0 + 101))[0]
    m.run(60)
    assert [nd.epoch for nd in m.nodes] == [1, 1, 1, 0]
    assert m.nodes[0].keys[1].k_enc == frame.GroupKey(secret, 1).k_enc
    assert m.nodes[seized].drops.get("rekey_no_entry") == 1
    # remaining nodes exchange a new bulletin; the seized node gets nothing it can decode
    foreign0 = m.nodes[seized].drops.get("foreign", 0)
    bid = bulletin(m, 0, "meeting moved to the back room")
    m.run(60)
    assert m.delivered(bid) == [0, 1, 2]
    assert m.nodes[seized].drops.get("foreign", 0) > foreign0
    new_frames = [fr for _, s, fr in m.sent if s == 0 and fr[0] & 0x0F == 1]
    assert new_frames and all(m.nodes[seized].keys.get(1) is None for _ in new_frames)
    # nor are its own frames believed (signed by a revoked key)
    sid = bulletin(m, seized, "all clear, go home")
    m.run(60)
    assert m.delivered(sid) == [seized]
    assert all(m.nodes[i].drops.get("revoked", 0) >= 1 for i in (0, 1, 2))


def test_a_node_away_during_the_rekey_gets_it_by_sync_then_the_new_bulletin():
    m = full_mesh(4, beacon_s=120)
    revoke(m, 3)
    m.up[2] = False  # away: misses the rekey and its consents
    rec, _ = rekey_rec(m, [0, 1, 2])
    ok, kid_ = post(m, 0, rec)
    for w in ("ana", "ben"):
        post(m, 0, consent_rec(m, w, kid_, T0 + 101))
    m.run(90)
    assert [nd.epoch for nd in m.nodes] == [1, 1, 0, 0]
    bid = bulletin(m, 1, "new key works")
    m.run(60)
    assert m.delivered(bid) == [0, 1]
    m.up[2] = True
    m.nodes[2].next_beacon = m.now + 1000  # it comes back and announces itself (under the old key)
    m.run(600)
    assert m.nodes[2].epoch == 1  # the REKEY and its consents came by anti-entropy under the old key
    assert m.nodes[2].store.has(bid)  # and then the new bulletin, under the new key
    assert not m.nodes[3].store.has(bid)
    # under the old key the others sent it nothing but the REKEY and the consents to it
    old = [fr for _, s, fr in m.sent if s in (0, 1) and fr[0] & 0x0F == 0]
    for fr in old:
        inner = m.nodes[3].keys[0].open(fr)
        if msg.is_signed(inner[0]) and inner[0] not in (msg.BEACON,):
            assert inner[0] in (msg.REVOKE, msg.CONSENT, msg.REKEY), inner[0]


def test_rekey_without_quorum_is_not_adopted():
    m = full_mesh(3)
    revoke(m, 2)
    rec, _ = rekey_rec(m, [0, 1])
    ok, kid_ = post(m, 0, rec)
    post(m, 0, consent_rec(m, "ana", kid_, T0 + 101))  # one of two
    m.run(60)
    assert [nd.epoch for nd in m.nodes] == [0, 0, 0]
    # a block stops it even at quorum
    post(m, 0, clientmod.consent_record(member(m, "cai"), m.nodes[0].group_id, kid_, "block", T0 + 102))
    post(m, 0, consent_rec(m, "ben", kid_, T0 + 103))
    m.run(60)
    assert [nd.epoch for nd in m.nodes] == [0, 0, 0]


def test_rekey_signed_by_a_node_key_is_dropped():
    m = full_mesh(2)
    rec, _ = clientmod.rekey_record(_Member(m.seeds["n1"]), m.nodes[0].group_id, 1, [m.nodes[0].pub], time_s=T0)
    ok, why = post(m, 0, rec)
    assert not ok and why == "not a member"


def test_rekey_wrapping_for_the_revoked_node_is_rejected():
    m = full_mesh(3)
    revoke(m, 2)
    rec, _ = rekey_rec(m, [0, 1, 2])
    ok, why = post(m, 0, rec)  # over the host link: refused at once
    assert not ok and why == "rekey for revoked"
    # over the air (a node that accepted it before the revocation, or a hostile insider): stored and
    # relayed, but never applied; every node flags it
    inner, table = hostlink.unpack_record(rec)
    kid_ = msg.message_id(inner)
    n0 = m.nodes[0]
    fr = n0._gk().seal(inner, 15, 0x4242, 0)
    n0.receive_frame(fr, -80, 5.0, m.now)
    for i, chunk in enumerate(msg.split_blob(table)[0]):
        n0.receive_frame(n0._gk().seal(msg.fragment(kid_, i, chunk), 15, 0x4242, 0), -80, 5.0, m.now)
    m.drain(0)
    m.run(30)
    assert all(nd.store.has(kid_) for nd in m.nodes)
    for w in ("ana", "ben"):
        post(m, 0, consent_rec(m, w, kid_, T0 + 101))
    m.run(60)
    assert [nd.epoch for nd in m.nodes] == [0, 0, 0]
    assert m.nodes[0].drops.get("rekey_for_revoked") and m.nodes[1].drops.get("rekey_for_revoked")


def test_reboot_keeps_the_epoch_and_the_grace_window(tmp_path):
    m = full_mesh(3)
    revoke(m, 2)
    saved = {}
    m.nodes[0].on_keys = lambda nd: saved.update(nd.key_state())
    rec, secret = rekey_rec(m, [0, 1])
    ok, kid_ = post(m, 0, rec)
    for w in ("ana", "ben"):
        post(m, 0, consent_rec(m, w, kid_, T0 + 101))
    m.run(30)
    assert saved["epoch"] == 1 and H(saved["secret"]) == secret and saved["prev_epoch"] == 0
    assert saved["rekey"] == kid_.hex()
    # the device persists it the same way: written aside and renamed (plexnode.app)
    root = str(tmp_path)
    for name, d in (("config.json", {"name": "n0"}), ("group.json", m.doc),
                    ("group.secret.json", {"v": 1, "secret": m.secret.hex(), "epoch": 0})):
        with open(os.path.join(root, name), "w") as f:
            json.dump(d, f)
    appmod.save_keys(root, m.nodes[0])
    cfg, roster, sec, epoch, _ = appmod.load_config(root)
    prev = appmod.load_prev_key(root)
    assert (sec, epoch) == (secret, 1) and prev == (m.secret, 0, kid_, saved["grace_end"])
    with open(os.path.join(root, "group.secret.json")) as f:
        assert json.load(f)["v"] == 1  # other fields of the file are kept
    # a fresh core on the same store and keys: still epoch 1, old frames accepted during the grace window
    m.nodes[0].store.close()
    store = Store(str(m.tmp / "n0.log"), 512 * 1024, governance_kinds=msg.GOVERNANCE_KINDS)
    nd = Node({"name": "n0", "time": T0, "beacon_s": 0, "rekey_grace_s": 3600}, group.Roster(m.doc), sec,
              m.seeds["n0"], store, __import__("random").Random(5), CRYPTO, m.now, epoch, prev)
    assert nd.epoch == 1 and nd.rekey_id == kid_ and set(nd.keys) == {0, 1}
    assert nd.roster.get(m.nodes[2].kid).revoked  # governance replayed from the store
    old = m.nodes[1].keys[0].seal(msg.encode_unsigned(msg.RACK, {"ids": bytes(8)}), 0, 7, 0)
    nd.receive_frame(old, -80, 5.0, m.now)
    assert "foreign" not in nd.drops
    nd.handle_timer(m.now + 3600 * 1000)
    assert set(nd.keys) == {1}  # grace over: the old key is gone
    nd.receive_frame(m.nodes[1].keys[0].seal(msg.encode_unsigned(msg.RACK, {"ids": bytes([1]) * 8}), 0, 7, 0), -80, 5.0,
                     m.now + 3600 * 1000 + 1)
    assert nd.drops.get("foreign") == 1
    nd.store.close()


def test_golden_rekey_vector_unwraps_for_node_1_only():
    from pathlib import Path

    vec = Path(__file__).resolve().parents[1] / "protocol" / "vectors"
    common = json.loads((vec / "common.json").read_text())
    case = json.loads((vec / "rekey.json").read_text())[0]
    m = msg.decode(H(case["inner"]))
    table = H(case["table_hex"])
    assert msg.check_long_text(m, table) and len(table) == 56
    gid = H(common["group_id"])
    for name, ok in (("node-1", True), ("node-2", False)):
        k = common["keys"][name]
        entry = rekey.find(table, H(k["key_id"]))
        assert (entry is not None) == ok
        if entry is None:
            continue
        u = x25519.public_u(H(k["public"]))
        z = x25519.x25519(x25519.secret_scalar(H(k["seed"])), m.f["eph"])
        assert rekey.unwrap(entry, rekey.wrap_key(gid, m.f["epoch"], m.f["eph"], u, z)) == H(case["new_secret"])
        assert rekey.unwrap(entry, rekey.wrap_key(gid, 4, m.f["eph"], u, z)) is None  # bound to the epoch


MPY_X25519 = """
import binascii
from plexnode import x25519
h = binascii.unhexlify
r = []
r.append(binascii.hexlify(x25519.x25519(h('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
                                      h('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'))).decode())
r.append(binascii.hexlify(x25519.x25519(h('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'),
                                      h('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'))).decode())
a = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
b = h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb')
r.append(binascii.hexlify(x25519.x25519(a, x25519.public_key(b))).decode())
r.append(binascii.hexlify(x25519.public_u(h(%r))).decode())
r.append(binascii.hexlify(x25519.secret_scalar(h(%r))).decode())
"""


@pytest.mark.mpy
def test_x25519_under_micropython(mpy):
    seed = seed_of("mpy x25519")
    pub = CRYPTO.public_key(seed)
    got = mpy.eval_json(MPY_X25519 % (pub.hex(), seed.hex()), "r")
    k2 = H("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d")
    u2 = H("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")
    assert got == [
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        X25519PrivateKey.from_private_bytes(k2).exchange(X25519PublicKey.from_public_bytes(u2)).hex(),
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
        X25519PrivateKey.from_private_bytes(x25519.secret_scalar(seed)).public_key().public_bytes_raw().hex(),
        x25519.secret_scalar(seed).hex(),
    ]
