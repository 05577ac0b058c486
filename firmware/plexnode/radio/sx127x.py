"""Semtech SX1276/77/78/79 LoRa driver (register-level SPI), MicroPython and CPython.

References are to the Semtech "SX1276/77/78/79 - 137 MHz to 1020 MHz Low Power Long Range Transceiver"
datasheet (rev. 7, May 2020) and the "SX1276/77/78/79 Errata Note" (errata section numbers given).

SPI (datasheet 4.3): NSS low, first byte = wnr bit (bit 7, 1 = write) + 7-bit register address, then
data bytes; bursts auto-increment the address except for RegFifo (0x00), where the FIFO pointer
RegFifoAddrPtr advances instead.
"""

from . import (
    MODE_CAD,
    MODE_RX,
    MODE_SLEEP,
    MODE_STBY,
    MODE_TX,
    RadioError,
    _Base,
    const,
    frf_word,
    ldro_required,
)

# --- Registers, LoRa mode (datasheet 6.4, table 41 "Register Map") --------------------------------
_REG_FIFO = const(0x00)
_REG_OP_MODE = const(0x01)  # 6.4: LongRangeMode b7, LowFrequencyModeOn b3, Mode b2..0
_REG_FRF_MSB = const(0x06)  # 6.4: Frf 23:16, then MID 0x07, LSB 0x08 (takes effect on LSB write)
_REG_PA_CONFIG = const(0x09)  # 6.4: PaSelect b7, MaxPower b6..4, OutputPower b3..0
_REG_OCP = const(0x0B)  # 5.4.4: OcpOn b5, OcpTrim b4..0
_REG_LNA = const(0x0C)  # LnaGain b7..5, LnaBoostHf b1..0
_REG_FIFO_ADDR_PTR = const(0x0D)
_REG_FIFO_TX_BASE = const(0x0E)
_REG_FIFO_RX_BASE = const(0x0F)
_REG_FIFO_RX_CURRENT = const(0x10)  # start of the last packet received
_REG_IRQ_FLAGS_MASK = const(0x11)
_REG_IRQ_FLAGS = const(0x12)  # write 1 to clear
_REG_RX_NB_BYTES = const(0x13)
_REG_PKT_SNR = const(0x19)  # signed, 0.25 dB steps; RegPktRssiValue follows at 0x1A
_REG_RSSI_VALUE = const(0x1B)
_REG_HOP_CHANNEL = const(0x1C)  # CrcOnPayload b6 (header of the last frame said "CRC present")
_REG_MODEM_CONFIG1 = const(0x1D)  # Bw b7..4, CodingRate b3..1, ImplicitHeaderModeOn b0
_REG_MODEM_CONFIG2 = const(0x1E)  # SpreadingFactor b7..4, TxContinuousMode b3, RxPayloadCrcOn b2
_REG_PREAMBLE_MSB = const(0x20)  # preamble length, MSB then LSB at 0x21
_REG_PAYLOAD_LENGTH = const(0x22)
_REG_MAX_PAYLOAD_LENGTH = const(0x23)
_REG_MODEM_CONFIG3 = const(0x26)  # LowDataRateOptimize b3, AgcAutoOn b2
_REG_DETECT_OPTIMIZE = const(0x31)  # b2..0 = 0x03 for SF7..12 (0x05 for SF6)
_REG_HIGH_BW_OPT1 = const(0x36)  # errata 2.1 (500 kHz sensitivity)
_REG_DETECTION_THRESHOLD = const(0x37)  # 0x0A for SF7..12
_REG_HIGH_BW_OPT2 = const(0x3A)  # errata 2.1
_REG_SYNC_WORD = const(0x39)
_REG_DIO_MAPPING1 = const(0x40)  # Dio0Mapping b7..6: 00 RxDone, 01 TxDone, 10 CadDone (table 18)
_REG_VERSION = const(0x42)  # silicon revision, 0x12 on SX1276/77/78/79
_REG_TCXO = const(0x4B)  # TcxoInputOn b4
_REG_PA_DAC = const(0x4D)  # 0x84 default, 0x87 = +20 dBm on PA_BOOST (5.4.3)

_VERSION = const(0x12)

# RegOpMode (datasheet 6.4): LoRa mode bit and device modes.
_LONG_RANGE = const(0x80)
_LOW_FREQ_ON = const(0x08)
_MODE_SLEEP = const(0x00)
_MODE_STDBY = const(0x01)
_MODE_TX = const(0x03)
_MODE_RXCONT = const(0x05)
_MODE_CAD = const(0x07)

# RegIrqFlags bits (datasheet 6.4, RegIrqFlags).
_IRQ_RX_TIMEOUT = const(0x80)
_IRQ_RX_DONE = const(0x40)
_IRQ_CRC_ERROR = const(0x20)
_IRQ_VALID_HEADER = const(0x10)
_IRQ_TX_DONE = const(0x08)
_IRQ_CAD_DONE = const(0x04)
_IRQ_FHSS = const(0x02)
_IRQ_CAD_DETECTED = const(0x01)

_DIO0_RX_DONE = const(0x00)
_DIO0_TX_DONE = const(0x40)
_DIO0_CAD_DONE = const(0x80)

_FIFO_BASE = const(0x00)  # TX and RX both use the whole 256-byte FIFO (never at the same time)


class SX127x(_Base):
    """SX1276/77/78/79 on an SPI bus.

    spi: machine.SPI-like (write, readinto, write_readinto); cs, reset: output Pins (reset may be None);
    dio0: input Pin wired to DIO0 (None = poll the IRQ register); pa_boost: the board routes the
    antenna to PA_BOOST (all common ESP32 boards) rather than RFO; tcxo: a TCXO drives XTA;
    irq_callback: called from the ISR after it sets its flag (e.g. asyncio.ThreadSafeFlag().set);
    delay_ms: sleep function (tests pass a no-op)."""

    chip = "sx127x"

    def __init__(self, spi, cs, reset=None, dio0=None, pa_boost=True, tcxo=False, irq_callback=None, delay_ms=None):
        self._spi = spi
        self._cs = cs
        self._reset_pin = reset
        self.pa_boost = pa_boost
        self._tcxo = tcxo
        self._hdr = bytearray(1)
        self._tx2 = bytearray(2)
        self._rx2 = bytearray(2)
        self._frf = bytearray(3)
        self._lf = 0
        self._rssi_off = -157
        self._req_crc = True
        cs.value(1)
        self._init_common(dio0, irq_callback, delay_ms)
        self.reset()

    # --- SPI primitives -----------------------------------------------------------------------
    def read_reg(self, addr):
        self._tx2[0] = addr & 0x7F
        self._tx2[1] = 0
        self._cs.value(0)
        try:
            self._spi.write_readinto(self._tx2, self._rx2)
        finally:
            self._cs.value(1)
        return self._rx2[1]

    def write_reg(self, addr, value):
        self._tx2[0] = addr | 0x80
        self._tx2[1] = value & 0xFF
        self._cs.value(0)
        try:
            self._spi.write(self._tx2)
        finally:
            self._cs.value(1)

    def _write_burst(self, addr, data):
        self._hdr[0] = addr | 0x80
        self._cs.value(0)
        try:
            self._spi.write(self._hdr)
            self._spi.write(data)
        finally:
            self._cs.value(1)

    def _read_burst(self, addr, buf):
        self._hdr[0] = addr & 0x7F
        self._cs.value(0)
        try:
            self._spi.write(self._hdr)
            self._spi.readinto(buf, 0x00)
        finally:
            self._cs.value(1)

    def _op(self, mode):
        self.write_reg(_REG_OP_MODE, _LONG_RANGE | self._lf | mode)

    # --- start-up ------------------------------------------------------------------------------
    def reset(self):
        """Hardware reset (datasheet 7.2.2: NRESET low > 100 us, then 5 ms), silicon check, LoRa sleep."""
        r = self._reset_pin
        if r is not None:
            r.value(0)
            self._delay(1)
            r.value(1)
            self._delay(10)
        v = self.read_reg(_REG_VERSION)
        if v != _VERSION:
            raise RadioError(
                "no SX127x radio answers on SPI (RegVersion 0x42 = 0x%02x, expected 0x12): check the board "
                "profile's radio chip and pins, and that the radio is powered" % v
            )
        # LongRangeMode can only be changed in Sleep (datasheet 6.4, RegOpMode b7): FSK sleep first.
        self.write_reg(_REG_OP_MODE, _MODE_SLEEP)
        self.write_reg(_REG_OP_MODE, _LONG_RANGE | _MODE_SLEEP)
        if self._tcxo:
            self.write_reg(_REG_TCXO, self.read_reg(_REG_TCXO) | 0x10)
        self._op(_MODE_STDBY)
        self._mode = MODE_STBY
        self._rx_on = False
        self._configured = False
        self._flag = False

    # --- configuration -------------------------------------------------------------------------
    def configure(self, freq_hz, sf=9, bw_hz=125000, cr=5, preamble=8, sync_word=0x12, tx_power_dbm=14, crc=True):
        """Program frequency, modem, sync word and PA.  Integer maths only (Frf = freq * 2^19 / 32 MHz)."""
        bwi, rx_was_on = self._begin_config(sf, bw_hz, cr, preamble, 7, sync_word)
        if not (137000000 <= freq_hz <= 175000000 or 410000000 <= freq_hz <= 525000000 or 862000000 <= freq_hz <= 1020000000):
            raise RadioError("%d Hz is outside the SX1276 bands (137-175, 410-525, 862-1020 MHz)" % freq_hz)
        self._op(_MODE_STDBY)  # frequency and modem registers are written in Standby (datasheet 4.1.3)
        self._mode = MODE_STBY
        hf = freq_hz > 525000000
        self._lf = 0 if hf else _LOW_FREQ_ON
        self._rssi_off = -157 if hf else -164  # datasheet 5.5.5: RSSI offset HF port / LF port
        self._op(_MODE_STDBY)  # LowFrequencyModeOn follows the band
        frf = frf_word(freq_hz, 19)
        b = self._frf
        b[0] = (frf >> 16) & 0xFF
        b[1] = (frf >> 8) & 0xFF
        b[2] = frf & 0xFF
        self._write_burst(_REG_FRF_MSB, b)  # MSB, MID, LSB: the LSB write latches the new Frf
        self.write_reg(_REG_MODEM_CONFIG1, (bwi << 4) | ((cr - 4) << 1))  # explicit header
        self.write_reg(_REG_MODEM_CONFIG2, (sf << 4) | (0x04 if crc else 0))
        self.write_reg(_REG_MODEM_CONFIG3, (0x08 if ldro_required(sf, bw_hz) else 0) | 0x04)
        self.write_reg(_REG_DETECT_OPTIMIZE, (self.read_reg(_REG_DETECT_OPTIMIZE) & 0xF8) | 0x03)
        self.write_reg(_REG_DETECTION_THRESHOLD, 0x0A)
        # Errata 2.1: sensitivity optimisation for 500 kHz bandwidth.
        if bw_hz == 500000:
            self.write_reg(_REG_HIGH_BW_OPT1, 0x02)
            self.write_reg(_REG_HIGH_BW_OPT2, 0x64 if hf else 0x7F)
        else:
            self.write_reg(_REG_HIGH_BW_OPT1, 0x03)
        self.write_reg(_REG_PREAMBLE_MSB, (preamble >> 8) & 0xFF)
        self.write_reg(_REG_PREAMBLE_MSB + 1, preamble & 0xFF)
        self.write_reg(_REG_SYNC_WORD, sync_word)
        self._set_power(tx_power_dbm)
        self.write_reg(_REG_LNA, 0x23 if hf else 0x20)  # G1 (max gain), LNA boost on the HF port
        self.write_reg(_REG_FIFO_TX_BASE, _FIFO_BASE)
        self.write_reg(_REG_FIFO_RX_BASE, _FIFO_BASE)
        self.write_reg(_REG_MAX_PAYLOAD_LENGTH, 0xFF)
        # Unmask RxDone, CRC error, ValidHeader, TxDone, CadDone, CadDetected (1 = masked).
        self.write_reg(_REG_IRQ_FLAGS_MASK, _IRQ_RX_TIMEOUT | _IRQ_FHSS)
        self.write_reg(_REG_IRQ_FLAGS, 0xFF)
        self._req_crc = crc
        self._end_config((freq_hz, sf, bw_hz, cr, preamble, sync_word, tx_power_dbm), rx_was_on)

    def _set_power(self, dbm):
        """PA settings (datasheet 5.4.2/5.4.3/5.4.4).  PA_BOOST: Pout = 2 + OutputPower (2..17 dBm);
        +18..20 dBm needs RegPaDac = 0x87 and Pout = 5 + OutputPower; OCP raised to 140 mA then.
        RFO: MaxPower 7 -> Pmax 15 dBm, Pout = OutputPower (0..15 dBm)."""
        if self.pa_boost:
            if not 2 <= dbm <= 20:
                raise RadioError("PA_BOOST output power must be 2..20 dBm, got %r" % (dbm,))
            if dbm > 17:
                self.write_reg(_REG_PA_DAC, 0x87)
                self.write_reg(_REG_OCP, 0x20 | 17)  # OcpOn, trim 17: Imax = -30 + 10*17 = 140 mA
                self.write_reg(_REG_PA_CONFIG, 0x80 | 0x70 | (dbm - 5))
            else:
                self.write_reg(_REG_PA_DAC, 0x84)
                self.write_reg(_REG_OCP, 0x20 | 11)  # OcpOn, trim 11: Imax = 45 + 5*11 = 100 mA (default)
                self.write_reg(_REG_PA_CONFIG, 0x80 | 0x70 | (dbm - 2))
        else:
            if not 0 <= dbm <= 15:
                raise RadioError("RFO output power must be 0..15 dBm, got %r" % (dbm,))
            self.write_reg(_REG_PA_DAC, 0x84)
            self.write_reg(_REG_OCP, 0x20 | 11)
            self.write_reg(_REG_PA_CONFIG, 0x70 | dbm)

    # --- operations ----------------------------------------------------------------------------
    def send(self, data):
        """Start transmitting `data` (1..255 bytes); returns at once.  Poll tx_done()."""
        self._check_send(data)
        self._op(_MODE_STDBY)  # FIFO is filled in Standby (datasheet 4.1.2.3)
        self.write_reg(_REG_DIO_MAPPING1, _DIO0_TX_DONE)
        self.write_reg(_REG_IRQ_FLAGS, 0xFF)
        self.write_reg(_REG_FIFO_ADDR_PTR, _FIFO_BASE)
        self._write_burst(_REG_FIFO, data)
        self.write_reg(_REG_PAYLOAD_LENGTH, len(data))
        self._flag = False
        self._cad = None
        self._mode = MODE_TX
        self._op(_MODE_TX)

    def _enter_rx(self):
        self._op(_MODE_STDBY)
        self.write_reg(_REG_DIO_MAPPING1, _DIO0_RX_DONE)
        self.write_reg(_REG_FIFO_ADDR_PTR, _FIFO_BASE)
        self._mode = MODE_RX
        self._op(_MODE_RXCONT)

    def start_cad(self):
        """Start one channel activity detection; poll cad_result()."""
        self._check_send(None)
        self._op(_MODE_STDBY)
        self.write_reg(_REG_DIO_MAPPING1, _DIO0_CAD_DONE)
        self.write_reg(_REG_IRQ_FLAGS, 0xFF)
        self._flag = False
        self._cad = False
        self._mode = MODE_CAD
        self._op(_MODE_CAD)

    def _standby(self):
        self._op(_MODE_STDBY)

    def sleep(self):
        """Lowest power; registers are kept, the FIFO is not.  Any send()/start_recv() wakes it."""
        self._rx_on = False
        self._op(_MODE_SLEEP)
        self._mode = MODE_SLEEP
        self._cad = None

    def rssi(self):
        """Current RSSI in dBm (receive mode only; datasheet 5.5.5)."""
        return self._rssi_off + self.read_reg(_REG_RSSI_VALUE)

    # --- interrupt service ---------------------------------------------------------------------
    def _read_irq(self):
        return self.read_reg(_REG_IRQ_FLAGS)

    def _service(self, irq):
        self.write_reg(_REG_IRQ_FLAGS, irq)  # clear exactly what we saw
        mode = self._mode
        if mode == MODE_TX:
            if irq & _IRQ_TX_DONE:
                self.tx_count += 1
                self._after_op()  # chip is back in Standby by itself (datasheet 4.1.6)
            return
        if mode == MODE_CAD:
            if irq & _IRQ_CAD_DONE:
                self._cad = bool(irq & _IRQ_CAD_DETECTED)
                self._after_op()
            return
        if mode == MODE_RX and irq & _IRQ_RX_DONE:
            if irq & _IRQ_CRC_ERROR:
                self.rx_crc_errors += 1
                return
            if self._req_crc and not self.read_reg(_REG_HOP_CHANNEL) & 0x40:
                self.rx_crc_errors += 1  # header says "no CRC": cannot be trusted, drop
                return
            start = self.read_reg(_REG_FIFO_RX_CURRENT)
            n = self.read_reg(_REG_RX_NB_BYTES)
            self._read_burst(_REG_PKT_SNR, self._rx2)  # PktSnrValue, PktRssiValue
            snr = self._rx2[0]
            if snr > 127:
                snr -= 256
            raw = self._rx2[1]
            self.write_reg(_REG_FIFO_ADDR_PTR, start)
            self._read_burst(_REG_FIFO, self._rxmv[:n])
            # Datasheet 5.5.5: SNR >= 0: RSSI = off + 16/15 * PktRssi; SNR < 0: off + PktRssi + SNR/4.
            if snr >= 0:
                rssi = self._rssi_off + (raw * 16 + 7) // 15
            else:
                rssi = (4 * (self._rssi_off + raw) + snr + 2) // 4
            self._rx_done(n, rssi, snr)


__all__ = ["SX127x", "RadioError"]
