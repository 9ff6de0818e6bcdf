"""skipACL=yes: no ACL stops any client, as ZooKeeper's checkACL returns at once; only the
exact text `yes` turns it on."""
import tempfile
import threading

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from conftest import Server, free_ports, start_zookeeper, stop_zookeeper


def outcome(call):
    """What a call returned, or the name of the error it raised."""
    try:
        return call()
    except Exception as error:  # noqa: BLE001 - the error's kind is what is compared
        return type(error).__name__


def a_stranger_at_alices_node(hosts):
    """Alice guards a node with an ACL for herself alone; a client that never
    authenticated then reads, writes, lists, watches, creates and deletes under it, reads
    and replaces its ACL. Returns what each of those did."""
    alice = KazooClient(hosts=hosts, auth_data=[("digest", "alice:secret")])
    stranger = KazooClient(hosts=hosts)
    alice.start()
    stranger.start()
    try:
        only_alice = [make_digest_acl("alice", "secret", all=True)]
        alice.create("/guarded", b"alice's", acl=only_alice)
        fired = threading.Event()
        seen = {
            "get": outcome(lambda: stranger.get("/guarded", watch=lambda _: fired.set())[0]),
            "children": outcome(lambda: stranger.get_children("/guarded")),
            "set": outcome(lambda: stranger.set("/guarded", b"stranger's").version),
            "create": outcome(lambda: stranger.create("/guarded/child", b"", acl=only_alice)),
            "delete": outcome(lambda: stranger.delete("/guarded/child")),
            "getACL": outcome(lambda: [(a.perms, a.id.scheme, a.id.id)
                                       for a in stranger.get_acls("/guarded")[0]]),
        }
        alice.set("/guarded", b"alice's again")
        seen["watch fired"] = fired.wait(5)
        seen["setACL"] = outcome(lambda: stranger.set_acls(
            "/guarded", [make_digest_acl("eve", "x", all=True)]).aversion)
        return seen
    finally:
        stranger.stop()
        alice.stop()


def both(extra):
    """The stranger's outcomes on ZooKeeper 3.8 and on zkrs, each with `extra`."""
    zk_port = free_ports(1)[0]
    zk_dir = tempfile.mkdtemp(prefix="zkrs-skipacl-zookeeper-")
    zookeeper = start_zookeeper(zk_dir, zk_port, extra=extra)
    try:
        seen = {"zookeeper": a_stranger_at_alices_node("127.0.0.1:%d" % zk_port)}
    finally:
        stop_zookeeper(zookeeper, zk_dir)
    zkrs = Server(extra)
    try:
        seen["zkrs"] = a_stranger_at_alices_node(zkrs.hosts)
    finally:
        zkrs.stop()
    return seen


def test_skip_acl_lets_every_client_through_as_zookeeper_does():
    seen = both("skipACL=yes")
    assert seen["zkrs"] == seen["zookeeper"]
    digest = make_digest_acl("alice", "secret").id.id
    assert seen["zkrs"] == {
        "get": b"alice's", "children": [], "set": 1, "create": "/guarded/child",
        "delete": True, "getACL": [(31, "digest", digest)], "watch fired": True,
        "setACL": 1,
    }


def test_skip_acl_other_than_yes_checks_acls_as_zookeeper_does():
    seen = both("skipACL=true")
    assert seen["zkrs"] == seen["zookeeper"]
    refused = "NoAuthError"
    assert seen["zkrs"] == {
        "get": refused, "children": refused, "set": refused, "create": refused,
        "delete": refused, "getACL": refused, "watch fired": False, "setACL": refused,
    }
