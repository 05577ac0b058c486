"""`plexus post "text" --port PORT [--decision] [--as MEMBER]`: sign a bulletin on the laptop, POST it to a node."""

from __future__ import annotations

import argparse

from plexus import client as clientmod
from plexus import groupcfg
from plexus.cli import UserError
from plexus.commands import add_group, add_json, add_keystore, add_port, open_client, print_json, user_errors


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", metavar="TEXT", help="the bulletin (over 154 bytes it is sent as a long bulletin)")
    add_port(p)
    p.add_argument("--decision", action="store_true", help="mark it as a proposal members consent to")
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this key (keystore or member name)")
    add_keystore(p)
    add_group(p)
    add_json(p)


def run(args: argparse.Namespace) -> int:
    with user_errors():
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        try:
            rec = clientmod.bulletin_record(key, roster.group_id, args.text, args.decision)
        except clientmod.RecordError as e:
            raise UserError(str(e)) from None
        with open_client(args, set_time=True) as c:
            reply = c.post(rec)
    rid = clientmod.record_id(rec)
    if args.json:
        print_json({"id": rid.hex(), "author": key.name, "decision": bool(args.decision), "node": reply})
    else:
        print("posted %s%s as %s: %s" % ("decision " if args.decision else "", rid.hex(), key.name,
                                        "accepted" if reply.get("accepted") else reply))
    return 0
