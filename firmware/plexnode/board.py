"""Board profiles (boards/*.json): load, validate, and build the radio, display, button, LED/buzzer and
battery reader from `machine`-like factories passed in.

    import machine
    from plexnode.board import Board, load_profile
    b = Board(load_profile("/board.json"), machine)
    b.power_on()                      # Vext / PMU rails for radio and OLED
    radio = b.radio()                 # SX127x or SX126x, reset and silicon-checked
    disp = b.display()                # Display or None
    btn = b.button(now_ms)            # Button or None
    sig = b.signals()                 # Signals (LED, optional buzzer)
    mv = b.battery_mv()               # int millivolts or None

`validate_profile(dict) -> list of problems` is shared with the host tools and tests.
"""

import json

# ESP32 families: usable GPIOs, input-only ones, and ADC1/ADC2 pins (ESP32 and ESP32-S3 technical
# reference manuals, "IO MUX and GPIO Matrix"; GPIO 6-11 (ESP32) and 26-32 (ESP32-S3) belong to the
# SPI flash and are excluded).
_ESP32_GPIO = tuple(range(0, 6)) + tuple(range(12, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40))
CHIPS = {
    "esp32": {
        "gpio": _ESP32_GPIO,
        "input_only": (34, 35, 36, 37, 38, 39),
        "adc1": (32, 33, 34, 35, 36, 37, 38, 39),
        "adc2": (0, 2, 4, 12, 13, 14, 15, 25, 26, 27),
    },
    "esp32s3": {
        "gpio": tuple(range(0, 22)) + tuple(range(33, 49)),
        "input_only": (),
        "adc1": tuple(range(1, 11)),
        "adc2": tuple(range(11, 21)),
    },
}

RADIO_CHIPS = {"sx1276": "sx127x", "sx1277": "sx127x", "sx1278": "sx127x", "sx1279": "sx127x", "sx1262": "sx126x", "sx1261": "sx126x", "sx1268": "sx126x"}
CHIP_RANGE_HZ = {"sx127x": (137000000, 1020000000), "sx126x": (150000000, 960000000)}

# Regional band edges in Hz (ERC Rec 70-03 annex 1 for EU; FCC 15.247 for US; LoRaWAN Regional
# Parameters RP002 for the others).  Boards list the bands their RF matching supports.
BANDS = {
    "EU868": (863000000, 870000000),
    "US915": (902000000, 928000000),
    "AU915": (915000000, 928000000),
    "AS923": (915000000, 928000000),
    "KR920": (920900000, 923300000),
    "IN865": (865000000, 867000000),
    "EU433": (433050000, 434790000),
    "CN470": (470000000, 510000000),
}

TCXO_VOLTAGES = (1.6, 1.7, 1.8, 2.2, 2.4, 2.7, 3.0, 3.3)
ADC_ATTEN = ("0db", "2_5db", "6db", "11db")


class BoardError(Exception):
    pass


def load_profile(path):
    """Read and validate a board profile JSON file; BoardError lists every problem."""
    with open(path) as f:
        p = json.load(f)
    errs = validate_profile(p)
    if errs:
        raise BoardError("%s: %s" % (path, "; ".join(errs)))
    return p


def _pin_ok(v):
    return v is None or (isinstance(v, int) and not isinstance(v, bool))


def validate_profile(p):
    """Return a list of problems (empty if the profile is usable)."""
    errs = []

    def need(d, k, where):
        if not isinstance(d, dict) or k not in d:
            errs.append("missing %s.%s" % (where, k))
            return None
        return d[k]

    for k in ("id", "name", "chip", "source", "spi", "radio", "i2c", "display", "button", "led", "buzzer", "battery", "power"):
        need(p, k, "profile")
    if errs:
        return errs
    chip = CHIPS.get(p["chip"])
    if chip is None:
        return ["chip %r is not one of %s" % (p["chip"], ", ".join(sorted(CHIPS)))]
    src = p["source"]
    if not isinstance(src, list) or not src or not all(isinstance(s, str) and s.startswith("http") for s in src):
        errs.append("source must be a non-empty list of URLs")

    roles = []  # (role, pin, needs_output)

    def pin(role, v, out):
        if v is None:
            return
        if not _pin_ok(v):
            errs.append("%s: pin %r is not an integer" % (role, v))
            return
        roles.append((role, v, out))

    spi = p["spi"]
    for k, out in (("sck", True), ("mosi", True), ("miso", False)):
        v = need(spi, k, "spi")
        if v is None:
            errs.append("spi.%s must be a pin" % k)
        pin("spi." + k, v, out)

    r = p["radio"]
    fam = RADIO_CHIPS.get(need(r, "chip", "radio"))
    if fam is None:
        errs.append("radio.chip %r unknown" % (r.get("chip"),))
    elif r.get("family") != fam:
        errs.append("radio.family must be %r for %s" % (fam, r.get("chip")))
    pins = need(r, "pins", "radio") or {}
    for k in ("tcxo_voltage", "dio2_as_rf_switch", "pa_boost", "freq_range_hz", "bands", "max_power_dbm"):
        need(r, k, "radio")
    required = ("nss", "reset", "dio0") if fam == "sx127x" else ("nss", "reset", "busy", "dio1")
    for k in required:
        if pins.get(k) is None:
            errs.append("radio.pins.%s is required for %s" % (k, fam))
    for k, v in pins.items():
        pin("radio." + k, v, k in ("nss", "reset"))
    if fam == "sx127x":
        if not isinstance(r.get("pa_boost"), bool):
            errs.append("radio.pa_boost must be true/false for an SX127x")
        if r.get("tcxo_voltage") is not None:
            errs.append("radio.tcxo_voltage: SX127x TCXO boards are not supported by this schema")
    elif fam == "sx126x":
        t = r.get("tcxo_voltage")
        if t is not None and t not in TCXO_VOLTAGES:
            errs.append("radio.tcxo_voltage %r not one of %s" % (t, TCXO_VOLTAGES))
        if not isinstance(r.get("dio2_as_rf_switch"), bool):
            errs.append("radio.dio2_as_rf_switch must be true/false for an SX126x")
    fr = r.get("freq_range_hz")
    if fam and isinstance(fr, list) and len(fr) == 2:
        lo, hi = CHIP_RANGE_HZ[fam]
        if not lo <= fr[0] < fr[1] <= hi:
            errs.append("radio.freq_range_hz %r outside the %s range" % (fr, fam))
        for b in r.get("bands") or []:
            e = BANDS.get(b)
            if e is None:
                errs.append("radio.bands: unknown band %r" % (b,))
            elif not (fr[0] <= e[0] and e[1] <= fr[1]):
                errs.append("radio.bands: %s (%d-%d Hz) outside freq_range_hz" % (b, e[0], e[1]))
    else:
        errs.append("radio.freq_range_hz must be [lo_hz, hi_hz]")

    i2c = p["i2c"]
    if i2c is not None:
        pin("i2c.sda", need(i2c, "sda", "i2c"), True)
        pin("i2c.scl", need(i2c, "scl", "i2c"), True)
    d = p["display"]
    if d is not None:
        if i2c is None:
            errs.append("display needs an i2c bus")
        if d.get("type") != "ssd1306":
            errs.append("display.type must be 'ssd1306'")
        if d.get("addr") not in (0x3C, 0x3D):
            errs.append("display.addr must be 60 (0x3C) or 61 (0x3D)")
        pin("display.reset", d.get("reset"), True)
    if p["button"] is not None:
        pin("button", need(p["button"], "pin", "button"), False)
    if p["led"] is not None:
        pin("led", need(p["led"], "pin", "led"), True)
    if p["buzzer"] is not None:
        pin("buzzer", need(p["buzzer"], "pin", "buzzer"), True)
    bat = p["battery"]
    if bat is not None:
        m = need(bat, "method", "battery")
        if m == "adc":
            a = bat.get("adc_pin")
            if a not in chip["adc1"] and a not in chip["adc2"]:
                errs.append("battery.adc_pin %r is not an ADC pin on %s" % (a, p["chip"]))
            if not (bat.get("r_top_ohm") or 0) > 0 or not (bat.get("r_bottom_ohm") or 0) > 0:
                errs.append("battery divider resistances must be positive")
            if bat.get("atten") not in ADC_ATTEN:
                errs.append("battery.atten must be one of %s" % (ADC_ATTEN,))
            pin("battery.adc", a, False)
            pin("battery.ctrl", bat.get("ctrl_pin"), True)
        elif m == "axp192":
            pmu = (p["power"] or {}).get("pmu")
            if not pmu or pmu.get("type") != "axp192":
                errs.append("battery.method axp192 needs power.pmu of type axp192")
        else:
            errs.append("battery.method %r unknown" % (m,))
    pw = p["power"] or {}
    pin("power.vext", pw.get("vext_pin"), True)

    seen = {}
    for role, v, out in roles:
        if v not in chip["gpio"]:
            errs.append("%s: GPIO%d does not exist or is reserved on %s" % (role, v, p["chip"]))
        elif out and v in chip["input_only"]:
            errs.append("%s: GPIO%d is input-only on %s" % (role, v, p["chip"]))
        if v in seen and v is not None:
            errs.append("GPIO%d used twice (%s and %s)" % (v, seen[v], role))
        seen[v] = role
    return errs


def battery_pct(mv):
    """Rough single-cell LiPo charge estimate from resting voltage (piecewise linear)."""
    if mv is None:
        return None
    pts = ((3300, 0), (3500, 5), (3600, 12), (3700, 35), (3800, 55), (3900, 70), (4000, 82), (4100, 92), (4200, 100))
    if mv <= pts[0][0]:
        return 0
    for i in range(1, len(pts)):
        v1, p1 = pts[i]
        if mv <= v1:
            v0, p0 = pts[i - 1]
            return p0 + (p1 - p0) * (mv - v0) // (v1 - v0)
    return 100


# AXP192 PMU registers (X-Powers AXP192 datasheet, register list section 9).
_AXP_OUTPUT_CTRL = 0x12  # b0 DCDC1, b1 DCDC3, b2 LDO2, b3 LDO3, b4 DCDC2, b6 EXTEN
_AXP_DCDC1_V = 0x26  # 0.7..3.5 V, 25 mV/step
_AXP_LDO23_V = 0x28  # LDO2 b7..4, LDO3 b3..0, 1.8..3.3 V, 100 mV/step
_AXP_ADC_EN1 = 0x82  # b7 battery voltage ADC
_AXP_VBAT_H = 0x78  # battery voltage, 12 bit, 1.1 mV/LSB: 0x78 = b11..4, 0x79 b3..0
_AXP_RAILS = {"dcdc1": 0x01, "ldo2": 0x04, "ldo3": 0x08}


class Board:
    """Build drivers for one board profile.

    machine: the `machine` module or a look-alike with Pin, SPI, I2C, PWM, ADC.  delay_ms: sleep
    function handed to the drivers (tests pass a no-op)."""

    def __init__(self, profile, machine, delay_ms=None):
        self.profile = profile
        self.id = profile["id"]
        self.m = machine
        self._delay = delay_ms
        self._spi = None
        self._i2c = None
        self._adc = None
        self._ctrl = None
        self._powered = False

    # --- buses ---------------------------------------------------------------------------------
    def _pin(self, n, mode, pull=None, value=None):
        P = self.m.Pin
        if pull is not None and value is not None:
            return P(n, mode, pull, value=value)
        if pull is not None:
            return P(n, mode, pull)
        if value is not None:
            return P(n, mode, value=value)
        return P(n, mode)

    def spi(self):
        if self._spi is None:
            s = self.profile["spi"]
            P = self.m.Pin
            self._spi = self.m.SPI(
                s.get("id", 1),
                baudrate=s.get("baudrate", 8000000),
                polarity=0,
                phase=0,
                sck=P(s["sck"]),
                mosi=P(s["mosi"]),
                miso=P(s["miso"]),
            )
        return self._spi

    def i2c(self):
        c = self.profile["i2c"]
        if c is None:
            return None
        if self._i2c is None:
            P = self.m.Pin
            self._i2c = self.m.I2C(c.get("id", 0), scl=P(c["scl"]), sda=P(c["sda"]), freq=c.get("freq", 400000))
        return self._i2c

    # --- power ---------------------------------------------------------------------------------
    def power_on(self):
        """Switch on the rails the radio and OLED need: Heltec Vext (active low) or the T-Beam's
        AXP192 (DCDC1 OLED 3.3 V, LDO2 radio 3.3 V, LDO3 GPS 3.3 V).  Never turns a rail off.
        radio() and display() call it once if the application did not."""
        self._powered = True
        pw = self.profile.get("power") or {}
        v = pw.get("vext_pin")
        if v is not None:
            self._vext = self._pin(v, self.m.Pin.OUT, value=0 if pw.get("vext_active_low", True) else 1)
        pmu = pw.get("pmu")
        if pmu and pmu.get("type") == "axp192":
            i2c = self.i2c()
            a = pmu.get("addr", 0x34)
            en = pmu.get("enable", ())
            if "ldo2" in en or "ldo3" in en:
                i2c.writeto_mem(a, _AXP_LDO23_V, b"\xff")  # LDO2 = LDO3 = 3.3 V
            if "dcdc1" in en:
                i2c.writeto_mem(a, _AXP_DCDC1_V, bytes(((3300 - 700) // 25,)))
            bits = 0
            for k in en:
                bits |= _AXP_RAILS.get(k, 0)
            cur = i2c.readfrom_mem(a, _AXP_OUTPUT_CTRL, 1)[0]
            i2c.writeto_mem(a, _AXP_OUTPUT_CTRL, bytes((cur | bits,)))  # OR only: DCDC3 feeds the ESP32
            cur = i2c.readfrom_mem(a, _AXP_ADC_EN1, 1)[0]
            i2c.writeto_mem(a, _AXP_ADC_EN1, bytes((cur | 0x80,)))
        if self._delay:
            self._delay(20)  # rails settle before the radio reset

    # --- radio ---------------------------------------------------------------------------------
    def radio(self, irq_callback=None, irq=True):
        """Reset and silicon-check the radio; returns an SX127x or SX126x (RadioError if absent).
        irq=False (or no DIO pin in the profile) leaves the interrupt unarmed: the driver polls."""
        if not self._powered:
            self.power_on()
        r = self.profile["radio"]
        pins = r["pins"]
        P = self.m.Pin
        cs = self._pin(pins["nss"], P.OUT, value=1)
        reset = self._pin(pins["reset"], P.OUT, value=1)
        if r["family"] == "sx127x":
            from .radio.sx127x import SX127x

            dio0 = self._pin(pins["dio0"], P.IN) if irq and pins.get("dio0") is not None else None
            return SX127x(self.spi(), cs, reset, dio0, pa_boost=r["pa_boost"], irq_callback=irq_callback, delay_ms=self._delay)
        from .radio.sx126x import SX126x

        busy = self._pin(pins["busy"], P.IN)
        dio1 = self._pin(pins["dio1"], P.IN) if irq and pins.get("dio1") is not None else None
        return SX126x(
            self.spi(),
            cs,
            reset,
            busy,
            dio1,
            tcxo_voltage=r["tcxo_voltage"],
            dio2_as_rf_switch=r["dio2_as_rf_switch"],
            max_power_dbm=r.get("max_power_dbm", 22),
            irq_callback=irq_callback,
            delay_ms=self._delay,
        )

    def supports_freq(self, freq_hz):
        lo, hi = self.profile["radio"]["freq_range_hz"]
        return lo <= freq_hz <= hi

    # --- display, button, signals ---------------------------------------------------------------
    def display(self, fb_factory=None, probe=True):
        """Display, or None if the profile has none or (probe=True) nothing answers at its address
        (the T-Beam's OLED is optional)."""
        d = self.profile["display"]
        if d is None:
            return None
        if not self._powered:
            self.power_on()
        i2c = self.i2c()
        if probe and d["addr"] not in i2c.scan():
            return None
        from .display import Display

        rst = None
        if d.get("reset") is not None:
            rst = self._pin(d["reset"], self.m.Pin.OUT, value=1)
        return Display(i2c, d["addr"], d["width"], d["height"], reset_pin=rst, fb_factory=fb_factory, delay_ms=self._delay)

    def button(self, now_ms, **kw):
        b = self.profile["button"]
        if b is None:
            return None
        from .ui import Button

        P = self.m.Pin
        pull = (P.PULL_UP if b.get("active_low", True) else P.PULL_DOWN) if b.get("pull_up", True) else None
        return Button(self._pin(b["pin"], P.IN, pull), now_ms, active_low=b.get("active_low", True), **kw)

    def signals(self):
        from .ui import Signals

        P = self.m.Pin
        led = self.profile["led"]
        led_pin = None
        al = False
        if led is not None:
            al = led.get("active_low", False)
            led_pin = self._pin(led["pin"], P.OUT, value=1 if al else 0)
        bz = self.profile["buzzer"]
        buzzer = None
        if bz is not None:
            bp = self._pin(bz["pin"], P.OUT, value=0)
            buzzer = self.m.PWM(bp, freq=2000, duty_u16=0) if bz.get("pwm", True) else bp
        return Signals(led_pin, buzzer, led_active_low=al)

    # --- battery -------------------------------------------------------------------------------
    def battery_mv(self):
        """Battery voltage in mV (integer), or None if the board cannot measure it."""
        bat = self.profile["battery"]
        if bat is None:
            return None
        if bat["method"] == "axp192":
            i2c = self.i2c()
            a = (self.profile["power"].get("pmu") or {}).get("addr", 0x34)
            raw = i2c.readfrom_mem(a, _AXP_VBAT_H, 2)
            return (((raw[0] << 4) | (raw[1] & 0x0F)) * 11) // 10
        ADC = self.m.ADC
        if self._adc is None:
            self._adc = ADC(self.m.Pin(bat["adc_pin"]))
            att = {"0db": "ATTN_0DB", "2_5db": "ATTN_2_5DB", "6db": "ATTN_6DB", "11db": "ATTN_11DB"}[bat["atten"]]
            self._adc.atten(getattr(ADC, att))
            if bat.get("ctrl_pin") is not None:
                self._ctrl = self._pin(bat["ctrl_pin"], self.m.Pin.OUT, value=1 if bat["ctrl_active_low"] else 0)
        c = self._ctrl
        if c is not None:
            c.value(0 if bat["ctrl_active_low"] else 1)
            if self._delay:
                self._delay(5)
        try:
            uv = self._adc.read_uv()
        finally:
            if c is not None:
                c.value(1 if bat["ctrl_active_low"] else 0)
        top = bat["r_top_ohm"] // 1000
        bot = bat["r_bottom_ohm"] // 1000
        return (uv // 1000) * (top + bot) // bot
