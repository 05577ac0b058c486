"""The rekey grace window survives a reboot (SPEC.md s.8.4): the node persists the window's end in Plexus time
with its keys and continues it once it knows the time again, instead of granting the old key 72 hours more."""

from __future__ import annotations

import json
import os
import random

from corekit import CRYPTO
from plexnode import app as appmod
from plexnode.core import Node
from plexnode.store import Store
from plexwire import group, msg
from test_rekey import T0, consent_rec, full_mesh, post, rekey_rec, revoke

GRACE = 259200
H = bytes.fromhex


def _switched(tmp_path):
    """A 3-node mesh (clocks known) where node 0 moved to epoch 1; its persisted key state."""
    m = full_mesh(3)
    revoke(m, 2)
    saved = {}
    m.nodes[0].on_keys = lambda nd: saved.update(nd.key_state())
    rec, secret = rekey_rec(m, [0, 1])
    ok, rid = post(m, 0, rec)
    switch_s = m.nodes[0].now_s(m.now)
    for w in ("ana", "ben"):
        post(m, 0, consent_rec(m, w, rid, T0 + 101))
    m.run(30)
    assert saved["epoch"] == 1
    return m, saved, switch_s


def _boot(m, tmp_path, saved, now_ms, cfg=None):
    """A fresh core from the device's key file, as plexnode.app boots it."""
    root = str(tmp_path)
    for name, d in (("config.json", {"name": "n0"}), ("group.json", m.doc),
                    ("group.secret.json", {"v": 1, "secret": m.secret.hex(), "epoch": 0})):
        with open(os.path.join(root, name), "w") as f:
            json.dump(d, f)
    with open(os.path.join(root, "group.secret.json"), "w") as f:
        json.dump(dict(saved, v=1), f)
    _, _, sec, epoch, _ = appmod.load_config(root)
    prev = appmod.load_prev_key(root)
    store = Store(os.path.join(root, "boot.log"), 64 * 1024, governance_kinds=msg.GOVERNANCE_KINDS)
    c = {"name": "n0", "beacon_s": 0}
    c.update(cfg or {})
    return Node(c, group.Roster(m.doc), sec, m.seeds["n0"], store, random.Random(1), CRYPTO, now_ms, epoch, prev)


def test_the_switch_time_is_persisted_with_the_keys(tmp_path):
    m, saved, switch_s = _switched(tmp_path)
    assert switch_s <= saved["grace_end"] - GRACE <= switch_s + 40
    root = str(tmp_path)
    with open(os.path.join(root, "group.secret.json"), "w") as f:
        json.dump({"v": 1, "secret": m.secret.hex(), "epoch": 0}, f)
    appmod.save_keys(root, m.nodes[0])
    assert appmod.load_prev_key(root)[3] == saved["grace_end"]


def test_a_reboot_continues_the_window_once_the_time_is_known(tmp_path):
    m, saved, _ = _switched(tmp_path)
    end = saved["grace_end"]
    # rebooted 70 hours after the switch, clock set at boot (host link): 2 hours of the window are left
    nd = _boot(m, tmp_path, saved, 5000, {"time": end - 7200})
    assert nd.epoch == 1 and set(nd.keys) == {0, 1}
    assert nd.get_timer() <= 5000 + 7200 * 1000
    nd.handle_timer(5000 + 7199 * 1000)
    assert set(nd.keys) == {0, 1}
    nd.handle_timer(5000 + 7200 * 1000)
    assert set(nd.keys) == {1}  # not 72 hours more
    assert "grace_end" not in nd.key_state()
    nd.store.close()


def test_without_a_clock_the_window_runs_from_boot_until_the_time_is_learnt(tmp_path):
    m, saved, _ = _switched(tmp_path)
    end = saved["grace_end"]
    nd = _boot(m, tmp_path, saved, 0)  # no clock: the window cannot be measured, so it is not cut short
    nd.handle_timer(3600 * 1000)
    assert set(nd.keys) == {0, 1}
    nd.set_time(end - 600, 3600 * 1000)  # the host link (or three nodes' beacons) tells the time
    nd.handle_timer(3600 * 1000 + 599 * 1000)
    assert set(nd.keys) == {0, 1}
    nd.handle_timer(3600 * 1000 + 600 * 1000)
    assert set(nd.keys) == {1}
    nd.store.close()
    # a clock set past the window's end ends it at once; one set far before it never extends it beyond 72 h
    nd = _boot(m, tmp_path, saved, 0)
    nd.set_time(end + 5, 10)
    nd.handle_timer(11)
    assert set(nd.keys) == {1}
    nd.store.close()
    nd = _boot(m, tmp_path, saved, 0, {"time": end - 10 * GRACE})
    assert nd.get_timer() <= GRACE * 1000
    nd.store.close()


def test_a_switch_without_a_clock_fixes_the_end_when_the_time_is_learnt(tmp_path):
    m, saved, _ = _switched(tmp_path)
    old = dict(saved)
    old.pop("grace_end")  # a key file written before the node knew the time (or by an older firmware)
    nd = _boot(m, tmp_path, old, 0)
    got = {}
    nd.on_keys = lambda n: got.update(n.key_state())
    nd.set_time(T0 + 5000, 3600 * 1000)  # an hour after boot
    assert got["grace_end"] == T0 + 5000 + GRACE - 3600 and got["epoch"] == 1
    assert nd.grace_end == got["grace_end"]
    nd.set_time(T0 + 5000 + 60, 3660 * 1000)  # a later clock set on the next connection: nothing rewritten
    assert nd.get_timer() <= 3600 * 1000 + (GRACE - 3600) * 1000
    nd.store.close()
