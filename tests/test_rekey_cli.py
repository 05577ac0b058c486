"""`plexus group rekey` end to end against the real core on a pseudo-terminal, and `plexus ledger verify`
auditing REKEY records."""

from __future__ import annotations

import json

import clikit
import pytest
from clikit import HUB, LOST, start_node
from plexus import client as clientmod
from plexus import groupcfg
from plexus.cli import main
from plexus.crypto import HostCrypto
from plexus.ledger import Ledger
from plexwire import hostlink, msg


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    with clikit.world(tmp_path, monkeypatch, ("ana", "ben", "cai"), {"hub": HUB, "lost": LOST}) as w:
        capsys.readouterr()
        yield tmp_path, w.doc, w.vn


def _consent(port, rid, who):
    # --force: the id comes straight from the post, before any sync (the flow under test syncs at set points)
    assert main(["consent", rid, "--port", port, "--as", who, "--force"]) == 0


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
    vn2, t = start_node(tmp, doc, bytes.fromhex(sec["secret"]))
    try:
        assert vn2.core.epoch == 1 and vn2.core.secrets[1] == secret and set(vn2.core.keys) == {0, 1}
        with clientmod.HostLinkClient(vn2.port) as c:
            assert c.hello()["epoch"] == 1
    finally:
        vn2.close()
        t.join(2)
