"""plexnode.ed25519 / verifycache from their .mpy files under real MicroPython (WebAssembly port):
the same vectors and cross-checks as on CPython, batched into a few `mpy.run` calls, and the very same
results as CPython."""

import hashlib
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from plexnode import ed25519
from test_ed25519 import RFC8032, expand, load_wycheproof, ossl_verify, torsion_point

pytestmark = pytest.mark.mpy

PRELUDE = """
from binascii import unhexlify as _U, hexlify as _H
from plexnode import ed25519 as _ed
"""


def _lit(rows):
    return "[" + ",".join("(" + ",".join(repr(x) for x in r) + ")" for r in rows) + "]"


@pytest.mark.slow
def test_wycheproof_all_151_under_micropython(mpy):
    cases = load_wycheproof()
    got = ""
    for i in range(0, len(cases), 40):
        batch = [(pub.hex(), msg.hex(), sig.hex()) for _, pub, msg, sig, _ in cases[i : i + 40]]
        src = (
            PRELUDE
            + "def _wp(rows):\n"
            + "    out = []\n"
            + "    tabs = {}\n"
            + "    for p, m, s in rows:\n"
            + "        p, m, s = _U(p), _U(m), _U(s)\n"
            + "        if p not in tabs:\n"
            + "            tabs[p] = _ed.KeyTable(_ed.make_key_table(p))\n"
            + "        out.append('%d%d' % (_ed.verify(p, m, s), _ed.verify(p, m, s, tabs[p])))\n"
            + "    return ''.join(out)\n"
            + "print(_wp(%s))\n" % _lit(batch)
        )
        got += mpy.run(src).strip()
    want = "".join("11" if valid else "00" for *_, valid in cases)
    assert len(got) == 2 * 151
    wrong = [cases[i // 2][0] for i in range(len(got)) if got[i] != want[i]]
    assert not wrong, "Wycheproof tcIds wrong under MicroPython: %s" % wrong


def test_rfc8032_under_micropython(mpy):
    rows = [(sk, msg) for _, sk, _, msg, _ in RFC8032]
    src = (
        PRELUDE
        + "def _rfc(rows):\n"
        + "    for sk, m in rows:\n"
        + "        sk, m = _U(sk), _U(m)\n"
        + "        pub = _ed.public_key(sk)\n"
        + "        sig = _ed.sign(sk, m)\n"
        + "        t = _ed.KeyTable(_ed.make_key_table(pub))\n"
        + "        bad = bytearray(sig)\n"
        + "        bad[40] ^= 4\n"
        + "        print(_H(pub).decode(), _H(sig).decode(), _ed.verify(pub, m, sig), _ed.verify(pub, m, sig, t),\n"
        + "              _ed.verify(pub, m, bytes(bad)), _ed.verify(pub, m, bytes(bad), t))\n"
        + "_rfc(%s)\n" % _lit(rows)
    )
    lines = mpy.run(src).strip().splitlines()
    assert len(lines) == len(RFC8032)
    for line, (name, _, pk, _, sig) in zip(lines, RFC8032):
        assert line.split() == [pk, sig, "True", "True", "False", "False"], name


def test_random_keys_match_cryptography_under_micropython(mpy):
    rng = random.Random(77)
    rows, expect = [], []
    for _i in range(20):
        seed = rng.randbytes(32)
        msg = rng.randbytes(rng.choice((0, 1, 64, 111, 112, 200, 300)))
        key = Ed25519PrivateKey.from_private_bytes(seed)
        sig = key.sign(msg)
        pub = ed25519.public_key(seed)
        bad_sig = bytearray(sig)
        bad_sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
        bad_msg = bytearray(msg or b"\x00")
        bad_msg[rng.randrange(len(bad_msg))] ^= 1 << rng.randrange(8)
        bad_pub = bytearray(pub)
        bad_pub[rng.randrange(32)] ^= 1 << rng.randrange(8)
        rows.append((seed.hex(), msg.hex(), bytes(bad_sig).hex(), bytes(bad_msg).hex(), bytes(bad_pub).hex()))
        verdicts = [
            ossl_verify(pub, msg, sig),
            ossl_verify(pub, msg, bytes(bad_sig)),
            ossl_verify(pub, bytes(bad_msg), sig),
            ossl_verify(bytes(bad_pub), msg, sig),
        ]
        expect.append([pub.hex(), sig.hex()] + [str(v) for v in verdicts])
    src = (
        PRELUDE
        + "def _rnd(rows):\n"
        + "    for sk, m, bs, bm, bp in rows:\n"
        + "        sk, m, bs, bm, bp = _U(sk), _U(m), _U(bs), _U(bm), _U(bp)\n"
        + "        pub = _ed.public_key(sk)\n"
        + "        sig = _ed.sign(sk, m)\n"
        + "        print(_H(pub).decode(), _H(sig).decode(), _ed.verify(pub, m, sig), _ed.verify(pub, m, bs),\n"
        + "              _ed.verify(pub, bm, sig), _ed.verify(bp, m, sig))\n"
        + "_rnd(%s)\n" % _lit(rows)
    )
    lines = [line.split() for line in mpy.run(src).strip().splitlines()]
    assert lines == expect


def test_adversarial_cases_same_verdicts_as_cpython(mpy):
    """Mixed-order public keys and R (where cofactored and cofactorless verifiers disagree), small-order
    points, non-canonical encodings, junk inputs: MicroPython gives exactly CPython's verdicts."""
    P, L = ed25519._P, ed25519._L
    base = (ed25519._BX, ed25519._BY, 1, ed25519._BX * ed25519._BY % P)
    from test_ed25519 import enc, smul

    rows = []
    seed = bytes([11]) * 32
    a, prefix = expand(seed)
    for order in (2, 4, 8):
        t = torsion_point(order)
        pub_t = enc(ed25519._padd(smul(a, base), t))
        pub = ed25519.public_key(seed)
        for n in range(4):
            msg = b"adv %d %d" % (order, n)
            r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % L
            # torsion in A
            rb = enc(smul(r, base))
            k = int.from_bytes(hashlib.sha512(rb + pub_t + msg).digest(), "little") % L
            rows.append((pub_t, msg, rb + ((r + k * a) % L).to_bytes(32, "little")))
            # torsion in R
            rb = enc(ed25519._padd(smul(r, base), t))
            k = int.from_bytes(hashlib.sha512(rb + pub + msg).digest(), "little") % L
            rows.append((pub, msg, rb + ((r + k * a) % L).to_bytes(32, "little")))
        rows.append((enc(t), b"small", enc(smul(3, t)) + bytes(32)))
    ident = (1).to_bytes(32, "little")
    rows.append((ident, b"x", ident + bytes(32)))
    rows.append(((P + 1).to_bytes(32, "little"), b"x", ident + bytes(32)))
    rows.append((ident, b"x", (P + 1).to_bytes(32, "little") + bytes(32)))
    good_pub = ed25519.public_key(seed)
    good_sig = ed25519.sign(seed, b"ok")
    rows.append((good_pub, b"ok", good_sig[:32] + (int.from_bytes(good_sig[32:], "little") + L).to_bytes(32, "little")))
    rows.append((good_pub, b"ok", good_sig))
    want = "".join("%d" % ed25519.verify(p, m, s) for p, m, s in rows)
    assert "1" in want and "0" in want
    src = (
        PRELUDE
        + "def _adv(rows):\n"
        + "    out = []\n"
        + "    for p, m, s in rows:\n"
        + "        p, m, s = _U(p), _U(m), _U(s)\n"
        + "        try:\n"
        + "            t = _ed.KeyTable(_ed.make_key_table(p))\n"
        + "        except ValueError:\n"
        + "            t = None\n"
        + "        v = _ed.verify(p, m, s)\n"
        + "        if t is not None and _ed.verify(p, m, s, t) != v:\n"
        + "            v = 'X'\n"
        + "        out.append('%d' % v if v != 'X' else v)\n"
        + "    junk = [_ed.verify(None, b'', b''), _ed.verify(b'1' * 32, 'str', b'2' * 64), _ed.verify(b'', b'', b''),\n"
        + "            _ed.verify(5, 6, 7), _ed.verify(b'1' * 33, b'', b'2' * 64), _ed.verify(b'1' * 32, b'', b'2' * 65)]\n"
        + "    return ''.join(out), junk\n"
        + "print(_adv(%s))\n" % _lit([(p.hex(), m.hex(), s.hex()) for p, m, s in rows])
    )
    out = mpy.run(src).strip()
    assert out == "(%r, [False, False, False, False, False, False])" % want


def test_key_table_bytes_identical_to_cpython(mpy):
    pub = ed25519.public_key(b"\x42" * 32)
    raw = ed25519.make_key_table(pub)
    src = PRELUDE + "import hashlib\nprint(_H(hashlib.sha256(_ed.make_key_table(_U(%r))).digest()).decode())\n" % pub.hex()
    assert mpy.run(src).strip() == hashlib.sha256(raw).hexdigest()
    src = PRELUDE + "import hashlib\nprint(_H(hashlib.sha256(_ed._BASE_TABLE).digest()).decode(), len(_ed._BASE_TABLE))\n"
    assert mpy.run(src).split() == [hashlib.sha256(ed25519._BASE_TABLE).hexdigest(), "12288"]


def test_verify_cache_under_micropython(mpy):
    seed = b"\x05" * 32
    msg = b"cached message"
    pub, sig = ed25519.public_key(seed), ed25519.sign(seed, msg)
    src = (
        PRELUDE
        + "from plexnode.verifycache import VerifyCache\n"
        + "def _vc(pub, msg, sig):\n"
        + "    c = VerifyCache(2)\n"
        + "    mid = b'0123456789abcdef'\n"
        + "    r = [c.check(pub, mid, sig), c.verify(pub, mid, msg, sig), c.check(pub, mid, sig)]\n"
        + "    bad = sig[:63] + bytes([sig[63] ^ 1])\n"
        + "    r += [c.check(pub, mid, bad), c.verify(pub, mid, msg, bad), c.check(pub, mid, bad), len(c)]\n"
        + "    c.put(b'k', b'1', b's')\n"
        + "    c.put(b'k', b'2', b's')\n"
        + "    r += [c.check(pub, mid, sig), c.check(b'k', b'1', b's'), c.check(b'k', b'2', b's'), c.hits]\n"
        + "    return r\n"
        + "print(_vc(_U(%r), _U(%r), _U(%r)))\n" % (pub.hex(), msg.hex(), sig.hex())
    )
    assert mpy.run(src).strip() == "[None, True, True, None, False, None, 1, None, True, True, 3]"
