"""FRAME_IN (SPEC s.7.2), the host-link op a bridge injects frames with: the node core on CPython and, from its
.mpy files, under real MicroPython handles the frame as if heard from an unknown transmitter."""

import json
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SCENARIO = '''

def scenario_frame_in(root):
    m = MiniMesh(2, [], root)
    a, b = m.nodes[0], m.nodes[1]
    a.post_bulletin("over the bridge", 0)
    rec = a.store.since(0, 1)[0][4]
    inner = hostlink.unpack_record(rec)[0]
    fr = bytearray(a.keys[0].seal(inner, 7))
    fr[3] = 0x12
    fr[4] = 0x34
    ops = []
    for k, body in enumerate([bytes(fr), bytes(fr), b"short", bytes(30)]):
        b.host_request(hostlink.encode(hostlink.FRAME_IN, k + 1, body), 10)
        m.drain(1)
        line = [e for e in m.events[1] if e[0] == "host"][-1][1]
        ops.append(hostlink.decode_line(line.strip())[0])
    return {"stored": b.store.count, "ops": ops, "neighbours": len(b.nbr), "drops": sorted(b.drops.items())}
'''

SRC = (HERE / "shared_mesh.py").read_text() + SCENARIO

# stored once; replies FRAME_IN|0x80 twice (the copy is a counted duplicate), ERROR for a 5-byte body, and a
# reply for 30 bytes of zeros (version 0: dropped and counted like a radio frame); RLY 0x1234 never became a
# neighbour
EXPECT = {"stored": 1, "ops": [0x88, 0x88, 0xFF, 0x88], "neighbours": 0, "drops": [["duplicate", 1], ["version", 1]]}


def test_frame_in_cpython():
    ns: dict = {}
    exec(compile(SRC, "shared_mesh_frame_in", "exec"), ns)
    with tempfile.TemporaryDirectory() as d:
        got = json.loads(json.dumps(ns["scenario_frame_in"](d)))
    assert got == EXPECT


@pytest.mark.mpy
def test_frame_in_micropython(mpy):
    root = "/mesh_frame_in"
    got = mpy.eval_json(SRC + "\nimport os\ntry:\n    os.mkdir(%r)\nexcept OSError:\n    pass\n_res = scenario_frame_in(%r)"
                        % (root, root), "_res")
    assert got == EXPECT
