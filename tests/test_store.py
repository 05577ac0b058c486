"""plexnode.store: append-only log, crash recovery, capacity eviction, compact sorted index."""

import hashlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plexnode.store import HEADER_SIZE, REC_HDR, Store

GOV = (1, 2)  # e.g. roster, mandates


def mid(i):
    return hashlib.sha256(b"m%d" % i).digest()[:16]


def body_for(i):
    return bytes([i & 0xFF]) * (i % 23)


def rec_size(body):
    return REC_HDR + len(body)


def test_basic_roundtrip(tmp_path):
    p = str(tmp_path / "log")
    s = Store(p, 100_000)
    assert s.count == 0 and s.bytes_used == HEADER_SIZE
    assert s.add(mid(1), 5, b"hello", ts=1234)
    assert not s.add(mid(1), 5, b"other")  # already present
    assert s.add(mid(2), 1, b"", ts=0)
    assert s.has(mid(1)) and s.has(mid(2)) and not s.has(mid(3))
    assert s.get(mid(1)) == (5, 1234, b"hello")
    assert s.get(mid(2)) == (1, 0, b"")
    assert s.get(mid(3)) is None
    assert s.count == 2
    assert s.bytes_used == HEADER_SIZE + rec_size(b"hello") + rec_size(b"")
    assert os.path.getsize(p) == s.bytes_used
    s.close()
    s = Store(p, 100_000)
    assert s.count == 2 and s.get(mid(1)) == (5, 1234, b"hello")
    assert s.add(mid(3), 7, b"x")
    assert [r[0] for r in s.since(0, 10)] == [1, 2, 3]
    s.close()


def test_bad_args(tmp_path):
    s = Store(str(tmp_path / "log"), 1000)
    with pytest.raises(ValueError):
        s.add(b"short", 1, b"")
    with pytest.raises(ValueError):
        s.add(mid(1), 256, b"")
    with pytest.raises(ValueError):
        s.add(mid(1), 1, b"x" * 1000)  # can never fit
    s.close()
    junk = tmp_path / "junk"
    junk.write_bytes(b"NOTASTOREFILE-----------")
    with pytest.raises(ValueError):
        Store(str(junk), 1000)


def test_sorted_ids_and_ranges(tmp_path):
    s = Store(str(tmp_path / "log"), 1_000_000)
    ids = [mid(i) for i in range(300)]
    rnd = random.Random(1)
    rnd.shuffle(ids)
    for i, m in enumerate(ids):
        assert s.add(m, 3, body_for(i))
    want = sorted(ids)
    assert list(s.ids_sorted()) == want
    for _ in range(50):
        a, b = sorted(rnd.sample(range(300), 2))
        lo, hi = want[a], want[b]
        assert s.range_ids(lo, hi) == want[a:b]
    assert s.range_ids(b"\x00" * 16, b"\xff" * 16) == want
    assert s.range_ids(want[10]) == want[10:]  # open-ended
    assert s.range_ids(want[5], want[5]) == []
    s.close()


def test_prefix_collisions(tmp_path):
    """Ids sharing their 8-byte index prefix are told apart by the full id read from the file."""
    pfx = b"\xab" * 8
    coll = [pfx + bytes([7, 0, 0, 0, 0, 0, 0, x]) for x in (9, 3, 200, 4, 0, 255)]
    others = [mid(i) for i in range(40)]
    all_ids = coll + others
    random.Random(2).shuffle(all_ids)
    p = str(tmp_path / "log")
    s = Store(p, 1_000_000)
    for i, m in enumerate(all_ids):
        assert s.add(m, 4, m[-1:] * 3, ts=i)
    for m in coll:
        assert not s.add(m, 4, b"dup")
    for _reopen in range(2):
        for i, m in enumerate(all_ids):
            assert s.has(m)
            assert s.get(m) == (4, i, m[-1:] * 3)
        # Same prefix, different tail: absent.
        for tail in (b"\x07\x00\x00\x00\x00\x00\x00\x05", b"\x08" * 8, b"\x00" * 8):
            assert not s.has(pfx + tail) and s.get(pfx + tail) is None
        assert list(s.ids_sorted()) == sorted(all_ids)
        sc = sorted(coll)
        assert s.range_ids(sc[1], sc[4]) == sc[1:4]
        assert s.range_ids(pfx + b"\x07" + b"\x00" * 7, pfx + b"\xff" * 8) == sc
        s.close()
        s = Store(p, 1_000_000)
    s.close()


def _build_log(path, n=100):
    s = Store(path, 10_000_000)
    ends = []
    for i in range(n):
        s.add(mid(i), i % 5, body_for(i), ts=i)
        ends.append(s.bytes_used)
    s.close()
    return ends


def test_torn_tail_every_offset(tmp_path):
    """Cut a 100-record log at EVERY byte: all complete records before the cut survive, nothing
    after, no exception, and appending after recovery works (and survives another reopen)."""
    src = str(tmp_path / "full")
    ends = _build_log(src)
    data = open(src, "rb").read()
    assert len(data) == ends[-1]
    p = str(tmp_path / "cut")
    extra = hashlib.sha256(b"extra").digest()[:16]
    complete = 0
    for cut in range(HEADER_SIZE, len(data) + 1):
        while complete < len(ends) and ends[complete] <= cut:
            complete += 1
        with open(p, "wb") as f:
            f.write(data[:cut])
        s = Store(p, 10_000_000)
        assert s.count == complete, cut
        good_end = ends[complete - 1] if complete else HEADER_SIZE
        assert s.bytes_used == good_end and os.path.getsize(p) == good_end
        assert not os.path.exists(p + ".new")
        if complete:
            k = complete - 1
            assert s.get(mid(k)) == (k % 5, k, body_for(k))
        if complete < len(ends):
            assert not s.has(mid(complete))
        if cut % 97 == 0 or cut == len(data):  # full content check on a sample (it is O(n))
            assert list(s.ids_sorted()) == sorted(mid(i) for i in range(complete))
        assert s.add(extra, 9, b"after", ts=7)
        s.close()
        s = Store(p, 10_000_000)
        assert s.count == complete + 1
        assert s.get(extra) == (9, 7, b"after")
        got = s.since(0, 1000)
        assert [r[1] for r in got] == [mid(i) for i in range(complete)] + [extra]
        assert got[-1][0] == complete + 1  # seq continues after the recovered prefix
        s.close()


def test_short_header_recreated(tmp_path):
    p = tmp_path / "log"
    for cut in range(0, HEADER_SIZE):
        Store(str(p), 1000).close()
        p.write_bytes(p.read_bytes()[:cut])
        s = Store(str(p), 1000)
        assert s.count == 0 and s.add(mid(1), 1, b"a")
        s.close()


def test_corrupt_record_in_middle_ends_log(tmp_path):
    src = str(tmp_path / "log")
    ends = _build_log(src, 20)
    data = bytearray(open(src, "rb").read())
    data[ends[9] + 20] ^= 0x40  # flip a bit inside record 10 (0-based)
    open(src, "wb").write(bytes(data))
    s = Store(src, 10_000_000)
    assert s.count == 10 and s.has(mid(9)) and not s.has(mid(10))
    s.close()


def test_leftover_new_discarded(tmp_path):
    p = str(tmp_path / "log")
    _build_log(p, 30)
    with open(p + ".new", "wb") as f:  # a compaction that crashed half way
        f.write(b"PXST\x01\x00\x00\x00\x01\x00\x00\x00" + b"\x00" * 17)
    s = Store(p, 10_000_000)
    assert s.count == 30 and all(s.has(mid(i)) for i in range(30))
    assert not os.path.exists(p + ".new")
    s.close()


def test_new_without_log_is_adopted(tmp_path):
    p = str(tmp_path / "log")
    _build_log(p, 12)
    os.rename(p, p + ".new")  # FAT fallback crashed between remove and rename
    s = Store(p, 10_000_000)
    assert s.count == 12 and s.get(mid(11)) == (11 % 5, 11, body_for(11))
    s.close()


def test_capacity_eviction_governance_last(tmp_path):
    p = str(tmp_path / "log")
    cap = 4000
    s = Store(p, cap, governance_kinds=GOV)
    body = b"z" * 40  # 71 bytes per record
    gov_ids = [hashlib.sha256(b"g%d" % i).digest()[:16] for i in range(5)]
    for i, g in enumerate(gov_ids):
        assert s.add(g, 1 + (i % 2), body, ts=i)
    compactions = 0
    last_used = s.bytes_used
    for i in range(300):
        assert s.add(mid(i), 5, body, ts=100 + i)
        assert s.bytes_used <= cap
        if s.bytes_used < last_used:
            compactions += 1
            assert s.bytes_used <= cap * 9 // 10
        last_used = s.bytes_used
        assert os.path.getsize(p) == s.bytes_used
    # Amortised: evicting to 90% means roughly one compaction per 10% of capacity written.
    # Each compaction frees between cap/10 and cap/10 + 2 records, so after the first fill:
    assert (300 * 71 - cap) // (cap // 10 + 2 * 71) <= compactions <= 300 * 71 // (cap // 10) + 1
    for g in gov_ids:
        assert s.has(g)  # governance kept while ordinary records exist
    present = [i for i in range(300) if s.has(mid(i))]
    assert present == list(range(present[0], 300))  # exactly the newest ordinary records
    assert s.count == len(present) + 5
    # Seqs survive compaction: since() returns increasing seqs; old governance first.
    recs = s.since(0, 1000)
    seqs = [r[0] for r in recs]
    assert seqs == sorted(seqs) and seqs[:5] == [1, 2, 3, 4, 5]
    s.close()
    s = Store(p, cap, governance_kinds=GOV)
    assert [r[0] for r in s.since(0, 1000)] == seqs
    s.close()


def test_all_governance_evicts_oldest_governance(tmp_path):
    s = Store(str(tmp_path / "log"), 2000, governance_kinds=GOV)
    for i in range(100):
        assert s.add(mid(i), 1, b"g" * 30, ts=i)
        assert s.bytes_used <= 2000
    present = [i for i in range(100) if s.has(mid(i))]
    assert present == list(range(present[0], 100)) and len(present) > 20
    s.close()


def test_since_is_resumable_across_compaction(tmp_path):
    p = str(tmp_path / "log")
    s = Store(p, 3000)
    seen = []
    cursor = 0
    for i in range(200):
        s.add(mid(i), 6, body_for(i), ts=i)
        if i % 7 == 0:
            batch = s.since(cursor, 3)
            for seq, m, kind, ts, body in batch:
                assert seq > cursor and kind == 6 and body == body_for(ts) and m == mid(ts)
                seen.append(seq)
                cursor = seq
    s.close()
    s = Store(p, 3000)
    while True:
        batch = s.since(cursor, 5)
        if not batch:
            break
        seen.extend(r[0] for r in batch)
        cursor = batch[-1][0]
    assert seen == sorted(set(seen))
    assert seen[-1] == 200 and s.next_seq == 201
    s.close()
    # Evict everything: the sequence still continues.
    s = Store(p, 3000)
    for i in range(1000, 1100):
        s.add(mid(i), 6, b"x" * 200)
    s.close()
    s = Store(p, 3000)
    assert s.since(0, 1)[0][0] > 200 and s.next_seq == 301
    s.close()


class _Model:
    """Reference semantics: list of records in append order."""

    def __init__(self, cap, gov):
        self.cap, self.gov, self.recs, self.seq = cap, gov, [], 1

    def used(self):
        return HEADER_SIZE + sum(rec_size(r[4]) for r in self.recs)

    def add(self, m, kind, body, ts):
        if any(r[1] == m for r in self.recs):
            return False
        size = rec_size(body)
        if self.used() + size > self.cap:
            need = self.used() + size - self.cap * 9 // 10
            freed = 0
            drop = set()
            for gov_pass in (False, True):
                for r in self.recs:
                    if freed >= need:
                        break
                    if (r[2] in self.gov) == gov_pass:
                        drop.add(r[0])
                        freed += rec_size(r[4])
            self.recs = [r for r in self.recs if r[0] not in drop]
        self.recs.append((self.seq, m, kind, ts, body))
        self.seq += 1
        return True


@settings(max_examples=60)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 60), st.integers(0, 4), st.binary(max_size=120)),
            st.tuples(st.just("reopen"), st.just(0), st.just(0), st.just(b"")),
        ),
        max_size=80,
    )
)
def test_model(tmp_path_factory, ops):
    p = str(tmp_path_factory.mktemp("model") / "log")
    cap = 1500
    gov = (1,)
    s = Store(p, cap, governance_kinds=gov)
    model = _Model(cap, set(gov))
    # Ids: a few share a prefix to exercise collision handling.
    ident = [(b"\x11" * 8 + bytes([i]) * 8) if i % 4 == 0 else mid(i) for i in range(61)]
    for t, (op, i, kind, body) in enumerate(ops):
        if op == "reopen":
            s.close()
            s = Store(p, cap, governance_kinds=gov)
            continue
        assert s.add(ident[i], kind, body, ts=t) == model.add(ident[i], kind, body, t)
        assert s.bytes_used == model.used() <= cap
    assert s.count == len(model.recs)
    assert list(s.ids_sorted()) == sorted(r[1] for r in model.recs)
    assert s.since(0, 1000) == [(r[0], r[1], r[2], r[3], r[4]) for r in model.recs]
    for i in range(61):
        want = [r for r in model.recs if r[1] == ident[i]]
        assert s.get(ident[i]) == ((want[0][2], want[0][3], want[0][4]) if want else None)
    s.close()


MPY_STORE = r"""
import os, gc, hashlib
from plexnode.store import Store, HEADER_SIZE

def _mk(d):
    try:
        os.mkdir(d)
    except OSError:
        pass

def _mid(i):
    return hashlib.sha256(b"m%d" % i).digest()[:16]

def _store_checks():
    d = "/tmp_store"
    _mk(d)
    p = d + "/a.log"
    for q in (p, p + ".new"):
        try:
            os.remove(q)
        except OSError:
            pass
    s = Store(p, 100000, governance_kinds=(1,))
    assert s.add(_mid(1), 5, b"hello", 1234)
    assert not s.add(_mid(1), 5, b"again")
    pfx = b"\xab" * 8
    coll = [pfx + bytes([0, 0, 0, 0, 0, 0, 0, x]) for x in (9, 3, 200, 4)]
    for c in coll:
        assert s.add(c, 2, c[-1:], 0)
    assert s.get(_mid(1)) == (5, 1234, b"hello")
    for c in coll:
        assert s.get(c) == (2, 0, c[-1:])
    assert not s.has(pfx + b"\x00" * 7 + b"\x05")
    assert list(s.ids_sorted()) == sorted(coll + [_mid(1)])
    s.close()
    # torn tail at a sample of offsets
    data = open(p, "rb").read()
    cuts = 0
    for cut in range(HEADER_SIZE, len(data) + 1, 3):
        f = open(p, "wb")
        f.write(data[:cut])
        f.close()
        s = Store(p, 100000)
        assert s.bytes_used <= cut
        assert s.add(b"E" * 16, 9, b"after", 7)
        s.close()
        s = Store(p, 100000)
        assert s.get(b"E" * 16) == (9, 7, b"after")
        s.close()
        cuts += 1
    # leftover .new is discarded
    f = open(p + ".new", "wb")
    f.write(b"PXST partial")
    f.close()
    s = Store(p, 100000)
    assert s.has(b"E" * 16)
    s.close()
    assert "a.log.new" not in os.listdir(d)
    # eviction: governance kept, newest ordinary kept, capacity respected
    q = d + "/b.log"
    try:
        os.remove(q)
    except OSError:
        pass
    s = Store(q, 3000, governance_kinds=(1,))
    for i in range(3):
        s.add(b"G" * 15 + bytes([i]), 1, b"g" * 40, i)
    for i in range(200):
        s.add(_mid(i), 5, b"z" * 40, i)
        assert s.bytes_used <= 3000
    assert all(s.has(b"G" * 15 + bytes([i])) for i in range(3))
    present = [i for i in range(200) if s.has(_mid(i))]
    assert present == list(range(present[0], 200))
    seqs = [r[0] for r in s.since(0, 1000)]
    assert seqs[:3] == [1, 2, 3] and seqs[-1] == 203
    s.close()
    return cuts

print("CUTS", _store_checks())
"""


MPY_HEAP_SETUP = r"""
import gc, os, hashlib
from plexnode.store import Store
try:
    os.mkdir("/tmp_store")
except OSError:
    pass
for _q in ("/tmp_store/heap.log", "/tmp_store/heap.log.new"):
    try:
        os.remove(_q)
    except OSError:
        pass
_hp_ids = [hashlib.sha256(b"m%d" % i).digest()[:16] for i in range(1000)]
_hp_store = None
_hp_base = 0

def _hp_build():
    s = Store("/tmp_store/heap.log", 200000, governance_kinds=(1, 2))
    body = b"b" * 60
    for i in range(1000):
        s.add(_hp_ids[i], 3, body, i)
    return s
"""


def _mpy_retained(mpy, build_stmt):
    """Heap retained by `build_stmt` (which assigns _hp_store), measured with gc.collect(); gc.mem_alloc().

    The WebAssembly port only frees an object in a gc.collect() issued by a *later* run() (the current
    call's stack still holds stale references), so every step is its own run().
    """
    mpy.run("_hp_store = None")
    mpy.run("gc.collect()")
    mpy.run("gc.collect()\n_hp_base = gc.mem_alloc()")
    mpy.run(build_stmt)
    mpy.run("gc.collect()")
    return int(mpy.run("gc.collect()\nprint(gc.mem_alloc() - _hp_base, _hp_store.count)").split()[0])


def test_micropython_subset_and_heap(mpy_fresh):
    mpy = mpy_fresh
    out = mpy.run(MPY_STORE)
    lines = {ln.split()[0]: ln.split()[1:] for ln in out.strip().splitlines()}
    assert int(lines["CUTS"][0]) > 50
    mpy.run(MPY_HEAP_SETUP)
    built = _mpy_retained(mpy, "_hp_store = _hp_build()")
    assert mpy.run("print(_hp_store.count)").strip() == "1000"
    mpy.run("_hp_store.close()")
    reopened = _mpy_retained(mpy, "_hp_store = Store('/tmp_store/heap.log', 200000, governance_kinds=(1, 2))")
    assert mpy.run("print(_hp_store.count, _hp_store.get(_hp_ids[999])[1])").split() == ["1000", "999"]
    mpy.run("_hp_store.close()\n_hp_store = None")
    print("store retained heap for 1000 records under MicroPython: built %d B, reopened %d B" % (built, reopened))
    # Budget: the store's share of the node's 48 KB for 1,000 bulletins is ~15 KB; the index alone is 12 KB.
    assert 12_000 <= built <= 15 * 1024
    assert 12_000 <= reopened <= 15 * 1024
