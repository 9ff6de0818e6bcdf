"""ZooKeeper's read_per_namespace and write_per_namespace: the bytes each read and write
moves, by top-level znode, compared line by line with Apache ZooKeeper 3.8 under the same
client calls, after srst, and after a restart that replays the log."""
import tempfile

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

from conftest import (Ensemble, Server, four_letter, free_ports, start_zookeeper,
                      start_zookeeper_ensemble, stop_zookeeper, wait_until)


def per_namespace(hosts):
    """The mntr lines of the two per-namespace traffic summaries."""
    lines = dict(line.split("\t", 1) for line in four_letter(hosts, "mntr").splitlines())
    return {key: value for key, value in lines.items()
            if key.endswith(("_read_per_namespace", "_write_per_namespace"))}


def namespace_workload(hosts):
    """Writes and reads in three namespaces (one named outside ASCII), reads of `/`, a
    multi that commits and one that fails, a read refused by an ACL, and an ephemeral
    node deleted with its session; fewer than 50 txns, so ZooKeeper (snapCount=100)
    takes no snapshot and a restart replays them all."""
    owner = KazooClient(hosts=hosts, timeout=30)
    other = KazooClient(hosts=hosts, timeout=30)
    owner.start(timeout=15)
    other.start(timeout=15)
    owner.create("/app", b"abc")
    owner.create("/app/seq-", b"12345", sequence=True)
    owner.create("/app/eph", b"e", ephemeral=True)
    owner.create("/caf\u00e9", "\U0001d11e-clef".encode())
    owner.set("/app", b"abcdef")
    owner.get("/app")
    owner.exists("/app")
    owner.exists("/app/missing")
    owner.get_children("/app")
    owner.get_children("/app", include_data=True)
    owner.get("/caf\u00e9")
    owner.get_children("/caf\u00e9")
    owner.get_children("/")
    owner.get("/")
    owner.get("/zookeeper/config")
    committed = owner.transaction()
    committed.create("/other", b"x")
    committed.set_data("/other", b"yy")
    committed.delete("/other")
    results = committed.commit()
    assert results[0] == "/other" and results[2] is True, results
    failed = owner.transaction()
    failed.create("/rolled-back", b"zzz")
    failed.check("/app", 99)
    failed.commit()
    assert not owner.exists("/rolled-back")
    owner.create("/secret", b"s", acl=[make_digest_acl("u", "p", all=True)])
    try:
        other.get("/secret")
        raise AssertionError("the ACL let an unauthenticated read through")
    except NoAuthError:
        pass
    owner.delete("/caf\u00e9")
    other.stop()
    other.close()
    owner.stop()
    owner.close()
    return per_namespace(hosts)


def test_bytes_per_namespace_agree_with_zookeeper_after_srst_and_a_restart():
    zk_port = free_ports(1)[0]
    zk_dir = tempfile.mkdtemp(prefix="zkrs-namespace-zookeeper-")
    extra = "4lw.commands.whitelist=*\n"
    zookeeper = start_zookeeper(zk_dir, zk_port, extra=extra)
    zkrs = Server()
    try:
        hosts = {"zookeeper": "127.0.0.1:%d" % zk_port, "zkrs": zkrs.hosts}
        seen = {name: namespace_workload(server) for name, server in hosts.items()}
        assert seen["zkrs"] == seen["zookeeper"]
        # Reads and writes in app, café and zookeeper; writes alone in other and secret.
        assert seen["zkrs"]["zk_cnt_app_write_per_namespace"] == "5"
        assert seen["zkrs"]["zk_cnt_caf\u00e9_read_per_namespace"] == "2"
        assert "zk_cnt_other_write_per_namespace" in seen["zkrs"]
        assert "zk_cnt_secret_read_per_namespace" not in seen["zkrs"]
        assert "zk_cnt_rolled-back_write_per_namespace" not in seen["zkrs"]

        reset = {}
        for name, server in hosts.items():
            assert four_letter(server, "srst") == "Server stats reset.\n"
            reset[name] = per_namespace(server)
        assert reset["zkrs"] == reset["zookeeper"]
        assert reset["zkrs"].keys() == seen["zkrs"].keys()
        assert set(reset["zkrs"].values()) == {"0", "0.0"}

        # Both count the writes they replay from the log at start.
        zookeeper.kill()
        zookeeper.wait()
        zookeeper = start_zookeeper(zk_dir, zk_port, extra=extra)
        zkrs.kill()
        zkrs = Server(directory=zkrs.dir)
        hosts["zkrs"] = zkrs.hosts
        replayed = {name: per_namespace(server) for name, server in hosts.items()}
        assert replayed["zkrs"] == replayed["zookeeper"]
        assert replayed["zkrs"]["zk_cnt_app_write_per_namespace"] == "5"
        assert not any(key.endswith("_read_per_namespace") for key in replayed["zkrs"])
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()


def by_role(members):
    """Each member's per-namespace lines, the leader's first, once every member has one."""
    def mode(hosts):
        for line in four_letter(hosts, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line[len("Mode: "):]
        return ""

    wait_until(lambda: sorted(map(mode, members)) == ["follower", "follower", "leader"],
               timeout=60)
    ordered = sorted(members, key=lambda hosts: mode(hosts) != "leader")
    return [per_namespace(hosts) for hosts in ordered]


def test_ensemble_members_count_the_configuration_they_set_as_zookeepers_do():
    processes, directories, ports = start_zookeeper_ensemble(
        extra="tickTime=2000\n4lw.commands.whitelist=*\n")
    ensemble = Ensemble(extra="tickTime=2000\n")
    try:
        members = {"zookeeper": ["127.0.0.1:%d" % port for port in ports],
                   "zkrs": [member.hosts for member in ensemble.members]}
        # Every member sets /zookeeper/config when it starts, and a follower again after
        # each sync with its leader (twice for a snapshot): one write on the leader, and on
        # each follower two, or more in a ZooKeeper whose follower synced twice at start.
        writes = "zk_cnt_zookeeper_write_per_namespace"
        started = {name: by_role(hosts) for name, hosts in members.items()}
        assert [lines[writes] for lines in started["zkrs"]] == ["1", "2", "2"]
        assert started["zookeeper"][0][writes] == "1"
        assert all(int(lines[writes]) >= 2 for lines in started["zookeeper"][1:])
        assert {key for lines in started["zkrs"] for key in lines} == \
            {key for lines in started["zookeeper"] for key in lines}
        for hosts in members.values():
            client = KazooClient(hosts=hosts[0], timeout=30)
            client.start(timeout=15)
            client.create("/app", b"abc")
            client.get("/zookeeper/config")
            client.stop()
            client.close()

        def besides_configuration(lines):
            return sorted((key, value) for key, value in lines.items()
                          if not key.endswith("_zookeeper_write_per_namespace"))

        after = {name: sorted(map(besides_configuration, by_role(hosts)))
                 for name, hosts in members.items()}
        assert after["zkrs"] == after["zookeeper"]
        assert sum(("zk_sum_app_write_per_namespace", "7") in lines for lines in after["zkrs"]) == 3
        assert sum(("zk_sum_zookeeper_read_per_namespace", "223") in lines
                   for lines in after["zkrs"]) == 1
    finally:
        for process, directory in zip(processes, directories):
            stop_zookeeper(process, directory)
        ensemble.stop()
