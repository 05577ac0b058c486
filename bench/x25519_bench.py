#!/usr/bin/env python3
"""X25519 on the node (issue 7, rekey): time and heap of the one Montgomery ladder a node runs per REKEY, and
of the whole unwrap of its table entry, under real MicroPython (the WebAssembly port, the .mpy files that
ship), against one Ed25519 verify (plexnode.ed25519, arbitrary key) run interleaved in the same session.

    .venv/bin/python bench/x25519_bench.py [--rounds N] [--write]

--write replaces the "## X25519 and rekey (issue 7)" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "rig"))
sys.path.insert(0, str(ROOT / "bench"))

from benchmarks_md import write_section  # noqa: E402
from mpyrig import MicroPython  # noqa: E402
from plexus import client as clientmod  # noqa: E402
from plexus.crypto import HostCrypto  # noqa: E402
from plexwire import hostlink, msg  # noqa: E402

VERIFY_ESP32 = (0.04, 0.12)  # BENCHMARKS.md, "Estimated ESP32 time", ours verify

SETUP = r'''
import gc, time, binascii
from plexnode import x25519, ed25519
from plexwire import rekey, msg, hostlink
_h = binascii.unhexlify
_seed = _h(%r)
_pub = _h(%r)
_rec = _h(%r)
_gid = _h(%r)
_inner, _table = hostlink.unpack_record(_rec)
_m = msg.decode(_inner)
_kid = msg.key_id(_pub)
_vpub = _h(%r)
_vmsg = _h(%r)
_vsig = _h(%r)

def _ladder():
    return x25519.x25519(_seed, _m.f["eph"])

def _unwrap():
    me = x25519.public_u(_pub)
    z = x25519.x25519(x25519.secret_scalar(_seed), _m.f["eph"])
    e = rekey.find(_table, _kid)
    return rekey.unwrap(e, rekey.wrap_key(_gid, _m.f["epoch"], _m.f["eph"], me, z))

def _verify():
    return ed25519.verify(_vpub, _vmsg, _vsig)

def _measure(f):
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    r = f()
    t1 = time.ticks_us()
    a1 = gc.mem_alloc()
    gc.enable()
    gc.collect()
    return [time.ticks_diff(t1, t0), a1 - a0, r is not None and r is not False]
'''


def fixtures():
    c = HostCrypto()
    seed = hashlib.sha256(b"bench node").digest()
    member = hashlib.sha256(b"bench member").digest()
    pub = c.public_key(seed)
    gid = bytes(range(8))

    class Key:
        kid = msg.key_id(c.public_key(member))

        def sign_message(self, g, kind, f, t):
            u = msg.encode_unsigned(kind, f, self.kid, t)
            return msg.finish(u, c.sign(member, msg.signing_bytes(g, u)))

    others = [c.public_key(hashlib.sha256(b"bench other %d" % i).digest()) for i in range(29)]
    rec, secret = clientmod.rekey_record(Key(), gid, 1, [pub] + others, time_s=91_000_000)
    vmsg = bytes(200)
    vsig = c.sign(member, vmsg)
    return seed, pub, rec, gid, c.public_key(member), vmsg, vsig, secret


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    seed, pub, rec, gid, vpub, vmsg, vsig, secret = fixtures()
    mpy = MicroPython()
    mpy.run(SETUP % tuple(x.hex() for x in (seed, pub, rec, gid, vpub, vmsg, vsig)))
    res: dict[str, list] = {"ladder": [], "unwrap": [], "verify": []}
    for r in range(a.rounds + 2):
        for name in ("ladder", "unwrap", "verify"):
            out = json.loads(mpy.run("print(__import__('json').dumps(_measure(_%s)))" % name).strip().splitlines()[-1])
            assert out[2], name
            if r >= 2:
                res[name].append(out)
    med = {k: (statistics.median(v[0] for v in res[k]) / 1000, statistics.median(v[1] for v in res[k])) for k in res}
    ratio = statistics.median(res["unwrap"][i][0] / res["verify"][i][0] for i in range(a.rounds))
    inner, table = hostlink.unpack_record(rec)
    lines = [
        "## X25519 and rekey (issue 7)",
        "",
        "Command: `.venv/bin/python bench/x25519_bench.py --rounds %d` (MicroPython 1.27 WebAssembly port, the `.mpy` "
        "files that ship; %d interleaved rounds after 2 warm-up rounds, each operation alone in its own `mpy.run` call; "
        "time = `time.ticks_us` around the call, medians; heap = bytes allocated by the call with GC disabled, the sum of "
        "short-lived objects, not the peak). Baseline in the same session: one Ed25519 verify (ours, arbitrary key, "
        "200-byte message)." % (a.rounds, a.rounds),
        "",
        "| operation | wasm ms | / Ed25519 verify | heap allocated | est. ESP32 s |",
        "|---|---|---|---|---|",
    ]
    for name, what in (("ladder", "X25519 ladder (one scalar multiplication, RFC 7748)"),
                       ("unwrap", "whole unwrap on a node: public_u + SHA-512 scalar + ladder + find + MAC (30-node table)"),
                       ("verify", "Ed25519 verify (baseline)")):
        ms, heap = med[name]
        q = statistics.median(res[name][i][0] / res["verify"][i][0] for i in range(a.rounds))
        lines.append("| %s | %.1f | %.2f | %d | %.2f - %.2f |" % (what, ms, q, heap, q * VERIFY_ESP32[0], q * VERIFY_ESP32[1]))
    lines += [
        "",
        "Wall time on a shared, loaded machine, so the ratio to the verify run in the same rounds is the figure to "
        "trust; the ESP32 estimate is that ratio times the Ed25519 section's estimate for one verify (%.2f - %.2f s). "
        "`time.ticks_us` of the WebAssembly port ticks in whole milliseconds." % VERIFY_ESP32,
        "",
        "A node runs the unwrap once per adopted REKEY: **%.1f Ed25519 verifies** (median per-round ratio). The ladder "
        "keeps five 255-bit integers live; its garbage is short-lived, so the peak stays a few KB (the node's ~100 KB "
        "heap collects it as it goes). REKEY for 30 nodes: header %d bytes + wrap table %d bytes in %d FRAGMENTs "
        "(SPEC.md s.8.4)." % (ratio, len(inner), len(table), -(-len(table) // msg.FRAG_DATA)),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
