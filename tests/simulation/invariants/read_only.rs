//! A read-only session changes nothing (ZooKeeper's read-only mode). A member cut off
//! from its quorum with `readonlymode.enabled` serves clients that asked for read-only
//! service: it opens them sessions of its own, answers their reads from what it has
//! applied, and refuses every change with NotReadOnly. When it rejoins, it closes those
//! connections and forgets those sessions, so a write still queued from one must not
//! slip through to the leader.

use jute::Code;

/// Checks the reply (`err`) to a write a client sent in a session the member opened
/// read-only.
///
/// # Errors
/// If the write was carried out, or refused with anything but NotReadOnly.
pub fn check_write(client: usize, err: i32) -> Result<(), String> {
    if err == Code::NotReadOnly.as_i32() {
        return Ok(());
    }
    Err(format!(
        "client {client}: a write in a read-only session was answered {err}, not NotReadOnly \
         ({})",
        Code::NotReadOnly.as_i32()
    ))
}
