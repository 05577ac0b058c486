"""Board profiles: schema/pin validation for every boards/*.json, and the Board builder wiring each
profile's pins to the right chip lines (checked against the chip models)."""

import copy
import json
from pathlib import Path

import pytest
from chipmodels import FakePin, SX126xModel, SX127xModel
from plexnode.board import BANDS, Board, BoardError, battery_pct, load_profile, validate_profile
from plexnode.radio.sx126x import SX126x
from plexnode.radio.sx127x import SX127x

BOARDS = Path(__file__).resolve().parents[1] / "boards"
FILES = sorted(BOARDS.glob("*.json"))
IDS = [f.stem for f in FILES]


def profile(board_id):
    return json.loads((BOARDS / (board_id + ".json")).read_text())


def test_required_boards_present():
    for b in ("heltec_v2", "heltec_v3", "ttgo_lora32_v2_1", "tbeam_v1_1_sx1276", "tbeam_v1_1_sx1262", "t3s3_sx1262"):
        assert b in IDS
    assert (BOARDS / "README.md").exists()


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_profile_valid(path):
    p = json.loads(path.read_text())
    assert p["id"] == path.stem
    assert validate_profile(p) == []
    assert load_profile(str(path))["id"] == path.stem
    assert all(s.startswith("https://") for s in p["source"])
    r = p["radio"]
    assert {"chip", "pins", "tcxo_voltage", "dio2_as_rf_switch", "pa_boost", "bands"} <= set(r)
    assert "EU868" in r["bands"] and "US915" in r["bands"]


@pytest.mark.parametrize(
    "board,chip,family,nss,irq",
    [
        ("heltec_v2", "esp32", "sx127x", 18, 26),
        ("heltec_v3", "esp32s3", "sx126x", 8, 14),
        ("ttgo_lora32_v2_1", "esp32", "sx127x", 18, 26),
        ("tbeam_v1_1_sx1276", "esp32", "sx127x", 18, 26),
        ("tbeam_v1_1_sx1262", "esp32", "sx126x", 18, 33),
        ("t3s3_sx1262", "esp32s3", "sx126x", 7, 33),
    ],
)
def test_known_pin_facts(board, chip, family, nss, irq):
    p = profile(board)
    assert p["chip"] == chip
    assert p["radio"]["family"] == family
    assert p["radio"]["pins"]["nss"] == nss
    assert p["radio"]["pins"]["dio0" if family == "sx127x" else "dio1"] == irq
    if family == "sx126x":
        assert p["radio"]["tcxo_voltage"] == 1.8 and p["radio"]["dio2_as_rf_switch"] is True
    else:
        assert p["radio"]["pa_boost"] is True


def _broken(board, mutate):
    p = copy.deepcopy(profile(board))
    mutate(p)
    return validate_profile(p)


@pytest.mark.parametrize(
    "board,mutate,expect",
    [
        ("heltec_v2", lambda p: p["radio"]["pins"].__setitem__("nss", 36), "input-only"),
        ("heltec_v2", lambda p: p["radio"]["pins"].__setitem__("reset", 7), "reserved"),
        ("heltec_v3", lambda p: p["radio"]["pins"].__setitem__("busy", 8), "used twice"),
        ("heltec_v3", lambda p: p["radio"].__setitem__("tcxo_voltage", 2.0), "tcxo_voltage"),
        ("heltec_v3", lambda p: p["radio"]["pins"].__setitem__("busy", None), "busy"),
        ("heltec_v3", lambda p: p.__setitem__("chip", "esp8266"), "chip"),
        ("heltec_v3", lambda p: p.__setitem__("source", []), "source"),
        ("heltec_v3", lambda p: p["radio"].__setitem__("bands", ["EU433"]), "EU433"),
        ("heltec_v3", lambda p: p["radio"].__setitem__("family", "sx127x"), "family"),
        ("ttgo_lora32_v2_1", lambda p: p["radio"].__setitem__("pa_boost", None), "pa_boost"),
        ("ttgo_lora32_v2_1", lambda p: p["battery"].__setitem__("adc_pin", 5), "ADC"),
        ("ttgo_lora32_v2_1", lambda p: p["led"].__setitem__("pin", 39), "input-only"),
        ("tbeam_v1_1_sx1276", lambda p: p["power"].__setitem__("pmu", None), "axp192"),
        ("t3s3_sx1262", lambda p: p["display"].__setitem__("addr", 0x50), "display.addr"),
        ("t3s3_sx1262", lambda p: p.pop("radio"), "radio"),
    ],
)
def test_validation_rejects_broken_profiles(board, mutate, expect):
    errs = _broken(board, mutate)
    assert errs, "mutation was not detected"
    assert any(expect in e for e in errs), errs


def test_load_profile_raises_board_error(tmp_path):
    p = profile("heltec_v3")
    p["radio"]["pins"]["nss"] = 99
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(p))
    with pytest.raises(BoardError, match="GPIO99"):
        load_profile(str(f))


def test_band_table_sane():
    for name, (lo, hi) in BANDS.items():
        assert lo < hi, name
    assert BANDS["EU868"] == (863_000_000, 870_000_000)
    assert BANDS["US915"] == (902_000_000, 928_000_000)


# --- the builder, against a fake `machine` wired to the chip models ---------------------------------------
class FakeMachine:
    """machine look-alike: Pin(n) returns the model's pin object for the radio lines, a FakePin
    otherwise; SPI() returns the model's SPI; I2C is a recording fake with an AXP192 and an OLED."""

    def __init__(self, model=None, pinmap=None, i2c_devices=(0x3C,), adc_uv=2_000_000):
        machine = self
        self.model = model
        self.pinmap = dict(pinmap or {})
        self.pins = {}
        self.spi_args = None
        self.adc_uv = adc_uv

        class Pin(FakePin):
            def __new__(cls, n, mode=None, pull=None, value=None):
                if n in machine.pinmap:
                    p = machine.pinmap[n]
                else:
                    p = machine.pins.get(n)
                    if p is None:
                        p = FakePin.__new__(cls)
                        FakePin.__init__(p, "GPIO%d" % n, 0)
                        machine.pins[n] = p
                p.gpio = n
                p.mode = mode
                p.pull = pull
                if value is not None:
                    p.value(value)
                return p

            def __init__(self, *a, **k):
                pass

        self.Pin = Pin

        def SPI(id, **kw):
            machine.spi_args = (id, {k: (v.gpio if hasattr(v, "gpio") else v) for k, v in kw.items()})
            return machine.model.spi if machine.model else object()

        self.SPI = SPI

        class I2C:
            def __init__(self, id, scl, sda, freq):
                self.args = (id, scl.gpio, sda.gpio, freq)
                self.writes = []
                self.mem = {(0x34, 0x12): 0x02, (0x34, 0x82): 0x00, (0x34, 0x78): 0xE3, (0x34, 0x79): 0x05}
                machine.i2c = self

            def scan(self):
                return list(i2c_devices)

            def writeto(self, addr, buf):
                self.writes.append((addr, bytes(buf)))

            def writeto_mem(self, addr, reg, buf):
                for i, b in enumerate(bytes(buf)):
                    self.mem[(addr, reg + i)] = b

            def readfrom_mem(self, addr, reg, n):
                return bytes(self.mem.get((addr, reg + i), 0) for i in range(n))

        self.I2C = I2C

        class ADC:
            ATTN_0DB, ATTN_2_5DB, ATTN_6DB, ATTN_11DB = 0, 1, 2, 3

            def __init__(self, pin):
                self.pin = pin
                self.att = None
                machine.adc = self

            def atten(self, a):
                self.att = a

            def read_uv(self):
                return machine.adc_uv

        self.ADC = ADC

        class PWM:
            def __init__(self, pin, freq=0, duty_u16=0):
                self.pin = pin
                self.f = freq
                self.d = duty_u16

            def freq(self, f=None):
                self.f = f

            def duty_u16(self, d=None):
                self.d = d

        self.PWM = PWM


def nodelay(ms):
    pass


def _model_and_map(p):
    r = p["radio"]
    pins = r["pins"]
    if r["family"] == "sx127x":
        m = SX127xModel()
        return m, {pins["nss"]: m.cs, pins["reset"]: m.reset, pins["dio0"]: m.dio0}
    m = SX126xModel(tcxo_voltage=r["tcxo_voltage"], rf_switch_on_dio2=r["dio2_as_rf_switch"])
    return m, {pins["nss"]: m.cs, pins["reset"]: m.reset, pins["busy"]: m.busy, pins["dio1"]: m.dio1}


@pytest.mark.parametrize("board_id", IDS)
def test_board_builds_working_radio(board_id):
    """Every profile, built through Board, yields a driver that passes its silicon check and runs a
    TX and an RX flow on the model: so NSS/RESET/IRQ(/BUSY) really reach the chip lines, and the TCXO
    and RF-switch settings match what the module needs."""
    p = profile(board_id)
    m, pinmap = _model_and_map(p)
    fm = FakeMachine(m, pinmap)
    b = Board(p, fm, delay_ms=nodelay)
    r = b.radio()  # calls power_on() first
    if p["power"]["pmu"]:
        assert fm.i2c.mem[(0x34, 0x12)] & 0x04  # T-Beam: radio rail (LDO2) on before the radio reset
    assert isinstance(r, SX127x if p["radio"]["family"] == "sx127x" else SX126x)
    assert r.uses_irq
    spi_id, kw = fm.spi_args
    assert (kw["sck"], kw["mosi"], kw["miso"]) == (p["spi"]["sck"], p["spi"]["mosi"], p["spi"]["miso"])
    assert kw["polarity"] == 0 and kw["phase"] == 0
    r.configure(869_525_000, sf=9, tx_power_dbm=14)
    r.send(b"board test")
    m.complete_tx()
    assert r.tx_done()
    assert m.transmitted[-1].payload == b"board test"
    r.start_recv()
    m.inject(b"hello board")
    assert r.recv()[0] == b"hello board"
    assert not m.violations


@pytest.mark.parametrize("board_id", ["heltec_v2", "heltec_v3"])
def test_board_radio_without_interrupt_polls(board_id):
    """Board.radio(irq=False) (config "radio_irq": false) leaves the DIO line unarmed: the driver polls."""
    p = profile(board_id)
    m, pinmap = _model_and_map(p)
    r = Board(p, FakeMachine(m, pinmap), delay_ms=nodelay).radio(irq=False)
    assert not r.uses_irq
    dio = m.dio0 if p["radio"]["family"] == "sx127x" else m.dio1
    assert dio.handler is None
    r.configure(869_525_000)
    r.start_recv()
    m.inject(b"polled")
    assert r.recv()[0] == b"polled" and r.irq_count == 0


def test_vext_and_display_reset_heltec():
    p = profile("heltec_v3")
    fm = FakeMachine()
    b = Board(p, fm, delay_ms=nodelay)
    d = b.display()  # powers Vext itself when the application did not
    assert fm.pins[36].value() == 0  # Vext on (active low)
    assert d is not None
    assert fm.pins[21].writes >= 3 and fm.pins[21].value() == 1  # OLED reset pulsed, released
    assert fm.i2c.args == (0, 18, 17, 400000)
    assert any(len(buf) == 1025 for _, buf in fm.i2c.writes)


def test_optional_display_absent_tbeam():
    fm = FakeMachine(i2c_devices=(0x34,))
    b = Board(profile("tbeam_v1_1_sx1262"), fm, delay_ms=nodelay)
    assert b.display() is None


def test_axp192_power_and_battery():
    fm = FakeMachine()
    b = Board(profile("tbeam_v1_1_sx1276"), fm, delay_ms=nodelay)
    b.power_on()
    mem = fm.i2c.mem
    assert mem[(0x34, 0x12)] == 0x02 | 0x01 | 0x04 | 0x08  # DCDC3 kept, DCDC1/LDO2/LDO3 on
    assert mem[(0x34, 0x28)] == 0xFF and mem[(0x34, 0x26)] == 104
    assert mem[(0x34, 0x82)] & 0x80
    # 0xE35 = 3637 * 1.1 mV = 4000 mV
    assert b.battery_mv() == 4000


@pytest.mark.parametrize("board_id,uv,mv", [("heltec_v3", 800_000, 3920), ("t3s3_sx1262", 2_000_000, 4000), ("heltec_v2", 1_200_000, 3840)])
def test_adc_battery(board_id, uv, mv):
    fm = FakeMachine(adc_uv=uv)
    b = Board(profile(board_id), fm, delay_ms=nodelay)
    assert b.battery_mv() == mv
    bat = profile(board_id)["battery"]
    assert fm.adc.pin.gpio == bat["adc_pin"]
    if bat["ctrl_pin"] is not None:
        ctrl = fm.pins[bat["ctrl_pin"]]
        assert ctrl.value() == 1  # divider switched off again after the reading (active low)
        assert ctrl.writes >= 3


def test_button_led_buzzer():
    p = profile("tbeam_v1_1_sx1262")
    p["buzzer"] = {"pin": 13, "pwm": True}
    assert validate_profile(p) == []
    fm = FakeMachine()
    b = Board(p, fm, delay_ms=nodelay)
    btn = b.button(0)
    assert fm.pins[38].pull == fm.Pin.PULL_UP
    fm.pins[38].value(1)
    assert btn.poll(10) is None
    s = b.signals()
    assert fm.pins[4].value() == 1  # LED off (active low)
    s.play("alert", 0)
    s.tick(1)
    assert fm.pins[4].value() == 0  # lit
    assert s._bz.d > 0 and s._bz.f == 2900


def test_ttgo_has_no_button():
    assert Board(profile("ttgo_lora32_v2_1"), FakeMachine()).button(0) is None


def test_battery_pct_curve():
    assert battery_pct(None) is None
    assert battery_pct(3000) == 0
    assert battery_pct(4200) == 100 and battery_pct(4300) == 100
    vals = [battery_pct(v) for v in range(3300, 4201, 10)]
    assert vals == sorted(vals)
    assert 40 <= battery_pct(3750) <= 50


@pytest.mark.mpy
def test_profiles_validate_under_micropython(mpy):
    profiles = {f.stem: f.read_text() for f in FILES}
    src = "import json\nfrom plexnode.board import validate_profile, battery_pct\n_PROFILES = %r\n" % profiles
    src += "for _k in sorted(_PROFILES):\n    print(_k, len(validate_profile(json.loads(_PROFILES[_k]))))\n"
    src += "print('pct', battery_pct(3750))\n"
    src += "del _PROFILES, _k\nimport gc\ngc.collect()\n"
    out = mpy.run(src).split("\n")
    results = dict(line.split() for line in out if line.strip())
    assert results.pop("pct") == str(battery_pct(3750))
    assert results == {k: "0" for k in IDS}
