"""`plexus group init|show`: the roster document and the group secret."""

from __future__ import annotations

import argparse

from plexus import groupcfg
from plexus.commands import add_group, add_json, add_keystore, print_json, user_errors


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


SUBCOMMANDS = {
    "init": (_init_args, _init, "create the roster document and a fresh group secret"),
    "show": (_show_args, _show, "print members, nodes, quorum and group id"),
}
