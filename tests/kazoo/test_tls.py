"""TLS on the client ports, as kazoo (Python's ssl module) sees it: secureClientPort with
key and trust stores in each format operators use, client certificates as x509 identities
in ACLs, port unification, certificate reload, and clients that must be turned away.

The stores are made by tests/support/make-tls-stores with openssl and keytool.
"""
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

from conftest import (ROOT, Server, after_whoami, four_letter, free_ports, recv_exactly,
                      start_zookeeper, stop_zookeeper, wait_until, zkcli)

CLIENT_ID = "CN=client.test,OU=client,O=zkrs tests,C=US"


@pytest.fixture(scope="module")
def stores():
    directory = tempfile.mkdtemp(prefix="zkrs-tls-")
    subprocess.run(
        [os.path.join(ROOT, "tests", "support", "make-tls-stores"), directory], check=True
    )
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def tls_server(stores, key_store="server.jks", trust_store="trust.jks", extra="", secure=True):
    """A server with a secure port (and a plain one); returns it with both addresses."""
    plain_port, secure_port = free_ports(2)
    lines = [
        "ssl.keyStore.location=%s" % os.path.join(stores, key_store),
        "ssl.keyStore.password=testpass",
        "ssl.trustStore.location=%s" % os.path.join(stores, trust_store),
        "ssl.trustStore.password=testpass",
    ]
    if secure:
        lines += ["secureClientPort=%d" % secure_port, "secureClientPortAddress=127.0.0.1"]
    server = Server(extra="\n".join(lines) + "\n" + extra, client_port=plain_port)
    return server, "127.0.0.1:%d" % plain_port, "127.0.0.1:%d" % secure_port


def tls_client(stores, hosts, who="client", start=True, **kwargs):
    files = {}
    if who:
        files = {
            "certfile": os.path.join(stores, who + ".crt"),
            "keyfile": os.path.join(stores, who + ".key"),
        }
    client = KazooClient(
        hosts=hosts, use_ssl=True, ca=os.path.join(stores, "ca.pem"), timeout=5, **files, **kwargs
    )
    if start:
        client.start(timeout=10)
    return client


def refused(client):
    """Whether a client that must be turned away fails to start."""
    try:
        client.start(timeout=4)
    except Exception:
        return True
    finally:
        client.stop()
        client.close()
    return False


@pytest.mark.parametrize(
    "key_store,trust_store",
    [("server.jks", "trust.jks"), ("server.p12", "trust.p12"), ("server.pem", "ca.pem")],
)
def test_a_client_certificate_is_an_x509_identity_in_acls(stores, key_store, trust_store):
    server, _, secure = tls_server(stores, key_store, trust_store)
    try:
        owner = tls_client(stores, secure)
        acl = make_acl("x509", CLIENT_ID, all=True)
        owner.create("/owned", b"mine", acl=[acl])
        assert owner.get("/owned")[0] == b"mine"
        assert owner.get_acls("/owned")[0] == [acl]
        stranger = tls_client(stores, secure, who="other")
        with pytest.raises(NoAuthError):
            stranger.get("/owned")
        owner.stop()
        stranger.stop()
    finally:
        server.stop()


def test_an_encrypted_pem_key_is_opened_with_the_store_password(stores):
    server, _, secure = tls_server(stores, "server-encrypted.pem")
    try:
        client = tls_client(stores, secure)
        assert client.create("/encrypted", b"x") == "/encrypted"
        client.stop()
    finally:
        server.stop()


def test_clients_the_server_must_turn_away_hurt_no_other_session(stores):
    server, plain, secure = tls_server(stores)
    try:
        good = tls_client(stores, secure)
        good.create("/kept", b"1")
        # Without a certificate (clientAuth defaults to need), with an expired one, with one
        # the trust store does not know, plaintext on the TLS port, TLS on the plain port.
        assert refused(tls_client(stores, secure, who=None, start=False))
        assert refused(tls_client(stores, secure, who="expired", start=False))
        assert refused(tls_client(stores, secure, who="stranger", start=False))
        assert refused(KazooClient(hosts=secure, timeout=3))
        assert refused(tls_client(stores, plain, start=False))
        # A handshake cut short, and one that never comes.
        host, port = secure.split(":")
        with socket.create_connection((host, int(port))) as cut:
            cut.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]))
        idle = socket.create_connection((host, int(port)))
        assert good.get("/kept")[0] == b"1"
        assert "secureClientPort=%s\n" % port in four_letter(plain, "conf")
        good.set("/kept", b"2")
        assert good.get("/kept")[0] == b"2"
        idle.close()
        log = open(os.path.join(server.dir, "server.log")).read()
        for reason in [
            "peer sent no certificates",
            "certificate expired",
            "UnknownIssuer",
            "a plaintext client on a TLS-only port",
            "a TLS client on a plaintext port",
        ]:
            warnings = [line for line in log.splitlines() if "WARN" in line]
            assert reason in log, "%s not in:\n%s" % (reason, "\n".join(warnings))
        good.stop()
    finally:
        server.stop()


def test_client_auth_want_lets_a_client_without_certificate_in_without_identity(stores):
    server, _, secure = tls_server(stores, extra="ssl.clientAuth=want\n")
    try:
        owner = tls_client(stores, secure)
        owner.create("/owned", b"mine", acl=[make_acl("x509", CLIENT_ID, all=True)])
        anonymous = tls_client(stores, secure, who=None)
        with pytest.raises(NoAuthError):
            anonymous.get("/owned")
        assert owner.get("/owned")[0] == b"mine"
        owner.stop()
        anonymous.stop()
    finally:
        server.stop()


def test_a_unified_port_takes_plain_and_tls_clients_and_four_letter_words(stores):
    server, plain, _ = tls_server(stores, secure=False, extra="client.portUnification=true\n")
    try:
        secured = tls_client(stores, plain)
        secured.create("/unified", b"tls")
        clear = KazooClient(hosts=plain, timeout=5)
        clear.start(timeout=10)
        assert clear.get("/unified")[0] == b"tls"
        assert four_letter(plain, "ruok") == "imok"
        secured.stop()
        clear.stop()
    finally:
        server.stop()


def served_subject(hosts, stores):
    host, port = hosts.split(":")
    context = ssl.create_default_context(cafile=os.path.join(stores, "ca.pem"))
    context.check_hostname = False
    context.load_cert_chain(os.path.join(stores, "client.crt"), os.path.join(stores, "client.key"))
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            subject = dict(pair[0] for pair in tls.getpeercert()["subject"])
            return subject["commonName"]


def test_certificates_are_reloaded_when_the_store_changes(stores):
    key_store = os.path.join(stores, "reloaded.jks")
    shutil.copy(os.path.join(stores, "server.jks"), key_store)
    server, _, secure = tls_server(stores, "reloaded.jks", extra="client.certReload=true\n")
    try:
        assert served_subject(secure, stores) == "server.test"
        client = tls_client(stores, secure)
        client.create("/before", b"")
        shutil.copy(os.path.join(stores, "server2.jks"), key_store + ".new")
        os.replace(key_store + ".new", key_store)
        wait_until(lambda: served_subject(secure, stores) == "server2.test", timeout=10)
        # The session opened before the change carries on.
        assert client.exists("/before") is not None
        client.stop()
    finally:
        server.stop()


# Debian's zookeeper.jar manifest leaves out the Netty jars its TLS socket needs.
ZKCLI_CLASSPATH = ":".join(
    [
        "/etc/zookeeper/conf",
        "/usr/share/java/zookeeper.jar",
        "/usr/share/java/netty-codec.jar",
        "/usr/share/java/netty-resolver.jar",
    ]
)


def test_zkcli_over_tls_with_jks_stores_sees_its_x509_identity(stores):
    server, _, secure = tls_server(stores)
    try:
        flags = [
            "-cp " + ZKCLI_CLASSPATH,
            "-Dzookeeper.sasl.client=false",
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            "-Dzookeeper.client.secure=true",
            "-Dzookeeper.ssl.keyStore.location=" + os.path.join(stores, "client.jks"),
            "-Dzookeeper.ssl.keyStore.password=testpass",
            "-Dzookeeper.ssl.trustStore.location=" + os.path.join(stores, "trust.jks"),
            "-Dzookeeper.ssl.trustStore.password=testpass",
        ]
        lines = zkcli(secure, "whoami\ncreate /cli tls\nget /cli\nquit\n", flags)
        # ZooKeeper 3.8 prints the same lines, in this order, for the same certificate.
        assert after_whoami(lines)[:2] == ["x509: " + CLIENT_ID, "ip: 127.0.0.1"], lines
        assert "Created /cli" in lines
        assert "tls" in lines
    finally:
        server.stop()


def raw_get(tls, path):
    """Opens a session on a TLS socket and reads `path`: the reply's error code."""

    def frame(body):
        return struct.pack(">i", len(body)) + body

    def read_frame():
        (length,) = struct.unpack(">i", recv_exactly(tls, 4))
        return recv_exactly(tls, length)

    connect = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + bytes(16) + b"\0"
    tls.sendall(frame(connect))
    read_frame()
    encoded = path.encode()
    request = struct.pack(">iii", 1, 4, len(encoded)) + encoded + b"\0"
    tls.sendall(frame(request))
    _, _, err = struct.unpack(">iqi", read_frame()[:16])
    return err


def test_a_resumed_tls_session_keeps_its_x509_identity(stores):
    server, _, secure = tls_server(stores)
    try:
        owner = tls_client(stores, secure)
        owner.create("/owned", b"mine", acl=[make_acl("x509", CLIENT_ID, all=True)])
        owner.stop()
        host, port = secure.split(":")
        context = ssl.create_default_context(cafile=os.path.join(stores, "ca.pem"))
        context.check_hostname = False
        context.load_cert_chain(
            os.path.join(stores, "client.crt"), os.path.join(stores, "client.key")
        )
        session, reused = None, []
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=5) as raw:
                with context.wrap_socket(raw, session=session) as tls:
                    assert raw_get(tls, "/owned") == 0
                    reused.append(tls.session_reused)
                    session = tls.session
        # The first connection is a full handshake; the later ones resume its session.
        assert reused == [False, True, True]
    finally:
        server.stop()


def handshake_failures(plain):
    """ZooKeeper's counts of failed TLS handshakes and of failed authentications."""
    monitored = dict(line.split("\t", 1) for line in four_letter(plain, "mntr").splitlines())
    return int(monitored["zk_unsuccessful_handshake"]), int(monitored["zk_auth_failed_count"])


def turn_away_tls_clients(stores, plain, secure):
    """A good TLS client, then six that fail their handshake one after the other: without
    a certificate, with an expired one, with one nobody trusts, plaintext, a handshake cut
    short, a connection closed before its handshake. Returns both counts after each."""
    host, port = secure.split(":")

    def tls_connection(who):
        context = ssl.create_default_context(cafile=os.path.join(stores, "ca.pem"))
        context.check_hostname = False
        if who:
            context.load_cert_chain(os.path.join(stores, who + ".crt"),
                                    os.path.join(stores, who + ".key"))
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            try:
                with context.wrap_socket(raw) as tls:
                    tls.sendall(struct.pack(">i", 0))
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    def raw(data, linger=0.0):
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(data)
            time.sleep(linger)

    cases = [lambda: tls_connection("client"), lambda: tls_connection(None),
             lambda: tls_connection("expired"), lambda: tls_connection("stranger"),
             lambda: raw(struct.pack(">i", 44) + bytes(44), linger=0.3),
             lambda: raw(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])),
             lambda: raw(b"", linger=0.3)]
    seen = []
    for failed, case in enumerate(cases):
        case()
        wait_until(lambda: handshake_failures(plain)[0] >= failed, timeout=5)
        seen.append(handshake_failures(plain))
    return seen


def test_failed_handshakes_count_as_zookeepers_netty_factory_counts_them(stores):
    zk_plain, zk_secure = free_ports(2)
    zk_dir = tempfile.mkdtemp(prefix="zkrs-tls-zookeeper-")
    zookeeper = start_zookeeper(zk_dir, zk_plain, extra="\n".join([
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        "secureClientPort=%d" % zk_secure, "secureClientPortAddress=127.0.0.1",
        "ssl.keyStore.location=%s" % os.path.join(stores, "server.jks"),
        "ssl.keyStore.password=testpass",
        "ssl.trustStore.location=%s" % os.path.join(stores, "trust.jks"),
        "ssl.trustStore.password=testpass", "4lw.commands.whitelist=*"]))
    server, plain, secure = tls_server(stores)
    try:
        expected = [(failed, failed) for failed in range(7)]
        assert turn_away_tls_clients(stores, "127.0.0.1:%d" % zk_plain,
                                     "127.0.0.1:%d" % zk_secure) == expected
        assert turn_away_tls_clients(stores, plain, secure) == expected
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        server.stop()



def handshake_counts(admin_port):
    """TLS handshakes in progress, refused past the limit, failed, and failed
    authentications, from the AdminServer (a four-letter word would be a connection on
    the limited port itself)."""
    result = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/commands/monitor" % admin_port],
                            capture_output=True, text=True, timeout=30, check=True)
    monitored = json.loads(result.stdout)
    return tuple(int(monitored[name]) for name in (
        "outstanding_tls_handshake", "tls_handshake_exceeded", "unsuccessful_handshake",
        "auth_failed_count"))


def fill_the_handshake_limit(stores, admin_port, port, tls):
    """Two connections that send nothing hold a limit of two; a third is closed at once;
    once the two close, a client (over TLS if `tls`) gets in. Returns the counts after
    each step."""
    seen = [handshake_counts(admin_port)]
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    wait_until(lambda: handshake_counts(admin_port)[0] == 2, timeout=10)
    seen.append(handshake_counts(admin_port))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as third:
        assert third.recv(1) == b"", "closed without a handshake"
    wait_until(lambda: handshake_counts(admin_port)[1] == 1, timeout=10)
    seen.append(handshake_counts(admin_port))
    for connection in held:
        connection.close()
    wait_until(lambda: handshake_counts(admin_port)[0] == 0, timeout=10)
    hosts = "127.0.0.1:%d" % port
    client = tls_client(stores, hosts, start=False) if tls else KazooClient(hosts=hosts, timeout=5)
    client.start(timeout=10)
    client.stop()
    client.close()
    seen.append(handshake_counts(admin_port))
    return seen


def test_the_outstanding_handshake_limit_closes_connections_as_zookeeper_does(stores):
    """On a port that takes TLS and plain clients (`client.portUnification`), as ZooKeeper
    3.8 applies the limit; zkrs applies it on `secureClientPort` too, where ZooKeeper's
    Netty factory decides before it knows the port is secure and so never does."""
    limit = "netty.server.outstandingHandshake.limit=2"
    zk_port, zk_admin, admin, secure_admin = free_ports(4)
    zk_dir = tempfile.mkdtemp(prefix="zkrs-tls-zookeeper-")
    admin_lines = "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=%d"
    zookeeper = start_zookeeper(zk_dir, zk_port, extra="\n".join([
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        "client.portUnification=true",
        "ssl.keyStore.location=%s" % os.path.join(stores, "server.jks"),
        "ssl.keyStore.password=testpass",
        "ssl.trustStore.location=%s" % os.path.join(stores, "trust.jks"),
        "ssl.trustStore.password=testpass", limit, admin_lines % zk_admin]))
    unified, plain, _ = tls_server(stores, secure=False, extra="\n".join(
        ["client.portUnification=true", limit, admin_lines % admin]))
    secure_only, _, secure = tls_server(stores, extra="\n".join([limit, admin_lines % secure_admin]))
    try:
        theirs = fill_the_handshake_limit(stores, zk_admin, zk_port, tls=False)
        ours = fill_the_handshake_limit(stores, admin, int(plain.split(":")[1]), tls=False)
        assert ours == theirs
        assert [counts[:2] for counts in ours] == [(0, 0), (2, 0), (2, 1), (0, 1)]
        on_secure = fill_the_handshake_limit(stores, secure_admin, int(secure.split(":")[1]),
                                             tls=True)
        assert [counts[:2] for counts in on_secure] == [(0, 0), (2, 0), (2, 1), (0, 1)]
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        unified.stop()
        secure_only.stop()
