"""Session expiry and reconnect handling as kazoo sees them."""
import socket
import threading

from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

from conftest import wait_until


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
