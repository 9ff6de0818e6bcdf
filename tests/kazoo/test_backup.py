"""zkrs backup and zkrs restore: a workload keeps a ledger of its acknowledged writes
while `zkrs backup` follows the member; the backup process and the member are killed
at random moments and started again; then the backup is verified and restored to
several zxids and times, and each restored tree must be the state the ledger says
existed then. The same runs with the backup copied to S3 (moto's S3 server) and
restored from there. ZKRS_BACKUP_SEED replays a run."""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

from conftest import BINARY, Server, free_ports, wait_until

PATHS = ["/k/%d" % i for i in range(8)]

BUCKET = "zkrs-backups"


@pytest.fixture
def s3():
    """An S3 server (moto's) on 127.0.0.1 with an empty bucket; yields the environment
    zkrs reads it with."""
    port, = free_ports(1)
    endpoint = "http://127.0.0.1:%d" % port
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    env = dict(os.environ, AWS_ENDPOINT=endpoint, AWS_ALLOW_HTTP="true",
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
    try:
        import boto3
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")

        def created():
            try:
                client.create_bucket(Bucket=BUCKET)
                return True
            except Exception:
                return False

        wait_until(created, timeout=30)
        env["S3_CLIENT"] = client
        yield env
    finally:
        server.kill()
        server.wait()


def zkrs_env(env):
    return {key: value for key, value in (env or os.environ).items() if isinstance(value, str)}


def start_backup(admin_port, directory, log, *options, env=None):
    options = options or ("--snapshot-every", "150")
    return subprocess.Popen(
        [BINARY, "backup", "--server", "http://127.0.0.1:%d" % admin_port, "--auth", "ip",
         "--dir", directory, *options],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=zkrs_env(env),
    )


def verify(location, env=None):
    result = subprocess.run([BINARY, "backup", "verify", location], capture_output=True,
                            text=True, timeout=120, env=zkrs_env(env))
    return result.returncode, result.stdout + result.stderr


def restorable(location, env=None):
    """The (first, last) zxid ranges `zkrs backup verify` reports."""
    code, output = verify(location, env)
    assert code == 0, output
    return [(int(a, 16), int(b, 16))
            for a, b in re.findall(r"restorable: 0x([0-9a-f]+) through 0x([0-9a-f]+)", output)]


def write(client, path, value):
    """Sets `path`; returns the txn's (zxid, time) once acknowledged, learning whether a
    write whose answer was lost happened (this is the only writer, each value unique)."""
    try:
        stat = client.set(path, value)
        return stat.mzxid, stat.mtime
    except KazooException:
        pass
    while True:
        try:
            data, stat = client.get(path)
            return (stat.mzxid, stat.mtime) if data == value else None
        except KazooException:
            time.sleep(0.05)


def state_at(ledger, zxid):
    state = {}
    for written, _, path, value in ledger:
        if written <= zxid:
            state[path] = value
    return state


def read_tree(hosts):
    client = KazooClient(hosts=hosts, timeout=10)
    client.start(timeout=30)
    found = {path: client.get(path)[0] for path in PATHS}
    client.stop()
    return found


@pytest.mark.parametrize("copied", [False, True], ids=["dir", "s3"])
def test_restores_reach_every_acknowledged_write_at_the_zxid_or_time_chosen(copied, request):
    env = request.getfixturevalue("s3") if copied else None
    seed = int(os.environ.get("ZKRS_BACKUP_SEED", random.randrange(1 << 30)))
    print("ZKRS_BACKUP_SEED=%d" % seed)
    rng = random.Random(seed)
    admin_port, client_port = free_ports(2)
    extra = ("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=%d\n"
             "snapCount=400\n" % admin_port)
    server = Server(extra, client_port=client_port)
    work = tempfile.mkdtemp(prefix="zkrs-backup-")
    directory = os.path.join(work, "backup")
    # Copied, the backup is read back from the copy alone.
    url = "s3://%s/cluster-a" % BUCKET
    location = url if copied else directory
    upload = ("--snapshot-every", "150", "--upload", url, "--upload-every", "1") if copied else ()
    log = open(os.path.join(work, "backup.log"), "w")
    backup = None
    restored_servers = []
    try:
        client = KazooClient(hosts=server.hosts, timeout=10)
        client.start(timeout=30)
        ledger = []
        for path in PATHS:
            client.create(path, b"", makepath=True)
            stat = client.exists(path)
            ledger.append((stat.czxid, stat.mtime, path, b""))
        backup = start_backup(admin_port, directory, log, *upload, env=env)
        steps = 700
        backup_kills = set(rng.sample(range(50, steps), 4))
        server_kill = rng.randrange(100, steps - 100)
        for step in range(steps):
            path = rng.choice(PATHS)
            value = b"value %d" % step
            written = write(client, path, value)
            if written:
                ledger.append((written[0], written[1], path, value))
            if step in backup_kills:
                backup.kill()
                backup.wait()
                backup = start_backup(admin_port, directory, log, *upload, env=env)
            if step == server_kill:
                server.kill()
                server = Server(extra, directory=server.dir, client_port=client_port)
        last = max(entry[0] for entry in ledger)
        wait_until(lambda: any(b >= last for _, b in restorable(location, env)), timeout=60)
        backup.kill()
        backup.wait()
        client.stop()
        ranges = restorable(location, env)
        first = min(a for a, _ in ranges)
        reachable = [entry for entry in ledger if entry[0] >= first
                     and any(a <= entry[0] <= b for a, b in ranges)]
        # A backup behind a member that purged its log (killed for long, say) starts
        # again from a snapshot: the txns between are missing, and verify says so.
        assert len(reachable) >= 20 and ledger[-1] in reachable, (ranges, first)
        targets = sorted(rng.sample(reachable, 4), key=lambda entry: entry[0]) + [ledger[-1]]
        for index, (zxid, mtime, _, _) in enumerate(targets):
            by_time = index % 2 == 1
            target = os.path.join(work, "restored-%d" % index)
            argument = ["--to-time", str(mtime)] if by_time else ["--to-zxid", "0x%x" % zxid]
            result = subprocess.run(
                [BINARY, "restore", "--backup", location, *argument,
                 "--to", os.path.join(target, "data")],
                capture_output=True, text=True, timeout=120, env=zkrs_env(env),
            )
            assert result.returncode == 0, result.stdout + result.stderr
            # By time: every txn of that millisecond is in, as the ledger's mtimes say.
            expected_zxid = max(e[0] for e in ledger if e[1] <= mtime) if by_time else zxid
            restored = Server("", directory=target)
            restored_servers.append(restored)
            assert read_tree(restored.hosts) == state_at(ledger, expected_zxid), (
                "seed %d, target %s" % (seed, argument)
            )
            restored.stop()
        # A damaged txn is found.
        if copied:
            s3 = env["S3_CLIENT"]
            keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
            key = [k for k in keys if k.startswith("cluster-a/txns.")][0]
            body = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            body[30] ^= 0xFF
            s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
            segment = key.split("/")[1]
        else:
            segment = sorted(f for f in os.listdir(directory) if f.startswith("txns."))[0]
            with open(os.path.join(directory, segment), "r+b") as f:
                f.seek(30)
                byte = f.read(1)
                f.seek(30)
                f.write(bytes([byte[0] ^ 0xFF]))
        code, output = verify(location, env)
        assert code != 0 and segment in output, output
    finally:
        if backup:
            backup.kill()
            backup.wait()
        for restored in restored_servers:
            restored.stop()
        server.stop()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("copied", [False, True], ids=["dir", "s3"])
def test_retain_keeps_the_newest_snapshots_and_every_zxid_after_the_oldest(copied, request):
    env = request.getfixturevalue("s3") if copied else None
    url = "s3://%s/retained" % BUCKET
    upload = ("--upload", url, "--upload-every", "1") if copied else ()
    admin_port, = free_ports(1)
    # The snapshot's rate limit (a thousandth of this interval, as ZooKeeper's) lets the
    # backup take one every millisecond.
    server = Server("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\n"
                    "admin.serverPort=%d\nadmin.rateLimiterIntervalInMS=1000\n" % admin_port)
    work = tempfile.mkdtemp(prefix="zkrs-backup-retain-")
    directory = os.path.join(work, "backup")
    log = open(os.path.join(work, "backup.log"), "w")
    backup = start_backup(admin_port, directory, log, "--snapshot-every", "30", "--retain", "2",
                          *upload, env=env)
    try:
        client = server.client()
        client.create("/k/0", b"", makepath=True)
        ledger = []
        for step in range(200):
            stat = client.set("/k/0", b"value %d" % step)
            ledger.append(stat.mzxid)
            # Slow enough for the backup to take a snapshot every 30 txns or so.
            time.sleep(0.005)
        last = ledger[-1]
        wait_until(lambda: any(b >= last for _, b in restorable(directory)), timeout=60)
        if copied:
            def copied_and_pruned():
                keys = [o["Key"] for o in env["S3_CLIENT"].list_objects_v2(
                    Bucket=BUCKET, Prefix="retained/").get("Contents", [])]
                snapshots = [k for k in keys if k.startswith("retained/snapshot.")]
                return len(snapshots) == 2 and any(b >= last for _, b in restorable(url, env))

            # The copy keeps the same two snapshots, and every zxid after the older one.
            wait_until(copied_and_pruned, timeout=60)
            ranges = restorable(url, env)
            assert len(ranges) == 2 and all(b >= last for _, b in ranges), ranges
        backup.kill()
        backup.wait()
        client.stop()
        log.flush()
        stored = open(os.path.join(work, "backup.log")).read().count("snapshot stored")
        snapshots = sorted(int(f.split(".")[1], 16) for f in os.listdir(directory)
                           if f.startswith("snapshot."))
        assert stored >= 3 and len(snapshots) == 2, (stored, snapshots)
        # Every zxid from the oldest snapshot kept on still restores (verify names a
        # range from each snapshot).
        ranges = restorable(directory)
        assert sorted(a for a, _ in ranges) == snapshots, (ranges, snapshots)
        assert all(b >= last for _, b in ranges), ranges
        target = os.path.join(work, "restored")
        result = subprocess.run([BINARY, "restore", "--backup", directory, "--to-zxid",
                                 "0x%x" % last, "--to", os.path.join(target, "data")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        restored = Server("", directory=target)
        try:
            restored_client = restored.client()
            assert restored_client.get("/k/0")[0] == b"value 199"
            restored_client.stop()
        finally:
            restored.stop()
    finally:
        backup.kill()
        backup.wait()
        server.stop()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def test_a_backup_stopped_during_a_copy_leaves_no_upload_open_in_the_store(s3):
    """SIGINT and SIGTERM while a large snapshot is being copied: the multipart upload is
    aborted, not left open in the bucket (S3 keeps, and bills, open uploads' parts)."""
    client_s3 = s3["S3_CLIENT"]

    def open_uploads():
        return client_s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])

    admin_port, = free_ports(1)
    server = Server("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\n"
                    "admin.serverPort=%d\n" % admin_port)
    work = tempfile.mkdtemp(prefix="zkrs-backup-stop-")
    try:
        client = server.client()
        # Incompressible data, so the snapshot file is this large and goes in parts.
        for i in range(60):
            client.create("/big/%d" % i, os.urandom(1_000_000), makepath=True)
        client.stop()
        for number, stop in enumerate([signal.SIGINT, signal.SIGTERM]):
            url = "s3://%s/stopped-%d" % (BUCKET, number)
            log = open(os.path.join(work, "backup-%d.log" % number), "w")
            backup = start_backup(admin_port, os.path.join(work, "backup-%d" % number), log,
                                  "--upload", url, "--upload-every", "1", env=s3)
            try:
                wait_until(lambda: open_uploads(), timeout=60, interval=0.01)
                backup.send_signal(stop)
                assert backup.wait(timeout=30) == 0
            finally:
                backup.kill()
                backup.wait()
                log.close()
            assert open_uploads() == [], open(log.name).read()
            # A copy the signal found finishing is let finish: then it is whole.
            copied = client_s3.list_objects_v2(Bucket=BUCKET, Prefix="stopped-%d/" % number)
            for stored in copied.get("Contents", []):
                name = stored["Key"].split("/")[-1]
                local = os.path.join(work, "backup-%d" % number, name)
                assert stored["Size"] == os.path.getsize(local), (stored, local)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
