"""Inner messages: what travels encrypted inside an air frame (SPEC.md section 4).

Signed kinds (0x01..0x7F) share one layout: kind(1) author(8) time(4) body signature(64).
Unsigned kinds (0x80..0xFF) are kind(1) body; 0x80..0x9F are flooded, 0xA0..0xBF are link-local.
Bodies are described by a schema table, so every kind is decoded and re-encoded by the same
strict code on MicroPython and CPython.
"""

import binascii
import hashlib

from plexwire import DecodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


# ---- sizes (SPEC.md section 2) ----
HEADER_LEN = const(23)  # outer air-frame overhead: 15-byte header + 8-byte tag
MAX_INNER = const(232)  # 255 - 23
SIG_LEN = const(64)
KID_LEN = const(8)
ID_LEN = const(16)
SIGNED_HEAD = const(13)  # kind + author + time
FRAG_DATA = const(214)  # MAX_INNER - (kind + bulletin id + index)
MAX_FRAGS = const(22)
MAX_LONG_TEXT = const(4608)
MAX_SHORT_TEXT = const(154)  # MAX_INNER - SIGNED_HEAD - flags - SIG_LEN: a plain BULLETIN's text
MAX_STORED = const(4840)  # largest record: 1 + a 22-fragment header (229) + 4608 bytes of text
MAX_DIGEST_RANGES = const(16)
REKEY_ENTRY = const(56)  # key id (8) + wrapped secret (32) + MAC (16), SPEC.md section 8.4
MAX_REKEY_FRAGS = const(17)  # a REKEY header with 17 fragment hashes is 231 bytes

# ---- kinds ----
BULLETIN = const(0x01)
BULLETIN_LONG = const(0x02)
CONSENT = const(0x03)
ALERT = const(0x04)
RECEIPT = const(0x05)
MANDATE = const(0x06)
RECALL = const(0x07)
ROSTER = const(0x08)
REVOKE = const(0x09)
REKEY = const(0x0A)
HANDOVER = const(0x0B)
SUCCESSION = const(0x10)  # hand-over record: one mandate's term passes to the next (SPEC.md section 10)
BEACON = const(0x20)
FRAGMENT = const(0x80)
BUNDLE = const(0x81)
DIGEST = const(0xA0)
REQUEST = const(0xA1)
OFFER = const(0xA2)
RACK = const(0xA3)

# field types
_U8 = const(1)
_U16 = const(2)
_U32 = const(3)
_FIX = const(4)  # fixed-size bytes: (name, _FIX, size)
_S8 = const(5)  # u8 length + strict UTF-8
_TEXT = const(6)  # rest of body, strict UTF-8 (last field)
_REST = const(7)  # rest of body, bytes, length a multiple of `size` (last field)
_KIDS = const(8)  # u8 count + count * 8-byte key ids

# kind -> (name, fields); fields are (name, type) or (name, type, size)
SCHEMAS = {
    BULLETIN: ("bulletin", (("flags", _U8), ("text", _TEXT))),
    BULLETIN_LONG: (
        "bulletin_long",
        (("flags", _U8), ("total", _U16), ("nfrag", _U8), ("digest", _FIX, 16), ("frag_hashes", _REST, 6)),
    ),
    CONSENT: ("consent", (("target", _FIX, 16), ("stance", _U8))),
    ALERT: ("alert", (("flags", _U8), ("text", _TEXT))),
    RECEIPT: (
        "receipt",
        (("alert", _FIX, 16), ("state", _U8), ("hops", _U8), ("via", _U16), ("delay", _U16)),
    ),
    MANDATE: (
        "mandate",
        (
            ("role", _S8),
            ("start", _U32),
            ("end", _U32),
            ("method", _U8),
            ("seed", _FIX, 16),
            ("holders", _KIDS),
        ),
    ),
    RECALL: ("recall", (("mandate", _FIX, 16), ("reason", _TEXT))),
    ROSTER: ("roster", (("op", _U8), ("key", _FIX, 32), ("name", _S8), ("contact", _TEXT))),
    REVOKE: ("revoke", (("key", _FIX, 8), ("reason", _U8))),
    REKEY: (
        "rekey",
        (("epoch", _U8), ("eph", _FIX, 32), ("total", _U16), ("nfrag", _U8), ("digest", _FIX, 16), ("frag_hashes", _REST, 6)),
    ),
    HANDOVER: ("handover", (("mandate", _FIX, 16), ("to", _FIX, 8), ("note", _TEXT))),
    SUCCESSION: ("succession", (("prev", _FIX, 16), ("next", _FIX, 16), ("note", _TEXT))),
    BEACON: ("beacon", (("stored", _U16), ("fp", _FIX, 8), ("battery", _U8), ("neighbours", _REST, 2))),
    FRAGMENT: ("fragment", (("bulletin", _FIX, 16), ("index", _U8), ("data", _REST, 1))),
    BUNDLE: ("bundle", (("items", _REST, 1),)),
    DIGEST: ("digest", (("lo", _FIX, 4), ("ranges", _REST, 12))),
    REQUEST: ("request", (("ids", _REST, 8),)),
    OFFER: ("offer", (("lo", _FIX, 4), ("hi", _FIX, 4), ("ids", _REST, 8))),
    RACK: ("rack", (("ids", _REST, 8),)),
}

NAMES = {}
for _k in SCHEMAS:
    NAMES[SCHEMAS[_k][0]] = _k

# Bits not listed here are reserved and must be zero.
BULLETIN_DECISION = const(0x01)
ALERT_REAL = const(0x01)
STANCE_CONSENT = const(1)
STANCE_STAND_ASIDE = const(2)
STANCE_BLOCK = const(3)
RECEIPT_REACHED = const(1)
RECEIPT_CONFIRMED = const(2)
ROSTER_ADD_MEMBER = const(1)
ROSTER_ADD_NODE = const(2)
ROSTER_UPDATE = const(3)
METHOD_LOT = const(0)
METHOD_ELECTION = const(1)
METHOD_EXCLUDE_LAST = const(0x10)  # flag on a LOT draw: the role's previous holders were not eligible
METHOD_CONSEC_SHIFT = const(5)  # bits 5..7: cap on consecutive terms (0 none, 1..7: at most N terms in a row)
MAX_CONSECUTIVE = const(7)
MAX_SEATS = const(16)

SIG_DOMAIN = b"plexus/v1/sig\x00"
ID_DOMAIN = b"plexus/v1/id\x00"


def is_signed(kind):
    return 0 < kind < 0x80


def is_flooded(kind):
    """Flooded kinds are relayed across the mesh; link-local ones (0xA0..0xBF) never are."""
    return 0 < kind < 0xA0


# Governance records: signed by members, adopted by quorum, and evicted from a node's store last.
GOVERNANCE_KINDS = (MANDATE, RECALL, ROSTER, REVOKE, REKEY, HANDOVER, SUCCESSION)


def is_governance(kind):
    return kind in GOVERNANCE_KINDS


def check_utf8(b):
    """Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.

    MicroPython's own decoder accepts all three, so validation is done here, identically everywhere.
    """
    n = len(b)
    if n == 0 or max(b) < 0x80:
        return
    i = 0
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            need = 2
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            need = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
        else:
            raise DecodeError("bad UTF-8")
        if i + need >= n:
            raise DecodeError("truncated UTF-8")
        d = b[i + 1]
        if d < lo or d > hi:
            raise DecodeError("bad UTF-8")
        for j in range(i + 2, i + 1 + need):
            if b[j] & 0xC0 != 0x80:
                raise DecodeError("bad UTF-8")
        i += 1 + need


class Msg:
    """A decoded inner message. `f` holds the body fields by name; `raw` the exact bytes."""

    def __init__(self, kind, author=None, time=0, f=None, sig=None, raw=None):
        self.kind = kind
        self.author = author
        self.time = time
        self.f = f if f is not None else {}
        self.sig = sig
        self.raw = raw

    @property
    def name(self):
        s = SCHEMAS.get(self.kind)
        return s[0] if s is not None else "unknown"

    def signed_part(self):
        """The bytes the signature covers (without the domain prefix): everything but the signature."""
        return self.raw[:-SIG_LEN]

    def __repr__(self):
        return "Msg(%s, author=%r, time=%d, %r)" % (self.name, self.author, self.time, self.f)


def _u(b, off, n):
    return int.from_bytes(b[off : off + n], "big")


def _decode_body(kind, b, off, end, f):
    fields = SCHEMAS[kind][1]
    for spec in fields:
        name = spec[0]
        t = spec[1]
        if t == _U8:
            if off + 1 > end:
                raise DecodeError("truncated")
            f[name] = b[off]
            off += 1
        elif t == _U16:
            if off + 2 > end:
                raise DecodeError("truncated")
            f[name] = _u(b, off, 2)
            off += 2
        elif t == _U32:
            if off + 4 > end:
                raise DecodeError("truncated")
            f[name] = _u(b, off, 4)
            off += 4
        elif t == _FIX:
            size = spec[2]
            if off + size > end:
                raise DecodeError("truncated")
            f[name] = bytes(b[off : off + size])
            off += size
        elif t == _S8:
            if off + 1 > end:
                raise DecodeError("truncated")
            ln = b[off]
            off += 1
            if off + ln > end:
                raise DecodeError("truncated")
            s = bytes(b[off : off + ln])
            check_utf8(s)
            f[name] = s.decode("utf-8")
            off += ln
        elif t == _KIDS:
            if off + 1 > end:
                raise DecodeError("truncated")
            cnt = b[off]
            off += 1
            if off + cnt * 8 > end:
                raise DecodeError("truncated")
            f[name] = [bytes(b[off + 8 * i : off + 8 * i + 8]) for i in range(cnt)]
            off += 8 * cnt
        elif t == _TEXT:
            s = bytes(b[off:end])
            check_utf8(s)
            f[name] = s.decode("utf-8")
            off = end
        else:  # _REST
            size = spec[2]
            if (end - off) % size:
                raise DecodeError("bad length")
            f[name] = bytes(b[off:end])
            off = end
    if off != end:
        raise DecodeError("trailing bytes")


def _check_fields(kind, f, body_len):
    """Kind-specific rules beyond the schema (SPEC.md section 4.3)."""
    if kind == BULLETIN:
        if f["flags"] & ~BULLETIN_DECISION:
            raise DecodeError("reserved flags")
    elif kind == BULLETIN_LONG:
        if f["flags"] & ~BULLETIN_DECISION:
            raise DecodeError("reserved flags")
        n = f["nfrag"]
        if n < 1 or n > MAX_FRAGS or len(f["frag_hashes"]) != 6 * n:
            raise DecodeError("bad fragment count")
        t = f["total"]
        if not ((n - 1) * FRAG_DATA < t <= n * FRAG_DATA) or t <= MAX_SHORT_TEXT or t > MAX_LONG_TEXT:
            raise DecodeError("bad total length")
    elif kind == CONSENT:
        if not 1 <= f["stance"] <= 3:
            raise DecodeError("bad stance")
    elif kind == ALERT:
        if f["flags"] & ~ALERT_REAL:
            raise DecodeError("reserved flags")
    elif kind == RECEIPT:
        if not 1 <= f["state"] <= 2:
            raise DecodeError("bad receipt state")
    elif kind == MANDATE:
        if not f["role"] or f["end"] <= f["start"] or f["method"] & 0x0F > METHOD_ELECTION:
            raise DecodeError("bad mandate")
        h = f["holders"]
        if not 1 <= len(h) <= MAX_SEATS:
            raise DecodeError("bad seats")
        for i in range(1, len(h)):
            if h[i - 1] >= h[i]:
                raise DecodeError("holders not sorted and unique")
    elif kind == SUCCESSION:
        if f["prev"] == f["next"]:
            raise DecodeError("a mandate cannot succeed itself")
    elif kind == ROSTER:
        if not ROSTER_ADD_MEMBER <= f["op"] <= ROSTER_UPDATE:
            raise DecodeError("bad roster op")
    elif kind == REKEY:
        n = f["nfrag"]
        t = f["total"]
        if f["epoch"] > 15 or n < 1 or n > MAX_REKEY_FRAGS or len(f["frag_hashes"]) != 6 * n:
            raise DecodeError("bad rekey")
        if t < REKEY_ENTRY or t % REKEY_ENTRY or not (n - 1) * FRAG_DATA < t <= n * FRAG_DATA:
            raise DecodeError("bad rekey table length")
    elif kind == FRAGMENT:
        if f["index"] >= MAX_FRAGS or not f["data"] or len(f["data"]) > FRAG_DATA:
            raise DecodeError("bad fragment")
    elif kind == BUNDLE:
        items = f["items"]
        off = 0
        if not items:
            raise DecodeError("empty bundle")
        while off < len(items):
            ln = items[off]
            if ln == 0 or off + 1 + ln > len(items):
                raise DecodeError("bad bundle item")
            off += 1 + ln
    elif kind == DIGEST:
        if not f["ranges"] or len(f["ranges"]) > 12 * MAX_DIGEST_RANGES:
            raise DecodeError("bad digest ranges")
    elif kind == REQUEST or kind == RACK:
        if not f["ids"]:
            raise DecodeError("empty id list")


class UnknownKind(DecodeError):
    """A kind this version does not know (SPEC.md section 11 says what a node does with it)."""


def decode(data, max_len=MAX_INNER):
    """Decode an inner message; raise DecodeError for anything malformed. Never trusts a length it did not check."""
    n = len(data)
    if n < 1 or n > max_len:
        raise DecodeError("bad length")
    kind = data[0]
    if kind not in SCHEMAS:
        raise UnknownKind("unknown kind")
    if is_signed(kind):
        if n < SIGNED_HEAD + SIG_LEN:
            raise DecodeError("truncated")
        author = bytes(data[1:9])
        t = _u(data, 9, 4)
        end = n - SIG_LEN
        f = {}
        _decode_body(kind, data, SIGNED_HEAD, end, f)
        _check_fields(kind, f, end - SIGNED_HEAD)
        return Msg(kind, author, t, f, bytes(data[end:]), bytes(data))
    f = {}
    _decode_body(kind, data, 1, n, f)
    _check_fields(kind, f, n - 1)
    return Msg(kind, None, 0, f, None, bytes(data))


def decode_unknown_signed(data):
    """The common layout of a signed kind this node does not know: author, time and signature, body opaque.

    Enough to verify, store and relay it (SPEC.md section 11); never shown."""
    n = len(data)
    if n < SIGNED_HEAD + SIG_LEN or n > MAX_INNER or not is_signed(data[0]):
        raise DecodeError("not a signed layout")
    return Msg(data[0], bytes(data[1:9]), _u(data, 9, 4), {"body": bytes(data[SIGNED_HEAD : n - SIG_LEN])},
               bytes(data[n - SIG_LEN :]), bytes(data))


def _encode_body(kind, f, out):
    for spec in SCHEMAS[kind][1]:
        name = spec[0]
        t = spec[1]
        v = f[name]
        if t == _U8:
            out.append(v)
        elif t == _U16:
            out.extend(v.to_bytes(2, "big"))
        elif t == _U32:
            out.extend(v.to_bytes(4, "big"))
        elif t == _FIX:
            if len(v) != spec[2]:
                raise ValueError("%s must be %d bytes" % (name, spec[2]))
            out.extend(v)
        elif t == _S8:
            s = v.encode("utf-8")
            if len(s) > 255:
                raise ValueError("%s too long" % name)
            out.append(len(s))
            out.extend(s)
        elif t == _KIDS:
            out.append(len(v))
            for k in v:
                if len(k) != 8:
                    raise ValueError("key ids are 8 bytes")
                out.extend(k)
        elif t == _TEXT:
            out.extend(v.encode("utf-8"))
        else:
            out.extend(v)


def encode_unsigned(kind, f, author=None, time=0):
    """Encode a message without its signature.

    For a signed kind this is the part the signature covers (append the 64-byte signature to finish it);
    for an unsigned kind it is the whole message. Validated by decoding it back, so no encoder can
    produce what a decoder would reject.
    """
    if kind not in SCHEMAS:
        raise ValueError("unknown kind")
    out = bytearray([kind])
    if is_signed(kind):
        if author is None or len(author) != KID_LEN:
            raise ValueError("author must be an 8-byte key id")
        if not 0 <= time < (1 << 32):
            raise ValueError("time out of range")
        out.extend(author)
        out.extend(time.to_bytes(4, "big"))
    _encode_body(kind, f, out)
    probe = bytes(out) + (bytes(SIG_LEN) if is_signed(kind) else b"")
    decode(probe)
    return bytes(out)


def finish(unsigned, sig):
    if len(sig) != SIG_LEN:
        raise ValueError("signature must be 64 bytes")
    return bytes(unsigned) + bytes(sig)


def signing_bytes(group_id, unsigned):
    """What Ed25519 signs: a domain tag, the group id (so no signature crosses groups), the message sans signature."""
    return SIG_DOMAIN + bytes(group_id) + bytes(unsigned)


def message_id(raw):
    """16-byte id from the signed content (signature excluded): computed, never read from the wire."""
    kind = raw[0]
    body = raw[:-SIG_LEN] if is_signed(kind) else raw
    h = hashlib.sha256(ID_DOMAIN)
    h.update(body)
    return h.digest()[:ID_LEN]


def key_id(pub):
    """8-byte key id of a 32-byte Ed25519 public key."""
    return hashlib.sha256(b"plexus/v1/kid\x00" + bytes(pub)).digest()[:KID_LEN]


def short_id(kid):
    """16-bit short id used in the clear relay header fields; 0 is reserved for 'none'."""
    v = int.from_bytes(kid[:2], "big")
    return v if v else 1


def bundle_items(items_bytes):
    """Split a BUNDLE's items field into the inner messages it carries."""
    out = []
    off = 0
    while off < len(items_bytes):
        ln = items_bytes[off]
        out.append(bytes(items_bytes[off + 1 : off + 1 + ln]))
        off += 1 + ln
    return out


def make_bundle(inners):
    buf = bytearray()
    for m in inners:
        if not 0 < len(m) <= 255:
            raise ValueError("bundle item size")
        buf.append(len(m))
        buf.extend(m)
    return encode_unsigned(BUNDLE, {"items": bytes(buf)})


def _hex(b):
    return binascii.hexlify(b).decode()


def fields_to_json(kind, f):
    """Body fields as JSON-able values: bytes as lowercase hex, key-id lists as lists of hex."""
    out = {}
    for spec in SCHEMAS[kind][1]:
        name = spec[0]
        t = spec[1]
        v = f[name]
        if t == _FIX or t == _REST:
            out[name] = _hex(v)
        elif t == _KIDS:
            out[name] = [_hex(k) for k in v]
        else:
            out[name] = v
    return out


def fields_from_json(kind, j):
    f = {}
    for spec in SCHEMAS[kind][1]:
        name = spec[0]
        t = spec[1]
        v = j[name]
        if t == _FIX or t == _REST:
            f[name] = binascii.unhexlify(v)
        elif t == _KIDS:
            f[name] = [binascii.unhexlify(k) for k in v]
        else:
            f[name] = v
    return f


def to_json(m):
    d = {"kind": m.name, "fields": fields_to_json(m.kind, m.f)}
    if is_signed(m.kind):
        d["author"] = _hex(m.author)
        d["time"] = m.time
        d["sig"] = _hex(m.sig)
    return d


# ---- long bulletins (SPEC.md section 5) ----


def text_digest(text_bytes):
    return hashlib.sha256(b"plexus/v1/text\x00" + text_bytes).digest()[:16]


def fragment_hash(chunk):
    return hashlib.sha256(b"plexus/v1/frag\x00" + chunk).digest()[:6]


def split_text(text_bytes):
    """Cut a long bulletin's UTF-8 text into fragment chunks; returns (chunks, header fields sans flags)."""
    n = len(text_bytes)
    if n <= 0 or n > MAX_LONG_TEXT:
        raise ValueError("long bulletin text is 1..%d bytes" % MAX_LONG_TEXT)
    if n <= MAX_SHORT_TEXT:
        raise ValueError("text fits one frame: use a plain bulletin")
    return split_blob(text_bytes)


def split_blob(data):
    """Cut the bytes that follow a header (a long bulletin's text, a REKEY's wrap table) into fragment
    chunks; returns (chunks, {total, nfrag, digest, frag_hashes})."""
    n = len(data)
    chunks = [bytes(data[i : i + FRAG_DATA]) for i in range(0, n, FRAG_DATA)]
    hashes = b"".join(fragment_hash(c) for c in chunks)
    return chunks, {"total": n, "nfrag": len(chunks), "digest": text_digest(data), "frag_hashes": hashes}


def has_tail(kind):
    """Kinds whose stored record carries extra bytes after the header, sent as FRAGMENTs (s.5, s.8.4)."""
    return kind == BULLETIN_LONG or kind == REKEY


def fragment(bulletin_id, index, chunk):
    return encode_unsigned(FRAGMENT, {"bulletin": bulletin_id, "index": index, "data": chunk})


def check_long_text(header, text_bytes):
    """True when text_bytes is exactly the text (or REKEY wrap table) a BULLETIN_LONG (REKEY) header commits to."""
    f = header.f
    return len(text_bytes) == f["total"] and text_digest(text_bytes) == f["digest"]
