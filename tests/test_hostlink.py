"""Host-link framing: resynchronises after garbage, carries a CRC, tolerates log lines, stays printable ASCII."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plexwire import DecodeError, hostlink

REPL_CONTROL = {0x01, 0x02, 0x03, 0x04, 0x05}


@settings(max_examples=500, database=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=3000))
def test_roundtrip_and_printable(op, req, body):
    line = hostlink.encode(op, req, body)
    assert line.endswith(b"\n")
    assert all(0x20 <= b < 0x7F for b in line[:-1])  # nothing the REPL treats as a control character
    assert not REPL_CONTROL & set(line)
    assert hostlink.decode_line(line[:-1]) == (op, req, body)


def test_resync_after_garbage_and_interleaved_logs():
    a = hostlink.encode(hostlink.STATUS, 1)
    b = hostlink.encode(hostlink.POST, 2, b"x" * 100)
    stream = b"\x00\xff boot log\r\n" + a[:7] + b"\r\nI (123) wifi: off\r\n" + b"noise " + b + b"Traceback...\n" + a
    r = hostlink.LineReader()
    items = []
    for i in range(0, len(stream), 5):  # arrives in small pieces
        items += r.feed(stream[i:i + 5])
    frames = [it[1] for it in items if it[0] == "frame"]
    logs = [it[1] for it in items if it[0] == "log"]
    assert frames == [(hostlink.POST, 2, b"x" * 100), (hostlink.STATUS, 1, b"")]
    assert b"I (123) wifi: off" in logs and b"Traceback..." in logs
    assert r.bad == 1  # the torn first frame


def test_crc_catches_a_flipped_bit():
    line = bytearray(hostlink.encode(hostlink.SYNC, 9, b"\x00\x00\x00\x00\x00\x10")[:-1])
    for i in range(1, len(line)):
        bad = bytearray(line)
        bad[i] = ord("A") if bad[i] != ord("A") else ord("B")
        with pytest.raises(DecodeError):
            hostlink.decode_line(bytes(bad))


def test_overlong_line_is_dropped_and_reader_recovers():
    r = hostlink.LineReader()
    assert r.feed(b"~" + b"A" * (hostlink.MAX_LINE + 10)) == []
    assert r.feed(b"AAAA\n") == []
    ok = hostlink.encode(hostlink.HELLO, 3)
    assert r.feed(ok) == [("frame", (hostlink.HELLO, 3, b""))]
    assert r.bad == 1


def test_sync_reply_roundtrip():
    recs = [(1, b"\x05hello"), (7, b"\x01z" + b"t" * 300)]
    body = hostlink.pack_sync_reply(8, True, recs)
    assert hostlink.unpack_sync_reply(body) == (8, True, recs)
    with pytest.raises(DecodeError):
        hostlink.unpack_sync_reply(body[:-1])
    assert hostlink.unpack_record(hostlink.pack_record(b"abc", b"tail")) == (b"abc", b"tail")
