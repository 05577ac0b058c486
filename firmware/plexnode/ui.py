"""Button, LED and buzzer: sans-I/O state machines driven by integer milliseconds.

Button.poll(now_ms) turns raw pin levels into debounced "short" / "long" presses and recognises the
panic confirmation gesture (long, short, long within panic_window_ms) as "panic".
Signals.tick(now_ms) plays LED/buzzer patterns, each a timeline of (on_ms, off_ms) steps; a drill and
a real alert sound and look different on purpose (tempo, rhythm and pitch).

`now_ms` is any millisecond counter; a wrapped time.ticks_ms() value (period 2^30) is tolerated.
"""

def _elapsed(now, then):
    d = now - then
    if d < 0:  # time.ticks_ms() wrapped (period 2^30 ms)
        d += 1 << 30
    return d


SHORT = "short"
LONG = "long"
PANIC = "panic"


class Button:
    """Debounced push button.

    pin: machine.Pin-like (value()); active_low: pressed reads 0 (button to GND with pull-up).
    A press shorter than long_ms yields "short" on release; holding for long_ms yields "long" at once
    (while still held; the release is then silent).  The gesture long, short, long with the whole
    sequence inside panic_window_ms yields "panic" in place of the final "long"."""

    def __init__(self, pin, now_ms, active_low=True, debounce_ms=30, long_ms=1000, panic_window_ms=5000):
        self._pin = pin
        self._active_low = active_low
        self.debounce_ms = debounce_ms
        self.long_ms = long_ms
        self.panic_window_ms = panic_window_ms
        raw = self._read()
        self._raw = raw
        self._raw_at = now_ms
        self._stable = raw
        self._down_at = now_ms
        self._long_sent = raw  # a button held at start-up must be released before it counts
        self._hist = []  # recent (event, time) for the panic gesture

    def _read(self):
        v = self._pin.value()
        return (not v) if self._active_low else bool(v)

    @property
    def pressed(self):
        """Debounced state."""
        return self._stable

    def poll(self, now_ms):
        """Call often (every 5..20 ms).  Returns "short", "long", "panic" or None."""
        raw = self._read()
        if raw != self._raw:
            self._raw = raw
            self._raw_at = now_ms
        ev = None
        if raw != self._stable and _elapsed(now_ms, self._raw_at) >= self.debounce_ms:
            self._stable = raw
            if raw:
                self._down_at = self._raw_at
                self._long_sent = False
            elif not self._long_sent:
                ev = SHORT
        if self._stable and not self._long_sent and _elapsed(now_ms, self._down_at) >= self.long_ms:
            self._long_sent = True
            ev = LONG
        if ev is not None:
            ev = self._gesture(ev, now_ms)
        return ev

    def _gesture(self, ev, now_ms):
        h = self._hist
        h.append((ev, now_ms))
        if len(h) > 3:
            h.pop(0)
        if (
            len(h) == 3
            and h[0][0] == LONG
            and h[1][0] == SHORT
            and h[2][0] == LONG
            and _elapsed(now_ms, h[0][1]) <= self.panic_window_ms
        ):
            self._hist = []
            return PANIC
        return ev


# Patterns: name -> (steps, buzzer tone in Hz (0 = LED only), priority, repeats).
# A step is (on_ms, off_ms).  Higher priority patterns are not interrupted by lower ones.
PATTERNS = {
    # Heartbeat-style blips for radio activity: LED only, lowest priority.
    "rx": (((30, 0),), 0, 0, 1),
    "tx": (((10, 40), (10, 0)), 0, 0, 1),
    # Acknowledgement: two quick chirps.
    "ack": (((60, 60), (60, 0)), 2000, 1, 1),
    "error": (((400, 200), (400, 0)), 600, 1, 1),
    # A drill: slow, even, low-pitched beeps - unmistakably "practice".
    "drill": (((300, 700),), 880, 2, 5),
    # A real alert: fast triple bursts then a long tone, high pitch, repeated - unmistakably urgent.
    "alert": (((100, 80), (100, 80), (100, 80), (700, 300)), 2900, 3, 8),
    # Panic gesture accepted: long solid tone, then "sent" flutter.
    "panic_armed": (((1500, 200),), 2000, 3, 1),
    "panic_sent": (((50, 50),), 2400, 3, 10),
}


def timeline(name):
    """The full (on_ms, off_ms) timeline of a pattern, repeats expanded."""
    steps, _tone, _prio, reps = PATTERNS[name]
    return list(steps) * reps


class Signals:
    """LED and optional buzzer player.

    led_pin: machine.Pin-like or None; led_active_low: LED lit when the pin is 0 (T-Beam).
    buzzer: a machine.PWM-like object (freq(), duty_u16()) for a passive buzzer, or a Pin for an
    active buzzer, or None.  play(name, now_ms) starts a pattern; tick(now_ms) drives the outputs."""

    def __init__(self, led_pin=None, buzzer=None, led_active_low=False, volume_u16=32768):
        self._led = led_pin
        self._led_al = led_active_low
        self._bz = buzzer
        self._pwm = buzzer is not None and hasattr(buzzer, "duty_u16")
        self.volume_u16 = volume_u16
        self.muted = False
        self._name = None
        self._steps = ()
        self._tone = 0
        self._prio = -1
        self._reps = 0
        self._i = 0
        self._rep = 0
        self._on = False
        self._t0 = 0
        self._set(False)

    @property
    def current(self):
        """Name of the pattern playing, or None."""
        return self._name

    def play(self, name, now_ms, force=False):
        """Start pattern `name`; ignored (returns False) while a higher-priority pattern plays."""
        steps, tone, prio, reps = PATTERNS[name]
        if self._name is not None and prio < self._prio and not force:
            return False
        self._name = name
        self._steps = steps
        self._tone = tone
        self._prio = prio
        self._reps = reps
        self._i = 0
        self._rep = 0
        self._start_step(now_ms)
        return True

    def stop(self):
        self._name = None
        self._prio = -1
        self._set(False)

    def _start_step(self, now_ms):
        self._t0 = now_ms
        self._on = True
        self._set(True)

    def tick(self, now_ms):
        """Drive the outputs; returns True while a pattern plays."""
        if self._name is None:
            return False
        while True:
            on_ms, off_ms = self._steps[self._i]
            el = _elapsed(now_ms, self._t0)
            if self._on:
                if el < on_ms:
                    return True
                self._on = False
                self._set(False)
                self._t0 = self._t0 + on_ms
                continue
            if el < off_ms:
                return True
            self._t0 = self._t0 + off_ms
            self._i += 1
            if self._i >= len(self._steps):
                self._i = 0
                self._rep += 1
                if self._rep >= self._reps:
                    self.stop()
                    return False
            self._on = True
            self._set(True)

    @property
    def led_on(self):
        return self._on and self._name is not None

    def _set(self, on):
        led = self._led
        if led is not None:
            led.value((not on) if self._led_al else on)
        bz = self._bz
        if bz is None:
            return
        sound = on and self._tone and not self.muted
        if self._pwm:
            if sound:
                bz.freq(self._tone)
                bz.duty_u16(self.volume_u16)
            else:
                bz.duty_u16(0)
        else:
            bz.value(1 if sound else 0)

