"""Fuzzing every decoder: malformed input yields DecodeError, never another exception and never a hang.

CPython: Hypothesis, >= 10,000 examples per kind (more under `make fuzz`). MicroPython: a seeded
random-mutation pass over the golden vectors, run from the .mpy files.
"""

import json
from pathlib import Path

import pytest
from conftest import FUZZ
from hypothesis import given, settings
from hypothesis import strategies as st
from plexwire import DecodeError, frame, hostlink, msg

VEC = Path(__file__).resolve().parents[1] / "protocol" / "vectors"
CASES = [c for p in sorted(VEC.glob("*.json")) if p.name != "common.json" for c in json.loads(p.read_text())]
SEEDS = {}
for c in CASES:
    SEEDS.setdefault(msg.NAMES[c["kind"]], []).append(bytes.fromhex(c["inner"]))

N = 200_000 if FUZZ else 10_000


def _canonical_or_error(data):
    """The property: either DecodeError, or a message whose re-encoding is exactly the input (no malleability)."""
    try:
        m = msg.decode(data)
    except DecodeError:
        return None
    if msg.is_signed(m.kind):
        again = msg.finish(msg.encode_unsigned(m.kind, m.f, m.author, m.time), m.sig)
    else:
        again = msg.encode_unsigned(m.kind, m.f)
    assert again == bytes(data)
    return m


def _mutants(kind):
    seeds = SEEDS[kind]
    body = st.binary(max_size=240)
    prefixed = body.map(lambda b: bytes([kind]) + b)
    flipped = st.tuples(st.sampled_from(seeds), st.integers(0, 10_000), st.integers(0, 255)).map(
        lambda t: t[0][: t[1] % len(t[0])] + bytes([t[2]]) + t[0][t[1] % len(t[0]) + 1:])
    cut = st.tuples(st.sampled_from(seeds), st.integers(0, 300)).map(lambda t: t[0][: t[1]])
    grown = st.tuples(st.sampled_from(seeds), st.binary(max_size=40)).map(lambda t: t[0] + t[1])
    return st.one_of(prefixed, flipped, cut, grown)


@pytest.mark.parametrize("kind", sorted(msg.SCHEMAS), ids=lambda k: msg.SCHEMAS[k][0])
def test_decoder_fuzz_per_kind(kind):
    @settings(max_examples=N, database=None)
    @given(_mutants(kind))
    def run(data):
        _canonical_or_error(data)

    run()


@settings(max_examples=N, database=None)
@given(st.binary(max_size=300))
def test_any_bytes(data):
    _canonical_or_error(data)


GK = frame.GroupKey(bytes(range(32)), 1)


@settings(max_examples=N, database=None)
@given(st.binary(max_size=300))
def test_frame_open_fuzz(data):
    try:
        frame.parse_header(data)
        GK.open(data)
    except DecodeError:
        return
    raise AssertionError("random bytes passed the group tag")


@settings(max_examples=N // 2, database=None)
@given(st.binary(max_size=400))
def test_hostlink_fuzz(data):
    r = hostlink.LineReader()
    for kind, item in r.feed(data + b"\n"):
        assert kind in ("frame", "log")
        if kind == "frame":
            op, req, body = item
            assert hostlink.encode(op, req, body).strip().endswith(data.split(b"\n")[-1].split(b"~")[-1].strip()[-4:])
    try:
        hostlink.unpack_sync_reply(data)
    except DecodeError:
        pass
    try:
        hostlink.unpack_record(data)
    except DecodeError:
        pass


def test_utf8_strictness_matches_cpython():
    bad = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98", b"\x80"]
    good = ["é", "€", "𝄞", "✊", "ascii", "\U0010ffff", "\ud7ff"]
    for b in bad:
        with pytest.raises(DecodeError):
            msg.check_utf8(b)
    for s in good:
        msg.check_utf8(s.encode())


@settings(max_examples=N, database=None)
@given(st.binary(max_size=12))
def test_utf8_agrees_with_cpython(b):
    try:
        b.decode("utf-8")
        ok = True
    except UnicodeDecodeError:
        ok = False
    try:
        msg.check_utf8(b)
        mine = True
    except DecodeError:
        mine = False
    assert mine == ok


MPY_MUTATE = r'''
import random, binascii
from plexwire import msg, frame, hostlink, DecodeError
def _fuzz(seeds, rounds, seed):
    random.seed(seed)
    accepted = rejected = 0
    gk = frame.GroupKey(bytes(range(32)), 1)
    for s in seeds:
        s = binascii.unhexlify(s)
        for _ in range(rounds):
            b = bytearray(s)
            op = random.getrandbits(2)
            if op == 0 and len(b):
                b[random.getrandbits(16) % len(b)] = random.getrandbits(8)
            elif op == 1:
                b = b[: random.getrandbits(16) % (len(b) + 1)]
            elif op == 2:
                b.extend(bytes([random.getrandbits(8) for _ in range(random.getrandbits(4))]))
            else:
                i = random.getrandbits(16) % (len(b) + 1)
                b = b[:i] + bytes([random.getrandbits(8)]) + b[i:]
            b = bytes(b)
            try:
                m = msg.decode(b)
            except DecodeError:
                rejected += 1
            else:
                if msg.is_signed(m.kind):
                    again = msg.finish(msg.encode_unsigned(m.kind, m.f, m.author, m.time), m.sig)
                else:
                    again = msg.encode_unsigned(m.kind, m.f)
                assert again == b, "non-canonical accept"
                accepted += 1
            for f in (lambda: gk.open(b) if len(b) >= 24 and frame.parse_header(b) else None,
                      lambda: hostlink.decode_line(b),
                      lambda: hostlink.unpack_sync_reply(b)):
                try:
                    f()
                except DecodeError:
                    pass
    return [accepted, rejected]
'''


@pytest.mark.mpy
@pytest.mark.slow
def test_mutation_pass_micropython(mpy):
    seeds = [c["inner"] for c in CASES]
    rounds = 5000 if FUZZ else 1000
    acc, rej = mpy.eval_json(MPY_MUTATE + "\n_fz = _fuzz(%r, %d, 1234)" % (seeds, rounds), "_fz", timeout=600)
    assert acc + rej == len(seeds) * rounds
    assert rej > acc > 0  # both paths exercised
