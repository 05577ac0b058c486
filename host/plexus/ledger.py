"""The laptop ledger: every signed record the group produced, verified, in an append-only hash chain.

Storage: one SQLite file (default ``$PLEXUS_HOME/ledger.sqlite``, i.e. ``~/.local/share/plexus/ledger.sqlite``;
``--ledger`` overrides), WAL journal, ``synchronous=FULL``. (``NORMAL`` would survive a killed process just as
well, since a committed transaction is in the WAL file once written, but not a power cut or OS crash before the
next checkpoint; it saves one fsync per commit, which measured nothing for a big ingest or a SYNC round, so the
ledger keeps FULL.)

Tables::

    records(n INTEGER PRIMARY KEY,     -- 1, 2, 3 ... in the order records were added (the chain order)
            id BLOB UNIQUE,            -- plexwire.msg.message_id of the inner message (16 bytes)
            kind, author, time,        -- copied from the message for queries (re-checked by verify)
            raw BLOB,                  -- the record exactly as signed and stored: plexwire.hostlink.pack_record
            hash BLOB,                 -- SHA256(hash of row n-1 || raw); row 0's hash is 32 zero bytes
            source BLOB, seq, received)-- node key it came from, that node's sequence number, unix time added
    cursors(node BLOB PRIMARY KEY, cursor, received, updated)   -- SYNC resume point per node key
    rejects(h BLOB PRIMARY KEY, raw, reason, source, received)  -- records that failed verification (not in chain)
    reports(id INTEGER PRIMARY KEY, kind, created, json)        -- drill reports and the like (add_report)
    meta(key PRIMARY KEY, value)                                -- schema version, group id, roster document
    published(id BLOB PRIMARY KEY, time, how)                   -- first export that published a decision (govview)

A record is verified before insert: plexwire decode (strict), a signed kind, author in the roster, Ed25519
signature over ``plexwire.msg.signing_bytes(group_id, ...)`` (via `cryptography`; when the system has
libsodium it is tried first as a fast path, and anything it does not accept is decided by `cryptography`,
so the verdicts are `cryptography`'s), and for a long bulletin the text against its signed digest; no other
kind may carry extra bytes. Records already present (same id) are skipped, so ingest is idempotent.

``records`` rows are never updated or deleted (triggers refuse it); ``verify`` re-checks every signature,
the chain links and the copied columns, and names the first bad row.

Big batches are checked in worker processes (`WorkerPool`: all started at once, one pipe each, chunks of
packed records in, verdicts out, in order) while this process extends the chain and inserts the previous chunk;
nothing is inserted before its verdict, and the chain is computed here, in order, in the one transaction.

A SYNC round commits its records and the node's cursor in one transaction, so killing the process at any
moment loses nothing and duplicates nothing: the next sync resumes from the last committed cursor.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import multiprocessing
import multiprocessing.connection as mpc
import os
import queue
import signal
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from plexwire import DecodeError, hostlink, msg
from plexwire import group as pgroup

from plexus import keys as keymod
from plexus.client import LinkError, NodeError, plexus_time

SCHEMA_VERSION = 1
GENESIS = bytes(32)
POOL_MIN_INGEST = 4000  # below this many records, verify in-process (a pool costs ~0.1 s to start)
POOL_MIN_VERIFY = 20000
CHUNK = 2000
VERIFY_RANGE = 25000


class LedgerError(ValueError):
    """A ledger problem the user can fix (wrong group, no roster, unreadable file)."""


def default_path() -> Path:
    return keymod.home() / "ledger.sqlite"


def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """The ledger file a `--ledger` option names: `path` (with ~ expanded), else default_path()."""
    return Path(path).expanduser() if path else default_path()


def existing_path(path: str | os.PathLike | None = None) -> Path:
    """The ledger file at `path` (default: default_path()); a LedgerError when there is none."""
    p = resolve_path(path)
    if not p.is_file():
        raise LedgerError("no ledger at %s (run `plexus ledger sync` first)" % p)
    return p


# ---------------------------------------------------------------- signature checking


def _load_sodium() -> Any:
    if os.environ.get("PLEXUS_NO_SODIUM"):
        return None
    name = ctypes.util.find_library("sodium")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        if lib.sodium_init() < 0:
            return None
        f = lib.crypto_sign_ed25519_verify_detached
        f.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p)
        f.restype = ctypes.c_int
        return f
    except (OSError, AttributeError):
        return None


_SODIUM: Any = None
_SODIUM_LOADED = False


def _sodium() -> Any:
    global _SODIUM, _SODIUM_LOADED
    if not _SODIUM_LOADED:
        _SODIUM = _load_sodium()
        _SODIUM_LOADED = True
    return _SODIUM


def backend() -> str:
    return "libsodium fast path + cryptography" if _sodium() else "cryptography"


class Checker:
    """Verifies packed records against a set of author keys and a group id."""

    def __init__(self, pubs: dict[bytes, bytes], group_id: bytes):
        self.group_id = bytes(group_id)
        self.pubs = {bytes(k): bytes(v) for k, v in pubs.items()}
        self._objs: dict[bytes, Ed25519PublicKey] = {}
        self._sod = _sodium()

    def _sig_ok(self, kid: bytes, pub: bytes, sig: bytes, data: bytes) -> bool:
        if self._sod is not None and self._sod(sig, data, len(data), pub) == 0:
            return True
        o = self._objs.get(kid)
        if o is None:
            try:
                o = Ed25519PublicKey.from_public_bytes(pub)
            except ValueError:
                return False
            self._objs[kid] = o
        try:
            o.verify(sig, data)
            return True
        except InvalidSignature:
            return False

    def check(self, raw: bytes) -> tuple[bytes, int, bytes, int] | str:
        """(id, kind, author, time) for a good record, else the reason it is refused."""
        try:
            inner, extra = hostlink.unpack_record(raw)
            m = msg.decode(inner)
        except DecodeError as e:
            return "malformed: %s" % e
        kind = m.kind
        if not msg.is_signed(kind):
            return "not a signed message (%s)" % m.name
        pub = self.pubs.get(m.author)
        if pub is None:
            return "unknown author %s" % m.author.hex()
        if not self._sig_ok(m.author, pub, m.sig, msg.signing_bytes(self.group_id, inner[: -msg.SIG_LEN])):
            return "bad signature"
        if kind == msg.BULLETIN_LONG:
            if not msg.check_long_text(m, extra):
                return "long bulletin text does not match its signed digest"
        elif kind == msg.REKEY:
            if not msg.check_long_text(m, extra):
                return "rekey wrap table does not match its signed digest"
        elif extra:
            return "unexpected bytes after the message"
        return msg.message_id(inner), kind, m.author, m.time

    def check_many(self, raws: list[bytes]) -> list:
        """check() over a list; the same verdicts, with the common case (a good record) inlined.

        Anything the inlined path does not accept outright goes through check(), which decides it; the inlined
        path makes exactly check()'s tests, in the same order, so it can only agree with it."""
        sod = self._sod
        if sod is None:
            return [self.check(r) for r in raws]
        out: list = []
        append = out.append
        slow = self.check
        pubs = self.pubs
        decode = msg.decode
        mid = msg.message_id
        text_ok = msg.check_long_text
        sig_prefix = msg.signing_bytes(self.group_id, b"")
        sig_len = msg.SIG_LEN
        long_kind = msg.BULLETIN_LONG
        for raw in raws:
            try:
                n = raw[0]
                inner = raw[1 : 1 + n]
                if n == 0 or len(inner) != n:
                    raise DecodeError("bad record length")
                m = decode(inner)
            except (DecodeError, IndexError):
                append(slow(raw))
                continue
            kind = m.kind
            pub = pubs.get(m.author)
            if not 0 < kind < 0x80 or pub is None:  # msg.is_signed(kind), author in the roster
                append(slow(raw))
                continue
            data = sig_prefix + inner[:-sig_len]
            if sod(m.sig, data, len(data), pub) != 0:
                append(slow(raw))  # cryptography decides
                continue
            if kind == long_kind:
                if not text_ok(m, raw[1 + n :]):
                    append(slow(raw))
                    continue
            elif len(raw) != n + 1:
                append(slow(raw))
                continue
            append((mid(inner), kind, m.author, m.time))
        return out


def roster_pubs(roster: pgroup.Roster) -> dict[bytes, bytes]:
    """Every key in the roster (members and nodes), revoked or not: history stays verifiable."""
    return {kid: e.pub for kid, e in roster.entries.items()}


# ---------------------------------------------------------------- worker processes


def _worker_main(conn: Any, pubs: dict[bytes, bytes], group_id: bytes) -> None:
    """A checking process: tasks arrive on `conn`, results go back on it in the same order.

    A reader thread drains the pipe into a queue, so the parent's sends never wait for a check to finish
    (and the parent, which reads results in its own order, can never deadlock against a full pipe).
    The process ends when the parent closes its end (or dies: kill -9 of the parent leaves no orphans)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    chk = Checker(pubs, group_id)
    inbox: queue.SimpleQueue = queue.SimpleQueue()

    def reader() -> None:
        try:
            while True:
                inbox.put(conn.recv())
        except (EOFError, OSError):
            pass
        inbox.put(None)

    threading.Thread(target=reader, daemon=True).start()
    while True:
        task = inbox.get()
        if task is None:
            return
        try:
            if task[0] == "chunk":
                res: tuple = ("ok", chk.check_many(task[1]))
            elif task[0] == "ping":
                res = ("ok", os.getpid())
            else:
                res = ("ok", _check_range(chk, task[1], task[2], task[3]))
        except Exception as e:  # reported to the parent, which raises it there
            res = ("error", "%s: %s" % (type(e).__name__, e))
        try:
            conn.send(res)
        except OSError:
            return


class WorkerPool:
    """N checking processes, one pipe each: no manager thread, no pickled callables, results in submit order.

    submit() gives each task to the worker with the fewest outstanding ones; collect() waits for any result.
    """

    def __init__(self, n: int, pubs: dict[bytes, bytes], group_id: bytes):
        ctx = _mp_context()
        self._conns: list = []
        self._procs: list = []
        self._tickets: list[deque] = []
        self._next = 0
        try:
            for _ in range(max(1, n)):
                a, b = ctx.Pipe()
                p = ctx.Process(target=_worker_main, args=(b, pubs, group_id), daemon=True)
                p.start()
                b.close()
                self._conns.append(a)
                self._procs.append(p)
                self._tickets.append(deque())
        except BaseException:
            self.close()
            raise

    @property
    def size(self) -> int:
        return len(self._conns)

    def outstanding(self) -> int:
        return sum(len(t) for t in self._tickets)

    def submit(self, task: tuple) -> int:
        i = min(range(len(self._conns)), key=lambda k: len(self._tickets[k]))
        t = self._next
        self._next += 1
        try:
            self._conns[i].send(task)
        except OSError:
            raise LedgerError("a signature-checking process died") from None
        self._tickets[i].append(t)
        return t

    def collect(self) -> list[tuple[int, Any]]:
        """Wait for at least one result; (ticket, result) for every one ready."""
        busy = [c for c, t in zip(self._conns, self._tickets) if t]
        if not busy:
            return []
        out = []
        for ready in mpc.wait(busy):
            i = self._conns.index(ready)
            c = self._conns[i]
            try:
                status, val = c.recv()
            except (EOFError, OSError):
                raise LedgerError("a signature-checking process died") from None
            t = self._tickets[i].popleft()
            if status != "ok":
                raise LedgerError("signature-checking process failed: %s" % val)
            out.append((t, val))
        return out

    def ping(self) -> list[int]:
        """Wait until every worker is up (their pids): lets a caller keep start-up out of a measurement."""
        for _ in range(len(self._conns)):
            self.submit(("ping",))  # idle workers: one each
        pids = []
        while self.outstanding():
            pids += [v for _, v in self.collect()]
        return pids

    def drain(self) -> None:
        while self.outstanding():
            self.collect()

    def close(self) -> None:
        for c in self._conns:
            c.close()
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()
        self._conns, self._procs, self._tickets = [], [], []


def _check_range(chk: Checker, path: str, a: int, b: int) -> tuple[int, tuple[int, str] | None]:
    """Check rows a..b (chain links use row a-1's stored hash). Returns (rows checked, first failure)."""
    con = sqlite3.connect(path, timeout=60)
    try:
        if a <= 1:
            prev = GENESIS
        else:
            r = con.execute("SELECT hash FROM records WHERE n = ?", (a - 1,)).fetchone()
            if r is None:
                return 0, (a - 1, "row is missing")
            prev = bytes(r[0])
        expect = a
        count = 0
        cur = con.execute("SELECT n, id, kind, author, time, raw, hash FROM records WHERE n BETWEEN ? AND ? ORDER BY n",
                          (a, b))
        sha = hashlib.sha256
        for n, rid, kind, author, t, raw, h in cur:
            if n != expect:
                return count, (expect, "row is missing")
            raw = bytes(raw)
            if sha(prev + raw).digest() != h:
                return count, (n, "hash chain broken (row changed, or an earlier row's hash was rewritten)")
            res = chk.check(raw)
            if isinstance(res, str):
                return count, (n, res)
            if (res[0], res[1], res[2], res[3]) != (bytes(rid), kind, bytes(author), t):
                return count, (n, "stored id/kind/author/time do not match the signed record")
            prev = bytes(h)
            expect += 1
            count += 1
        if expect != b + 1:
            return count, (expect, "row is missing")
        return count, None
    finally:
        con.close()


def _mp_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


# ---------------------------------------------------------------- results


class IngestResult:
    def __init__(self) -> None:
        self.inserted = 0
        self.duplicates = 0
        self.rejected: list[tuple[int, str]] = []  # (index in the input, reason)
        self.head = 0

    def as_dict(self) -> dict:
        return {"inserted": self.inserted, "duplicates": self.duplicates,
                "rejected": [{"index": i, "reason": r} for i, r in self.rejected], "head": self.head}

    def __repr__(self) -> str:
        return "IngestResult(inserted=%d, duplicates=%d, rejected=%d)" % (self.inserted, self.duplicates, len(self.rejected))


class VerifyResult:
    def __init__(self, ok: bool, count: int, first_bad: int | None, reason: str | None, head_hash: bytes):
        self.ok = ok
        self.count = count
        self.first_bad = first_bad
        self.reason = reason
        self.head_hash = head_hash

    def as_dict(self) -> dict:
        return {"ok": self.ok, "records": self.count, "first_bad": self.first_bad, "reason": self.reason,
                "head_hash": self.head_hash.hex()}


class Entry:
    """One ledger row, decoded."""

    def __init__(self, n: int, rid: bytes, raw: bytes, received: int | None = None, source: bytes | None = None):
        self.n = n
        self.id = rid
        self.raw = raw
        inner, self.extra = hostlink.unpack_record(raw)
        self.msg = msg.decode(inner)
        self.kind = self.msg.kind
        self.author = self.msg.author
        self.time = self.msg.time
        self.received = received
        self.source = source

    @property
    def kind_name(self) -> str:
        return self.msg.name

    @property
    def text(self) -> str | None:
        """The human text of the record, when it has one (long bulletins: the full text)."""
        if self.kind == msg.BULLETIN_LONG:
            return self.extra.decode("utf-8", "replace")
        f = self.msg.f
        for k in ("text", "reason", "note"):
            if k in f and isinstance(f[k], str):
                return f[k]
        return None


# ---------------------------------------------------------------- the ledger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records(
    n INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    author BLOB NOT NULL,
    time INTEGER NOT NULL,
    raw BLOB NOT NULL,
    hash BLOB NOT NULL,
    source BLOB,
    seq INTEGER,
    received INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursors(node BLOB PRIMARY KEY, cursor INTEGER NOT NULL, received INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejects(h BLOB PRIMARY KEY, raw BLOB NOT NULL, reason TEXT NOT NULL, source BLOB,
    received INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS published(id BLOB PRIMARY KEY, time INTEGER NOT NULL, how TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, created INTEGER NOT NULL, json TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
"""

_INSERT = "INSERT OR IGNORE INTO records(n, id, kind, author, time, raw, hash, source, seq, received) VALUES (?,?,?,?,?,?,?,?,?,?)"


def _doc_of(roster: pgroup.Roster) -> dict:
    """A roster document equivalent to a Roster object (same group id: genesis uses the quorum k)."""

    def ent(e: pgroup.Entry) -> dict:
        d = {"name": e.name, "key": e.pub.hex()}
        if e.contact:
            d["contact"] = e.contact
        if e.holder:
            d["holder"] = e.holder
        return d

    from plexus.groupcfg import added_by

    founding = [e for e in roster.entries.values() if added_by(e) is None]
    doc = {"v": 1, "name": roster.name, "members": [ent(e) for e in founding if e.role == pgroup.ROLE_MEMBER],
           "nodes": [ent(e) for e in founding if e.role == pgroup.ROLE_NODE], "quorum": {"k": roster.quorum},
           "group_id": roster.group_id.hex()}
    # entries an adopted ROSTER added later (plexus.rosterstate): kept apart, they are not part of the group id
    later = [dict(ent(e), role=e.role, roster=added_by(e)) for e in roster.entries.values() if added_by(e) is not None]
    if later:
        doc["added"] = later
    return doc


def _roster_of(doc: dict) -> pgroup.Roster:
    from plexus.groupcfg import roster_of

    return roster_of(doc)


class Ledger:
    def __init__(self, path: str | os.PathLike | None = None, roster: pgroup.Roster | dict | None = None,
                 workers: int | None = None, create: bool = True):
        """Open the ledger at `path` (default: $PLEXUS_HOME/ledger.sqlite).

        With create=False (commands that only read it) a missing file is a LedgerError and nothing is created:
        neither the file nor its directory."""
        self.path = resolve_path(path)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            existing_path(self.path)
        try:
            if create:
                self.con = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
            else:  # mode=rw: sqlite itself never creates the file either
                self.con = sqlite3.connect(self.path.resolve().as_uri() + "?mode=rw", isolation_level=None, timeout=60,
                                           uri=True)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=FULL")
            self.con.execute("PRAGMA cache_size=-65536")  # 64 MiB: keeps the id index hot during big ingests
            self.con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise LedgerError("%s is not a usable ledger: %s" % (self.path, e)) from None
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: WorkerPool | None = None
        if self._meta("version") is None:
            self._set_meta("version", str(SCHEMA_VERSION))
        self.roster: pgroup.Roster | None = None
        if roster is not None:
            self.set_roster(roster)
        else:
            doc = self._meta("roster")
            if doc is not None:
                self.roster = _roster_of(json.loads(doc))
        self._checker: Checker | None = None

    # ---- housekeeping

    def close(self) -> None:
        self._close_pool()
        self.con.close()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _meta(self, key: str) -> str | None:
        r = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return r[0] if r else None

    def _set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def set_roster(self, roster: pgroup.Roster | dict) -> None:
        if isinstance(roster, dict):
            doc = roster
            roster = _roster_of(doc)
        else:
            doc = _doc_of(roster)
        gid = roster.group_id.hex()
        have = self._meta("group_id")
        if have is not None and have != gid:
            raise LedgerError("%s belongs to group %s, not %s (%s)" % (self.path, have, gid, roster.name))
        if have is None:
            self._set_meta("group_id", gid)
        self._set_meta("roster", json.dumps(doc, sort_keys=True))
        self.roster = roster
        self._checker = None
        self._close_pool()

    def _need_roster(self) -> pgroup.Roster:
        if self.roster is None:
            raise LedgerError("the ledger has no roster yet: give it the group (plexus group init / --group)")
        return self.roster

    def checker(self) -> Checker:
        if self._checker is None:
            r = self._need_roster()
            self._checker = Checker(roster_pubs(r), r.group_id)
        return self._checker

    def pool(self) -> WorkerPool:
        """The checking processes (started on first use, all at once; they live until close())."""
        if self._pool is None:
            r = self._need_roster()
            self._pool = WorkerPool(self.workers, roster_pubs(r), r.group_id)
        return self._pool

    def _run(self, tasks: list[tuple], window: int) -> Iterable[tuple[int, Any]]:
        """(index, result) for every task, in task order, at most `window` in the workers. If the caller stops early
        the in-flight results are drained; if anything fails the pool is closed (the next use starts a new one)."""
        pool = self.pool()
        done: dict[int, Any] = {}
        ticket_of: dict[int, int] = {}
        nxt = 0
        ahead = 4 * window  # results held back for order: a slow task does not leave the other workers idle
        try:
            for k in range(len(tasks)):
                while k not in done:
                    while nxt < len(tasks) and pool.outstanding() < window and nxt - k < ahead:
                        ticket_of[pool.submit(tasks[nxt])] = nxt
                        nxt += 1
                    for t, r in pool.collect():
                        done[ticket_of.pop(t)] = r
                yield k, done.pop(k)
        except GeneratorExit:  # the caller stopped early: take in the results still in flight
            try:
                pool.drain()
            except BaseException:
                self._close_pool()
            raise
        except BaseException:  # a worker died or failed, or Ctrl-C: start afresh next time
            self._close_pool()
            raise

    @property
    def group_id(self) -> bytes | None:
        g = self._meta("group_id")
        return bytes.fromhex(g) if g else None

    def count(self) -> int:
        return self.con.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def head(self) -> tuple[int, bytes]:
        r = self.con.execute("SELECT n, hash FROM records ORDER BY n DESC LIMIT 1").fetchone()
        return (r[0], bytes(r[1])) if r else (0, GENESIS)

    def has(self, rid: bytes) -> bool:
        return self.con.execute("SELECT 1 FROM records WHERE id = ?", (bytes(rid),)).fetchone() is not None

    def cursor(self, node_key: bytes) -> int:
        r = self.con.execute("SELECT cursor FROM cursors WHERE node = ?", (bytes(node_key),)).fetchone()
        return r[0] if r else 0

    def received_from(self, node_key: bytes) -> int:
        """How many records SYNC has brought from this node so far (new, duplicate or refused)."""
        r = self.con.execute("SELECT received FROM cursors WHERE node = ?", (bytes(node_key),)).fetchone()
        return r[0] if r else 0

    def cursors(self) -> list[dict]:
        return [{"node": bytes(n).hex(), "cursor": c, "received": k, "updated": u}
                for n, c, k, u in self.con.execute("SELECT node, cursor, received, updated FROM cursors")]

    # ---- ingest

    def _verified(self, raws: list[bytes], use_pool: bool) -> Iterable[tuple[int, list]]:
        """Yield (offset, results) per chunk, in input order."""
        if not use_pool:
            chk = self.checker()
            for off in range(0, len(raws), CHUNK):
                yield off, chk.check_many(raws[off : off + CHUNK])
            return
        offs = list(range(0, len(raws), CHUNK))
        tasks = [("chunk", raws[o : o + CHUNK]) for o in offs]
        for k, results in self._run(tasks, 2 * self.workers + 2):
            yield offs[k], results

    def ingest(self, records: Iterable[bytes | tuple[bytes, bytes]], source: bytes | None = None,
               cursor: int | None = None, seqs: list[int] | None = None, use_pool: bool | None = None,
               progress: Callable[[int], None] | None = None) -> IngestResult:
        """Verify and append records (packed records, or (inner, extra) pairs) in one transaction.

        Already-present records are counted as duplicates; refused ones go to the `rejects` table. When
        `source` and `cursor` are given, that node's SYNC cursor is stored in the same transaction.
        """
        raws = [hostlink.pack_record(r[0], r[1]) if isinstance(r, tuple) else bytes(r) for r in records]
        if seqs is not None and len(seqs) != len(raws):
            raise ValueError("seqs must match records")
        if use_pool is None:
            use_pool = self.workers > 1 and len(raws) >= POOL_MIN_INGEST
        self._need_roster()
        res = IngestResult()
        now = int(time.time())
        src = bytes(source) if source is not None else None
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            n, prev = self.head()
            sha = hashlib.sha256
            for off, results in self._verified(raws, use_pool):
                rows = []
                rejects = []
                for i, r in enumerate(results):
                    j = off + i
                    if isinstance(r, str):
                        res.rejected.append((j, r))
                        rejects.append((sha(raws[j]).digest(), raws[j], r, src, now))
                        continue
                    rows.append((r, j))
                if rejects:
                    con.executemany("INSERT OR IGNORE INTO rejects(h, raw, reason, source, received) VALUES (?,?,?,?,?)",
                                    rejects)
                if rows:
                    n, prev = self._append(rows, raws, seqs, src, now, n, prev, res, sha)
                if progress is not None:
                    progress(len(results))
            if src is not None and cursor is not None:
                con.execute(
                    "INSERT INTO cursors(node, cursor, received, updated) VALUES (?,?,?,?) "
                    "ON CONFLICT(node) DO UPDATE SET cursor = excluded.cursor, received = received + excluded.received, "
                    "updated = excluded.updated", (src, cursor, len(raws), now))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        res.head = n
        return res

    def _append(self, rows: list, raws: list[bytes], seqs: list[int] | None, src: bytes | None, now: int, n: int,
                prev: bytes, res: IngestResult, sha: Callable) -> tuple[int, bytes]:
        con = self.con

        def build(sel: list) -> tuple[list, int, bytes]:
            out = []
            nn, pv = n, prev
            for (rid, kind, author, t), j in sel:
                nn += 1
                pv = sha(pv + raws[j]).digest()
                out.append((nn, rid, kind, author, t, raws[j], pv, src, seqs[j] if seqs is not None else None, now))
            return out, nn, pv

        # fast path: nothing in this chunk is a duplicate
        batch, n1, p1 = build(rows)
        con.execute("SAVEPOINT chunk")
        before = con.total_changes
        con.executemany(_INSERT, batch)
        if con.total_changes - before == len(batch):
            con.execute("RELEASE chunk")
            res.inserted += len(batch)
            return n1, p1
        con.execute("ROLLBACK TO chunk")
        con.execute("RELEASE chunk")
        # slow path: drop records already in the ledger (or repeated within this chunk), rebuild the chain
        ids = [r[0][0] for r in rows]
        have: set[bytes] = set()
        for k in range(0, len(ids), 500):
            part = ids[k : k + 500]
            q = "SELECT id FROM records WHERE id IN (%s)" % ",".join("?" * len(part))
            have.update(bytes(x[0]) for x in con.execute(q, part))
        keep = []
        for r in rows:
            rid = r[0][0]
            if rid in have:
                res.duplicates += 1
                continue
            have.add(rid)
            keep.append(r)
        batch, n1, p1 = build(keep)
        con.executemany(_INSERT.replace("OR IGNORE ", ""), batch)
        res.inserted += len(batch)
        return n1, p1

    # ---- reading

    def entries(self, limit: int | None = None, kinds: Iterable[int] | None = None, newest_first: bool = False,
                after: int = 0) -> list[Entry]:
        q = "SELECT n, id, raw, received, source FROM records WHERE n > ?"
        args: list[Any] = [after]
        if kinds is not None:
            ks = list(kinds)
            q += " AND kind IN (%s)" % ",".join("?" * len(ks))
            args += ks
        q += " ORDER BY n DESC" if newest_first else " ORDER BY n"
        if limit is not None:
            q += " LIMIT ?"
            args.append(limit)
        out = []
        for n, rid, raw, rec, src in self.con.execute(q, args):
            out.append(Entry(n, bytes(rid), bytes(raw), rec, bytes(src) if src is not None else None))
        return out

    def find(self, id_prefix_hex: str) -> list[Entry]:
        """Records whose id starts with the given hex prefix."""
        p = id_prefix_hex.lower()
        try:
            lo = bytes.fromhex(p if len(p) % 2 == 0 else p + "0")
        except ValueError:
            raise LedgerError("%r is not a hex message id" % id_prefix_hex) from None
        hi = bytes.fromhex((p if len(p) % 2 == 0 else p + "f") + "ff" * (16 - (len(p) + 1) // 2))
        rows = self.con.execute("SELECT n, id, raw, received, source FROM records WHERE id >= ? AND id <= ? LIMIT 10",
                                (lo, hi)).fetchall()
        return [Entry(n, bytes(i), bytes(r), rc, s) for n, i, r, rc, s in rows if bytes(i).hex().startswith(p)]

    def retry_rejects(self) -> IngestResult:
        """Re-check refused records (after the roster changed, say); those that now pass join the chain."""
        rows = self.con.execute("SELECT h, raw, source FROM rejects ORDER BY received, h").fetchall()
        res = IngestResult()
        if not rows:
            return res
        chk = self.checker()
        good = [(bytes(h), bytes(raw), src) for h, raw, src in rows if not isinstance(chk.check(bytes(raw)), str)]
        if good:
            res = self.ingest([raw for _, raw, _ in good], use_pool=False)
            self.con.executemany("DELETE FROM rejects WHERE h = ?", [(h,) for h, _, _ in good])
        return res

    def rejects(self) -> list[dict]:
        return [{"reason": r, "raw": bytes(raw).hex(), "source": bytes(s).hex() if s else None, "received": t}
                for raw, r, s, t in self.con.execute("SELECT raw, reason, source, received FROM rejects ORDER BY received")]

    # ---- reports (drills and the like)

    def add_report(self, kind: str, data: dict, created: int | None = None) -> int:
        js = json.dumps(data, sort_keys=True)
        cur = self.con.execute("INSERT INTO reports(kind, created, json) VALUES (?,?,?)",
                               (str(kind), int(created if created is not None else time.time()), js))
        return int(cur.lastrowid or 0)

    def reports(self, kind: str | None = None) -> list[dict]:
        q = "SELECT id, kind, created, json FROM reports"
        args: tuple = ()
        if kind is not None:
            q += " WHERE kind = ?"
            args = (kind,)
        return [{"id": i, "kind": k, "created": c, "data": json.loads(j)} for i, k, c, j in self.con.execute(q + " ORDER BY id", args)]

    # ---- publication of decisions (plexus.govview)

    def mark_published(self, ids: Iterable[bytes], t: int, how: str) -> int:
        """Record that these decisions were published at plexus time t; only the first publication is kept."""
        before = self.con.total_changes
        self.con.executemany("INSERT OR IGNORE INTO published(id, time, how) VALUES (?,?,?)",
                             [(bytes(i), int(t), str(how)) for i in ids])
        return self.con.total_changes - before

    def published(self) -> dict[bytes, tuple[int, str]]:
        return {bytes(i): (t, h) for i, t, h in self.con.execute("SELECT id, time, how FROM published")}

    # ---- verification

    def verify(self, workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
        """Re-check every row: signature, copied columns, chain link, no gaps. Names the first bad row."""
        chk = self.checker()
        last, head_hash = self.head()
        total = last
        nw = self.workers if workers is None else workers
        path = str(self.path)
        fails: list[tuple[int, str]] = []
        done = 0
        ranges = [(a, min(a + VERIFY_RANGE - 1, total)) for a in range(1, total + 1, VERIFY_RANGE)]
        if nw > 1 and total >= POOL_MIN_VERIFY:
            tasks = [("range", path, a, b) for a, b in ranges]
            for _, (c, f) in self._run(tasks, 2 * self.pool().size):
                done += c
                if f is not None:
                    fails.append(f)
                if progress is not None:
                    progress(done, total)
        else:
            for a, b in ranges:
                c, f = _check_range(chk, path, a, b)
                done += c
                if f is not None:
                    fails.append(f)
                    break
                if progress is not None:
                    progress(done, total)
        cnt = self.count()
        if not fails and cnt != total:
            fails.append((total, "row count %d does not match the last row number %d" % (cnt, total)))
        if fails:
            n, reason = min(fails)
            return VerifyResult(False, total, n, reason, head_hash)
        return VerifyResult(True, total, None, None, head_hash)


# ---------------------------------------------------------------- SYNC from a node


class SyncResult:
    def __init__(self, node_key: bytes, name: str):
        self.node_key = node_key
        self.name = name
        self.fetched = 0
        self.inserted = 0
        self.duplicates = 0
        self.rejected: list[str] = []
        self.cursor = 0
        self.rounds = 0

    def as_dict(self) -> dict:
        return {"node": self.name, "node_key": self.node_key.hex(), "fetched": self.fetched, "inserted": self.inserted,
                "duplicates": self.duplicates, "rejected": self.rejected, "cursor": self.cursor, "rounds": self.rounds}


def sync(client: Any, ledger: Ledger, limit: int = 64,
         progress: Callable[[str, int, int | None], None] | None = None, set_time: bool = True) -> SyncResult:
    """Pull every record the node has that this ledger has not, resuming from the node's stored cursor.

    progress(event, done, total): event "start" then "records" after each round; done counts every record this
    ledger has received from the node, total is the node's stored count (if STATUS tells it).
    With set_time the node's clock is set from the laptop's first (CONFIG time, SPEC s.6.2).
    """
    hello = client.hello()
    try:
        node_key = bytes.fromhex(hello["node_key"])
        gid = bytes.fromhex(hello.get("group_id", ""))
    except (KeyError, ValueError, TypeError):
        raise LedgerError("the node's HELLO lacks node_key/group_id") from None
    roster = ledger._need_roster()
    if gid and gid != roster.group_id:
        raise LedgerError("node %s is in group %s, this ledger is for %s (%s)"
                          % (hello.get("name", "?"), gid.hex(), roster.group_id.hex(), roster.name))
    out = SyncResult(node_key, str(hello.get("name", "")))
    if set_time:
        try:
            client.config(time=plexus_time())
        except (NodeError, LinkError):
            pass  # an old clock is not a reason to stop a sync
    ledger.retry_rejects()
    cur = ledger.cursor(node_key)
    total = None
    try:
        total = int(client.status().get("stored"))
    except Exception:
        total = None
    base = ledger.received_from(node_key)
    if progress is not None:
        progress("start", base, total)
    while True:
        nxt, more, recs = client.sync(cur, limit)
        out.rounds += 1
        good = []
        seqs = []
        last = cur
        for seq, rec in recs:
            if seq <= last:
                raise LedgerError("node sent records out of order (seq %d after %d)" % (seq, last))
            last = seq
            good.append(rec)
            seqs.append(seq)
        if recs and nxt < last:
            nxt = last
        if nxt < cur:
            raise LedgerError("node moved the cursor backwards (%d -> %d)" % (cur, nxt))
        r = ledger.ingest(good, source=node_key, cursor=nxt, seqs=seqs, use_pool=False)
        out.fetched += len(recs)
        out.inserted += r.inserted
        out.duplicates += r.duplicates
        out.rejected += [reason for _, reason in r.rejected]
        cur = nxt
        if progress is not None:
            progress("records", base + out.fetched, total)
        if not more or not recs:
            break
    out.cursor = cur
    return out
