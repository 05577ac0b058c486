"""plexnode.ed25519 on CPython: RFC 8032 vectors, Wycheproof, cross-checks against `cryptography`,
strictness, adversarial torsion cases, the per-key tables and the verify cache."""

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st
from plexnode import ed25519
from plexnode.verifycache import VerifyCache

ROOT = Path(__file__).resolve().parents[1]
WYCHEPROOF = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "wycheproof" / "ed25519_test.json"

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493

# RFC 8032 section 7.1 (typed from the RFC): name, secret key, public key, message, signature
RFC8032 = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380db2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]


def load_wycheproof():
    if not WYCHEPROOF.is_file():
        pytest.skip("../shared is missing beside the checkout (%s): it holds the Wycheproof vectors" % WYCHEPROOF)
    data = json.loads(WYCHEPROOF.read_text())
    cases = []
    for group in data["testGroups"]:
        pub = bytes.fromhex(group["publicKey"]["pk"])
        for t in group["tests"]:
            cases.append((t["tcId"], pub, bytes.fromhex(t["msg"]), bytes.fromhex(t["sig"]), t["result"] == "valid"))
    assert len(cases) == data["numberOfTests"] == 151
    return cases


def ossl_verify(pub, msg, sig):
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def ossl_pub(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- a tiny independent reference (plain double-and-add on the module's tuple formulas) ---------


def smul(k, pt):
    acc = (0, 1, 1, 0)
    while k:
        if k & 1:
            acc = ed25519._padd(acc, pt)
        pt = ed25519._pdbl(pt)
        k >>= 1
    return acc


def affine(pt):
    zi = pow(pt[2], P - 2, P)
    return pt[0] * zi % P, pt[1] * zi % P


def enc(pt):
    x, y = affine(pt)
    return ed25519._encode(x, y)


def dec(b):
    xy = ed25519._decode(b)
    assert xy is not None
    x, y = xy
    return (x, y, 1, x * y % P)


def neg(pt):
    return (-pt[0] % P, pt[1], pt[2], -pt[3] % P)


BASE = (ed25519._BX, ed25519._BY, 1, ed25519._BX * ed25519._BY % P)


def reference_verify(pub, msg, sig):
    """RFC 8032 cofactorless check, ref10 style: encode([S]B - [k]A) == R bytes."""
    if len(pub) != 32 or len(sig) != 64 or ed25519._decode(pub) is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + pub + msg).digest(), "little") % L
    return enc(ed25519._padd(smul(s, BASE), neg(smul(k, dec(pub))))) == sig[:32]


def torsion_point(order):
    """A point of exactly the given order (1, 2, 4 or 8)."""
    y = 2
    while True:
        xy = ed25519._decode(y.to_bytes(32, "little"))
        if xy is not None:
            t = smul(L, (xy[0], xy[1], 1, xy[0] * xy[1] % P))  # in the 8-torsion
            if enc(smul(4, t)) != enc((0, 1, 1, 0)):  # order 8
                return smul(8 // order, t)
        y += 1


def is_identity(pt):
    return enc(pt) == enc((0, 1, 1, 0))


def expand(seed):
    h = hashlib.sha512(seed).digest()
    a = (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    return a, h[32:]


# --- constants and tables ------------------------------------------------------------------


def test_constants():
    assert ed25519._P == P and ed25519._L == L and ed25519._N == 8 * L
    assert ed25519._D == -121665 * pow(121666, P - 2, P) % P
    assert ed25519._D2 == 2 * ed25519._D % P
    assert pow(ed25519._SQRT_M1, 2, P) == P - 1
    x, y = ed25519._BX, ed25519._BY
    assert y == 4 * pow(5, P - 2, P) % P and x % 2 == 0
    assert (y * y - x * x - 1 - ed25519._D * x * x * y * y) % P == 0
    assert is_identity(smul(L, BASE))
    assert ed25519._inv(12345) * 12345 % P == 1
    assert ed25519._pow22523(7) == pow(7, (P - 5) // 8, P)


def test_base_table_constant_is_the_computed_table():
    assert len(ed25519._BASE_TABLE) == 16 * 8 * 96
    assert ed25519._BASE_TABLE == ed25519._chunk_table(ed25519._BX, ed25519._BY)
    # spot-check entries against the reference: entry (chunk j, odd m) is m * 2^(16 j) * B
    for j, m in ((0, 1), (0, 15), (3, 7), (7, 9), (15, 13)):
        x, y = affine(smul(m << (16 * j), BASE))
        o = (j * 8 + (m >> 1)) * 96
        tb = ed25519._BASE_TABLE
        half = (P + 1) // 2  # entries are the point scaled to Z = 1/2
        assert int.from_bytes(tb[o : o + 32], "little") == (y + x) * half % P
        assert int.from_bytes(tb[o + 32 : o + 64], "little") == (y - x) * half % P
        assert int.from_bytes(tb[o + 64 : o + 96], "little") == ed25519._D * x * y % P


def _digits(ev, chunked, want_tag):
    """Decode _wnaf's event lists back to {bit position: signed digit}."""
    out = {}
    for slot, codes in enumerate(ev):
        for c in codes:
            assert c >> 1 & 1 == want_tag >> 1  # the table bit
            e = c >> 2
            if chunked:
                i = (e >> 3) * 16 + slot
                e &= 7
            else:
                i = slot
            assert i not in out
            out[i] = -(2 * e + 1) if c & 1 else 2 * e + 1
    return out


@given(st.integers(min_value=0, max_value=2**256 - 1), st.sampled_from((0, 1, 2, 3)))
def test_wnaf_recoding(k, tag):
    ev = ed25519._events(264)
    top = ed25519._wnaf(k, ev, tag, False)
    digits = _digits(ev, False, tag)
    assert sum(d << i for i, d in digits.items()) == (-k if tag & 1 else k)
    nz = sorted(digits)
    assert all(d % 2 == 1 and -15 <= d <= 15 for d in digits.values())
    assert all(b - a >= 5 for a, b in zip(nz, nz[1:]))  # width-5 NAF: at least 4 zeros between digits
    assert top == (nz[-1] + 1 if nz else 0) and top <= 257


@given(st.integers(min_value=0, max_value=2**255 - 1), st.sampled_from((0, 1, 2, 3)))
def test_wnaf_chunk_layout(k, tag):
    plain = ed25519._events(264)
    ed25519._wnaf(k, plain, tag, False)
    ev = ed25519._events(16)
    top = ed25519._wnaf(k, ev, tag, True)
    assert top <= 256
    assert _digits(ev, True, tag) == _digits(plain, False, tag)


@given(st.integers(min_value=0, max_value=L - 1))
def test_halfsize_scalars(k):
    c, d = ed25519._halfsize(k)
    assert (c - d * k) % (8 * L) == 0
    assert d % 2 == 1
    assert 0 < abs(d) < L and abs(c) < 8 * L


def test_halfsize_scalars_are_about_128_bits():
    # hash outputs are uniform: the sizes (which set the number of doublings) stay near 2^128
    rng = random.Random(3)
    sizes = []
    for _ in range(2000):
        c, d = ed25519._halfsize(rng.randrange(L))
        sizes.append(max(abs(c), abs(d)).bit_length())
    assert max(sizes) <= 136 and sorted(sizes)[1000] <= 128 and sorted(sizes)[1900] <= 130


def test_halfsize_edges():
    for k in (0, 1, 2, 3, 8, 2**127, 2**128, 2**128 + 1, L - 1, L // 2, (8 * L) // 3):
        k %= L
        c, d = ed25519._halfsize(k)
        assert (c - d * k) % (8 * L) == 0 and d % 2 == 1, k


# --- RFC 8032 and Wycheproof ------------------------------------------------------------------


@pytest.mark.parametrize("name,sk,pk,msg,sig", RFC8032, ids=[v[0] for v in RFC8032])
def test_rfc8032_vectors(name, sk, pk, msg, sig):
    seed, pub, m, s = bytes.fromhex(sk), bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sig)
    assert ed25519.public_key(seed) == pub
    assert ed25519.sign(seed, m) == s
    assert ed25519.verify(pub, m, s) is True
    table = ed25519.KeyTable(ed25519.make_key_table(pub))
    assert ed25519.verify(pub, m, s, table) is True
    bad = bytearray(s)
    bad[5] ^= 0x10
    assert ed25519.verify(pub, m, bytes(bad)) is False
    assert ed25519.verify(pub, m, bytes(bad), table) is False
    assert ed25519.verify(pub, m + b"\x00", s) is False


def test_wycheproof_all_151():
    cases = load_wycheproof()
    tables = {}
    wrong = []
    for tc, pub, msg, sig, valid in cases:
        if pub not in tables:
            tables[pub] = ed25519.KeyTable(ed25519.make_key_table(pub))
        got = (ed25519.verify(pub, msg, sig), ed25519.verify(pub, msg, sig, tables[pub]))
        if got != (valid, valid):
            wrong.append((tc, got, valid))
    assert not wrong


# --- cross-check against cryptography (OpenSSL) ------------------------------------------------


def _mutations(rng, pub, msg, sig):
    out = []
    b = bytearray(sig)
    i = rng.randrange(64)
    b[i] ^= 1 << rng.randrange(8)
    out.append((pub, msg, bytes(b)))  # a bit of R or S
    b = bytearray(sig)
    b[rng.randrange(32)] ^= 1 << rng.randrange(8)
    out.append((pub, msg, bytes(b)))  # a bit of R
    m = bytearray(msg or b"\x00")
    m[rng.randrange(len(m))] ^= 1 << rng.randrange(8)
    out.append((pub, bytes(m), sig))  # the message
    p = bytearray(pub)
    p[rng.randrange(32)] ^= 1 << rng.randrange(8)
    out.append((bytes(p), msg, sig))  # the key
    s = (int.from_bytes(sig[32:], "little") + L).to_bytes(32, "little")
    out.append((pub, msg, sig[:32] + s))  # S + L (malleability)
    return out


def test_500_random_keys_against_cryptography():
    rng = random.Random(20240501)
    disagreements = []
    for i in range(500):
        seed = rng.randbytes(32)
        msg = rng.randbytes(rng.choice((0, 1, 31, 32, 64, 111, 112, 200, rng.randrange(400))))
        key = Ed25519PrivateKey.from_private_bytes(seed)
        pub = ed25519.public_key(seed)
        assert pub == ossl_pub(seed), i
        sig = ed25519.sign(seed, msg)
        assert sig == key.sign(msg), i
        assert ed25519.verify(pub, msg, sig) is True
        table = ed25519.KeyTable(ed25519.make_key_table(pub)) if i % 5 == 0 else None
        if table is not None:
            assert ed25519.verify(pub, msg, sig, table) is True
        for p2, m2, s2 in _mutations(rng, pub, msg, sig):
            want = ossl_verify(p2, m2, s2)
            if ed25519.verify(p2, m2, s2) != want:
                disagreements.append((i, "arbitrary", p2.hex(), m2.hex(), s2.hex(), want))
            if table is not None and p2 == pub and ed25519.verify(p2, m2, s2, table) != want:
                disagreements.append((i, "table", p2.hex(), m2.hex(), s2.hex(), want))
    assert not disagreements


# --- strictness ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good():
    seed = bytes(range(32))
    msg = b"strictness"
    pub = ed25519.public_key(seed)
    return seed, pub, msg, ed25519.sign(seed, msg), ed25519.KeyTable(ed25519.make_key_table(pub))


def test_rejects_s_at_or_above_l(good):
    seed, pub, msg, sig, table = good
    s = int.from_bytes(sig[32:], "little")
    for bad_s in (L, L + 1, s + L, s + 2 * L, s + 8 * L, 2**253 + s, 2**256 - 1):
        if bad_s >= 2**256:
            continue
        forged = sig[:32] + bad_s.to_bytes(32, "little")
        assert ed25519.verify(pub, msg, forged) is False
        assert ed25519.verify(pub, msg, forged, table) is False


def test_rejects_wrong_lengths_and_types_without_raising(good):
    seed, pub, msg, sig, table = good
    for p, s in ((pub[:31], sig), (pub + b"\x00", sig), (pub, sig[:63]), (pub, sig + b"\x00"), (b"", b""), (pub, b"")):
        assert ed25519.verify(p, msg, s) is False
        assert ed25519.verify(p, msg, s, table) is False
    for junk in (None, 5, "x" * 32, [0] * 32, object()):
        assert ed25519.verify(junk, msg, sig) is False
        assert ed25519.verify(pub, junk, sig) is False
        assert ed25519.verify(pub, msg, junk) is False
        assert ed25519.verify(pub, msg, sig, table=junk) is True  # not a KeyTable: ignored
        assert ed25519.verify(pub, msg + b"?", sig, table=junk) is False
    # other buffer types are fine
    assert ed25519.verify(bytearray(pub), memoryview(msg), bytearray(sig)) is True
    assert ed25519.verify(memoryview(pub), bytearray(msg), memoryview(sig), table) is True


def test_rejects_non_canonical_encodings():
    # y >= p (19 such values per sign) and x = 0 with the sign bit set
    for y in range(P, 2**255):
        for sign in (0, 1):
            assert ed25519._decode((y | sign << 255).to_bytes(32, "little")) is None
    for y in (1, P - 1):
        assert ed25519._decode((y | 1 << 255).to_bytes(32, "little")) is None
        assert ed25519._decode(y.to_bytes(32, "little")) is not None
    # the identity as public key, with the trivially valid signature (R = identity, S = 0):
    # accepted in its canonical encoding (cofactorless, like OpenSSL), rejected non-canonically
    ident = (1).to_bytes(32, "little")
    sig = ident + bytes(32)
    assert ed25519.verify(ident, b"m", sig) is True and ossl_verify(ident, b"m", sig) is True
    noncanon = (P + 1).to_bytes(32, "little")
    assert ed25519.verify(noncanon, b"m", sig) is False  # OpenSSL accepts this one; RFC 8032 says reject
    assert ed25519.verify(ident, b"m", noncanon + bytes(32)) is False
    with pytest.raises(ValueError):
        ed25519.make_key_table(noncanon)


def test_rejects_points_off_the_curve(good):
    seed, pub, msg, sig, table = good
    off = []
    y = 2
    while len(off) < 10:
        if ed25519._decode(y.to_bytes(32, "little")) is None:
            off.append(y.to_bytes(32, "little"))
        y += 1
    for b in off:
        assert ed25519.verify(b, msg, sig) is False  # as public key
        assert ed25519.verify(pub, msg, b + sig[32:]) is False  # as R
        assert ed25519.verify(pub, msg, b + sig[32:], table) is False
        with pytest.raises(ValueError):
            ed25519.make_key_table(b)


# --- adversarial mixed-order points: cofactorless semantics on both paths ---------------------


def test_torsion_in_r_is_rejected():
    """R' = R + T (T of order 2, 4, 8) with S recomputed by the key holder satisfies the
    cofactored equation but not the cofactorless one: both paths must reject, like OpenSSL."""
    seed = bytes([7]) * 32
    a, prefix = expand(seed)
    pub = ed25519.public_key(seed)
    table = ed25519.KeyTable(ed25519.make_key_table(pub))
    for order in (2, 4, 8):
        t = torsion_point(order)
        for n in range(6):
            msg = b"torsion R %d %d" % (order, n)
            r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % L
            rb = enc(ed25519._padd(smul(r, BASE), t))
            k = int.from_bytes(hashlib.sha512(rb + pub + msg).digest(), "little") % L
            sig = rb + ((r + k * a) % L).to_bytes(32, "little")
            assert is_identity(smul(8, ed25519._padd(smul(int.from_bytes(sig[32:], "little"), BASE), neg(ed25519._padd(dec(rb), smul(k, dec(pub)))))))
            assert reference_verify(pub, msg, sig) is False
            assert ed25519.verify(pub, msg, sig) is False
            assert ed25519.verify(pub, msg, sig, table) is False
            assert ossl_verify(pub, msg, sig) is False


def test_torsion_in_public_key_follows_the_exact_equation():
    """A' = aB + T: a signature (R = rB, S = r + k a) satisfies [S]B = R + [k]A' iff k T = 0.
    Both paths (the half-size-scalar one and the table one) must give exactly that verdict."""
    seed = bytes([9]) * 32
    a, prefix = expand(seed)
    seen = {True: 0, False: 0}
    for order in (2, 4, 8):
        t = torsion_point(order)
        pub = enc(ed25519._padd(smul(a, BASE), t))
        table = ed25519.KeyTable(ed25519.make_key_table(pub))
        for n in range(24):
            msg = b"torsion A %d %d" % (order, n)
            r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % L
            rb = enc(smul(r, BASE))
            k = int.from_bytes(hashlib.sha512(rb + pub + msg).digest(), "little") % L
            sig = rb + ((r + k * a) % L).to_bytes(32, "little")
            want = k % order == 0
            assert reference_verify(pub, msg, sig) is want
            assert ed25519.verify(pub, msg, sig) is want, (order, n)
            assert ed25519.verify(pub, msg, sig, table) is want, (order, n)
            assert ossl_verify(pub, msg, sig) is want
            seen[want] += 1
    assert seen[True] >= 3 and seen[False] >= 3  # both verdicts exercised


def test_small_order_public_key_and_r():
    """A and R both of small order, S = 0: valid iff R = -[k]A (the exact equation)."""
    t8 = torsion_point(8)
    seen = {True: 0, False: 0}
    for j in range(1, 8):
        pub = enc(smul(j, t8))
        for i in range(8):
            rb = enc(smul(i, t8))
            msg = b"small %d %d" % (j, i)
            sig = rb + bytes(32)
            want = reference_verify(pub, msg, sig)
            assert ed25519.verify(pub, msg, sig) is want
            assert ed25519.verify(pub, msg, sig, ed25519.KeyTable(ed25519.make_key_table(pub))) is want
            assert ossl_verify(pub, msg, sig) is want
            seen[want] += 1
    assert seen[True] and seen[False]


# --- key tables and the tool --------------------------------------------------------------------


def test_key_table_format_and_checks(good):
    seed, pub, msg, sig, table = good
    raw = ed25519.make_key_table(pub)
    assert len(raw) == ed25519.KEY_TABLE_SIZE == 12324
    assert raw[:4] == ed25519.KEY_TABLE_MAGIC and raw[4:36] == pub
    assert raw[36:] == ed25519._chunk_table(*ed25519._decode(pub))
    for buf in (raw, bytearray(raw), memoryview(raw)):
        assert ed25519.verify(pub, msg, sig, ed25519.KeyTable(buf)) is True
    with pytest.raises(ValueError):
        ed25519.KeyTable(raw[:-1])
    with pytest.raises(ValueError):
        ed25519.KeyTable(b"XXXX" + raw[4:])
    for off in (4, 36, 36 + 32, 36 + 64):  # key byte, first entry's y+x, y-x, 2dxy
        bad = bytearray(raw)
        bad[off] ^= 1
        with pytest.raises(ValueError):
            ed25519.KeyTable(bytes(bad))
    # a table for another key is ignored (the verdict stays right)
    other = ed25519.KeyTable(ed25519.make_key_table(ed25519.public_key(b"\x01" * 32)))
    assert ed25519.verify(pub, msg, sig, other) is True
    assert ed25519.verify(pub, msg + b"!", sig, other) is False


def test_tables_tool(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import ed25519_tables
    finally:
        sys.path.pop(0)
    keys = [ed25519.public_key(bytes([i]) * 32) for i in range(3)]
    paths = ed25519_tables.write_key_tables(keys, tmp_path)
    assert [p.name for p in paths] == [k.hex() + ".edt" for k in keys]
    for k, p in zip(keys, paths):
        t = ed25519.KeyTable(p.read_bytes())
        assert t.public == k
    # the CLI: write, check, detect a corrupted entry deep in the table, print the base literal
    tool = str(ROOT / "tools" / "ed25519_tables.py")
    out = subprocess.run([sys.executable, tool, keys[0].hex(), "-o", str(tmp_path / "cli")], capture_output=True, text=True, check=True)
    f = Path(out.stdout.strip())
    assert f.read_bytes() == paths[0].read_bytes()
    assert subprocess.run([sys.executable, tool, "--check", str(f)], capture_output=True).returncode == 0
    bad = bytearray(f.read_bytes())
    bad[-5] ^= 0x40
    f.write_bytes(bytes(bad))
    assert subprocess.run([sys.executable, tool, "--check", str(f)], capture_output=True).returncode == 1
    lit = subprocess.run([sys.executable, tool, "--base"], capture_output=True, text=True, check=True).stdout
    ns: dict = {}
    exec(lit, ns)
    assert ns["_BASE_TABLE"] == ed25519._BASE_TABLE
    assert subprocess.run([sys.executable, tool, "zz"], capture_output=True).returncode != 0


# --- verify cache ---------------------------------------------------------------------------------


def test_verify_cache_positive_only_and_bound_to_signature(good, monkeypatch):
    seed, pub, msg, sig, table = good
    cache = VerifyCache(4)
    mid = hashlib.sha256(msg).digest()[:16]
    assert cache.check(pub, mid, sig) is None
    calls = []
    real = ed25519.verify
    monkeypatch.setattr(ed25519, "verify", lambda *a: calls.append(a) or real(*a))
    assert cache.verify(pub, mid, msg, sig) is True
    assert cache.verify(pub, mid, msg, sig) is True
    assert len(calls) == 1  # the second time came from the cache
    assert cache.check(pub, mid, sig) is True
    # another signature for the same id (e.g. S + L, or garbage) is not covered by the cached verdict
    other = sig[:32] + (int.from_bytes(sig[32:], "little") + L).to_bytes(32, "little")
    assert cache.check(pub, mid, other) is None
    assert cache.verify(pub, mid, msg, other) is False
    assert cache.verify(pub, mid, msg, other) is False
    assert len(calls) == 3  # negative verdicts are not cached
    assert cache.check(pub[:8], mid, sig) is None  # keyed on the key bytes given
    assert len(cache) == 1


def test_verify_cache_ring_eviction():
    cache = VerifyCache(3)
    items = [(b"k%d" % i, b"m%d" % i, b"s%d" % i) for i in range(5)]
    for it in items:
        cache.put(*it)
        cache.put(*it)  # idempotent
    assert len(cache) == 3 and len(cache._buf) == 36
    assert [cache.check(*it) for it in items] == [None, None, True, True, True]
    cache.clear()
    assert len(cache) == 0 and cache.check(*items[4]) is None
    with pytest.raises(ValueError):
        VerifyCache(0)


def test_verify_cache_no_ambiguity_between_fields():
    cache = VerifyCache(8)
    cache.put(b"ab", b"c", b"sig")
    assert cache.check(b"a", b"bc", b"sig") is None
    assert cache.check(b"ab", b"c", b"sig") is True
