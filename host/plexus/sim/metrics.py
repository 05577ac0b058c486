"""Metrics of a finished run: reachability over time, delivery, latency, airtime, duty cycle, CDS.

Definitions (docs/scenarios.md repeats them for users):

* reachable pair (node, bulletin): in the time-expanded link graph from the post time to the end
  of the run there is a journey (a time-respecting path of links that are up) from the origin to
  the node.  A directed link s->r is up at time t when both nodes are on, no active partition
  separates them, and the mean power of s at r is >= r's sensitivity (mean SNR above the SF
  floor; in link-table mode additionally loss < 1).  Links change only at the engine's topology
  snapshots (failures, partitions, courier steps); traversal takes no time and a node that holds a
  bulletin keeps it (store-carry-forward), so this is an upper bound for any router.
* delivery_ratio = delivered reachable pairs / reachable pairs (bulletins only; drills' alerts
  are in alert_delivery_ratio).  A delivery is the first "message" (or "alert") event carrying
  the id at that node.  Delivered pairs that are not reachable (possible only with fading) are
  reported separately as delivered_unreachable_pairs.
* latency_s_p50 / p95: delivery time - post time over delivered reachable pairs; nearest-rank
  percentiles.
* transmissions = all frames sent (beacons, sync, receipts included); transmissions_by_kind splits them
  when the core reports its "tx" events with a kind (plexnode does).
* transmissions_per_bulletin = frames that carry bulletin content (BULLETIN, BULLETIN_LONG, FRAGMENT;
  first floods, relays and anti-entropy copies alike) / bulletins posted: the dissemination cost
  that cds_lower_bound bounds from below.  A core that reports no kinds (the stub) counts all
  frames over bulletins + drills, as before.
* cds_lower_bound: greedy connected dominating set of the t=0 link graph (edge iff both
  directions are up), summed over connected components with 2+ nodes: about the fewest
  transmitters one flood needs.
* duty_cycle_violations: for each node, each transmission at whose end the airtime inside the
  trailing 3600 s window (partial frames clipped) exceeds duty_cycle * 3600 s counts once.  The
  maximum over all sliding windows is always reached by a window ending at a frame end, so this
  also gives the exact peak (per_node duty_peak_pct).
* drills: receipts are the "receipt" events at the node that started the drill, parsed by
  ``parse_receipt`` (pluggable: pass ``receipt_parser`` to run_scenario/compute_metrics).
  ack_ratio = confirmed receipts that arrived / confirmations pressed; ack_latency_s_p95 = arrival
  - press time; confirm_latency_s_p95 = arrival - drill start; reached_ratio = nodes with any
  receipt / nodes the alert reached.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from plexus.sim.engine import Engine

HOUR_US = 3_600_000_000

ReceiptParser = Callable[[Any], "tuple[bytes, bytes, str, int | None] | None"]



# plexwire kinds (protocol/SPEC.md section 4.3) for reading the core's "tx" events
_KIND_NAMES = {1: "bulletin", 2: "bulletin_long", 3: "consent", 4: "alert", 5: "receipt", 6: "mandate", 7: "recall",
               8: "roster", 9: "revoke", 10: "rekey", 11: "handover", 0x20: "beacon", 0x80: "fragment",
               0x81: "bundle", 0xA0: "digest", 0xA1: "request", 0xA2: "offer", 0xA3: "rack"}
_CONTENT_KINDS = (1, 2, 0x80)

def parse_receipt(payload: Any) -> tuple[bytes, bytes, str, int | None] | None:
    """("receipt", {"alert": id, "node": bytes8, "state": "reached"|"confirmed", "t": ms}) -> tuple."""
    if not isinstance(payload, dict):
        return None
    alert = payload.get("alert", payload.get("id"))
    node = payload.get("node")
    state = payload.get("state")
    if alert is None or node is None or state is None:
        return None
    t = payload.get("t")
    return bytes(alert), bytes(node), str(state), (int(t) if t is not None else None)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = max(1, math.ceil(p / 100.0 * len(xs)))
    return xs[min(k, len(xs)) - 1]


def audit_duty_cycle(
    frames: Iterable[tuple[int, int]], budget_us: float, window_us: int = HOUR_US
) -> tuple[int, int]:
    """One node's TX log [(start_us, airtime_us)] -> (violations, peak airtime in any window, us).

    A violation is a transmission at whose end the trailing window holds more than budget_us of
    airtime.  Frames of one node never overlap (half-duplex); they are sorted here anyway.
    """
    fr = sorted((int(s), int(a)) for s, a in frames)
    if not fr:
        return 0, 0
    starts = [s for s, _ in fr]
    ends = [s + a for s, a in fr]
    prefix = [0]
    for _, a in fr:
        prefix.append(prefix[-1] + a)
    violations = 0
    peak = 0
    for k, e in enumerate(ends):
        lo = e - window_us
        j = bisect.bisect_right(ends, lo)  # first frame ending after the window start
        total = prefix[k + 1] - prefix[j]
        if j <= k and starts[j] < lo:
            total -= lo - starts[j]
        if total > peak:
            peak = total
        if total > budget_us:
            violations += 1
    return violations, peak


def greedy_cds(adj: dict[int, list[int]]) -> list[int]:
    """Greedy connected dominating set (grow from the max-degree node, always adding the grey
    node that covers most white nodes; ties to the lowest index), per connected component.
    Components of a single node contribute nothing."""
    seen: set[int] = set()
    black_all: list[int] = []
    for root in sorted(adj):
        if root in seen:
            continue
        comp = {root}
        stack = [root]
        while stack:
            u = stack.pop()
            for v in adj[u]:
                if v not in comp:
                    comp.add(v)
                    stack.append(v)
        seen |= comp
        if len(comp) < 2:
            continue
        start = min(comp, key=lambda v: (-len(adj[v]), v))
        black = [start]
        white = set(comp)
        white.discard(start)
        grey: set[int] = set()
        for v in adj[start]:
            white.discard(v)
            grey.add(v)
        while white:
            best = min(grey, key=lambda v: (-sum(1 for w in adj[v] if w in white), v))
            grey.discard(best)
            black.append(best)
            for w in adj[best]:
                if w in white:
                    white.discard(w)
                    grey.add(w)
        black_all.extend(black)
    return sorted(black_all)


def reachability(eng: Engine) -> list[set[int]]:
    """Per posted item: the set of nodes (origin excluded) a journey reaches from the post time."""
    n = eng.n
    courier = eng.is_courier
    static_adj: list[list[int]] = [[] for _ in range(n)]
    for s in range(n):
        if courier[s]:
            continue
        for r, (up, _p) in eng.static_nbrs0[s].items():
            if up and not courier[r]:
                static_adj[s].append(r)
    snaps = eng.snapshots
    snap_t = [sn[0] for sn in snaps]
    groups = eng.part_groups

    def out_edges(snap: tuple) -> list[list[int]]:
        adj = [list(a) for a in static_adj]
        for c, outs, ins in snap[3]:
            adj[c].extend(outs)
            for s in ins:
                adj[s].append(c)
        return adj

    epoch_adj: dict[int, list[list[int]]] = {}
    result: list[set[int]] = []
    for post in eng.posts:
        origin, t0 = post["origin"], post["t_us"]
        j = max(0, bisect.bisect_right(snap_t, t0) - 1)
        reached = {origin}
        for k in range(j, len(snaps)):
            snap = snaps[k]
            on = snap[1]
            parts = snap[2]
            adj = epoch_adj.get(k)
            if adj is None:
                adj = out_edges(snap) if snap[3] else static_adj
                epoch_adj[k] = adj
            stack = [u for u in reached if on[u]]
            while stack:
                u = stack.pop()
                for v in adj[u]:
                    if v in reached or not on[v]:
                        continue
                    if parts and any(groups[p][u] >= 0 and groups[p][v] >= 0 and groups[p][u] != groups[p][v] for p in parts):
                        continue
                    reached.add(v)
                    stack.append(v)
            if len(reached) == n:
                break
        reached.discard(origin)
        result.append(reached)
    return result


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def compute_metrics(eng: Engine, receipt_parser: ReceiptParser | None = None) -> dict:
    parse = receipt_parser or parse_receipt
    n = eng.n
    names = eng.names
    reach = reachability(eng)
    eng.reach = reach

    bulletins = [k for k, p in enumerate(eng.posts) if p["type"] == "bulletin"]
    drills = [k for k, p in enumerate(eng.posts) if p["type"] == "drill"]

    reachable_pairs = sum(len(reach[k]) for k in bulletins)
    delivered_pairs = 0
    unreachable_deliv = 0
    latencies: list[float] = []
    node_deliv = [0] * n
    node_reach = [0] * n
    for k in bulletins:
        t0 = eng.posts[k]["t_us"]
        for i in reach[k]:
            node_reach[i] += 1
        for i, t in eng.deliv[k].items():
            if i in reach[k]:
                delivered_pairs += 1
                node_deliv[i] += 1
                latencies.append((t - t0) / 1e6)
            else:
                unreachable_deliv += 1

    # airtime and duty cycle
    per_node_frames: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    idx = eng.sc["index"]
    for rec in eng.tx_log:
        per_node_frames[idx[rec.node]].append((rec.t_us, rec.airtime_us))
    budget_us = eng.region["duty_cycle"] * HOUR_US
    duty = [audit_duty_cycle(fr, budget_us) for fr in per_node_frames]

    # connected dominating set of the t=0 link graph
    adj: dict[int, list[int]] = {i: [] for i in range(n)}
    for s in range(n):
        for r, (up, _p) in eng.static_nbrs0[s].items():
            if up and r > s:
                back = eng.static_nbrs0[r].get(s)
                if back is not None and back[0]:
                    adj[s].append(r)
                    adj[r].append(s)
    cds = greedy_cds(adj)

    radio_drops: Counter = Counter()
    core_drops: Counter = Counter()
    for i in range(n):
        radio_drops.update(eng.radio_drops[i])
        core_drops.update(eng.core_drops[i])
    drops = {k: radio_drops[k] for k in sorted(radio_drops)}
    for k in sorted(core_drops):
        drops["core." + k] = core_drops[k]

    tx_total = len(eng.tx_log)
    by_kind: dict[str, int] = {}
    content = 0
    for evs in eng.events:
        for _, kind, payload in evs:
            if kind == "tx" and isinstance(payload, dict) and "kind" in payload:
                k = payload["kind"]
                name = _KIND_NAMES.get(k, str(k))
                by_kind[name] = by_kind.get(name, 0) + 1
                if k in _CONTENT_KINDS:
                    content += 1
    if by_kind:
        tx_per_bulletin = _r(content / len(bulletins), 2) if bulletins else None
    else:
        tx_per_bulletin = _r(tx_total / len(eng.posts), 2) if eng.posts else None
    air_total = sum(eng.airtime_us)
    m: dict[str, Any] = {
        "scenario": eng.sc["name"],
        "router": eng.router,
        "seed": eng.seed,
        "nodes": n,
        "duration_s": eng.sc["duration_s"],
        "modem": eng.modem["name"],
        "region": eng.region["name"],
        "bulletins": len(bulletins),
        "drills": len(drills),
        "skipped_posts": len(eng.skipped),
        "reachable_pairs": reachable_pairs,
        "delivered_pairs": delivered_pairs,
        "delivered_unreachable_pairs": unreachable_deliv,
        "delivery_ratio": _r(delivered_pairs / reachable_pairs, 4) if reachable_pairs else None,
        "latency_s_p50": _r(percentile(latencies, 50)),
        "latency_s_p95": _r(percentile(latencies, 95)),
        "transmissions": tx_total,
        "transmissions_per_bulletin": tx_per_bulletin,
        "transmissions_by_kind": dict(sorted(by_kind.items())),
        "cds_lower_bound": len(cds),
        "airtime_s_total": _r(air_total / 1e6),
        "airtime_s_max_node": _r(max(eng.airtime_us) / 1e6 if n else 0.0),
        "duty_cycle_budget_s_per_hour": _r(budget_us / 1e6, 1),
        "duty_cycle_violations": sum(v for v, _ in duty),
        "duty_cycle_violating_nodes": sum(1 for v, _ in duty if v),
        "collisions": radio_drops["collision"] + radio_drops["busy"],
        "spurious_timer_polls": sum(eng.spurious_polls),
        "drops": drops,
    }

    # drills
    if drills:
        d_reach = sum(len(reach[k]) for k in drills)
        d_deliv = sum(1 for k in drills for i in eng.deliv[k] if i in reach[k])
        m["alert_delivery_ratio"] = _r(d_deliv / d_reach, 4) if d_reach else None
        by_alert = {eng.posts[k]["id"]: k for k in drills}
        confirmed: dict[int, dict[int, int]] = {k: {} for k in drills}
        any_receipt: dict[int, set[int]] = {k: set() for k in drills}
        for rc in eng.receipts:
            parsed = parse(rc["payload"])
            if parsed is None:
                continue
            alert, node_id, state, _t = parsed
            kd = by_alert.get(alert)
            if kd is None or rc["at"] != eng.posts[kd]["origin"]:
                continue
            who = eng.by_id.get(node_id)
            if who is None:
                continue
            any_receipt[kd].add(who)
            if state == "confirmed" and who not in confirmed[kd]:
                confirmed[kd][who] = rc["t_us"]
        pressed: dict[int, dict[int, int]] = {k: {} for k in drills}
        for pr in eng.presses:
            pressed[pr["post"]].setdefault(pr["node"], pr["t_us"])
        n_pressed = sum(len(v) for v in pressed.values())
        acked = 0
        ack_lat: list[float] = []
        conf_lat: list[float] = []
        for k in drills:
            for who, t in confirmed[k].items():
                conf_lat.append((t - eng.posts[k]["t_us"]) / 1e6)
                tp = pressed[k].get(who)
                if tp is not None:
                    acked += 1
                    ack_lat.append((t - tp) / 1e6)
        alerted = sum(len(eng.deliv[k]) for k in drills)
        m["confirmations_pressed"] = n_pressed
        m["confirmed_receipts"] = acked
        m["ack_ratio"] = _r(acked / n_pressed, 4) if n_pressed else None
        m["ack_latency_s_p95"] = _r(percentile(ack_lat, 95))
        m["confirm_latency_s_p95"] = _r(percentile(conf_lat, 95))
        m["reached_ratio"] = _r(sum(len(v) for v in any_receipt.values()) / alerted, 4) if alerted else None
    else:
        m["alert_delivery_ratio"] = None
        m["ack_ratio"] = None
        m["ack_latency_s_p95"] = None

    per_node = {}
    for i in range(n):
        nd = {
            "tx": eng.tx_count[i],
            "airtime_s": _r(eng.airtime_us[i] / 1e6),
            "rx": eng.rx_ok[i],
            "delivered": node_deliv[i],
            "reachable": node_reach[i],
            "delivery_ratio": _r(node_deliv[i] / node_reach[i], 4) if node_reach[i] else None,
            "duty_peak_pct": _r(100.0 * duty[i][1] / HOUR_US, 3),
            "duty_cycle_violations": duty[i][0],
            "drops": dict(sorted(eng.radio_drops[i].items())),
            "core_drops": dict(sorted(eng.core_drops[i].items())),
            "courier": eng.is_courier[i],
            "off": [[a / 1e6, None if b is None else b / 1e6] for a, b in eng.off_intervals[i]],
        }
        per_node[names[i]] = nd
    m["per_node"] = per_node
    return m
