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


MAX_SIM_NODES = 512


SIM_TIME0 = 91_324_800  # every simulated node's clock at t=0: 2026-11-23 00:00 UTC in Plexus seconds (SPEC.md section 6.2)


def _node_seed(index: int) -> bytes:
    return _seed("node %d" % index)


node_seed = _node_seed  # the key of slot `index` (plexus.sim.live hands it to a node that joins a live run)


def name_slot(index: int, name: str) -> None:
    """Give roster slot `index` its node's name (names are not part of the group id)."""
    ctx = _CTX
    crypto = ctx["crypto"]
    e = ctx["roster"].get(msg.key_id(crypto.public_key(_node_seed(index))))
    e.name = name
    e.holder = "holder of %s" % name
    e.contact = "visit or phone the holder of %s" % name
    for d in ctx["doc"]["nodes"]:
        if d["key"] == e.pub.hex():
            d.update(name=name, holder=e.holder, contact=e.contact)


def _context(index: int) -> dict:
    """A new group per run (the factory is called for node 0 first). Its genesis lists node keys for up to
    MAX_SIM_NODES slots, so the group id, and every signature in the run, is that of a real roster a ledger can
    verify; names are filled in as nodes are built (they are not part of the group id)."""
    if index == 0 or not _CTX:
        crypto = HostCrypto()
        assembly = _seed("assembly member")
        nodes = [{"name": "slot%03d" % i, "key": crypto.public_key(_node_seed(i)).hex()} for i in range(MAX_SIM_NODES)]
        doc = group.make_doc("Simulated assembly", [{"name": "assembly", "key": crypto.public_key(assembly).hex(),
                                                     "contact": "the assembly's phone tree"}], nodes, quorum_k=1)
        _CTX.clear()
        _CTX.update(
            crypto=crypto,
            roster=group.Roster(doc),
            doc=doc,
            assembly_seed=assembly,
            secret=_seed("group secret"),
            tmp=Path(tempfile.mkdtemp(prefix="plexus-sim-")),
        )
    return _CTX


def context() -> dict:
    """The group of the latest run: roster, its document, the assembly member's key seed."""
    return _CTX


def make_core_node(name: str, *, index: int, router: str, seed: int, modem: dict, region: dict, board: dict, config: dict) -> Node:
    ctx = _context(index)
    crypto = ctx["crypto"]
    if index >= MAX_SIM_NODES:
        raise ValueError("the simulator's group has room for %d nodes" % MAX_SIM_NODES)
    seed_i = _node_seed(index)
    roster = ctx["roster"]
    name_slot(index, name)
    cfg = {
        "name": name,
        "router": router,
        "modem": (modem["sf"], modem["bw_hz"], modem["cr"], modem["preamble"]),
        "region": region["name"],
        # provisioned nodes got the time from the laptop (SPEC.md section 6.2); 2026-11-25 in Plexus seconds
        "time": SIM_TIME0,
    }
    if router != "plexus":
        # the baselines are Meshtastic 2.7 managed flooding and naive flooding: neither has anti-entropy
        cfg["beacon_s"] = 0
    cfg.update(config or {})
    store = Store(str(ctx["tmp"] / ("%03d.log" % index)), int(cfg.pop("store_bytes", 256 * 1024)), governance_kinds=msg.GOVERNANCE_KINDS)
    return Node(cfg, roster, ctx["secret"], seed_i, store, random.Random(seed), crypto, now_ms=0)


__all__ = ["make_core_node", "msg"]
