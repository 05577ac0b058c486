"""Governance rules every node and laptop computes the same way (SPEC.md section 10).

* the draw by lot, recomputable from public, earlier data;
* when a proposal (decision bulletin, MANDATE, RECALL, ROSTER edit, REVOKE) is adopted.
"""

import hashlib

DRAW_DOMAIN = b"plexus/v1/draw\x00"


def draw(group_id, role, start, end, seed_id, eligible, seats):
    """Holders drawn by lot: `eligible` is the list of member key ids (any order); returns them sorted."""
    pool = sorted(bytes(k) for k in eligible)
    if not 0 < seats <= len(pool):
        raise ValueError("seats must be between 1 and the number of eligible members")
    h = hashlib.sha256(DRAW_DOMAIN)
    h.update(bytes(group_id))
    h.update(role.encode("utf-8"))
    h.update(start.to_bytes(4, "big"))
    h.update(end.to_bytes(4, "big"))
    h.update(bytes(seed_id))
    seed = h.digest()
    picks = []
    for i in range(seats):
        r = int.from_bytes(hashlib.sha256(seed + bytes([i])).digest(), "big")
        picks.append(pool.pop(r % len(pool)))
    return sorted(picks)


def max_consecutive(method):
    """The MANDATE method byte's cap on consecutive terms: 0 (none) or 1..7."""
    return (method >> 5) & 7


def excluded(history, start, method):
    """Key ids a MANDATE's method bars from holding the role (SPEC.md section 10), sorted.

    `history`: (start, mandate id, holders) of the role's adopted mandates (any order; recalled ones count).
    The terms before this one are those that began before `start`, ordered by (start, id). EXCLUDE_LAST bars
    the holders of the last of them; a cap of N bars whoever held each of the last N terms."""
    past = [h for h in history if h[0] < start]
    past.sort(key=lambda h: (h[0], bytes(h[1])))
    out = set()
    if method & 0x10 and past:
        for k in past[-1][2]:
            out.add(bytes(k))
    n = max_consecutive(method)
    if n and len(past) >= n:
        last = past[len(past) - n :]
        for k in last[0][2]:
            k = bytes(k)
            every = True
            for h in last[1:]:
                if k not in h[2]:
                    every = False
                    break
            if every:
                out.add(k)
    return sorted(out)


def eligible_members(roster, exclude=()):
    """Sorted key ids of the roster's members that are not revoked, minus `exclude`."""
    ex = set(bytes(k) for k in exclude)
    out = []
    for e in roster.members():
        if not e.revoked and e.kid not in ex:
            out.append(e.kid)
    return sorted(out)


def tally(stances, quorum):
    """stances: {member key id: stance} (1 consent, 2 stand aside, 3 block).

    Adopted when the consents reach the quorum and nobody blocks: a block is a member saying it cannot
    live with the decision, and consent means no such objection stands. Stand-asides are counted but
    neither help nor stop. Returns (adopted, consents, stand_asides, blocks)."""
    c = sa = b = 0
    for k in stances:
        s = stances[k]
        if s == 1:
            c += 1
        elif s == 2:
            sa += 1
        elif s == 3:
            b += 1
    return (c >= quorum and b == 0), c, sa, b
