"""A fake `machine` module (MicroPython subset) with a register-level SX127x behind its SPI.

Used under the MicroPython WebAssembly rig (and CPython): Pin, SPI, I2C, ADC, PWM, WDT.  The radio
model covers what plexnode.radio.sx127x uses: RegVersion, RegOpMode (TX finishes at once, CAD reports
a free channel), IRQ flags (write 1 to clear), FIFO with RegFifoAddrPtr, RX bookkeeping registers.
    chip.inject(frame, snr_q4, rssi_raw)   queue a received frame (delivered while in RX)
    chip.sent                              frames transmitted, in order
"""

LEVELS = {}  # pin number -> level driven or read
CS = {}  # pin number -> SX127xModel selected by that pin
WDTS = []
I2C_LOG = []


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, n, mode=-1, pull=-1, value=None):
        self.n = n
        if value is not None:
            LEVELS[n] = value
        elif n not in LEVELS:
            LEVELS[n] = 1 if pull == Pin.PULL_UP else 0

    def value(self, v=None):
        if v is None:
            return LEVELS.get(self.n, 0)
        v = 1 if v else 0
        old = LEVELS.get(self.n, 0)
        LEVELS[self.n] = v
        chip = CS.get(self.n)
        if chip is not None:
            if v == 0 and old == 1:
                chip.select()
            elif v == 1 and old == 0:
                chip.deselect()
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def init(self, *a, **k):
        pass


class SX127xModel:
    def __init__(self):
        self.reg = bytearray(128)
        self.reg[0x42] = 0x12
        self.fifo = bytearray(256)
        self.sent = []
        self.rx_queue = []
        self.cads = 0
        self.tx_hang = False  # True: TX never signals TxDone (a stuck radio)
        self._sel = False
        self._addr = None
        self._write = False

    # --- SPI byte stream ---
    def select(self):
        self._sel = True
        self._addr = None

    def deselect(self):
        self._sel = False
        self._addr = None

    def xfer(self, b):
        if self._addr is None:
            self._addr = b & 0x7F
            self._write = bool(b & 0x80)
            return 0
        a = self._addr
        if a == 0x00:
            p = self.reg[0x0D]
            if self._write:
                self.fifo[p] = b
                out = 0
            else:
                out = self.fifo[p]
            self.reg[0x0D] = (p + 1) & 0xFF
            return out
        self._addr = (a + 1) & 0x7F
        if self._write:
            self.write(a, b)
            return 0
        if a == 0x12:
            self.deliver()  # next queued frame arrives once the driver looks at clear flags
        return self.reg[a]

    def write(self, a, v):
        if a == 0x12:
            self.reg[a] &= ~v & 0xFF
            return
        self.reg[a] = v
        if a == 0x01:
            mode = v & 0x07
            if mode == 0x03:  # TX: done at once, back to standby
                n = self.reg[0x22]
                base = self.reg[0x0E]
                self.sent.append(bytes(self.fifo[base : base + n]))
                if self.tx_hang:
                    return
                self.reg[0x12] |= 0x08
                self.reg[0x01] = (v & 0xF8) | 0x01
            elif mode == 0x07:  # CAD: channel free
                self.cads += 1
                self.reg[0x12] |= 0x04
                self.reg[0x01] = (v & 0xF8) | 0x01

    def inject(self, frame, snr_q4=20, rssi_raw=60):
        self.rx_queue.append((bytes(frame), snr_q4, rssi_raw))

    def deliver(self):
        if not self.rx_queue or (self.reg[0x01] & 0x07) != 0x05 or self.reg[0x12] & 0x40:
            return
        fr, snr, rssi = self.rx_queue.pop(0)
        self.fifo[0 : len(fr)] = fr
        self.reg[0x10] = 0
        self.reg[0x13] = len(fr)
        self.reg[0x19] = snr & 0xFF
        self.reg[0x1A] = rssi
        self.reg[0x1C] = 0x40
        self.reg[0x12] |= 0x50


class SPI:
    chip = None  # the model on this bus (one per process is enough for the tests)

    def __init__(self, *a, **k):
        pass

    def write(self, buf):
        c = SPI.chip
        for b in buf:
            c.xfer(b)

    def readinto(self, buf, w=0):
        c = SPI.chip
        for i in range(len(buf)):
            buf[i] = c.xfer(w)

    def write_readinto(self, tx, rx):
        c = SPI.chip
        for i in range(len(tx)):
            rx[i] = c.xfer(tx[i])


class I2C:
    def __init__(self, *a, **k):
        self.devices = [0x3C]

    def scan(self):
        return list(self.devices)

    def writeto(self, addr, buf):
        I2C_LOG.append(len(buf))
        return 1

    def writeto_mem(self, addr, mem, buf):
        pass

    def readfrom_mem(self, addr, mem, n):
        return bytes(n)


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    UV = 1200000

    def __init__(self, pin, *a, **k):
        self.pin = pin

    def atten(self, a):
        self.a = a

    def read_uv(self):
        return ADC.UV


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin = pin
        self._f = freq
        self._d = duty_u16

    def freq(self, f=None):
        if f is None:
            return self._f
        self._f = f

    def duty_u16(self, d=None):
        if d is None:
            return self._d
        self._d = d


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        WDTS.append(self)

    def feed(self):
        self.feeds += 1


def attach_sx127x(nss_pin):
    """Put a fresh SX127x model on the bus, selected by GPIO nss_pin."""
    chip = SX127xModel()
    CS[nss_pin] = chip
    SPI.chip = chip
    return chip
