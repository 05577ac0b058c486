"""The group on the laptop: the roster document (plexwire.group) and, separately, the group secret.

Files (in $PLEXUS_HOME, default ~/.local/share/plexus, unless a path is given):

* ``group.json``: the roster document written by ``plexwire.group.make_doc`` (public; share it with every
  member and put it on every node).
  Members and nodes added later by an adopted ROSTER message (SPEC.md s.10) are kept under ``"added"``
  (``[{"role", "name", "key", "contact"?, "roster": ROSTER id hex}]``, plexus.rosterstate): the founding fields
  ``name``, ``quorum``, ``members`` and ``nodes`` define the group id and never change. Nodes ignore ``added``;
  they learn an addition from the signed ROSTER record and its consents (their store, anti-entropy, provisioning).
  Adopted ROSTER updates (new name and/or contact of a key) are kept under ``"updated"``
  (``[{"key", "name", "contact"?, "roster": id of the update in force}]``, one per key, plexus.rosterstate);
  they override the name and contact of the founding or added entry, which stay as they were written.
* ``group.secret.json``: ``{"v": 1, "group_id": hex, "secret": 32 random bytes hex, "epoch": 0}``, mode 0600.
  It keys the air frames and never goes into the roster document.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

from plexwire import group as pgroup
from plexwire import msg

from plexus import keys as keymod


class GroupError(ValueError):
    """A group-configuration problem the user can fix."""


def group_path(override: str | os.PathLike | None = None) -> Path:
    return Path(override).expanduser() if override else keymod.home() / "group.json"


def secret_path(group_file: str | os.PathLike) -> Path:
    """The secret lives beside the roster: group.json -> group.secret.json."""
    p = Path(group_file)
    stem = p.name[:-5] if p.name.endswith(".json") else p.name
    return p.with_name(stem + ".secret.json")


def parse_fraction(s: str) -> tuple[int, int]:
    try:
        num, den = s.split("/")
        f = Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        raise GroupError("bad fraction %r: write it like 1/2 or 2/3" % s) from None
    if not 0 < f < 1:
        raise GroupError("fraction must be between 0 and 1 (exclusive), e.g. 1/2")
    return int(num), int(den)


def _split_spec(spec: str, what: str, form: str) -> tuple[str, str]:
    if "=" not in spec:
        raise GroupError("bad %s %r: write %s" % (what, spec, form))
    name, val = spec.split("=", 1)
    name, val = name.strip(), val.strip()
    if not name or not val:
        raise GroupError("bad %s %r: write %s" % (what, spec, form))
    return name, val


def _check_pub(pub: bytes, what: str, name: str) -> None:
    if not keymod.valid_pub(pub):
        raise GroupError("%s %s: %s is not a valid Ed25519 public key" % (what, name, pub.hex()))


def resolve_member(spec: str, keystore: str | os.PathLike | None = None) -> dict:
    """NAME=KEYHEX (64 hex digits) or NAME=KEYSTORE_NAME -> roster entry {"name", "key"}."""
    name, val = _split_spec(spec, "member", "NAME=KEYHEX or NAME=KEYSTORE_NAME")
    if len(name) > 64 or not name.isprintable():
        raise GroupError("bad member name %r: 1-64 printable characters" % name)
    pub = keymod.parse_pub_hex(val)
    if pub is None:
        try:
            pub = keymod.load_key(val, keystore).pub
        except keymod.KeyStoreError as e:
            raise GroupError("member %s: %s is neither 64 hex digits nor a usable key (%s)" % (name, val, e)) from None
    _check_pub(pub, "member", name)
    return {"name": name, "key": pub.hex()}


def resolve_node(spec: str) -> dict:
    """NAME=KEYHEX -> roster entry {"name", "key"}; a node's name is also a file name (its store, `--name`)."""
    name, val = _split_spec(spec, "node", "NAME=KEYHEX")
    try:
        keymod.check_name(name, "node")
    except keymod.KeyStoreError as e:
        raise GroupError(str(e)) from None
    pub = keymod.parse_pub_hex(val)
    if pub is None:
        raise GroupError("node %s: key must be 64 hex digits (the node_key its HELLO reports)" % name)
    _check_pub(pub, "node", name)
    return {"name": name, "key": pub.hex()}


def make_group(name: str, member_specs: list[str], node_specs: list[str] | None = None, quorum: int | None = None,
               fraction: str | None = None, keystore: str | os.PathLike | None = None) -> dict:
    """Build (and validate) a roster document; nothing is written."""
    if not name:
        raise GroupError("the group needs a name (--name)")
    if quorum is not None and fraction is not None:
        raise GroupError("give either --quorum or --fraction, not both")
    members = [resolve_member(s, keystore) for s in member_specs]
    nodes = [resolve_node(s) for s in (node_specs or [])]
    if not members:
        raise GroupError("a group needs at least one member (--member NAME=KEY)")
    seen: dict[str, str] = {}
    for e in members + nodes:
        if e["key"] in seen:
            raise GroupError("key of %s is also given for %s" % (e["name"], seen[e["key"]]))
        seen[e["key"]] = e["name"]
    names = [e["name"] for e in members]
    if len(set(names)) != len(names):
        raise GroupError("member names must be unique")
    frac = parse_fraction(fraction) if fraction is not None else None
    if quorum is None and frac is None:
        frac = (1, 2)
    try:
        return pgroup.make_doc(name, members, nodes, quorum_k=quorum, fraction=frac)
    except (ValueError, KeyError) as e:
        raise GroupError(str(e)) from None


def _write_private(path: Path, data: str, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)


def init_group(name: str, member_specs: list[str], node_specs: list[str] | None = None, quorum: int | None = None,
               fraction: str | None = None, path: str | os.PathLike | None = None,
               keystore: str | os.PathLike | None = None, force: bool = False, secret: bytes | None = None) -> dict:
    """Write the roster document and a fresh group secret (epoch 0). Refuses to overwrite without force."""
    doc = make_group(name, member_specs, node_specs, quorum, fraction, keystore)
    gp = group_path(path)
    sp = secret_path(gp)
    if not force:
        for p in (gp, sp):
            if p.exists():
                raise GroupError("%s exists (use --force to replace the group)" % p)
    gp.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = gp.with_name(gp.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, gp)
    s = secret if secret is not None else os.urandom(32)
    _write_private(sp, json.dumps({"v": 1, "group_id": doc["group_id"], "secret": s.hex(), "epoch": 0}) + "\n", True)
    return doc


def load_doc(path: str | os.PathLike | None = None) -> dict:
    gp = group_path(path)
    try:
        return json.loads(gp.read_text())
    except FileNotFoundError:
        raise GroupError("no group file at %s (create one with `plexus group init`)" % gp) from None
    except ValueError:
        raise GroupError("%s is not valid JSON" % gp) from None


def roster_of(doc: dict) -> pgroup.Roster:
    """The effective roster: the founding document (which fixes the group id) plus the entries under "added",
    each marked with ``.added`` (the hex id of the ROSTER message that added it), with the names and contacts
    under "updated" applied (marked ``.updated``: the id of the ROSTER update). ValueError on a bad document."""
    r = pgroup.Roster(doc)
    for a in doc.get("added", []):
        role = a.get("role")
        if role not in (pgroup.ROLE_MEMBER, pgroup.ROLE_NODE):
            raise ValueError("added entry %r: role must be member or node" % a.get("name"))
        e = pgroup.Entry(pgroup._unhex(a["key"], 32, "added key"), role, a.get("name", ""), a.get("contact", ""))
        if e.kid in r.entries:
            continue  # already a founding entry
        e.added = str(a.get("roster", ""))  # type: ignore[attr-defined]
        r.entries[e.kid] = e
    for u in doc.get("updated", []):
        e = r.get(msg.key_id(pgroup._unhex(u["key"], 32, "updated key")))
        if e is None:
            continue  # not (yet) in this roster: ignored, as a node ignores an update of a key it does not hold
        e.name, e.contact = str(u.get("name", "")), str(u.get("contact", ""))
        e.updated = str(u.get("roster", ""))  # type: ignore[attr-defined]
    return r


def added_by(e: pgroup.Entry) -> str | None:
    """The ROSTER id (hex) that added a roster entry after genesis, None for a founding entry."""
    return getattr(e, "added", None)


def updated_by(e: pgroup.Entry) -> str | None:
    """The ROSTER update id (hex) that set a roster entry's current name and contact, None if never updated."""
    return getattr(e, "updated", None)


def load_roster(path: str | os.PathLike | None = None) -> pgroup.Roster:
    doc = load_doc(path)
    try:
        return roster_of(doc)
    except (ValueError, KeyError, TypeError) as e:
        raise GroupError("%s: %s" % (group_path(path), e)) from None


def write_doc(doc: dict, path: str | os.PathLike | None = None) -> None:
    """Replace the roster document (atomically); the group id must stay the one the file has."""
    gp = group_path(path)
    if pgroup.Roster(doc).group_id != pgroup.Roster(load_doc(path)).group_id:
        raise GroupError("refusing to change the group id of %s" % gp)
    tmp = gp.with_name(gp.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, gp)


def load_secret(path: str | os.PathLike | None = None) -> tuple[bytes, int]:
    sp = secret_path(group_path(path))
    try:
        d = json.loads(sp.read_text())
        s = bytes.fromhex(d["secret"])
        epoch = int(d.get("epoch", 0))
    except FileNotFoundError:
        raise GroupError("no group secret at %s" % sp) from None
    except (ValueError, KeyError, TypeError):
        raise GroupError("%s is not a valid group secret file" % sp) from None
    if len(s) != 32 or not 0 <= epoch <= 15:
        raise GroupError("%s: secret must be 32 bytes and epoch 0..15" % sp)
    return s, epoch


def summary(doc: dict) -> dict:
    """What `plexus group show` prints: name, id, quorum, members, nodes."""
    r = roster_of(doc)
    q = doc.get("quorum", {})
    rule = "k=%d" % q["k"] if "k" in q else "more than %d/%d of members" % tuple(q.get("fraction", [1, 2]))

    def ent(e) -> dict:
        d = {"name": e.name, "key_id": e.kid.hex(), "key": e.pub.hex()}
        if e.contact:
            d["contact"] = e.contact
        if e.holder:
            d["holder"] = e.holder
        if added_by(e) is not None:
            d["added_by"] = added_by(e)
        if updated_by(e) is not None:
            d["updated_by"] = updated_by(e)
        return d

    return {
        "name": r.name,
        "group_id": r.group_id.hex(),
        "quorum": r.quorum,
        "quorum_rule": rule,
        "members": [ent(e) for e in r.members()],
        "nodes": [ent(e) for e in r.nodes()],
    }


def author_name(roster: pgroup.Roster, kid: bytes) -> str:
    e = roster.get(kid)
    return e.name if e is not None and e.name else msg._hex(kid)


def member_key(roster: pgroup.Roster, keystore: str | os.PathLike | None = None, name: str | None = None) -> keymod.Key:
    """The keystore key to sign with: `name` is a keystore key name or a roster member name; without a name,
    the only keystore key that belongs to a member of this group."""
    members = {e.kid: e for e in roster.members()}
    if name:
        try:
            k = keymod.load_key(name, keystore)
        except keymod.KeyStoreError:
            k = None
        if k is None:
            by_name = [e for e in members.values() if e.name == name]
            if by_name:
                for cand in keymod.list_keys(keystore):
                    if cand.kid == by_name[0].kid:
                        k = cand
                        break
        if k is None:
            raise GroupError("no key for %r in %s" % (name, keymod.keystore_dir(keystore)))
        if k.kid not in members:
            raise GroupError("key %s is not a member of group %s" % (name, roster.name))
        return k
    mine = [k for k in keymod.list_keys(keystore) if k.kid in members]
    if not mine:
        raise GroupError("none of the keys in %s belongs to a member of %s" % (keymod.keystore_dir(keystore), roster.name))
    if len(mine) > 1:
        raise GroupError("several member keys (%s): choose one with --as" % ", ".join(k.name for k in mine))
    return mine[0]
