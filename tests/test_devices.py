"""`plexus devices`: serial ports with the usual LoRa-board USB-UART chips recognised by VID:PID."""

import json

from fakenode import run_cli
from plexus import devices


class Port:
    def __init__(self, device, vid=None, pid=None, description="n/a", serial_number=None, manufacturer=None):
        self.device = device
        self.vid = vid
        self.pid = pid
        self.description = description
        self.serial_number = serial_number
        self.manufacturer = manufacturer


PORTS = [
    Port("/dev/ttyS0"),
    Port("/dev/ttyUSB1", 0x1A86, 0x7523, "USB2.0-Serial"),
    Port("/dev/ttyACM0", 0x303A, 0x1001, "USB JTAG/serial debug unit", "F4:12:FA:00:11:22", "Espressif"),
    Port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART Bridge Controller", "0001", "Silicon Labs"),
    Port("/dev/ttyACM1", 0x1A86, 0x55D4, "USB Single Serial"),
    Port("/dev/ttyACM2", 0x2341, 0x0043, "Arduino Uno"),
]


def test_known_chips_by_vid_pid():
    assert devices.chip_for(0x10C4, 0xEA60) == "CP210x"
    assert devices.chip_for(0x1A86, 0x7523) == "CH340"
    assert devices.chip_for(0x1A86, 0x55D4) == "CH9102"
    assert devices.chip_for(0x303A, 0x1001) == "ESP32-S3 native USB"
    assert devices.chip_for(0x1A86, 0x55D5) is None and devices.chip_for(None, None) is None


def test_list_devices_recognised_first_and_all():
    got = devices.list_devices(comports=lambda: PORTS)
    assert [d["port"] for d in got] == ["/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyUSB0", "/dev/ttyUSB1"]
    assert [d["chip"] for d in got] == ["ESP32-S3 native USB", "CH9102", "CP210x", "CH340"]
    assert got[2]["vid"] == "10C4" and got[2]["pid"] == "EA60" and got[2]["serial_number"] == "0001"
    every = devices.list_devices(include_all=True, comports=lambda: PORTS)
    assert len(every) == 6 and every[-1]["likely_node"] is False and every[-2]["likely_node"] is False
    assert {d["port"] for d in every[-2:]} == {"/dev/ttyS0", "/dev/ttyACM2"}
    assert next(d for d in every if d["port"] == "/dev/ttyS0")["vid"] is None


def test_cli_devices(monkeypatch, capsys):
    monkeypatch.setattr(devices, "_default_comports", lambda: PORTS)
    rc, out, err = run_cli(["devices", "--json"], monkeypatch, capsys)
    assert rc == 0 and [d["chip"] for d in json.loads(out)] == ["ESP32-S3 native USB", "CH9102", "CP210x", "CH340"]
    rc, out, err = run_cli(["devices"], monkeypatch, capsys)
    assert rc == 0 and "/dev/ttyUSB0" in out and "10C4:EA60" in out and "CP210x" in out and "Arduino" not in out
    rc, out, err = run_cli(["devices", "--all"], monkeypatch, capsys)
    assert "Arduino Uno" in out
    monkeypatch.setattr(devices, "_default_comports", lambda: [])
    rc, out, err = run_cli(["devices"], monkeypatch, capsys)
    assert rc == 0 and "no serial ports found" in out
