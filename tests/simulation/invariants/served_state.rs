//! A learner serves clients only once it has applied the state its leader began the
//! epoch with (the leader's whole log when a quorum took its NEWLEADER). One that served
//! before applying its own entries of that log, which no COMMIT names, would show a
//! client that retries an unanswered write a state without it, and the client would
//! write again.

use zkrs::txn::Zxid;
use zkrs::zab::ServerId;

/// Checks what `member` applied when it began to serve as `leader`'s learner, against
/// what `leader` applied when it began to lead (`None` if it is not known here).
///
/// # Errors
/// If the learner serves an older state.
pub fn check(
    member: ServerId,
    applied: Zxid,
    leader: ServerId,
    established: Option<Zxid>,
) -> Result<(), String> {
    match established {
        Some(established) if applied < established => Err(format!(
            "member {member} serves as member {leader}'s learner at 0x{applied:x}, before \
             0x{established:x}, where its leader began the epoch"
        )),
        _ => Ok(()),
    }
}
