"""The laptop's side of revocation and rekey (SPEC.md s.8.2, s.8.4): what the ledger says was revoked and adopted,
and the group secret file's pending secrets promoted once their REKEY is adopted.

``group.secret.json`` (groupcfg) holds the current ``secret`` and ``epoch``. `plexus group rekey` adds the new
secret under ``pending`` (with its REKEY id); it becomes current only when the ledger shows the REKEY adopted by
a quorum, exactly as the nodes compute it (the node core replayed by `plexus.audit`). The secret it replaces is
kept under ``previous`` (never thrown away: old frames and old backups stay readable).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from plexwire import group as pgroup
from plexwire import msg, rekey

from plexus import groupcfg

if TYPE_CHECKING:
    from plexus import ledger as ledgermod


class Governance:
    """Revocations and adoptions in a ledger, as the node core computes them."""

    def __init__(self, revoked: set[bytes], adopted: dict[bytes, int], revokes: list[tuple[bytes, bytes, int]],
                 rosters: list[tuple[bytes, dict]] | None = None):
        self.revoked = revoked  # key ids whose REVOKE was adopted
        self.adopted = adopted  # proposal id -> ledger record number that completed the quorum
        self.revokes = revokes  # (REVOKE id, revoked key id, reason) in ledger order
        self.rosters = rosters or []  # (ROSTER id, its fields: op, key, name, contact) in ledger order

    def pending_revoke(self, kid: bytes) -> bytes | None:
        """The id of a REVOKE of `kid` still waiting for consents, if any."""
        for rid, k, _ in self.revokes:
            if k == kid and rid not in self.adopted:
                return rid
        return None

    def revoke_of(self, kid: bytes) -> bytes | None:
        for rid, k, _ in self.revokes:
            if k == kid and rid in self.adopted:
                return rid
        return None


def governance(ledger_path: str | os.PathLike | None, roster: pgroup.Roster) -> Governance | None:
    """Replay the ledger's governance records through the node core; None when there is no ledger yet."""
    from plexus import ledger as ledgermod
    from plexus.audit import replay

    p = ledgermod.resolve_path(ledger_path)
    if not p.exists():
        return None
    with ledgermod.Ledger(str(p), roster) as led:
        node, _flags, adopted = replay(led)
        revokes = [(e.id, e.msg.f["key"], e.msg.f["reason"]) for e in led.entries(kinds=[msg.REVOKE])]
        rosters = [(e.id, dict(e.msg.f)) for e in led.entries(kinds=[msg.ROSTER])]
    revoked = {kid for kid, e in node.roster.entries.items() if e.revoked}
    return Governance(revoked, adopted, revokes, rosters)


def inactive_nodes(led: "ledgermod.Ledger", roster: pgroup.Roster, replayed: tuple | None = None) -> dict[bytes, str]:
    """The roster's nodes that are no longer in the group, by key id, with why: revoked (their REVOKE adopted, as the
    node core computes it), or left out of the wrap table of the latest adopted REKEY (they do not hold the
    group's current key, so they can neither read nor answer anything sent with it). `replayed`: what
    plexus.audit.replay(led) returned, when the caller has it already."""
    from plexus.audit import replay
    from plexus.client import REVOKE_REASON_NAMES

    node, _flags, adopted = replayed if replayed is not None else replay(led)
    reasons = {e.msg.f["key"]: e.msg.f["reason"] for e in led.entries(kinds=[msg.REVOKE]) if e.id in adopted}
    out: dict[bytes, str] = {}
    for kid, e in node.roster.entries.items():
        if e.revoked and e.role == pgroup.ROLE_NODE:
            out[bytes(kid)] = "revoked, %s" % REVOKE_REASON_NAMES.get(reasons.get(kid, 0), "unspecified")
    rekeys = [e for e in led.entries(kinds=[msg.REKEY]) if e.id in adopted]
    if rekeys:
        last = max(rekeys, key=lambda e: adopted[e.id])
        wrapped = set(rekey.kids(last.extra))
        # a node added (ROSTER adopted) after that rekey was provisioned with the key current then: not left out
        joined_after = {msg.key_id(e.msg.f["key"]) for e in led.entries(kinds=[msg.ROSTER])
                        if e.id in adopted and adopted[e.id] > adopted[last.id] and e.msg.f["op"] == msg.ROSTER_ADD_NODE}
        for n in roster.nodes():
            if n.kid not in wrapped and n.kid not in out and n.kid not in joined_after:
                out[n.kid] = "left out of the rekey to epoch %d" % last.msg.f["epoch"]
    return out


def inactive_nodes_at(ledger_path: str | os.PathLike | None, roster: pgroup.Roster) -> dict[bytes, str]:
    """inactive_nodes of the ledger at `ledger_path` (default: the default ledger); {} when there is none yet."""
    from plexus import ledger as ledgermod

    p = ledgermod.resolve_path(ledger_path)
    if not p.exists():
        return {}
    with ledgermod.Ledger(str(p), roster) as led:
        return inactive_nodes(led, roster)


def _secret_doc(group: str | os.PathLike | None) -> tuple[Path, dict]:
    groupcfg.load_secret(group)  # validates the file (GroupError otherwise)
    sp = groupcfg.secret_path(groupcfg.group_path(group))
    return sp, json.loads(sp.read_text())


def pending(group: str | os.PathLike | None = None) -> list[dict]:
    """The pending rekeys in the secret file: [{"epoch", "rekey" (hex id)}] (no secrets)."""
    _, d = _secret_doc(group)
    return [{"epoch": int(p["epoch"]), "rekey": p.get("rekey", "")} for p in d.get("pending", [])]


def promote(group: str | os.PathLike | None, rekey_id: bytes) -> int:
    """Make the pending secret of REKEY `rekey_id` the current one (the old one goes to "previous"); its epoch."""
    sp, d = _secret_doc(group)
    hit = [p for p in d.get("pending", []) if p.get("rekey") == rekey_id.hex()]
    if not hit:
        raise groupcfg.GroupError("no pending secret for rekey %s in %s" % (rekey_id.hex(), sp))
    new = hit[0]
    prev = d.get("previous", [])
    prev.append({"epoch": d.get("epoch", 0), "secret": d["secret"], **({"rekey": d["rekey"]} if d.get("rekey") else {})})
    d["previous"] = prev
    d["secret"], d["epoch"], d["rekey"] = new["secret"], int(new["epoch"]), new["rekey"]
    d["pending"] = [p for p in d.get("pending", []) if int(p["epoch"]) != d["epoch"]]
    if not d["pending"]:
        del d["pending"]
    groupcfg._write_private(sp, json.dumps(d) + "\n", True)
    return d["epoch"]


def refresh(group: str | os.PathLike | None = None, ledger_path: str | os.PathLike | None = None,
            gov: Governance | None = None) -> list[dict]:
    """Promote every pending secret whose REKEY the ledger shows adopted, in epoch order (current + 1 first).
    Returns the promoted [{"epoch", "rekey"}]; nothing to do (no pending secret, no ledger) returns []."""
    todo = pending(group)
    if not todo:
        return []
    if gov is None:
        gov = governance(ledger_path, groupcfg.load_roster(group))
        if gov is None:
            return []
    done: list[dict] = []
    while True:
        _, cur = groupcfg.load_secret(group)
        nxt = [p for p in pending(group) if p["epoch"] == (cur + 1) % 16 and p["rekey"]
               and bytes.fromhex(p["rekey"]) in gov.adopted]
        if not nxt:
            return done
        promote(group, bytes.fromhex(nxt[0]["rekey"]))
        done.append(nxt[0])
