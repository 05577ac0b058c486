"""Group genesis and roster (SPEC.md section 8): who belongs, which keys sign, the quorum rule.

The roster document is JSON (the same file on laptops and nodes); the group id is a hash over a
canonical binary form of its founding content, so it is identical on MicroPython and CPython.
"""

import binascii
import hashlib

from plexwire import msg

ROLE_MEMBER = "member"
ROLE_NODE = "node"


def _unhex(s, n, what):
    try:
        b = binascii.unhexlify(s)
    except Exception:
        raise ValueError("%s is not hex" % what) from None
    if len(b) != n:
        raise ValueError("%s must be %d bytes" % (what, n))
    return b


def genesis_id(name, quorum_k, member_pubs, node_pubs):
    """group_id = SHA256("plexus/v1/group\\0" || u8 len name || name || u16 k || u16 n || sorted member keys
    || u16 m || sorted node keys)[:8]."""
    nb = name.encode("utf-8")
    if len(nb) > 255 or len(member_pubs) > 65535 or len(node_pubs) > 65535 or not 0 < quorum_k <= 65535:
        raise ValueError("genesis out of range")
    h = hashlib.sha256(b"plexus/v1/group\x00")
    h.update(bytes([len(nb)]))
    h.update(nb)
    h.update(quorum_k.to_bytes(2, "big"))
    h.update(len(member_pubs).to_bytes(2, "big"))
    for p in sorted(member_pubs):
        h.update(p)
    h.update(len(node_pubs).to_bytes(2, "big"))
    for p in sorted(node_pubs):
        h.update(p)
    return h.digest()[:8]


class Entry:
    def __init__(self, pub, role, name, contact="", holder=""):
        self.pub = pub
        self.kid = msg.key_id(pub)
        self.role = role
        self.name = name
        self.contact = contact
        self.holder = holder
        self.revoked = False


class Roster:
    """Members (people, whose keys live on laptops) and nodes (radios, whose keys live on the node)."""

    def __init__(self, doc):
        if doc.get("v") != 1:
            raise ValueError("roster document version must be 1")
        self.name = doc["name"]
        q = doc.get("quorum", {})
        self.entries = {}
        members = []
        nodes = []
        for m in doc.get("members", []):
            e = Entry(_unhex(m["key"], 32, "member key"), ROLE_MEMBER, m.get("name", ""), m.get("contact", ""))
            self.entries[e.kid] = e
            members.append(e.pub)
        for n in doc.get("nodes", []):
            e = Entry(_unhex(n["key"], 32, "node key"), ROLE_NODE, n.get("name", ""), n.get("contact", ""), n.get("holder", ""))
            self.entries[e.kid] = e
            nodes.append(e.pub)
        if not members:
            raise ValueError("a group needs at least one member")
        n_members = len(members)
        if "k" in q:
            k = int(q["k"])
        else:
            num, den = q.get("fraction", [1, 2])
            k = n_members * num // den + 1 if (n_members * num) % den == 0 else -(-n_members * num // den)
        if not 0 < k <= n_members:
            raise ValueError("quorum must be between 1 and the number of members")
        self.quorum = k
        self.group_id = genesis_id(self.name, k, members, nodes)
        if "group_id" in doc and _unhex(doc["group_id"], 8, "group_id") != self.group_id:
            raise ValueError("group_id does not match the roster's founding content")
        self.mandate_kinds = doc.get("mandate_kinds", [])

    def get(self, kid):
        return self.entries.get(bytes(kid))

    def pub(self, kid):
        e = self.entries.get(bytes(kid))
        return e.pub if e is not None and not e.revoked else None

    def by_short(self, short):
        out = []
        for kid, e in self.entries.items():
            if msg.short_id(kid) == short:
                out.append(e)
        return out

    def members(self):
        return [e for e in self.entries.values() if e.role == ROLE_MEMBER]

    def nodes(self):
        return [e for e in self.entries.values() if e.role == ROLE_NODE]


def make_doc(name, members, nodes, quorum_k=None, fraction=None):
    """members/nodes: lists of dicts with name, key (hex) and optional contact/holder."""
    doc = {"v": 1, "name": name, "members": members, "nodes": nodes}
    if quorum_k is not None:
        doc["quorum"] = {"k": quorum_k}
    elif fraction is not None:
        doc["quorum"] = {"fraction": list(fraction)}
    doc["group_id"] = binascii.hexlify(Roster(doc).group_id).decode()
    return doc
