"""`plexus group add`: a ROSTER addition of a node or member after `group init`, adopted on quorum consent, then
the laptop's roster (group.json "added", same group id) follows the ledger: `group show`, `group revoke`, the
ledger's signature check and provisioning see the addition. End to end against the real core on a
pseudo-terminal; provisioning against the raw-REPL emulator (as tests/test_provision.py)."""

from __future__ import annotations

import json

import clikit
import pytest
from clikit import HUB
from plexus import groupcfg
from plexus.cli import main
from plexus.crypto import HostCrypto
from plexwire import msg

NEW = b"\x07" * 32  # the seed of node-7, provisioned after the group began


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    with clikit.world(tmp_path, monkeypatch, ("ana", "ben"), {"hub": HUB}, quorum=2) as w:
        capsys.readouterr()
        yield tmp_path, w.vn


one_line_error = clikit.one_line_error
ok = clikit.ok


def _founding(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "added"}


def test_add_node_consent_sync_then_show_and_revoke(world, capsys):
    tmp, vn = world
    port = vn.port
    pub = HostCrypto().public_key(NEW)
    kid = msg.key_id(pub)
    before = json.loads((tmp / "group.json").read_text())
    out = ok(capsys, "group", "add", "--node", "node-7=%s" % pub.hex(), "--contact", "shed", "--port", port, "--as", "ana")
    rid = out.split("(id ")[1].split(")")[0]
    assert "add node node-7 (%s): posted" % kid.hex() in out
    assert "plexus consent %s --port PORT --as MEMBER   (2 member consents needed)" % rid in out
    assert "plexus ledger sync" in out and "plexus node provision" in out
    m = msg.decode(_inner(vn, rid))
    assert (m.kind, m.f["op"], m.f["key"], m.f["name"], m.f["contact"]) == (msg.ROSTER, msg.ROSTER_ADD_NODE, pub, "node-7", "shed")
    assert vn.core.roster.get(kid) is None  # posted, not adopted
    # before adoption: revoke does not know node-7; once the ledger has the ROSTER, a second add is refused
    assert main(["group", "revoke", "node-7", "--port", port, "--as", "ana"]) == 2
    assert "no member or node 'node-7'" in one_line_error(capsys)
    ok(capsys, "ledger", "sync", "--port", port)
    assert main(["group", "add", "--node", "other=%s" % pub.hex(), "--port", port, "--as", "ben"]) == 2
    assert "an addition of other is already waiting for consents: plexus consent %s" % rid in one_line_error(capsys)
    assert "node-7" not in ok(capsys, "group", "show")
    for w in ("ana", "ben"):
        ok(capsys, "consent", rid, "--port", port, "--as", w)
    assert vn.core.roster.get(kid) is not None and vn.core.roster.get(kid).role == "node"  # the node adopted it
    out = ok(capsys, "ledger", "sync", "--port", port)
    assert "node node-7 joined the roster: its ROSTER %s was adopted" % rid in out
    # the founding roster (and so the group id) is untouched; the addition is kept apart
    after = json.loads((tmp / "group.json").read_text())
    assert _founding(after) == before
    assert after["added"] == [{"role": "node", "name": "node-7", "key": pub.hex(), "contact": "shed", "roster": rid}]
    assert groupcfg.load_roster().group_id == vn.core.group_id == bytes.fromhex(before["group_id"])
    s = json.loads(ok(capsys, "group", "show", "--json"))
    n7 = [n for n in s["nodes"] if n["name"] == "node-7"]
    assert n7 and n7[0]["key_id"] == kid.hex() and n7[0]["added_by"] == rid and not n7[0]["revoked"]
    assert s["group_id"] == before["group_id"]
    assert "node-7" in ok(capsys, "group", "show")
    # now it can be revoked like any founding node
    d = json.loads(ok(capsys, "group", "revoke", "node-7", "--reason", "seized", "--port", port, "--as", "ben", "--json"))
    assert d["role"] == "node" and d["key_id"] == kid.hex() and d["node"]["accepted"]
    assert msg.decode(_inner(vn, d["id"])).f["key"] == kid
    # refusals, one line each
    assert main(["group", "add", "--node", "again=%s" % pub.hex(), "--port", port, "--as", "ana"]) == 2
    assert "that key is already in the roster, as node node-7" in one_line_error(capsys)
    other = HostCrypto().public_key(b"\x08" * 32).hex()
    assert main(["group", "add", "--node", "hub=%s" % other, "--port", port, "--as", "ana"]) == 2
    assert "the name hub is already in the roster" in one_line_error(capsys)
    assert main(["group", "add", "--member", "ana=%s" % other, "--port", port, "--as", "ana"]) == 2
    assert "the name ana is already in the roster" in one_line_error(capsys)
    assert main(["group", "add", "--node", "node-8=abcd", "--port", port, "--as", "ana"]) == 2
    assert "node node-8: key must be 64 hex digits" in one_line_error(capsys)
    assert main(["group", "add", "--member", "eve=nokey", "--port", port, "--as", "ana"]) == 2
    assert "member eve: nokey is neither 64 hex digits nor a usable key" in one_line_error(capsys)
    assert main(["group", "add", "--node", "node-8=%s" % other, "--port", port, "--as", "nobody"]) == 2
    assert "no key for 'nobody'" in one_line_error(capsys)
    assert main(["group", "add", "--node", "node-8", "--port", port, "--as", "ana"]) == 2
    assert "bad node 'node-8': write NAME=KEYHEX" in one_line_error(capsys)
    with pytest.raises(SystemExit) as ex:
        main(["group", "add", "--port", port, "--as", "ana"])
    assert ex.value.code == 2 and "one of the arguments --node --member is required" in capsys.readouterr().err


def _inner(vn, rid_hex: str) -> bytes:
    from plexwire import hostlink

    for _seq, mid, _kind, _ts, body in vn.core.store.since(0, 64):
        if mid == bytes.fromhex(rid_hex):
            return hostlink.unpack_record(body)[0]
    raise AssertionError("%s not in the node's store" % rid_hex)


def test_added_member_signs_and_the_ledger_accepts_it(world, capsys):
    tmp, vn = world
    port = vn.port
    ok(capsys, "keys", "new", "dee")
    rid = json.loads(ok(capsys, "group", "add", "--member", "dee=dee", "--contact", "dee@example.org", "--port", port,
                        "--as", "ben", "--json"))["id"]
    # dee is not a member yet: the laptop will not sign for her
    assert main(["consent", rid, "--port", port, "--as", "dee"]) == 2
    assert "key dee is not a member of group Union" in one_line_error(capsys)
    for w in ("ana", "ben"):
        ok(capsys, "consent", rid, "--port", port, "--as", w)
    d = json.loads(ok(capsys, "ledger", "sync", "--port", port, "--json"))
    assert [a["name"] for a in d["roster_added"]] == ["dee"] and d["rejected"] == []
    # the new member signs; the node and the ledger accept it (her key is in the ledger's roster now)
    ok(capsys, "post", "hello from dee", "--port", port, "--as", "dee")
    d = json.loads(ok(capsys, "ledger", "sync", "--port", port, "--json"))
    assert d["inserted"] == 1 and d["rejected"] == []
    s = json.loads(ok(capsys, "group", "show", "--json"))
    assert [(m["name"], m.get("contact"), m.get("added_by")) for m in s["members"]] == [
        ("ana", None, None), ("ben", None, None), ("dee", "dee@example.org", rid)]
    assert "quorum: 2 of 3 members" in ok(capsys, "group", "show")
    # and she can hold a mandate: the laptop names her, the node checks her eligibility against its own roster
    d = json.loads(ok(capsys, "mandate", "elect", "--role", "coordination", "--holder", "dee", "--port", port,
                      "--as", "ana", "--json"))
    assert d["node"]["accepted"] and d["holders"] == ["dee"]


def test_ledger_rechecks_records_of_a_member_it_did_not_know(world, capsys):
    """The new member's record reached the ledger in the same sync as her adoption: refused as from an unknown
    author first, taken once the roster has her."""
    tmp, vn = world
    port = vn.port
    ok(capsys, "keys", "new", "dee")
    rid = json.loads(ok(capsys, "group", "add", "--member", "dee=dee", "--port", port, "--as", "ana", "--json"))["id"]
    for w in ("ana", "ben"):
        ok(capsys, "consent", rid, "--port", port, "--as", w)
    from plexus.client import HostLinkClient, bulletin_record
    from plexus.keys import load_key

    with HostLinkClient(port, timeout=3) as c:
        assert c.post(bulletin_record(load_key("dee"), groupcfg.load_roster().group_id, "first words"))["accepted"]
    d = json.loads(ok(capsys, "ledger", "sync", "--port", port, "--json"))
    assert [a["name"] for a in d["roster_added"]] == ["dee"]
    from plexus import ledger as ledgermod

    with ledgermod.Ledger(str(tmp / "ledger.sqlite")) as led:
        assert led.rejects() == []
        assert [e.text for e in led.entries(kinds=[msg.BULLETIN])] == ["first words"]


# ---------------------------------------------------------------- provisioning a node added after init


@pytest.fixture
def emu(tmp_path, monkeypatch):
    yield from clikit.provision_emulator(tmp_path, monkeypatch)


def _provision(capsys, emu, *extra) -> str:
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--hello-timeout", "10", *extra]) == 0, \
        capsys.readouterr().err
    return capsys.readouterr().out


def test_provision_points_at_group_add_and_hands_the_additions(world, emu, capsys):
    tmp, vn = world
    out = _provision(capsys, emu, "--name", "node-7")
    key = emu.node.core.pub.hex()
    assert "add it to the roster: plexus group add --node node-7=%s --port PORT" % key in out
    assert "group init ... --node node-7=%s" % key in out  # only for a group not created yet
    ok(capsys, "keys", "new", "dee")
    r1 = json.loads(ok(capsys, "group", "add", "--member", "dee=dee", "--port", vn.port, "--as", "ana", "--json"))["id"]
    for w in ("ana", "ben"):
        ok(capsys, "consent", r1, "--port", vn.port, "--as", w)
    ok(capsys, "ledger", "sync", "--port", vn.port)  # dee is a member now: she can consent to the next addition
    r2 = json.loads(ok(capsys, "group", "add", "--node", "node-7=%s" % key, "--port", vn.port, "--as", "dee", "--json"))["id"]
    for w in ("ana", "dee"):
        ok(capsys, "consent", r2, "--port", vn.port, "--as", w)
    ok(capsys, "ledger", "sync", "--port", vn.port)
    # provisioning again: the node boots from the founding roster (same group id) and is handed the additions
    out = _provision(capsys, emu)
    assert "handed the node 6 roster record(s)" in out and "node node-7 is in the roster" in out
    assert "add it to the roster" not in out
    node = emu.node.core
    assert node.group_id == groupcfg.load_roster().group_id
    assert "added" in json.loads(emu.file("/group.json").read_text())  # the same file; nodes ignore "added"
    assert node.roster.get(msg.key_id(bytes.fromhex(key))).role == "node"
    dee = groupcfg.load_roster().members()[-1]
    assert dee.name == "dee" and node.roster.get(dee.kid).role == "member"
    # kept in the node's store: a reboot (provisioning once more) rebuilds them; nothing new to hand
    out = _provision(capsys, emu)
    assert "handed the node" not in out and emu.node.core.roster.get(dee.kid) is not None
    assert emu.node.core.roster.get(msg.key_id(bytes.fromhex(key))) is not None


@pytest.mark.parametrize("spec, needle", [
    ("../evil=" + "ab" * 32, "bad node name '../evil'"),
    ("n" * 80 + "=" + "ab" * 32, "bad node name"),
    ("jff=" + "ff" * 32, "is not a valid Ed25519 public key"),  # y >= p: not a canonical encoding
    ("j01=01" + "00" * 31, "is not a valid Ed25519 public key"),  # the neutral element: small order
    ("n9=n9", "key must be 64 hex digits (the node_key its HELLO reports)"),
    ("novalue", "bad node 'novalue': write NAME=KEYHEX"),
])
def test_add_refuses_bad_node_names_and_keys(world, capsys, spec, needle):
    _, vn = world
    count = vn.store.count
    assert main(["group", "add", "--node", spec, "--port", vn.port, "--as", "ana"]) == 2
    assert needle in one_line_error(capsys)
    assert vn.store.count == count  # nothing posted


def test_the_printed_sheet_tells_adopted_roster_changes_from_pending_ones(world, capsys):
    tmp, vn = world
    port = vn.port
    from plexus.crypto import HostCrypto

    k1, k2 = (HostCrypto().public_key(bytes([i]) * 32).hex() for i in (8, 9))
    r1 = json.loads(ok(capsys, "group", "add", "--node", "roof=" + k1, "--port", port, "--as", "ana", "--json"))["id"]
    ok(capsys, "group", "add", "--node", "cellar=" + k2, "--port", port, "--as", "ana")
    for w in ("ana", "ben"):
        ok(capsys, "consent", r1, "--port", port, "--as", w)
    ok(capsys, "ledger", "sync", "--port", port)
    sheet = tmp / "sheet.txt"
    ok(capsys, "ledger", "export", "--text", str(sheet))
    text = sheet.read_text()
    roof = text[text.index("add node roof"):]
    cellar = text[text.index("add node cellar"):]
    assert roof.split("\n")[1].startswith("    => ADOPTED: consent 2 of quorum 2")
    assert cellar.split("\n")[1].startswith("    => PENDING: consent 0 of quorum 2")
