"""Register-level model of the Semtech SX1276 in LoRa mode, written from the SX1276/77/78/79 datasheet
(rev. 7): register map (6.4, table 41), SPI access (4.3), FIFO (4.1.2.3), operating modes (4.1.3),
TX/RX sequences (4.1.6), DIO mapping (table 18), packet RSSI/SNR (5.5.5), PA (5.4).

The model is a fake SPI slave plus fake pins: NSS frames transactions, the first byte is the address
(bit 7 = write), bursts auto-increment except on RegFifo.  It enforces what the silicon enforces or
silently breaks on, raising ProtocolViolation instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import FakePin, FakeSPI, ModelBase

SLEEP, STDBY, FSTX, TX, FSRX, RXCONT, RXSINGLE, CAD = range(8)
MODE_NAMES = ("SLEEP", "STDBY", "FSTX", "TX", "FSRX", "RXCONTINUOUS", "RXSINGLE", "CAD")

IRQ_RX_TIMEOUT = 0x80
IRQ_RX_DONE = 0x40
IRQ_CRC_ERROR = 0x20
IRQ_VALID_HEADER = 0x10
IRQ_TX_DONE = 0x08
IRQ_CAD_DONE = 0x04
IRQ_CAD_DETECTED = 0x01

BANDWIDTHS = (7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000)

# Reset values, LoRa page (datasheet table 41, "default value" column, LoRa mode).
_LORA_DEFAULTS = {
    0x01: 0x09,  # RegOpMode after POR: FSK, LowFrequencyModeOn, Standby
    0x06: 0x6C,
    0x07: 0x80,
    0x08: 0x00,  # 434 MHz
    0x09: 0x4F,
    0x0A: 0x09,
    0x0B: 0x2B,
    0x0C: 0x20,
    0x0D: 0x00,
    0x0E: 0x80,
    0x0F: 0x00,
    0x11: 0x00,
    0x1D: 0x72,
    0x1E: 0x70,
    0x1F: 0x64,
    0x20: 0x00,
    0x21: 0x08,
    0x22: 0x01,
    0x23: 0xFF,
    0x26: 0x00,
    0x31: 0xC3,
    0x33: 0x27,
    0x37: 0x0A,
    0x39: 0x12,
    0x3B: 0x1D,
    0x40: 0x00,
    0x41: 0x00,
    0x42: 0x12,
    0x4B: 0x09,
    0x4D: 0x84,
}
_READ_ONLY = {0x10, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x42}
_FREQ_REGS = {0x06, 0x07, 0x08}


@dataclass
class Frame:
    payload: bytes
    config: dict = field(default_factory=dict)


class SX127xModel(ModelBase):
    """present=False models an empty footprint (MISO reads `absent_value`)."""

    def __init__(self, present: bool = True, absent_value: int = 0x00, version: int = 0x12):
        super().__init__()
        self.present = present
        self.absent_value = absent_value
        self.version = version
        self.spi = FakeSPI(self)
        self.cs = FakePin("NSS", 1, on_change=self._cs_edge)
        self.reset = FakePin("NRESET", 1, on_change=self._reset_edge)
        self.dio0 = FakePin("DIO0", 0)
        self.transmitted: list[Frame] = []
        self.tx_aborted = 0
        self.spi_transactions = 0
        self.resets = 0
        self._por()

    # --- power-on / reset ----------------------------------------------------------------------
    def _por(self) -> None:
        self.regs = bytearray(0x80)
        for a, v in _LORA_DEFAULTS.items():
            self.regs[a] = v
        self.regs[0x42] = self.version
        self.fifo = bytearray(256)
        self.irq = 0
        self._in_txn = False
        self._addr = 0
        self._write = False
        self._first = True
        self._tx_pending = False
        self._cad_pending = False
        self._rx_wptr = 0
        self.dio0.drive(0)

    def _reset_edge(self, old: int, new: int) -> None:
        if old == 1 and new == 0:
            self._in_reset = True
        elif old == 0 and new == 1:
            self.resets += 1
            self._por()

    # --- decoded state --------------------------------------------------------------------------
    @property
    def mode(self) -> int:
        return self.regs[0x01] & 0x07

    @property
    def lora(self) -> bool:
        return bool(self.regs[0x01] & 0x80)

    @property
    def mode_name(self) -> str:
        return MODE_NAMES[self.mode]

    def frf(self) -> int:
        return (self.regs[0x06] << 16) | (self.regs[0x07] << 8) | self.regs[0x08]

    def freq_hz(self) -> int:
        """F_RF = F_XOSC * Frf / 2^19 (datasheet 4.1.4), exact integer arithmetic."""
        return self.frf() * 32_000_000 // (1 << 19)

    def bw_hz(self) -> int:
        return BANDWIDTHS[self.regs[0x1D] >> 4]

    def cr(self) -> int:
        return 4 + ((self.regs[0x1D] >> 1) & 0x07)

    def implicit_header(self) -> bool:
        return bool(self.regs[0x1D] & 0x01)

    def sf(self) -> int:
        return self.regs[0x1E] >> 4

    def crc_on(self) -> bool:
        return bool(self.regs[0x1E] & 0x04)

    def ldro(self) -> bool:
        return bool(self.regs[0x26] & 0x08)

    def preamble(self) -> int:
        return (self.regs[0x20] << 8) | self.regs[0x21]

    def sync_word(self) -> int:
        return self.regs[0x39]

    def pa_boost(self) -> bool:
        return bool(self.regs[0x09] & 0x80)

    def tx_power_dbm(self) -> float:
        """Output power (datasheet 5.4.2/5.4.3): PA_BOOST 17 - (15 - OutputPower), +3 dB with PaDac 0x87;
        RFO Pmax - (15 - OutputPower), Pmax = 10.8 + 0.6 * MaxPower."""
        pc = self.regs[0x09]
        out = pc & 0x0F
        if pc & 0x80:
            if (self.regs[0x4D] & 0x07) == 0x07:
                return 5 + out
            return 2 + out
        pmax = 10.8 + 0.6 * ((pc >> 4) & 0x07)
        return round(pmax - (15 - out), 1)

    def ocp_ma(self) -> int:
        ocp = self.regs[0x0B]
        if not ocp & 0x20:
            return 0
        t = ocp & 0x1F
        if t <= 15:
            return 45 + 5 * t
        if t <= 27:
            return -30 + 10 * t
        return 240

    def config(self) -> dict:
        return {
            "freq_hz": self.freq_hz(),
            "sf": self.sf(),
            "bw_hz": self.bw_hz(),
            "cr": self.cr(),
            "crc": self.crc_on(),
            "ldro": self.ldro(),
            "preamble": self.preamble(),
            "sync_word": self.sync_word(),
            "pa_boost": self.pa_boost(),
            "tx_power_dbm": self.tx_power_dbm(),
            "implicit": self.implicit_header(),
        }

    # --- SPI ------------------------------------------------------------------------------------
    def _cs_edge(self, old: int, new: int) -> None:
        if old == 1 and new == 0:
            self._in_txn = True
            self._first = True
            self.spi_transactions += 1
        elif old == 0 and new == 1:
            self._in_txn = False

    def xfer(self, b: int) -> int:
        if not self._in_txn:
            self.violate("SPI clocked while NSS is high")
        if not self.present:
            return self.absent_value
        if self._first:
            self._first = False
            self._addr = b & 0x7F
            self._write = bool(b & 0x80)
            return 0x00
        a = self._addr
        if self._write:
            self._write_reg(a, b)
            out = 0x00
        else:
            out = self._read_reg(a)
        if a != 0x00:
            self._addr = (a + 1) & 0x7F
        return out

    def _check_lora_page(self, a: int, what: str) -> None:
        if 0x0D <= a <= 0x3F and not self.lora:
            self.violate("%s LoRa register 0x%02x while the chip is in FSK/OOK mode" % (what, a))

    def _read_reg(self, a: int) -> int:
        self._check_lora_page(a, "read of")
        if a == 0x00:
            if self.mode == SLEEP:
                self.violate("FIFO read in Sleep mode (datasheet 4.1.2.3: FIFO not accessible in Sleep)")
            p = self.regs[0x0D]
            v = self.fifo[p]
            self.regs[0x0D] = (p + 1) & 0xFF
            return v
        if a == 0x12:
            return self.irq
        return self.regs[a]

    def _write_reg(self, a: int, v: int) -> None:
        self._check_lora_page(a, "write to")
        if a == 0x00:
            if self.mode == SLEEP:
                self.violate("FIFO written in Sleep mode (datasheet 4.1.2.3: FIFO not accessible in Sleep)")
            if self.mode in (TX, RXCONT, RXSINGLE, CAD):
                self.violate("FIFO written in %s mode: fill it in Standby (datasheet 4.1.6)" % self.mode_name)
            p = self.regs[0x0D]
            self.fifo[p] = v
            self.regs[0x0D] = (p + 1) & 0xFF
            return
        if a in _READ_ONLY:
            self.violate("write to read-only register 0x%02x" % a)
        if a == 0x01:
            self._set_opmode(v)
            return
        if a in _FREQ_REGS and self.mode not in (SLEEP, STDBY):
            self.violate("Frf written in %s mode (only in Sleep/Standby, datasheet 4.1.4)" % self.mode_name)
        if a == 0x12:
            self.irq &= ~v & 0xFF
            self._update_dio()
            return
        if a == 0x22 and v == 0 and self.lora:
            self.violate("RegPayloadLength = 0 (datasheet: must be > 0 for TX)")
        self.regs[a] = v

    def _set_opmode(self, v: int) -> None:
        old = self.regs[0x01]
        if (old ^ v) & 0x80 and (old & 0x07) != SLEEP:
            self.violate("LongRangeMode changed outside Sleep mode (RegOpMode b7 is writable only in Sleep)")
        new_mode = v & 0x07
        old_mode = old & 0x07
        self.regs[0x01] = v
        if new_mode == old_mode:
            return
        if old_mode == TX and self._tx_pending:
            self._tx_pending = False
            self.tx_aborted += 1
        if old_mode == CAD:
            self._cad_pending = False
        if new_mode == SLEEP:
            self.fifo = bytearray(256)  # FIFO content is lost in Sleep
        if new_mode == TX:
            if not v & 0x80:
                self.violate("TX requested in FSK mode")
            n = self.regs[0x22]
            base = self.regs[0x0E]
            payload = bytes(self.fifo[(base + i) & 0xFF] for i in range(n))
            self.transmitted.append(Frame(payload, self.config()))
            self._tx_pending = True
        elif new_mode in (RXCONT, RXSINGLE):
            if not v & 0x80:
                self.violate("RX requested in FSK mode")
            self._rx_wptr = self.regs[0x0F]
        elif new_mode == CAD:
            self._cad_pending = True
        elif new_mode in (FSTX, FSRX):
            pass

    # --- IRQ / DIO0 -------------------------------------------------------------------------------
    def _raise(self, bits: int) -> None:
        bits &= ~self.regs[0x11] & 0xFF  # RegIrqFlagsMask: 1 = masked
        self.irq |= bits
        self._update_dio()

    def _update_dio(self) -> None:
        mapping = self.regs[0x40] >> 6
        src = {0: IRQ_RX_DONE, 1: IRQ_TX_DONE, 2: IRQ_CAD_DONE}.get(mapping, 0)
        self.dio0.drive(1 if self.irq & src else 0)

    # --- test-side events -----------------------------------------------------------------------
    @property
    def tx_pending(self) -> bool:
        return self._tx_pending

    def complete_tx(self) -> None:
        """The frame has left the antenna: TxDone, back to Standby (datasheet 4.1.6)."""
        if not self._tx_pending:
            raise AssertionError("complete_tx(): no transmission in progress (mode %s)" % self.mode_name)
        self._tx_pending = False
        self.regs[0x01] = (self.regs[0x01] & 0xF8) | STDBY
        self._raise(IRQ_TX_DONE)

    def complete_cad(self, detected: bool) -> None:
        if not self._cad_pending:
            raise AssertionError("complete_cad(): CAD not running (mode %s)" % self.mode_name)
        self._cad_pending = False
        self.regs[0x01] = (self.regs[0x01] & 0xF8) | STDBY
        self._raise(IRQ_CAD_DONE | (IRQ_CAD_DETECTED if detected else 0))

    def inject(
        self,
        payload: bytes,
        rssi_dbm: int = -80,
        snr_db: float = 8.0,
        crc_error: bool = False,
        crc_present: bool = True,
        freq_hz: int | None = None,
        sf: int | None = None,
        bw_hz: int | None = None,
        sync_word: int | None = None,
    ) -> bool:
        """A LoRa frame arrives.  Returns False (nothing happens) unless the chip is in LoRa RX with
        matching frequency (within 1 kHz), SF, bandwidth and sync word."""
        if not self.lora or self.mode not in (RXCONT, RXSINGLE):
            return False
        if freq_hz is not None and abs(freq_hz - self.freq_hz()) > 1000:
            return False
        if sf is not None and sf != self.sf():
            return False
        if bw_hz is not None and bw_hz != self.bw_hz():
            return False
        if sync_word is not None and sync_word != self.sync_word():
            return False
        n = len(payload)
        start = self._rx_wptr
        for i, b in enumerate(payload):
            self.fifo[(start + i) & 0xFF] = b
        self._rx_wptr = (start + n) & 0xFF
        self.regs[0x10] = start
        self.regs[0x13] = n
        snr_q4 = int(round(snr_db * 4))
        self.regs[0x19] = snr_q4 & 0xFF
        hf = self.freq_hz() > 525_000_000
        off = -157 if hf else -164
        # Inverse of datasheet 5.5.5: SNR >= 0: RSSI = off + 16/15 * raw; SNR < 0: off + raw + SNR/4.
        if snr_q4 >= 0:
            raw = round((rssi_dbm - off) * 15 / 16)
        else:
            raw = round(rssi_dbm - off - snr_q4 / 4)
        self.regs[0x1A] = max(0, min(255, raw))
        self.regs[0x1C] = (self.regs[0x1C] & ~0x40) | (0x40 if crc_present else 0)
        bits = IRQ_RX_DONE | IRQ_VALID_HEADER
        if crc_error and crc_present:  # explicit header: the header decides whether RX checks CRC
            bits |= IRQ_CRC_ERROR
        if self.mode == RXSINGLE:
            self.regs[0x01] = (self.regs[0x01] & 0xF8) | STDBY
        self._raise(bits)
        return True
