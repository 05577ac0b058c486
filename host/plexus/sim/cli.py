"""`plexus sim SCENARIO [--router plexus|managed|flood] [--seed N] [--json] [--plot FILE.png]`.

The lead's `plexus` command table calls ``add_arguments(parser)`` and ``run(args) -> int``;
``python -m plexus.sim.cli`` works on its own too.  Exit codes: 0 done, 2 unusable scenario or
arguments (one line on stderr, no traceback), 1 the plot could not be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from plexus.sim import scenario as scn
from plexus.sim.engine import ROUTERS, SimResult, run_scenario


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO",
                        help="scenario JSON file, or a bundled scenario: %s" % ", ".join(scn.BUNDLED))
    parser.add_argument("--router", choices=ROUTERS, default="plexus", help="node-core routing mode (default: plexus)")
    parser.add_argument("--seed", type=int, default=None, help="run seed (default: the scenario's seed)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="write a map + delivery-over-time figure")
    live = parser.add_argument_group("live mode (a virtual node joins the simulated mesh: plexus node virtual --sim)")
    live.add_argument("--realtime", action="store_true", help="pace the simulation to the wall clock")
    live.add_argument("--speed", type=float, default=1.0, help="with --realtime: simulated seconds per wall second (default 1)")
    live.add_argument("--listen", metavar="HOST:PORT", help="with --realtime: accept external radios here (e.g. 127.0.0.1:7070)")
    live.add_argument("--home", metavar="DIR", help="with --listen: write a PLEXUS_HOME for the simulation's group here "
                      "(group, secret, the member key 'assembly'; default: a new temporary directory)")
    live.add_argument("--duration", type=float, help="override the scenario's duration (seconds of simulated time)")


def _err(msg: str) -> None:
    print("plexus: error: %s" % msg, file=sys.stderr)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return "%.1f %%" % (100.0 * v)
    if isinstance(v, float):
        return "%.3g" % v if abs(v) < 1000 else "%.0f" % v
    return str(v)


def print_summary(result: SimResult, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    m = result.metrics
    t = Table(title="plexus sim: %s (router %s, seed %s, core %s)" % (m["scenario"], m["router"], m["seed"], m["core"]))
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("nodes / duration", "%d / %g s" % (m["nodes"], m["duration_s"])),
        ("bulletins / drills", "%d / %d" % (m["bulletins"], m["drills"])),
        ("delivery ratio", "%s (%d/%d pairs)" % (_fmt(m["delivery_ratio"], True), m["delivered_pairs"], m["reachable_pairs"])),
        ("latency p50 / p95", "%s / %s s" % (_fmt(m["latency_s_p50"]), _fmt(m["latency_s_p95"]))),
        ("transmissions", "%d (%s/bulletin)" % (m["transmissions"], _fmt(m["transmissions_per_bulletin"]))),
        ("greedy CDS (flood floor)", str(m["cds_lower_bound"])),
        ("airtime total / max node", "%s / %s s" % (_fmt(m["airtime_s_total"]), _fmt(m["airtime_s_max_node"]))),
        ("duty-cycle violations", "%d (%d nodes)" % (m["duty_cycle_violations"], m["duty_cycle_violating_nodes"])),
        ("collisions", str(m["collisions"])),
    ]
    if m["drills"]:
        rows += [
            ("alert delivery ratio", _fmt(m["alert_delivery_ratio"], True)),
            ("acks / confirmations", "%s (%d/%d)" % (_fmt(m["ack_ratio"], True), m["confirmed_receipts"], m["confirmations_pressed"])),
            ("ack latency p95", "%s s" % _fmt(m["ack_latency_s_p95"])),
        ]
    if m["skipped_posts"]:
        rows.append(("posts skipped (origin off)", str(m["skipped_posts"])))
    for k, v in rows:
        t.add_row(k, v)
    con.print(t)
    if m["drops"]:
        con.print("drops: " + ", ".join("%s %d" % kv for kv in m["drops"].items()))
    per = m["per_node"]
    worst = sorted((v["delivery_ratio"], name) for name, v in per.items() if v["delivery_ratio"] is not None)
    if worst and worst[0][0] < 1.0:
        shown = [w for w in worst if w[0] < 1.0][:10]
        pt = Table(title="nodes with the lowest delivery")
        for col in ("node", "delivery", "tx", "airtime s", "duty peak", "off"):
            pt.add_column(col, justify="right" if col != "node" else "left")
        for ratio, name in shown:
            v = per[name]
            pt.add_row(name, _fmt(ratio, True), str(v["tx"]), _fmt(v["airtime_s"]), "%.2f %%" % v["duty_peak_pct"],
                       "yes" if v["off"] else "")
        con.print(pt)


def _live(args: argparse.Namespace, sc: dict) -> Any:
    """An engine factory for --realtime (or None), after checking the live-mode options."""
    if not args.realtime:
        if args.listen or args.speed != 1.0 or args.home:
            raise ValueError("--speed, --listen and --home go with --realtime")
        return None
    import functools
    import tempfile

    from plexus.sim import live

    if not args.speed > 0:
        raise ValueError("--speed must be positive")
    listen = live.parse_address(args.listen) if args.listen else None

    out = sys.stderr if args.json else sys.stdout  # --json keeps stdout for the metrics

    def on_start(eng: Any) -> None:
        if eng.address is None:
            print("plexus sim: %s in real time (x%g)" % (sc["name"], eng.speed), file=out, flush=True)
            return
        info = live.write_home(args.home or tempfile.mkdtemp(prefix="plexus-simhome-"))
        host, port = eng.address
        print("plexus sim: %s in real time (x%g), listening on %s:%d" % (sc["name"], eng.speed, host, port), file=out)
        print("  export PLEXUS_HOME=%s   # the simulation's group; member key 'assembly'" % info["home"], file=out)
        print("  plexus node virtual --sim %s:%d --at X,Y" % (host, port), file=out, flush=True)

    return functools.partial(live.LiveEngine, speed=args.speed, listen=listen, on_start=on_start)


def run(args: argparse.Namespace) -> int:
    try:
        sc = scn.load_scenario(args.scenario)
        if args.duration is not None:
            if not args.duration > 0:
                raise ValueError("--duration must be positive")
            sc["duration_s"] = float(args.duration)
        factory = _live(args, sc)
    except (scn.ScenarioError, ValueError, OSError) as exc:
        _err(str(exc))
        return 2
    progress = None
    bar = None
    if factory is None and not args.json and sys.stdout.isatty():
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("simulating %s" % sc["name"]), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                       TimeElapsedColumn(), transient=True)
        task = bar.add_task("sim", total=sc["duration_s"])

        def progress(t_s: float, total_s: float) -> None:
            bar.update(task, completed=t_s)

        bar.start()
    try:
        result = run_scenario(sc, router=args.router, seed=args.seed, progress=progress, engine_factory=factory)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    finally:
        if bar is not None:
            bar.stop()
    if args.json:
        print(json.dumps(result.metrics, indent=2))
    else:
        print_summary(result)
    if args.plot:
        from plexus.sim.plot import save_plot

        try:
            save_plot(result, args.plot)
        except (OSError, ValueError) as exc:
            _err("cannot write plot %s: %s" % (args.plot, exc))
            return 1
        if not args.json:
            print("plot written to %s" % args.plot)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plexus sim", description="simulate a mesh scenario with the node core")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
