"""`plexus drill start|report|confirm`: run an alert drill from the laptop, watch the receipts come back, keep the report.

start   signs an ALERT with a member key, POSTs it to the node on --port (that node becomes the caller's node and
        collects the tally), shows who was reached and who confirmed as receipts arrive (EVENT lines, with TALLY
        polled as a fallback), and ends after --wait, when every roster node has confirmed, or on Ctrl-C; the
        report (reach, confirmations, timing, relay tree, single points of failure, phone chain) is printed and
        stored in the ledger.
report  the latest stored drill report (or all of them) as text, JSON or HTML.
confirm presses a node's confirm button for an alert (what a holder does when they read it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from plexus import client as clientmod
from plexus import drill as drillmod
from plexus import groupcfg
from plexus.cli import UserError
from plexus.commands import (
    add_group,
    add_json,
    add_keystore,
    add_ledger,
    add_port,
    check_ledger_dir,
    ledger_file,
    open_client,
    print_json,
    user_errors,
)

TALLY_EVERY_S = 3.0


def _ms() -> int:
    return int(time.monotonic() * 1000)


# ---- start


def _start_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", metavar="TEXT", help="what the alert says (at most 154 bytes)")
    add_port(p)
    p.add_argument("--real", action="store_true", help="a real alert, not a drill (nodes treat it as urgent)")
    p.add_argument(
        "--wait",
        default="10m",
        metavar="DURATION",
        help="how long to collect receipts, e.g. 90s, 10m, 1h (default 10m); it ends sooner when every node "
        "has confirmed, or on Ctrl-C",
    )
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this key (keystore or member name)")
    add_keystore(p)
    add_group(p)
    add_ledger(p)
    add_json(p)


def _table(tally: drillmod.Tally, text: str, left_s: float, caller: str = "caller") -> Any:
    from rich.table import Table

    t = Table(title="drill: %s  (%d s left, Ctrl-C ends early)" % (text, max(0, int(left_s))))
    for col in ("node", "holder", "hops", "reached at", "confirmed at", "heard via"):
        t.add_column(col)
    by_short = {n["short"]: n["name"] for n in tally.nodes}
    for n in tally.nodes:
        s = tally.state.get(n["name"]) or {}
        r, c = tally.seconds(n["name"], "reached"), tally.seconds(n["name"], "confirmed")
        via = s.get("via")
        t.add_row(
            n["name"],
            n.get("holder", ""),
            "-" if s.get("hops") is None else str(s["hops"]),
            "-" if r is None else "%s s%s" % (r, "" if s.get("reached_receipt") or c is None else "*"),
            "-" if c is None else "%s s" % c,
            "-" if via is None else by_short.get(via, caller if s.get("hops") == 1 else "#%04x" % via),
        )
        if c is not None and not s.get("reached_receipt"):
            t.caption = drillmod.REACHED_NOTE
    return t


def watch(c: Any, tally: drillmod.Tally, text: str, wait_s: float, console: Any, caller: str = "caller") -> bool:
    """Collect receipts until wait_s has passed or every node confirmed; Ctrl-C ends early. True if interrupted."""
    from rich.live import Live

    deadline = time.monotonic() + wait_s
    next_poll = time.monotonic() + TALLY_EVERY_S
    live = console.is_terminal
    said: set[tuple[str, str]] = set()

    def progress() -> None:
        # not a terminal (a log, a pipe): one line per new receipt instead of a live table
        for n in tally.nodes:
            for st in ("reached", "confirmed"):
                v = tally.seconds(n["name"], st)
                if v is not None and (n["name"], st) not in said:
                    said.add((n["name"], st))
                    console.print("%s %s after %s s" % (n["name"], st, v), highlight=False)

    interrupted = False
    view = Live(_table(tally, text, wait_s, caller), console=console, auto_refresh=False) if live else None
    try:
        if view is not None:
            view.start()
        while not tally.all_confirmed():
            now = time.monotonic()
            if now >= deadline:
                break
            changed = False
            for _op, ev in c.events(wait=min(0.5, deadline - now)):
                changed |= tally.on_event(ev, _ms())
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + TALLY_EVERY_S
                changed |= tally.on_tally(c.tally(tally.alert_id), _ms())
            if view is not None:
                view.update(_table(tally, text, deadline - time.monotonic(), caller), refresh=True)
            elif changed:
                progress()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if view is not None:
            view.stop()
    # what arrived last (a receipt in the final seconds, or a Ctrl-C between polls)
    try:
        for _op, ev in c.events():
            tally.on_event(ev, _ms())
        tally.on_tally(c.tally(tally.alert_id), _ms())
    except (clientmod.LinkError, clientmod.NodeError, KeyboardInterrupt):
        pass
    if view is None:
        progress()
    return interrupted


def _start(args: argparse.Namespace) -> int:
    from rich.console import Console

    from plexus import ledger as ledgermod
    from plexus import rekeystate

    try:
        wait_s = drillmod.parse_duration(args.wait)
    except ValueError as e:
        raise UserError("--wait: %s" % e) from None
    check_ledger_dir(args.ledger)  # before the drill, not after it
    with user_errors():
        roster = groupcfg.load_roster(args.group)
        key = groupcfg.member_key(roster, args.keystore, args.as_member)
        try:
            rec = drillmod.alert_record(key, roster.group_id, args.text, args.real)
        except clientmod.RecordError as e:
            raise UserError(str(e)) from None
        aid = clientmod.record_id(rec)
        console = Console(stderr=True)
        try:
            # revoked nodes, and nodes left out of the current key, cannot answer: they are not expected
            gone = rekeystate.inactive_nodes_at(args.ledger, roster)
        except ledgermod.LedgerError as err:
            print("note: revocations and rekeys not checked: %s" % err, file=sys.stderr)
            gone = {}
        with open_client(args, set_time=True) as c:
            hello = c.hello()
            caller_kid = bytes.fromhex(hello.get("key_id", ""))
            ent = roster.get(caller_kid)
            caller = (ent.name if ent is not None and ent.name else "") or hello.get("name") or caller_kid.hex()
            nodes = drillmod.expected_nodes(roster, caller_kid, gone)
            try:
                neighbours = c.status().get("neighbour_ids", [])
            except clientmod.NodeError:
                neighbours = []
            c.events()  # older events are not about this drill
            started_unix = int(time.time())
            tally = drillmod.Tally(aid, nodes, _ms())
            c.post(rec)
            if not args.json:
                console.print(
                    "%s %s posted to %s as %s (alert %s); collecting receipts for up to %s"
                    % ("ALERT" if args.real else "drill", repr(args.text), caller, key.name, aid.hex(), args.wait),
                    highlight=False,
                )
            interrupted = watch(c, tally, args.text, wait_s, console, caller)
    by_short = {n["short"]: n["name"] for n in nodes}
    links = [(caller, by_short[s]) for s in neighbours if s in by_short]
    rep = drillmod.build_report(args.text, caller, tally.started_ms, nodes, tally.receipts(), links,
                                drillmod.not_expected(roster, {k: v for k, v in gone.items() if k != caller_kid}))
    rep.update(
        {
            "alert": aid.hex(),
            "real": bool(args.real),
            "author": key.name,
            "started": started_unix,
            "ended_early": interrupted,
            "port": str(args.port),
        }
    )
    with user_errors():
        with ledger_file(args.ledger, write=True) as led:
            rid = led.add_report("drill", rep, started_unix)
    rep["report_id"] = rid
    if args.json:
        print_json(rep)
    else:
        sys.stdout.write(drillmod.as_text(rep))
        print("stored in the ledger as drill report %d (%s)" % (rid, led.path))
    return 0


# ---- report


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("text", "json", "html"), default="text", help="default: text")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of printing")
    p.add_argument("--all", action="store_true", help="every stored drill report, oldest first (default: the latest)")
    p.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    add_ledger(p)


def _report(args: argparse.Namespace) -> int:
    import html

    from plexus import ledger as ledgermod

    p = ledgermod.resolve_path(args.ledger)
    if not p.exists():
        raise UserError("no ledger at %s: run `plexus drill start` first" % p)
    with user_errors():
        with ledger_file(p) as led:
            reps = led.reports("drill")
    if not reps:
        raise UserError("no drill report in %s: run `plexus drill start` first" % p)
    if not args.all:
        reps = reps[-1:]
    for r in reps:
        r["data"].setdefault("report_id", r["id"])
    if args.format == "json":
        out = json.dumps([r["data"] for r in reps] if args.all else reps[0]["data"], indent=1, sort_keys=True) + "\n"
    elif args.format == "html":
        out = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Plexus drill reports</title></head><body>%s</body></html>\n"
            % "".join(
                "<p>%s</p>%s"
                % (
                    html.escape(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r["created"]))),
                    drillmod.as_html(r["data"]),
                )
                for r in reps
            )
        )
    else:
        out = "\n".join(
            "[%d] %s\n%s"
            % (r["id"], time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(r["created"])), drillmod.as_text(r["data"]))
            for r in reps
        )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(out)
        print("wrote %d drill report%s to %s" % (len(reps), "" if len(reps) == 1 else "s", args.out))
    else:
        sys.stdout.write(out)
    return 0


# ---- confirm


def _confirm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("alert_id", metavar="ALERT_ID", help="the alert's id (32 hex digits; `drill start` prints it)")
    add_port(p)
    add_json(p)


def _confirm(args: argparse.Namespace) -> int:
    t = args.alert_id.strip().lower()
    try:
        aid = bytes.fromhex(t)
    except ValueError:
        aid = b""
    if len(aid) != 16:
        raise UserError("an alert id is 32 hex digits, not %r" % args.alert_id)
    with user_errors():
        with open_client(args) as c:
            reply = c.confirm(aid)
    if args.json:
        print_json({"alert": aid.hex(), "node": reply})
    else:
        print("confirmed alert %s on %s" % (aid.hex(), args.port))
    return 0


SUBCOMMANDS = {
    "start": (_start_args, _start, "sign an alert drill, post it to a node, watch receipts, store the report"),
    "report": (_report_args, _report, "show the latest stored drill report (text, JSON or HTML)"),
    "confirm": (_confirm_args, _confirm, "press a node's confirm for an alert (host op CONFIRM)"),
}
