"""Semtech SX1261/SX1262 (SX126x) LoRa driver (command-level SPI), MicroPython and CPython.

References are to the Semtech "SX1261/2 Long Range, Low Power, sub-GHz RF Transceiver" datasheet
(rev. 2.1, Dec 2021); chapter 13 lists the commands, chapter 15 the known limitations ("errata").

SPI (datasheet 8.3): every transaction is opcode + parameters with NSS low.  After NSS rises the chip
drives BUSY high while it processes the command; the host must not pull NSS low again before BUSY
is low (datasheet 8.3.1).  A falling NSS edge wakes the chip from Sleep (datasheet 9.3).
Read commands return the status byte in the byte after the opcode, then data (datasheet 13.5).
"""

from . import (
    MODE_CAD,
    MODE_RX,
    MODE_SLEEP,
    MODE_STBY,
    MODE_TX,
    SX126X_BW_CODES,
    RadioError,
    _Base,
    const,
    frf_word,
    ldro_required,
    sync_word_sx126x,
)

# --- Commands (datasheet chapter 13, table 13-1 ... 13-4) ----------------------------------------
_CMD_SET_SLEEP = const(0x84)  # 13.1.1
_CMD_SET_STANDBY = const(0x80)  # 13.1.2: 0 = STDBY_RC, 1 = STDBY_XOSC
_CMD_SET_TX = const(0x83)  # 13.1.4: timeout 24 bit, 15.625 us steps, 0 = none
_CMD_SET_RX = const(0x82)  # 13.1.5: 0xFFFFFF = continuous
_CMD_SET_CAD = const(0xC5)  # 13.1.10
_CMD_SET_REGULATOR_MODE = const(0x96)  # 13.1.12: 1 = DC-DC + LDO
_CMD_CALIBRATE = const(0x89)  # 13.1.13
_CMD_CALIBRATE_IMAGE = const(0x98)  # 13.1.14 / 9.2.1
_CMD_SET_PA_CONFIG = const(0x95)  # 13.1.15
_CMD_WRITE_REGISTER = const(0x0D)  # 13.2.1
_CMD_READ_REGISTER = const(0x1D)  # 13.2.2
_CMD_WRITE_BUFFER = const(0x0E)  # 13.2.3
_CMD_READ_BUFFER = const(0x1E)  # 13.2.4
_CMD_SET_DIO_IRQ_PARAMS = const(0x08)  # 13.3.1
_CMD_GET_IRQ_STATUS = const(0x12)  # 13.3.3
_CMD_CLEAR_IRQ_STATUS = const(0x02)  # 13.3.4
_CMD_SET_DIO2_AS_RF_SWITCH = const(0x9D)  # 13.3.5
_CMD_SET_DIO3_AS_TCXO_CTRL = const(0x97)  # 13.3.6
_CMD_SET_RF_FREQUENCY = const(0x86)  # 13.4.1
_CMD_SET_PACKET_TYPE = const(0x8A)  # 13.4.2: 1 = LoRa
_CMD_SET_TX_PARAMS = const(0x8E)  # 13.4.4
_CMD_SET_MODULATION_PARAMS = const(0x8B)  # 13.4.5
_CMD_SET_PACKET_PARAMS = const(0x8C)  # 13.4.6
_CMD_SET_CAD_PARAMS = const(0x88)  # 13.4.7
_CMD_SET_BUFFER_BASE_ADDRESS = const(0x8F)  # 13.4.8
_CMD_GET_STATUS = const(0xC0)  # 13.5.1
_CMD_GET_RX_BUFFER_STATUS = const(0x13)  # 13.5.2
_CMD_GET_PACKET_STATUS = const(0x14)  # 13.5.3
_CMD_CLEAR_DEVICE_ERRORS = const(0x07)  # 13.6.2

# --- Registers (datasheet table 12-1 and chapter 15) ---------------------------------------------
_REG_SYNC_WORD = const(0x0740)  # LoRa sync word MSB, LSB at 0x0741; reset value 0x1424
_REG_IQ_POLARITY = const(0x0736)  # 15.4: bit 2 = 1 for standard IQ
_REG_TX_MODULATION = const(0x0889)  # 15.1: bit 2 = 0 for 500 kHz, 1 otherwise
_REG_TX_CLAMP = const(0x08D8)  # 15.2: |= 0x1E (antenna mismatch robustness, SX1262)
_REG_OCP = const(0x08E7)  # 0x38 = 140 mA (SX1262 at +22 dBm)
_REG_RX_GAIN = const(0x08AC)  # 9.6: 0x94 power saving, 0x96 boosted

# IRQ bits (datasheet table 13-29).
_IRQ_TX_DONE = const(0x0001)
_IRQ_RX_DONE = const(0x0002)
_IRQ_HEADER_ERR = const(0x0020)
_IRQ_CRC_ERR = const(0x0040)
_IRQ_CAD_DONE = const(0x0080)
_IRQ_CAD_DETECTED = const(0x0100)
_IRQ_TIMEOUT = const(0x0200)
_IRQ_USED = const(0x03E3)  # the bits above

_STDBY_RC = const(0x00)
_PACKET_TYPE_LORA = const(0x01)

# Status byte (datasheet table 13-76): chip mode in bits 6..4.
_CHIPMODE_STBY_RC = const(2)

# TCXO supply codes for SetDIO3AsTcxoCtrl, by tenths of a volt (datasheet table 13-35).
_TCXO_CODES = {16: 0, 17: 1, 18: 2, 22: 3, 24: 4, 27: 5, 30: 6, 33: 7}

# Image calibration bands (datasheet table 9-2), (lo_MHz, hi_MHz, freq1, freq2).
_IMAGE_CAL = (
    (430, 440, 0x6B, 0x6F),
    (470, 510, 0x75, 0x81),
    (779, 787, 0xC1, 0xC5),
    (863, 870, 0xD7, 0xDB),
    (902, 928, 0xE1, 0xE9),
)

# CAD: symbols code (0x01 = 2 symbols, 0x02 = 4) and cadDetPeak per SF, cadDetMin 10
# (Semtech AN1200.48 "SX126X CAD performance evaluation", recommended settings table).
_CAD_PEAK = (22, 22, 22, 22, 23, 24, 25, 28)  # SF5 .. SF12

# SX1262 optimal PA settings (datasheet table 13-21): dBm -> (paDutyCycle, hpMax), power set to 22.
_PA_TABLE = {22: (0x04, 0x07), 20: (0x03, 0x05), 17: (0x02, 0x03), 14: (0x02, 0x02)}

_BUSY_SPIN = const(64)  # BUSY polls before the driver starts sleeping 1 ms between polls


class SX126x(_Base):
    """SX1262 (SX1261 untested) on an SPI bus.

    spi: machine.SPI-like; cs, reset: output Pins; busy: input Pin (BUSY); dio1: input Pin on DIO1
    (None = poll GetIrqStatus); tcxo_voltage: volts on DIO3 for the TCXO (e.g. 1.8) or None for a
    crystal; dio2_as_rf_switch: DIO2 drives the antenna switch (most modules); max_power_dbm: board PA
    limit; rx_boost: boosted LNA gain (+~2 dB sensitivity, +~0.5 mA); busy_timeout_ms: give up waiting
    on BUSY after this long."""

    chip = "sx126x"

    def __init__(
        self,
        spi,
        cs,
        reset,
        busy,
        dio1=None,
        tcxo_voltage=None,
        dio2_as_rf_switch=True,
        use_dcdc=True,
        max_power_dbm=22,
        rx_boost=True,
        irq_callback=None,
        delay_ms=None,
        busy_timeout_ms=100,
    ):
        self._spi = spi
        self._cs = cs
        self._reset_pin = reset
        self._busy = busy
        self._tcxo_code = None
        if tcxo_voltage:
            t = int(tcxo_voltage * 10 + 0.5) if tcxo_voltage < 10 else (int(tcxo_voltage) + 50) // 100
            if t not in _TCXO_CODES:
                raise RadioError("unsupported TCXO voltage %r V (1.6, 1.7, 1.8, 2.2, 2.4, 2.7, 3.0, 3.3)" % (tcxo_voltage,))
            self._tcxo_code = _TCXO_CODES[t]
        self._dio2_sw = dio2_as_rf_switch
        self._dcdc = use_dcdc
        self.max_power_dbm = max_power_dbm
        self._rx_boost = rx_boost
        self._busy_timeout = busy_timeout_ms
        self._cmd = bytearray(10)  # opcode + up to 9 parameter bytes
        self._cmv = memoryview(self._cmd)
        self._resp = bytearray(4)
        self._rmv = memoryview(self._resp)
        self._payload_len = 0xFF
        self._pkt = (8, 1)  # (preamble, crc)
        self._asleep = False
        cs.value(1)
        self._init_common(dio1, irq_callback, delay_ms)
        self.reset()

    # --- SPI primitives -----------------------------------------------------------------------
    def _wait_busy(self):
        b = self._busy
        n = 0
        while b.value():
            n += 1
            if n > _BUSY_SPIN:
                if n - _BUSY_SPIN > self._busy_timeout:
                    raise RadioError("SX126x BUSY stuck high for %d ms: radio absent, unpowered or hung" % self._busy_timeout)
                self._delay(1)

    def _command(self, n):
        """Send self._cmd[:n] (opcode + params) after BUSY is low."""
        self._wait_busy()
        self._cs.value(0)
        try:
            self._spi.write(self._cmv[:n])
        finally:
            self._cs.value(1)

    def _c1(self, op, a):
        self._cmd[0] = op
        self._cmd[1] = a
        self._command(2)

    def _c2(self, op, a, b):
        self._cmd[0] = op
        self._cmd[1] = a
        self._cmd[2] = b
        self._command(3)

    def _c3(self, op, v):
        self._cmd[0] = op
        self._cmd[1] = (v >> 16) & 0xFF
        self._cmd[2] = (v >> 8) & 0xFF
        self._cmd[3] = v & 0xFF
        self._command(4)

    def _get(self, op, n):
        """Read command: opcode, NOP (status comes back), n data bytes into self._resp[1:1+n].
        Returns the status byte (also in self._resp[0])."""
        self._wait_busy()
        self._cmd[0] = op
        self._cmd[1] = 0
        self._cs.value(0)
        try:
            self._spi.write_readinto(self._cmv[:2], self._rmv[:2])
            st = self._resp[1]
            if n:
                self._spi.readinto(self._rmv[1 : 1 + n], 0x00)
        finally:
            self._cs.value(1)
        self._resp[0] = st
        return st

    def read_register(self, addr, n=1):
        """ReadRegister (13.2.2): returns bytes (allocates; not used in the receive path)."""
        out = bytearray(n)
        self._wait_busy()
        self._cmd[0] = _CMD_READ_REGISTER
        self._cmd[1] = (addr >> 8) & 0xFF
        self._cmd[2] = addr & 0xFF
        self._cmd[3] = 0
        self._cs.value(0)
        try:
            self._spi.write(self._cmv[:4])
            self._spi.readinto(out, 0x00)
        finally:
            self._cs.value(1)
        return bytes(out)

    def write_register(self, addr, data):
        self._wait_busy()
        self._cmd[0] = _CMD_WRITE_REGISTER
        self._cmd[1] = (addr >> 8) & 0xFF
        self._cmd[2] = addr & 0xFF
        self._cs.value(0)
        try:
            self._spi.write(self._cmv[:3])
            self._spi.write(data)
        finally:
            self._cs.value(1)

    def _set_reg_bits(self, addr, clear_mask, set_mask):
        v = self.read_register(addr)[0]
        self._cmd[9] = (v & ~clear_mask & 0xFF) | set_mask
        self.write_register(addr, self._cmv[9:10])

    def _wake(self):
        """Leave Sleep: a falling NSS edge wakes the chip (datasheet 9.3); the bytes of this
        transaction are not executed, so send a harmless GetStatus and then wait for BUSY."""
        if self._asleep:
            self._cmd[0] = _CMD_GET_STATUS
            self._cmd[1] = 0
            self._cs.value(0)
            try:
                self._spi.write(self._cmv[:2])
            finally:
                self._cs.value(1)
            self._asleep = False
            self._wait_busy()

    def _standby(self):
        self._wake()
        self._c1(_CMD_SET_STANDBY, _STDBY_RC)

    # --- start-up ------------------------------------------------------------------------------
    def reset(self):
        """Hardware reset, silicon check, then the chip-level setup that never changes."""
        r = self._reset_pin
        if r is not None:
            r.value(0)
            self._delay(1)  # datasheet 8.1: NRESET low for at least 100 us
            r.value(1)
            self._delay(5)
        self._asleep = False
        try:
            self._wait_busy()
        except RadioError:
            raise RadioError("no SX126x radio: BUSY stays high after reset (check the board profile and radio power)") from None
        st = self._get(_CMD_GET_STATUS, 0)
        mode = (st >> 4) & 0x07
        if st in (0x00, 0xFF) or mode < 2 or mode > 6:
            raise RadioError("no SX126x radio answers on SPI (GetStatus = 0x%02x)" % st)
        if r is not None:
            sw = self.read_register(_REG_SYNC_WORD, 2)
            if sw != b"\x14\x24":
                raise RadioError(
                    "SX126x silicon check failed: sync word register 0x0740 reads %02x%02x after reset, "
                    "expected the datasheet reset value 1424" % (sw[0], sw[1])
                )
        self._c1(_CMD_SET_STANDBY, _STDBY_RC)
        if self._tcxo_code is not None:
            # DIO3 powers the TCXO; 5 ms start-up = 320 steps of 15.625 us (datasheet 13.3.6).  The
            # XOSC failed to start at power-on without it, so re-run every calibration (13.1.13).
            c = self._cmd
            c[0] = _CMD_SET_DIO3_AS_TCXO_CTRL
            c[1] = self._tcxo_code
            c[2] = 0
            c[3] = 320 >> 8
            c[4] = 320 & 0xFF
            self._command(5)
            self._c1(_CMD_CALIBRATE, 0x7F)
            self._c2(_CMD_CLEAR_DEVICE_ERRORS, 0, 0)
        if self._dcdc:
            self._c1(_CMD_SET_REGULATOR_MODE, 0x01)
        self._c1(_CMD_SET_PACKET_TYPE, _PACKET_TYPE_LORA)
        if self._dio2_sw:
            self._c1(_CMD_SET_DIO2_AS_RF_SWITCH, 0x01)
        self._c2(_CMD_SET_BUFFER_BASE_ADDRESS, 0x00, 0x00)
        c = self._cmd
        c[0] = _CMD_SET_DIO_IRQ_PARAMS
        c[1] = _IRQ_USED >> 8
        c[2] = _IRQ_USED & 0xFF
        c[3] = _IRQ_USED >> 8
        c[4] = _IRQ_USED & 0xFF
        c[5] = c[6] = c[7] = c[8] = 0
        self._command(9)
        self._c2(_CMD_CLEAR_IRQ_STATUS, 0xFF, 0xFF)
        self._mode = MODE_STBY
        self._rx_on = False
        self._configured = False
        self._flag = False

    # --- configuration -------------------------------------------------------------------------
    def configure(self, freq_hz, sf=9, bw_hz=125000, cr=5, preamble=8, sync_word=0x12, tx_power_dbm=14, crc=True):
        """Program frequency, modem, packet, sync word and PA (datasheet 14.2/14.3 order)."""
        bwi, rx_was_on = self._begin_config(sf, bw_hz, cr, preamble, 5, sync_word)
        if not 150000000 <= freq_hz <= 960000000:
            raise RadioError("%d Hz is outside the SX126x range 150-960 MHz" % freq_hz)
        if not -9 <= tx_power_dbm <= self.max_power_dbm:
            raise RadioError("SX1262 output power must be -9..%d dBm, got %r" % (self.max_power_dbm, tx_power_dbm))
        swreg = sync_word_sx126x(sync_word)
        self._standby()
        self._mode = MODE_STBY
        self._c1(_CMD_SET_PACKET_TYPE, _PACKET_TYPE_LORA)
        # Image calibration for the band in use (datasheet 9.2.1, table 9-2).
        mhz = freq_hz // 1000000
        f1 = mhz // 4 - 1
        f2 = (mhz + 3) // 4 + 1
        for lo, hi, a, b in _IMAGE_CAL:
            if lo <= mhz <= hi:
                f1 = a
                f2 = b
                break
        self._c2(_CMD_CALIBRATE_IMAGE, f1, f2)
        self._cmd[0] = _CMD_SET_RF_FREQUENCY
        frf = frf_word(freq_hz, 25)
        self._cmd[1] = (frf >> 24) & 0xFF
        self._cmd[2] = (frf >> 16) & 0xFF
        self._cmd[3] = (frf >> 8) & 0xFF
        self._cmd[4] = frf & 0xFF
        self._command(5)
        # PA (13.1.15 / table 13-21) then power and ramp 200 us (13.4.4).
        pa = _PA_TABLE.get(tx_power_dbm)
        if pa is None:
            pa = (0x04, 0x07)
            power = tx_power_dbm
        else:
            power = 22
        c = self._cmd
        c[0] = _CMD_SET_PA_CONFIG
        c[1] = pa[0]
        c[2] = pa[1]
        c[3] = 0x00  # deviceSel: SX1262
        c[4] = 0x01  # paLut
        self._command(5)
        self.write_register(_REG_OCP, b"\x38")  # 140 mA
        self._set_reg_bits(_REG_TX_CLAMP, 0, 0x1E)  # errata 15.2
        self._c2(_CMD_SET_TX_PARAMS, power & 0xFF, 0x04)
        # Modulation (13.4.5.2): SF, BW, CR, LDRO.
        c[0] = _CMD_SET_MODULATION_PARAMS
        c[1] = sf
        c[2] = SX126X_BW_CODES[bwi]
        c[3] = cr - 4
        c[4] = 1 if ldro_required(sf, bw_hz) else 0
        self._command(5)
        # Errata 15.1: modulation quality at 500 kHz.
        if bw_hz == 500000:
            self._set_reg_bits(_REG_TX_MODULATION, 0x04, 0)
        else:
            self._set_reg_bits(_REG_TX_MODULATION, 0, 0x04)
        self._pkt = (preamble, 1 if crc else 0)
        self._packet_params(0xFF)
        self._set_reg_bits(_REG_IQ_POLARITY, 0, 0x04)  # errata 15.4, standard IQ
        c[9] = swreg >> 8
        self.write_register(_REG_SYNC_WORD, self._cmv[9:10])
        c[9] = swreg & 0xFF
        self.write_register(_REG_SYNC_WORD + 1, self._cmv[9:10])
        if self._rx_boost:
            self.write_register(_REG_RX_GAIN, b"\x96")
        self._c2(_CMD_CLEAR_IRQ_STATUS, 0xFF, 0xFF)
        self._cad_sf = sf
        self._end_config((freq_hz, sf, bw_hz, cr, preamble, sync_word, tx_power_dbm), rx_was_on)

    def _packet_params(self, length):
        """SetPacketParams (13.4.6.2): preamble, explicit header, payload length, CRC, standard IQ."""
        pre, crc = self._pkt
        c = self._cmd
        c[0] = _CMD_SET_PACKET_PARAMS
        c[1] = (pre >> 8) & 0xFF
        c[2] = pre & 0xFF
        c[3] = 0x00
        c[4] = length
        c[5] = crc
        c[6] = 0x00
        self._command(7)
        self._payload_len = length

    # --- operations ----------------------------------------------------------------------------
    def send(self, data):
        """Start transmitting `data` (1..255 bytes); returns at once.  Poll tx_done()."""
        self._check_send(data)
        self._standby()
        self._packet_params(len(data))
        self._wait_busy()
        self._cmd[0] = _CMD_WRITE_BUFFER
        self._cmd[1] = 0x00
        self._cs.value(0)
        try:
            self._spi.write(self._cmv[:2])
            self._spi.write(data)
        finally:
            self._cs.value(1)
        self._c2(_CMD_CLEAR_IRQ_STATUS, 0xFF, 0xFF)
        self._flag = False
        self._cad = None
        self._mode = MODE_TX
        self._c3(_CMD_SET_TX, 0)  # no timeout: TxDone ends it

    def _enter_rx(self):
        self._standby()
        if self._payload_len != 0xFF:
            self._packet_params(0xFF)
        self._mode = MODE_RX
        self._c3(_CMD_SET_RX, 0xFFFFFF)

    def start_cad(self):
        """One CAD (LoRa only; exits to STDBY_RC); poll cad_result()."""
        self._check_send(None)
        self._standby()
        sf = self._cad_sf
        c = self._cmd
        c[0] = _CMD_SET_CAD_PARAMS
        c[1] = 0x01 if sf <= 8 else 0x02  # 2 or 4 symbols
        c[2] = _CAD_PEAK[sf - 5]
        c[3] = 10
        c[4] = 0x00  # CAD_ONLY
        c[5] = c[6] = c[7] = 0
        self._command(8)
        self._c2(_CMD_CLEAR_IRQ_STATUS, 0xFF, 0xFF)
        self._flag = False
        self._cad = False
        self._mode = MODE_CAD
        self._cmd[0] = _CMD_SET_CAD
        self._command(1)

    def sleep(self):
        """Warm-start sleep (configuration retained, datasheet 13.1.1); send()/start_recv() wake it."""
        self._rx_on = False
        self._standby()
        self._c1(_CMD_SET_SLEEP, 0x04)
        self._asleep = True
        self._mode = MODE_SLEEP
        self._cad = None

    def status(self):
        """GetStatus byte (chip mode in bits 6..4, command status in bits 3..1)."""
        self._wake()
        return self._get(_CMD_GET_STATUS, 0)

    # --- interrupt service ---------------------------------------------------------------------
    def _read_irq(self):
        if self._asleep:
            return 0
        self._get(_CMD_GET_IRQ_STATUS, 2)
        return (self._resp[1] << 8) | self._resp[2]

    def _service(self, irq):
        self._c2(_CMD_CLEAR_IRQ_STATUS, (irq >> 8) & 0xFF, irq & 0xFF)
        mode = self._mode
        if mode == MODE_TX:
            if irq & (_IRQ_TX_DONE | _IRQ_TIMEOUT):
                if irq & _IRQ_TX_DONE:
                    self.tx_count += 1
                self._after_op()  # chip fell back to STDBY_RC
            return
        if mode == MODE_CAD:
            if irq & _IRQ_CAD_DONE:
                self._cad = bool(irq & _IRQ_CAD_DETECTED)
                self._after_op()
            return
        if mode != MODE_RX:
            return
        if irq & _IRQ_HEADER_ERR and not irq & _IRQ_RX_DONE:
            self.rx_crc_errors += 1
            return
        if irq & _IRQ_RX_DONE:
            if irq & (_IRQ_CRC_ERR | _IRQ_HEADER_ERR):
                self.rx_crc_errors += 1
                return
            self._get(_CMD_GET_RX_BUFFER_STATUS, 2)
            n = self._resp[1]
            start = self._resp[2]
            self._get(_CMD_GET_PACKET_STATUS, 3)
            rssi = -(self._resp[1] >> 1)
            snr = self._resp[2]
            if snr > 127:
                snr -= 256
            self._wait_busy()
            self._cmd[0] = _CMD_READ_BUFFER
            self._cmd[1] = start
            self._cmd[2] = 0
            self._cs.value(0)
            try:
                self._spi.write(self._cmv[:3])
                self._spi.readinto(self._rxmv[:n], 0x00)
            finally:
                self._cs.value(1)
            self._rx_done(n, rssi, snr)


__all__ = ["SX126x", "RadioError"]
