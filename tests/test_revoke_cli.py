"""`plexus group revoke`, and the laptop's group secret after a rekey (`group rekey --commit`, promotion on
`ledger sync`, `group show`), end to end against the real core on a pseudo-terminal; provisioning after a rekey
against the raw-REPL emulator (as tests/test_provision.py)."""

from __future__ import annotations

import json

import clikit
import pytest
from clikit import HUB, LOST
from plexus import groupcfg
from plexus.cli import main
from plexus.crypto import HostCrypto
from plexwire import msg


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    with clikit.world(tmp_path, monkeypatch, ("ana", "ben", "cai"), {"hub": HUB, "lost": LOST}) as w:
        capsys.readouterr()
        yield tmp_path, w.vn


one_line_error = clikit.one_line_error
ok = clikit.ok


def test_revoke_cli_next_steps_and_errors(world, capsys):
    tmp, vn = world
    port = vn.port
    lost = msg.key_id(HostCrypto().public_key(LOST))
    out = ok(capsys, "group", "revoke", "lost", "--reason", "seized", "--port", port, "--as", "ana")
    rid = out.split("(id ")[1].split(")")[0]
    assert "revoke node lost" in out and "lost or compromised" in out
    assert "plexus consent %s" % rid in out and "plexus group rekey --without lost" in out
    stored = vn.core.store.get(bytes.fromhex(rid))
    assert stored is not None and not vn.core.roster.get(lost).revoked  # posted, not yet adopted
    # user mistakes: one line each
    assert main(["group", "revoke", "nobody", "--port", port, "--as", "ana"]) == 2
    assert "no member or node 'nobody'" in one_line_error(capsys)
    with pytest.raises(SystemExit) as ex:
        main(["group", "revoke", "lost", "--reason", "stolen", "--port", port, "--as", "ana"])
    assert ex.value.code == 2 and "invalid choice: 'stolen'" in capsys.readouterr().err
    # the ledger knows the REVOKE is waiting: no second one
    ok(capsys, "ledger", "sync", "--port", port)
    assert main(["group", "revoke", lost.hex()[:6], "--port", port, "--as", "ben"]) == 2
    assert "already waiting for consents: plexus consent %s" % rid in one_line_error(capsys)
    for w in ("ana", "ben"):
        ok(capsys, "consent", rid, "--port", port, "--as", w, "--force")
    assert vn.core.roster.get(lost).revoked
    ok(capsys, "ledger", "sync", "--port", port)
    assert main(["group", "revoke", "lost", "--port", port, "--as", "ben"]) == 2
    assert "lost is already revoked (REVOKE %s)" % rid in one_line_error(capsys)
    # a member who left: then revoking another member would leave fewer than the quorum
    d = json.loads(ok(capsys, "group", "revoke", "cai", "--reason", "left", "--port", port, "--as", "ana", "--json"))
    assert d["role"] == "member" and d["reason_code"] == 2 and d["node"]["accepted"]
    assert "plexus group rekey --port PORT" in d["next"][1]
    for w in ("ana", "ben"):
        ok(capsys, "consent", d["id"], "--port", port, "--as", w, "--force")
    ok(capsys, "ledger", "sync", "--port", port)
    assert main(["group", "revoke", "ben", "--port", port, "--as", "ana"]) == 2
    assert "would leave 1 member(s), fewer than the quorum of 2" in one_line_error(capsys)
    s = json.loads(ok(capsys, "group", "show", "--json"))
    assert {e["name"]: e["revoked"] for e in s["members"] + s["nodes"]} == {
        "ana": False, "ben": False, "cai": True, "hub": False, "lost": True}
    assert "lost (revoked)" in ok(capsys, "group", "show")


def _revoke_lost_and_rekey(capsys, port) -> dict:
    rid = json.loads(ok(capsys, "group", "revoke", "lost", "--reason", "lost", "--port", port, "--as", "ana", "--json"))["id"]
    for w in ("ana", "ben"):
        ok(capsys, "consent", rid, "--port", port, "--as", w, "--force")
    return json.loads(ok(capsys, "group", "rekey", "--without", "lost", "--port", port, "--as", "ben", "--json"))


def test_the_new_secret_becomes_current_once_the_rekey_is_adopted(world, capsys):
    tmp, vn = world
    port = vn.port
    old = groupcfg.load_secret()
    d = _revoke_lost_and_rekey(capsys, port)
    out = ok(capsys, "group", "show")
    assert "key epoch: 0; rekey to epoch 1 pending (%s)" % d["id"] in out
    # not adopted yet: --commit says so and changes nothing
    assert main(["group", "rekey", "--commit", "--port", port]) == 1
    assert "not adopted in the ledger yet" in capsys.readouterr().out
    assert groupcfg.load_secret() == old
    for w in ("ana", "cai"):
        ok(capsys, "consent", d["id"], "--port", port, "--as", w, "--force")
    assert vn.core.epoch == 1
    # the laptop learns the adoption through the ledger sync
    out = ok(capsys, "ledger", "sync", "--port", port)
    assert "rekey %s adopted: the group secret of epoch 1 is now current" % d["id"] in out
    assert groupcfg.load_secret() == (vn.core.secrets[1], 1)
    f = json.loads((tmp / "group.secret.json").read_text())
    assert "pending" not in f and f["previous"] == [{"epoch": 0, "secret": old[0].hex()}] and f["rekey"] == d["id"]
    assert (tmp / "group.secret.json").stat().st_mode & 0o777 == 0o600
    s = json.loads(ok(capsys, "group", "show", "--json"))
    assert s["epoch"] == 1 and s["pending_rekeys"] == []
    assert main(["group", "rekey", "--commit"]) == 2
    assert "no pending rekey" in one_line_error(capsys)
    # the next rekey builds on the new epoch
    d2 = json.loads(ok(capsys, "group", "rekey", "--without", "lost", "--port", port, "--as", "ben", "--json"))
    assert d2["epoch"] == 2
    for w in ("ana", "ben"):
        ok(capsys, "consent", d2["id"], "--port", port, "--as", w, "--force")
    out = ok(capsys, "group", "rekey", "--commit", "--port", port)  # syncs the ledger, then promotes
    assert "epoch 2 is now current" in out and groupcfg.load_secret() == (vn.core.secrets[2], 2)


def test_group_show_promotes_from_the_ledger(world, capsys):
    tmp, vn = world
    d = _revoke_lost_and_rekey(capsys, vn.port)
    for w in ("ana", "cai"):
        ok(capsys, "consent", d["id"], "--port", vn.port, "--as", w, "--force")
    from plexus import ledger as ledgermod
    from plexus.client import HostLinkClient

    with ledgermod.Ledger(str(tmp / "ledger.sqlite"), groupcfg.load_roster()) as led, HostLinkClient(vn.port) as c:
        ledgermod.sync(c, led)  # the library sync: the secret file is not touched
    assert groupcfg.load_secret()[1] == 0
    out = ok(capsys, "group", "show")
    assert "epoch 1 is now current" in out and "key epoch: 1" in out
    assert groupcfg.load_secret() == (vn.core.secrets[1], 1)
    # a member laptop with the roster and the ledger but without the group secret still sees the revocation
    (tmp / "group.secret.json").rename(tmp / "elsewhere.json")
    s = json.loads(ok(capsys, "group", "show", "--json"))
    assert s["epoch"] is None and [n["revoked"] for n in s["nodes"]] == [False, True]


# ---------------------------------------------------------------- provisioning after a rekey (raw-REPL emulator)


@pytest.fixture
def emu(tmp_path, monkeypatch):
    yield from clikit.provision_emulator(tmp_path, monkeypatch)


def test_provision_after_a_rekey_gives_the_new_epoch(world, emu, capsys):
    tmp, vn = world
    d = _revoke_lost_and_rekey(capsys, vn.port)
    for w in ("ana", "cai"):
        ok(capsys, "consent", d["id"], "--port", vn.port, "--as", w, "--force")
    from plexus import ledger as ledgermod
    from plexus.client import HostLinkClient

    with ledgermod.Ledger(str(tmp / "ledger.sqlite"), groupcfg.load_roster()) as led, HostLinkClient(vn.port) as c:
        ledgermod.sync(c, led)
    assert groupcfg.load_secret()[1] == 0  # not promoted yet: provisioning checks the ledger itself
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--hello-timeout", "10",
                 "--name", "new"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "not adopted" not in out
    ks = json.loads(emu.file("/group.secret.json").read_text())
    assert (bytes.fromhex(ks["secret"]), ks["epoch"]) == (vn.core.secrets[1], 1)
    with HostLinkClient(emu.port, timeout=3) as c:
        assert c.hello()["epoch"] == 1  # the new node's core runs in the group's current epoch
    # a rekey not adopted yet: the node gets the current key, the user is told to provision again later
    d2 = json.loads(ok(capsys, "group", "rekey", "--without", "lost", "--port", vn.port, "--as", "ben", "--json"))
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--hello-timeout", "10"]) == 0
    assert "rekey %s to epoch 2 is not adopted" % d2["id"] in capsys.readouterr().out
    assert json.loads(emu.file("/group.secret.json").read_text())["epoch"] == 1
    # the node adopted that rekey before the laptop heard of it: provisioning never moves its key file back
    ahead = {"v": 1, "group_id": ks["group_id"], "secret": json.loads((tmp / "group.secret.json").read_text())["pending"][0]["secret"],
             "epoch": 2, "prev_secret": ks["secret"], "prev_epoch": 1, "grace_end": 123}
    emu.file("/group.secret.json").write_text(json.dumps(ahead))
    assert main(["node", "provision", "--board", "heltec_v3", "--port", emu.port, "--hello-timeout", "10"]) == 0
    capsys.readouterr()
    assert json.loads(emu.file("/group.secret.json").read_text()) == ahead


def test_rekey_leaves_out_a_revoked_node_without_being_told(world, capsys):
    """Once lost's REVOKE is adopted (in the synced ledger), `group rekey` never wraps the new key for it, even
    without --without (every node would refuse a REKEY for a revoked key), and says so."""
    _, vn = world
    port = vn.port
    rid = json.loads(ok(capsys, "group", "revoke", "lost", "--port", port, "--as", "ana", "--json"))["id"]
    ok(capsys, "ledger", "sync", "--port", port)
    for w in ("ana", "ben"):
        ok(capsys, "consent", rid, "--port", port, "--as", w)
    ok(capsys, "ledger", "sync", "--port", port)
    assert main(["group", "rekey", "--port", port, "--as", "ben", "--json"]) == 0
    cap = capsys.readouterr()
    d = json.loads(cap.out)
    assert d["without"] == ["lost"] and d["nodes"] == ["hub"] and d["node"]["accepted"]
    assert "note: lost is revoked: left out of the new key (no need for --without)" in cap.err
