//! The whole server, simulated: three members, each the real write pipeline
//! (`zkrs::server::pipeline`, with the preparer, the tree, the session tracker and the
//! replication core), over an in-memory store with crash semantics, a network of
//! FIFO links that break, and a clock that moves only when the simulator says. Some runs
//! have local sessions on (made global by their first ephemeral node); in some, members
//! cut off from their quorum serve read-only clients (`readonlymode.enabled`, every
//! client asking for it, partitions lasting seconds); in some, members answer reads only
//! past the read barrier (`zkrs.linearizableReads`); in some, quorums are hierarchical
//! (`group.N`, `weight.N`), one member in every quorum or never elected.
//!
//! Clients shake hands through the server's own admission (`server::handshake`); what
//! they send a member's pipeline waits up to a millisecond in its channel, as in the
//! shell, so a member's role may change under a request on its way. Writers
//! create persistent and ephemeral nodes, set and delete them, write several at once in
//! `multi`s (some of which must fail whole), read them with and without watches, `sync`
//! and then read another writer's key, and resume their sessions on another member when
//! a connection breaks or they leave. Lockers run ZooKeeper's lock recipe. Meanwhile
//! members crash (losing what their storage thread had not made durable), restart from
//! their store, are partitioned, lose connections, and see their storage fail. A member
//! that falls behind is brought up to date by DIFF or, in runs whose leaders keep few
//! entries, by a snapshot (`transfer`).
//!
//! Invariants, one file each under `invariants/`, checked as it runs and once calm:
//! - `ordered`: a session's replies come in the order of its requests;
//! - `read_your_writes`: a session reads its own acknowledged writes, on any member it
//!   moved to;
//! - a watch a session set fires before the reply to the session's write that changes
//!   the node (checked where replies are read, in `client`);
//! - `sync_then_read`: a read after a `sync` (or, under linearizable reads, any read of
//!   another client's key) sees every write acknowledged before it;
//! - `lock`: at most one locker holds the lock at a time;
//! - `read_only`: every write in a session a member opened read-only is refused with
//!   NotReadOnly, and none is carried out (`durable` holds it to that, even when the
//!   connection closes before the reply);
//! - `applied`: a member's applied zxid never goes back;
//! - `durable`: every acknowledged write is in the converged state;
//! - `converged`: once calm, every member's tree is the same;
//! - `ephemerals`: once every session has expired, no member holds an ephemeral node.
//!
//! Everything random comes from the seed, the tree's hash seeds included, so a seed
//! replays exactly. `ZKRS_SIM_SEEDS` (default 1000) sets how many seeds run, from a base
//! that changes each run unless `ZKRS_SIM_BASE` fixes it; the base is printed, and a
//! failure prints its seed. `ZKRS_SEED=n` replays one seed (`ZKRS_SIM_TRACE=1` prints
//! its faults).

#[path = "../support/rng.rs"]
mod rng;

mod client;
mod disk;
mod invariants;
mod network;
mod transfer;
mod world;

use world::World;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|value| value.parse().ok())
}

/// Runs one seed to the end; the failure it found, if any.
fn run_seed(seed: u64, trace: bool) -> Result<world::Stats, String> {
    zkrs::fast_hash::seed_this_thread(seed);
    World::new(seed, trace).run()
}

#[test]
fn simulated_ensembles_keep_every_invariant() {
    let trace = std::env::var("ZKRS_SIM_TRACE").is_ok_and(|value| value == "1");
    if let Some(seed) = env_number("ZKRS_SEED") {
        if let Err(failure) = run_seed(seed, trace) {
            panic!("seed {seed}: {failure}");
        }
        return;
    }
    let seeds = env_number("ZKRS_SIM_SEEDS").unwrap_or(1000);
    let base = env_number("ZKRS_SIM_BASE").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(0, |elapsed| elapsed.as_secs() % 1_000_000) * 1000
    });
    println!("simulating seeds {base}..{} (ZKRS_SIM_BASE={base})", base + seeds);
    let mut total = world::Stats::default();
    for seed in base..base + seeds {
        match run_seed(seed, false) {
            Ok(stats) => total += stats,
            Err(failure) => {
                panic!("seed {seed}: {failure}; replay with ZKRS_SEED={seed} ZKRS_SIM_TRACE=1")
            }
        }
    }
    println!("{seeds} seeds passed: {total:?}");
    assert!(total.acknowledged > seeds * 10, "the clients got few writes through: {total:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let seed = env_number("ZKRS_SIM_BASE").unwrap_or(12_345);
    let first = run_seed(seed, false).expect("the seed passes");
    let again = run_seed(seed, false).expect("the seed passes");
    assert_eq!(format!("{first:?}"), format!("{again:?}"));
}
