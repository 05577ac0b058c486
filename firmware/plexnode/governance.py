"""Governance state on the node (SPEC.md section 10): consents against quorum, mandates that expire and
can be recalled, roster edits and revocations that need quorum, and mandate-gated kinds.

Every node computes this from the signed messages it holds, so no node or laptop has to trust anyone's
word. State is small (proposals and their stances) and is rebuilt from the store at boot.
"""

from plexwire import governance, hostlink, msg
from plexwire.group import ROLE_MEMBER, Entry

_MAX_PROPOSALS = 48

# kinds that only a current mandate holder may author, by their names in the roster's "mandate_kinds"
GATED = {"alert_real": msg.ALERT, "roster": msg.ROSTER, "revoke": msg.REVOKE, "rekey": msg.REKEY}


class Governance:
    def __init__(self, node):
        self.node = node
        self.stances = {}  # proposal id -> {member key id: stance}
        self.props = {}  # proposal id -> [kind, message, adopted (bool), adopted_ms]
        self.mandates = {}  # mandate id -> [role, start, end, holders, recalled_at (plexus s) or 0]
        self.replaying = False  # at boot: a REKEY adopted again from the store is not applied again
        mk = node.roster.mandate_kinds
        self.gated = {}
        if isinstance(mk, dict):
            for name in mk:
                if name in GATED:
                    self.gated[GATED[name]] = mk[name]  # a specific role
        else:
            for name in mk:
                if name in GATED:
                    self.gated[GATED[name]] = None  # any current mandate

    # ---- checks before a message is accepted (the node core calls these after the signature check)

    def check(self, m, mid):
        """None when acceptable, else the drop reason."""
        k = m.kind
        if k == msg.MANDATE:
            f = m.f
            meth = f["method"]
            exclude = governance.excluded(self.history(f["role"]), f["start"], meth) if meth & 0xF0 else ()
            elig = governance.eligible_members(self.node.roster, exclude)
            if meth & 0x0F == msg.METHOD_ELECTION:
                for h in f["holders"]:
                    if h not in elig:
                        return "ineligible_holder"  # elected, but not a member, revoked, or barred by the method
            else:
                try:
                    want = governance.draw(self.node.group_id, f["role"], f["start"], f["end"], f["seed"], elig, len(f["holders"]))
                except ValueError:
                    return "rigged_draw"
                if want != f["holders"]:
                    return "rigged_draw"
                seed = self.node.store.get(f["seed"])
                if seed is not None and seed[1] and m.time and seed[1] >= m.time:
                    return "rigged_draw"  # the seed must be published before the draw
        if k == msg.CONSENT or k == msg.SUCCESSION or k == msg.REKEY:
            e = self.node.roster.get(m.author)
            if e is None or e.role != ROLE_MEMBER:
                return "not_a_member"
        if k == msg.SUCCESSION:
            a = self.props.get(m.f["prev"])
            b = self.props.get(m.f["next"])
            if a is not None and b is not None and (a[0] != msg.MANDATE or b[0] != msg.MANDATE
                                                     or a[1].f["role"] != b[1].f["role"]):
                return "bad_handover"
        gate = self.gated.get(k)
        if gate is not None or k in self.gated:
            if k == msg.ALERT and not m.f["flags"] & msg.ALERT_REAL:
                return None
            if not m.time or not self.node.clock_base:
                return None  # authority unchecked without a clock (SPEC.md s.6.3); the core marks it
            if not self.holds(m.author, m.time, gate):
                return "no_mandate"
        return None

    def history(self, role):
        """(start, id, holders) of every adopted mandate for `role` (governance.excluded reads it)."""
        out = []
        for mid in self.mandates:
            md = self.mandates[mid]
            if md[0] == role:
                out.append((md[1], mid, md[3]))
        return out

    def holds(self, kid, t, role=None):
        for mid in self.mandates:
            r, start, end, holders, recalled = self.mandates[mid]
            if role is not None and r != role:
                continue
            if kid in holders and start <= t < end and not (recalled and recalled <= t):
                return True
        return False

    # ---- after acceptance

    def on_accept(self, m, mid, now_ms):
        k = m.kind
        if k == msg.CONSENT:
            tgt = m.f["target"]
            st = self.stances.get(tgt)
            if st is None:
                st = {}
                self._bound(self.stances)
                self.stances[tgt] = st
            st[m.author] = m.f["stance"]
            self._evaluate(tgt, now_ms)
        elif k in (msg.MANDATE, msg.RECALL, msg.ROSTER, msg.REVOKE, msg.REKEY) or (k == msg.BULLETIN and m.f["flags"] & msg.BULLETIN_DECISION):
            if mid not in self.props:
                self._bound(self.props)
                self.props[mid] = [k, m, False, 0]
            self._evaluate(mid, now_ms)

    def _bound(self, d):
        if len(d) >= _MAX_PROPOSALS:
            d.pop(next(iter(d)))

    def _evaluate(self, pid, now_ms):
        p = self.props.get(pid)
        if p is None or p[2]:
            return
        # only members who are not revoked count
        stances = {}
        for kid, s in self.stances.get(pid, {}).items():
            e = self.node.roster.get(kid)
            if e is not None and not e.revoked and e.role == ROLE_MEMBER:
                stances[kid] = s
        adopted, c, sa, b = governance.tally(stances, self.node.roster.quorum)
        if not adopted:
            return
        p[2] = True
        p[3] = now_ms
        k, m = p[0], p[1]
        ev = {"id": pid, "kind": m.name, "consents": c, "stand_asides": sa, "quorum": self.node.roster.quorum, "t": now_ms}
        if k == msg.MANDATE:
            self.mandates[pid] = [m.f["role"], m.f["start"], m.f["end"], list(m.f["holders"]), 0]
        elif k == msg.RECALL:
            md = self.mandates.get(m.f["mandate"])
            if md is not None and not md[4]:
                md[4] = m.time or self.node.now_s(now_ms) or 1
        elif k == msg.REVOKE:
            e = self.node.roster.get(m.f["key"])
            if e is not None:
                e.revoked = True
        elif k == msg.REKEY:
            self.node.events.append(("adopted", ev))
            self.node.rekey_ready(pid, now_ms)  # switches once the wrap table is complete too
            return
        elif k == msg.ROSTER:
            f = m.f
            kid = msg.key_id(f["key"])
            e = self.node.roster.get(kid)
            if f["op"] == msg.ROSTER_UPDATE and e is not None:
                e.name = f["name"]
                e.contact = f["contact"]
            elif f["op"] in (msg.ROSTER_ADD_MEMBER, msg.ROSTER_ADD_NODE) and e is None:
                role = ROLE_MEMBER if f["op"] == msg.ROSTER_ADD_MEMBER else "node"
                self.node.roster.entries[kid] = Entry(f["key"], role, f["name"], f["contact"])
        self.node.events.append(("adopted", ev))

    def adopted(self, pid):
        p = self.props.get(pid)
        return bool(p and p[2])

    def replay(self, now_ms):
        """Rebuild from the store at boot: proposals first, then consents (store order is arrival order)."""
        st = self.node.store
        self.replaying = True
        later = []
        cursor = 0
        while True:
            recs = st.since(cursor, 32)
            if not recs:
                break
            for seq, mid, kind, _ts, body in recs:
                cursor = seq
                if kind not in (msg.CONSENT, msg.MANDATE, msg.RECALL, msg.ROSTER, msg.REVOKE, msg.REKEY, msg.BULLETIN):
                    continue
                try:
                    inner, _ = hostlink.unpack_record(body)
                    m = msg.decode(inner)
                except ValueError:
                    continue
                if kind == msg.CONSENT:
                    later.append((m, mid))
                else:
                    self.on_accept(m, mid, now_ms)
        for m, mid in later:
            self.on_accept(m, mid, now_ms)
        self.replaying = False
