"""The audit log (audit.enable=true): the same writes against Apache ZooKeeper 3.8 and zkrs
give the same audit lines, and on an ensemble only the member holding the client's
connection audits its writes while every member audits the ephemerals a session loses.
"""
import os
import re
import shutil
import subprocess
import tempfile

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from conftest import (BINARY, CreateContainer, CreateTtl, Ensemble, Server, call, free_ports,
                      start_zookeeper, wait_until)


def audited_writes(hosts):
    """Every kind of write ZooKeeper audits, failed ones too, then the session's close."""
    client = KazooClient(hosts=hosts, timeout=10)
    client.start(timeout=15)
    client.create("/a", b"x")
    client.create("/a/seq-", b"", sequence=True)
    client.create("/a/eph", b"", ephemeral=True)
    client.create("/a/eseq-", b"", ephemeral=True, sequence=True)
    call(client, CreateContainer("/cont", b"", OPEN_ACL_UNSAFE, 4))
    call(client, CreateTtl("/ttl", b"", OPEN_ACL_UNSAFE, 5))
    try:
        call(client, CreateTtl("/ttl", b"", OPEN_ACL_UNSAFE, 5))
    except NodeExistsError:
        pass
    multi = client.transaction()
    multi._add(CreateContainer("/mc", b"", OPEN_ACL_UNSAFE, 4))
    multi._add(CreateTtl("/mt", b"", OPEN_ACL_UNSAFE, 5))
    try:
        multi.commit()
    except Exception:
        pass  # kazoo cannot read the reply of these two opcodes inside a multi
    try:
        client.create("/a", b"")
    except NodeExistsError:
        pass
    client.set("/a", b"y")
    try:
        client.set("/a", b"z", version=99)
    except BadVersionError:
        pass
    try:
        client.delete("/nope")
    except NoNodeError:
        pass
    client.set_acls("/a", [make_digest_acl("bob", "pw", all=True)] + list(OPEN_ACL_UNSAFE))
    multi = client.transaction()
    multi.create("/m1", b"")
    multi.set_data("/a", b"m")
    multi.check("/a", 2)
    multi.delete("/m1")
    multi.create("/m2", b"", ephemeral=True)
    multi.create("/m3-", b"", sequence=True)
    multi.commit()
    multi = client.transaction()
    multi.create("/m4", b"")
    multi.delete("/nope")
    multi.commit()
    client.exists("/a")
    client.get_children("/")
    client.add_auth("digest", "bob:pw")
    client.create("/b", b"")
    client.delete("/b")
    client.sync("/")
    client.stop()
    client.close()


AUDIT_LINE = re.compile(r"(?:Slf4jAuditLogger -|zkrs::audit:) (.*)$")


def audit_lines(log_path):
    """The audit lines of a server's log, session ids replaced by SESSION."""
    lines = []
    with open(log_path, errors="replace") as log:
        for line in log:
            match = AUDIT_LINE.search(line.rstrip("\n"))
            if match:
                lines.append(re.sub(r"session=0x[0-9a-f]+", "session=SESSION", match.group(1)))
    return lines


def stop_gracefully(process):
    process.terminate()
    process.wait(timeout=30)


def ephemeral_lines(lines):
    return [line for line in lines if "ephemeralZNodeDeletion" in line]


def test_the_same_writes_give_zookeepers_audit_lines(monkeypatch):
    zk_dir = tempfile.mkdtemp(prefix="zkrs-audit-zk-")
    log_dir = tempfile.mkdtemp(prefix="zkrs-audit-log-")
    (zk_port,) = free_ports(1)
    zookeeper = start_zookeeper(zk_dir, zk_port, extra="audit.enable=true")
    try:
        audited_writes("127.0.0.1:%d" % zk_port)
    finally:
        stop_gracefully(zookeeper)
    expected = audit_lines(os.path.join(zk_dir, "zookeeper.log"))
    # At warn the audit lines are still logged (the server's own target stays at info:
    # its "serving clients" line tells the test its port), and go to their own file too.
    monkeypatch.setenv("ZKRS_LOG", "warn,zkrs::server=info")
    monkeypatch.setenv("ZKRS_LOG_DIR", log_dir)
    server = Server("audit.enable=true")
    try:
        audited_writes(server.hosts)
        stop_gracefully(server.process)
        log = os.path.join(server.dir, "server.log")
        wait_until(lambda: "serverStop" in open(log).read(), timeout=10)
        got = audit_lines(log)
    finally:
        server.stop()
    try:
        # The three ephemerals go in the order of ZooKeeper's hash set of them.
        assert len(ephemeral_lines(got)) == 3
        assert got == expected
        others = [line for line in got if line not in ephemeral_lines(got)]
        assert others[0].endswith("\toperation=serverStart\tresult=success")
        assert "operation=multiOperation\tresult=failure" in others[-4]
        assert others[-1].endswith("operation=serverStop\tresult=invoked")
        files = [name for name in os.listdir(log_dir) if name.startswith("zookeeper_audit.")]
        assert len(files) == 1
        with open(os.path.join(log_dir, files[0])) as audit_file:
            written = audit_file.read().splitlines()
        assert len(written) == len(got)
        assert all(" audit.Slf4jAuditLogger: " in line for line in written)
        assert any(" ERROR audit.Slf4jAuditLogger: " in line and "znode=/nope" in line
                   for line in written)
    finally:
        shutil.rmtree(zk_dir, ignore_errors=True)
        shutil.rmtree(log_dir, ignore_errors=True)


def test_only_the_member_holding_the_connection_audits_its_writes():
    ensemble = Ensemble(extra="audit.enable=true")
    try:
        leader = ensemble.leader()
        follower = (leader + 1) % 3
        client = KazooClient(hosts=ensemble.members[follower].hosts, timeout=10)
        client.start(timeout=15)
        client.create("/audited", b"")
        client.create("/gone", b"", ephemeral=True)
        client.stop()
        client.close()
        logs = [os.path.join(member.dir, "server.log") for member in ensemble.members]

        def lines(i):
            return audit_lines(logs[i])

        wait_until(lambda: all(ephemeral_lines(lines(i)) for i in range(3)), timeout=20)
        for i in range(3):
            creates = [line for line in lines(i) if "operation=create" in line]
            assert len(creates) == (2 if i == follower else 0), (i, lines(i))
            assert len(ephemeral_lines(lines(i))) == 1
            assert "znode=/gone\tresult=success" in ephemeral_lines(lines(i))[0]
        assert "znode=/audited\tznode_type=persistent\tresult=success" in " ".join(lines(follower))
    finally:
        ensemble.stop()


def test_a_java_audit_logger_class_is_refused():
    """A custom AuditLogger would send the events somewhere zkrs cannot: it refuses to start
    rather than audit elsewhere than configured."""
    directory = tempfile.mkdtemp(prefix="zkrs-audit-class-")
    try:
        config = os.path.join(directory, "zoo.cfg")
        with open(config, "w") as f:
            f.write("dataDir=%s\nclientPort=0\naudit.enable=true\n"
                    "audit.impl.class=com.example.SiemAuditLogger\n" % directory)
        result = subprocess.run([BINARY, "server", config], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 2, result.stderr
        assert "audit.impl.class" in result.stderr
    finally:
        shutil.rmtree(directory, ignore_errors=True)
