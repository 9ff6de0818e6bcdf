"""Session expiry and reconnect handling as kazoo sees them."""
import shutil
import socket
import tempfile
import threading
from collections import namedtuple

from kazoo.client import KazooClient
from kazoo.protocol.serialization import int_struct, read_string, write_string
from kazoo.protocol.states import KazooState

from conftest import free_ports, start_zookeeper, wait_until


class GetEphemerals(namedtuple("GetEphemerals", "prefix")):
    """getEphemerals (103), which this kazoo does not offer."""

    type = 103

    def serialize(self):
        return bytearray(write_string(self.prefix))

    @classmethod
    def deserialize(cls, buffer, offset):
        (count,) = int_struct.unpack_from(buffer, offset)
        offset += 4
        paths = []
        for _ in range(count):
            path, offset = read_string(buffer, offset)
            paths.append(path)
        return paths


def ephemerals_in_order(hosts):
    """getEphemerals after 20 ephemerals were made and every third deleted; then the
    session's close, whose deletions fire a watch on each in the order they happen."""
    client = KazooClient(hosts=hosts, timeout=10)
    client.start(timeout=15)
    client.create("/q", b"")
    for i in range(20):
        client.create("/q/e%d" % i, b"", ephemeral=True)
    for i in range(0, 20, 3):
        client.delete("/q/e%d" % i)
    listed = client.handler.async_result()
    client._call(GetEphemerals("/"), listed)
    listed = listed.get(timeout=10)
    watcher = KazooClient(hosts=hosts, timeout=10)
    watcher.start(timeout=15)
    deleted = []
    for path in listed:
        watcher.exists(path, watch=lambda event: deleted.append(event.path))
    client.stop()
    client.close()
    wait_until(lambda: len(deleted) == len(listed))
    watcher.stop()
    watcher.close()
    return listed, deleted


def test_ephemerals_are_listed_and_deleted_in_zookeepers_order(server):
    """ZooKeeper keeps a session's ephemerals in a Java hash set: getEphemerals lists them
    in its order, and a closed session's are deleted (their watches fire) in it."""
    directory = tempfile.mkdtemp(prefix="zkrs-ephemerals-zk-")
    (port,) = free_ports(1)
    zookeeper = start_zookeeper(directory, port)
    try:
        expected = ephemerals_in_order("127.0.0.1:%d" % port)
    finally:
        zookeeper.terminate()
        zookeeper.wait()
        shutil.rmtree(directory, ignore_errors=True)
    listed, deleted = ephemerals_in_order(server.hosts)
    assert len(listed) == 13
    assert (listed, deleted) == expected


def test_server_version_from_envi(clients):
    assert clients().server_version() == (3, 8, 4)


def test_session_survives_a_dropped_connection(server, clients):
    client = clients(timeout=4)
    client.create("/sessions/kept", ephemeral=True, makepath=True)
    session_id = client.client_id[0]
    states = []
    client.add_listener(states.append)
    # Cut the TCP connection under kazoo; it reconnects with the same session.
    client._connection._socket.shutdown(socket.SHUT_RDWR)
    wait_until(lambda: KazooState.SUSPENDED in states and states[-1] == KazooState.CONNECTED)
    assert client.client_id[0] == session_id
    assert client.exists("/sessions/kept").ephemeralOwner == session_id


def test_expired_session_is_reported_and_its_ephemerals_are_gone(server, clients):
    doomed = clients(timeout=1)
    doomed.create("/sessions/doomed", ephemeral=True, makepath=True)
    session_id, password = doomed.client_id
    observer = clients()
    gone = threading.Event()
    observer.exists("/sessions/doomed", watch=lambda event: gone.set())
    doomed.stop()
    assert gone.wait(10), "the ephemeral node went with the session"
    # Resuming the expired session is refused (timeOut 0); kazoo then starts a new one.
    late = KazooClient(hosts=server.hosts, client_id=(session_id, password), timeout=4)
    late.start(timeout=10)
    try:
        assert late.client_id[0] != session_id
        assert late.exists("/sessions/doomed") is None
    finally:
        late.stop()
        late.close()


def test_watches_are_restored_after_reconnect(server, clients):
    watcher, writer = clients(timeout=4), clients()
    writer.ensure_path("/sessions/rewatch")
    seen = []
    watcher.get("/sessions/rewatch", watch=seen.append)
    watcher._connection._socket.shutdown(socket.SHUT_RDWR)
    wait_until(lambda: watcher.connected)
    writer.set("/sessions/rewatch", b"changed")
    wait_until(lambda: len(seen) == 1)
