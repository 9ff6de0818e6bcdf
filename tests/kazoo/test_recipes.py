"""kazoo's recipes against zkrs: each recipe exercised by several clients at once."""
import threading
import time

import pytest
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import EventType

from conftest import wait_until


def test_lock_mutual_exclusion(clients):
    holders = []
    inside = []
    violations = []

    def worker(index):
        client = clients()
        lock = client.Lock("/recipes/lock", "worker-%d" % index)
        for _ in range(10):
            with lock:
                inside.append(index)
                if len(inside) > 1:
                    violations.append(list(inside))
                holders.append(index)
                time.sleep(0.001)
                inside.remove(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not violations
    assert len(holders) == 50


def test_lock_released_when_the_holder_closes(clients):
    holder, waiter = clients(), clients()
    held = holder.Lock("/recipes/closing-lock")
    assert held.acquire(timeout=5)
    contender = waiter.Lock("/recipes/closing-lock")
    assert not contender.acquire(blocking=False)
    holder.stop()
    assert contender.acquire(timeout=5)
    contender.release()


def test_read_write_lock(clients):
    a, b, c = clients(), clients(), clients()
    read_a = a.ReadLock("/recipes/rw")
    read_b = b.ReadLock("/recipes/rw")
    write_c = c.WriteLock("/recipes/rw")
    assert read_a.acquire(timeout=5)
    assert read_b.acquire(timeout=5), "readers share"
    assert not write_c.acquire(blocking=False), "a writer waits for readers"
    read_a.release()
    read_b.release()
    assert write_c.acquire(timeout=5)
    assert not a.ReadLock("/recipes/rw").acquire(blocking=False), "a reader waits for the writer"
    write_c.release()


def test_semaphore(clients):
    leases = [clients().Semaphore("/recipes/semaphore", max_leases=2) for _ in range(3)]
    assert leases[0].acquire(timeout=5)
    assert leases[1].acquire(timeout=5)
    assert not leases[2].acquire(blocking=False)
    leases[0].release()
    assert leases[2].acquire(timeout=5)
    leases[1].release()
    leases[2].release()


def test_election_has_one_leader_and_fails_over(clients):
    leaders = []
    stop = threading.Event()
    contenders = [clients() for _ in range(3)]

    def run(client, name):
        def lead():
            leaders.append(name)
            stop.wait(0.2)
        client.Election("/recipes/election", name).run(lead)

    threads = [threading.Thread(target=run, args=(c, "c%d" % i), daemon=True) for i, c in enumerate(contenders)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(leaders) >= 3, timeout=20)
    assert sorted(leaders[:3]) == ["c0", "c1", "c2"], "each led in turn"
    stop.set()
    # The last leader still releases its lock: its client must outlive the release.
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)


def test_barrier(clients):
    owner, waiter = clients(), clients()
    barrier = owner.Barrier("/recipes/barrier")
    barrier.create()
    passed = []
    thread = threading.Thread(target=lambda: passed.append(waiter.Barrier("/recipes/barrier").wait(10)))
    thread.start()
    time.sleep(0.3)
    assert passed == []
    barrier.remove()
    thread.join(10)
    assert passed == [True]


def test_double_barrier(clients):
    entered, left = [], []

    def member(index):
        barrier = clients().DoubleBarrier("/recipes/double", 3)
        barrier.enter()
        entered.append(index)
        barrier.leave()
        left.append(index)

    threads = [threading.Thread(target=member, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert entered == [], "nobody enters before all three arrive"
    member(2)
    for thread in threads:
        thread.join(15)
    assert sorted(entered) == [0, 1, 2]
    assert sorted(left) == [0, 1, 2]


def test_counter(clients):
    def add(n):
        counter = clients().Counter("/recipes/counter")
        for _ in range(n):
            counter += 1

    threads = [threading.Thread(target=add, args=(25,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert clients().Counter("/recipes/counter").value == 100


def test_queue_and_locking_queue(clients):
    producer, consumer = clients(), clients()
    queue = producer.Queue("/recipes/queue")
    for item in (b"one", b"two", b"three"):
        queue.put(item)
    assert [consumer.Queue("/recipes/queue").get() for _ in range(3)] == [b"one", b"two", b"three"]
    locking = producer.LockingQueue("/recipes/locking-queue")
    locking.put(b"job", priority=5)
    taker = consumer.LockingQueue("/recipes/locking-queue")
    assert taker.get(timeout=5) == b"job"
    assert taker.consume()
    assert len(locking) == 0


def test_party(clients):
    parties = [clients().Party("/recipes/party", "member-%d" % i) for i in range(3)]
    for party in parties:
        party.join()
    assert len(parties[0]) == 3
    parties[1].leave()
    assert sorted(parties[0]) == ["member-0", "member-2"]


def test_data_and_children_watch(clients):
    watcher, writer = clients(), clients()
    writer.ensure_path("/recipes/watched")
    data_seen, children_seen = [], []
    watcher.DataWatch("/recipes/watched", lambda data, stat: data_seen.append(data))
    watcher.ChildrenWatch("/recipes/watched", lambda children: children_seen.append(sorted(children)))
    writer.set("/recipes/watched", b"v1")
    writer.create("/recipes/watched/a")
    writer.create("/recipes/watched/b")
    wait_until(lambda: b"v1" in data_seen)
    wait_until(lambda: children_seen and children_seen[-1] == ["a", "b"])


def test_tree_cache(clients):
    from kazoo.recipe.cache import TreeCache, TreeEvent

    watcher, writer = clients(), clients()
    writer.ensure_path("/recipes/tree")
    events = []
    cache = TreeCache(watcher, "/recipes/tree")
    cache.listen(lambda event: events.append((event.event_type, event.event_data and event.event_data.path)))
    cache.start()
    wait_until(lambda: any(kind == TreeEvent.INITIALIZED for kind, _ in events))
    writer.create("/recipes/tree/a/b", b"x", makepath=True)
    wait_until(lambda: (TreeEvent.NODE_ADDED, "/recipes/tree/a/b") in events)
    writer.set("/recipes/tree/a/b", b"y")
    wait_until(lambda: (TreeEvent.NODE_UPDATED, "/recipes/tree/a/b") in events)
    writer.delete("/recipes/tree/a", recursive=True)
    wait_until(lambda: (TreeEvent.NODE_REMOVED, "/recipes/tree/a") in events)
    kinds = [kind for kind, path in events if path == "/recipes/tree/a/b"]
    assert kinds == [TreeEvent.NODE_ADDED, TreeEvent.NODE_UPDATED, TreeEvent.NODE_REMOVED]
    cache.close()


def test_one_shot_watch_fires_once(clients):
    watcher, writer = clients(), clients()
    writer.ensure_path("/recipes/once")
    seen = []
    watcher.get("/recipes/once", watch=seen.append)
    writer.set("/recipes/once", b"1")
    writer.set("/recipes/once", b"2")
    wait_until(lambda: len(seen) == 1)
    time.sleep(0.2)
    assert len(seen) == 1
    assert seen[0].type == EventType.CHANGED
