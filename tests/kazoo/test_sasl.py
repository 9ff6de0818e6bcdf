"""SASL DIGEST-MD5 as kazoo (pure-sasl) and zkCli (a JAAS Client section) see it: users
from the JAAS file's Server section, `sasl` identities in ACLs, the super user, and
exchanges that fail or never finish.
"""
import os
import socket
import struct
import subprocess

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import make_acl

from conftest import ROOT, Server, after_whoami, four_letter, zkcli

JAAS = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
"""


@pytest.fixture
def sasl_server(tmp_path):
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS)
    server = Server(
        extra="authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
        "java.security.auth.login.config=%s\nzookeeper.superUser=super\n" % jaas
    )
    yield server
    server.stop()


def sasl_client(server, user, password):
    options = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    client = KazooClient(hosts=server.hosts, sasl_options=options, timeout=5)
    client.start(timeout=10)
    return client


def test_a_sasl_user_is_an_identity_in_acls(sasl_server):
    bob = sasl_client(sasl_server, "bob", "bobsecret")
    acl = make_acl("sasl", "bob", all=True)
    bob.create("/bob", b"mine", acl=[acl])
    assert bob.get("/bob")[0] == b"mine"
    assert bob.get_acls("/bob")[0] == [acl]
    anonymous = KazooClient(hosts=sasl_server.hosts, timeout=5)
    anonymous.start(timeout=10)
    with pytest.raises(NoAuthError):
        anonymous.get("/bob")
    admin = sasl_client(sasl_server, "super", "adminsecret")
    assert admin.get("/bob")[0] == b"mine"
    for client in (bob, anonymous, admin):
        client.stop()


@pytest.mark.parametrize("user,password", [("bob", "wrong"), ("eve", "bobsecret")])
def test_wrong_credentials_fail_and_hurt_no_other_session(sasl_server, user, password):
    bob = sasl_client(sasl_server, "bob", "bobsecret")
    # As with ZooKeeper, kazoo reports CONNECTED before its SASL exchange: its start()
    # either sees the AUTH_FAILED that follows at once (and says "Connection time-out"),
    # or returns and the next call raises AuthFailedError. Never does a call succeed.
    impostor = KazooClient(
        hosts=sasl_server.hosts,
        sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": password},
        timeout=5,
    )
    try:
        with pytest.raises((AuthFailedError, KazooTimeoutError)):
            impostor.start(timeout=10)
            impostor.get("/")
    finally:
        impostor.stop()
    bob.create("/still", b"here")
    assert bob.get("/still")[0] == b"here"
    bob.stop()
    log = open(os.path.join(sasl_server.dir, "server.log")).read()
    assert "SASL authentication failed" in log
    counts = [
        line.split("\t")[1]
        for line in four_letter(sasl_server.hosts, "mntr").splitlines()
        if line.startswith("zk_auth_failed_count\t")
    ]
    # ZooKeeper 3.8 counts only failed TLS handshakes there, not a failed SASL exchange
    # (checked beside it with the same JAAS file and clients).
    assert counts == ["0"], counts


def test_an_exchange_that_never_finishes_hurts_no_other_session(sasl_server):
    host, port = sasl_server.hosts.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        connect = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + bytes(16) + b"\0"
        raw.sendall(struct.pack(">i", len(connect)) + connect)
        raw.recv(4096)
        # The empty first token of DIGEST-MD5: the server answers with its challenge.
        sasl = struct.pack(">iii", 1, 102, 0)
        raw.sendall(struct.pack(">i", len(sasl)) + sasl)
        assert b"nonce=" in raw.recv(4096)
        bob = sasl_client(sasl_server, "bob", "bobsecret")
        bob.create("/meanwhile", b"")
        bob.stop()


def zkcli_as_super(server, tmp_path, password, commands):
    jaas = tmp_path / "client.conf"
    jaas.write_text(
        'Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n'
        ' username="super" password="%s";\n};\n' % password
    )
    return zkcli(server.hosts, commands, ["-Djava.security.auth.login.config=%s" % jaas])


def test_zkcli_with_a_jaas_client_section_sees_what_zookeeper_shows(sasl_server, tmp_path):
    lines = zkcli_as_super(sasl_server, tmp_path, "adminsecret", "whoami\nquit\n")
    # ZooKeeper 3.8 prints these lines, in this order, for the same JAAS files.
    assert after_whoami(lines)[:3] == ["sasl: super", "super: ", "ip: 127.0.0.1"], lines
    lines = zkcli_as_super(sasl_server, tmp_path, "wrong", "ls /\nquit\n")
    assert "WatchedEvent state:AuthFailed type:None path:null" in lines, lines
    assert "KeeperErrorCode = AuthFailed for /" in lines, lines


CURATOR_JARS = [
    "/usr/share/java/%s.jar" % jar
    for jar in [
        "curator-framework",
        "curator-client",
        "zookeeper",
        "zookeeper-jute",
        "guava",
        "slf4j-api",
        "slf4j-nop",
    ]
]


def test_curator_with_a_jaas_client_section_reads_what_only_it_may(sasl_server, tmp_path):
    source = os.path.join(ROOT, "tests", "clients", "CuratorSaslCheck.java")
    classpath = ":".join(CURATOR_JARS)
    subprocess.run(
        ["javac", "-nowarn", "-d", str(tmp_path), "-cp", classpath, source], check=True
    )
    jaas = tmp_path / "client.conf"

    def run(password):
        jaas.write_text(
            'Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n'
            ' username="bob" password="%s";\n};\n' % password
        )
        return subprocess.run(
            [
                "java",
                "-Djava.security.auth.login.config=%s" % jaas,
                "-cp",
                "%s:%s" % (tmp_path, classpath),
                "CuratorSaslCheck",
                sasl_server.hosts,
                "/curator-" + password,
                "bob",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    good = run("bobsecret")
    assert good.returncode == 0 and "read curator" in good.stdout, good.stderr
    bad = run("wrong")
    assert bad.returncode != 0, bad.stdout
