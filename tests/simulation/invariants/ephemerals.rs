//! Once every session has expired, no member holds an ephemeral node.

use zkrs::tree::DataTree;
use zkrs::zab::ServerId;

/// Checks that `tree`, of `member`, holds no ephemeral node.
///
/// # Errors
/// Names how many it holds.
pub fn check(member: ServerId, tree: &DataTree) -> Result<(), String> {
    match tree.ephemeral_count() {
        0 => Ok(()),
        count => Err(format!(
            "member {member} holds {count} ephemerals after every session expired: {:x?}",
            tree.all_ephemerals()
        )),
    }
}
