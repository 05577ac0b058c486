"""Frozen firmware: firmware/manifest.py (MicroPython's manifest format), tools/build_firmware.py, and how much heap
the imported .mpy modules take (what freezing them into flash saves on boards without PSRAM)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "firmware" / "manifest.py"
sys.path.insert(0, str(ROOT / "tools"))
import build_firmware  # noqa: E402
import build_mpy  # noqa: E402

sys.path.pop(0)


def run_manifest(path: Path, port_dir: str = "/mpy/ports/esp32") -> dict:
    """Execute a manifest against a stub of the manifest API (the functions and $(VAR) expansion that
    MicroPython's tools/manifestfile.py gives it; relative paths are relative to the manifest's directory)."""
    got: dict = {"include": [], "package": [], "module": [], "freeze": [], "require": []}
    here = path.parent

    def expand(p: str) -> str:
        return p.replace("$(PORT_DIR)", port_dir).replace("$(MPY_DIR)", "/mpy")

    def include(p, **kw):
        got["include"].append(expand(p))

    def package(name, files=None, base_path=".", opt=None):
        assert files is None and opt is None
        got["package"].append((name, (here / expand(base_path)).resolve()))

    def module(name, base_path=".", opt=None):
        got["module"].append((name, (here / expand(base_path)).resolve()))

    def freeze(p, script=None, opt=None):
        got["freeze"].append((here / expand(p)).resolve())

    def require(name, **kw):
        got["require"].append(name)

    def metadata(**kw):
        pass

    ns = {"include": include, "package": package, "module": module, "freeze": freeze, "require": require,
          "metadata": metadata, "options": type("O", (), {})()}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    return got


def test_manifest_freezes_every_firmware_package_on_top_of_the_port_manifest():
    got = run_manifest(MANIFEST)
    assert got["include"] == ["/mpy/ports/esp32/boards/manifest.py"]  # asyncio & co. stay frozen
    assert got["module"] == [] and got["freeze"] == [] and got["require"] == []
    pkgs = {name: base for name, base in got["package"]}
    # exactly the packages build_mpy compiles and provisioning would otherwise upload
    assert {p.name: p.parent.resolve() for p in build_mpy.PACKAGES} == pkgs
    for name, base in pkgs.items():
        assert (base / name / "__init__.py").is_file(), name
        assert list((base / name).rglob("*.py"))


def test_build_firmware_dry_run_commands(capsys, tmp_path):
    assert build_firmware.main(["--board", "heltec_v3", "--micropython-src", str(tmp_path), "--dry-run", "-j", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "make -C %s/mpy-cross -j2" % tmp_path
    assert out[1] == "make -C %s/ports/esp32 BOARD=ESP32_GENERIC_S3 submodules" % tmp_path
    assert out[2] == "make -C %s/ports/esp32 BOARD=ESP32_GENERIC_S3 FROZEN_MANIFEST=%s -j2" % (tmp_path, MANIFEST.resolve())
    assert out[3].startswith("cp %s/ports/esp32/build-ESP32_GENERIC_S3/firmware.bin " % tmp_path)
    assert out[3].endswith("build/firmware/plexus-heltec_v3.bin")
    board = json.loads((ROOT / "boards" / "heltec_v2.json").read_text())["micropython_board"]
    assert build_firmware.commands(tmp_path, board)[2][3] == "BOARD=ESP32_GENERIC"


def test_build_firmware_refuses_clearly(capsys, tmp_path, monkeypatch):
    assert build_firmware.main(["--board", "nope", "--micropython-src", str(tmp_path)]) == 2
    assert "unknown board 'nope'" in capsys.readouterr().err
    assert build_firmware.main(["--board", "heltec_v3", "--micropython-src", str(tmp_path)]) == 2
    assert "not a MicroPython source tree" in capsys.readouterr().err
    (tmp_path / "ports" / "esp32").mkdir(parents=True)
    monkeypatch.setattr(build_firmware.shutil, "which", lambda name: None)
    assert build_firmware.main(["--board", "heltec_v3", "--micropython-src", str(tmp_path)]) == 2
    assert "idf.py not found" in capsys.readouterr().err


def _modules() -> list[str]:
    out = []
    for p in sorted(build_mpy.OUT.rglob("*.mpy")):
        name = p.relative_to(build_mpy.OUT).with_suffix("").as_posix().replace("/", ".")
        out.append(name[: -len(".__init__")] if name.endswith(".__init__") else name)
    return out


COUNT = r'''
import sys
def _count(mods):
    # what a frozen import still allocates in RAM: module and class dicts, function objects
    entries = funcs = classes = 0
    seen = []
    for name in mods:
        d = sys.modules[name].__dict__
        entries += len(d)
        for k in d:
            v = d[k]
            if isinstance(v, type) and v not in seen:
                seen.append(v)
                classes += 1
                entries += len(v.__dict__)
                for m in v.__dict__.values():
                    if type(m).__name__ in ("function", "closure", "generator"):
                        funcs += 1
            elif type(v).__name__ in ("function", "closure", "generator"):
                funcs += 1
    return [entries, funcs, classes]
'''


@pytest.mark.mpy
@pytest.mark.slow
def test_heap_taken_by_imported_mpy_modules(mpy_fresh):
    """Import every firmware module from its .mpy (as a provisioned board does) and measure the heap it keeps.
    .mpy bytecode and constants are loaded into the heap; frozen, they stay in flash (docs/hardware.md)."""
    m = mpy_fresh  # starting the rig brings build/mpy up to date
    mods = _modules()
    mpy_bytes = sum(p.stat().st_size for p in build_mpy.OUT.rglob("*.mpy"))
    m.run("import gc\ngc.collect()")
    base = m.eval_json("import gc\ngc.collect()", "gc.mem_alloc()")
    m.run("import " + ", ".join(mods))
    after = m.eval_json("import gc\ngc.collect()", "gc.mem_alloc()")
    entries, funcs, classes = m.eval_json(COUNT, "_count(%r)" % (mods,))
    used = after - base
    print("imported %d modules (%d bytes of .mpy): heap +%d bytes; %d dict entries, %d functions, %d classes"
          % (len(mods), mpy_bytes, used, entries, funcs, classes))
    assert len(mods) >= 20 and entries > 0 and funcs > 0
    # loading .mpy files puts at least their bytecode in RAM: the heap grows by more than the files' size
    assert used >= mpy_bytes
