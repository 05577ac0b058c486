"""Build real plexnode cores for the simulator: one shared group, a store per node, seeded randomness.

On CPython the Ed25519 provider is `cryptography` (same verdicts as plexnode.ed25519, which the
MicroPython tests check); everything else is the firmware's own code.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from pathlib import Path
from typing import Any

from plexnode.core import Node
from plexnode.store import Store
from plexwire import group, msg

from plexus.crypto import HostCrypto

_CTX: dict[str, Any] = {}


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"plexus sim\x00" + label.encode()).digest()


def _context(index: int) -> dict:
    """A new group per run: the factory is called for node 0 first."""
    if index == 0 or not _CTX:
        crypto = HostCrypto()
        assembly = _seed("assembly member")
        doc = group.make_doc("Simulated assembly", [{"name": "assembly", "key": crypto.public_key(assembly).hex()}], [], quorum_k=1)
        _CTX.clear()
        _CTX.update(
            crypto=crypto,
            roster=group.Roster(doc),
            secret=_seed("group secret"),
            tmp=Path(tempfile.mkdtemp(prefix="plexus-sim-")),
        )
    return _CTX


def make_core_node(name: str, *, index: int, router: str, seed: int, modem: dict, region: dict, board: dict, config: dict) -> Node:
    ctx = _context(index)
    crypto = ctx["crypto"]
    node_seed = _seed("node %d %s" % (index, name))
    pub = crypto.public_key(node_seed)
    roster = ctx["roster"]
    # every simulated node is a roster node and (for posting from the scenario) a member too
    e = group.Entry(pub, group.ROLE_NODE, name, "phone chain contact for %s" % name, holder=name)
    roster.entries[e.kid] = e
    cfg = {
        "name": name,
        "router": router,
        "modem": (modem["sf"], modem["bw_hz"], modem["cr"], modem["preamble"]),
        "region": region["name"],
    }
    if router != "plexus":
        # the baselines are Meshtastic 2.7 managed flooding and naive flooding: neither has anti-entropy
        cfg["beacon_s"] = 0
    cfg.update(config or {})
    store = Store(str(ctx["tmp"] / ("%03d.log" % index)), int(cfg.pop("store_bytes", 256 * 1024)), governance_kinds=(6, 7, 8, 9, 10, 11))
    return Node(cfg, roster, ctx["secret"], node_seed, store, random.Random(seed), crypto, now_ms=0)


__all__ = ["make_core_node", "msg"]
