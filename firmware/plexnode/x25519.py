# X25519 (RFC 7748) for the node, in the MicroPython subset (also runs on CPython, same results).
#
# API
#   x25519(k, u) -> 32 bytes: the Montgomery ladder of RFC 7748 section 5 (scalar clamped as there)
#   public_u(ed_public) -> 32 bytes: the X25519 public key (u-coordinate) of an Ed25519 public key,
#       u = (1 + y) / (1 - y) mod p (the birational map between edwards25519 and curve25519, RFC 7748
#       section 4.1); raises ValueError for y = 1 (the neutral point) or a y that is not below p
#   secret_scalar(ed_seed) -> 32 bytes: the first half of SHA-512(seed), the Ed25519 secret scalar of
#       RFC 8032 section 5.1.5 (x25519 clamps it exactly as RFC 8032 does), so that
#       x25519(secret_scalar(seed), BASE) == public_u(ed25519.public_key(seed))
#
# One ladder is 255 steps of ~10 multiplications of 255-bit integers plus one inversion (3-argument
# pow, C code). It is not constant time (Python integers are not): Plexus runs one ladder per REKEY,
# at a moment the attacker does not choose (SPEC.md section 8.4).

_P = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED  # 2^255 - 19
_A24 = 121665  # (486662 - 2) / 4, RFC 7748 section 5
_M255 = (1 << 255) - 1

BASE = b"\x09" + bytes(31)


def _scalar(k):
    if len(k) != 32:
        raise ValueError("X25519 scalar is 32 bytes")
    n = int.from_bytes(k, "little")
    n &= ~7
    n &= _M255
    n |= 1 << 254
    return n


def x25519(k, u):
    """RFC 7748 X25519(k, u): 32-byte little-endian scalar and u-coordinate in, 32 bytes out."""
    if len(u) != 32:
        raise ValueError("X25519 u-coordinate is 32 bytes")
    n = _scalar(k)
    p = _P
    x1 = (int.from_bytes(u, "little") & _M255) % p
    x2 = 1
    z2 = 0
    x3 = x1
    z3 = 1
    swap = 0
    t = 254
    while t >= 0:
        bit = (n >> t) & 1
        if swap ^ bit:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = bit
        a = x2 + z2
        aa = a * a % p
        b = x2 - z2
        bb = b * b % p
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % p
        cb = c * b % p
        s = da + cb
        x3 = s * s % p
        s = da - cb
        z3 = x1 * (s * s % p) % p
        x2 = aa * bb % p
        z2 = e * (aa + _A24 * e) % p
        t -= 1
    if swap:
        x2, x3 = x3, x2
        z2, z3 = z3, z2
    r = x2 * pow(z2, p - 2, p) % p
    return r.to_bytes(32, "little")


def public_u(ed_public):
    """X25519 public key of an Ed25519 public key (RFC 7748 s.4.1, RFC 8032 s.5.1.3 encoding)."""
    if len(ed_public) != 32:
        raise ValueError("Ed25519 public key is 32 bytes")
    y = int.from_bytes(ed_public, "little") & _M255
    if y >= _P or y == 1:
        raise ValueError("not a usable Ed25519 public key")
    u = (1 + y) * pow((1 - y) % _P, _P - 2, _P) % _P
    return u.to_bytes(32, "little")


def secret_scalar(ed_seed):
    """The Ed25519 secret scalar of a 32-byte seed (RFC 8032 s.5.1.5 step 1-2, before clamping)."""
    from plexnode.sha512 import sha512

    h = sha512(bytes(ed_seed)).digest()
    return h[:32]


def public_key(k):
    return x25519(k, BASE)
