//! A session's replies come in the order of its requests: each reply answers the oldest
//! request still waiting.

use std::collections::VecDeque;

use crate::client::Op;

/// The request that the reply with `xid` answers, taken off `outstanding`.
///
/// # Errors
/// If it is not the oldest one waiting.
pub fn next_reply(
    client: usize,
    outstanding: &mut VecDeque<(i32, Op)>,
    xid: i32,
) -> Result<(i32, Op), String> {
    match outstanding.pop_front() {
        Some((expected, op)) if expected == xid => Ok((expected, op)),
        Some((expected, op)) => Err(format!(
            "client {client}: a reply to xid {xid} came while xid {expected} ({op:?}) waits \
             (replies out of order; waiting too: {:?})",
            outstanding.iter().map(|(xid, op)| (*xid, op)).collect::<Vec<_>>()
        )),
        None => Err(format!("client {client}: a reply to xid {xid}, which it never sent")),
    }
}
