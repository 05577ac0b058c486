"""Printable views of the ledger: a static HTML bulletin wall and a plain-text sheet.

Both are built from one model (``wall``): the governance views (``plexus.govview``: decisions with their time to
publication, mandates with holders and history; writing an export is what publishes a decision), a section per kind of record present, decisions first with their
consents counted against the roster's quorum, then bulletins, alerts/drills (with receipts counted),
mandates, the rest generically, and stored reports (drills) by report kind. The HTML is one self-contained
file: no JavaScript, no network, print CSS (A4, no page breaks inside a card).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import textwrap
from pathlib import Path
from typing import Any

from plexwire import group as pgroup
from plexwire import msg, rekey

from plexus.ledger import Entry, Ledger

EPOCH = 1704067200  # 2024-01-01T00:00:00Z: plexus time 0
STANCES = {msg.STANCE_CONSENT: "consent", msg.STANCE_STAND_ASIDE: "stand aside", msg.STANCE_BLOCK: "block"}
SECTION_TITLES = {
    "decision": "Decisions",
    "bulletin": "Bulletins",
    "alert": "Alerts and drills",
    "mandate": "Mandates",
    "recall": "Recalls",
    "handover": "Handovers",
    "succession": "Hand-over records",
    "roster": "Roster changes",
    "revoke": "Revoked keys",
    "rekey": "Re-keys",
    "consent": "Consents to unknown proposals",
    "beacon": "Node beacons",
}
GOVERNANCE_SECTIONS = ("mandate", "recall", "roster", "revoke", "rekey")  # proposals that take effect on consent
ORDER = ["decision", "bulletin", "alert", "mandate", "recall", "handover", "succession", "roster", "revoke", "rekey", "consent"]


def fmt_time(t: int | None) -> str:
    if not t:
        return "time unknown"
    return dt.datetime.fromtimestamp(EPOCH + int(t), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def plexus_now() -> int:
    return int(dt.datetime.now(dt.timezone.utc).timestamp()) - EPOCH


def _name(roster: pgroup.Roster, kid: bytes) -> str:
    e = roster.get(kid)
    return e.name if e is not None and e.name else kid.hex()


def describe(e: Entry, roster: pgroup.Roster) -> str:
    """One line of human text for a record (what `ledger show` prints)."""
    f = e.msg.f
    k = e.kind
    if k in (msg.BULLETIN, msg.BULLETIN_LONG):
        t = e.text or ""
        return ("DECISION: " if f["flags"] & msg.BULLETIN_DECISION else "") + t
    if k == msg.CONSENT:
        return "%s on %s" % (STANCES.get(f["stance"], "?"), f["target"].hex()[:12])
    if k == msg.ALERT:
        return ("ALERT: " if f["flags"] & msg.ALERT_REAL else "drill: ") + f["text"]
    if k == msg.RECEIPT:
        return "%s alert %s (%d hops)" % ("confirmed" if f["state"] == msg.RECEIPT_CONFIRMED else "reached",
                                         f["alert"].hex()[:12], f["hops"])
    if k == msg.MANDATE:
        return "%s: %s, %s to %s" % (f["role"], ", ".join(sorted(_name(roster, h) for h in f["holders"])),
                                     fmt_time(f["start"]), fmt_time(f["end"]))
    if k == msg.RECALL:
        return "recall mandate %s: %s" % (f["mandate"].hex()[:12], f["reason"])
    if k == msg.HANDOVER:
        return "hand mandate %s to %s: %s" % (f["mandate"].hex()[:12], _name(roster, f["to"]), f["note"])
    if k == msg.SUCCESSION:
        return "hand-over: mandate %s to mandate %s%s" % (f["prev"].hex()[:12], f["next"].hex()[:12],
                                                         ": " + f["note"] if f["note"] else "")
    if k == msg.ROSTER:
        kid = msg.key_id(f["key"])
        if f["op"] == msg.ROSTER_UPDATE:  # the entry in full, as it reads once adopted
            return "update %s (%s) to: name %s, contact %s" % (_name(roster, kid), kid.hex(), f["name"],
                                                              f["contact"] or "none")
        what = {msg.ROSTER_ADD_MEMBER: "add member", msg.ROSTER_ADD_NODE: "add node"}
        return "%s %s (%s)%s" % (what.get(f["op"], "roster op %d:" % f["op"]), f["name"], kid.hex(),
                                 ": " + f["contact"] if f["contact"] else "")
    if k == msg.REVOKE:
        from plexus.client import REVOKE_REASON_NAMES

        return "revoke %s (%s)" % (_name(roster, f["key"]), REVOKE_REASON_NAMES.get(f["reason"], "reason %d" % f["reason"]))
    if k == msg.REKEY:
        wrapped = set(rekey.kids(e.extra))
        left = sorted(_name(roster, n.kid) for n in roster.nodes() if n.kid not in wrapped)
        return "rekey to epoch %d (wraps for %d node%s%s)" % (f["epoch"], len(wrapped), "" if len(wrapped) == 1 else "s",
                                                             "; without " + ", ".join(left) if left and wrapped else "")
    return json.dumps(msg.fields_to_json(k, f), sort_keys=True)


def entry_json(e: Entry, roster: pgroup.Roster) -> dict:
    return {"n": e.n, "id": e.id.hex(), "kind": e.kind_name, "author": e.author.hex(), "author_name": _name(roster, e.author),
            "time": e.time, "time_utc": fmt_time(e.time), "text": describe(e, roster),
            "fields": msg.fields_to_json(e.kind, e.msg.f)}


# ---------------------------------------------------------------- the model


def consent_tally(consents: list[Entry], roster: pgroup.Roster) -> dict:
    """Latest stance per member (by signed time, then ledger order); counted against the quorum."""
    latest: dict[bytes, Entry] = {}
    for c in consents:
        e = roster.get(c.author)
        if e is None or e.role != pgroup.ROLE_MEMBER:
            continue
        old = latest.get(c.author)
        if old is None or (c.time, c.n) > (old.time, old.n):
            latest[c.author] = c
    by = {"consent": [], "stand aside": [], "block": []}  # type: dict[str, list[str]]
    for kid, c in sorted(latest.items(), key=lambda kv: _name(roster, kv[0])):
        by[STANCES[c.msg.f["stance"]]].append(_name(roster, kid))
    q = roster.quorum
    if by["block"]:
        state = "blocked"
    elif len(by["consent"]) >= q:
        state = "consented"
    else:
        state = "open"
    return {"quorum": q, "members": len(roster.members()), "consent": by["consent"], "stand_aside": by["stand aside"],
            "block": by["block"], "state": state}


def wall(ledger: Ledger, roster: pgroup.Roster | None = None, now: int | None = None, publish: bool = False) -> dict:
    """The model of a wall. With `publish`, adopted decisions not yet published count as published by it at `now`."""
    from plexus import govview

    roster = roster or ledger._need_roster()
    now = plexus_now() if now is None else now
    gm = govview.Model(ledger, roster)
    entries = ledger.entries()
    by_kind: dict[str, list[Entry]] = {}
    consents: dict[bytes, list[Entry]] = {}
    receipts: dict[bytes, list[Entry]] = {}
    ids = {e.id for e in entries}
    for e in entries:
        k = e.kind
        if k == msg.CONSENT:
            consents.setdefault(e.msg.f["target"], []).append(e)
            continue
        if k == msg.RECEIPT:
            receipts.setdefault(e.msg.f["alert"], []).append(e)
            continue
        if k in (msg.BULLETIN, msg.BULLETIN_LONG):
            key = "decision" if e.msg.f["flags"] & msg.BULLETIN_DECISION else "bulletin"
        else:
            key = e.kind_name
        by_kind.setdefault(key, []).append(e)
    orphans = [c for t, cs in consents.items() if t not in ids for c in cs]
    if orphans:
        by_kind["consent"] = orphans
    from plexus import rekeystate
    from plexus.audit import replay

    replayed = replay(ledger)  # the node core over the ledger: one pass serves both uses below
    gone = rekeystate.inactive_nodes(ledger, roster, replayed)
    adopted = replayed[2]  # proposal id -> the ledger record that completed its quorum, as the nodes count
    drills = {r["data"].get("alert"): r["data"] for r in ledger.reports("drill") if isinstance(r["data"], dict)}
    sections = []
    for key in ORDER + sorted(k for k in by_kind if k not in ORDER):
        if key not in by_kind:
            continue
        items = []
        for e in sorted(by_kind[key], key=lambda x: (x.time, x.n), reverse=True):
            it: dict[str, Any] = {"entry": e, "json": entry_json(e, roster)}
            if key in ("decision", "bulletin"):
                it["tally"] = consent_tally(consents.get(e.id, []), roster)
            if key in GOVERNANCE_SECTIONS:
                # whether it took effect, as the nodes compute it (a pending roster change changes nothing yet)
                t = consent_tally(consents.get(e.id, []), roster)
                t["state"] = "adopted" if e.id in adopted else ("blocked" if t["block"] else "pending")
                it["tally"] = t
            if key == "alert":
                st: dict[bytes, int] = {}
                for r in receipts.get(e.id, []):
                    st[r.author] = max(st.get(r.author, 0), r.msg.f["state"])
                rep = drills.get(e.id.hex())
                if rep is not None and "expected" in rep:
                    # the drill's own report knows the caller's node and every receipt that came back to it
                    it["receipts"] = {"reached": rep["reached"], "confirmed": rep["confirmed"], "nodes": rep["expected"]}
                else:
                    # every active node but the one that posted it (the caller's node answers no receipt of its own)
                    active = [n.kid for n in roster.nodes() if n.kid not in gone and n.kid != e.author]
                    it["receipts"] = {"reached": sum(1 for k in st if k in active),
                                      "confirmed": sum(1 for k, v in st.items() if k in active and v == msg.RECEIPT_CONFIRMED),
                                      "nodes": len(active)}
            items.append(it)
        sections.append({"key": key, "title": SECTION_TITLES.get(key, key.replace("_", " ").capitalize()), "items": items})
    reports: dict[str, list[dict]] = {}
    for rep in ledger.reports():
        reports.setdefault(rep["kind"], []).append(rep)
    n, head = ledger.head()
    return {"group": roster.name, "group_id": roster.group_id.hex(), "quorum": roster.quorum,
            "members": [m.name for m in roster.members()], "sections": sections, "reports": reports,
            "records": n, "head_hash": head.hex(), "generated": fmt_time(now), "now": now,
            "decisions": gm.decisions(now, publish_now=publish), "mandates": gm.mandates(now)}


def _record_publication(ledger: Ledger, w: dict, how: str) -> None:
    """The decisions this export published for the first time (plexus.govview: publication)."""
    ids = [bytes.fromhex(d["id"]) for d in w["decisions"] if d["published_by"] == "this export"]
    if ids:
        ledger.mark_published(ids, w["now"], how)


def _span(s: int | None) -> str:
    from plexus.govview import fmt_span

    return fmt_span(s) if s is not None else "-"


def governance_lines(w: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, columns, rows) of the decisions and mandates views, shared by the HTML and the text export."""
    out = []
    if w["decisions"]:
        rows = []
        for d in w["decisions"]:
            cons = "%d of %d: %s" % (len(d["consents"]), d["quorum"], ", ".join(d["consents"]) or "none")
            if d["stand_asides"]:
                cons += "; stand aside: " + ", ".join(d["stand_asides"])
            if d["blocks"]:
                cons += "; BLOCK: " + ", ".join(d["blocks"])
            after = "FLAGGED: " + d["flag"] if d["flagged"] else _span(d["publication_delay_s"])
            rows.append([d["text"].replace("\n", " ")[:80], d["state"], cons, fmt_time(d["decided"]) if d["decided"] else "-",
                         fmt_time(d["published"]) if d["published"] else "-", after])
        out.append(("Decisions: adopted or pending (published = first export after adoption; over 24 h is flagged)",
                    ["decision", "state", "consents / quorum", "decided", "published", "after"], rows))
    m = w["mandates"]
    if m["roles"]:
        rows = []
        for ro in m["roles"]:
            for r in ro["history"]:
                ev = []
                if r["rejected"]:
                    ev.append("REJECTED: " + r["rejected"])
                if r["state"] == "active":
                    ev.append("%s left" % _span(r["left_s"]))
                if r["recalled"]:
                    ev.append("recalled %s: %s" % (fmt_time(r["recalled"]), r["recall_reason"] or "no reason given"))
                for h in m["handovers"]:
                    if h["next"] == r["id"]:
                        ev.append("took over from %s on %s (by %s)%s" % (h["prev"][:12], fmt_time(h["time"]), h["by"],
                                                                        ": " + h["note"] if h["note"] else ""))
                    if h["prev"] == r["id"]:
                        ev.append("handed over to %s on %s" % (h["next"][:12], fmt_time(h["time"])))
                rows.append([r["role"], ", ".join(r["holders"]), "%s - %s" % (fmt_time(r["start"]), fmt_time(r["end"])),
                             r["method"], r["state"], "%d of %d" % (len(r["consents"]), r["quorum"]), "; ".join(ev) or "-",
                             r["id"][:12]])
        out.append(("Mandates: holders, time left, history",
                    ["role", "holders", "term", "method", "state", "consents", "time left, recalls, hand-overs", "mandate"], rows))
    return out


def _fmt_unix(t: int | float) -> str:
    return dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def drill_sheet(r: dict, roster: pgroup.Roster) -> dict:
    """A stored drill report (ledger.reports row) as a printed sheet: a title, labelled lines, a summary and
    the phone chain grouped by state with each node's contact from the roster. Shared by the HTML and text export."""
    from plexus import drill

    d = r["data"]
    n = int(d.get("expected", 0))
    contacts = {e.name: e.contact for e in roster.nodes() if e.name and e.contact}
    caller = str(d.get("caller", "?"))
    if d.get("author"):
        caller += " (posted by %s)" % d["author"]
    lines = [("started", _fmt_unix(d["started"]) if d.get("started") else "%s (report stored)" % _fmt_unix(r["created"])),
             ("caller", caller),
             ("expected", "%d node%s" % (n, "" if n == 1 else "s"))]
    if d.get("not_expected"):
        lines.append(("not expected", ", ".join("%s (%s)" % (x["node"], x["why"]) for x in d["not_expected"])))
    lines += [("reached", "%d of %d (%s); p50 %s, p95 %s" % (d.get("reached", 0), n, drill.dash(d.get("reach_pct"), " %"),
                                                          drill.dash(d.get("reach_s_p50"), " s"), drill.dash(d.get("reach_s_p95"), " s"))),
              ("confirmed", "%d of %d (%s); p50 %s, p95 %s" % (d.get("confirmed", 0), n, drill.dash(d.get("confirm_pct"), " %"),
                                                              drill.dash(d.get("confirm_s_p50"), " s"),
                                                              drill.dash(d.get("confirm_s_p95"), " s"))),
              ("receipts back", "within %s (p95)" % drill.dash(d.get("receipts_back_s_p95"), " s")),
              ("single points of failure", ", ".join(d.get("single_points_of_failure") or []) or "none")]
    if d.get("ended_early"):
        lines.append(("ended", "early (Ctrl-C)"))
    chain = [(title, [(p["node"], p.get("holder", ""), contacts.get(p["node"]) or p.get("contact", ""), drill.chain_state(p))
                      for p in group]) for title, group in drill.chain_groups(d)]
    return {"title": "%s #%d: %s" % ("REAL ALERT" if d.get("real") else "Drill", r["id"], d.get("text", "")),
            "lines": lines, "summary": drill.summary(d), "chain": chain}


# ---------------------------------------------------------------- HTML

_CSS = """
body{font:15px/1.45 Georgia,'DejaVu Serif',serif;margin:2em auto;max-width:60em;padding:0 1em;color:#111;background:#fff}
h1{font-size:1.8em;margin:0 0 .2em}h2{border-bottom:2px solid #111;margin-top:1.6em;padding-bottom:.1em}
.meta{color:#444;font-size:.85em}.card{border:1px solid #999;border-radius:4px;padding:.6em .9em;margin:.7em 0;
page-break-inside:avoid;break-inside:avoid}.card h3{margin:0 0 .3em;font-size:1em}.text{white-space:pre-wrap}
.tally{margin-top:.4em;font-size:.9em}.state{font-weight:bold;text-transform:uppercase;padding:0 .3em;border:1px solid #111}
.blocked{background:#fdd}.consented{background:#dfd}.open{background:#ffd}table{border-collapse:collapse;font-size:.85em}
td,th{border:1px solid #bbb;padding:.15em .4em;text-align:left;vertical-align:top}code{font-size:.85em}
footer{margin-top:2em;font-size:.8em;color:#444;border-top:1px solid #999;padding-top:.5em}
@media print{body{margin:0;max-width:none;font-size:11pt}a{color:#000;text-decoration:none}
.card{border-color:#000}h2{page-break-after:avoid;break-after:avoid}@page{size:A4;margin:15mm}}
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _fields_table(d: dict) -> str:
    rows = "".join("<tr><th>%s</th><td><code>%s</code></td></tr>" % (_e(k), _e(v if not isinstance(v, list) else ", ".join(map(str, v))))
                   for k, v in d.items())
    return "<table>%s</table>" % rows


def _card(it: dict, roster: pgroup.Roster) -> str:
    e: Entry = it["entry"]
    j = it["json"]
    f = e.msg.f
    head = '<h3>%s</h3><div class="meta">%s &middot; %s &middot; <code>%s</code></div>' % (
        _e(j["author_name"]), _e(j["time_utc"]), _e(e.kind_name.replace("_", " ")), _e(e.id.hex()[:16]))
    body = ""
    if e.kind in (msg.BULLETIN, msg.BULLETIN_LONG, msg.ALERT):
        body = '<div class="text">%s</div>' % _e(e.text or "")
    elif e.kind == msg.MANDATE:
        body = "<div><b>%s</b>: %s<br>%s &ndash; %s (%s)</div>" % (
            _e(f["role"]), _e(", ".join(sorted(_name(roster, h) for h in f["holders"]))), _e(fmt_time(f["start"])),
            _e(fmt_time(f["end"])), "election" if f["method"] & 0x0F == msg.METHOD_ELECTION else "lot")
    else:
        body = '<div class="text">%s</div>%s' % (_e(describe(e, roster)), _fields_table(j["fields"]))
    t = it.get("tally")
    if t is not None and (t["consent"] or t["stand_aside"] or t["block"] or e.msg.f.get("flags", 0) & msg.BULLETIN_DECISION
                          or e.kind_name in GOVERNANCE_SECTIONS):
        body += ('<div class="tally"><span class="state %s">%s</span> consent %d of quorum %d (%d members)'
                 % (t["state"], t["state"], len(t["consent"]), t["quorum"], t["members"]))
        for label, key in (("consent", "consent"), ("stand aside", "stand_aside"), ("block", "block")):
            if t[key]:
                body += "<br>%s: %s" % (label, _e(", ".join(t[key])))
        body += "</div>"
    r = it.get("receipts")
    if r is not None:
        body += '<div class="tally">reached %d of %d nodes, confirmed %d</div>' % (r["reached"], r["nodes"], r["confirmed"])
    return '<div class="card" id="m%s">%s%s</div>' % (e.id.hex(), head, body)


def _report_html(kind: str, reps: list[dict], roster: pgroup.Roster) -> str:
    out = ["<h2>Reports: %s</h2>" % _e(kind)]
    for r in reversed(reps):
        data = r["data"]
        if kind == "drill" and isinstance(data, dict) and "expected" in data:
            sh = drill_sheet(r, roster)
            out.append('<div class="card"><h3>%s</h3><table>%s</table><p><b>%s</b></p>' % (
                _e(sh["title"]), "".join("<tr><th>%s</th><td>%s</td></tr>" % (_e(k), _e(v)) for k, v in sh["lines"]),
                _e(sh["summary"])))
            for title, people in sh["chain"]:
                out.append("<p><b>Phone chain, %s</b></p><table><tr><th></th><th>node</th><th>holder</th><th>contact</th>"
                           "<th>state</th></tr>%s</table>" % (_e(title), "".join(
                               "<tr><td>&#9744;</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>" % tuple(_e(x) for x in p)
                               for p in people)))
            out.append("</div>")
            continue
        out.append('<div class="card"><h3>%s #%d</h3><div class="meta">%s</div>' % (
            _e(kind), r["id"], _e(dt.datetime.fromtimestamp(r["created"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))))
        if isinstance(data, dict):
            simple = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
            out.append(_fields_table(simple))
            for k, v in data.items():
                if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                    cols = sorted({c for x in v for c in x})
                    out.append("<p><b>%s</b></p><table><tr>%s</tr>%s</table>" % (
                        _e(k), "".join("<th>%s</th>" % _e(c) for c in cols),
                        "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % _e(x.get(c, "")) for c in cols) for x in v)))
                elif isinstance(v, (list, dict)):
                    out.append("<p><b>%s</b></p><pre>%s</pre>" % (_e(k), _e(json.dumps(v, indent=1, sort_keys=True))))
        else:
            out.append("<pre>%s</pre>" % _e(json.dumps(data, indent=1)))
        out.append("</div>")
    return "".join(out)


def render_html(w: dict, roster: pgroup.Roster) -> str:
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>%s: bulletin wall</title><style>%s</style></head><body>" % (_e(w["group"]), _CSS),
             "<h1>%s</h1>" % _e(w["group"]),
             '<div class="meta">group <code>%s</code> &middot; quorum %d of %d members (%s) &middot; %d records &middot; printed %s</div>'
             % (_e(w["group_id"]), w["quorum"], len(w["members"]), _e(", ".join(w["members"])), w["records"], _e(w["generated"]))]
    if w["sections"]:
        parts.append('<p class="meta">%s</p>' % " &middot; ".join(
            '<a href="#s-%s">%s</a>' % (_e(s["key"]), _e(s["title"])) for s in w["sections"]))
    else:
        parts.append("<p>The ledger is empty.</p>")
    for title, cols, rows in governance_lines(w):
        parts.append("<h2>%s</h2><table><tr>%s</tr>%s</table>" % (
            _e(title), "".join("<th>%s</th>" % _e(c) for c in cols),
            "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % _e(v) for v in r) for r in rows)))
    for s in w["sections"]:
        parts.append('<h2 id="s-%s">%s (%d)</h2>' % (_e(s["key"]), _e(s["title"]), len(s["items"])))
        parts.extend(_card(it, roster) for it in s["items"])
    for kind, reps in sorted(w["reports"].items()):
        parts.append(_report_html(kind, reps, roster))
    parts.append("<footer>Every record above is signed by its author and was verified before it entered the ledger. "
                 "Ledger head after %d records: <code>%s</code>. Check with <code>plexus ledger verify</code>.</footer>"
                 % (w["records"], _e(w["head_hash"])))
    parts.append("</body></html>\n")
    return "".join(parts)


def export_html(ledger: Ledger, out_dir: str | os.PathLike, roster: pgroup.Roster | None = None,
                now: int | None = None) -> Path:
    roster = roster or ledger._need_roster()
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    p = d / "index.html"
    tmp = d / "index.html.tmp"
    w = wall(ledger, roster, now, publish=True)
    tmp.write_text(render_html(w, roster), encoding="utf-8")
    os.replace(tmp, p)
    _record_publication(ledger, w, "html %s" % p)
    return p


# ---------------------------------------------------------------- plain text


def _wrap(s: str, indent: str = "    ", width: int = 76) -> list[str]:
    out = []
    for para in s.splitlines() or [""]:
        out.extend(textwrap.wrap(para, width, initial_indent=indent, subsequent_indent=indent) or [indent.rstrip()])
    return out


def render_text(w: dict, roster: pgroup.Roster) -> str:
    lines = [w["group"].upper(), "=" * min(76, max(len(w["group"]), 10)),
             "group %s - quorum %d of %d members - %d records - printed %s" % (
                 w["group_id"], w["quorum"], len(w["members"]), w["records"], w["generated"]), ""]
    if not w["sections"]:
        lines.append("The ledger is empty.")
    for title, cols, rows in governance_lines(w):
        lines += ["", title.upper(), "-" * 40]
        for r in rows:
            lines += _wrap("; ".join("%s: %s" % (c, v) for c, v in zip(cols, r)), indent="  ")
            lines.append("")
    for s in w["sections"]:
        lines += ["", "%s (%d)" % (s["title"].upper(), len(s["items"])), "-" * 40]
        for it in s["items"]:
            e: Entry = it["entry"]
            j = it["json"]
            lines.append("* %s - %s  [%s]" % (j["author_name"], j["time_utc"], e.id.hex()[:12]))
            lines += _wrap(e.text if e.kind in (msg.BULLETIN, msg.BULLETIN_LONG, msg.ALERT) and e.text is not None
                           else describe(e, roster))
            t = it.get("tally")
            if t is not None and (t["consent"] or t["stand_aside"] or t["block"] or e.msg.f.get("flags", 0) & msg.BULLETIN_DECISION
                                  or s["key"] in GOVERNANCE_SECTIONS):
                lines.append("    => %s: consent %d of quorum %d%s%s%s" % (
                    t["state"].upper(), len(t["consent"]), t["quorum"],
                    "; consent: " + ", ".join(t["consent"]) if t["consent"] else "",
                    "; stand aside: " + ", ".join(t["stand_aside"]) if t["stand_aside"] else "",
                    "; BLOCK: " + ", ".join(t["block"]) if t["block"] else ""))
            r = it.get("receipts")
            if r is not None:
                lines.append("    => reached %d of %d nodes, confirmed %d" % (r["reached"], r["nodes"], r["confirmed"]))
            lines.append("")
    for kind, reps in sorted(w["reports"].items()):
        lines += ["", "REPORTS: %s (%d)" % (kind.upper(), len(reps)), "-" * 40]
        for r in reversed(reps):
            data = r["data"]
            if kind == "drill" and isinstance(data, dict) and "expected" in data:
                sh = drill_sheet(r, roster)
                lines += textwrap.wrap(sh["title"], 76, initial_indent="* ", subsequent_indent="  ") or ["*"]
                for k, v in sh["lines"]:
                    lines += _wrap("%-14s %s" % (k + ":", v)) if len(k) < 14 else _wrap("%s: %s" % (k, v))
                lines += _wrap(sh["summary"])
                if sh["chain"]:
                    lines.append("    PHONE CHAIN: call or visit")
                    for title, people in sh["chain"]:
                        lines.append("      %s:" % title)
                        for node, holder, contact, _state in people:
                            lines.append("        [ ] %-10s %-22s %s" % (node, holder, contact))
                lines.append("")
                continue
            lines.append("* #%d %s" % (r["id"], dt.datetime.fromtimestamp(r["created"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
            if isinstance(data, dict):
                for k, v in data.items():
                    if not isinstance(v, (list, dict)):
                        lines += _wrap("%s: %s" % (k, v))
                    else:
                        lines += _wrap("%s: %d entries" % (k, len(v)))
            lines.append("")
    lines += ["", "Ledger head after %d records: %s" % (w["records"], w["head_hash"])]
    return "\n".join(lines) + "\n"


def export_text(ledger: Ledger, out_file: str | os.PathLike, roster: pgroup.Roster | None = None,
                now: int | None = None) -> Path:
    roster = roster or ledger._need_roster()
    p = Path(out_file)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    w = wall(ledger, roster, now, publish=True)
    p.write_text(render_text(w, roster), encoding="utf-8")
    _record_publication(ledger, w, "text %s" % p)
    return p
