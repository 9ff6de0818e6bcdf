"""ZooKeeper's tree digest beside ZooKeeper 3.8: the `hash` four-letter word and the
AdminServer's `hash` command list a digest at every 128th zxid in the same form, and
`digest.enabled=false` keeps none (each listed as 0), on both. (That the digests
themselves agree is checked where both servers apply the same txns: a zkrs member of a
ZooKeeper ensemble, tests/mixed_ensemble.rs.)"""
import json
import os
import re
import subprocess
import tempfile

import pytest
from kazoo.client import KazooClient

from conftest import Server, four_letter, free_ports, start_zookeeper, stop_zookeeper, wait_until


def writes(hosts, count):
    """A session and `count` creates, sets and deletes: over two multiples of 128 txns."""
    client = KazooClient(hosts=hosts, timeout=30)
    client.start(timeout=15)
    client.create("/d", b"")
    for i in range(count):
        path = client.create("/d/n-", b"v%d" % i, sequence=True)
        if i % 2:
            client.set(path, b"")
        else:
            client.delete(path)
    client.stop()
    client.close()


def admin_digests(port):
    result = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/commands/hash" % port],
                            capture_output=True, text=True, timeout=30, check=True)
    return json.loads(result.stdout)


def listing(hosts):
    """`hash`'s lines as (zxid counter, digest): the zxids' epochs differ (ZooKeeper's
    standalone server counts from epoch 0, zkrs's from 1)."""
    lines = four_letter(hosts, "hash").splitlines()
    assert all(re.fullmatch(r"[0-9a-f]+: -?[0-9]+", line) for line in lines), lines
    return [(int(line.split(":")[0], 16) & 0xFFFFFFFF, int(line.split(": ")[1]))
            for line in lines]


@pytest.mark.parametrize("enabled", [True, False])
def test_digests_are_listed_as_zookeeper_lists_them(enabled):
    zk_port, zk_admin, admin = free_ports(3)
    extra = "4lw.commands.whitelist=*\nadmin.enableServer=true\n" \
            "admin.serverAddress=127.0.0.1\nadmin.serverPort=%d\n"
    switch = "" if enabled else "digest.enabled=false\n"
    zk_dir = tempfile.mkdtemp(prefix="zkrs-digest-zookeeper-")
    zookeeper = start_zookeeper(zk_dir, zk_port, extra=extra % zk_admin + switch)
    zkrs = Server(extra % admin + switch)
    try:
        servers = {"zookeeper": ("127.0.0.1:%d" % zk_port, zk_admin), "zkrs": (zkrs.hosts, admin)}
        for hosts, _ in servers.values():
            writes(hosts, 150)
        listed = {name: listing(hosts) for name, (hosts, _) in servers.items()}
        assert [zxid for zxid, _ in listed["zkrs"]] == [zxid for zxid, _ in listed["zookeeper"]]
        assert [zxid for zxid, _ in listed["zkrs"]] == [0x80, 0x100]
        for name, entries in listed.items():
            if enabled:
                assert all(digest > 0 for _, digest in entries), (name, entries)
                assert len({digest for _, digest in entries}) == 2, (name, entries)
            else:
                assert all(digest == 0 for _, digest in entries), (name, entries)
        answers = {name: admin_digests(port) for name, (_, port) in servers.items()}
        assert answers["zkrs"].keys() == answers["zookeeper"].keys()
        for name, answer in answers.items():
            assert answer["error"] is None and answer["command"] == "hash", answer
            zxids = [entry["zxid"] & 0xFFFFFFFF for entry in answer["digests"]]
            assert zxids == [0x80, 0x100], (name, answer)
            assert [entry["digest"] for entry in answer["digests"]] == \
                [digest for _, digest in listed[name]]
        assert answers["zkrs"]["digests"][0].keys() == answers["zookeeper"]["digests"][0].keys()
        assert {entry["digest_version"] for entry in answers["zkrs"]["digests"]} == {2}
        assert answers["zookeeper"]["digests"][0]["digest_version"] == 2
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()


def not_serving(port):
    try:
        return "not currently serving" in four_letter("127.0.0.1:%d" % port, "srvr")
    except OSError:
        return False


def test_a_member_without_a_quorum_says_so_without_a_line_end():
    ports = free_ports(6)
    lines = "initLimit=10\nsyncLimit=5\n4lw.commands.whitelist=*\n" \
        "server.1=127.0.0.1:%d:%d\nserver.2=127.0.0.1:%d:%d\n" % tuple(ports[2:])
    zk_dir = tempfile.mkdtemp(prefix="zkrs-digest-zookeeper-")
    os.makedirs(os.path.join(zk_dir, "data"))
    with open(os.path.join(zk_dir, "data", "myid"), "w") as f:
        f.write("1\n")
    zookeeper = start_zookeeper(zk_dir, ports[0], extra=lines, ready=not_serving)
    zkrs_dir = tempfile.mkdtemp(prefix="zkrs-digest-member-")
    os.makedirs(os.path.join(zkrs_dir, "data"))
    with open(os.path.join(zkrs_dir, "data", "myid"), "w") as f:
        f.write("2\n")
    # Each is the other's missing member: neither has a quorum.
    zkrs = Server(lines.replace("server.1=127.0.0.1:%d:%d" % tuple(ports[2:4]),
                                "server.1=127.0.0.1:%d:%d" % tuple(free_ports(2))),
                  directory=zkrs_dir, client_port=ports[1])
    try:
        wait_until(lambda: not_serving(ports[1]), timeout=30)
        answers = {four_letter(hosts, "hash") for hosts in
                   ("127.0.0.1:%d" % ports[0], "127.0.0.1:%d" % ports[1])}
        assert answers == {"This ZooKeeper instance is not currently serving requests"}
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()
