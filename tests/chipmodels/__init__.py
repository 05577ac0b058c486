"""Register/command-level models of the Semtech LoRa chips, for driver tests on CPython.

`SX127xModel` decodes SX1276 register SPI transactions; `SX126xModel` decodes SX1262 commands and
drives BUSY.  Both keep chip state, raise DIO lines into the driver's IRQ handler, let a test inject
received frames, and raise `ProtocolViolation` when the driver does something the real chip rejects.
"""

from .common import FakePin, FakeSPI, ProtocolViolation
from .sx126x import SX126xModel
from .sx127x import SX127xModel

__all__ = ["FakePin", "FakeSPI", "ProtocolViolation", "SX126xModel", "SX127xModel"]
