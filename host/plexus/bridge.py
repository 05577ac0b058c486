"""Meshtastic bridge: Plexus air frames carried as Meshtastic data packets (SPEC.md section 12).

A laptop holds a Meshtastic radio (USB serial or TCP, through the `meshtastic` Python library) and the group
config. Frames go out as broadcast packets on port ``PRIVATE_APP`` (256) of a private channel; a frame longer
than 232 bytes is cut in two parts. Packets heard on that port and channel are reassembled, checked (group tag,
strict decoding), signed records are verified and stored in the ledger, and, in gateway mode, every good frame
is injected into a Plexus node over the host link (FRAME_IN). Records new in the ledger (from `plexus ledger
sync`, or from the gateway node by SYNC polling) are sealed into frames and sent the other way.

The pieces, each usable alone: `split_frame` / `Reassembler` (the part format), `Throttle` (Meshtastic's own
channel-utilisation thresholds), `check_channel` / `new_channel` (a private channel, never the public default),
`MeshtasticBridge` (the loop: receive queue, send queue, heartbeats, reconnect).
"""

from __future__ import annotations

import base64
import collections
import os
import queue
import time
from typing import Any, Callable

from plexwire import MAX_FRAME, DecodeError, hostlink, msg
from plexwire import frame as pframe

# ---- constants (SPEC.md section 12)

PORTNUM = 256  # meshtastic PortNum.PRIVATE_APP
MAX_PAYLOAD = 233  # meshtastic Constants.DATA_PAYLOAD_LEN
PART_DATA = MAX_PAYLOAD - 1  # 232 frame bytes per packet after the 1-byte part header
TAIL_MAX = MAX_FRAME - PART_DATA  # 23: the tail of a split frame; shorter than any frame (24)
MAX_MT_HOPS = 7  # meshtastic LoRaConfig.hop_limit is 0..7
POLITE_UTIL = 25.0  # firmware airtime.h polite_channel_util_percent
MAX_UTIL = 40.0  # firmware airtime.h max_channel_util_percent
API_IDLE_S = 15 * 60  # firmware: the API connection closes after 15 minutes without a packet from the client
PLEXUS_HOP_LIMIT = 15

_DEFAULT_KEY = base64.b64decode("1PG7OiApB1nwvP+rz05pAQ==")  # meshtastic's published default channel key


class BridgeError(ValueError):
    """A bridge problem the user can fix (no radio, public channel, bad option)."""


# ---- parts


def split_frame(frame: bytes, seq: int) -> list[bytes]:
    """One air frame as 1 or 2 Meshtastic payloads: header ``seq << 1 | more`` then at most 232 frame bytes."""
    n = len(frame)
    if not pframe.MIN_FRAME <= n <= MAX_FRAME:
        raise ValueError("an air frame is 24..255 bytes")
    h = (seq & 0x7F) << 1
    if n <= PART_DATA:
        return [bytes([h]) + bytes(frame)]
    return [bytes([h | 1]) + bytes(frame[:PART_DATA]), bytes([h]) + bytes(frame[PART_DATA:])]


class Reassembler:
    """Joins the two parts of a split frame, in either order, per (sender, seq); bounded in count and time."""

    def __init__(self, timeout_s: float = 60.0, max_pending: int = 64):
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.pending: collections.OrderedDict = collections.OrderedDict()  # (sender, seq) -> [head, tail, t]
        self.counts = {"parts": 0, "frames": 0, "junk": 0, "expired": 0, "evicted": 0, "dup_parts": 0}

    def _expire(self, now: float) -> None:
        while self.pending:
            key, ent = next(iter(self.pending.items()))
            if now - ent[2] < self.timeout_s:
                break
            del self.pending[key]
            self.counts["expired"] += 1

    def feed(self, sender: int, payload: bytes, now: float) -> bytes | None:
        """A frame when one is complete, else None (a part was kept, or junk was counted)."""
        self._expire(now)
        self.counts["parts"] += 1
        if len(payload) < 2 or len(payload) > MAX_PAYLOAD:
            self.counts["junk"] += 1
            return None
        seq, more, data = payload[0] >> 1, payload[0] & 1, bytes(payload[1:])
        if more:
            if len(data) != PART_DATA:
                self.counts["junk"] += 1
                return None
            slot = 0
        elif len(data) >= pframe.MIN_FRAME:
            self.counts["frames"] += 1
            return data  # a whole frame in one packet
        else:
            slot = 1  # the tail of a split frame (1..23 bytes; no frame is that short)
        key = (sender, seq)
        ent = self.pending.get(key)
        if ent is None:
            ent = [None, None, now]
            self.pending[key] = ent
            while len(self.pending) > self.max_pending:
                self.pending.popitem(last=False)
                self.counts["evicted"] += 1
        if ent[slot] is not None:
            self.counts["dup_parts"] += 1
        ent[slot] = data
        if ent[0] is not None and ent[1] is not None:
            del self.pending[key]
            self.counts["frames"] += 1
            return ent[0] + ent[1]
        return None


# ---- throttle


class Throttle:
    """Pace transmissions by the radio's own channel-utilisation reports (the firmware's thresholds).

    Below 25 % (polite) a packet may go every `min_gap_s`; from 25 % to 40 % every `polite_gap_s`; at 40 % or
    more nothing is sent until a report says it dropped (or the last report is older than `stale_s`).
    """

    def __init__(self, min_gap_s: float = 1.0, polite_gap_s: float = 10.0, stale_s: float = 1800.0):
        self.min_gap_s = min_gap_s
        self.polite_gap_s = polite_gap_s
        self.stale_s = stale_s
        self.util: float | None = None
        self.air_tx: float | None = None
        self.reported = 0.0
        self.last_send = -1e9

    def report(self, channel_utilization: float | None, air_util_tx: float | None, now: float) -> None:
        if channel_utilization is not None:
            self.util = float(channel_utilization)
            self.reported = now
        if air_util_tx is not None:
            self.air_tx = float(air_util_tx)

    def state(self, now: float) -> str:
        if self.util is None or now - self.reported > self.stale_s:
            return "normal"
        if self.util >= MAX_UTIL:
            return "held"
        if self.util >= POLITE_UTIL:
            return "polite"
        return "normal"

    def wait_s(self, now: float) -> float | None:
        """Seconds to wait before the next packet; None while held."""
        st = self.state(now)
        if st == "held":
            return None
        gap = self.polite_gap_s if st == "polite" else self.min_gap_s
        return max(0.0, self.last_send + gap - now)

    def sent(self, now: float) -> None:
        self.last_send = now


# ---- channels


def is_public_psk(psk: bytes) -> bool:
    """No encryption, the default key or one of the 1-byte "simple" keys, all published by Meshtastic."""
    psk = bytes(psk)
    return len(psk) <= 1 or psk == _DEFAULT_KEY


def check_channel(iface: Any, index: int) -> str:
    """The name of a usable private channel at `index`; BridgeError if it is disabled or public."""
    from meshtastic.protobuf import channel_pb2

    if not 0 <= index <= 7:
        raise BridgeError("--channel-index is 0..7")
    ch = iface.localNode.getChannelByChannelIndex(index)
    if ch is None or ch.role == channel_pb2.Channel.Role.DISABLED:
        raise BridgeError("channel %d of the radio is not enabled: create a private one with --new-channel" % index)
    name = ch.settings.name or ("LongFast (default)" if ch.role == channel_pb2.Channel.Role.PRIMARY else "")
    if is_public_psk(ch.settings.psk):
        raise BridgeError("channel %d (%s) uses a public key: the bridge needs a private channel (--new-channel, or "
                          "--join-channel NAME:PSK from the other bridge)" % (index, name or "unnamed"))
    return name


def new_channel() -> tuple[str, bytes]:
    """A random private channel: name "plexus-xxxx" (at most 11 characters) and a 32-byte AES-256 PSK."""
    return "plexus-" + os.urandom(2).hex(), os.urandom(32)


def parse_channel(spec: str) -> tuple[str, bytes]:
    """NAME:PSK (PSK in base64, 16 or 32 bytes), as `channel_spec` prints it."""
    if ":" not in spec:
        raise BridgeError("write the channel as NAME:PSK (what the other bridge printed)")
    name, b64 = spec.split(":", 1)
    try:
        psk = base64.b64decode(b64, validate=True)
    except ValueError:
        raise BridgeError("the channel key is not base64") from None
    if not name or len(name) > 11:
        raise BridgeError("a Meshtastic channel name is 1..11 characters")
    if len(psk) not in (16, 32) or is_public_psk(psk):
        raise BridgeError("the channel key must be a private 16- or 32-byte key")
    return name, psk


def channel_spec(name: str, psk: bytes) -> str:
    return "%s:%s" % (name, base64.b64encode(psk).decode())


def install_channel(iface: Any, name: str, psk: bytes, index: int | None = None) -> int:
    """Write a SECONDARY channel (name, psk) to the radio: at `index` or in the first free slot. Returns the index."""
    from meshtastic.protobuf import channel_pb2

    node = iface.localNode
    for ch in node.channels or []:
        if ch.role != channel_pb2.Channel.Role.DISABLED and ch.settings.name == name and bytes(ch.settings.psk) == psk:
            return ch.index  # already there
    if index is None:
        free = node.getDisabledChannel()
        if free is None:
            raise BridgeError("the radio has no free channel slot: pass --channel-index N to overwrite a secondary one")
        index = free.index
    if index == 0:
        raise BridgeError("the bridge never rewrites the primary channel (index 0): choose 1..7")
    if not 1 <= index <= 7:
        raise BridgeError("--channel-index is 0..7")
    ch = node.channels[index]
    ch.role = channel_pb2.Channel.Role.SECONDARY
    ch.settings.name = name
    ch.settings.psk = psk
    ch.index = index
    node.writeChannel(index)
    return index


# ---- long bulletins seen on the air (header + fragments -> one record)


class LongBuffers:
    """Long bulletins and REKEYs heard on the air: a signed header and its fragments (text or wrap table), in any
    order, become one record.

    Fragments that arrive before their header (a lost or late header copy) wait, bounded, for it."""

    def __init__(self, max_open: int = 8, timeout_s: float = 600.0, max_early: int = 64):
        self.max_open = max_open
        self.timeout_s = timeout_s
        self.max_early = max_early
        self.open: collections.OrderedDict = collections.OrderedDict()  # id -> [header inner, Msg, {i: chunk}, t]
        self.early: collections.OrderedDict = collections.OrderedDict()  # (id, index) -> (chunk, t)

    def _expire(self, now: float) -> None:
        for k in [k for k, v in self.open.items() if now - v[3] > self.timeout_s]:
            del self.open[k]
        for k in [k for k, v in self.early.items() if now - v[1] > self.timeout_s]:
            del self.early[k]

    def header(self, inner: bytes, m: Any, now: float) -> tuple[bytes, bytes] | None | str:
        self._expire(now)
        mid = msg.message_id(inner)
        if mid in self.open:
            return None
        self.open[mid] = [inner, m, {}, now]
        while len(self.open) > self.max_open:
            self.open.popitem(last=False)
        out: tuple[bytes, bytes] | None | str = None
        for key in [k for k in self.early if k[0] == mid]:
            chunk, _ = self.early.pop(key)
            r = self._add(mid, key[1], chunk)
            if r is not None and not isinstance(r, str):
                out = r
        return out

    def fragment(self, m: Any, now: float) -> tuple[bytes, bytes] | None | str:
        self._expire(now)
        bid = m.f["bulletin"]
        if bid not in self.open:
            self.early[(bid, m.f["index"])] = (m.f["data"], now)
            while len(self.early) > self.max_early:
                self.early.popitem(last=False)
            return "early_fragment"
        return self._add(bid, m.f["index"], m.f["data"])

    def _add(self, bid: bytes, i: int, chunk: bytes) -> tuple[bytes, bytes] | None | str:
        ent = self.open[bid]
        hdr = ent[1]
        hashes = hdr.f["frag_hashes"]
        if i >= hdr.f["nfrag"] or msg.fragment_hash(chunk) != hashes[6 * i : 6 * i + 6]:
            return "bad_fragment"
        ent[2][i] = chunk
        if len(ent[2]) < hdr.f["nfrag"]:
            return None
        del self.open[bid]
        text = b"".join(ent[2][j] for j in range(hdr.f["nfrag"]))
        if not msg.check_long_text(hdr, text):
            return "bad_fragment"
        return ent[0], text


def record_frames(keyobj: Any, record: bytes, hop_limit: int = PLEXUS_HOP_LIMIT) -> list[bytes]:
    """The air frames of a stored record, sealed as its originator would (same synthetic nonce, same frame)."""
    inner, extra = hostlink.unpack_record(record)
    frames = [keyobj.seal(inner, hop_limit)]
    if msg.has_tail(inner[0]) and extra:
        chunks, _ = msg.split_blob(extra)
        mid = msg.message_id(inner)
        frames += [keyobj.seal(msg.fragment(mid, i, c), hop_limit) for i, c in enumerate(chunks)]
    return frames


# ---- the bridge


MT_SOURCE = b"meshtastic"  # ledger `source` of records that arrived over Meshtastic (never sent back)
_CURSOR_META = "meshtastic_bridge_sent"


class MeshtasticBridge:
    """The bridge loop. `connect()` returns a connected meshtastic interface (TCPInterface / SerialInterface).

    Call `start()` once (raises BridgeError when the radio or channel is unusable), then `step()` repeatedly
    or `run()`. Everything the pubsub callbacks receive is queued and handled in the caller's thread.
    """

    def __init__(self, connect: Callable[[], Any], keys: list, ledger: Any = None, channel_index: int = 1,
                 hop_limit: int | None = None, node: Any = None, heartbeat_s: float = 60.0,
                 min_gap_s: float = 1.0, polite_gap_s: float = 10.0, reassembly_timeout_s: float = 60.0,
                 reconnect_s: float = 1.0, max_reconnect_s: float = 30.0, sync_s: float = 2.0,
                 send_existing: bool = False, repeat: int = 1, max_queue: int = 1024, log: Callable[[str], None] | None = None):
        if hop_limit is not None and not 0 <= hop_limit <= MAX_MT_HOPS:
            raise BridgeError("--hop-limit is 0..%d (Meshtastic's limit)" % MAX_MT_HOPS)
        if not keys:
            raise BridgeError("the bridge needs the group key")
        self.connect = connect
        self.keys = list(keys)
        self.ledger = ledger
        self.channel_index = channel_index
        self.hop_limit = hop_limit
        self.node = node
        self.heartbeat_s = heartbeat_s
        self.reconnect_s = reconnect_s
        self.max_reconnect_s = max_reconnect_s
        self.sync_s = sync_s
        self.send_existing = send_existing
        if not 1 <= repeat <= 5:
            raise BridgeError("--repeat is 1..5")
        self.repeat = repeat
        self.max_queue = max_queue
        self.log = log or (lambda s: None)
        self.throttle = Throttle(min_gap_s, polite_gap_s)
        self.reasm = Reassembler(reassembly_timeout_s)
        self.longs = LongBuffers()
        self.iface: Any = None
        self.my_num: int | None = None
        self.channel_name = ""
        self.rx: queue.Queue = queue.Queue()
        self.outq: collections.deque = collections.deque()  # payloads waiting for the radio
        self.seen: collections.OrderedDict = collections.OrderedDict()  # frame TAGs recently handled
        self.seq = int.from_bytes(os.urandom(1), "big") & 0x7F
        self.lost = False
        self.next_connect = 0.0
        self.backoff = reconnect_s
        self.last_heartbeat = 0.0
        self.last_sync = -1e9
        self.sent_cursor: int | None = None
        self.stats: collections.Counter = collections.Counter()
        self._subscribed = False
        self._held = False

    # ---- connection

    def _subscribe(self) -> None:
        from pubsub import pub

        if not self._subscribed:
            pub.subscribe(self._on_data, "meshtastic.receive.data.PRIVATE_APP")
            pub.subscribe(self._on_telemetry, "meshtastic.receive.telemetry")
            pub.subscribe(self._on_lost, "meshtastic.connection.lost")
            self._subscribed = True

    def _unsubscribe(self) -> None:
        from pubsub import pub

        if self._subscribed:
            for fn, topic in ((self._on_data, "meshtastic.receive.data.PRIVATE_APP"),
                              (self._on_telemetry, "meshtastic.receive.telemetry"),
                              (self._on_lost, "meshtastic.connection.lost")):
                try:
                    pub.unsubscribe(fn, topic)
                except Exception:
                    pass
            self._subscribed = False

    def _open(self) -> None:
        self._subscribe()
        iface = self.connect()
        try:
            self.channel_name = check_channel(iface, self.channel_index)
        except BaseException:
            close_settled(iface)
            raise
        self.iface = iface
        self.my_num = iface.myInfo.my_node_num if iface.myInfo is not None else None
        if self.hop_limit is None:
            hl = int(getattr(iface.localNode.localConfig.lora, "hop_limit", 0) or 3)
            self.hop_limit = min(hl, MAX_MT_HOPS)
        metrics = (iface.getMyNodeInfo() or {}).get("deviceMetrics", {})
        if "channelUtilization" in metrics:
            self.throttle.report(metrics.get("channelUtilization"), metrics.get("airUtilTx"), time.monotonic())
        self.lost = False
        self.last_heartbeat = time.monotonic()

    def start(self) -> None:
        """Connect once (errors here are the user's to fix) and set the ledger cursor for outgoing records."""
        try:
            self._open()
        except BridgeError:
            raise
        except Exception as e:
            raise BridgeError("cannot reach the Meshtastic radio: %s" % (e or type(e).__name__)) from None
        if self.ledger is not None:
            self.sent_cursor = self._load_cursor()

    def _drop(self, why: str) -> None:
        if self.iface is not None:
            self.stats["disconnects"] += 1
            self.log("radio connection lost (%s); reconnecting" % why)
            old, self.iface = self.iface, None
            _close_quietly(old)
        self.lost = True
        self.next_connect = time.monotonic() + self.backoff

    def _reconnect(self, now: float) -> None:
        if now < self.next_connect:
            return
        try:
            self._open()
        except BridgeError as e:
            self.log(str(e))
            self.stats["reconnect_failures"] += 1
            self.next_connect = now + self.backoff
            self.backoff = min(self.backoff * 2, self.max_reconnect_s)
            return
        except Exception as e:
            self.stats["reconnect_failures"] += 1
            self.log("reconnect failed: %s" % (e or type(e).__name__))
            self.next_connect = now + self.backoff
            self.backoff = min(self.backoff * 2, self.max_reconnect_s)
            return
        self.stats["reconnects"] += 1
        self.backoff = self.reconnect_s
        self.log("radio connection restored")

    # ---- pubsub callbacks (publishing thread): queue only. Which interface an item came from is checked in
    # the bridge's thread, once `self.iface` is set: what a radio hands over right after the handshake (packets
    # it kept while no client was connected) is not lost to the moment before `_open` returns.

    def _on_data(self, packet: dict, interface: Any) -> None:
        try:
            d = packet.get("decoded", {})
            self.rx.put(("data", interface, int(packet.get("from", 0)), int(packet.get("channel", 0)),
                         bytes(d.get("payload", b""))))
        except Exception:
            self.rx.put(("junk", interface))

    def _on_telemetry(self, packet: dict, interface: Any) -> None:
        try:
            dm = packet["decoded"]["telemetry"].get("deviceMetrics")
            sender = int(packet.get("from", -1))
        except (KeyError, TypeError, ValueError, AttributeError):
            return
        if dm:
            self.rx.put(("util", interface, sender, dm.get("channelUtilization"), dm.get("airUtilTx")))

    def _on_lost(self, interface: Any) -> None:
        self.rx.put(("lost", interface))

    # ---- receive

    def _key_for(self, hdr: Any) -> Any:
        for k in self.keys:
            if k.epoch == hdr.epoch and k.net == hdr.net:
                return k
        return None

    def handle_payload(self, sender: int, channel: int, payload: bytes, now: float | None = None) -> None:
        """One Meshtastic payload from port 256: count, reassemble, check, store, inject. Never raises."""
        now = time.monotonic() if now is None else now
        self.stats["rx_packets"] += 1
        if channel != self.channel_index:
            self.stats["other_channel"] += 1
            return
        before = self.reasm.counts["junk"]
        fr = self.reasm.feed(sender, payload, now)
        if self.reasm.counts["junk"] != before:
            self.stats["junk_packets"] += 1
        if fr is not None:
            try:
                self.handle_frame(fr, now)
            except Exception as e:  # a bug must not stop the bridge; count it
                self.stats["errors"] += 1
                self.log("error on a received frame: %s" % e)

    def handle_frame(self, fr: bytes, now: float) -> None:
        try:
            hdr = pframe.parse_header(fr)
        except DecodeError:
            self.stats["junk_frames"] += 1
            return
        tag = bytes(fr[-pframe.TAG_LEN :])
        if tag in self.seen:
            self.stats["dup_frames"] += 1
            return
        k = self._key_for(hdr)
        if k is None:
            self.stats["foreign_frames"] += 1
            return
        try:
            inner = k.open(fr)
        except DecodeError:
            self.stats["bad_tag"] += 1
            return
        self._remember(tag)
        try:
            m = msg.decode(inner)
        except DecodeError:
            self.stats["malformed"] += 1
            return
        self.stats["frames_in"] += 1
        if self.ledger is not None:
            rec = None
            r: Any = None
            if msg.has_tail(m.kind):
                r = self.longs.header(inner, m, now)
            elif m.kind == msg.FRAGMENT:
                r = self.longs.fragment(m, now)
            if r is not None:
                if isinstance(r, str):
                    self.stats[r] += 1
                elif r is not None:
                    rec = hostlink.pack_record(r[0], r[1])
            if msg.is_signed(m.kind) and m.kind != msg.BEACON and not msg.has_tail(m.kind):
                rec = hostlink.pack_record(inner)
            if rec is not None:
                res = self.ledger.ingest([rec], source=MT_SOURCE, use_pool=False)
                self.stats["stored"] += res.inserted
                self.stats["already_stored"] += res.duplicates
                self.stats["rejected"] += len(res.rejected)
        if self.node is not None:
            try:
                self.node.call(hostlink.FRAME_IN, bytes(fr))
                self.stats["injected"] += 1
            except Exception as e:
                self.stats["inject_errors"] += 1
                self.log("gateway node refused a frame: %s" % e)

    def _remember(self, tag: bytes) -> None:
        self.seen[tag] = True
        while len(self.seen) > 1024:
            self.seen.popitem(last=False)

    # ---- send

    def send_frames(self, frames: list[bytes]) -> None:
        """Queue air frames (1 or 2 packets each); with `repeat` > 1 the whole batch is queued that many times,
        each copy with the same part sequence numbers, so a receiver can join a head and a tail of different copies."""
        parts = []
        for fr in frames:
            self._remember(bytes(fr[-pframe.TAG_LEN :]))
            parts += split_frame(fr, self.seq)
            self.seq = (self.seq + 1) & 0x7F
            self.stats["frames_out"] += 1
        for _ in range(self.repeat):
            for part in parts:
                if len(self.outq) >= self.max_queue:
                    self.outq.popleft()
                    self.stats["queue_dropped"] += 1
                self.outq.append(part)

    def send_frame(self, fr: bytes) -> None:
        self.send_frames([fr])

    def send_record(self, record: bytes) -> None:
        self.send_frames(record_frames(self.keys[-1], record))

    def _pump_out(self, now: float) -> None:
        while self.outq and self.iface is not None:
            w = self.throttle.wait_s(now)
            if w is None:
                if not self._held:
                    self.stats["held_by_utilisation"] += 1
                self._held = True
                return
            self._held = False
            if w > 0:
                return
            part = self.outq[0]
            try:
                self.iface.sendData(part, portNum=PORTNUM, channelIndex=self.channel_index, hopLimit=self.hop_limit,
                                    wantAck=False)
            except Exception as e:
                self._drop("send failed: %s" % (e or type(e).__name__))
                return
            self.outq.popleft()
            self.stats["tx_packets"] += 1
            self.throttle.sent(now)

    # ---- ledger cursor and gateway polling

    def _load_cursor(self) -> int:
        con = self.ledger.con
        r = con.execute("SELECT value FROM meta WHERE key = ?", (_CURSOR_META,)).fetchone()
        if r is not None:
            return int(r[0])
        start = 0 if self.send_existing else self.ledger.count()
        con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_CURSOR_META, str(start)))
        return start

    def _forward_new_records(self) -> None:
        if self.ledger is None or self.sent_cursor is None:
            return
        con = self.ledger.con
        rows = con.execute("SELECT n, raw, source FROM records WHERE n > ? ORDER BY n LIMIT 64",
                           (self.sent_cursor,)).fetchall()
        for n, raw, source in rows:
            if source != MT_SOURCE:
                try:
                    self.send_record(bytes(raw))
                    self.stats["records_out"] += 1
                except (ValueError, DecodeError):
                    self.stats["unsendable_records"] += 1
            self.sent_cursor = n
        if rows:
            con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (_CURSOR_META, str(self.sent_cursor)))

    def _poll_node(self, now: float) -> None:
        if self.node is None or self.ledger is None or now - self.last_sync < self.sync_s:
            return
        self.last_sync = now
        from plexus import ledger as ledgermod

        try:
            res = ledgermod.sync(self.node, self.ledger, set_time=False)
            self.stats["synced_from_node"] += res.inserted
        except Exception as e:
            self.stats["node_errors"] += 1
            self.log("gateway node: %s" % e)

    # ---- loop

    def step(self, wait: float = 0.05) -> None:
        """Handle what arrived (waiting up to `wait` s for it), then send, heartbeat, reconnect, poll."""
        try:
            item = self.rx.get(timeout=wait)
        except queue.Empty:
            item = None
        while item is not None:
            self._handle_item(item)
            try:
                item = self.rx.get_nowait()
            except queue.Empty:
                item = None
        now = time.monotonic()
        if self.iface is None:
            self._reconnect(now)
        elif self.heartbeat_s and now - self.last_heartbeat >= self.heartbeat_s:
            self.last_heartbeat = now
            try:
                self.iface.sendHeartbeat()
                self.stats["heartbeats"] += 1
            except Exception as e:
                self._drop("heartbeat failed: %s" % (e or type(e).__name__))
        self._poll_node(now)
        self._forward_new_records()
        self._pump_out(now)

    def _handle_item(self, item: tuple) -> None:
        if item[1] is not self.iface or self.iface is None:
            return  # another bridge's radio, or a connection already given up
        if item[0] == "lost":
            self._drop("the radio closed the connection")
        elif item[0] == "util":
            if self.my_num is None or item[2] == self.my_num:  # the radio's own telemetry, not a neighbour's
                self.throttle.report(item[3], item[4], time.monotonic())
                self.stats["utilisation_reports"] += 1
        elif item[0] == "junk":
            self.stats["junk_packets"] += 1
        else:
            self.handle_payload(item[2], item[3], item[4])

    def run(self, duration: float | None = None, stop: Any = None) -> None:
        end = None if duration is None else time.monotonic() + duration
        while (end is None or time.monotonic() < end) and not (stop is not None and stop.is_set()):
            self.step()

    def summary(self) -> dict:
        d = dict(self.stats)
        d.update({"reassembly_" + k: v for k, v in self.reasm.counts.items()})
        d["queued_packets"] = len(self.outq)
        d["channel_utilization"] = self.throttle.util
        d["throttle"] = self.throttle.state(time.monotonic())
        d["connected"] = self.iface is not None
        return d

    def close(self) -> None:
        self._unsubscribe()
        if self.iface is not None:
            _close_quietly(self.iface)
            self.iface = None


def close_settled(iface: Any) -> None:
    """Close an interface that has just connected: let the library finish its connect steps first (its first
    heartbeat follows config_complete_id in the reader thread; closing under it makes the library print a
    traceback)."""
    ev = getattr(iface, "isConnected", None)
    if ev is not None and ev.wait(3):
        time.sleep(0.05)
    _close_quietly(iface)


def _close_quietly(iface: Any) -> None:
    try:
        iface.close()
    except Exception:
        pass


def connector(port: str | None = None, host: str | None = None, timeout: int = 30) -> Callable[[], Any]:
    """A function that opens the radio: SerialInterface(port) or TCPInterface(host[:4403])."""
    if (port is None) == (host is None):
        raise BridgeError("give either --port or --host")
    if host is not None:
        h, _, p = host.rpartition(":") if ":" in host else (host, "", "4403")
        if not h:
            h, p = host, "4403"
        try:
            pnum = int(p)
        except ValueError:
            raise BridgeError("bad --host %r: write HOST or HOST:PORT" % host) from None

        def tcp() -> Any:
            from meshtastic.tcp_interface import TCPInterface

            return TCPInterface(h, portNumber=pnum, timeout=timeout)

        return tcp

    dev = str(port)

    def serial() -> Any:
        from meshtastic.serial_interface import SerialInterface

        if not os.path.exists(dev) and not dev.startswith(("COM", "\\\\")):
            raise BridgeError("cannot reach the Meshtastic radio: no serial port %s" % dev)
        return SerialInterface(dev, timeout=timeout)

    return serial
