"""The rig itself: real MicroPython 1.27 importing the .mpy files mpy-cross built."""

import pytest
from conftest import MicroPythonError


def test_runs_real_micropython_from_mpy(mpy):
    out = mpy.run("import sys, plexnode\nprint(sys.implementation.name, sys.implementation.version[:2])\nprint(plexnode.__file__)")
    name, _, path = out.strip().partition("\n")
    assert name == "micropython (1, 27)"
    assert path.endswith(".mpy")


def test_exception_surfaces_with_traceback(mpy):
    with pytest.raises(MicroPythonError, match="ZeroDivisionError"):
        mpy.run("def _f():\n    return 1 // 0\n_f()")


def test_top_level_await(mpy):
    out = mpy.run_async("import asyncio\nasync def _g():\n    await asyncio.sleep_ms(1)\n    return 7\nprint(await _g())")
    assert out.strip() == "7"


def test_state_persists_and_json(mpy):
    mpy.run("_rig_x = 41")
    assert mpy.eval_json("_rig_x += 1", "_rig_x") == 42
