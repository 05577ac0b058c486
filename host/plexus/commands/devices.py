"""`plexus devices`: serial ports, with the usual LoRa-board USB-UART chips recognised."""

from __future__ import annotations

import argparse

from plexus import devices as devmod
from plexus.commands import add_json, print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="also list ports that are not a known USB-UART bridge")
    add_json(p)


def run(args: argparse.Namespace) -> int:
    devs = devmod.list_devices(include_all=args.all)
    if args.json:
        print_json(devs)
        return 0
    if not devs:
        print("no serial ports found%s" % ("" if args.all else " with a known USB-UART chip (try --all)"))
        return 0
    for d in devs:
        ids = "%s:%s" % (d["vid"], d["pid"]) if d["vid"] else "-"
        print("%-20s %-9s %-20s %s" % (d["port"], ids, d["chip"] or "", d["description"]))
    return 0
