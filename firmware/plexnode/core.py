"""The Plexus node core: sans-I/O (SPEC.md sections 3-9).

Events in: a frame received (with rssi/snr at time t), a timer, a host-link request.
Actions out: frames to send (`frames_to_send`), events for the display/host (`next_event`).
Clock, randomness, keys, crypto and storage are passed in; nothing here touches hardware,
sockets, asyncio or a wall clock. The device shell, the simulator and the virtual node all
drive this one class.
"""

import json

from plexwire import DecodeError, airtime, frame, hostlink, msg, rekey
from plexwire.group import ROLE_NODE

from plexnode.dutycycle import DutyCycle
from plexnode.governance import Governance
from plexnode.ratelimit import RateLimiter
from plexnode.verifycache import VerifyCache

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


VERSION = "0.1.0"

# duty-cycle priority classes (SPEC.md section 9.3)
P_REAL = const(0)
P_RECEIPT = const(1)
P_NORMAL = const(2)
P_SYNC = const(3)

ROUTER_PLEXUS = "plexus"
ROUTER_MANAGED = "managed"
ROUTER_FLOOD = "flood"

_TAG_RING = const(64)  # recent frame tags, for dropping echoes before any HMAC
_NBR_MAX = const(32)
_NBR_SWAP_DB = const(3)
_BEACON_QUIET_MAX_MS = const(1500000)  # longest silence between a node's beacons: 25 min (neighbours forget at 30)
_NBR_FRESH_MS = const(1800000)  # neighbour entries older than 30 min are ignored
_REPLAY_S = const(172800)  # 48 h: older messages are not re-flooded (sync still carries them)
_SNR_MIN = const(-20)
_SNR_MAX = const(10)
_MAX_PENDING = const(48)
_REASM_MAX = const(4)
_RECEIPT_TRIES = const(8)
# relayed by every node, never pruned: alerts (rare, and every node must get them; it also gives each node
# parent candidates for its receipt) and flooded receipts (only the naive benchmark baseline floods them)
_UNPRUNED = (msg.ALERT, msg.RECEIPT)  # unicast tries toward the caller (through alternate parents) before giving up
_REASM_TIMEOUT_MS = const(600000)
_REKEY_GRACE_S = const(259200)  # 72 h: the previous epoch's key is kept this long after a rekey (SPEC.md s.8.4)


def _now_s(node, now_ms):
    if not node.clock_base:
        return 0
    return node.clock_base + (now_ms - node.clock_ms0) // 1000


class _Tx:
    """A frame waiting for its turn on air."""

    def __init__(self, due, prio, fr, mid, heard, kind, relay):
        self.due = due
        self.prio = prio
        self.frame = fr
        self.mid = mid
        self.heard = heard  # short ids of nodes heard sending this message (first sender, then echoes)
        self.kind = kind
        self.relay = relay  # True: a rebroadcast that suppression may cancel
        self.cancelled = False
        self.sync_to = 0  # a sync copy of message `mid` addressed to this neighbour (0: not one)


class Node:
    def __init__(self, cfg, roster, secret, node_seed, store, rng, crypto, now_ms=0, epoch=0, prev=None):
        self.cfg = cfg
        self.name = cfg.get("name", "node")
        self.roster = roster
        self.group_id = roster.group_id
        self.keys = {epoch: frame.GroupKey(secret, epoch)}
        self.secrets = {epoch: bytes(secret)}
        self.epoch = epoch
        # rekey (SPEC.md s.8.4): the previous epoch's key during the grace window, peers still on it
        self.grace_ms = cfg.get("rekey_grace_s", _REKEY_GRACE_S) * 1000
        self.grace_until = None
        self.rekey_id = None  # id of the REKEY that moved us to the current epoch
        self.grace_end = 0  # Plexus time (s) the grace window ends, 0 while the node has not known the time
        if prev is not None and prev[1] != epoch:
            # (secret, epoch[, rekey id[, grace end]]) of the previous epoch, as key_state() persisted it
            self.keys[prev[1]] = frame.GroupKey(prev[0], prev[1])
            self.secrets[prev[1]] = bytes(prev[0])
            # until the clock is known the window runs from boot; set_time() continues the persisted one
            self.grace_until = now_ms + self.grace_ms
            if len(prev) > 2 and prev[2]:
                self.rekey_id = bytes(prev[2])
            if len(prev) > 3 and prev[3]:
                self.grace_end = int(prev[3])
        self.peer_epoch = {}  # short id -> epoch of the last frame it originated
        self.rekeys_done = []
        self.on_keys = None  # called with this node after the keys change: the device persists key_state()
        self.crypto = crypto
        self.seed = node_seed
        self.pub = crypto.public_key(node_seed)
        self.kid = msg.key_id(self.pub)
        self.node_id = self.kid
        self.short = msg.short_id(self.kid)
        self.store = store
        self.rng = rng
        self.router = cfg.get("router", ROUTER_PLEXUS)
        sf, bw, cr, pre = cfg.get("modem", (11, 250000, 5, 16))
        self.modem = (sf, bw, cr, pre)
        sym = airtime.symbol_time_us(sf, bw)
        self.slot_us = 5 * sym // 2 + 7600  # Meshtastic 2.7 slot: 2.5 symbols + 7.6 ms
        # demodulation SNR floor (SX1276 datasheet table 13: SF7 -7.5 dB ... SF12 -20 dB) + 5 dB margin
        self.snr_good = (-15 - 5 * (sf - 7)) // 2 + 5
        self.cover_margin = cfg.get("cover_margin_db", 5)
        if self.router == ROUTER_MANAGED:
            self.hop_limit = cfg.get("hop_limit", 3)
        else:
            self.hop_limit = cfg.get("hop_limit", 15)
        # counter-based suppression: a pending rebroadcast is dropped once this many copies were heard
        # (0: by density, 2 among six or more usable neighbours, else 3)
        self.suppress_cfg = cfg.get("suppress", 0)
        self.duty = DutyCycle(cfg.get("region", "EU_868"), cfg.get("cap_permille"))
        self.limiter = RateLimiter(32, cfg.get("rate_per_hour", 240), cfg.get("burst", 40))
        self.clock_base = 0
        self.clock_ms0 = now_ms
        if cfg.get("time"):
            self.set_time(cfg["time"], now_ms)
        self.events = []
        self.pending = []
        self.tags = bytearray(_TAG_RING * frame.TAG_LEN)
        self.tag_pos = 0
        self.nbr = {}  # short id -> [last_ms, snr, neighbour short ids (bytes) or None]
        self.drops = {}
        self.counters = {"rx": 0, "tx": 0, "relayed": 0, "cancelled": 0, "accepted": 0, "verified": 0}
        self.airtime_us = 0
        self.verified = VerifyCache(cfg.get("verify_cache", 128))  # positive verdicts, 12 bytes each
        self.alerts = {}  # alert id -> state dict (bounded)
        self.tally = {}  # alert id -> {node kid: [state, hops, via, t_reached, t_confirmed]}
        self.outbox = []  # receipts to carry toward a caller: [inner, rid, alert id, attempts, next_ms, acked, last parent]
        self.rack_due = {}  # child short id -> list of receipt id prefixes to acknowledge
        self.reasm = {}  # long bulletin id -> [header inner, chunks list, deadline]
        self.sync = None
        self.clock_votes = {}
        self.receipt_mode = cfg.get("receipts", "path")  # "path": back along the reverse path; "flood": the naive baseline
        self.beacons_sent = 0
        self.reached_hold_ms = cfg.get("reached_hold_s", 150) * 1000
        self.receipts_seen = []
        self.receipts_taken = []
        self.bundles_seen = []
        self.rack_at = 0
        self.last_tag = None
        self.now_ms_hint = now_ms
        self.last_store_ms = -(10**9)
        beacon_s = cfg.get("beacon_s", 600)
        self.beacon_ms = beacon_s * 1000 if beacon_s else 0
        self.next_beacon = now_ms + self._rand(cfg.get("first_beacon_ms", 30000)) if self.beacon_ms else None
        self.beacon_regular = None  # while a beacon is pulled forward (_beacon_soon): the regular time it replaced
        self.bcover = None  # neighbours that heard a beacon matching our store since (set of short ids)
        self.bcover_key = None  # (stored, fp) those beacons matched
        self.nb_adv = []  # the neighbour list of our last beacon
        self.last_beacon_ms = now_ms
        try:
            from plexnode.sync import Reconciler

            self.sync = Reconciler(self)
        except ImportError:
            self.sync = None
        self.gov = Governance(self)
        self.gov.replay(now_ms)  # governance state is derived from the signed records the store holds
        self.events = []

    # ------------------------------------------------------------------ helpers

    def _rand(self, n):
        if n <= 0:
            return 0
        return self.rng.getrandbits(24) % n

    def _drop(self, reason):
        self.drops[reason] = self.drops.get(reason, 0) + 1
        self.events.append(("drop", {"reason": reason}))

    def set_time(self, plexus_s, now_ms):
        self.clock_base = plexus_s
        self.clock_ms0 = now_ms
        self._grace_clock(now_ms)

    def now_s(self, now_ms):
        return _now_s(self, now_ms)

    def airtime(self, frame_len):
        sf, bw, cr, pre = self.modem
        return airtime.time_on_air_us(frame_len, sf, bw, cr, pre)

    def _gk(self):
        return self.keys[self.epoch]

    def _seen_tag(self, tag):
        t = self.tags
        n = frame.TAG_LEN
        for i in range(_TAG_RING):
            if t[i * n] == tag[0] and t[i * n : i * n + n] == tag:
                return True
        return False

    def _remember_tag(self, tag):
        n = frame.TAG_LEN
        o = self.tag_pos * n
        self.tags[o : o + n] = tag
        self.tag_pos = (self.tag_pos + 1) % _TAG_RING

    def _sign(self, kind, fields, now_ms):
        unsigned = msg.encode_unsigned(kind, fields, self.kid, self.now_s(now_ms))
        sig = self.crypto.sign(self.seed, msg.signing_bytes(self.group_id, unsigned))
        return msg.finish(unsigned, sig)

    def _note_neighbour(self, short, snr, now_ms):
        if not short or short == self.short:
            return
        e = self.nbr.get(short)
        if e is None:
            if len(self.nbr) >= _NBR_MAX:
                # a crowd larger than the table: keep a stable set, the strongest links (the list our beacons
                # advertise and others prune relays on); a stale entry goes first, a fresh one only for a link
                # clearly (_NBR_SWAP_DB) stronger than the weakest
                worst = None
                for k in self.nbr:
                    e = self.nbr[k]
                    if now_ms - e[0] >= _NBR_FRESH_MS:
                        worst = k
                        break
                    if worst is None or e[1] < self.nbr[worst][1]:
                        worst = k
                e = self.nbr[worst]
                if now_ms - e[0] < _NBR_FRESH_MS and snr < e[1] + _NBR_SWAP_DB:
                    return
                del self.nbr[worst]
            self.nbr[short] = [now_ms, snr, None]
        else:
            e[0] = now_ms
            e[1] = (e[1] * 3 + snr) / 4

    def neighbours(self, now_ms):
        """Fresh neighbours (heard in the last 30 min) over links whose smoothed SNR is at least the
        demodulation floor (snr_good is floor + 5 dB, cover_margin_db 5): the set relay pruning must cover,
        and the list a beacon advertises."""
        floor = self.snr_good - self.cover_margin
        return [s for s in self.nbr if now_ms - self.nbr[s][0] < _NBR_FRESH_MS and self.nbr[s][1] >= floor]

    # ------------------------------------------------------------------ sans-I/O API

    def next_event(self):
        if self.events:
            return self.events.pop(0)
        return None

    def get_timer(self):
        t = None
        for p in self.pending:
            if not p.cancelled and (t is None or p.due < t):
                t = p.due
        for o in self.outbox:
            if not o[5] and (t is None or o[4] < t):
                t = o[4]
        if self.rack_due and (t is None or self.rack_at < t):
            t = self.rack_at
        if self.next_beacon is not None and (t is None or self.next_beacon < t):
            t = self.next_beacon
        if self.sync is not None:
            st = self.sync.get_timer()
            if st is not None and (t is None or st < t):
                t = st
        for k in self.reasm:
            d = self.reasm[k][2]
            if t is None or d < t:
                t = d
        if self.grace_until is not None and (t is None or self.grace_until < t):
            t = self.grace_until
        return t

    def handle_timer(self, now_ms):
        if self.next_beacon is not None and now_ms >= self.next_beacon and self.beacons_sent >= 2 and self._beacon_covered(now_ms):
            # every neighbour already heard a beacon describing our store, and our list is the one they hold:
            # ours would tell nobody anything (SPEC.md s.9.5); a pulled-forward one falls back to the regular time
            self.counters["beacon_suppressed"] = self.counters.get("beacon_suppressed", 0) + 1
            self.bcover = None  # a new interval: what covers us must be heard again (Trickle's counter reset)
            if self.beacon_regular is not None:
                self.next_beacon = self.beacon_regular
                self.beacon_regular = None
            else:
                self.next_beacon = now_ms + self.beacon_ms - self.beacon_ms // 10 + self._rand(self.beacon_ms // 5)
        if self.next_beacon is not None and now_ms >= self.next_beacon:
            self.beacon_regular = None
            self.bcover = None
            self.last_beacon_ms = now_ms
            self.beacons_sent += 1
            if self.beacons_sent == 1:
                # the first beacon goes out before we have heard anyone: advertise again once we know our neighbours
                self.next_beacon = now_ms + 20000 + self._rand(20000)
            else:
                self.next_beacon = now_ms + self.beacon_ms - self.beacon_ms // 10 + self._rand(self.beacon_ms // 5)
            self._send_beacon(now_ms)
        self._flush_receipts(now_ms)
        if self.sync is not None:
            self.sync.handle_timer(now_ms)
        for k in list(self.reasm):
            if self.reasm[k][2] <= now_ms:
                del self.reasm[k]
                self._drop("reassembly_timeout")
        if self.grace_until is not None and now_ms >= self.grace_until:
            self._end_grace()

    def frames_to_send(self, now_ms):
        """At most one frame whose time has come and whose airtime fits the duty-cycle budget."""
        self.handle_timer(now_ms)
        best = None
        keep = []
        for p in self.pending:
            if p.cancelled:
                continue
            keep.append(p)
            if p.due <= now_ms and (best is None or (p.prio, p.due) < (best.prio, best.due)):
                best = p
        self.pending = keep
        if best is None:
            return []
        if best.relay and self.router == ROUTER_PLEXUS and best.kind not in _UNPRUNED and self._covered(best, now_ms):
            best.cancelled = True
            self.counters["cancelled"] += 1
            self.pending.remove(best)
            return self.frames_to_send(now_ms)
        air = self.airtime(len(best.frame))
        if not self.duty.can_send(air, now_ms, best.prio):
            w = self.duty.wait_ms(air, now_ms, best.prio)
            if w is None:
                self.pending.remove(best)
                self._drop("duty_cycle")
            else:
                best.due = now_ms + max(w, 1)
            return []
        self.pending.remove(best)
        if best.relay and best.kind == msg.ALERT:
            st = self.alerts.get(best.mid)
            if st is not None:
                h = frame.parse_header(best.frame)
                best.frame = frame.relay_copy(best.frame, h.hop_limit, self._distance(st), self.short, 0)
        if best.mid is not None and self.router == ROUTER_PLEXUS:
            self._sync_sent(best.mid, now_ms)
        self.duty.record(air, now_ms)
        self.airtime_us += air
        self.counters["tx"] += 1
        if best.relay:
            self.counters["relayed"] += 1
        self._remember_tag(frame.frame_tag(best.frame))
        self.events.append(("tx", {"kind": best.kind, "len": len(best.frame), "airtime_us": air, "relay": best.relay}))
        return [best.frame]

    def _queue(self, fr, prio, kind, mid=None, delay_ms=0, now_ms=0, heard=None, relay=False):
        if len(self.pending) >= _MAX_PENDING:
            # shed the least important queued frame, never a real alert
            worst = None
            for p in self.pending:
                if worst is None or p.prio > worst.prio:
                    worst = p
            if worst.prio < prio:
                self._drop("queue_full")
                return None
            self.pending.remove(worst)
            self._drop("queue_full")
        tx = _Tx(now_ms + delay_ms, prio, fr, mid, heard or [], kind, relay)
        self.pending.append(tx)
        return tx

    # ------------------------------------------------------------------ relay policy

    def _covered(self, tx, now_ms):
        """Self-pruning with two-hop knowledge: every fresh neighbour already heard it from someone.

        Without any two-hop knowledge (no neighbour's beacon heard yet) a node cannot know who is
        beyond it, so it falls back to counter-based suppression: two echoes heard.
        """
        mine = self.neighbours(now_ms)
        if not mine:
            return False
        known = False
        for s in mine:
            if self.nbr[s][2] is not None:
                known = True
                break
        need = self._suppress(now_ms)
        if not known:
            return len(tx.heard) >= need
        covered = set()
        for s in tx.heard:
            covered.add(s)
            e = self.nbr.get(s)
            if e is not None and e[2] is not None:
                nb = e[2]
                for i in range(0, len(nb), 2):
                    covered.add((nb[i] << 8) | nb[i + 1])
        if len(tx.heard) >= need:
            return True
        for s in mine:
            if s not in covered:
                return self._dyn_covered(tx.heard, mine)
        return True

    def _dyn_covered(self, heard, mine):
        """The coverage condition with what we heard: the nodes heard sending it, joined by the neighbours
        that outrank us (advertised degree, then short id) and hang together with them, will reach every
        neighbour of ours; those neighbours forward unless pruned by the same rule, so we need not.
        Works on the advertised lists as they are (bytes), without building sets: little heap on a device."""
        nbr = self.nbr
        for u in mine:
            if nbr[u][2] is None:
                return False
        me_deg = len(mine)
        reached = [h for h in heard if h in nbr and nbr[h][2] is not None]
        if not reached:
            return False
        cand = []
        for u in mine:
            if u in reached:
                continue
            d = len(nbr[u][2]) // 2
            if d > me_deg or (d == me_deg and u > self.short):
                cand.append(u)
        i = 0
        while i < len(reached):
            a = reached[i]
            i += 1
            la = nbr[a][2]
            for b in cand:
                if b not in reached and (_listed(la, b) or _listed(nbr[b][2], a)):
                    reached.append(b)
        for w in mine:
            if w in reached:
                continue
            ok = False
            for u in reached:
                if _listed(nbr[u][2], w):
                    ok = True
                    break
            if not ok:
                return False
        return True

    def _cover_delay(self, sender, snr, frame_len, now_ms):
        """Coverage-ordered contention (after the Scalable Broadcast Algorithm): with the sender's neighbour
        list (its BEACON) a node knows which of its own neighbours the sender already reached. Nothing new:
        no relay at all (-1). Otherwise the more neighbours it alone can add, the sooner it relays, so the
        nodes that matter go first and the others hear them and prune. None: no list (SNR order instead),
        unless our table is full: in a crowd larger than the table an unknown sender is the rule."""
        mine = self.neighbours(now_ms)
        if not mine:
            return None
        e = self.nbr.get(sender)
        if e is None or e[2] is None:
            if len(self.nbr) < _NBR_MAX:
                return None  # no BEACON from the sender yet: SNR order
            # a crowd larger than our neighbour table, sender not in it: no claim to go early
            new = 1
        else:
            nb = e[2]
            new = 0
            for s in mine:
                if s != sender and not _listed(nb, s):
                    new += 1
            if new == 0:
                return -1
        air_ms = self.airtime(frame_len) // 1000
        slot_ms = self.slot_us // 1000 + 1
        # one new neighbour waits four airtimes, four or more one airtime; then up to six more at random, so
        # that most relays hear an earlier one before their turn and can prune
        return 4 * air_ms // min(new, 4) + self._rand(6 * air_ms + 1) + self._rand(9) * slot_ms

    def _suppress(self, now_ms):
        if self.suppress_cfg:
            return self.suppress_cfg
        return 2 if len(self.neighbours(now_ms)) >= 6 else 3

    def _relay_delay(self, snr, frame_len=128):
        slot_ms = self.slot_us // 1000 + 1
        s = int(snr)
        if s < _SNR_MIN:
            s = _SNR_MIN
        if s > _SNR_MAX:
            s = _SNR_MAX
        if self.router == ROUTER_MANAGED:
            # Meshtastic 2.7 client: 2*CWmax*slot + rand(0, 2^CW)*slot, CW linear in SNR over 3..8
            cw = 3 + (s - _SNR_MIN) * 5 // (_SNR_MAX - _SNR_MIN)
            return 2 * 8 * slot_ms + self._rand((1 << cw) + 1) * slot_ms
        if self.router == ROUTER_FLOOD:
            return self._rand(9) * slot_ms
        # plexus: weaker SNR (farther from the sender, so more new ground covered) waits less. The window
        # spans two frame airtimes, so a closer node hears the far relays before it decides and can prune.
        air_ms = self.airtime(frame_len) // 1000
        return (s - _SNR_MIN) * 2 * air_ms // (_SNR_MAX - _SNR_MIN) + self._rand(air_ms // 2 + 1) + self._rand(9) * slot_ms

    def _on_echo(self, tx, rly):
        if rly and rly not in tx.heard:
            tx.heard.append(rly)
        if self.router == ROUTER_MANAGED and tx.relay:
            tx.cancelled = True
            self.counters["cancelled"] += 1
        elif self.router == ROUTER_PLEXUS and tx.relay and tx.kind not in _UNPRUNED and len(tx.heard) >= self._suppress(tx.due):
            tx.cancelled = True
            self.counters["cancelled"] += 1

    def _sync_sent(self, mid, now_ms):
        """We are putting message `mid` on the air (a flood, a relay or a sync copy to one peer): every
        neighbour with a good link hears it, addressed or not, so our other queued sync copies of it to
        those neighbours are redundant (several sessions answered at once, a newcomer's digest met by
        all of us). A neighbour that missed it still differs at its next beacon and syncs again."""
        good = None
        for p in self.pending:
            if p.sync_to and p.mid == mid and not p.cancelled:
                if good is None:
                    good = self.neighbours(now_ms)
                if p.sync_to in good:
                    p.cancelled = True
                    self.counters["sync_suppressed"] = self.counters.get("sync_suppressed", 0) + 1

    def _sync_heard(self, mid, hdr):
        """We heard message `mid` sent by hdr.rly (to hdr.dst, or flooded): the sender has it and an
        addressee heard it, so our own queued sync copies of it to either are dropped."""
        for p in self.pending:
            if p.sync_to and p.mid == mid and not p.cancelled and (p.sync_to == hdr.rly or (hdr.dst and p.sync_to == hdr.dst)):
                p.cancelled = True
                self.counters["sync_suppressed"] = self.counters.get("sync_suppressed", 0) + 1

    def _pending_for(self, mid):
        for p in self.pending:
            if p.mid == mid and not p.cancelled:
                return p
        return None

    def _schedule_relay(self, fr, hdr, m, mid, snr, now_ms, hop_limit=0):
        if hop_limit:  # a copy that came through sync (hop limit 0) flooded on with a fresh hop limit
            hdr = frame.Header(hdr.epoch, hdr.net, hop_limit + 1, 0, hdr.rly, 0)
        if hdr.hop_limit == 0 or hdr.dst != 0 or not msg.is_flooded(m.kind):
            return
        t = m.time
        if t and self.clock_base and self.now_s(now_ms) - t > _REPLAY_S:
            self._drop("old_not_relayed")
            return
        out = frame.relay_copy(fr, hdr.hop_limit - 1, min(hdr.hops + 1, 15), self.short, 0)
        prio = self._prio(m)
        delay = None
        if self.router == ROUTER_PLEXUS and m.kind not in _UNPRUNED:
            delay = self._cover_delay(hdr.rly, snr, len(fr), now_ms)
            if delay is not None and delay < 0:
                self.counters["cancelled"] += 1  # the sender's own neighbours already cover all of ours
                return
        if delay is None:
            delay = self._relay_delay(snr, len(fr)) if m.kind != msg.ALERT else self._relay_delay(snr, 0)
        self._queue(out, prio, m.kind, mid, delay, now_ms, [hdr.rly] if hdr.rly else [], True)

    def _prio(self, m):
        if m.kind == msg.ALERT:
            return P_REAL if m.f["flags"] & msg.ALERT_REAL else P_NORMAL
        if m.kind == msg.RECEIPT or m.kind == msg.BUNDLE or m.kind == msg.RACK:
            return P_RECEIPT
        if m.kind >= msg.DIGEST:
            return P_SYNC
        return P_NORMAL

    # ------------------------------------------------------------------ receive path (the validation gate)

    def receive_frame(self, data, rssi, snr, now_ms):
        self.now_ms_hint = now_ms
        self.counters["rx"] += 1
        if len(data) >= frame.MIN_FRAME and data[0] >> 4 != 1:
            self._drop("version")
            return
        try:
            hdr = frame.parse_header(data)
        except DecodeError:
            self._drop("malformed")
            return
        tag = frame.frame_tag(data)
        self._note_neighbour(hdr.rly, snr, now_ms)
        if self._seen_tag(tag):
            # an echo of a frame we accepted or sent: no crypto at all, just count it for suppression
            for p in self.pending:
                if p.relay and frame.frame_tag(p.frame) == tag:
                    self._on_echo(p, hdr.rly)
                elif p.sync_to and (p.sync_to == hdr.rly or p.sync_to == hdr.dst) and frame.frame_tag(p.frame) == tag:
                    # the same message heard sent to (or by) the peer our sync copy is for
                    p.cancelled = True
                    self.counters["sync_suppressed"] = self.counters.get("sync_suppressed", 0) + 1
            for a in self.alerts:
                st = self.alerts[a]
                if st["tag"] == tag:
                    self._candidate(st, hdr.rly, snr, hdr.hops)
            if not hdr.dst or (hdr.dst != self.short and not self._awaiting_ack_from(hdr.rly)):
                self._drop("duplicate")
                return
            # a retry addressed to us (our ack was missed), or our parent forwarding receipts we handed it
            # (an implicit ack): open it to see which ones
        gk = self.keys.get(hdr.epoch)
        if gk is None or gk.net != hdr.net:
            self._drop("foreign")
            return
        if not gk.check(data):
            self._drop("bad_tag")
            return
        self._remember_tag(tag)
        self.last_tag = tag
        if hdr.hops == 0 and hdr.rly and (hdr.dst == 0 or hdr.dst == self.short):
            # the epoch a neighbour itself sends under: sync answers to it use that key (s.8.4). Frames it
            # addresses to someone else are sealed for that one (an old-epoch peer), so they do not count.
            if hdr.rly not in self.peer_epoch and len(self.peer_epoch) >= _NBR_MAX:
                self.peer_epoch.pop(next(iter(self.peer_epoch)))
            self.peer_epoch[hdr.rly] = hdr.epoch
        inner = gk.open(data)
        self.handle_inner(inner, hdr, data, snr, now_ms)

    def handle_inner(self, inner, hdr, fr, snr, now_ms, extra=b"", from_host=False):
        """Validate and act on one inner message. Returns (ok, reason or msg id)."""
        try:
            m = msg.decode(inner)
        except msg.UnknownKind:
            return self._unknown_kind(inner, hdr, fr, snr, now_ms)
        except DecodeError:
            self._drop("malformed")
            return False, "malformed"
        mid = msg.message_id(inner)
        k = m.kind
        if k == msg.BUNDLE:
            flooded = hdr is not None and hdr.dst == 0
            if flooded:
                if mid in self.bundles_seen:
                    p = self._pending_for(mid)
                    if p is not None:
                        self._on_echo(p, hdr.rly)
                    self._drop("duplicate")
                    return False, "duplicate"
                self.bundles_seen.append(mid)
                if len(self.bundles_seen) > 32:
                    self.bundles_seen.pop(0)
            for item in msg.bundle_items(m.f["items"]):
                if item[0] == msg.BUNDLE:
                    self._drop("nested_bundle")  # bundles never nest: bounded work per frame
                    continue
                self.handle_inner(item, hdr, None, snr, now_ms)
            if flooded and fr is not None:
                # receipts that fell back to flooding travel as their own bundle frame (see _flush_outbox)
                self._schedule_relay(fr, hdr, m, mid, snr, now_ms)
            return True, mid
        if k == msg.RACK:
            if hdr is not None and (hdr.dst == self.short or hdr.dst == 0):
                self._on_rack(m.f["ids"], hdr.rly)
            return True, mid
        if k >= msg.DIGEST:
            if self.sync is not None and hdr is not None and (hdr.dst == self.short or hdr.dst == 0):
                self.sync.on_message(m, hdr, now_ms)
            return True, mid
        if k == msg.FRAGMENT:
            return self._on_fragment(m, hdr, fr, snr, now_ms, mid)
        if k == msg.BEACON:
            return self._on_beacon_msg(m, mid, hdr, now_ms)
        if k == msg.RECEIPT and mid in self.receipts_seen:
            if hdr is not None:
                if hdr.dst != self.short:
                    # overheard on its way on (our parent forwarding it): the implicit ack. A child's retry
                    # addressed to us is no ack of our own copy.
                    self._ack_outbox(mid, hdr.rly)
                if hdr.dst == self.short:
                    self._rack_later(hdr.rly, mid)
                    if mid not in self.receipts_taken:
                        # first heard in passing, now handed to us: carry it on
                        self._on_receipt(m, inner, mid, hdr, now_ms)
            self._drop("duplicate")
            return False, "duplicate"
        if self.store.has(mid):
            p = self._pending_for(mid)
            if p is not None and hdr is not None:
                self._on_echo(p, hdr.rly)
            if hdr is not None and hdr.rly:
                self._sync_heard(mid, hdr)
            if k == msg.RECEIPT and hdr is not None:
                self._ack_outbox(mid, hdr.rly)
                if hdr.dst == self.short:
                    self._rack_later(hdr.rly, mid)
            self._drop("duplicate")
            return False, "duplicate"
        # signed: author known, not revoked, not flooding, signature valid
        e = self.roster.get(m.author)
        if e is None:
            self._drop("unknown_author")
            return False, "unknown author"
        if e.revoked:
            self._drop("revoked")
            return False, "revoked key"
        if not self.limiter.allow(m.author, now_ms):  # also for the host link: a spammer's laptop gets no more airtime
            self._drop("rate_limited")
            return False, "rate limited"
        if not self._verify(e.pub, m, mid):
            self._drop("bad_signature")
            return False, "bad signature"
        why = self.gov.check(m, mid)
        if why is not None:
            self._drop(why)
            return False, why.replace("_", " ")
        if msg.has_tail(k) and extra and not msg.check_long_text(m, extra):
            self._drop("bad_text")
            return False, "text does not match its signed digest"
        if k == msg.REKEY and extra:
            why = self._check_rekey_table(extra)
            if why is not None:
                self._drop(why)
                return False, why.replace("_", " ")
        self._accept(m, inner, mid, hdr, fr, snr, now_ms, extra)
        return True, mid

    def _unknown_kind(self, inner, hdr, fr, snr, now_ms):
        """SPEC.md section 11: a newer kind is verified, stored and relayed (signed), or relayed opaque
        (unsigned flooded); never shown. Link-local and reserved kinds are dropped."""
        k = inner[0]
        mid = msg.message_id(inner) if msg.is_signed(k) else None
        if msg.is_signed(k):
            try:
                m = msg.decode_unknown_signed(inner)
            except DecodeError:
                self._drop("malformed")
                return False, "malformed"
            if self.store.has(mid):
                self._drop("duplicate")
                return False, "duplicate"
            e = self.roster.get(m.author)
            if e is None or e.revoked:
                self._drop("unknown_author")
                return False, "unknown author"
            if not self._verify(e.pub, m, mid):
                self._drop("bad_signature")
                return False, "bad signature"
            self.store.add(mid, k, hostlink.pack_record(inner), m.time)
            self.last_store_ms = now_ms
            if fr is not None and hdr is not None:
                self._schedule_relay(fr, hdr, m, mid, snr, now_ms)
            self.counters["unknown_relayed"] = self.counters.get("unknown_relayed", 0) + 1
            return True, mid
        if 0x80 <= k < 0xA0 and fr is not None and hdr is not None and hdr.dst == 0:
            oid = msg.message_id(inner)
            if oid in self.bundles_seen:
                self._drop("duplicate")
                return False, "duplicate"
            self.bundles_seen.append(oid)
            if len(self.bundles_seen) > 32:
                self.bundles_seen.pop(0)
            m = msg.Msg(k, None, 0, {}, None, inner)
            self._schedule_relay(fr, hdr, m, oid, snr, now_ms)
            self.counters["unknown_relayed"] = self.counters.get("unknown_relayed", 0) + 1
            return True, oid
        self._drop("unknown_kind")
        return False, "unknown kind"

    def _verify(self, pub, m, mid):
        # the cache key covers key, id and signature: the id alone excludes the signature, and a copy
        # with a bad signature must not ride on an earlier good verdict
        if self.verified.check(pub, mid, m.sig):
            return True
        ok = self.crypto.verify(pub, msg.signing_bytes(self.group_id, m.signed_part()), m.sig)
        self.counters["verified"] += 1
        if ok:
            self.verified.put(pub, mid, m.sig)
        return ok

    def _accept(self, m, inner, mid, hdr, fr, snr, now_ms, extra):
        k = m.kind
        complete = not msg.has_tail(k) or bool(extra)
        if k == msg.RECEIPT:
            # receipts are acknowledgements, not records: the caller's tally (and the ledger's drill report) keeps them
            self._seen_receipt(mid)
        elif complete:
            self.store.add(mid, k, hostlink.pack_record(inner, extra), m.time)
            self.last_store_ms = now_ms
            self._beacon_soon(now_ms)
        self.counters["accepted"] += 1
        hops = hdr.hops + 1 if hdr is not None else 0  # transmissions it took to reach us
        ev = {"id": mid, "kind": m.name, "origin": m.author, "hops": hops, "t": now_ms}
        if k == msg.BULLETIN or k == msg.ALERT:
            ev["text"] = m.f["text"]
        if complete and k != msg.RECEIPT:
            self.events.append(("message", ev))
        if msg.has_tail(k) and not extra:
            self._start_reassembly(m, inner, mid, now_ms)
        if k == msg.ALERT:
            self._on_alert(m, mid, hdr, now_ms, snr)
        elif k == msg.RECEIPT:
            self._on_receipt(m, inner, mid, hdr, now_ms)
        if fr is not None and hdr is not None:
            if k == msg.RECEIPT and hdr.dst:
                pass
            elif hdr.dst == self.short and hdr.hop_limit == 0 and msg.is_flooded(k) and k != msg.RECEIPT:
                # new to us through anti-entropy: flood it onward if it is still fresh (couriers, healed partitions)
                age = self.now_s(now_ms) - m.time if (m.time and self.clock_base) else None
                r = self.reasm.get(mid) if msg.has_tail(k) and not extra else None
                if age is not None and age > _REPLAY_S:
                    pass
                elif r is not None:
                    # header without its fragments: flood the whole thing once it is complete (flooding the
                    # header now would make this radio deaf to the fragments that follow it)
                    r[3] = True
                elif self.router == ROUTER_PLEXUS and age is not None and age < self.cfg.get("refl_age_s", 600):
                    # signed minutes ago: it was just flooded around us and we alone missed it. The sync copy
                    # was a broadcast the peer's neighbours heard too; relay it on (pruned as a relay) only
                    # for neighbours of ours the peer does not reach
                    self._schedule_relay(fr, hdr, m, mid, snr, now_ms, self.hop_limit)
                else:
                    self._originate(inner, m, mid, now_ms)
            else:
                self._schedule_relay(fr, hdr, m, mid, snr, now_ms)
        elif hdr is None:
            # our own (host or local) message: originate it
            self._originate(inner, m, mid, now_ms)
            if msg.has_tail(k) and extra:
                self._send_fragments(mid, extra, now_ms, 0)
        if self.sync is not None:
            self.sync.on_stored(mid, now_ms, hdr is not None and hdr.dst != self.short)
        self.gov.on_accept(m, mid, now_ms)
        if k == msg.REKEY and complete:
            self.rekey_ready(mid, now_ms)

    def _originate(self, inner, m, mid, now_ms, dst=0, hop_limit=None):
        hl = self.hop_limit if hop_limit is None else hop_limit
        fr = self._gk().seal(inner, hl, self.short, dst)
        self._queue(fr, self._prio(m), m.kind, mid, self._rand(200), now_ms)

    # ------------------------------------------------------------------ rekey (SPEC.md section 8.4)

    def key_for(self, peer):
        """The key to seal a DST-addressed frame with: the epoch that neighbour still sends under, if we
        hold it (grace window), else the current one."""
        if peer:
            e = self.peer_epoch.get(peer)
            if e is not None and e != self.epoch and e in self.keys:
                return self.keys[e]
        return self._gk()

    def old_peer(self, peer):
        return self.key_for(peer) is not self._gk()

    def old_epoch_ok(self, mid, kind, inner):
        """What may be sent under the previous epoch's key to a neighbour still on it: the REKEY that moved
        us and the CONSENTs to it (so it can adopt the rekey), nothing newer."""
        if self.rekey_id is None:
            return False  # unknown after a reboot without it: send nothing stored under the old key
        if mid == self.rekey_id:
            return True
        return kind == msg.CONSENT and bytes(inner[13:29]) == self.rekey_id

    def _check_rekey_table(self, table):
        """None when every recipient is a roster node that is not revoked, else the drop reason."""
        try:
            rekey.check_table(table)
        except DecodeError:
            return "bad_text"
        for kid in rekey.kids(table):
            e = self.roster.get(kid)
            if e is None or e.role != ROLE_NODE:
                return "rekey_unknown_recipient"
            if e.revoked:
                return "rekey_for_revoked"
        return None

    def rekey_ready(self, mid, now_ms):
        """Called when a REKEY is adopted and when its table is complete: switch once both hold."""
        if self.gov.replaying or mid in self.rekeys_done or not self.gov.adopted(mid):
            return
        rec = self.store.get(mid)
        if rec is None:
            return  # the table is still arriving
        inner, table = hostlink.unpack_record(rec[2])
        m = msg.decode(inner)
        self.rekeys_done.append(mid)
        if len(self.rekeys_done) > 8:
            self.rekeys_done.pop(0)
        ev = {"id": mid, "epoch": m.f["epoch"], "switched": False}
        why = self._check_rekey_table(table)
        if why is None and m.f["epoch"] != (self.epoch + 1) % 16:
            why = "rekey_stale"
        entry = rekey.find(table, self.kid) if why is None else None
        if why is None and entry is None:
            why = "rekey_no_entry"
        secret = None
        if why is None:
            from plexnode import x25519

            try:
                me = x25519.public_u(self.pub)
                z = x25519.x25519(x25519.secret_scalar(self.seed), m.f["eph"])
                secret = rekey.unwrap(entry, rekey.wrap_key(self.group_id, m.f["epoch"], m.f["eph"], me, z))
            except ValueError:
                secret = None
            if secret is None:
                why = "rekey_bad_wrap"
        if why is not None:
            self._drop(why)
            ev["reason"] = why
            self.events.append(("rekey", ev))
            return
        old = self.epoch
        new = m.f["epoch"]
        self.keys = {old: self.keys[old], new: frame.GroupKey(secret, new)}
        self.secrets = {old: self.secrets[old], new: secret}
        self.epoch = new
        self.rekey_id = mid
        self.grace_until = now_ms + self.grace_ms
        self.grace_end = self.now_s(now_ms) + self.grace_ms // 1000 if self.clock_base else 0
        ev["switched"] = True
        self.events.append(("rekey", ev))
        if self.on_keys is not None:
            self.on_keys(self)

    def _grace_clock(self, now_ms):
        """The grace window in Plexus time (SPEC.md s.8.4): once the clock is known, continue a persisted window
        (never longer than a whole one from now), or fix and persist the end of one that began without a clock."""
        if self.grace_until is None or not self.clock_base:
            return
        now_s = self.now_s(now_ms)
        if self.grace_end:
            left = self.grace_end - now_s
            if left < 0:
                left = 0
            if left > self.grace_ms // 1000:
                left = self.grace_ms // 1000
            self.grace_until = now_ms + left * 1000
        else:
            left = self.grace_until - now_ms
            self.grace_end = now_s + (left // 1000 if left > 0 else 0)
            if self.on_keys is not None:
                self.on_keys(self)

    def _end_grace(self):
        self.grace_until = None
        self.grace_end = 0
        for e in list(self.keys):
            if e != self.epoch:
                del self.keys[e]
                del self.secrets[e]
        if self.on_keys is not None:
            self.on_keys(self)

    def key_state(self):
        """What the device persists (never sent over the host link): the current secret and epoch, and the
        previous ones while the grace window runs."""
        d = {"secret": _hex(self.secrets[self.epoch]), "epoch": self.epoch}
        if self.rekey_id is not None:
            d["rekey"] = _hex(self.rekey_id)
        for e in self.secrets:
            if e != self.epoch:
                d["prev_secret"] = _hex(self.secrets[e])
                d["prev_epoch"] = e
                if self.grace_end:
                    d["grace_end"] = self.grace_end
        return d

    # ------------------------------------------------------------------ long bulletins

    def _send_fragments(self, bid, text, now_ms, dst, hop_limit=None):
        chunks, _ = msg.split_blob(text)
        hl = self.hop_limit if hop_limit is None else hop_limit
        gk = self.key_for(dst)
        for i in range(len(chunks)):
            inner = msg.fragment(bid, i, chunks[i])
            fr = gk.seal(inner, hl, self.short, dst)
            # to a sync peer the header goes out within 450 ms (sync._send): its fragments strictly after it
            self._queue(fr, P_NORMAL if not dst else P_SYNC, msg.FRAGMENT, msg.message_id(inner), (500 if dst else 300) + 50 * i,
                        now_ms)

    def _start_reassembly(self, m, inner, mid, now_ms):
        if mid in self.reasm:
            return
        if len(self.reasm) >= _REASM_MAX:
            oldest = None
            for k in self.reasm:
                if oldest is None or self.reasm[k][2] < self.reasm[oldest][2]:
                    oldest = k
            del self.reasm[oldest]
            self._drop("reassembly_evicted")
        self.reasm[mid] = [inner, [None] * m.f["nfrag"], now_ms + _REASM_TIMEOUT_MS, False]

    def _on_fragment(self, m, hdr, fr, snr, now_ms, fmid):
        bid = m.f["bulletin"]
        r = self.reasm.get(bid)
        if r is None:
            if self.store.has(bid):
                self._drop("duplicate")
            else:
                self._drop("orphan_fragment")
            return False, "no header"
        i = m.f["index"]
        h = msg.decode(r[0])
        if i >= len(r[1]) or msg.fragment_hash(m.f["data"]) != h.f["frag_hashes"][6 * i : 6 * i + 6]:
            self._drop("bad_fragment")
            return False, "bad fragment"
        if r[1][i] is not None:
            self._drop("duplicate")
            return False, "duplicate"
        r[1][i] = m.f["data"]
        if fr is not None and hdr is not None:
            self._schedule_relay(fr, hdr, m, fmid, snr, now_ms)
        if None not in r[1]:
            text = b"".join(r[1])
            del self.reasm[bid]
            ok = msg.check_long_text(h, text)
            if ok and h.kind == msg.REKEY:
                try:
                    rekey.check_table(text)
                except DecodeError:
                    ok = False
            if ok:
                self.store.add(bid, h.kind, hostlink.pack_record(r[0], text), h.time)
                if r[3]:
                    self._originate(r[0], h, bid, now_ms)
                    self._send_fragments(bid, text, now_ms, 0)
                ev = {"id": bid, "kind": "bulletin" if h.kind == msg.BULLETIN_LONG else h.name, "origin": h.author,
                      "hops": hdr.hops + 1 if hdr else 0, "t": now_ms}
                if h.kind == msg.BULLETIN_LONG:
                    ev["text"] = text.decode("utf-8")
                self.events.append(("message", ev))
                if self.sync is not None:
                    self.sync.on_stored(bid, now_ms)
                if h.kind == msg.REKEY:
                    self.rekey_ready(bid, now_ms)
            else:
                self._drop("bad_text")
        return True, fmid

    # ------------------------------------------------------------------ alerts and receipts (SPEC.md section 9.4)

    def _candidate(self, st, short, snr, hops):
        """Every relayer heard sending the alert is a possible next hop for receipts going back."""
        if not short or short == self.short:
            return
        c = st["cands"].get(short)
        if c is None:
            if len(st["cands"]) >= 8:
                return
            st["cands"][short] = [snr, hops, 0]
        else:
            c[0] = max(c[0], snr)
            c[1] = min(c[1], hops)

    def _link_snr(self, short, snr):
        e = self.nbr.get(short)
        return e[1] if e is not None else snr

    def _link_w(self, short, snr):
        """Link weight for the receipt path: 1 for a link at least 5 dB above the demodulation floor,
        2 within 3 dB of that, 3 for a marginal one (ETX in spirit; the smoothed SNR of all frames heard)."""
        s = self._link_snr(short, snr)
        if s >= self.snr_good:
            return 1
        if s >= self.snr_good - 3:
            return 2
        return 3

    def _distance(self, st):
        """Our weighted distance to the caller: what we advertise in the HOP field when we relay the alert."""
        d = 15
        for short in st["cands"]:
            c = st["cands"][short]
            d = min(d, c[1] + self._link_w(short, c[0]))
        return d

    def _best_parent(self, st):
        """Receipts go back over good links, not over the first (often the weakest) one that delivered the alert.
        Only neighbours whose advertised distance is below ours qualify, so the path cannot loop; among them the
        lowest distance through that link wins, then fewer unacknowledged tries, then the stronger link."""
        best = None
        bkey = None
        mine = self._distance(st)
        for short in st["cands"]:
            snr, hops, fails = st["cands"][short]
            if hops >= mine:
                continue
            key = (hops + self._link_w(short, snr) + 2 * fails, -self._link_snr(short, snr))
            if bkey is None or key < bkey:
                best, bkey = short, key
        return best or 0

    def _on_alert(self, m, aid, hdr, now_ms, snr=0):
        if len(self.alerts) >= 8:
            self.alerts.pop(next(iter(self.alerts)))
        real = bool(m.f["flags"] & msg.ALERT_REAL)
        if hdr is None:
            # we are the caller's node: collect the tally here
            self.alerts[aid] = {"parent": 0, "hops": 0, "t": now_ms, "origin": True, "real": real, "confirmed": False,
                                "cands": {}, "tag": None, "time_s": m.time}
            self.tally[aid] = {}
            if len(self.tally) > 4:
                self.tally.pop(next(iter(self.tally)))
            return
        # true relay count (the HOP field's low nibble carries the weighted distance for receipts, s.9.4),
        # assuming the caller used the group's hop limit
        true_hops = self.hop_limit - hdr.hop_limit + 1 if 0 < self.hop_limit - hdr.hop_limit + 1 <= 15 else hdr.hops + 1
        st = {"parent": hdr.rly, "hops": true_hops, "t": now_ms, "origin": False, "real": real, "confirmed": False,
              "cands": {}, "tag": self.last_tag}
        self._candidate(st, hdr.rly, snr, hdr.hops)
        self.alerts[aid] = st
        ev = {"id": aid, "real": real, "text": m.f["text"], "origin": m.author, "hops": st["hops"], "t": now_ms}
        if real and msg.ALERT in self.gov.gated:
            # without a clock a node cannot check the caller's mandate: the alert still sounds (SPEC.md s.6.3)
            ev["authority"] = "verified" if (m.time and self.clock_base) else "unchecked"
        self.events.append(("alert", ev))
        self._send_receipt(aid, st, msg.RECEIPT_REACHED, now_ms)

    def confirm_alert(self, alert_id, now_ms):
        st = self.alerts.get(bytes(alert_id))
        if st is None:
            return False
        if st["origin"] or st["confirmed"]:
            return True
        st["confirmed"] = True
        self._send_receipt(bytes(alert_id), st, msg.RECEIPT_CONFIRMED, now_ms)
        return True

    def _send_receipt(self, aid, st, state, now_ms):
        delay_s = (now_ms - st["t"]) // 1000
        inner = self._sign(
            msg.RECEIPT, {"alert": aid, "state": state, "hops": st["hops"], "via": st["parent"], "delay": min(delay_s, 65535)}, now_ms
        )
        rid = msg.message_id(inner)
        self._seen_receipt(rid)
        if self.receipt_mode == "flood":
            # the naive scheme, kept as the benchmark baseline: every node floods its own signed receipt
            fr = self._gk().seal(inner, self.hop_limit, self.short, 0)
            self._queue(fr, P_RECEIPT, msg.RECEIPT, rid, self._rand(2000), now_ms)
            return
        if state == msg.RECEIPT_CONFIRMED:
            # a confirmation implies reached: an unsent reached receipt of ours for this alert is dropped
            self.outbox = [o for o in self.outbox if not (o[2] == aid and o[3] == 0 and o[0][1:9] == self.kid)]
        # batch window: wait a moment so receipts heading the same way share a frame
        # spread first sends: every node answers at once otherwise, and hidden terminals collide around the caller.
        # "reached" has no deadline, so it spreads over a minute; a confirmation goes out within seconds.
        # The windows grow with the number of neighbours contending for the same channel.
        air = self.airtime(len(inner) + frame.OVERHEAD) // 1000
        crowd = 2 + len(self.nbr)
        if state == msg.RECEIPT_REACHED:
            # held back first: most people press within the hold, and their confirmation replaces it
            wait = self.reached_hold_ms + 2000 + self._rand(max(58000, 2 * crowd * air))
        else:
            wait = 500 + self._rand(max(4500, crowd * air // 2))
        self.outbox.append([inner, rid, aid, 0, now_ms + wait, False, 0])

    def _on_receipt(self, m, inner, rid, hdr, now_ms):
        aid = m.f["alert"]
        st = self.alerts.get(aid)
        if st is not None and st["origin"]:
            t = self.tally.get(aid)
            if t is not None:
                e = t.get(m.author)
                if e is None:
                    e = [0, m.f["hops"], m.f["via"], None, None]
                    t[m.author] = e
                e[0] = max(e[0], m.f["state"])
                if m.f["state"] == msg.RECEIPT_REACHED:
                    e[3] = now_ms
                else:
                    e[4] = now_ms
                    if e[3] is None:
                        e[3] = now_ms
            # when it happened at the node (its signed clock, s after the call), not only when it arrived here
            at_s = m.time - st["time_s"] if m.time and st.get("time_s") else None
            self.events.append(
                ("receipt", {"alert": aid, "node": m.author, "state": "confirmed" if m.f["state"] == 2 else "reached",
                             "hops": m.f["hops"], "via": m.f["via"], "t": now_ms, "at_s": at_s})
            )
            if hdr is not None and hdr.dst == self.short:
                self._rack_later(hdr.rly, rid)
            self._take(rid)
            return
        if hdr is not None and hdr.dst == self.short and st is not None:
            # carry it one hop further toward the caller; acknowledgement comes from overhearing our parent
            self._take(rid)
            self.outbox.append([inner, rid, aid, 0, now_ms + 500 + self._rand(2500), False, 0])
        elif hdr is not None and hdr.dst == 0 and st is None:
            pass  # a flooded receipt: relayed by the normal flood rules

    def _seen_receipt(self, rid):
        if rid in self.receipts_seen:
            return
        if len(self.receipts_seen) >= 96:
            self.receipts_seen.pop(0)
        self.receipts_seen.append(rid)

    def _take(self, rid):
        if rid not in self.receipts_taken:
            if len(self.receipts_taken) >= 96:
                self.receipts_taken.pop(0)
            self.receipts_taken.append(rid)

    def _awaiting_ack_from(self, short):
        for o in self.outbox:
            if not o[5] and o[3] > 0 and o[6] == short:
                return True
        return False

    def _rack_later(self, child, rid):
        if not child:
            return
        if not self.rack_due:
            self.rack_at = self.now_ms_hint + 1500 + self._rand(1500)
        lst = self.rack_due.get(child)
        if lst is None:
            lst = []
            self.rack_due[child] = lst
        if rid[:8] not in lst:
            lst.append(rid[:8])

    def _on_rack(self, ids, rly):
        for i in range(0, len(ids), 8):
            self._ack_outbox_prefix(ids[i : i + 8], rly)

    def _ack_outbox(self, rid, rly):
        self._ack_outbox_prefix(rid[:8], rly)

    def _ack_outbox_prefix(self, p, rly):
        # only the neighbour we handed the receipt to acknowledges it (by forwarding it, or by RACK): a RACK
        # its other children hear, or a copy a child retries, says nothing about our own copy
        for o in self.outbox:
            if o[1][:8] == p and o[6] and o[6] == rly:
                o[5] = True

    def _flush_receipts(self, now_ms):
        # explicit acknowledgements from the caller's node (it forwards nothing its children could overhear)
        if self.rack_due and now_ms < self.rack_at:
            pass
        else:
            self._send_racks(now_ms)
        self._flush_outbox(now_ms)

    def _send_racks(self, now_ms):
        # one link-local broadcast acknowledges every child at once: the caller's radio is the bottleneck
        ids = []
        for child in self.rack_due:
            for p in self.rack_due[child]:
                if p not in ids:
                    ids.append(p)
        self.rack_due = {}
        for j in range(0, len(ids), 28):
            inner = msg.encode_unsigned(msg.RACK, {"ids": b"".join(ids[j : j + 28])})
            fr = self._gk().seal(inner, 0, self.short, 0)
            self._queue(fr, P_RECEIPT, msg.RACK, None, 0, now_ms)

    def _flush_outbox(self, now_ms):
        """Send due receipts toward the caller, one hop at a time, batched per parent.

        There is no flood fallback: in a dense mesh it turns congestion into a storm. A receipt that
        finds no way back after its tries is given up; its node then shows as silent in the report,
        and the phone chain (the analogue fallback) covers it."""
        keep = []
        for o in self.outbox:
            if o[5]:
                continue
            if o[3] >= _RECEIPT_TRIES:
                self._drop("receipt_undelivered")
                continue
            keep.append(o)
        self.outbox = keep
        due = [o for o in self.outbox if o[4] <= now_ms]
        if not due:
            return
        by_parent = {}
        for o in due:
            st = self.alerts.get(o[2])
            parent = 0
            if st is not None:
                if o[6] and o[6] in st["cands"]:
                    st["cands"][o[6]][2] += 1  # the last try through this neighbour went unacknowledged
                parent = self._best_parent(st)
            if not parent:
                o[5] = True
                self._drop("receipt_no_route")
                continue
            o[6] = parent
            by_parent.setdefault(parent, []).append(o)
        for parent in by_parent:
            group = by_parent[parent]
            i = 0
            while i < len(group):
                batch = [group[i]]
                size = 1 + len(group[i][0])
                j = i + 1
                while j < len(group) and size + 1 + len(group[j][0]) <= msg.MAX_INNER:
                    size += 1 + len(group[j][0])
                    batch.append(group[j])
                    j += 1
                inner = batch[0][0] if len(batch) == 1 else msg.make_bundle([b[0] for b in batch])
                fr = self._gk().seal(inner, 0, self.short, parent)
                self._queue(fr, P_RECEIPT, msg.RECEIPT, batch[0][1], 0, now_ms)
                for b in batch:
                    b[3] += 1
                    # implicit ack window grows with each attempt (exponential backoff with jitter),
                    # scaled by how many neighbours contend for the channel
                    back = (3000 + 300 * len(self.nbr)) << min(b[3], 3)
                    b[4] = now_ms + back + self._rand(back)
                i = j

    def tally_json(self, aid):
        t = self.tally.get(aid, {})
        out = []
        for kid in t:
            e = t[kid]
            ent = self.roster.get(kid)
            out.append({"node": _hex(kid), "name": ent.name if ent else "", "state": "confirmed" if e[0] == 2 else "reached",
                        "hops": e[1], "via": e[2], "t_reached": e[3], "t_confirmed": e[4]})
        return {"alert": _hex(aid), "receipts": out}

    # ------------------------------------------------------------------ beacons

    def _beacon_soon(self, now_ms):
        """Something new arrived: advertise our fingerprint within a couple of minutes instead of ten, so a
        neighbour the flood missed reconciles soon (one extra beacon per burst, not per message)."""
        if self.next_beacon is not None and self.beacons_sent >= 2:
            soon = now_ms + 90000 + self._rand(60000)
            if soon < self.next_beacon:
                if self.beacon_regular is None:
                    self.beacon_regular = self.next_beacon
                self.next_beacon = soon

    def _store_key(self):
        return min(self.store.count, 65535), self.sync.fingerprint_all() if self.sync is not None else bytes(8)

    def _beacon_cover(self, m, hdr):
        """A neighbour's BEACON describes exactly our store: it and every node on its list heard that (SPEC.md
        s.9.5), and one of them that lacks something will sync with it."""
        if not hdr.rly:
            return
        key = self._store_key()
        if m.f["stored"] != key[0] or m.f["fp"] != key[1]:
            return
        if self.bcover is None or self.bcover_key != key:
            self.bcover = set()
            self.bcover_key = key
        c = self.bcover
        t = self.nbr
        if hdr.rly in t:
            c.add(hdr.rly)
        nb = m.f["neighbours"]
        for i in range(0, len(nb) - 1, 2):
            s = (nb[i] << 8) | nb[i + 1]
            if s in t:  # only our own neighbours matter: the set stays within the table's 32
                c.add(s)

    def _beacon_covered(self, now_ms):
        """A beacon is left out when every fresh neighbour is covered (_beacon_cover) for the store we hold now
        and the neighbour list we would advertise is the one we advertised last. A pulled-forward beacon
        then falls back to the regular time; a regular one is skipped only when the next regular one still
        comes within 25 min of our last beacon (neighbours forget a node after 30)."""
        if self.bcover is None or self.bcover_key != self._store_key():
            return False
        if self.beacon_regular is None and now_ms - self.last_beacon_ms + self.beacon_ms * 11 // 10 > _BEACON_QUIET_MAX_MS:
            return False  # the regular one after this could come too late: this one goes out
        c = self.bcover
        adv = self.nb_adv
        nb = self.neighbours(now_ms)[:40]
        if not nb or len(nb) != len(adv):
            return False  # no neighbours: keep beaconing to be found; a changed list: others prune on it
        for s in nb:
            if s not in c or s not in adv:
                return False
        return True

    def _send_beacon(self, now_ms):
        nb = bytearray()
        self.nb_adv = self.neighbours(now_ms)[:40]
        for s in self.nb_adv:
            nb.extend(s.to_bytes(2, "big"))
        stored, fp = self._store_key()  # what neighbours compare with their own (and _beacon_cover with ours)
        inner = self._sign(msg.BEACON, {"stored": stored, "fp": fp, "battery": 255, "neighbours": bytes(nb)}, now_ms)
        fr = self._gk().seal(inner, 0, self.short, 0)
        self._queue(fr, P_SYNC, msg.BEACON, None, 0, now_ms)

    def _on_beacon_msg(self, m, mid, hdr, now_ms):
        """Beacons are link-local and never stored: neighbour lists, the clock, and a sync trigger."""
        e = self.roster.get(m.author)
        if hdr is None or e is None or e.revoked or e.role != ROLE_NODE:
            self._drop("unknown_author")
            return False, "beacon from a non-node key"
        if not self._verify(e.pub, m, mid):
            self._drop("bad_signature")
            return False, "bad signature"
        n = self.nbr.get(hdr.rly)
        if n is not None:
            n[2] = m.f["neighbours"]
        self._beacon_cover(m, hdr)
        if not self.clock_base and m.time:
            # no host-set clock: adopt the median of three distinct nodes' clocks (SPEC.md section 6)
            seen = self.clock_votes
            seen[m.author] = m.time - now_ms // 1000
            if len(seen) >= 3:
                offs = sorted(seen.values())
                self.set_time(offs[len(offs) // 2] + now_ms // 1000, now_ms)
                self.clock_votes = {}
        if self.sync is not None:
            self.sync.on_beacon(m, hdr, now_ms)
        return True, mid

    # ------------------------------------------------------------------ local actions (button, simulator, host)

    def post_bulletin(self, text, now_ms, decision=False):
        b = text.encode("utf-8")
        flags = msg.BULLETIN_DECISION if decision else 0
        if len(b) <= msg.MAX_INNER - msg.SIGNED_HEAD - 1 - msg.SIG_LEN:
            inner = self._sign(msg.BULLETIN, {"flags": flags, "text": text}, now_ms)
            extra = b""
        else:
            _, f = msg.split_text(b)
            f["flags"] = flags
            inner = self._sign(msg.BULLETIN_LONG, f, now_ms)
            extra = b
        ok, r = self.handle_inner(inner, None, None, 0, now_ms, extra, True)
        if not ok:
            raise ValueError(r)
        return r

    def start_drill(self, text, now_ms, real=False):
        inner = self._sign(msg.ALERT, {"flags": msg.ALERT_REAL if real else 0, "text": text}, now_ms)
        ok, r = self.handle_inner(inner, None, None, 0, now_ms, b"", True)
        if not ok:
            raise ValueError(r)
        return r

    def status(self):
        return {
            "name": self.name,
            "key_id": _hex(self.kid),
            "stored": self.store.count,
            "bytes_used": self.store.bytes_used,
            "drops": dict(self.drops),
            "counters": dict(self.counters),
            "airtime_us": self.airtime_us,
            "neighbours": len(self.nbr),
            "neighbour_ids": sorted(self.neighbours(self.now_ms_hint)),
            # every neighbour heard lately, weak links included: the mesh as observed, for drill reports
            "heard_ids": sorted(k for k in self.nbr if self.now_ms_hint - self.nbr[k][0] < _NBR_FRESH_MS),
            "short": self.short,
            "pending": len([p for p in self.pending if not p.cancelled]),
            "router": self.router,
        }

    # ------------------------------------------------------------------ host link (SPEC.md section 7)

    def host_request(self, line, now_ms):
        """One host-link line in; replies come out as ("host", line bytes) events."""
        try:
            op, req, body = hostlink.decode_line(line.rstrip(b"\r\n"))
        except DecodeError:
            self._drop("host_garbage")
            return
        try:
            rop, rbody = self._host_op(op, body, now_ms)
        except (DecodeError, ValueError, KeyError) as e:
            rop, rbody = hostlink.ERROR, json.dumps({"error": str(e) or "bad request"}).encode()
        self.events.append(("host", hostlink.encode(rop, req, rbody)))

    def _host_op(self, op, body, now_ms):
        if op == hostlink.HELLO:
            return op | hostlink.REPLY, json.dumps({
                "name": self.name, "node_key": _hex(self.pub), "key_id": _hex(self.kid), "group_id": _hex(self.group_id),
                "version": VERSION, "protocol": 1, "time": self.now_s(now_ms), "epoch": self.epoch}).encode()
        if op == hostlink.STATUS:
            st = self.status()
            st["time"] = self.now_s(now_ms)
            st["duty_used_permille"] = self.duty.used_us(now_ms) * 1000 // max(self.duty.budget_us, 1)
            return op | hostlink.REPLY, json.dumps(st).encode()
        if op == hostlink.POST:
            inner, extra = hostlink.unpack_record(body)
            ok, r = self.handle_inner(inner, None, None, 0, now_ms, extra, True)
            if not ok:
                raise ValueError(r)
            return op | hostlink.REPLY, json.dumps({"id": _hex(r), "accepted": True}).encode()
        if op == hostlink.SYNC:
            cursor, limit = hostlink.unpack_sync_request(body)
            limit = max(1, min(limit, 64))
            recs = self.store.since(cursor, limit)
            out = []
            size = 5
            nxt = cursor
            for r in recs:
                seq, rbody = r[0], r[4]
                if out and size + 6 + len(rbody) > hostlink.MAX_BODY:
                    break
                out.append((seq, rbody))
                size += 6 + len(rbody)
                nxt = seq
            more = len(out) < len(recs) or len(recs) == limit
            if more and nxt >= self.store.next_seq - 1:
                more = False
            return op | hostlink.REPLY, hostlink.pack_sync_reply(nxt, more, out)
        if op == hostlink.CONFIG:
            req = json.loads(body) if body else {}
            if "time" in req:
                self.set_time(int(req["time"]), now_ms)
            if "name" in req:
                self.name = str(req["name"])[:32]
            return op | hostlink.REPLY, json.dumps({"name": self.name, "time": self.now_s(now_ms), "router": self.router,
                                                    "hop_limit": self.hop_limit}).encode()
        if op == hostlink.CONFIRM:
            if len(body) != 16 or not self.confirm_alert(body, now_ms):
                raise ValueError("no such alert")
            return op | hostlink.REPLY, b'{"ok": true}'
        if op == hostlink.TALLY:
            if len(body) != 16:
                raise ValueError("alert id is 16 bytes")
            return op | hostlink.REPLY, json.dumps(self.tally_json(body)).encode()
        if op == hostlink.FRAME_IN:
            # a frame from a bridge (SPEC s.7.2, s.12): handled as if heard, transmitter unknown (RLY 0), SNR 0 dB
            if not frame.MIN_FRAME <= len(body) <= 255:
                raise ValueError("a frame is 24..255 bytes")
            fr = bytearray(body)
            fr[3] = 0
            fr[4] = 0
            self.receive_frame(bytes(fr), 0, 0, now_ms)
            return op | hostlink.REPLY, b""
        raise ValueError("unknown op")


def _listed(nb, short):
    """Is short id `short` in an advertised neighbour list (2 bytes each, big-endian)?"""
    hi = short >> 8
    lo = short & 255
    for i in range(0, len(nb), 2):
        if nb[i] == hi and nb[i + 1] == lo:
            return True
    return False


def _hex(b):
    import binascii

    return binascii.hexlify(b).decode()
