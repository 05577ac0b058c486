"""The `plexus` command: a table of subcommands, each a thin wrapper over a library function.

User mistakes end in one clear line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from plexus import __version__


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2 (or .code)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# name -> (module, help). Each module defines add_arguments(parser) and run(args) -> int.
# A module may instead define `SUBCOMMANDS = {name: (add_arguments, run, help)}` for nested verbs; its help line
# then lists them all, taken from SUBCOMMANDS (see summary()), so `plexus --help` never leaves a verb out.
COMMANDS: dict[str, tuple[str, str]] = {
    "keys": ("plexus.commands.keys", "member keys"),
    "group": ("plexus.commands.group", "the group roster and secret"),
    "devices": ("plexus.commands.devices", "serial ports that may be nodes"),
    "post": ("plexus.commands.post", "sign a bulletin and post it to a node"),
    "consent": ("plexus.commands.consent", "sign a consent, stand-aside or block and post it to a node"),
    "ledger": ("plexus.commands.ledger", "the verified ledger"),
    "mandate": ("plexus.commands.mandate", "rotating roles, drawn by lot or elected"),
    "drill": ("plexus.commands.drill", "alert drills"),
    "node": ("plexus.virtual", "nodes, virtual or on a board"),
    "sim": ("plexus.sim.cli", "simulate a mesh scenario with the real node core"),
    "bridge": ("plexus.commands.bridge", "carry Plexus over other radios"),
    "demo": ("plexus.demo", "the town scenario end to end: bulletin, drill, ledger (what `make demo` runs)"),
}


def _load(modname: str):
    return importlib.import_module(modname)


def summary(help_text: str, verbs: Sequence[str]) -> str:
    """A command's help line: its text and, for a command with verbs, every one of them."""
    return "%s: %s" % (help_text, ", ".join(verbs)) if verbs else help_text


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake on the command line reported in one line (not the usage block, then the error)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="plexus", description="Plexus: off-grid mesh tools for leaderless organizing.")
    parser.add_argument("--version", action="version", version="plexus " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (modname, help_text) in COMMANDS.items():
        try:
            mod = _load(modname)
        except ImportError:
            continue
        nested = getattr(mod, "SUBCOMMANDS", None)
        help_text = summary(help_text, list(nested or ()))
        p = sub.add_parser(name, help=help_text, description=help_text)
        if nested:
            vsub = p.add_subparsers(dest="verb", metavar="VERB", required=True)
            for verb, (add_args, run, vhelp) in nested.items():
                vp = vsub.add_parser(verb, help=vhelp, description=vhelp)
                add_args(vp)
                vp.set_defaults(_run=run)
        else:
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return int(run(args) or 0)
    except UserError as exc:
        print("plexus: error: %s" % exc, file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("plexus: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as exc:
        print("plexus: error: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
