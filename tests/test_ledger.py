"""The ledger: verification before insert, append-only hash chain, verify naming the first bad row,
resumable idempotent sync from a fake node on a pty (including kill -9 at random moments), export."""

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakenode import FakeNode, bulletin, consent, make_group, many_bulletins, record_id, run_cli
from plexus import export, ledger
from plexus.client import HostLinkClient
from plexus.keys import Key
from plexwire import group as pgroup
from plexwire import hostlink, msg

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def group():
    return make_group(4, quorum=3)


@pytest.fixture
def led(tmp_path, group):
    with ledger.Ledger(tmp_path / "l.sqlite", group[1], workers=1) as L:
        yield L


def chain(raws):
    h = bytes(32)
    for r in raws:
        h = hashlib.sha256(h + r).digest()
    return h


def test_ingest_builds_the_hash_chain(led, group):
    doc, roster, ks = group
    recs = many_bulletins(ks, roster.group_id, 25)
    res = led.ingest(recs)
    assert (res.inserted, res.duplicates, res.rejected) == (25, 0, [])
    n, head = led.head()
    assert n == 25 and head == chain(recs)
    rows = led.con.execute("SELECT n, id, raw FROM records ORDER BY n").fetchall()
    assert [bytes(r[2]) for r in rows] == recs and [r[0] for r in rows] == list(range(1, 26))
    assert [bytes(r[1]) for r in rows] == [record_id(r) for r in recs]
    assert led.verify().ok


def test_ingest_is_idempotent(led, group):
    doc, roster, ks = group
    recs = many_bulletins(ks, roster.group_id, 30)
    led.ingest(recs[:10])
    res = led.ingest(recs[5:] + recs[5:8])  # overlap with the ledger and within the batch
    assert (res.inserted, res.duplicates) == (20, 8)
    assert led.count() == 30 and led.head()[1] == chain(recs)
    res = led.ingest(recs)
    assert (res.inserted, res.duplicates) == (0, 30)
    assert led.verify().ok


def _with_extra(rec, extra):
    inner, _ = hostlink.unpack_record(rec)
    return hostlink.pack_record(inner, extra)


def test_records_are_verified_before_insert(led, group):
    doc, roster, ks = group
    gid = roster.group_id
    good = bulletin(ks["ana"], gid, "fine")
    bad_sig = bytearray(bulletin(ks["ben"], gid, "forged")); bad_sig[20] ^= 0x40  # noqa: E702
    stranger = bulletin(Key("zed", b"\x77" * 32), gid, "not a member")
    other_group = bulletin(ks["ana"], b"\x01" * 8, "signed for another group")
    long_text = ("Minutes of the assembly. " * 20).encode()
    long_ok = bulletin(ks["chi"], gid, long_text.decode())
    long_bad = _with_extra(long_ok, long_text[:-1] + b"?")
    short_extra = _with_extra(good, b"smuggled")
    frag = hostlink.pack_record(msg.fragment(b"\x00" * 16, 0, b"data"))
    garbage = b"\x05\x01\x02\x03\x04\x05"
    node_receipt = hostlink.pack_record(ks["node-a"].sign_message(
        gid, msg.RECEIPT, {"alert": b"\x01" * 16, "state": 1, "hops": 2, "via": 7, "delay": 3}, 10))
    batch = [good, bytes(bad_sig), stranger, other_group, long_ok, long_bad, short_extra, frag, garbage, node_receipt]
    res = led.ingest(batch)
    assert res.inserted == 3 and led.count() == 3
    reasons = dict(res.rejected)
    assert reasons[1] == "bad signature" and reasons[3] == "bad signature"
    assert reasons[2].startswith("unknown author")
    assert reasons[5] == "long bulletin text does not match its signed digest"
    assert reasons[6] == "unexpected bytes after the message"
    assert reasons[7].startswith("not a signed message")
    assert reasons[8].startswith("malformed")
    assert len(led.rejects()) == 7
    assert [e.text for e in led.entries()][:2] == ["fine", long_text.decode()]
    # the cryptography-only path (no libsodium fast path) gives the same verdicts
    chk = ledger.Checker(ledger.roster_pubs(roster), gid)
    chk._sod = None
    assert [isinstance(chk.check(r), str) for r in batch] == [False, True, True, True, False, True, True, True, True, False]
    # the inlined common case of check_many gives check()'s verdicts, odd inputs included
    fast = ledger.Checker(ledger.roster_pubs(roster), gid)
    odd = batch + [b"", b"\x00", b"\x07", b"\x00\x01", bytes(good[:-3])]
    assert fast.check_many(odd) == [fast.check(r) for r in odd] == [chk.check(r) for r in odd]


def test_rows_are_append_only(led, group):
    doc, roster, ks = group
    led.ingest(many_bulletins(ks, roster.group_id, 3))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        led.con.execute("UPDATE records SET time = 0 WHERE n = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        led.con.execute("DELETE FROM records WHERE n = 3")


def _tamper(path, sql, *args):
    con = sqlite3.connect(str(path))
    con.execute("DROP TRIGGER IF EXISTS records_no_update")
    con.execute("DROP TRIGGER IF EXISTS records_no_delete")
    con.execute(sql, args)
    con.commit()
    con.close()


def _flip_text(raw):
    b = bytearray(raw)
    b[1 + 14] ^= 0x01  # first text byte of a short bulletin (after len, kind, author, time, flags)
    return bytes(b)


@pytest.fixture
def filled(tmp_path, group):
    doc, roster, ks = group
    path = tmp_path / "t.sqlite"
    recs = many_bulletins(ks, roster.group_id, 80)
    with ledger.Ledger(path, roster, workers=1) as L:
        L.ingest(recs)
    return path, roster, recs


def _verify(path, roster, **kw):
    with ledger.Ledger(path, roster, workers=kw.pop("workers", 1)) as L:
        return L.verify(**kw)


def test_verify_names_a_changed_row(filled):
    path, roster, recs = filled
    _tamper(path, "UPDATE records SET raw = ? WHERE n = 37", _flip_text(recs[36]))
    v = _verify(path, roster)
    assert not v.ok and v.first_bad == 37 and "hash chain" in v.reason


def test_verify_names_a_rewritten_chain_by_its_signature(filled):
    path, roster, recs = filled
    raws = list(recs)
    raws[36] = _flip_text(raws[36])
    con = sqlite3.connect(str(path))
    con.execute("DROP TRIGGER records_no_update")
    h = bytes(32)
    for i, r in enumerate(raws):  # an attacker who rewrites every hash after the change
        h = hashlib.sha256(h + r).digest()
        con.execute("UPDATE records SET raw = ?, hash = ? WHERE n = ?", (r, h, i + 1))
    con.commit()
    con.close()
    v = _verify(path, roster)
    assert not v.ok and v.first_bad == 37 and v.reason == "bad signature"


def test_verify_names_changed_columns_hashes_and_gaps(filled):
    path, roster, recs = filled
    _tamper(path, "UPDATE records SET author = ? WHERE n = 12", b"\x00" * 8)
    v = _verify(path, roster)
    assert (v.first_bad, v.reason) == (12, "stored id/kind/author/time do not match the signed record")
    _tamper(path, "UPDATE records SET hash = ? WHERE n = 5", b"\x11" * 32)
    assert _verify(path, roster).first_bad == 5
    _tamper(path, "DELETE FROM records WHERE n = 3")
    v = _verify(path, roster)
    assert (v.first_bad, v.reason) == (3, "row is missing")


def test_verify_in_worker_processes_reports_the_first_bad_row(filled, monkeypatch):
    path, roster, recs = filled
    monkeypatch.setattr(ledger, "POOL_MIN_VERIFY", 0)
    monkeypatch.setattr(ledger, "VERIFY_RANGE", 15)
    assert _verify(path, roster, workers=2).ok
    _tamper(path, "UPDATE records SET raw = ? WHERE n = 71", _flip_text(recs[70]))
    _tamper(path, "UPDATE records SET raw = ? WHERE n = 44", _flip_text(recs[43]))
    v = _verify(path, roster, workers=2)
    assert not v.ok and v.first_bad == 44


def test_pool_ingest_matches_inline(tmp_path, group, monkeypatch):
    doc, roster, ks = group
    recs = many_bulletins(ks, roster.group_id, 300)
    recs.insert(150, b"\x03junk")
    monkeypatch.setattr(ledger, "CHUNK", 37)
    heads = []
    for pool in (False, True):
        with ledger.Ledger(tmp_path / ("p%d.sqlite" % pool), roster, workers=2) as L:
            r = L.ingest(recs[:200], use_pool=pool)
            r2 = L.ingest(recs, use_pool=pool)
            assert (r.inserted, len(r.rejected), r2.inserted, r2.duplicates) == (199, 1, 101, 199)
            assert r2.rejected[0][0] == 150
            heads.append(L.head())
    assert heads[0] == heads[1] == (300, chain([r for r in recs if r != b"\x03junk"]))


def test_worker_pool_survives_an_abandoned_run_and_reports_a_dead_worker(tmp_path, group, monkeypatch):
    doc, roster, ks = group
    recs = many_bulletins(ks, roster.group_id, 120)
    monkeypatch.setattr(ledger, "CHUNK", 10)
    with ledger.Ledger(tmp_path / "w.sqlite", roster, workers=2) as L:
        pids = L.pool().ping()
        assert len(set(pids)) == 2 and os.getpid() not in pids
        gen = L._verified(recs, True)
        assert next(gen)[0] == 0
        gen.close()  # stopped early: the in-flight chunks are drained, the pool stays in step
        assert L.pool().outstanding() == 0
        r = L.ingest(recs, use_pool=True)
        assert r.inserted == 120 and L.head() == (120, chain(recs))
        os.kill(pids[0], signal.SIGKILL)
        with pytest.raises(ledger.LedgerError, match="process died"):
            L.ingest(many_bulletins(ks, roster.group_id, 200)[120:], use_pool=True)
        assert L.count() == 120  # the failed ingest was rolled back whole
        assert L._pool is None  # a broken pool is closed; the next use starts a new one
        assert L.ingest(many_bulletins(ks, roster.group_id, 200)[120:], use_pool=True).inserted == 80
        assert L.verify(workers=2).ok
    for pid in pids:  # close() ended the workers
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_ledger_is_bound_to_its_group(tmp_path, group):
    doc, roster, ks = group
    with ledger.Ledger(tmp_path / "g.sqlite", roster):
        pass
    with ledger.Ledger(tmp_path / "g.sqlite") as L:  # roster remembered
        assert L.roster.group_id == roster.group_id
    other = make_group(2, name="Other")[1]
    with pytest.raises(ledger.LedgerError, match="belongs to group"):
        ledger.Ledger(tmp_path / "g.sqlite", other)
    with ledger.Ledger(tmp_path / "empty.sqlite") as L:
        with pytest.raises(ledger.LedgerError, match="no roster"):
            L.ingest([])


# ---- sync


@pytest.fixture
def node(group):
    doc, roster, ks = group
    n = FakeNode(roster, ks["node-a"].pub, max_limit=16)
    yield n
    n.close()


def test_sync_is_resumable_and_idempotent(led, node, group):
    doc, roster, ks = group
    recs = many_bulletins(ks, roster.group_id, 100)
    for r in recs[:60]:
        node.add(r)
    with HostLinkClient(node.port, timeout=1) as c:
        r1 = ledger.sync(c, led)
        assert (r1.fetched, r1.inserted, r1.cursor) == (60, 60, 60) and r1.rounds >= 4
        assert led.cursor(node.node_pub) == 60
        n_req = len(node.requests)
        r2 = ledger.sync(c, led)
        assert (r2.fetched, r2.inserted) == (0, 0)
        syncs = [req for req in node.requests[n_req:] if req[0] == hostlink.SYNC]
        assert len(syncs) == 1
        for r in recs[60:]:
            node.add(r)
        events = []
        r3 = ledger.sync(c, led, progress=lambda *a: events.append(a))
        assert (r3.fetched, r3.inserted, r3.cursor) == (40, 40, 100)
        assert events[0] == ("start", 60, 100) and events[-1] == ("records", 100, 100)
        assert [e[1] for e in events] == sorted(e[1] for e in events)
    assert led.count() == 100 and led.head()[1] == chain(recs) and led.verify().ok


def test_sync_skips_what_another_node_delivered_and_keeps_refused_records(led, node, group):
    doc, roster, ks = group
    recs = many_bulletins(ks, roster.group_id, 20)
    led.ingest(recs[:10])  # e.g. via another node
    for r in recs:
        node.add(r)
    forged = bytearray(bulletin(ks["ana"], roster.group_id, "forged")); forged[-3] ^= 1  # noqa: E702
    node.add(bytes(forged))
    with HostLinkClient(node.port, timeout=1) as c:
        r = ledger.sync(c, led)
    assert (r.fetched, r.inserted, r.duplicates, r.rejected) == (21, 10, 10, ["bad signature"])
    assert led.cursor(node.node_pub) == 21 and led.count() == 20


def test_sync_refuses_a_node_of_another_group(led, group):
    other_doc, other_roster, oks = make_group(2, name="Elsewhere")
    n = FakeNode(other_roster)
    try:
        with HostLinkClient(n.port, timeout=1) as c:
            with pytest.raises(ledger.LedgerError, match="is in group"):
                ledger.sync(c, led)
    finally:
        n.close()


def test_refused_records_join_once_the_roster_knows_their_author(tmp_path, group):
    doc, roster, ks = group
    newbie = Key("newbie", b"\x66" * 32)
    rec = bulletin(newbie, roster.group_id, "hello from a later member")
    path = tmp_path / "r.sqlite"
    with ledger.Ledger(path, roster) as L:
        assert L.ingest([rec]).rejected
    # same group id, more keys known (stand-in for members added by ROSTER records, issue 7)
    r2 = pgroup.Roster(doc)
    r2.entries[newbie.kid] = pgroup.Entry(newbie.pub, pgroup.ROLE_MEMBER, "newbie")
    with ledger.Ledger(path) as L:
        L.roster = r2
        assert L.retry_rejects().inserted == 1 and L.rejects() == [] and L.count() == 1


_SYNC_SCRIPT = """
import sys
from plexus import cli
cli.COMMANDS["ledger"] = ("plexus.commands.ledger", "ledger")
sys.exit(cli.main(["ledger", "sync", "--port", sys.argv[1], "--limit", "16", "--no-progress", "--timeout", "2"]))
"""


def test_sync_survives_kill_9_at_random_moments(tmp_path, group):
    """Sync in a subprocess, killed (SIGKILL) at random moments many times, then finished: every record
    exactly once, chain intact, cursor at the end."""
    doc, roster, ks = group
    home = tmp_path / "home"
    home.mkdir()
    (home / "group.json").write_text(json.dumps(doc))
    recs = many_bulletins(ks, roster.group_id, 2000)
    node = FakeNode(roster, ks["node-a"].pub, recs, reply_delay=0.004, max_limit=16)
    env = dict(os.environ, PLEXUS_HOME=str(home), PYTHONPATH=os.pathsep.join(
        [str(ROOT / "host"), str(ROOT / "protocol"), os.environ.get("PYTHONPATH", "")]))
    db = home / "ledger.sqlite"

    def count():
        if not db.exists():
            return 0
        con = sqlite3.connect(str(db), timeout=30)
        try:
            return con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            con.close()

    def syncs():
        return sum(1 for op, _ in list(node.requests) if op == hostlink.SYNC)

    rng = random.Random(8)
    seen = []
    try:
        for _ in range(16):
            # kill after a random number of SYNC rounds plus a random few ms: lands while waiting for a reply,
            # decoding, verifying or committing, whatever the machine's load makes startup cost
            before = syncs()
            rounds = rng.randint(1, 5)
            p = subprocess.Popen([sys.executable, "-c", _SYNC_SCRIPT, node.port], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            while syncs() < before + rounds and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.012))
            if p.poll() is not None:  # finished (or failed) before the kill
                assert p.returncode == 0, p.stderr.read().decode()
                p.stderr.close()
                break
            p.send_signal(signal.SIGKILL)
            p.wait()
            p.stderr.close()
            seen.append(count())
        p = subprocess.run([sys.executable, "-c", _SYNC_SCRIPT, node.port], env=env, capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        p2 = subprocess.run([sys.executable, "-c", _SYNC_SCRIPT, node.port], env=env, capture_output=True, timeout=60)
        assert p2.returncode == 0 and b"0 new" in p2.stdout
    finally:
        node.close()
    # the kills landed mid-sync: progress was partial and growing
    partial = [c for c in seen if 0 < c < len(recs)]
    assert len(set(partial)) >= 8, seen
    assert seen == sorted(seen)
    with ledger.Ledger(db) as L:
        ids = [bytes(r[0]) for r in L.con.execute("SELECT id FROM records ORDER BY n")]
        assert len(ids) == len(recs) and set(ids) == {record_id(r) for r in recs}
        assert L.head()[1] == chain(recs)  # in node order, nothing lost, nothing twice
        assert L.cursor(node.node_pub) == len(recs)
        assert L.verify().ok


# ---- reports and export


def _town(led, ks, roster):
    gid = roster.group_id
    prop = bulletin(ks["ana"], gid, "We hold the rent strike from May <b>&</b> on", t=100, decision=True)
    pid = record_id(prop)
    other = bulletin(ks["ben"], gid, "Bring chairs to the hall", t=90)
    blocked = bulletin(ks["ben"], gid, "Move the meeting to Monday", t=110, decision=True)
    recs = [prop, other, blocked,
            consent(ks["ana"], gid, pid, t=101), consent(ks["ben"], gid, pid, msg.STANCE_BLOCK, t=102),
            consent(ks["ben"], gid, pid, t=103),  # ben changes his mind: latest stance counts
            consent(ks["chi"], gid, pid, t=104), consent(ks["dee"], gid, pid, msg.STANCE_STAND_ASIDE, t=105),
            consent(ks["chi"], gid, record_id(blocked), msg.STANCE_BLOCK, t=111),
            hostlink.pack_record(ks["ana"].sign_message(gid, msg.ALERT, {"flags": 0, "text": "drill: phone tree"}, 120)),
            hostlink.pack_record(ks["chi"].sign_message(gid, msg.MANDATE, {
                "role": "treasurer", "start": 200, "end": 90000, "method": msg.METHOD_ELECTION, "seed": b"\x00" * 16,
                "holders": sorted([ks["ana"].kid, ks["dee"].kid])}, 130))]
    assert led.ingest(recs).inserted == len(recs)
    led.add_report("drill", {"alert": "x", "reached": 3, "confirmed": 2, "receipts": [{"node": "node-a", "hops": 1}]})
    return pid, record_id(blocked)


def test_reports_are_stored(led):
    a = led.add_report("drill", {"reached": 3})
    b = led.add_report("survey", {"n": 1}, created=5)
    assert [r["id"] for r in led.reports()] == [a, b]
    assert led.reports("drill") == [{"id": a, "kind": "drill", "created": led.reports()[0]["created"], "data": {"reached": 3}}]


def test_wall_counts_consents_against_quorum(led, group):
    doc, roster, ks = group
    pid, bid = _town(led, ks, roster)
    w = export.wall(led, roster)
    keys_ = [s["key"] for s in w["sections"]]
    assert keys_ == ["decision", "bulletin", "alert", "mandate"]
    dec = {it["entry"].id: it["tally"] for it in w["sections"][0]["items"]}
    assert dec[pid]["consent"] == ["ana", "ben", "chi"] and dec[pid]["stand_aside"] == ["dee"]
    assert dec[pid]["state"] == "consented" and dec[pid]["quorum"] == 3
    assert dec[bid]["state"] == "blocked" and dec[bid]["block"] == ["chi"]
    assert w["reports"]["drill"][0]["data"]["reached"] == 3


def test_html_and_text_exports(led, group, tmp_path):
    doc, roster, ks = group
    _town(led, ks, roster)
    p = export.export_html(led, tmp_path / "wall")
    h = p.read_text()
    assert "<script" not in h.lower() and "http" not in h.replace("http-equiv", "")
    assert "@media print" in h
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in h and "<b>&</b>" not in h
    for title in ("Decisions (2)", "Bulletins (1)", "Alerts and drills (1)", "Mandates (1)", "Reports: drill"):
        assert title in h
    assert "consent 3 of quorum 3" in h and "treasurer" in h and "ana, dee" in h
    t = export.export_text(led, tmp_path / "sheet.txt").read_text()
    assert "CONSENTED: consent 3 of quorum 3" in t and "BLOCKED" in t and "BLOCK: chi" in t
    assert led.head()[1].hex() in t and "Bring chairs to the hall" in t


def test_cli_ledger_show_verify_export(tmp_path, group, monkeypatch, capsys):
    doc, roster, ks = group
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PLEXUS_HOME", str(home))
    (home / "group.json").write_text(json.dumps(doc))
    with ledger.Ledger(None, roster) as L:
        assert L.path == home / "ledger.sqlite"
        recs = many_bulletins(ks, roster.group_id, 30)
        L.ingest(recs)
    rc, out, err = run_cli(["ledger", "show", "--json", "-n", "5"], monkeypatch, capsys)
    rows = json.loads(out)
    assert rc == 0 and [r["n"] for r in rows] == [30, 29, 28, 27, 26]
    assert rows[0]["author_name"] in ("ana", "ben", "chi", "dee") and rows[0]["text"].startswith("bulletin number 29")
    rc, out, err = run_cli(["ledger", "show"], monkeypatch, capsys)
    assert rc == 0 and "bulletin number 29" in out
    rc, out, err = run_cli(["ledger", "verify"], monkeypatch, capsys)
    assert rc == 0 and "ledger OK: 30 records" in out
    _tamper(home / "ledger.sqlite", "UPDATE records SET raw = ? WHERE n = 17", _flip_text(recs[16]))
    rc, out, err = run_cli(["ledger", "verify"], monkeypatch, capsys)
    assert rc == 1 and "ledger BAD: record 17" in out
    rc, out, err = run_cli(["ledger", "verify", "--json"], monkeypatch, capsys)
    assert rc == 1 and json.loads(out)["first_bad"] == 17
    rc, out, err = run_cli(["ledger", "export", "--html", tmp_path / "w", "--text", tmp_path / "s.txt"], monkeypatch, capsys)
    assert rc == 0 and (tmp_path / "w" / "index.html").exists() and (tmp_path / "s.txt").exists()
    rc, out, err = run_cli(["ledger", "export"], monkeypatch, capsys)
    assert rc == 2 and "--html" in err
    rc, out, err = run_cli(["ledger", "sync", "--port", "/dev/does-not-exist-plexus"], monkeypatch, capsys)
    assert rc == 3 and "cannot open" in err and "Traceback" not in err
