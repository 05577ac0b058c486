"""LoRa radio drivers (Semtech SX127x and SX126x) and the helpers they share.

Both drivers take `machine.SPI` / `machine.Pin`-like objects and expose one API:

    configure(freq_hz, sf=9, bw_hz=125000, cr=5, preamble=8, sync_word=0x12, tx_power_dbm=14, crc=True)
    send(data)            start a transmission (non-blocking); poll tx_done()
    tx_done() -> bool     True once the last send() has left the antenna (and RX resumed if it was on)
    is_busy() -> bool     True while transmitting or running CAD
    start_recv()          continuous receive; the radio returns to it after each send()
    recv()                None or (payload: bytes, rssi_dbm: int, snr_db: float)
    start_cad() / cad_result() -> None | bool      channel activity detection
    irq_pending() -> bool cheap check: did the chip raise its IRQ line since the last service?
    standby(), sleep()

Runs unchanged under MicroPython (ESP32) and CPython (tests drive it against chip models).
Integer arithmetic only for the frequency word and the low-data-rate decision.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


try:
    from time import sleep_ms as _sleep_ms
except ImportError:  # CPython
    from time import sleep as _sleep

    def _sleep_ms(ms):  # type: ignore[misc]
        _sleep(ms / 1000)


class RadioError(Exception):
    """The radio chip is absent, unresponsive, or was asked for something it cannot do."""


# LoRa bandwidths both chip families support, in Hz (SX1276 datasheet table 13 "RegModemConfig1";
# SX1261/2 datasheet 13.4.5.2 "LoRa ModParam2 - BW").  Index = SX127x register code.
BANDWIDTHS = (7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000)

# SX126x bandwidth codes, same order as BANDWIDTHS (SX1261/2 datasheet table 13-48).
SX126X_BW_CODES = (0x00, 0x08, 0x01, 0x09, 0x02, 0x0A, 0x03, 0x04, 0x05, 0x06)

_IRQ_RISING_DEFAULT = const(1)

# Driver modes (host-side view), public so the chip modules can import them (MicroPython drops
# underscore-named const() values from the module namespace).
MODE_SLEEP = const(0)
MODE_STBY = const(1)
MODE_TX = const(2)
MODE_RX = const(3)
MODE_CAD = const(4)


def bw_index(bw_hz):
    """Index of bw_hz in BANDWIDTHS; RadioError for anything else."""
    i = 0
    for b in BANDWIDTHS:
        if b == bw_hz:
            return i
        i += 1
    raise RadioError("unsupported LoRa bandwidth %r Hz" % (bw_hz,))


def ldro_required(sf, bw_hz):
    """Low data rate optimisation: on when the symbol time 2^SF / BW >= 16 ms
    (SX1276 datasheet 4.1.1.6 / RegModemConfig3; SX1261/2 datasheet 6.1.1.4).
    Integer test: 2^SF * 1000 >= 16 * BW."""
    return (1 << sf) * 1000 >= 16 * bw_hz


def frf_word(freq_hz, shift):
    """Frequency word round(freq_hz * 2^shift / 32 MHz) without floats or big integers.

    32 MHz = 2^11 * 15625, so the word is freq * 2^(shift-11) / 15625; dividing first keeps every
    intermediate value inside a MicroPython small int for any freq < 1.1 GHz.
    shift = 19 for the SX127x (datasheet 4.1.4, F_STEP = 32 MHz / 2^19), 25 for the SX126x
    (datasheet 13.4.1, RF_FREQ = freq * 2^25 / F_XTAL)."""
    s = shift - 11
    q = freq_hz // 15625
    r = freq_hz - q * 15625
    return (q << s) + (((r << s) + 7812) // 15625)


def sync_word_sx126x(sync_word):
    """Map the one-byte SX127x LoRa sync word to the SX126x 16-bit register value.

    The SX126x stores each nibble of the SX127x byte in the high nibble of a byte and fills the low
    nibbles with 4: 0x12 (private) -> 0x1424, 0x34 (LoRaWAN public) -> 0x3444 (SX1261/2 datasheet
    table 12-1 "LoRa Sync Word" reset value 0x1424 and the public value 0x3444)."""
    if not 0 <= sync_word <= 0xFF:
        raise RadioError("sync word must be one byte (SX127x style), got %r" % (sync_word,))
    return ((sync_word & 0xF0) << 8) | 0x0400 | ((sync_word & 0x0F) << 4) | 0x04


def check_common(sf, bw_hz, cr, preamble, sf_min):
    """Validate modem parameters shared by both drivers; returns the bandwidth index."""
    if not sf_min <= sf <= 12:
        raise RadioError("spreading factor must be %d..12, got %r" % (sf_min, sf))
    if not 5 <= cr <= 8:
        raise RadioError("coding rate denominator must be 5..8 (4/5..4/8), got %r" % (cr,))
    if not 6 <= preamble <= 0xFFFF:
        raise RadioError("preamble must be 6..65535 symbols, got %r" % (preamble,))
    return bw_index(bw_hz)


class _Base:
    """What both drivers share: argument checks, the IRQ flag, receive/CAD state, statistics.

    Interrupts: the driver arms `irq_pin.irq(trigger=Pin.IRQ_RISING, handler=...)` on the chip's DIO line.
    The handler only sets a flag and calls `irq_callback` (e.g. asyncio.ThreadSafeFlag().set): it
    allocates nothing and touches no SPI, as MicroPython's "Writing interrupt handlers" asks
    (docs.micropython.org/en/latest/reference/isr_rules.html).  poll() does the SPI work later, in task
    context, and only when the flag is set or the line is still high; poll(force=True) reads the IRQ
    register regardless, which is how a missed interrupt is recovered (counted in irq_missed).
    Without an IRQ pin (or a port that cannot attach one) every poll() reads the register."""

    def _init_common(self, irq_pin, irq_callback, delay_ms):
        self._delay = delay_ms if delay_ms is not None else _sleep_ms
        self._irq_cb = irq_callback
        self._flag = False
        self._irq_pin = irq_pin
        self._use_irq = False
        self._mode = 0  # one of MODE_*
        self._rx_on = False
        self._rx_len = -1  # length of a frame waiting in _rxbuf, -1 if none
        self._rx_rssi = 0
        self._rx_snr_q4 = 0
        self._cad = None
        self._configured = False
        self._cfg = None
        self.rx_ok = 0
        self.rx_crc_errors = 0
        self.rx_overruns = 0
        self.tx_count = 0
        self.irq_count = 0  # ISR calls
        self.irq_missed = 0  # events found by a forced poll with no interrupt seen
        self._rxbuf = bytearray(256)
        self._rxmv = memoryview(self._rxbuf)
        if irq_pin is not None and hasattr(irq_pin, "irq"):
            trig = getattr(irq_pin, "IRQ_RISING", _IRQ_RISING_DEFAULT)
            try:
                irq_pin.irq(handler=self._isr, trigger=trig)
                self._use_irq = True
            except Exception:  # no interrupt support on this pin/port: polling fallback
                self._use_irq = False

    def _isr(self, pin):
        # Interrupt context (hard or soft): no allocation, no SPI.  Set the flag, wake the waiter.
        self._flag = True
        self.irq_count += 1
        cb = self._irq_cb
        if cb is not None:
            cb()

    @property
    def uses_irq(self):
        """True if the DIO interrupt is armed; False means poll()/recv()/tx_done() read the IRQ register."""
        return self._use_irq

    @property
    def config(self):
        """(freq_hz, sf, bw_hz, cr, preamble, sync_word, tx_power_dbm) of the last configure()."""
        return self._cfg

    def irq_pending(self):
        """Did the radio signal an event not yet serviced?  Cheap: flag, then DIO level, then register."""
        if self._flag:
            return True
        p = self._irq_pin
        if p is not None:
            return bool(p.value())
        return self._read_irq() != 0

    def poll(self, force=False):
        """Service the chip: read and clear its IRQ register, finish TX/RX/CAD.  Safe to call often.
        With the interrupt armed the register is read only when the ISR ran or the DIO line is high,
        unless force=True (the app's slow watchdog poll against missed interrupts)."""
        flagged = self._flag or not self._use_irq or self._irq_pin is None or self._irq_pin.value()
        if flagged or force:
            self._flag = False
            irq = self._read_irq()
            if irq:
                if not flagged:
                    self.irq_missed += 1
                self._service(irq)

    def tx_done(self):
        self.poll()
        return self._mode != MODE_TX

    def is_busy(self):
        self.poll()
        return self._mode == MODE_TX or self._mode == MODE_CAD

    def recv(self):
        """None, or (payload bytes, RSSI dBm, SNR dB) of the oldest frame the driver holds."""
        self.poll()
        n = self._rx_len
        if n < 0:
            return None
        self._rx_len = -1
        return (bytes(self._rxmv[:n]), self._rx_rssi, self._rx_snr_q4 / 4)

    def cad_result(self):
        """None while CAD runs (or none was started), else True (activity seen) / False.  One-shot."""
        self.poll()
        r = self._cad
        if r is not None and self._mode != MODE_CAD:
            self._cad = None
            return r
        return None

    def start_recv(self):
        """Continuous receive; the driver comes back to it after every send() or CAD."""
        self._need_config()
        self._rx_on = True
        if self._mode != MODE_TX and self._mode != MODE_CAD:
            self._enter_rx()

    def standby(self):
        self._rx_on = False
        self._standby()
        self._mode = MODE_STBY
        self._cad = None

    def _after_op(self):
        # Called when TX or CAD finished: return to continuous RX if the app had it on.
        if self._rx_on:
            self._enter_rx()
        else:
            self._mode = MODE_STBY

    def _need_config(self):
        if not self._configured:
            raise RadioError("configure() the radio first")

    def _check_send(self, data):
        """Common send()/start_cad() preamble: configured, payload 1..255 bytes (data=None: CAD), not mid-TX."""
        self._need_config()
        if data is not None:
            n = len(data)
            if not 1 <= n <= 255:
                raise RadioError("LoRa payload must be 1..255 bytes, got %d" % n)
        # Forced: the chip's IRQ flags are about to be cleared, so a frame whose interrupt was missed
        # must be read out now or it is lost.
        self.poll(True)
        if self._mode == MODE_TX:
            raise RadioError("a transmission is still in progress")

    def _begin_config(self, sf, bw_hz, cr, preamble, sf_min, sync_word):
        """Common configure() start: check the modem arguments, leave RX; returns (bw index, rx was on)."""
        bwi = check_common(sf, bw_hz, cr, preamble, sf_min)
        if not 0 <= sync_word <= 0xFF:
            raise RadioError("sync word must be one byte (SX127x style), got %r" % (sync_word,))
        rx_was_on = self._rx_on
        self._rx_on = False
        return bwi, rx_was_on

    def _end_config(self, cfg, rx_was_on):
        self._cfg = cfg
        self._configured = True
        self._flag = False
        if rx_was_on:
            self.start_recv()

    def _rx_done(self, n, rssi, snr_q4):
        # Book a frame the driver just read into _rxbuf (the previous one, if unread, is overwritten).
        if self._rx_len >= 0:
            self.rx_overruns += 1
        self._rx_rssi = rssi
        self._rx_snr_q4 = snr_q4
        self._rx_len = n
        self.rx_ok += 1
