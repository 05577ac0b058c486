"""`plexus keys new|list|export`: member keys in the keystore."""

from __future__ import annotations

import argparse

from plexus import keys as keymod
from plexus.commands import add_json, add_keystore, print_json, user_errors


def _key_json(k: keymod.Key) -> dict:
    return {"name": k.name, "key": k.pub_hex, "key_id": k.kid.hex()}


def _new_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="a name for the key (letters, digits, _ . -)")
    add_keystore(p)
    add_json(p)


def _new(args: argparse.Namespace) -> int:
    with user_errors():
        k = keymod.new_key(args.name, args.keystore)
    if args.json:
        print_json(_key_json(k))
    else:
        print("created key %s (key id %s) in %s" % (k.name, k.kid.hex(), keymod.keystore_dir(args.keystore)))
        print("public key: %s" % k.pub_hex)
    return 0


def _list_args(p: argparse.ArgumentParser) -> None:
    add_keystore(p)
    add_json(p)


def _list(args: argparse.Namespace) -> int:
    with user_errors():
        ks = keymod.list_keys(args.keystore)
    if args.json:
        print_json([_key_json(k) for k in ks])
        return 0
    if not ks:
        print("no keys in %s (create one with `plexus keys new NAME`)" % keymod.keystore_dir(args.keystore))
        return 0
    w = max(len(k.name) for k in ks)
    for k in ks:
        print("%-*s  %s  %s" % (w, k.name, k.kid.hex(), k.pub_hex))
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="key name")
    p.add_argument("--roster", action="store_true", help="print a roster entry (JSON) instead of the bare public key")
    p.add_argument("--contact", default="", help="contact note for the roster entry")
    add_keystore(p)
    add_json(p)


def _export(args: argparse.Namespace) -> int:
    with user_errors():
        k = keymod.load_key(args.name, args.keystore)
    if args.roster:
        print_json(k.roster_entry(args.contact))
    elif args.json:
        print_json(_key_json(k))
    else:
        print(k.pub_hex)
    return 0


SUBCOMMANDS = {
    "new": (_new_args, _new, "create a member key (Ed25519, file mode 0600)"),
    "list": (_list_args, _list, "list the keys in the keystore"),
    "export": (_export_args, _export, "print a key's public half (hex) or, with --roster, a roster entry"),
}
