"""`plexus group update`: a ROSTER update (op 3) of a member's or node's name and contact, adopted on quorum consent;
then the laptop's roster (group.json "updated", same group id) follows the ledger exactly as the node does: `group
show`, a drill's phone chain, `ledger show` and the export use the new name and contact. End to end against the
real core on a pseudo-terminal (tests/clikit.py: members ana, ben, cai, quorum 2; nodes hub and lost)."""

from __future__ import annotations

import json

import clikit
import pytest
from clikit import HUB, LOST
from plexus import groupcfg
from plexus.cli import main
from plexus.crypto import HostCrypto
from plexwire import msg

ok = clikit.ok
one_line_error = clikit.one_line_error
LOST_KID = msg.key_id(HostCrypto().public_key(LOST))


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    with clikit.world(tmp_path, monkeypatch, ("ana", "ben", "cai"), {"hub": HUB, "lost": LOST}, quorum=2) as w:
        capsys.readouterr()
        yield tmp_path, w.vn


def _adopt(capsys, port: str, rid: str, by=("ana", "ben")) -> str:
    for w in by:
        ok(capsys, "consent", rid, "--port", port, "--as", w)
    return ok(capsys, "ledger", "sync", "--port", port)


def _founding(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("added", "updated")}


def test_update_a_node_contact_then_show_drill_and_export(world, capsys, tmp_path):
    _, vn = world
    port = vn.port
    before = json.loads((tmp_path / "group.json").read_text())
    out = ok(capsys, "group", "update", "lost", "--contact", "+49 30 555 0199", "--port", port, "--as", "ana")
    rid = out.split("(id ")[1].split(")")[0]
    assert "update node lost (%s): contact (none) -> +49 30 555 0199: posted" % LOST_KID.hex() in out
    assert "plexus consent %s --port PORT --as MEMBER   (2 member consents needed)" % rid in out
    assert "plexus ledger sync --port PORT" in out
    m = msg.decode(_inner(vn, rid))
    assert (m.f["op"], m.f["key"], m.f["name"], m.f["contact"]) == (
        msg.ROSTER_UPDATE, HostCrypto().public_key(LOST), "lost", "+49 30 555 0199")
    # not adopted yet: nothing changes on the laptop; a second update of the same entry is refused meanwhile
    out = ok(capsys, "ledger", "sync", "--port", port)
    assert "ROSTER update" not in out and "updated" not in json.loads((tmp_path / "group.json").read_text())
    assert main(["group", "update", "lost", "--contact", "other", "--port", port, "--as", "ben"]) == 2
    assert "an update of lost is already waiting for consents: plexus consent %s" % rid in one_line_error(capsys)
    # before the update is adopted, a drill's phone chain has no contact for lost
    ok(capsys, "drill", "start", "DRILL 1", "--port", port, "--wait", "1s", "--as", "ana")
    rep = json.loads(ok(capsys, "drill", "report", "--json"))
    assert rep["phone_chain"] == [{"node": "lost", "holder": "", "contact": "", "state": "silent"}]
    out = _adopt(capsys, port, rid)
    assert "node lost contact +49 30 555 0199: its ROSTER update %s was adopted" % rid in out
    assert vn.core.roster.get(LOST_KID).contact == "+49 30 555 0199"  # the node applied it too
    # group.json: the founding roster (so the group id) untouched, the update kept apart
    after = json.loads((tmp_path / "group.json").read_text())
    assert _founding(after) == before
    assert after["updated"] == [{"key": HostCrypto().public_key(LOST).hex(), "name": "lost",
                                 "contact": "+49 30 555 0199", "roster": rid}]
    assert groupcfg.load_roster().group_id == vn.core.group_id == bytes.fromhex(before["group_id"])
    s = json.loads(ok(capsys, "group", "show", "--json"))
    lost = [n for n in s["nodes"] if n["name"] == "lost"][0]
    assert lost["contact"] == "+49 30 555 0199" and lost["updated_by"] == rid and s["updated"] == []
    line = [ln for ln in ok(capsys, "group", "show").splitlines() if ln.startswith("  lost ")]
    assert line == ["  %-16s %s  +49 30 555 0199" % ("lost", LOST_KID.hex())]
    # a drill now: the phone chain says whom to phone, with the new number
    out = ok(capsys, "drill", "start", "DRILL 2", "--port", port, "--wait", "1s", "--as", "ana")
    assert "+49 30 555 0199" in out
    rep = json.loads(ok(capsys, "drill", "report", "--json"))
    assert rep["phone_chain"] == [{"node": "lost", "holder": "", "contact": "+49 30 555 0199", "state": "silent"}]
    # the export's phone chains (the older drill too: the roster's current contact) and the ledger in words
    ok(capsys, "ledger", "sync", "--port", port)
    sheet = tmp_path / "wall.txt"
    ok(capsys, "ledger", "export", "--text", str(sheet))
    text = sheet.read_text()
    assert text.count("+49 30 555 0199") >= 3  # both drills' phone chains and the ROSTER record
    assert "update lost (%s) to: name lost, contact +49 30 555 0199" % LOST_KID.hex() in text
    assert "update lost (%s) to: name lost, contact +49 30 555 0199" % LOST_KID.hex() in ok(capsys, "ledger", "show")
    # the same contact again: nothing changes
    assert main(["group", "update", "lost", "--contact", "+49 30 555 0199", "--port", port, "--as", "ana"]) == 2
    assert "nothing changes: lost already has that contact" in one_line_error(capsys)


def test_rename_a_member_who_then_signs_under_the_new_name(world, capsys, tmp_path):
    _, vn = world
    port = vn.port
    d = json.loads(ok(capsys, "group", "update", "ben", "--name", "benny", "--contact", "benny@example.org",
                      "--port", port, "--as", "cai", "--json"))
    assert (d["was"], d["name"], d["contact"], d["role"], d["author"]) == (
        {"name": "ben", "contact": ""}, "benny", "benny@example.org", "member", "cai")
    out = _adopt(capsys, port, d["id"], by=("ana", "cai"))
    assert "member ben is now benny, contact benny@example.org: its ROSTER update %s was adopted" % d["id"] in out
    ben = groupcfg.load_roster().get(bytes.fromhex(d["key_id"]))
    assert (ben.name, ben.contact) == ("benny", "benny@example.org")
    node_ben = vn.core.roster.get(bytes.fromhex(d["key_id"]))
    assert (node_ben.name, node_ben.contact) == ("benny", "benny@example.org")
    s = json.loads(ok(capsys, "group", "show", "--json"))
    assert [(m["name"], m.get("contact")) for m in s["members"]] == [
        ("ana", None), ("benny", "benny@example.org"), ("cai", None)]
    # the keystore key is still called ben; the roster name benny finds it
    out = ok(capsys, "post", "hello from benny", "--port", port, "--as", "benny")
    ok(capsys, "ledger", "sync", "--port", port)
    shown = ok(capsys, "ledger", "show")
    assert "benny" in shown and "hello from benny" in shown
    # the old name is free, the new one taken; rename back and forth is an ordinary update
    assert main(["group", "update", "ben", "--contact", "x", "--port", port, "--as", "ana"]) == 2
    assert "no member or node 'ben' in the roster" in one_line_error(capsys)
    assert main(["group", "update", "ana", "--name", "benny", "--port", port, "--as", "ana"]) == 2
    assert "the name benny is already in the roster (member %s): choose another" % d["key_id"] in one_line_error(capsys)
    # a second update of the same key: it wins over the first, and the entry keeps a single "updated" line
    d2 = json.loads(ok(capsys, "group", "update", d["key_id"][:6], "--contact", "", "--port", port, "--as", "ana",
                       "--json"))
    assert (d2["name"], d2["contact"]) == ("benny", "")
    out = _adopt(capsys, port, d2["id"])
    assert "member benny contact cleared: its ROSTER update %s was adopted" % d2["id"] in out
    doc = json.loads((tmp_path / "group.json").read_text())
    assert doc["updated"] == [{"key": ben.pub.hex(), "name": "benny", "roster": d2["id"]}]
    assert vn.core.roster.get(bytes.fromhex(d["key_id"])).contact == ""


def test_the_last_adopted_update_wins_as_on_the_node(world, capsys, tmp_path):
    """Two updates of one key, adopted in the reverse of the order they were posted: the laptop follows the
    adoption order, as the node core does."""
    _, vn = world
    port = vn.port
    first = json.loads(ok(capsys, "group", "update", "hub", "--contact", "first", "--port", port, "--as", "ana",
                          "--json"))["id"]
    from plexus.client import HostLinkClient, record_id, roster_record
    from plexus.keys import load_key

    hub = groupcfg.load_roster().get(msg.key_id(HostCrypto().public_key(HUB)))
    rec = roster_record(load_key("ben"), vn.core.group_id, msg.ROSTER_UPDATE, hub.pub, "hub", "second")
    with HostLinkClient(port, timeout=3) as c:
        assert c.post(rec)["accepted"]
    second = record_id(rec).hex()
    _adopt(capsys, port, second)
    assert groupcfg.load_roster().get(hub.kid).contact == "second"
    _adopt(capsys, port, first)  # adopted last: it wins, on the node and on the laptop
    assert vn.core.roster.get(hub.kid).contact == "first"
    assert groupcfg.load_roster().get(hub.kid).contact == "first"
    doc = json.loads((tmp_path / "group.json").read_text())
    assert [(u["contact"], u["roster"]) for u in doc["updated"]] == [("first", first)]


def test_refusals_are_one_line(world, capsys):
    _, vn = world
    port = vn.port
    for argv, err in [
        (["group", "update", "dora", "--contact", "x"], "no member or node 'dora' in the roster"),
        (["group", "update", "ana"], "nothing to change: give --contact TEXT and/or --name NEWNAME"),
        (["group", "update", "ana", "--name", "ana"], "nothing changes: ana already has that name"),
        (["group", "update", "ana", "--name", "ana", "--contact", ""], "nothing changes: ana already has that name and contact"),
        (["group", "update", "ana", "--name", "hub"], "the name hub is already in the roster (node "),
        (["group", "update", "ana", "--name", "  "], "the new name is empty"),
        (["group", "update", "ana", "--contact", "x", "--as", "nobody"], "no key for 'nobody'"),
        (["group", "update", "ana", "--contact", "x" * 300], "does not fit in a message"),
    ]:
        assert main(argv + ["--port", port] + ([] if "--as" in argv else ["--as", "ana"])) == 2, argv
        assert err in one_line_error(capsys), argv
    # a revoked entry is not updated any more
    rid = json.loads(ok(capsys, "group", "revoke", "lost", "--reason", "seized", "--port", port, "--as", "ana",
                        "--json"))["id"]
    _adopt(capsys, port, rid)
    assert main(["group", "update", "lost", "--contact", "x", "--port", port, "--as", "ana"]) == 2
    assert "lost is revoked (REVOKE %s): its entry is no longer updated" % rid in one_line_error(capsys)


def _inner(vn, rid_hex: str) -> bytes:
    from plexwire import hostlink

    for _seq, mid, _kind, _ts, body in vn.core.store.since(0, 64):
        if mid == bytes.fromhex(rid_hex):
            return hostlink.unpack_record(body)[0]
    raise AssertionError("%s not in the node's store" % rid_hex)


@pytest.fixture
def emu(tmp_path, monkeypatch):
    yield from clikit.provision_emulator(tmp_path, monkeypatch)


def test_provisioning_hands_a_new_node_the_updates(world, emu, capsys):
    """A node booting from the founding group.json (nodes ignore "updated") is handed the adopted update and its
    consents, so it knows the current contacts too."""
    _, vn = world
    rid = json.loads(ok(capsys, "group", "update", "hub", "--contact", "the blue shed", "--port", vn.port, "--as", "ana",
                        "--json"))["id"]
    _adopt(capsys, vn.port, rid)
    ok(capsys, "keys", "new", "dee")
    add = json.loads(ok(capsys, "group", "add", "--member", "dee=dee", "--port", vn.port, "--as", "ana", "--json"))["id"]
    _adopt(capsys, vn.port, add)
    # an update of the added member, consented by herself: handed after her addition
    upd = json.loads(ok(capsys, "group", "update", "dee", "--contact", "dee@example.org", "--port", vn.port, "--as", "dee",
                        "--json"))["id"]
    _adopt(capsys, vn.port, upd, by=("dee", "cai"))
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--hello-timeout", "10",
                 "--name", "node-9"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "handed the node 9 roster record(s)" in out  # addition, then the two updates, each with two consents
    node = emu.node.core
    hub = node.roster.get(msg.key_id(HostCrypto().public_key(HUB)))
    dee = [e for e in node.roster.members() if e.name == "dee"][0]
    assert (hub.name, hub.contact, dee.contact) == ("hub", "the blue shed", "dee@example.org")
    assert "updated" in json.loads(emu.file("/group.json").read_text())  # the same file; nodes ignore "updated"
