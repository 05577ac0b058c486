"""Drill reports: who was reached, who confirmed, how fast, over which relays, and who must be phoned.

One report shape for a drill run in the simulator and (with the live tally) on a real mesh; it is
stored in the ledger and exported as text, JSON and HTML.
"""

from __future__ import annotations

import html
from typing import Any

import networkx as nx


def _pct(a: int, b: int) -> float | None:
    return round(100.0 * a / b, 1) if b else None


def _percentile(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(-(-p * len(xs) // 100)) - 1))
    return round(xs[k], 1)


def build_report(text: str, caller: str, started_ms: int, nodes: list[dict], receipts: list[dict],
                 links: list[tuple[str, str]] | None = None) -> dict:
    """nodes: [{"name", "short", "holder", "contact"}] every node expected to answer (the caller excluded);
    receipts: [{"node": name, "state": "reached"|"confirmed", "hops", "via": short id, "t": arrival ms,
    "at_s": seconds after the call by the node's signed clock, or None}] as they arrived;
    links: the observed mesh (pairs of names, from the nodes' neighbour tables), for single points of failure."""
    by_short = {n["short"]: n["name"] for n in nodes}
    rows: dict[str, dict[str, Any]] = {n["name"]: {"node": n["name"], "holder": n.get("holder", ""), "hops": None,
                                                    "reached_s": None, "confirmed_s": None, "via": None} for n in nodes}
    for r in receipts:
        row = rows.get(r["node"])
        if row is None:
            continue
        dt = r["at_s"] if r.get("at_s") is not None else round((r["t"] - started_ms) / 1000.0, 1)
        back = round((r["t"] - started_ms) / 1000.0, 1)
        if row.get("back_s") is None or back > row["back_s"]:
            row["back_s"] = back
        row["hops"] = r.get("hops")
        row["via"] = by_short.get(r.get("via"), caller if r.get("hops") == 1 else None)
        if row["reached_s"] is None or dt < row["reached_s"]:
            row["reached_s"] = dt
        if r["state"] == "confirmed" and (row["confirmed_s"] is None or dt < row["confirmed_s"]):
            row["confirmed_s"] = dt
    reached = [r for r in rows.values() if r["reached_s"] is not None]
    confirmed = [r for r in rows.values() if r["confirmed_s"] is not None]
    g = nx.Graph()
    g.add_node(caller)
    for r in reached:
        if r["via"]:
            g.add_edge(r["via"], r["node"])
    for a, b in links or ():
        if a in rows or a == caller:
            if b in rows or b == caller:
                g.add_edge(a, b)
    # only nodes that answered can be relied on: the mesh as this drill observed it
    g = g.subgraph([caller] + [r["node"] for r in reached]).copy()
    silent = [n for n in nodes if rows[n["name"]]["reached_s"] is None]
    return {
        "text": text,
        "caller": caller,
        "expected": len(nodes),
        "reached": len(reached),
        "confirmed": len(confirmed),
        "reach_pct": _pct(len(reached), len(nodes)),
        "confirm_pct": _pct(len(confirmed), len(nodes)),
        "reach_s_p50": _percentile([r["reached_s"] for r in reached], 50),
        "reach_s_p95": _percentile([r["reached_s"] for r in reached], 95),
        "confirm_s_p50": _percentile([r["confirmed_s"] for r in confirmed], 50),
        "confirm_s_p95": _percentile([r["confirmed_s"] for r in confirmed], 95),
        "relay_tree": sorted([r["via"], r["node"]] for r in reached if r["via"]),
        # a relay whose loss would have cut others off from the caller in this drill
        "single_points_of_failure": sorted(a for a in nx.articulation_points(g) if a != caller),
        "receipts_back_s_p95": _percentile([r["back_s"] for r in reached if r.get("back_s") is not None], 95),
        "phone_chain": [{"node": n["name"], "holder": n.get("holder", ""), "contact": n.get("contact", "")} for n in silent],
        "rows": sorted(rows.values(), key=lambda r: (r["reached_s"] is None, r["reached_s"] or 0, r["node"])),
    }


def as_text(rep: dict) -> str:
    out = ["DRILL REPORT: %s" % rep["text"], "called from %s; %d nodes expected" % (rep["caller"], rep["expected"]),
           "reached   %d (%s %%)  p50 %s s  p95 %s s" % (rep["reached"], rep["reach_pct"], rep["reach_s_p50"], rep["reach_s_p95"]),
           "confirmed %d (%s %%)  p50 %s s  p95 %s s" % (rep["confirmed"], rep["confirm_pct"], rep["confirm_s_p50"],
                                                         rep["confirm_s_p95"]),
           "receipts back at the caller within %s s (p95)" % rep["receipts_back_s_p95"],
           "single points of failure (nodes whose loss cuts others off): %s" % (", ".join(rep["single_points_of_failure"]) or "none"),
           ""]
    if rep["phone_chain"]:
        out.append("PHONE CHAIN: nobody answered from these nodes; call or visit:")
        for p in rep["phone_chain"]:
            out.append("  [ ] %-10s %-24s %s" % (p["node"], p["holder"], p["contact"]))
    else:
        out.append("Every node answered.")
    out.append("")
    out.append("%-10s %4s %10s %12s  %s" % ("node", "hops", "reached s", "confirmed s", "heard via"))
    for r in rep["rows"]:
        out.append("%-10s %4s %10s %12s  %s" % (r["node"], r["hops"] if r["hops"] is not None else "-",
                                                 r["reached_s"] if r["reached_s"] is not None else "SILENT",
                                                 r["confirmed_s"] if r["confirmed_s"] is not None else "-", r["via"] or "-"))
    return "\n".join(out) + "\n"


def as_html(rep: dict) -> str:
    e = html.escape
    rows = "".join("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
        e(r["node"]), r["hops"] if r["hops"] is not None else "-", r["reached_s"] if r["reached_s"] is not None else "<b>silent</b>",
        r["confirmed_s"] if r["confirmed_s"] is not None else "-", e(r["via"] or "-")) for r in rep["rows"])
    chain = "".join("<li>%s: %s, %s</li>" % (e(p["node"]), e(p["holder"]), e(p["contact"])) for p in rep["phone_chain"])
    return ("<section class='drill'><h2>Drill: %s</h2><p>Reached %d of %d (%s %%), confirmed %d (%s %%); "
            "p95 to confirm %s s. Single points of failure: %s.</p><h3>Phone chain</h3><ul>%s</ul>"
            "<table><tr><th>node</th><th>hops</th><th>reached s</th><th>confirmed s</th><th>heard via</th></tr>%s</table></section>"
            % (e(rep["text"]), rep["reached"], rep["expected"], rep["reach_pct"], rep["confirmed"], rep["confirm_pct"],
               rep["confirm_s_p95"], e(", ".join(rep["single_points_of_failure"]) or "none"), chain or "<li>nobody</li>", rows))


def report_from_sim(result: Any, roster: Any = None) -> list[dict]:
    """One report per drill in a simulator run (receipts as they reached the caller's node)."""
    from plexwire import msg

    names = list(result.events)
    out = []
    for post in result.posts:
        if post.get("type") != "drill":
            continue
        caller = names[post["origin"]] if isinstance(post["origin"], int) else post["origin"]
        st = result.status
        kid_to_name = {bytes.fromhex(st[n]["key_id"]): n for n in names if st.get(n, {}).get("key_id")}
        nodes = []
        for n in names:
            if n == caller or n not in st:
                continue
            kid = bytes.fromhex(st[n]["key_id"])
            ent = roster.get(kid) if roster is not None else None
            nodes.append({"name": n, "short": msg.short_id(kid), "holder": getattr(ent, "holder", "") if ent else "",
                          "contact": getattr(ent, "contact", "") if ent else ""})
        start_ms = int(post.get("t_ms", 0))
        text = "drill"
        for evs in result.events.values():
            for _, kind, p in evs:
                if kind == "alert" and p.get("id") == post["id"]:
                    text = p.get("text", text)
                    break
        recs = []
        for t_ms, kind, p in result.events[caller]:
            if kind == "receipt" and t_ms >= start_ms:
                recs.append({"node": kid_to_name.get(bytes(p["node"]), "?"), "state": p["state"], "hops": p.get("hops"),
                             "via": p.get("via"), "t": t_ms, "at_s": p.get("at_s")})
        short_to_name = {st[n]["short"]: n for n in names if "short" in st.get(n, {})}
        links = [(n, short_to_name[s]) for n in names for s in st.get(n, {}).get("neighbour_ids", []) if s in short_to_name]
        out.append(build_report(text, caller, start_ms, nodes, recs, links))
    return out
