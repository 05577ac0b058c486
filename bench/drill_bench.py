#!/usr/bin/env python3
"""Drill receipts (issue 6): the reverse-path receipts against the naive scheme in which every node floods its
own signed receipt, side by side on the same scenario, seeds and core. Writes `## Drill receipts (issue 6)`.

    .venv/bin/python bench/drill_bench.py [--seeds 5] [--write]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from benchmarks_md import write_section
from plexus.sim import nodes as simnodes
from plexus.sim.engine import run_scenario

ROOT = Path(__file__).resolve().parents[1]
RECEIPT_KINDS = (5, 0x81, 0xA3)  # RECEIPT, BUNDLE (batched receipts), RACK


def factory(mode):
    def make(name, **kw):
        kw["config"] = dict(kw.get("config") or {}, receipts=mode)
        return simnodes.make_core_node(name, **kw)
    return make


def measure(scenario: str, mode: str, seed: int) -> dict:
    r = run_scenario(scenario, "plexus", seed, node_factory=factory(mode))
    per_node = []
    for evs in r.events.values():
        per_node.append(sum(p["airtime_us"] for _, k, p in evs if k == "tx" and p.get("kind") in RECEIPT_KINDS) / 1e6)
    drill = next(p for p in r.posts if p["type"] == "drill")
    caller = drill["origin"]
    start = drill["t_ms"]
    pressed = {(p["node"]) for p in r.presses}
    confirmed_in_5 = set()
    kid_to_name = {bytes.fromhex(r.status[n]["key_id"]): n for n in r.status}
    for t, k, p in r.events[caller]:
        if k == "receipt" and p["state"] == "confirmed" and t - start <= 300_000:
            confirmed_in_5.add(kid_to_name.get(bytes(p["node"])))
    reachable = [n for n in r.events if n != caller and any(k == "alert" for _, k, _ in r.events[n])]
    return {
        "receipt_airtime_mean_s": statistics.mean(per_node),
        "receipt_airtime_max_s": max(per_node),
        "confirmed_5min_of_reachable": len(confirmed_in_5) / max(1, len(reachable)),
        "confirmed_5min_of_pressed": len(confirmed_in_5 & pressed) / max(1, len(pressed)),
        "ack_ratio": r.metrics["ack_ratio"],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--scenario", default="town")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    res = {}
    for mode in ("path", "flood"):
        runs = [measure(a.scenario, mode, s) for s in range(1, a.seeds + 1)]
        res[mode] = {k: statistics.mean(x[k] for x in runs) for k in runs[0]}
    ratio = res["path"]["receipt_airtime_mean_s"] / res["flood"]["receipt_airtime_mean_s"]
    lines = [
        "## Drill receipts (issue 6)",
        "",
        "Command: `.venv/bin/python bench/drill_bench.py --seeds %d --write` (scenario `%s`, LongFast, EU_868 10 %%, the "
        "real core; receipts=path is what ships, receipts=flood the naive baseline: every node floods its own signed "
        "receipt; same seeds; means over seeds). Receipt airtime counts RECEIPT, BUNDLE and RACK frames." % (a.seeds, a.scenario),
        "",
        "| receipts | receipt airtime per node, mean s | max node s | confirmations back within 5 min / reachable | / pressed | ack ratio (any time) |",
        "|---|---|---|---|---|---|",
    ]
    for mode in ("path", "flood"):
        x = res[mode]
        lines.append("| %s | %.2f | %.2f | %.3f | %.3f | %.3f |" % (mode, x["receipt_airtime_mean_s"], x["receipt_airtime_max_s"],
                                                              x["confirmed_5min_of_reachable"], x["confirmed_5min_of_pressed"],
                                                              x["ack_ratio"]))
    lines += ["", "Receipt airtime per node, path / naive: **%.2f** (target <= 0.33). Confirmations within 5 minutes: "
              "target 95 %% of the reachable nodes (the scenario's holders press with probability 0.9 after 10-120 s, so at most "
              "~90 %% can confirm; the / pressed column is the share of those who pressed)." % ratio, ""]
    text = "\n".join(lines)
    print(text)
    if a.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
