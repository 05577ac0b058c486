#!/usr/bin/env python3
"""Ed25519 on the node: time and heap of one verify / one sign of a 200-byte message under real
MicroPython (the WebAssembly port driven through tests/rig/mpyrig.py), against a straightforward
Ed25519 written here in the style of RFC 8032 section 6 (unified-addition double-and-add, affine
decoding, plain SHA-512), run on the same interpreter in the same session, interleaved.

    .venv/bin/python bench/ed25519_bench.py [--rounds N] [--write]

--write replaces the "## Ed25519 (issue 3)" section of BENCHMARKS.md with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))
sys.path.insert(0, str(ROOT / "tests" / "rig"))
sys.path.insert(0, str(ROOT / "bench"))

from benchmarks_md import write_section  # noqa: E402

# ------------------------------------------------------------------------------------------------
# The baseline: a plain, straightforward Ed25519 + SHA-512 (our own code, the textbook way). It runs
# unchanged on CPython (checked against `cryptography` below) and on MicroPython.
BASELINE_SRC = r'''
B_MASK = 0xFFFFFFFFFFFFFFFF
B_SHA_K = [int(w, 16) for w in """
428a2f98d728ae22 7137449123ef65cd b5c0fbcfec4d3b2f e9b5dba58189dbbc 3956c25bf348b538 59f111f1b605d019
923f82a4af194f9b ab1c5ed5da6d8118 d807aa98a3030242 12835b0145706fbe 243185be4ee4b28c 550c7dc3d5ffb4e2
72be5d74f27b896f 80deb1fe3b1696b1 9bdc06a725c71235 c19bf174cf692694 e49b69c19ef14ad2 efbe4786384f25e3
0fc19dc68b8cd5b5 240ca1cc77ac9c65 2de92c6f592b0275 4a7484aa6ea6e483 5cb0a9dcbd41fbd4 76f988da831153b5
983e5152ee66dfab a831c66d2db43210 b00327c898fb213f bf597fc7beef0ee4 c6e00bf33da88fc2 d5a79147930aa725
06ca6351e003826f 142929670a0e6e70 27b70a8546d22ffc 2e1b21385c26c926 4d2c6dfc5ac42aed 53380d139d95b3df
650a73548baf63de 766a0abb3c77b2a8 81c2c92e47edaee6 92722c851482353b a2bfe8a14cf10364 a81a664bbc423001
c24b8b70d0f89791 c76c51a30654be30 d192e819d6ef5218 d69906245565a910 f40e35855771202a 106aa07032bbd1b8
19a4c116b8d2d0c8 1e376c085141ab53 2748774cdf8eeb99 34b0bcb5e19b48a8 391c0cb3c5c95a63 4ed8aa4ae3418acb
5b9cca4f7763e373 682e6ff3d6b2b8a3 748f82ee5defb2fc 78a5636f43172f60 84c87814a1f0ab72 8cc702081a6439ec
90befffa23631e28 a4506cebde82bde9 bef9a3f7b2c67915 c67178f2e372532b ca273eceea26619c d186b8c721c0c207
eada7dd6cde0eb1e f57d4f7fee6ed178 06f067aa72176fba 0a637dc5a2c898a6 113f9804bef90dae 1b710b35131c471b
28db77f523047d84 32caab7b40c72493 3c9ebe0a15c9bebc 431d67c49c100d4c 4cc5d4becb3e42b6 597f299cfc657e2a
5fcb6fab3ad6faec 6c44198c4a475817""".split()]
B_SHA_IV = [0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
            0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179]


def b_rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & B_MASK


def b_sha512(data):
    data = bytes(data)
    bits = len(data) * 8
    data = data + b"\x80" + b"\x00" * ((111 - len(data)) % 128) + bits.to_bytes(16, "big")
    h = list(B_SHA_IV)
    for off in range(0, len(data), 128):
        w = [int.from_bytes(data[off + 8 * i:off + 8 * i + 8], "big") for i in range(16)]
        for t in range(16, 80):
            s0 = b_rotr(w[t - 15], 1) ^ b_rotr(w[t - 15], 8) ^ (w[t - 15] >> 7)
            s1 = b_rotr(w[t - 2], 19) ^ b_rotr(w[t - 2], 61) ^ (w[t - 2] >> 6)
            w.append((w[t - 16] + s0 + w[t - 7] + s1) & B_MASK)
        a, b, c, d, e, f, g, hh = h
        for t in range(80):
            t1 = (hh + (b_rotr(e, 14) ^ b_rotr(e, 18) ^ b_rotr(e, 41)) + ((e & f) ^ (~e & g)) + B_SHA_K[t] + w[t]) & B_MASK
            t2 = ((b_rotr(a, 28) ^ b_rotr(a, 34) ^ b_rotr(a, 39)) + ((a & b) ^ (a & c) ^ (b & c))) & B_MASK
            hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & B_MASK, c, b, a, (t1 + t2) & B_MASK
        h = [(x + y) & B_MASK for x, y in zip(h, (a, b, c, d, e, f, g, hh))]
    return b"".join(x.to_bytes(8, "big") for x in h)


B_P = 2 ** 255 - 19
B_L = 2 ** 252 + 27742317777372353535851937790883648493
B_D = -121665 * pow(121666, B_P - 2, B_P) % B_P
B_I = pow(2, (B_P - 1) // 4, B_P)  # sqrt(-1)


def b_add(p1, p2):
    # unified addition in extended coordinates (X, Y, Z, T), a = -1, as RFC 8032 section 6 writes it:
    # the four output coordinates are left unreduced
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % B_P
    b = (y1 + x1) * (y2 + x2) % B_P
    c = 2 * t1 * t2 * B_D % B_P
    d = 2 * z1 * z2 % B_P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f, g * h, f * g, e * h)


def b_add_reduced(p1, p2):
    # the same, with the output coordinates reduced mod p (faster on MicroPython: smaller numbers)
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % B_P
    b = (y1 + x1) * (y2 + x2) % B_P
    c = 2 * t1 * t2 * B_D % B_P
    d = 2 * z1 * z2 % B_P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % B_P, g * h % B_P, f * g % B_P, e * h % B_P)


def b_mul(k, pt, add=b_add):
    acc = (0, 1, 1, 0)
    while k > 0:
        if k & 1:
            acc = add(acc, pt)
        pt = add(pt, pt)
        k >>= 1
    return acc


def b_x_from_y(y, sign):
    if y >= B_P:
        return None
    xx = (y * y - 1) * pow(B_D * y * y + 1, B_P - 2, B_P) % B_P
    if xx == 0:
        return None if sign else 0
    x = pow(xx, (B_P + 3) // 8, B_P)
    if (x * x - xx) % B_P:
        x = x * B_I % B_P
        if (x * x - xx) % B_P:
            return None
    if x & 1 != sign:
        x = B_P - x
    return x


B_GY = 4 * pow(5, B_P - 2, B_P) % B_P
B_GX = b_x_from_y(B_GY, 0)
B_G = (B_GX, B_GY, 1, B_GX * B_GY % B_P)


def b_encode(pt):
    zi = pow(pt[2], B_P - 2, B_P)
    x, y = pt[0] * zi % B_P, pt[1] * zi % B_P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def b_decode(s):
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = b_x_from_y(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % B_P)


def b_same(p1, p2):
    return (p1[0] * p2[2] - p2[0] * p1[2]) % B_P == 0 and (p1[1] * p2[2] - p2[1] * p1[2]) % B_P == 0


def b_hash_int(data):
    return int.from_bytes(b_sha512(data), "little") % B_L


def b_expand(seed):
    h = b_sha512(seed)
    a = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    return a, h[32:]


def b_public_key(seed, add=b_add):
    return b_encode(b_mul(b_expand(seed)[0], B_G, add))


def b_sign(seed, msg, add=b_add):
    a, prefix = b_expand(seed)
    pub = b_encode(b_mul(a, B_G, add))
    r = b_hash_int(prefix + msg)
    rb = b_encode(b_mul(r, B_G, add))
    s = (r + b_hash_int(rb + pub + msg) * a) % B_L
    return rb + s.to_bytes(32, "little")


def b_verify(pub, msg, sig, add=b_add):
    if len(pub) != 32 or len(sig) != 64:
        return False
    a = b_decode(pub)
    r = b_decode(sig[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= B_L:
        return False
    k = b_hash_int(sig[:32] + pub + msg)
    return b_same(b_mul(s, B_G, add), add(r, b_mul(k, a, add)))
'''

# ------------------------------------------------------------------------------------------------
# What runs under MicroPython

SETUP = """
import gc, js
from plexnode import ed25519
from plexnode.sha512 import sha512
try:
    js.process.cpuUsage()
    def _cpu():
        u = js.process.cpuUsage()
        return (u.user + u.system) / 1000
except Exception:
    def _cpu():
        return js.performance.now()
SEED = bytes(range(32))
MSG = bytes((i * 7 + 1) & 255 for i in range(200))
PUB = ed25519.public_key(SEED)
SIG = ed25519.sign(SEED, MSG)
TABLE = ed25519.KeyTable(ed25519.make_key_table(PUB))
assert b_public_key(SEED) == PUB and b_sign(SEED, MSG) == SIG
OPS = {
    "ours_verify": lambda: ed25519.verify(PUB, MSG, SIG),
    "ours_verify_roster": lambda: ed25519.verify(PUB, MSG, SIG, TABLE),
    "ours_sign": lambda: ed25519.sign(SEED, MSG) == SIG,
    "base_verify": lambda: b_verify(PUB, MSG, SIG),
    "base_sign": lambda: b_sign(SEED, MSG) == SIG,
    "baseR_verify": lambda: b_verify(PUB, MSG, SIG, b_add_reduced),
    "baseR_sign": lambda: b_sign(SEED, MSG, b_add_reduced) == SIG,
    "ours_sha512_264B": lambda: len(sha512(MSG + PUB + PUB[:32]).digest()) == 64,
    "base_sha512_264B": lambda: len(b_sha512(MSG + PUB + PUB[:32])) == 64,
}
def _time(name):
    f = OPS[name]
    gc.collect()
    c0 = _cpu()
    t0 = js.performance.now()
    ok = f()
    t1 = js.performance.now()
    c1 = _cpu()
    print("%.4f %.4f %d" % (t1 - t0, c1 - c0, ok))
def _heap(name):
    f = OPS[name]
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    ok = f()
    m1 = gc.mem_alloc()
    gc.enable()
    print("%d %d" % (m1 - m0, ok))
def _calib(n):
    a = 1234
    b = 5678
    gc.collect()
    c0 = _cpu()
    for i in range(n):
        s = a + b
    print("%.4f" % (_cpu() - c0))
print(len(ed25519._BASE_TABLE))
"""

OPS = ["base_verify", "ours_verify", "ours_verify_roster", "base_sign", "ours_sign", "baseR_verify", "baseR_sign", "base_sha512_264B", "ours_sha512_264B"]

# ESP32 calibration point: robert-hh (MicroPython maintainer team) timed this loop,
# `for i in range(1000000): sum = a + b`, at about 2 s on an ESP32 (240 MHz, no SPIRAM),
# https://github.com/loboris/MicroPython_K210_LoBo/issues/1 (2019, MicroPython 1.10).
ESP32_ADD_LOOP_S_PER_MILLION = 2.0


def run_mpy(rounds: int) -> dict:
    from mpyrig import MicroPython

    mp = MicroPython()
    try:
        base_table = int(mp.run(BASELINE_SRC + "\n" + SETUP).strip().splitlines()[-1])
        for _ in range(2):  # warm-up (JIT of the wasm, first-call costs)
            for op in OPS:
                mp.run("_time(%r)" % op)
        times: dict[str, list[tuple[float, float]]] = {op: [] for op in OPS}
        calibs = []
        for r in range(rounds):
            order = OPS[r % len(OPS) :] + OPS[: r % len(OPS)]  # interleaved, rotating start
            for op in order:
                wall, cpu, ok = mp.run("_time(%r)" % op).split()
                assert ok == "1", op
                times[op].append((float(wall), float(cpu)))
            calibs.append(float(mp.run("_calib(100000)")) * 10)  # ms per million iterations
        heap = {}
        for op in OPS:
            alloc, ok = mp.run("_heap(%r)" % op).split()
            assert ok == "1", op
            heap[op] = int(alloc)
        calib = statistics.median(calibs)
    finally:
        mp.close()
    return {"times": times, "heap": heap, "calib_ms_per_million": calib, "base_table_bytes": base_table}


def cpython_reference() -> dict:
    from plexnode import ed25519

    g: dict = {}
    exec(BASELINE_SRC, g)
    seed = bytes(range(32))
    msg = bytes((i * 7 + 1) & 255 for i in range(200))
    pub = ed25519.public_key(seed)
    sig = ed25519.sign(seed, msg)
    table = ed25519.KeyTable(ed25519.make_key_table(pub))
    res = {}
    for name, f in (
        ("ours_verify", lambda: ed25519.verify(pub, msg, sig)),
        ("ours_verify_roster", lambda: ed25519.verify(pub, msg, sig, table)),
        ("ours_sign", lambda: ed25519.sign(seed, msg)),
        ("base_verify", lambda: g["b_verify"](pub, msg, sig)),
        ("base_sign", lambda: g["b_sign"](seed, msg)),
    ):
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            f()
            ts.append((time.perf_counter() - t) * 1000)
        res[name] = statistics.median(ts)
    return res


def check_baseline_on_cpython() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    g: dict = {}
    exec(BASELINE_SRC, g)
    for i in range(5):
        seed = hashlib.sha256(b"seed%d" % i).digest()
        msg = hashlib.sha512(b"msg%d" % i).digest() * 3
        assert g["b_sha512"](msg) == hashlib.sha512(msg).digest()
        sig = Ed25519PrivateKey.from_private_bytes(seed).sign(msg)
        assert g["b_sign"](seed, msg) == sig
        assert g["b_verify"](g["b_public_key"](seed), msg, sig)
        assert not g["b_verify"](g["b_public_key"](seed), msg + b"!", sig)
        assert g["b_sign"](seed, msg, g["b_add_reduced"]) == sig
        assert g["b_verify"](g["b_public_key"](seed), msg, sig, g["b_add_reduced"])


def summarise(res: dict) -> dict:
    t = res["times"]
    med = {op: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for op, v in t.items()}

    def paired(a: str, b: str, idx: int) -> float:
        # median over rounds of the per-round ratio a/b (rounds are interleaved)
        return statistics.median(x[idx] / y[idx] for x, y in zip(t[a], t[b]))

    out = {"median_ms": med, "heap": res["heap"], "rounds": len(t["ours_verify"])}
    out["ratio"] = {
        name: {"cpu": paired(a, b, 1), "wall": paired(a, b, 0), "heap": res["heap"][a] / res["heap"][b]}
        for name, a, b in (
            ("verify (arbitrary key)", "ours_verify", "base_verify"),
            ("verify (roster key, table)", "ours_verify_roster", "base_verify"),
            ("sign", "ours_sign", "base_sign"),
            ("verify (arbitrary key) vs reduced", "ours_verify", "baseR_verify"),
            ("verify (roster key, table) vs reduced", "ours_verify_roster", "baseR_verify"),
            ("sign vs reduced", "ours_sign", "baseR_sign"),
            ("SHA-512 of 264 B", "ours_sha512_264B", "base_sha512_264B"),
        )
    }
    factor = ESP32_ADD_LOOP_S_PER_MILLION * 1000 / res["calib_ms_per_million"]
    out["esp32_factor"] = factor
    out["calib_ms_per_million"] = res["calib_ms_per_million"]
    out["esp32_ms"] = {op: med[op][1] * factor for op in ("ours_verify", "ours_verify_roster", "ours_sign", "base_verify", "base_sign", "baseR_verify")}
    out["base_table_bytes"] = res["base_table_bytes"]
    return out


def render(s: dict, cpy: dict, cmd: str) -> str:
    med, heap, ratio = s["median_ms"], s["heap"], s["ratio"]
    lines = [
        "## Ed25519 (issue 3)",
        "",
        "Command: `%s` (MicroPython 1.27 WebAssembly port under Node, driven by `tests/rig/mpyrig.py`; %d interleaved"
        " rounds after 2 warm-up rounds, each operation alone in its own `mpy.run` call so that no garbage from one"
        " call slows the next; time = CPU time of the Node process (`process.cpuUsage()`), steadier than wall time"
        " on a shared 2-core machine; medians; host %s). Message: 200 bytes." % (cmd, s["rounds"], platform.machine()),
        "",
        "Baselines, both in the bench file, both run on the same interpreter in the same session, both with a plain"
        " pure-Python SHA-512 (schedule list, `rotr` helper, 8-tuple rotation per round):",
        "",
        "* **RFC-style**: Ed25519 exactly as RFC 8032 section 6 writes the algorithm (own code): unified extended"
        " addition used for doubling too, double-and-add, the four output coordinates of an addition left unreduced,"
        " `pow` for decoding and encoding, projective comparison. The targets are stated against this one.",
        "* **reduced**: the same with each output coordinate reduced mod p, which runs faster on MicroPython"
        " (smaller numbers). Shown so that nothing hides behind the choice of baseline.",
        "",
        "| operation | ours ms | RFC-style ms | ours / RFC-style | target | reduced ms | ours / reduced | heap ours | heap RFC-style | heap ratio | heap ours / reduced |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = (
        ("verify, arbitrary key", "ours_verify", "base_verify", "baseR_verify", "verify (arbitrary key)", "<= 0.333"),
        ("verify, roster key (KeyTable)", "ours_verify_roster", "base_verify", "baseR_verify", "verify (roster key, table)", "<= 0.167"),
        ("sign", "ours_sign", "base_sign", "baseR_sign", "sign", "-"),
    )
    for label, a, b, br, rk, target in rows:
        r, rr = ratio[rk], ratio[rk + " vs reduced"]
        lines.append(
            "| %s | %.2f | %.2f | **%.3f** (1/%.1f) | %s | %.2f | %.3f (1/%.1f) | %d | %d | %.3f%s | %.3f |"
            % (label, med[a][1], med[b][1], r["cpu"], 1 / r["cpu"], target, med[br][1], rr["cpu"], 1 / rr["cpu"], heap[a], heap[b], r["heap"], " (target <= 0.333)" if a == "ours_verify" else "", rr["heap"])
        )
    sh = ratio["SHA-512 of 264 B"]
    lines += [
        "",
        "Ratios are medians of the per-round ratios (each round runs every operation once, in a rotating order)."
        " SHA-512 of 264 bytes (3 blocks, what one verify hashes): ours %.2f ms, plain %.2f ms (ratio %.3f);"
        " it is %.0f%% of our arbitrary-key verify and %.0f%% of our roster-key verify."
        % (med["ours_sha512_264B"][1], med["base_sha512_264B"][1], sh["cpu"], 100 * med["ours_sha512_264B"][1] / med["ours_verify"][1], 100 * med["ours_sha512_264B"][1] / med["ours_verify_roster"][1]),
        "Heap = bytes allocated by one call (`gc.mem_alloc()` before and after, GC disabled for the call): the sum of"
        " all short-lived objects, not the peak, which is a few KB.",
        "",
        "CPython 3.11 on the same host, for reference (median of 7, ms): ours verify %.2f, roster verify %.2f, sign %.2f;"
        " RFC-style verify %.2f, sign %.2f." % (cpy["ours_verify"], cpy["ours_verify_roster"], cpy["ours_sign"], cpy["base_verify"], cpy["base_sign"]),
        "",
        "Memory: the base-point table is a %d-byte `bytes` constant in `ed25519.py` (16 chunks 2^(16j)B x 8 odd multiples"
        " x 96 bytes). Frozen into the firmware it stays in flash; imported from a `.mpy` file it takes that much heap"
        " once. A roster key's table is %d bytes (`tools/ed25519_tables.py`, or `ed25519.make_key_table`), used from"
        " any buffer (frozen `bytes` in flash costs no heap)." % (s["base_table_bytes"], 12324),
        "",
        "### Estimated ESP32 time",
        "",
        "Low estimate = wasm CPU time x %.1f: the ratio of a calibration loop (`for i in range(n): s = a + b`, small"
        " ints) measured here (%.0f ms per million iterations) to the same loop on an ESP32 at 240 MHz without SPIRAM,"
        " about 2 s per million (robert-hh, MicroPython 1.10, github.com/loboris/MicroPython_K210_LoBo/issues/1)."
        " High estimate = 3 x low: these workloads are dominated by big-integer operations (a heap allocation plus"
        " 16-bit-digit mpz arithmetic in C per operation), which a 240 MHz Xtensa runs relatively slower than the"
        " bytecode loop, and the node also pays garbage collections that the wasm run does not (one per ~60 KB"
        " allocated with ~100 KB of heap: ~10-15 per verify). The factor 3 is a judgement, not a measurement."
        % (s["esp32_factor"], s["calib_ms_per_million"]),
        "",
        "| estimated ESP32 seconds | ours verify | ours roster verify | ours sign | RFC-style verify | reduced verify |",
        "|---|---|---|---|---|---|",
        "| low - high | %s |"
        % " | ".join("%.2f - %.2f" % (s["esp32_ms"][k] / 1000, 3 * s["esp32_ms"][k] / 1000) for k in ("ours_verify", "ours_verify_roster", "ours_sign", "base_verify", "baseR_verify")),
        "",
        "The ratios ours/baseline should carry over to the device far better than these absolute figures; a run on a"
        " real board is still to be done.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--write", action="store_true", help="update the Ed25519 section of BENCHMARKS.md")
    ap.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = ap.parse_args(argv)
    check_baseline_on_cpython()
    res = run_mpy(args.rounds)
    s = summarise(res)
    cpy = cpython_reference()
    cmd = ".venv/bin/python bench/ed25519_bench.py" + (" --rounds %d" % args.rounds if args.rounds != 15 else "")
    text = render(s, cpy, cmd)
    print(text)
    if args.json:
        print(json.dumps({"summary": s, "raw": res, "cpython_ms": cpy}, indent=1, default=str))
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
