"""`plexus group init|show|rekey`: the roster document and the group secret."""

from __future__ import annotations

import argparse
import json

from plexus import groupcfg
from plexus.cli import UserError
from plexus.commands import add_group, add_json, add_keystore, add_port, open_client, print_json, user_errors


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
    add_json(p)


def _show(args: argparse.Namespace) -> int:
    with user_errors():
        doc = groupcfg.load_doc(args.group)
        groupcfg.load_roster(args.group)
        s = groupcfg.summary(doc)
    if args.json:
        print_json(s)
        return 0
    print("%s  group id %s" % (s["name"], s["group_id"]))
    print("quorum: %d of %d members (%s)" % (s["quorum"], len(s["members"]), s["quorum_rule"]))
    print("members:")
    for m in s["members"]:
        print("  %-16s %s  %s" % (m["name"], m["key_id"], m.get("contact", "")))
    print("nodes:" if s["nodes"] else "nodes: none")
    for n in s["nodes"]:
        print("  %-16s %s  %s" % (n["name"], n["key_id"], n.get("holder", "")))
    return 0


def _rekey_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--without", action="append", default=[], metavar="NODE",
                   help="a node that must not learn the new key (seized, lost): its name or key id prefix (repeat)")
    add_port(p)
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this key (keystore or member name)")
    add_keystore(p)
    add_group(p)
    add_json(p)


def _rekey(args: argparse.Namespace) -> int:
    """Wrap a fresh group secret for every roster node except --without, sign a REKEY and POST it; the group
    moves to the new key once a quorum consents (SPEC.md s.8.4)."""
    from plexus import client as clientmod

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
        print("the new secret is kept as pending in %s" % sp)
    return 0


SUBCOMMANDS = {
    "init": (_init_args, _init, "create the roster document and a fresh group secret"),
    "show": (_show_args, _show, "print members, nodes, quorum and group id"),
    "rekey": (_rekey_args, _rekey, "wrap a new group key for the remaining nodes and post the REKEY"),
}
