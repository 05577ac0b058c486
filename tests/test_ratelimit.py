"""plexnode.ratelimit: per-origin token buckets in a fixed table."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plexnode.ratelimit import RateLimiter

HOUR = 3_600_000


def key(i):
    return bytes([i, 0xA5, i ^ 0x5A, 1, 2, 3, 4, 5]) + b"tail-ignored"


def test_burst_then_rate():
    rl = RateLimiter(slots=4, rate_per_hour=60, burst=5)  # one token per minute
    t = 10_000
    assert [rl.allow(key(1), t) for _ in range(7)] == [True] * 5 + [False] * 2
    assert rl.tokens(key(1), t) == 0
    assert rl.retry_ms(key(1), t) == 60_000
    assert not rl.allow(key(1), t + 59_999)
    assert rl.allow(key(1), t + 60_000)
    assert not rl.allow(key(1), t + 60_000)
    # After an idle hour the bucket is full again, but never above burst.
    assert rl.tokens(key(1), t + HOUR) == 5
    assert [rl.allow(key(1), t + HOUR) for _ in range(6)] == [True] * 5 + [False]


def test_flooder_throttled_others_continue():
    rl = RateLimiter(slots=8, rate_per_hour=120, burst=10)
    t = 0
    got = {"flood": 0, "a": 0, "b": 0, "c": 0}
    for step in range(HOUR // 100):  # one hour, an attempt every 100 ms from the flooder
        t = step * 100
        if rl.allow(b"flooder!", t):
            got["flood"] += 1
        if step % 600 == 0:  # the others send once a minute
            for name in ("a", "b", "c"):
                assert rl.allow(name.encode() * 8, t), (name, t)
                got[name] += 1
    # The flooder gets its burst plus the hourly rate, out of 36,000 attempts.
    assert got["flood"] == 10 + 120 - 1 or got["flood"] == 10 + 120
    assert got["a"] == got["b"] == got["c"] == 60


def test_short_and_long_keys():
    rl = RateLimiter(slots=4, rate_per_hour=60, burst=1)
    assert rl.allow(b"\x01", 0)
    assert not rl.allow(b"\x01\x00\x00", 0)  # zero-padded to the same 8-byte key
    assert rl.allow(b"\x01\x00\x00\x00\x00\x00\x00\x00\x01", 0) is False  # only 8 bytes count
    assert rl.allow(b"\x02", 0)


def test_table_is_fixed_and_replaces_least_active():
    rl = RateLimiter(slots=4, rate_per_hour=60, burst=3)
    tab = rl._tab
    size = len(tab)
    assert size == 4 * 16
    t = 0
    # A flooder drains its bucket.
    for _ in range(10):
        rl.allow(b"FLOODER1", t)
    assert rl.tokens(b"FLOODER1", t) == 0
    # Many other origins pass through the 3 remaining slots over time.
    for i in range(100):
        t += 100
        assert rl.allow(key(i), t)
    # 10 s later (less than the 60 s refill), the flooder was never replaced: a replaced entry
    # would come back as a fresh full bucket; it is still throttled (its TAT is in the future).
    assert not rl.allow(b"FLOODER1", t)
    assert rl._tab is tab and len(rl._tab) == size


def test_bad_args():
    with pytest.raises(ValueError):
        RateLimiter(slots=0)
    with pytest.raises(ValueError):
        RateLimiter(rate_per_hour=0)
    with pytest.raises(ValueError):
        RateLimiter(burst=0)


@settings(max_examples=100)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40_000)), min_size=1, max_size=300),
    st.integers(1, 600),
    st.integers(1, 20),
    st.integers(0, 2**42),
)
def test_never_more_than_bucket_allows(attempts, rate, burst, t0):
    """For every origin and every interval [a, b]: allowed <= burst + rate * (b - a) / 1 h."""
    rl = RateLimiter(slots=8, rate_per_hour=rate, burst=burst)  # slots >= origins: exact
    t = t0
    ok_times = {}
    for origin, gap in attempts:
        t += gap
        if rl.allow(key(origin), t):
            ok_times.setdefault(origin, []).append(t)
    for times in ok_times.values():
        for i in range(len(times)):
            for j in range(i, len(times)):
                n = j - i + 1
                assert (n - burst) * HOUR <= (times[j] - times[i]) * rate


def test_micropython_same_decisions(mpy):
    # three hot origins plus six occasional ones competing for six slots
    steps = [(k % 3 if k % 4 else 3 + (k * 7919) % 6, (k * 104729) % 1_500) for k in range(600)]
    src = (
        "from plexnode.ratelimit import RateLimiter\n"
        "import json\n"
        "def _rl_run(steps):\n"
        "    rl = RateLimiter(slots=6, rate_per_hour=300, burst=4)\n"
        "    t = 1 << 36\n"
        "    out = []\n"
        "    for o, gap in steps:\n"
        "        t += gap\n"
        "        k = bytes([o]) * 8\n"
        "        out.append((rl.allow(k, t), rl.tokens(k, t), rl.retry_ms(k, t)))\n"
        "    return out\n"
        "print(json.dumps(_rl_run(" + json.dumps(steps) + ")))\n"
    )
    got = json.loads(mpy.run(src).strip().splitlines()[-1])
    rl = RateLimiter(slots=6, rate_per_hour=300, burst=4)
    t = 1 << 36
    want = []
    for o, gap in steps:
        t += gap
        k = bytes([o]) * 8
        want.append([rl.allow(k, t), rl.tokens(k, t), rl.retry_ms(k, t)])
    assert got == want
    assert any(w[0] for w in want) and not all(w[0] for w in want)
