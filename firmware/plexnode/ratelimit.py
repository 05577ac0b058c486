"""Per-origin token buckets in a fixed table, so one flooding member cannot starve the others.

Sans-I/O, integer only, runs unchanged on MicroPython.  Each origin (the first 8 bytes of its key
id) gets a bucket of ``burst`` tokens refilled at ``rate_per_hour``; ``allow()`` spends one token.

The bucket is kept in its GCRA form (the "virtual scheduling" form of a token bucket): one number
per origin, the theoretical arrival time (TAT) of the next conforming message.  To keep the math
exact without fractions every time is scaled by ``rate_per_hour`` (milliseconds * rate), so the
emission interval is exactly 3,600,000 scaled units:

    allow  <=>  now * rate >= TAT - (burst - 1) * 3_600_000
    then        TAT = max(TAT, now * rate) + 3_600_000

Table: ``slots`` entries of 16 bytes (key prefix 8 | TAT 8, little-endian) in ONE preallocated
bytearray.  An unknown origin takes a free slot, else replaces the entry with the smallest TAT:
the least recently active origin, whose bucket is the fullest.  If that bucket was already full
(TAT <= now) nothing is lost by forgetting it: a fresh entry is an identical full bucket.  A
flooding origin keeps its TAT in the future, so it is never the one replaced while quieter
origins exist.
"""

import struct

UNIT = 3600000  # ms per hour: scaled emission interval
KEY_LEN = 8
_ENTRY = 16


class RateLimiter:
    def __init__(self, slots=32, rate_per_hour=120, burst=20):
        if slots < 1:
            raise ValueError("slots must be >= 1")
        if rate_per_hour < 1 or rate_per_hour > UNIT:
            raise ValueError("rate_per_hour out of range")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.slots = slots
        self.rate_per_hour = rate_per_hour
        self.burst = burst
        self._tau = (burst - 1) * UNIT
        self._tab = bytearray(slots * _ENTRY)
        self._mv = memoryview(self._tab)
        self._used = 0  # slots filled so far (they fill in order, never empty again)

    def _slot(self, key):
        """Index of the slot holding key, or -1."""
        tab = self._tab
        mv = self._mv
        k0 = key[0]
        for i in range(self._used):
            o = i * _ENTRY
            if tab[o] == k0 and bytes(mv[o:o + KEY_LEN]) == key:
                return i
        return -1

    def _tat(self, i):
        return struct.unpack_from("<Q", self._tab, i * _ENTRY + KEY_LEN)[0]

    def _victim(self):
        if self._used < self.slots:
            i = self._used
            self._used += 1
            return i
        best = 0
        best_tat = self._tat(0)
        for i in range(1, self.slots):
            t = self._tat(i)
            if t < best_tat:
                best = i
                best_tat = t
        return best

    def _norm_key(self, origin_key_id):
        n = len(origin_key_id)
        if n >= KEY_LEN:
            return bytes(origin_key_id[:KEY_LEN])
        return bytes(origin_key_id) + bytes(KEY_LEN - n)

    def allow(self, origin_key_id, now_ms):
        """Spend one token of this origin's bucket; False (and nothing spent) if it is empty."""
        key = self._norm_key(origin_key_id)
        now = now_ms * self.rate_per_hour
        i = self._slot(key)
        if i < 0:
            i = self._victim()
            o = i * _ENTRY
            self._mv[o:o + KEY_LEN] = key
            tat = 0
        else:
            tat = self._tat(i)
        if now < tat - self._tau:
            return False
        if tat < now:
            tat = now
        struct.pack_into("<Q", self._tab, i * _ENTRY + KEY_LEN, tat + UNIT)
        return True

    def tokens(self, origin_key_id, now_ms):
        """Whole tokens currently available to this origin (burst for an unknown one)."""
        i = self._slot(self._norm_key(origin_key_id))
        if i < 0:
            return self.burst
        now = now_ms * self.rate_per_hour
        tat = self._tat(i)
        if tat <= now:
            return self.burst
        return (now - (tat - self._tau) + UNIT) // UNIT if now >= tat - self._tau else 0

    def retry_ms(self, origin_key_id, now_ms):
        """Milliseconds until allow() would succeed for this origin (0 = now)."""
        i = self._slot(self._norm_key(origin_key_id))
        if i < 0:
            return 0
        need = self._tat(i) - self._tau  # scaled time when the next message conforms
        now = now_ms * self.rate_per_hour
        if now >= need:
            return 0
        r = self.rate_per_hour
        return (need - now + r - 1) // r
