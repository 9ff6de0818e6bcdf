//! Loading a snapshot's chunks into a tree on several threads at once.
//!
//! Building a large tree is mostly first touches of fresh memory: the kernel zeroes each
//! page as it is faulted in, and in a virtual machine the host may have to back it first.
//! One thread at a million znodes spends about 40% of its load doing that. The chunks are
//! independent (each names the parents of its nodes, and a child table is made when its
//! first child arrives), so loaders can take them in any order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use bytes::Bytes;

use crate::tree::data_tree::DataTree;
use crate::tree::snapshot::{load_chunk, Loaded, SnapshotError};

/// Most loader threads, however many cores there are.
const LOADERS_MAX: usize = 4;

/// Chunks read ahead of the loaders, per loader.
const QUEUED_PER_LOADER: usize = 2;

/// How many loader threads to use on this machine: one per core, at most [`LOADERS_MAX`].
pub fn loader_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get()).min(LOADERS_MAX)
}

/// Loads the chunks that `read` hands to its callback into `tree` (which started
/// [`DataTree::empty`]) on `loaders` threads, while `read` runs on this one.
///
/// Once a chunk fails, the rest are received and dropped, so `read` finishes its pass.
///
/// # Errors
/// `read`'s own error; otherwise the failure of the lowest-numbered chunk that failed.
pub fn load_parallel<E: From<SnapshotError>>(
    tree: &DataTree,
    loaders: usize,
    read: impl FnOnce(&mut dyn FnMut(usize, Bytes)) -> Result<(), E>,
) -> Result<Loaded, E> {
    let loaders = loaders.max(1);
    let (chunks, incoming) = mpsc::sync_channel::<(usize, Bytes)>(loaders * QUEUED_PER_LOADER);
    let incoming = Mutex::new(incoming);
    let failed = AtomicBool::new(false);
    let (read_result, results) = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..loaders).map(|_| scope.spawn(|| load_from(tree, &incoming, &failed))).collect();
        let read_result = read(&mut |index, chunk| {
            // A send fails only when every loader has gone, which they do once the
            // channel closes; until then they receive everything.
            if !failed.load(Ordering::Relaxed) {
                let _ = chunks.send((index, chunk));
            }
        });
        drop(chunks);
        let results: Vec<_> = handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect();
        (read_result, results)
    });
    read_result?;
    let mut loaded = Loaded::default();
    let mut first_failure: Option<(usize, SnapshotError)> = None;
    for result in results {
        match result {
            Ok(part) => {
                loaded.nodes += part.nodes;
                loaded.sessions.extend(part.sessions);
            }
            Err((index, err)) => {
                if first_failure.as_ref().is_none_or(|(first, _)| index < *first) {
                    first_failure = Some((index, err));
                }
            }
        }
    }
    match first_failure {
        Some((_, err)) => Err(err.into()),
        None => Ok(loaded),
    }
}

/// One loader: takes chunks until the channel closes; after a failure (its own or
/// another's) it only drains them.
fn load_from(
    tree: &DataTree,
    incoming: &Mutex<mpsc::Receiver<(usize, Bytes)>>,
    failed: &AtomicBool,
) -> Result<Loaded, (usize, SnapshotError)> {
    let mut loaded = Loaded::default();
    let mut failure = None;
    loop {
        let next = match incoming.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok((index, chunk)) = next else { break };
        if failed.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(err) = load_chunk(tree, index, &chunk, &mut loaded) {
            failed.store(true, Ordering::Relaxed);
            failure = Some((index, err));
        }
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(loaded),
    }
}

#[cfg(test)]
#[path = "parallel_load_test.rs"]
mod tests;
