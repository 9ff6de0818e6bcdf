//! The faults a campaign injects, one at a time, each lasting a random while, chosen
//! from the campaign's seed: processes killed and stopped, links paused, cut and delayed,
//! disks made slow, failing or full (through zkrs's injected storage faults), and wall
//! clocks stepped (through libfaketime).

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::pinned::SESSION_TIMEOUT_MS;
use crate::support::ensemble::Ensemble;
use crate::support::network::{Fault, Network};
use crate::support::rng::Rng;

/// How many faults of each kind a campaign injected.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// A member's links all paused: it hears nothing and nobody hears it.
    pub isolated: usize,
    /// A member's links all cut: its connections reset.
    pub cut_off: usize,
    /// The links between two members paused, each still reaching the third.
    pub link_paused: usize,
    /// A member SIGKILLed, then restarted on its data.
    pub killed: usize,
    /// A member stopped with SIGSTOP for less than the session timeout, then continued.
    pub paused_briefly: usize,
    /// A member stopped for longer than the session timeout.
    pub paused_long: usize,
    /// A member's links delayed.
    pub delayed: usize,
    /// A member's disk slow to sync.
    pub disk_slow: usize,
    /// A member's syncs failing (after writing), or its disk full.
    pub disk_failing: usize,
    pub disk_full: usize,
    /// Members that stopped, as they must, on a failed or full disk (then restarted).
    pub stopped_by_disk: usize,
    /// A member's wall clock stepped forward or back for a while.
    pub clock_jumped: usize,
}

fn signal(pid: u32, name: &str) {
    let _ =
        std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// Panics with the member's log if a member died of a cause the campaign did not inject.
fn check_alive(ensemble: &Mutex<Ensemble>) {
    let mut ensemble = ensemble.lock();
    for i in 0..3 {
        assert!(!ensemble.has_died(i), "member {} died:\n{}", i + 1, ensemble.log(i));
    }
}

/// Injects faults until `until`, one at a time, and leaves everything healed and running;
/// disk and clock faults only when `injected` (zkrs members take them).
pub fn inject(
    ensemble: &Mutex<Ensemble>,
    network: &Network,
    seed: u64,
    until: Instant,
    injected: bool,
) -> Counts {
    let mut rng = Rng(seed);
    let mut counts = Counts::default();
    let millis =
        |rng: &mut Rng, low: u64, high: u64| Duration::from_millis(low + rng.below(high - low));
    while Instant::now() < until {
        std::thread::sleep(millis(&mut rng, 300, 1500));
        check_alive(ensemble);
        let member = rng.below(3) as usize;
        match rng.below(if injected { 10 } else { 7 }) {
            0 => {
                counts.isolated += 1;
                network.isolate(member, Fault::Paused);
                std::thread::sleep(millis(&mut rng, 200, 3000));
                network.heal();
            }
            1 => {
                counts.cut_off += 1;
                network.isolate(member, Fault::Cut);
                std::thread::sleep(millis(&mut rng, 200, 3000));
                network.heal();
            }
            2 => {
                counts.link_paused += 1;
                let other = (member + 1 + rng.below(2) as usize) % 3;
                network.set(member, other, Fault::Paused);
                std::thread::sleep(millis(&mut rng, 200, 3000));
                network.heal();
            }
            3 => {
                counts.killed += 1;
                ensemble.lock().kill(member);
                std::thread::sleep(millis(&mut rng, 100, 2000));
                ensemble.lock().restart(member);
            }
            6 => {
                counts.delayed += 1;
                let delay = millis(&mut rng, 5, 100);
                network.isolate(member, Fault::Delayed(delay));
                std::thread::sleep(millis(&mut rng, 500, 3000));
                network.heal();
            }
            7 => {
                counts.disk_slow += 1;
                let slow = format!("slow {}", 20 + rng.below(500));
                ensemble.lock().inject_storage_fault(member, &slow);
                std::thread::sleep(millis(&mut rng, 500, 3000));
                ensemble.lock().inject_storage_fault(member, "");
            }
            8 => {
                let fault = if rng.chance(50) { "fail" } else { "full" };
                if fault == "fail" {
                    counts.disk_failing += 1;
                } else {
                    counts.disk_full += 1;
                }
                ensemble.lock().inject_storage_fault(member, fault);
                std::thread::sleep(millis(&mut rng, 100, 1500));
                ensemble.lock().inject_storage_fault(member, "");
                // A member that had to write meanwhile stops; give it time to go.
                std::thread::sleep(Duration::from_millis(500));
                let mut ensemble = ensemble.lock();
                if let Some(log) = ensemble.reap(member) {
                    assert!(
                        log.contains("writing to the store failed; stopping")
                            && log.contains("an injected fault")
                            || log.contains("No space left on device"),
                        "member {} stopped, but not on the disk fault:\n{log}",
                        member + 1
                    );
                    counts.stopped_by_disk += 1;
                    std::thread::sleep(millis(&mut rng, 100, 1000));
                    ensemble.restart(member);
                }
            }
            9 => {
                counts.clock_jumped += 1;
                let sign = if rng.chance(50) { '+' } else { '-' };
                let offset = format!("{sign}{}s", 10 + rng.below(3600));
                ensemble.lock().set_clock_offset(member, &offset);
                std::thread::sleep(millis(&mut rng, 1500, 4000));
                ensemble.lock().set_clock_offset(member, "+0");
            }
            kind => {
                let timeout = u64::try_from(SESSION_TIMEOUT_MS).unwrap_or(4000);
                let pause = if kind == 4 {
                    counts.paused_briefly += 1;
                    millis(&mut rng, 200, timeout / 2)
                } else {
                    counts.paused_long += 1;
                    millis(&mut rng, timeout + 500, timeout + 3000)
                };
                let Some(pid) = ensemble.lock().pid(member) else { continue };
                signal(pid, "STOP");
                std::thread::sleep(pause);
                signal(pid, "CONT");
            }
        }
    }
    check_alive(ensemble);
    counts
}
