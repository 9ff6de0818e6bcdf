"""`zkrs import` and `zkrs export` against the real thing: Apache ZooKeeper 3.8 (Debian's
package) is given a varied tree through kazoo and stopped; its data directory is imported;
zkrs is started on the result; every node's data, Stat and ACL must read back as they did
from ZooKeeper. Then zkrs takes a few writes and is stopped, its data directory exported
(the writes as a txn log after the snapshot), and ZooKeeper started on that must serve the
same as zkrs did."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

from conftest import BINARY, Server, free_ports, start_zookeeper, wait_until

def connect(hosts, auth=True):
    client = KazooClient(hosts=hosts, timeout=30)
    client.start(timeout=60)
    if auth:
        client.add_auth("digest", "alice:secret")
    return client


def populate(zk):
    """Sequential and ephemeral nodes, ACLs of every scheme, null and large data, deep
    paths, deleted and rewritten nodes, multis; more txns than snapCount, so ZooKeeper
    writes snapshots while the log goes on. (This kazoo cannot create container or TTL
    nodes.)"""
    zk.create("/app", b"first")
    for i in range(250):
        zk.create("/app/seq-", b"v%d" % i, sequence=True)
    for i in range(0, 250, 3):
        zk.delete("/app/seq-%010d" % i)
    zk.set("/app", b"second")
    zk.set("/app", b"third")
    zk.create("/app/ephemeral", b"mine", ephemeral=True)
    zk.create("/app/ephemeral-seq-", b"", ephemeral=True, sequence=True)
    zk.create("/null")
    zk.create("/big", b"z" * 900_000)
    zk.create("/deep/a/b/c/d/e/f/g", b"deep", makepath=True)
    zk.create(
        "/acls",
        b"guarded",
        acl=[
            make_digest_acl("alice", "secret", all=True),
            make_acl("ip", "127.0.0.1", read=True, write=True),
            make_acl("world", "anyone", read=True),
            make_acl("auth", "", admin=True),
        ],
    )
    zk.set_acls("/null", [make_acl("world", "anyone", read=True, write=True)])
    tx = zk.transaction()
    tx.create("/multi-1", b"1")
    tx.create("/multi-2", b"2")
    tx.set_data("/app", b"fourth")
    tx.commit()
    for i in range(60):
        zk.set("/deep/a", b"again %d" % i)


def dump(zk, path="/", out=None):
    """path -> (data, stat, acl) for every node outside /zookeeper."""
    out = {} if out is None else out
    if path.startswith("/zookeeper"):
        return out
    data, stat = zk.get(path)
    acl, _ = zk.get_acls(path)
    out[path] = (data, tuple(stat), sorted((a.perms, a.id.scheme, a.id.id) for a in acl))
    for child in sorted(zk.get_children(path)):
        dump(zk, path.rstrip("/") + "/" + child, out)
    return out


@pytest.mark.parametrize("compression", ["", "gz", "snappy"])
def test_a_zookeeper_data_directory_imports_node_for_node(compression):
    work = tempfile.mkdtemp(prefix="zkrs-import-")
    zookeeper = None
    owner = None
    server = None
    try:
        port = free_ports(1)[0]
        zookeeper = start_zookeeper(work, port, compression)
        hosts = "127.0.0.1:%d" % port
        owner = connect(hosts)
        populate(owner)
        reader = connect(hosts)
        before = dump(reader)
        reader.stop()
        assert len(before) > 150 and "/app/ephemeral" in before
        # Stopped as an operator stops it: the owner's session stays in ZooKeeper's data.
        zookeeper.terminate()
        zookeeper.wait(timeout=30)
        zookeeper = None
        owner.stop()
        owner = None
        names = os.listdir(os.path.join(work, "data", "version-2"))
        suffix = "." + compression if compression else ""
        snapshots = [name for name in names if name.startswith("snapshot.") and name.endswith(suffix)]
        assert len(snapshots) > 1, names

        target = os.path.join(work, "zkrs")
        os.makedirs(target)
        imported = subprocess.run(
            [BINARY, "import", os.path.join(work, "data"), "--to", os.path.join(target, "data")],
            capture_output=True, text=True, timeout=120,
        )
        assert imported.returncode == 0, imported.stderr
        assert "imported into" in imported.stdout, imported.stdout

        server = Server(directory=target)
        reader = connect(server.hosts)
        after = dump(reader)
        assert sorted(after) == sorted(before)
        for path in before:
            assert after[path] == before[path], path
        # Writes zkrs logs after its snapshot: the export carries them as a txn log.
        reader.set("/app", b"set in zkrs")
        reader.create("/made-in-zkrs", b"new")
        reader.delete("/multi-1")
        expected = dump(reader)
        reader.stop()
        server.kill()

        back = os.path.join(work, "back")
        exported = subprocess.run(
            [BINARY, "export", os.path.join(target, "data"), "--to", os.path.join(back, "data")],
            capture_output=True, text=True, timeout=120,
        )
        assert exported.returncode == 0, exported.stderr
        logged = re.search(r"(\d+) txns after it", exported.stdout)
        assert logged and int(logged.group(1)) >= 3, exported.stdout
        port = free_ports(1)[0]
        zookeeper = start_zookeeper(back, port)
        reader = connect("127.0.0.1:%d" % port)
        again = dump(reader)
        reader.stop()
        assert sorted(again) == sorted(expected)
        for path in expected:
            assert again[path] == expected[path], path
    finally:
        for client in (owner,):
            if client is not None:
                client.stop()
        if zookeeper is not None:
            zookeeper.kill()
            zookeeper.wait()
        if server is not None:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)
