"""`plexus consent MESSAGE_ID --port PORT [--stance consent|stand-aside|block]`: sign a consent, POST it."""

from __future__ import annotations

import argparse

from plexus import client as clientmod
from plexus import groupcfg
from plexus.cli import UserError
from plexus.commands import (
    add_group,
    add_json,
    add_keystore,
    add_ledger,
    add_port,
    ledger_file,
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
    p.add_argument("--force", action="store_true",
                   help="consent to a full id the local ledger does not hold (not synced yet)")
    add_json(p)


class NotInLedger(UserError):
    """The id (or prefix) is well formed but the local ledger does not hold it."""


def resolve_id(text: str, ledger_path: str | None, force: bool = False) -> bytes:
    """The 16-byte id of the record to consent to: a full id or a unique prefix of a record in the local ledger.

    A full id that the local ledger does not hold is refused unless `force` (a made-up or mistyped id would
    otherwise be signed and posted without a word)."""
    t = text.strip().lower()
    full = len(t) == 32
    if full:
        try:
            rid = bytes.fromhex(t)
        except ValueError:
            raise UserError("%r is not a hex message id" % text) from None
    elif not 4 <= len(t) < 32:
        raise UserError("a message id is 32 hex digits (or a unique prefix of at least 4)")
    from plexus import ledger as ledgermod

    p = ledgermod.resolve_path(ledger_path)
    if not p.exists():
        if full and force:
            return rid
        if full:
            raise NotInLedger("no ledger at %s to find %s in (sync first: `plexus ledger sync`, or --force to consent "
                              "anyway)" % (p, t))
        raise NotInLedger("give the full 32-digit id (no local ledger at %s to look %r up)" % (p, text))
    with user_errors():
        with ledger_file(p) as led:
            found = led.find(t)
    if full:
        if not found and not force:
            raise NotInLedger("no message %s in the ledger (sync first, or --force to consent anyway)" % t)
        return rid
    if not found:
        raise NotInLedger("no message %s... in the ledger (sync first, or give the full id with --force to consent "
                          "anyway)" % t)
    if len(found) > 1:
        raise UserError("%s matches several records; give more digits" % t)
    return found[0].id


def _sync_ledger(args: argparse.Namespace) -> None:
    """Bring the local ledger up to date from the node we are about to post to (what `plexus ledger sync` does)."""
    from plexus import ledger as ledgermod
    from plexus.commands.ledger import open_ledger

    with user_errors():
        with open_ledger(args, write=True) as led, open_client(args) as c:
            ledgermod.sync(c, led)


def run(args: argparse.Namespace) -> int:
    try:
        target = resolve_id(args.message_id, args.ledger, args.force)
    except NotInLedger:
        # not in the local ledger yet (posted a moment ago?): sync from the node, then look again; a made-up or
        # mistyped id is still refused
        _sync_ledger(args)
        try:
            target = resolve_id(args.message_id, args.ledger, args.force)
        except NotInLedger:
            raise UserError("no message %s on the node %s or in the ledger (mistyped? --force to consent anyway)"
                            % (args.message_id.strip().lower(), args.port)) from None
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
