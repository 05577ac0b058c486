"""A fake node for host-tool tests: speaks plexwire.hostlink on a pty (os.openpty), in a thread.

The laptop side opens ``node.port`` (the pty's slave path) with real pyserial. The fake keeps its own
slave descriptor open, so the master never sees a hangup when a client process dies (the kill -9 test).

Served ops: HELLO, STATUS, SYNC (seq-ordered, resumable, <= 64 records and MAX_BODY per reply, like the
node core), POST (strict: decode, roster author, signature, long-text digest; duplicates refused),
CONFIG, CONFIRM, TALLY (canned), and `push_event` / `log_line` for unsolicited output.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
import tty

from plexus import ledger as ledgermod
from plexwire import hostlink, msg


class FakeNode:
    def __init__(self, roster, node_pub=b"\x07" * 32, records=(), name="fake-1", reply_delay=0.0, max_limit=64,
                 group_id=None):
        self.roster = roster
        self.node_pub = bytes(node_pub)
        self.name = name
        self.group_id = roster.group_id if group_id is None else group_id
        self.reply_delay = reply_delay
        self.max_limit = max_limit
        self.store: list[tuple[int, bytes]] = []
        self.ids: set[bytes] = set()
        self.requests: list[tuple[int, int]] = []  # (op, req_id) as received
        self.mute = 0  # ignore this many further requests (to exercise client retries)
        self.config: dict = {}  # what CONFIG requests set
        self.checker = ledgermod.Checker(ledgermod.roster_pubs(roster), roster.group_id)
        for r in records:
            self.add(r)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # ---- store

    def add(self, record: bytes) -> int:
        inner, _ = hostlink.unpack_record(record)
        seq = self.store[-1][0] + 1 if self.store else 1
        self.store.append((seq, bytes(record)))
        self.ids.add(msg.message_id(inner))
        return seq

    # ---- output

    def _write(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view and not self._stop.is_set():
                try:
                    k = os.write(self.master, view)
                    view = view[k:]
                except BlockingIOError:
                    select.select([], [self.master], [], 0.05)
                except OSError:
                    return

    def push_event(self, ev: dict) -> None:
        self._write(hostlink.encode(hostlink.EVENT, 0, json.dumps(ev).encode()))

    def log_line(self, text: str) -> None:
        self._write(text.encode() + b"\r\n")

    # ---- serving

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _serve(self) -> None:
        reader = hostlink.LineReader()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                time.sleep(0.01)
                continue
            for typ, item in reader.feed(data):
                if typ != "frame":
                    continue
                op, req, body = item
                self.requests.append((op, req))
                if self.mute > 0:
                    self.mute -= 1
                    continue
                try:
                    rop, rbody = self.handle(op, body)
                except (ValueError, KeyError) as e:
                    rop, rbody = hostlink.ERROR, json.dumps({"error": str(e) or "bad request"}).encode()
                if self.reply_delay:
                    time.sleep(self.reply_delay)
                self._write(hostlink.encode(rop, req, rbody))

    def handle(self, op: int, body: bytes) -> tuple[int, bytes]:
        R = hostlink.REPLY
        if op == hostlink.HELLO:
            return op | R, json.dumps({"name": self.name, "node_key": self.node_pub.hex(),
                                       "key_id": msg.key_id(self.node_pub).hex(), "group_id": self.group_id.hex(),
                                       "version": "0.1.0", "protocol": 1, "time": 0}).encode()
        if op == hostlink.STATUS:
            return op | R, json.dumps({"name": self.name, "time": 0, "stored": len(self.store), "bytes_used": 0,
                                       "neighbours": [], "drops": {}, "rx": 0, "tx": 0, "airtime_us": 0}).encode()
        if op == hostlink.SYNC:
            cursor, limit = hostlink.unpack_sync_request(body)
            limit = max(1, min(limit, self.max_limit))
            out = []
            size = 5
            nxt = cursor
            more = False
            for seq, rec in self.store:
                if seq <= cursor:
                    continue
                if len(out) >= limit or size + 6 + len(rec) > hostlink.MAX_BODY:
                    more = True
                    break
                out.append((seq, rec))
                size += 6 + len(rec)
                nxt = seq
            return op | R, hostlink.pack_sync_reply(nxt, more, out)
        if op == hostlink.POST:
            res = self.checker.check(body)
            if isinstance(res, str):
                raise ValueError(res)
            if res[0] in self.ids:
                raise ValueError("duplicate")
            self.add(body)
            return op | R, json.dumps({"id": res[0].hex(), "accepted": True}).encode()
        if op == hostlink.CONFIG:
            self.config.update(json.loads(body) if body else {})
            return op | R, json.dumps({"name": self.name, "time": self.config.get("time", 0)}).encode()
        if op == hostlink.CONFIRM:
            return op | R, b'{"ok": true}'
        if op == hostlink.TALLY:
            return op | R, json.dumps({"alert": body.hex(), "receipts": []}).encode()
        raise ValueError("unknown op")


# ---- test data: a group and signed records


def make_group(n_members=3, quorum=None, name="Riverside Tenants"):
    """(doc, roster, {name: plexus.keys.Key}) with deterministic member keys."""
    from plexus.keys import Key
    from plexwire import group as pgroup

    names = ["ana", "ben", "chi", "dee", "eli", "fay", "gus", "hal"][:n_members]
    ks = {n: Key(n, bytes([i + 1]) * 32) for i, n in enumerate(names)}
    node = Key("node-a", b"\x55" * 32)
    doc = pgroup.make_doc(name, [k.roster_entry() for k in ks.values()], [{"name": "node-a", "key": node.pub_hex}],
                          quorum_k=quorum, fraction=None if quorum else (1, 2))
    ks["node-a"] = node
    return doc, pgroup.Roster(doc), ks


def bulletin(key, group_id, text, t=1000, decision=False):
    b = text.encode()
    flags = msg.BULLETIN_DECISION if decision else 0
    if len(b) <= 154:
        return hostlink.pack_record(key.sign_message(group_id, msg.BULLETIN, {"flags": flags, "text": text}, t))
    _, f = msg.split_text(b)
    f["flags"] = flags
    return hostlink.pack_record(key.sign_message(group_id, msg.BULLETIN_LONG, f, t), b)


def consent(key, group_id, target, stance=msg.STANCE_CONSENT, t=1000):
    return hostlink.pack_record(key.sign_message(group_id, msg.CONSENT, {"target": target, "stance": stance}, t))


def record_id(rec):
    return msg.message_id(hostlink.unpack_record(rec)[0])


def many_bulletins(keys, group_id, n, t0=1000):
    authors = [k for name, k in sorted(keys.items()) if name != "node-a"]
    return [bulletin(authors[i % len(authors)], group_id, "bulletin number %d: meet at the hall" % i, t0 + i)
            for i in range(n)]


# ---- the CLI entries these tools add (until the lead registers them in plexus.cli.COMMANDS)

MY_COMMANDS = {
    "keys": ("plexus.commands.keys", "member keys: new, list, export"),
    "group": ("plexus.commands.group", "the group: init, show"),
    "devices": ("plexus.commands.devices", "list serial ports that may be nodes"),
    "post": ("plexus.commands.post", "sign a bulletin and post it to a node"),
    "consent": ("plexus.commands.consent", "sign a consent to a proposal and post it to a node"),
    "ledger": ("plexus.commands.ledger", "the ledger: sync, show, verify, export"),
}


def run_cli(argv, monkeypatch, capsys):
    """Run `plexus ARGV` in-process with these entries registered; returns (exit code, stdout, stderr)."""
    from plexus import cli

    for k, v in MY_COMMANDS.items():
        if k not in cli.COMMANDS:
            monkeypatch.setitem(cli.COMMANDS, k, v)
    capsys.readouterr()
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse usage errors and --help
        rc = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err
