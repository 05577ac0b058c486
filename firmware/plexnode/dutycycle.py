"""Rolling-hour transmit airtime accounting with priority reservation (sans-I/O, integer only).

Regions and budgets (duty cycle = share of any 3600 s window spent transmitting):

* ``EU_868``   869.400-869.650 MHz, 500 mW e.r.p., duty cycle <= 10 %  -> 360 s per hour.
* ``EU_868_1`` the 1 % sub-bands (868.000-868.600 MHz, 25 mW e.r.p.; also 865-868 MHz in later
               editions)                                                -> 36 s per hour.
* ``EU_433``   433.050-434.790 MHz, 10 mW e.r.p., duty cycle < 10 %    -> 360 s per hour.
* ``US_915``   902-928 MHz: FCC Part 15.247 sets no duty cycle; a configurable *polite* cap,
               default 10 % (``cap_permille`` up to 1000).

EU figures: CEPT ERC Recommendation 70-03, Annex 1 "Non-specific Short Range Devices" (sub-bands
g3 = 869.400-869.650 MHz / g1 = 868.000-868.600 MHz / f = 433.050-434.790 MHz in the 2009 edition),
with ETSI EN 300 220-2 as the harmonised standard whose conformance tests apply those limits.
Duty cycle there is measured over one hour.  A lower ``cap_permille`` may be configured; a higher
one than the regulation allows raises ValueError.

Exactness
  A transmission starting at ``now_ms`` with ``airtime_us`` is charged to the millisecond at which
  it ends (rounded up).  ``used_us(t)`` sums every charge whose time is >= t - 3600 s, i.e. every
  transmission that overlaps ANY window reaching back from t.  A new transmission of length d
  is allowed when used_us(now) + d <= limit; every 3600 s window that contains any part of the new
  transmission starts at or after now - 3600 s, so it can only contain transmissions already
  counted in used_us(now): no 3600 s window (sliding, at any alignment) ever holds more airtime
  than the budget.  The check is conservative, never optimistic.

Memory bound
  A ring of ``slots`` (time, airtime) pairs in two preallocated lists.  A record whose time falls in
  the same ``bucket_ms`` bucket (default one minute) as the newest slot is merged into it and the
  slot takes the LATER time, so merged airtime is counted for longer, never shorter.  Times in the
  ring never decrease (a record with an earlier end time is charged at the newest slot's time,
  again later).  With one-minute buckets at most 62 slots are alive within an hour; the default
  ring has 64.  Should the ring still fill, the two oldest slots are merged into the younger one.

Priorities (``PRIORITY_PERMILLE``): class p may only spend the budget up to a share of it, so that
when the hour runs short real alerts still go out, then receipts, then bulletins/consent, then sync:
  0 = real alert        100 %
  1 = receipt            95 %
  2 = bulletin/consent   85 %
  3 = sync traffic       70 %

Time is a plain growing integer millisecond count supplied by the caller (the shell converts
ticks); no ticks arithmetic here.  Calls must not go back in time.
"""

WINDOW_MS = 3600000

# priority class -> share of the budget (permille) it may use
PRIORITY_PERMILLE = (1000, 950, 850, 700)
ALERT = 0
RECEIPT = 1
BULLETIN = 2
SYNC = 3

# region -> (regulatory maximum in permille, default cap in permille)
REGIONS = {
    "EU_868": (100, 100),
    "EU_868_1": (10, 10),
    "EU_433": (100, 100),
    "US_915": (1000, 100),
}


class DutyCycle:
    def __init__(self, region, cap_permille=None, bucket_ms=60000, slots=None):
        if region not in REGIONS:
            raise ValueError("unknown region")
        legal, default = REGIONS[region]
        if cap_permille is None:
            cap_permille = default
        if cap_permille < 1 or cap_permille > legal:
            raise ValueError("cap_permille outside 1..regulatory maximum")
        if bucket_ms < 1 or bucket_ms > WINDOW_MS:
            raise ValueError("bucket_ms out of range")
        if slots is None:
            slots = WINDOW_MS // bucket_ms + 4
        if slots < 2:
            raise ValueError("need at least 2 slots")
        self.region = region
        self.cap_permille = cap_permille
        # 3600 s * 10^6 us/s * permille / 1000
        self.budget_us = 3600000 * cap_permille
        self._bucket = bucket_ms
        self._n = slots
        self._t = [0] * slots  # charge time (ms), non-decreasing from oldest to newest
        self._a = [0] * slots  # airtime (us)
        self._head = 0  # index of the oldest slot
        self._len = 0

    def limit_us(self, priority):
        """The part of the budget priority class `priority` may fill."""
        if priority < 0:
            priority = 0
        if priority >= len(PRIORITY_PERMILLE):
            priority = len(PRIORITY_PERMILLE) - 1
        return self.budget_us * PRIORITY_PERMILLE[priority] // 1000

    def used_us(self, now_ms):
        """Airtime charged to transmissions overlapping the hour that ends at now_ms."""
        horizon = now_ms - WINDOW_MS
        total = 0
        n = self._n
        i = self._head
        for _ in range(self._len):
            if self._t[i] >= horizon:
                total += self._a[i]
            i += 1
            if i == n:
                i = 0
        return total

    def can_send(self, airtime_us, now_ms, priority=ALERT):
        return self.used_us(now_ms) + airtime_us <= self.limit_us(priority)

    def wait_ms(self, airtime_us, now_ms, priority=ALERT):
        """Milliseconds from now_ms until can_send() would be True (0 = now), assuming nothing
        else is sent meanwhile; None if the airtime exceeds the class limit even on an idle hour."""
        limit = self.limit_us(priority)
        if airtime_us > limit:
            return None
        allowed = limit - airtime_us
        used = self.used_us(now_ms)
        if used <= allowed:
            return 0
        horizon = now_ms - WINDOW_MS
        n = self._n
        i = self._head
        for _ in range(self._len):
            t = self._t[i]
            if t >= horizon:
                used -= self._a[i]
                # this slot stops counting once horizon > t, i.e. at t + WINDOW_MS + 1
                if used <= allowed:
                    return t + WINDOW_MS + 1 - now_ms
            i += 1
            if i == n:
                i = 0
        return 0  # unreachable: with every slot expired used is 0 <= allowed

    def record(self, airtime_us, now_ms):
        """Charge a transmission that started at now_ms and lasted airtime_us."""
        if airtime_us < 0:
            raise ValueError("negative airtime")
        end = now_ms + (airtime_us + 999) // 1000
        self._expire(now_ms)
        n = self._n
        if self._len:
            last = self._head + self._len - 1
            if last >= n:
                last -= n
            lt = self._t[last]
            if end <= lt:
                end = lt  # keep times monotonic: charge later, never earlier
            if end // self._bucket == lt // self._bucket:
                self._t[last] = end
                self._a[last] += airtime_us
                return
        if self._len == n:
            self._merge_oldest()
        j = self._head + self._len
        if j >= n:
            j -= n
        self._t[j] = end
        self._a[j] = airtime_us
        self._len += 1

    def _expire(self, now_ms):
        horizon = now_ms - WINDOW_MS
        n = self._n
        while self._len and self._t[self._head] < horizon:
            self._a[self._head] = 0
            self._head += 1
            if self._head == n:
                self._head = 0
            self._len -= 1

    def _merge_oldest(self):
        # Move the oldest slot's airtime into the next one (a later time): conservative.
        h = self._head
        nxt = h + 1
        if nxt == self._n:
            nxt = 0
        self._a[nxt] += self._a[h]
        self._a[h] = 0
        self._head = nxt
        self._len -= 1

    @property
    def slots_in_use(self):
        return self._len
