//! TLS between members (`sslQuorum`, `ssl.quorum.*`, `portUnification`), with the stores
//! operators make (`tests/support/make-tls-stores`, JKS): a zkrs ensemble replicating
//! over TLS; a zkrs member and an Apache ZooKeeper 3.8 member in one ensemble over TLS;
//! an ensemble moved from plain TCP to TLS a member at a time, as ZooKeeper's guide
//! does it; and members turned away, each with a log line naming why: a plaintext one
//! on a TLS-only port, and one whose certificate does not name its address.

mod support;

use std::io::Write;
use std::net::TcpStream;

use support::ensemble::Ensemble;
use support::mixed::zookeeper_and_zkrs;
use support::tls::{quorum_stores, stores};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_replicate_over_tls_and_turn_a_plaintext_member_away() {
    let stores = stores();
    let extra = format!("sslQuorum=true\n{}", quorum_stores(&stores, "server"));
    let ensemble = Ensemble::start(3, &extra);
    let leader = ensemble.wait_until_settled();
    let (follower, other) = ((leader + 1) % 3, (leader + 2) % 3);
    ensemble.assert_replicated(follower, other, "/over-tls").await;

    // A plaintext member dials the leader's election port: it is closed on.
    let (_, election) = ensemble.peer_addresses(leader);
    let mut plain = TcpStream::connect(election).expect("dial the election port");
    plain.write_all(&[0, 0, 0, 0, 0, 0, 0, 4]).expect("a plaintext introduction");
    ensemble.wait_for_log(leader, "a plaintext member on a TLS-only member port");
    ensemble.assert_replicated(other, follower, "/still-over-tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_certificate_does_not_name_it_is_refused() {
    let stores = stores();
    let extra = format!("sslQuorum=true\n{}", quorum_stores(&stores, "server"));
    let mut ensemble = Ensemble::start(3, &extra);
    let leader = ensemble.wait_until_settled();
    let stranger = (leader + 1) % 3;
    ensemble.kill(stranger);
    ensemble.append_config(stranger, &quorum_stores(&stores, "elsewhere"));
    ensemble.restart(stranger);
    ensemble.wait_for_log(leader, "certificate does not name 127.0.0.1");
    assert_ne!(ensemble.mode(stranger).as_deref(), Some("follower"));
    // The same certificate passes where host names are not checked.
    ensemble.kill(stranger);
    ensemble.append_config(stranger, "ssl.quorum.hostnameVerification=false");
    for i in 0..3 {
        if i != stranger {
            ensemble.kill(i);
            ensemble.append_config(i, "ssl.quorum.hostnameVerification=false");
        }
    }
    for i in 0..3 {
        ensemble.restart(i);
    }
    ensemble.wait_until_settled();
    ensemble.assert_replicated(stranger, (stranger + 1) % 3, "/named-elsewhere").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_moves_from_plain_to_tls_one_member_at_a_time() {
    // ZooKeeper's guide: portUnification=true everywhere (one restart each), then
    // sslQuorum=true (another), then portUnification off again (a last one).
    let stores = stores();
    let mut ensemble = Ensemble::start(3, "");
    ensemble.wait_until_settled();
    let mut written = 0;
    let steps = [
        format!("portUnification=true\n{}", quorum_stores(&stores, "server")),
        "sslQuorum=true".to_owned(),
        "portUnification=false".to_owned(),
    ];
    for step in &steps {
        for member in 0..3 {
            ensemble.kill(member);
            ensemble.append_config(member, step);
            ensemble.restart(member);
            ensemble.wait_until_settled();
            written += 1;
            let path = format!("/rolling-{written}");
            ensemble.assert_replicated(member, (member + 1) % 3, &path).await;
        }
    }
    let mut client = ensemble.connect(0).await;
    for index in 1..=written {
        assert!(client.exists(&format!("/rolling-{index}"), false).await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zkrs_member_and_a_zookeeper_member_speak_tls_to_each_other() {
    let stores = stores();
    let settings = format!("sslQuorum=true\n{}", quorum_stores(&stores, "server"));
    let (zookeeper, _zkrs) = zookeeper_and_zkrs(&settings, &[]).await;
    // ZooKeeper logs each TLS connection it dials and each it accepts.
    let log = zookeeper.log();
    assert!(log.contains("SSL handshake complete with"), "ZooKeeper dialled no TLS:\n{log}");
    assert!(log.contains("Accepted TLS connection"), "ZooKeeper accepted no TLS:\n{log}");
}
