#!/usr/bin/env python3
"""Build a MicroPython ESP32 image with the Plexus packages (plexnode, plexwire) frozen in.

    python tools/build_firmware.py --board heltec_v3 --micropython-src ~/src/micropython [--dry-run]

Needs what MicroPython's ESP32 port needs (ports/esp32/README.md): a MicroPython source tree (tag v1.27.0,
the version the firmware is tested with) and ESP-IDF with its environment loaded (`. $IDF_PATH/export.sh`, so
that `idf.py` is on PATH).  The board profile's `micropython_board` picks the MicroPython board
(ESP32_GENERIC or ESP32_GENERIC_S3); firmware/manifest.py says what is frozen.  The steps are the port's own
make targets:

    make -C MPY/mpy-cross
    make -C MPY/ports/esp32 BOARD=B submodules
    make -C MPY/ports/esp32 BOARD=B FROZEN_MANIFEST=/abs/path/firmware/manifest.py

and the image (ports/esp32/build-B/firmware.bin) is copied to build/firmware/plexus-<board>.bin, ready for
`plexus node provision --board BOARD --micropython build/firmware/plexus-BOARD.bin`.  --dry-run prints the
commands without running them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "firmware" / "manifest.py"
OUT_DIR = ROOT / "build" / "firmware"


def commands(mpy_src: Path, mp_board: str, manifest: Path = MANIFEST, jobs: int = 0) -> list[list[str]]:
    j = ["-j%d" % jobs] if jobs else []
    port = mpy_src / "ports" / "esp32"
    return [
        ["make", "-C", str(mpy_src / "mpy-cross")] + j,
        ["make", "-C", str(port), "BOARD=" + mp_board, "submodules"],
        # FROZEN_MANIFEST must be an absolute path: the port's build runs in its own directory
        ["make", "-C", str(port), "BOARD=" + mp_board, "FROZEN_MANIFEST=" + str(manifest.resolve())] + j,
    ]


def image_path(mpy_src: Path, mp_board: str) -> Path:
    return mpy_src / "ports" / "esp32" / ("build-" + mp_board) / "firmware.bin"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", required=True, help="board profile id (a file in boards/)")
    ap.add_argument("--micropython-src", required=True, help="MicroPython source tree (git checkout of v1.27.0)")
    ap.add_argument("--out", help="output image (default build/firmware/plexus-BOARD.bin)")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    a = ap.parse_args(argv)
    prof_path = ROOT / "boards" / (a.board + ".json")
    if not prof_path.is_file():
        known = ", ".join(sorted(p.stem for p in (ROOT / "boards").glob("*.json")))
        print("error: unknown board %r: choose one of %s" % (a.board, known), file=sys.stderr)
        return 2
    mp_board = json.loads(prof_path.read_text())["micropython_board"]
    src = Path(a.micropython_src).expanduser()
    out = Path(a.out) if a.out else OUT_DIR / ("plexus-%s.bin" % a.board)
    cmds = commands(src, mp_board, jobs=a.jobs)
    if a.dry_run:
        for c in cmds:
            print(" ".join(c))
        print("cp %s %s" % (image_path(src, mp_board), out))
        return 0
    if not (src / "ports" / "esp32").is_dir():
        print("error: %s is not a MicroPython source tree (no ports/esp32)" % src, file=sys.stderr)
        return 2
    if shutil.which("idf.py") is None:
        print("error: idf.py not found: install ESP-IDF and load its environment (. $IDF_PATH/export.sh)",
              file=sys.stderr)
        return 2
    for c in cmds:
        print("+ " + " ".join(c), flush=True)
        if subprocess.run(c).returncode != 0:
            print("error: command failed: %s" % " ".join(c), file=sys.stderr)
            return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image_path(src, mp_board), out)
    print("image: %s (flash it with: plexus node provision --board %s --micropython %s)" % (out, a.board, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
