"""protocol/SPEC.md must not drift from plexwire: its size/airtime tables are recomputed here from the code.

Run `.venv/bin/python tests/test_spec_tables.py` to print the tables exactly as SPEC.md carries them.
"""

import json
from pathlib import Path

from plexwire import MAX_FRAME, frame, hostlink, msg
from plexwire.airtime import MODEM_PRESETS, time_on_air_us

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "protocol" / "SPEC.md"
VECTORS = ROOT / "protocol" / "vectors"

T = 89_000_000  # a Plexus time (seconds since 2024-01-01T00:00:00Z)
AUTHOR = bytes(range(1, 9))
SIG = bytes(64)
GK = frame.GroupKey(bytes(32), 1)

# The two modems the budget is given for: (label, sf, bw_hz, cr_denominator, preamble symbols).
LF = ("LONG_FAST",) + MODEM_PRESETS["LONG_FAST"]
SF9 = ("SF9/125k", 9, 125000, 5, 16)


def toa_ms(n, modem):
    _, sf, bw, cr, pre = modem
    return "%.1f" % (time_on_air_us(n, sf, bw, cr=cr, preamble=pre) / 1000)


def signed(kind, fields):
    return msg.finish(msg.encode_unsigned(kind, fields, author=AUTHOR, time=T), SIG)


def unsigned(kind, fields):
    return msg.encode_unsigned(kind, fields)


def _receipt():
    return signed(msg.RECEIPT, {"alert": bytes(16), "state": 1, "hops": 1, "via": 7, "delay": 0})


def _mandate(role, seats):
    holders = sorted(bytes([i + 1]) * 8 for i in range(seats))
    return signed(
        msg.MANDATE,
        {"role": role, "start": T, "end": T + 86400, "method": 0, "seed": bytes(16), "holders": holders},
    )


def _beacon(neighbours):
    nb = b"".join((i + 1).to_bytes(2, "big") for i in range(neighbours))
    return signed(msg.BEACON, {"stored": 42, "fp": bytes(8), "battery": 90, "neighbours": nb})


def _rekey_header(nodes):
    table = b"".join(bytes([i // 256, i % 256]) + bytes(54) for i in range(nodes))
    _, f = msg.split_blob(table)
    f["epoch"] = 3
    f["eph"] = bytes(32)
    return signed(msg.REKEY, f)


def _long_header(nfrag):
    text = b"x" * ((nfrag - 1) * msg.FRAG_DATA + 1)
    _, hdr = msg.split_text(text)
    hdr["flags"] = 0
    return signed(msg.BULLETIN_LONG, hdr)


def budget_cases():
    """(kind, what, inner bytes) for every kind: the smallest useful and the largest case."""
    rng = {"hi": bytes(4), "count": 0, "fp": bytes(6)}
    one_range = rng["hi"] + bytes(2) + rng["fp"]
    return [
        ("BULLETIN", "empty text", signed(msg.BULLETIN, {"flags": 0, "text": ""})),
        ("BULLETIN", "100-byte text", signed(msg.BULLETIN, {"flags": 0, "text": "a" * 100})),
        ("BULLETIN", "154-byte text (max)", signed(msg.BULLETIN, {"flags": 0, "text": "a" * 154})),
        ("BULLETIN_LONG", "header, 2 fragments", _long_header(2)),
        ("BULLETIN_LONG", "header, 22 fragments (max)", _long_header(22)),
        ("FRAGMENT", "214 data bytes (max)", msg.fragment(bytes(16), 0, b"x" * msg.FRAG_DATA)),
        ("CONSENT", "", signed(msg.CONSENT, {"target": bytes(16), "stance": 1})),
        ("ALERT", "40-byte text", signed(msg.ALERT, {"flags": 0, "text": "a" * 40})),
        ("ALERT", "154-byte text (max)", signed(msg.ALERT, {"flags": 1, "text": "a" * 154})),
        ("RECEIPT", "", _receipt()),
        ("BUNDLE", "2 RECEIPTs (max)", msg.make_bundle([_receipt(), _receipt()])),
        ("MANDATE", "6-byte role, 2 seats", _mandate("spokes", 2)),
        ("MANDATE", "8-byte role, 15 seats (max)", _mandate("treasury", 15)),
        ("RECALL", "empty reason", signed(msg.RECALL, {"mandate": bytes(16), "reason": ""})),
        (
            "ROSTER",
            "4-byte name, no contact",
            signed(msg.ROSTER, {"op": 1, "key": bytes(32), "name": "Dana", "contact": ""}),
        ),
        ("REVOKE", "", signed(msg.REVOKE, {"key": bytes(8), "reason": 1})),
        ("REKEY", "header, 1-3 nodes (1 fragment)", _rekey_header(1)),
        ("REKEY", "header, 30 nodes (8 fragments)", _rekey_header(30)),
        ("REKEY", "header, 64 nodes (17 fragments, max)", _rekey_header(64)),
        ("FRAGMENT", "REKEY table, 3 nodes (168 bytes)", msg.fragment(bytes(16), 0, bytes(168))),
        ("HANDOVER", "empty note", signed(msg.HANDOVER, {"mandate": bytes(16), "to": bytes(8), "note": ""})),
        ("SUCCESSION", "empty note", signed(msg.SUCCESSION, {"prev": bytes(16), "next": b"\x01" * 16, "note": ""})),
        ("BEACON", "no neighbours", _beacon(0)),
        ("BEACON", "40 neighbours (as sent by plexnode)", _beacon(40)),
        ("DIGEST", "1 range", unsigned(msg.DIGEST, {"lo": bytes(4), "ranges": one_range})),
        ("DIGEST", "16 ranges", unsigned(msg.DIGEST, {"lo": bytes(4), "ranges": one_range * 16})),
        ("REQUEST", "1 id", unsigned(msg.REQUEST, {"ids": bytes(8)})),
        ("REQUEST", "28 ids (max)", unsigned(msg.REQUEST, {"ids": bytes(8 * 28)})),
        ("RACK", "1 id", unsigned(msg.RACK, {"ids": bytes(8)})),
        ("RACK", "28 ids (max)", unsigned(msg.RACK, {"ids": bytes(8 * 28)})),
        ("OFFER", "0 ids", unsigned(msg.OFFER, {"lo": bytes(4), "hi": bytes(4), "ids": b""})),
        ("OFFER", "27 ids (max)", unsigned(msg.OFFER, {"lo": bytes(4), "hi": bytes(4), "ids": bytes(8 * 27)})),
    ]


def budget_table():
    lines = [
        "| Kind | Case | Inner | Frame | LongFast ms | SF9/125k ms |",
        "|------|------|------:|------:|------------:|------------:|",
    ]
    for kind, what, inner in budget_cases():
        fr = GK.seal(inner, 15)
        assert len(fr) == len(inner) + frame.OVERHEAD <= MAX_FRAME
        msg.decode(inner)
        lines.append(
            "| %s | %s | %d | %d | %s | %s |"
            % (kind, what or "-", len(inner), len(fr), toa_ms(len(fr), LF), toa_ms(len(fr), SF9))
        )
    return lines


def long_bulletin_table():
    """Whole-bulletin cost of the longest text, on air: header frame plus every fragment frame."""
    lines = [
        "| Text bytes | Frames | Bytes on air | LongFast s | SF9/125k s |",
        "|-----------:|-------:|-------------:|-----------:|-----------:|",
    ]
    for n in (154, 215, 1000, msg.MAX_LONG_TEXT):
        text = b"y" * n
        if n <= msg.MAX_INNER - msg.SIGNED_HEAD - msg.SIG_LEN - 1:
            inners = [signed(msg.BULLETIN, {"flags": 0, "text": text.decode()})]
        else:
            chunks, hdr = msg.split_text(text)
            hdr["flags"] = 0
            h = signed(msg.BULLETIN_LONG, hdr)
            inners = [h] + [msg.fragment(msg.message_id(h), i, c) for i, c in enumerate(chunks)]
        sizes = [len(i) + frame.OVERHEAD for i in inners]
        lf = sum(time_on_air_us(s, *LF[1:3], cr=LF[3], preamble=LF[4]) for s in sizes)
        s9 = sum(time_on_air_us(s, *SF9[1:3], cr=SF9[3], preamble=SF9[4]) for s in sizes)
        lines.append("| %d | %d | %d | %.2f | %.2f |" % (n, len(sizes), sum(sizes), lf / 1e6, s9 / 1e6))
    return lines


def _varint_len(v):
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def overhead_table():
    """Per-bulletin overhead for a 150-byte text."""
    text = "a" * 150
    inner = signed(msg.BULLETIN, {"flags": 0, "text": text})
    plexus = len(inner) + frame.OVERHEAD
    # Meshtastic: 16-byte radio header + Data{portnum=1 TEXT_MESSAGE_APP (tag+varint), payload (tag+len+text)}
    mt = 16 + 2 + 1 + _varint_len(150) + 150
    mt_bits = mt + 2  # Data.bitfield (field 9) when the sender sets it
    lxmf = 112 + 150

    def rng(a, b):
        return a if a == b else "%s-%s" % (a, b)

    return [
        "| | Plexus v1 | Meshtastic 2.7 | LXMF |",
        "|---|---|---|---|",
        "| Fixed overhead per bulletin (bytes) | %d | %s | 112 + transport |"
        % (plexus - 150, rng(mt - 150, mt_bits - 150)),
        "| Bytes for a 150-byte text | %d | %s | %d + transport |" % (plexus, rng(mt, mt_bits), lxmf),
        "| LongFast airtime, 150-byte text (ms) | %s | %s | n/a: more than one 255-byte LoRa frame |"
        % (toa_ms(plexus, LF), rng(toa_ms(mt, LF), toa_ms(mt_bits, LF))),
        "| Longest text in one frame (bytes) | %d | 233 (Data.payload limit) | - |"
        % (msg.MAX_INNER - msg.SIGNED_HEAD - msg.SIG_LEN - 1),
        "| Author signature | Ed25519, 64 bytes | none | Ed25519, 64 bytes |",
        "| Integrity check before any parsing | 8-byte HMAC-SHA-256 group tag | none (AES-CTR, no MAC) | - |",
        "| Clear on air | 7-byte relay header | 16-byte header (sender, destination, packet id) | - |",
        "| Forgery by another key holder | impossible without the author's key | possible (any channel-key holder) "
        "| impossible without the source's key |",
    ]


def all_tables():
    return budget_table() + long_bulletin_table() + overhead_table()


def test_spec_tables_match_code():
    spec = SPEC.read_text(encoding="utf-8")
    missing = [line for line in all_tables() if line not in spec]
    assert not missing, (
        "SPEC.md tables are stale; regenerate with `.venv/bin/python tests/test_spec_tables.py`:\n" + "\n".join(missing)
    )


def test_spec_constants_match_code():
    spec = " ".join(SPEC.read_text(encoding="utf-8").split())  # prose phrases may wrap across lines
    hour_us = 360 * 1000000  # EU 868 g3 sub-band: 10 % of an hour
    full = [hour_us // time_on_air_us(MAX_FRAME, m[1], m[2], cr=m[3], preamble=m[4]) for m in (LF, SF9)]
    max_text = msg.MAX_INNER - msg.SIGNED_HEAD - msg.SIG_LEN - 1
    for phrase in (
        "overhead is %d bytes" % frame.OVERHEAD,
        "at most %d bytes of inner message" % msg.MAX_INNER,
        "at most %d bytes of UTF-8 text" % max_text,
        "at most %d data bytes" % msg.FRAG_DATA,
        "1..%d fragments" % msg.MAX_FRAGS,
        "up to %d bytes of text" % msg.MAX_LONG_TEXT,
        "at most %d bytes of body" % hostlink.MAX_BODY,
        "longer than %d bytes" % hostlink.MAX_LINE,
        "at most %d full 255-byte frames per hour at LongFast, %d at SF9/125k" % (full[0], full[1]),
        "largest record is a 22-fragment header with 4608 bytes of text: 1 + %d + %d = %d bytes"
        % (len(_long_header(22)), msg.MAX_LONG_TEXT, 1 + len(_long_header(22)) + msg.MAX_LONG_TEXT),
    ):
        assert phrase in spec, phrase


def test_spec_worked_example_is_the_golden_vector():
    """The annotated frame in SPEC.md section 3.5 is the `bulletin-empty` golden vector, byte for byte."""
    spec = SPEC.read_text(encoding="utf-8")
    v = [c for c in json.loads((VECTORS / "bulletin.json").read_text()) if c["name"] == "bulletin-empty"][0]
    fr = bytes.fromhex(v["frame"])
    inner = bytes.fromhex(v["inner"])
    for part in (fr[0:1], fr[1:2], fr[2:3], fr[3:5], fr[5:7], fr[7:15], fr[-8:], inner[0:1], inner[1:9], inner[9:13]):
        assert part.hex() in spec, part.hex()
    assert v["id"] in spec


if __name__ == "__main__":
    for block in (budget_table(), long_bulletin_table(), overhead_table()):
        print("\n".join(block))
        print()


def test_event_lines_use_the_key_spec_names():
    """SPEC s.7.2: an EVENT body is JSON {"type": name, ...}; the device app and the virtual node both emit it."""
    import re

    from plexnode import app
    from plexus import virtual

    key = re.search(r'\| EVENT \| - \(node to laptop\) \| JSON `\{"(\w+)": name', SPEC.read_text()).group(1)
    ev = ("alert", {"id": bytes(16), "real": False, "text": "drill", "origin": "ab", "hops": 1})
    for line in (app.event_line(ev), virtual.event_line(ev)):
        op, req, body = hostlink.decode_line(line.strip())
        assert op == hostlink.EVENT and req == 0
        doc = json.loads(body)
        assert doc[key] == "alert" and doc["id"] == "00" * 16
    assert app.event_line(("display", {})) is None and virtual.event_line(("display", {})) is None
