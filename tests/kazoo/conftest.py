"""Fixtures for the kazoo recipe tests: a real zkrs server per test module, and clients.

The server binary comes from $ZKRS_BIN (scripts/test sets it), else target/release/zkrs.
It listens on an ephemeral port of 127.0.0.1; its address is read from its log.
"""
import concurrent.futures
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.serialization import Create2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("ZKRS_BIN", os.path.join(ROOT, "target", "release", "zkrs"))

# Every server not yet stopped, so that a failing test's report can show what they logged.
_running = []
_LOG_LINES_ON_FAILURE = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Adds the last lines of each running server's log to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for server in list(_running):
        try:
            with open(os.path.join(server.dir, "server.log")) as log:
                tail = log.readlines()[-_LOG_LINES_ON_FAILURE:]
        except OSError:
            continue
        report.sections.append(("zkrs log " + server.dir, "".join(tail)))


class CreateContainer(Create2):
    """createContainer (19), which this kazoo does not offer: a create2 by another opcode."""

    type = 19


class CreateTtl(Create2):
    """createTTL (21): a create2 with a TTL after the flags."""

    type = 21

    def serialize(self):
        return Create2.serialize(self) + struct.pack(">q", 60000)


def call(client, request):
    result = client.handler.async_result()
    client._call(request, result)
    return result.get(timeout=10)


class Server:
    """A zkrs process; stop() kills it and removes its directory."""

    def __init__(self, extra="", directory=None, client_port=0, preexec_fn=None):
        """`preexec_fn`, if given, runs in the child before the binary starts."""
        self.dir = directory or tempfile.mkdtemp(prefix="zkrs-kazoo-")
        config = os.path.join(self.dir, "zoo.cfg")
        with open(config, "w") as f:
            f.write(
                "tickTime=500\ndataDir=%s\nadmin.enableServer=false\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                "maxClientCnxns=0\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n"
                "znode.container.checkIntervalMs=200\n%s\n"
                % (os.path.join(self.dir, "data"), client_port, extra)
            )
        self.process = subprocess.Popen(
            [BINARY, "server", config], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            preexec_fn=preexec_fn,
        )
        _running.append(self)
        found = threading.Event()
        self.hosts = None

        def pump():
            with open(os.path.join(self.dir, "server.log"), "w") as log:
                for line in self.process.stderr:
                    log.write(line)
                    log.flush()
                    match = re.search(r"serving clients[^=]* address=(127\.0\.0\.1:\d+)", line)
                    if match and not found.is_set():
                        self.hosts = match.group(1)
                        found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(30):
            self.stop()
            raise RuntimeError("zkrs did not start listening")

    def client(self, **kwargs):
        client = KazooClient(hosts=self.hosts, timeout=kwargs.pop("timeout", 10), **kwargs)
        client.start(timeout=15)
        return client

    def kill(self):
        """SIGKILL; the directory stays."""
        self.process.kill()
        self.process.wait()

    def stop(self):
        self.kill()
        if self in _running:
            _running.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)


# Ports handed out lie below Linux's ephemeral range (32768 and up), from which the
# system picks the local port of every outgoing connection: a port taken from there by
# binding port 0 may be some member's connection by the time a server binds it.
_PORTS_FROM, _PORTS = 12000, 20000
_next_port = [os.getpid() * 7919 % _PORTS]


def free_ports(count):
    ports = []
    for _ in range(_PORTS):
        if len(ports) == count:
            break
        port = _PORTS_FROM + _next_port[0] % _PORTS
        _next_port[0] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    assert len(ports) == count, "no free ports"
    return ports


def recv_exactly(sock, length):
    """`length` bytes from `sock`, failing the test if the server closes first."""
    data = b""
    while len(data) < length:
        chunk = sock.recv(length - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data


def four_letter(hosts, word):
    host, port = hosts.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(word.encode())
            answer = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return answer.decode()
                answer += chunk
    except OSError:
        return ""


ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def zkcli(hosts, commands, jvm_flags=()):
    """Runs ZooKeeper 3.8's zkCli.sh on `hosts` with `commands` on its standard input.

    Returns its output lines, standard output first.
    """
    result = subprocess.run(
        [ZKCLI, "-server", hosts],
        input=commands,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, CLIENT_JVMFLAGS=" ".join(jvm_flags)),
    )
    return (result.stdout + result.stderr).splitlines()


def after_whoami(lines):
    """What zkCli printed after `whoami`'s heading, the watcher's lines left out.

    zkCli's watcher prints the session's first event from another thread, so its
    lines ("", "WATCHER::", "WatchedEvent ...") can land inside whoami's output.
    """
    start = lines.index("Auth scheme: User") + 1
    return [
        line
        for line in lines[start:]
        if line not in ("", "WATCHER::") and not line.startswith("WatchedEvent ")
    ]


class Ensemble:
    """Three zkrs members on 127.0.0.1; stop() kills them and removes their directories."""

    def __init__(self, size=3, extra="", member_extra=None):
        """`member_extra(i)`, if given, adds lines to member i's zoo.cfg alone."""
        ports = free_ports(3 * size)
        # ZooKeeper refuses an ensemble without initLimit and syncLimit, and so does zkrs.
        self.config = "initLimit=10\nsyncLimit=5\n" + extra + "\n" + "".join(
            "server.%d=127.0.0.1:%d:%d\n" % (i + 1, ports[3 * i + 1], ports[3 * i + 2])
            for i in range(size)
        )
        self.ports = [ports[3 * i] for i in range(size)]
        self.member_extra = member_extra or (lambda i: "")
        self.members = []
        for i in range(size):
            directory = tempfile.mkdtemp(prefix="zkrs-kazoo-member-")
            os.makedirs(os.path.join(directory, "data"))
            with open(os.path.join(directory, "data", "myid"), "w") as f:
                f.write("%d\n" % (i + 1))
            self.members.append(Server(self.member_config(i), directory, self.ports[i]))
        self.hosts = ",".join(member.hosts for member in self.members)

    def member_config(self, i):
        return self.config + self.member_extra(i)

    def restart(self, i):
        """Starts member i again on its data, after kill()."""
        self.members[i] = Server(self.member_config(i), self.members[i].dir, self.ports[i])

    def leader(self):
        """The index of the member that reports Mode: leader, once one does."""
        found = []

        def settled():
            found[:] = [
                i for i, m in enumerate(self.members) if "Mode: leader" in four_letter(m.hosts, "srvr")
            ]
            return len(found) == 1

        wait_until(settled, timeout=30)
        return found[0]

    def stop(self):
        for member in self.members:
            member.stop()


@pytest.fixture(scope="module")
def server():
    server = Server()
    yield server
    server.stop()


@pytest.fixture
def clients(server):
    """A factory of started clients, all stopped at the end of the test."""
    started = []

    def make(**kwargs):
        client = server.client(**kwargs)
        started.append(client)
        return client

    yield make
    for client in started:
        try:
            client.stop()
            client.close()
        except Exception:
            pass


def wait_until(condition, timeout=10.0, interval=0.02):
    """Polls condition() until it is true; fails the test after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError("condition not met within %.1f s" % timeout)


# Debian's zookeeper.jar manifest leaves out netty-codec and netty-resolver, which its
# Netty connection factory (TLS) needs.
ZOOKEEPER_CLASSPATH = ":".join(
    "/usr/share/java/%s.jar" % jar
    for jar in ("zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-simple", "snappy-java",
                "netty-codec", "netty-resolver")
)


def start_zookeeper(directory, port, compression="", extra="", jvm_flags=(), ready=None):
    """Apache ZooKeeper 3.8 (Debian's package) on `directory`/data at `port`, with the
    zoo.cfg lines `extra` last and the JVM's `jvm_flags` (a JAAS file, say); returns its
    process once `ready(port)` holds (by default, once it serves)."""
    config = os.path.join(directory, "zoo.cfg")
    with open(config, "w") as f:
        f.write(
            "tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
            "maxClientCnxns=0\nextendedTypesEnabled=true\nadmin.enableServer=false\n"
            "snapCount=100\n%s\n" % (os.path.join(directory, "data"), port, extra)
        )
    log = open(os.path.join(directory, "zookeeper.log"), "w")
    method = ["-Dzookeeper.snapshot.compression.method=" + compression] if compression else []
    # Its Jetty AdminServer needs the servlet API, which the package's manifest leaves out.
    servlet = ["-Xbootclasspath/a:/usr/share/java/servlet-api.jar"]
    process = subprocess.Popen(
        ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", *method, *servlet,
         *jvm_flags,
         "-cp", ZOOKEEPER_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain", config],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )
    # Connect only once it serves. ZooKeeper listens before it has loaded its data; a
    # client that connects in between is never answered nor closed (the close fails on the
    # missing database), so kazoo waits out its whole session timeout, and the imported
    # sessions, whose timeout runs from the load, may expire meanwhile.
    wait_until(lambda: (ready or serving)(port), timeout=60)
    return process


def start_zookeeper_ensemble(extra="", ready=None):
    """Three Apache ZooKeeper 3.8 members on 127.0.0.1 with the zoo.cfg lines `extra`,
    started together (none serves before a quorum does), each returned once
    `ready(port)` holds (by default, once it serves); returns their processes,
    directories and client ports."""
    ports = free_ports(9)
    servers = "".join("server.%d=127.0.0.1:%d:%d\n" % (i + 1, ports[3 * i + 1], ports[3 * i + 2])
                      for i in range(3))
    directories = []
    for i in range(3):
        directory = tempfile.mkdtemp(prefix="zkrs-kazoo-zookeeper-member-")
        os.makedirs(os.path.join(directory, "data"))
        with open(os.path.join(directory, "data", "myid"), "w") as f:
            f.write("%d\n" % (i + 1))
        directories.append(directory)
    extra = "initLimit=10\nsyncLimit=5\n" + extra + "\n" + servers
    client_ports = [ports[3 * i] for i in range(3)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        processes = list(pool.map(
            lambda i: start_zookeeper(directories[i], client_ports[i], extra=extra, ready=ready),
            range(3)))
    return processes, directories, client_ports


def stop_zookeeper(process, directory):
    """Stops a ZooKeeper that `start_zookeeper` started and removes its directory."""
    process.kill()
    process.wait()
    shutil.rmtree(directory, ignore_errors=True)


def serving(port):
    """Whether ZooKeeper at `port` answers `srvr` with its mode, as it does once running."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"srvr")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        return b"Mode:" in answer
    except OSError:
        return False


@pytest.fixture
def ensemble():
    ensemble = Ensemble()
    yield ensemble
    ensemble.stop()
