"""Vector checks written in the MicroPython subset: the same source runs on CPython and under the rig."""

VECTOR_CHECK = r'''
import json, binascii
from plexwire import msg, frame, DecodeError

def _check_vectors(common, cases):
    gk = frame.GroupKey(binascii.unhexlify(common["group_secret"]), common["epoch"])
    res = []
    for c in cases:
        inner = binascii.unhexlify(c["inner"])
        m = msg.decode(inner)
        r = {"name": c["name"], "kind": m.name, "fields": msg.fields_to_json(m.kind, m.f)}
        if msg.is_signed(m.kind):
            r["author"] = binascii.hexlify(m.author).decode()
            r["time"] = m.time
            again = msg.finish(msg.encode_unsigned(m.kind, msg.fields_from_json(m.kind, c["fields"]),
                                                   binascii.unhexlify(c["author"]), c["time"]),
                               binascii.unhexlify(c["sig"]))
        else:
            again = msg.encode_unsigned(m.kind, msg.fields_from_json(m.kind, c["fields"]))
        r["reencoded"] = binascii.hexlify(again).decode()
        r["id"] = binascii.hexlify(msg.message_id(inner)).decode()
        fr = binascii.unhexlify(c["frame"])
        h = frame.parse_header(fr)
        r["header"] = {"hop_limit": h.hop_limit, "hops": h.hops, "rly": h.rly, "dst": h.dst}
        r["opened"] = binascii.hexlify(gk.open(fr)).decode()
        r["sealed"] = binascii.hexlify(gk.seal(inner, h.hop_limit, h.rly, h.dst, h.hops)).decode()
        res.append(r)
    return res
'''
