"""SX126x driver against the command-level SX1262 model with the BUSY handshake (tests/chipmodels/sx126x.py)."""

import pytest
from chipmodels import FakePin, FakeSPI, ProtocolViolation, SX126xModel, SX127xModel
from chipmodels.sx126x import CAD, RX, SLEEP, STBY_RC, TX
from plexnode.radio import RadioError, sync_word_sx126x
from plexnode.radio.sx126x import SX126x
from plexnode.radio.sx127x import SX127x


def nodelay(ms):
    pass


def make(model=None, irq=True, tcxo=1.8, **kw):
    m = model or SX126xModel()
    r = SX126x(m.spi, m.cs, m.reset, m.busy, m.dio1 if irq else None, tcxo_voltage=tcxo, delay_ms=nodelay, **kw)
    return m, r


def configured(freq=869_525_000, irq=True, model=None, **cfg):
    m, r = make(model=model, irq=irq)
    r.configure(freq, **cfg)
    return m, r


def opcodes(m):
    return [op for op, _ in m.commands]


# --- start-up, silicon check, BUSY --------------------------------------------------------------------
def test_startup_sequence_tcxo_dcdc_rf_switch():
    m, r = make()
    ops = opcodes(m)
    assert ops[0] == 0xC0  # GetStatus silicon check
    assert 0x1D in ops  # ReadRegister(0x0740) silicon check
    assert m.tcxo_code == 2 and m.tcxo_delay == 320  # 1.8 V, 5 ms
    assert m.calibrated_after_tcxo and ops.index(0x89) > ops.index(0x97)  # Calibrate after TCXO
    assert m.regulator == 1  # DC-DC
    assert m.dio2_rf_switch
    assert m.packet_type == 1
    assert m.irq_mask & 0x03E3 == 0x03E3 and m.dio1_mask == m.irq_mask
    assert m.busy_reads > 0
    assert r.uses_irq


def test_crystal_module_gets_no_tcxo_command():
    m, r = make(model=SX126xModel(tcxo_voltage=None), tcxo=None)
    assert 0x97 not in opcodes(m)
    r.configure(869_525_000)
    r.send(b"x")
    assert m.transmitted


@pytest.mark.parametrize("absent", [0x00, 0xFF])
def test_absent_chip_raises_clear_error(absent):
    m = SX126xModel(present=False, absent_value=absent)
    with pytest.raises(RadioError, match="no SX126x"):
        SX126x(m.spi, m.cs, m.reset, m.busy, m.dio1, delay_ms=nodelay)


def test_busy_stuck_high_raises():
    m = SX126xModel()
    stuck = FakePin("BUSY", 1)
    with pytest.raises(RadioError, match="BUSY"):
        SX126x(m.spi, m.cs, m.reset, stuck, m.dio1, delay_ms=nodelay, busy_timeout_ms=5)


def test_slow_busy_is_waited_for():
    m = SX126xModel(busy_polls=40)
    m, r = make(model=m)
    r.configure(869_525_000)
    r.send(b"patience")
    assert m.transmitted[-1].payload == b"patience"
    assert not m.violations


def test_model_rejects_command_while_busy():
    m, r = make()
    r.configure(869_525_000)
    m._busy_left = 3  # chip still processing
    with pytest.raises(ProtocolViolation, match="BUSY"):
        m.cs.value(0)


def test_model_rejects_unknown_opcode_and_bad_length():
    m, r = make()
    while m.busy.value():
        pass
    m.cs.value(0)
    m.spi.write(b"\x55\x00")
    with pytest.raises(ProtocolViolation, match="unknown"):
        m.cs.value(1)
    m2, r2 = make()
    while m2.busy.value():
        pass
    m2.cs.value(0)
    m2.spi.write(b"\x80")  # SetStandby without its parameter
    with pytest.raises(ProtocolViolation, match="parameter"):
        m2.cs.value(1)


def test_silicon_check_reads_sync_word_reset_value():
    m = SX126xModel()
    m.regs[0x0740] = 0x00
    m.reset = FakePin("NRESET", 1)  # a reset line that does not reset anything: register keeps junk
    with pytest.raises(RadioError, match="1424"):
        SX126x(m.spi, m.cs, m.reset, m.busy, m.dio1, tcxo_voltage=1.8, delay_ms=nodelay)


# --- board-level mistakes the model catches ----------------------------------------------------------
def test_missing_tcxo_config_is_caught():
    m = SX126xModel(tcxo_voltage=1.8)
    r = SX126x(m.spi, m.cs, m.reset, m.busy, m.dio1, tcxo_voltage=None, delay_ms=nodelay)
    r.configure(869_525_000)
    with pytest.raises(ProtocolViolation, match="TCXO"):
        r.start_recv()


def test_wrong_tcxo_voltage_is_caught():
    m = SX126xModel(tcxo_voltage=1.8)
    with pytest.raises(ProtocolViolation, match="3.3 V"):
        SX126x(m.spi, m.cs, m.reset, m.busy, m.dio1, tcxo_voltage=3.3, delay_ms=nodelay)


def test_missing_dio2_rf_switch_is_caught():
    m, r = make(dio2_as_rf_switch=False)
    r.configure(869_525_000)
    with pytest.raises(ProtocolViolation, match="DIO2"):
        r.send(b"x")


def test_unsupported_tcxo_voltage_rejected_by_driver():
    m = SX126xModel()
    with pytest.raises(RadioError, match="TCXO"):
        SX126x(m.spi, m.cs, m.reset, m.busy, m.dio1, tcxo_voltage=2.0, delay_ms=nodelay)


# --- configuration -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "freq,frf,image",
    [
        (868_000_000, 0x36400000, (0xD7, 0xDB)),  # 868e6 * 2^25 / 32e6
        (915_000_000, 0x39300000, (0xE1, 0xE9)),
        (869_525_000, 0x36586666, (0xD7, 0xDB)),  # 911763046.4
        (433_175_000, 0x1B12CCCD, (0x6B, 0x6F)),  # 454216908.8 -> rounds up
        (923_200_000, None, (0xE1, 0xE9)),
        (500_000_000, None, (0x75, 0x81)),
        (780_500_000, None, (0xC1, 0xC5)),
        (600_000_000, None, None),
    ],
)
def test_frequency_and_image_calibration(freq, frf, image):
    m, r = configured(freq)
    want = (freq * (1 << 25) + 16_000_000) // 32_000_000
    assert m.frf == want
    if frf is not None:
        assert m.frf == frf
    assert abs(m.freq_hz() - freq) <= 1
    cal = [p for op, p in m.commands if op == 0x98][-1]
    if image is not None:
        assert tuple(cal) == image
    lo, hi = m.image_cal
    assert lo <= freq / 1e6 <= hi
    r.start_recv()  # the model refuses RX outside the calibrated image band
    assert m.mode == RX


@pytest.mark.parametrize("sync,reg", [(0x12, 0x1424), (0x34, 0x3444), (0x2B, 0x24B4), (0x00, 0x0404), (0xFF, 0xF4F4)])
def test_sync_word_translation(sync, reg):
    assert sync_word_sx126x(sync) == reg
    m, r = configured(sync_word=sync)
    assert m.sync_word16() == reg


@pytest.mark.parametrize(
    "sf,bw,cr,ldro,bwcode",
    [
        (7, 125_000, 5, 0, 0x04),
        (11, 125_000, 5, 1, 0x04),
        (12, 125_000, 8, 1, 0x04),
        (11, 250_000, 6, 0, 0x05),
        (12, 250_000, 5, 1, 0x05),
        (12, 500_000, 7, 0, 0x06),
        (10, 62_500, 5, 1, 0x03),
        (5, 500_000, 5, 0, 0x06),
        (8, 10_400, 5, 1, 0x08),
    ],
)
def test_modulation_params_and_ldro(sf, bw, cr, ldro, bwcode):
    m, r = configured(sf=sf, bw_hz=bw, cr=cr, preamble=16)
    assert m.mod == (sf, bwcode, cr - 4, ldro)
    pre, hdr, plen, crc, iq = m.pkt
    assert (pre, hdr, crc, iq) == (16, 0, 1, 0)


def test_errata_registers():
    m, r = configured(bw_hz=125_000)
    assert m.regs[0x0889] & 0x04  # 15.1: set below 500 kHz
    assert m.regs[0x0736] & 0x04  # 15.4: standard IQ
    assert m.regs[0x08D8] & 0x1E == 0x1E  # 15.2: TX clamp
    assert m.regs[0x08AC] == 0x96  # boosted RX gain
    r.configure(869_525_000, bw_hz=500_000)
    assert not m.regs[0x0889] & 0x04  # 15.1: cleared at 500 kHz


@pytest.mark.parametrize(
    "dbm,pa,power,effective",
    [(22, (4, 7), 22, 22), (20, (3, 5), 22, 20), (17, (2, 3), 22, 17), (14, (2, 2), 22, 14), (10, (4, 7), 10, 10), (-9, (4, 7), -9, -9)],
)
def test_pa_config(dbm, pa, power, effective):
    m, r = configured(tx_power_dbm=dbm)
    assert m.pa == pa + (0, 1)
    assert m.tx_params == (power, 0x04)
    assert m.tx_power_dbm() == effective
    assert m.regs[0x08E7] == 0x38


@pytest.mark.parametrize("dbm", [-10, 23])
def test_pa_power_out_of_range(dbm):
    m, r = make()
    with pytest.raises(RadioError, match="dBm"):
        r.configure(869_525_000, tx_power_dbm=dbm)


def test_board_power_limit():
    m, r = make(max_power_dbm=20)
    with pytest.raises(RadioError):
        r.configure(869_525_000, tx_power_dbm=22)


@pytest.mark.parametrize("kw", [dict(sf=4), dict(sf=13), dict(cr=9), dict(bw_hz=200_000), dict(preamble=2)])
def test_invalid_parameters_rejected(kw):
    m, r = make()
    with pytest.raises(RadioError):
        r.configure(869_525_000, **kw)


def test_frequency_out_of_range():
    m, r = make()
    with pytest.raises(RadioError, match="150-960"):
        r.configure(1_000_000_000)


# --- TX ----------------------------------------------------------------------------------------------------
def test_tx_flow_interrupt_driven():
    woke = []
    m = SX126xModel()
    r = SX126x(m.spi, m.cs, m.reset, m.busy, m.dio1, tcxo_voltage=1.8, delay_ms=nodelay, irq_callback=lambda: woke.append(1))
    r.configure(869_525_000, sf=10, tx_power_dbm=14)
    r.send(b"bulletin #1")
    assert m.mode == TX
    f = m.transmitted[-1]
    assert f.payload == b"bulletin #1"
    assert f.config["payload_len"] == 11 and f.config["tx_power_dbm"] == 14 and f.config["sf"] == 10
    n = len(m.commands)
    for _ in range(5):
        assert not r.tx_done()
    assert len(m.commands) == n  # no SPI while DIO1 is low
    m.complete_tx()
    assert woke == [1] and m.dio1.irq_calls == 1
    assert r.tx_done()
    assert m.irq == 0 and m.mode == STBY_RC
    assert r.tx_count == 1


def test_tx_polling_without_dio1():
    m, r = configured(irq=False)
    r.send(b"poll")
    assert not r.tx_done()
    m.complete_tx()
    assert r.tx_done()


def test_tx_errors():
    m, r = configured()
    with pytest.raises(RadioError):
        r.send(b"")
    with pytest.raises(RadioError):
        r.send(bytes(256))
    r.send(bytes(range(255)))
    assert m.transmitted[-1].payload == bytes(range(255))
    with pytest.raises(RadioError, match="in progress"):
        r.send(b"again")


# --- RX ----------------------------------------------------------------------------------------------------
def test_rx_flow():
    m, r = configured()
    r.start_recv()
    assert m.mode == RX and m.rx_continuous
    assert m.pkt[2] == 0xFF
    assert r.recv() is None
    for i, f in enumerate([b"alpha", bytes(range(256))[:255], b"z"]):
        assert m.inject(f, rssi_dbm=-100 - i, snr_db=-3.75)
        payload, rssi, snr = r.recv()
        assert payload == f and rssi == -100 - i and snr == -3.75
        assert r.recv() is None
    assert m.mode == RX


def test_rx_after_tx_restores_max_payload_length():
    m, r = configured()
    r.start_recv()
    r.send(b"12345")
    assert m.pkt[2] == 5
    m.complete_tx()
    assert r.tx_done()
    assert m.mode == RX and m.pkt[2] == 0xFF
    m.inject(b"reply")
    assert r.recv()[0] == b"reply"


def test_crc_and_header_errors_dropped():
    m, r = configured()
    r.start_recv()
    m.inject(b"bad crc", crc_error=True)
    assert r.recv() is None
    m.inject_header_error()
    assert r.recv() is None
    assert r.rx_crc_errors == 2
    m.inject(b"fine")
    assert r.recv()[0] == b"fine"
    assert r.rx_ok == 1


def test_rx_buffer_start_pointer_honoured():
    m, r = configured()
    r.start_recv()
    m.rx_base = 0x80  # chip reports the frame at offset 0x80
    m.inject(b"offset frame")
    assert r.recv()[0] == b"offset frame"


def test_mismatched_frames_not_received():
    m, r = configured(sync_word=0x34)
    r.start_recv()
    assert not m.inject(b"x", sync_word16=0x1424)
    assert not m.inject(b"x", sf=7)
    assert m.inject(b"ok", sync_word16=0x3444, sf=9)
    assert r.recv()[0] == b"ok"


# --- CAD, sleep ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sf,symcode,peak", [(7, 1, 22), (9, 2, 23), (12, 2, 28)])
def test_cad(sf, symcode, peak):
    m, r = configured(sf=sf)
    r.start_recv()
    r.start_cad()
    assert m.mode == CAD
    assert m.cad_params[:4] == (symcode, peak, 10, 0)
    assert r.cad_result() is None
    m.complete_cad(True)
    assert r.cad_result() is True
    assert m.mode == RX
    r.start_cad()
    m.complete_cad(False)
    assert r.cad_result() is False


def test_sleep_wake_via_nss():
    m, r = configured()
    r.start_recv()
    r.sleep()
    assert m.mode == SLEEP and m.asleep and m.warm_sleep
    assert r.recv() is None  # polling while asleep must not send commands into a sleeping chip
    r.send(b"after sleep")
    assert m.wakeups == 1
    assert m.transmitted[-1].payload == b"after sleep"
    assert not m.violations


def test_standby_stops_rx():
    m, r = configured()
    r.start_recv()
    r.standby()
    assert m.mode == STBY_RC
    assert not m.inject(b"x")


# --- SX127x <-> SX126x over the air -------------------------------------------------------------------------
@pytest.mark.parametrize("sync", [0x12, 0x34])
def test_sx127x_frame_received_by_sx126x(sync):
    m7 = SX127xModel()
    r7 = SX127x(m7.spi, m7.cs, m7.reset, m7.dio0, delay_ms=nodelay)
    params = dict(sf=11, bw_hz=250_000, cr=5, preamble=16, sync_word=sync, tx_power_dbm=17)
    r7.configure(869_525_000, **params)
    m6, r6 = configured(**params)
    r6.start_recv()
    r7.send(b"cross-chip")
    air = m7.transmitted[-1]
    m7.complete_tx()
    c = air.config
    # Same on-air parameters: frequency within one SX127x step, same LDRO decision, mapped sync word.
    assert abs(c["freq_hz"] - m6.freq_hz()) < 62
    assert c["ldro"] == m6.config()["ldro"]
    assert m6.inject(
        air.payload, freq_hz=c["freq_hz"], sf=c["sf"], bw_hz=c["bw_hz"], sync_word16=sync_word_sx126x(c["sync_word"])
    )
    assert r6.recv()[0] == b"cross-chip"


def test_fake_spi_requires_equal_buffers():
    with pytest.raises(ValueError):
        FakeSPI(SX126xModel()).write_readinto(b"\x00", bytearray(2))


# --- real MicroPython ----------------------------------------------------------------------------------------
MPY_SX126X = r"""
def _sx126x_mpy_check():
    import gc
    gc.collect()
    free0 = gc.mem_free()
    from plexnode.radio.sx126x import SX126x
    gc.collect()
    used = free0 - gc.mem_free()

    class Pin:
        IRQ_RISING = 1
        def __init__(self, v=0, cb=None):
            self.v = v
            self.cb = cb
            self.h = None
        def value(self, v=None):
            if v is None:
                return self.v
            self.v = v
            if self.cb:
                self.cb(v)
        def irq(self, handler=None, trigger=1):
            self.h = handler

    class Chip:
        # just enough SX1262: opcodes, GetStatus, sync word register, TX done, one received frame
        def __init__(self):
            self.mosi = bytearray()
            self.irq = 0
            self.buf = bytearray(256)
            self.dio1 = Pin()
            self.ops = []
            self.frf = 0
        def cs(self, v):
            if v == 0:
                self.mosi = bytearray()
            else:
                self.execute(bytes(self.mosi))
        def xfer(self, b):
            i = len(self.mosi)
            self.mosi.append(b)
            op = self.mosi[0]
            st = 0x22
            if i == 0:
                return st
            if op == 0x12:
                return (st, self.irq >> 8, self.irq & 0xFF)[i - 1]
            if op == 0x13:
                return (st, 12, 0)[i - 1]
            if op == 0x14:
                return (st, 200, 28, 200)[i - 1]
            if op == 0x1D and i >= 4:
                a = (self.mosi[1] << 8) | self.mosi[2]
                return {0x0740: 0x14, 0x0741: 0x24}.get(a + i - 4, 0)
            if op == 0x1E and i >= 3:
                return self.buf[self.mosi[1] + i - 3]
            return st
        def execute(self, t):
            if not t:
                return
            op = t[0]
            self.ops.append(op)
            if op == 0x0E:
                for k in range(2, len(t)):
                    self.buf[t[1] + k - 2] = t[k]
            elif op == 0x86:
                self.frf = (t[1] << 24) | (t[2] << 16) | (t[3] << 8) | t[4]
            elif op == 0x02:
                self.irq &= ~((t[1] << 8) | t[2]) & 0xFFFF
                self.dio1.v = 1 if self.irq else 0
            elif op == 0x83:
                self.raise_irq(0x0001)
            elif op == 0x82:
                frame = b"from the air"
                for k in range(len(frame)):
                    self.buf[k] = frame[k]
                self.raise_irq(0x0002)
        def raise_irq(self, bits):
            self.irq |= bits
            self.dio1.v = 1
            if self.dio1.h:
                self.dio1.h(self.dio1)

    class SPI:
        def __init__(self, chip):
            self.c = chip
        def write(self, buf):
            for b in buf:
                self.c.xfer(b)
        def readinto(self, buf, w=0):
            for i in range(len(buf)):
                buf[i] = self.c.xfer(w)
        def write_readinto(self, w, r):
            for i in range(len(w)):
                r[i] = self.c.xfer(w[i])

    chip = Chip()
    cs = Pin(1, chip.cs)
    busy = Pin(0)
    r = SX126x(SPI(chip), cs, Pin(1), busy, chip.dio1, tcxo_voltage=1.8, delay_ms=lambda ms: None)
    r.configure(869525000, sf=12, bw_hz=125000, cr=5, preamble=8, sync_word=0x12, tx_power_dbm=22)
    r.send(b"hello from micropython")
    done = r.tx_done()
    sent = bytes(chip.buf[:22])
    r.start_recv()
    got = r.recv()
    print(hex(chip.frf), done, sent, got[0], got[1], got[2], r.uses_irq, 0x97 in chip.ops, used)

_sx126x_mpy_check()
del _sx126x_mpy_check
import gc
gc.collect()
"""


@pytest.mark.mpy
def test_sx126x_under_micropython(mpy):
    out = mpy.run(MPY_SX126X).split()
    assert out[0] == "0x36586666"
    assert out[1] == "True"
    assert out[2] == "b'hello" and out[4] == "micropython'"
    assert out[5:9] == ["b'from", "the", "air'", "-100"]
    assert out[9] == "7.0" and out[10] == "True" and out[11] == "True"
    assert int(out[12]) < 24_000


def test_missed_interrupt_found_by_forced_poll():
    """DIO1 edge lost and the line reads low: poll() sends no command, poll(force=True) issues
    GetIrqStatus anyway, delivers the frame and counts the miss; a real interrupt is not a miss."""
    m, r = configured()
    r.start_recv()
    m.dio1.handler = None
    m.dio1._reader = lambda: 0
    assert m.inject(b"late frame")
    n = len(m.commands)
    assert r.recv() is None and len(m.commands) == n
    r.poll(force=True)
    assert r.irq_missed == 1 and r.irq_count == 0
    assert r.recv()[0] == b"late frame"
    m2, r2 = configured()
    r2.start_recv()
    assert m2.inject(b"on time")
    assert r2.irq_count == 1
    r2.poll(force=True)
    assert r2.irq_missed == 0 and r2.recv()[0] == b"on time"


def test_send_reads_out_a_frame_whose_interrupt_was_missed():
    """send() clears the IRQ status: a frame that arrived with its interrupt lost is read out first."""
    m, r = configured()
    r.start_recv()
    m.dio1.handler = None
    m.dio1._reader = lambda: 0
    assert m.inject(b"arrived unseen")
    r.send(b"reply")
    assert r.irq_missed == 1
    assert r.recv()[0] == b"arrived unseen"
