#!/usr/bin/env python3
"""Mesh benchmark (issue 5): every bundled scenario, 5 seeds, plexus against managed (Meshtastic 2.7)
against flood, side by side in one run, plus the 300-node scale run. Writes the `## Mesh (issue 5)`
section of BENCHMARKS.md with --write.

    .venv/bin/python bench/mesh.py [--seeds 5] [--write]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

from benchmarks_md import write_section
from plexus.sim.engine import run_scenario
from plexus.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ["town", "line", "courier", "raid", "festival"]
ROUTERS = ["plexus", "managed", "flood"]


def scale_scenario() -> dict:
    return {
        "name": "scale-300",
        "description": "300 nodes placed at random on 12 x 12 km, 20 bulletins from random nodes",
        "duration_s": 3600,
        "seed": 7,
        "modem": "LONG_FAST",
        "generate": {"count": 300, "width_m": 12000, "height_m": 12000, "prefix": "s"},
        "traffic": [{"type": "bulletins", "count": 20, "start_s": 60, "interval_s": 150, "node": "random", "text": "scale"}],
    }


def run(seeds: int) -> tuple[list[dict], dict]:
    rows = []
    for sc_name in SCENARIOS:
        sc = load_scenario(sc_name)
        per: dict[str, list[dict]] = {r: [] for r in ROUTERS}
        for seed in range(1, seeds + 1):
            for router in ROUTERS:
                per[router].append(run_scenario(sc, router, seed).metrics)
        for router in ROUTERS:
            ms = per[router]
            dr = [m["delivery_ratio"] for m in ms]
            tpb = [m["transmissions_per_bulletin"] for m in ms]
            pairs = [m["delivered_pairs"] for m in ms]
            content = [t * m["bulletins"] for t, m in zip(tpb, ms)]
            rows.append({
                "scenario": sc_name, "router": router, "nodes": ms[0]["nodes"], "cds": ms[0]["cds_lower_bound"],
                "delivery_mean": statistics.mean(dr), "delivery_min": min(dr),
                "tx_per_bulletin": statistics.mean(tpb),
                "tx_per_delivered_pair": sum(content) / max(1, sum(pairs)),
                "airtime_s": statistics.mean(m["airtime_s_total"] for m in ms),
                "duty_violations": sum(m["duty_cycle_violations"] for m in ms),
                "latency_p95": statistics.mean(m["latency_s_p95"] or 0 for m in ms),
                "ack_ratio": statistics.mean(m["ack_ratio"] for m in ms) if ms[0].get("ack_ratio") is not None else None,
            })
        print("%s done" % sc_name, file=sys.stderr)
    flood = {r["scenario"]: r["tx_per_bulletin"] for r in rows if r["router"] == "flood"}
    for r in rows:
        r["vs_flood"] = r["tx_per_bulletin"] / flood[r["scenario"]] if flood[r["scenario"]] else None
    t = time.perf_counter()
    m = run_scenario(scale_scenario(), "plexus", 1).metrics
    scale = {"wall_s": time.perf_counter() - t, "delivery": m["delivery_ratio"], "tx_per_bulletin": m["transmissions_per_bulletin"],
             "nodes": m["nodes"], "bulletins": m["bulletins"]}
    return rows, scale


def table(rows: list[dict], scale: dict, seeds: int) -> str:
    out = [
        "## Mesh (issue 5)",
        "",
        "Command: `.venv/bin/python bench/mesh.py --seeds %d --write` (CPython %s; the real `plexnode` core in every simulated "
        "node; %d seeds per scenario and router, all in one run). `managed` models Meshtastic 2.7 managed flooding "
        "(SNR-weighted contention window, cancel on hearing a relay, hop limit 3) and `flood` naive de-duplicated flooding; "
        "neither has anti-entropy, as in Meshtastic. `plexus` adds self-pruning relays and anti-entropy sync (beacons, "
        "range reconciliation)." % (seeds, platform.python_version(), seeds),
        "",
        "tx/bulletin counts frames carrying bulletin content (first floods, relays and sync copies); beacons, sync "
        "control and drill traffic are in the airtime column. tx/delivered pair = those frames per delivered "
        "(node, bulletin) pair, which is fair to a router that delivers less. cds = greedy connected dominating set of "
        "the link graph: the floor for one flood.",
        "",
        "| scenario | nodes | cds | router | delivery mean (min) | tx/bulletin | vs flood | tx/delivered pair | airtime s | duty violations | latency p95 s | drill ack ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append("| %s | %d | %d | %s | %.3f (%.3f) | %.1f | %.2f | %.3f | %.0f | %d | %.1f | %s |" % (
            r["scenario"], r["nodes"], r["cds"], r["router"], r["delivery_mean"], r["delivery_min"], r["tx_per_bulletin"],
            r["vs_flood"], r["tx_per_delivered_pair"], r["airtime_s"], r["duty_violations"], r["latency_p95"],
            "-" if r["ack_ratio"] is None else "%.3f" % r["ack_ratio"]))
    out += ["", "Scale: %d nodes, %d bulletins, plexus router: %.1f s of wall time for one simulated hour on this 2-core machine "
            "(target < 60 s); delivery %.3f, %.1f tx/bulletin." % (scale["nodes"], scale["bulletins"], scale["wall_s"],
                                                                  scale["delivery"], scale["tx_per_bulletin"]), ""]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    a = ap.parse_args()
    rows, scale = run(a.seeds)
    text = table(rows, scale, a.seeds)
    print(text)
    if a.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
