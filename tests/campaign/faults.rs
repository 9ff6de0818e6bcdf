//! The faults a campaign injects, one at a time, each lasting a random while, chosen
//! from the campaign's seed.

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

/// Injects faults until `until`, one at a time, and leaves everything healed and running.
pub fn inject(ensemble: &Mutex<Ensemble>, network: &Network, seed: u64, until: Instant) -> Counts {
    let mut rng = Rng(seed);
    let mut counts = Counts::default();
    let millis =
        |rng: &mut Rng, low: u64, high: u64| Duration::from_millis(low + rng.below(high - low));
    while Instant::now() < until {
        std::thread::sleep(millis(&mut rng, 300, 1500));
        check_alive(ensemble);
        let member = rng.below(3) as usize;
        match rng.below(6) {
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
