#!/usr/bin/env python3
"""Laptop-side generator of Ed25519 precomputed tables for the node (firmware/plexnode/ed25519.py).

Roster keys are known at provisioning, so each gets a per-key table (12324 bytes: magic, the public
key, 16 chunks x 8 odd multiples of A, each as (y+x)/2, (y-x)/2, dxy) that goes to the node's flash; the
node passes ``ed25519.KeyTable(buf)`` as ``verify(..., table=...)`` and verifies ~1.7 times as fast.

  ed25519_tables.py KEYHEX [KEYHEX ...] -o DIR   write DIR/<keyhex>.edt for each 32-byte public key
  ed25519_tables.py --check FILE [FILE ...]      fully re-derive tables and compare (exit 1 on mismatch)
  ed25519_tables.py --base                       print the base-point table as the Python bytes literal
                                                 that ed25519.py embeds (_BASE_TABLE)

Importable too: ``key_table(public) -> bytes`` and ``write_key_tables(keys, out_dir) -> [Path]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    from plexnode import ed25519
except ImportError:  # running from a checkout without the editable install
    sys.path.insert(0, str(ROOT / "firmware"))
    from plexnode import ed25519

SUFFIX = ".edt"


def key_table(public: bytes) -> bytes:
    """The table for one public key (raises ValueError for a malformed or off-curve key)."""
    return ed25519.make_key_table(public)


def write_key_tables(keys: list[bytes], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for pub in keys:
        path = out_dir / (pub.hex() + SUFFIX)
        path.write_bytes(key_table(pub))
        paths.append(path)
    return paths


def base_literal(per_line: int = 32) -> str:
    data = ed25519._chunk_table(ed25519._BX, ed25519._BY)
    lines = ["_BASE_TABLE = ("]
    for i in range(0, len(data), per_line):
        lines.append('    b"' + "".join("\\x%02x" % b for b in data[i:i + per_line]) + '"')
    lines.append(")")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("keys", nargs="*", help="public keys, 64 hex digits each (or files with --check)")
    ap.add_argument("-o", "--out", type=Path, default=Path("."), help="output directory")
    ap.add_argument("--base", action="store_true", help="print the base-point table literal")
    ap.add_argument("--check", action="store_true", help="verify table files against their keys")
    args = ap.parse_args(argv)
    if args.base:
        print(base_literal())
        return 0
    if args.check:
        bad = 0
        for name in args.keys:
            data = Path(name).read_bytes()
            try:
                tab = ed25519.KeyTable(data)
                ok = key_table(tab.public) == data
            except ValueError:
                ok = False
            print("%s %s" % ("ok " if ok else "BAD", name))
            bad += not ok
        return 1 if bad else 0
    if not args.keys:
        ap.error("give public keys (hex), or --base / --check")
    keys = []
    for k in args.keys:
        try:
            pub = bytes.fromhex(k)
        except ValueError:
            ap.error("not hex: %s" % k)
        if len(pub) != 32:
            ap.error("a public key is 32 bytes (64 hex digits): %s" % k)
        keys.append(pub)
    try:
        for path in write_key_tables(keys, args.out):
            print(path)
    except ValueError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
