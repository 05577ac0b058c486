"""plexnode.sha512: the pure-Python SHA-512 against hashlib, on CPython and under real MicroPython."""

import hashlib
import random

import pytest
from plexnode.sha512 import digest, sha512


def _data(n, seed=0):
    return random.Random(seed * 100003 + n).randbytes(n)


def test_every_length_0_to_300():
    for n in range(301):
        m = _data(n)
        assert sha512(m).digest() == hashlib.sha512(m).digest(), n


def test_one_megabyte():
    m = _data(1 << 20, seed=7)
    assert digest(m) == hashlib.sha512(m).digest()


def test_known_answers():
    # FIPS 180-4 examples (the one-block and two-block messages) and the empty string
    assert sha512(b"abc").hexdigest() == (
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    )
    two = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
    assert sha512(two).hexdigest() == (
        "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
        "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"
    )
    assert sha512().hexdigest().startswith("cf83e1357eefb8bdf1542850d66d8007")


def test_incremental_updates_match_one_shot():
    rng = random.Random(5)
    for n in (0, 1, 111, 112, 127, 128, 129, 255, 256, 1000, 4097):
        m = _data(n, seed=3)
        h = sha512()
        i = 0
        while i < n:
            step = rng.choice((1, 7, 64, 127, 128, 129, 300))
            h.update(m[i : i + step])
            i += step
        assert h.digest() == hashlib.sha512(m).digest(), n
        # digest() does not consume the state; copy() forks it
        assert h.digest() == h.digest()
        c = h.copy()
        c.update(b"x")
        h.update(b"x")
        assert c.digest() == h.digest() == hashlib.sha512(m + b"x").digest()


def test_accepts_buffer_types():
    m = _data(300, seed=9)
    want = hashlib.sha512(m).digest()
    assert sha512(bytearray(m)).digest() == want
    assert sha512(memoryview(m)).digest() == want
    h = sha512(memoryview(m)[:100])
    h.update(bytearray(m[100:]))
    assert h.digest() == want
    assert sha512.digest_size == 64 and sha512.block_size == 128


MPY_LENGTHS = """
from plexnode.sha512 import sha512
def _sha_lengths():
    out = []
    for n in range(301):
        m = bytes([(i * 7 + n) & 255 for i in range(n)])
        out.append(sha512(m).hexdigest())
    return out
print(",".join(_sha_lengths()))
"""

MPY_64K = """
from plexnode.sha512 import sha512
def _sha_64k():
    m = bytes([(i * 131 + (i >> 8)) & 255 for i in range(65536)])
    h = sha512()
    for i in range(0, 65536, 1000):
        h.update(m[i:i + 1000])
    return sha512(m).hexdigest(), h.hexdigest()
print(" ".join(_sha_64k()))
"""


@pytest.mark.mpy
def test_micropython_lengths_0_to_300(mpy):
    got = mpy.run(MPY_LENGTHS).strip().split(",")
    assert len(got) == 301
    for n in range(301):
        m = bytes([(i * 7 + n) & 255 for i in range(n)])
        assert got[n] == hashlib.sha512(m).hexdigest(), n


@pytest.mark.mpy
def test_micropython_64k_message(mpy):
    one, inc = mpy.run(MPY_64K).split()
    m = bytes([(i * 131 + (i >> 8)) & 255 for i in range(65536)])
    assert one == inc == hashlib.sha512(m).hexdigest()
