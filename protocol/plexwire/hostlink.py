"""Host link: laptop <-> node over USB serial (SPEC.md section 7).

One frame per line: ``~`` + base64(op | req_id(2) | body | crc32(4)) + ``\\n``. Only printable ASCII is
ever sent, so nothing collides with the MicroPython REPL's control characters (Ctrl-A..E) and mpremote can
still interrupt the app. Other lines (log output) pass through untouched; a line that fails base64 or CRC
is counted and dropped, and the next line starts clean.
"""

import binascii

from plexwire import DecodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


MARK = const(0x7E)  # "~"
MAX_LINE = const(8192)
MAX_BODY = const(6000)

# requests (laptop -> node); a reply carries op | 0x80
HELLO = const(0x01)
STATUS = const(0x02)
POST = const(0x03)
SYNC = const(0x04)
CONFIG = const(0x05)
CONFIRM = const(0x06)
TALLY = const(0x07)
FRAME_IN = const(0x08)
REPLY = const(0x80)
EVENT = const(0x90)  # unsolicited, node -> laptop, req_id 0
ERROR = const(0xFF)


def encode(op, req_id, body=b""):
    """One host-link line (bytes, ending in a newline)."""
    if not 0 <= op <= 255 or not 0 <= req_id <= 0xFFFF:
        raise ValueError("op or req_id out of range")
    if len(body) > MAX_BODY:
        raise ValueError("host-link body too large")
    payload = bytearray([op]) + req_id.to_bytes(2, "big") + body
    payload.extend((binascii.crc32(payload) & 0xFFFFFFFF).to_bytes(4, "big"))
    return b"~" + binascii.b2a_base64(payload).strip() + b"\n"


def decode_line(line):
    """Decode one line (without its newline) to (op, req_id, body); DecodeError when it is not a valid frame."""
    i = -1
    for j in range(len(line) - 1, -1, -1):
        if line[j] == MARK:
            i = j
            break
    if i < 0:
        raise DecodeError("no frame mark")
    text = bytes(line[i + 1 :]).strip()
    if not text or len(text) % 4:
        raise DecodeError("bad base64 length")
    try:
        payload = binascii.a2b_base64(text)
    except Exception:
        raise DecodeError("bad base64") from None
    if binascii.b2a_base64(payload).strip() != text:
        raise DecodeError("non-canonical base64")
    if len(payload) < 7:
        raise DecodeError("short frame")
    crc = int.from_bytes(payload[-4:], "big")
    if binascii.crc32(payload[:-4]) & 0xFFFFFFFF != crc:
        raise DecodeError("bad crc")
    return payload[0], (payload[1] << 8) | payload[2], bytes(payload[3:-4])


class LineReader:
    """Incremental splitter: feed() bytes as they arrive; frames and log lines come out.

    Memory is bounded: a line longer than MAX_LINE is discarded up to its newline and counted.
    """

    def __init__(self):
        self.buf = bytearray()
        self.skipping = False
        self.bad = 0

    def feed(self, data):
        """Return a list of ("frame", (op, req_id, body)) and ("log", line bytes) items."""
        out = []
        self.buf.extend(data)
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0:
                if len(self.buf) > MAX_LINE:
                    self.buf = bytearray()
                    self.skipping = True
                    self.bad += 1
                break
            line = bytes(self.buf[:nl])
            self.buf = self.buf[nl + 1 :]
            if self.skipping:
                self.skipping = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if MARK in line:
                try:
                    out.append(("frame", decode_line(line)))
                    continue
                except DecodeError:
                    self.bad += 1
            if line:
                out.append(("log", line))
        return out


# ---- record framing shared by POST, SYNC replies, the store and the ledger (SPEC.md section 6) ----


def pack_record(inner, extra=b""):
    """A stored record: u8 length of the signed inner message, the inner message, then any extra bytes
    (the text of a long bulletin, whose digest the signed header carries)."""
    if not 0 < len(inner) <= 255:
        raise ValueError("inner message size")
    return bytes([len(inner)]) + bytes(inner) + bytes(extra)


def unpack_record(rec):
    if len(rec) < 2:
        raise DecodeError("short record")
    n = rec[0]
    if n == 0 or 1 + n > len(rec):
        raise DecodeError("bad record length")
    return bytes(rec[1 : 1 + n]), bytes(rec[1 + n :])


def pack_sync_request(cursor, limit):
    return cursor.to_bytes(4, "big") + limit.to_bytes(2, "big")


def unpack_sync_request(body):
    if len(body) != 6:
        raise DecodeError("bad sync request")
    return int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:6], "big")


def pack_sync_reply(next_cursor, more, records):
    """records: list of (seq, record bytes)."""
    out = bytearray(next_cursor.to_bytes(4, "big"))
    out.append(1 if more else 0)
    for seq, rec in records:
        out.extend(seq.to_bytes(4, "big"))
        out.extend(len(rec).to_bytes(2, "big"))
        out.extend(rec)
    return bytes(out)


def unpack_sync_reply(body):
    if len(body) < 5:
        raise DecodeError("bad sync reply")
    nxt = int.from_bytes(body[0:4], "big")
    more = body[4]
    if more > 1:
        raise DecodeError("bad sync reply")
    recs = []
    off = 5
    while off < len(body):
        if off + 6 > len(body):
            raise DecodeError("truncated sync reply")
        seq = int.from_bytes(body[off : off + 4], "big")
        ln = int.from_bytes(body[off + 4 : off + 6], "big")
        off += 6
        if off + ln > len(body):
            raise DecodeError("truncated sync reply")
        recs.append((seq, bytes(body[off : off + ln])))
        off += ln
    return nxt, bool(more), recs
