"""`plexus node provision`: put MicroPython, the Plexus firmware and the node configuration on a board.

Steps (each one only when it applies):

1. flash the MicroPython image the user supplies (``--micropython IMAGE.bin``) with esptool's Python API: the chip
   esptool detects must be the board profile's ``chip`` (boards/README.md), and so must the chip id in the image
   header; the image goes to 0x1000 on the ESP32 and 0x0 on the ESP32-S3 (where MicroPython's ESP32 port puts its
   bootloader). ``--erase`` erases the whole flash first.
2. over mpremote's raw-REPL transport: upload the compiled firmware (``build/mpy/**`` to ``/lib/**``, made by
   ``tools/build_mpy.py``), ``firmware/main.py``, the board profile (``/board.json``), the roster (``/group.json``),
   the group secret (``/group.secret.json``) and ``/config.json``; create ``/node.key`` (a fresh 32-byte seed from
   the laptop's ``os.urandom``) unless the node has one. Files whose SHA-256 already matches are skipped.
   Re-provisioning keeps ``/store.log`` and ``/node.key``; ``--erase`` without an image deletes every file but
   ``/boot.py`` first. A board whose MicroPython image has ``plexnode`` and ``plexwire`` frozen in
   (``tools/build_firmware.py``, ``firmware/manifest.py``) gets only ``main.py`` and its configuration; ``.mpy``
   copies left in ``/lib`` from an earlier provisioning are deleted (the frozen modules would shadow them anyway).
3. soft reset (Ctrl-B then Ctrl-D: MicroPython runs main.py only after a soft reset from the friendly REPL) and ask
   the node HELLO over the host link; post it the ROSTER records (and their consents, from the ledger) of the
   members and nodes added since the group began (plexus.rosterstate); print its public key for
   ``plexus group add --node NAME=KEY`` (an existing group) or ``plexus group init ... --node NAME=KEY``.

The flasher and the raw-REPL transport are injectable (``provision(..., flasher=, transport_factory=)``) so the
flow runs against an emulated board in tests.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = ROOT / "boards"
MPY_DIR = ROOT / "build" / "mpy"
MAIN_PY = ROOT / "firmware" / "main.py"

# where MicroPython's ESP32 port images start (micropython.org/download: "esptool.py write_flash 0x1000" for
# ESP32_GENERIC, "0" for ESP32_GENERIC_S3)
FLASH_ADDR = {"esp32": 0x1000, "esp32s3": 0x0}
# esp_image_header_t (ESP-IDF bootloader_support/include/esp_app_format.h): magic 0xE9 at byte 0, chip_id (u16 LE)
# at byte 12; esp_chip_id_t values
IMAGE_MAGIC = 0xE9
IMAGE_CHIP_IDS = {0x0000: "esp32", 0x0002: "esp32s2", 0x0005: "esp32c3", 0x0009: "esp32s3", 0x000C: "esp32c2",
                  0x000D: "esp32c6", 0x0010: "esp32h2", 0x0012: "esp32p4"}
FIRMWARE_LIBS = ["/lib/plexnode", "/lib/plexwire"]  # device folders that hold only what build/mpy has
CHUNK = 1024  # bytes per raw-REPL write: its repr compiles in a few KB of the ESP32 heap
REPL_TIMEOUT = 15.0  # seconds to wait for the raw REPL (a freshly flashed board formats its filesystem first)
FLASHER: Any = None  # a flasher object (connect(port) -> session); None: esptool. Tests put a fake here.


def _user_error(msg: str) -> Exception:
    from plexus.cli import UserError

    return UserError(msg)


# ---- inputs ------------------------------------------------------------------------------------------------


def load_board(board_id: str, boards_dir: Path = BOARDS_DIR) -> dict:
    path = Path(boards_dir) / (board_id + ".json")
    if not board_id or "/" in board_id or not path.is_file():
        known = sorted(p.stem for p in Path(boards_dir).glob("*.json"))
        raise _user_error("unknown board %r: choose one of %s" % (board_id, ", ".join(known) or "(none)"))
    try:
        prof = json.loads(path.read_text())
    except ValueError:
        raise _user_error("%s is not valid JSON" % path) from None
    if prof.get("chip") not in FLASH_ADDR:
        raise _user_error("%s: chip %r is not one the provisioning tool can flash" % (path, prof.get("chip")))
    return prof


def image_chip(image: Path) -> str:
    """The chip an ESP firmware image is built for, from its header; UserError when it is not one."""
    try:
        head = Path(image).read_bytes()[:16]
    except FileNotFoundError:
        raise _user_error("no MicroPython image at %s" % image) from None
    except IsADirectoryError:
        raise _user_error("%s is a directory, not a MicroPython image" % image) from None
    if len(head) < 16 or head[0] != IMAGE_MAGIC:
        raise _user_error("%s is not an ESP firmware image (no 0xE9 header)" % image)
    cid = int.from_bytes(head[12:14], "little")
    return IMAGE_CHIP_IDS.get(cid, "chip id %d" % cid)


def check_image(image: Path, board: dict) -> None:
    got = image_chip(image)
    if got != board["chip"]:
        raise _user_error("%s is built for %s but board %s has %s" % (image, got, board["id"], board["chip"]))


def pick_port(port: str | None, comports: Callable[[], Any] | None = None) -> str:
    if port and port != "auto":
        if os.name == "posix" and "://" not in port and not os.path.exists(port):
            raise _user_error("cannot open %s: no such port (`plexus devices` lists them)" % port)
        return port
    from plexus import devices

    cands = devices.list_devices(comports=comports)
    if len(cands) == 1:
        return cands[0]["port"]
    if not cands:
        raise _user_error("no serial port with a known USB-UART chip: plug the board in or give --port "
                          "(`plexus devices --all` lists every port)")
    raise _user_error("several boards found (%s): choose one with --port" %
                      ", ".join("%s %s" % (d["port"], d["chip"]) for d in cands))


def firmware_files(mpy_dir: Path = MPY_DIR, main_py: Path = MAIN_PY) -> list[tuple[str, bytes]]:
    mpy_dir, main_py = Path(mpy_dir), Path(main_py)
    mpys = sorted(mpy_dir.rglob("*.mpy")) if mpy_dir.is_dir() else []
    if not mpys:
        raise _user_error("no compiled firmware in %s: run `make build` (tools/build_mpy.py)" % mpy_dir)
    if not main_py.is_file():
        raise _user_error("no %s: the node has nothing to run at boot" % main_py)
    out = [("/lib/" + p.relative_to(mpy_dir).as_posix(), p.read_bytes()) for p in mpys]
    out.append(("/main.py", main_py.read_bytes()))
    return out


def _dirs_of(paths: list[str]) -> list[str]:
    dirs: set[str] = set()
    for p in paths:
        parts = p.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/" + "/".join(parts[:i]))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


# ---- flashing ----------------------------------------------------------------------------------------------


class _EsptoolSession:
    def __init__(self, esp: Any):
        self.esp = esp
        self.chip = esp.CHIP_NAME.lower().replace("-", "")

    def write(self, address: int, image: str, erase: bool) -> None:
        from esptool.cmds import attach_flash, erase_flash, reset_chip, run_stub, write_flash

        esp = run_stub(self.esp)
        attach_flash(esp)
        if erase:
            erase_flash(esp)
        write_flash(esp, [(address, image)])
        reset_chip(esp, "hard-reset")
        self.esp = esp

    def close(self) -> None:
        try:
            self.esp._port.close()
        except Exception:
            pass


class EsptoolFlasher:
    """esptool 5.x Python API (esptool.cmds): detect_chip, run_stub, attach_flash, erase_flash, write_flash."""

    def connect(self, port: str) -> _EsptoolSession:
        from esptool.cmds import detect_chip

        try:
            return _EsptoolSession(detect_chip(port))
        except Exception as e:  # esptool.util.FatalError, serial errors
            raise _user_error("esptool could not reach a chip on %s: %s" % (port, str(e).splitlines()[0] if str(e) else e)) from None


def flash(port: str, image: Path, board: dict, erase: bool, flasher: Any) -> str:
    """Check image and chip against the board profile, then write the image. Returns the detected chip."""
    want = board["chip"]
    check_image(image, board)
    sess = flasher.connect(port)
    try:
        if sess.chip != want:
            raise _user_error("the board on %s is %s, but profile %s needs %s: wrong --board?" % (port, sess.chip, board["id"], want))
        sess.write(FLASH_ADDR[want], str(image), erase)
    finally:
        sess.close()
    return want


# ---- the raw REPL ------------------------------------------------------------------------------------------


def _serial_transport(port: str) -> Any:
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        return SerialTransport(port, baudrate=115200)
    except TransportError:
        raise _user_error("cannot open %s" % port) from None


def _enter_raw(t: Any, deadline: float) -> None:
    from mpremote.transport import TransportError

    while True:
        try:
            t.enter_raw_repl(soft_reset=False, timeout_overall=max(0.5, min(3.0, deadline - time.monotonic())))
            return
        except TransportError:
            if time.monotonic() > deadline:
                raise _user_error("no MicroPython REPL on %s (is MicroPython flashed? try --micropython IMAGE.bin)" % t.device_name) from None


def _exec(t: Any, code: str) -> bytes:
    from mpremote.transport import TransportError

    try:
        return t.exec(code)
    except TransportError as e:
        err = getattr(e, "error_output", "") or str(e)
        raise _user_error("the board failed: %s" % (err.strip().splitlines() or ["?"])[-1]) from None


_HASHES = """import os, hashlib
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    while True:
        b = f.read(512)
        if not b:
            break
        h.update(b)
    f.close()
    return h.digest()
print(repr(dict((p, _h(p)) for p in %r)))
"""

_WIPE = """import os
def _rm(d):
    for e in list(os.ilistdir(d)):
        p = (d if d != '/' else '') + '/' + e[0]
        if e[1] & 0x4000:
            _rm(p)
            os.rmdir(p)
        elif p != '/boot.py':
            os.remove(p)
_rm('/')
"""

_SWEEP = """import os
def _walk(d, out):
    try:
        ents = list(os.ilistdir(d))
    except OSError:
        return
    for e in ents:
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            _walk(p, out)
        else:
            out.append(p)
_found = []
for _d in %r:
    _walk(_d, _found)
_keep = %r
for _p in _found:
    if _p not in _keep:
        os.remove(_p)
print(repr([_p for _p in _found if _p not in _keep]))
"""

_MKDIRS = """import os
for d in %r:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""


# Where the board imports plexnode and plexwire from: None (absent), "frozen" (built into the image: no file
# behind __file__, which is ".frozen/..." on MicroPython >= 1.20) or the file path ("/lib/plexnode/__init__.mpy").
_WHERE = """import os
def _where(m):
    try:
        f = getattr(__import__(m), '__file__', None)
    except ImportError:
        return None
    if not f:
        return 'frozen'
    try:
        os.stat(f)
        return f
    except OSError:
        return 'frozen'
print(repr([_where('plexnode'), _where('plexwire')]))
"""


def firmware_location(t: Any) -> str | None:
    """"frozen" if the board's image has both Plexus packages built in, else None (they come from files).
    A half-frozen image (one package only) is a build mistake: UserError."""
    where = ast.literal_eval(_exec(t, _WHERE).decode().strip())
    frozen = [w == "frozen" for w in where]
    if all(frozen):
        return "frozen"
    if any(frozen):
        raise _user_error("the board's MicroPython image has only %s frozen in: build it from firmware/manifest.py, "
                          "which freezes plexnode and plexwire" % ("plexnode" if frozen[0] else "plexwire"))
    return None


def remote_hashes(t: Any, paths: list[str]) -> dict:
    out = _exec(t, _HASHES % (paths,)).decode().strip()
    return ast.literal_eval(out)


# ---- the whole flow ----------------------------------------------------------------------------------------


def inputs(board_id: str, port: str | None = "auto", image: str | os.PathLike | None = None,
           group: str | os.PathLike | None = None, mpy_dir: str | os.PathLike = MPY_DIR,
           main_py: str | os.PathLike = MAIN_PY, boards_dir: str | os.PathLike = BOARDS_DIR,
           comports: Callable[[], Any] | None = None) -> tuple:
    """Everything provisioning needs from the laptop, checked before the board is touched (UserError on a
    mistake): (board profile, image path or None, firmware files, (roster doc, Roster, secret, epoch), port)."""
    from plexus import groupcfg

    board = load_board(board_id, Path(boards_dir))
    img = Path(image) if image else None
    if img is not None:
        check_image(img, board)
    fw = firmware_files(Path(mpy_dir), Path(main_py))
    try:
        _roster_additions(group)
        doc, roster = groupcfg.load_doc(group), groupcfg.load_roster(group)
        _promote_rekeys(group)
        grp = (doc, roster) + groupcfg.load_secret(group)
    except groupcfg.GroupError as e:
        raise _user_error(str(e)) from None
    return board, img, fw, grp, pick_port(port, comports)


def _roster_additions(group: str | os.PathLike | None) -> None:
    """Members and nodes the ledger shows added by an adopted ROSTER join group.json first (plexus.rosterstate),
    so the new node is handed them. A ledger that cannot be read leaves the roster as it is."""
    from plexus import rosterstate
    from plexus.ledger import LedgerError

    try:
        rosterstate.refresh(group)
    except LedgerError:
        pass


def _hand_additions(port: str, doc: dict) -> tuple[int, list[str]]:
    """Post the ROSTER records of the roster's additions and their consents to the freshly booted node: it
    starts from the founding roster (which fixes the group id) and adopts them as every node did, from the
    signed records (kept in its store, so they hold across reboots). (records the node took, names missing)."""
    from plexus import rosterstate
    from plexus.client import HostLinkClient, LinkError, NodeError
    from plexus.ledger import LedgerError

    try:
        recs, missing = rosterstate.handover(doc)
    except LedgerError:
        return 0, [a.get("name", "?") for a in doc.get("added", [])]
    took = 0
    if recs:
        with HostLinkClient(port, timeout=3.0) as c:
            for r in recs:
                try:
                    c.post(r)
                    took += 1
                except NodeError:
                    pass  # it has it already (a re-provisioned node), or will learn it by anti-entropy
                except LinkError as e:
                    raise _user_error("handing the roster additions to the node failed: %s" % e) from None
    return took, missing


def _promote_rekeys(group: str | os.PathLike | None) -> None:
    """A new node gets the current epoch's secret: promote a pending one whose REKEY the ledger shows adopted
    (SPEC.md s.8.4; plexus.rekeystate). A ledger that cannot be read leaves the secret file as it is."""
    from plexus import rekeystate
    from plexus.ledger import LedgerError

    try:
        rekeystate.refresh(group)
    except LedgerError:
        pass


def _node_keys(t: Any, group_id: str, secret: bytes, epoch: int, group: str | os.PathLike | None) -> bytes:
    """The /group.secret.json to upload: the laptop's current secret and epoch, unless the node already holds
    that epoch or one the laptop has pending (it adopted a rekey the laptop has not seen yet): a node's key
    file is never moved back to an older epoch, and its grace-window state is kept."""
    import binascii

    from plexus import groupcfg

    ours = json.dumps({"v": 1, "group_id": group_id, "secret": secret.hex(), "epoch": epoch}).encode() + b"\n"
    if not t.fs_exists("/group.secret.json"):
        return ours
    try:
        raw = bytes(t.fs_readfile("/group.secret.json"))
        old = json.loads(raw)
        theirs = binascii.unhexlify(old["secret"])
    except Exception:
        return ours
    if old.get("group_id", group_id) != group_id:
        return ours
    d = json.loads(groupcfg.secret_path(groupcfg.group_path(group)).read_text())
    newer = {bytes.fromhex(p["secret"]) for p in d.get("pending", [])}
    if theirs == secret or theirs in newer:
        return raw
    return ours


def provision(board_id: str, port: str | None = "auto", image: str | os.PathLike | None = None, erase: bool = False,
              group: str | os.PathLike | None = None, name: str | None = None, region: str | None = None,
              mpy_dir: str | os.PathLike = MPY_DIR, main_py: str | os.PathLike = MAIN_PY,
              boards_dir: str | os.PathLike = BOARDS_DIR, flasher: Any = None,
              transport_factory: Callable[[str], Any] | None = None, comports: Callable[[], Any] | None = None,
              hello_timeout: float = 30.0, repl_timeout: float | None = None, progress: Any = None) -> dict:
    """Provision one board; returns the HELLO reply plus ``uploaded``/``skipped`` file counts and ``new_key``."""
    from plexus.client import HostLinkClient, LinkError, NodeError

    board, img, fw, (doc, roster, secret, epoch), port = inputs(board_id, port, image, group, mpy_dir, main_py,
                                                                boards_dir, comports)

    say = progress.console.print if progress is not None else (lambda *a, **k: None)
    if img is not None:
        say("flashing %s to %s (%s, %s)" % (img.name, port, board["chip"], "erasing first" if erase else "keeping other data"))
        flash(port, img, board, erase, flasher or FLASHER or EsptoolFlasher())

    t = (transport_factory or _serial_transport)(port)
    try:
        _enter_raw(t, time.monotonic() + (REPL_TIMEOUT if repl_timeout is None else repl_timeout))
        if erase and img is None:
            say("erasing the node's files (--erase)")
            _exec(t, _WIPE)
        cfg = {}
        if t.fs_exists("/config.json"):  # keep the node's settings (modem, router, ...) unless given here
            try:
                old = json.loads(bytes(t.fs_readfile("/config.json")))
                if isinstance(old, dict):
                    cfg = old
            except Exception:
                pass
        cfg["name"] = name or cfg.get("name") or board["id"]
        cfg["board"] = board["id"]
        if region:
            cfg["region"] = region
        frozen = firmware_location(t) == "frozen"
        if frozen:
            say("the image has plexnode and plexwire frozen in: uploading main.py and the configuration only")
            files = [f for f in fw if not f[0].startswith("/lib/")]
        else:
            files = list(fw)
        files.append(("/board.json", (json.dumps(board, indent=1) + "\n").encode()))
        files.append(("/group.json", (json.dumps(doc, indent=1) + "\n").encode()))
        files.append(("/group.secret.json", _node_keys(t, roster.group_id.hex(), secret, epoch, group)))
        files.append(("/config.json", (json.dumps(cfg) + "\n").encode()))
        have = remote_hashes(t, [p for p, _ in files] + ["/node.key"])
        seed = None
        if have.get("/node.key") is None:
            seed = os.urandom(32)
            files.insert(0, ("/node.key", seed))
        # main.py last: a board interrupted half-way does not boot a firmware with missing modules
        files.sort(key=lambda f: f[0] == "/main.py")
        todo = [(p, d) for p, d in files if have.get(p) != hashlib.sha256(d).digest()]
        _exec(t, _MKDIRS % (_dirs_of([p for p, _ in todo]),))
        total = sum(len(d) for _, d in todo)
        task = progress.add_task("uploading %d files" % len(todo), total=total or 1) if progress is not None else None
        done = 0
        for p, d in todo:
            base = done

            def cb(written: int, size: int, base: int = base) -> None:
                if progress is not None:
                    progress.update(task, completed=base + written)

            try:
                t.fs_writefile(p, d, chunk_size=CHUNK, progress_callback=cb)
            except Exception as e:
                raise _user_error("writing %s on the board failed: %s" % (p, str(e).strip().splitlines()[-1:] or e)) from None
            done += len(d)
        if progress is not None:
            progress.update(task, completed=total or 1)
        # modules the build no longer has (renamed or removed) would still be importable: delete them
        stale = ast.literal_eval(_exec(t, _SWEEP % (FIRMWARE_LIBS, sorted(p for p, _ in files))).decode().strip())
        if stale:
            say("removed %d stale firmware files" % len(stale))
        check = remote_hashes(t, [p for p, _ in todo])
        bad = [p for p, d in todo if check.get(p) != hashlib.sha256(d).digest()]
        if bad:
            raise _user_error("the board stored %s wrongly (hash mismatch)" % ", ".join(bad))
        say("soft reset: starting the node")
        t.exit_raw_repl()
        t.serial.write(b"\x04")
        t.serial.flush()
    finally:
        try:
            t.close()
        except Exception:
            pass

    deadline = time.monotonic() + hello_timeout
    info = None
    last = "no answer"
    while info is None:
        try:
            with HostLinkClient(port, timeout=1.0, retries=0) as c:
                info = c.hello()
        except (LinkError, NodeError) as e:
            last = str(e)
            if time.monotonic() > deadline:
                raise _user_error("the node did not answer HELLO on %s after provisioning: %s" % (port, last)) from None
            time.sleep(0.3)
    if info.get("group_id") != roster.group_id.hex():
        raise _user_error("the node answers for group %s, not %s" % (info.get("group_id"), roster.group_id.hex()))
    if seed is not None:
        from plexus.crypto import HostCrypto

        if info.get("node_key") != HostCrypto().public_key(seed).hex():
            raise _user_error("the node reports key %s, not the one just stored" % info.get("node_key"))
    took, missing = _hand_additions(port, doc)
    info = dict(info)
    info.update(roster_records=took, roster_missing=missing)
    from plexwire import msg

    try:
        info["in_roster"] = roster.get(msg.key_id(bytes.fromhex(str(info.get("node_key", ""))))) is not None
    except ValueError:
        info["in_roster"] = False
    info.update(stale=len(stale), port=port, uploaded=len(todo), skipped=len(files) - len(todo), new_key=seed is not None,
                bytes=total, board=board["id"], frozen=frozen)
    return info


# ---- CLI ---------------------------------------------------------------------------------------------------


def add_arguments(p) -> None:
    p.add_argument("--board", required=True, help="board profile id (a file in boards/, e.g. heltec_v3)")
    p.add_argument("--port", default="auto", help="serial port (default auto: the one board `plexus devices` recognises)")
    p.add_argument("--micropython", metavar="IMAGE.bin", help="flash this MicroPython image first (esptool)")
    p.add_argument("--erase", action="store_true",
                   help="start clean: erase the flash (with --micropython) or delete the node's files, "
                        "including its stored messages and key")
    p.add_argument("--group", help="roster document (default: $PLEXUS_HOME/group.json; the secret beside it)")
    p.add_argument("--name", help="node name (default: the name it has, else the board id)")
    from plexnode.dutycycle import REGIONS

    p.add_argument("--region", choices=sorted(REGIONS), help="duty-cycle region for config.json (default: the node's, EU_868)")
    p.add_argument("--mpy-dir", default=str(MPY_DIR), help=argparse_suppress())
    p.add_argument("--main", default=str(MAIN_PY), help=argparse_suppress())
    p.add_argument("--hello-timeout", type=float, default=30.0, help="seconds to wait for the node after the reset")


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


def run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    # the user's mistakes first, before anything is drawn or touched
    port = inputs(args.board, args.port, args.micropython, args.group, args.mpy_dir, args.main)[-1]
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as prog:
        info = provision(args.board, port, args.micropython, args.erase, args.group, args.name, args.region,
                         mpy_dir=args.mpy_dir, main_py=args.main, hello_timeout=args.hello_timeout, progress=prog)
    print("node %s (%s) on %s answers: %d files uploaded, %d unchanged%s%s" % (
        info.get("name"), info["board"], info["port"], info["uploaded"], info["skipped"],
        ", new node key" if info["new_key"] else ", node key kept",
        ", firmware frozen in the image" if info.get("frozen") else ""))
    print("node key %s (key id %s)" % (info.get("node_key"), info.get("key_id")))
    from plexus import rekeystate

    for p in rekeystate.pending(args.group):
        print("note: rekey %s to epoch %d is not adopted in the ledger yet; the node got the key of epoch %s. Once it "
              "is adopted (plexus ledger sync), provision this node again" % (p["rekey"], p["epoch"], info.get("epoch")))
    if info.get("roster_records"):
        print("handed the node %d roster record(s): the members and nodes added since the group began"
              % info["roster_records"])
    if info.get("roster_missing"):
        print("note: the local ledger lacks the ROSTER record adding %s: the node learns it from its neighbours "
              "(anti-entropy), or sync the ledger and provision again" % ", ".join(info["roster_missing"]))
    if info.get("in_roster"):
        print("node %s is in the roster" % info.get("name"))
    else:
        print("add it to the roster: plexus group add --node %s=%s --port PORT   (quorum consent needed; a group "
              "not created yet: plexus group init ... --node %s=%s)" % (info.get("name"), info.get("node_key"),
                                                                         info.get("name"), info.get("node_key")))
    sys.stdout.flush()
    return 0
