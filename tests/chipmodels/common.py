"""Fake machine.Pin / machine.SPI objects shared by the chip models (CPython test code only)."""

from __future__ import annotations


class ProtocolViolation(AssertionError):
    """The driver did something the real chip would reject or misbehave on.  Raised at once (so the
    test fails at the offending call) and also recorded in the model's `violations` list."""


class FakePin:
    """machine.Pin look-alike.  Outputs written by the driver call `on_change(old, new)`; inputs are
    driven by the model with `drive()`, which fires a registered IRQ handler on the right edge."""

    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, name: str, value: int = 0, on_change=None, reader=None):
        self.name = name
        self._v = value
        self._on_change = on_change
        self._reader = reader
        self.handler = None
        self.trigger = None
        self.mode = None
        self.writes = 0
        self.reads = 0
        self.irq_calls = 0

    # machine.Pin API -------------------------------------------------------------------------
    def init(self, mode=None, pull=None, value=None):
        if mode is not None:
            self.mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            self.reads += 1
            if self._reader is not None:
                return self._reader()
            return self._v
        v = 1 if v else 0
        old = self._v
        self._v = v
        self.writes += 1
        if self._on_change is not None:
            self._on_change(old, v)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_RISING, hard=False):
        self.handler = handler
        self.trigger = trigger

    # model side ------------------------------------------------------------------------------
    def drive(self, v: int) -> None:
        """The chip drives this (input) pin; fire the IRQ handler like the ESP32 GPIO would."""
        v = 1 if v else 0
        old = self._v
        self._v = v
        if self.handler is None or old == v:
            return
        if (v and self.trigger & self.IRQ_RISING) or (not v and self.trigger & self.IRQ_FALLING):
            self.irq_calls += 1
            self.handler(self)


class FakeSPI:
    """machine.SPI look-alike: every byte is exchanged with `model.xfer(byte) -> byte`."""

    def __init__(self, model):
        self.model = model
        self.bytes_out = 0

    def write(self, buf) -> None:
        for b in bytes(buf):
            self.model.xfer(b)
            self.bytes_out += 1

    def read(self, n: int, write: int = 0) -> bytes:
        return bytes(self.model.xfer(write) for _ in range(n))

    def readinto(self, buf, write: int = 0) -> None:
        for i in range(len(buf)):
            buf[i] = self.model.xfer(write)

    def write_readinto(self, wbuf, rbuf) -> None:
        w = bytes(wbuf)
        if len(w) != len(rbuf):
            raise ValueError("write_readinto buffers must have the same length")
        for i, b in enumerate(w):
            rbuf[i] = self.model.xfer(b)
            self.bytes_out += 1


class ModelBase:
    def __init__(self) -> None:
        self.violations: list[str] = []

    def violate(self, msg: str) -> None:
        self.violations.append(msg)
        raise ProtocolViolation(msg)
