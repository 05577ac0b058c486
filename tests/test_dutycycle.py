"""plexnode.dutycycle: exact rolling-hour budget, priority reservation, bounded memory."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plexnode.dutycycle import (
    ALERT,
    BULLETIN,
    PRIORITY_PERMILLE,
    RECEIPT,
    SYNC,
    WINDOW_MS,
    DutyCycle,
)

H_US = WINDOW_MS * 1000


def max_window_airtime_us(sent):
    """Largest true airtime (us, partial overlaps counted exactly) in any closed 3600 s window.

    sent: list of (start_ms, airtime_us).  The overlap as a function of the window start is
    piecewise linear, so its maximum is at a window starting at a transmission start or ending at
    a transmission end.
    """
    iv = [(s * 1000, s * 1000 + d) for s, d in sent]
    best = 0
    for a in [s for s, _ in iv] + [e - H_US for _, e in iv]:
        b = a + H_US
        tot = 0
        for s, e in iv:
            lo = s if s > a else a
            hi = e if e < b else b
            if hi > lo:
                tot += hi - lo
        if tot > best:
            best = tot
    return best


def test_region_budgets():
    assert DutyCycle("EU_868").budget_us == 360_000_000  # 10 % of an hour
    assert DutyCycle("EU_868_1").budget_us == 36_000_000  # 1 %
    assert DutyCycle("EU_433").budget_us == 360_000_000
    assert DutyCycle("US_915").budget_us == 360_000_000  # polite default 10 %
    assert DutyCycle("US_915", cap_permille=500).budget_us == 1_800_000_000
    assert DutyCycle("EU_868", cap_permille=50).budget_us == 180_000_000
    with pytest.raises(ValueError):
        DutyCycle("EU_868", cap_permille=101)  # above the legal 10 %
    with pytest.raises(ValueError):
        DutyCycle("EU_868_1", cap_permille=11)
    with pytest.raises(ValueError):
        DutyCycle("MARS")
    with pytest.raises(ValueError):
        DutyCycle("US_915", cap_permille=0)


def test_fill_and_expire():
    dc = DutyCycle("EU_868_1")  # 36 s per hour
    t = 1_000_000
    for _ in range(36):
        assert dc.can_send(1_000_000, t, ALERT)
        dc.record(1_000_000, t)
        t += 1000
    assert dc.used_us(t) == 36_000_000
    assert not dc.can_send(1, t, ALERT)
    w = dc.wait_ms(1_000_000, t, ALERT)
    assert w > 0
    assert not dc.can_send(1_000_000, t + w - 1, ALERT)
    assert dc.can_send(1_000_000, t + w, ALERT)
    # Everything recorded in one minute: it all expires together, conservatively late, but
    # never later than an hour plus one bucket after the last transmission ended.
    assert w <= WINDOW_MS + 60_000 + 1
    assert dc.used_us(t + WINDOW_MS + 60_001) == 0


def test_wait_ms_none_when_impossible():
    dc = DutyCycle("EU_868_1")
    assert dc.wait_ms(36_000_001, 0, ALERT) is None
    assert dc.wait_ms(36_000_000 * 70 // 100 + 1, 0, SYNC) is None
    assert dc.wait_ms(36_000_000 * 70 // 100, 0, SYNC) == 0


def test_priority_thresholds():
    dc = DutyCycle("EU_868_1")
    budget = dc.budget_us
    assert [dc.limit_us(p) for p in range(4)] == [budget * x // 1000 for x in PRIORITY_PERMILLE]
    assert PRIORITY_PERMILLE == (1000, 950, 850, 700)
    t = 0
    # fill to 69 %
    dc.record(budget * 69 // 100, t)
    t += 100_000
    one = budget // 100  # 1 % of the budget
    assert dc.can_send(one, t, SYNC)  # 70 % reached exactly
    assert not dc.can_send(one + 1, t, SYNC)
    dc.record(one * 10, t)  # now 79 %
    t += 100_000
    assert not dc.can_send(one, t, SYNC)
    assert dc.can_send(one * 6, t, BULLETIN) and not dc.can_send(one * 7, t, BULLETIN)
    dc.record(one * 10, t)  # 89 %
    t += 100_000
    assert not dc.can_send(one, t, BULLETIN)
    assert dc.can_send(one * 6, t, RECEIPT) and not dc.can_send(one * 7, t, RECEIPT)
    assert dc.can_send(one * 11, t, ALERT) and not dc.can_send(one * 11 + 1, t, ALERT)
    # The waits are ordered too: higher-priority classes never wait longer.
    waits = [dc.wait_ms(one, t, p) for p in range(4)]
    assert waits == sorted(waits)
    assert waits[ALERT] == 0 and waits[SYNC] > 0


def test_competing_classes_alerts_first():
    """Four classes each offering far more traffic than the budget: acceptance is ordered by
    priority (alerts most, sync least), and sync alone never pushes the hour past 70 %."""
    dc = DutyCycle("EU_868_1")
    offered = [0] * 4
    accepted = [0] * 4
    t = 0
    for step in range(40_000):
        p = step % 4
        d = 400_000
        offered[p] += 1
        if dc.can_send(d, t, p):
            dc.record(d, t)
            accepted[p] += 1
        t += 500
    rates = [accepted[p] / offered[p] for p in range(4)]
    assert rates == sorted(rates, reverse=True)
    assert rates[ALERT] > 2 * rates[SYNC] > 0


def test_monotone_in_priority_and_airtime():
    dc = DutyCycle("EU_868_1")
    t = 0
    for k in range(200):
        dc.record(150_000 + (k * 7919) % 300_000, t)
        t += 17_000 + (k * 104729) % 30_000
        for d in (1, 100_000, 1_000_000, 5_000_000):
            ok = [dc.can_send(d, t, p) for p in range(4)]
            # if a lower-priority class may send, every higher-priority class may too
            assert ok == sorted(ok, reverse=True)


schedules = st.lists(
    st.tuples(
        st.integers(0, 90_000),  # ms since the previous attempt
        st.integers(1_000, 3_000_000),  # airtime us
        st.integers(0, 3),  # priority
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=150)
@given(schedules, st.sampled_from([("EU_868_1", None), ("US_915", 2), ("US_915", 5)]), st.integers(0, 2**40))
def test_no_window_exceeds_budget(schedule, region, t0):
    dc = DutyCycle(region[0], cap_permille=region[1])
    t = t0
    sent = []
    for gap, d, p in schedule:
        t += gap
        if dc.can_send(d, t, p):
            dc.record(d, t)
            sent.append((t, d))
            t += (d + 999) // 1000  # a radio sends one packet at a time
        else:
            w = dc.wait_ms(d, t, p)
            if w is not None:
                assert w > 0
                assert not dc.can_send(d, t + w - 1, p)
                assert dc.can_send(d, t + w, p)
        assert dc.slots_in_use <= dc._n
    assert max_window_airtime_us(sent) <= dc.budget_us


@settings(max_examples=60)
@given(schedules, st.integers(0, 2**40))
def test_wait_then_send_stays_within_budget(schedule, t0):
    """A sender that always waits wait_ms() and then sends saturates the budget but never beats it."""
    dc = DutyCycle("US_915", cap_permille=3)
    t = t0
    sent = []
    for gap, d, p in schedule:
        t += gap
        w = dc.wait_ms(d, t, p)
        if w is None:
            continue
        t += w
        assert dc.can_send(d, t, p)
        dc.record(d, t)
        sent.append((t, d))
        t += (d + 999) // 1000
    assert max_window_airtime_us(sent) <= dc.budget_us


def test_saturating_sender_gets_close_to_budget():
    """Conservative, but not wastefully so: a greedy sender gets >= 95 % of the budget per hour."""
    dc = DutyCycle("EU_868_1")
    t = 5_000
    sent = []
    while t < 4 * WINDOW_MS:
        t += dc.wait_ms(1_000_000, t)
        dc.record(1_000_000, t)
        sent.append((t, 1_000_000))
        t += 1000
    best = max_window_airtime_us(sent)
    assert dc.budget_us * 95 // 100 <= best <= dc.budget_us
    assert len(sent) >= 4 * 34


def test_long_run_memory_bound():
    """Days of traffic (including bursts and idle gaps) never use more than the fixed ring."""
    dc = DutyCycle("US_915", cap_permille=1000)
    n_slots = dc._n
    lists = (dc._t, dc._a)
    lens = tuple(len(x) for x in lists)
    t = 0
    peak = 0
    for k in range(200_000):
        t += 50 + (k * 7919) % 4_000 + (3_600_000 if k % 50_000 == 0 else 0)
        if dc.can_send(20_000, t):
            dc.record(20_000, t)
        peak = max(peak, dc.slots_in_use)
    assert peak <= 62 <= n_slots == 64
    assert (dc._t, dc._a) == lists and tuple(len(x) for x in lists) == lens


def test_ring_full_merge_is_conservative():
    """A tiny ring is forced to merge old slots: used_us may only over-count, never under-count."""
    dc = DutyCycle("US_915", cap_permille=1000, bucket_ms=1000, slots=4)
    ref = []
    t = 0
    for k in range(300):
        d = 10_000 + k * 37
        dc.record(d, t)
        ref.append((t + (d + 999) // 1000, d))
        t += 20_000
        true_used = sum(a for e, a in ref if e >= t - WINDOW_MS)
        assert dc.used_us(t) >= true_used
        assert dc.slots_in_use <= 4


def test_micropython_same_decisions(mpy):
    steps = [((k * 7919) % 70_000, 50_000 + (k * 104729) % 2_500_000, k % 4) for k in range(400)]
    src = (
        "from plexnode.dutycycle import DutyCycle\n"
        "import json\n"
        "def _dc_run(steps):\n"
        "    dc = DutyCycle('EU_868_1')\n"
        "    t = 1 << 33\n"
        "    out = []\n"
        "    for gap, d, p in steps:\n"
        "        t += gap\n"
        "        ok = dc.can_send(d, t, p)\n"
        "        if ok:\n"
        "            dc.record(d, t)\n"
        "        out.append((ok, dc.used_us(t), dc.wait_ms(d, t, p)))\n"
        "    return out\n"
        "print(json.dumps(_dc_run(" + json.dumps(steps) + ")))\n"
    )
    got = json.loads(mpy.run(src).strip().splitlines()[-1])
    dc = DutyCycle("EU_868_1")
    t = 1 << 33
    want = []
    for gap, d, p in steps:
        t += gap
        ok = dc.can_send(d, t, p)
        if ok:
            dc.record(d, t)
        want.append([ok, dc.used_us(t), dc.wait_ms(d, t, p)])
    assert got == want
    assert any(not w[0] for w in want) and any(w[0] for w in want)
