"""An emulated MicroPython board on a pseudo-terminal, for provisioning tests.

``ReplEmulator(root)`` opens a pty (``.port`` is the path pyserial / mpremote open) and serves, in a thread:

* the friendly REPL (Ctrl-A enters the raw REPL, Ctrl-D soft-resets, Ctrl-C interrupts);
* the raw REPL: "raw REPL; CTRL-B to exit\\r\\n>" banner, code ended by Ctrl-D and answered "OK" + stdout + EOT +
  stderr + EOT + ">", Ctrl-B back to the friendly REPL, Ctrl-D on an empty line soft-resets, and raw-paste mode
  ("\\x05A\\x01" -> "R\\x01", a little-endian u16 window, "\\x01" for each further window, EOT ends the code and is
  echoed) unless ``raw_paste=False`` (then "R\\x00", and mpremote falls back to the plain raw REPL);
* code runs in a CPython namespace whose ``os`` and ``open`` are mapped onto ``root`` (the board's filesystem), with
  MicroPython's ``os.ilistdir``/``os.stat`` tuples and "OSError: [Errno 2] ENOENT" style errors;
* ``frozen=("plexnode", "plexwire")`` emulates an image with those packages built in: importing them gives a module
  whose ``__file__`` is ``.frozen/NAME/__init__.py`` (no such file on the filesystem); otherwise ``import NAME``
  finds ``/lib/NAME/__init__.mpy`` if it was uploaded, as MicroPython's ``sys.path`` (``.frozen`` before ``/lib``)
  would;
* a soft reset from the friendly REPL with ``/main.py`` present "boots the firmware": the real node core and host
  link (``plexus.virtual.VirtualNode``) built from ``/group.json``, ``/group.secret.json``, ``/node.key`` and
  ``/config.json`` on that filesystem, storing into ``/store.log``, on the same pty. Ctrl-C stops it (as a
  KeyboardInterrupt stops main.py) and returns to the friendly REPL.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import posixpath
import select
import struct
import sys
import threading
import time
import tty
from pathlib import Path

from plexus.virtual import write_all

BANNER = b"MicroPython v1.27.0 on 2025-12-09; Emulated ESP32 module with ESP32\r\nType \"help()\" for more information.\r\n>>> "
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
PASTE_WINDOW = 512


class _OSError(OSError):
    pass


def _oserr(code: int) -> OSError:
    return OSError(code, errno.errorcode.get(code, str(code)))


class FakeOS:
    """The part of MicroPython's `os` that mpremote and the provisioning tool use, on a host directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cwd = "/"

    def _map(self, path: str) -> Path:
        path = str(path) if path else self.cwd
        if not path.startswith("/"):
            path = posixpath.join(self.cwd, path)
        norm = posixpath.normpath(path).lstrip("/")
        if norm.startswith(".."):
            raise _oserr(errno.ENOENT)
        return self.root / norm if norm not in ("", ".") else self.root

    def _wrap(self, fn, *a):
        try:
            return fn(*a)
        except OSError as e:
            raise _oserr(e.errno or errno.EIO) from None

    def ilistdir(self, path: str = ""):
        p = self._map(path)
        names = self._wrap(os.listdir, p)
        out = []
        for n in sorted(names):
            st = os.stat(p / n)
            isdir = (st.st_mode & 0o170000) == 0o040000
            out.append((n, 0x4000 if isdir else 0x8000, 0, 0 if isdir else st.st_size))
        return iter(out)

    def listdir(self, path: str = ""):
        return [e[0] for e in self.ilistdir(path)]

    def stat(self, path: str):
        st = self._wrap(os.stat, self._map(path))
        isdir = (st.st_mode & 0o170000) == 0o040000
        mt = int(st.st_mtime)
        return (0x4000 if isdir else 0x8000, 0, 0, 0, 0, 0, 0 if isdir else st.st_size, mt, mt, mt)

    def mkdir(self, path: str) -> None:
        self._wrap(os.mkdir, self._map(path))

    def rmdir(self, path: str) -> None:
        self._wrap(os.rmdir, self._map(path))

    def remove(self, path: str) -> None:
        p = self._map(path)
        if p.is_dir():
            raise _oserr(errno.EISDIR)
        self._wrap(os.remove, p)

    unlink = remove

    def rename(self, a: str, b: str) -> None:
        self._wrap(os.rename, self._map(a), self._map(b))

    def getcwd(self) -> str:
        return self.cwd

    def chdir(self, path: str) -> None:
        if not self._map(path).is_dir():
            raise _oserr(errno.ENOENT)
        self.cwd = posixpath.normpath(posixpath.join(self.cwd, path))

    def sync(self) -> None:
        pass

    def statvfs(self, path: str = "/"):
        return (4096, 4096, 512, 400, 400, 0, 0, 0, 0, 255)

    def uname(self):
        return ("esp32", "esp32", "1.27.0", "v1.27.0 on 2025-12-09", "Emulated ESP32 module with ESP32")


class _Machine:
    def __init__(self, emu: "ReplEmulator"):
        self._emu = emu

    def soft_reset(self) -> None:
        self._emu._pending_reset = True
        raise SystemExit

    reset = soft_reset


class _Module:
    def __init__(self, name: str, file: str):
        self.__name__ = name
        self.__file__ = file


class ReplEmulator:
    def __init__(self, root: str | os.PathLike, raw_paste: bool = True, boot_node: bool = True, frozen: tuple = ()):
        self.root = Path(root)
        self.frozen = tuple(frozen)
        self.root.mkdir(parents=True, exist_ok=True)
        self.raw_paste = raw_paste
        self.boot_node = boot_node
        self.fs = FakeOS(self.root)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.mode = "friendly"
        self.line = bytearray()
        self.paste_rx = 0
        self.ns: dict = {}
        self.node = None
        self.node_error: str | None = None
        self.execs: list[str] = []
        self.soft_resets = 0
        self.boots = 0
        self.used_raw_paste = False
        self._pending_reset = False
        self.running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)

    # ---- lifecycle

    def start(self) -> "ReplEmulator":
        self._thread.start()
        return self

    def close(self) -> None:
        self.running = False
        self._thread.join(3)
        self._stop_node()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "ReplEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def file(self, path: str) -> Path:
        return self.fs._map(path)

    # ---- I/O

    def _write(self, data: bytes) -> None:
        write_all(self.master, data)

    def _serve(self) -> None:
        while self.running:
            r, _, _ = select.select([self.master], [], [], 0.02)
            data = b""
            if r:
                try:
                    data = os.read(self.master, 65536)
                except (BlockingIOError, OSError):
                    data = b""
            if self.mode == "node":
                self._node_input(data)
            else:
                for i in range(len(data)):
                    self._byte(data[i])
                    if self.mode == "node" and i + 1 < len(data):
                        self._node_input(data[i + 1:])
                        break

    # ---- REPL state machine

    def _byte(self, c: int) -> None:
        m = self.mode
        if m == "friendly":
            if c == 0x01:
                self._enter_raw(b"\r\n")
            elif c == 0x03:
                self.line = bytearray()
                self._write(b"\r\n>>> ")
            elif c == 0x04:
                self._soft_reset()
            elif c == 0x0D:
                self._write(b"\r\n>>> ")
        elif m == "raw":
            if c == 0x01:
                self._enter_raw(b"")
            elif c == 0x02:
                self.mode = "friendly"
                self._write(b"\r\n" + BANNER)
            elif c == 0x03:
                self.line = bytearray()
            elif c == 0x04:
                if not self.line:
                    self._soft_reset()
                else:
                    code = bytes(self.line)
                    self.line = bytearray()
                    self._write(b"OK")
                    self._run(code)
            elif c == 0x05 and not self.line:
                self.mode = "raw_e"
            else:
                self.line.append(c)
        elif m == "raw_e":
            self.mode = "raw_ea" if c == ord("A") else "raw"
        elif m == "raw_ea":
            if c == 0x01 and self.raw_paste:
                self.used_raw_paste = True
                self.mode = "paste"
                self.paste_rx = 0
                self._write(b"R\x01" + struct.pack("<H", PASTE_WINDOW))
            elif c == 0x01:
                self.mode = "raw"
                self._write(b"R\x00")
            else:
                self.mode = "raw"
        elif m == "paste":
            if c == 0x04:
                code = bytes(self.line)
                self.line = bytearray()
                self.mode = "raw"
                self._write(b"\x04")
                self._run(code)
            else:
                self.line.append(c)
                self.paste_rx += 1
                if self.paste_rx >= PASTE_WINDOW:
                    self.paste_rx -= PASTE_WINDOW
                    self._write(b"\x01")

    def _enter_raw(self, pre: bytes) -> None:
        self.mode = "raw"
        self.line = bytearray()
        self._write(pre + RAW_BANNER)

    def _soft_reset(self) -> None:
        self.soft_resets += 1
        self._stop_node()
        self.ns = {}
        self.line = bytearray()
        self._write(b"MPY: soft reboot\r\n")
        if self.mode == "raw":
            self._write(RAW_BANNER)
            return
        if self.boot_node and self.file("/main.py").is_file():
            self._boot_node()
        else:
            self._write(BANNER)

    # ---- running code

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if name in ("os", "uos"):
            return self.fs
        if name == "machine":
            return _Machine(self)
        if name == "gc":
            class _GC:
                collect = staticmethod(lambda: None)
                mem_free = staticmethod(lambda: 100000)
            return _GC
        if name in ("hashlib", "json", "time", "sys", "binascii", "struct", "errno", "micropython"):
            if name == "micropython":
                raise ImportError("no module named 'micropython'")
            return __import__(name, globals, locals, fromlist, level)
        if name in self.frozen:
            return _Module(name, ".frozen/%s/__init__.py" % name)
        if "." not in name and self.file("/lib/%s/__init__.mpy" % name).is_file():
            return _Module(name, "/lib/%s/__init__.mpy" % name)
        raise ImportError("no module named '%s'" % name)

    def _run(self, code: bytes) -> None:
        src = code.decode("utf-8", "replace")
        self.execs.append(src)
        out = io.StringIO()

        def _print(*a, sep=" ", end="\n", file=None):
            out.write(sep.join(str(x) for x in a) + end)

        def _open(path, mode="r", *a, **k):
            if not isinstance(path, str):
                raise TypeError("can't convert to str")
            p = self.fs._map(path)
            try:
                return open(p, mode, *a, **k)
            except OSError as e:
                raise _oserr(e.errno or errno.EIO) from None

        bi = dict(vars(builtins))
        bi.update(print=_print, open=_open, __import__=self._import, exit=None, quit=None, input=None)
        self.ns["__builtins__"] = bi
        self.ns.setdefault("__name__", "__main__")
        err = ""
        try:
            exec(compile(src, "<stdin>", "exec"), self.ns)
        except SystemExit:
            pass
        except BaseException as e:  # noqa: BLE001 - the board prints every exception
            tb = e.__traceback__
            line = 1
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == "<stdin>":
                    line = tb.tb_lineno
                tb = tb.tb_next
            if isinstance(e, SyntaxError):
                line = e.lineno or 1
            if isinstance(e, OSError) and e.errno:
                text = "OSError: [Errno %d] %s" % (e.errno, errno.errorcode.get(e.errno, ""))
            else:
                text = "%s: %s" % (type(e).__name__, e)
            err = 'Traceback (most recent call last):\n  File "<stdin>", line %d, in <module>\n%s\n' % (line, text)
        self._write(out.getvalue().replace("\n", "\r\n").encode() + b"\x04" + err.replace("\n", "\r\n").encode() + b"\x04>")
        if self._pending_reset:
            self._pending_reset = False
            self.mode = "friendly"
            self._soft_reset()

    # ---- the provisioned node

    def _boot_node(self) -> None:
        from plexus.virtual import VirtualNode

        self.boots += 1
        try:
            doc = json.loads(self.file("/group.json").read_text())
            sec = json.loads(self.file("/group.secret.json").read_text())
            seed = self.file("/node.key").read_bytes()
            cfg = json.loads(self.file("/config.json").read_text())
            board = json.loads(self.file("/board.json").read_text())
            if len(seed) != 32:
                raise ValueError("node.key must be 32 bytes")
            vn = VirtualNode(doc, bytes.fromhex(sec["secret"]), seed, self.file("/store.log"), cfg.get("name", "node"),
                             sec.get("epoch", 0))
        except Exception as e:  # noqa: BLE001 - main.py would die with a traceback
            self.node_error = "%s: %s" % (type(e).__name__, e)
            self._write(('Traceback (most recent call last):\r\n  File "main.py", line 1, in <module>\r\n%s\r\n'
                         % self.node_error).encode() + BANNER)
            self.mode = "friendly"
            return
        for fd in (vn.master, vn.slave):  # it opened a pty of its own: serve on ours instead
            os.close(fd)
        vn.master = self.master
        vn.slave = -1
        vn.board = board
        self.node = vn
        self.node_error = None
        self.mode = "node"
        self._write(b"plexus node %s (%s) booting\r\n" % (cfg.get("name", "node").encode(), board.get("id", "?").encode()))

    def _stop_node(self) -> None:
        vn = self.node
        if vn is not None:
            self.node = None
            vn.running = False
            vn.store.close()

    def _node_input(self, data: bytes) -> None:

        vn = self.node
        if vn is None:
            return
        if b"\x03" in data:
            i = data.index(b"\x03")
            self._stop_node()
            self.mode = "friendly"
            self._write(b'Traceback (most recent call last):\r\n  File "main.py", line 1, in <module>\r\nKeyboardInterrupt: \r\n'
                        + BANNER)
            for c in data[i + 1:]:
                self._byte(c)
            return
        vn.feed(data)
        vn.tick()


def wait_for(pred, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


if __name__ == "__main__":  # a board to play with: python tests/replemu.py DIR, then mpremote connect PORT
    emu = ReplEmulator(sys.argv[1] if len(sys.argv) > 1 else "/tmp/replemu-fs").start()
    print(emu.port)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        emu.close()
