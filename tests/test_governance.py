"""Governance in the node core: consent against quorum, mandates drawn by lot, recall, roster edits and
revocation with quorum, and mandate-gated real alerts. Each adversarial case is rejected and counted."""

from __future__ import annotations

import pytest
from corekit import CRYPTO, Mesh, give, kid, seed_of, signed
from plexwire import governance, msg

T0 = 90_000_000
MEMBERS = ("ana", "ben", "cai", "dee")


def mesh(quorum=2, gated=("alert_real",)):
    return Mesh(1, [], members=MEMBERS, quorum=quorum, doc_extra={"mandate_kinds": list(gated)}, time_s=T0)


def consent(m, who, target, t, stance=msg.STANCE_CONSENT):
    return give(m, signed(m, who, msg.CONSENT, {"target": target, "stance": stance}, t))


def drawn_mandate(m, role="coordination", seats=1, start=T0, end=T0 + 30 * 86400, t=T0 + 10, rig=False):
    seed_bulletin = signed(m, "ana", msg.BULLETIN, {"flags": 0, "text": "minutes of the last assembly"}, T0 - 100)
    give(m, seed_bulletin)
    seed_id = msg.message_id(seed_bulletin)
    elig = governance.eligible_members(m.nodes[0].roster)
    holders = governance.draw(m.nodes[0].group_id, role, start, end, seed_id, elig, seats)
    if rig:
        holders = sorted([k for k in elig if k not in holders][:seats])
    f = {"role": role, "start": start, "end": end, "method": msg.METHOD_LOT, "seed": seed_id, "holders": holders}
    return signed(m, "ben", msg.MANDATE, f, t), holders


def name_of(m, k):
    return next(w for w in MEMBERS if kid(m, w) == k)


def real_alert(m, who, t):
    return give(m, signed(m, who, msg.ALERT, {"flags": msg.ALERT_REAL, "text": "eviction at no. 12, come now (%d)" % t}, t))


def test_decision_is_adopted_exactly_at_quorum_and_a_block_stops_it():
    m = mesh(quorum=3)
    b = signed(m, "ana", msg.BULLETIN, {"flags": msg.BULLETIN_DECISION, "text": "rent strike from Monday"}, T0)
    ok, bid = give(m, b)
    g = m.nodes[0].gov
    consent(m, "ana", bid, T0 + 1)
    consent(m, "ben", bid, T0 + 2)
    assert not g.adopted(bid)  # one below the threshold
    consent(m, "cai", bid, T0 + 3)
    assert g.adopted(bid)  # exactly at it
    adopted = [e for e in m.nodes[0].events if e[0] == "adopted"]
    assert adopted[-1][1]["consents"] == 3 and adopted[-1][1]["quorum"] == 3
    b2 = signed(m, "ana", msg.BULLETIN, {"flags": msg.BULLETIN_DECISION, "text": "sell the office"}, T0)
    ok, bid2 = give(m, b2)
    for w in ("ana", "ben", "cai"):
        consent(m, w, bid2, T0 + 5)
    consent(m, "dee", bid2, T0 + 6, stance=msg.STANCE_BLOCK)
    assert g.adopted(bid2)  # adopted when the quorum was reached; a block arriving afterwards does not undo it
    b3 = signed(m, "ana", msg.BULLETIN, {"flags": msg.BULLETIN_DECISION, "text": "close the food bank"}, T0)
    ok, bid3 = give(m, b3)
    consent(m, "dee", bid3, T0 + 6, stance=msg.STANCE_BLOCK)
    for w in ("ana", "ben", "cai"):
        consent(m, w, bid3, T0 + 7)
    assert not g.adopted(bid3)


def test_forged_consent_and_consent_from_a_non_member_do_not_count():
    m = mesh(quorum=2)
    ok, bid = give(m, signed(m, "ana", msg.BULLETIN, {"flags": msg.BULLETIN_DECISION, "text": "x"}, T0))
    consent(m, "ana", bid, T0)
    forged = signed(m, "ben", msg.CONSENT, {"target": bid, "stance": 1}, T0)[:-64] + bytes(64)
    assert give(m, forged) == (False, "bad signature")
    node_consent = m.nodes[0]._sign(msg.CONSENT, {"target": bid, "stance": 1}, m.now)
    assert give(m, node_consent)[0] is False
    assert not m.nodes[0].gov.adopted(bid)
    d = m.nodes[0].status()["drops"]
    assert d["bad_signature"] == 1 and d["not_a_member"] == 1


def test_rigged_draw_is_rejected_and_a_fair_one_takes_effect_at_quorum():
    m = mesh(quorum=2)
    rigged, _ = drawn_mandate(m, rig=True)
    assert give(m, rigged) == (False, "rigged draw")
    fair, holders = drawn_mandate(m)
    ok, mid = give(m, fair)
    assert ok
    holder = name_of(m, holders[0])
    other = next(w for w in MEMBERS if kid(m, w) not in holders)
    # before quorum the mandate carries no authority
    assert real_alert(m, holder, T0 + 20) == (False, "no mandate")
    consent(m, "ana", mid, T0 + 21)
    consent(m, "cai", mid, T0 + 22)
    assert real_alert(m, holder, T0 + 30)[0]
    assert real_alert(m, other, T0 + 31) == (False, "no mandate")
    # a drill needs no mandate
    assert give(m, signed(m, other, msg.ALERT, {"flags": 0, "text": "drill"}, T0 + 32))[0]


def test_expired_and_recalled_mandates_carry_no_authority():
    m = mesh(quorum=2)
    fair, holders = drawn_mandate(m, end=T0 + 3600)
    ok, mid = give(m, fair)
    consent(m, "ana", mid, T0 + 21)
    consent(m, "ben", mid, T0 + 22)
    holder = name_of(m, holders[0])
    assert real_alert(m, holder, T0 + 100)[0]
    assert real_alert(m, holder, T0 + 3600) == (False, "no mandate")  # expired: end is exclusive
    # a second term, recalled at once
    fair2, holders2 = drawn_mandate(m, role="coordination", start=T0 + 3600, end=T0 + 7200, t=T0 + 3000)
    ok, mid2 = give(m, fair2)
    consent(m, "ana", mid2, T0 + 3001)
    consent(m, "ben", mid2, T0 + 3002)
    h2 = name_of(m, holders2[0])
    assert real_alert(m, h2, T0 + 4000)[0]
    ok, rid = give(m, signed(m, "cai", msg.RECALL, {"mandate": mid2, "reason": "did not show up"}, T0 + 4100))
    consent(m, "cai", rid, T0 + 4101)
    assert real_alert(m, h2, T0 + 4200)[0]  # recall not yet adopted
    consent(m, "dee", rid, T0 + 4102)
    assert real_alert(m, h2, T0 + 4201) == (False, "no mandate")
    assert m.nodes[0].status()["drops"]["no_mandate"] == 2


def test_replayed_old_mandate_grants_nothing_now():
    m = mesh(quorum=1)
    old, holders = drawn_mandate(m, start=T0 - 90 * 86400, end=T0 - 60 * 86400, t=T0 - 90 * 86400 + 5)
    # its seed bulletin is newer than the draw: that alone is a rigged draw
    assert give(m, old)[1] == "rigged draw"


def test_roster_edit_and_revocation_need_quorum():
    m = mesh(quorum=2)
    newbie = seed_of("eve")
    add = signed(m, "ana", msg.ROSTER, {"op": msg.ROSTER_ADD_MEMBER, "key": CRYPTO.public_key(newbie), "name": "Eve",
                                        "contact": "flat 3"}, T0)
    ok, aid = give(m, add)
    consent(m, "ana", aid, T0 + 1)
    # without quorum Eve is still a stranger
    assert give(m, signed(m, "eve", msg.BULLETIN, {"flags": 0, "text": "hi"}, T0 + 2)) == (False, "unknown author")
    consent(m, "ben", aid, T0 + 3)
    assert give(m, signed(m, "eve", msg.BULLETIN, {"flags": 0, "text": "hi again"}, T0 + 4))[0]
    # revoke Dee (a seized phone): once adopted, her consents no longer count and her messages are refused
    ok, rv = give(m, signed(m, "ana", msg.REVOKE, {"key": kid(m, "dee"), "reason": 1}, T0 + 5))
    consent(m, "ana", rv, T0 + 6)
    assert give(m, signed(m, "dee", msg.BULLETIN, {"flags": 0, "text": "still here"}, T0 + 7))[0]
    consent(m, "ben", rv, T0 + 8)
    assert give(m, signed(m, "dee", msg.CONSENT, {"target": rv, "stance": 1}, T0 + 9)) == (False, "revoked key")
    assert m.nodes[0].status()["drops"]["revoked"] == 1


def test_governance_state_survives_a_reboot(tmp_path):
    m = mesh(quorum=2)
    fair, holders = drawn_mandate(m)
    ok, mid = give(m, fair)
    consent(m, "ana", mid, T0 + 21)
    consent(m, "ben", mid, T0 + 22)
    holder = name_of(m, holders[0])
    # a new node object over the same store: the mandate is active again from the signed records alone
    m.nodes[0].store.close()
    m.nodes[0] = m.make_node(0, {"name": "n0", "time": T0})
    assert real_alert(m, holder, T0 + 40)[0]
    other = next(w for w in MEMBERS if kid(m, w) not in holders)
    assert real_alert(m, other, T0 + 41) == (False, "no mandate")


def test_without_a_clock_a_real_alert_still_sounds_marked_unchecked():
    m = Mesh(2, members=MEMBERS, quorum=2, doc_extra={"mandate_kinds": ["alert_real"]}, time_s=0)
    inner = signed(m, "ana", msg.ALERT, {"flags": msg.ALERT_REAL, "text": "fire"}, 0)
    assert give(m, inner)[0]
    m.nodes[1].receive_frame(m.nodes[0]._gk().seal(inner, 3, m.nodes[0].short), -80, 5, 0)
    ev = [e for e in m.nodes[1].events if e[0] == "alert"]
    assert ev and ev[0][1]["authority"] == "unchecked"


def test_draw_is_deterministic_and_uniform_enough():
    gid, seedid = bytes(8), bytes(16)
    elig = [bytes([i]) * 8 for i in range(10)]
    a = governance.draw(gid, "care", 1, 2, seedid, elig, 3)
    assert a == governance.draw(gid, "care", 1, 2, seedid, list(reversed(elig)), 3)
    assert len(set(a)) == 3
    counts = {k: 0 for k in elig}
    for i in range(2000):
        for k in governance.draw(gid, "care", i, i + 1, seedid, elig, 1):
            counts[k] += 1
    assert min(counts.values()) > 140 and max(counts.values()) < 260
    with pytest.raises(ValueError):
        governance.draw(gid, "care", 1, 2, seedid, elig, 11)


def test_ledger_verify_flags_what_a_node_would_reject(tmp_path, monkeypatch, capsys):
    """A ledger fed by a compromised node holds a rigged mandate and an alert without a mandate: verify names them."""
    from plexus.cli import main
    from plexus.ledger import Ledger
    from plexwire import hostlink

    m = mesh(quorum=2)
    led = Ledger(tmp_path / "l.sqlite", roster=m.doc)
    rigged, _ = drawn_mandate(m, rig=True)
    fair, holders = drawn_mandate(m)
    other = next(w for w in MEMBERS if kid(m, w) not in holders)
    stray = signed(m, other, msg.ALERT, {"flags": msg.ALERT_REAL, "text": "not mine to send"}, T0 + 50)
    good = [signed(m, "ana", msg.BULLETIN, {"flags": 0, "text": "ok"}, T0)]
    res = led.ingest([hostlink.pack_record(x) for x in good + [rigged, fair, stray]])
    assert res.inserted == 4
    led.close()
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    capsys.readouterr()
    assert main(["ledger", "verify", "--ledger", str(tmp_path / "l.sqlite")]) == 1
    out = capsys.readouterr().out
    assert "ledger OK: 4 records" in out
    assert "record 2 (mandate): rigged draw" in out and "record 4 (alert): no mandate" in out
    assert "record 3" not in out


def test_a_node_that_missed_the_last_term_catches_up_and_then_accepts_the_next_draw():
    # node 1 was away while term 1 was drawn and adopted. A draw for term 2 that excludes term 1's holder looks
    # rigged to it (it cannot know whom to exclude), so it refuses it; once anti-entropy brings term 1 and its
    # consents, the same draw is fetched again, accepted and adopted: both nodes end with the same mandates
    m = Mesh(2, [], members=MEMBERS, quorum=2, doc_extra={"mandate_kinds": ["alert_real"]}, time_s=T0, beacon_s=60)
    m.run(60)
    n0, n1 = m.nodes
    t1, h1 = drawn_mandate(m, start=T0, end=T0 + 86400, t=T0 + 10)
    ok, t1_id = give(m, t1)
    consent(m, "ana", t1_id, T0 + 11)
    consent(m, "cai", t1_id, T0 + 12)
    assert n0.gov.adopted(t1_id)
    seed_id = msg.message_id(signed(m, "ana", msg.BULLETIN, {"flags": 0, "text": "minutes of the last assembly"}, T0 - 100))
    start2, end2 = T0 + 86400, T0 + 2 * 86400
    elig = governance.eligible_members(n0.roster, governance.excluded(n0.gov.history("coordination"), start2,
                                                                       msg.METHOD_EXCLUDE_LAST))
    assert h1[0] not in elig
    h2 = governance.draw(n0.group_id, "coordination", start2, end2, seed_id, elig, 1)
    t2 = signed(m, "ben", msg.MANDATE, {"role": "coordination", "start": start2, "end": end2,
                                         "method": msg.METHOD_LOT | msg.METHOD_EXCLUDE_LAST, "seed": seed_id,
                                         "holders": h2}, T0 + 20)
    ok, t2_id = give(m, t2)
    assert ok
    consent(m, "ana", t2_id, T0 + 21)
    consent(m, "dee", t2_id, T0 + 22)
    assert n0.gov.adopted(t2_id)
    # node 1 hears term 2 first, without term 1
    assert n1.handle_inner(t2, None, None, 0, m.now, b"", False) == (False, "rigged draw")
    assert not n1.store.has(t2_id)
    m.links[(0, 1)] = m.links[(1, 0)] = 0.0
    m.run(900)
    assert n1.store.has(t1_id) and n1.store.has(t2_id)
    assert n1.gov.adopted(t1_id) and n1.gov.adopted(t2_id)
    assert sorted(n1.gov.mandates) == sorted(n0.gov.mandates)
