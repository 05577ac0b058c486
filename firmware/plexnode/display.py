"""SSD1306 128x64 OLED over I2C: status screen, bulletins/alerts with word wrap and scrolling.

Drawing goes through a framebuf-like object (MicroPython's `framebuf.FrameBuffer`, MONO_VLSB) made by
an injectable factory; `MonoFB` is a small pure-Python stand-in (own 5x7 font in 8x8 cells, the
same cell size as framebuf's built-in font) for ports without `framebuf` and for tests.
Text cells are 8x8 pixels: 16 columns x 8 rows on a 128x64 panel.

Sans-I/O timing: `tick(now_ms)` takes the time as an integer; nothing here reads a clock.
SSD1306 command references are to the Solomon Systech SSD1306 datasheet rev. 1.1, section 10
("Command Descriptions") and 8.1.5 (I2C: control byte 0x80 = one command, 0x40 = data stream).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


try:
    import framebuf as _framebuf
except ImportError:  # CPython, or a port built without framebuf
    _framebuf = None  # type: ignore[assignment]

CELL = const(8)  # text cell width and height in pixels

# Own 5x7 font (descenders use the 8th row), ASCII 32..126, 5 column bytes per glyph, bit 0 = top row.
# The readable source of every glyph is FONT_ART in tests/test_display_ui.py (a test checks they match).
FONT = (
    b"\x00\x00\x00\x00\x00\x00\x00\x5f\x00\x00\x00\x03\x00\x03\x00\x14\x7f\x14\x7f\x14\x24\x2a\x7f\x2a\x12\x23\x13\x08\x64\x62\x36\x49\x55\x22\x50\x00\x00\x03\x00\x00"
    b"\x00\x1c\x22\x41\x00\x00\x41\x22\x1c\x00\x14\x08\x3e\x08\x14\x08\x08\x3e\x08\x08\x00\x80\x60\x00\x00\x08\x08\x08\x08\x08\x00\x00\x40\x00\x00\x20\x10\x08\x04\x02"
    b"\x3e\x51\x49\x45\x3e\x00\x42\x7f\x40\x00\x42\x61\x51\x49\x46\x21\x41\x45\x4b\x31\x18\x14\x12\x7f\x10\x27\x45\x45\x45\x39\x3c\x4a\x49\x49\x30\x01\x71\x09\x05\x03"
    b"\x36\x49\x49\x49\x36\x06\x49\x49\x29\x1e\x00\x00\x24\x00\x00\x00\x80\x64\x00\x00\x08\x14\x22\x41\x00\x14\x14\x14\x14\x14\x00\x41\x22\x14\x08\x02\x01\x51\x09\x06"
    b"\x3e\x41\x5d\x55\x1e\x7e\x09\x09\x09\x7e\x7f\x49\x49\x49\x36\x3e\x41\x41\x41\x22\x7f\x41\x41\x22\x1c\x7f\x49\x49\x49\x41\x7f\x09\x09\x09\x01\x3e\x41\x49\x49\x7a"
    b"\x7f\x08\x08\x08\x7f\x00\x41\x7f\x41\x00\x20\x40\x41\x3f\x01\x7f\x08\x14\x22\x41\x7f\x40\x40\x40\x40\x7f\x02\x0c\x02\x7f\x7f\x04\x08\x10\x7f\x3e\x41\x41\x41\x3e"
    b"\x7f\x09\x09\x09\x06\x3e\x41\x51\x21\x5e\x7f\x09\x19\x29\x46\x46\x49\x49\x49\x31\x01\x01\x7f\x01\x01\x3f\x40\x40\x40\x3f\x1f\x20\x40\x20\x1f\x3f\x40\x38\x40\x3f"
    b"\x63\x14\x08\x14\x63\x03\x04\x78\x04\x03\x61\x51\x49\x45\x43\x00\x7f\x41\x41\x00\x02\x04\x08\x10\x20\x00\x41\x41\x7f\x00\x04\x02\x01\x02\x04\x80\x80\x80\x80\x80"
    b"\x00\x01\x02\x00\x00\x20\x54\x54\x54\x78\x7f\x48\x44\x44\x38\x38\x44\x44\x44\x20\x38\x44\x44\x48\x7f\x38\x54\x54\x54\x18\x08\x7e\x09\x01\x02\x18\xa4\xa4\xa4\x7c"
    b"\x7f\x08\x04\x04\x78\x00\x44\x7d\x40\x00\x40\x80\x84\x7d\x00\x7f\x10\x28\x44\x00\x00\x41\x7f\x40\x00\x7c\x04\x78\x04\x78\x7c\x08\x04\x04\x78\x38\x44\x44\x44\x38"
    b"\xfc\x24\x24\x24\x18\x18\x24\x24\x24\xfc\x7c\x08\x04\x04\x08\x48\x54\x54\x54\x24\x04\x3f\x44\x40\x20\x3c\x40\x40\x20\x7c\x1c\x20\x40\x20\x1c\x3c\x40\x30\x40\x3c"
    b"\x44\x28\x10\x28\x44\x1c\xa0\xa0\xa0\x7c\x44\x64\x54\x4c\x44\x00\x08\x36\x41\x00\x00\x00\x7f\x00\x00\x00\x41\x36\x08\x00\x08\x04\x08\x10\x08"
)

_CMD_DISPLAY_OFF = const(0xAE)
_CMD_DISPLAY_ON = const(0xAF)
_CMD_NORMAL = const(0xA6)
_CMD_INVERT = const(0xA7)
_CMD_CONTRAST = const(0x81)
_CMD_COL_ADDR = const(0x21)
_CMD_PAGE_ADDR = const(0x22)


def init_sequence(width=128, height=64, external_vcc=False):
    """SSD1306 power-on commands (datasheet section 10 and its "software initialization" flow)."""
    return (
        _CMD_DISPLAY_OFF,
        0xD5, 0x80,  # clock divide ratio / oscillator frequency (10.3.2)
        0xA8, height - 1,  # multiplex ratio (10.1.11)
        0xD3, 0x00,  # display offset (10.3.3)
        0x40,  # display start line 0 (10.1.6)
        0x8D, 0x10 if external_vcc else 0x14,  # charge pump off/on (charge pump application note)
        0x20, 0x00,  # horizontal addressing mode (10.1.3)
        0xA1,  # segment remap: column 127 -> SEG0 (10.1.8)
        0xC8,  # COM output scan direction remapped (10.1.14)
        0xDA, 0x12 if height == 64 else 0x02,  # COM pins hardware configuration (10.3.5)
        _CMD_CONTRAST, 0x9F if external_vcc else 0xCF,  # contrast (10.1.7)
        0xD9, 0x22 if external_vcc else 0xF1,  # pre-charge period (10.3.4)
        0xDB, 0x40,  # VCOMH deselect level (10.3.6)
        0xA4,  # output follows RAM content (10.1.9)
        _CMD_NORMAL,  # normal, not inverted (10.1.10)
        _CMD_DISPLAY_ON,
    )


class MonoFB:
    """The subset of framebuf.FrameBuffer(buf, w, h, MONO_VLSB) that Display uses, in pure Python.
    Byte (y // 8) * width + x holds 8 vertical pixels, bit (y % 8)."""

    def __init__(self, buf, width, height):
        self.buf = buf
        self.width = width
        self.height = height

    def fill(self, c):
        v = 0xFF if c else 0x00
        b = self.buf
        for i in range(len(b)):
            b[i] = v

    def pixel(self, x, y, c=None):
        if not (0 <= x < self.width and 0 <= y < self.height):
            return None
        i = (y >> 3) * self.width + x
        m = 1 << (y & 7)
        if c is None:
            return 1 if self.buf[i] & m else 0
        if c:
            self.buf[i] |= m
        else:
            self.buf[i] &= ~m & 0xFF
        return None

    def fill_rect(self, x, y, w, h, c):
        for yy in range(max(0, y), min(self.height, y + h)):
            for xx in range(max(0, x), min(self.width, x + w)):
                self.pixel(xx, yy, c)

    def hline(self, x, y, w, c):
        self.fill_rect(x, y, w, 1, c)

    def text(self, s, x, y, c=1):
        for ch in s:
            o = ord(ch)
            if o < 32 or o > 126:
                o = 63  # '?'
            base = (o - 32) * 5
            for col in range(5):
                bits = FONT[base + col]
                for row in range(8):
                    if bits >> row & 1:
                        self.pixel(x + 1 + col, y + row, c)
            x += CELL


def default_fb_factory(buf, width, height):
    """framebuf.FrameBuffer when the port has it, else MonoFB."""
    if _framebuf is not None:
        return _framebuf.FrameBuffer(buf, width, height, _framebuf.MONO_VLSB)
    return MonoFB(buf, width, height)


def ascii_only(text):
    """Printable ASCII and newlines only (the fonts have nothing else); tabs become spaces, others '?'."""
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "\n" or 32 <= o <= 126:
            out.append(ch)
        elif ch == "\t":
            out.append(" ")
        else:
            out.append("?")
    return "".join(out)


def wrap(text, width):
    """Word-wrap to lines of at most `width` characters.  A newline starts a new line (an empty line
    for a blank one); words longer than a line are cut; runs of spaces collapse.  List of str."""
    lines = []
    for para in ascii_only(text).split("\n"):
        line = ""
        for word in para.split():
            while len(word) > width:
                if line:
                    lines.append(line)
                    line = ""
                lines.append(word[:width])
                word = word[width:]
            if not word:
                continue
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= width:
                line = line + " " + word
            else:
                lines.append(line)
                line = word
        lines.append(line)
    while len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def _elapsed(now, then):
    d = now - then
    if d < 0:  # a wrapped time.ticks_ms() value (period 2^30 ms)
        d += 1 << 30
    return d


_SCR_NONE = const(0)
_SCR_STATUS = const(1)
_SCR_MESSAGE = const(2)
_SCR_ALERT = const(3)


class Display:
    """SSD1306 on a machine.I2C-like bus (needs `writeto(addr, buf)`).

    reset_pin: output Pin on the panel's RES line (Heltec boards) or None.  fb_factory(buf, w, h)
    returns a framebuf-like object (default: framebuf, else MonoFB).  scroll_ms: how long each
    position of a long text stays before tick() scrolls one line; blink_ms: real-alert blink period.
    delay_ms: sleep function for the reset pulse (tests pass a no-op)."""

    def __init__(
        self,
        i2c,
        addr=0x3C,
        width=128,
        height=64,
        reset_pin=None,
        fb_factory=None,
        external_vcc=False,
        scroll_ms=1500,
        blink_ms=500,
        delay_ms=None,
    ):
        self.i2c = i2c
        self.addr = addr
        self.width = width
        self.height = height
        self.cols = width // CELL
        self.rows = height // CELL
        self.scroll_ms = scroll_ms
        self.blink_ms = blink_ms
        self._buf = bytearray(1 + width * (height // 8))
        self._buf[0] = 0x40  # I2C control byte: data stream follows
        self.fb = (fb_factory or default_fb_factory)(memoryview(self._buf)[1:], width, height)
        self._cmd = bytearray(2)
        self._cmd[0] = 0x80  # I2C control byte: one command byte follows
        self._screen = _SCR_NONE
        self._kind = None
        self._title = ""
        self._lines = []
        self._top = 0
        self._last_ms = None
        self._blink_ms = 0
        self._inverted = False
        self.is_on = True
        if reset_pin is not None:
            if delay_ms is None:
                try:
                    from time import sleep_ms as delay_ms
                except ImportError:  # CPython
                    from time import sleep

                    def delay_ms(ms):
                        sleep(ms / 1000)

            reset_pin.value(1)
            delay_ms(1)
            reset_pin.value(0)
            delay_ms(10)
            reset_pin.value(1)
        for c in init_sequence(width, height, external_vcc):
            self.command(c)
        self.fb.fill(0)
        self.show()

    # --- panel I/O ----------------------------------------------------------------------------
    def command(self, c):
        self._cmd[1] = c
        self.i2c.writeto(self.addr, self._cmd)

    def show(self):
        """Send the whole frame buffer (datasheet 10.1.4/10.1.5: column and page window)."""
        self.command(_CMD_COL_ADDR)
        self.command(0)
        self.command(self.width - 1)
        self.command(_CMD_PAGE_ADDR)
        self.command(0)
        self.command(self.height // 8 - 1)
        self.i2c.writeto(self.addr, self._buf)

    def power(self, on):
        """Panel on/off (sleep mode keeps RAM, ~10 uA)."""
        self.command(_CMD_DISPLAY_ON if on else _CMD_DISPLAY_OFF)
        self.is_on = bool(on)

    def contrast(self, level):
        self.command(_CMD_CONTRAST)
        self.command(level & 0xFF)

    def invert(self, flag):
        self.command(_CMD_INVERT if flag else _CMD_NORMAL)
        self._inverted = bool(flag)

    @property
    def inverted(self):
        return self._inverted

    # --- drawing ------------------------------------------------------------------------------
    def text_row(self, row, s, inverse=False):
        """Draw `s` clipped to the width on text row `row`; inverse = white bar with black text."""
        y = row * CELL
        self.fb.fill_rect(0, y, self.width, CELL, 1 if inverse else 0)
        self.fb.text(ascii_only(s)[: self.cols], 0, y, 0 if inverse else 1)

    def _render(self):
        self.fb.fill(0)
        self.text_row(0, self._title, inverse=True)
        for i in range(self.rows - 1):
            j = self._top + i
            if j < len(self._lines):
                self.text_row(1 + i, self._lines[j])
        self.show()

    def _normal(self):
        if self._inverted:
            self.invert(False)

    # --- screens ------------------------------------------------------------------------------
    def show_status(self, st):
        """Status screen from a dict: name (title bar), group, neighbours, battery_pct, battery_mv,
        duty_pct (airtime used, percent), duty_limit_pct, and optional free text line1/line2/line3.
        Missing values show as '-'."""

        def g(k):
            v = st.get(k)
            return "-" if v is None else str(v)

        bat = g("battery_pct")
        if bat != "-":
            bat += "%"
        mv = st.get("battery_mv")
        if mv is not None:
            bat += " %d.%02dV" % (mv // 1000, (mv % 1000) // 10)
        duty = st.get("duty_pct")
        if duty is None:
            dtext = "-"
        else:
            tenths = int(duty * 10 + 0.5)
            dtext = "%d.%d%%" % (tenths // 10, tenths % 10)
            lim = st.get("duty_limit_pct")
            if lim is not None:
                dtext += "/%d%%" % int(lim)
        lines = ["grp " + g("group"), "nbrs " + g("neighbours"), "bat " + bat, "duty " + dtext]
        for k in ("line1", "line2", "line3"):
            if st.get(k):
                lines.append(str(st[k]))
        self._screen = _SCR_STATUS
        self._title = g("name")
        self._lines = [ascii_only(s)[: self.cols] for s in lines]
        self._top = 0
        self._normal()
        self._render()

    def show_message(self, title, text, page=0):
        """A bulletin: inverted title bar and the word-wrapped text (7 body lines per page on 128x64).
        `page` picks the first screenful; tick() then scrolls a long text one line at a time.
        Returns the number of pages."""
        self._screen = _SCR_MESSAGE
        self._title = title
        self._lines = wrap(text, self.cols)
        per = self.rows - 1
        pages = max(1, (len(self._lines) + per - 1) // per)
        self._top = min(max(0, page), pages - 1) * per
        self._last_ms = None
        self._normal()
        self._render()
        return pages

    def show_alert(self, kind, text):
        """An alert.  kind "drill": calm "-- DRILL --" title, no blinking.  Anything else ("alert",
        "real", ...): "!! ALERT !!" and tick() blinks the panel (hardware invert).  Returns pages."""
        self._screen = _SCR_ALERT
        self._kind = kind
        self._title = "-- DRILL --" if kind == "drill" else "!! ALERT !!"
        self._lines = wrap(text, self.cols)
        self._top = 0
        self._last_ms = None
        self._normal()
        self._render()
        per = self.rows - 1
        return max(1, (len(self._lines) + per - 1) // per)

    @property
    def screen(self):
        return ("none", "status", "message", "alert")[self._screen]

    @property
    def title(self):
        return self._title

    @property
    def lines(self):
        """Body lines of the current screen (after wrapping)."""
        return list(self._lines)

    @property
    def top(self):
        """Index of the first body line on the panel."""
        return self._top

    def tick(self, now_ms):
        """Advance scrolling and alert blinking; True if the panel changed."""
        if self._screen != _SCR_MESSAGE and self._screen != _SCR_ALERT:
            return False
        if self._last_ms is None:
            self._last_ms = now_ms
            self._blink_ms = now_ms
            return False
        changed = False
        if self._screen == _SCR_ALERT and self._kind != "drill" and _elapsed(now_ms, self._blink_ms) >= self.blink_ms:
            self._blink_ms = now_ms
            self.invert(not self._inverted)
            changed = True
        per = self.rows - 1
        if len(self._lines) > per and _elapsed(now_ms, self._last_ms) >= self.scroll_ms:
            self._last_ms = now_ms
            self._top += 1
            if self._top > len(self._lines) - per:
                self._top = 0
            self._render()
            changed = True
        return changed

    def clear(self):
        self._screen = _SCR_NONE
        self._lines = []
        self._title = ""
        self._normal()
        self.fb.fill(0)
        self.show()
