"""The Meshtastic bridge: the real `meshtastic` library (TCPInterface, SerialInterface on a pty) against the device
emulator in tests/meshemu.py; two emulated radios on a seeded lossy link carry Plexus frames between ledgers."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from plexus import bridge as bm
from plexus import client as clientmod
from plexus import keys as keymod
from plexus.cli import main
from plexus.ledger import Ledger
from plexus.virtual import VirtualNode
from plexwire import frame as pframe
from plexwire import hostlink, msg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import meshemu  # noqa: E402

NAME, PSK = "plexus-test", bytes(range(32))


@pytest.fixture
def grp(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLEXUS_HOME", str(tmp_path))
    assert main(["keys", "new", "alice"]) == 0
    assert main(["keys", "new", "bob"]) == 0
    assert main(["group", "init", "--name", "Tenants", "--member", "alice=alice", "--member", "bob=bob"]) == 0
    capsys.readouterr()
    doc = json.loads((tmp_path / "group.json").read_text())
    sec = json.loads((tmp_path / "group.secret.json").read_text())
    return {"home": tmp_path, "doc": doc, "secret": bytes.fromhex(sec["secret"]), "gid": bytes.fromhex(doc["group_id"]),
            "alice": keymod.load_key("alice"), "bob": keymod.load_key("bob")}


@pytest.fixture
def radios():
    made: list = []

    def make(loss=0.0, dup=0.0, seed=7, **kw):
        link = meshemu.Link(loss=loss, dup=dup, seed=seed)
        a = meshemu.Radio(0xA0A0A0A0, "alfa", **kw)
        b = meshemu.Radio(0xB0B0B0B0, "bravo", **kw)
        link.attach(a)
        link.attach(b)
        made.extend([a, b])
        return link, a, b

    yield make
    for r in made:
        r.close()


@pytest.fixture
def bridges():
    made: list = []
    yield made
    for b in made:
        b.close()


def private(radio, index=1):
    ch = radio.channels[index]
    ch.role = ch.Role.SECONDARY
    ch.settings.name = NAME
    ch.settings.psk = PSK


def tcp(radio):
    port = radio.serve_tcp()
    return bm.connector(host="127.0.0.1:%d" % port)


def pump(brs, until, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for b in brs:
            b.step(0.01)
        if until():
            return True
    return False


def bulletin(key, gid, text):
    return clientmod.bulletin_record(key, gid, text)


def make_bridge(grp, tmp_path, name, connect, made, **kw):
    led = Ledger(tmp_path / (name + ".sqlite"), grp["doc"], workers=1)
    kw.setdefault("min_gap_s", 0.0)
    b = bm.MeshtasticBridge(connect, [pframe.GroupKey(grp["secret"], 0)], ledger=led, **kw)
    made.append(b)
    made.append(led)
    return b, led


# ---- the part format


def test_split_and_reassemble_in_any_order_with_duplicates_and_timeouts():
    small, big = bytes(range(24)) * 4, bytes(i % 251 for i in range(255))
    assert bm.split_frame(small, 5) == [bytes([10]) + small]
    head, tail = bm.split_frame(big, 127)
    assert head[0] == 0xFF and len(head) == 233 and tail[0] == 0xFE and len(tail) == 24
    r = bm.Reassembler(timeout_s=5)
    assert r.feed(1, bm.split_frame(small, 5)[0], 0) == small
    assert r.feed(1, tail, 0) is None and r.feed(1, head, 1) == big  # tail first
    assert r.feed(2, head, 2) is None and r.feed(2, head, 2) is None and r.counts["dup_parts"] == 1
    assert r.feed(3, tail, 2) is None  # another sender's tail never completes sender 2's head
    assert r.feed(2, tail, 3) == big
    assert r.feed(4, head, 10) is None and r.feed(4, tail, 16) is None and r.counts["expired"] >= 1
    for junk in (b"", b"\x01", b"\x03" + b"x" * 100, b"\x00" * 234):
        assert r.feed(9, junk, 20) is None
    assert r.counts["junk"] == 4
    r2 = bm.Reassembler(max_pending=2)
    for s in range(3):
        r2.feed(1, bm.split_frame(big, s)[0], 0)
    assert r2.counts["evicted"] == 1 and len(r2.pending) == 2
    with pytest.raises(ValueError):
        bm.split_frame(b"x" * 23, 0)


def test_a_rekey_crosses_with_its_wrap_table(grp, tmp_path, bridges):
    """A REKEY's record is a header plus a wrap table sent as FRAGMENTs (SPEC s.8.4), like a long bulletin: the
    bridge seals all its frames and, hearing them in any order, stores the whole record."""
    from plexus.crypto import HostCrypto

    nodes = [HostCrypto().public_key(bytes([i]) * 32) for i in range(1, 6)]
    rec, _ = clientmod.rekey_record(grp["alice"], grp["gid"], 1, nodes)
    frames = bm.record_frames(pframe.GroupKey(grp["secret"], 0), rec)
    assert len(frames) > 2  # the header and two or more fragments
    b, led = make_bridge(grp, tmp_path, "rk", lambda: None, bridges)
    for fr in reversed(frames):  # fragments first: they wait for their header
        b.handle_frame(fr, 0.0)
    assert b.stats["stored"] == 1 and b.stats["rejected"] == 0
    [e] = led.find(clientmod.record_id(rec).hex())
    assert e.raw == rec and e.kind == msg.REKEY and len(e.extra) == 5 * 56


def test_throttle_follows_meshtastic_utilisation_thresholds():
    t = bm.Throttle(min_gap_s=1, polite_gap_s=10, stale_s=100)
    assert t.wait_s(0) == 0
    t.sent(0)
    assert t.wait_s(0.5) == pytest.approx(0.5)
    t.report(24.9, 1, 1)
    assert t.state(1) == "normal"
    t.report(25.0, 1, 1)
    assert t.state(1) == "polite" and t.wait_s(1) == pytest.approx(9)
    t.report(40.0, 1, 2)
    assert t.state(2) == "held" and t.wait_s(50) is None
    assert t.state(103) == "normal"  # a report older than stale_s no longer holds the bridge


def test_channel_helpers():
    name, psk = bm.new_channel()
    assert len(psk) == 32 and name.startswith("plexus-") and len(name) <= 11
    assert bm.parse_channel(bm.channel_spec(name, psk)) == (name, psk)
    for bad in ("nocolon", "x:AQ==", "x:!!!", "averyveryverylongname:" + bm.channel_spec("a", psk).split(":")[1]):
        with pytest.raises(bm.BridgeError):
            bm.parse_channel(bad)
    assert bm.is_public_psk(b"\x01") and bm.is_public_psk(b"") and bm.is_public_psk(bm._DEFAULT_KEY)
    assert not bm.is_public_psk(psk)


def test_group_keys_include_announced_epochs(grp):
    from plexus.commands.bridge import group_keys

    assert [k.epoch for k in group_keys(None)] == [0]
    f = grp["home"] / "group.secret.json"
    d = json.loads(f.read_text())
    d["pending"] = [{"epoch": 1, "secret": "11" * 32, "rekey": "00" * 16}, {"epoch": "bad"}]
    f.write_text(json.dumps(d))
    keys = group_keys(None)
    assert [k.epoch for k in keys] == [1, 0] and keys[-1].k_enc == pframe.GroupKey(grp["secret"], 0).k_enc


# ---- against the emulated radios


def test_refuses_the_public_longfast_channel_and_disabled_channels(grp, tmp_path, radios, bridges):
    _, a, _ = radios()
    conn = tcp(a)
    b0, _ = make_bridge(grp, tmp_path, "a", conn, bridges, channel_index=0)
    with pytest.raises(bm.BridgeError, match="public key"):
        b0.start()
    b1, _ = make_bridge(grp, tmp_path, "b", conn, bridges, channel_index=1)
    with pytest.raises(bm.BridgeError, match="not enabled"):
        b1.start()


def test_private_channel_setup_through_admin_messages(grp, tmp_path, radios, bridges):
    _, a, b = radios()
    ca, cb = tcp(a), tcp(b)
    name, psk = bm.new_channel()
    for c, r in ((ca, a), (cb, b)):
        iface = c()
        try:
            assert bm.install_channel(iface, name, psk) == 1
            with pytest.raises(bm.BridgeError, match="primary"):
                bm.install_channel(iface, "other", os.urandom(32), 0)
        finally:
            iface.close()
        deadline = time.monotonic() + 3
        while r.channels[1].settings.name != name and time.monotonic() < deadline:
            time.sleep(0.02)
        assert r.channels[1].settings.psk == psk and r.channels[0].settings.psk == meshemu.DEFAULT_PSK
    ba, la = make_bridge(grp, tmp_path, "a", ca, bridges)
    bb, lb = make_bridge(grp, tmp_path, "b", cb, bridges)
    ba.start()
    bb.start()
    rec = bulletin(grp["alice"], grp["gid"], "meeting moved to the laundry room")
    la.ingest([rec])
    assert pump([ba, bb], lambda: lb.has(clientmod.record_id(rec)))


def test_lossy_link_carries_bulletins_between_ledgers_tcp_and_serial(grp, tmp_path, radios, bridges):
    link, a, b = radios(loss=0.25, dup=0.1, seed=11)
    private(a)
    private(b)
    ca = tcp(a)
    pty = b.open_pty()
    cb = bm.connector(port=pty)
    ba, la = make_bridge(grp, tmp_path, "a", ca, bridges, repeat=3, hop_limit=5)
    bb, lb = make_bridge(grp, tmp_path, "b", cb, bridges, repeat=3)
    ba.start()
    bb.start()
    assert bb.hop_limit == 3  # the radio's own lora.hop_limit
    long_text = "Rent strike plan. " * 40  # 720 bytes: a header and 4 full fragments (255-byte frames, 2 parts each)
    recs = [bulletin(grp["alice"], grp["gid"], "general meeting on Sunday at 4"),
            bulletin(grp["bob"], grp["gid"], long_text)]
    la.ingest(recs)
    ids = [clientmod.record_id(r) for r in recs]
    ok = pump([ba, bb], lambda: all(lb.has(i) for i in ids), timeout=20)
    assert ok, (ba.summary(), bb.summary(), link.lost, link.carried, len(a.sent), len(b.heard))
    assert pump([ba, bb], lambda: not ba.outq)  # A's repeats done: only B draws from the seeded link now
    back = bulletin(grp["bob"], grp["gid"], "serial side answers")
    lb.ingest([back])
    assert pump([ba, bb], lambda: la.has(clientmod.record_id(back)), timeout=10)
    assert link.lost > 0, "the link must have lost packets for this test to mean anything"
    s = bb.summary()
    assert s["dup_frames"] > 0 and s["stored"] == 2 and s.get("records_out", 0) == 1  # received records not echoed
    assert {p.decoded.portnum for p in a.sent} == {256} and {p.channel for p in a.sent} == {1}
    assert {p.hop_limit for p in a.sent} == {5} and max(len(p.decoded.payload) for p in a.sent) == 233
    assert lb.verify().ok
    assert [e.text for e in lb.entries() if e.kind == msg.BULLETIN_LONG][0] == long_text


def test_junk_never_crashes_the_bridge_and_is_counted(grp, tmp_path, radios, bridges):
    _, a, b = radios()
    private(a)
    private(b)
    ba, la = make_bridge(grp, tmp_path, "a", tcp(a), bridges)
    bb, lb = make_bridge(grp, tmp_path, "b", tcp(b), bridges)
    ba.start()
    bb.start()
    other = pframe.GroupKey(b"\x55" * 32, 0).seal(b"\x01" + bytes(90), 3)
    good = pframe.GroupKey(grp["secret"], 0)
    tampered = bytearray(good.seal(b"\x01" + bytes(90), 3))
    tampered[20] ^= 1
    for payload in (b"", b"\x00", b"\x03" + b"x" * 100, b"\x07" * 300, b"\x00" + bytes(40), b"\x00" + other, b"\x00" + bytes(tampered),
                    b"\x00" + good.seal(b"\x01\x02", 3)):
        b.inject(payload, channel=1)
    b.inject(b"\x00" + good.seal(b"\x01" + bytes(90), 3), channel=0)  # other channel
    b.send_raw(bytes([0x94, 0xC3, 0, 5]) + b"\xff" * 5 + b"log line\n")  # a broken FromRadio and a log line
    rec = bulletin(grp["alice"], grp["gid"], "still working")
    la.ingest([rec])
    assert pump([ba, bb], lambda: lb.has(clientmod.record_id(rec)))
    s = bb.summary()
    assert s["junk_packets"] == 4 and s["junk_frames"] == 1 and s["foreign_frames"] == 1 and s["bad_tag"] == 1
    assert s["malformed"] == 1 and s["other_channel"] == 1 and s["stored"] == 1 and s.get("errors", 0) == 0


def test_holds_while_the_radio_reports_high_channel_utilisation(grp, tmp_path, radios, bridges):
    _, a, b = radios()
    private(a)
    private(b)
    ba, la = make_bridge(grp, tmp_path, "a", tcp(a), bridges)
    bb, lb = make_bridge(grp, tmp_path, "b", tcp(b), bridges)
    ba.start()
    bb.start()
    a.report_utilisation(47.0, 3.0)
    assert pump([ba], lambda: ba.throttle.state(time.monotonic()) == "held", timeout=3)
    rec = bulletin(grp["alice"], grp["gid"], "wait for a quiet channel")
    la.ingest([rec])
    pump([ba, bb], lambda: False, timeout=0.5)
    assert not a.sent and ba.summary()["queued_packets"] == 1 and ba.stats["held_by_utilisation"] == 1
    a.report_utilisation(12.0, 3.0)
    assert pump([ba, bb], lambda: lb.has(clientmod.record_id(rec)))


def test_reconnects_after_the_radio_drops_and_heartbeats_keep_it_alive(grp, tmp_path, radios, bridges):
    _, a, b = radios(idle_timeout=1.5)
    private(a)
    private(b)
    ba, la = make_bridge(grp, tmp_path, "a", tcp(a), bridges, heartbeat_s=0.3, reconnect_s=0.2)
    bb, lb = make_bridge(grp, tmp_path, "b", tcp(b), bridges, heartbeat_s=0.3)
    ba.start()
    bb.start()
    pump([ba, bb], lambda: False, timeout=2.5)
    assert a.counts["idle_drops"] == 0 and a.counts["heartbeats"] >= 4  # heartbeats beat the idle timeout
    a.drop(refuse_s=3.0)  # refused well past the library's own reconnect (1 s): the bridge opens a new interface
    assert pump([ba, bb], lambda: ba.stats["reconnects"] >= 1, timeout=20)
    assert ba.stats["disconnects"] == 1 and ba.stats["reconnect_failures"] >= 1
    rec = bulletin(grp["alice"], grp["gid"], "after the radio came back")
    la.ingest([rec])
    assert pump([ba, bb], lambda: lb.has(clientmod.record_id(rec)), timeout=20)
    assert a.counts["connections"] >= 2 and a.counts["configs"] >= 2


def test_gateway_injects_into_a_plexus_node_and_forwards_what_it_stores(grp, tmp_path, radios, bridges):
    _, a, b = radios()
    private(a)
    private(b)
    vn = VirtualNode(grp["doc"], grp["secret"], b"\x07" * 32, tmp_path / "node.log", "hub", time_s=clientmod.plexus_time())
    t = threading.Thread(target=vn.serve_forever, daemon=True)
    t.start()
    node = clientmod.HostLinkClient(vn.port, timeout=3)
    try:
        ba, la = make_bridge(grp, tmp_path, "a", tcp(a), bridges)
        bb, lb = make_bridge(grp, tmp_path, "b", tcp(b), bridges, node=node, sync_s=0.2, log=print)
        ba.start()
        bb.start()
        rec = bulletin(grp["alice"], grp["gid"], "from the Meshtastic side " + "x" * 200)  # 225 bytes: a header and 2 fragments
        la.ingest([rec])
        rid = clientmod.record_id(rec)
        ok = pump([ba, bb], lambda: vn.store.count == 1, timeout=10)
        assert ok, (bb.summary(), vn.core.status() if hasattr(vn.core, "status") else None)
        _, _, got = node.sync(0)
        assert [clientmod.record_id(r) for _, r in got] == [rid]
        assert bb.stats["injected"] == 3
        mine = bulletin(grp["bob"], grp["gid"], "from the Plexus node")
        node.post(mine)
        assert pump([ba, bb], lambda: la.has(clientmod.record_id(mine)), timeout=10)
        assert bb.stats["records_out"] == 1  # the bulletin that came over Meshtastic was not sent back
    finally:
        node.close()
        vn.close()
        t.join(2)


# ---- the command


def test_cli_new_channel_then_bridge_and_errors(grp, tmp_path, radios, capsys):
    _, a, b = radios()
    pa, pb = a.serve_tcp(), b.serve_tcp()
    assert main(["bridge", "meshtastic", "--host", "127.0.0.1:%d" % pa, "--channel-index", "0", "--duration", "0"]) == 2
    err = capsys.readouterr().err
    assert "public key" in err and err.count("\n") == 1 and "Traceback" not in err
    with open(os.devnull, "w"):
        assert main(["bridge", "meshtastic", "--host", "127.0.0.1:1", "--duration", "0"]) == 3
    err = capsys.readouterr().err
    assert "cannot reach" in err and err.count("\n") == 1
    assert main(["bridge", "meshtastic", "--port", str(tmp_path / "nope"), "--duration", "0"]) == 3
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["bridge", "meshtastic", "--host", "h", "--hop-limit", "9"]) == 2
    assert "0..7" in capsys.readouterr().err
    assert main(["bridge", "meshtastic", "--host", "127.0.0.1:%d" % pa, "--new-channel", "--duration", "0.2"]) == 0
    out = capsys.readouterr().out
    spec = out.split("--join-channel ")[1].split()[0]
    name, psk = bm.parse_channel(spec)
    assert a.channels[1].settings.name == name and a.channels[1].settings.psk == psk
    assert main(["bridge", "meshtastic", "--host", "127.0.0.1:%d" % pb, "--join-channel", spec, "--duration", "0.2",
                 "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["connected"] is True and b.channels[1].settings.psk == psk
    rec = bulletin(grp["alice"], grp["gid"], "over the CLI bridge")
    with Ledger(tmp_path / "ledger.sqlite", grp["doc"], workers=1) as led:
        assert hostlink.unpack_record(rec)[0][0] == msg.BULLETIN
        led.ingest([rec])  # after the bridge's first run: a new record, so the next run sends it
    # the sender runs first; radio b keeps what it hears for a client that is away (as Meshtastic radios do)
    assert main(["bridge", "meshtastic", "--host", "127.0.0.1:%d" % pa, "--duration", "1", "--min-gap", "0"]) == 0
    assert "1 frames out (1 packets)" in capsys.readouterr().out
    assert main(["bridge", "meshtastic", "--host", "127.0.0.1:%d" % pb, "--channel-index", "1",
                 "--ledger", str(tmp_path / "b.sqlite"), "--duration", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stored"] == 1
    with Ledger(tmp_path / "b.sqlite", workers=1) as lb:
        assert lb.has(clientmod.record_id(rec))
