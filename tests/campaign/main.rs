//! The fault campaign: real `zkrs` members on 127.0.0.1, clients pinned to each of them
//! running the register workload (`registers`), and faults injected while they run
//! (`faults`): members SIGKILLed and restarted, paused with SIGSTOP for shorter and
//! longer than the clients' session timeout, and cut off from the others, or from one
//! other, by paused or cut links (`support::network`). Afterwards the network heals,
//! every member is running again, and:
//! - every register's history is linearizable (`checker`), the final value read through
//!   each member after a `sync` included, so an acknowledged write that was lost fails it;
//! - no member died of a cause the campaign did not inject.
//!
//! Reads are checked three ways: plain reads under `zkrs.linearizableReads=true`, and
//! `sync` before each read in ZooKeeper's read mode, must be linearizable; plain reads in
//! ZooKeeper's read mode must be caught stale, which shows the checker sees what it
//! checks for under these faults.
//!
//! `ZKRS_CAMPAIGN_SECS` (default 30) sets how long each campaign runs and
//! `ZKRS_CAMPAIGN_SEED` its seed (printed; by default it changes each run).

mod checker;
mod faults;
mod registers;
#[path = "../support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jute::records::SyncRequest;
use jute::OpCode;
use parking_lot::Mutex;

use checker::{Op, Operation, State};
use registers::{Reads, Recorder, Worker};
use support::ensemble::Ensemble;
use support::network::Network;

/// Registers the clients share.
const KEYS: usize = 3;
/// Clients per member.
const CLIENTS_PER_MEMBER: usize = 2;

/// One campaign at a time: each runs a 3-member ensemble flat out.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn seconds() -> u64 {
    std::env::var("ZKRS_CAMPAIGN_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30)
}

fn seed() -> u64 {
    std::env::var("ZKRS_CAMPAIGN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |elapsed| elapsed.as_nanos() as u64)
    })
}

/// What a campaign found.
struct Report {
    completed: usize,
    unknown: usize,
    faults: faults::Counts,
    /// Per register, why its history is not linearizable.
    violations: Vec<(usize, checker::Violation)>,
}

/// Runs one campaign with `extra` in every zoo.cfg and clients reading as `reads`.
async fn campaign(extra: &str, reads: Reads) -> Report {
    let seed = seed();
    let secs = seconds();
    println!("campaign: {extra:?}, reads {reads:?}, {secs} s, ZKRS_CAMPAIGN_SEED={seed}");
    let mut network = Network::new();
    let ensemble = Ensemble::start_partitionable(3, extra, &mut network);
    ensemble.wait_until_settled();
    let mut setup = ensemble.connect(0).await;
    setup.create("/register", b"", 0).await.expect("create /register");
    for key in 0..KEYS {
        setup.create(&registers::path(key), b"0", 0).await.expect("create a register");
    }
    setup.close().await;

    let epoch = Instant::now();
    let recorder = Arc::new(Recorder::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for member in 0..3 {
        for n in 0..CLIENTS_PER_MEMBER {
            let id = member * CLIENTS_PER_MEMBER + n;
            let worker = Worker {
                id,
                member: ensemble.addresses[member],
                keys: KEYS,
                reads,
                epoch,
                recorder: recorder.clone(),
                stop: stop.clone(),
                seed: seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9),
            };
            workers.push(tokio::spawn(worker.run()));
        }
    }
    let ensemble = Arc::new(Mutex::new(ensemble));
    let injector = {
        let ensemble = ensemble.clone();
        let until = Instant::now() + Duration::from_secs(secs);
        tokio::task::spawn_blocking(move || {
            let counts = faults::inject(&ensemble, &network, seed, until);
            (network, counts)
        })
    };
    let (network, faults) = injector.await.expect("the fault injector");
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a client");
    }
    network.heal();

    let ensemble = Arc::into_inner(ensemble).expect("the injector is done").into_inner();
    ensemble.wait_until_settled();
    // The final state, read through every member after a sync, ends each history.
    for member in 0..3 {
        let mut client = ensemble.connect(member).await;
        for key in 0..KEYS {
            let path = registers::path(key);
            let invoked = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
            let sync = client.call(OpCode::Sync, &SyncRequest { path: path.clone() }).await;
            assert_eq!(sync.header.err, 0, "sync on member {}", member + 1);
            let (data, stat) = client.get_data(&path, false).await.expect("read a register");
            let completed = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
            let value = data
                .as_ref()
                .and_then(|data: &Bytes| std::str::from_utf8(data).ok()?.parse().ok())
                .unwrap_or(0);
            let seen = State { value, version: stat.version };
            let final_read = Operation {
                client: usize::MAX,
                invoked,
                completed: Some(completed),
                op: Op::Read { seen },
            };
            recorder.record(key, final_read);
        }
        client.close().await;
    }
    let violations = (0..KEYS)
        .filter_map(|key| {
            let history = recorder.history(key);
            checker::check(State { value: 0, version: 0 }, &history).err().map(|v| (key, v))
        })
        .collect();
    let (completed, unknown) = recorder.counts();
    let report = Report { completed, unknown, faults, violations };
    println!(
        "campaign: {} operations completed, {} unknown; faults {:?}; {} register(s) not \
         linearizable",
        report.completed,
        report.unknown,
        report.faults,
        report.violations.len()
    );
    for (key, violation) in &report.violations {
        let stuck = &violation.stuck_at;
        println!(
            "  register {key}: {} operations placed, then client {}'s {:?} (invoked at {} us, \
             completed at {:?} us) fits no order",
            violation.placed, stuck.client, stuck.op, stuck.invoked, stuck.completed
        );
    }
    report
}

/// Runs one campaign on a runtime of its own, after any other campaign has finished.
fn run(extra: &str, reads: Reads) -> Report {
    let _one = ONE_AT_A_TIME.lock();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(campaign(extra, reads))
}

#[test]
fn registers_are_linearizable_under_faults_with_linearizable_reads() {
    let report = run("zkrs.linearizableReads=true", Reads::Plain);
    assert!(report.completed > 100, "too few operations completed to say anything");
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[test]
fn registers_are_linearizable_under_faults_with_sync_before_each_read() {
    let report = run("", Reads::AfterSync);
    assert!(report.completed > 100, "too few operations completed to say anything");
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[test]
fn plain_reads_in_zookeepers_read_mode_are_caught_stale_under_faults() {
    let report = run("", Reads::Plain);
    assert!(
        !report.violations.is_empty(),
        "ZooKeeper's read mode served no stale read the checker caught"
    );
}
