"""Shared pytest fixtures: the real-MicroPython rig and the ../shared test data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent / "rig"))

from mpyrig import MicroPython, MicroPythonError, RigUnavailable  # noqa: E402

__all__ = ["MicroPythonError"]

# Hypothesis profiles: "ci" (default) and "fuzz" (`make fuzz`, many more examples).
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", deadline=None, max_examples=200_000, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


@pytest.fixture(scope="session")
def mpy():
    """One long-lived MicroPython (WebAssembly port) for the whole session, importing build/mpy/*.mpy."""
    try:
        rig = MicroPython()
    except RigUnavailable as exc:  # pragma: no cover - only without `make test`'s setup
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    yield rig
    rig.close()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (CI lays it there); tests that need it skip, saying why, without it."""
    if not SHARED.is_dir():
        pytest.skip("../shared is absent beside the checkout (%s): test data such as Wycheproof vectors live there" % SHARED)
    return SHARED


@pytest.fixture
def mpy_fresh():
    """A new MicroPython process for this test alone: heap measurements must not see other tests' garbage
    (the WebAssembly port's collector is conservative, so stale references from earlier runs can pin memory)."""
    try:
        rig = MicroPython()
    except RigUnavailable as exc:  # pragma: no cover
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    yield rig
    rig.close()
