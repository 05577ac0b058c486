"""`plexus mandate draw|elect|list|recall|handover`: rotating roles drawn by lot (or elected), verifiable by every node
and laptop.

A draw takes its randomness from public, earlier data (the id of the latest bulletin in the ledger) and the
algorithm in SPEC.md section 10, so anyone recomputes it; nodes reject a rigged draw. A mandate takes effect
once a quorum of members consents to it (`plexus consent MANDATE_ID`) and ends at its end time or at a recall.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
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
    add_signed_post,
    ledger_file,
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


def parse_start(text: str | None, now: int) -> int:
    """--start: "now", "+7d"/"+12h"/"+2w" from now, or a UTC date "2026-12-01" / "2026-12-01T18:00" -> Plexus time."""
    import calendar

    if text is None or text.strip().lower() == "now":
        return now
    t = text.strip()
    m = re.fullmatch(r"\+\s*(\d+)\s*([mhdw])", t)
    if m:
        start = now + int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[m.group(2)]
    else:
        for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
            try:
                start = calendar.timegm(time.strptime(t.rstrip("Z"), fmt)) - 1704067200
                break
            except ValueError:
                continue
        else:
            raise UserError("--start is now, +7d (+12h, +2w) or a UTC date like 2026-12-01 or 2026-12-01T18:00, not %r" % text)
    if start < now:
        raise UserError("--start %s is in the past: a term starts now or later" % text)
    if start - now > 366 * 86400:
        raise UserError("--start is at most a year ahead")
    return start


def _ledger(args, roster=None):
    """The ledger (it must exist: mandates only read it); given the group's roster, a roster-less ledger learns it
    (a ledger of another group is refused)."""
    return ledger_file(args.ledger, roster)


def _mandates(led) -> list[dict]:
    """Mandates in the ledger with their consents, recalls and the draw re-checked (plexus.govview)."""
    from plexus import govview

    rows = govview.Model(led).mandate_rows(clientmod.plexus_time())
    for r in rows:
        r["consents"] = len(r["consents"])
        r["days_left"] = r["left_s"] // 86400 if r["left_s"] is not None else None
    return rows


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True, help="the role, e.g. coordination")
    p.add_argument("--term", default="30d", help="how long: 30d, 12h, 2w (default 30d)")
    p.add_argument("--start", metavar="WHEN",
                   help="when the term begins: now (default), +7d, or a UTC date 2026-12-01 / 2026-12-01T18:00")
    p.add_argument("--exclude-last", action="store_true", help="the last term's holders may not hold it again")
    p.add_argument("--max-consecutive", type=int, default=0, metavar="N",
                   help="nobody may hold the role more than N terms in a row (1..%d)" % msg.MAX_CONSECUTIVE)
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this member key")
    add_port(p)
    add_keystore(p)
    add_group(p)
    add_ledger(p)
    add_json(p)


def _draw_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seats", type=int, default=None, help="how many holders (default 1, or as many as --holder)")
    p.add_argument("--elect", action="store_true", help="elect instead of drawing: name the holders with --holder")
    p.add_argument("--holder", action="append", default=[], metavar="MEMBER",
                   help="with --elect: an elected holder (member name or key id; repeat per seat)")
    _common_args(p)


def _elect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--holder", action="append", required=True, metavar="MEMBER",
                   help="an elected holder (member name or key id; repeat per seat)")
    p.add_argument("--seats", type=int, default=None, help="how many holders (default: as many as --holder)")
    _common_args(p)


def _method(args: argparse.Namespace, election: bool) -> int:
    n = args.max_consecutive
    if not 0 <= n <= msg.MAX_CONSECUTIVE:
        raise UserError("--max-consecutive is 1..%d" % msg.MAX_CONSECUTIVE)
    return ((msg.METHOD_ELECTION if election else msg.METHOD_LOT) | (msg.METHOD_EXCLUDE_LAST if args.exclude_last else 0)
            | n << msg.METHOD_CONSEC_SHIFT)


def _holder_ids(roster, names: list[str]) -> list[bytes]:
    out = []
    for nm in names:
        e = next((x for x in roster.members() if x.name == nm or x.kid.hex() == nm.lower()), None)
        if e is None:
            raise UserError("%r is not a member of the roster" % nm)
        if e.kid in out:
            raise UserError("%s is named twice" % nm)
        out.append(e.kid)
    return sorted(out)


def _draw(args: argparse.Namespace) -> int:
    return _post_mandate(args, election=bool(args.elect))


def _elect(args: argparse.Namespace) -> int:
    return _post_mandate(args, election=True)


def _post_mandate(args: argparse.Namespace, election: bool) -> int:
    from plexus import govview

    if not args.role.strip():
        raise UserError("--role must not be empty")
    if args.seats is not None and args.seats < 1:
        raise UserError("--seats must be at least 1")
    term = parse_term(args.term)
    method = _method(args, election)
    if not election and args.holder:
        raise UserError("--holder names elected holders: add --elect (or use `plexus mandate elect`)")
    with user_errors():
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        holders: list[bytes] = []
        if election:
            if not args.holder:
                raise UserError("an election names its holders: --holder MEMBER, once per seat")
            holders = _holder_ids(roster, args.holder)
            if args.seats is not None and args.seats != len(holders):
                raise UserError("%d seats but %d holders named" % (args.seats, len(holders)))
        now = clientmod.plexus_time()
        start = parse_start(args.start, now)
        end = start + term
        seed = None
        exclude: list[bytes] = []
        overlaps = None
        # an election without --exclude-last/--max-consecutive needs nothing from the ledger
        with (_ledger(args, roster) if not election or method & 0xF0 else contextlib.nullcontext()) as led:
            model = govview.Model(led, roster) if led is not None else None
            if model is not None:
                overlaps = _overlaps(model, args.role, start, end, now)
            if led is not None and not election:
                bulletins = led.entries(kinds=[msg.BULLETIN, msg.BULLETIN_LONG], newest_first=True, limit=1)
                if not bulletins:
                    raise UserError("the draw needs a published bulletin as its seed: sync the ledger first")
                seed = bulletins[0]
            if model is not None and method & 0xF0:
                # the role's adopted terms, exactly as the nodes will recompute them
                exclude = governance.excluded(model.history(args.role), start, method)
        if seed is not None and seed.time >= now:
            raise UserError("the latest bulletin is not older than now: wait a second and draw again")
        elig = governance.eligible_members(roster, exclude)
        if election:
            barred = [h for h in holders if h not in elig]
            if barred:
                raise UserError("not eligible for %s this term (%s): %s" % (
                    args.role, "revoked or barred by --exclude-last/--max-consecutive",
                    ", ".join(roster.get(h).name for h in barred)))
        else:
            assert seed is not None
            seats = 1 if args.seats is None else args.seats
            if not 0 < seats <= len(elig):
                raise UserError("%d seats but %d eligible members" % (seats, len(elig)))
            holders = governance.draw(roster.group_id, args.role, start, end, seed.id, elig, seats)
        f = {"role": args.role, "start": start, "end": end, "method": method,
             "seed": seed.id if seed is not None else bytes(16), "holders": holders}
        try:
            inner = key.sign_message(roster.group_id, msg.MANDATE, f, now)
        except ValueError as e:
            raise UserError("cannot encode this mandate: %s" % e) from None
        if overlaps is None:
            overlaps = _overlapping(args, roster, start, end, now)
        with open_client(args, set_time=True) as c:
            reply = c.post(hostlink.pack_record(inner))
    for r in overlaps:
        print("note: this term overlaps the %s term of %s (%s, %s to %s): both would hold the role until %s"
              % (args.role, ", ".join(r["holders"]) or "-", r["state"], _utc(r["start"]), _utc(r["end"]),
                 _utc(min(end, r["end"]))), file=sys.stderr)
    names = [roster.get(h).name if roster.get(h) else h.hex() for h in holders]
    mid = msg.message_id(inner).hex()
    if args.json:
        print_json({"id": mid, "role": args.role, "holders": names, "start": start, "end": end, "method": method,
                    "seed": seed.id.hex() if seed is not None else None, "excluded": [roster.get(k).name for k in exclude
                                                                                  if roster.get(k)], "node": reply})
    else:
        when = "from %s " % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start + 1704067200)) if start > now else ""
        print("%s %s for %s %suntil %s: %s" % ("elected" if election else "drew", ", ".join(names), args.role, when,
                                              time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end + 1704067200)), mid))
        if seed is not None:
            print("seed: bulletin %s (anyone can recompute the draw)" % seed.id.hex())
        print("it takes effect at %d consents: plexus consent %s" % (roster.quorum, mid))
    return 0


def _utc(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t + 1704067200))


def _overlapping(args: argparse.Namespace, roster, start: int, end: int, now: int) -> list[dict]:
    """The role's terms in the local ledger (adopted and current or upcoming, or still pending) that overlap
    [start, end): posting anyway is allowed (a deliberate overlap), but the user is told. No ledger: none known."""
    from plexus import govview
    from plexus import ledger as ledgermod

    p = ledgermod.resolve_path(args.ledger)
    if not p.exists():
        return []
    try:
        with ledger_file(p, roster) as led:
            return _overlaps(govview.Model(led, roster), args.role, start, end, now)
    except ledgermod.LedgerError:
        return []


def _overlaps(model, role: str, start: int, end: int, now: int) -> list[dict]:
    """The terms of `role` in a govview.Model that are current, upcoming or pending and overlap [start, end)."""
    return [r for r in model.mandate_rows(now) if r["role"] == role and r["state"] in ("active", "upcoming", "pending")
            and r["start"] < end and start < r["end"]]


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
    add_signed_post(p, ledger=False)


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


def _handover_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True, help="the role that changes hands")
    p.add_argument("--from", dest="prev", metavar="MANDATE_ID", help="the mandate that ended (default: the role's latest)")
    p.add_argument("--to", dest="next", metavar="MANDATE_ID",
                   help="the mandate taking over (default: the role's current, else its next adopted one)")
    p.add_argument("--note", default="", help="a line for the record (keys, passwords handed over, open tasks)")
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this member key")
    add_port(p)
    add_keystore(p)
    add_group(p)
    add_ledger(p)
    add_json(p)


def _pick(rows: list[dict], given: str | None, states: tuple, what: str, role: str) -> dict:
    if given:
        g = given.strip().lower()
        hit = [r for r in rows if r["id"].startswith(g)] if len(g) >= 4 else []
        if len(hit) != 1:
            raise UserError("%s: no single mandate for %s starts with %r in the ledger" % (what, role, given))
        r = hit[0]
        if r["state"] not in states:
            raise UserError("%s: mandate %s is %s, not %s" % (what, r["id"], r["state"], " or ".join(states)))
        return r
    cand = [r for r in rows if r["state"] in states]
    if not cand:
        raise UserError("%s: no %s mandate for %s in the ledger (sync it first?)" % (what, " or ".join(states), role))
    return cand[-1] if what == "from" else cand[0]


def _handover(args: argparse.Namespace) -> int:
    from plexus import govview

    with user_errors():
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        now = clientmod.plexus_time()
        with _ledger(args, roster) as led:
            rows = [r for r in govview.Model(led, roster).mandate_rows(now) if r["role"] == args.role]
        # history order: by start; the one that ended last hands over to the earliest current or upcoming one
        rows.sort(key=lambda r: (r["start"], r["n"]))
        prev = _pick(rows, args.prev, ("expired", "recalled"), "from", args.role)
        nxt = _pick([r for r in rows if r["id"] != prev["id"]], args.next, ("active", "upcoming"), "to", args.role)
        f = {"prev": bytes.fromhex(prev["id"]), "next": bytes.fromhex(nxt["id"]), "note": args.note}
        try:
            inner = key.sign_message(roster.group_id, msg.SUCCESSION, f, now)
        except ValueError as e:
            raise UserError("cannot encode this hand-over: %s" % e) from None
        with open_client(args, set_time=True) as c:
            reply = c.post(hostlink.pack_record(inner))
    hid = msg.message_id(inner).hex()
    if args.json:
        print_json({"id": hid, "role": args.role, "from": prev["id"], "to": nxt["id"], "from_holders": prev["holders"],
                    "to_holders": nxt["holders"], "time": now, "node": reply})
    else:
        print("hand-over of %s: %s (%s, %s) -> %s (%s): %s" % (args.role, ", ".join(prev["holders"]), prev["state"],
                                                                prev["id"][:12], ", ".join(nxt["holders"]),
                                                                nxt["id"][:12], hid))
    return 0


SUBCOMMANDS = {
    "draw": (_draw_args, _draw, "draw holders for a role by lot, verifiably, and post the mandate"),
    "elect": (_elect_args, _elect, "post a mandate for holders the assembly elected (no draw); needs quorum consent"),
    "handover": (_handover_args, _handover, "record that a role passed from an ended mandate to the next one"),
    "list": (_list_args, _list, "mandates in the ledger: holders, state, consents, time left"),
    "recall": (_recall_args, _recall, "post a recall; it ends the mandate once a quorum consents"),
}
