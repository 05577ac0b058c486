"""A fake `machine` module (MicroPython subset) with an SX127x (register-level) or SX126x (command-level)
model behind its SPI.

Used under the MicroPython WebAssembly rig (and CPython): Pin (with irq()), SPI, I2C, ADC, PWM, WDT.
The radio models cover what plexnode.radio uses.  SX127x: RegVersion, RegOpMode (TX finishes at once, CAD
reports a free channel), IRQ flags (write 1 to clear), FIFO with RegFifoAddrPtr, RX bookkeeping
registers, DIO0 following RegDioMapping1 (table 18).  SX126x: BUSY after every command (a command
started while BUSY is high is a violation), the chapter-13 commands the driver sends, the sync-word
reset value for the silicon check, IRQ status with DIO1 = IRQ & DIO1 mask.
    chip.inject(frame, ...)   queue a received frame; chip.tick() (called by the test's clock) delivers it
                              when the chip is in RX and its previous RX-done is cleared
    chip.sent                 frames transmitted, in order
    chip.irq_reads            IRQ-register reads by the driver; chip.empty_irq_reads: those that found nothing
    chip.dio_dead = True      the DIO line never rises (a broken trace / lost interrupt)
Pins: Pin.irq(handler, trigger) registers a handler that drive() calls on a rising edge, synchronously
(like a hard interrupt).  IRQ_SUPPORT[0] = False makes Pin.irq raise (a port without pin interrupts);
LOSE_EDGES[0] = n swallows the next n edges (missed interrupts).
"""

LEVELS = {}  # pin number -> level driven or read
CS = {}  # pin number -> radio model selected by that pin
RESETS = {}  # pin number -> radio model reset by that pin (SX126x)
READERS = {}  # pin number -> function returning the level (SX126x BUSY)
IRQS = {}  # pin number -> (handler, trigger, Pin)
IRQ_SUPPORT = [True]
LOSE_EDGES = [0]
WDTS = []
I2C_LOG = []


def reset_all():
    LEVELS.clear()
    CS.clear()
    RESETS.clear()
    READERS.clear()
    IRQS.clear()
    IRQ_SUPPORT[0] = True
    LOSE_EDGES[0] = 0
    del WDTS[:]


def drive(n, v):
    """The chip drives input pin n; a rising edge calls the registered IRQ handler."""
    v = 1 if v else 0
    old = LEVELS.get(n, 0)
    LEVELS[n] = v
    h = IRQS.get(n)
    if h is None or old == v:
        return
    if (v and h[1] & Pin.IRQ_RISING) or (not v and h[1] & Pin.IRQ_FALLING):
        if LOSE_EDGES[0] > 0:
            LOSE_EDGES[0] -= 1
            return
        h[0](h[2])


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
            rd = READERS.get(self.n)
            if rd is not None:
                return rd()
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
        chip = RESETS.get(self.n)
        if chip is not None and v == 1 and old == 0:
            chip.por()
        return None

    def irq(self, handler=None, trigger=1, hard=False):
        if not IRQ_SUPPORT[0]:
            raise OSError("no interrupts on this pin")
        if handler is None:
            IRQS.pop(self.n, None)
        else:
            IRQS[self.n] = (handler, trigger, self)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def init(self, *a, **k):
        pass


class SX127xModel:
    def __init__(self, dio0=None):
        self.reg = bytearray(128)
        self.reg[0x42] = 0x12
        self.fifo = bytearray(256)
        self.sent = []
        self.rx_queue = []
        self.cads = 0
        self.tx_hang = False  # True: TX never signals TxDone (a stuck radio)
        self.dio0 = dio0  # pin number of DIO0
        self.dio_dead = False
        self.irq_reads = 0
        self.empty_irq_reads = 0
        self._sel = False
        self._addr = None
        self._write = False

    def _dio(self):
        # DIO0 mapping (datasheet table 18): 00 RxDone, 01 TxDone, 10 CadDone.
        if self.dio0 is None:
            return
        bit = (0x40, 0x08, 0x04, 0)[self.reg[0x40] >> 6]
        drive(self.dio0, 0 if self.dio_dead else (1 if self.reg[0x12] & bit else 0))

    def tick(self):
        self.deliver()

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
            self._dio()
            return 0
        if a == 0x12:
            self.irq_reads += 1
            if not self.reg[a]:
                self.empty_irq_reads += 1
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
        self._dio()


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


def attach_sx127x(nss_pin, dio0=None):
    """Put a fresh SX127x model on the bus, selected by GPIO nss_pin, its DIO0 on GPIO dio0."""
    chip = SX127xModel(dio0)
    CS[nss_pin] = chip
    SPI.chip = chip
    return chip


def attach_sx126x(nss_pin, reset_pin, busy_pin, dio1_pin):
    """Put a fresh SX126x model on the bus: NSS, NRESET, BUSY and DIO1 on those GPIOs."""
    chip = SX126xModel(dio1_pin)
    CS[nss_pin] = chip
    RESETS[reset_pin] = chip
    READERS[busy_pin] = chip.busy
    SPI.chip = chip
    return chip


# SX126x IRQ bits (SX1261/2 datasheet table 13-29) and chip modes in the status byte (table 13-76).
_TX_DONE = 0x0001
_RX_DONE = 0x0002
_CAD_DONE = 0x0080
_RX_BITS = 0x001E  # RxDone | PreambleDetected | SyncWordValid | HeaderValid
_STBY_RC = 2
_RX = 5
_TX = 6
# Parameter bytes of the write commands the driver sends (datasheet chapter 13); -1 = variable.
_CMD_LEN = {0x80: 1, 0x84: 1, 0x83: 3, 0x82: 3, 0xC5: 0, 0x89: 1, 0x98: 2, 0x96: 1, 0x95: 4, 0x08: 8, 0x02: 2,
            0x9D: 1, 0x97: 4, 0x86: 4, 0x8A: 1, 0x8E: 2, 0x8B: 4, 0x8C: 6, 0x88: 7, 0x8F: 2, 0x07: 2, 0x0D: -1, 0x0E: -1}
_READS = (0xC0, 0x12, 0x13, 0x14, 0x1D, 0x1E)


class SX126xModel:
    def __init__(self, dio1=None):
        self.dio1 = dio1
        self.sent = []
        self.rx_queue = []
        self.cads = 0
        self.tx_hang = False
        self.dio_dead = False
        self.irq_reads = 0
        self.empty_irq_reads = 0
        self.violations = []
        self.commands = 0
        self.busy_reads = 0
        self.por()

    def por(self):
        self.mode = _STBY_RC
        self.asleep = False
        self.regs = {0x0740: 0x14, 0x0741: 0x24, 0x0736: 0x0D, 0x0889: 0x04, 0x08D8: 0, 0x08E7: 0x18, 0x08AC: 0x94}
        self.buf = bytearray(256)
        self.irq = 0
        self.irq_mask = 0
        self.dio1_mask = 0
        self.packet_type = 0
        self.plen = 0
        self.rx_len = 0
        self.pkt = (0, 0, 0)
        self._busy = 3
        self._mosi = None
        self._dio()

    def busy(self):
        self.busy_reads += 1
        if self.asleep:
            return 1
        if self._busy > 0:
            self._busy -= 1
            return 1
        return 0

    def _violate(self, what):
        self.violations.append(what)
        raise AssertionError("SX126x model: " + what)

    def _dio(self):
        if self.dio1 is not None:
            drive(self.dio1, 0 if self.dio_dead else (1 if self.irq & self.dio1_mask else 0))

    def _raise(self, bits):
        self.irq |= bits & self.irq_mask
        self._dio()

    # --- SPI byte stream ---
    def select(self):
        if self._busy > 0 and not self.asleep:
            self._violate("NSS low while BUSY is high (datasheet 8.3.1)")
        self._mosi = bytearray()

    def deselect(self):
        t = self._mosi
        self._mosi = None
        if self.asleep:  # the falling NSS edge woke the chip; the command is not executed (9.3)
            self.asleep = False
            self.mode = _STBY_RC
            self._busy = 3
            return
        if t:
            self._busy = 2
            self.execute(bytes(t))

    def xfer(self, b):
        t = self._mosi
        if t is None:
            self._violate("SPI clocked with NSS high")
        i = len(t)
        t.append(b)
        st = (self.mode << 4) | 0x02
        if i == 0 or self.asleep:
            return st
        op = t[0]
        if op == 0x12:
            if i == 1:
                self.irq_reads += 1
                if not self.irq:
                    self.empty_irq_reads += 1
            return (st, self.irq >> 8, self.irq & 0xFF)[i - 1] if i <= 3 else 0
        if op == 0x13:
            return (st, self.rx_len, 0)[i - 1] if i <= 3 else 0
        if op == 0x14:
            return ((st,) + self.pkt)[i - 1] if i <= 4 else 0
        if op == 0x1D:
            return st if i < 4 else self.regs.get(((t[1] << 8) | t[2]) + i - 4, 0)
        if op == 0x1E:
            return st if i < 3 else self.buf[(t[1] + i - 3) & 0xFF]
        return st

    def execute(self, t):
        op = t[0]
        p = t[1:]
        self.commands += 1
        if op in _READS:
            return
        n = _CMD_LEN.get(op)
        if n is None:
            self._violate("unknown opcode 0x%02x" % op)
        if n >= 0 and len(p) != n:
            self._violate("opcode 0x%02x takes %d parameter bytes, got %d" % (op, n, len(p)))
        if op in (0x8A, 0x86, 0x8B, 0x8C, 0x95, 0x8E, 0x98) and self.mode != _STBY_RC:
            self._violate("configuration command 0x%02x outside standby" % op)
        if op == 0x80:
            self.mode = _STBY_RC
        elif op == 0x84:
            self.mode = _STBY_RC
            self.asleep = True
            self._busy = 0
        elif op == 0x8A:
            self.packet_type = p[0]
        elif op == 0x08:
            self.irq_mask = (p[0] << 8) | p[1]
            self.dio1_mask = (p[2] << 8) | p[3]
        elif op == 0x02:
            self.irq &= ~((p[0] << 8) | p[1])
            self._dio()
        elif op == 0x8C:
            self.plen = p[3]
        elif op == 0x0D:
            a = (p[0] << 8) | p[1]
            for i in range(2, len(p)):
                self.regs[a + i - 2] = p[i]
        elif op == 0x0E:
            for i in range(1, len(p)):
                self.buf[(p[0] + i - 1) & 0xFF] = p[i]
        elif op == 0x83:
            if self.packet_type != 1:
                self._violate("SetTx without LoRa packet type")
            self.sent.append(bytes(self.buf[: self.plen]))
            if self.tx_hang:
                self.mode = _TX
                return
            self.mode = _STBY_RC
            self._raise(_TX_DONE)
        elif op == 0x82:
            self.mode = _RX
        elif op == 0xC5:
            self.cads += 1
            self.mode = _STBY_RC
            self._raise(_CAD_DONE)

    # --- air side ---
    def inject(self, frame, snr_q4=20, rssi_raw=60):
        self.rx_queue.append((bytes(frame), snr_q4, rssi_raw))

    def tick(self):
        if not self.rx_queue or self.mode != _RX or self.asleep or self.irq & _RX_DONE:
            return
        fr, snr, rssi = self.rx_queue.pop(0)
        self.buf[0 : len(fr)] = fr
        self.rx_len = len(fr)
        self.pkt = (rssi, snr & 0xFF, rssi)
        self._raise(_RX_BITS)
