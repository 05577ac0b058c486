"""HostLinkClient over real pyserial against a fake node on a pty; `plexus post` / `plexus consent`."""

import json
import os

import pytest
import serial
from fakenode import FakeNode, bulletin, make_group, record_id, run_cli
from plexus import client as clientmod
from plexus import keys
from plexus.client import HostLinkClient, LinkError, NodeError
from plexwire import hostlink, msg


@pytest.fixture
def group():
    return make_group(3)


@pytest.fixture
def node(group):
    doc, roster, ks = group
    n = FakeNode(roster, ks["node-a"].pub)
    yield n
    n.close()


def test_hello_status_and_request_ids(node, group):
    with HostLinkClient(node.port, timeout=1) as c:
        h = c.hello()
        assert h["node_key"] == node.node_pub.hex() and h["group_id"] == group[1].group_id.hex()
        assert c.status()["stored"] == 0
        rop, body = c.request(hostlink.HELLO)
        assert rop == hostlink.HELLO | hostlink.REPLY and json.loads(body)["name"] == "fake-1"
    ids = [req for _, req in node.requests]
    assert len(set(ids)) == len(ids) and 0 not in ids


def test_log_lines_skipped_and_events_queued(node):
    with HostLinkClient(node.port, timeout=1) as c:
        node.log_line("I (1234) plexnode: booting")
        node.push_event({"event": "message", "id": "ab" * 16, "text": "hi"})
        node.log_line("some ~garbage~ that is not a frame")
        assert c.hello()["name"] == "fake-1"
        ev = c.events(wait=1.0)
        assert ev == [(hostlink.EVENT, {"event": "message", "id": "ab" * 16, "text": "hi"})]
        assert any(b"booting" in line for line in c.log)
        assert c.events() == []
        node.push_event({"event": "alert", "real": False})
        assert c.events(wait=1.0)[0][1]["event"] == "alert"


def test_idempotent_request_is_retried(node):
    with HostLinkClient(node.port, timeout=0.3, retries=2) as c:
        node.mute = 2
        assert c.status()["name"] == "fake-1"
        assert len(node.requests) == 3


def test_non_idempotent_request_is_not_retried_and_fails_clearly(node, group):
    doc, roster, ks = group
    with HostLinkClient(node.port, timeout=0.3, retries=3) as c:
        node.mute = 1
        with pytest.raises(LinkError, match="no answer from the node.*op 0x03.*1 tries"):
            c.post(bulletin(ks["ana"], roster.group_id, "hello"))
        assert len(node.requests) == 1
        node.mute = 10
        with pytest.raises(LinkError, match="4 tries"):
            c.hello()


def test_stale_reply_is_not_taken_for_ours(node):
    with HostLinkClient(node.port, timeout=1) as c:
        # a reply to some other request id sitting in the buffer
        other = (c._req + 100) % 0xFFFF + 1
        os.write(node.master, hostlink.encode(hostlink.HELLO | hostlink.REPLY, other, b'{"name": "stale"}'))
        assert c.hello()["name"] == "fake-1"


def test_error_reply_raises_node_error(node, group):
    doc, roster, ks = group
    rec = bulletin(ks["ana"], roster.group_id, "hello")
    bad = bytearray(rec)
    bad[-1] ^= 1  # breaks the signature
    with HostLinkClient(node.port, timeout=1) as c:
        with pytest.raises(NodeError, match="bad signature"):
            c.post(bytes(bad))
        assert c.post(rec)["accepted"] is True
        with pytest.raises(NodeError, match="duplicate"):
            c.post(rec)
        rop, body = c.request(0x42)
        assert rop == hostlink.ERROR and json.loads(body) == {"error": "unknown op"}


def test_loop_url_and_unopenable_port():
    # loop:// echoes our own request back: a request is not a reply, so nothing answers
    with HostLinkClient("loop://", timeout=0.2, retries=1) as c:
        with pytest.raises(LinkError, match="no answer"):
            c.hello()
    with pytest.raises(LinkError, match="cannot open"):
        HostLinkClient("/dev/does-not-exist-plexus", timeout=0.2)


def test_wraps_an_open_serial_object(node):
    s = serial.serial_for_url(node.port, baudrate=115200, timeout=0.05)
    c = HostLinkClient(s, timeout=1)
    assert c.hello()["name"] == "fake-1"
    c.close()
    assert s.is_open  # not ours to close
    s.close()


def test_sync_pages_through_records(node, group):
    doc, roster, ks = group
    recs = [bulletin(ks["ben"], roster.group_id, "b%d" % i, 100 + i) for i in range(150)]
    for r in recs:
        node.add(r)
    with HostLinkClient(node.port, timeout=1) as c:
        got = []
        cur = 0
        while True:
            nxt, more, page = c.sync(cur, 64)
            assert len(page) <= 64 and all(s > cur for s, _ in page)
            got += [r for _, r in page]
            cur = nxt
            if not more:
                break
    assert got == recs


# ---- records built on the laptop


def test_bulletin_record_short_long_and_gap(group):
    doc, roster, ks = group
    k = ks["ana"]
    short = clientmod.bulletin_record(k, roster.group_id, "x" * 154, decision=True, time_s=5)
    inner, extra = hostlink.unpack_record(short)
    m = msg.decode(inner)
    assert m.kind == msg.BULLETIN and m.f["flags"] == msg.BULLETIN_DECISION and extra == b"" and m.time == 5
    text = "Minutes: " + "the assembly agreed to meet weekly. " * 10
    long = clientmod.bulletin_record(k, roster.group_id, text)
    inner, extra = hostlink.unpack_record(long)
    m = msg.decode(inner)
    assert m.kind == msg.BULLETIN_LONG and extra == text.encode() and msg.check_long_text(m, extra)
    mid = clientmod.bulletin_record(k, roster.group_id, "y" * 180)  # 155..214 bytes: one fragment
    inner, extra = hostlink.unpack_record(mid)
    m = msg.decode(inner)
    assert m.kind == msg.BULLETIN_LONG and m.f["nfrag"] == 1 and extra == b"y" * 180
    with pytest.raises(clientmod.RecordError, match="at most 4608"):
        clientmod.bulletin_record(k, roster.group_id, "z" * 5000)
    with pytest.raises(clientmod.RecordError, match="empty"):
        clientmod.bulletin_record(k, roster.group_id, "")


@pytest.fixture
def cli_home(tmp_path, monkeypatch, group):
    doc, roster, ks = group
    home = tmp_path / "home"
    monkeypatch.setenv("PLEXUS_HOME", str(home))
    (home).mkdir()
    (home / "group.json").write_text(json.dumps(doc))
    keys.new_key("ana", seed=ks["ana"].seed)
    keys.new_key("ben", seed=ks["ben"].seed)
    return home


def test_cli_post_and_consent_reach_the_node(cli_home, node, group, monkeypatch, capsys):
    doc, roster, ks = group
    rc, out, err = run_cli(["post", "Rent strike vote on Sunday", "--port", node.port, "--decision", "--as", "ana",
                            "--json"], monkeypatch, capsys)
    assert rc == 0, err
    res = json.loads(out)
    assert res["node"]["accepted"] and len(node.store) == 1
    inner, _ = hostlink.unpack_record(node.store[0][1])
    m = msg.decode(inner)
    assert m.author == ks["ana"].kid and m.f["text"] == "Rent strike vote on Sunday" and m.f["flags"] == 1
    assert res["id"] == msg.message_id(inner).hex()
    assert abs(m.time - clientmod.plexus_time()) < 5
    assert abs(node.config["time"] - clientmod.plexus_time()) < 5  # the node's clock was set on connecting
    long_text = "Long minutes. " * 40
    rc, out, err = run_cli(["post", long_text, "--port", node.port, "--as", "ben"], monkeypatch, capsys)
    assert rc == 0, err
    inner, extra = hostlink.unpack_record(node.store[1][1])
    assert msg.decode(inner).kind == msg.BULLETIN_LONG and extra == long_text.encode()
    rc, out, err = run_cli(["ledger", "sync", "--port", node.port, "--no-progress"], monkeypatch, capsys)
    assert rc == 0, err  # consent finds its target in the local ledger
    rc, out, err = run_cli(["consent", res["id"], "--port", node.port, "--stance", "block", "--as", "ben"],
                           monkeypatch, capsys)
    assert rc == 0, err
    assert "block on %s" % res["id"] in out
    c = msg.decode(hostlink.unpack_record(node.store[2][1])[0])
    assert c.kind == msg.CONSENT and c.f["target"].hex() == res["id"] and c.f["stance"] == msg.STANCE_BLOCK


@pytest.mark.parametrize("argv, needle, code", [
    (["post", "hi", "--port", "/dev/does-not-exist-plexus", "--as", "ana"], "cannot open", 3),
    (["post", "hi", "--port", "PORT"], "choose one with --as", 2),
    (["post", "y" * 5000, "--port", "PORT", "--as", "ana"], "at most 4608", 2),
    (["post", "hi", "--port", "PORT", "--as", "nobody"], "no key for", 2),
    (["consent", "abcd", "--port", "PORT", "--as", "ana"], "no message abcd on the node", 2),
    (["consent", "zz" * 16, "--port", "PORT", "--as", "ana"], "not a hex message id", 2),
])
def test_cli_post_mistakes_are_one_line(cli_home, node, monkeypatch, capsys, argv, needle, code):
    argv = [node.port if a == "PORT" else a for a in argv]
    rc, out, err = run_cli(argv, monkeypatch, capsys)
    assert rc == code and needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_post_refused_by_node_is_one_line(cli_home, node, group, monkeypatch, capsys):
    doc, roster, ks = group
    node.checker.pubs.pop(ks["ana"].kid)  # the node does not know ana
    rc, out, err = run_cli(["post", "hi", "--port", node.port, "--as", "ana"], monkeypatch, capsys)
    assert rc == 4 and "the node refused: unknown author" in err and len(err.strip().splitlines()) == 1


def test_consent_resolves_a_prefix_from_the_ledger(cli_home, node, group, monkeypatch, capsys):
    doc, roster, ks = group
    rec = bulletin(ks["ben"], roster.group_id, "proposal", decision=True)
    node.add(rec)
    rc, out, err = run_cli(["ledger", "sync", "--port", node.port, "--no-progress"], monkeypatch, capsys)
    assert rc == 0, err
    rid = record_id(rec).hex()
    rc, out, err = run_cli(["consent", rid[:8], "--port", node.port, "--as", "ana", "--json"], monkeypatch, capsys)
    assert rc == 0, err
    assert json.loads(out)["target"] == rid
