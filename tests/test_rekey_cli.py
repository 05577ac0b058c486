"""`plexus group rekey` end to end against the real core on a pseudo-terminal, and `plexus ledger verify`
auditing REKEY records."""

from __future__ import annotations

import json
import threading
import time

import pytest
from plexus import client as clientmod
from plexus import groupcfg
from plexus.cli import main
from plexus.crypto import HostCrypto
from plexus.ledger import Ledger
from plexus.virtual import VirtualNode
from plexwire import hostlink, msg

HUB = b"\x05" * 32
LOST = b"\x06" * 32


def _start(tmp_path, doc, secret):
    vn = VirtualNode(doc, secret, HUB, tmp_path / "node.log", "hub", time_s=int(time.time()) - 1704067200)
    t = threading.Thread(target=vn.serve_forever, daemon=True)
    t.start()
    return vn, t


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    for w in ("ana", "ben", "cai"):
        assert main(["keys", "new", w]) == 0
    c = HostCrypto()
    assert main(["group", "init", "--name", "Union", "--member", "ana=ana", "--member", "ben=ben", "--member", "cai=cai",
                 "--node", "hub=" + c.public_key(HUB).hex(), "--node", "lost=" + c.public_key(LOST).hex(),
                 "--quorum", "2"]) == 0
    doc = json.loads((tmp_path / "group.json").read_text())
    sec = json.loads((tmp_path / "group.secret.json").read_text())
    vn, t = _start(tmp_path, doc, bytes.fromhex(sec["secret"]))
    capsys.readouterr()
    yield tmp_path, doc, vn
    vn.close()
    t.join(2)


def _consent(port, rid, who):
    assert main(["consent", rid, "--port", port, "--as", who]) == 0


def test_revoke_rekey_consent_verify(world, capsys):
    tmp, doc, vn = world
    port = vn.port
    roster = groupcfg.load_roster()
    lost = msg.key_id(HostCrypto().public_key(LOST))
    ana = groupcfg.member_key(roster, None, "ana")
    rec = hostlink.pack_record(ana.sign_message(roster.group_id, msg.REVOKE, {"key": lost, "reason": 1},
                                                clientmod.plexus_time()))
    with clientmod.HostLinkClient(port) as c:
        c.post(rec)
    rid = clientmod.record_id(rec).hex()
    for w in ("ana", "ben"):
        _consent(port, rid, w)
    assert vn.core.roster.get(lost).revoked
    capsys.readouterr()
    # forgetting --without: the node refuses to wrap the new key for the revoked radio
    assert main(["group", "rekey", "--port", port, "--as", "ben"]) == 4
    assert "rekey for revoked" in capsys.readouterr().err
    assert main(["group", "rekey", "--port", port, "--as", "ben", "--without", "nobody"]) == 2
    capsys.readouterr()
    assert main(["group", "rekey", "--port", port, "--as", "ben", "--without", "lost", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["epoch"] == 1 and d["nodes"] == ["hub"] and d["without"] == ["lost"] and d["node"]["accepted"]
    assert vn.core.epoch == 0  # not before the quorum
    for w in ("ana", "cai"):
        _consent(port, d["id"], w)
    assert vn.core.epoch == 1
    pending = json.loads((tmp / "group.secret.json").read_text())["pending"]
    assert pending[0]["epoch"] == 1 and bytes.fromhex(pending[0]["secret"]) == vn.core.secrets[1]
    assert json.loads((tmp / "node.log.keys.json").read_text())["epoch"] == 1  # the virtual node persisted it
    assert main(["ledger", "sync", "--port", port]) == 0
    assert main(["ledger", "verify"]) == 0
    capsys.readouterr()
    # a REKEY that wraps the new key for the revoked radio is flagged by the audit (the ledger only checks signatures)
    bad, _ = clientmod.rekey_record(ana, roster.group_id, 2, [HostCrypto().public_key(HUB), HostCrypto().public_key(LOST)])
    with Ledger(str(tmp / "ledger.sqlite")) as led:
        led.ingest([bad])
    assert main(["ledger", "verify"]) == 1
    out = capsys.readouterr().out
    assert "(rekey): rekey for revoked" in out


def test_virtual_node_restart_keeps_the_epoch(world, capsys):
    tmp, doc, vn = world
    roster = groupcfg.load_roster()
    ana = groupcfg.member_key(roster, None, "ana")
    rec, secret = clientmod.rekey_record(ana, roster.group_id, 1, [HostCrypto().public_key(HUB)])
    with clientmod.HostLinkClient(vn.port) as c:
        c.post(rec)
        assert c.hello()["epoch"] == 0
    rid = clientmod.record_id(rec).hex()
    for w in ("ana", "ben"):
        _consent(vn.port, rid, w)
    assert vn.core.epoch == 1
    vn.close()
    sec = json.loads((tmp / "group.secret.json").read_text())
    vn2, t = _start(tmp, doc, bytes.fromhex(sec["secret"]))
    try:
        assert vn2.core.epoch == 1 and vn2.core.secrets[1] == secret and set(vn2.core.keys) == {0, 1}
        with clientmod.HostLinkClient(vn2.port) as c:
            assert c.hello()["epoch"] == 1
    finally:
        vn2.close()
        t.join(2)
