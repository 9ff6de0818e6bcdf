"""Quotas as ZooKeeper 3.8 keeps them, set and read with its own zkCli.sh, enforced
against kazoo's writes (`enforceQuota=true`), and reported by mntr. The zkCli lines
expected are the ones ZooKeeper 3.8 prints for the same commands on the same tree."""
import os

import pytest
from kazoo.exceptions import QuotaExceededError, RolledBackError

from conftest import Server, four_letter, zkcli


@pytest.fixture
def enforcing():
    server = Server("enforceQuota=true")
    yield server
    server.stop()


def mntr(hosts):
    return dict(line.split("\t", 1) for line in four_letter(hosts, "mntr").splitlines())


def test_zkcli_sets_lists_and_deletes_quotas_that_hard_limits_enforce(enforcing):
    client = enforcing.client()
    client.create("/app", b"")
    client.create("/app/a", b"bb")
    lines = zkcli(enforcing.hosts, "setquota -N 3 /app\nsetquota -B 20 /app\nlistquota /app\n")
    assert "Output quota for /app count=-1,bytes=-1=;byteHardLimit=20;countHardLimit=3" in lines
    assert "Output stat for /app count=2,bytes=2" in lines, lines

    client.create("/app/b", b"ccc")
    with pytest.raises(QuotaExceededError):
        client.create("/app/c", b"")
    with pytest.raises(QuotaExceededError):
        client.set("/app/a", b"x" * 20)
    transaction = client.transaction()
    transaction.delete("/app/b")
    transaction.create("/app/c", b"dddd")
    transaction.create("/app/d", b"")
    assert [type(result) for result in transaction.commit()] == [
        RolledBackError,
        RolledBackError,
        QuotaExceededError,
    ], "the delete makes room for one create, not two"
    assert client.exists("/app/b") and not client.exists("/app/c")
    lines = zkcli(enforcing.hosts, "create /app/e\nlistquota /app\n")
    assert "Quota has exceeded : /app/e" in lines, lines
    assert "Output stat for /app count=3,bytes=5" in lines, lines

    metrics = mntr(enforcing.hosts)
    assert metrics["zk_app_quota_count_limit_per_namespace"] == "3"
    assert metrics["zk_app_quota_bytes_limit_per_namespace"] == "20"
    assert metrics["zk_app_quota_count_usage_per_namespace"] == "3"
    assert metrics["zk_app_quota_bytes_usage_per_namespace"] == "5"
    assert metrics["zk_app_quota_exceeded_error_per_namespace"] == "4"

    zkcli(enforcing.hosts, "delquota /app\n")
    assert not client.exists("/zookeeper/quota/app")
    client.create("/app/c", b"")
    assert "zk_app_quota_count_limit_per_namespace" not in mntr(enforcing.hosts)
    client.stop()


def test_usage_is_recounted_and_limits_still_hold_after_a_restart(enforcing):
    client = enforcing.client()
    client.create("/svc/one", b"12345", makepath=True)
    zkcli(enforcing.hosts, "setquota -N 3 /svc\n")
    client.create("/svc/two", b"")
    client.stop()
    enforcing.kill()
    restarted = Server("enforceQuota=true", directory=enforcing.dir)
    try:
        client = restarted.client()
        assert client.get("/zookeeper/quota/svc/zookeeper_stats")[0] == b"count=3,bytes=5"
        with pytest.raises(QuotaExceededError):
            client.create("/svc/three", b"")
        client.stop()
    finally:
        restarted.kill()


def test_soft_limits_only_log(enforcing):
    client = enforcing.client()
    client.create("/soft", b"")
    zkcli(enforcing.hosts, "setquota -n 1 /soft\n")
    client.create("/soft/a", b"xy")
    with open(os.path.join(enforcing.dir, "server.log")) as log:
        assert "Quota exceeded: /soft [current count=2, softCountLimit=1]" in log.read()
    client.stop()


def test_without_enforce_quota_hard_limits_only_count():
    server = Server()
    try:
        client = server.client()
        client.create("/free", b"")
        zkcli(server.hosts, "setquota -N 1 /free\n")
        for name in ["a", "b", "c"]:
            client.create("/free/" + name, b"xy")
        lines = zkcli(server.hosts, "listquota /free\n")
        assert "Output stat for /free count=4,bytes=6" in lines, lines
        client.stop()
    finally:
        server.stop()
