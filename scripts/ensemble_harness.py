"""A 3-member ensemble on 127.0.0.1 of Apache ZooKeeper 3.8 or zkrs, for the benchmark
scripts that compare the two (bench-failover, bench-stale-reads)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ZKRS_BIN picks another build, for before/after comparisons.
ZKRS = os.environ.get("ZKRS_BIN", os.path.join(ROOT, "target", "release", "zkrs"))
JARS = "/usr/share/java"
ZK_CLASSPATH = ":".join(
    os.path.join(JARS, jar + ".jar")
    for jar in (
        "zookeeper zookeeper-jute slf4j-api slf4j-simple netty-handler netty-common netty-buffer "
        "netty-transport netty-codec netty-resolver netty-transport-native-epoll "
        "netty-transport-native-unix-common metrics-core commons-cli commons-io snappy-java"
    ).split()
)


def four_letter(port, word):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(word.encode())
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
            return answer.decode()
    except OSError:
        return ""


class Ensemble:
    """Members 1..3 with client ports base+1..base+3; `kind` is "zookeeper" or "zkrs"."""

    def __init__(self, kind, base, tick_ms=2000):
        self.kind, self.base = kind, base
        self.dir = tempfile.mkdtemp(prefix="ensemble-%s-" % kind)
        self.processes = {}
        for i in (1, 2, 3):
            data = os.path.join(self.dir, str(i), "data")
            os.makedirs(data)
            with open(os.path.join(data, "myid"), "w") as f:
                f.write("%d\n" % i)
            servers = "".join(
                "server.%d=127.0.0.1:%d:%d\n" % (k, base + 100 + k, base + 200 + k) for k in (1, 2, 3)
            )
            with open(self.config(i), "w") as f:
                f.write(
                    "tickTime=%d\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nadmin.enableServer=false\nclientPort=%d\n"
                    "clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nforceSync=yes\n"
                    "admin.enableServer=false\n4lw.commands.whitelist=*\n%s"
                    % (tick_ms, data, self.port(i), servers)
                )
            self.start(i)

    def config(self, i):
        return os.path.join(self.dir, str(i), "zoo.cfg")

    def port(self, i):
        return self.base + i

    def start(self, i):
        log = open(os.path.join(self.dir, str(i), "server.log"), "a")
        if self.kind == "zookeeper":
            command = [
                "java", "-Xmx1g", "-Dzookeeper.admin.enableServer=false",
                "-Dzookeeper.4lw.commands.whitelist=*", "-cp", ZK_CLASSPATH,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.config(i),
            ]
        else:
            command = [ZKRS, "server", self.config(i)]
        self.processes[i] = subprocess.Popen(command, stdout=log, stderr=log)

    def kill(self, i):
        self.processes[i].send_signal(signal.SIGKILL)
        self.processes[i].wait()

    def modes(self):
        modes = {}
        for i in (1, 2, 3):
            for line in four_letter(self.port(i), "srvr").splitlines():
                if line.startswith("Mode: "):
                    modes[i] = line[6:]
        return modes

    def settled_leader(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            modes = self.modes()
            leaders = [i for i, mode in modes.items() if mode == "leader"]
            if len(modes) == 3 and len(leaders) == 1:
                return leaders[0]
            time.sleep(0.1)
        raise RuntimeError("%s: no settled ensemble: %s" % (self.kind, self.modes()))

    def stop(self):
        for process in self.processes.values():
            process.kill()
            process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
