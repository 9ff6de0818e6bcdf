"""Many ZooKeeper sessions from one process, over raw sockets and one selector loop.

kazoo and zkbench spend a thread or a task per session; the scale benchmarks
(scripts/bench-scale sessions, watches) need tens of thousands of sessions that ping, set
watches and count events, which only a plain event loop over the wire protocol affords.
A `Fleet` opens the sessions, keeps each alive with pings at a third of its timeout,
pipelines requests through a window per session, reconnects every session with its id and
password after the server restarts, and records when each watch event arrives.
"""
import collections
import selectors
import socket
import struct
import time

OP_CREATE = 1
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_PING = 11
OP_CLOSE = -11
XID_WATCH = -1
XID_PING = -2
OPEN_ACL_UNSAFE = struct.pack(">ii", 1, 0x1F) + b"".join(
    struct.pack(">i", len(part)) + part for part in (b"world", b"anyone"))
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
# Handshakes in flight at once: more overflows the listen backlog of either server.
HANDSHAKES = 256


def jute_string(value):
    encoded = value.encode() if isinstance(value, str) else value
    return struct.pack(">i", len(encoded)) + encoded


def create(path, data=b""):
    """A persistent create's body."""
    return OP_CREATE, jute_string(path) + jute_string(data) + OPEN_ACL_UNSAFE + struct.pack(
        ">i", 0)


def get_data(path, watch):
    return OP_GET_DATA, jute_string(path) + struct.pack(">?", watch)


def set_data(path, data):
    return OP_SET_DATA, jute_string(path) + jute_string(data) + struct.pack(">i", -1)


class Session:
    """One connection's state: the handshake, the requests waiting, and the replies seen."""

    def __init__(self, index):
        self.index = index
        self.sock = None
        self.id = 0
        self.password = b"\0" * 16
        self.last_zxid = 0
        self.connected = False
        self.expired = False
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.waiting = collections.deque()
        self.in_flight = 0
        self.xid = 0
        self.next_ping = 0.0


class Fleet:
    """Sessions to one server address; `pump` drives them all until a condition holds."""

    def __init__(self, port, timeout_ms=30_000, window=64, sources=("127.0.0.1",)):
        self.port, self.timeout_ms, self.window, self.sources = port, timeout_ms, window, sources
        self.selector = selectors.DefaultSelector()
        self.sessions = []
        self.replies = 0
        self.errors = collections.Counter()
        self.events = 0
        self.last_event = 0.0
        self.handshaking = 0
        self.next_ping_scan = 0.0

    # -- connections ------------------------------------------------------------------------

    def open(self, count, deadline_s=600):
        """Adds `count` new sessions; returns the seconds until all are connected."""
        fresh = [Session(len(self.sessions) + i) for i in range(count)]
        self.sessions.extend(fresh)
        return self._dial(fresh, deadline_s)

    def reconnect(self, deadline_s=600):
        """Reconnects every session that lost its connection, with its id and password;
        returns the seconds until all are connected again or told they expired."""
        return self._dial([s for s in self.sessions if not s.connected and not s.expired],
                          deadline_s)

    def _dial(self, sessions, deadline_s):
        """Connects `sessions`, at most HANDSHAKES at a time; the seconds it took."""
        began = time.time()
        pending = list(reversed(sessions))

        def dialled():
            while pending and self.handshaking < HANDSHAKES:
                self._connect(pending.pop())
            return not pending and self.handshaking == 0

        self.pump(dialled, deadline_s)
        return time.time() - began

    def _connect(self, session):
        source = self.sources[session.index % len(self.sources)]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The port is chosen at connect, from the whole range for this destination; a
        # port chosen at bind would come from the half of it bind() takes, unshared.
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", self.port))
        session.sock, session.inbox, session.outbox = sock, bytearray(), bytearray()
        session.connected = False
        session.in_flight = 0
        handshake = struct.pack(">iqiq", 0, session.last_zxid, self.timeout_ms, session.id)
        self._write(session, handshake + jute_string(session.password) + b"\0")
        self.handshaking += 1

    def _lost(self, session):
        if not session.connected:
            self.handshaking -= 1
            self.errors["handshake lost"] += 1
        self._close(session)

    def _close(self, session):
        self.selector.unregister(session.sock)
        session.sock.close()
        session.sock = None
        session.connected = False
        session.in_flight = 0

    def connected(self):
        return sum(s.connected for s in self.sessions)

    def close_all(self):
        for session in self.sessions:
            if session.sock is not None:
                self._close(session)

    # -- requests ----------------------------------------------------------------------------

    def queue(self, session, request):
        """Queues `request` (an (op, body) pair); it goes out within the session's window."""
        session.waiting.append(request)
        self._send_waiting(session)

    def _send_waiting(self, session):
        while session.connected and session.waiting and session.in_flight < self.window:
            op, body = session.waiting.popleft()
            session.xid += 1
            session.in_flight += 1
            self._write(session, struct.pack(">ii", session.xid, op) + body)

    def idle(self):
        return all(not s.waiting and s.in_flight == 0 for s in self.sessions if s.connected)

    # -- the loop ----------------------------------------------------------------------------

    def pump(self, done, deadline_s):
        """Serves every socket until `done()` is true; raises after `deadline_s` seconds."""
        deadline = time.time() + deadline_s
        while not done():
            now = time.time()
            if now > deadline:
                raise TimeoutError("fleet: %d of %d sessions connected, errors %s" % (
                    self.connected(), len(self.sessions), dict(self.errors)))
            for key, mask in self.selector.select(timeout=0.05):
                session = key.data
                if mask & selectors.EVENT_READ:
                    self._read(session)
                if session.sock is not None and mask & selectors.EVENT_WRITE:
                    self._flush(session)
            self._ping(now)

    def _ping(self, now):
        if now < self.next_ping_scan:
            return
        self.next_ping_scan = now + 0.1
        interval = self.timeout_ms / 3000
        for session in self.sessions:
            if session.connected and now >= session.next_ping:
                session.next_ping = now + interval
                self._write(session, struct.pack(">ii", XID_PING, OP_PING))

    def _write(self, session, payload):
        session.outbox += struct.pack(">i", len(payload)) + payload
        self._flush(session)

    def _flush(self, session):
        try:
            sent = session.sock.send(session.outbox) if session.outbox else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self._lost(session)
            return
        del session.outbox[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if session.outbox else 0)
        try:
            self.selector.modify(session.sock, events, session)
        except KeyError:
            self.selector.register(session.sock, events, session)

    def _read(self, session):
        try:
            chunk = session.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._lost(session)
            return
        session.inbox += chunk
        inbox, at = session.inbox, 0
        while len(inbox) - at >= 4:
            (length,) = struct.unpack_from(">i", inbox, at)
            if len(inbox) - at - 4 < length:
                break
            self._frame(session, memoryview(inbox)[at + 4:at + 4 + length])
            at += 4 + length
            if session.sock is None:
                return
        del inbox[:at]
        self._send_waiting(session)

    def _frame(self, session, frame):
        if not session.connected:
            _, _, session_id = struct.unpack_from(">iiq", frame)
            self.handshaking -= 1
            if session_id == 0:
                session.expired = True
                self._close(session)
                return
            (length,) = struct.unpack_from(">i", frame, 16)
            session.id, session.password = session_id, bytes(frame[20:20 + length])
            session.connected = True
            session.next_ping = time.time() + self.timeout_ms / 3000
            self._send_waiting(session)
            return
        xid, zxid, err = struct.unpack_from(">iqi", frame)
        if zxid > 0:
            session.last_zxid = max(session.last_zxid, zxid)
        if xid == XID_WATCH:
            self.events += 1
            self.last_event = time.time()
        elif xid != XID_PING:
            session.in_flight -= 1
            self.replies += 1
            if err:
                self.errors[err] += 1
