"""Clients that must authenticate before anything else is served (`enforce.auth.enabled`
with `enforce.auth.schemes`, and `sessionRequireClientSASLAuth`), side by side with
ZooKeeper 3.8: the same replies to the same raw requests, the same counters, and
kazoo's SessionClosedRequireSaslError.
"""
import socket
import struct
import subprocess
import tempfile

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import SessionClosedRequireSaslError

from conftest import (
    BINARY, Server, four_letter, free_ports, recv_exactly, start_zookeeper, stop_zookeeper,
)

REQUIRE_DIGEST = "enforce.auth.enabled=true\nenforce.auth.schemes=digest\n"
SASL_PROVIDER = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
JAAS = 'Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_bob="bobsecret";\n};\n'

GET_DATA, PING, CLOSE_SESSION, AUTH, SASL = 4, 11, -11, 100, 102


def string(text):
    data = text.encode()
    return struct.pack(">i", len(data)) + data


def get_root(xid=1):
    return xid, GET_DATA, string("/") + b"\0"


def add_auth(scheme, credentials):
    return -4, AUTH, struct.pack(">i", 0) + string(scheme) + string(credentials)


def conversation(port, requests, before_closing):
    """Opens a session and sends `requests` one at a time; returns each reply's xid,
    error code and size, then whether the server closed the connection. Calls
    `before_closing` before the client closes its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        connect = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + bytes(16) + b"\0"
        sock.sendall(struct.pack(">i", len(connect)) + connect)
        (length,) = struct.unpack(">i", recv_exactly(sock, 4))
        recv_exactly(sock, length)
        heard = []
        for xid, op, body in requests:
            request = struct.pack(">ii", xid, op) + body
            sock.sendall(struct.pack(">i", len(request)) + request)
            head = sock.recv(4)
            if len(head) < 4:
                heard.append("closed")
                before_closing()
                return heard
            (length,) = struct.unpack(">i", head)
            reply = recv_exactly(sock, length)
            replied_xid, _, err = struct.unpack(">iqi", reply[:16])
            heard.append((replied_xid, err, length))
        # A server that closes does so right after its reply; one that keeps the
        # connection sends nothing more.
        sock.settimeout(1.0)
        try:
            heard.append("closed" if sock.recv(1) == b"" else "sent more")
        except TimeoutError:
            heard.append("open")
        before_closing()
        return heard


COUNTERS = ["packets_received", "bytes_received_count", "connection_drop_count",
            "auth_failed_count", "last_client_response_size", "min_client_response_size"]


def counters(port):
    monitored = dict(
        line.split("\t", 1) for line in four_letter("127.0.0.1:%d" % port, "mntr").splitlines()
    )
    return {name: int(monitored["zk_" + name]) for name in COUNTERS}


CASES = {
    "a read": [get_root()],
    "a ping": [(-2, PING, b""), get_root(2)],
    "closeSession": [(1, CLOSE_SESSION, b"")],
    "digest, then a read": [add_auth("digest", "bob:secret"), get_root()],
    "ip, then a read": [add_auth("ip", "127.0.0.1"), get_root()],
    "an unknown scheme": [add_auth("foo", "x"), get_root()],
}


@pytest.fixture(scope="module")
def both():
    zk_port, = free_ports(1)
    directory = tempfile.mkdtemp(prefix="zkrs-enforce-auth-")
    zookeeper = start_zookeeper(directory, zk_port, extra=REQUIRE_DIGEST + "4lw.commands.whitelist=*\n")
    zkrs = Server(REQUIRE_DIGEST)
    yield zk_port, int(zkrs.hosts.split(":")[1])
    zkrs.stop()
    stop_zookeeper(zookeeper, directory)


@pytest.mark.parametrize("case", sorted(CASES))
def test_unauthenticated_requests_get_what_zookeeper_answers(both, case):
    zk_port, zkrs_port = both
    heard = {}
    for name, port in (("zookeeper", zk_port), ("zkrs", zkrs_port)):
        before = counters(port)
        # Read while the conversation's connection is open, if the server kept it: its
        # close by the client is counted later, when each server gets to it.
        readings = []
        heard[name] = conversation(port, CASES[case], lambda: readings.append(counters(port)))
        after = readings[0]
        heard[name + " counters"] = {
            name: after[name] - before[name] if "size" not in name else after[name]
            for name in COUNTERS
        }
    assert heard["zkrs"] == heard["zookeeper"], heard
    assert heard["zkrs counters"] == heard["zookeeper counters"], heard
    last_code = [reply[1] for reply in heard["zkrs"] if isinstance(reply, tuple)][-1]
    expected = {"digest, then a read": (0, "open"), "an unknown scheme": (-115, "closed")}
    assert (last_code, heard["zkrs"][-1]) == expected.get(case, (-124, "closed")), heard


def test_enforcement_without_a_scheme_or_with_one_no_provider_serves_refuses_to_start(tmp_path):
    for extra, message in [
        ("enforce.auth.enabled=true\n", "enforce.auth.schemes must be"),
        (REQUIRE_DIGEST.replace("digest", "digest,sasl"), "Authentication scheme sasl is not"),
        ("sessionRequireClientSASLAuth=true\n", "Authentication scheme sasl is not"),
    ]:
        config = tmp_path / "zoo.cfg"
        config.write_text("tickTime=2000\ndataDir=%s\nclientPort=0\n%s" % (tmp_path, extra))
        checked = subprocess.run([BINARY, "config", "check", str(config)], capture_output=True,
                                 text=True)
        assert checked.returncode != 0, checked
        assert message in checked.stdout + checked.stderr, checked


def test_sasl_required_turns_away_a_client_without_sasl_as_zookeeper_does(tmp_path):
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS)
    required = SASL_PROVIDER + "sessionRequireClientSASLAuth=true\n"
    zk_port, = free_ports(1)
    directory = tempfile.mkdtemp(prefix="zkrs-sasl-required-")
    zookeeper = start_zookeeper(directory, zk_port, extra=required,
                                jvm_flags=["-Djava.security.auth.login.config=%s" % jaas])
    zkrs = Server(required + "java.security.auth.login.config=%s\n" % jaas)
    try:
        for hosts in ("127.0.0.1:%d" % zk_port, zkrs.hosts):
            options = {"mechanism": "DIGEST-MD5", "username": "bob", "password": "bobsecret"}
            bob = KazooClient(hosts=hosts, sasl_options=options, timeout=5)
            bob.start(timeout=10)
            assert bob.get("/")[1].version == 0
            bob.stop()
            anonymous = KazooClient(hosts=hosts, timeout=5)
            anonymous.start(timeout=10)
            with pytest.raises(SessionClosedRequireSaslError):
                anonymous.get("/")
            anonymous.stop()
        # A SASL exchange that fails is answered SESSIONCLOSEDREQUIRESASLAUTH too: the
        # empty first token of DIGEST-MD5 gets the challenge, a bad answer the refusal.
        bad = [(1, SASL, struct.pack(">i", 0)), (2, SASL, string("username=\"bob\""))]
        ports = (zk_port, int(zkrs.hosts.split(":")[1]))
        heard = [conversation(port, bad, lambda: None) for port in ports]
        assert heard[0][1:] == heard[1][1:] == [(2, -124, 20), "closed"], heard
        assert heard[0][0][:2] == heard[1][0][:2] == (1, 0), heard
    finally:
        zkrs.stop()
        stop_zookeeper(zookeeper, directory)
