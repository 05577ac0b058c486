"""plexwire: the Plexus wire format (protocol/SPEC.md), shared unchanged by firmware and host.

Runs on MicroPython 1.27 and CPython 3.11 alike. Every decoder raises only `DecodeError`.
"""

PROTOCOL_VERSION = 1
MAX_FRAME = 255  # LoRa payload limit (SX127x/SX126x FIFO and explicit-header length field)


class DecodeError(ValueError):
    """Any malformed, truncated, oversized or unauthenticated input."""
