//! Once calm, every member holds the same tree.

use std::fmt::Write as _;

use zkrs::tree::DataTree;
use zkrs::zab::ServerId;

/// Every node outside `/zookeeper` (whose config node each member writes itself), in path
/// order, with what a client can see of it.
pub fn listing(tree: &DataTree) -> String {
    let mut out = String::new();
    let mut pending = vec!["/".to_owned()];
    while let Some(path) = pending.pop() {
        if path == "/zookeeper" {
            continue;
        }
        if let Some(stat) = tree.stat(&path) {
            let data = tree.with_node(&path, |node, _| node.data().map(<[u8]>::to_vec)).flatten();
            let _ = writeln!(
                out,
                "{path} data={:?} czxid={:x} mzxid={:x} version={} owner={:x} children={}",
                data.as_deref().map(String::from_utf8_lossy),
                stat.czxid,
                stat.mzxid,
                stat.version,
                stat.ephemeral_owner,
                stat.num_children
            );
        }
        let mut children = tree.children(&path);
        children.sort_unstable_by(|a, b| b.cmp(a));
        let prefix = if path == "/" { String::new() } else { path.clone() };
        pending.extend(children.into_iter().map(|child| format!("{prefix}/{child}")));
    }
    out
}

/// Checks that every member's listing is the first one's.
///
/// # Errors
/// Names the first member that differs and the first line where it does.
pub fn check(listings: &[(ServerId, String)]) -> Result<(), String> {
    let Some((first, expected)) = listings.first() else {
        return Ok(());
    };
    for (member, listing) in &listings[1..] {
        if listing != expected {
            let line = expected
                .lines()
                .zip(listing.lines())
                .find(|(a, b)| a != b)
                .map_or_else(|| "one listing is longer".to_owned(), |(a, b)| format!("{a} vs {b}"));
            return Err(format!("members {first} and {member} differ once calm: {line}"));
        }
    }
    Ok(())
}
