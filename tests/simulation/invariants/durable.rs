//! Every acknowledged write is in the converged state: each key a client wrote is in one
//! of the states its replies allow.

use zkrs::tree::DataTree;

use crate::client::Client;

/// Checks every client's keys against `tree`.
///
/// # Errors
/// Names the first key in a state its replies rule out.
pub fn check(clients: &[Client], tree: &DataTree) -> Result<(), String> {
    for client in clients {
        for (key, model) in client.keys.iter().enumerate() {
            let path = client.path(key);
            let state =
                tree.with_node(&path, |node, _| node.data().map(bytes::Bytes::copy_from_slice));
            let state = state.map(|data| data.unwrap_or_default());
            if !model.possible.contains(&state) {
                return Err(format!(
                    "{path} is {state:?} after calm, but its replies allow only {:?}",
                    model.possible
                ));
            }
        }
    }
    Ok(())
}
