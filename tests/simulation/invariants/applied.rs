//! A member's applied zxid never goes back while it runs (a snapshot installed from the
//! leader aside, which this simulation does not send).

use zkrs::txn::Zxid;
use zkrs::zab::ServerId;

/// Checks `now` against what `member` had applied before, and remembers it.
///
/// # Errors
/// If it went back.
pub fn check(member: ServerId, before: &mut Zxid, now: Zxid) -> Result<(), String> {
    if now < *before {
        return Err(format!("member {member} went back from applied 0x{before:x} to 0x{now:x}"));
    }
    *before = now;
    Ok(())
}
