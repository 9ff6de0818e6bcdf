//! Threads of background upkeep: the periodic snapshot and the filling of the next log
//! segment. They run at a lower CPU priority than the threads that serve requests, as
//! RocksDB lowers its compaction threads', so that on a saturated machine a snapshot
//! takes longer (and one that comes due while another runs is skipped, as in
//! ZooKeeper) instead of taking CPU from the requests.

/// How much nicer than the server's other threads the upkeep threads are: nice 10
/// weighs a tenth of nice 0 with the kernel's scheduler, so upkeep still goes on at full
/// speed on an idle machine and at a tenth of a core's share against a busy one.
const UPKEEP_NICENESS: i32 = 10;

/// Spawns a named upkeep thread at the lower priority.
///
/// # Errors
/// If the thread cannot be started.
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new().name(name.into()).spawn(move || {
        lower_priority();
        work()
    })
}

/// Lowers the calling thread's priority (Linux: `setpriority(PRIO_PROCESS, 0)` sets the
/// calling thread's nice value alone). A failure leaves it at the server's priority,
/// which only costs requests some CPU, so it is logged and otherwise ignored.
fn lower_priority() {
    let current = rustix::process::getpriority_process(None).unwrap_or(0);
    if let Err(err) = rustix::process::setpriority_process(None, current + UPKEEP_NICENESS) {
        tracing::debug!(cause = %err, "cannot lower an upkeep thread's priority");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_upkeep_thread_runs_nicer_than_the_thread_that_started_it() {
        let starter = rustix::process::getpriority_process(None).expect("own priority");
        let upkeep =
            super::spawn("zkrs-test-upkeep", || rustix::process::getpriority_process(None))
                .expect("spawned")
                .join()
                .expect("joined")
                .expect("its priority");
        assert_eq!(upkeep, (starter + super::UPKEEP_NICENESS).min(19));
        let after = rustix::process::getpriority_process(None).expect("own priority");
        assert_eq!(after, starter, "the starter's own priority is unchanged");
    }
}
