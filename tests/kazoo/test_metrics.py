"""ZooKeeper's Prometheus endpoint (metricsProvider.className=...PrometheusMetricsProvider):
/metrics read by Prometheus' own parser (prometheus_client), agreeing with mntr."""
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Server, four_letter, free_ports, zkcli

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
