//! TLS between members (`sslQuorum`, `ssl.quorum.*`, `portUnification`), with the stores
//! operators make (`tests/support/make-tls-stores`, JKS): a zkrs ensemble replicating
//! over TLS; a zkrs member and an Apache ZooKeeper 3.8 member in one ensemble over TLS;
//! an ensemble moved from plain TCP to TLS a member at a time, as ZooKeeper's guide
//! does it; and members turned away, each with a log line naming why: a plaintext one
//! on a TLS-only port, and one whose certificate does not name its address.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jute::records::SyncRequest;
use jute::OpCode;

use support::client::Client;
use support::ensemble::{four_letter, Ensemble};
use support::server::{scratch_dir, ServerProcess};
use support::zookeeper::{free_port, ReferenceZooKeeper};

/// How long the members may take to agree.
const WAIT: Duration = Duration::from_secs(60);

/// A fresh set of test stores.
fn stores() -> PathBuf {
    let dir = scratch_dir("quorum-tls-stores");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make-tls-stores");
    let made = std::process::Command::new(script).arg(&dir).status().expect("make-tls-stores");
    assert!(made.success(), "make-tls-stores failed (it needs openssl, keytool and faketime)");
    dir
}

/// The `ssl.quorum.*` lines for a member whose identity is `identity` (`server`, or
/// `elsewhere`, whose certificate names only elsewhere.test).
fn quorum_stores(stores: &Path, identity: &str) -> String {
    format!(
        "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=testpass\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.password=testpass\n",
        stores.join(format!("{identity}.jks")).display(),
        stores.join("trust.jks").display()
    )
}

/// Creates `path` through member `from` and reads it back, after a `sync`, through
/// member `to`.
async fn replicated(ensemble: &Ensemble, from: usize, to: usize, path: &str) {
    let mut writer = ensemble.connect(from).await;
    assert_eq!(writer.create(path, b"over tls", 0).await.as_deref(), Ok(path));
    let mut reader = ensemble.connect(to).await;
    reader.call(OpCode::Sync, &SyncRequest { path: path.into() }).await;
    let (data, _) = reader.get_data(path, false).await.expect("replicated");
    assert_eq!(data.as_deref(), Some(&b"over tls"[..]));
}

/// Waits until `log()` holds `needle`.
fn wait_for_log(needle: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + WAIT;
    while !log().contains(needle) {
        assert!(Instant::now() < deadline, "no \"{needle}\" in the log:\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_replicate_over_tls_and_turn_a_plaintext_member_away() {
    let stores = stores();
    let extra = format!("sslQuorum=true\n{}", quorum_stores(&stores, "server"));
    let ensemble = Ensemble::start(3, &extra);
    let leader = ensemble.wait_until_settled();
    let (follower, other) = ((leader + 1) % 3, (leader + 2) % 3);
    replicated(&ensemble, follower, other, "/over-tls").await;

    // A plaintext member dials the leader's election port: it is closed on.
    let (_, election) = ensemble.peer_addresses(leader);
    let mut plain = TcpStream::connect(election).expect("dial the election port");
    plain.write_all(&[0, 0, 0, 0, 0, 0, 0, 4]).expect("a plaintext introduction");
    wait_for_log("a plaintext member on a TLS-only member port", || ensemble.log(leader));
    replicated(&ensemble, other, follower, "/still-over-tls").await;
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
    wait_for_log("certificate does not name 127.0.0.1", || ensemble.log(leader));
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
    replicated(&ensemble, stranger, (stranger + 1) % 3, "/named-elsewhere").await;
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
            replicated(&ensemble, member, (member + 1) % 3, &path).await;
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
    let lines = format!(
        "initLimit=10\nsyncLimit=5\nsslQuorum=true\n{}server.1=127.0.0.1:{}:{}\n\
         server.2=127.0.0.1:{}:{}\n",
        quorum_stores(&stores, "server"),
        free_port(),
        free_port(),
        free_port(),
        free_port()
    );
    let zookeeper = ReferenceZooKeeper::spawn_member(1, &lines, &[]);
    let dir = scratch_dir("zkrs-tls-member");
    std::fs::create_dir_all(dir.join("data")).expect("dataDir");
    std::fs::write(dir.join("data/myid"), "2\n").expect("myid");
    let config = format!(
        "tickTime=500\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n\
         4lw.commands.whitelist=*\n{lines}",
        dir.join("data").display()
    );
    let zkrs = ServerProcess::start_with_config(dir, &config, false);
    let deadline = Instant::now() + WAIT;
    while !four_letter(zkrs.address, "srvr").unwrap_or_default().contains("Mode: leader") {
        assert!(Instant::now() < deadline, "no leader:\n{}\n{}", zkrs.log(), zookeeper.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    zookeeper.wait_until_serving().await;
    let mut through_zookeeper = Client::connect(zookeeper.address).await;
    let created = through_zookeeper.create("/mixed-tls", b"zookeeper", 0).await;
    assert_eq!(created.as_deref(), Ok("/mixed-tls"));
    let mut through_zkrs = Client::connect(zkrs.address).await;
    through_zkrs.call(OpCode::Sync, &SyncRequest { path: "/mixed-tls".into() }).await;
    let (data, _) = through_zkrs.get_data("/mixed-tls", false).await.expect("replicated");
    assert_eq!(data.as_deref(), Some(&b"zookeeper"[..]));
    // ZooKeeper logs each TLS connection it dials and each it accepts.
    let log = zookeeper.log();
    assert!(log.contains("SSL handshake complete with"), "ZooKeeper dialled no TLS:\n{log}");
    assert!(log.contains("Accepted TLS connection"), "ZooKeeper accepted no TLS:\n{log}");
}
