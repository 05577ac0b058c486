"""Member keys (keystore, 0600, Ed25519) and the group roster/secret files, library and CLI."""

import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fakenode import MY_COMMANDS, run_cli
from plexus import groupcfg, keys
from plexus.crypto import HostCrypto
from plexwire import group as pgroup
from plexwire import msg


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_new_key_file_is_private_and_signs(home):
    k = keys.new_key("ana")
    p = home / "keys" / "ana.key"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    doc = json.loads(p.read_text())
    assert doc["public"] == k.pub_hex and len(bytes.fromhex(doc["seed"])) == 32
    Ed25519PublicKey.from_public_bytes(k.pub).verify(k.sign(b"hello"), b"hello")
    again = keys.load_key("ana")
    assert again.pub == k.pub and again.kid == msg.key_id(k.pub)


def test_keystore_refuses_overwrite_bad_names_and_open_permissions(home):
    keys.new_key("ana")
    with pytest.raises(keys.KeyStoreError, match="already exists"):
        keys.new_key("ana")
    for bad in ("", "../x", "a/b", ".hidden", "x" * 65):
        with pytest.raises(keys.KeyStoreError, match="bad key name"):
            keys.new_key(bad)
    os.chmod(home / "keys" / "ana.key", 0o644)
    with pytest.raises(keys.KeyStoreError, match="chmod 600"):
        keys.load_key("ana")
    with pytest.raises(keys.KeyStoreError, match="no key named"):
        keys.load_key("zed")


def test_keystore_override_beats_plexus_home(home, tmp_path):
    other = tmp_path / "elsewhere"
    keys.new_key("ben", other)
    assert (other / "ben.key").exists() and not (home / "keys" / "ben.key").exists()
    assert [k.name for k in keys.list_keys(other)] == ["ben"]
    assert keys.list_keys() == []


def test_group_init_writes_roster_and_separate_secret(home):
    a = keys.new_key("ana")
    b = keys.new_key("ben")
    hexkey = keys.Key("chi", b"\x09" * 32).pub_hex
    node = keys.Key("n1", b"\x0a" * 32).pub_hex
    doc = groupcfg.init_group("Riverside", ["ana=ana", "ben=%s" % b.pub_hex, "chi=%s" % hexkey], ["hall=%s" % node],
                              quorum=2)
    r = pgroup.Roster(json.loads((home / "group.json").read_text()))
    assert r.group_id.hex() == doc["group_id"]
    assert r.quorum == 2 and {e.name for e in r.members()} == {"ana", "ben", "chi"}
    assert [e.name for e in r.nodes()] == ["hall"] and r.get(a.kid).pub == a.pub
    sp = home / "group.secret.json"
    sec = json.loads(sp.read_text())
    assert stat.S_IMODE(sp.stat().st_mode) == 0o600
    assert len(bytes.fromhex(sec["secret"])) == 32 and sec["epoch"] == 0 and sec["group_id"] == doc["group_id"]
    assert sec["secret"] not in (home / "group.json").read_text()
    assert groupcfg.load_secret() == (bytes.fromhex(sec["secret"]), 0)
    with pytest.raises(groupcfg.GroupError, match="--force"):
        groupcfg.init_group("Riverside", ["ana=ana"])


def test_group_quorum_rules_and_mistakes(home):
    keys.new_key("ana")
    specs = ["m%d=%s" % (i, keys.Key("m%d" % i, bytes([i + 1]) * 32).pub_hex) for i in range(4)]
    assert pgroup.Roster(groupcfg.make_group("g", specs, fraction="1/2")).quorum == 3  # more than half of 4
    assert pgroup.Roster(groupcfg.make_group("g", specs, fraction="2/3")).quorum == 3
    assert pgroup.Roster(groupcfg.make_group("g", specs)).quorum == 3
    with pytest.raises(groupcfg.GroupError, match="bad fraction"):
        groupcfg.make_group("g", specs, fraction="half")
    with pytest.raises(groupcfg.GroupError, match="between 0 and 1"):
        groupcfg.make_group("g", specs, fraction="3/2")
    with pytest.raises(groupcfg.GroupError, match="quorum"):
        groupcfg.make_group("g", specs, quorum=5)
    with pytest.raises(groupcfg.GroupError, match="neither 64 hex digits"):
        groupcfg.make_group("g", ["x=nokey"])
    with pytest.raises(groupcfg.GroupError, match="NAME=KEYHEX"):
        groupcfg.make_group("g", ["justaname"])
    with pytest.raises(groupcfg.GroupError, match="also given"):
        groupcfg.make_group("g", [specs[0], "other=" + specs[0].split("=")[1]])


def test_member_key_selection(home):
    doc = groupcfg.init_group("g", ["ana=" + keys.new_key("ana").pub_hex, "ben=" + keys.Key("b", b"\x02" * 32).pub_hex])
    r = pgroup.Roster(doc)
    assert groupcfg.member_key(r).name == "ana"  # the only member key in the keystore
    keys.new_key("stranger")
    assert groupcfg.member_key(r).name == "ana"  # non-members are not candidates
    with pytest.raises(groupcfg.GroupError, match="not a member"):
        groupcfg.member_key(r, name="stranger")
    keys.new_key("ben2", seed=b"\x02" * 32)
    with pytest.raises(groupcfg.GroupError, match="choose one with --as"):
        groupcfg.member_key(r)
    assert groupcfg.member_key(r, name="ben").name == "ben2"  # roster member name -> the keystore key with that pub


def test_cli_keys_and_group(home, monkeypatch, capsys):
    rc, out, err = run_cli(["keys", "new", "ana", "--json"], monkeypatch, capsys)
    assert rc == 0 and json.loads(out)["name"] == "ana"
    run_cli(["keys", "new", "ben"], monkeypatch, capsys)
    rc, out, _ = run_cli(["keys", "list", "--json"], monkeypatch, capsys)
    assert [k["name"] for k in json.loads(out)] == ["ana", "ben"]
    rc, out, _ = run_cli(["keys", "export", "ana"], monkeypatch, capsys)
    assert rc == 0 and out.strip() == keys.load_key("ana").pub_hex
    rc, out, _ = run_cli(["keys", "export", "ana", "--roster"], monkeypatch, capsys)
    assert json.loads(out) == {"name": "ana", "key": keys.load_key("ana").pub_hex}
    rc, out, err = run_cli(["group", "init", "--name", "Tenants", "--member", "ana=ana", "--member", "ben=ben",
                            "--fraction", "1/2", "--json"], monkeypatch, capsys)
    assert rc == 0, err
    gid = json.loads(out)["group_id"]
    rc, out, _ = run_cli(["group", "show", "--json"], monkeypatch, capsys)
    s = json.loads(out)
    assert s["group_id"] == gid and s["quorum"] == 2 and [m["name"] for m in s["members"]] == ["ana", "ben"]
    rc, out, _ = run_cli(["group", "show"], monkeypatch, capsys)
    assert "quorum: 2 of 2" in out and gid in out


@pytest.mark.parametrize("argv, needle", [
    (["keys", "export", "nobody"], "no key named"),
    (["keys", "new", "../evil"], "bad key name"),
    (["group", "show", "--group", "/nonexistent/g.json"], "plexus group init"),
    (["group", "init", "--name", "g", "--member", "a=zz"], "neither 64 hex"),
    (["group", "init", "--name", "g", "--member", "a=" + HostCrypto().public_key(b"\x01" * 32).hex(), "--fraction", "x"],
     "bad fraction"),
    (["group", "init", "--name", "g", "--member", "a=" + "ab" * 32], "is not a valid Ed25519 public key"),
])
def test_cli_user_mistakes_are_one_line(home, monkeypatch, capsys, argv, needle):
    rc, out, err = run_cli(argv, monkeypatch, capsys)
    assert rc != 0
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_every_command_has_help(home, monkeypatch, capsys):
    from plexus import cli

    for name in MY_COMMANDS:
        rc, out, _ = run_cli([name, "--help"], monkeypatch, capsys)
        assert rc == 0 and "usage: plexus %s" % name in out
        mod = cli._load(MY_COMMANDS[name][0])
        for verb in getattr(mod, "SUBCOMMANDS", {}):
            rc, out, _ = run_cli([name, verb, "--help"], monkeypatch, capsys)
            assert rc == 0 and "usage: plexus %s %s" % (name, verb) in out
