//! SASL between members (`quorum.auth.*`, DIGEST-MD5 from the JAAS file's QuorumServer
//! and QuorumLearner sections): a zkrs ensemble that requires it, a member with the
//! wrong password turned away with a log line naming why, members authenticating inside
//! TLS, and a zkrs member and an Apache ZooKeeper 3.8 member authenticating to each
//! other in one ensemble.

mod support;

use std::path::{Path, PathBuf};

use support::ensemble::Ensemble;
use support::mixed::zookeeper_and_zkrs;
use support::server::scratch_dir;
use support::tls::{quorum_stores, stores};

/// A JAAS file as ZooKeeper's guide writes it for quorum SASL, the learner using
/// `learner_password`.
fn jaas(learner_password: &str) -> PathBuf {
    let path = scratch_dir("quorum-jaas").join("jaas.conf");
    std::fs::write(
        &path,
        format!(
            "QuorumServer {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             user_member=\"quorumsecret\";\n}};\n\
             QuorumLearner {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             username=\"member\"\n  password=\"{learner_password}\";\n}};\n"
        ),
    )
    .expect("jaas.conf");
    path
}

/// The zoo.cfg lines that require SASL both ways, with the JAAS file at `jaas`.
fn required(jaas: &Path) -> String {
    format!(
        "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
         quorum.auth.serverRequireSasl=true\njava.security.auth.login.config={}\n",
        jaas.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_that_require_sasl_authenticate_and_a_wrong_password_is_turned_away() {
    let mut ensemble = Ensemble::start(3, &required(&jaas("quorumsecret")));
    let leader = ensemble.wait_until_settled();
    let (follower, other) = ((leader + 1) % 3, (leader + 2) % 3);
    ensemble.assert_replicated(follower, other, "/authenticated").await;
    assert!(ensemble.log(leader).contains("a member authenticated with SASL"));

    ensemble.kill(other);
    ensemble.append_config(other, &required(&jaas("a wrong guess")));
    ensemble.restart(other);
    ensemble.wait_for_log(leader, "a wrong password");
    assert_ne!(ensemble.mode(other).as_deref(), Some("follower"));
    ensemble.assert_replicated(leader, follower, "/without-the-stranger").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_authenticate_inside_tls() {
    let stores = stores();
    let extra = format!(
        "sslQuorum=true\n{}{}",
        quorum_stores(&stores, "server"),
        required(&jaas("quorumsecret"))
    );
    let ensemble = Ensemble::start(3, &extra);
    let leader = ensemble.wait_until_settled();
    ensemble.assert_replicated((leader + 1) % 3, (leader + 2) % 3, "/tls-and-sasl").await;
    assert!(ensemble.log(leader).contains("a member authenticated with SASL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zkrs_member_and_a_zookeeper_member_authenticate_to_each_other() {
    let jaas = jaas("quorumsecret");
    let jvm_jaas = format!("-Djava.security.auth.login.config={}", jaas.display());
    let (zookeeper, zkrs) = zookeeper_and_zkrs(&required(&jaas), &[&jvm_jaas]).await;
    // ZooKeeper authenticated to zkrs as a learner, and zkrs to ZooKeeper.
    let log = zookeeper.log();
    let done = "Successfully completed the authentication using SASL";
    assert!(log.contains(&format!("{done}. server addr")), "ZooKeeper as learner:\n{log}");
    assert!(log.contains(&format!("{done}. learner addr")), "zkrs as learner:\n{log}");
    assert!(zkrs.log().contains("a member authenticated with SASL"), "{}", zkrs.log());
}
