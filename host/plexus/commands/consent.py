"""`plexus consent MESSAGE_ID --port PORT [--stance consent|stand-aside|block]`: sign a consent, POST it."""

from __future__ import annotations

import argparse
import os

from plexus import client as clientmod
from plexus import groupcfg
from plexus.cli import UserError
from plexus.commands import (
    add_group,
    add_json,
    add_keystore,
    add_ledger,
    add_port,
    open_client,
    print_json,
    user_errors,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("message_id", metavar="MESSAGE_ID",
                   help="the proposal's id: 32 hex digits, or a unique prefix of a record in the local ledger")
    add_port(p)
    p.add_argument("--stance", choices=sorted(clientmod.STANCE_NAMES), default="consent", help="default: consent")
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this key (keystore or member name)")
    add_keystore(p)
    add_group(p)
    add_ledger(p)
    add_json(p)


def resolve_id(text: str, ledger_path: str | None) -> bytes:
    t = text.strip().lower()
    if len(t) == 32:
        try:
            return bytes.fromhex(t)
        except ValueError:
            raise UserError("%r is not a hex message id" % text) from None
    if not 4 <= len(t) < 32:
        raise UserError("a message id is 32 hex digits (or a unique prefix of at least 4)")
    from plexus import ledger as ledgermod

    p = ledger_path or ledgermod.default_path()
    if not os.path.exists(p):
        raise UserError("give the full 32-digit id (no local ledger at %s to look %r up)" % (p, text))
    with user_errors():
        with ledgermod.Ledger(p) as led:
            found = led.find(t)
    if not found:
        raise UserError("no record starting with %s in the ledger (run `plexus ledger sync` first?)" % t)
    if len(found) > 1:
        raise UserError("%s matches several records; give more digits" % t)
    return found[0].id


def run(args: argparse.Namespace) -> int:
    target = resolve_id(args.message_id, args.ledger)
    with user_errors():
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        rec = clientmod.consent_record(key, roster.group_id, target, args.stance)
        with open_client(args, set_time=True) as c:
            reply = c.post(rec)
    rid = clientmod.record_id(rec)
    if args.json:
        print_json({"id": rid.hex(), "target": target.hex(), "stance": args.stance, "author": key.name, "node": reply})
    else:
        print("%s on %s as %s: %s (id %s)" % (args.stance, target.hex(), key.name,
                                              "accepted" if reply.get("accepted") else reply, rid.hex()))
    return 0
