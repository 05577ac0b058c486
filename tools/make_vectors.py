#!/usr/bin/env python3
"""Write protocol/vectors/*.json: golden frames for every kind, from fixed seeds, signed with `cryptography`.

Run `make vectors` after a deliberate wire-format change; tests check every vector on CPython and MicroPython.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from plexwire import frame, msg

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "protocol" / "vectors"


def seed(label: str) -> bytes:
    return hashlib.sha256(b"plexus test vector seed\x00" + label.encode()).digest()


def pub(s: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(s).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


GROUP_SECRET = seed("group secret")
GROUP_ID = seed("group id")[:8]
EPOCH = 2
KEYS = {name: seed(name) for name in ("alice", "bob", "carol", "node-1", "node-2")}


def signed(kind: int, author: str, time: int, fields: dict) -> bytes:
    s = KEYS[author]
    kid = msg.key_id(pub(s))
    unsigned = msg.encode_unsigned(kind, fields, author=kid, time=time)
    sig = Ed25519PrivateKey.from_private_bytes(s).sign(msg.signing_bytes(GROUP_ID, unsigned))
    return msg.finish(unsigned, sig)


def kid(name: str) -> bytes:
    return msg.key_id(pub(KEYS[name]))


def rekey_case(t: int) -> tuple[str, bytes, dict]:
    """A REKEY to epoch 3 wrapping a new secret for node-1 (node-2 is the one revoked), from fixed seeds."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from plexnode.x25519 import public_u
    from plexwire import rekey

    new = seed("rekey new group secret")
    eph = X25519PrivateKey.from_private_bytes(seed("rekey ephemeral"))
    epub = eph.public_key().public_bytes_raw()
    entries = []
    for n in ("node-1",):
        u = public_u(pub(KEYS[n]))
        z = eph.exchange(X25519PublicKey.from_public_bytes(u))
        entries.append(rekey.wrap(kid(n), new, rekey.wrap_key(GROUP_ID, 3, epub, u, z)))
    table = b"".join(sorted(entries))
    inner = signed(msg.REKEY, "alice", t, rekey.header_fields(3, epub, table))
    return "rekey", inner, {"table_hex": table.hex(), "new_secret": new.hex(), "eph_secret": seed("rekey ephemeral").hex()}


def cases() -> list[tuple[str, bytes, dict]]:
    T = 89_000_000  # seconds since the Plexus epoch (2024-01-01T00:00:00Z): late 2026
    text150 = "Decision: rent strike from Monday 1 Dec. Meet 18:00 in the laundry room, bring your lease. Consent by Sunday — ¡todos juntos! ✊ Pass it on offline."
    b1 = signed(msg.BULLETIN, "alice", T, {"flags": msg.BULLETIN_DECISION, "text": text150})
    long_text = ("Minutes of the general assembly. " * 40).encode()
    chunks, hdr = msg.split_text(long_text)
    hdr["flags"] = 0
    lh = signed(msg.BULLETIN_LONG, "bob", T + 60, hdr)
    lid = msg.message_id(lh)
    alert = signed(msg.ALERT, "carol", T + 120, {"flags": 0, "text": "DRILL: phone tree test, press the button"})
    aid = msg.message_id(alert)
    mandate = signed(
        msg.MANDATE,
        "alice",
        T + 300,
        {
            "role": "spokes",
            "start": T + 300,
            "end": T + 300 + 30 * 86400,
            "method": msg.METHOD_LOT,
            "seed": msg.message_id(b1),
            "holders": sorted([kid("bob"), kid("carol")]),
        },
    )
    mid = msg.message_id(mandate)
    receipts = [
        signed(msg.RECEIPT, "node-1", T + 125, {"alert": aid, "state": msg.RECEIPT_REACHED, "hops": 1, "via": 0x1234, "delay": 0}),
        signed(msg.RECEIPT, "node-2", T + 130, {"alert": aid, "state": msg.RECEIPT_CONFIRMED, "hops": 2, "via": msg.short_id(kid("node-1")), "delay": 10}),
    ]
    out = [
        ("bulletin-150-bytes", b1, {}),
        ("bulletin-empty", signed(msg.BULLETIN, "bob", 0, {"flags": 0, "text": ""}), {}),
        ("bulletin-long-header", lh, {"text_hex": long_text.hex()}),
    ]
    for i, c in enumerate(chunks):
        out.append(("fragment-%d" % i, msg.fragment(lid, i, c), {}))
    mid_text = ("Decision on the repair fund, full text: " * 5).encode()[:190]  # 155..214 bytes: one fragment
    mchunks, mhdr = msg.split_text(mid_text)
    mhdr["flags"] = msg.BULLETIN_DECISION
    mh = signed(msg.BULLETIN_LONG, "carol", T + 90, mhdr)
    out.append(("bulletin-long-one-fragment", mh, {"text_hex": mid_text.hex()}))
    out.append(("fragment-of-one", msg.fragment(msg.message_id(mh), 0, mchunks[0]), {}))
    out += [
        ("consent", signed(msg.CONSENT, "carol", T + 200, {"target": msg.message_id(b1), "stance": msg.STANCE_CONSENT}), {}),
        ("alert-drill", alert, {}),
        ("alert-real", signed(msg.ALERT, "alice", T + 121, {"flags": msg.ALERT_REAL, "text": "Eviction crew at no. 12, come now"}), {}),
        ("receipt-reached", receipts[0], {}),
        ("receipt-confirmed", receipts[1], {}),
        ("bundle-of-receipts", msg.make_bundle(receipts), {}),
        ("mandate", mandate, {}),
        ("recall", signed(msg.RECALL, "bob", T + 400, {"mandate": mid, "reason": "absent from two assemblies"}), {}),
        ("roster-add-member", signed(msg.ROSTER, "alice", T + 10, {"op": msg.ROSTER_ADD_MEMBER, "key": pub(seed("dana")), "name": "Dana", "contact": "flat 4B; phone via Bob"}), {}),
        ("revoke", signed(msg.REVOKE, "alice", T + 500, {"key": kid("node-2"), "reason": 1}), {}),
        rekey_case(T + 501),
        ("handover", signed(msg.HANDOVER, "bob", T + 600, {"mandate": mid, "to": kid("carol"), "note": "keys to the office are with Carol"}), {}),
        ("beacon", signed(msg.BEACON, "node-1", T + 700, {"stored": 42, "fp": bytes.fromhex("0123456789abcdef"), "battery": 87, "neighbours": bytes.fromhex("12345678abcd")}), {}),
        ("digest", msg.encode_unsigned(msg.DIGEST, {"lo": bytes(4), "ranges": bytes.fromhex("40000000000301020304050680000000000a0a0b0c0d0e0f")}), {}),
        ("request", msg.encode_unsigned(msg.REQUEST, {"ids": msg.message_id(b1)[:8] + lid[:8]}), {}),
        ("rack", msg.encode_unsigned(msg.RACK, {"ids": msg.message_id(receipts[0])[:8] + msg.message_id(receipts[1])[:8]}), {}),
        ("offer", msg.encode_unsigned(msg.OFFER, {"lo": bytes(4), "hi": b"\xff\xff\xff\xff", "ids": msg.message_id(b1)[:8]}), {}),
    ]
    # issue 7: an election with a cap on consecutive terms, and the hand-over record to it (appended, so the
    # frames above keep their header fields)
    elected = signed(msg.MANDATE, "bob", T + 800, {
        "role": "spokes", "start": T + 300 + 30 * 86400, "end": T + 300 + 60 * 86400,
        "method": msg.METHOD_ELECTION | msg.METHOD_EXCLUDE_LAST | (2 << msg.METHOD_CONSEC_SHIFT),
        "seed": bytes(16), "holders": [kid("alice")]})
    out += [
        ("mandate-election-capped", elected, {}),
        ("succession", signed(msg.SUCCESSION, "carol", T + 300 + 30 * 86400, {
            "prev": mid, "next": msg.message_id(elected), "note": "office keys and the bank card to Alice"}), {}),
    ]
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    gk = frame.GroupKey(GROUP_SECRET, EPOCH)
    common = {
        "comment": "Plexus protocol v1 golden vectors; generated by tools/make_vectors.py from fixed seeds (test keys only).",
        "group_secret": GROUP_SECRET.hex(),
        "group_id": GROUP_ID.hex(),
        "epoch": EPOCH,
        "net": gk.net,
        "keys": {n: {"seed": s.hex(), "public": pub(s).hex(), "key_id": kid(n).hex()} for n, s in KEYS.items()},
    }
    by_kind: dict[str, list] = {}
    for i, (name, inner, extra) in enumerate(cases()):
        m = msg.decode(inner)
        hop_limit, hops, rly, dst = 5, i % 3, 0x0100 + i, 0 if i % 2 else 0x0BEE
        fr = gk.seal(inner, hop_limit, rly=rly, dst=dst, hops=hops)
        case = {
            "name": name,
            **msg.to_json(m),
            "inner": inner.hex(),
            "id": msg.message_id(inner).hex(),
            "header": {"hop_limit": hop_limit, "hops": hops, "rly": rly, "dst": dst},
            "frame": fr.hex(),
            **extra,
        }
        by_kind.setdefault(m.name, []).append(case)
    (OUT / "common.json").write_text(json.dumps(common, indent=1, ensure_ascii=False) + "\n")
    for kind, lst in sorted(by_kind.items()):
        (OUT / ("%s.json" % kind)).write_text(json.dumps(lst, indent=1, ensure_ascii=False) + "\n")
    print("wrote %d kinds, %d frames to %s" % (len(by_kind), sum(len(v) for v in by_kind.values()), OUT))


if __name__ == "__main__":
    main()
