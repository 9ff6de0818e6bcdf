"""Kazoo clients that keep working while the ensemble they talk to changes under them.

Usage: kazoo_lock_worker.py CONNECT STOP_FILE

Two clients, each in a thread with its own session, take turns holding kazoo's Lock
recipe and, while holding it, increment a counter node with a compare-and-set (setData
with the version just read), writing its own name beside the count. A BadVersion inside
the lock fails the run unless the node's last writer is the client itself, with an
increment whose reply a broken connection took that was applied after the read: any
other writer means two clients held the lock at once. When STOP_FILE appears, the counter must hold every increment
a client was told succeeded, plus at most the ones whose reply a broken connection took
(which may or may not have happened). Prints "increments N uncertain U counter C" and
exits 0 when that holds; exits 1 otherwise, and 2 if a session expired.
"""
import os
import sys
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    LockTimeout,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.retry import KazooRetry

COUNTER = "/migration/counter"
LOCK = "/migration/lock"


def count_of(data):
    """The count in the counter node's data (empty at first)."""
    return int(data.split()[0]) if data else 0


class Worker(threading.Thread):
    def __init__(self, connect, stop_file, name):
        super().__init__(daemon=True)
        self.stop_file = stop_file
        retry = dict(max_tries=-1, delay=0.1, backoff=1, max_delay=1)
        self.client = KazooClient(
            hosts=connect,
            timeout=15,
            connection_retry=KazooRetry(**retry),
            command_retry=KazooRetry(**retry),
        )
        self.name = name
        self.acked = 0
        self.uncertain = 0
        self.failure = None
        self.expired = False
        self.client.add_listener(self.on_state)

    def on_state(self, state):
        if state == KazooState.LOST:
            self.expired = True

    def run(self):
        try:
            self.client.start(timeout=60)
            self.client.retry(self.client.ensure_path, COUNTER)
            lock = self.client.Lock(LOCK, self.name)
            while not os.path.exists(self.stop_file) and not self.expired:
                try:
                    if not lock.acquire(timeout=10):
                        continue
                    try:
                        data, stat = self.client.retry(self.client.get, COUNTER)
                        value = count_of(data)
                        update = ("%d %s" % (value + 1, self.name)).encode()
                        try:
                            self.client.set(COUNTER, update, version=stat.version)
                            self.acked += 1
                        except BadVersionError:
                            data, _ = self.client.retry(self.client.get, COUNTER)
                            if self.uncertain == 0 or not data.endswith(self.name.encode()):
                                self.failure = "the counter changed under the lock: %r" % data
                                return
                        except (ConnectionLoss, OperationTimeoutError):
                            self.uncertain += 1
                    finally:
                        self.client.retry(lock.release)
                except (ConnectionLoss, LockTimeout, OperationTimeoutError, SessionExpiredError):
                    time.sleep(0.1)
        except Exception as error:  # reported, not swallowed: the run fails
            self.failure = repr(error)


def main():
    connect, stop_file = sys.argv[1], sys.argv[2]
    workers = [Worker(connect, stop_file, "worker-%d" % i) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failures = [w.failure for w in workers if w.failure]
    if any(w.expired for w in workers):
        print("a session expired")
        return 2
    if failures:
        print("; ".join(failures))
        return 1
    client = workers[0].client
    counter = count_of(client.retry(client.get, COUNTER)[0])
    acked = sum(w.acked for w in workers)
    uncertain = sum(w.uncertain for w in workers)
    print("increments %d uncertain %d counter %d" % (acked, uncertain, counter))
    for worker in workers:
        worker.client.stop()
        worker.client.close()
    return 0 if acked <= counter <= acked + uncertain and acked > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
