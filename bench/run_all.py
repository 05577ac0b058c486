#!/usr/bin/env python3
"""`make bench`: run every benchmark and rewrite its section of BENCHMARKS.md."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["ed25519_bench.py", "--write"],
    ["core_bench.py", "--write"],
    ["mesh.py", "--seeds", "5", "--write"],
    ["drill_bench.py", "--seeds", "5", "--write"],
    ["ledger_bench.py"],  # prints its tables; its section in BENCHMARKS.md is edited by hand from them
    ["sync_bench.py", "--write"],
    ["x25519_bench.py", "--write"],
]

rc = 0
for args in RUNS:
    if not (HERE / args[0]).exists():
        continue
    print("== %s" % " ".join(args), flush=True)
    rc |= subprocess.call([sys.executable, str(HERE / args[0])] + args[1:])
sys.exit(rc)
