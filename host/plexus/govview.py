"""Transparency views of a ledger's governance (`plexus ledger decisions|mandates`, and the export).

* **Decisions**: every decision bulletin, adopted or pending, its consents against the quorum with the signers'
  names, when it was decided, and how long it took until it was first *published*. Publication is the first
  `plexus ledger export` (HTML or text) written after the decision was adopted: the export is what reaches
  people without a radio (the printed wall, the pinned sheet), and each export records the decisions it
  published in the ledger's `published` table. A decision is FLAGGED when that took more than 24 hours, or
  when it is adopted, unpublished, and older than 24 hours.
* **Mandates**: per role the current holders and the time left, and the history: every mandate with its state
  (pending, upcoming, active, expired, recalled, rejected), recalls and hand-over records (SUCCESSION).

Adoption is computed as the nodes compute it (SPEC.md section 10, `plexwire.governance.tally`): records in ledger
order, the latest stance of each member who is not revoked, adopted once when the consents reach the quorum with
no block standing. Records the node core would refuse (`plexus.audit`: a rigged draw, a consent from a revoked
key...) count for nothing here; a refused MANDATE is listed as "rejected" with the reason.
"""

from __future__ import annotations

from typing import Any

from plexwire import governance, msg
from plexwire import group as pgroup

from plexus.ledger import Entry, Ledger

DAY = 86400
KINDS = (msg.BULLETIN, msg.BULLETIN_LONG, msg.CONSENT, msg.MANDATE, msg.RECALL, msg.SUCCESSION)


def fmt_span(s: int) -> str:
    """A duration, coarsely: 2d 3h, 5h 10m, 40s."""
    s = max(0, int(s))
    if s >= DAY:
        return "%dd %dh" % (s // DAY, s % DAY // 3600)
    if s >= 3600:
        return "%dh %dm" % (s // 3600, s % 3600 // 60)
    if s >= 60:
        return "%dm" % (s // 60)
    return "%ds" % s


class Model:
    """The ledger's proposals, stances and adoptions, computed once."""

    def __init__(self, led: Ledger, roster: pgroup.Roster | None = None):
        from plexus.audit import audit

        self.roster = roster or led._need_roster()
        self.refused = {f["record"]: f["reason"] for f in audit(led)}
        self.entries = led.entries(kinds=KINDS)
        self.published = led.published()
        self.props: dict[bytes, Entry] = {}
        self.stances: dict[bytes, dict[bytes, tuple[int, Entry]]] = {}
        self.adopted: dict[bytes, int] = {}  # proposal id -> plexus time of adoption
        self.successions: list[Entry] = []
        for e in self.entries:
            if e.n in self.refused:
                continue
            k = e.kind
            if k == msg.CONSENT:
                tgt = e.msg.f["target"]
                self.stances.setdefault(tgt, {})[e.author] = (e.msg.f["stance"], e)
                self._evaluate(tgt)
            elif k == msg.SUCCESSION:
                self.successions.append(e)
            elif k in (msg.MANDATE, msg.RECALL) or e.msg.f["flags"] & msg.BULLETIN_DECISION:
                self.props.setdefault(e.id, e)
                self._evaluate(e.id)

    def name(self, kid: bytes) -> str:
        e = self.roster.get(kid)
        return e.name if e is not None and e.name else kid.hex()

    def _counted(self, pid: bytes) -> dict[bytes, tuple[int, Entry]]:
        out = {}
        for kid, se in self.stances.get(pid, {}).items():
            e = self.roster.get(kid)
            if e is not None and not e.revoked and e.role == pgroup.ROLE_MEMBER:
                out[kid] = se
        return out

    def _evaluate(self, pid: bytes) -> None:
        p = self.props.get(pid)
        if p is None or pid in self.adopted:
            return
        st = self._counted(pid)
        if governance.tally({k: v[0] for k, v in st.items()}, self.roster.quorum)[0]:
            self.adopted[pid] = max([p.time] + [e.time for s, e in st.values() if s == msg.STANCE_CONSENT])

    def tally(self, pid: bytes) -> dict:
        by: dict[int, list[str]] = {msg.STANCE_CONSENT: [], msg.STANCE_STAND_ASIDE: [], msg.STANCE_BLOCK: []}
        for kid, (s, _e) in self._counted(pid).items():
            by[s].append(self.name(kid))
        return {"consents": sorted(by[msg.STANCE_CONSENT]), "stand_asides": sorted(by[msg.STANCE_STAND_ASIDE]),
                "blocks": sorted(by[msg.STANCE_BLOCK]), "quorum": self.roster.quorum}

    # ---- decisions

    def decisions(self, now: int, publish_now: bool = False) -> list[dict]:
        """Newest first. With publish_now, adopted decisions not yet published count as published at `now`
        (what an export about to be written shows)."""
        out = []
        for e in self.entries:
            if e.kind not in (msg.BULLETIN, msg.BULLETIN_LONG) or not e.msg.f["flags"] & msg.BULLETIN_DECISION:
                continue
            decided = self.adopted.get(e.id)
            pub = self.published.get(e.id)
            if pub is None and publish_now and decided is not None:
                pub = (now, "this export")
            d: dict[str, Any] = {"id": e.id.hex(), "n": e.n, "text": e.text or "", "author": self.name(e.author),
                                 "time": e.time, "state": "adopted" if decided is not None else "pending",
                                 "decided": decided, "published": pub[0] if pub else None,
                                 "published_by": pub[1] if pub else None, "publication_delay_s": None,
                                 "flagged": False, "flag": None}
            d.update(self.tally(e.id))
            if decided is not None:
                if pub is not None:
                    d["publication_delay_s"] = pub[0] - decided
                    if pub[0] - decided > DAY:
                        d["flagged"] = True
                        d["flag"] = "published %s after the decision (over 24 h)" % fmt_span(pub[0] - decided)
                elif now - decided > DAY:
                    d["flagged"] = True
                    d["flag"] = "not published %s after the decision (over 24 h)" % fmt_span(now - decided)
            out.append(d)
        out.sort(key=lambda d: (d["time"], d["n"]), reverse=True)
        return out

    # ---- mandates

    def recall_of(self, mid: bytes) -> Entry | None:
        """The earliest adopted RECALL of a mandate (its signed time ends the mandate)."""
        best = None
        for pid, p in self.props.items():
            if p.kind == msg.RECALL and p.msg.f["mandate"] == mid and pid in self.adopted:
                if best is None or (p.time, p.n) < (best.time, best.n):
                    best = p
        return best

    def mandate_rows(self, now: int) -> list[dict]:
        rows = []
        succ_from: dict[bytes, list[Entry]] = {}
        succ_to: dict[bytes, list[Entry]] = {}
        for s in self.successions:
            succ_from.setdefault(s.msg.f["prev"], []).append(s)
            succ_to.setdefault(s.msg.f["next"], []).append(s)
        for e in self.entries:
            if e.kind != msg.MANDATE:
                continue
            f = e.msg.f
            method = f["method"]
            row: dict[str, Any] = {
                "id": e.id.hex(), "n": e.n, "role": f["role"], "holders": sorted(self.name(h) for h in f["holders"]),
                "holder_ids": [h.hex() for h in f["holders"]], "start": f["start"], "end": f["end"],
                "method": "election" if method & 0x0F == msg.METHOD_ELECTION else "lot",
                "exclude_last": bool(method & msg.METHOD_EXCLUDE_LAST),
                "max_consecutive": governance.max_consecutive(method) or None, "author": self.name(e.author),
                "adopted": self.adopted.get(e.id), "recalled": None, "recall_id": None, "recall_reason": None,
                "handed_over_to": [s.msg.f["next"].hex() for s in succ_from.get(e.id, [])],
                "took_over_from": [s.msg.f["prev"].hex() for s in succ_to.get(e.id, [])],
                "rejected": self.refused.get(e.n), "left_s": None}
            row.update(self.tally(e.id))
            rc = self.recall_of(e.id) if e.n not in self.refused else None
            if rc is not None:
                row["recalled"] = rc.time or self.adopted[rc.id]
                row["recall_id"] = rc.id.hex()
                row["recall_reason"] = rc.msg.f["reason"]
            if row["rejected"]:
                state = "rejected"
            elif row["adopted"] is None:
                state = "pending"
            elif row["recalled"] is not None and row["recalled"] <= now:
                state = "recalled"
            elif now >= f["end"]:
                state = "expired"
            elif now >= f["start"]:
                state = "active"
                row["left_s"] = f["end"] - now
            else:
                state = "upcoming"
            row["state"] = state
            rows.append(row)
        return rows

    def handovers(self) -> list[dict]:
        return [{"id": s.id.hex(), "n": s.n, "prev": s.msg.f["prev"].hex(), "next": s.msg.f["next"].hex(),
                 "time": s.time, "by": self.name(s.author), "note": s.msg.f["note"]} for s in self.successions]

    def mandates(self, now: int) -> dict:
        rows = self.mandate_rows(now)
        roles: dict[str, dict] = {}
        for r in rows:
            ro = roles.setdefault(r["role"], {"role": r["role"], "current": [], "history": []})
            ro["history"].append(r)
            if r["state"] == "active":
                ro["current"].append({"id": r["id"], "holders": r["holders"], "end": r["end"], "left_s": r["left_s"],
                                      "left": fmt_span(r["left_s"])})
        for ro in roles.values():
            ro["history"].sort(key=lambda r: (r["start"], r["n"]))
        return {"roles": [roles[k] for k in sorted(roles)], "handovers": self.handovers()}

    def history(self, role: str) -> list[tuple[int, bytes, list[bytes]]]:
        """(start, id, holders) of the role's adopted mandates, as `plexwire.governance.excluded` reads them."""
        out = []
        for pid, p in self.props.items():
            if p.kind == msg.MANDATE and p.msg.f["role"] == role and pid in self.adopted:
                out.append((p.msg.f["start"], pid, list(p.msg.f["holders"])))
        return out
