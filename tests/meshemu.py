"""A Meshtastic device emulator for tests: the stream API of the firmware, built from meshtastic's own protobufs.

It speaks what the `meshtastic` Python library expects on a TCP socket (like a Wi-Fi radio on port 4403) or on a
pseudo-terminal (like a USB serial radio):

* framing: ``0x94 0xC3 len_hi len_lo`` + a serialized ``ToRadio`` / ``FromRadio`` (at most 512 bytes); bytes
  outside frames (the client's 32 wake-up ``0xC3`` bytes) are skipped;
* ``want_config_id`` -> ``my_info``, ``metadata``, ``node_info`` (own, then the other radios unless the id is the
  library's NODELESS one), 8 ``channel``s, ``config`` sections, ``config_complete_id`` with the same id;
* ``packet`` -> a ``queueStatus`` for it, then the packet goes over the `Link` to the other radios (each receives
  it only on a channel with the same name and PSK, as a real radio decrypts only its own channels);
* admin packets to the radio itself: ``set_channel``, ``get_channel_request``, ``get_config_request`` (session
  key), ``set_config`` (lora), begin/commit edit settings;
* packets heard while no client is connected wait (at most 32) and follow the next ``config_complete_id``;
* ``heartbeat`` keeps the API connection alive; after ``idle_timeout`` seconds without anything from the client
  the radio closes the connection (the firmware's 15-minute API idle timeout, shortened for tests).

Two radios joined by a `Link` (seedable loss, duplication) carry packets between their clients.
"""

from __future__ import annotations

import os
import random
import select
import socket
import threading
import time
import tty

from meshtastic.protobuf import admin_pb2, channel_pb2, config_pb2, mesh_pb2, portnums_pb2, telemetry_pb2

START1, START2 = 0x94, 0xC3
MAX_FRAME = 512
NODELESS = 69420
BROADCAST = 0xFFFFFFFF
DEFAULT_PSK = b"\x01"  # the well-known default key of the public LongFast channel


def default_channels() -> list:
    chans = []
    for i in range(8):
        ch = channel_pb2.Channel(index=i)
        if i == 0:
            ch.role = channel_pb2.Channel.Role.PRIMARY
            ch.settings.psk = DEFAULT_PSK
            ch.settings.name = ""  # empty name on the primary = the preset's name, LongFast
        else:
            ch.role = channel_pb2.Channel.Role.DISABLED
        chans.append(ch)
    return chans


def chan_key(ch) -> tuple:
    name = ch.settings.name or ("LongFast" if ch.role == channel_pb2.Channel.Role.PRIMARY else "")
    return name, bytes(ch.settings.psk)


class Link:
    """The air between emulated radios: every packet reaches every other radio, unless lost (seeded)."""

    def __init__(self, loss: float = 0.0, dup: float = 0.0, seed: int = 1):
        self.loss = loss
        self.dup = dup
        self.rng = random.Random(seed)
        self.radios: list[Radio] = []
        self.lock = threading.Lock()
        self.carried = 0
        self.lost = 0
        self.duplicated = 0

    def attach(self, radio: "Radio") -> None:
        self.radios.append(radio)
        radio.link = self

    def carry(self, sender: "Radio", pkt) -> None:
        for r in self.radios:
            if r is sender:
                continue
            with self.lock:
                lost = self.rng.random() < self.loss
                copies = 2 if self.rng.random() < self.dup else 1
            if lost:
                self.lost += 1
                continue
            self.carried += 1
            if copies > 1:
                self.duplicated += 1
            for _ in range(copies):
                r.hear(sender, pkt)


class _Conn:
    """One client connection: a TCP socket or the pty master."""

    def __init__(self, kind: str, sock: socket.socket | None = None, fd: int | None = None):
        self.kind = kind
        self.sock = sock
        self.fd = fd
        self.open = True
        self.buf = bytearray()
        self.last_rx = time.monotonic()
        self.wlock = threading.Lock()
        self.configured = False

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else self.fd  # type: ignore[return-value]

    def read(self) -> bytes:
        try:
            if self.sock is not None:
                return self.sock.recv(4096)
            return os.read(self.fd, 4096)  # type: ignore[arg-type]
        except (BlockingIOError, InterruptedError):
            return b"?"
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        with self.wlock:
            if not self.open:
                return
            try:
                if self.sock is not None:
                    self.sock.sendall(data)
                else:
                    view = memoryview(data)
                    while view:
                        try:
                            n = os.write(self.fd, view)  # type: ignore[arg-type]
                        except BlockingIOError:
                            select.select([], [self.fd], [], 0.1)
                            continue
                        view = view[n:]
            except OSError:
                self.open = False

    def close(self) -> None:
        self.open = False
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class Radio:
    """One emulated Meshtastic radio."""

    def __init__(self, num: int, name: str = "emu", hop_limit: int = 3, idle_timeout: float = 900.0,
                 channel_utilization: float = 3.0):
        self.num = num
        self.name = name
        self.link: Link | None = None
        self.channels = default_channels()
        self.lora = config_pb2.Config.LoRaConfig(use_preset=True, modem_preset=config_pb2.Config.LoRaConfig.ModemPreset.LONG_FAST,
                                                 region=config_pb2.Config.LoRaConfig.RegionCode.EU_868, hop_limit=hop_limit,
                                                 tx_enabled=True)
        self.idle_timeout = idle_timeout
        self.channel_utilization = channel_utilization
        self.air_util_tx = 0.5
        self.conn: _Conn | None = None
        self.lock = threading.Lock()
        self.running = True
        self.threads: list[threading.Thread] = []
        self.server: socket.socket | None = None
        self.master: int | None = None
        self.slave: int | None = None
        self.fr_id = 0
        self.sent: list = []  # MeshPackets the client asked this radio to transmit
        self.heard: list = []  # MeshPackets delivered to the client
        self.counts = {"configs": 0, "heartbeats": 0, "admin": 0, "too_big": 0, "connections": 0, "idle_drops": 0,
                       "undecodable": 0, "junk_frames": 0}
        self.accepter: threading.Thread | None = None
        self.tcp_port = 0
        self.backlog: list = []  # packets heard while no client was connected (the firmware queues them too)

    # ---- transports

    def serve_tcp(self, port: int = 0) -> int:
        """Listen on a free localhost port; one client at a time (a newer one replaces the older)."""
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(4)
        srv.settimeout(0.1)
        self.server = srv
        self.tcp_port = srv.getsockname()[1]
        if self.accepter is None:
            self.accepter = threading.Thread(target=self._accept_loop, daemon=True, name="emu-accept-%s" % self.name)
            self.accepter.start()
            self.threads.append(self.accepter)
        return self.tcp_port

    def open_pty(self) -> str:
        """A pseudo-terminal whose slave path is the radio's "serial port"."""
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        conn = _Conn("pty", fd=self.master)
        self._start_conn(conn)
        return os.ttyname(self.slave)

    def _accept_loop(self) -> None:
        while self.running:
            srv = self.server
            if srv is None:
                time.sleep(0.05)
                continue
            try:
                s, _ = srv.accept()
            except (socket.timeout, OSError):
                continue
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._start_conn(_Conn("tcp", sock=s))

    def _start_conn(self, conn: _Conn) -> None:
        with self.lock:
            old = self.conn
            self.conn = conn
        if old is not None and old.kind == "tcp":
            old.close()
        self.counts["connections"] += 1
        t = threading.Thread(target=self._serve, args=(conn,), daemon=True, name="emu-conn-%s" % self.name)
        t.start()
        self.threads.append(t)

    def drop(self, refuse_s: float = 0.0) -> None:
        """The radio drops the client (reboot, Wi-Fi loss); for refuse_s it does not listen at all (connection
        refused), then listens again on the same port."""
        with self.lock:
            c = self.conn
        if refuse_s > 0 and self.server is not None:
            srv, self.server = self.server, None
            srv.close()
            t = threading.Timer(refuse_s, lambda: self.running and self.serve_tcp(self.tcp_port))
            t.daemon = True
            t.start()
        if c is not None and c.kind == "tcp":
            c.close()

    def close(self) -> None:
        self.running = False
        with self.lock:
            c = self.conn
            self.conn = None
        if c is not None:
            c.close()
        if self.server is not None:
            self.server.close()
        for t in self.threads:
            t.join(1.0)
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # ---- stream protocol

    def _serve(self, conn: _Conn) -> None:
        while self.running and conn.open:
            try:
                r, _, _ = select.select([conn], [], [], 0.05)
            except (OSError, ValueError):
                break
            if conn.kind == "tcp" and time.monotonic() - conn.last_rx > self.idle_timeout:
                self.counts["idle_drops"] += 1
                conn.close()
                break
            if not r:
                continue
            data = conn.read()
            if data == b"?":
                continue
            if not data:
                if conn.kind == "tcp":
                    conn.close()
                    break
                time.sleep(0.05)  # pty with no client attached
                continue
            conn.buf.extend(data)
            self._parse(conn)

    def _parse(self, conn: _Conn) -> None:
        b = conn.buf
        while True:
            i = b.find(bytes([START1, START2]))
            if i < 0:
                del b[: max(0, len(b) - 1)]
                return
            del b[:i]
            if len(b) < 4:
                return
            n = (b[2] << 8) | b[3]
            if n > MAX_FRAME:
                self.counts["junk_frames"] += 1
                del b[:2]
                continue
            if len(b) < 4 + n:
                return
            payload = bytes(b[4 : 4 + n])
            del b[: 4 + n]
            conn.last_rx = time.monotonic()
            tr = mesh_pb2.ToRadio()
            try:
                tr.ParseFromString(payload)
            except Exception:
                self.counts["junk_frames"] += 1
                continue
            self._to_radio(conn, tr)

    def _send(self, conn: _Conn | None, fr) -> None:
        if conn is None:
            return
        self.fr_id += 1
        fr.id = self.fr_id
        b = fr.SerializeToString()
        conn.write(bytes([START1, START2, len(b) >> 8, len(b) & 0xFF]) + b)

    def send_raw(self, data: bytes) -> None:
        """Arbitrary bytes to the client (log output, junk)."""
        c = self.conn
        if c is not None:
            c.write(data)

    def _node_info(self, radio: "Radio"):
        ni = mesh_pb2.NodeInfo(num=radio.num, last_heard=int(time.time()))
        ni.user.id = "!%08x" % radio.num
        ni.user.long_name = "Emulated %s" % radio.name
        ni.user.short_name = radio.name[:4]
        ni.user.hw_model = mesh_pb2.HardwareModel.PORTDUINO
        ni.device_metrics.channel_utilization = radio.channel_utilization
        ni.device_metrics.air_util_tx = radio.air_util_tx
        return ni

    def _to_radio(self, conn: _Conn, tr) -> None:
        which = tr.WhichOneof("payload_variant")
        if which == "want_config_id":
            self._config(conn, tr.want_config_id)
        elif which == "heartbeat":
            self.counts["heartbeats"] += 1
        elif which == "disconnect":
            if conn.kind == "tcp":
                conn.close()
        elif which == "packet":
            self._packet(conn, tr.packet)

    def _config(self, conn: _Conn, cid: int) -> None:
        self.counts["configs"] += 1
        self._send(conn, mesh_pb2.FromRadio(my_info=mesh_pb2.MyNodeInfo(my_node_num=self.num, min_app_version=30200,
                                                                         pio_env="emulator")))
        self._send(conn, mesh_pb2.FromRadio(metadata=mesh_pb2.DeviceMetadata(firmware_version="2.7.11.emulator",
                                                                             device_state_version=24, hasWifi=True,
                                                                             hw_model=mesh_pb2.HardwareModel.PORTDUINO)))
        self._send(conn, mesh_pb2.FromRadio(node_info=self._node_info(self)))
        if cid != NODELESS and self.link is not None:
            for r in self.link.radios:
                if r is not self:
                    self._send(conn, mesh_pb2.FromRadio(node_info=self._node_info(r)))
        for ch in self.channels:
            self._send(conn, mesh_pb2.FromRadio(channel=ch))
        self._send(conn, mesh_pb2.FromRadio(config=config_pb2.Config(device=config_pb2.Config.DeviceConfig())))
        self._send(conn, mesh_pb2.FromRadio(config=config_pb2.Config(lora=self.lora)))
        self._send(conn, mesh_pb2.FromRadio(config=config_pb2.Config(position=config_pb2.Config.PositionConfig())))
        self._send(conn, mesh_pb2.FromRadio(config_complete_id=cid))
        conn.configured = True
        with self.lock:
            backlog, self.backlog = self.backlog, []
        for p in backlog:
            self._send(conn, mesh_pb2.FromRadio(packet=p))

    def _reply(self, conn: _Conn, request_id: int, portnum: int, payload: bytes) -> None:
        p = mesh_pb2.MeshPacket(to=self.num, id=random.randint(1, 0x7FFFFFFF), channel=0)
        setattr(p, "from", self.num)
        p.decoded.portnum = portnum
        p.decoded.payload = payload
        p.decoded.request_id = request_id
        self._send(conn, mesh_pb2.FromRadio(packet=p))

    def _admin(self, conn: _Conn, pkt) -> None:
        self.counts["admin"] += 1
        a = admin_pb2.AdminMessage()
        try:
            a.ParseFromString(pkt.decoded.payload)
        except Exception:
            return
        which = a.WhichOneof("payload_variant")
        if which == "set_channel":
            if 0 <= a.set_channel.index < 8:
                self.channels[a.set_channel.index] = channel_pb2.Channel()
                self.channels[a.set_channel.index].CopyFrom(a.set_channel)
        elif which == "set_config" and a.set_config.HasField("lora"):
            self.lora.CopyFrom(a.set_config.lora)
        elif which == "get_channel_request":
            i = a.get_channel_request - 1
            if 0 <= i < 8:
                resp = admin_pb2.AdminMessage(get_channel_response=self.channels[i])
                self._reply(conn, pkt.id, portnums_pb2.PortNum.ADMIN_APP, resp.SerializeToString())
                return
        elif which == "get_config_request" and a.get_config_request == admin_pb2.AdminMessage.ConfigType.SESSIONKEY_CONFIG:
            resp = admin_pb2.AdminMessage(session_passkey=os.urandom(8))
            resp.get_config_response.sessionkey.SetInParent()
            self._reply(conn, pkt.id, portnums_pb2.PortNum.ADMIN_APP, resp.SerializeToString())
            return
        ack = mesh_pb2.Routing(error_reason=mesh_pb2.Routing.Error.NONE)
        self._reply(conn, pkt.id, portnums_pb2.PortNum.ROUTING_APP, ack.SerializeToString())

    def _packet(self, conn: _Conn, pkt) -> None:
        if pkt.to == self.num and pkt.decoded.portnum == portnums_pb2.PortNum.ADMIN_APP:
            self._admin(conn, pkt)
            return
        if len(pkt.decoded.payload) > mesh_pb2.Constants.DATA_PAYLOAD_LEN:
            self.counts["too_big"] += 1
            self._send(conn, mesh_pb2.FromRadio(queueStatus=mesh_pb2.QueueStatus(res=1, free=16, maxlen=16,
                                                                                 mesh_packet_id=pkt.id)))
            return
        out = mesh_pb2.MeshPacket()
        out.CopyFrom(pkt)
        setattr(out, "from", self.num)
        out.hop_start = out.hop_limit
        self.sent.append(out)
        self._send(conn, mesh_pb2.FromRadio(queueStatus=mesh_pb2.QueueStatus(res=0, free=16, maxlen=16,
                                                                             mesh_packet_id=pkt.id)))
        if self.link is not None:
            self.link.carry(self, out)

    # ---- the air side

    def hear(self, sender: "Radio", pkt) -> None:
        """A packet from another radio: delivered to our client on our channel with the same name and PSK."""
        if not 0 <= pkt.channel < 8:
            return
        key = chan_key(sender.channels[pkt.channel])
        idx = None
        for ch in self.channels:
            if ch.role != channel_pb2.Channel.Role.DISABLED and chan_key(ch) == key:
                idx = ch.index
                break
        if idx is None:
            self.counts["undecodable"] += 1
            return
        p = mesh_pb2.MeshPacket()
        p.CopyFrom(pkt)
        p.channel = idx
        p.rx_time = int(time.time())
        p.rx_snr = 6.25
        p.rx_rssi = -71
        self.heard.append(p)
        c = self.conn
        if c is None or not c.open or not c.configured:
            with self.lock:
                self.backlog = (self.backlog + [p])[-32:]
            return
        self._send(c, mesh_pb2.FromRadio(packet=p))

    def inject(self, payload: bytes, portnum: int = 256, from_num: int = 0x0BAD0BAD, channel: int = 1) -> None:
        """A packet as if heard from some radio on the air (for junk and edge-case tests)."""
        p = mesh_pb2.MeshPacket(to=BROADCAST, id=random.randint(1, 0x7FFFFFFF), channel=channel, hop_limit=3, hop_start=3)
        setattr(p, "from", from_num)
        p.decoded.portnum = portnum
        p.decoded.payload = payload
        self._send(self.conn, mesh_pb2.FromRadio(packet=p))

    def report_utilisation(self, channel_utilization: float, air_util_tx: float = 0.5) -> None:
        """The radio's own device telemetry, as the firmware sends it to the connected client."""
        self.channel_utilization = channel_utilization
        self.air_util_tx = air_util_tx
        t = telemetry_pb2.Telemetry(time=int(time.time()))
        t.device_metrics.channel_utilization = channel_utilization
        t.device_metrics.air_util_tx = air_util_tx
        p = mesh_pb2.MeshPacket(to=BROADCAST, id=random.randint(1, 0x7FFFFFFF), channel=0)
        setattr(p, "from", self.num)
        p.decoded.portnum = portnums_pb2.PortNum.TELEMETRY_APP
        p.decoded.payload = t.SerializeToString()
        self._send(self.conn, mesh_pb2.FromRadio(packet=p))
