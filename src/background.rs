//! Threads that do work no request waits for (writing a snapshot, preparing the next log
//! segment) run at a lower CPU priority: on a busy machine they take the time the
//! request path leaves, instead of sharing the cores with it equally.

/// The nice value background threads run at: the kernel gives a thread at 10 about a
/// tenth of the time of one at 0 when both want the same core, and all of an idle core.
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`], unless it runs at
/// that or lower already (a server started under `nice`). A failure (a sandbox that
/// forbids it) leaves the thread as it was: it is logged, never fatal.
pub fn lower_this_thread() {
    let thread = Some(rustix::thread::gettid());
    if rustix::process::getpriority_process(thread).is_ok_and(|nice| nice >= BACKGROUND_NICE) {
        return;
    }
    if let Err(err) = rustix::process::setpriority_process(thread, BACKGROUND_NICE) {
        tracing::debug!(cause = %err, "cannot lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lowers_only_the_calling_thread() {
        let own = rustix::process::getpriority_process(None).expect("own priority");
        let lowered = std::thread::spawn(|| {
            super::lower_this_thread();
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
                .expect("thread priority")
        })
        .join()
        .expect("thread");
        assert_eq!(lowered, super::BACKGROUND_NICE.max(own));
        let after = rustix::process::getpriority_process(None).expect("own priority");
        assert_eq!(after, own, "the process and its other threads keep theirs");
    }
}
