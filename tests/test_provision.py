"""`plexus node provision` against an emulated board: mpremote's real serial transport talks to a raw-REPL
emulator on a pseudo-terminal (tests/replemu.py); after the soft reset the emulator runs the real node core from
the files just uploaded, so the HELLO check is the real one. esptool is replaced by a fake flasher."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from mpremote.transport import TransportExecError
from mpremote.transport_serial import SerialTransport
from mpyrig import ensure_build
from plexus import provision, virtual
from plexus.cli import main
from plexus.client import HostLinkClient, bulletin_record
from plexus.crypto import HostCrypto
from plexus.keys import load_key
from replemu import ReplEmulator

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mpy_dir():
    return ensure_build()


@pytest.fixture
def main_py(tmp_path):
    """The firmware's boot file (a stand-in while firmware/main.py does not exist: the emulator only needs one)."""
    real = ROOT / "firmware" / "main.py"
    if real.is_file():
        return real
    stand_in = tmp_path / "main.py"
    stand_in.write_text("from plexnode import app\n")
    return stand_in


@pytest.fixture
def world(tmp_path, monkeypatch, capsys, mpy_dir, main_py):
    monkeypatch.setattr(provision, "MAIN_PY", main_py)
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    monkeypatch.setitem(virtual.SUBCOMMANDS, "provision", (provision.add_arguments, provision.run, "provision a board"))
    assert main(["keys", "new", "alice"]) == 0
    assert main(["group", "init", "--name", "Tenants", "--member", "alice=alice"]) == 0
    emu = ReplEmulator(tmp_path / "board").start()
    capsys.readouterr()
    yield emu, tmp_path
    emu.close()


def prov(emu, *extra):
    return main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--hello-timeout", "10", *extra])


def one_line_error(capsys, after_progress: bool = False) -> str:
    """The error is one line (the last one); with after_progress, progress lines may come before it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("plexus: error: ") == 1, err
    if not after_progress:
        assert err.count("\n") == 1, err
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert last.startswith("plexus: error: ")
    return last


def post_bulletin(port: str, home: Path, text: str) -> None:
    doc = json.loads((home / "group.json").read_text())
    with HostLinkClient(port, timeout=3) as c:
        rec = bulletin_record(load_key("alice"), bytes.fromhex(doc["group_id"]), text)
        assert c.post(rec)["accepted"] is True


def synced(port: str) -> list:
    with HostLinkClient(port, timeout=3) as c:
        return c.sync(0)[2]


def test_fresh_provision_uploads_everything_and_the_node_answers(world, capsys, mpy_dir, main_py):
    emu, home = world
    assert prov(emu, "--name", "hub", "--region", "EU_868") == 0
    out = capsys.readouterr().out
    # every compiled module, byte for byte, under /lib; main.py; the board profile; the node configuration
    mpys = sorted(mpy_dir.rglob("*.mpy"))
    assert mpys
    for p in mpys:
        assert emu.file("/lib/" + p.relative_to(mpy_dir).as_posix()).read_bytes() == p.read_bytes()
    assert emu.file("/main.py").read_bytes() == main_py.read_bytes()
    assert json.loads(emu.file("/board.json").read_text()) == json.loads((ROOT / "boards" / "heltec_v3.json").read_text())
    assert json.loads(emu.file("/group.json").read_text()) == json.loads((home / "group.json").read_text())
    sec = json.loads((home / "group.secret.json").read_text())
    assert json.loads(emu.file("/group.secret.json").read_text())["secret"] == sec["secret"]
    cfg = json.loads(emu.file("/config.json").read_text())
    assert cfg["name"] == "hub" and cfg["board"] == "heltec_v3" and cfg["region"] == "EU_868"
    seed = emu.file("/node.key").read_bytes()
    assert len(seed) == 32
    pub = HostCrypto().public_key(seed).hex()
    # the printed key is the node's, ready for the roster
    assert "node key %s" % pub in out
    assert "--node hub=%s" % pub in out
    # it was soft-reset into the node, and the node answers over the host link
    assert emu.soft_resets == 1 and emu.boots == 1 and emu.mode == "node"
    assert emu.used_raw_paste
    with HostLinkClient(emu.port, timeout=3) as c:
        hello = c.hello()
    assert hello["node_key"] == pub and hello["name"] == "hub" and hello["group_id"] == sec["group_id"]


def test_reprovision_keeps_messages_and_key(world, capsys, main_py):
    emu, home = world
    assert prov(emu, "--name", "hub") == 0
    seed = emu.file("/node.key").read_bytes()
    post_bulletin(emu.port, home, "General meeting Thursday 7pm")
    store = emu.file("/store.log").read_bytes()
    assert store
    capsys.readouterr()
    emu.file("/main.py").write_bytes(b"# an older firmware\n")
    emu.file("/lib/plexnode/renamed_module.mpy").write_bytes(b"M\x06old")
    emu.file("/lib/mine.py").write_text("# the user's own library")
    assert prov(emu) == 0
    out = capsys.readouterr().out
    assert "1 files uploaded" in out and "node key kept" in out  # only the changed main.py went over the wire
    assert emu.file("/main.py").read_bytes() == main_py.read_bytes()
    assert emu.file("/node.key").read_bytes() == seed
    assert not emu.file("/lib/plexnode/renamed_module.mpy").exists()  # stale firmware modules go
    assert emu.file("/lib/mine.py").exists()  # anything outside the firmware's folders stays
    assert emu.file("/lib/plexnode/core.mpy").exists()
    assert emu.file("/store.log").read_bytes()[: len(store)] == store
    assert json.loads(emu.file("/config.json").read_text())["name"] == "hub"  # kept without --name
    assert emu.boots == 2
    assert len(synced(emu.port)) == 1
    assert HostCrypto().public_key(seed).hex() in out


def test_frozen_image_gets_only_main_and_configuration(world, capsys, main_py):
    """An image built from firmware/manifest.py has plexnode and plexwire frozen in: nothing goes to /lib."""
    emu, home = world
    emu.frozen = ("plexnode", "plexwire")
    assert prov(emu, "--name", "hub") == 0
    out = capsys.readouterr().out
    assert "firmware frozen in the image" in out
    assert not emu.file("/lib").exists()
    assert emu.file("/main.py").read_bytes() == main_py.read_bytes()
    assert json.loads(emu.file("/config.json").read_text())["name"] == "hub"
    assert emu.file("/board.json").exists() and emu.file("/group.json").exists() and emu.file("/node.key").exists()
    assert "6 files uploaded" in out  # node.key, board, group, secret, config, main.py
    with HostLinkClient(emu.port, timeout=3) as c:
        assert c.hello()["name"] == "hub"


def test_switch_to_frozen_image_removes_uploaded_modules(world, capsys, mpy_dir):
    emu, home = world
    assert prov(emu) == 0
    assert emu.file("/lib/plexnode/core.mpy").exists()
    seed = emu.file("/node.key").read_bytes()
    capsys.readouterr()
    emu.frozen = ("plexnode", "plexwire")  # as if reflashed with the frozen image, files kept
    assert prov(emu) == 0
    out = capsys.readouterr().out
    assert "0 files uploaded" in out and "firmware frozen in the image" in out
    assert not list(emu.file("/lib/plexnode").rglob("*.mpy")) and not list(emu.file("/lib/plexwire").rglob("*.mpy"))
    assert emu.file("/node.key").read_bytes() == seed


def test_half_frozen_image_is_one_line_error(world, capsys):
    emu, home = world
    emu.frozen = ("plexnode",)
    assert prov(emu) != 0
    last = one_line_error(capsys, after_progress=True)
    assert "only plexnode frozen" in last and "firmware/manifest.py" in last
    assert not emu.file("/main.py").exists()


def test_erase_without_image_wipes_messages_and_key(world, capsys):
    emu, home = world
    assert prov(emu) == 0
    seed = emu.file("/node.key").read_bytes()
    post_bulletin(emu.port, home, "Rent strike vote")
    emu.file("/junk.txt").write_text("left over")
    emu.file("/boot.py").write_text("# MicroPython's boot.py\n")
    assert prov(emu, "--erase") == 0
    out = capsys.readouterr().out
    assert "new node key" in out
    assert emu.file("/node.key").read_bytes() != seed
    assert not emu.file("/junk.txt").exists()
    assert emu.file("/boot.py").exists()
    assert synced(emu.port) == []


class FakeFlasher:
    """Stands in for esptool: reports a chip, records what would be written; erasing wipes the board's files."""

    def __init__(self, chip: str, emu: ReplEmulator | None = None):
        self.chip = chip
        self.emu = emu
        self.calls: list = []

    def connect(self, port):
        fl = self

        class Session:
            chip = fl.chip

            def write(self, address, image, erase):
                fl.calls.append(("write", port, address, image, erase))
                if erase and fl.emu is not None:
                    for p in sorted(fl.emu.root.rglob("*"), reverse=True):
                        p.rmdir() if p.is_dir() else p.unlink()

            def close(self):
                fl.calls.append(("close",))

        fl.calls.append(("connect", port))
        return Session()


def esp_image(path: Path, chip_id: int) -> Path:
    head = bytes([0xE9, 3, 2, 0x20]) + b"\x00" * 8 + chip_id.to_bytes(2, "little") + b"\x00" * 2
    path.write_bytes(head + b"\x00" * 1000)
    return path


@pytest.mark.parametrize("board,chip,chip_id,addr", [("heltec_v3", "esp32s3", 9, 0x0), ("heltec_v2", "esp32", 0, 0x1000)])
@pytest.mark.parametrize("erase", [False, True])
def test_flashing_goes_through_the_flasher(world, capsys, monkeypatch, board, chip, chip_id, addr, erase):
    emu, home = world
    fake = FakeFlasher(chip, emu)
    monkeypatch.setattr(provision, "FLASHER", fake)
    emu.file("/notes.txt").write_text("kept unless erased")
    img = esp_image(home / "mp.bin", chip_id)
    argv = ["node", "provision", "--board", board, "--port", emu.port, "--micropython", str(img), "--hello-timeout", "10"]
    assert main(argv + (["--erase"] if erase else [])) == 0, capsys.readouterr().err
    assert fake.calls == [("connect", emu.port), ("write", emu.port, addr, str(img), erase), ("close",)]
    assert json.loads(emu.file("/board.json").read_text())["chip"] == chip
    assert emu.file("/notes.txt").exists() is not erase
    assert emu.mode == "node"


def test_chip_mismatch_is_one_line_and_writes_nothing(world, capsys, monkeypatch):
    emu, home = world
    fake = FakeFlasher("esp32")
    monkeypatch.setattr(provision, "FLASHER", fake)
    img = esp_image(home / "s3.bin", 9)
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--micropython", str(img)]) != 0
    err = one_line_error(capsys, after_progress=True)
    assert "esp32" in err and "heltec_v3" in err and "esp32s3" in err
    assert [c for c in fake.calls if c[0] == "write"] == []
    # an image built for the other chip is refused before the board is touched
    fake.calls.clear()
    img = esp_image(home / "plain.bin", 0)
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--micropython", str(img)]) != 0
    err = one_line_error(capsys)
    assert "built for esp32" in err
    assert fake.calls == []
    assert not emu.file("/main.py").exists()


def test_user_mistakes_are_one_clear_line(world, capsys, monkeypatch, tmp_path):
    emu, _ = world
    assert main(["node", "provision", "--board", "nosuch", "--port", emu.port]) != 0
    err = one_line_error(capsys)
    assert "unknown board 'nosuch'" in err and "heltec_v3" in err
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--micropython", str(tmp_path / "no.bin")]) != 0
    assert "no MicroPython image" in one_line_error(capsys)
    (tmp_path / "text.bin").write_text("hello")
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--micropython", str(tmp_path / "text.bin")]) != 0
    assert "not an ESP firmware image" in one_line_error(capsys)
    assert main(["node", "provision", "--board", "heltec_v3", "--port", str(tmp_path / "ttyNOPE")]) != 0
    assert "cannot open" in one_line_error(capsys)

    class P:
        def __init__(self, dev, vid, pid):
            self.device, self.vid, self.pid, self.description = dev, vid, pid, "usb"

    from plexus import devices

    monkeypatch.setattr(devices, "_default_comports", lambda: [P("/dev/ttyS0", None, None)])
    assert main(["node", "provision", "--board", "heltec_v3"]) != 0
    assert "no serial port with a known USB-UART chip" in one_line_error(capsys)
    monkeypatch.setattr(devices, "_default_comports",
                        lambda: [P("/dev/ttyUSB0", 0x10C4, 0xEA60), P("/dev/ttyACM0", 0x303A, 0x1001)])
    assert main(["node", "provision", "--board", "heltec_v3", "--port", "auto"]) != 0
    err = one_line_error(capsys)
    assert "/dev/ttyUSB0" in err and "/dev/ttyACM0" in err and "--port" in err
    # exactly one recognised board: that port is used (here: the emulator)
    monkeypatch.setattr(devices, "_default_comports", lambda: [P(emu.port, 0x1A86, 0x55D4), P("/dev/ttyS0", None, None)])
    assert main(["node", "provision", "--board", "heltec_v3", "--hello-timeout", "10"]) == 0
    assert emu.mode == "node"
    assert not capsys.readouterr().err.count("Traceback")


def test_no_repl_and_no_group_are_one_line(tmp_path, monkeypatch, capsys, mpy_dir, main_py):
    monkeypatch.setattr(provision, "MAIN_PY", main_py)
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    monkeypatch.setitem(virtual.SUBCOMMANDS, "provision", (provision.add_arguments, provision.run, "provision a board"))
    with ReplEmulator(tmp_path / "board") as emu:
        assert prov(emu) != 0
        assert "no group file" in one_line_error(capsys)
        assert main(["keys", "new", "alice"]) == 0
        assert main(["group", "init", "--name", "T", "--member", "alice=alice"]) == 0
        capsys.readouterr()
        emu.mode = "dead"  # a board that never shows a REPL (no MicroPython on it)
        monkeypatch.setattr(provision, "REPL_TIMEOUT", 0.5)
        assert prov(emu) != 0
        assert "no MicroPython REPL" in one_line_error(capsys, after_progress=True)


@pytest.mark.parametrize("raw_paste", [True, False])
def test_emulator_speaks_mpremotes_protocol(tmp_path, raw_paste):
    with ReplEmulator(tmp_path, raw_paste=raw_paste) as emu:
        t = SerialTransport(emu.port, baudrate=115200)
        try:
            t.enter_raw_repl(soft_reset=True)
            assert emu.soft_resets == 1
            data = bytes(range(256)) * 5
            t.fs_mkdir("/d")
            t.fs_writefile("/d/f.bin", data, chunk_size=300)
            assert (tmp_path / "d" / "f.bin").read_bytes() == data
            assert bytes(t.fs_readfile("/d/f.bin")) == data
            assert t.fs_hashfile("/d/f.bin", "sha256") == hashlib.sha256(data).digest()
            assert [e.name for e in t.fs_listdir("/d")] == ["f.bin"]
            assert t.fs_stat("/d/f.bin").st_size == len(data)
            assert t.fs_exists("/d/f.bin") and not t.fs_exists("/nope")
            with pytest.raises(OSError):
                t.fs_mkdir("/d")
            with pytest.raises(TransportExecError) as ei:
                t.exec("raise ValueError('boom')")
            assert "ValueError: boom" in ei.value.error_output
            assert t.eval("1 + 2") == 3
            t.fs_rmfile("/d/f.bin")
            t.fs_rmdir("/d")
            assert not (tmp_path / "d").exists()
            assert emu.used_raw_paste is raw_paste
        finally:
            t.close()
