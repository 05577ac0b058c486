"""Air frames (SPEC.md section 3): a clear relay header, the encrypted inner message, a group tag.

    0      1      2      3..4   5..6   7..14   15 .. n-9    n-8 .. n-1
    VE     NET    HOP    RLY    DST    NONCE   ciphertext   TAG

Only SHA-256 is used (hashlib.sha256 exists on every MicroPython port and on CPython):
HMAC-SHA-256 (RFC 2104) for the synthetic nonce and the tag, SHA-256 of (key, nonce, counter)
as the keystream. An outsider's frame costs one HMAC before it is dropped.
"""

import hashlib

from plexwire import MAX_FRAME, PROTOCOL_VERSION, DecodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


HDR_LEN = const(15)
TAG_LEN = const(8)
NONCE_LEN = const(8)
OVERHEAD = const(23)
MIN_FRAME = const(24)  # at least one byte of inner message
MAX_HOPS = const(15)

_KDF = b"plexus/v1/key\x00"


def _sha(data):
    return hashlib.sha256(data).digest()


class GroupKey:
    """Keys derived from one 32-byte group secret and its 4-bit epoch (SPEC.md section 3.2)."""

    def __init__(self, secret, epoch=0):
        if len(secret) != 32 or not 0 <= epoch <= 15:
            raise ValueError("group secret is 32 bytes, epoch 0..15")
        self.epoch = epoch
        e = bytes([epoch])
        self.k_enc = _sha(_KDF + b"enc" + e + secret)
        k_mac = _sha(_KDF + b"mac" + e + secret)
        k_nonce = _sha(_KDF + b"nonce" + e + secret)
        self.net = _sha(_KDF + b"net" + e + secret)[0]
        self._mac = (bytes(b ^ 0x36 for b in k_mac + bytes(32)), bytes(b ^ 0x5C for b in k_mac + bytes(32)))
        self._nonce = (bytes(b ^ 0x36 for b in k_nonce + bytes(32)), bytes(b ^ 0x5C for b in k_nonce + bytes(32)))

    @staticmethod
    def _hmac(pads, *parts):
        h = hashlib.sha256(pads[0])
        for p in parts:
            h.update(p)
        return hashlib.sha256(pads[1] + h.digest()).digest()

    def tag(self, frame):
        """8-byte tag over VE, NET, NONCE and ciphertext: the mutable HOP, RLY and DST bytes are excluded."""
        mv = memoryview(frame)
        return self._hmac(self._mac, mv[0:2], mv[7 : len(frame) - TAG_LEN])[:TAG_LEN]

    def nonce_for(self, inner):
        return self._hmac(self._nonce, inner)[:NONCE_LEN]

    def _xor(self, nonce, data):
        n = len(data)
        ks = bytearray()
        ctr = 0
        while len(ks) < n:
            ks.extend(_sha(self.k_enc + nonce + bytes([ctr])))
            ctr += 1
        x = int.from_bytes(data, "big") ^ int.from_bytes(ks[:n], "big")
        return x.to_bytes(n, "big")

    def seal(self, inner, hop_limit, rly=0, dst=0, hops=0):
        """Encrypt and authenticate an inner message into an air frame."""
        n = len(inner)
        if not 0 < n <= MAX_FRAME - OVERHEAD:
            raise ValueError("inner message must be 1..232 bytes")
        if not 0 <= hop_limit <= MAX_HOPS or not 0 <= hops <= MAX_HOPS:
            raise ValueError("hop fields are 0..15")
        nonce = self.nonce_for(inner)
        f = bytearray(n + OVERHEAD)
        f[0] = (PROTOCOL_VERSION << 4) | self.epoch
        f[1] = self.net
        f[2] = (hop_limit << 4) | hops
        f[3:5] = rly.to_bytes(2, "big")
        f[5:7] = dst.to_bytes(2, "big")
        f[7:15] = nonce
        f[15 : 15 + n] = self._xor(nonce, inner)
        f[15 + n :] = self.tag(f)
        return bytes(f)

    def check(self, frame):
        """True when the frame carries this key's tag (call parse_header first)."""
        return self.tag(frame) == bytes(frame[len(frame) - TAG_LEN :])

    def open(self, frame):
        """Authenticate, then decrypt; returns the inner message bytes. Raises DecodeError."""
        if frame[1] != self.net or frame[0] & 0x0F != self.epoch:
            raise DecodeError("not this group key")
        if not self.check(frame):
            raise DecodeError("bad tag")
        return self._xor(bytes(frame[7:15]), bytes(frame[HDR_LEN : len(frame) - TAG_LEN]))


class Header:
    """The clear relay header of a frame."""

    def __init__(self, epoch, net, hop_limit, hops, rly, dst):
        self.epoch = epoch
        self.net = net
        self.hop_limit = hop_limit
        self.hops = hops
        self.rly = rly
        self.dst = dst

    def __repr__(self):
        return "Header(epoch=%d, net=%d, hop_limit=%d, hops=%d, rly=%d, dst=%d)" % (
            self.epoch,
            self.net,
            self.hop_limit,
            self.hops,
            self.rly,
            self.dst,
        )


def parse_header(frame):
    n = len(frame)
    if n < MIN_FRAME or n > MAX_FRAME:
        raise DecodeError("bad frame length")
    if frame[0] >> 4 != PROTOCOL_VERSION:
        raise DecodeError("unknown version")
    return Header(
        frame[0] & 0x0F,
        frame[1],
        frame[2] >> 4,
        frame[2] & 0x0F,
        (frame[3] << 8) | frame[4],
        (frame[5] << 8) | frame[6],
    )


def relay_copy(frame, hop_limit, hops, rly, dst=0):
    """The same frame with new mutable header fields (the tag stays valid)."""
    if not 0 <= hop_limit <= MAX_HOPS or not 0 <= hops <= MAX_HOPS:
        raise ValueError("hop fields are 0..15")
    f = bytearray(frame)
    f[2] = (hop_limit << 4) | hops
    f[3:5] = rly.to_bytes(2, "big")
    f[5:7] = dst.to_bytes(2, "big")
    return bytes(f)


def frame_tag(frame):
    """The tag bytes: a cheap fingerprint for spotting a repeated frame before any work."""
    return bytes(frame[len(frame) - TAG_LEN :])
