"""`plexus bridge meshtastic (--port PORT | --host HOST[:4403])`: carry Plexus frames over a Meshtastic radio."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from plexus import bridge as bridgemod
from plexus import groupcfg
from plexus.cli import UserError
from plexus.commands import add_group, add_json, add_ledger, print_json, user_errors


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="PORT", help="the Meshtastic radio's serial port (e.g. /dev/ttyACM0)")
    where.add_argument("--host", metavar="HOST[:4403]", help="a Meshtastic radio on the network (TCP, default port 4403)")
    p.add_argument("--channel-index", type=int, metavar="N",
                   help="the radio's private channel to use (default: 1, or where --new-channel/--join-channel put it)")
    ch = p.add_mutually_exclusive_group()
    ch.add_argument("--new-channel", action="store_true",
                    help="create a private channel (random name and 256-bit key) on the radio and print how to join it")
    ch.add_argument("--join-channel", metavar="NAME:PSK", help="install the private channel another bridge printed")
    p.add_argument("--hop-limit", type=int, metavar="N", help="Meshtastic hop limit 0..7 (default: the radio's setting)")
    p.add_argument("--gateway", metavar="NODEPORT",
                   help="also inject received frames into this Plexus node (host link) and forward what it stores")
    p.add_argument("--send-existing", action="store_true", help="on the first run, also send what the ledger already holds")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="send every frame N times (1..5, default 1): more airtime, fewer losses on a lossy mesh")
    p.add_argument("--min-gap", type=float, default=1.0, metavar="S", help="seconds between packets (default 1)")
    p.add_argument("--heartbeat", type=float, default=60.0, metavar="S",
                   help="seconds between heartbeats to the radio (default 60; the radio drops an idle client after 15 min)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: run until Ctrl-C)")
    p.add_argument("--verbose", action="store_true", help="show the meshtastic library's log")
    add_ledger(p)
    add_group(p)
    add_json(p)


def group_keys(group: str | None) -> list:
    """The group keys a bridge opens frames with: secrets of epochs a rekey has announced ("pending" in the
    secret file, receive only) first, then the current one, which seals what the bridge sends."""
    import json

    from plexwire.frame import GroupKey

    secret, epoch = groupcfg.load_secret(group)
    keys = []
    try:
        doc = json.loads(groupcfg.secret_path(groupcfg.group_path(group)).read_text())
        for p in doc.get("pending", []) if isinstance(doc, dict) else []:
            try:
                e = int(p["epoch"])
                if e != epoch:
                    keys.append(GroupKey(bytes.fromhex(p["secret"]), e))
            except (KeyError, TypeError, ValueError):
                continue
    except (OSError, ValueError):
        pass
    return keys + [GroupKey(secret, epoch)]


def _first_then(iface: Any, connect: Any) -> Any:
    """A connector that hands out an already open interface once, then opens new ones."""
    box = [iface]

    def conn() -> Any:
        if box[0] is not None:
            i, box[0] = box[0], None
            return i
        return connect()

    return conn


def run(args: argparse.Namespace) -> int:
    from plexus.client import HostLinkClient
    from plexus.commands.ledger import open_ledger

    if not args.verbose:
        logging.getLogger("meshtastic").setLevel(logging.CRITICAL)
    say = (lambda s: print(s, file=sys.stderr)) if args.json else print
    node = led = br = None
    try:
        with user_errors():
            try:
                if args.hop_limit is not None and not 0 <= args.hop_limit <= bridgemod.MAX_MT_HOPS:
                    raise bridgemod.BridgeError("--hop-limit is 0..%d (Meshtastic's limit)" % bridgemod.MAX_MT_HOPS)
                if not 1 <= args.repeat <= 5:
                    raise bridgemod.BridgeError("--repeat is 1..5")
                if args.channel_index is not None and not 0 <= args.channel_index <= 7:
                    raise bridgemod.BridgeError("--channel-index is 0..7")
                want = bridgemod.parse_channel(args.join_channel) if args.join_channel else None
                connect = bridgemod.connector(args.port, args.host)
            except bridgemod.BridgeError as e:
                raise UserError(str(e)) from None
            roster = groupcfg.load_roster(args.group)
            keys = group_keys(args.group)
            led = open_ledger(args, write=True)
            if args.gateway:
                node = HostLinkClient(args.gateway, timeout=3.0)
                gid = str(node.hello().get("group_id", ""))
                if gid and gid != roster.group_id.hex():
                    raise UserError("the node on %s is in group %s, not in %s (%s)"
                                    % (args.gateway, gid, roster.group_id.hex(), roster.name))
            index = args.channel_index if args.channel_index is not None else 1
            if args.new_channel or want is not None:
                try:
                    iface = connect()
                except bridgemod.BridgeError as e:
                    raise UserError(str(e), code=3) from None
                except Exception as e:
                    raise UserError("cannot reach the Meshtastic radio: %s" % (e or type(e).__name__), code=3) from None
                name, psk = want if want is not None else bridgemod.new_channel()
                try:
                    index = bridgemod.install_channel(iface, name, psk, args.channel_index)
                except BaseException:
                    bridgemod.close_settled(iface)
                    raise
                say("private channel %s is channel %d of the radio" % (name, index))
                if args.new_channel:
                    say("on the other bridges: plexus bridge meshtastic ... --join-channel %s"
                        % bridgemod.channel_spec(name, psk))
                connect = _first_then(iface, connect)
            br = bridgemod.MeshtasticBridge(connect, keys, ledger=led, channel_index=index,
                                            hop_limit=args.hop_limit, node=node, heartbeat_s=args.heartbeat,
                                            min_gap_s=args.min_gap, send_existing=args.send_existing, repeat=args.repeat,
                                            log=lambda s: print("bridge: " + s, file=sys.stderr))
            try:
                br.start()
            except bridgemod.BridgeError as e:
                raise UserError(str(e), code=3 if "cannot reach" in str(e) else 2) from None
            say("bridging Plexus over Meshtastic channel %d (%s), port %d, hop limit %d%s; Ctrl-C stops"
                % (index, br.channel_name, bridgemod.PORTNUM, br.hop_limit or 0,
                   ", gateway to node " + args.gateway if args.gateway else ""))
            sys.stdout.flush()
            t0 = time.monotonic()
            try:
                br.run(args.duration)
            except KeyboardInterrupt:
                pass
            summary = br.summary()
            summary["seconds"] = round(time.monotonic() - t0, 1)
    finally:
        if br is not None:
            br.close()
        if node is not None:
            node.close()
        if led is not None:
            led.close()
    if args.json:
        print_json(summary)
    else:
        print("bridge stopped after %.0f s: %d frames in (%d stored), %d frames out (%d packets), %d junk, %d reconnects"
              % (summary["seconds"], summary.get("frames_in", 0), summary.get("stored", 0), summary.get("frames_out", 0),
                 summary.get("tx_packets", 0), summary.get("junk_packets", 0) + summary.get("junk_frames", 0),
                 summary.get("reconnects", 0)))
    return 0


SUBCOMMANDS = {
    "meshtastic": (add_arguments, run, "carry Plexus frames over an existing Meshtastic radio (private channel, port 256)"),
}
