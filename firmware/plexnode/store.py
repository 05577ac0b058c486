"""Append-only, crash-safe message log with a compact sorted id index.

Runs unchanged on MicroPython (LittleFS on the device, the WebAssembly port's memory FS in
tests) and on CPython.

File layout (all integers little-endian)::

    header  : b"PXST" | version (1) = 1 | reserved (3) = 0 | base_seq (4)          12 bytes
    record  : len (2) | crc32 (4) | seq (4) | kind (1) | ts (4) | id (16) | body
              len = number of bytes after the crc field = 25 + len(body)
              crc = binascii.crc32 over those len bytes (seq .. end of body)

``base_seq`` is the next sequence number at the time the file was (re)written, so sequence
numbers keep increasing even when compaction evicted every record.

Crash safety
  * A record is appended with plain writes and flushed.  On open the file is scanned; every
    complete, CRC-valid record is recovered and the first torn/invalid record ends the log.  If
    anything follows the valid prefix the file is rewritten to exactly that prefix (MicroPython
    file objects have no ``truncate``): written to ``path + ".new"`` and renamed over the log.
  * Compaction (eviction) also writes ``path + ".new"`` completely and then ``os.rename``s it
    over the log (atomic on LittleFS and POSIX).  On open, a leftover ``.new`` next to an
    existing log is a compaction that did not finish: it is discarded and the old log is used.

Capacity
  ``bytes_used`` (the file size, header included) never exceeds ``capacity_bytes``.  When an
  append would exceed it, the oldest records are evicted until the log plus the new record fits
  in 90 % of the capacity (amortised: compaction runs about once per 10 % of capacity written).
  Kinds listed in ``governance_kinds`` are evicted only after every other record is gone.

Index
  A sorted ``bytearray`` of 12-byte entries: id[:8] (big-endian order = byte order) followed by
  the record's file offset (4 bytes, little-endian).  1,000 records take 12,000 bytes (plus up
  to 1/8 growth slack).  Lookups binary-search the prefix and confirm the full 16-byte id by
  reading it from the file; records whose ids share a prefix are kept ordered by full id, so
  iteration order is the full-id order.  No dict, no per-record Python objects.
"""

import binascii
import os
import struct

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


MAGIC = b"PXST"
VERSION = 1
HEADER_SIZE = const(12)
REC_HDR = const(31)  # len 2 + crc 4 + seq 4 + kind 1 + ts 4 + id 16
ID_LEN = const(16)
_ID_OFF = const(15)  # offset of the id inside a record
_ENT = const(12)  # index entry: 8-byte prefix + 4-byte offset
_PFX = const(8)
_CHUNK = const(256)
_MAX_LEN = const(65535)

def _replace(src, dst):
    """Rename src over dst: atomic on LittleFS/POSIX.  FAT refuses to overwrite: then remove dst
    first; a crash in between leaves only the complete src, which _recover() adopts."""
    try:
        os.rename(src, dst)
    except OSError:
        if not _exists(dst):
            raise
        os.remove(dst)
        os.rename(src, dst)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


class Store:
    def __init__(self, path, capacity_bytes, governance_kinds=(), opener=open):
        if capacity_bytes < HEADER_SIZE + REC_HDR:
            raise ValueError("capacity too small")
        self.path = path
        self.capacity_bytes = capacity_bytes
        self._target = capacity_bytes * 9 // 10
        self._open = opener
        self._gov = bytearray(32)
        for k in governance_kinds:
            self._gov[k >> 3] |= 1 << (k & 7)
        self._hdr = bytearray(REC_HDR)
        self._hmv = memoryview(self._hdr)
        self._chunk = bytearray(_CHUNK)
        self._cmv = memoryview(self._chunk)
        self._idx = bytearray(32 * _ENT)
        self._imv = memoryview(self._idx)
        self.count = 0
        self.bytes_used = 0
        self._next_seq = 1
        self._hint_seq = -1  # since() resume hint: seq and offset of a record
        self._hint_off = 0
        self._f = None
        self._recover()

    # ------------------------------------------------------------------ open / recovery

    def _recover(self):
        path = self.path
        new = path + ".new"
        if _exists(new):
            if _exists(path):
                _remove(new)  # unfinished compaction: the old log is intact
            else:
                _replace(new, path)  # only a finished .new can exist without the log
        if not _exists(path):
            self._write_fresh()
        f = self._open(path, "r+b")
        self._f = f
        hdr = f.read(HEADER_SIZE)
        if len(hdr) < HEADER_SIZE or hdr[:4] != MAGIC:
            if len(hdr) < HEADER_SIZE and (len(hdr) == 0 or MAGIC.startswith(hdr[:4])):
                f.close()
                self._write_fresh()  # torn creation
                self._f = f = self._open(path, "r+b")
                hdr = f.read(HEADER_SIZE)
            else:
                f.close()
                self._f = None
                raise ValueError("not a plexnode store file")
        if hdr[4] != VERSION:
            f.close()
            self._f = None
            raise ValueError("unsupported store version")
        base = int.from_bytes(hdr[8:12], "little")
        if base > self._next_seq:
            self._next_seq = base
        off = HEADER_SIZE
        prev = -1
        while True:
            n = self._read_record_header(off)
            if n <= 0:
                break
            if not self._crc_ok(off, n - 6):
                break
            seq = int.from_bytes(self._hdr[6:10], "little")
            if seq <= prev:
                break  # sequence numbers only grow: anything else is not a record of ours
            prev = seq
            self._index_insert(off)
            if seq >= self._next_seq:
                self._next_seq = seq + 1
            off += n
        self.bytes_used = off
        f.seek(0, 2)
        end = f.tell()
        if end != off:
            # Torn tail (or junk after the valid prefix): rewrite the valid prefix atomically.
            self._compact(-1, -1, off)

    def _write_fresh(self):
        new = self.path + ".new"
        g = self._open(new, "wb")
        g.write(self._file_header())
        g.flush()
        g.close()
        _replace(new, self.path)

    def _file_header(self):
        h = bytearray(HEADER_SIZE)
        h[0:4] = MAGIC
        h[4] = VERSION
        struct.pack_into("<I", h, 8, self._next_seq)
        return h

    def _read_record_header(self, off):
        """Read the 31-byte record header at off; return total record size or 0 if invalid."""
        f = self._f
        f.seek(off)
        got = f.readinto(self._hdr)
        if got is None or got < REC_HDR:
            return 0
        ln = self._hdr[0] | (self._hdr[1] << 8)
        if ln < REC_HDR - 6:
            return 0
        return ln + 6

    def _crc_ok(self, off, ln):
        """CRC of the record at off (header already in self._hdr), reading its body in chunks."""
        crc = binascii.crc32(self._hmv[6:REC_HDR])
        left = ln - (REC_HDR - 6)
        f = self._f
        f.seek(off + REC_HDR)
        while left > 0:
            n = _CHUNK if left > _CHUNK else left
            got = f.readinto(self._cmv[0:n])
            if got is None or got < n:
                return False
            crc = binascii.crc32(self._cmv[0:n], crc)
            left -= n
        want = int.from_bytes(self._hdr[2:6], "little")
        return (crc & 0xFFFFFFFF) == want

    # ------------------------------------------------------------------ index

    def _read_id(self, off, buf):
        f = self._f
        f.seek(off + _ID_OFF)
        f.readinto(buf)

    def _entry_off(self, i):
        o = i * _ENT + _PFX
        x = self._idx
        return x[o] | (x[o + 1] << 8) | (x[o + 2] << 16) | (x[o + 3] << 24)

    def _lower_bound(self, pfx):
        """First entry index whose prefix is >= pfx (bytes of length 8)."""
        lo = 0
        hi = self.count
        mv = self._imv
        while lo < hi:
            mid = (lo + hi) >> 1
            o = mid * _ENT
            if bytes(mv[o:o + _PFX]) < pfx:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _prefix_eq(self, i, pfx):
        o = i * _ENT
        return bytes(self._imv[o:o + _PFX]) == pfx

    def _find(self, msg_id):
        """(found, position): position of msg_id, or where it would be inserted."""
        pfx = bytes(msg_id[:_PFX])
        i = self._lower_bound(pfx)
        n = self.count
        buf = self._hmv[_ID_OFF:_ID_OFF + ID_LEN]
        while i < n and self._prefix_eq(i, pfx):
            # Same 8-byte prefix: confirm/compare on the full id read from the file.
            self._read_id(self._entry_off(i), buf)
            full = bytes(buf)
            if full == msg_id:
                return True, i
            if full > msg_id:
                break
            i += 1
        return False, i

    def _index_insert(self, off):
        """Index the record at off; its 16-byte id must be in self._hdr[15:31]."""
        msg_id = bytes(self._hmv[_ID_OFF:_ID_OFF + ID_LEN])
        found, i = self._find(msg_id)
        if found:
            return False  # duplicate id in the file: the first copy wins
        n = self.count
        if (n + 1) * _ENT > len(self._idx):
            self._grow()
        mv = self._imv
        o = i * _ENT
        end = n * _ENT
        if i < n:
            mv[o + _ENT:end + _ENT] = mv[o:end]  # slice move (memmove) to open the slot
        mv[o:o + _PFX] = msg_id[:_PFX]
        struct.pack_into("<I", self._idx, o + _PFX, off)
        self.count = n + 1
        return True

    def _grow(self):
        n = self.count
        extra = n >> 3
        if extra < 32:
            extra = 32
        bigger = bytearray((n + extra) * _ENT)
        memoryview(bigger)[0:n * _ENT] = self._imv[0:n * _ENT]
        self._imv = None
        self._idx = bigger
        self._imv = memoryview(bigger)

    # ------------------------------------------------------------------ public API

    def has(self, msg_id):
        return self._find(msg_id)[0]

    def get(self, msg_id):
        """(kind, ts, body) or None."""
        found, i = self._find(msg_id)
        if not found:
            return None
        off = self._entry_off(i)
        n = self._read_record_header(off)
        h = self._hdr
        kind = h[10]
        ts = int.from_bytes(h[11:15], "little")
        body = self._f.read(n - REC_HDR)
        return kind, ts, body

    def add(self, msg_id, kind, body, ts=0):
        """Append a record; False if msg_id is already stored.  Evicts when over capacity."""
        if len(msg_id) != ID_LEN:
            raise ValueError("msg_id must be 16 bytes")
        if kind < 0 or kind > 255:
            raise ValueError("kind must fit a byte")
        if ts < 0 or ts > 0xFFFFFFFF:
            raise ValueError("ts must fit 32 bits")
        size = REC_HDR + len(body)
        if size - 6 > _MAX_LEN or HEADER_SIZE + size > self.capacity_bytes:
            raise ValueError("record larger than the store")
        msg_id = bytes(msg_id)
        if self._find(msg_id)[0]:
            return False
        if self.bytes_used + size > self.capacity_bytes:
            self._evict(self.bytes_used + size - self._target)
        h = self._hdr
        seq = self._next_seq
        struct.pack_into("<HIIBI", h, 0, size - 6, 0, seq, kind, ts)
        h[_ID_OFF:_ID_OFF + ID_LEN] = msg_id
        crc = binascii.crc32(body, binascii.crc32(self._hmv[6:REC_HDR])) & 0xFFFFFFFF
        struct.pack_into("<I", h, 2, crc)
        off = self.bytes_used
        f = self._f
        f.seek(off)
        f.write(h)
        f.write(body)
        f.flush()
        self._next_seq = seq + 1
        self.bytes_used = off + size
        self._index_insert(off)
        return True

    def prefixes(self, lo=b"", hi=None):
        """Sorted 8-byte id prefixes p with lo <= p < hi (byte strings compared as such; hi=None: no bound).

        Served from the in-heap index alone (no file reads): what anti-entropy fingerprints and offers need.
        """
        i = self._lower_bound(bytes(lo[:_PFX]) + bytes(_PFX - min(len(lo), _PFX)))
        mv = self._imv
        out = []
        n = self.count
        while i < n:
            o = i * _ENT
            p = bytes(mv[o:o + _PFX])
            if hi is not None and p >= hi:
                break
            out.append(p)
            i += 1
        return out

    def ids_sorted(self):
        """Iterator over the stored 16-byte ids in ascending order.

        Reads each id from the file; do not add() while iterating.
        """
        buf = bytearray(ID_LEN)
        for i in range(self.count):
            self._read_id(self._entry_off(i), buf)
            yield bytes(buf)

    def range_ids(self, lo, hi=None):
        """Sorted list of stored ids in [lo, hi); hi=None means no upper bound."""
        lo = bytes(lo)
        i = self._lower_bound(bytes(lo[:_PFX]))
        hi8 = None
        if hi is not None:
            hi = bytes(hi)
            hi8 = hi[:_PFX]
        out = []
        buf = bytearray(ID_LEN)
        mv = self._imv
        n = self.count
        while i < n:
            o = i * _ENT
            if hi8 is not None and bytes(mv[o:o + _PFX]) > hi8:
                break
            self._read_id(self._entry_off(i), buf)
            full = bytes(buf)
            i += 1
            if full < lo:
                continue
            if hi is not None and full >= hi:
                break
            out.append(full)
        return out

    def since(self, cursor, limit=16):
        """Up to `limit` records with seq > cursor, oldest first: [(seq, id, kind, ts, body)].

        Pass the last returned seq as the next cursor; seqs survive compaction and restarts.
        """
        out = []
        if limit <= 0:
            return out
        off = HEADER_SIZE
        if self._hint_seq >= 0 and cursor >= self._hint_seq:
            off = self._hint_off
        end = self.bytes_used
        h = self._hdr
        while off < end and len(out) < limit:
            n = self._read_record_header(off)
            if n <= 0:
                break
            seq = int.from_bytes(h[6:10], "little")
            if seq > cursor:
                body = self._f.read(n - REC_HDR)
                out.append((seq, bytes(h[_ID_OFF:_ID_OFF + ID_LEN]), h[10],
                            int.from_bytes(h[11:15], "little"), body))
                self._hint_seq = seq
                self._hint_off = off
            off += n
        return out

    @property
    def next_seq(self):
        return self._next_seq

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    # ------------------------------------------------------------------ eviction / compaction

    def _is_gov(self, kind):
        return (self._gov[kind >> 3] >> (kind & 7)) & 1

    def _evict(self, need):
        """Free at least `need` bytes: oldest ordinary records first, then oldest governance."""
        freed = 0
        cut_plain = -1
        cut_gov = -1
        end = self.bytes_used
        h = self._hdr
        for gov_pass in (0, 1):
            off = HEADER_SIZE
            while off < end and freed < need:
                n = self._read_record_header(off)
                if n <= 0:
                    break
                if self._is_gov(h[10]) == gov_pass:
                    freed += n
                    seq = int.from_bytes(h[6:10], "little")
                    if gov_pass:
                        cut_gov = seq
                    else:
                        cut_plain = seq
                off += n
            if freed >= need:
                break
        self._compact(cut_plain, cut_gov, end)

    def _compact(self, cut_plain, cut_gov, end):
        """Rewrite the log without evicted records (seq <= cut for their class) up to `end`.

        Writes path.new, renames it over the log, then fixes the index in place.
        """
        h = self._hdr
        # Pass 1: count evicted records so the relocation table can be allocated once.
        n_ev = 0
        off = HEADER_SIZE
        while off < end:
            n = self._read_record_header(off)
            if n <= 0:
                break
            seq = int.from_bytes(h[6:10], "little")
            if seq <= (cut_gov if self._is_gov(h[10]) else cut_plain):
                n_ev += 1
            off += n
        # ev: per evicted record, old offset (4) + bytes removed up to and including it (4).
        ev = bytearray(8 * n_ev)
        new = self.path + ".new"
        g = self._open(new, "wb")
        g.write(self._file_header())
        f = self._f
        off = HEADER_SIZE
        k = 0
        removed = 0
        while off < end:
            n = self._read_record_header(off)
            if n <= 0:
                break
            seq = int.from_bytes(h[6:10], "little")
            if seq <= (cut_gov if self._is_gov(h[10]) else cut_plain):
                removed += n
                struct.pack_into("<II", ev, 8 * k, off, removed)
                k += 1
            else:
                g.write(h)
                left = n - REC_HDR
                f.seek(off + REC_HDR)
                while left > 0:
                    c = _CHUNK if left > _CHUNK else left
                    f.readinto(self._cmv[0:c])
                    g.write(self._cmv[0:c])
                    left -= c
            off += n
        g.flush()
        g.close()
        f.close()
        self._f = None
        _replace(new, self.path)
        self._f = self._open(self.path, "r+b")
        self.bytes_used = end - removed
        self._hint_seq = -1
        if n_ev:
            self._relocate(ev, n_ev)

    def _relocate(self, ev, n_ev):
        """Drop index entries of evicted records and shift the others' offsets."""
        mv = self._imv
        w = 0
        for r in range(self.count):
            off = self._entry_off(r)
            # Last evicted record at or before off.
            lo = 0
            hi = n_ev
            while lo < hi:
                mid = (lo + hi) >> 1
                if int.from_bytes(ev[8 * mid:8 * mid + 4], "little") <= off:
                    lo = mid + 1
                else:
                    hi = mid
            shift = 0
            if lo:
                j = lo - 1
                if int.from_bytes(ev[8 * j:8 * j + 4], "little") == off:
                    continue  # evicted
                shift = int.from_bytes(ev[8 * j + 4:8 * j + 8], "little")
            if w != r:
                mv[w * _ENT:w * _ENT + _PFX] = mv[r * _ENT:r * _ENT + _PFX]
            struct.pack_into("<I", self._idx, w * _ENT + _PFX, off - shift)
            w += 1
        self.count = w
