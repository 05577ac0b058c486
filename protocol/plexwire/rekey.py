"""REKEY wrap table (SPEC.md section 8.4): the new group secret, wrapped once per remaining node.

The table is the bytes that follow a REKEY header in its stored record (and travel as FRAGMENTs, like a
long bulletin's text): entries of 56 bytes, sorted by key id, each

    kid:8  ct:32  mac:16
    K   = SHA-256("plexus/v1/wrap\\0" || group_id || u8(epoch) || E || U || Z)
    ct  = S' XOR SHA-256(K || 0x01)
    mac = HMAC-SHA-256(K, kid || ct)[:16]

where E is the REKEY's ephemeral X25519 public key, U the recipient's X25519 public key (derived from its
Ed25519 key) and Z = X25519(e, U) = X25519(a, E) the shared secret (RFC 7748). X25519 itself is not here:
the node uses plexnode.x25519, the laptop `cryptography`. This module only frames and (un)wraps.
"""

import hashlib

from plexwire import DecodeError, msg

WRAP_DOMAIN = b"plexus/v1/wrap\x00"
ENTRY = msg.REKEY_ENTRY
MAX_ENTRIES = msg.MAX_REKEY_FRAGS * msg.FRAG_DATA // msg.REKEY_ENTRY  # 64


def _hmac(key, data):
    k = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
    inner.update(data)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
    outer.update(inner.digest())
    return outer.digest()


def wrap_key(group_id, epoch, eph_pub, recipient_u, shared):
    """K for one recipient; raises ValueError for an all-zero shared secret (RFC 7748 section 6.1)."""
    if shared == bytes(32):
        raise ValueError("all-zero X25519 shared secret")
    h = hashlib.sha256(WRAP_DOMAIN)
    h.update(bytes(group_id))
    h.update(bytes([epoch]))
    h.update(bytes(eph_pub))
    h.update(bytes(recipient_u))
    h.update(bytes(shared))
    return h.digest()


def _pad(k):
    return hashlib.sha256(k + b"\x01").digest()


def wrap(kid, secret, k):
    """One 56-byte table entry."""
    if len(kid) != 8 or len(secret) != 32:
        raise ValueError("key id is 8 bytes, group secret 32")
    p = _pad(k)
    ct = bytes(secret[i] ^ p[i] for i in range(32))
    return bytes(kid) + ct + _hmac(k, bytes(kid) + ct)[:16]


def unwrap(entry, k):
    """The new group secret from this recipient's entry, or None when the MAC does not match."""
    kid = bytes(entry[0:8])
    ct = bytes(entry[8:40])
    if _hmac(k, kid + ct)[:16] != bytes(entry[40:56]):
        return None
    p = _pad(k)
    return bytes(ct[i] ^ p[i] for i in range(32))


def check_table(table):
    """Raise DecodeError unless the table is 1..64 whole entries with strictly ascending key ids."""
    n = len(table)
    if n < ENTRY or n % ENTRY or n // ENTRY > MAX_ENTRIES:
        raise DecodeError("bad rekey table length")
    prev = None
    for off in range(0, n, ENTRY):
        kid = bytes(table[off : off + 8])
        if prev is not None and kid <= prev:
            raise DecodeError("rekey table not sorted by key id")
        prev = kid


def kids(table):
    return [bytes(table[off : off + 8]) for off in range(0, len(table), ENTRY)]


def find(table, kid):
    """This key id's 56-byte entry, or None."""
    kid = bytes(kid)
    for off in range(0, len(table), ENTRY):
        if bytes(table[off : off + 8]) == kid:
            return bytes(table[off : off + ENTRY])
    return None


def header_fields(epoch, eph_pub, table):
    """REKEY body fields for a finished table (sorted entries)."""
    check_table(table)
    _, f = msg.split_blob(table)
    f["epoch"] = epoch
    f["eph"] = bytes(eph_pub)
    return f
