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


def dash(v: Any, unit: str = "") -> str:
    """A report value for people: `-` for a missing one (no receipts, nothing expected), else the value and unit."""
    return "-" if v is None else "%s%s" % (v, unit)


SILENT = "silent"
UNCONFIRMED = "reached, not confirmed"
# what each phone-chain group means, in the order the chain lists them
CHAIN_GROUPS = ((SILENT, "silent: nothing came back from these nodes"),
                (UNCONFIRMED, "reached, not confirmed: the radio got it, nobody pressed"))
REACHED_NOTE = ("* no separate \"reached\" receipt came back (nodes hold it back and drop it once their holder "
                "confirms): the node was reached at or before the time shown.")


def build_report(text: str, caller: str, started_ms: int, nodes: list[dict], receipts: list[dict],
                 links: list[tuple[str, str]] | None = None, not_expected: list[dict] | None = None) -> dict:
    """nodes: [{"name", "short", "holder", "contact"}] every node expected to answer (the caller excluded);
    receipts: [{"node": name, "state": "reached"|"confirmed", "hops", "via": short id, "t": arrival ms,
    "at_s": seconds after the call by the node's signed clock, or None}] as they arrived;
    links: the observed mesh (pairs of names, from the nodes' neighbour tables), for single points of failure;
    not_expected: [{"node", "why"}] roster nodes left out (revoked, or left out of the group's current key).

    A node's "reached" receipt is held back and dropped when its holder confirms first, so a confirmed node
    may have no "reached" receipt: its row's reached_s is then its confirmation time and `reached_receipt`
    is False (the node was reached at or before that time)."""
    by_short = {n["short"]: n["name"] for n in nodes}
    rows: dict[str, dict[str, Any]] = {n["name"]: {"node": n["name"], "holder": n.get("holder", ""), "hops": None,
                                                    "reached_s": None, "confirmed_s": None, "via": None,
                                                    "reached_receipt": False} for n in nodes}
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
        if r["state"] != "confirmed":
            row["reached_receipt"] = True
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
    chain = []
    for state in (SILENT, UNCONFIRMED):
        for n in nodes:
            row = rows[n["name"]]
            st = SILENT if row["reached_s"] is None else UNCONFIRMED if row["confirmed_s"] is None else None
            if st == state:
                chain.append({"node": n["name"], "holder": n.get("holder", ""), "contact": n.get("contact", ""),
                              "state": state})
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
        # whom to phone or visit: the silent nodes first, then those reached whose holder never confirmed
        "phone_chain": chain,
        "not_expected": list(not_expected or []),
        "rows": sorted(rows.values(), key=lambda r: (r["reached_s"] is None, r["reached_s"] or 0, r["node"])),
    }


def chain_state(p: dict) -> str:
    """A phone-chain entry's state (reports stored before the state was recorded listed silent nodes only)."""
    return str(p.get("state") or SILENT)


def summary(rep: dict) -> str:
    """One true sentence about how the drill went."""
    n = rep.get("expected", 0)
    if not n:
        return "No nodes were expected (the roster has no other active nodes)."
    silent = sum(1 for p in rep.get("phone_chain", []) if chain_state(p) == SILENT)
    unconf = sum(1 for p in rep.get("phone_chain", []) if chain_state(p) == UNCONFIRMED)
    if rep.get("confirmed", 0) >= n:
        return "Every node confirmed."
    parts = []
    if silent:
        parts.append("%d silent" % silent)
    if unconf:
        parts.append("%d reached but not confirmed" % unconf)
    return "%d of %d nodes confirmed; %s: phone or visit them." % (rep.get("confirmed", 0), n, ", ".join(parts) or "none missing")


def count_line(label: str, k: int, n: int, pct: Any) -> str:
    return "%s %d of %d (%s)" % (label, k, n, dash(pct, " %"))


def reached_cell(r: dict) -> str:
    """The "reached" column of a row: the time, marked * when only a confirmation told it (see REACHED_NOTE)."""
    if r.get("reached_s") is None:
        return "SILENT"
    marked = r.get("confirmed_s") is not None and not r.get("reached_receipt", True)
    return "%s%s" % (r["reached_s"], "*" if marked else "")


def chain_groups(rep: dict) -> list[tuple[str, list[dict]]]:
    """The phone chain as (group title, its entries), silent first, leaving out empty groups."""
    chain = rep.get("phone_chain", [])
    groups = [(title, [p for p in chain if chain_state(p) == state]) for state, title in CHAIN_GROUPS]
    return [(title, group) for title, group in groups if group]


def marked(rep: dict) -> bool:
    """Does a row show a reached time known only from a confirmation (REACHED_NOTE applies)?"""
    return any(reached_cell(r).endswith("*") for r in rep["rows"])


def chain_lines(rep: dict, contacts: dict[str, str] | None = None, box: str = "[ ] ") -> list[str]:
    """The phone chain, grouped (silent first), one line per node with its holder and contact."""
    out = []
    for title, group in chain_groups(rep):
        out.append("  %s:" % title)
        for p in group:
            contact = (contacts or {}).get(p["node"]) or p.get("contact", "")
            out.append("    %s%-10s %-24s %s" % (box, p["node"], p.get("holder", ""), contact))
    return out


def as_text(rep: dict) -> str:
    n = rep["expected"]
    out = ["DRILL REPORT: %s" % rep["text"], "called from %s; %d node%s expected" % (rep["caller"], n, "" if n == 1 else "s")]
    if rep.get("not_expected"):
        out.append("not expected: %s" % ", ".join("%s (%s)" % (x["node"], x["why"]) for x in rep["not_expected"]))
    out += [count_line("reached  ", rep["reached"], n, rep["reach_pct"])
            + "  p50 %s  p95 %s" % (dash(rep["reach_s_p50"], " s"), dash(rep["reach_s_p95"], " s")),
            count_line("confirmed", rep["confirmed"], n, rep["confirm_pct"])
            + "  p50 %s  p95 %s" % (dash(rep["confirm_s_p50"], " s"), dash(rep["confirm_s_p95"], " s")),
            "receipts back at the caller within %s (p95)" % dash(rep["receipts_back_s_p95"], " s"),
            "single points of failure (nodes whose loss cuts others off): %s" % (", ".join(rep["single_points_of_failure"]) or "none"),
            "", summary(rep)]
    if rep["phone_chain"]:
        out.append("PHONE CHAIN: call or visit:")
        out += chain_lines(rep)
    if rep["rows"]:
        out.append("")
        out.append("%-10s %4s %10s %12s  %s" % ("node", "hops", "reached s", "confirmed s", "heard via"))
        for r in rep["rows"]:
            out.append("%-10s %4s %10s %12s  %s" % (r["node"], dash(r["hops"]), reached_cell(r), dash(r["confirmed_s"]),
                                                     r["via"] or "-"))
        if marked(rep):
            out.append(REACHED_NOTE)
    return "\n".join(out) + "\n"


def as_html(rep: dict) -> str:
    e = html.escape
    rows = "".join("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % (
        e(r["node"]), dash(r["hops"]), "<b>silent</b>" if r["reached_s"] is None else e(reached_cell(r)),
        dash(r["confirmed_s"]), e(r["via"] or "-")) for r in rep["rows"])
    chain = "".join("<h4>%s</h4><ul>%s</ul>" % (e(title), "".join(
        "<li>%s: %s, %s</li>" % (e(p["node"]), e(p.get("holder", "")), e(p.get("contact", ""))) for p in group))
        for title, group in chain_groups(rep))
    note = "<p>%s</p>" % e(REACHED_NOTE) if marked(rep) else ""
    n = rep["expected"]
    return ("<section class='drill'><h2>Drill: %s</h2><p>Reached %d of %d (%s), confirmed %d of %d (%s); "
            "p95 to confirm %s. Single points of failure: %s.</p><p>%s</p>%s%s"
            "<table><tr><th>node</th><th>hops</th><th>reached s</th><th>confirmed s</th><th>heard via</th></tr>%s</table>%s"
            "</section>"
            % (e(rep["text"]), rep["reached"], n, dash(rep["reach_pct"], " %"), rep["confirmed"], n,
               dash(rep["confirm_pct"], " %"), dash(rep["confirm_s_p95"], " s"),
               e(", ".join(rep["single_points_of_failure"]) or "none"), e(summary(rep)),
               "<h3>Phone chain</h3>" if chain else "", chain, rows, note))


def report_from_sim(result: Any, roster: Any = None, time0: int | None = None) -> list[dict]:
    """One report per drill in a simulator run (receipts as they reached the caller's node). `time0`: the nodes'
    clock (plexus seconds) at simulated time 0, for the report's start time."""
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
        rep = build_report(text, caller, start_ms, nodes, recs, links)
        rep["alert"] = bytes(post["id"]).hex()
        if time0 is not None:
            from plexus.client import EPOCH

            rep["started"] = EPOCH + time0 + start_ms // 1000
        out.append(rep)
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


def expected_nodes(roster: Any, caller_kid: bytes | None, gone: dict[bytes, str] | None = None) -> list[dict]:
    """The roster's nodes that should answer a drill called from caller_kid (build_report's `nodes`); `gone`:
    key id -> why, the nodes no longer in the group (plexus.rekeystate.inactive_nodes), which are not expected."""
    from plexwire import msg

    return [{"name": e.name or e.kid.hex(), "short": msg.short_id(e.kid), "holder": e.holder, "contact": e.contact,
             "kid": e.kid.hex()} for e in roster.nodes() if e.kid != caller_kid and e.kid not in (gone or {})]


def not_expected(roster: Any, gone: dict[bytes, str] | None) -> list[dict]:
    """build_report's `not_expected`: the roster nodes left out, with why."""
    out = []
    for kid, why in (gone or {}).items():
        e = roster.get(kid)
        if e is not None:
            out.append({"node": e.name or kid.hex(), "why": why})
    return sorted(out, key=lambda x: x["node"])


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
        s = self.state.setdefault(n["name"], {"hops": None, "via": None, "reached": None, "confirmed": None,
                                              "reached_receipt": False})
        changed = False
        if state == "reached" and not s["reached_receipt"]:
            s["reached_receipt"] = True  # a "reached" receipt of its own, not only a confirmation
            changed = True
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
            # the caller's node sets t_reached = t_confirmed when a confirmation came with no "reached" before it
            if r.get("state") != "confirmed" or r.get("t_reached") != r.get("t_confirmed"):
                changed |= self._put(kid, "reached", r.get("hops"), r.get("via"), self._t(r.get("t_reached"), laptop_ms), None)
            if r.get("state") == "confirmed":
                changed |= self._put(kid, "confirmed", r.get("hops"), r.get("via"),
                                     self._t(r.get("t_confirmed"), laptop_ms), None)
        return changed

    def all_confirmed(self) -> bool:
        return all((self.state.get(n["name"]) or {}).get("confirmed") for n in self.nodes)

    def receipts(self) -> list[dict]:
        """build_report's `receipts`: one "reached" (if a receipt of its own came) and one "confirmed" (if any) per node."""
        out = []
        for name, s in self.state.items():
            for st in ("reached", "confirmed"):
                if s[st] is not None and (st == "confirmed" or s["reached_receipt"] or s["confirmed"] is None):
                    out.append({"node": name, "state": st, "hops": s["hops"], "via": s["via"], "t": s[st][0], "at_s": s[st][1]})
        out.sort(key=lambda r: r["t"])
        return out

    def seconds(self, name: str, st: str) -> float | None:
        s = self.state.get(name)
        if not s or s[st] is None:
            return None
        t, at_s = s[st]
        return float(at_s) if at_s is not None else round((t - self.started_ms) / 1000.0, 1)
