"""`plexus mandate draw|list|recall`: rotating roles drawn by lot, verifiable by every node and laptop.

A draw takes its randomness from public, earlier data (the id of the latest bulletin in the ledger) and the
algorithm in SPEC.md section 10, so anyone recomputes it; nodes reject a rigged draw. A mandate takes effect
once a quorum of members consents to it (`plexus consent MANDATE_ID`) and ends at its end time or at a recall.
"""

from __future__ import annotations

import argparse
import re
import time

from plexwire import governance, hostlink, msg

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


def parse_term(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([dhw])\s*", text)
    if not m:
        raise UserError("a term is like 30d, 12h or 2w, not %r" % text)
    n, unit = int(m.group(1)), m.group(2)
    secs = n * {"h": 3600, "d": 86400, "w": 7 * 86400}[unit]
    if not 3600 <= secs <= 366 * 86400:
        raise UserError("a term is between one hour and a year")
    return secs


def _ledger(args):
    from plexus import ledger as ledgermod

    return ledgermod.Ledger(args.ledger or ledgermod.default_path())


def _mandates(led) -> list[dict]:
    """Mandates in the ledger with their consents, recalls and the draw re-checked."""
    entries = led.entries(kinds=[msg.MANDATE, msg.CONSENT, msg.RECALL])
    roster = led._need_roster()
    stances: dict[bytes, dict[bytes, int]] = {}
    recalls: dict[bytes, list] = {}
    for e in entries:
        if e.kind == msg.CONSENT:
            stances.setdefault(e.msg.f["target"], {})[e.author] = e.msg.f["stance"]
        elif e.kind == msg.RECALL:
            recalls.setdefault(e.msg.f["mandate"], []).append(e)
    names = {k: ent.name for k, ent in roster.entries.items()}
    out = []
    now = clientmod.plexus_time()
    for e in entries:
        if e.kind != msg.MANDATE:
            continue
        f = e.msg.f
        adopted, c, sa, b = governance.tally(stances.get(e.id, {}), roster.quorum)
        recalled = any(governance.tally(stances.get(r.id, {}), roster.quorum)[0] for r in recalls.get(e.id, []))
        state = "recalled" if recalled else ("pending" if not adopted else ("expired" if now >= f["end"] else
                                                                          ("active" if now >= f["start"] else "upcoming")))
        out.append({"id": e.id.hex(), "role": f["role"], "holders": [names.get(h, h.hex()) for h in f["holders"]],
                    "start": f["start"], "end": f["end"], "state": state, "consents": c, "quorum": roster.quorum,
                    "days_left": max(0, (f["end"] - now) // 86400) if state == "active" else None})
    return out


def _draw_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True, help="the role, e.g. coordination")
    p.add_argument("--seats", type=int, default=1, help="how many holders (default 1)")
    p.add_argument("--term", default="30d", help="how long: 30d, 12h, 2w (default 30d)")
    p.add_argument("--exclude-last", action="store_true", help="the last term's holders may not be drawn again")
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this member key")
    add_port(p)
    add_keystore(p)
    add_group(p)
    add_ledger(p)
    add_json(p)


def _draw(args: argparse.Namespace) -> int:
    term = parse_term(args.term)
    with user_errors():
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        with _ledger(args) as led:
            bulletins = led.entries(kinds=[msg.BULLETIN, msg.BULLETIN_LONG], newest_first=True, limit=1)
            if not bulletins:
                raise UserError("the draw needs a published bulletin as its seed: sync the ledger first")
            seed = bulletins[0]
            exclude: list[bytes] = []
            if args.exclude_last:
                # the last adopted term of this role, exactly as the nodes will recompute it
                adopted = {r["id"] for r in _mandates(led) if r["state"] != "pending"}
                prev = [mm for mm in led.entries(kinds=[msg.MANDATE])
                        if mm.msg.f["role"] == args.role and mm.id.hex() in adopted]
                if prev:
                    exclude = list(max(prev, key=lambda mm: mm.msg.f["start"]).msg.f["holders"])
        now = clientmod.plexus_time()
        start, end = now, now + term
        if seed.time >= now:
            raise UserError("the latest bulletin is not older than now: wait a second and draw again")
        elig = governance.eligible_members(roster, exclude)
        if not 0 < args.seats <= len(elig):
            raise UserError("%d seats but %d eligible members" % (args.seats, len(elig)))
        holders = governance.draw(roster.group_id, args.role, start, end, seed.id, elig, args.seats)
        method = msg.METHOD_LOT | (msg.METHOD_EXCLUDE_LAST if args.exclude_last else 0)
        f = {"role": args.role, "start": start, "end": end, "method": method, "seed": seed.id, "holders": holders}
        inner = key.sign_message(roster.group_id, msg.MANDATE, f, now)
        with open_client(args, set_time=True) as c:
            reply = c.post(hostlink.pack_record(inner))
    names = [roster.get(h).name if roster.get(h) else h.hex() for h in holders]
    mid = msg.message_id(inner).hex()
    if args.json:
        print_json({"id": mid, "role": args.role, "holders": names, "start": start, "end": end, "seed": seed.id.hex(),
                    "node": reply})
    else:
        print("drew %s for %s until %s: %s" % (", ".join(names), args.role,
                                               time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end + 1704067200)), mid))
        print("seed: bulletin %s (anyone can recompute the draw); it takes effect at %d consents: plexus consent %s"
              % (seed.id.hex(), roster.quorum, mid))
    return 0


def _list_args(p: argparse.ArgumentParser) -> None:
    add_ledger(p)
    add_json(p)


def _list(args: argparse.Namespace) -> int:
    with user_errors():
        with _ledger(args) as led:
            rows = _mandates(led)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no mandates in the ledger")
    for r in rows:
        left = " (%d days left)" % r["days_left"] if r["days_left"] is not None else ""
        print("%-12s %-9s %s  consents %d/%d%s  %s" % (r["role"], r["state"], ", ".join(r["holders"]), r["consents"],
                                                       r["quorum"], left, r["id"]))
    return 0


def _recall_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("mandate_id", metavar="MANDATE_ID", help="32 hex digits")
    p.add_argument("--reason", default="", help="why (shown with the recall)")
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this member key")
    add_port(p)
    add_keystore(p)
    add_group(p)
    add_json(p)


def _recall(args: argparse.Namespace) -> int:
    try:
        target = bytes.fromhex(args.mandate_id)
        assert len(target) == 16
    except (ValueError, AssertionError):
        raise UserError("a mandate id is 32 hex digits") from None
    with user_errors():
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        inner = key.sign_message(roster.group_id, msg.RECALL, {"mandate": target, "reason": args.reason}, clientmod.plexus_time())
        with open_client(args, set_time=True) as c:
            reply = c.post(hostlink.pack_record(inner))
    rid = msg.message_id(inner).hex()
    if args.json:
        print_json({"id": rid, "mandate": args.mandate_id, "node": reply})
    else:
        print("recall %s posted; it ends the mandate at %d consents: plexus consent %s" % (rid, roster.quorum, rid))
    return 0


SUBCOMMANDS = {
    "draw": (_draw_args, _draw, "draw holders for a role by lot, verifiably, and post the mandate"),
    "list": (_list_args, _list, "mandates in the ledger: holders, state, consents, time left"),
    "recall": (_recall_args, _recall, "post a recall; it ends the mandate once a quorum consents"),
}
