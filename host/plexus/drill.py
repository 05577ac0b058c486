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
        # the caller's own node counts too: losing it would split the mesh as well
        "single_points_of_failure": sorted(nx.articulation_points(g)),
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
        links = [(n, short_to_name[s]) for n in names
                 for s in st.get(n, {}).get("heard_ids", st.get(n, {}).get("neighbour_ids", [])) if s in short_to_name]
        out.append(build_report(text, caller, start_ms, nodes, recs, links))
    return out


# ---- a drill on a real mesh, driven from the laptop (plexus drill start)


def parse_duration(s: str) -> float:
    """'90s', '10m', '1h', '1m30s' or plain seconds -> seconds (> 0). ValueError on anything else."""
    import re

    t = str(s).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        v = float(t)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", t)
        if not parts or "".join(a + b for a, b in parts) != t:
            raise ValueError("%r is not a duration (examples: 90s, 10m, 1h, 1m30s)" % s)
        v = sum(float(a) * {"h": 3600, "m": 60, "s": 1}[b] for a, b in parts)
    if v <= 0:
        raise ValueError("the duration must be more than 0 seconds, not %r" % s)
    return v


def expected_nodes(roster: Any, caller_kid: bytes | None) -> list[dict]:
    """The roster's nodes that should answer a drill called from caller_kid (build_report's `nodes`)."""
    from plexwire import msg

    return [{"name": e.name or e.kid.hex(), "short": msg.short_id(e.kid), "holder": e.holder, "contact": e.contact,
             "kid": e.kid.hex()} for e in roster.nodes() if e.kid != caller_kid]


def alert_record(key: Any, group_id: bytes, text: str, real: bool = False, time_s: int | None = None) -> bytes:
    """A signed ALERT (drill, or a real alert with real=True) as a stored record for a host-link POST."""
    import time

    from plexwire import hostlink, msg

    from plexus.client import EPOCH, RecordError

    b = text.encode("utf-8")
    if not b:
        raise RecordError("the alert text is empty")
    if len(b) > msg.MAX_SHORT_TEXT:
        raise RecordError("alert text is %d bytes; an alert holds at most %d" % (len(b), msg.MAX_SHORT_TEXT))
    t = int(time.time()) - EPOCH if time_s is None else time_s
    return hostlink.pack_record(key.sign_message(group_id, msg.ALERT, {"flags": msg.ALERT_REAL if real else 0, "text": text}, t))


class Tally:
    """Receipts for one alert as they reach the laptop: EVENT lines (preferred, they carry the node's signed
    time) and TALLY replies (the fallback). Times are node milliseconds once the caller's own "message"
    event told us when the alert started there, laptop milliseconds until then."""

    def __init__(self, alert_id: bytes, nodes: list[dict], started_ms: int):
        self.alert_id = bytes(alert_id)
        self.nodes = nodes
        self.by_kid = {n["kid"]: n for n in nodes}
        self.started_ms = started_ms
        self.node_t0: int | None = None  # the caller node's clock (ms) when it took the alert
        self.state: dict[str, dict] = {}  # name -> {"hops", "via", "reached": (t, at_s), "confirmed": (t, at_s)}

    def _t(self, node_t: Any, laptop_ms: int) -> int:
        if self.node_t0 is not None and isinstance(node_t, int):
            return self.started_ms + (node_t - self.node_t0)
        return laptop_ms

    def _put(self, kid_hex: str, state: str, hops: Any, via: Any, t: int, at_s: Any) -> bool:
        n = self.by_kid.get(kid_hex)
        if n is None:
            return False
        s = self.state.setdefault(n["name"], {"hops": None, "via": None, "reached": None, "confirmed": None})
        changed = False
        if hops is not None:
            s["hops"], s["via"] = hops, via
        for st in (("reached", "confirmed") if state == "confirmed" else ("reached",)):
            old = s[st]
            # a receipt's signed time beats an arrival time; the earliest arrival wins
            if old is None or (old[1] is None and at_s is not None) or (old[1] is None and at_s is None and t < old[0]):
                s[st] = (t, at_s)
                changed = True
        return changed

    def on_event(self, ev: Any, laptop_ms: int) -> bool:
        """One decoded EVENT body; True when the tally changed."""
        if not isinstance(ev, dict):
            return False
        if ev.get("type") == "message" and ev.get("id") == self.alert_id.hex() and isinstance(ev.get("t"), int):
            if self.node_t0 is None:
                self.node_t0 = ev["t"]
            return False
        if ev.get("type") != "receipt" or ev.get("alert") != self.alert_id.hex():
            return False
        return self._put(str(ev.get("node", "")), "confirmed" if ev.get("state") == "confirmed" else "reached",
                         ev.get("hops"), ev.get("via"), self._t(ev.get("t"), laptop_ms), ev.get("at_s"))

    def on_tally(self, reply: dict, laptop_ms: int) -> bool:
        changed = False
        for r in reply.get("receipts", []):
            kid = str(r.get("node", ""))
            changed |= self._put(kid, "reached", r.get("hops"), r.get("via"), self._t(r.get("t_reached"), laptop_ms), None)
            if r.get("state") == "confirmed":
                changed |= self._put(kid, "confirmed", r.get("hops"), r.get("via"),
                                     self._t(r.get("t_confirmed"), laptop_ms), None)
        return changed

    def all_confirmed(self) -> bool:
        return all((self.state.get(n["name"]) or {}).get("confirmed") for n in self.nodes)

    def receipts(self) -> list[dict]:
        """build_report's `receipts`: one "reached" and (if any) one "confirmed" per node."""
        out = []
        for name, s in self.state.items():
            for st in ("reached", "confirmed"):
                if s[st] is not None:
                    out.append({"node": name, "state": st, "hops": s["hops"], "via": s["via"], "t": s[st][0], "at_s": s[st][1]})
        out.sort(key=lambda r: r["t"])
        return out

    def seconds(self, name: str, st: str) -> float | None:
        s = self.state.get(name)
        if not s or s[st] is None:
            return None
        t, at_s = s[st]
        return float(at_s) if at_s is not None else round((t - self.started_ms) / 1000.0, 1)
