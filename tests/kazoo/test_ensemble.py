"""kazoo against a 3-member zkrs ensemble: its Lock keeps mutual exclusion while the
leader is killed, and clients fail over to the surviving members."""
import socket
import struct
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NotReadOnlyCallError, SessionExpiredError
from kazoo.protocol.states import KeeperState
from kazoo.retry import KazooRetry

from conftest import Ensemble, four_letter, wait_until


def test_lock_mutual_exclusion_while_the_leader_is_killed(ensemble):
    leader = ensemble.leader()
    inside = []
    violations = []
    acquisitions = []
    stop = threading.Event()
    clients = []
    for index in range(4):
        client = KazooClient(
            hosts=ensemble.hosts,
            timeout=10,
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5),
            command_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5),
        )
        client.start(timeout=15)
        clients.append(client)

    def worker(index):
        lock = clients[index].Lock("/ensemble/lock", "worker-%d" % index)
        while not stop.is_set():
            try:
                with lock:
                    inside.append(index)
                    if len(inside) > 1:
                        violations.append(list(inside))
                    time.sleep(0.005)
                    inside.remove(index)
                    acquisitions.append((index, time.time()))
            except (ConnectionLoss, SessionExpiredError):
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    killed_at = time.time()
    ensemble.members[leader].kill()
    # Acquisitions go on among the survivors.
    deadline = time.time() + 30
    while time.time() < deadline and sum(1 for _, at in acquisitions if at > killed_at) < 20:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(30)
    for client in clients:
        client.stop()
        client.close()
    assert violations == []
    assert sum(1 for _, at in acquisitions if at < killed_at) > 0
    assert sum(1 for _, at in acquisitions if at > killed_at) >= 20, "the lock works after failover"


def test_a_member_cut_off_from_its_quorum_serves_read_only_clients():
    ensemble = Ensemble(extra="readonlymode.enabled=true")
    try:
        leader = ensemble.leader()
        survivor = (leader + 1) % 3
        others = [i for i in range(3) if i != survivor]
        survivor_hosts = ensemble.members[survivor].hosts
        # Written through the survivor, so it has applied the write when it answers (a
        # write acknowledged by the other two may reach it only later).
        writer = KazooClient(hosts=survivor_hosts, timeout=10)
        writer.start(timeout=15)
        writer.create("/ro/data", b"kept", makepath=True)
        writer.stop()
        writer.close()
        for i in others:
            ensemble.members[i].kill()
        wait_until(lambda: four_letter(survivor_hosts, "isro") == "ro", timeout=20)
        assert "Mode: read-only" in four_letter(survivor_hosts, "srvr")
        reader = KazooClient(hosts=survivor_hosts, read_only=True, timeout=10)
        reader.start(timeout=15)
        assert reader.client_state == KeeperState.CONNECTED_RO
        assert reader.get("/ro/data")[0] == b"kept"
        with pytest.raises(NotReadOnlyCallError):
            reader.create("/ro/refused", b"")
        # A client that needs writes is not served.
        needs_writes = KazooClient(hosts=survivor_hosts, timeout=10)
        with pytest.raises(Exception):
            needs_writes.start(timeout=3)
        needs_writes.stop()
        needs_writes.close()
        reader.stop()
        reader.close()
        # With the quorum back, the member serves writes again.
        for i in others:
            ensemble.restart(i)
        wait_until(lambda: four_letter(survivor_hosts, "isro") == "rw", timeout=30)
        client = KazooClient(hosts=survivor_hosts, timeout=10)
        client.start(timeout=15)
        client.create("/ro/after", b"")
        assert client.get("/ro/data")[0] == b"kept"
        client.stop()
        client.close()
    finally:
        ensemble.stop()


def test_a_read_only_client_started_again_gets_the_survivor_read_only():
    """Two members stop at once; a read-only client that stops and starts again (a new
    session) is served read-only by the one left, as ZooKeeper 3.8 with local sessions."""
    ensemble = Ensemble(extra="readonlymode.enabled=true\nlocalSessionsEnabled=true")
    try:
        leader = ensemble.leader()
        survivor = (leader + 1) % 3
        client = KazooClient(hosts=ensemble.hosts, read_only=True, timeout=10)
        client.start(timeout=15)
        client.create("/started-again", b"kept")
        # The survivor may be the follower the commit had not reached yet: wait for it.
        witness = KazooClient(hosts=ensemble.members[survivor].hosts, timeout=10)
        witness.start(timeout=15)
        wait_until(lambda: witness.exists("/started-again") is not None)
        witness.stop()
        witness.close()
        for i in range(3):
            if i != survivor:
                ensemble.members[i].kill()
        client.stop()
        client.start(timeout=15)
        assert client.client_state == KeeperState.CONNECTED_RO
        assert client.get("/started-again")[0] == b"kept"
        client.stop()
        client.close()
    finally:
        ensemble.stop()


def connect_raw(hosts, session_id=0, password=b"\0" * 16):
    """A read-only ConnectRequest on a fresh socket; the raw reply, b"" if the server
    closed the connection without one."""
    host, port = hosts.split(":")
    body = struct.pack(">iqiq", 0, 0, 10000, session_id) + struct.pack(">i", 16) + password
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(struct.pack(">i", len(body) + 1) + body + b"\1")
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return reply
            reply += chunk
            if len(reply) >= 4 and len(reply) >= 4 + struct.unpack(">i", reply[:4])[0]:
                return reply


def test_a_read_only_member_refuses_to_resume_a_global_session():
    """ZooKeeper's ReadOnlyZooKeeperServer closes the connection of a client resuming a
    global session: the quorum it lost may have expired it and given its ephemerals away."""
    ensemble = Ensemble(extra="readonlymode.enabled=true")
    try:
        leader = ensemble.leader()
        survivor = ensemble.members[(leader + 1) % 3]
        # The leader may serve before this follower has synced with it.
        wait_until(lambda: "Mode: follower" in four_letter(survivor.hosts, "srvr"), timeout=20)
        created = connect_raw(survivor.hosts)
        session_id = struct.unpack(">q", created[12:20])[0]
        password = created[24:40]
        assert session_id != 0 and created[-1:] == b"\0", created.hex()
        for i, member in enumerate(ensemble.members):
            if member is not survivor:
                member.kill()
        wait_until(lambda: four_letter(survivor.hosts, "isro") == "ro", timeout=20)
        assert connect_raw(survivor.hosts, session_id, password) == b""
        fresh = connect_raw(survivor.hosts)
        assert struct.unpack(">i", fresh[8:12])[0] > 0 and fresh[-1:] == b"\1", fresh.hex()
    finally:
        ensemble.stop()
