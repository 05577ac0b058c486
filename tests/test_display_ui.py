"""Display (SSD1306 + word wrap + scrolling), Button (debounce, long press, panic gesture) and Signals
(LED/buzzer pattern timelines).  CPython with the pure-Python MonoFB; a MicroPython run at the end."""

import pytest
from chipmodels import FakePin
from hypothesis import given
from hypothesis import strategies as st
from plexnode import display as disp_mod
from plexnode.display import FONT, Display, MonoFB, init_sequence, wrap
from plexnode.ui import PATTERNS, Button, Signals, timeline

# The readable source of plexnode.display.FONT: 5x8 glyphs ('#' = lit), 16 per band, in ASCII order.
FONT_ART = {
    ' !"#$%&\'()*+,-./': (
        '..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... ..... ..... ..... ..... .....',
        '..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#',
        '..... ..#.. ..... ##### #.#.. ...#. #.#.. ..... .#... ...#. #.#.# ..#.. ..... ..... ..... ...#.',
        '..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. ##### ..... ##### ..... ..#..',
        '..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#.. ..... ..... ..... .#...',
        '..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... #....',
        '..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... ..... ..#.. ..... ..#.. .....',
        '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... .....',
    ),
    '0123456789:;<=>?': (
        '.###. ..#.. .###. ##### ...#. ##### ..##. ##### .###. .###. ..... ..... ...#. ..... .#... .###.',
        '#...# .##.. #...# ...#. ..##. #.... .#... ....# #...# #...# ..... ..... ..#.. ..... ..#.. #...#',
        '#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#. #...# #...# ..#.. ..#.. .#... ##### ...#. ....#',
        '#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#.. .###. .#### ..... ..... #.... ..... ....# ...#.',
        '##..# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....# ..... ..... .#... ##### ...#. ..#..',
        '#...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#. ..#.. ..#.. ..#.. ..... ..#.. .....',
        '.###. .###. ##### .###. ...#. .###. .###. .#... .###. .##.. ..... ..#.. ...#. ..... .#... ..#..',
        '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... ..... .....',
    ),
    '@ABCDEFGHIJKLMNO': (
        '.###. .###. ####. .###. ###.. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.',
        '#...# #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#',
        '#.### #...# #...# #.... #...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#',
        '#.#.# ##### ####. #.... #...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#',
        '#.### #...# #...# #.... #...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#',
        '#.... #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#',
        '.###. #...# ####. .###. ###.. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.',
        '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....',
    ),
    'PQRSTUVWXYZ[\\]^_': (
        '####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###. ..... .###. ..#.. .....',
        '#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#... #.... ...#. .#.#. .....',
        '#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#... .#... ...#. #...# .....',
        '####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....',
        '#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#... ...#. ...#. ..... .....',
        '#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#... ....# ...#. ..... .....',
        '#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###. ..... .###. ..... .....',
        '..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... #####',
    ),
    '`abcdefghijklmno': (
        '.#... ..... #.... ..... ....# ..... ..##. ..... #.... ..#.. ...#. #.... .##.. ..... ..... .....',
        '..#.. ..... #.... ..... ....# ..... .#..# ..... #.... ..... ..... #.... ..#.. ..... ..... .....',
        '..... .###. #.##. .###. .##.# .###. .#... .#### #.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###.',
        '..... ....# ##..# #.... #..## #...# ###.. #...# ##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...#',
        '..... .#### #...# #.... #...# ##### .#... #...# #...# ..#.. ...#. ##... ..#.. #.#.# #...# #...#',
        '..... #...# #...# #...# #...# #.... .#... .#### #...# ..#.. ...#. #.#.. ..#.. #.#.# #...# #...#',
        '..... .#### ####. .###. .#### .###. .#... ....# #...# .###. #..#. #..#. .###. #.#.# #...# .###.',
        '..... ..... ..... ..... ..... ..... ..... .###. ..... ..... .##.. ..... ..... ..... ..... .....',
    ),
    'pqrstuvwxyz{|}~': (
        '..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ...#. ..#.. .#... .....',
        '..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. .....',
        '####. .#### #.##. .#### ###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#...',
        '#...# #...# ##..# #.... .#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.#',
        '#...# #...# #.... .###. .#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#.',
        '####. .#### #.... ....# .#..# #..## .#.#. #.#.# .#.#. .#### .#... ..#.. ..#.. ..#.. .....',
        '#.... ....# #.... ####. ..##. .##.# ..#.. .#.#. #...# ....# ##### ...#. ..#.. .#... .....',
        '#.... ....# ..... ..... ..... ..... ..... ..... ..... .###. ..... ..... ..... ..... .....',
    ),
}


def glyph(ch):
    for chars, rows in FONT_ART.items():
        i = chars.find(ch)
        if i >= 0:
            return [r.split(" ")[i] for r in rows]
    raise KeyError(ch)


class FakeI2C:
    def __init__(self):
        self.writes = []

    def writeto(self, addr, buf):
        self.writes.append((addr, bytes(buf)))

    def commands(self):
        return [b[1] for a, b in self.writes if len(b) == 2 and b[0] == 0x80]

    def frames(self):
        return [b for a, b in self.writes if len(b) > 2]


def make_display(**kw):
    i2c = FakeI2C()
    d = Display(i2c, fb_factory=MonoFB, delay_ms=lambda ms: None, **kw)
    return i2c, d


def cell_pixels(fb, col, row):
    """8x8 pixels of text cell (col, row) as 8 strings."""
    return ["".join("#" if fb.pixel(col * 8 + x, row * 8 + y) else "." for x in range(8)) for y in range(8)]


def expected_cell(ch, inverse=False):
    g = glyph(ch)
    rows = []
    for y in range(8):
        r = "." + g[y] + ".."
        if inverse:
            r = "".join("." if c == "#" else "#" for c in r)
        rows.append(r)
    return rows


# --- font and frame buffer --------------------------------------------------------------------------------
def test_font_bytes_match_art():
    assert len(FONT) == 95 * 5
    for code in range(32, 127):
        g = glyph(chr(code))
        for x in range(5):
            col = sum(1 << y for y in range(8) if g[y][x] == "#")
            assert FONT[(code - 32) * 5 + x] == col, (chr(code), x)


def test_monofb_vlsb_layout():
    buf = bytearray(128 * 8)
    fb = MonoFB(buf, 128, 64)
    fb.pixel(3, 0, 1)
    fb.pixel(3, 9, 1)
    fb.pixel(127, 63, 1)
    assert buf[3] == 0x01 and buf[128 + 3] == 0x02 and buf[7 * 128 + 127] == 0x80
    fb.pixel(3, 0, 0)
    assert buf[3] == 0
    fb.fill(1)
    assert set(buf) == {0xFF}
    fb.pixel(200, 5, 1)  # clipped, no error


@pytest.mark.parametrize("text", ["Hi!", "g@{", "Plexus 42"])
def test_text_renders_expected_pixels(text):
    buf = bytearray(128 * 8)
    fb = MonoFB(buf, 128, 64)
    fb.text(text, 0, 8, 1)
    for i, ch in enumerate(text):
        assert cell_pixels(fb, i, 1) == expected_cell(ch), ch
    assert all(b == 0 for b in buf[:128])  # nothing outside row 1


# --- SSD1306 protocol ---------------------------------------------------------------------------------------
def test_init_sequence_and_frame_write():
    i2c, d = make_display()
    cmds = i2c.commands()
    init = list(init_sequence(128, 64))
    assert cmds[: len(init)] == init
    assert init[0] == 0xAE and init[-1] == 0xAF
    assert init[init.index(0x8D) + 1] == 0x14  # charge pump on
    assert init[init.index(0xA8) + 1] == 63
    # show(): column window 0..127, page window 0..7, then 1 control byte + 1024 data bytes
    assert cmds[len(init) : len(init) + 6] == [0x21, 0, 127, 0x22, 0, 7]
    frame = i2c.frames()[-1]
    assert len(frame) == 1025 and frame[0] == 0x40
    assert all(a == 0x3C for a, _ in i2c.writes)


def test_reset_pin_pulsed():
    rst = FakePin("RST", 1)
    levels = []
    rst._on_change = lambda old, new: levels.append(new)
    Display(FakeI2C(), reset_pin=rst, fb_factory=MonoFB, delay_ms=lambda ms: None)
    assert levels == [1, 0, 1]


def test_128x32_panel():
    i2c, d = make_display(height=32)
    assert (d.cols, d.rows) == (16, 4)
    init = list(init_sequence(128, 32))
    assert init[init.index(0xDA) + 1] == 0x02
    assert len(i2c.frames()[-1]) == 1 + 128 * 4


# --- word wrap ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,width,lines",
    [
        ("The quick brown fox jumps over the lazy dog", 16, ["The quick brown", "fox jumps over", "the lazy dog"]),
        ("abcdefghijklmnopqrstuvwxyz", 16, ["abcdefghijklmnop", "qrstuvwxyz"]),
        ("meet at  the\tgate", 16, ["meet at the gate"]),
        ("line one\n\nline three\n", 16, ["line one", "", "line three"]),
        ("caf\u00e9 \u2713 ok", 16, ["caf? ? ok"]),
        ("", 16, [""]),
        ("exactly sixteen!", 16, ["exactly sixteen!"]),
        ("exactly sixteen! x", 16, ["exactly sixteen!", "x"]),
        ("a bb ccc dddd", 4, ["a bb", "ccc", "dddd"]),
    ],
)
def test_wrap_examples(text, width, lines):
    assert wrap(text, width) == lines


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.just("\n"), max_size=300), st.integers(4, 21))
def test_wrap_properties(text, width):
    lines = wrap(text, width)
    assert all(len(line) <= width for line in lines)
    assert "".join("".join(lines).split()) == "".join(text.split())  # no character lost or added


# --- screens --------------------------------------------------------------------------------------------------
def test_status_screen():
    i2c, d = make_display()
    d.show_status(
        {"name": "oak-7 long node name", "group": "river", "neighbours": 5, "battery_pct": 87, "battery_mv": 3987, "duty_pct": 2.43, "duty_limit_pct": 10}
    )
    assert d.screen == "status"
    assert d.lines == ["grp river", "nbrs 5", "bat 87% 3.98V", "duty 2.4%/10%"]
    fb = d.fb
    # title bar: inverted cells of the (clipped) name
    for i, ch in enumerate("oak-7 long node "):
        assert cell_pixels(fb, i, 0) == expected_cell(ch, inverse=True)
    for i, ch in enumerate("nbrs 5"):
        assert cell_pixels(fb, i, 2) == expected_cell(ch)
    # the frame sent to the panel is the frame buffer
    assert i2c.frames()[-1][1:] == bytes(fb.buf)


def test_status_missing_values():
    i2c, d = make_display()
    d.show_status({"name": "n"})
    assert d.lines == ["grp -", "nbrs -", "bat -", "duty -"]


def test_message_pages_and_scrolling():
    i2c, d = make_display(scroll_ms=1000)
    text = " ".join("word%02d" % i for i in range(40))  # 40 words, 2 per line -> 20 lines
    pages = d.show_message("Bulletin 12", text)
    assert d.lines[0] == "word00 word01" and len(d.lines) == 20
    assert pages == 3 and d.top == 0
    assert cell_pixels(d.fb, 0, 1) == expected_cell("w")
    assert d.tick(0) is False  # first tick arms the timer
    assert d.tick(999) is False and d.top == 0
    assert d.tick(1000) is True and d.top == 1
    assert cell_pixels(d.fb, 4, 1) == expected_cell("0") and cell_pixels(d.fb, 5, 1) == expected_cell("2")
    t = 1000
    tops = [1]
    for _ in range(14):
        t += 1000
        d.tick(t)
        tops.append(d.top)
    assert tops == list(range(1, 14)) + [0, 1]  # 20 lines, 7 visible: 0..13 then back to the top
    assert d.show_message("B", text, page=1) == 3 and d.top == 7
    assert d.show_message("B", text, page=99) == 3 and d.top == 14


def test_short_message_does_not_scroll():
    i2c, d = make_display()
    assert d.show_message("Hi", "short text") == 1
    n = len(i2c.writes)
    assert not d.tick(0) and not d.tick(10_000)
    assert len(i2c.writes) == n


def test_alert_drill_vs_real():
    i2c, d = make_display(blink_ms=500)
    d.show_alert("drill", "Evacuation drill at the north gate")
    assert d.title == "-- DRILL --"
    d.tick(0)
    d.tick(600)
    d.tick(1200)
    assert not d.inverted and 0xA7 not in i2c.commands()[-20:]
    d.show_alert("alert", "Police at the north gate. Go to the south exit.")
    assert d.title == "!! ALERT !!"
    assert d.lines == ["Police at the", "north gate. Go", "to the south", "exit."]
    d.tick(0)
    assert d.tick(500) and d.inverted
    assert d.tick(1000) and not d.inverted
    assert 0xA7 in i2c.commands() and 0xA6 in i2c.commands()
    d.show_status({"name": "x"})
    assert not d.inverted  # leaving the alert restores normal video


def test_display_uses_framebuf_when_available():
    # CPython has no framebuf module: the default factory falls back to MonoFB.
    assert disp_mod._framebuf is None
    d = Display(FakeI2C(), delay_ms=lambda ms: None)
    assert isinstance(d.fb, MonoFB)


# --- Button -------------------------------------------------------------------------------------------------
class Btn:
    """Drive a FakePin through a timeline and collect Button events."""

    def __init__(self, active_low=True, **kw):
        self.pin = FakePin("BTN", 1 if active_low else 0)
        self.al = active_low
        self.t = 0
        self.b = Button(self.pin, 0, active_low=active_low, **kw)
        self.events = []

    def set(self, pressed):
        self.pin.value((not pressed) if self.al else pressed)

    def run(self, ms, step=5):
        end = self.t + ms
        while self.t < end:
            self.t += step
            ev = self.b.poll(self.t)
            if ev:
                self.events.append((ev, self.t))

    def press(self, ms):
        self.set(True)
        self.run(ms)
        self.set(False)
        self.run(100)


def test_short_press_with_bounce():
    h = Btn()
    for _ in range(4):  # contact bounce: 4 toggles 5 ms apart
        h.set(True)
        h.run(5)
        h.set(False)
        h.run(5)
    assert h.events == []
    h.press(200)
    assert [e for e, _ in h.events] == ["short"]


def test_glitch_shorter_than_debounce_ignored():
    h = Btn(debounce_ms=30)
    h.set(True)
    h.run(20)
    h.set(False)
    h.run(200)
    assert h.events == [] and not h.b.pressed


def test_long_press_fires_while_held():
    h = Btn(long_ms=1000)
    h.set(True)
    h.run(1100)
    assert [e for e, _ in h.events] == ["long"]
    t_long = h.events[0][1]
    assert 1000 <= t_long <= 1040
    h.set(False)
    h.run(200)
    assert [e for e, _ in h.events] == ["long"]  # release after a long press is silent


def test_panic_gesture():
    h = Btn()
    h.press(1200)
    h.press(150)
    h.press(1200)
    assert [e for e, _ in h.events] == ["long", "short", "panic"]


def test_panic_gesture_too_slow_is_just_presses():
    h = Btn(panic_window_ms=5000)
    h.press(1200)
    h.run(3000)
    h.press(150)
    h.run(1500)
    h.press(1200)
    assert [e for e, _ in h.events] == ["long", "short", "long"]


def test_panic_needs_the_exact_order():
    h = Btn()
    h.press(150)
    h.press(1200)
    h.press(1200)
    assert [e for e, _ in h.events] == ["short", "long", "long"]


def test_active_high_button_and_held_at_boot():
    h = Btn(active_low=False)
    h.press(100)
    assert [e for e, _ in h.events] == ["short"]
    pin = FakePin("BTN", 0)  # active low, already pressed at start-up
    b = Button(pin, 0)
    assert all(b.poll(t) is None for t in range(0, 3000, 10))
    pin.value(1)
    assert all(b.poll(t) is None for t in range(3000, 3200, 10))


def test_button_survives_ticks_wrap():
    pin = FakePin("BTN", 1)
    start = (1 << 30) - 50
    b = Button(pin, start)
    pin.value(0)
    evs = []
    for k in range(0, 400, 5):
        ev = b.poll((start + k) % (1 << 30))
        if ev:
            evs.append(ev)
    pin.value(1)
    for k in range(400, 500, 5):
        ev = b.poll((start + k) % (1 << 30))
        if ev:
            evs.append(ev)
    assert evs == ["short"]


# --- Signals ------------------------------------------------------------------------------------------------
class PWM:
    def __init__(self):
        self.f = None
        self.d = 0

    def freq(self, f):
        self.f = f

    def duty_u16(self, d):
        self.d = d


def record(sig, led, name, until_ms, start=0):
    """Play `name` and sample the LED every ms; returns [(on_ms, off_ms), ...] as observed."""
    sig.play(name, start)
    samples = []
    for t in range(start, start + until_ms):
        sig.tick(t)
        samples.append(bool(led.value()))
    runs = []
    cur, n = samples[0], 0
    for s in samples:
        if s == cur:
            n += 1
        else:
            runs.append((cur, n))
            cur, n = s, 1
    runs.append((cur, n))
    steps = []
    for i in range(0, len(runs), 2):
        on = runs[i][1] if runs[i][0] else 0
        off = runs[i + 1][1] if i + 1 < len(runs) else 0
        steps.append((on, off))
    return steps


def test_drill_and_alert_patterns_differ():
    drill, alert = timeline("drill"), timeline("alert")
    assert drill != alert
    assert PATTERNS["drill"][1] != PATTERNS["alert"][1]  # different pitch
    assert PATTERNS["alert"][2] > PATTERNS["drill"][2]  # the real alert wins
    # A real alert pulses faster: its shortest "on" is well under the drill's.
    assert min(on for on, _ in alert) * 2 <= min(on for on, _ in drill)
    assert len(set(on for on, _ in alert)) > 1 and len(set(on for on, _ in drill)) == 1  # rhythm vs even beat
    for name in PATTERNS:
        assert all(on > 0 and off >= 0 for on, off in timeline(name))


@pytest.mark.parametrize("name", ["drill", "alert", "ack", "panic_sent"])
def test_led_follows_timeline(name):
    led = FakePin("LED", 0)
    sig = Signals(led, None)
    total = sum(on + off for on, off in timeline(name))
    observed = record(sig, led, name, total + 50)
    want = timeline(name)
    # the last "off" runs into the idle tail
    assert observed[: len(want) - 1] == want[:-1]
    assert observed[len(want) - 1][0] == want[-1][0]
    assert sig.current is None and not led.value()


def test_buzzer_pwm_tones_and_led_only_patterns():
    led, bz = FakePin("LED", 0), PWM()
    sig = Signals(led, bz)
    sig.play("alert", 0)
    sig.tick(1)
    assert bz.f == 2900 and bz.d > 0
    sig.tick(150)
    assert bz.d == 0 and not led.value()
    sig.play("drill", 10_000, force=True)
    sig.tick(10_001)
    assert bz.f == 880 and bz.d > 0
    sig.stop()
    sig.play("rx", 20_000)
    sig.tick(20_001)
    assert led.value() and bz.d == 0  # radio blips never beep
    sig.muted = True
    sig.play("ack", 30_000, force=True)
    sig.tick(30_001)
    assert led.value() and bz.d == 0


def test_active_buzzer_pin_and_active_low_led():
    led, bz = FakePin("LED", 1), FakePin("BZ", 0)
    sig = Signals(led, bz, led_active_low=True)
    assert led.value() == 1  # off
    sig.play("drill", 0)
    sig.tick(0)
    assert led.value() == 0 and bz.value() == 1
    sig.tick(300)
    assert led.value() == 1 and bz.value() == 0


def test_priorities():
    led = FakePin("LED", 0)
    sig = Signals(led)
    assert sig.play("alert", 0)
    assert not sig.play("rx", 10)  # a receive blip does not cut a real alert
    assert not sig.play("drill", 10)
    assert sig.current == "alert"
    sig.stop()
    assert sig.play("rx", 20)
    assert sig.play("alert", 21)  # and an alert cuts a blip
    assert sig.current == "alert"


def test_signals_tick_catches_up_after_a_long_gap():
    led = FakePin("LED", 0)
    sig = Signals(led)
    sig.play("ack", 0)
    assert sig.tick(10_000) is False and sig.current is None and not led.value()


# --- real MicroPython ----------------------------------------------------------------------------------------
MPY_DISPLAY = r"""
def _display_mpy_check():
    import framebuf
    from plexnode.display import Display, MonoFB, wrap
    from plexnode.ui import Button, Signals, timeline

    class I2C:
        def __init__(self):
            self.n = 0
            self.last = None
        def writeto(self, addr, buf):
            self.n += 1
            if len(buf) > 2:
                self.last = bytes(buf)

    i2c = I2C()
    d = Display(i2c, delay_ms=lambda ms: None)   # default factory: the port's framebuf
    kind = type(d.fb).__name__
    pages = d.show_message("Bulletin", _DISPLAY_UI_TEXT)
    frame = i2c.last
    title_white = sum(1 for b in frame[1 + 100:1 + 128] if b == 0xFF)   # blank end of the title bar
    body_ink = sum(1 for b in frame[1 + 128:1 + 256] if b)               # first body row has text
    lines = wrap(_DISPLAY_UI_TEXT, 16)
    d.tick(0)
    d.tick(1500)
    top = d.top

    buf = bytearray(128 * 8)
    fb = MonoFB(buf, 128, 64)
    fb.text("Hi! g@{", 0, 8, 1)
    mono = sum(buf[i] * (i + 1) for i in range(len(buf)))

    class P:
        def __init__(self, v):
            self.v = v
        def value(self, v=None):
            if v is None:
                return self.v
            self.v = v
    bp = P(1)
    b = Button(bp, 0)
    evs = []
    t = 0
    for hold in (1200, 150, 1200):
        bp.v = 0
        for _ in range(hold // 5):
            t += 5
            e = b.poll(t)
            if e:
                evs.append(e)
        bp.v = 1
        for _ in range(20):
            t += 5
            e = b.poll(t)
            if e:
                evs.append(e)
    led = P(0)
    s = Signals(led, None)
    s.play("drill", 0)
    on = 0
    for ms in range(0, 6000):
        s.tick(ms)
        on += 1 if led.v else 0
    print(";".join(str(x) for x in (kind, pages, title_white, body_ink, "|".join(lines), top, mono, ",".join(evs), on, len(timeline("alert")))))

_display_mpy_check()
del _display_mpy_check
import gc
gc.collect()
"""

MPY_TEXT = "Assembly moved to the old mill at 19:00. Bring water, a torch and your neighbour."


@pytest.mark.mpy
def test_display_and_ui_under_micropython(mpy):
    out = mpy.run("_DISPLAY_UI_TEXT = %r\n" % MPY_TEXT + MPY_DISPLAY).strip().split(";")
    kind, pages, title_white, body_ink, lines, top, mono, evs, on, nalert = out
    assert kind == "FrameBuffer"
    assert pages == "1"
    assert int(title_white) >= 20 and int(body_ink) > 50
    # same wrapping and the same fallback pixels as CPython
    assert lines.split("|") == wrap(MPY_TEXT, 16)
    assert top == "0"  # six lines fit on one page: no scrolling
    buf = bytearray(128 * 8)
    MonoFB(buf, 128, 64).text("Hi! g@{", 0, 8, 1)
    assert int(mono) == sum(buf[i] * (i + 1) for i in range(len(buf)))
    assert evs == "long,short,panic"
    assert int(on) == sum(o for o, _ in timeline("drill"))
    assert int(nalert) == len(timeline("alert"))
