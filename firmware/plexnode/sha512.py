# SHA-512 (FIPS 180-4) in the MicroPython subset: hashlib-style sha512(data).update(...).digest().
#
# MicroPython on the ESP32 ships no SHA-512, and Ed25519 needs it. Every 64-bit word is a
# heap-allocated big integer there, so the cost is the number of Python-level integer
# operations, not their width. The compression function is written to need as few as possible:
#  - rotations use the doubled word: t = x * (2**64 + 1) holds x twice, so rotr(x, n) is the low
#    64 bits of t >> n, and a whole Sigma is three shifts and two xors of t;
#  - bits above 64 are left in place (carries only move upwards) and masked once per new word;
#  - Maj(a, b, c) = ((a ^ b) & (b ^ c)) ^ b, and b ^ c is the previous round's a ^ b;
#  - sixteen rounds are unrolled per loop pass with renamed variables (no tuple shuffling), and
#    the 16-word message schedule window and the round constants live in local variables;
#  - sigma0 of 16 schedule words is computed at once on the words packed in one 1024-bit integer.
# Constants are the FIPS 180-4 section 4.2.3 / 5.3.5 values.

import struct

_M = 0xFFFFFFFFFFFFFFFF
_C = 0x10000000000000001  # 2**64 + 1: x * _C == x | (x << 64) for x < 2**64

_K = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC,
    0x3956C25BF348B538, 0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242, 0x12835B0145706FBE, 0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235, 0xC19BF174CF692694,
    0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5,
    0x983E5152EE66DFAB, 0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2, 0xD5A79147930AA725, 0x06CA6351E003826F, 0x142929670A0E6E70,
    0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED, 0x53380D139D95B3DF,
    0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30,
    0xD192E819D6EF5218, 0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8, 0x1E376C085141AB53, 0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373, 0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B,
    0xCA273ECEEA26619C, 0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA, 0x0A637DC5A2C898A6, 0x113F9804BEF90DAE, 0x1B710B35131C471B,
    0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC, 0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)

_IV = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)

_K16 = tuple(_K[i:i + 16] for i in range(0, 80, 16))


def _lanes(bits):
    # a 1024-bit mask with the given bit positions set in each of the 16 64-bit lanes
    m = 0
    for b in bits:
        m |= 1 << b
    r = 0
    for _ in range(16):
        r = (r << 64) | m
    return r


_HI1 = _lanes([63])
_LO63 = _lanes(range(63))
_HI8 = _lanes(range(56, 64))
_LO56 = _lanes(range(56))
_LO57 = _lanes(range(57))


def _compress(st, buf, off):
    """Process the 128-byte block buf[off:off + 128] into the 8-word state list st."""
    M = _M
    C = _C
    w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15 = struct.unpack_from(">16Q", buf, off)
    a, b, c, d, e, f, g, h = st
    bc = b ^ c
    y = 0
    for j in range(5):
        k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15 = _K16[j]
        # round 0: a b c d e f g h
        u = e * C
        x = h + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (g ^ (e & (f ^ g))) + k0 + w0
        d = d + x & M
        u = a * C
        y = a ^ b
        h = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((y & bc) ^ b) & M
        # round 1: h a b c d e f g
        u = d * C
        x = g + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (f ^ (d & (e ^ f))) + k1 + w1
        c = c + x & M
        u = h * C
        bc = h ^ a
        g = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((bc & y) ^ a) & M
        # round 2: g h a b c d e f
        u = c * C
        x = f + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (e ^ (c & (d ^ e))) + k2 + w2
        b = b + x & M
        u = g * C
        y = g ^ h
        f = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((y & bc) ^ h) & M
        # round 3: f g h a b c d e
        u = b * C
        x = e + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (d ^ (b & (c ^ d))) + k3 + w3
        a = a + x & M
        u = f * C
        bc = f ^ g
        e = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((bc & y) ^ g) & M
        # round 4: e f g h a b c d
        u = a * C
        x = d + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (c ^ (a & (b ^ c))) + k4 + w4
        h = h + x & M
        u = e * C
        y = e ^ f
        d = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((y & bc) ^ f) & M
        # round 5: d e f g h a b c
        u = h * C
        x = c + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (b ^ (h & (a ^ b))) + k5 + w5
        g = g + x & M
        u = d * C
        bc = d ^ e
        c = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((bc & y) ^ e) & M
        # round 6: c d e f g h a b
        u = g * C
        x = b + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (a ^ (g & (h ^ a))) + k6 + w6
        f = f + x & M
        u = c * C
        y = c ^ d
        b = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((y & bc) ^ d) & M
        # round 7: b c d e f g h a
        u = f * C
        x = a + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (h ^ (f & (g ^ h))) + k7 + w7
        e = e + x & M
        u = b * C
        bc = b ^ c
        a = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((bc & y) ^ c) & M
        # round 8: a b c d e f g h
        u = e * C
        x = h + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (g ^ (e & (f ^ g))) + k8 + w8
        d = d + x & M
        u = a * C
        y = a ^ b
        h = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((y & bc) ^ b) & M
        # round 9: h a b c d e f g
        u = d * C
        x = g + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (f ^ (d & (e ^ f))) + k9 + w9
        c = c + x & M
        u = h * C
        bc = h ^ a
        g = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((bc & y) ^ a) & M
        # round 10: g h a b c d e f
        u = c * C
        x = f + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (e ^ (c & (d ^ e))) + k10 + w10
        b = b + x & M
        u = g * C
        y = g ^ h
        f = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((y & bc) ^ h) & M
        # round 11: f g h a b c d e
        u = b * C
        x = e + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (d ^ (b & (c ^ d))) + k11 + w11
        a = a + x & M
        u = f * C
        bc = f ^ g
        e = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((bc & y) ^ g) & M
        # round 12: e f g h a b c d
        u = a * C
        x = d + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (c ^ (a & (b ^ c))) + k12 + w12
        h = h + x & M
        u = e * C
        y = e ^ f
        d = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((y & bc) ^ f) & M
        # round 13: d e f g h a b c
        u = h * C
        x = c + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (b ^ (h & (a ^ b))) + k13 + w13
        g = g + x & M
        u = d * C
        bc = d ^ e
        c = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((bc & y) ^ e) & M
        # round 14: c d e f g h a b
        u = g * C
        x = b + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (a ^ (g & (h ^ a))) + k14 + w14
        f = f + x & M
        u = c * C
        y = c ^ d
        b = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((y & bc) ^ d) & M
        # round 15: b c d e f g h a
        u = f * C
        x = a + ((u >> 14) ^ (u >> 18) ^ (u >> 41)) + (h ^ (f & (g ^ h))) + k15 + w15
        e = e + x & M
        u = b * C
        bc = b ^ c
        a = x + ((u >> 28) ^ (u >> 34) ^ (u >> 39)) + ((bc & y) ^ c) & M
        if j == 4:
            break
        # message schedule, the next 16 words in place. sigma0 of w0..w15 at once: the 16 words packed
        # in one 1024-bit integer, rotated lane-wise with masks (bitwise only, so lanes do not mix)
        x = int.from_bytes(struct.pack(">16Q", w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15), "big")
        x = ((x >> 1) & _LO63 | (x << 63) & _HI1) ^ ((x >> 8) & _LO56 | (x << 56) & _HI8) ^ ((x >> 7) & _LO57)
        s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15 = struct.unpack(">16Q", x.to_bytes(128, "big"))
        v = w14 * C
        w0 = ((v >> 19) ^ (v >> 61) ^ (w14 >> 6)) + w9 + s1 + w0 & M
        v = w15 * C
        w1 = ((v >> 19) ^ (v >> 61) ^ (w15 >> 6)) + w10 + s2 + w1 & M
        v = w0 * C
        w2 = ((v >> 19) ^ (v >> 61) ^ (w0 >> 6)) + w11 + s3 + w2 & M
        v = w1 * C
        w3 = ((v >> 19) ^ (v >> 61) ^ (w1 >> 6)) + w12 + s4 + w3 & M
        v = w2 * C
        w4 = ((v >> 19) ^ (v >> 61) ^ (w2 >> 6)) + w13 + s5 + w4 & M
        v = w3 * C
        w5 = ((v >> 19) ^ (v >> 61) ^ (w3 >> 6)) + w14 + s6 + w5 & M
        v = w4 * C
        w6 = ((v >> 19) ^ (v >> 61) ^ (w4 >> 6)) + w15 + s7 + w6 & M
        v = w5 * C
        w7 = ((v >> 19) ^ (v >> 61) ^ (w5 >> 6)) + w0 + s8 + w7 & M
        v = w6 * C
        w8 = ((v >> 19) ^ (v >> 61) ^ (w6 >> 6)) + w1 + s9 + w8 & M
        v = w7 * C
        w9 = ((v >> 19) ^ (v >> 61) ^ (w7 >> 6)) + w2 + s10 + w9 & M
        v = w8 * C
        w10 = ((v >> 19) ^ (v >> 61) ^ (w8 >> 6)) + w3 + s11 + w10 & M
        v = w9 * C
        w11 = ((v >> 19) ^ (v >> 61) ^ (w9 >> 6)) + w4 + s12 + w11 & M
        v = w10 * C
        w12 = ((v >> 19) ^ (v >> 61) ^ (w10 >> 6)) + w5 + s13 + w12 & M
        v = w11 * C
        w13 = ((v >> 19) ^ (v >> 61) ^ (w11 >> 6)) + w6 + s14 + w13 & M
        v = w12 * C
        w14 = ((v >> 19) ^ (v >> 61) ^ (w12 >> 6)) + w7 + s15 + w14 & M
        v = w13 * C
        u = w0 * C
        w15 = ((v >> 19) ^ (v >> 61) ^ (w13 >> 6)) + w8 + ((u >> 1) ^ (u >> 8) ^ (w0 >> 7)) + w15 & M
    st[0] = st[0] + a & M
    st[1] = st[1] + b & M
    st[2] = st[2] + c & M
    st[3] = st[3] + d & M
    st[4] = st[4] + e & M
    st[5] = st[5] + f & M
    st[6] = st[6] + g & M
    st[7] = st[7] + h & M


class sha512:
    """hashlib-compatible subset: sha512(data=b''), update(data), digest(), hexdigest(), copy()."""

    digest_size = 64
    block_size = 128
    name = "sha512"

    def __init__(self, data=b""):
        self._h = list(_IV)
        self._buf = bytearray(128)
        self._n = 0  # bytes waiting in _buf
        self._len = 0  # total bytes hashed
        if data:
            self.update(data)

    def update(self, data):
        mv = memoryview(data)
        n = len(mv)
        self._len += n
        pos = 0
        fill = self._n
        if fill:
            take = 128 - fill
            if take > n:
                take = n
            self._buf[fill:fill + take] = mv[0:take]
            fill += take
            pos = take
            if fill < 128:
                self._n = fill
                return
            _compress(self._h, self._buf, 0)
            fill = 0
        st = self._h
        while n - pos >= 128:
            _compress(st, mv, pos)
            pos += 128
        rest = n - pos
        if rest:
            self._buf[0:rest] = mv[pos:n]
        self._n = rest

    def _final(self):
        st = list(self._h)
        buf = bytearray(256)
        n = self._n
        buf[0:n] = self._buf[0:n]
        buf[n] = 0x80
        end = 128 if n < 112 else 256
        bits = self._len * 8
        struct.pack_into(">QQ", buf, end - 16, bits >> 64, bits & _M)
        _compress(st, buf, 0)
        if end == 256:
            _compress(st, buf, 128)
        return st

    def digest(self):
        return struct.pack(">8Q", *self._final())

    def hexdigest(self):
        d = self.digest()
        return "".join("%02x" % x for x in d)

    def copy(self):
        o = sha512()
        o._h = list(self._h)
        o._buf[:] = self._buf
        o._n = self._n
        o._len = self._len
        return o


def digest(data):
    """One-shot SHA-512 of a bytes-like object."""
    return sha512(data).digest()
