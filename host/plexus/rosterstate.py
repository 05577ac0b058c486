"""The laptop's side of growing a group (SPEC.md s.10): `plexus group add` posts a ROSTER message; once the
ledger shows it adopted by a quorum (the node core replayed by `plexus.audit`, as for rekeys in
`plexus.rekeystate`), the member or node joins the laptop's roster.

The group id is a hash over the founding roster (plexwire.group.genesis_id), and every node checks frames and
signatures against it: the founding fields of ``group.json`` therefore never change. An adopted addition is
appended under ``"added"`` (with the id of its ROSTER message; groupcfg.roster_of applies them), so `group
show`, `group revoke`, mandates, drills, the ledger's signature check and provisioning all see it. Nodes ignore
``"added"``: they learn an addition only from the signed ROSTER record and its consents (their store, replayed
at boot; anti-entropy; and `node provision`, which posts those records to the node it provisions).

`plexus group update` posts a ROSTER update (op 3: a new name and/or contact for a key in the roster). The
laptop follows adopted updates exactly as the nodes do: in adoption order, an update of a key the roster holds
at that moment sets its name and contact (the last adopted update of a key wins), an update of a key not yet
in the roster is ignored. ``group.json`` keeps the outcome under ``"updated"``, one entry per key: its current
name and contact and the id of the adopted ROSTER update that set them; the founding fields stay as they were.
"""

from __future__ import annotations

import os

from plexwire import group as pgroup
from plexwire import msg

from plexus import groupcfg, rekeystate

ADD_OPS = {msg.ROSTER_ADD_MEMBER: pgroup.ROLE_MEMBER, msg.ROSTER_ADD_NODE: pgroup.ROLE_NODE}


def additions(gov: rekeystate.Governance, roster: pgroup.Roster) -> list[dict]:
    """The adopted ROSTER additions whose key `roster` lacks, in adoption order (the first adopted addition
    of a key wins, as on the nodes): [{"role", "name", "key", "contact"?, "roster"}]."""
    cands = [(gov.adopted[rid], rid, f) for rid, f in gov.rosters if f["op"] in ADD_OPS and rid in gov.adopted]
    out: list[dict] = []
    seen: set[bytes] = set()
    for _, rid, f in sorted(cands, key=lambda c: c[0]):
        kid = msg.key_id(f["key"])
        if kid in seen or roster.get(kid) is not None:
            continue
        seen.add(kid)
        d = {"role": ADD_OPS[f["op"]], "name": f["name"], "key": bytes(f["key"]).hex(), "roster": rid.hex()}
        if f["contact"]:
            d["contact"] = f["contact"]
        out.append(d)
    return out


def updates(gov: rekeystate.Governance, roster: pgroup.Roster) -> list[dict]:
    """The adopted ROSTER updates in force, one per key (the last adopted update of a key wins, as on the nodes),
    in adoption order: [{"key", "name", "contact"?, "roster"}]. As the node core does, an update counts only if
    its key is in the roster when it is adopted: a founding key, or one whose addition was adopted before."""
    cands = sorted((gov.adopted[rid], rid, f) for rid, f in gov.rosters if rid in gov.adopted)
    present = {kid for kid, e in roster.entries.items() if groupcfg.added_by(e) is None}
    last: dict[bytes, tuple[int, bytes, dict]] = {}
    for n, rid, f in cands:
        kid = msg.key_id(f["key"])
        if f["op"] in ADD_OPS:
            present.add(kid)
        elif f["op"] == msg.ROSTER_UPDATE and kid in present and roster.get(kid) is not None:
            last[kid] = (n, rid, f)
    out: list[dict] = []
    for _, rid, f in sorted(last.values(), key=lambda c: c[0]):
        d = {"key": bytes(f["key"]).hex(), "name": f["name"], "roster": rid.hex()}
        if f["contact"]:
            d["contact"] = f["contact"]
        out.append(d)
    return out


def describe_update(u: dict) -> str:
    """`member ben is now benny, contact 0151 2345` for an update `refresh_all` reports (with "role", "was")."""
    was = u.get("was", {})
    old, name, contact = was.get("name") or u["key"][:16], u["name"], u.get("contact", "")
    parts = []
    if name != old:
        parts.append("is now %s" % name)
    if contact != was.get("contact", ""):
        parts.append("contact %s" % (contact or "cleared"))
    return "%s %s %s" % (u.get("role", "entry"), old, ", ".join(parts) or "unchanged")


def pending_update(gov: rekeystate.Governance, kid: bytes) -> bytes | None:
    """The id of a ROSTER update of this key still waiting for consents, if any."""
    for rid, f in gov.rosters:
        if f["op"] == msg.ROSTER_UPDATE and rid not in gov.adopted and msg.key_id(f["key"]) == kid:
            return rid
    return None


def pending_add(gov: rekeystate.Governance, key: bytes, name: str) -> bytes | None:
    """The id of a ROSTER addition of this key or name still waiting for consents, if any."""
    for rid, f in gov.rosters:
        if f["op"] in ADD_OPS and rid not in gov.adopted and (bytes(f["key"]) == key or f["name"] == name):
            return rid
    return None


def refresh(group: str | os.PathLike | None = None, ledger_path: str | os.PathLike | None = None) -> list[dict]:
    """The additions `refresh_all` made (see there)."""
    return refresh_all(group, ledger_path)[0]


def refresh_all(group: str | os.PathLike | None = None,
                ledger_path: str | os.PathLike | None = None) -> tuple[list[dict], list[dict]]:
    """Bring group.json up to date with the ledger: append every adopted addition it lacks under "added", then
    set "updated" to the adopted updates in force. Returns (the new additions, the updates newly in force, each
    with "role" and "was": the name and contact before); ([], []) when there is no ledger or nothing new.
    Records the ledger refused as from an unknown author are checked again against the grown roster (a new
    member's consents, a new node's receipts), which can adopt more."""
    from plexus import ledger as ledgermod

    p = ledgermod.resolve_path(ledger_path)
    if not p.exists():
        return [], []
    done: list[dict] = []
    gov = None
    for _ in range(16):  # each round adds at least one entry, or stops
        roster = groupcfg.load_roster(group)
        gov = rekeystate.governance(p, roster)
        new = additions(gov, roster) if gov is not None else []
        if not new:
            break
        doc = groupcfg.load_doc(group)
        doc["added"] = list(doc.get("added", [])) + new
        groupcfg.write_doc(doc, group)
        done += new
        with ledgermod.Ledger(str(p), groupcfg.load_roster(group)) as led:
            led.retry_rejects()
    if gov is None:
        return done, []
    roster = groupcfg.load_roster(group)
    doc = groupcfg.load_doc(group)
    have = {u.get("roster") for u in doc.get("updated", [])}
    now = updates(gov, roster)
    fresh = []
    for u in now:
        if u["roster"] in have:
            continue
        e = roster.get(msg.key_id(bytes.fromhex(u["key"])))
        assert e is not None  # updates() keeps only keys in the roster
        fresh.append(dict(u, role=e.role, was={"name": e.name, "contact": e.contact}))
    if now != doc.get("updated", []):
        if now:
            doc["updated"] = now
        else:
            doc.pop("updated", None)
        groupcfg.write_doc(doc, group)
    return done, fresh


def handover(doc: dict, ledger_path: str | os.PathLike | None = None) -> tuple[list[bytes], list[str]]:
    """What a node booting from the founding roster needs to know the additions and updates: for each entry
    under "added", then under "updated", its ROSTER record and the consents on it, from the ledger (in that
    order, so a member added first can consent to a later addition, and an added key exists before its update).
    Returns (packed records, names of entries whose ROSTER the ledger lacks)."""
    from plexus import ledger as ledgermod

    added = doc.get("added", []) + doc.get("updated", [])  # additions first: an update may be of an added key
    if not added:
        return [], []
    p = ledgermod.resolve_path(ledger_path)
    if not p.exists():
        return [], [a.get("name", "?") for a in added]
    out: list[bytes] = []
    missing: list[str] = []
    with ledgermod.Ledger(str(p), groupcfg.roster_of(doc)) as led:
        consents = led.entries(kinds=[msg.CONSENT])
        for a in added:
            rid = bytes.fromhex(a.get("roster", ""))
            hit = [e for e in led.find(rid.hex()) if e.id == rid] if len(rid) == msg.ID_LEN else []
            if not hit:
                missing.append(a.get("name", "?"))
                continue
            out.append(hit[0].raw)
            out += [e.raw for e in consents if e.msg.f["target"] == rid]
    return out, missing
