"""`plexus ledger sync|show|verify|export|decisions|mandates`: the verified, hash-chained record of everything the group signed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from plexwire import msg

from plexus import export as exportmod
from plexus import groupcfg, rosterstate
from plexus import ledger as ledgermod
from plexus.cli import UserError
from plexus.commands import add_group, add_json, add_ledger, add_port, ledger_file, open_client, print_json, user_errors


def open_ledger(args: argparse.Namespace, write: bool = False) -> ledgermod.Ledger:
    """The ledger, given the group's roster when a group file exists (else the roster it already stores).

    Only `write` (commands that add records) may create it; readers refuse a missing ledger."""
    if not write:
        ledgermod.existing_path(args.ledger)  # one line "no ledger at PATH", before any question about the group
    gp = groupcfg.group_path(args.group)
    roster = groupcfg.load_roster(args.group) if (args.group or gp.exists()) else None
    led = ledger_file(args.ledger, roster, write=write)
    if led.roster is None:
        led.close()
        raise groupcfg.GroupError("no group: create one with `plexus group init` or pass --group FILE")
    return led


def _common(p: argparse.ArgumentParser) -> None:
    add_ledger(p)
    add_group(p)
    add_json(p)


# ---- sync


def _sync_args(p: argparse.ArgumentParser) -> None:
    add_port(p)
    p.add_argument("--limit", type=int, default=64, help="records per SYNC request (default 64)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(p)


def _sync(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    # a bar only on a terminal, and only once the node answered: nothing (not even a blank line) before an error
    show = not args.no_progress and not args.json and console.is_terminal
    with user_errors():
        with open_ledger(args, write=True) as led, open_client(args) as c:
            prog = Progress(TextColumn("sync"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
                            TimeElapsedColumn(), console=console, transient=True, disable=not show)
            task: list[Any] = []

            def cb(event: str, done: int, total: int | None) -> None:
                if event == "start":
                    prog.start()
                    task.append(prog.add_task("sync", total=max(total or 0, done) or None, completed=done))
                else:
                    prog.update(task[0], completed=done, total=max(total or 0, done) or None)

            try:
                res = ledgermod.sync(c, led, limit=args.limit, progress=cb)
            finally:
                if task:
                    prog.stop()
            head = led.count()
    added, updated = _roster_additions(args)
    promoted = _promote_rekeys(args)
    if args.json:
        d = res.as_dict()
        d["ledger_records"] = head
        d["promoted_rekeys"] = promoted
        d["roster_added"] = added
        d["roster_updated"] = updated
        print_json(d)
    else:
        print("synced from %s: %d fetched, %d new, %d already had, %d refused; ledger holds %d records"
              % (res.name or res.node_key.hex()[:16], res.fetched, res.inserted, res.duplicates, len(res.rejected), head))
        for a in added:
            print("%s %s joined the roster: its ROSTER %s was adopted (%s updated)"
                  % (a["role"], a["name"], a["roster"], groupcfg.group_path(args.group)))
        for u in updated:
            print("%s: its ROSTER update %s was adopted (%s updated)"
                  % (rosterstate.describe_update(u), u["roster"], groupcfg.group_path(args.group)))
        for p in promoted:
            print("rekey %s adopted: the group secret of epoch %d is now current on this laptop" % (p["rekey"], p["epoch"]))
        for r in res.rejected[:10]:
            print("  refused: %s" % r, file=sys.stderr)
    return 0


def _roster_additions(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    """After a sync: members and nodes whose ROSTER addition is now adopted join group.json, and adopted ROSTER
    updates set their names and contacts there (plexus.rosterstate). (additions, updates)."""
    if not (args.group or groupcfg.group_path(args.group).exists()):
        return [], []
    try:
        return rosterstate.refresh_all(args.group, args.ledger)
    except (groupcfg.GroupError, ledgermod.LedgerError):
        return [], []


def _promote_rekeys(args: argparse.Namespace) -> list[dict]:
    """After a sync: a pending group secret whose REKEY is now adopted becomes current (plexus.rekeystate)."""
    from plexus import groupcfg, rekeystate

    try:
        return rekeystate.refresh(args.group, args.ledger)
    except (groupcfg.GroupError, ledgermod.LedgerError):
        return []  # no group secret on this laptop, or a ledger of another group: nothing to promote


# ---- show


def _show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", "-n", type=int, default=20, help="how many recent records (default 20)")
    p.add_argument("--kind", choices=sorted(msg.NAMES), help="only this kind")
    _common(p)


def _show(args: argparse.Namespace) -> int:
    with user_errors():
        with open_ledger(args) as led:
            kinds = [msg.NAMES[args.kind]] if args.kind else None
            entries = led.entries(limit=args.limit, kinds=kinds, newest_first=True)
            roster = led.roster
            assert roster is not None
            rows = [exportmod.entry_json(e, roster) for e in entries]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("the ledger has no records%s" % (" of kind %s" % args.kind if args.kind else ""))
        return 0
    for r in reversed(rows):
        text = r["text"].replace("\n", " ")
        if len(text) > 90:
            text = text[:87] + "..."
        print("%6d  %-13s %-12s %s  %s" % (r["n"], r["kind"], r["author_name"][:12], r["time_utc"], text))
    return 0


# ---- verify


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None, help="processes for signature checks (default: all cores)")
    _common(p)


def _verify(args: argparse.Namespace) -> int:
    from plexus.audit import audit

    with user_errors():
        with open_ledger(args) as led:
            res = led.verify(workers=args.workers)
            flags = audit(led) if res.ok else []
    if args.json:
        d = res.as_dict()
        d["governance_flags"] = flags
        print_json(d)
    elif res.ok:
        print("ledger OK: %d records, every signature and chain link checks; head %s" % (res.count, res.head_hash.hex()))
        for f in flags:
            print("ledger FLAG: record %d (%s): %s" % (f["record"], f["kind"], f["reason"]))
    else:
        print("ledger BAD: record %s: %s" % (res.first_bad, res.reason))
    return 0 if res.ok and not flags else 1


# ---- export


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--html", metavar="DIR", help="write DIR/index.html: a printable bulletin wall")
    p.add_argument("--text", metavar="FILE", help="write a plain-text sheet to print and pin up")
    _common(p)


def _export(args: argparse.Namespace) -> int:
    if not args.html and not args.text:
        raise UserError("say what to write: --html DIR and/or --text FILE")
    out = {}
    with user_errors():
        with open_ledger(args) as led:
            for what, fn in (("html", exportmod.export_html), ("text", exportmod.export_text)):
                dest = getattr(args, what)
                if not dest:
                    continue
                try:
                    out[what] = str(fn(led, dest))
                except OSError as e:
                    raise UserError("cannot write %s: %s" % (dest, _why(e))) from None
    if args.json:
        print_json(out)
    else:
        for v in out.values():
            print("wrote %s" % v)
    return 0


def _why(e: OSError) -> str:
    """An OSError's reason without the errno and the path the message already names."""
    why = e.strerror or str(e)
    return why[:1].lower() + why[1:]


# ---- governance views: decisions and mandates (plexus.govview)


def _view_args(p: argparse.ArgumentParser) -> None:
    _common(p)


def esc(s: str) -> str:
    from rich.markup import escape

    return escape(s)


def _utc(t: int | None) -> str:
    return exportmod.fmt_time(t) if t else "-"


def _decisions(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from plexus import govview

    with user_errors():
        with open_ledger(args) as led:
            now = exportmod.plexus_now()
            rows = govview.Model(led).decisions(now)
    if args.json:
        print_json({"now": now, "decisions": rows})
        return 0
    if not rows:
        print("no decision bulletins in the ledger")
        return 0
    t = Table(title="decisions (publication: first `plexus ledger export` after adoption; flagged over 24 h)")
    for col in ("decision", "state", "consents / quorum", "decided", "published", "after", "id"):
        t.add_column(col, overflow="fold")
    for d in rows:
        text = d["text"].replace("\n", " ")
        cons = "%d/%d %s" % (len(d["consents"]), d["quorum"], ", ".join(d["consents"]))
        if d["stand_asides"]:
            cons += "; stand aside: " + ", ".join(d["stand_asides"])
        if d["blocks"]:
            cons += "; BLOCK: " + ", ".join(d["blocks"])
        delay = govview.fmt_span(d["publication_delay_s"]) if d["publication_delay_s"] is not None else "-"
        if d["flagged"]:
            delay = "[bold red]FLAGGED[/] " + esc(d["flag"])
        t.add_row(esc(text[:60] + ("..." if len(text) > 60 else "")), d["state"], esc(cons), _utc(d["decided"]), _utc(d["published"]),
                  delay, d["id"][:12])
    Console(width=max(100, Console().width)).print(t)
    flagged = sum(1 for d in rows if d["flagged"])
    print("%d decision%s, %d adopted, %d pending, %d flagged" % (len(rows), "" if len(rows) == 1 else "s",
                                                                sum(1 for d in rows if d["state"] == "adopted"),
                                                                sum(1 for d in rows if d["state"] == "pending"), flagged))
    return 0


def _mandates(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from plexus import govview

    with user_errors():
        with open_ledger(args) as led:
            now = exportmod.plexus_now()
            view = govview.Model(led).mandates(now)
    if args.json:
        view["now"] = now
        print_json(view)
        return 0
    if not view["roles"]:
        print("no mandates in the ledger")
        return 0
    con = Console(width=max(100, Console().width))
    cur = Table(title="current mandates")
    for col in ("role", "holders", "until", "left", "mandate"):
        cur.add_column(col, overflow="fold")
    for ro in view["roles"]:
        if not ro["current"]:
            cur.add_row(esc(ro["role"]), "[italic]nobody holds it now[/]", "-", "-", "-")
        for c in ro["current"]:
            cur.add_row(esc(ro["role"]), esc(", ".join(c["holders"])), _utc(c["end"]), c["left"], c["id"][:12])
    con.print(cur)
    hist = Table(title="history (hand-overs and recalls included)")
    for col in ("role", "holders", "term", "method", "state", "consents / quorum", "events", "mandate"):
        hist.add_column(col, overflow="fold")
    for ro in view["roles"]:
        for r in ro["history"]:
            method = r["method"] + ("; not the last holders" if r["exclude_last"] else "") + (
                "; at most %d terms in a row" % r["max_consecutive"] if r["max_consecutive"] else "")
            ev = []
            if r["rejected"]:
                ev.append("[bold red]REJECTED[/]: %s" % r["rejected"])
            if r["recalled"]:
                ev.append(esc("recalled %s: %s" % (_utc(r["recalled"]), r["recall_reason"] or "no reason given")))
            for h in view["handovers"]:
                if h["next"] == r["id"]:
                    ev.append(esc("took over from %s on %s (recorded by %s)%s" % (
                        h["prev"][:12], _utc(h["time"]), h["by"], ": " + h["note"] if h["note"] else "")))
                if h["prev"] == r["id"]:
                    ev.append("handed over to %s on %s" % (h["next"][:12], _utc(h["time"])))
            hist.add_row(esc(r["role"]), esc(", ".join(r["holders"])), "%s - %s" % (_utc(r["start"]), _utc(r["end"])), method,
                         r["state"], "%d/%d" % (len(r["consents"]), r["quorum"]), "; ".join(ev) or "-", r["id"][:12])
    con.print(hist)
    return 0


SUBCOMMANDS = {
    "sync": (_sync_args, _sync, "fetch new records from a node, verify them, append them (resumable)"),
    "show": (_show_args, _show, "list recent records"),
    "verify": (_verify_args, _verify, "re-check every signature and the hash chain; name the first bad record"),
    "export": (_export_args, _export, "write a printable HTML bulletin wall and/or a plain-text sheet"),
    "decisions": (_view_args, _decisions, "decisions: adopted or pending, consents against quorum, time to publication"),
    "mandates": (_view_args, _mandates, "mandates: current holders per role, time left, history, recalls, hand-overs"),
}
