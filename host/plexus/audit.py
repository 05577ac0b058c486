"""Governance audit of a ledger: replay every record, in ledger order, through the node core itself and
report what a node would reject (a rigged draw, an alert without a mandate, a consent from a revoked key...).

The ledger already checked each signature and the hash chain; this checks the rules that depend on other
records. It is the same code that runs on the radios, so the ledger and the mesh can never disagree.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

from plexnode.core import Node
from plexnode.store import Store
from plexwire import hostlink, msg

from plexus.crypto import HostCrypto

# what the node core refuses for reasons of governance, as opposed to duplicates or transport
# only these kinds change or depend on governance state (bulletins and receipts never do)
KINDS = (msg.CONSENT, msg.ALERT, msg.MANDATE, msg.RECALL, msg.ROSTER, msg.REVOKE, msg.REKEY, msg.HANDOVER, msg.SUCCESSION)


class _Verified(HostCrypto):
    """The audit runs only after the ledger has verified every signature: it does not pay for them twice."""

    def verify(self, public: bytes, message: bytes, signature: bytes) -> bool:
        return True


FLAGGED = {"rigged draw", "no mandate", "not a member", "revoked key", "unknown author", "ineligible holder", "bad handover",
           "rekey for revoked", "rekey unknown recipient"}


def audit(ledger) -> list[dict]:
    return replay(ledger)[1]


def replay(ledger) -> tuple[Node, list[dict], dict[bytes, int]]:
    """The audit core after the replay (its roster carries the adopted revocations), the flags, and the ids of
    the proposals it adopted (id -> ledger record number of the entry that completed the quorum)."""
    raw = ledger._meta("roster")
    if raw is not None:
        roster_doc = json.loads(raw)
    else:
        from plexus.ledger import _doc_of

        roster_doc = _doc_of(ledger._need_roster())
    entries = ledger.entries(kinds=KINDS)
    latest = max((e.time for e in entries), default=0)
    from plexwire import group

    with tempfile.TemporaryDirectory(prefix="plexus-audit-") as d:
        store = Store(str(Path(d) / "audit.log"), 64 * 1024 * 1024, governance_kinds=msg.GOVERNANCE_KINDS)
        node = Node({"name": "audit", "beacon_s": 0, "time": latest or 1, "rate_per_hour": 3_600_000, "burst": 1_000_000},
                    group.Roster(roster_doc), os.urandom(32), os.urandom(32), store, random.Random(0), _Verified())
        flags = []
        adopted: dict[bytes, int] = {}
        for e in entries:
            inner, extra = hostlink.unpack_record(e.raw)
            ok, why = node.handle_inner(inner, None, None, 0, 0, extra, True)
            if not ok and why in FLAGGED:
                flags.append({"record": e.n, "kind": msg.decode(inner).name, "reason": why})
            for ev in node.events:
                if ev[0] == "adopted":
                    adopted[bytes(ev[1]["id"])] = e.n
            node.pending = []
            node.events = []
        store.close()
    return node, flags, adopted
