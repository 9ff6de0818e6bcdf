"""kazoo against a 3-member zkrs ensemble: its Lock keeps mutual exclusion while the
leader is killed, and clients fail over to the surviving members."""
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionExpiredError
from kazoo.retry import KazooRetry


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
