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
//! `ZKRS_CAMPAIGN_SECS` (default 30) sets how long each campaign runs,
//! `ZKRS_CAMPAIGN_ROUNDS` (default 1) how many each test runs, and `ZKRS_CAMPAIGN_SEED`
//! the seed of their faults (printed; by default it changes each campaign).

mod checker;
mod counter;
mod faults;
mod group;
mod lock;
mod pinned;
mod queue;
mod registers;
#[path = "../support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jute::records::SyncRequest;
use jute::OpCode;
use parking_lot::Mutex;

use checker::{Op, Operation, State};
use pinned::Pinned;
use registers::{Reads, Recorder, Worker};
use support::ensemble::{Ensemble, Kind};
use support::network::Network;

/// Registers the clients share.
const KEYS: usize = 3;
/// Clients per member.
const CLIENTS_PER_MEMBER: usize = 2;

/// One campaign at a time: each runs a 3-member ensemble flat out.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The number in the environment variable `name`, if it holds one.
fn from_environment(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

fn seconds() -> u64 {
    from_environment("ZKRS_CAMPAIGN_SECS").unwrap_or(30)
}

/// How many campaigns each test runs, one after another on fresh ensembles: a long run
/// is many campaigns of bounded length, as the checker's search grows with the
/// operations whose outcome is unknown in one history.
fn rounds() -> u64 {
    from_environment("ZKRS_CAMPAIGN_ROUNDS").unwrap_or(1)
}

fn seed() -> u64 {
    from_environment("ZKRS_CAMPAIGN_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |elapsed| elapsed.as_nanos() as u64)
    })
}

/// What a campaign found.
struct Report {
    /// Register operations that completed, and those whose outcome is unknown.
    completed: usize,
    unknown: usize,
    faults: faults::Counts,
    /// Per register, why its history is not linearizable.
    violations: Vec<(usize, checker::Violation)>,
    /// What the other workloads' checks found wrong.
    anomalies: Vec<String>,
}

/// What the workloads other than the registers were told, for their checks.
#[derive(Default)]
struct Ledgers {
    counter: Mutex<counter::Tally>,
    lock: Mutex<lock::Ledger>,
    queue: Mutex<queue::Ledger>,
}

/// Starts every workload's clients, pinned round the members.
fn start_workers(
    ensemble: &Ensemble,
    reads: Reads,
    pinned_to: impl Fn(usize) -> Pinned,
    recorder: &Arc<Recorder>,
    ledgers: &Arc<Ledgers>,
    seed: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    let seed_of = |id: usize| seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9);
    let mut workers = Vec::new();
    for id in 0..3 * CLIENTS_PER_MEMBER {
        let worker = Worker {
            id,
            pinned: pinned_to(id % 3),
            keys: KEYS,
            reads,
            recorder: recorder.clone(),
            seed: seed_of(id),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    for member in 0..ensemble.addresses.len() {
        let (pinned, shared) = (pinned_to(member), ledgers.clone());
        workers.push(tokio::spawn(async move {
            counter::incrementer(pinned, &shared.counter).await;
        }));
        let (pinned, shared) = (pinned_to(member), ledgers.clone());
        let locker_seed = seed_of(100 + member);
        workers.push(tokio::spawn(async move {
            lock::locker(member, pinned, locker_seed, &shared.lock).await;
        }));
        let pinned = pinned_to(member);
        let member_seed = seed_of(200 + member);
        workers.push(tokio::spawn(async move {
            group::member(member, pinned, member_seed).await;
        }));
        let (pinned, shared) = (pinned_to(member), ledgers.clone());
        workers.push(tokio::spawn(async move {
            queue::producer(member, pinned, &shared.queue).await;
        }));
        let (pinned, shared) = (pinned_to(member), ledgers.clone());
        workers.push(tokio::spawn(async move {
            queue::consumer(pinned, &shared.queue).await;
        }));
    }
    workers
}

/// Ends each register's history with a read through every member after a sync.
async fn read_registers_everywhere(ensemble: &Ensemble, recorder: &Recorder, epoch: Instant) {
    let now = || u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    for member in 0..3 {
        let mut client = ensemble.connect(member).await;
        for key in 0..KEYS {
            let path = registers::path(key);
            let invoked = now();
            let sync = client.call(OpCode::Sync, &SyncRequest { path: path.clone() }).await;
            assert_eq!(sync.header.err, 0, "sync on member {}", member + 1);
            let (data, stat) = client.get_data(&path, false).await.expect("read a register");
            let value = pinned::decimal(data.as_ref()).unwrap_or(0);
            let seen = State { value, version: stat.version };
            let read = Op::Read { seen };
            let final_read =
                Operation { client: usize::MAX, invoked, completed: Some(now()), op: read };
            recorder.record(key, final_read);
        }
        client.close().await;
    }
}

/// The other workloads' checks, and once the group is empty everywhere, that every
/// member holds the same tree.
async fn check_the_rest(ensemble: &Ensemble, ledgers: &Ledgers) -> Vec<String> {
    let mut anomalies = Vec::new();
    let mut values = Vec::new();
    let mut queued = Vec::new();
    for member in 0..3 {
        let mut client = ensemble.connect(member).await;
        values.push(counter::final_value(&mut client).await);
        queued.push(queue::remaining(&mut client).await);
        client.close().await;
    }
    if values.iter().any(|value| *value != values[0]) {
        anomalies.push(format!("the members hold different counters: {values:?}"));
    }
    if let Err(wrong) = counter::check(&ledgers.counter.lock(), values[0]) {
        anomalies.push(wrong);
    }
    if queued.iter().any(|items| *items != queued[0]) {
        anomalies.push("the members hold different queues".to_owned());
    }
    anomalies.extend(queue::check(&ledgers.queue.lock(), &queued[0]));
    for (earlier, later) in lock::overlaps(&ledgers.lock.lock()) {
        anomalies.push(format!(
            "two holders at once: locker {} (token {}, released at {} us) and locker {} \
             (token {}, acquired at {} us)",
            earlier.locker,
            earlier.token,
            earlier.released,
            later.locker,
            later.token,
            later.acquired
        ));
    }

    // Every session of the campaign's clients has ended or will expire: their
    // ephemerals must go, on every member.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = Vec::new();
    for member in 0..3 {
        let mut client = ensemble.connect(member).await;
        loop {
            let listed = group::listed(&mut client).await.unwrap_or_else(|| vec!["?".into()]);
            if listed.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                left.push((member, listed));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        client.close().await;
    }
    for (member, listed) in &left {
        anomalies.push(format!("member {} still lists {listed:?} in the group", member + 1));
    }
    if left.is_empty() {
        if let Some(difference) = trees_differ(ensemble).await {
            anomalies.push(difference);
        }
    }
    anomalies
}

/// Where the members' trees still differ once 30 s have passed for the sessions of the
/// campaign's clients to expire (their ephemerals' deletions change the tree meanwhile).
async fn trees_differ(ensemble: &Ensemble) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut trees = Vec::new();
        for member in 0..3 {
            let mut client = ensemble.connect(member).await;
            let sync = client.call(OpCode::Sync, &SyncRequest { path: "/".into() }).await;
            assert_eq!(sync.header.err, 0, "sync on member {}", member + 1);
            // Each member's /zookeeper/config is its own zoo.cfg's membership, which
            // names the others by the proxies it reaches them through.
            let mut tree = client.dump("/").await;
            tree.retain(|line| !line.starts_with("/zookeeper/config "));
            trees.push(tree);
            client.close().await;
        }
        let other = (1..3).find(|member| trees[*member] != trees[0])?;
        if Instant::now() > deadline {
            let (first, second) = (&trees[0], &trees[other]);
            let line = first.iter().zip(second).find(|(a, b)| a != b);
            return Some(format!(
                "the trees of members 1 and {} differ after healing ({} and {} nodes; first \
                 difference {line:?})",
                other + 1,
                first.len(),
                second.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs one campaign on members of `kind` with `extra` in every zoo.cfg and clients
/// reading as `reads`.
async fn campaign(kind: Kind, extra: &str, reads: Reads) -> Report {
    let seed = seed();
    let secs = seconds();
    println!("campaign: {kind:?}, {extra:?}, reads {reads:?}, {secs} s, ZKRS_CAMPAIGN_SEED={seed}");
    let mut network = Network::new();
    let ensemble = Ensemble::start_partitionable(kind, 3, extra, &mut network);
    ensemble.wait_until_settled();
    let mut setup = ensemble.connect(0).await;
    setup.create("/register", b"", 0).await.expect("create /register");
    for key in 0..KEYS {
        setup.create(&registers::path(key), b"0", 0).await.expect("create a register");
    }
    counter::set_up(&mut setup).await;
    lock::set_up(&mut setup).await;
    group::set_up(&mut setup).await;
    queue::set_up(&mut setup).await;
    setup.close().await;

    let epoch = Instant::now();
    let recorder = Arc::new(Recorder::default());
    let ledgers = Arc::new(Ledgers::default());
    let stop = Arc::new(AtomicBool::new(false));
    let addresses = ensemble.addresses.clone();
    let pinned_to = |member: usize| Pinned { member: addresses[member], stop: stop.clone(), epoch };
    let workers = start_workers(&ensemble, reads, pinned_to, &recorder, &ledgers, seed);
    let ensemble = Arc::new(Mutex::new(ensemble));
    let injector = {
        let ensemble = ensemble.clone();
        let until = Instant::now() + Duration::from_secs(secs);
        tokio::task::spawn_blocking(move || {
            let injected = kind == Kind::Zkrs;
            let counts = faults::inject(&ensemble, &network, seed, until, injected);
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
    read_registers_everywhere(&ensemble, &recorder, epoch).await;
    let violations = (0..KEYS)
        .filter_map(|key| {
            let history = recorder.history(key);
            checker::check(State { value: 0, version: 0 }, &history).err().map(|v| (key, v))
        })
        .collect();
    let anomalies = check_the_rest(&ensemble, &ledgers).await;
    let (completed, unknown) = recorder.counts();
    let report = Report { completed, unknown, faults, violations, anomalies };
    print_report(&report, &ledgers);
    report
}

fn print_report(report: &Report, ledgers: &Ledgers) {
    println!(
        "campaign: {} register operations completed, {} unknown; faults {:?}; {} register(s) \
         not linearizable",
        report.completed,
        report.unknown,
        report.faults,
        report.violations.len()
    );
    let (tally, lock, queue) = (ledgers.counter.lock(), ledgers.lock.lock(), ledgers.queue.lock());
    println!(
        "campaign: counter {} increments acknowledged, {} unknown; lock {} holds released, \
         {} resource writes, {} fenced off; queue {} enqueued, {} consumed",
        tally.acknowledged,
        tally.unknown,
        lock.holds.len(),
        lock.written,
        lock.fenced,
        queue.enqueued.len(),
        queue.consumed.len()
    );
    for (key, violation) in &report.violations {
        let stuck = &violation.stuck_at;
        println!(
            "  register {key}: {} operations placed, then client {}'s {:?} (invoked at {} us, \
             completed at {:?} us) fits no order",
            violation.placed, stuck.client, stuck.op, stuck.invoked, stuck.completed
        );
    }
    for anomaly in &report.anomalies {
        println!("  anomaly: {anomaly}");
    }
}

/// Runs one campaign on a runtime of its own, after any other campaign has finished.
fn run(kind: Kind, extra: &str, reads: Reads) -> Report {
    let _one = ONE_AT_A_TIME.lock();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(campaign(kind, extra, reads))
}

/// Runs the campaigns of a zkrs test whose every check must pass.
fn all_hold(extra: &str, reads: Reads) {
    for _ in 0..rounds() {
        let report = run(Kind::Zkrs, extra, reads);
        assert!(report.completed > 100, "too few operations completed to say anything");
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert!(report.anomalies.is_empty(), "{:?}", report.anomalies);
    }
}

#[test]
fn registers_are_linearizable_under_faults_with_linearizable_reads() {
    all_hold("zkrs.linearizableReads=true", Reads::Plain);
}

#[test]
fn registers_are_linearizable_under_faults_with_sync_before_each_read() {
    all_hold("", Reads::AfterSync);
}

#[test]
fn plain_reads_in_zookeepers_read_mode_are_caught_stale_under_faults() {
    for _ in 0..rounds() {
        let report = run(Kind::Zkrs, "", Reads::Plain);
        assert!(
            !report.violations.is_empty(),
            "ZooKeeper's read mode served no stale read the checker caught"
        );
        assert!(
            report.anomalies.is_empty(),
            "the recipes hold in any read mode: {:?}",
            report.anomalies
        );
    }
}

/// The same campaign against Apache ZooKeeper 3.8, for comparison (not a check of zkrs,
/// so it runs on demand: `cargo test --release --test campaign -- --ignored --nocapture`).
/// Its disks are not faulted: ZooKeeper has no injected storage faults. ZooKeeper's plain
/// reads must be caught stale; what else the checks find is reported, not asserted.
#[test]
#[ignore = "a comparison with Apache ZooKeeper, run on demand"]
fn zookeeper_under_the_same_faults() {
    let synced = run(Kind::ZooKeeper, "", Reads::AfterSync);
    let plain = run(Kind::ZooKeeper, "", Reads::Plain);
    println!(
        "zookeeper: sync then read: {} register(s) not linearizable, {} other anomalies; \
         plain reads: {} register(s) not linearizable, {} other anomalies",
        synced.violations.len(),
        synced.anomalies.len(),
        plain.violations.len(),
        plain.anomalies.len()
    );
    assert!(synced.completed > 100 && plain.completed > 100, "too few operations completed");
    assert!(!plain.violations.is_empty(), "ZooKeeper served no stale read the checker caught");
}
