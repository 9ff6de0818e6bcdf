//! `sync` then read sees every write acknowledged before the sync: a client that syncs,
//! then reads a key another client writes, sees the state the owner's last write
//! acknowledged before the sync left (or a later one), never an earlier one. Under
//! linearizable reads the same holds of a read sent without a sync, from when it left.

use crate::client::{KeyModel, Observation};

/// Checks `observation` against the history of the key it read.
///
/// # Errors
/// If the read saw a state older than a write acknowledged before its sync.
pub fn check(model: &KeyModel, observation: &Observation) -> Result<(), String> {
    let synced_at = observation.target.synced_at;
    let acked_before =
        model.history.iter().rposition(|write| write.acked_at.is_some_and(|at| at < synced_at));
    let Some(first) = acked_before else {
        // No write acknowledged before the sync: any state may be seen.
        return Ok(());
    };
    let allowed: Vec<_> = model.history[first..]
        .iter()
        .filter(|write| !write.failed)
        .map(|write| &write.state)
        .collect();
    if allowed.contains(&&observation.seen) {
        return Ok(());
    }
    Err(format!(
        "client {}: read {} as {:?} after a sync sent at {synced_at} ms, but a write \
         acknowledged before it left {:?} (later states allowed: {allowed:?})",
        observation.reader, observation.target.path, observation.seen, model.history[first].state
    ))
}
