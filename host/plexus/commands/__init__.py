"""Thin CLI wrappers over the host library (registered in plexus.cli.COMMANDS by the lead).

Shared here: the common options and the mapping of library errors to one-line `UserError`s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any, Iterator

from plexus.cli import UserError


def add_keystore(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keystore", metavar="DIR", help="key directory (default: $PLEXUS_HOME/keys, ~/.local/share/plexus/keys)")


def add_group(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", metavar="FILE", help="roster document (default: $PLEXUS_HOME/group.json)")


def add_ledger(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger", metavar="FILE", help="ledger database (default: $PLEXUS_HOME/ledger.sqlite)")


def ledger_file(path: Any, roster: Any = None, write: bool = False) -> Any:
    """The ledger at `path` (None: $PLEXUS_HOME/ledger.sqlite).

    Readers (write=False) refuse a missing ledger and create nothing. Writers create the file; its directory only
    for the default path (a mistyped --ledger DIR/FILE is refused rather than made)."""
    from plexus import ledger as ledgermod

    if write:
        check_ledger_dir(path)
    return ledgermod.Ledger(path, roster, create=write)


def check_ledger_dir(path: Any) -> None:
    """A ledger about to be written at an explicit `path` needs its directory to exist already."""
    from pathlib import Path

    if path:
        parent = Path(path).expanduser().parent
        if not parent.is_dir():
            raise UserError("no directory %s for the ledger %s" % (parent, path))


def add_port(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--port", required=required, metavar="PORT",
                   help="the node's serial port (e.g. /dev/ttyUSB0, COM3; see `plexus devices`) or a pyserial URL")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200; ignored by native USB)")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="seconds to wait for each answer (default 3)")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_signed_post(p: argparse.ArgumentParser, ledger: bool = True) -> None:
    """The options of a command that signs a record with a member key and posts it to a node: --port (and the
    link options), --as MEMBER, --keystore, --group, --ledger (when it reads the ledger), --json."""
    add_port(p)
    p.add_argument("--as", dest="as_member", metavar="MEMBER", help="sign with this key (keystore or member name)")
    add_keystore(p)
    add_group(p)
    if ledger:
        add_ledger(p)
    add_json(p)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Library errors a user can act on become one-line UserErrors (no traceback)."""
    from plexus.client import LinkError, NodeError
    from plexus.groupcfg import GroupError
    from plexus.keys import KeyStoreError
    from plexus.ledger import LedgerError

    try:
        yield
    except (KeyStoreError, GroupError, LedgerError) as e:
        raise UserError(str(e)) from None
    except LinkError as e:
        raise UserError(str(e), code=3) from None
    except NodeError as e:
        raise UserError("the node refused: %s" % e, code=4) from None


def open_client(args: argparse.Namespace, set_time: bool = False) -> Any:
    """Connect to the node; with set_time, set its clock from the laptop's (SPEC s.6.2: on every connection)."""
    from plexus.client import HostLinkClient, NodeError, plexus_time

    c = HostLinkClient(args.port, timeout=args.timeout, baudrate=args.baud)
    if set_time:
        try:
            c.config(time=plexus_time())
        except NodeError:
            pass
        except BaseException:
            c.close()
            raise
    return c
