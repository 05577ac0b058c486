"""A naive flooding node implementing the node-core contract, for testing the engine end to end.

Frame layout (the stub's own, not the Plexus wire format):

    msg_id (16) | hops_left (1) | origin node id (8) | kind (1) | body

kind 1 = bulletin (body: UTF-8 text), 2 = alert/drill (body: text), 3 = receipt (body: alert id (16) |
node id (8) | state (1: 1 reached, 2 confirmed)).  Every node rebroadcasts every new msg_id once
after a uniform random delay of 0..max_delay_ms (seeded), while hops_left > 1; duplicates (same
16-byte prefix) are dropped.  Only "confirmed" receipts are sent (on confirm_alert), flooded back;
the node that started the drill emits the contract's ("receipt", {...}) event.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import deque
from typing import Any

from plexus.sim import radio

KIND_BULLETIN = 1
KIND_ALERT = 2
KIND_RECEIPT = 3
HEADER = 26
STATES = {1: "reached", 2: "confirmed"}


class StubFloodNode:
    def __init__(
        self,
        name: str,
        *,
        index: int = 0,
        router: str = "flood",
        seed: int = 0,
        modem: dict | None = None,
        region: dict | None = None,
        board: dict | None = None,
        config: dict | None = None,
    ):
        cfg = config or {}
        self.name = name
        self.index = index
        self.router = router
        self.node_id = hashlib.sha256(b"stub-node:" + name.encode()).digest()[:8]
        self.modem = modem or {"sf": 11, "bw_hz": 250000, "cr": 5, "preamble": 16}
        self.hop_limit = int(cfg.get("hop_limit", 15))
        self.max_delay_ms = int(cfg.get("max_delay_ms", 3000))
        self.rng = random.Random(seed)
        self.seen: set[bytes] = set()
        self.pending: list[tuple[int, int, bytes]] = []
        self.events: deque = deque()
        self.my_alerts: set[bytes] = set()
        self.alerts: set[bytes] = set()
        self.alert_origin: dict[bytes, bytes] = {}
        self.counter = 0
        self.seq = 0
        self.drops: dict[str, int] = {}
        self.tx_frames = 0
        self.airtime_us = 0
        self.rx_frames = 0

    # -- helpers
    def _new_id(self, now_ms: int) -> bytes:
        self.counter += 1
        return hashlib.sha256(self.node_id + self.counter.to_bytes(4, "big") + now_ms.to_bytes(8, "big")).digest()[:16]

    def _queue(self, frame: bytes, due_ms: int) -> None:
        self.seq += 1
        heapq.heappush(self.pending, (due_ms, self.seq, frame))

    def _drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1
        self.events.append(("drop", {"reason": reason}))

    def _originate(self, kind: int, body: bytes, now_ms: int) -> bytes:
        mid = self._new_id(now_ms)
        self.seen.add(mid)
        frame = mid + bytes([self.hop_limit]) + self.node_id + bytes([kind]) + body
        self._queue(frame[:255], now_ms)
        return mid

    # -- contract
    def receive_frame(self, data: bytes, rssi: int, snr: float, now_ms: int) -> None:
        self.rx_frames += 1
        if len(data) < HEADER:
            self._drop("short")
            return
        mid = bytes(data[:16])
        if mid in self.seen:
            self._drop("duplicate")
            return
        self.seen.add(mid)
        hops_left = data[16]
        origin = bytes(data[17:25])
        kind = data[25]
        body = bytes(data[HEADER:])
        hops = self.hop_limit - hops_left + 1
        if kind == KIND_BULLETIN:
            self.events.append(("message", {"id": mid, "kind": "bulletin", "origin": origin, "hops": hops, "t": now_ms}))
        elif kind == KIND_ALERT:
            self.alerts.add(mid)
            self.alert_origin[mid] = origin
            self.events.append(("alert", {"id": mid, "origin": origin, "hops": hops, "t": now_ms,
                                          "text": body.decode("utf-8", "replace")}))
        elif kind == KIND_RECEIPT and len(body) >= 25:
            alert = body[:16]
            if alert in self.my_alerts:
                self.events.append(("receipt", {"alert": alert, "node": body[16:24],
                                                "state": STATES.get(body[24], "?"), "t": now_ms}))
        if hops_left > 1:
            fwd = bytes(data[:16]) + bytes([hops_left - 1]) + bytes(data[17:])
            self._queue(fwd, now_ms + self.rng.randint(0, self.max_delay_ms))
        else:
            self._drop("hop_limit")

    def frames_to_send(self, now_ms: int) -> list[bytes]:
        out = []
        while self.pending and self.pending[0][0] <= now_ms:
            frame = heapq.heappop(self.pending)[2]
            out.append(frame)
            self.tx_frames += 1
            self.airtime_us += self.airtime(len(frame))
            self.events.append(("tx", {"len": len(frame), "t": now_ms}))
        return out

    def get_timer(self) -> int | None:
        return self.pending[0][0] if self.pending else None

    def handle_timer(self, now_ms: int) -> None:
        pass

    def next_event(self) -> tuple | None:
        return self.events.popleft() if self.events else None

    def post_bulletin(self, text: str, now_ms: int, decision: bool = False) -> bytes:
        return self._originate(KIND_BULLETIN, text.encode()[:200], now_ms)  # the flooding stub has no governance

    def start_drill(self, text: str, now_ms: int, real: bool = False) -> bytes:
        mid = self._originate(KIND_ALERT, text.encode()[:200], now_ms)
        self.my_alerts.add(mid)
        return mid

    def confirm_alert(self, alert_id: bytes, now_ms: int) -> None:
        alert_id = bytes(alert_id)
        if alert_id in self.my_alerts:
            self.events.append(("receipt", {"alert": alert_id, "node": self.node_id, "state": "confirmed", "t": now_ms}))
            return
        if alert_id not in self.alerts:
            self._drop("unknown_alert")
            return
        self._originate(KIND_RECEIPT, alert_id + self.node_id + bytes([2]), now_ms)

    def status(self) -> dict[str, Any]:
        return {"drops": dict(self.drops), "airtime_us": self.airtime_us, "tx_frames": self.tx_frames,
                "rx_frames": self.rx_frames, "stored": len(self.seen)}

    def airtime(self, frame_len: int) -> int:
        return radio.time_on_air_us(frame_len, self.modem)


def make_stub_node(name: str, **kw: Any) -> StubFloodNode:
    """Factory with the same signature as plexus.sim.nodes.make_core_node."""
    return StubFloodNode(name, **kw)


class ScriptedNode:
    """A node that transmits frames at fixed times and records what it hears (radio-model tests).

    config: {"tx": [[t_ms, length], ...]} - at t_ms the node wants to send one frame of `length`
    bytes (>= 17) whose first 16 bytes are a unique id and byte 16 the index of that entry.
    Received frames are kept in ``received`` as (t_ms, data, rssi, snr) and emitted as
    ("rx", {...}) events; every transmission is emitted as ("tx", {"t": now_ms, "len": n}).
    """

    def __init__(self, name: str, *, index: int = 0, router: str = "flood", seed: int = 0,
                 modem: dict | None = None, region: dict | None = None, board: dict | None = None,
                 config: dict | None = None):
        self.name = name
        self.node_id = hashlib.sha256(b"scripted:" + name.encode()).digest()[:8]
        self.modem = modem or {"sf": 11, "bw_hz": 250000, "cr": 5, "preamble": 16}
        self.script = sorted((int(t), int(n), k) for k, (t, n) in enumerate((config or {}).get("tx", [])))
        self.received: list[tuple[int, bytes, int, float]] = []
        self.sent: list[tuple[int, bytes]] = []
        self.events: deque = deque()

    def frame(self, k: int, length: int) -> bytes:
        head = hashlib.sha256(self.node_id + k.to_bytes(2, "big")).digest()[:16] + bytes([k & 0xFF])
        return (head + bytes(max(0, length - len(head))))[:max(length, len(head))]

    def receive_frame(self, data: bytes, rssi: int, snr: float, now_ms: int) -> None:
        self.received.append((now_ms, bytes(data), rssi, snr))
        self.events.append(("rx", {"t": now_ms, "len": len(data), "rssi": rssi, "snr": snr, "id": bytes(data[:16])}))

    def frames_to_send(self, now_ms: int) -> list[bytes]:
        out = []
        while self.script and self.script[0][0] <= now_ms:
            _t, length, k = self.script.pop(0)
            f = self.frame(k, length)
            out.append(f)
            self.sent.append((now_ms, f))
            self.events.append(("tx", {"t": now_ms, "len": len(f)}))
        return out

    def get_timer(self) -> int | None:
        return self.script[0][0] if self.script else None

    def handle_timer(self, now_ms: int) -> None:
        pass

    def next_event(self) -> tuple | None:
        return self.events.popleft() if self.events else None

    def post_bulletin(self, text: str, now_ms: int, decision: bool = False) -> bytes:
        raise NotImplementedError("ScriptedNode only sends its script")

    def start_drill(self, text: str, now_ms: int, real: bool = False) -> bytes:
        raise NotImplementedError("ScriptedNode only sends its script")

    def confirm_alert(self, alert_id: bytes, now_ms: int) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {"received": len(self.received), "sent": len(self.sent)}

    def airtime(self, frame_len: int) -> int:
        return radio.time_on_air_us(frame_len, self.modem)


def make_scripted_node(name: str, **kw: Any) -> ScriptedNode:
    return ScriptedNode(name, **kw)
