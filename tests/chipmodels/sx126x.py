"""Command-level model of the Semtech SX1262, written from the SX1261/2 datasheet (rev. 2.1):
SPI and BUSY (8.3), sleep/wake (9.3), image calibration (9.2.1), commands (chapter 13), IRQs
(table 13-29), status byte (table 13-76), registers (table 12-1), limitations (chapter 15).

The host must wait for BUSY low before every NSS falling edge; the model keeps BUSY high for a few
polls after each command and raises ProtocolViolation on a command started while BUSY is high.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import FakePin, FakeSPI, ModelBase

STBY_RC, STBY_XOSC, FS, RX, TX, CAD, SLEEP = "STBY_RC", "STBY_XOSC", "FS", "RX", "TX", "CAD", "SLEEP"
_CHIPMODE = {STBY_RC: 2, STBY_XOSC: 3, FS: 4, RX: 5, TX: 6, CAD: 5}

IRQ_TX_DONE = 0x0001
IRQ_RX_DONE = 0x0002
IRQ_PREAMBLE = 0x0004
IRQ_SYNC_VALID = 0x0008
IRQ_HEADER_VALID = 0x0010
IRQ_HEADER_ERR = 0x0020
IRQ_CRC_ERR = 0x0040
IRQ_CAD_DONE = 0x0080
IRQ_CAD_DETECTED = 0x0100
IRQ_TIMEOUT = 0x0200

XOSC_START_ERR = 0x0020  # device error bit (table 13-85)

# LoRa bandwidth codes -> Hz (table 13-48).
BW_CODES = {0x00: 7800, 0x08: 10400, 0x01: 15600, 0x09: 20800, 0x02: 31250, 0x0A: 41700, 0x03: 62500, 0x04: 125000, 0x05: 250000, 0x06: 500000}
TCXO_VOLTS = {0: 1.6, 1: 1.7, 2: 1.8, 3: 2.2, 4: 2.4, 5: 2.7, 6: 3.0, 7: 3.3}
PA_TABLE = {(0x04, 0x07): 22, (0x03, 0x05): 20, (0x02, 0x03): 17, (0x02, 0x02): 14}

# Parameter byte counts of the write-type commands (chapter 13); tuples give (min, max).
_WRITE_LEN = {
    0x0D: (3, 1 << 16),  # WriteRegister: address + data
    0x0E: (2, 1 << 16),  # WriteBuffer: offset + data
    0x80: 1,  # SetStandby
    0x84: 1,  # SetSleep
    0xC1: 0,  # SetFs
    0x83: 3,  # SetTx
    0x82: 3,  # SetRx
    0xC5: 0,  # SetCad
    0x89: 1,  # Calibrate
    0x98: 2,  # CalibrateImage
    0x96: 1,  # SetRegulatorMode
    0x95: 4,  # SetPaConfig
    0x93: 1,  # SetRxTxFallbackMode
    0x08: 8,  # SetDioIrqParams
    0x02: 2,  # ClearIrqStatus
    0x9D: 1,  # SetDIO2AsRfSwitchCtrl
    0x97: 4,  # SetDIO3AsTcxoCtrl
    0x86: 4,  # SetRfFrequency
    0x8A: 1,  # SetPacketType
    0x8E: 2,  # SetTxParams
    0x8B: (4, 8),  # SetModulationParams (LoRa uses 4)
    0x8C: (6, 9),  # SetPacketParams (LoRa uses 6)
    0x88: 7,  # SetCadParams
    0x8F: 2,  # SetBufferBaseAddress
    0xA0: 1,  # SetLoRaSymbNumTimeout
    0x9F: 1,  # StopTimerOnPreamble
    0x07: 2,  # ClearDeviceErrors
}
# Read-type commands: minimum transaction length (opcode + NOP [+ address]).
_READ_MIN = {0xC0: 2, 0x12: 2, 0x13: 2, 0x14: 2, 0x15: 2, 0x11: 2, 0x17: 2, 0x10: 2, 0x1D: 4, 0x1E: 3}
_CONFIG_CMDS = {0x8A, 0x86, 0x8B, 0x8C, 0x95, 0x8E, 0x96, 0x97, 0x9D, 0x89, 0x98}

_REG_DEFAULTS = {0x0740: 0x14, 0x0741: 0x24, 0x0736: 0x0D, 0x0889: 0x04, 0x08D8: 0x00, 0x08E7: 0x18, 0x08AC: 0x94}


@dataclass
class Frame:
    payload: bytes
    config: dict = field(default_factory=dict)


class SX126xModel(ModelBase):
    """tcxo_voltage: the module's TCXO needs this DIO3 voltage (None = crystal); rf_switch_on_dio2: the
    module's antenna switch is driven by DIO2; busy_polls: BUSY reads that return 1 after a command."""

    def __init__(
        self,
        present: bool = True,
        tcxo_voltage: float | None = 1.8,
        rf_switch_on_dio2: bool = True,
        busy_polls: int = 2,
        absent_value: int = 0x00,
    ):
        super().__init__()
        self.present = present
        self.absent_value = absent_value
        self.tcxo_voltage = tcxo_voltage
        self.rf_switch_on_dio2 = rf_switch_on_dio2
        self.busy_polls = busy_polls
        self.spi = FakeSPI(self)
        self.cs = FakePin("NSS", 1, on_change=self._cs_edge)
        self.reset = FakePin("NRESET", 1, on_change=self._reset_edge)
        self.busy = FakePin("BUSY", 0, reader=self._busy_read)
        self.dio1 = FakePin("DIO1", 0)
        self.transmitted: list[Frame] = []
        self.commands: list[tuple[int, bytes]] = []
        self.tx_aborted = 0
        self.wakeups = 0
        self.busy_reads = 0
        self._in_txn = False
        self._por()

    # --- power-on / reset / busy -----------------------------------------------------------------
    def _por(self) -> None:
        self.mode = STBY_RC
        self.asleep = False
        self.warm_sleep = True
        self.regs = dict(_REG_DEFAULTS)
        self.buffer = bytearray(256)
        self.irq = 0
        self.irq_mask = 0
        self.dio1_mask = 0
        self.packet_type = 0  # GFSK after POR
        self.frf = None
        self.mod = None  # (sf, bw_code, cr, ldro)
        self.pkt = None  # (preamble, header_type, payload_len, crc, invert_iq)
        self.pa = None  # (duty, hpmax, devsel, lut)
        self.tx_params = None  # (power, ramp)
        self.tx_base = 0
        self.rx_base = 0
        self.regulator = 0
        self.tcxo_code = None
        self.calibrated_after_tcxo = False
        self.errors = XOSC_START_ERR if self.tcxo_voltage else 0
        self.image_cal = (902, 928)  # POR image calibration band, MHz (datasheet 9.2.1)
        self.dio2_rf_switch = False
        self.fallback = STBY_RC
        self.cad_params = None
        self.rx_continuous = False
        self.rx_len = 0
        self.rx_start = 0
        self.pkt_status = (0, 0, 0)
        self._tx_pending = False
        self._cad_pending = False
        self._busy_left = 3  # boot
        self._waking = False
        self.dio1.drive(0)

    def _reset_edge(self, old: int, new: int) -> None:
        if old == 0 and new == 1:
            self._por()

    def _busy_read(self) -> int:
        self.busy_reads += 1
        if not self.present:
            return 0
        if self.asleep:
            return 1
        if self._busy_left > 0:
            self._busy_left -= 1
            return 1
        return 0

    # --- decoded state ---------------------------------------------------------------------------
    def status_byte(self) -> int:
        return (_CHIPMODE.get(self.mode, 2) << 4) | (1 << 1)

    def freq_hz(self) -> int | None:
        """RF_FREQ * F_XTAL / 2^25 (datasheet 13.4.1), exact integer arithmetic."""
        if self.frf is None:
            return None
        return self.frf * 32_000_000 // (1 << 25)

    def sync_word16(self) -> int:
        return (self.regs.get(0x0740, 0) << 8) | self.regs.get(0x0741, 0)

    def tx_power_dbm(self) -> int | None:
        if self.tx_params is None or self.pa is None:
            return None
        power = self.tx_params[0]
        table = PA_TABLE.get(self.pa[:2])
        if table is not None and power == 22:
            return table
        return power

    def config(self) -> dict:
        sf, bw, cr, ldro = self.mod if self.mod else (None, None, None, None)
        pre, hdr, plen, crc, iq = self.pkt if self.pkt else (None,) * 5
        return {
            "freq_hz": self.freq_hz(),
            "sf": sf,
            "bw_hz": BW_CODES.get(bw) if bw is not None else None,
            "cr": cr + 4 if cr is not None else None,
            "ldro": bool(ldro) if ldro is not None else None,
            "preamble": pre,
            "implicit": bool(hdr) if hdr is not None else None,
            "payload_len": plen,
            "crc": bool(crc) if crc is not None else None,
            "invert_iq": bool(iq) if iq is not None else None,
            "sync_word16": self.sync_word16(),
            "tx_power_dbm": self.tx_power_dbm(),
            "pa_config": self.pa,
            "ramp": self.tx_params[1] if self.tx_params else None,
        }

    # --- SPI -------------------------------------------------------------------------------------
    def _cs_edge(self, old: int, new: int) -> None:
        if old == 1 and new == 0:
            self._in_txn = True
            self._mosi = bytearray()
            if not self.present:
                return
            if self.asleep:
                self._waking = True  # falling NSS wakes the chip (datasheet 9.3)
                return
            if self._busy_left > 0:
                self.violate("NSS pulled low while BUSY is high (datasheet 8.3.1: wait for BUSY low)")
        elif old == 0 and new == 1:
            self._in_txn = False
            if not self.present:
                return
            if self._waking:
                self._waking = False
                self.asleep = False
                self.wakeups += 1
                if not self.warm_sleep:
                    self._por()
                self.mode = STBY_RC
                self._busy_left = 3
                return
            if self._mosi:
                self._execute(bytes(self._mosi))

    def xfer(self, b: int) -> int:
        if not self._in_txn:
            self.violate("SPI clocked while NSS is high")
        if not self.present:
            return self.absent_value
        i = len(self._mosi)
        self._mosi.append(b)
        if self._waking:
            return 0x00
        if i == 0:
            return self.status_byte()
        op = self._mosi[0]
        st = self.status_byte()
        if op == 0x12:
            return (st, self.irq >> 8, self.irq & 0xFF)[i - 1] if i <= 3 else 0
        if op == 0x13:
            return (st, self.rx_len, self.rx_start)[i - 1] if i <= 3 else 0
        if op == 0x14:
            return ((st,) + self.pkt_status)[i - 1] if i <= 4 else 0
        if op == 0x11:
            return (st, self.packet_type)[i - 1] if i <= 2 else 0
        if op == 0x17:
            return (st, self.errors >> 8, self.errors & 0xFF)[i - 1] if i <= 3 else 0
        if op == 0x1D:
            if i < 4:
                return st
            addr = (self._mosi[1] << 8) | self._mosi[2]
            return self.regs.get(addr + i - 4, 0)
        if op == 0x1E:
            if i < 3:
                return st
            return self.buffer[(self._mosi[1] + i - 3) & 0xFF]
        return st

    # --- command execution -----------------------------------------------------------------------
    def _execute(self, t: bytes) -> None:
        op, p = t[0], t[1:]
        self.commands.append((op, p))
        self._busy_left = self.busy_polls
        if op in _READ_MIN:
            if len(t) < _READ_MIN[op]:
                self.violate("command 0x%02x too short (%d bytes)" % (op, len(t)))
            return
        if op not in _WRITE_LEN:
            self.violate("unknown SX126x opcode 0x%02x" % op)
        want = _WRITE_LEN[op]
        lo, hi = want if isinstance(want, tuple) else (want, want)
        if not lo <= len(p) <= hi:
            self.violate("command 0x%02x takes %s parameter bytes, got %d" % (op, want, len(p)))
        if op in _CONFIG_CMDS and self.mode in (TX, RX, CAD):
            self.violate("configuration command 0x%02x sent in %s mode: go to standby first" % (op, self.mode))
        getattr(self, "_op_%02x" % op)(p)

    def _op_80(self, p: bytes) -> None:  # SetStandby
        if p[0] == 1 and self.tcxo_voltage and not self._xosc_ok():
            self.violate("STDBY_XOSC with the TCXO unpowered (SetDIO3AsTcxoCtrl + Calibrate missing)")
        self._leave_busy_modes()
        self.mode = STBY_XOSC if p[0] else STBY_RC

    def _op_84(self, p: bytes) -> None:  # SetSleep
        self._leave_busy_modes()
        self.warm_sleep = bool(p[0] & 0x04)
        self.asleep = True
        self.mode = SLEEP
        self._busy_left = 0

    def _op_c1(self, p: bytes) -> None:  # SetFs
        self._check_rf_ready("SetFs")
        self.mode = FS

    def _op_89(self, p: bytes) -> None:  # Calibrate
        if self.mode != STBY_RC:
            self.violate("Calibrate outside STDBY_RC (datasheet 13.1.13)")
        if self.tcxo_code is not None:
            self.calibrated_after_tcxo = True
        if p[0] & 0x40:
            self.image_cal = (902, 928)
        self._busy_left = self.busy_polls + 3

    def _op_98(self, p: bytes) -> None:  # CalibrateImage
        if self.mode not in (STBY_RC, STBY_XOSC):
            self.violate("CalibrateImage outside standby")
        if p[0] > p[1]:
            self.violate("CalibrateImage freq1 > freq2")
        self.image_cal = (p[0] * 4, p[1] * 4)
        self._busy_left = self.busy_polls + 3

    def _op_96(self, p: bytes) -> None:  # SetRegulatorMode
        if self.mode != STBY_RC:
            self.violate("SetRegulatorMode outside STDBY_RC")
        self.regulator = p[0]

    def _op_95(self, p: bytes) -> None:  # SetPaConfig (SX1262)
        duty, hpmax, devsel, lut = p
        if devsel != 0:
            self.violate("SetPaConfig deviceSel=%d selects the SX1261 PA on an SX1262" % devsel)
        if lut != 1:
            self.violate("SetPaConfig paLut must be 0x01")
        if duty > 0x04:
            self.violate("SetPaConfig paDutyCycle > 0x04 may damage the SX1262 (datasheet 13.1.14)")
        if hpmax > 0x07:
            self.violate("SetPaConfig hpMax > 0x07 (datasheet 13.1.14)")
        self.pa = (duty, hpmax, devsel, lut)
        self.regs[0x08E7] = 0x38  # OCP set to 140 mA by SetPaConfig on SX1262

    def _op_93(self, p: bytes) -> None:
        self.fallback = {0x40: FS, 0x30: STBY_XOSC}.get(p[0], STBY_RC)

    def _op_08(self, p: bytes) -> None:  # SetDioIrqParams
        self.irq_mask = (p[0] << 8) | p[1]
        self.dio1_mask = (p[2] << 8) | p[3]
        self._update_dio()

    def _op_02(self, p: bytes) -> None:  # ClearIrqStatus
        self.irq &= ~((p[0] << 8) | p[1]) & 0xFFFF
        self._update_dio()

    def _op_9d(self, p: bytes) -> None:
        self.dio2_rf_switch = bool(p[0] & 1)

    def _op_97(self, p: bytes) -> None:  # SetDIO3AsTcxoCtrl
        if self.mode != STBY_RC:
            self.violate("SetDIO3AsTcxoCtrl outside STDBY_RC")
        code = p[0] & 0x07
        if self.tcxo_voltage is None:
            self.violate("SetDIO3AsTcxoCtrl on a module without TCXO (DIO3 would power nothing / something else)")
        if abs(TCXO_VOLTS[code] - self.tcxo_voltage) > 0.05:
            self.violate("TCXO supply %.1f V but the module's TCXO needs %.1f V" % (TCXO_VOLTS[code], self.tcxo_voltage))
        self.tcxo_code = code
        self.tcxo_delay = (p[1] << 16) | (p[2] << 8) | p[3]
        self.calibrated_after_tcxo = False

    def _op_86(self, p: bytes) -> None:  # SetRfFrequency
        frf = int.from_bytes(p, "big")
        f = frf * 32_000_000 // (1 << 25)
        if not 150_000_000 <= f <= 960_000_000:
            self.violate("SetRfFrequency %d Hz outside 150-960 MHz" % f)
        self.frf = frf

    def _op_8a(self, p: bytes) -> None:  # SetPacketType
        if self.mode not in (STBY_RC, STBY_XOSC):
            self.violate("SetPacketType outside standby (datasheet 13.4.2)")
        if p[0] not in (0, 1):
            self.violate("unknown packet type %d" % p[0])
        self.packet_type = p[0]

    def _op_8e(self, p: bytes) -> None:  # SetTxParams
        power = p[0] - 256 if p[0] > 127 else p[0]
        if not -9 <= power <= 22:
            self.violate("SetTxParams power %d dBm outside -9..+22 (SX1262 high-power PA)" % power)
        if p[1] > 7:
            self.violate("SetTxParams ramp time code %d > 7" % p[1])
        self.tx_params = (power, p[1])

    def _op_8b(self, p: bytes) -> None:  # SetModulationParams (LoRa)
        if self.packet_type != 1:
            self.violate("SetModulationParams before SetPacketType(LoRa): the chip would read GFSK parameters")
        sf, bw, cr, ldro = p[0], p[1], p[2], p[3]
        if not 5 <= sf <= 12:
            self.violate("LoRa SF %d outside 5..12" % sf)
        if bw not in BW_CODES:
            self.violate("invalid LoRa bandwidth code 0x%02x" % bw)
        if not 1 <= cr <= 4:
            self.violate("invalid LoRa coding rate code %d" % cr)
        if ldro not in (0, 1):
            self.violate("LowDataRateOptimize must be 0 or 1")
        need = (1 << sf) * 1000 >= 16 * BW_CODES[bw]
        if bool(ldro) != need:
            self.violate(
                "LowDataRateOptimize=%d but symbol time %s 16 ms (datasheet 6.1.1.4: on for SF11/SF12 at 125 kHz, "
                "SF12 at 250 kHz)" % (ldro, ">=" if need else "<")
            )
        self.mod = (sf, bw, cr, ldro)

    def _op_8c(self, p: bytes) -> None:  # SetPacketParams (LoRa)
        if self.packet_type != 1:
            self.violate("SetPacketParams before SetPacketType(LoRa)")
        pre = (p[0] << 8) | p[1]
        if pre < 1:
            self.violate("LoRa preamble length 0")
        self.pkt = (pre, p[2], p[3], p[4], p[5])

    def _op_88(self, p: bytes) -> None:  # SetCadParams
        if p[0] > 4:
            self.violate("cadSymbolNum code %d > 4" % p[0])
        self.cad_params = tuple(p)

    def _op_8f(self, p: bytes) -> None:
        self.tx_base, self.rx_base = p[0], p[1]

    def _op_a0(self, p: bytes) -> None:
        pass

    def _op_9f(self, p: bytes) -> None:
        pass

    def _op_07(self, p: bytes) -> None:  # ClearDeviceErrors
        if self.errors & XOSC_START_ERR and self._xosc_ok():
            self.errors &= ~XOSC_START_ERR
        elif not self.tcxo_voltage:
            self.errors = 0

    def _op_0d(self, p: bytes) -> None:  # WriteRegister
        if len(p) < 3:
            self.violate("WriteRegister without data")
        addr = (p[0] << 8) | p[1]
        for i, b in enumerate(p[2:]):
            self.regs[addr + i] = b

    def _op_0e(self, p: bytes) -> None:  # WriteBuffer
        if len(p) < 2:
            self.violate("WriteBuffer without data")
        if self.mode == TX:
            self.violate("WriteBuffer while transmitting")
        off = p[0]
        for i, b in enumerate(p[1:]):
            self.buffer[(off + i) & 0xFF] = b

    def _op_83(self, p: bytes) -> None:  # SetTx
        self._check_rf_ready("SetTx")
        if self.pa is None or self.tx_params is None:
            self.violate("SetTx before SetPaConfig/SetTxParams")
        if self.rf_switch_on_dio2 and not self.dio2_rf_switch:
            self.violate("SetTx with DIO2 not driving the RF switch: the PA would drive the RX path")
        n = self.pkt[2]
        if n == 0:
            self.violate("SetTx with payload length 0")
        payload = bytes(self.buffer[(self.tx_base + i) & 0xFF] for i in range(n))
        self.mode = TX
        self._tx_pending = True
        self.transmitted.append(Frame(payload, self.config()))

    def _op_82(self, p: bytes) -> None:  # SetRx
        self._check_rf_ready("SetRx")
        self.mode = RX
        self.rx_continuous = p == b"\xff\xff\xff"

    def _op_c5(self, p: bytes) -> None:  # SetCad
        self._check_rf_ready("SetCad")
        if self.cad_params is None:
            self.violate("SetCad before SetCadParams")
        self.mode = CAD
        self._cad_pending = True

    def _xosc_ok(self) -> bool:
        return not self.tcxo_voltage or (self.tcxo_code is not None and self.calibrated_after_tcxo)

    def _check_rf_ready(self, what: str) -> None:
        if self.packet_type != 1:
            self.violate("%s with packet type %d (not LoRa)" % (what, self.packet_type))
        if self.frf is None:
            self.violate("%s before SetRfFrequency" % what)
        if self.mod is None or self.pkt is None:
            self.violate("%s before SetModulationParams/SetPacketParams" % what)
        if not self._xosc_ok():
            self.errors |= XOSC_START_ERR
            self.violate("%s: XOSC start error, the TCXO is not powered/calibrated (SetDIO3AsTcxoCtrl, Calibrate)" % what)
        mhz = self.freq_hz() / 1e6
        lo, hi = self.image_cal
        if not lo <= mhz <= hi:
            self.violate("%s at %.3f MHz but image calibration covers %d-%d MHz (datasheet 9.2.1)" % (what, mhz, lo, hi))

    def _leave_busy_modes(self) -> None:
        if self._tx_pending:
            self._tx_pending = False
            self.tx_aborted += 1
        self._cad_pending = False

    # --- IRQ / DIO1 ------------------------------------------------------------------------------
    def _raise(self, bits: int) -> None:
        self.irq |= bits & self.irq_mask
        self._update_dio()

    def _update_dio(self) -> None:
        self.dio1.drive(1 if self.irq & self.dio1_mask else 0)

    # --- test-side events ------------------------------------------------------------------------
    @property
    def tx_pending(self) -> bool:
        return self._tx_pending

    def complete_tx(self) -> None:
        if not self._tx_pending:
            raise AssertionError("complete_tx(): no transmission in progress (mode %s)" % self.mode)
        self._tx_pending = False
        self.mode = self.fallback
        self._raise(IRQ_TX_DONE)

    def complete_cad(self, detected: bool) -> None:
        if not self._cad_pending:
            raise AssertionError("complete_cad(): CAD not running (mode %s)" % self.mode)
        self._cad_pending = False
        self.mode = STBY_RC
        self._raise(IRQ_CAD_DONE | (IRQ_CAD_DETECTED if detected else 0))

    def inject_header_error(self) -> bool:
        if self.mode != RX:
            return False
        self._raise(IRQ_PREAMBLE | IRQ_HEADER_ERR)
        return True

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
        sync_word16: int | None = None,
    ) -> bool:
        """A LoRa frame arrives; False (ignored) unless in RX with matching parameters."""
        if self.mode != RX or self.asleep:
            return False
        cfg = self.config()
        if freq_hz is not None and abs(freq_hz - cfg["freq_hz"]) > 1000:
            return False
        if sf is not None and sf != cfg["sf"]:
            return False
        if bw_hz is not None and bw_hz != cfg["bw_hz"]:
            return False
        if sync_word16 is not None and sync_word16 != self.sync_word16():
            return False
        n = len(payload)
        for i, b in enumerate(payload):
            self.buffer[(self.rx_base + i) & 0xFF] = b
        self.rx_len = n
        self.rx_start = self.rx_base
        snr_q4 = int(round(snr_db * 4))
        self.pkt_status = (max(0, min(255, -2 * rssi_dbm)), snr_q4 & 0xFF, max(0, min(255, -2 * rssi_dbm)))
        bits = IRQ_PREAMBLE | IRQ_SYNC_VALID | IRQ_HEADER_VALID | IRQ_RX_DONE
        if crc_error and crc_present:
            bits |= IRQ_CRC_ERR
        if not self.rx_continuous:
            self.mode = self.fallback
        self._raise(bits)
        return True
