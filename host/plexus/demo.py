"""`make demo`: the town scenario end to end on the simulated mesh, with the real node core.

A decision bulletin is posted, a drill is run, one node's store is synced into a tamper-evident
ledger; the drill report (with its phone chain), a ledger summary and a plot are written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from plexwire import hostlink, msg

from plexus import drill


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="town", help="bundled scenario name or file (default: town)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="out/demo", help="where the plot, report and ledger go (default: out/demo)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.panel import Panel

    from plexus import export as exportmod
    from plexus.ledger import Ledger
    from plexus.sim import nodes as simnodes
    from plexus.sim.cli import print_summary
    from plexus.sim.engine import run_scenario
    from plexus.sim.plot import save_plot
    from plexus.sim.scenario import load_scenario

    con = Console()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    sc = load_scenario(args.scenario)
    con.print(Panel.fit("Plexus demo: %s\n%s" % (sc["name"], sc.get("description", "")), title="plexus"))

    keep: dict = {}

    def factory(name, **kw):
        core = simnodes.make_core_node(name, **kw)
        keep[name] = core
        return core

    progress = None
    if sys.stdout.isatty():
        from rich.progress import Progress

        bar = Progress(console=con, transient=True)
        task = bar.add_task("simulating %d nodes" % len(sc["nodes"]), total=float(sc["duration_s"]))
        bar.start()
        progress = lambda done, total: bar.update(task, completed=done)  # noqa: E731
    # the factory wraps the real node core: say so (run_scenario calls any given factory "custom")
    result = run_scenario(sc, "plexus", args.seed, node_factory=factory, progress=progress, core="plexnode")
    if progress is not None:
        bar.stop()
    print_summary(result, con)

    ctx = simnodes.context()
    roster = ctx["roster"]
    reports = drill.report_from_sim(result, roster, time0=simnodes.SIM_TIME0)
    for rep in reports:
        txt = drill.as_text(rep)
        con.print(Panel(txt.rstrip(), title="drill report"))
        (out / "drill-report.txt").write_text(txt)
        (out / "drill-report.json").write_text(json.dumps(rep, indent=1))

    # sync the store of one node (the first bulletin's origin) into a ledger, as `plexus ledger sync` does
    origin = next((p["origin"] for p in result.posts if p["type"] == "bulletin"), next(iter(keep)))
    node = keep[origin]
    ledger_path = out / "ledger.sqlite"
    if ledger_path.exists():
        ledger_path.unlink()
    led = Ledger(ledger_path, roster=ctx["doc"])
    cursor = 0
    fetched = inserted = 0

    def sync() -> None:
        nonlocal cursor, fetched, inserted
        while True:
            recs = node.store.since(cursor, 64)
            if not recs:
                break
            res = led.ingest([r[4] for r in recs])
            inserted += res.inserted
            fetched += len(recs)
            cursor = recs[-1][0]

    sync()
    # the assembly's member consents to the decision(s) from the laptop on that node, as `plexus consent` does
    # (its quorum is 1), and the ledger is synced once more: `plexus ledger decisions` shows them adopted. The
    # demo's world keeps the simulation's clock throughout (the consent at the end of the simulated hour, the
    # sheet printed a minute later), so posting, adoption and publication read in order on the sheet
    end_ms = int(sc["duration_s"] * 1000)
    end_s = simnodes.SIM_TIME0 + int(sc["duration_s"])
    for e in led.entries(kinds=[msg.BULLETIN, msg.BULLETIN_LONG]):
        if e.msg.f["flags"] & msg.BULLETIN_DECISION:
            seed = ctx["assembly_seed"]
            kid = msg.key_id(ctx["crypto"].public_key(seed))
            unsigned = msg.encode_unsigned(msg.CONSENT, {"target": e.id, "stance": msg.STANCE_CONSENT}, kid, end_s)
            inner = msg.finish(unsigned, ctx["crypto"].sign(seed, msg.signing_bytes(roster.group_id, unsigned)))
            ok, why = node.handle_inner(inner, None, None, 0, end_ms, b"", True)
            con.print("decision %r: %s" % ((e.text or "")[:60], "the assembly consents" if ok else "consent refused: %s" % why),
                      highlight=False)
    sync()
    for rep in reports:
        led.add_report("drill", rep)
    v = led.verify()
    # the printable sheet (writing it publishes the adopted decision, as `plexus ledger export` does)
    sheet = exportmod.export_text(led, out / "ledger.txt", roster=roster, now=end_s + 60)
    # soft_wrap: a log or a pipe gets the line whole, not "verify:" with "OK" alone on the next line
    con.print("ledger %s: %d records synced from node %s (%d new); verify: %s"
              % (ledger_path, fetched, origin, inserted, "OK" if v.ok else v), soft_wrap=True, highlight=False)
    plot = out / "town.png"
    save_plot(result, str(plot))
    con.print("plot: %s   report: %s   sheet: %s   (%.1f s)" % (plot, out / "drill-report.txt", sheet, time.time() - t0),
              soft_wrap=True,
              highlight=False)
    led.close() if hasattr(led, "close") else None
    return 0


__all__ = ["add_arguments", "run", "hostlink"]
