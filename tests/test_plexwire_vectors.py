"""Golden vectors: every kind decodes to the same fields and re-encodes to the same bytes on CPython and MicroPython."""

import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from plexwire import DecodeError, frame, msg
from plexwire_checks import VECTOR_CHECK

VEC = Path(__file__).resolve().parents[1] / "protocol" / "vectors"
COMMON = json.loads((VEC / "common.json").read_text())
CASES = [c for p in sorted(VEC.glob("*.json")) if p.name != "common.json" for c in json.loads(p.read_text())]


def expected(c):
    e = {"name": c["name"], "kind": c["kind"], "fields": c["fields"], "reencoded": c["inner"], "id": c["id"],
         "header": c["header"], "opened": c["inner"], "sealed": c["frame"]}
    if "author" in c:
        e["author"], e["time"] = c["author"], c["time"]
    return e


def test_every_kind_has_a_vector():
    assert {c["kind"] for c in CASES} == {v[0] for v in msg.SCHEMAS.values()}


def test_vectors_cpython():
    ns: dict = {}
    exec(VECTOR_CHECK, ns)
    got = ns["_check_vectors"](COMMON, CASES)
    assert got == [expected(c) for c in CASES]


@pytest.mark.mpy
def test_vectors_micropython(mpy):
    got = mpy.eval_json(VECTOR_CHECK + "\n_vres = _check_vectors(json.loads(%r), json.loads(%r))"
                        % (json.dumps(COMMON), json.dumps(CASES)), "_vres")
    assert got == [expected(c) for c in CASES]


def test_vector_signatures_verify():
    pubs = {k["key_id"]: bytes.fromhex(k["public"]) for k in COMMON["keys"].values()}
    gid = bytes.fromhex(COMMON["group_id"])
    signed = [c for c in CASES if "sig" in c]
    assert len(signed) >= 12
    for c in signed:
        inner = bytes.fromhex(c["inner"])
        m = msg.decode(inner)
        Ed25519PublicKey.from_public_bytes(pubs[c["author"]]).verify(m.sig, msg.signing_bytes(gid, m.signed_part()))
        # the signature is bound to the group: another group id fails
        with pytest.raises(InvalidSignature):
            Ed25519PublicKey.from_public_bytes(pubs[c["author"]]).verify(m.sig, msg.signing_bytes(bytes(8), m.signed_part()))


def test_single_frame_bulletin_budget():
    """SPEC's budget table: a one-frame bulletin carries >= 150 bytes of UTF-8 text with its full signature."""
    c = next(c for c in CASES if c["name"] == "bulletin-150-bytes")
    assert len(c["fields"]["text"].encode()) >= 150
    assert len(bytes.fromhex(c["frame"])) <= 255
    assert len(bytes.fromhex(c["sig"])) == 64
    cap = msg.MAX_INNER - msg.SIGNED_HEAD - 1 - msg.SIG_LEN
    assert cap == 154
    big = msg.encode_unsigned(msg.BULLETIN, {"flags": 0, "text": "x" * cap}, author=bytes(8), time=1)
    gk = frame.GroupKey(bytes(32))
    assert len(gk.seal(msg.finish(big, bytes(64)), 3)) == 255
    with pytest.raises(DecodeError):
        msg.encode_unsigned(msg.BULLETIN, {"flags": 0, "text": "x" * (cap + 1)}, author=bytes(8), time=1)


def test_long_bulletin_vector_reassembles():
    hdr = next(c for c in CASES if c["name"] == "bulletin-long-header")
    frags = sorted((c for c in CASES if c["kind"] == "fragment" and c["fields"]["bulletin"] == hdr["id"]),
                   key=lambda c: c["fields"]["index"])
    h = msg.decode(bytes.fromhex(hdr["inner"]))
    assert len(frags) == h.f["nfrag"]
    text = b"".join(bytes.fromhex(c["fields"]["data"]) for c in frags)
    assert text.hex() == hdr["text_hex"]
    assert msg.check_long_text(h, text)
    for i, c in enumerate(frags):
        assert c["fields"]["bulletin"] == hdr["id"]
        assert msg.fragment_hash(bytes.fromhex(c["fields"]["data"])) == h.f["frag_hashes"][6 * i: 6 * i + 6]
    assert not msg.check_long_text(h, text[:-1] + b"!")


def test_texts_between_one_frame_and_two_fragments_are_sendable():
    """155..214 bytes: too long for a BULLETIN, a BULLETIN_LONG with one fragment."""
    for n in (155, 190, 214, 215, 428, 429):
        text = b"a" * n
        chunks, f = msg.split_text(text)
        assert len(chunks) == -(-n // msg.FRAG_DATA) and b"".join(chunks) == text
        f["flags"] = 0
        msg.encode_unsigned(msg.BULLETIN_LONG, f, author=bytes(8), time=1)
    with pytest.raises(ValueError):
        msg.split_text(b"a" * 154)
    one = next(c for c in CASES if c["name"] == "bulletin-long-one-fragment")
    frag = next(c for c in CASES if c["name"] == "fragment-of-one")
    assert frag["fields"]["bulletin"] == one["id"]
    assert bytes.fromhex(frag["fields"]["data"]).hex() == one["text_hex"]


def test_long_bulletin_capacity_4kb():
    text = ("ñ" * 2400).encode()[:4608]
    chunks, f = msg.split_text(text)
    f["flags"] = 0
    u = msg.encode_unsigned(msg.BULLETIN_LONG, f, author=bytes(8), time=1)
    assert len(u) + 64 <= msg.MAX_INNER and len(chunks) <= msg.MAX_FRAGS


def test_tampering_is_caught_by_the_tag():
    c = CASES[0]
    gk = frame.GroupKey(bytes.fromhex(COMMON["group_secret"]), COMMON["epoch"])
    fr = bytearray(bytes.fromhex(c["frame"]))
    for pos in (0, 1, 8, 20, len(fr) - 1):
        bad = bytearray(fr)
        bad[pos] ^= 0x01
        with pytest.raises(DecodeError):
            gk.open(bytes(bad))
    # the mutable relay bytes are outside the tag
    relayed = frame.relay_copy(bytes(fr), 1, 4, 0x7777, 0x0001)
    assert gk.open(relayed) == bytes.fromhex(c["inner"])
    other = frame.GroupKey(bytes(32), COMMON["epoch"])
    with pytest.raises(DecodeError):
        other.open(bytes(fr))
