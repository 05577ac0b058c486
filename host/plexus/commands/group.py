"""`plexus group init|show|add|update|revoke|rekey`: the roster document, additions, updates, revocations and the
group secret."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from plexwire import group as pgroup
from plexwire import msg

from plexus import groupcfg
from plexus.cli import UserError
from plexus.commands import (
    add_group,
    add_json,
    add_keystore,
    add_ledger,
    add_port,
    add_signed_post,
    ledger_file,
    open_client,
    print_json,
    user_errors,
)


def _init_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="the group's name")
    p.add_argument("--member", action="append", default=[], metavar="NAME=KEY", required=True,
                   help="a member: NAME=64 hex digits of the public key, or NAME=a key in the keystore (repeat)")
    p.add_argument("--node", action="append", default=[], metavar="NAME=KEYHEX",
                   help="a node: NAME=its public key (the node_key its HELLO reports) (repeat)")
    q = p.add_mutually_exclusive_group()
    q.add_argument("--quorum", type=int, metavar="K", help="consents needed for a decision")
    q.add_argument("--fraction", metavar="A/B", help="quorum as more than this fraction of members (default 1/2)")
    p.add_argument("--force", action="store_true", help="replace an existing group (new secret!)")
    add_group(p)
    add_keystore(p)
    add_json(p)


def _init(args: argparse.Namespace) -> int:
    with user_errors():
        doc = groupcfg.init_group(args.name, args.member, args.node, args.quorum, args.fraction, args.group,
                                  args.keystore, args.force)
        s = groupcfg.summary(doc)
    gp = groupcfg.group_path(args.group)
    if args.json:
        s["file"] = str(gp)
        s["secret_file"] = str(groupcfg.secret_path(gp))
        print_json(s)
    else:
        print("group %s (%s): %d members, %d nodes, quorum %d" % (s["name"], s["group_id"], len(s["members"]),
                                                                  len(s["nodes"]), s["quorum"]))
        print("roster: %s  (share it with members and nodes)" % gp)
        print("secret: %s  (mode 0600; only for your nodes, never publish it)" % groupcfg.secret_path(gp))
    return 0


def _show_args(p: argparse.ArgumentParser) -> None:
    add_group(p)
    add_ledger(p)
    add_json(p)


def _show(args: argparse.Namespace) -> int:
    import sys

    from plexus import rekeystate, rosterstate
    from plexus.ledger import LedgerError

    with user_errors():
        try:
            added, updated = rosterstate.refresh_all(args.group, args.ledger)  # what the ledger shows adopted
        except LedgerError:
            added, updated = [], []  # reported below
        doc = groupcfg.load_doc(args.group)
        roster = groupcfg.load_roster(args.group)
        s = groupcfg.summary(doc)
        try:
            gov = rekeystate.governance(args.ledger, roster)
        except LedgerError as err:
            print("note: revocations, additions and rekeys not checked: %s" % err, file=sys.stderr)
            gov = None
        try:
            groupcfg.load_secret(args.group)
            has_secret = True
        except groupcfg.GroupError:
            has_secret = False  # a member laptop may hold the roster without the secret
        promoted = rekeystate.refresh(args.group, gov=gov) if gov is not None and has_secret else []
        s["epoch"] = groupcfg.load_secret(args.group)[1] if has_secret else None
        s["pending_rekeys"] = rekeystate.pending(args.group) if has_secret else []
    revoked = gov.revoked if gov is not None else set()
    for ent in s["members"] + s["nodes"]:
        ent["revoked"] = bytes.fromhex(ent["key_id"]) in revoked
    if args.json:
        s["promoted"] = promoted
        s["added"] = added
        s["updated"] = updated
        print_json(s)
        return 0
    print("%s  group id %s" % (s["name"], s["group_id"]))
    print("quorum: %d of %d members (%s)" % (s["quorum"], len(s["members"]), s["quorum_rule"]))
    for a in added:
        print("%s %s joined: its ROSTER %s was adopted" % (a["role"], a["name"], a["roster"]))
    for u in updated:
        print("%s: its ROSTER update %s was adopted" % (rosterstate.describe_update(u), u["roster"]))
    for p in promoted:
        print("rekey %s was adopted: the secret of epoch %d is now current" % (p["rekey"], p["epoch"]))
    if s["epoch"] is not None:
        print("key epoch: %d%s" % (s["epoch"], "".join(
            "; rekey to epoch %d pending (%s): it needs quorum consent, then `plexus ledger sync`" % (p["epoch"], p["rekey"])
            for p in s["pending_rekeys"])))
    for ent in s["members"] + s["nodes"]:
        if ent["revoked"]:
            ent["name"] += " (revoked)"
    print("members:")
    for m in s["members"]:
        print("  %-16s %s  %s" % (m["name"], m["key_id"], m.get("contact", "")))
    print("nodes:" if s["nodes"] else "nodes: none")
    for n in s["nodes"]:
        print("  %-16s %s  %s" % (n["name"], n["key_id"], ", ".join(x for x in (n.get("holder"), n.get("contact")) if x)))
    return 0


def _find_key(roster, who: str):
    """A roster entry (member or node) by its name or a key id prefix of at least 4 hex digits."""
    w = who.strip()
    hit = [e for e in roster.entries.values() if e.name == w]
    if not hit and len(w) >= 4:
        hit = [e for e in roster.entries.values() if e.kid.hex().startswith(w.lower())]
    if not hit:
        raise UserError("no member or node %r in the roster (give its name or a key id prefix of 4+ hex digits)" % who)
    if len(hit) > 1:
        raise UserError("%r matches %s: give more of the key id" % (who, ", ".join(sorted(e.name or e.kid.hex() for e in hit))))
    return hit[0]


def _sign_and_post(args: argparse.Namespace, build: Callable[[], bytes]) -> tuple[str, dict]:
    """Build a signed record (a RecordError is the user's mistake) and POST it to the node: (its id in hex, the reply)."""
    from plexus import client as clientmod

    try:
        rec = build()
    except clientmod.RecordError as e:
        raise UserError(str(e)) from None
    with user_errors():
        with open_client(args, set_time=True) as c:
            reply = c.post(rec)
    return clientmod.record_id(rec).hex(), reply


def _print_steps(steps: Iterable[tuple[str, str]]) -> None:
    print("next steps:")
    for i, (label, cmd) in enumerate(steps, 1):
        print("  %d. %-18s%s" % (i, label, cmd))


def _roster_now(args: argparse.Namespace) -> tuple[pgroup.Roster, Any, Any]:
    """For a ROSTER change: bring group.json up to date with what the ledger shows adopted (an addition or update
    adopted meanwhile is in the roster already), then (the roster, the signing member key, the ledger's
    governance or None without a ledger)."""
    from plexus import rekeystate, rosterstate
    from plexus.ledger import LedgerError

    with user_errors():
        try:
            rosterstate.refresh_all(args.group, args.ledger)
        except LedgerError:
            pass
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        try:
            gov = rekeystate.governance(args.ledger, roster)
        except LedgerError as e:
            raise UserError(str(e)) from None
    return roster, key, gov


def _name_taken(roster: pgroup.Roster, name: str, kid: bytes | None = None) -> None:
    """A UserError when another entry than `kid` already has this name."""
    same = [e for e in roster.entries.values() if e.name == name and e.kid != kid]
    if same:
        raise UserError("the name %s is already in the roster (%s %s): choose another" % (name, same[0].role, same[0].kid.hex()))


def _revoke_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("who", metavar="NAME|KEYID",
                   help="the member or node to revoke: its roster name or a key id prefix (checked against the local "
                        "ledger, if any: sync it first)")
    from plexus.client import REVOKE_REASONS

    p.add_argument("--reason", choices=list(REVOKE_REASONS), default="unspecified",
                   help="seized or lost (lost or compromised), left (left the group), removed (by decision)")
    add_signed_post(p)


def _revoke(args: argparse.Namespace) -> int:
    """Sign a REVOKE and POST it; the key is revoked once a quorum consents (SPEC.md s.8.2), then the group is
    rekeyed without the seized node (s.8.4)."""
    from plexus import client as clientmod
    from plexus import rekeystate

    with user_errors():
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        target = _find_key(roster, args.who)
        gov = rekeystate.governance(args.ledger, roster)  # what the laptop's ledger knows (None: no ledger yet)
    name = target.name or target.kid.hex()
    is_node = target.role == pgroup.ROLE_NODE
    if gov is not None:
        done = gov.revoke_of(target.kid)
        if target.kid in gov.revoked:
            raise UserError("%s is already revoked%s" % (name, " (REVOKE %s)" % done.hex() if done else ""))
        waiting = gov.pending_revoke(target.kid)
        if waiting is not None:
            raise UserError("a REVOKE of %s is already waiting for consents: plexus consent %s --port PORT"
                            % (name, waiting.hex()))
    if not is_node:
        left = [e for e in roster.members() if e.kid != target.kid and (gov is None or e.kid not in gov.revoked)]
        if len(left) < roster.quorum:
            raise UserError("revoking %s would leave %d member(s), fewer than the quorum of %d: nothing could be "
                            "decided any more" % (name, len(left), roster.quorum))
    rid, reply = _sign_and_post(args, lambda: clientmod.revoke_record(key, roster.group_id, target.kid, args.reason))
    nxt = ["plexus consent %s --port PORT --as MEMBER   (%d member consents needed)" % (rid, roster.quorum),
           "plexus group rekey --without %s --port PORT   (so %s cannot read new traffic)" % (name, name) if is_node else
           "plexus group rekey --port PORT   (a new group secret the revoked laptop does not hold)"]
    if args.json:
        print_json({"id": rid, "key_id": target.kid.hex(), "name": name, "role": target.role, "reason": args.reason,
                    "reason_code": clientmod.REVOKE_REASONS[args.reason], "author": key.name, "node": reply,
                    "next": nxt})
        return 0
    print("revoke %s %s (%s), reason %s: %s (id %s)" % (target.role, name, target.kid.hex(),
                                                         clientmod.REVOKE_REASON_TEXT[clientmod.REVOKE_REASONS[args.reason]],
                                                         "posted" if reply.get("accepted") else reply, rid))
    _print_steps(zip(("collect consents:", "then rekey:"), nxt))
    return 0


def _add_args(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--node", metavar="NAME=KEYHEX", help="a node: NAME=its public key (the node_key its HELLO reports)")
    who.add_argument("--member", metavar="NAME=KEY",
                     help="a member: NAME=64 hex digits of the public key, or NAME=a key in the keystore")
    p.add_argument("--contact", default="", help="how to reach the member or the node's holder (optional)")
    add_signed_post(p)


def _add(args: argparse.Namespace) -> int:
    """Sign a ROSTER addition and POST it; the member or node joins once a quorum consents (SPEC.md s.10). The
    group id does not change: the laptop's group.json keeps its founding roster and lists the addition under
    "added" once the ledger shows it adopted (plexus.rosterstate)."""
    from plexus import client as clientmod
    from plexus import rosterstate

    roster, key, gov = _roster_now(args)
    with user_errors():
        if args.node is not None:
            ent, role, op = groupcfg.resolve_node(args.node), pgroup.ROLE_NODE, msg.ROSTER_ADD_NODE
        else:
            ent, role, op = groupcfg.resolve_member(args.member, args.keystore), pgroup.ROLE_MEMBER, msg.ROSTER_ADD_MEMBER
    name, pub = ent["name"], bytes.fromhex(ent["key"])
    kid = msg.key_id(pub)
    have = roster.get(kid)
    if have is not None:
        raise UserError("that key is already in the roster, as %s %s%s" % (
            have.role, have.name or kid.hex(), " (revoked)" if gov is not None and kid in gov.revoked else ""))
    _name_taken(roster, name)
    if gov is not None:
        waiting = rosterstate.pending_add(gov, pub, name)
        if waiting is not None:
            raise UserError("an addition of %s is already waiting for consents: plexus consent %s --port PORT"
                            % (name, waiting.hex()))
    rid, reply = _sign_and_post(args, lambda: clientmod.roster_record(key, roster.group_id, op, pub, name, args.contact))
    nxt = ["plexus consent %s --port PORT --as MEMBER   (%d member consents needed)" % (rid, roster.quorum),
           "plexus ledger sync --port PORT   (once adopted, %s is in this laptop's roster)" % name]
    if role == pgroup.ROLE_NODE:
        nxt.append("plexus node provision --board BOARD --port PORT --name %s   (after the sync: the node is "
                   "handed its addition and the consents)" % name)
    if args.json:
        print_json({"id": rid, "key_id": kid.hex(), "key": pub.hex(), "name": name, "role": role,
                    "author": key.name, "node": reply, "next": nxt})
        return 0
    print("add %s %s (%s): %s (id %s)" % (role, name, kid.hex(), "posted" if reply.get("accepted") else reply, rid))
    _print_steps(zip(("collect consents:", "then:", "set the node up:"), nxt))
    return 0


def _update_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("who", metavar="NAME|KEYID",
                   help="the member or node to change: its roster name or a key id prefix of 4+ hex digits")
    p.add_argument("--contact", metavar="TEXT", help="the new contact: how to reach the member or the node's holder "
                                     "(\"\" clears it; default: keep the current one)")
    p.add_argument("--name", dest="new_name", metavar="NEWNAME", help="the new name (default: keep the current one)")
    add_signed_post(p)


def _update(args: argparse.Namespace) -> int:
    """Sign a ROSTER update (op 3: the entry's name and contact, both given in full) and POST it; it takes
    effect once a quorum consents (SPEC.md s.8.2), then `ledger sync` brings the laptop's roster up to date
    ("updated" in group.json; plexus.rosterstate). The key, its role and the group id do not change."""
    from plexus import client as clientmod
    from plexus import rosterstate

    if args.contact is None and args.new_name is None:
        raise UserError("nothing to change: give --contact TEXT and/or --name NEWNAME")
    roster, key, gov = _roster_now(args)
    with user_errors():
        target = _find_key(roster, args.who)
    old = target.name or target.kid.hex()
    name = target.name if args.new_name is None else args.new_name.strip()
    contact = target.contact if args.contact is None else args.contact.strip()
    if not name:
        raise UserError("the new name is empty: give --name a name")
    if gov is not None and target.kid in gov.revoked:
        done = gov.revoke_of(target.kid)
        raise UserError("%s is revoked%s: its entry is no longer updated" % (old, " (REVOKE %s)" % done.hex() if done else ""))
    if (name, contact) == (target.name, target.contact):
        raise UserError("nothing changes: %s already has %s" % (
            old, "that name and contact" if args.new_name is not None and args.contact is not None else
            "that name" if args.new_name is not None else "that contact"))
    _name_taken(roster, name, target.kid)
    if gov is not None:
        waiting = rosterstate.pending_update(gov, target.kid)
        if waiting is not None:
            raise UserError("an update of %s is already waiting for consents: plexus consent %s --port PORT"
                            % (old, waiting.hex()))
    rid, reply = _sign_and_post(args, lambda: clientmod.roster_record(key, roster.group_id, msg.ROSTER_UPDATE, target.pub,
                                                                      name, contact))
    nxt = ["plexus consent %s --port PORT --as MEMBER   (%d member consents needed)" % (rid, roster.quorum),
           "plexus ledger sync --port PORT   (once adopted, this laptop's roster shows the change)"]
    if args.json:
        print_json({"id": rid, "key_id": target.kid.hex(), "role": target.role, "was": {"name": target.name,
                    "contact": target.contact}, "name": name, "contact": contact, "author": key.name, "node": reply,
                    "next": nxt})
        return 0
    change = []
    if name != target.name:
        change.append("name %s -> %s" % (old, name))
    if contact != target.contact:
        change.append("contact %s -> %s" % (target.contact or "(none)", contact or "(none)"))
    print("update %s %s (%s): %s: %s (id %s)" % (target.role, old, target.kid.hex(), "; ".join(change),
                                                 "posted" if reply.get("accepted") else reply, rid))
    _print_steps(zip(("collect consents:", "then:"), nxt))
    return 0


def _rekey_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--without", action="append", default=[], metavar="NODE",
                   help="a node that must not learn the new key (seized, lost): its name or key id prefix (repeat)")
    p.add_argument("--commit", action="store_true",
                   help="post nothing: make a pending new secret current once the ledger shows its REKEY adopted "
                        "(with --port, sync the ledger from the node first)")
    add_port(p, required=False)
    add_ledger(p)
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this key (keystore or member name)")
    add_keystore(p)
    add_group(p)
    add_json(p)


def _rekey(args: argparse.Namespace) -> int:
    """Wrap a fresh group secret for every roster node except --without, sign a REKEY and POST it; the group
    moves to the new key once a quorum consents (SPEC.md s.8.4)."""
    from plexus import client as clientmod

    if args.commit:
        return _commit(args)
    if not args.port:
        raise UserError("give the node's serial port with --port (see `plexus devices`)")
    with user_errors():
        roster = groupcfg.load_roster(args.group)
        _, cur = groupcfg.load_secret(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
    nodes = roster.nodes()
    left = []
    for w in args.without:
        hit = [e for e in nodes if e.name == w or (len(w) >= 4 and e.kid.hex().startswith(w.lower()))]
        if not hit:
            raise UserError("no node %r in the roster (give its name or a key id prefix)" % w)
        left.extend(hit)
    # a node whose REVOKE is adopted never gets the new key, --without or not (every node would refuse the REKEY)
    from plexus import rekeystate
    from plexus.ledger import LedgerError

    try:
        gov = rekeystate.governance(args.ledger, roster)
    except LedgerError:
        gov = None
    revoked = [e for e in nodes if gov is not None and e.kid in gov.revoked and e not in left]
    left.extend(revoked)
    stay = [e for e in nodes if e not in left]
    if not stay:
        raise UserError("no node would be left to receive the new key")
    try:
        with user_errors():
            with open_client(args, set_time=True) as c:
                epoch = (int(c.hello().get("epoch", cur)) + 1) % 16
                rec, secret = clientmod.rekey_record(key, roster.group_id, epoch, [e.pub for e in stay])
                reply = c.post(rec)
    except clientmod.RecordError as e:
        raise UserError(str(e)) from None
    rid = clientmod.record_id(rec)
    for gone in revoked:
        print("note: %s is revoked: left out of the new key (no need for --without)" % gone.name, file=sys.stderr)
    sp = groupcfg.secret_path(groupcfg.group_path(args.group))
    with user_errors():
        d = json.loads(sp.read_text())
        pending = [p for p in d.get("pending", []) if p.get("epoch") != epoch]
        pending.append({"epoch": epoch, "secret": secret.hex(), "rekey": rid.hex()})
        d["pending"] = pending
        groupcfg._write_private(sp, json.dumps(d) + "\n", True)
    out = {"id": rid.hex(), "epoch": epoch, "nodes": [e.name for e in stay], "without": [e.name for e in left],
           "author": key.name, "node": reply}
    if args.json:
        print_json(out)
    else:
        print("rekey to epoch %d for %d node(s), without %s: %s (id %s)" % (
            epoch, len(stay), ", ".join(out["without"]) or "nobody", "accepted" if reply.get("accepted") else reply, rid.hex()))
        print("it takes effect once a quorum consents: plexus consent %s --port PORT" % rid.hex())
        print("the new secret is kept as pending in %s; once adopted, `plexus ledger sync --port PORT` (or "
              "`plexus group rekey --commit --port PORT`) makes it current for provisioning new nodes" % sp)
    return 0


def _commit(args: argparse.Namespace) -> int:
    """`group rekey --commit`: promote the pending secret(s) whose REKEY the ledger shows adopted."""
    from plexus import ledger as ledgermod
    from plexus import rekeystate

    with user_errors():
        roster = groupcfg.load_roster(args.group)
        waiting = rekeystate.pending(args.group)
        if not waiting:
            raise UserError("no pending rekey in %s (post one with `plexus group rekey`)"
                            % groupcfg.secret_path(groupcfg.group_path(args.group)))
        if args.port:
            with ledger_file(args.ledger, roster, write=True) as led, open_client(args) as c:
                ledgermod.sync(c, led)
        gov = rekeystate.governance(args.ledger, roster)
        if gov is None:
            raise UserError("no ledger yet: sync it from a node first (plexus ledger sync --port PORT)")
        done = rekeystate.refresh(args.group, gov=gov)
        epoch = groupcfg.load_secret(args.group)[1]
        left = rekeystate.pending(args.group)
    if args.json:
        print_json({"promoted": done, "epoch": epoch, "pending": left})
        return 0 if done else 1
    for p in done:
        print("rekey %s adopted: the secret of epoch %d is now current (new nodes are provisioned with it)"
              % (p["rekey"], p["epoch"]))
    if not done:
        print("rekey %s to epoch %d is not adopted in the ledger yet: collect consents (plexus consent ID), then "
              "sync the ledger" % (left[0]["rekey"], left[0]["epoch"]))
        return 1
    return 0


SUBCOMMANDS = {
    "init": (_init_args, _init, "create the roster document and a fresh group secret"),
    "show": (_show_args, _show, "print members, nodes, quorum and group id"),
    "add": (_add_args, _add, "post a ROSTER addition of a member or node (the group id stays); needs quorum consent"),
    "update": (_update_args, _update, "post a ROSTER update of a member's or node's name or contact; needs quorum consent"),
    "revoke": (_revoke_args, _revoke, "post a REVOKE of a member or node key (seized, lost, left); needs quorum consent"),
    "rekey": (_rekey_args, _rekey, "wrap a new group key for the remaining nodes and post the REKEY (--commit: adopt it here)"),
}
