"""Mandate rules beyond the plain draw, in the node core and in `plexus ledger verify`: a cap on consecutive
terms (LOT and ELECTION), elections that name their holders, hand-over records (SUCCESSION)."""

from __future__ import annotations

import pytest
from corekit import CRYPTO, Mesh, give, kid, seed_of, signed
from plexwire import DecodeError, governance, hostlink, msg

T0 = 90_000_000
MEMBERS = ("ana", "ben", "cai", "dee")
CAP = lambda n: n << msg.METHOD_CONSEC_SHIFT  # noqa: E731


def mesh(quorum=2):
    return Mesh(1, [], members=MEMBERS, quorum=quorum, doc_extra={"mandate_kinds": ["alert_real"]}, time_s=T0)


def mandate(m, holders, start, method=msg.METHOD_ELECTION, role="care", seed=bytes(16), t=None, who="ben"):
    f = {"role": role, "start": start, "end": start + 3600, "method": method, "seed": seed,
         "holders": sorted(holders)}
    return signed(m, who, msg.MANDATE, f, start - 10 if t is None else t)


def adopt(m, inner, t):
    ok, mid = give(m, inner)
    assert ok, mid
    for w in ("cai", "dee"):
        give(m, signed(m, w, msg.CONSENT, {"target": mid, "stance": 1}, t))
    assert m.nodes[0].gov.adopted(mid)
    return mid


def seed_bulletin(m, t):
    b = signed(m, "dee", msg.BULLETIN, {"flags": 0, "text": "assembly minutes %d" % t}, t)
    give(m, b)
    return msg.message_id(b)


def two_terms_of_ana(m):
    """Ana holds "care" for two adopted terms in a row (elected)."""
    return [adopt(m, mandate(m, [kid(m, "ana")], T0 + 3600 * i), T0 + 3600 * i - 5) for i in range(2)]


def test_excluded_counts_only_consecutive_terms():
    a, b, c = b"a" * 8, b"b" * 8, b"c" * 8
    hist = [(40, b"\x04" * 16, [b, c]), (10, b"\x01" * 16, [a]), (20, b"\x02" * 16, [a, b]), (30, b"\x03" * 16, [a, c])]
    assert governance.excluded(hist, 40, CAP(3)) == [a]  # a held 10, 20 and 30
    assert governance.excluded(hist, 40, CAP(2)) == [a]  # b and c each held one of the last two
    assert governance.excluded(hist, 50, CAP(2)) == [c]  # a's run ended at 40
    assert governance.excluded(hist, 50, CAP(5)) == []  # fewer terms than the cap
    assert governance.excluded(hist, 50, msg.METHOD_EXCLUDE_LAST) == [b, c]
    assert governance.excluded(hist, 50, msg.METHOD_EXCLUDE_LAST | CAP(2)) == [b, c]
    assert governance.excluded(hist, 50, 0) == []
    assert governance.excluded(hist, 10, CAP(1)) == []  # no earlier term


def test_method_byte_carries_the_cap_and_rejects_unknown_methods():
    ok = mandate(Mesh(1, [], members=MEMBERS), [b"x" * 8], T0, method=msg.METHOD_LOT | msg.METHOD_EXCLUDE_LAST | CAP(7))
    assert governance.max_consecutive(msg.decode(ok).f["method"]) == 7
    bad = bytearray(ok)
    r = 14 + bad[13]
    bad[r + 8] = 2  # method 2 is undefined
    with pytest.raises(DecodeError):
        msg.decode(bytes(bad))


def test_capped_lot_draw_excludes_the_serving_holder_and_a_rigged_one_is_rejected():
    m = mesh()
    two_terms_of_ana(m)
    start = T0 + 7200
    sid = seed_bulletin(m, start - 100)
    g = m.nodes[0].gov
    excl = governance.excluded(g.history("care"), start, CAP(2))
    assert excl == [kid(m, "ana")]
    elig = governance.eligible_members(m.nodes[0].roster, excl)
    fair = governance.draw(m.nodes[0].group_id, "care", start, start + 3600, sid, elig, 3)
    assert kid(m, "ana") not in fair
    # the same draw without the cap would have had to keep Ana eligible: a rigged draw names her
    rigged = sorted([kid(m, "ana")] + fair[:2])
    assert give(m, mandate(m, rigged, start, method=CAP(2), seed=sid)) == (False, "rigged draw")
    assert give(m, mandate(m, fair, start, method=CAP(2), seed=sid))[0]
    # with a cap of 3 Ana may serve a third term
    assert governance.excluded(g.history("care"), start, CAP(3)) == []
    assert m.nodes[0].status()["drops"]["rigged_draw"] == 1


def test_capped_election_rejects_the_serving_holder_not_others():
    m = mesh()
    two_terms_of_ana(m)
    start = T0 + 7200
    assert give(m, mandate(m, [kid(m, "ana"), kid(m, "ben")], start, method=msg.METHOD_ELECTION | CAP(2))) == (
        False, "ineligible holder")
    assert give(m, mandate(m, [kid(m, "ana")], start, method=msg.METHOD_ELECTION | msg.METHOD_EXCLUDE_LAST)) == (
        False, "ineligible holder")
    assert give(m, mandate(m, [kid(m, "ana")], start, method=msg.METHOD_ELECTION))[0]  # no cap: a third term is fine
    assert give(m, mandate(m, [kid(m, "ben")], start, method=msg.METHOD_ELECTION | CAP(2), t=start - 9))[0]
    # an elected stranger or a revoked member is never eligible
    stranger = msg.key_id(CRYPTO.public_key(seed_of("eve")))
    assert give(m, mandate(m, [stranger], start, t=start - 8)) == (False, "ineligible holder")
    assert m.nodes[0].status()["drops"]["ineligible_holder"] == 3


def test_election_takes_effect_only_at_quorum():
    m = mesh(quorum=2)
    ok, mid = give(m, mandate(m, [kid(m, "cai")], T0))
    alert = lambda t: give(m, signed(m, "cai", msg.ALERT, {"flags": msg.ALERT_REAL, "text": "now %d" % t}, t))  # noqa: E731
    assert alert(T0 + 5) == (False, "no mandate")
    give(m, signed(m, "ana", msg.CONSENT, {"target": mid, "stance": 1}, T0 + 6))
    assert alert(T0 + 7) == (False, "no mandate")  # one below the quorum
    give(m, signed(m, "ben", msg.CONSENT, {"target": mid, "stance": 1}, T0 + 8))
    assert alert(T0 + 9)[0]  # exactly at it


def test_handover_records_are_checked():
    m = mesh()
    a, b = two_terms_of_ana(m)
    other = adopt(m, mandate(m, [kid(m, "dee")], T0, role="treasury", t=T0 - 11), T0 - 4)
    assert give(m, signed(m, "ana", msg.SUCCESSION, {"prev": a, "next": b, "note": "keys with Ben"}, T0 + 3600))[0]
    assert give(m, signed(m, "ana", msg.SUCCESSION, {"prev": a, "next": other, "note": ""}, T0 + 3601)) == (
        False, "bad handover")
    assert give(m, m.nodes[0]._sign(msg.SUCCESSION, {"prev": a, "next": b, "note": "n"}, m.now)) == (False, "not a member")
    # unknown mandates cannot be judged by this node: stored, the ledger audit judges them later
    assert give(m, signed(m, "ana", msg.SUCCESSION, {"prev": bytes(16), "next": b, "note": ""}, T0 + 3602))[0]
    with pytest.raises(ValueError):
        msg.encode_unsigned(msg.SUCCESSION, {"prev": a, "next": a, "note": ""}, kid(m, "ana"), T0)


def test_ledger_verify_flags_capped_violations_and_bad_handovers(tmp_path, monkeypatch, capsys):
    from plexus.cli import main
    from plexus.ledger import Ledger

    m = mesh()
    recs = []

    def add(inner):
        recs.append(inner)
        return msg.message_id(inner)

    terms = []
    for i in range(2):
        mid = add(mandate(m, [kid(m, "ana")], T0 + 3600 * i))
        for w in ("cai", "dee"):
            add(signed(m, w, msg.CONSENT, {"target": mid, "stance": 1}, T0 + 3600 * i - 5))
        terms.append(mid)
    start = T0 + 7200
    sid = add(signed(m, "dee", msg.BULLETIN, {"flags": 0, "text": "seed"}, start - 100))
    elig = governance.eligible_members(m.nodes[0].roster, [kid(m, "ana")])
    fair = governance.draw(m.nodes[0].group_id, "care", start, start + 3600, sid, elig, 2)
    add(mandate(m, sorted([kid(m, "ana"), fair[0]]), start, method=CAP(2), seed=sid))  # record 8: rigged
    add(mandate(m, fair, start, method=CAP(2), seed=sid, t=start - 9))  # 9: fair
    add(mandate(m, [kid(m, "ana")], start, method=msg.METHOD_ELECTION | CAP(2), t=start - 8))  # 10: ineligible
    other = add(mandate(m, [kid(m, "dee")], T0, role="treasury", t=T0 - 11))  # 11
    add(signed(m, "ana", msg.SUCCESSION, {"prev": terms[0], "next": other, "note": ""}, T0 + 3601))  # 12: cross-role
    add(signed(m, "ana", msg.SUCCESSION, {"prev": terms[0], "next": terms[1], "note": ""}, T0 + 3602))  # 13: fine
    led = Ledger(tmp_path / "l.sqlite", roster=m.doc)
    assert led.ingest([hostlink.pack_record(x) for x in recs]).inserted == 13
    led.close()
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    capsys.readouterr()
    assert main(["ledger", "verify", "--ledger", str(tmp_path / "l.sqlite")]) == 1
    out = capsys.readouterr().out
    flags = [ln for ln in out.splitlines() if "FLAG" in ln]
    assert flags == ["ledger FLAG: record 8 (mandate): rigged draw", "ledger FLAG: record 10 (mandate): ineligible holder",
                     "ledger FLAG: record 12 (succession): bad handover"], out
