"""Anti-entropy: range-based set reconciliation between neighbours (SPEC.md section 9.5).

After Meyer, "Range-Based Set Reconciliation" (2023): items are message ids in byte order; a range's
fingerprint is the sum of its ids' first 8 bytes (uint64, big-endian) mod 2^64, low 48 bits on the
air, plus a count. A BEACON carries the whole-set count and fingerprint; a neighbour that differs
starts a session: DIGEST (ranges) -> finer DIGEST or OFFER (the ids of a small range) -> the
missing messages are sent and the lacking ones REQUESTed. Every sync frame is addressed to one
neighbour and never relayed.
"""

from plexwire import hostlink, msg

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_SPLIT = const(8)  # ranges per DIGEST
_OFFER_MAX = const(27)  # 8-byte ids per OFFER: (232 - 9) // 8
_REQ_MAX = const(28)
_SESSION_GAP_MS = const(60000)
_QUIET_MS = const(30000)  # at most one session start per neighbour per minute
_MASK64 = (1 << 64) - 1
_MASK48 = (1 << 48) - 1
_TOP = b"\xff\xff\xff\xff"


def _fp(prefixes):
    s = 0
    for p in prefixes:
        s += int.from_bytes(p, "big")
    return s & _MASK64


def _in(prefixes, lo, hi):
    """Prefixes p with lo <= p[:4] < hi; hi == ffffffff means no upper bound."""
    out = []
    top = hi == _TOP
    for p in prefixes:
        q = p[:4]
        if q >= lo and (top or q < hi):
            out.append(p)
    return out


class Reconciler:
    def __init__(self, node):
        self.node = node
        self.last_start = {}  # peer short id -> ms of the last session we started
        self.wanted = []  # (due_ms, peer) sessions to start
        self._fp_cache = None
        self._fp_key = None
        self.sent = 0
        self._opening = False

    # ---- fingerprints
    def _all(self):
        return self.node.store.prefixes()

    def fingerprint_all(self):
        st = self.node.store
        key = (st.count, st.next_seq)
        if key != self._fp_key:
            self._fp_cache = _fp(self._all()).to_bytes(8, "big")
            self._fp_key = key
        return self._fp_cache

    # ---- node hooks
    def get_timer(self):
        t = None
        for due, _ in self.wanted:
            if t is None or due < t:
                t = due
        return t

    def handle_timer(self, now_ms):
        keep = []
        for due, peer in self.wanted:
            if due > now_ms:
                keep.append((due, peer))
            elif now_ms - self.node.last_store_ms < _QUIET_MS:
                keep.append((self.node.last_store_ms + _QUIET_MS + self.node._rand(2500), peer))
            else:
                self._opening = True
                self._digest(peer, bytes(4), _TOP, self._all(), now_ms)
                self._opening = False
        self.wanted = keep

    def on_stored(self, mid, now_ms, overheard=False):
        """A message came in that no session of ours carried (a flood, or a sync copy overheard on its way
        to another node): an opening DIGEST/OFFER still queued describes a store we no longer have, and
        the peer would answer it with that very message. Drop it and open again once things are quiet."""
        if not overheard:
            return
        for p in self.node.pending:
            if p.sync_to and p.mid is None and not p.cancelled:
                p.cancelled = True
                self.node.counters["sync_suppressed"] = self.node.counters.get("sync_suppressed", 0) + 1
                peer = p.sync_to
                for _, q in self.wanted:
                    if q == peer:
                        peer = 0
                if peer:
                    self.wanted.append((now_ms + 500 + self.node._rand(2500), peer))

    def on_beacon(self, m, hdr, now_ms):
        peer = hdr.rly
        if not peer:
            return
        if m.f["stored"] == min(self.node.store.count, 65535) and m.f["fp"] == self.fingerprint_all():
            return
        last = self.last_start.get(peer)
        if last is not None and now_ms - last < _SESSION_GAP_MS:
            return
        for _, p in self.wanted:
            if p == peer:
                return
        self.last_start[peer] = now_ms
        if len(self.last_start) > 32:
            self.last_start.pop(next(iter(self.last_start)))
        # mid-flood differences are transient: the session starts once the mesh has been quiet a while
        start = max(now_ms, self.node.last_store_ms + _QUIET_MS) + 500 + self.node._rand(2500)
        self.wanted.append((start, peer))

    def on_message(self, m, hdr, now_ms):
        peer = hdr.rly
        if not peer or hdr.dst != self.node.short:
            return
        k = m.kind
        if k == msg.DIGEST:
            self._on_digest(peer, m.f["lo"], m.f["ranges"], now_ms)
        elif k == msg.OFFER:
            self._on_offer(peer, m.f["lo"], m.f["hi"], m.f["ids"], now_ms)
        elif k == msg.REQUEST:
            ids = m.f["ids"]
            for i in range(0, len(ids), 8):
                self._send_stored(peer, ids[i : i + 8], now_ms)

    # ---- protocol
    def _send(self, peer, inner, now_ms, mid=None):
        n = self.node
        fr = n.key_for(peer).seal(inner, 0, n.short, peer)
        tx = n._queue(fr, 3, inner[0], mid, 50 + n._rand(400), now_ms)
        if tx is not None and (mid is not None or self._opening):
            # a copy of a stored message (dropped when the peer hears it otherwise), or a session's opening
            # frame (mid None: dropped when our store changes before it goes out, see on_stored)
            tx.sync_to = peer
        self.sent += 1

    def _digest(self, peer, lo, hi, mine, now_ms):
        items = _in(mine, lo, hi)
        n = len(items)
        if n <= _OFFER_MAX:
            self._offer(peer, lo, hi, items, now_ms)
            return
        ranges = bytearray()
        start = 0
        for r in range(_SPLIT):
            end = n * (r + 1) // _SPLIT
            if r == _SPLIT - 1:
                bound = hi
            else:
                bound = items[end][:4]
                # keep equal 4-byte prefixes together
                while end < n and items[end][:4] == bound and end > start:
                    end += 1
                if end >= n:
                    bound = hi
                    end = n
            chunk = items[start:end]
            ranges.extend(bound)
            ranges.extend(len(chunk).to_bytes(2, "big"))
            ranges.extend((_fp(chunk) & _MASK48).to_bytes(6, "big"))
            start = end
            if bound == hi:
                break
        self._send(peer, msg.encode_unsigned(msg.DIGEST, {"lo": lo, "ranges": bytes(ranges)}), now_ms)

    def _offer(self, peer, lo, hi, items, now_ms):
        self._send(peer, msg.encode_unsigned(msg.OFFER, {"lo": lo, "hi": hi, "ids": b"".join(items[:_OFFER_MAX])}), now_ms)

    def _on_digest(self, peer, lo, ranges, now_ms):
        mine = self._all()
        cur = lo
        for i in range(0, len(ranges), 12):
            hi = ranges[i : i + 4]
            cnt = int.from_bytes(ranges[i + 4 : i + 6], "big")
            fp = int.from_bytes(ranges[i + 6 : i + 12], "big")
            items = _in(mine, cur, hi)
            if len(items) != cnt or (_fp(items) & _MASK48) != fp:
                if len(items) <= _OFFER_MAX or cnt <= _OFFER_MAX:
                    self._offer(peer, cur, hi, items, now_ms)
                else:
                    self._digest(peer, cur, hi, items, now_ms)
            cur = hi
            if hi == _TOP:
                break

    def _on_offer(self, peer, lo, hi, ids, now_ms):
        theirs = [ids[i : i + 8] for i in range(0, len(ids), 8)]
        mine = _in(self._all(), lo, hi)
        ts = set(theirs)
        for p in mine:
            if p not in ts:
                self._send_stored(peer, p, now_ms)
        ms = set(mine)
        lack = [p for p in theirs if p not in ms]
        for j in range(0, len(lack), _REQ_MAX):
            self._send(peer, msg.encode_unsigned(msg.REQUEST, {"ids": b"".join(lack[j : j + _REQ_MAX])}), now_ms)
        if len(theirs) >= _OFFER_MAX and len(mine) >= _OFFER_MAX:
            # the offer was cut at its size limit: continue past its last id
            nxt = theirs[-1][:4]
            if nxt != hi:
                self._digest(peer, nxt, hi, self._all(), now_ms)

    def _send_stored(self, peer, prefix, now_ms):
        st = self.node.store
        nxt = (int.from_bytes(prefix, "big") + 1).to_bytes(8, "big") if prefix != b"\xff" * 8 else None
        for mid in st.range_ids(prefix + bytes(8), (nxt + bytes(8)) if nxt else None):
            rec = st.get(mid)
            if rec is None:
                continue
            inner, extra = hostlink.unpack_record(rec[2])
            if self.node.old_peer(peer) and not self.node.old_epoch_ok(mid, rec[0], inner):
                continue  # it still sends under the previous epoch: only what it needs to rekey (s.8.4)
            self._send(peer, inner, now_ms, mid)
            if extra:
                self.node._send_fragments(mid, extra, now_ms, peer, 0)
