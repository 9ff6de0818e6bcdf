"""ZooKeeper's Prometheus endpoint (metricsProvider.className=...PrometheusMetricsProvider):
/metrics read by Prometheus' own parser (prometheus_client), agreeing with mntr."""
import os
import resource
import socket
import struct
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError, RolledBackError
from kazoo.security import OPEN_ACL_UNSAFE
from prometheus_client.parser import text_string_to_metric_families

from conftest import (CreateContainer, Ensemble, Server, call, four_letter, free_ports,
                      recv_exactly, start_zookeeper, start_zookeeper_ensemble, stop_zookeeper,
                      wait_until, zkcli)

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


@pytest.fixture(scope="module")
def exporting():
    port = free_ports(1)[0]
    server = Server(
        "metricsProvider.className=%s\nmetricsProvider.httpHost=127.0.0.1\n"
        "metricsProvider.httpPort=%d\n" % (PROVIDER, port)
    )
    server.metrics_url = "http://127.0.0.1:%d/metrics" % port
    yield server
    server.stop()


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def mntr(hosts):
    return dict(line.split("\t", 1) for line in four_letter(hosts, "mntr").splitlines())


def test_metrics_parse_with_zookeepers_names_and_agree_with_mntr(exporting):
    client = exporting.client()
    client.create("/app/a", b"data", makepath=True)
    zkcli(exporting.hosts, "setquota -N 5 /app\n")
    families = scrape(exporting.metrics_url)
    monitored = mntr(exporting.hosts)
    for name in ["znode_count", "ephemerals_count", "watch_count", "global_sessions",
                 "approximate_data_size", "outstanding_requests"]:
        assert families[name].type == "gauge", name
        assert families[name].samples[0].value == float(monitored["zk_" + name]), name
    # The text format names counters without _total; the parser adds it to the family.
    packets = families["packets_received"]
    assert packets.type == "counter" and packets.samples[0].value > 0
    deficit = {sample.name: sample.value for sample in families["connection_token_deficit"].samples}
    assert deficit["connection_token_deficit_count"] == float(
        monitored["zk_cnt_connection_token_deficit"]
    )
    limit = families["quota_count_limit_per_namespace"].samples[0]
    assert limit.labels == {"key": "app"} and limit.value == 5.0
    usage = families["quota_count_usage_per_namespace"].samples[0]
    assert usage.labels == {"key": "app"} and usage.value == 2.0
    assert "version" not in families and "server_state" not in families
    writes = {sample.name: sample.value for sample in families["write_per_namespace"].samples
              if sample.labels == {"key": "app"}}
    assert families["write_per_namespace"].type == "summary"
    assert writes["write_per_namespace_count"] == float(monitored["zk_cnt_app_write_per_namespace"])
    assert writes["write_per_namespace_sum"] == float(monitored["zk_sum_app_write_per_namespace"])
    for name, prefix in [("readlatency", "zk_"), ("updatelatency", "zk_")]:
        samples = {(s.name, s.labels.get("quantile")): s.value for s in families[name].samples}
        assert families[name].type == "summary"
        assert samples[(name + "_count", None)] == float(monitored["zk_cnt_" + name]) > 0
        assert (name, "0.99") in samples and (name, "0.5") in samples
        assert prefix + "p999_" + name in monitored
    client.stop()


def test_only_metrics_is_served(exporting):
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(exporting.metrics_url.replace("/metrics", "/other"), timeout=10)
    assert error.value.code == 404


def proc_status_kib(pid, label):
    """A line of /proc/PID/status in kibibytes (VmRSS, VmSize)."""
    with open("/proc/%d/status" % pid) as status:
        line = next(line for line in status if line.startswith(label + ":"))
    return int(line.split()[1])


def test_process_metrics_show_the_servers_cpu_memory_and_files(exporting):
    """The standard process metrics ZooKeeper's Prometheus provider adds by default
    (`metricsProvider.exportJvmInfo`), read here beside what /proc says of the process."""
    pid = exporting.process.pid
    before = time.time()
    families = scrape(exporting.metrics_url)
    # The parser names a counter's family without its _total.
    assert families["process_cpu_seconds"].type == "counter"
    cpu = families["process_cpu_seconds"].samples[0].value
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    assert 0 < cpu and abs(cpu - (int(fields[11]) + int(fields[12])) / ticks) < 1.0
    rss = families["process_resident_memory_bytes"].samples[0].value
    assert abs(rss / 1024 - proc_status_kib(pid, "VmRSS")) < 0.25 * proc_status_kib(pid, "VmRSS")
    virtual = families["process_virtual_memory_bytes"].samples[0].value
    assert virtual >= rss and abs(virtual / 1024 - proc_status_kib(pid, "VmSize")) < 65536
    open_fds = families["process_open_fds"].samples[0].value
    assert abs(open_fds - len(os.listdir("/proc/%d/fd" % pid))) <= 4
    soft_limit = resource.prlimit(pid, resource.RLIMIT_NOFILE)[0]
    assert families["process_max_fds"].samples[0].value == float(soft_limit)
    started = families["process_start_time_seconds"].samples[0].value
    assert before - 300 < started <= before
    # They are the provider's, not ZooKeeper's own: mntr leaves them out.
    assert not any(name.startswith("zk_process_") for name in mntr(exporting.hosts))


def test_process_metrics_go_with_export_jvm_info_false():
    port = free_ports(1)[0]
    server = Server(
        "metricsProvider.className=%s\nmetricsProvider.httpHost=127.0.0.1\n"
        "metricsProvider.httpPort=%d\nmetricsProvider.exportJvmInfo=false\n" % (PROVIDER, port)
    )
    try:
        families = scrape("http://127.0.0.1:%d/metrics" % port)
        assert "znode_count" in families
        assert not any(name.startswith("process_") for name in families)
    finally:
        server.stop()


def histograms(family, label):
    """Each series of a histogram family by its `label` value: buckets (le, count), sum, count."""
    series = {}
    for sample in family.samples:
        entry = series.setdefault(sample.labels.get(label), {"buckets": []})
        if sample.name.endswith("_bucket"):
            entry["buckets"].append((float(sample.labels["le"]), sample.value))
        else:
            entry[sample.name.rsplit("_", 1)[1]] = sample.value
    return series


def test_write_stages_and_reads_are_histograms_that_add_up(exporting):
    before = histograms(scrape(exporting.metrics_url)["zkrs_write_stage_seconds"], "stage")
    client = exporting.client()
    for i in range(20):
        client.create("/stages-%d" % i, b"x" * 100)
    for i in range(30):
        client.get("/stages-%d" % (i % 20))
    families = scrape(exporting.metrics_url)
    stages = histograms(families["zkrs_write_stage_seconds"], "stage")
    assert families["zkrs_write_stage_seconds"].type == "histogram"
    assert set(stages) == {"queue", "log", "quorum", "leader", "apply", "total"}
    for name in ["queue", "log", "quorum", "apply", "total"]:
        stage = stages[name]
        assert stage["count"] - before[name]["count"] == 20, name
        counts = [count for _, count in stage["buckets"]]
        assert counts == sorted(counts) and stage["buckets"][-1] == (float("inf"), stage["count"])
    # A standalone server forwards nothing; its writes wait for the disk.
    assert stages["leader"]["count"] == 0
    assert stages["log"]["sum"] > 0
    total, parts = stages["total"]["sum"], sum(stages[n]["sum"] for n in ["queue", "log", "quorum"])
    assert parts <= total * 1.01 + 1e-3
    reads = histograms(families["zkrs_read_seconds"], None)[None]
    assert reads["count"] >= 30
    syncs = histograms(families["zkrs_log_sync_seconds"], None)[None]
    # Batches of the log (handshakes' txns and epochs too), each written and synced.
    assert syncs["count"] > 0 and syncs["sum"] > 0
    monitored = mntr(exporting.hosts)
    # ZooKeeper's quorum metrics are there, and still at zero on a standalone server.
    for name in ["zk_looking_count", "zk_commit_count", "zk_proposal_count", "zk_cnt_election_time",
                 "zk_cnt_quorum_ack_latency", "zk_learner_proposal_received_count"]:
        assert monitored[name] == "0", name
    assert monitored["zk_cnt_dbinittime"] == "1"
    assert "zkrs_write_stage_seconds" not in str(monitored)
    client.stop()


def test_ensemble_members_count_elections_syncs_proposals_and_commits():
    ports = free_ports(3)
    ensemble = Ensemble(member_extra=lambda i: (
        "metricsProvider.className=%s\nmetricsProvider.httpHost=127.0.0.1\n"
        "metricsProvider.httpPort=%d\n" % (PROVIDER, ports[i])))
    try:
        leader = ensemble.leader()
        followers = [i for i in range(3) if i != leader]

        def synced():
            # A member still syncing with the leader would take the writes below in its
            # sync rather than as commits, and count fewer of them.
            return mntr(ensemble.members[leader].hosts).get("zk_synced_followers") == "2"

        wait_until(synced, timeout=30)
        client = ensemble.members[followers[0]].client()
        # More than ZooKeeper's ackLoggingFrequency (1000) of txns, so that ack_latency
        # samples at least one zxid.
        writes = 1100
        for result in [client.create_async("/quorum-%d" % i, b"x") for i in range(writes)]:
            result.get(timeout=20)
        client.stop()

        def committed_everywhere():
            return all(int(mntr(m.hosts)["zk_learner_commit_received_count"]) >= writes
                       for m in (ensemble.members[i] for i in followers))

        wait_until(committed_everywhere, timeout=20)
        led = mntr(ensemble.members[leader].hosts)
        assert int(led["zk_proposal_count"]) >= 10 and int(led["zk_commit_count"]) >= 10
        assert int(led["zk_cnt_quorum_ack_latency"]) >= writes
        # Latencies from a txn's time are wall-clock differences, skipped when negative (a
        # clock stepped back), as ZooKeeper skips them: most proposals have one.
        assert writes // 2 <= int(led["zk_cnt_proposal_ack_creation_latency"]) <= int(
            led["zk_proposal_count"])
        # Per voter, the sampled zxids acknowledged before their commit: the leader's
        # own acknowledgement or a follower's completes each quorum.
        sampled = {name: int(value) for name, value in led.items()
                   if name.startswith("zk_cnt_") and name.endswith("_ack_latency")
                   and name != "zk_cnt_quorum_ack_latency"}
        assert sampled and set(sampled) <= {"zk_cnt_%d_ack_latency" % (i + 1) for i in range(3)}
        assert 1 <= sum(sampled.values()) <= 2 * (writes // 1000 + 1)
        for name in sampled:
            assert name.replace("cnt_", "p99_") in led
        families = scrape("http://127.0.0.1:%d/metrics" % ports[leader])
        keys = {s.labels["key"] for s in families["ack_latency"].samples}
        assert keys == {name.split("_")[2] for name in sampled}
        assert int(led["zk_looking_count"]) >= 1 and int(led["zk_cnt_election_time"]) >= 1
        syncs = int(led["zk_snap_count"]) + int(led["zk_diff_count"])
        assert syncs >= 2
        # Each sync is sampled as it begins (counting itself) and as its learner
        # acknowledges NEWLEADER, as ZooKeeper's learner handlers sample it; the last
        # to end left none in flight.
        for kind, count in [("snap", led["zk_snap_count"]), ("diff", led["zk_diff_count"])]:
            sampled = int(led["zk_cnt_inflight_%s_count" % kind])
            assert int(count) + 1 <= sampled <= 2 * int(count) or sampled == int(count) == 0, kind
            if sampled:
                assert led["zk_min_inflight_%s_count" % kind] == "0", kind
                assert int(led["zk_max_inflight_%s_count" % kind]) >= 1, kind
        assert int(led["zk_cnt_leader_unavailable_time"]) >= 1
        # The leader prepares every write, its learners' too (the client's session, its
        # creates and its close), and applies every txn in its final processing, as
        # ZooKeeper's leader runs them through its prep and commit processors.
        assert int(led["zk_prep_processor_request_queued"]) >= writes + 2
        assert int(led["zk_cnt_prep_process_time"]) >= writes + 2
        assert int(led["zk_cnt_write_final_proc_time_ms"]) >= writes + 2
        for i in followers:
            followed = mntr(ensemble.members[i].hosts)
            # A follower has no prep processor in ZooKeeper; it applies every txn.
            for name in ["zk_prep_processor_request_queued", "zk_cnt_prep_process_time",
                         "zk_cnt_prep_processor_queue_size",
                         "zk_cnt_prep_processor_queue_time_ms"]:
                assert followed[name] == "0", name
            assert int(followed["zk_cnt_write_final_proc_time_ms"]) >= writes
            received = int(followed["zk_learner_proposal_received_count"])
            assert received >= writes
            assert int(followed["zk_cnt_follower_sync_time"]) >= 1
            assert int(followed["zk_cnt_unavailable_time"]) >= 1
            assert writes // 2 <= int(followed["zk_cnt_proposal_latency"]) <= received
            assert int(followed["zk_cnt_commit_propagation_latency"]) >= writes
            assert writes // 2 <= int(followed["zk_cnt_proposal_ack_creation_latency"]) <= received
            assert not any(name.endswith("_ack_latency") and name.startswith("zk_cnt_")
                           and name[7].isdigit() for name in followed)
            assert followed["zk_commit_count"] == "0"
        url = "http://127.0.0.1:%d/metrics" % ports[followers[0]]
        stages = histograms(scrape(url)["zkrs_write_stage_seconds"], "stage")
        # The follower's client's writes (the creates and its closeSession) went through
        # the leader, not through proposals of its own.
        assert stages["leader"]["count"] == writes + 1
        assert stages["total"]["count"] == writes + 1
        assert stages["log"]["count"] == 0
    finally:
        ensemble.stop()


def fan_out_workload(hosts):
    """Watches of three sessions fired by a set, a create and a delete, by a fourth;
    returns mntr once every client has closed, with the bytes received meanwhile."""
    received = int(mntr(hosts)["zk_bytes_received_count"])
    clients = [KazooClient(hosts=hosts, timeout=30) for _ in range(4)]
    for client in clients:
        client.start(timeout=15)
    writer, first, second, third = clients
    writer.create("/fan", b"x")
    for watcher in (first, second, third):
        watcher.get("/fan", watch=lambda event: None)
    first.exists("/fan/c", watch=lambda event: None)
    first.get_children("/fan", watch=lambda event: None)
    writer.set("/fan", b"y")
    writer.create("/fan/c", b"")
    second.get("/fan/c", watch=lambda event: None)
    third.get("/fan/c", watch=lambda event: None)
    third.get_children("/fan/c", watch=lambda event: None)
    second.get_children("/fan", watch=lambda event: None)
    writer.delete("/fan/c")
    for client in clients:
        client.stop()
        client.close()
    monitored = mntr(hosts)
    monitored["received"] = int(monitored["zk_bytes_received_count"]) - received
    return monitored


def drop_two_connections(hosts):
    """A session opened and left without closeSession, and a connection closed before its
    first byte: two connections the client dropped."""
    host, port = hosts.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as opened:
        connect = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16
        opened.sendall(struct.pack(">i", len(connect)) + connect)
        assert len(opened.recv(1000)) > 4, "a ConnectResponse"
    socket.create_connection((host, int(port)), timeout=10).close()


FAN_OUT = ["zk_%s_node_%s_watch_count" % (part, event)
           for event in ("created", "deleted", "changed", "children")
           for part in ("avg", "min", "max", "cnt", "sum")]


def test_watch_fan_out_bytes_and_srst_agree_with_zookeeper():
    zk_port = free_ports(1)[0]
    zk_dir = tempfile.mkdtemp(prefix="zkrs-metrics-zookeeper-")
    zookeeper = start_zookeeper(zk_dir, zk_port, extra="4lw.commands.whitelist=*\n")
    # ZooKeeper's tick, so the sessions' timeouts agree too.
    zkrs = Server("tickTime=2000\n")
    try:
        hosts = {"zookeeper": "127.0.0.1:%d" % zk_port, "zkrs": zkrs.hosts}
        seen = {name: fan_out_workload(server) for name, server in hosts.items()}
        # Bytes received are counted from the first mntr: ZooKeeper was asked `srvr`
        # until it served.
        compared = FAN_OUT + ["zk_watch_bytes", "zk_response_bytes", "received",
                              "zk_cnt_startup_snap_load_time", "zk_cnt_startup_txns_loaded"]
        assert {key: seen["zkrs"][key] for key in compared} == \
            {key: seen["zookeeper"][key] for key in compared}
        # Deleting /fan/c fired two data watches, then the child watch on it.
        assert (seen["zkrs"]["zk_cnt_node_deleted_watch_count"],
                seen["zkrs"]["zk_sum_node_deleted_watch_count"]) == ("2", "3")
        assert seen["zkrs"]["zk_max_node_changed_watch_count"] == "3"
        assert int(seen["zkrs"]["zk_cnt_fsynctime"]) > 0
        assert int(seen["zkrs"]["zk_max_file_descriptor_count"]) > 0
        # kazoo's clients closed their sessions and zkrs closed their connections: none
        # counts as dropped. (ZooKeeper may count one whose end of stream its selector
        # reads before it closes the connection itself, so only the two drops below are
        # compared.)
        assert seen["zkrs"]["zk_connection_drop_count"] == "0"
        for server in hosts.values():
            dropped = int(mntr(server)["zk_connection_drop_count"])
            drop_two_connections(server)
            wait_until(lambda: int(mntr(server)["zk_connection_drop_count"]) == dropped + 2)
        # srst resets ZooKeeper's ServerMetrics with its default provider: mntr, asked
        # after it, counts only itself.
        reset = {}
        for name, server in hosts.items():
            assert four_letter(server, "srst") == "Server stats reset.\n"
            reset[name] = mntr(server)
        after = FAN_OUT + ["zk_cnt_fsynctime", "zk_cnt_updatelatency", "zk_cnt_dbinittime",
                           "zk_connection_request_count", "zk_watch_bytes", "zk_packets_received",
                           "zk_bytes_received_count", "zk_cnt_sync_processor_batch_size",
                           "zk_connection_drop_count"]
        assert {key: reset["zkrs"][key] for key in after} == \
            {key: reset["zookeeper"][key] for key in after}
        assert reset["zkrs"]["zk_bytes_received_count"] == "4"
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()


def test_srst_leaves_the_metrics_prometheus_scrapes(exporting):
    client = exporting.client()
    client.create("/reset-me", b"x")
    client.stop()
    before = mntr(exporting.hosts)
    assert four_letter(exporting.hosts, "srst") == "Server stats reset.\n"
    after = mntr(exporting.hosts)
    # ZooKeeper's Prometheus provider cannot reset its counters; srst resets only its
    # ServerStats (packets, the request latency, response sizes).
    assert after["zk_packets_received"] == "1"
    assert after["zk_cnt_fsynctime"] == before["zk_cnt_fsynctime"] != "0"
    assert int(after["zk_bytes_received_count"]) > int(before["zk_bytes_received_count"])


def test_a_restart_counts_the_txns_it_read_from_the_log():
    server = Server()
    try:
        client = server.client()
        for i in range(5):
            client.create("/restart-%d" % i, b"x")
        client.stop()
        server.kill()
        server = Server(directory=server.dir)
        monitored = mntr(server.hosts)
        # The five creates and the session's open and close, after the empty snapshot.
        assert monitored["zk_cnt_startup_txns_loaded"] == "1"
        assert monitored["zk_sum_startup_txns_loaded"] == "7"
        assert monitored["zk_cnt_startup_snap_load_time"] == "1"
    finally:
        server.stop()


def test_start_up_raises_the_open_files_limit_to_the_hard_one_as_the_jvm_does():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    lowered = 256 if hard == resource.RLIM_INFINITY else hard // 2
    server = Server(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard)))
    try:
        raised = mntr(server.hosts)["zk_max_file_descriptor_count"]
        assert raised == ("-1" if hard == resource.RLIM_INFINITY else str(hard))
        with open(os.path.join(server.dir, "server.log")) as log:
            assert "raised the open files limit to its hard limit" in log.read()
    finally:
        server.stop()


# ZooKeeper's request processors' metrics, as zkrs takes them at its own stages: the
# counters, the summaries (avg, min, max, cnt, sum) and the latencies (with percentiles).
PROCESSOR_COUNTERS = ["prep_processor_request_queued", "sync_processor_request_queued",
                      "revalidate_count", "connection_revalidate_count", "stale_replies"]
PROCESSOR_SUMMARIES = ["prep_processor_queue_size", "prep_process_time",
                       "sync_processor_queue_size"]
PROCESSOR_LATENCIES = ["prep_processor_queue_time_ms", "close_session_prep_time",
                       "sync_processor_queue_time_ms", "sync_processor_queue_flush_time_ms",
                       "sync_processor_queue_and_flush_time_ms", "propagation_latency",
                       "write_final_proc_time_ms"]


def mntr_lines_of(monitored, name):
    """The mntr keys that show metric `name`, whatever its kind."""
    forms = ["zk_" + name] + ["zk_%s_%s" % (part, name) for part in
                              ["avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999"]]
    return sorted(key for key in forms if key in monitored)


def raw_handshake(hosts, session_id=0, password=b"\0" * 16):
    """A handshake over a raw socket, which then closes without closing the session;
    returns the session id and password the server answered."""
    host, port = hosts.split(":")
    body = struct.pack(">iqiqi", 0, 0, 30000, session_id, len(password)) + password
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        (length,) = struct.unpack(">i", recv_exactly(s, 4))
        reply = recv_exactly(s, length)
    _, _, answered, password_length = struct.unpack(">iiqi", reply[:20])
    return answered, reply[20:20 + password_length]


def processor_workload(hosts):
    """Ten txns (two sessions opened, six creates, a set, one close), a read, and a
    session resumed over a raw socket; returns mntr once the txns are applied."""
    client = KazooClient(hosts=hosts)
    client.start()
    client.create("/processors", b"x")
    for i in range(5):
        client.create("/processors/c%d" % i, b"x")
    client.set("/processors", b"y")
    client.get("/processors")
    client.stop()
    client.close()
    session_id, password = raw_handshake(hosts)
    assert raw_handshake(hosts, session_id, password)[0] == session_id
    return mntr(hosts)


def test_request_processor_metrics_show_as_zookeepers_and_count_the_txns():
    zk_port = free_ports(1)[0]
    zk_dir = tempfile.mkdtemp(prefix="zkrs-processors-zookeeper-")
    zookeeper = start_zookeeper(zk_dir, zk_port, extra="4lw.commands.whitelist=*\n")
    metrics_port = free_ports(1)[0]
    zkrs = Server(
        "metricsProvider.className=%s\nmetricsProvider.httpHost=127.0.0.1\n"
        "metricsProvider.httpPort=%d\n" % (PROVIDER, metrics_port)
    )
    try:
        seen = {"zookeeper": processor_workload("127.0.0.1:%d" % zk_port),
                "zkrs": processor_workload(zkrs.hosts)}
        for name in PROCESSOR_COUNTERS + PROCESSOR_SUMMARIES + PROCESSOR_LATENCIES:
            shown = mntr_lines_of(seen["zkrs"], name)
            assert shown == mntr_lines_of(seen["zookeeper"], name), name
            assert len(shown) == (1 if name in PROCESSOR_COUNTERS else
                                  5 if name in PROCESSOR_SUMMARIES else 9), name
        # Both servers time every txn they apply from its time, and count the resume.
        for key in ["zk_cnt_propagation_latency", "zk_connection_revalidate_count"]:
            assert seen["zkrs"][key] == seen["zookeeper"][key], key
        assert seen["zkrs"]["zk_connection_revalidate_count"] == "1"
        assert seen["zkrs"]["zk_cnt_propagation_latency"] == "10"
        # zkrs's pipeline takes in writes and handshakes only (ZooKeeper's takes reads
        # and pings too): the first session, six creates, the set, the close and the raw
        # socket's session, each prepared; the eight writes among them are timed from
        # their arrival.
        monitored = seen["zkrs"]
        assert monitored["zk_prep_processor_request_queued"] == "10"
        assert monitored["zk_cnt_prep_process_time"] == "10"
        assert monitored["zk_cnt_close_session_prep_time"] == "1"
        assert monitored["zk_cnt_prep_processor_queue_time_ms"] == "8"
        # Every txn went through the log, each taken in one of the thread's groups.
        assert monitored["zk_sync_processor_request_queued"] == "10"
        assert monitored["zk_sum_sync_processor_queue_size"] == "10"
        for name in ["sync_processor_queue_time_ms", "sync_processor_queue_and_flush_time_ms"]:
            assert monitored["zk_cnt_" + name] == "10", name
        assert monitored["zk_cnt_sync_processor_queue_flush_time_ms"] == \
            monitored["zk_cnt_sync_processor_queue_size"] != "0"
        # ZooKeeper times a write's final processing in its commit processor, which a
        # standalone server does not have.
        assert monitored["zk_cnt_write_final_proc_time_ms"] == "0"
        assert monitored["zk_revalidate_count"] == monitored["zk_stale_replies"] == "0"
        families = scrape("http://127.0.0.1:%d/metrics" % metrics_port)
        for name in PROCESSOR_LATENCIES:
            assert families[name].type == "summary", name
            count = {s.name: s.value for s in families[name].samples}[name + "_count"]
            assert count == float(monitored["zk_cnt_" + name]), name
        assert families["sync_processor_request_queued"].type == "counter"
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()


def raw_pings(hosts, count):
    """Opens a session over a raw socket, pings it `count` times and leaves without
    closing it."""
    host, port = hosts.split(":")
    body = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        recv_exactly(s, struct.unpack(">i", recv_exactly(s, 4))[0])
        for _ in range(count):
            s.sendall(struct.pack(">iii", 8, -2, 11))
            (length,) = struct.unpack(">i", recv_exactly(s, 4))
            xid, _, err = struct.unpack(">iqi", recv_exactly(s, length))
            assert (xid, err) == (-2, 0)


def latency_steps(hosts):
    """Reads, a sync, writes (one failing) and pings, one kind at a time: yields each
    step's name once its replies are in."""
    client = KazooClient(hosts=hosts, timeout=30)
    client.start()
    try:
        client.create("/latencies", b"x")
        yield "create"
        for _ in range(4):
            client.get("/latencies")
        client.exists("/latencies")
        client.get_children("/latencies")
        yield "six reads"
        client.sync("/latencies")
        yield "sync"
        client.set("/latencies", b"y")
        with pytest.raises(NoNodeError):
            client.create("/missing/child")
        yield "a set and a failed create"
        raw_pings(hosts, 3)
        yield "three pings"
    finally:
        client.stop()


def test_requests_without_a_txn_count_as_reads_as_in_zookeeper():
    """ZooKeeper's readlatency takes every request without a txn (reads, syncs, pings),
    its updatelatency every txn, a failed one too; the same steps on both servers move
    them alike."""
    zk_port = free_ports(1)[0]
    zk_dir = tempfile.mkdtemp(prefix="zkrs-latencies-zookeeper-")
    zookeeper = start_zookeeper(zk_dir, zk_port, extra="4lw.commands.whitelist=*\n")
    zkrs = Server()
    names = ["zk_cnt_readlatency", "zk_cnt_updatelatency", "zk_cnt_write_final_proc_time_ms"]

    def counts(hosts):
        monitored = mntr(hosts)
        return [int(monitored[name]) for name in names]

    def steps(hosts):
        before = counts(hosts)
        seen = []
        for step in latency_steps(hosts):
            now = counts(hosts)
            seen.append((step, [a - b for a, b in zip(now, before)]))
            before = now
        return seen

    try:
        seen = {"zookeeper": steps("127.0.0.1:%d" % zk_port), "zkrs": steps(zkrs.hosts)}
        assert seen["zkrs"] == seen["zookeeper"]
        # A new session is a txn: the client's and the raw socket's count as updates.
        assert seen["zkrs"] == [("create", [0, 2, 0]), ("six reads", [6, 0, 0]),
                                ("sync", [1, 0, 0]), ("a set and a failed create", [0, 2, 0]),
                                ("three pings", [3, 1, 0])]
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()


def role_steps(follower, leader):
    """A client of the follower, then one of the leader, each opening a session,
    writing, syncing and closing (reads on the follower only: ZooKeeper's leader also
    prepares reads, zkrs's does not); yields each step's name once its replies are in."""
    client = KazooClient(hosts=follower, timeout=30)
    client.start()
    for i in range(3):
        client.create("/roles-f%d" % i)
    client.sync("/")
    for _ in range(4):
        client.get("/roles-f0")
    client.stop()
    yield "a follower's client"
    client = KazooClient(hosts=leader, timeout=30)
    client.start()
    for i in range(2):
        client.create("/roles-l%d" % i)
    client.sync("/")
    client.stop()
    yield "the leader's client"


def test_ensemble_members_count_requests_by_role_as_zookeepers_do():
    """ZooKeeper's follower has no prep processor and times every txn (and its clients'
    syncs) in its commit processor; its leader prepares its learners' requests too. The
    same steps on a ZooKeeper 3.8 ensemble and a zkrs one move these alike."""
    names = ["zk_cnt_readlatency", "zk_cnt_updatelatency", "zk_cnt_write_final_proc_time_ms",
             "zk_prep_processor_request_queued", "zk_cnt_prep_process_time"]

    def counts(hosts):
        monitored = mntr(hosts)
        return [int(monitored[name]) for name in names]

    def deltas(members, start):
        return [[now - before for now, before in zip(counts(m), begun)]
                for m, begun in zip(members, start)]

    def run(follower, leader, expected=None):
        members = [follower, leader]
        seen, start = [], [counts(m) for m in members]
        for step in role_steps(follower, leader):
            # zkrs's leader counts a txn as it applies it, which may come just after
            # the follower answered.
            deadline = time.time() + 5
            while expected and deltas(members, start) != expected[len(seen)][1] \
                    and time.time() < deadline:
                time.sleep(0.02)
            seen.append((step, deltas(members, start)))
            start = [counts(m) for m in members]
        return seen

    def roles(hosts):
        modes = {h: four_letter(h, "srvr") for h in hosts}
        leader = next(h for h, text in modes.items() if "Mode: leader" in text)
        return next(h for h, text in modes.items() if "Mode: follower" in text), leader

    processes, directories, ports = start_zookeeper_ensemble("4lw.commands.whitelist=*\n")
    try:
        hosts = ["127.0.0.1:%d" % port for port in ports]
        wait_until(lambda: any("Mode: leader" in four_letter(h, "srvr") for h in hosts),
                   timeout=30)
        seen = {"zookeeper": run(*roles(hosts))}
    finally:
        for process, directory in zip(processes, directories):
            stop_zookeeper(process, directory)
    ensemble = Ensemble()
    try:
        ensemble.leader()
        hosts = [member.hosts for member in ensemble.members]
        seen["zkrs"] = run(*roles(hosts), expected=seen["zookeeper"])
    finally:
        ensemble.stop()
    assert seen["zkrs"] == seen["zookeeper"]
    # [follower, leader]: a session, three creates, a sync, four reads and a close at
    # the follower; a session, two creates, a sync and a close at the leader.
    assert seen["zkrs"] == [("a follower's client", [[5, 5, 6, 0, 0], [0, 0, 5, 6, 6]]),
                            ("the leader's client", [[0, 0, 4, 0, 0], [1, 4, 4, 5, 5]])]


def test_connections_without_a_handshake_expire_as_zookeepers_do():
    zk_port = free_ports(1)[0]
    zk_dir = tempfile.mkdtemp(prefix="zkrs-sessionless-zookeeper-")
    zookeeper = start_zookeeper(zk_dir, zk_port, extra="4lw.commands.whitelist=*\n")
    zkrs = Server()
    hosts = ["127.0.0.1:%d" % zk_port, zkrs.hosts]
    opened = []
    try:
        # On each server, one connection that sends nothing and one that stops within its
        # connect request: both are closed after the 10 s either server allows.
        for server in hosts:
            host, port = server.split(":")
            opened.append(socket.create_connection((host, int(port))))
            partial = socket.create_connection((host, int(port)))
            partial.sendall(struct.pack(">i", 44) + bytes(2))
            opened.append(partial)

        def expired(server):
            return int(mntr(server)["zk_sessionless_connections_expired"])

        wait_until(lambda: all(expired(server) >= 2 for server in hosts), timeout=40)
        assert [expired(server) for server in hosts] == [2, 2]
        for connection in opened:
            connection.settimeout(5)
            assert connection.recv(1) == b"", "the server closed it"
    finally:
        for connection in opened:
            connection.close()
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()


def change_record_steps(hosts):
    """Writes of every kind, one step at a time: yields each step's name once its
    replies are in."""
    client, other = KazooClient(hosts=hosts), KazooClient(hosts=hosts)
    client.start()
    other.start()
    try:
        client.create("/changes", b"x")
        yield "create"
        client.set("/changes", b"y")
        yield "set"
        client.set_acls("/changes", OPEN_ACL_UNSAFE)
        yield "setACL"
        other.create("/changes/ephemeral", ephemeral=True)
        yield "ephemeral create"
        done = client.transaction()
        done.create("/changes/m")
        done.set_data("/changes", b"z")
        assert done.commit() == ["/changes/m", client.exists("/changes")]
        yield "multi"
        # ZooKeeper counts the records of the ops before the one that failed, though
        # it drops them with the multi.
        failing = client.transaction()
        failing.create("/changes/n")
        failing.check("/changes", 99)
        assert [type(result) for result in failing.commit()] == [RolledBackError, BadVersionError]
        yield "failed multi"
        with pytest.raises(NoNodeError):
            client.create("/missing/child")
        yield "failed create"
        client.create("/changes/s-", sequence=True)
        client.delete("/changes/m")
        yield "sequential create and delete"
        other.stop()
        wait_until(lambda: not client.exists("/changes/ephemeral"), timeout=10)
        yield "closed with an ephemeral"
        call(client, CreateContainer("/container", b"", OPEN_ACL_UNSAFE, 4))
        client.create("/container/child")
        client.delete("/container/child")
        wait_until(lambda: not client.exists("/container"), timeout=30)
        yield "container reaped"
        client.delete("/changes", recursive=True)
        yield "recursive delete"
    finally:
        other.stop()
        client.stop()


def test_change_records_count_as_zookeepers_prep_processor_counts_them():
    zk_port = free_ports(1)[0]
    zk_dir = tempfile.mkdtemp(prefix="zkrs-changes-zookeeper-")
    zookeeper = start_zookeeper(zk_dir, zk_port, extra="4lw.commands.whitelist=*\n",
                                jvm_flags=["-Dznode.container.checkIntervalMs=200"])
    zkrs = Server()
    names = ["zk_outstanding_changes_queued", "zk_outstanding_changes_removed"]

    def counts(hosts):
        monitored = mntr(hosts)
        return [int(monitored[name]) for name in names]

    def deltas(hosts, start):
        return [now - before for now, before in zip(counts(hosts), start)]

    def settled(hosts, start, expected):
        # ZooKeeper drops a txn's records before it answers; zkrs counts them just
        # after, so its counters get a moment to catch up.
        deadline = time.time() + 5
        while deltas(hosts, start) != expected and time.time() < deadline:
            time.sleep(0.02)
        return deltas(hosts, start)

    try:
        zk_hosts = "127.0.0.1:%d" % zk_port
        start = counts(zk_hosts)
        seen = {"zookeeper": [(step, deltas(zk_hosts, start))
                              for step in change_record_steps(zk_hosts)]}
        start = counts(zkrs.hosts)
        seen["zkrs"] = [(step, settled(zkrs.hosts, start, expected))
                        for step, (_, expected) in zip(change_record_steps(zkrs.hosts),
                                                       seen["zookeeper"])]
        assert seen["zkrs"] == seen["zookeeper"]
        # Two records a create and a delete (the node and its parent), one a set; the
        # failed multi's are counted made, never dropped.
        assert seen["zkrs"][0] == ("create", [2, 2])
        assert seen["zkrs"][5] == ("failed multi", [11, 9])
    finally:
        stop_zookeeper(zookeeper, zk_dir)
        zkrs.stop()
