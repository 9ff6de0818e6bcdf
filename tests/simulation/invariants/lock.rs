//! At most one holder of the lock at a time (ZooKeeper's lock recipe: the lowest
//! ephemeral sequential node under the lock holds it). While it holds the lock, a locker
//! writes the guarded node on condition that its version is still the one it read after
//! taking the lock. Only a holder writes that node, so the condition can fail only if
//! another locker held the lock at the same time and wrote in between.

use jute::Code;

/// Checks the reply (`err`) to a holder's write of the guarded node at `version`.
///
/// # Errors
/// If the version had moved: another holder wrote while this one held the lock.
pub fn check_guarded_write(locker: usize, version: i32, err: i32) -> Result<(), String> {
    if err == Code::BadVersion.as_i32() {
        return Err(format!(
            "locker {locker}: the guarded node moved past version {version} while it held \
             the lock (two holders at once)"
        ));
    }
    Ok(())
}
