"""The laptop's side of growing a group (SPEC.md s.10): `plexus group add` posts a ROSTER message; once the
ledger shows it adopted by a quorum (the node core replayed by `plexus.audit`, as for rekeys in
`plexus.rekeystate`), the member or node joins the laptop's roster.

The group id is a hash over the founding roster (plexwire.group.genesis_id), and every node checks frames and
signatures against it: the founding fields of ``group.json`` therefore never change. An adopted addition is
appended under ``"added"`` (with the id of its ROSTER message; groupcfg.roster_of applies them), so `group
show`, `group revoke`, mandates, drills, the ledger's signature check and provisioning all see it. Nodes ignore
``"added"``: they learn an addition only from the signed ROSTER record and its consents (their store, replayed
at boot; anti-entropy; and `node provision`, which posts those records to the node it provisions).
"""

from __future__ import annotations

import os
from pathlib import Path

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


def pending_add(gov: rekeystate.Governance, key: bytes, name: str) -> bytes | None:
    """The id of a ROSTER addition of this key or name still waiting for consents, if any."""
    for rid, f in gov.rosters:
        if f["op"] in ADD_OPS and rid not in gov.adopted and (bytes(f["key"]) == key or f["name"] == name):
            return rid
    return None


def _ledger_path(ledger_path: str | os.PathLike | None) -> Path:
    from plexus import ledger as ledgermod

    return Path(ledger_path) if ledger_path else ledgermod.default_path()


def refresh(group: str | os.PathLike | None = None, ledger_path: str | os.PathLike | None = None) -> list[dict]:
    """Append to group.json every addition the ledger shows adopted that it lacks; returns them ([] when there
    is no ledger or nothing new). Records the ledger refused as from an unknown author are checked again
    against the grown roster (a new member's consents, a new node's receipts), which can adopt more."""
    from plexus import ledger as ledgermod

    p = _ledger_path(ledger_path)
    if not p.exists():
        return []
    done: list[dict] = []
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
            if not led.retry_rejects().inserted:
                break
    return done


def handover(doc: dict, ledger_path: str | os.PathLike | None = None) -> tuple[list[bytes], list[str]]:
    """What a node booting from the founding roster needs to know the additions: for each entry under "added",
    its ROSTER record and the consents on it, from the ledger (in that order, so a member added first can
    consent to a later addition). Returns (packed records, names of additions whose ROSTER the ledger lacks)."""
    from plexus import ledger as ledgermod

    added = doc.get("added", [])
    if not added:
        return [], []
    p = _ledger_path(ledger_path)
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
