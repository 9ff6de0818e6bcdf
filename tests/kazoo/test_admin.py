"""The AdminServer (admin.enableServer): every command read with curl and a JSON parser,
side by side with Apache ZooKeeper 3.8's AdminServer after the same kazoo session;
snapshot and restore (ZooKeeper 3.9's) checked against ZooKeeper's own snapshot files;
their authentication and rate limits; the readiness endpoint on an ensemble."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.security import make_acl, make_digest_acl

from conftest import (Ensemble, ROOT, Server, free_ports, start_zookeeper, stop_zookeeper,
                      wait_until)

# What ZooKeeper 3.8's /commands lists; zkrs lists these and 3.9's snapshot and restore.
ZOOKEEPER_COMMANDS = [
    "configuration", "connection_stat_reset", "connections", "dirs", "dump", "environment",
    "get_trace_mask", "hash", "initial_configuration", "is_read_only", "last_snapshot",
    "leader", "monitor", "observer_connection_stat_reset", "observers", "ruok",
    "server_stats", "set_trace_mask", "stat_reset", "stats", "system_properties",
    "voting_view", "watch_summary", "watches", "watches_by_path", "zabstate",
]

# Fields of ZooKeeper's that zkrs leaves out (the README says why): JVM-only ones, and
# connection counters zkrs does not keep.
NOT_IN_ZKRS = {"provider_null", "non_mtlsremote_conn_count", "non_mtlslocal_conn_count"}


def curl(url, *args):
    """(status, headers, body bytes) of curl's request to `url`."""
    with tempfile.NamedTemporaryFile() as headers, tempfile.NamedTemporaryFile() as body:
        result = subprocess.run(
            ["curl", "-s", "-D", headers.name, "-o", body.name, "-w", "%{http_code}", *args, url],
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lines = open(headers.name).read().splitlines()
        fields = dict(
            (name.strip().lower(), value.strip())
            for name, value in (line.split(":", 1) for line in lines[1:] if ":" in line)
        )
        return int(result.stdout), fields, open(body.name, "rb").read()


def command(base, name, *args):
    status, _, body = curl("%s/commands/%s" % (base, name), *args)
    return status, json.loads(body)


def session_workload(hosts):
    """The same session on either server: nodes, an ephemeral, a data and a child watch."""
    client = KazooClient(hosts=hosts, timeout=10)
    client.start(timeout=30)
    client.ensure_path("/a/b")
    client.create("/e", b"x", ephemeral=True)
    client.get("/a", watch=lambda event: None)
    client.get_children("/a", watch=lambda event: None)
    return client


def admin_lines(port):
    return "admin.serverAddress=127.0.0.1\nadmin.serverPort=%d\n" % port


@pytest.fixture(scope="module")
def side_by_side():
    zk_port, zk_admin, zkrs_admin = free_ports(3)
    zk_dir = tempfile.mkdtemp(prefix="zkrs-admin-zookeeper-")
    zookeeper = start_zookeeper(
        zk_dir, zk_port, extra="admin.enableServer=true\n" + admin_lines(zk_admin)
    )
    # ZooKeeper's tick, so the session timeouts derived from it agree too.
    zkrs = Server("tickTime=2000\nadmin.enableServer=true\n" + admin_lines(zkrs_admin))
    zk_base = "http://127.0.0.1:%d" % zk_admin
    wait_until(lambda: curl(zk_base + "/commands/ruok")[0] == 200, timeout=60)
    clients = [session_workload("127.0.0.1:%d" % zk_port), session_workload(zkrs.hosts)]
    yield {
        "zookeeper": (zk_base, clients[0]),
        "zkrs": ("http://127.0.0.1:%d" % zkrs_admin, clients[1]),
    }
    for client in clients:
        client.stop()
    stop_zookeeper(zookeeper, zk_dir)
    zkrs.stop()


# The objects whose field names are fixed (the rest are maps keyed by sessions or paths).
STRUCTURES = ("server_stats", "client_response", "client_response_stats")


def keys(value):
    """The field names of a JSON answer, nested ones as `outer.inner`."""
    found = set()
    for name, item in value.items():
        found.add(name)
        if isinstance(item, dict) and name in STRUCTURES:
            found |= {name + "." + inner for inner in keys(item)}
        if isinstance(item, list) and item and isinstance(item[0], dict):
            found |= {name + "[]." + inner for inner in keys(item[0])}
    return found


def test_every_command_answers_with_zookeepers_fields(side_by_side):
    zk_base, zk_client = side_by_side["zookeeper"]
    base, client = side_by_side["zkrs"]
    status, _, listing = curl(base + "/commands")
    assert status == 200
    listed = [line.split('">')[1].split("<")[0] for line in listing.decode().splitlines()
              if line.startswith("<a href")]
    assert listed == sorted(ZOOKEEPER_COMMANDS + ["restore", "snapshot"])
    for name in ZOOKEEPER_COMMANDS:
        zk_status, theirs = command(zk_base, name)
        status, ours = command(base, name)
        assert (status, zk_status) == (200, 200), name
        assert ours["command"] == theirs["command"] == name
        assert ours["error"] == theirs["error"], name
        if name in ("environment", "system_properties"):
            # Java's properties are the JVM's; zkrs reports the operating system's.
            assert ours["os.version"] == theirs["os.version"] and ours["user.dir"], name
            continue
        if name == "monitor":
            # Every metric zkrs reports goes by the name ZooKeeper gives it.
            assert set(ours) <= set(theirs), set(ours) - set(theirs)
            continue
        missing = {field for field in keys(theirs) - keys(ours)
                   if field.split(".")[-1] not in NOT_IN_ZKRS}
        assert keys(ours) - keys(theirs) == set() and missing == set(), (name, ours, theirs)
    # The values the same session gives both servers.
    for name in ["watch_summary", "is_read_only", "voting_view", "zabstate", "leader"]:
        assert command(base, name)[1] == command(zk_base, name)[1], name
    session = str(client.client_id[0])
    assert command(base, "watches")[1]["session_id_to_watched_paths"] == {session: ["/a"]}
    assert command(base, "watches_by_path")[1]["path_to_session_ids"] == {
        "/a": [client.client_id[0]]
    }
    assert command(base, "dump")[1]["session_id_to_ephemeral_paths"] == {session: ["/e"]}
    assert command(base, "cons")[1]["connections"][0]["session_id"] == client.client_id[0]
    ours, theirs = command(base, "configuration")[1], command(zk_base, "configuration")[1]
    for field in ["tick_time", "max_client_cnxns", "min_session_timeout", "max_session_timeout",
                  "server_id", "client_port_listen_backlog"]:
        assert ours[field] == theirs[field], field
    assert "admin.serverPort=" in command(base, "icfg")[1]["initial_configuration"]
    assert command(base, "mntr")[1]["znode_count"] == command(zk_base, "mntr")[1]["znode_count"]
    assert command(base, "stmk", "-G", "-d", "traceMask=34")[1]["tracemask"] == 34
    assert command(base, "gtmk")[1]["tracemask"] == 34
    assert command(base, "nosuch")[1] == command(zk_base, "nosuch")[1]


def exists(client, path):
    """Whether `path` exists, false while the client reconnects."""
    try:
        return client.connected and client.exists(path) is not None
    except KazooException:
        return False


def tree_of(client, path="/"):
    """Every node under `path` but /zookeeper: its data, version and ACL."""
    found = {}
    for child in client.get_children(path):
        child_path = path.rstrip("/") + "/" + child
        if child_path == "/zookeeper":
            continue
        data, stat = client.get(child_path)
        found[child_path] = (data, stat.version, stat.czxid, client.get_acls(child_path)[0])
        found.update(tree_of(client, child_path))
    return found


def test_a_snapshot_from_zkrs_is_one_zookeeper_starts_from():
    admin_port, zk_port = free_ports(2)
    zkrs = Server("admin.enableServer=true\n" + admin_lines(admin_port))
    base = "http://127.0.0.1:%d" % admin_port
    zk_dir = tempfile.mkdtemp(prefix="zkrs-admin-snapshot-")
    zookeeper = None
    try:
        client = zkrs.client()
        client.add_auth("digest", "alice:secret")
        for i in range(50):
            client.create("/tree/n%02d" % i, b"value-%d" % i, makepath=True)
        client.create("/private", b"p", acl=[make_digest_acl("alice", "secret", all=True)])
        client.set("/tree/n07", b"changed")
        expected = tree_of(client)
        status, headers, body = curl(base + "/commands/snapshot", "-H", "Authorization: ip")
        assert status == 200 and headers["content-type"] == "application/octet-stream"
        assert int(headers["snapshot_size"]) == len(body) > 0
        zxid = headers["last_zxid"]
        assert int(zxid, 16) == client.exists("/tree/n07").mzxid
        os.makedirs(os.path.join(zk_dir, "data", "version-2"))
        with open(os.path.join(zk_dir, "data", "version-2", "snapshot." + zxid[2:]), "wb") as f:
            f.write(body)
        client.stop()
        zookeeper = start_zookeeper(zk_dir, zk_port)
        reader = KazooClient(hosts="127.0.0.1:%d" % zk_port, timeout=10)
        reader.start(timeout=30)
        reader.add_auth("digest", "alice:secret")
        assert tree_of(reader) == expected
        reader.stop()
    finally:
        if zookeeper:
            zookeeper.kill()
            zookeeper.wait()
        shutil.rmtree(zk_dir, ignore_errors=True)
        zkrs.stop()


def test_restore_takes_zookeepers_snapshot_and_is_durable():
    admin_port, zk_port = free_ports(2)
    # The interval (ms) also limits snapshots, to one per interval/1000 ms as ZooKeeper's.
    extra = "admin.enableServer=true\nadmin.rateLimiterIntervalInMS=500\n" + admin_lines(admin_port)
    zkrs = Server(extra)
    base = "http://127.0.0.1:%d" % admin_port
    zk_dir = tempfile.mkdtemp(prefix="zkrs-admin-restore-")
    zookeeper = start_zookeeper(zk_dir, zk_port)
    try:
        writer = KazooClient(hosts="127.0.0.1:%d" % zk_port, timeout=10)
        writer.start(timeout=30)
        for i in range(30):
            writer.create("/zk/n%02d" % i, b"from zookeeper %d" % i, makepath=True)
        expected = tree_of(writer)
        writer.stop()
        # ZooKeeper snapshots its whole state once it has loaded it again.
        zookeeper.kill()
        zookeeper.wait()
        zookeeper = start_zookeeper(zk_dir, zk_port)
        version_2 = os.path.join(zk_dir, "data", "version-2")

        def newest():
            zxids = [int(f.split(".")[1], 16) for f in os.listdir(version_2)
                     if f.startswith("snapshot.")]
            return max(zxids)

        log = os.path.join(zk_dir, "zookeeper.log")
        wait_until(lambda: "Snapshot taken" in open(log).read() and newest() > 0, timeout=60)
        newest = "snapshot.%x" % newest()
        client = zkrs.client()
        client.create("/zkrs-only", b"goes")
        status, headers, own = curl(base + "/commands/snapshot", "-H", "Authorization: ip")
        assert status == 200
        client.create("/after-backup", b"goes too")
        status, answer = command(base, "restore", "-X", "POST", "-H", "Authorization: ip",
                                 "--data-binary", "@" + os.path.join(version_2, newest))
        assert status == 200 and answer["error"] is None, answer
        assert answer["last_zxid"] >= int(headers["last_zxid"], 16)
        # Every client was disconnected; kazoo reconnects and sees the restored state.
        wait_until(lambda: exists(client, "/zk"), timeout=30)
        assert tree_of(client) == expected
        client.create("/written-after", b"kept")
        zkrs.kill()
        zkrs = Server(extra, directory=zkrs.dir)
        reader = zkrs.client()
        after = tree_of(reader)
        assert after.pop("/written-after")[0] == b"kept"
        assert after == expected
        # zkrs's own snapshot restores the state it was taken in.
        time.sleep(0.6)
        own_file = os.path.join(zk_dir, "own.snapshot")
        with open(own_file, "wb") as f:
            f.write(own)
        status, answer = command(base, "restore", "-X", "POST", "-H", "Authorization: ip",
                                 "--data-binary", "@" + own_file)
        assert status == 200 and answer["error"] is None, answer
        wait_until(lambda: exists(reader, "/zkrs-only"), timeout=30)
        assert reader.exists("/after-backup") is None and reader.exists("/zk") is None
        reader.stop()
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()


def test_snapshot_and_restore_need_every_permission_on_the_root_and_are_rate_limited():
    admin_port, = free_ports(1)
    zkrs = Server("admin.enableServer=true\n" + admin_lines(admin_port))
    base = "http://127.0.0.1:%d" % admin_port
    try:
        client = zkrs.client()
        client.set_acls("/", [make_digest_acl("admin", "pw", all=True)])
        url = base + "/commands/snapshot?streaming=false"
        status, _, body = curl(url)
        assert (status, json.loads(body)["error"]) == (401, "Auth info is missing for the command")
        status, _, body = curl(url, "-H", "Authorization: nosuch x")
        assert (status, json.loads(body)["error"]) == (401, "Not authenticated")
        for credentials in ["ip", "digest admin:wrong"]:
            status, _, body = curl(url, "-H", "Authorization: " + credentials)
            assert (status, json.loads(body)["error"]) == (403, "Not authorized"), credentials
        status, headers, body = curl(url, "-H", "Authorization: digest admin:pw")
        assert status == 200 and json.loads(body) == {"command": "snapshot", "error": None}
        assert int(headers["snapshot_size"]) > 0 and headers["last_zxid"].startswith("0x")
        status, _, _ = curl(url, "-H", "Authorization: digest admin:pw")
        assert status == 429
        restore = base + "/commands/restore"
        status, _, body = curl(restore, "-X", "POST", "--data-binary", "x",
                               "-H", "Authorization: ip")
        assert status == 403
        status, _, body = curl(restore, "-X", "POST", "--data-binary", "not a snapshot",
                               "-H", "Authorization: digest admin:pw")
        assert status == 500 and json.loads(body)["error"], body
        assert curl(restore)[0] == 405
        client.stop()
    finally:
        zkrs.stop()


def test_readiness_and_the_ensemble_commands():
    ports = free_ports(3)
    ensemble = Ensemble(
        member_extra=lambda i: "admin.enableServer=true\n" + admin_lines(ports[i])
    )
    bases = ["http://127.0.0.1:%d" % port for port in ports]
    try:
        leader = ensemble.leader()
        wait_until(lambda: all(curl(base + "/ready")[0] == 200 for base in bases), timeout=30)
        roles = [json.loads(curl(base + "/ready")[2])["role"] for base in bases]
        assert roles[leader] == "leader" and sorted(roles) == ["follower", "follower", "leader"]
        for i, base in enumerate(bases):
            answer = command(base, "leader")[1]
            assert answer["leader_id"] == leader + 1 and answer["is_leader"] == (i == leader)
            state = command(base, "zabstate")[1]
            assert (state["myid"], state["voting"], state["zabstate"]) == (i + 1, True, "broadcast")
            view = command(base, "voting_view")[1]["current_config"]
            assert sorted(view) == ["1", "2", "3"]
            assert view[str(i + 1)]["learner_type"] == "participant"
            assert command(base, "observers")[1]["synced_observers"] == 0
        status, answer = command(bases[leader], "restore", "-X", "POST", "-H", "Authorization: ip",
                                 "--data-binary", "x")
        assert status == 500 and "standalone" in answer["error"]
        # A member alone looks for a leader: not ready, and serving no commands.
        others = [i for i in range(3) if i != leader]
        for i in others:
            ensemble.members[i].kill()
        wait_until(lambda: curl(bases[leader] + "/ready")[0] == 503, timeout=30)
        assert json.loads(curl(bases[leader] + "/ready")[2]) == {"ready": False, "role": "looking"}
        assert command(bases[leader], "stats")[1]["error"] == (
            "This ZooKeeper instance is not currently serving requests"
        )
        assert command(bases[leader], "mntr")[1]["server_state"] == "looking"
    finally:
        ensemble.stop()


CLIENT_ID = "CN=client.test,OU=client,O=zkrs tests,C=US"


def https_lines(stores, port, *flags):
    """An AdminServer on `port` with the ssl.quorum stores (ZooKeeper's for HTTPS)."""
    return admin_lines(port) + "admin.enableServer=true\n" + "".join(
        flag + "\n" for flag in flags
    ) + (
        "ssl.quorum.keyStore.location=%s\nssl.quorum.keyStore.password=testpass\n"
        "ssl.quorum.trustStore.location=%s\nssl.quorum.trustStore.password=testpass\n"
        % (os.path.join(stores, "server.jks"), os.path.join(stores, "trust.jks"))
    )


def reaches(url, *args):
    """Whether curl gets any HTTP answer from `url` (not a failed connection or handshake)."""
    result = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args, url],
                            capture_output=True, text=True, timeout=60)
    return result.returncode == 0 and result.stdout != "000"


def test_https_with_client_certificates_as_x509_identities():
    stores = tempfile.mkdtemp(prefix="zkrs-admin-tls-")
    subprocess.run([os.path.join(ROOT, "tests", "support", "make-tls-stores"), stores], check=True)
    admin_port, unified_port = free_ports(2)
    forced = Server(https_lines(stores, admin_port, "admin.forceHttps=true",
                                "admin.needClientAuth=true"))
    unified = Server(https_lines(stores, unified_port, "admin.portUnification=true"))
    ca = ["--cacert", os.path.join(stores, "ca.pem")]

    def as_who(who):
        return ca + ["--cert", os.path.join(stores, who + ".crt"),
                     "--key", os.path.join(stores, who + ".key")]

    try:
        base = "https://localhost:%d" % admin_port
        assert command(base, "ruok", *as_who("client")) == (200, {"command": "ruok", "error": None})
        # HTTPS only, and only for a client whose certificate the trust store verifies.
        assert not reaches(base + "/commands/ruok", *ca)
        assert not reaches("http://127.0.0.1:%d/commands/ruok" % admin_port)
        client = forced.client()
        client.set_acls("/", [make_acl("x509", CLIENT_ID, all=True)])
        url = base + "/commands/snapshot?streaming=false"
        status, _, body = curl(url, "-H", "Authorization: x509", *as_who("client"))
        assert status == 200 and json.loads(body)["error"] is None, body
        status, _, body = curl(url, "-H", "Authorization: x509", *as_who("other"))
        assert (status, json.loads(body)["error"]) == (403, "Not authorized")
        client.stop()
        # A unified port answers HTTP and HTTPS; with no certificate x509 names nobody.
        unified_base = "localhost:%d" % unified_port
        assert command("http://" + unified_base, "ruok")[0] == 200
        assert command("https://" + unified_base, "ruok", *ca)[0] == 200
        status, _, body = curl("https://%s/commands/snapshot" % unified_base,
                               "-H", "Authorization: x509", *ca)
        assert (status, json.loads(body)["error"]) == (401, "Not authenticated")
    finally:
        forced.stop()
        unified.stop()
        shutil.rmtree(stores, ignore_errors=True)
