"""SX127x driver against the register-level SX1276 model (tests/chipmodels/sx127x.py)."""

import pytest
from chipmodels import FakePin, ProtocolViolation, SX127xModel
from chipmodels.sx127x import CAD, RXCONT, SLEEP, STDBY, TX
from hypothesis import given
from hypothesis import strategies as st
from plexnode.radio import RadioError, frf_word, ldro_required
from plexnode.radio.sx127x import SX127x


def nodelay(ms):
    pass


def make(model=None, irq=True, **kw):
    m = model or SX127xModel()
    r = SX127x(m.spi, m.cs, m.reset, m.dio0 if irq else None, delay_ms=nodelay, **kw)
    return m, r


def configured(freq=869_525_000, irq=True, **cfg):
    m, r = make(irq=irq)
    r.configure(freq, **cfg)
    return m, r


# --- silicon check -------------------------------------------------------------------------------
@pytest.mark.parametrize("absent", [0x00, 0xFF])
def test_absent_chip_raises_clear_error(absent):
    m = SX127xModel(present=False, absent_value=absent)
    with pytest.raises(RadioError, match="RegVersion"):
        SX127x(m.spi, m.cs, m.reset, m.dio0, delay_ms=nodelay)


def test_wrong_silicon_version_rejected():
    m = SX127xModel(version=0x22)
    with pytest.raises(RadioError, match="0x22"):
        SX127x(m.spi, m.cs, m.reset, m.dio0, delay_ms=nodelay)


def test_reset_pulse_and_lora_mode():
    m, r = make()
    assert m.resets == 1  # NRESET was pulsed low then high
    assert m.lora and m.mode == STDBY
    assert r.uses_irq and m.dio0.handler is not None


# --- frequency -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "freq,frf",
    [
        (868_100_000, 0xD90666),  # 868.1e6 * 2^19 / 32e6 = 14222950.4
        (915_000_000, 0xE4C000),
        (869_525_000, 0xD9619A),  # 14246297.6 -> rounds up
        (433_175_000, 0x6C4B33),  # 7097139.2
    ],
)
def test_frequency_registers(freq, frf):
    m, r = configured(freq)
    assert m.frf() == frf
    assert abs(m.freq_hz() - freq) <= 31  # F_STEP = 61.035 Hz, rounded to nearest
    assert bool(m.regs[0x01] & 0x08) == (freq < 525_000_000)  # LowFrequencyModeOn on the LF bands


@given(st.integers(min_value=137_000_000, max_value=1_020_000_000))
def test_frf_word_is_exact_rounding(freq):
    for shift in (19, 25):
        exact = freq * (1 << shift)
        want = (2 * exact + 32_000_000) // (2 * 32_000_000)  # round half up
        assert frf_word(freq, shift) == want


@pytest.mark.parametrize("freq", [100_000_000, 600_000_000, 1_100_000_000])
def test_frequency_out_of_band_rejected(freq):
    m, r = make()
    with pytest.raises(RadioError, match="outside"):
        r.configure(freq)


# --- modem configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sf,bw,cr,ldro",
    [
        (7, 125_000, 5, False),
        (9, 125_000, 5, False),
        (10, 125_000, 8, False),  # 8.19 ms
        (11, 125_000, 5, True),  # 16.38 ms
        (12, 125_000, 6, True),
        (11, 250_000, 5, False),  # 8.19 ms
        (12, 250_000, 7, True),  # 16.38 ms
        (12, 500_000, 5, False),
        (10, 62_500, 5, True),  # 16.38 ms
        (9, 31_250, 5, True),
        (7, 7_800, 5, True),
    ],
)
def test_modem_config_registers(sf, bw, cr, ldro):
    m, r = configured(sf=sf, bw_hz=bw, cr=cr, preamble=12)
    assert (m.sf(), m.bw_hz(), m.cr()) == (sf, bw, cr)
    assert m.ldro() is ldro
    assert ldro_required(sf, bw) is ldro
    assert m.crc_on() and not m.implicit_header()
    assert m.preamble() == 12
    assert m.regs[0x26] & 0x04  # AgcAutoOn
    assert m.regs[0x31] & 0x07 == 0x03 and m.regs[0x37] == 0x0A  # SF7..12 detection settings


def test_bw500_errata_registers():
    m, r = configured(bw_hz=500_000)
    assert (m.regs[0x36], m.regs[0x3A]) == (0x02, 0x64)
    m, r = configured(freq=433_175_000, bw_hz=500_000)
    assert (m.regs[0x36], m.regs[0x3A]) == (0x02, 0x7F)
    m, r = configured(bw_hz=125_000)
    assert m.regs[0x36] == 0x03


@pytest.mark.parametrize("sync", [0x12, 0x34, 0x2B])
def test_sync_word(sync):
    m, r = configured(sync_word=sync)
    assert m.sync_word() == sync


@pytest.mark.parametrize(
    "kw",
    [dict(sf=6), dict(sf=13), dict(cr=4), dict(cr=9), dict(bw_hz=100_000), dict(preamble=3), dict(sync_word=0x100)],
)
def test_invalid_modem_parameters_rejected(kw):
    m, r = make()
    with pytest.raises(RadioError):
        r.configure(869_525_000, **kw)


# --- PA ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dbm,pa_config,pa_dac,ocp",
    [(2, 0xF0, 0x84, 100), (14, 0xFC, 0x84, 100), (17, 0xFF, 0x84, 100), (20, 0xFF, 0x87, 140), (18, 0xFD, 0x87, 140)],
)
def test_pa_boost_power(dbm, pa_config, pa_dac, ocp):
    m, r = configured(tx_power_dbm=dbm)
    assert m.regs[0x09] == pa_config
    assert m.regs[0x4D] == pa_dac
    assert m.ocp_ma() == ocp
    assert m.pa_boost() and m.tx_power_dbm() == dbm


def test_rfo_board_uses_rfo_pin():
    m, r = make(pa_boost=False)
    r.configure(869_525_000, tx_power_dbm=10)
    assert not m.pa_boost()
    assert m.tx_power_dbm() == 10
    with pytest.raises(RadioError):
        r.configure(869_525_000, tx_power_dbm=17)


@pytest.mark.parametrize("dbm", [1, 21, 30])
def test_pa_boost_power_out_of_range(dbm):
    m, r = make()
    with pytest.raises(RadioError, match="dBm"):
        r.configure(869_525_000, tx_power_dbm=dbm)


# --- TX -----------------------------------------------------------------------------------------------
def test_tx_flow_interrupt_driven():
    flags = []
    m = SX127xModel()
    r = SX127x(m.spi, m.cs, m.reset, m.dio0, delay_ms=nodelay, irq_callback=lambda: flags.append(1))
    r.configure(869_525_000, sf=9)
    r.send(b"hello plexus")
    assert m.mode == TX and m.tx_pending
    assert m.transmitted[-1].payload == b"hello plexus"
    assert m.transmitted[-1].config["sf"] == 9
    assert m.regs[0x40] >> 6 == 0b01  # DIO0 = TxDone
    before = m.spi_transactions
    for _ in range(5):
        assert not r.tx_done()
        assert r.is_busy()
    assert m.spi_transactions == before  # IRQ path: no SPI traffic while DIO0 is low
    assert not r.irq_pending()
    m.complete_tx()
    assert m.dio0.irq_calls == 1 and flags == [1]  # ISR ran once and woke the callback
    assert r.irq_pending()
    assert r.tx_done()
    assert not r.is_busy()
    assert m.irq == 0 and m.dio0.value() == 0  # flags cleared
    assert r.tx_count == 1
    assert m.mode == STDBY


def test_tx_flow_polling_without_dio0():
    m, r = configured(irq=False)
    assert not r.uses_irq
    r.send(b"\x00\x01\x02")
    assert not r.tx_done()
    m.complete_tx()
    assert r.tx_done()
    assert m.transmitted[-1].payload == b"\x00\x01\x02"


def test_tx_payload_limits_and_busy():
    m, r = configured()
    with pytest.raises(RadioError):
        r.send(b"")
    with pytest.raises(RadioError):
        r.send(bytes(256))
    r.send(bytes(range(255)))
    assert m.transmitted[-1].payload == bytes(range(255))
    with pytest.raises(RadioError, match="in progress"):
        r.send(b"x")
    m.complete_tx()
    r.send(b"x")
    assert m.transmitted[-1].payload == b"x"


def test_send_requires_configure():
    m, r = make()
    with pytest.raises(RadioError, match="configure"):
        r.send(b"x")


# --- RX -----------------------------------------------------------------------------------------------
def test_rx_flow_and_fifo_pointers():
    m, r = configured()
    r.start_recv()
    assert m.mode == RXCONT and m.regs[0x40] >> 6 == 0b00  # DIO0 = RxDone
    assert r.recv() is None
    frames = [b"first frame", b"second", bytes(range(200)), b"wraps around the 256-byte FIFO" * 3]
    for i, f in enumerate(frames):
        assert m.inject(f, rssi_dbm=-90 - i, snr_db=6.5)
        got = r.recv()
        assert got is not None
        payload, rssi, snr = got
        assert payload == f
        assert abs(rssi - (-90 - i)) <= 1
        assert snr == 6.5
        assert r.recv() is None
    # The model writes successive frames at successive FIFO addresses: the driver must have used
    # RegFifoRxCurrentAddr, not the base address, for every frame after the first.
    assert m.regs[0x10] != 0
    assert r.rx_ok == len(frames)


@pytest.mark.parametrize("rssi,snr", [(-120, -12.25), (-100, -5.25), (-60, 9.75), (-137, -19.5)])
def test_rssi_snr_formulas(rssi, snr):
    m, r = configured()
    r.start_recv()
    m.inject(b"x", rssi_dbm=rssi, snr_db=snr)
    _, got_rssi, got_snr = r.recv()
    assert got_snr == snr
    assert abs(got_rssi - rssi) <= 1


def test_crc_error_frames_dropped():
    m, r = configured()
    r.start_recv()
    m.inject(b"corrupted", crc_error=True)
    assert r.recv() is None
    assert r.rx_crc_errors == 1
    m.inject(b"no crc in header", crc_present=False)
    assert r.recv() is None
    assert r.rx_crc_errors == 2
    m.inject(b"good")
    assert r.recv()[0] == b"good"
    assert r.rx_ok == 1


def test_rx_polling_mode():
    m, r = configured(irq=False)
    r.start_recv()
    assert r.recv() is None
    m.inject(b"polled")
    assert r.irq_pending()
    assert r.recv()[0] == b"polled"


def test_rx_overrun_keeps_latest():
    m, r = configured()
    r.start_recv()
    m.inject(b"one")
    r.poll()
    m.inject(b"two")
    r.poll()
    assert r.recv()[0] == b"two"
    assert r.rx_overruns == 1


def test_mismatched_frames_not_received():
    m, r = configured(sf=9, sync_word=0x34)
    r.start_recv()
    assert not m.inject(b"x", sync_word=0x12)
    assert not m.inject(b"x", sf=10)
    assert not m.inject(b"x", freq_hz=868_100_000)
    assert r.recv() is None
    assert m.inject(b"y", sync_word=0x34, sf=9, freq_hz=869_525_000)
    assert r.recv()[0] == b"y"


def test_rx_resumes_after_tx_and_reconfigure():
    m, r = configured()
    r.start_recv()
    r.send(b"ping")
    assert m.mode == TX
    assert not m.inject(b"lost while transmitting")
    m.complete_tx()
    assert r.tx_done()
    assert m.mode == RXCONT
    m.inject(b"pong")
    assert r.recv()[0] == b"pong"
    r.configure(868_100_000, sf=7)
    assert m.mode == RXCONT and m.sf() == 7


# --- CAD, sleep, standby ---------------------------------------------------------------------------------
@pytest.mark.parametrize("detected", [True, False])
def test_cad(detected):
    m, r = configured()
    r.start_recv()
    r.start_cad()
    assert m.mode == CAD and m.regs[0x40] >> 6 == 0b10
    assert r.cad_result() is None and r.is_busy()
    m.complete_cad(detected)
    assert r.cad_result() is detected
    assert r.cad_result() is None
    assert m.mode == RXCONT  # back to receive


def test_sleep_then_send_and_standby():
    m, r = configured()
    r.sleep()
    assert m.mode == SLEEP
    r.send(b"wake")  # must leave Sleep before touching the FIFO (the model enforces it)
    assert m.transmitted[-1].payload == b"wake"
    m.complete_tx()
    assert r.tx_done()
    r.start_recv()
    r.standby()
    assert m.mode == STDBY
    assert not m.inject(b"x")


# --- the model rejects what the chip rejects ---------------------------------------------------------------
def _raw_write(m, addr, data):
    m.cs.value(0)
    m.spi.write(bytes([addr | 0x80]) + bytes(data))
    m.cs.value(1)


def test_model_rejects_fifo_write_in_sleep():
    m, r = configured()
    r.sleep()
    with pytest.raises(ProtocolViolation, match="Sleep"):
        _raw_write(m, 0x00, b"\x01")


def test_model_rejects_fifo_write_while_transmitting():
    m, r = configured()
    r.send(b"abc")
    with pytest.raises(ProtocolViolation, match="TX"):
        _raw_write(m, 0x00, b"\x01")


def test_model_rejects_lora_bit_change_outside_sleep():
    m, r = configured()
    with pytest.raises(ProtocolViolation, match="LongRangeMode"):
        _raw_write(m, 0x01, [0x01])  # FSK standby while in LoRa standby


def test_model_rejects_frequency_change_while_receiving():
    m, r = configured()
    r.start_recv()
    with pytest.raises(ProtocolViolation, match="Frf"):
        _raw_write(m, 0x06, [0xE4])


def test_model_rejects_spi_without_nss():
    m = SX127xModel()
    with pytest.raises(ProtocolViolation, match="NSS"):
        m.spi.write(b"\x42")


def test_no_irq_support_falls_back_to_polling():
    class NoIrqPin(FakePin):
        def irq(self, *a, **k):
            raise OSError("no IRQ on this pin")

    m = SX127xModel()
    pin = NoIrqPin("DIO0")
    r = SX127x(m.spi, m.cs, m.reset, pin, delay_ms=nodelay)
    assert not r.uses_irq
    r.configure(869_525_000)
    r.send(b"x")
    m.complete_tx()
    assert r.tx_done()


# --- real MicroPython ----------------------------------------------------------------------------------------
MPY_SX127X = r"""
def _sx127x_mpy_check():
    import gc
    gc.collect()
    free0 = gc.mem_free()
    from plexnode.radio.sx127x import SX127x
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
        # just enough SX1276: register file, FIFO, TX done and one received frame
        def __init__(self):
            self.regs = bytearray(128)
            self.regs[0x42] = 0x12
            self.fifo = bytearray(256)
            self.first = True
            self.addr = 0
            self.wr = False
            self.dio0 = Pin()
        def cs(self, v):
            if v == 0:
                self.first = True
        def xfer(self, b):
            if self.first:
                self.first = False
                self.addr = b & 0x7F
                self.wr = bool(b & 0x80)
                return 0
            a = self.addr
            out = 0
            if a == 0:
                p = self.regs[0x0D]
                if self.wr:
                    self.fifo[p] = b
                else:
                    out = self.fifo[p]
                self.regs[0x0D] = (p + 1) & 0xFF
            elif self.wr:
                if a == 0x12:
                    self.regs[0x12] &= ~b & 0xFF
                    self.dio0.v = 1 if self.regs[0x12] else 0
                else:
                    self.regs[a] = b
                if a == 0x01 and b & 7 == 3:      # TX -> done at once
                    self.regs[0x01] = (b & 0xF8) | 1
                    self.raise_irq(0x08)
                if a == 0x01 and b & 7 == 5:      # RX continuous -> one frame arrives
                    frame = b"from the air"
                    for i in range(len(frame)):
                        self.fifo[0x40 + i] = frame[i]
                    self.regs[0x10] = 0x40
                    self.regs[0x13] = len(frame)
                    self.regs[0x19] = 30          # SNR 7.5 dB
                    self.regs[0x1A] = 60
                    self.regs[0x1C] = 0x40        # CRC on payload
                    self.raise_irq(0x50)
            else:
                out = self.regs[a]
            if a:
                self.addr = (a + 1) & 0x7F
            return out
        def raise_irq(self, bits):
            self.regs[0x12] |= bits
            self.dio0.v = 1
            if self.dio0.h:
                self.dio0.h(self.dio0)

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
    r = SX127x(SPI(chip), cs, Pin(1), chip.dio0, delay_ms=lambda ms: None)
    r.configure(869525000, sf=10, bw_hz=125000, cr=5, preamble=8, sync_word=0x12, tx_power_dbm=14)
    frf = (chip.regs[6] << 16) | (chip.regs[7] << 8) | chip.regs[8]
    r.send(b"hello from micropython")
    done = r.tx_done()
    sent = bytes(chip.fifo[:22])
    r.start_recv()
    got = r.recv()
    print(hex(frf), done, sent, got[0], got[1], got[2], r.uses_irq, used)

_sx127x_mpy_check()
del _sx127x_mpy_check
import gc
gc.collect()
"""


@pytest.mark.mpy
def test_sx127x_under_micropython(mpy):
    out = mpy.run(MPY_SX127X).split()
    assert out[0] == "0xd9619a"  # same Frf as CPython: integer-only arithmetic
    assert out[1] == "True"
    assert out[2] == "b'hello" and out[4] == "micropython'"
    assert out[5:9] == ["b'from", "the", "air'", str(-157 + (60 * 16 + 7) // 15)]
    assert out[9] == "7.5" and out[10] == "True"
    assert int(out[11]) < 24_000  # RAM taken by importing the driver (bytes)


def test_missed_interrupt_found_by_forced_poll():
    """The ISR never ran and the DIO0 line reads low (a lost edge on a broken trace): poll() stays off the
    SPI bus, poll(force=True) reads RegIrqFlags anyway, delivers the frame and counts the miss."""
    m, r = configured()
    r.start_recv()
    m.dio0.handler = None  # edge lost
    m.dio0._reader = lambda: 0  # and the level is not seen either
    assert m.inject(b"late frame")
    before = m.spi_transactions
    assert r.recv() is None and m.spi_transactions == before
    r.poll(force=True)
    assert r.irq_missed == 1 and r.irq_count == 0
    assert r.recv()[0] == b"late frame"
    r.poll(force=True)  # nothing pending: not a miss
    assert r.irq_missed == 1


def test_send_reads_out_a_frame_whose_interrupt_was_missed():
    """send() clears RegIrqFlags: a frame that arrived with its interrupt lost is read out first, not dropped."""
    m, r = configured()
    r.start_recv()
    m.dio0.handler = None
    m.dio0._reader = lambda: 0
    assert m.inject(b"arrived unseen")
    r.send(b"reply")
    assert r.irq_missed == 1
    assert r.recv()[0] == b"arrived unseen"
