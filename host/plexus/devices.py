"""Serial ports that may be Plexus nodes: pyserial's port list, USB-UART bridges recognised by VID:PID.

IDs (checked against public sources):

* 10C4:EA60 Silicon Labs CP210x USB-UART bridge (Heltec V2, TTGO LoRa32, older T-Beams)
* 1A86:7523 WCH CH340 USB-serial bridge
* 1A86:55D4 WCH CH9102 USB-serial bridge (T-Beam v1.1, newer Heltec/LilyGO boards; esptool names PID 0x55D4 "CH9102")
* 303A:1001 Espressif USB-Serial/JTAG, the native USB port of the ESP32-S3 (esptool's USB_JTAG_SERIAL_PID with
  Espressif's VID 0x303A)
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

KNOWN: dict[tuple[int, int], str] = {
    (0x10C4, 0xEA60): "CP210x",
    (0x1A86, 0x7523): "CH340",
    (0x1A86, 0x55D4): "CH9102",
    (0x303A, 0x1001): "ESP32-S3 native USB",
}


def chip_for(vid: int | None, pid: int | None) -> str | None:
    if vid is None or pid is None:
        return None
    return KNOWN.get((vid, pid))


def _default_comports() -> Iterable[Any]:
    from serial.tools import list_ports

    return list_ports.comports()


def list_devices(include_all: bool = False, comports: Callable[[], Iterable[Any]] | None = None) -> list[dict]:
    """Ports as dicts (port, vid, pid, chip, description, serial_number, manufacturer, likely_node).

    Recognised USB-UART bridges first; other ports only with include_all.
    """
    out = []
    for p in (comports or _default_comports)():
        vid = getattr(p, "vid", None)
        pid = getattr(p, "pid", None)
        chip = chip_for(vid, pid)
        if chip is None and not include_all:
            continue
        out.append({
            "port": p.device,
            "vid": "%04X" % vid if vid is not None else None,
            "pid": "%04X" % pid if pid is not None else None,
            "chip": chip,
            "description": getattr(p, "description", "") or "",
            "serial_number": getattr(p, "serial_number", None),
            "manufacturer": getattr(p, "manufacturer", None),
            "likely_node": chip is not None,
        })
    out.sort(key=lambda d: (not d["likely_node"], d["port"]))
    return out
