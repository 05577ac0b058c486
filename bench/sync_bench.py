#!/usr/bin/env python3
"""Ledger sync of 5,000 records from a virtual node (the real core on a pseudo-terminal, through real pyserial).

    .venv/bin/python bench/sync_bench.py [--write]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks_md import write_section  # noqa: E402
from plexus import ledger as ledgermod  # noqa: E402
from plexus.client import HostLinkClient  # noqa: E402
from plexus.crypto import HostCrypto  # noqa: E402
from plexus.virtual import VirtualNode  # noqa: E402
from plexwire import group, hostlink, msg  # noqa: E402

N = 5000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    c = HostCrypto()
    member = hashlib.sha256(b"sync bench member").digest()
    doc = group.make_doc("bench", [{"name": "m", "key": c.public_key(member).hex()}], [], quorum_k=1)
    gid = group.Roster(doc).group_id
    kid = msg.key_id(c.public_key(member))
    with tempfile.TemporaryDirectory() as d:
        vn = VirtualNode(doc, bytes(32), b"\x01" * 32, Path(d) / "node.log", "bench", time_s=91_000_000)
        for i in range(N):  # fill the node's store directly, as a node that has been on the mesh for months
            u = msg.encode_unsigned(msg.BULLETIN, {"flags": 0, "text": "bulletin %05d " % i + "y" * 90}, kid, 91_000_000 + i)
            inner = msg.finish(u, c.sign(member, msg.signing_bytes(gid, u)))
            vn.store.add(msg.message_id(inner), msg.BULLETIN, hostlink.pack_record(inner), 91_000_000 + i)
        t = threading.Thread(target=vn.serve_forever, daemon=True)
        t.start()
        led = ledgermod.Ledger(Path(d) / "ledger.sqlite", roster=doc)
        t0 = time.perf_counter()
        with HostLinkClient(vn.port, timeout=10) as cl:
            res = ledgermod.sync(cl, led)
        secs = time.perf_counter() - t0
        t1 = time.perf_counter()
        with HostLinkClient(vn.port, timeout=10) as cl:
            again = ledgermod.sync(cl, led)
        secs2 = time.perf_counter() - t1
        count = led.count() if hasattr(led, "count") else None
        led.close()
        vn.close()
    text = "\n".join([
        "## Ledger sync from a virtual node (issue 8)",
        "",
        "Command: `.venv/bin/python bench/sync_bench.py --write` (the real core and host link on a pseudo-terminal, "
        "`plexus.client.HostLinkClient` over real pyserial, the ledger verifying every record before insert).",
        "",
        "| records | first sync | second sync (nothing new) | target |",
        "|---|---|---|---|",
        "| %d | %.2f s (%d inserted in %d rounds) | %.3f s (%d inserted) | <= 10 s |"
        % (N, secs, res.inserted, res.rounds, secs2, again.inserted),
        "",
    ])
    print(text)
    print("ledger count:", count)
    if a.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
