"""The node core, driven by hand on a virtual clock over explicit links (tests/corekit.py)."""

from __future__ import annotations

import json

import pytest
from corekit import CRYPTO, Mesh, seed_of
from plexwire import frame, hostlink, msg


def post_as_member(mesh: Mesh, i: int, text: str, member: str = "alice", t: int | None = None, kind=msg.BULLETIN, fields=None):
    """Sign on the 'laptop' with a member key and POST over the host link, as `plexus post` does."""
    s = mesh.member_seeds[member]
    kid = msg.key_id(CRYPTO.public_key(s))
    f = fields if fields is not None else {"flags": 0, "text": text}
    u = msg.encode_unsigned(kind, f, kid, mesh.nodes[i].now_s(mesh.now) if t is None else t)
    inner = msg.finish(u, CRYPTO.sign(s, msg.signing_bytes(mesh.nodes[i].group_id, u)))
    reply = host(mesh, i, hostlink.POST, hostlink.pack_record(inner))
    return inner, reply


def host(mesh: Mesh, i: int, op: int, body: bytes = b""):
    mesh.nodes[i].host_request(hostlink.encode(op, 7, body), mesh.now)
    mesh.drain(i)
    lines = [e[2] for e in mesh.events[i] if e[1] == "host"]
    rop, req, rbody = hostlink.decode_line(lines[-1].rstrip(b"\n"))
    assert req == 7
    return rop, rbody


def test_bulletin_crosses_ten_hops():
    m = Mesh(11)
    mid = m.nodes[0].post_bulletin("General assembly Thursday 19:00, courtyard", m.now)
    m.run(120)
    assert m.delivered(mid) == list(range(11))
    # each node on a line transmits it exactly once; nobody relays what it already relayed
    carrying = [s for s in m.sent if msg.message_id(m.nodes[0]._gk().open(s[2])) == mid]
    assert len(carrying) == 11
    ev = [e for e in m.events[10] if e[1] == "message"]
    assert ev[0][2]["text"].startswith("General assembly") and ev[0][2]["hops"] == 10


def test_validation_gate_counts_every_drop_reason():
    m = Mesh(2)
    n1 = m.nodes[1]
    gk = m.nodes[0]._gk()
    good = m.nodes[0]._sign(msg.BULLETIN, {"flags": 0, "text": "hello"}, m.now)
    # an outsider: another group key -> one HMAC, no signature work
    n1.receive_frame(frame.GroupKey(bytes(32), 0).seal(good, 3), -80, 5, m.now)
    # garbage and a wrong version
    n1.receive_frame(b"\x00" * 10, -80, 5, m.now)
    bad_version = bytearray(gk.seal(good, 3))
    bad_version[0] = 0x20 | (bad_version[0] & 0x0F)
    n1.receive_frame(bytes(bad_version), -80, 5, m.now)
    # a flipped ciphertext bit fails the tag
    flipped = bytearray(gk.seal(good, 3))
    flipped[20] ^= 1
    n1.receive_frame(bytes(flipped), -80, 5, m.now)
    # an insider forging another author's signature
    forged = good[:-64] + bytes(64)
    n1.receive_frame(gk.seal(forged, 3), -80, 5, m.now)
    # an unknown author (not in the roster), correctly signed by its own key
    stranger = seed_of("stranger")
    u = msg.encode_unsigned(msg.BULLETIN, {"flags": 0, "text": "x"}, msg.key_id(CRYPTO.public_key(stranger)), 1)
    n1.receive_frame(gk.seal(msg.finish(u, CRYPTO.sign(stranger, msg.signing_bytes(n1.group_id, u))), 3), -80, 5, m.now)
    verified_before = n1.counters["verified"]
    n1.receive_frame(gk.seal(good, 3), -80, 5, m.now)  # the real one
    n1.receive_frame(gk.seal(good, 3), -80, 5, m.now)  # its echo: dropped by the tag ring, no verify
    d = n1.status()["drops"]
    assert d["foreign"] == 1 and d["malformed"] == 1 and d["version"] == 1 and d["bad_tag"] == 1
    assert d["bad_signature"] == 1 and d["unknown_author"] == 1 and d["duplicate"] == 1
    assert n1.counters["verified"] == verified_before + 1
    assert n1.store.count == 1
    # nothing forged was queued for relay
    assert [p.mid for p in n1.pending] == [msg.message_id(good)]


def test_replayed_frame_is_not_relayed_again_and_old_messages_are_not_reflooded():
    m = Mesh(3)
    mid = m.nodes[0].post_bulletin("rent strike vote", m.now)
    m.run(60)
    assert m.delivered(mid) == [0, 1, 2]
    first = [s for s in m.sent if s[1] == 0][0][2]
    sent_before = len(m.sent)
    m.nodes[1].receive_frame(first, -80, 5, m.now + 1)  # a replay of the original frame
    m.run(60)
    assert len(m.sent) == sent_before
    # a message signed three days ago, never seen: stored (it is valid) but not flooded onward
    old_t = m.nodes[1].now_s(m.now) - 3 * 86400
    inner, _ = post_as_member(m, 0, "minutes from last week", t=old_t)
    m.run(1)
    fr = m.nodes[0]._gk().seal(inner, 5, 1, 0)
    m.nodes[1].receive_frame(fr, -80, 5, m.now)
    m.run(60)
    assert m.nodes[1].store.has(msg.message_id(inner))
    assert m.nodes[1].status()["drops"].get("old_not_relayed") == 1


def test_partition_heals_through_anti_entropy():
    links = [(0, 1), (1, 2), (2, 3), (3, 4)]
    m = Mesh(5, links, beacon_s=120)
    m.run(30)
    # cut the middle link, post on each side
    del m.links[(2, 3)]
    del m.links[(3, 2)]
    left = m.nodes[0].post_bulletin("left side", m.now)
    right = m.nodes[4].post_bulletin("right side", m.now)
    m.run(120)
    assert m.delivered(left) == [0, 1, 2] and m.delivered(right) == [3, 4]
    m.links[(2, 3)] = m.links[(3, 2)] = 0.0
    m.run(900)  # a few beacon periods
    assert m.delivered(left) == [0, 1, 2, 3, 4]
    assert m.delivered(right) == [0, 1, 2, 3, 4]


def test_courier_round_trip_carries_both_ways():
    # clusters A = {0,1,2} and B = {3,4,5}; node 6 is carried from A to B and back
    a = [(0, 1), (1, 2), (0, 2)]
    b = [(3, 4), (4, 5), (3, 5)]
    m = Mesh(7, a + b + [(6, 0)], beacon_s=120)
    m.run(10)
    ma = m.nodes[1].post_bulletin("A: food bank moves to the church hall", m.now)
    mb = m.nodes[4].post_bulletin("B: eviction watch rota is full", m.now)
    m.run(600)
    assert 6 in m.delivered(ma) and 6 not in m.delivered(mb)
    # walk to B
    del m.links[(6, 0)]
    del m.links[(0, 6)]
    m.links[(6, 3)] = m.links[(3, 6)] = 0.0
    m.run(900)
    assert m.delivered(ma) == [0, 1, 2, 3, 4, 5, 6]
    assert 6 in m.delivered(mb)
    # and back to A
    del m.links[(6, 3)]
    del m.links[(3, 6)]
    m.links[(6, 2)] = m.links[(2, 6)] = 0.0
    m.run(900)
    assert m.delivered(mb) == [0, 1, 2, 3, 4, 5, 6]


def test_flooding_member_cannot_starve_the_others():
    m = Mesh(3, cfg={"rate_per_hour": 60, "burst": 10}, beacon_s=120)
    replies = [post_as_member(m, 0, "spam %d" % k)[1] for k in range(40)]
    refused = [json.loads(b)["error"] for op, b in replies if op == hostlink.ERROR]
    assert len(refused) == 30 and set(refused) == {"rate limited"}
    quiet = m.nodes[0].post_bulletin("the real decision", m.now)
    m.run(900)
    assert 2 in m.delivered(quiet)
    spam_at_2 = sum(1 for e in m.events[2] if e[1] == "message" and e[2].get("text", "").startswith("spam"))
    assert 1 <= spam_at_2 <= 10
    # a neighbour relaying for the spammer is throttled the same way, per author
    inner, _ = post_as_member(m, 1, "one more")
    assert m.nodes[1].status()["drops"].get("rate_limited", 0) == 0


def test_long_bulletin_with_a_lost_fragment_is_completed_by_sync():
    m = Mesh(3, beacon_s=120)
    m.run(10)
    text = ("Statement of the tenants' union on the rent increase. " * 30)[:1500]
    mid = m.nodes[0].post_bulletin(text, m.now)
    # lose the third fragment (the fourth frame: header first) on the first hop
    while len([s for s in m.sent if s[1] == 0]) < 3:
        m.step_to(m.now + 20)
    m.drop_next.add((0, 1))
    while len([s for s in m.sent if s[1] == 0]) < 4:
        m.step_to(m.now + 20)
    assert not m.drop_next  # that frame was the one lost
    m.run(1200)
    assert m.delivered(mid) == [0, 1, 2]
    got = [e for e in m.events[2] if e[1] == "message" and e[2]["id"] == mid]
    assert got and got[0][2]["text"] == text


def test_drill_receipts_come_back_to_the_caller():
    m = Mesh(5)
    t0 = m.now
    aid = m.nodes[0].start_drill("DRILL: press your button", m.now)
    m.run(60)
    # "reached" is held back (reached_hold_s, 150 s): a press within the hold replaces it
    assert m.nodes[0].tally_json(aid)["receipts"] == []
    for i in (2, 4):
        assert m.nodes[i].confirm_alert(aid, m.now)
    m.run(30)
    t = {r["name"]: r["state"] for r in m.nodes[0].tally_json(aid)["receipts"]}
    assert t == {"n2": "confirmed", "n4": "confirmed"}
    m.run(300)
    reached = {r["name"]: r for r in m.nodes[0].tally_json(aid)["receipts"]}
    assert {k: r["state"] for k, r in reached.items()} == {"n1": "reached", "n2": "confirmed", "n3": "reached", "n4": "confirmed"}
    assert reached["n3"]["hops"] == 3
    # the confirmed nodes never sent a separate "reached": their tally entry was first touched by the confirmation
    assert reached["n2"]["t_reached"] == reached["n2"]["t_confirmed"]
    assert reached["n1"]["t_reached"] > t0 + 150000
    alerts = [e for e in m.events[4] if e[1] == "alert"]
    assert len(alerts) == 1 and alerts[0][2]["real"] is False


def test_receipt_path_survives_a_lossy_link():
    m = Mesh(4)
    aid = m.nodes[0].start_drill("drill", m.now)
    m.run(8)
    assert m.kinds(3, "alert")
    m.links[(2, 3)] = m.links[(3, 2)] = 0.5  # every receipt and ack crossing this hop now risks loss
    m.run(400)
    assert {r["name"] for r in m.nodes[0].tally_json(aid)["receipts"]} == {"n1", "n2", "n3"}


def test_unknown_signed_kind_is_verified_stored_and_relayed_but_not_shown():
    m = Mesh(3)
    n0 = m.nodes[0]
    u = bytes([0x33]) + n0.kid + n0.now_s(m.now).to_bytes(4, "big") + b"a future kind's body"
    inner = u + CRYPTO.sign(n0.seed, msg.signing_bytes(n0.group_id, u))
    m.nodes[1].receive_frame(n0._gk().seal(inner, 5, n0.short), -80, 5, m.now)
    m.run(30)
    mid = msg.message_id(inner)
    assert m.delivered(mid) == [0, 1, 2]
    assert not [e for e in m.events[2] if e[1] == "message"]
    # the same with a bad signature goes nowhere
    m.nodes[1].receive_frame(n0._gk().seal(u + b"!" + bytes(64), 5, n0.short), -80, 5, m.now)
    assert m.nodes[1].status()["drops"]["bad_signature"] == 1


def test_host_link_post_status_sync_and_config():
    m = Mesh(2)
    op, body = host(m, 0, hostlink.HELLO)
    hello = json.loads(body)
    assert op == hostlink.HELLO | hostlink.REPLY and hello["protocol"] == 1 and hello["name"] == "n0"
    inner, (op, body) = post_as_member(m, 0, "posted from the laptop")
    assert op == hostlink.POST | hostlink.REPLY and json.loads(body)["id"] == msg.message_id(inner).hex()
    # posting it again is refused with a reason, not a crash
    _, (op, body) = post_as_member(m, 0, "posted from the laptop", t=msg.decode(inner).time)
    assert op == hostlink.ERROR and "duplicate" in json.loads(body)["error"]
    # a forged record is refused
    other, _ = post_as_member(m, 1, "a different text")
    bad = hostlink.pack_record(other[:-1] + bytes([other[-1] ^ 1]))
    op, body = host(m, 0, hostlink.POST, bad)
    assert op == hostlink.ERROR and "signature" in json.loads(body)["error"]
    for k in range(5):
        m.nodes[0].post_bulletin("local %d" % k, m.now)
    cursor, got = 0, []
    while True:
        op, body = host(m, 0, hostlink.SYNC, hostlink.pack_sync_request(cursor, 2))
        nxt, more, recs = hostlink.unpack_sync_reply(body)
        got += recs
        cursor = nxt
        if not more:
            break
    assert len(got) == 6 and [s for s, _ in got] == sorted(s for s, _ in got)
    assert hostlink.unpack_record(got[0][1])[0] == inner
    op, body = host(m, 0, hostlink.CONFIG, json.dumps({"time": 95_000_000}).encode())
    assert json.loads(body)["time"] == 95_000_000
    op, body = host(m, 0, hostlink.STATUS)
    st = json.loads(body)
    assert st["stored"] == 6 and "drops" in st and st["time"] == 95_000_000
    m.nodes[0].host_request(b"~garbage\n", m.now)
    assert m.nodes[0].status()["drops"]["host_garbage"] == 1


def test_duty_cycle_budget_is_never_exceeded():
    # the EU 1 % sub-band: 36 s of airtime per rolling hour
    m = Mesh(2, cfg={"region": "EU_868_1", "rate_per_hour": 10_000, "burst": 1000})
    for k in range(60):
        m.nodes[0].post_bulletin("notice %02d " % k + "x" * 120, m.now)
    m.run(7200)
    air = [(t, m.nodes[0].airtime(len(fr))) for t, i, fr in m.sent if i == 0]
    # class 2 (bulletins) may use 85 % of the 36 s budget: 15 frames of 1.95 s per rolling hour
    assert 28 <= len(air) <= 32
    for t0, _ in air:
        window = sum(a for t, a in air if t0 <= t < t0 + 3_600_000)
        assert window <= 36_000_000
    assert m.delivered(msg.message_id(m.nodes[0]._gk().open(m.sent[0][2]))) == [0, 1]


@pytest.mark.parametrize("router", ["managed", "flood"])
def test_baseline_routers_deliver_on_a_short_line(router):
    m = Mesh(4, router=router)
    mid = m.nodes[0].post_bulletin("baseline", m.now)
    m.run(60)
    assert m.delivered(mid) == [0, 1, 2, 3]


def test_managed_router_stops_at_hop_limit_three():
    m = Mesh(7, router="managed")
    mid = m.nodes[0].post_bulletin("too far for meshtastic", m.now)
    m.run(120)
    assert m.delivered(mid) == [0, 1, 2, 3, 4]


def clique(n: int) -> list[tuple[int, int]]:
    """Links between every two of nodes 0..n-1 (all in range of each other)."""
    return [(a, b) for a in range(n) for b in range(a + 1, n)]


def _carrying(m: Mesh, mid: bytes) -> list:
    return [s for s in m.sent if msg.message_id(m.nodes[0]._gk().open(s[2])) == mid]


def test_no_relay_when_the_sender_already_reached_all_our_neighbours():
    # four nodes all in range of each other: once the BEACONs told everyone who hears whom, nobody relays
    m = Mesh(4, links=clique(4), beacon_s=60)
    m.run(200)
    mid = m.nodes[0].post_bulletin("one frame is enough", m.now)
    m.run(60)
    assert m.delivered(mid) == [0, 1, 2, 3]
    assert len(_carrying(m, mid)) == 1


def test_diamond_only_the_outranking_relay_sends():
    # 0 reaches 1 and 2, both reach 3 (and each other). Equal degree: the higher short id outranks. The lower
    # one need not wait to hear it: the outranking neighbour, linked to the sender, covers 3 (coverage condition)
    m = Mesh(4, links=[(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)], beacon_s=60)
    m.run(200)
    mid = m.nodes[0].post_bulletin("over the diamond", m.now)
    m.run(60)
    assert m.delivered(mid) == [0, 1, 2, 3]
    senders = sorted(s[1] for s in _carrying(m, mid))
    top = 1 if m.nodes[1].short > m.nodes[2].short else 2
    assert senders == [0, top]


def test_only_the_parent_acknowledges_a_receipt():
    m = Mesh(4)
    n = m.nodes[1]
    parent, other = m.nodes[0].short, m.nodes[2].short
    rid = bytes(range(16))
    n.outbox = [[b"\x05" + bytes(98), rid, bytes(16), 1, m.now + 60000, False, parent]]
    gk = n._gk()
    rack = msg.encode_unsigned(msg.RACK, {"ids": rid[:8]})
    # a RACK from another node (listing our receipt among others), heard in passing: says nothing about our copy
    n.receive_frame(gk.seal(msg.encode_unsigned(msg.RACK, {"ids": bytes(8) + rid[:8]}), 0, other, 0), -90, 5, m.now)
    assert n.outbox[0][5] is False
    n.receive_frame(gk.seal(rack, 0, parent, 0), -90, 5, m.now + 10)
    assert n.outbox[0][5] is True



def test_newcomer_sends_one_sync_copy_not_one_per_neighbour():
    # four nodes in range of each other; a fifth, holding a bulletin they lack, arrives in range of all four.
    # Each of the four sees its beacon differ and opens a session with it; its first copy (addressed to one of
    # them, heard by all) stands for the rest, so it drops its other queued copies of that bulletin.
    full = clique(4)
    m = Mesh(5, links=full, beacon_s=60)
    m.run(200)
    mid = m.nodes[4].post_bulletin("kitchen open from six", m.now)
    m.run(700)
    assert m.delivered(mid) == [4]
    t0 = m.now
    for a in range(4):
        m.links[(a, 4)] = m.links[(4, a)] = 0.0
    m.run(600)
    assert m.delivered(mid) == [0, 1, 2, 3, 4]
    offers = [s for s in m.sent if s[0] >= t0 and s[2] and frame.parse_header(s[2]).dst == m.nodes[4].short]
    assert len(offers) >= 2  # several sessions were opened with the newcomer at once
    copies = [s for s in _carrying(m, mid) if s[0] >= t0 and s[1] == 4]
    assert len(copies) == 1 and frame.parse_header(copies[0][2]).dst != 0
    assert m.nodes[4].counters["sync_suppressed"] >= 1


def test_a_sync_copy_heard_going_to_our_peer_cancels_ours_and_no_other():
    full = clique(4)
    m = Mesh(4, links=full, beacon_s=60)
    m.run(200)
    mid = m.nodes[0].post_bulletin("two answer the same request", m.now)
    m.run(60)
    assert m.delivered(mid) == [0, 1, 2, 3]
    n0, n1, n2, n3 = m.nodes

    def queued(nd, peer):
        return [p for p in nd.pending if p.sync_to == peer and p.mid == mid and not p.cancelled]

    n1.sync._send_stored(n2.short, mid[:8], m.now)
    n1.sync._send_stored(n3.short, mid[:8], m.now)
    assert len(queued(n1, n2.short)) == 1 and len(queued(n1, n3.short)) == 1
    n0.sync._send_stored(n2.short, mid[:8], m.now)
    (tx,) = queued(n0, n2.short)
    n1.receive_frame(tx.frame, -90, 5.0, m.now)  # node 1 overhears node 0 answering node 2
    assert queued(n1, n2.short) == []  # node 2 just got it
    assert len(queued(n1, n3.short)) == 1  # node 3 may not have heard it: ours stays
    assert n1.counters["sync_suppressed"] == 1


# ---- beacons that would tell nobody anything are left out (SPEC.md s.9.5)

def _beacons(m: Mesh, since: int = 0) -> list[tuple[int, int, bytes]]:
    gk = m.nodes[0]._gk()
    return [s for s in m.sent if s[0] >= since and gk.open(s[2])[0] == msg.BEACON]


@pytest.mark.parametrize("beacon_s", [60, 600])
def test_covered_regular_beacons_are_skipped_but_every_node_beacons_within_25_minutes(beacon_s):
    # four nodes in range of each other, same (empty) store: one beacon tells all four everything. The others
    # skip theirs, but nobody stays silent for more than 25 minutes (a neighbour forgets a node after 30)
    full = clique(4)
    m = Mesh(4, links=full, beacon_s=beacon_s)
    hours = 1 if beacon_s == 60 else 4
    m.run(3600 * hours)
    t0 = 200_000
    sent = _beacons(m, t0)
    rounds = (m.now - t0) / 1000 / beacon_s
    assert len(sent) < 4 * rounds * 2 / 3  # without the rule: one per node per period
    assert sum(nd.counters.get("beacon_suppressed", 0) for nd in m.nodes) >= 4 * rounds / 3
    for i in range(4):
        times = [t0] + [s[0] for s in sent if s[1] == i] + [m.now]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) <= 25 * 60_000, (i, gaps)


def test_a_beacon_goes_out_when_a_neighbour_is_not_covered_or_our_list_changed():
    # 0-1-2 in a line and 3 out of range; once the line is quiet its beacons are skipped. Then 3 appears next to
    # 2: node 2's list changes, so its next beacon goes out, and it lists 3 (node 1 learns 2 reaches 3)
    m = Mesh(4, links=[(0, 1), (1, 2)], beacon_s=60)
    m.run(600)
    quiet = _beacons(m, 300_000)
    assert len([s for s in quiet if s[1] == 3]) >= 4  # a node that hears nobody keeps beaconing to be found
    assert len([s for s in quiet if s[1] != 3]) <= 2 * 5 + 1  # the line: the middle node is covered by both ends
    assert m.nodes[1].counters.get("beacon_suppressed", 0) >= 4
    m.links[(2, 3)] = m.links[(3, 2)] = 0.0
    t0 = m.now
    m.run(200)
    mine = [s for s in _beacons(m, t0) if s[1] == 2]
    assert mine, "node 2's list changed: its beacon must go out"
    listed = m.nodes[1].nbr[m.nodes[2].short][2]
    assert m.nodes[3].short.to_bytes(2, "big") in [bytes(listed[i:i + 2]) for i in range(0, len(listed), 2)]


def test_after_a_bulletin_one_pulled_forward_beacon_serves_a_clique():
    full = clique(4)
    m = Mesh(4, links=full, beacon_s=600)
    m.run(300)
    mid = m.nodes[0].post_bulletin("meeting moved to thursday", m.now)
    t0 = m.now
    m.run(200)
    assert m.delivered(mid) == [0, 1, 2, 3]
    early = _beacons(m, t0)
    assert len(early) == 1  # each node pulled its beacon forward; the first one covered the rest
    assert sum(nd.counters.get("beacon_suppressed", 0) for nd in m.nodes) == 3
    for nd in m.nodes:
        assert nd.next_beacon > m.now  # the skipped ones fell back to their regular time


def test_a_stored_difference_still_triggers_sync_when_beacons_are_skipped():
    # a node that missed a flood hears a neighbour's beacon (the one that was not skipped) and syncs
    full = clique(4)
    m = Mesh(4, links=full, beacon_s=600)
    m.run(300)
    for a in range(3):
        m.drop_next.add((a, 3))
    mid = m.nodes[0].post_bulletin("missed by node 3", m.now)
    m.run(400)
    assert m.delivered(mid) == [0, 1, 2, 3]


def test_a_full_neighbour_table_keeps_its_strongest_links():
    m = Mesh(2)
    n = m.nodes[0]
    now = 10_000_000
    for s in range(1, 33):
        n._note_neighbour(s, -2.0 if s == 7 else 0.0, now)
    assert len(n.nbr) == 32
    n._note_neighbour(100, 0.5, now + 1)  # not clearly (3 dB) stronger than the weakest (7, at -2 dB)
    assert 100 not in n.nbr and 7 in n.nbr
    n._note_neighbour(101, 1.5, now + 2)  # 3.5 dB over the weakest: takes its place
    assert 101 in n.nbr and 7 not in n.nbr
    n.nbr[5][0] = now - 31 * 60_000  # a stale entry goes first, whatever its SNR
    n._note_neighbour(102, -10.0, now + 3)
    assert 102 in n.nbr and 5 not in n.nbr and len(n.nbr) == 32
