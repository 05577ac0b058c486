"""The node core from its .mpy files under real MicroPython passes the shared scenarios, with the same outcome as CPython."""

import json
import tempfile
from pathlib import Path

import pytest
import shared_mesh

SRC = (Path(__file__).resolve().parent / "shared_mesh.py").read_text()

EXPECT = {
    "scenario_line": lambda r: r["holders"] == list(range(7)) and r["hops_at_end"] == 6,
    "scenario_gate": lambda r: dict(r["drops"]) == {"bad_signature": 1, "duplicate": 1, "foreign": 1} and r["stored"] == 1,
    "scenario_drill": lambda r: r["tally"] == [["n1", "reached", 1], ["n2", "reached", 2], ["n3", "confirmed", 3]],
    # nothing crosses the cut; once healed, everything reaches everyone (by anti-entropy)
    "scenario_partition": lambda r: set(r["before"][0]) <= {0, 1} and set(r["before"][1]) <= {2, 3}
    and r["after"] == [[0, 1, 2, 3], [0, 1, 2, 3]],
    "scenario_hostlink": lambda r: r["n"] == 3 and r["more"] is False and r["texts"] == ["b0", "b1", "b2"],
    "scenario_rekey": lambda r: r == {"revoked": [True, True, True], "before_consent": [0, 0, 0, 0], "epochs": [1, 1, 0, 0],
                                      "bulletin": [0, 1], "after_sync": [0, 1, 2], "epochs_after": [1, 1, 1, 0],
                                      "seized_foreign": True, "seized_no_entry": 1, "seized_post": [],
                                      "seized_not_believed": r["seized_not_believed"],
                                      "reboot": [1, [0, 1], True, True],
                                      "reboot_grace": [105000, [0, 1], [1]]} and sum(r["seized_not_believed"]) >= 1,  # n1 may be transmitting (half duplex)
    "scenario_governance": lambda r: r == {"rigged": "rigged draw", "before_quorum": "no mandate", "holder": True,
                                           "other": "no mandate", "expired": "no mandate"},
    "scenario_mandate_rules": lambda r: r == {"elect_capped": "ineligible holder", "elect_uncapped": True,
                                              "lot_capped_with_ana": "rigged draw", "lot_fair": True,
                                              "lot_holders": ["ben", "cai"], "before_quorum": "no mandate",
                                              "after_quorum": True, "handover": True,
                                              "handover_wrong_role": "bad handover", "handover_by_node": "not a member"},
}


def _cpython(name):
    with tempfile.TemporaryDirectory() as d:
        return json.loads(json.dumps(getattr(shared_mesh, name)(d)))


@pytest.mark.parametrize("name", shared_mesh.SCENARIOS)
def test_shared_scenario_cpython(name):
    r = _cpython(name)
    assert EXPECT[name](r), r


@pytest.mark.mpy
@pytest.mark.parametrize("name", shared_mesh.SCENARIOS)
def test_shared_scenario_micropython_matches_cpython(mpy, name):
    root = "/mesh_%s" % name
    got = mpy.eval_json(SRC + "\nimport os\ntry:\n    os.mkdir(%r)\nexcept OSError:\n    pass\n_res = %s(%r)" % (root, name, root), "_res")
    assert EXPECT[name](got), got
    assert got == _cpython(name)  # same code, same seeds, same clock: the same outcome on both interpreters
