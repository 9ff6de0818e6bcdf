//! Once calm, every member's tree digest (ZooKeeper's, kept change by change as txns
//! apply, snapshots load and logs replay) is the one its tree's nodes sum to afresh.

use zkrs::tree::DataTree;
use zkrs::zab::ServerId;

/// Checks that `member`'s kept digest is the one computed from its nodes.
///
/// # Errors
/// Names the member and both digests.
pub fn check(member: ServerId, tree: &DataTree) -> Result<(), String> {
    let (kept, computed) = (tree.digest(), tree.computed_digest());
    if kept == computed {
        Ok(())
    } else {
        Err(format!("member {member} keeps digest {kept}, its nodes sum to {computed}"))
    }
}
