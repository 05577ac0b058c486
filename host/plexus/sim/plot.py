"""--plot: a map of nodes and links coloured by delivery, and delivery over time (matplotlib, Agg)."""

from __future__ import annotations

from typing import Any

from plexus.sim.engine import SimResult


def save_plot(result: SimResult, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = result.graph
    per_node = result.metrics["per_node"]
    pos: dict[str, Any] = {n: d["pos"] for n, d in g.nodes(data=True)}
    if any(p is None for p in pos.values()):
        pos = nx.spring_layout(g, seed=result.seed)
        unit = ""
    else:
        pos = {n: (p[0] / 1000.0, p[1] / 1000.0) for n, p in pos.items()}
        unit = " (km)"

    fig, (ax_map, ax_t) = plt.subplots(1, 2, figsize=(13, 5.8), gridspec_kw={"width_ratios": [1.15, 1]})
    m = result.metrics
    fig.suptitle("%s - router %s, seed %s, core %s: delivery %s, %d transmissions" % (
        m["scenario"], m["router"], m["seed"], m.get("core", "?"),
        "n/a" if m["delivery_ratio"] is None else "%.1f %%" % (100 * m["delivery_ratio"]), m["transmissions"]))

    # couriers' paths
    for _n, d in g.nodes(data=True):
        if d.get("courier"):
            wps = result.scenario["nodes"][d["index"]]["courier"]
            ax_map.plot([w[1] / 1000.0 for w in wps], [w[2] / 1000.0 for w in wps], "--", color="tab:blue", lw=1, alpha=0.6)
    for a, b in g.edges():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        ax_map.plot([x1, x2], [y1, y2], "-", color="0.75", lw=0.6, zorder=1)
    cmap = plt.get_cmap("RdYlGn")
    names = list(g.nodes())
    colours = []
    for n in names:
        r = per_node[n]["delivery_ratio"]
        colours.append("0.6" if r is None else cmap(r))
    xs = [pos[n][0] for n in names]
    ys = [pos[n][1] for n in names]
    markers = ["^" if g.nodes[n].get("courier") else "o" for n in names]
    for x, y, c, mk in zip(xs, ys, colours, markers):
        ax_map.scatter([x], [y], c=[c], marker=mk, s=46, edgecolors="k", linewidths=0.5, zorder=3)
    off = [n for n in names if per_node[n]["off"]]
    if off:
        ax_map.scatter([pos[n][0] for n in off], [pos[n][1] for n in off], marker="x", c="k", s=60, zorder=4,
                       label="switched off during the run")
        ax_map.legend(loc="lower right", fontsize=8)
    if len(names) <= 40:
        for n in names:
            ax_map.annotate(n, pos[n], fontsize=6, xytext=(3, 3), textcoords="offset points")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
    fig.colorbar(sm, ax=ax_map, fraction=0.04, label="delivery ratio per node")
    ax_map.set_xlabel("x" + unit)
    ax_map.set_ylabel("y" + unit)
    ax_map.set_aspect("equal", adjustable="datalim")
    ax_map.set_title("nodes and links (t=0)")

    # delivery over time: delivered reachable pairs / all reachable pairs
    total = 0
    times: list[float] = []
    for p in result.posts:
        if p["type"] != "bulletin":
            continue
        reach = set(result.reachable.get(p["id"], []))
        total += len(reach)
        for node, t in result.deliveries.get(p["id"], {}).items():
            if node in reach:
                times.append(t / 1000.0)
        ax_t.axvline(p["t_ms"] / 1000.0, color="0.85", lw=0.8, zorder=0)
    times.sort()
    dur = result.scenario["duration_s"]
    if total:
        ys2 = [(k + 1) / total for k in range(len(times))]
        ax_t.step([0.0] + times + [dur], [0.0] + ys2 + [ys2[-1] if ys2 else 0.0], where="post", color="tab:green")
    for iv in result.off.values():
        for a, _b in iv:
            ax_t.axvline(a, color="tab:red", lw=0.5, alpha=0.3, zorder=0)
    ax_t.set_xlim(0, dur)
    ax_t.set_ylim(0, 1.02)
    ax_t.set_xlabel("time (s)")
    ax_t.set_ylabel("delivered / reachable (node, bulletin) pairs")
    ax_t.set_title("delivery over time (grey: posts, red: switch-offs)")
    ax_t.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
