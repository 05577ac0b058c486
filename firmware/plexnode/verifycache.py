# Verified-signature cache: a node never verifies the same (key, message id, signature) twice.
#
# A signature verification costs the node about a second; the same message arrives again and again
# (relays, sync, digests). Only positive verdicts are cached, and the entry is a 12-byte truncated
# SHA-256 of (key || message id || signature) with length prefixes, so a different signature
# (or key) for the same message id never rides on a cached verdict: it is simply not found and is
# verified afresh. (12 bytes = 96 bits: a forged entry would need a SHA-256 second preimage on 96
# bits; accidental collisions among a few thousand entries are ~2^-72.)
#
# Storage is one preallocated bytearray used as a ring (oldest entries are overwritten):
# capacity * 12 bytes, e.g. 512 entries = 6 KB, no per-entry objects. Lookup is a C-level
# bytearray.find over the filled part (aligned hits only).

import hashlib

ENTRY = 12


def _digest(key, msg_id, signature):
    h = hashlib.sha256(bytes((len(key) & 0xFF, len(msg_id) & 0xFF)))
    h.update(key)
    h.update(msg_id)
    h.update(signature)
    return h.digest()[:ENTRY]


class VerifyCache:
    """Bounded ring of positive verdicts, keyed on H(key || msg_id || signature)[:12]."""

    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._buf = bytearray(capacity * ENTRY)
        self._next = 0  # slot written next
        self._count = 0  # filled slots
        self.hits = 0
        self.misses = 0

    def __len__(self):
        return self._count

    def _find(self, h):
        buf = self._buf
        end = self._count * ENTRY
        i = buf.find(h, 0, end)
        while i >= 0:
            if i % ENTRY == 0:
                return i // ENTRY
            i = buf.find(h, i + 1, end)
        return -1

    def check(self, key, msg_id, signature):
        """True if this exact (key, msg_id, signature) was verified before, else None (unknown:
        verify it). key: the public key or the key id the message names."""
        if self._find(_digest(key, msg_id, signature)) >= 0:
            self.hits += 1
            return True
        self.misses += 1
        return None

    def put(self, key, msg_id, signature):
        """Record a positive verdict (call only after verify() returned True)."""
        h = _digest(key, msg_id, signature)
        if self._find(h) >= 0:
            return
        o = self._next * ENTRY
        self._buf[o:o + ENTRY] = h
        self._next += 1
        if self._next == self.capacity:
            self._next = 0
        if self._count < self.capacity:
            self._count += 1

    def clear(self):
        for i in range(len(self._buf)):
            self._buf[i] = 0
        self._next = 0
        self._count = 0

    def verify(self, public, msg_id, message, signature, table=None):
        """ed25519.verify through the cache: a cached positive verdict or a fresh verification
        (cached if positive). Keyed on the full public key."""
        if self.check(public, msg_id, signature):
            return True
        from plexnode import ed25519

        ok = ed25519.verify(public, message, signature, table)
        if ok:
            self.put(public, msg_id, signature)
        return ok
