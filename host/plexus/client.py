"""Host-link client: the laptop side of the USB serial link to a node (plexwire.hostlink framing).

``HostLinkClient(port_or_serial, timeout)`` opens a port with ``serial.serial_for_url`` (so a device path,
a pty, ``loop://`` or ``socket://`` all work) or wraps an already open pyserial-like object.

* every request carries a fresh request id (never 0: that is the id of unsolicited EVENTs); the first id is
  random, so a reply still in flight for a previous process on the same port is never taken for ours;
* log lines from the node are kept (``log``), EVENT frames are queued (``events()``), replies to other
  request ids are dropped;
* on timeout an idempotent request (HELLO, STATUS, SYNC, CONFIG read, TALLY) is sent again, up to
  ``retries`` times; anything else, or running out of retries, raises ``LinkError``;
* an ERROR reply (op 0xFF) is returned by ``request`` as is, and raised as ``NodeError`` by the helpers.
"""

from __future__ import annotations

import collections
import json
import os
import time
from typing import Any

from plexwire import hostlink, msg

IDEMPOTENT = frozenset((hostlink.HELLO, hostlink.STATUS, hostlink.SYNC, hostlink.TALLY))
DEFAULT_BAUD = 115200


class LinkError(OSError):
    """No (valid) answer from the node."""


class NodeError(ValueError):
    """The node answered with an ERROR frame; str() is its reason."""


def _open_port(url: str, baudrate: int) -> Any:
    """Open like mpremote does: DTR and RTS asserted together on open (no auto-reset on ESP32 boards), an
    exclusive lock on POSIX; on Windows a CP210x gets both lines cleared before open and raised after, so its
    driver's staggered assertion cannot pulse EN."""
    import serial

    ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, do_not_open=True,
                                exclusive=True if os.name == "posix" and not url.startswith(("loop://", "socket://", "rfc2217://")) else None)
    if os.name == "nt":
        from serial.tools import list_ports

        info = list(list_ports.grep(url))
        if info and getattr(info[0], "vid", None) == 0x10C4:
            ser.dtr = False
            ser.rts = False
            ser.open()
            ser.dtr = True
            ser.rts = True
            return ser
    ser.open()
    return ser


def open_error(port: str, e: BaseException) -> str:
    """Why a port would not open, once (pyserial repeats the port and the errno in its message)."""
    import errno as errnomod

    code = getattr(e, "errno", None)
    if code == errnomod.ENOENT:
        return "no such file or device"
    if isinstance(code, int) and code > 0:
        return os.strerror(code)[:1].lower() + os.strerror(code)[1:]
    text = str(e)
    for prefix in ("could not open port %s: " % port, "could not open port: "):
        if text.lower().startswith(prefix.lower()):
            text = text[len(prefix):]
    return text


class HostLinkClient:
    def __init__(self, port_or_serial: Any, timeout: float = 2.0, baudrate: int = DEFAULT_BAUD, retries: int = 2,
                 max_log: int = 200):
        self.timeout = timeout
        self.retries = retries
        if isinstance(port_or_serial, str):
            import serial  # pyserial

            try:
                self.ser = _open_port(port_or_serial, baudrate)
            except (serial.SerialException, OSError, ValueError) as e:
                raise LinkError("cannot open %s: %s" % (port_or_serial, open_error(port_or_serial, e))) from None
            self._own = True
            try:
                self.ser.reset_input_buffer()
            except Exception:
                pass
        else:
            self.ser = port_or_serial
            self._own = False
        self.port = port_or_serial if isinstance(port_or_serial, str) else getattr(port_or_serial, "port", "?")
        self.reader = hostlink.LineReader()
        self._frames: collections.deque = collections.deque()
        self._events: collections.deque = collections.deque()
        self.log: collections.deque = collections.deque(maxlen=max_log)
        self._req = int.from_bytes(os.urandom(2), "big") % 0xFFFF + 1

    # ---- plumbing

    def close(self) -> None:
        if self._own:
            try:
                self.ser.close()
            except Exception:
                pass

    def __enter__(self) -> "HostLinkClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _next_req(self) -> int:
        self._req = self._req % 0xFFFF + 1
        return self._req

    def _pump(self, deadline: float) -> bool:
        """Read what is available (waiting at most until deadline); True when something arrived."""
        try:
            n = self.ser.in_waiting
            data = self.ser.read(n if n else 1)
        except Exception as e:
            raise LinkError("serial port %s failed: %s" % (self.port, e)) from None
        if not data:
            return False
        for typ, item in self.reader.feed(data):
            if typ == "frame":
                self._frames.append(item)
            else:
                self.log.append(item)
        return True

    def _send(self, op: int, req: int, body: bytes) -> None:
        line = hostlink.encode(op, req, body)
        try:
            self.ser.write(line)
            self.ser.flush()
        except Exception as e:
            raise LinkError("serial port %s failed: %s" % (self.port, e)) from None

    def request(self, op: int, body: bytes = b"", timeout: float | None = None,
                retries: int | None = None) -> tuple[int, bytes]:
        """Send one request; return the (op, body) of its reply (op | 0x80, or 0xFF for ERROR)."""
        tmo = self.timeout if timeout is None else timeout
        if retries is None:
            idem = op in IDEMPOTENT or (op == hostlink.CONFIG and body.strip() in (b"", b"{}"))
            retries = self.retries if idem else 0
        mine: set[int] = set()
        for _attempt in range(retries + 1):
            req = self._next_req()
            mine.add(req)
            self._send(op, req, body)
            deadline = time.monotonic() + tmo
            while True:
                while self._frames:
                    rop, rreq, rbody = self._frames.popleft()
                    if rop == hostlink.EVENT or rreq == 0:
                        self._events.append((rop, rbody))
                    elif rreq in mine and (rop == op | hostlink.REPLY or rop == hostlink.ERROR):
                        return rop, rbody
                    # else: a stale reply to an earlier request: dropped
                if time.monotonic() >= deadline:
                    break
                self._pump(deadline)
        raise LinkError("no answer from the node on %s (op 0x%02x, %d tries, %.1f s each)" % (self.port, op, retries + 1, tmo))

    def events(self, wait: float = 0.0) -> list[tuple[int, Any]]:
        """Queued unsolicited EVENTs as (op, decoded JSON or raw bytes); waits up to `wait` s for the first."""
        deadline = time.monotonic() + wait
        while True:
            while self._frames:
                rop, rreq, rbody = self._frames.popleft()
                if rop == hostlink.EVENT or rreq == 0:
                    self._events.append((rop, rbody))
            if self._events or time.monotonic() >= deadline:
                break
            self._pump(deadline)
        out = []
        while self._events:
            rop, rbody = self._events.popleft()
            try:
                out.append((rop, json.loads(rbody)))
            except ValueError:
                out.append((rop, rbody))
        return out

    # ---- helpers (raise NodeError on ERROR replies)

    def call(self, op: int, body: bytes = b"", **kw: Any) -> bytes:
        rop, rbody = self.request(op, body, **kw)
        if rop == hostlink.ERROR:
            try:
                reason = json.loads(rbody).get("error", "error")
            except (ValueError, AttributeError):
                reason = rbody.decode("utf-8", "replace") or "error"
            raise NodeError(reason)
        return rbody

    def call_json(self, op: int, body: bytes = b"", **kw: Any) -> Any:
        rbody = self.call(op, body, **kw)
        try:
            return json.loads(rbody)
        except ValueError:
            raise LinkError("node sent a reply that is not JSON (op 0x%02x)" % op) from None

    def hello(self) -> dict:
        return self.call_json(hostlink.HELLO)

    def status(self) -> dict:
        return self.call_json(hostlink.STATUS)

    def config(self, **settings: Any) -> dict:
        return self.call_json(hostlink.CONFIG, json.dumps(settings).encode())

    def post(self, record: bytes) -> dict:
        return self.call_json(hostlink.POST, record)

    def confirm(self, alert_id: bytes) -> dict:
        return self.call_json(hostlink.CONFIRM, bytes(alert_id))

    def tally(self, alert_id: bytes) -> dict:
        return self.call_json(hostlink.TALLY, bytes(alert_id))

    def sync(self, cursor: int, limit: int = 64) -> tuple[int, bool, list[tuple[int, bytes]]]:
        body = self.call(hostlink.SYNC, hostlink.pack_sync_request(cursor, limit))
        try:
            return hostlink.unpack_sync_reply(body)
        except ValueError as e:
            raise LinkError("bad SYNC reply: %s" % e) from None


# ---- records made on the laptop (signed with a member key) for POST

EPOCH = 1704067200  # 2024-01-01T00:00:00Z = plexus time 0
MAX_SHORT_TEXT = msg.MAX_INNER - msg.SIGNED_HEAD - 1 - msg.SIG_LEN  # 154 bytes of text fit one BULLETIN


class RecordError(ValueError):
    """The message cannot be built (e.g. text too long)."""


def plexus_time() -> int:
    return int(time.time()) - EPOCH


def bulletin_record(key: Any, group_id: bytes, text: str, decision: bool = False, time_s: int | None = None) -> bytes:
    """A signed bulletin as a stored record: BULLETIN up to 154 bytes of UTF-8, else BULLETIN_LONG + full text."""
    b = text.encode("utf-8")
    if not b:
        raise RecordError("the bulletin text is empty")
    t = plexus_time() if time_s is None else time_s
    flags = msg.BULLETIN_DECISION if decision else 0
    if len(b) <= MAX_SHORT_TEXT:
        return hostlink.pack_record(key.sign_message(group_id, msg.BULLETIN, {"flags": flags, "text": text}, t))
    if len(b) > msg.MAX_LONG_TEXT:
        raise RecordError("text is %d bytes; a bulletin holds at most %d" % (len(b), msg.MAX_LONG_TEXT))
    _, f = msg.split_text(b)
    f["flags"] = flags
    return hostlink.pack_record(key.sign_message(group_id, msg.BULLETIN_LONG, f, t), b)


STANCE_NAMES = {"consent": msg.STANCE_CONSENT, "stand-aside": msg.STANCE_STAND_ASIDE, "block": msg.STANCE_BLOCK}


def consent_record(key: Any, group_id: bytes, target: bytes, stance: str = "consent", time_s: int | None = None) -> bytes:
    if len(target) != msg.ID_LEN:
        raise RecordError("a message id is 16 bytes (32 hex digits)")
    if stance not in STANCE_NAMES:
        raise RecordError("stance is one of %s" % ", ".join(STANCE_NAMES))
    t = plexus_time() if time_s is None else time_s
    return hostlink.pack_record(key.sign_message(group_id, msg.CONSENT, {"target": bytes(target), "stance": STANCE_NAMES[stance]}, t))


# REVOKE reason codes (SPEC.md s.4.3): 0 unspecified, 1 lost or compromised, 2 left the group, 3 removed by decision
REVOKE_REASONS = {"unspecified": 0, "seized": 1, "lost": 1, "left": 2, "removed": 3}
REVOKE_REASON_TEXT = {0: "unspecified", 1: "lost or compromised", 2: "left the group", 3: "removed by decision"}
# a REVOKE's reason code in the words `group revoke --reason` takes (one code can have two names: "seized or lost")
REVOKE_REASON_NAMES = {c: " or ".join(n for n, v in REVOKE_REASONS.items() if v == c) for c in sorted(set(REVOKE_REASONS.values()))}


def revoke_record(key: Any, group_id: bytes, kid: bytes, reason: str = "unspecified", time_s: int | None = None) -> bytes:
    """A signed REVOKE of key id `kid` (SPEC.md s.8.2) as a stored record."""
    if len(kid) != 8:
        raise RecordError("a key id is 8 bytes (16 hex digits)")
    if reason not in REVOKE_REASONS:
        raise RecordError("reason is one of %s" % ", ".join(REVOKE_REASONS))
    t = plexus_time() if time_s is None else time_s
    return hostlink.pack_record(key.sign_message(group_id, msg.REVOKE, {"key": bytes(kid), "reason": REVOKE_REASONS[reason]}, t))


def roster_record(key: Any, group_id: bytes, op: int, pub: bytes, name: str, contact: str = "",
                  time_s: int | None = None) -> bytes:
    """A signed ROSTER message (SPEC.md s.10: add a member or a node, or update an entry) as a stored record."""
    if op not in (msg.ROSTER_ADD_MEMBER, msg.ROSTER_ADD_NODE, msg.ROSTER_UPDATE):
        raise RecordError("unknown roster op %r" % op)
    if len(pub) != 32:
        raise RecordError("a public key is 32 bytes (64 hex digits)")
    if not name or len(name.encode("utf-8")) > 255:
        raise RecordError("a roster name is 1 to 255 bytes of UTF-8")
    t = plexus_time() if time_s is None else time_s
    try:
        inner = key.sign_message(group_id, msg.ROSTER, {"op": op, "key": bytes(pub), "name": name, "contact": contact}, t)
    except ValueError as e:
        raise RecordError("the roster entry does not fit in a message (%s): shorten --contact" % e) from None
    return hostlink.pack_record(inner)


def record_id(record: bytes) -> bytes:
    return msg.message_id(hostlink.unpack_record(record)[0])


def rekey_record(key: Any, group_id: bytes, epoch: int, recipients: list[bytes], secret: bytes | None = None,
                 time_s: int | None = None) -> tuple[bytes, bytes]:
    """A signed REKEY (SPEC.md s.8.4) moving the group to `epoch`, as a stored record (header || wrap table),
    and the new group secret. `recipients` are the Ed25519 public keys of the nodes that stay; the wrap is
    computed here with `cryptography`'s X25519, the recipients' X25519 keys derived from their Ed25519 keys."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from plexnode.x25519 import public_u
    from plexwire import rekey

    if not 0 <= epoch <= 15:
        raise RecordError("the key epoch is 0..15")
    if not recipients:
        raise RecordError("a rekey needs at least one node that stays")
    if len(recipients) > rekey.MAX_ENTRIES:
        raise RecordError("a rekey wraps for at most %d nodes" % rekey.MAX_ENTRIES)
    new = os.urandom(32) if secret is None else bytes(secret)
    eph = X25519PrivateKey.generate()
    epub = eph.public_key().public_bytes_raw()
    entries = []
    for pub in dict.fromkeys(bytes(p) for p in recipients):
        u = public_u(pub)
        z = eph.exchange(X25519PublicKey.from_public_bytes(u))
        kid = msg.key_id(pub)
        entries.append(rekey.wrap(kid, new, rekey.wrap_key(group_id, epoch, epub, u, z)))
    table = b"".join(sorted(entries))
    f = rekey.header_fields(epoch, epub, table)
    t = plexus_time() if time_s is None else time_s
    return hostlink.pack_record(key.sign_message(group_id, msg.REKEY, f, t), table), new
