//! A session reads its own writes: once a write of the session is answered, a read in
//! the same session, on the member that answered it, sees it (only this client writes
//! the key, so nothing else can have changed it).

use bytes::Bytes;

use crate::client::Client;

/// Checks a read of `key` that saw `seen` (`None`: no such node).
///
/// # Errors
/// If the session's last acknowledged write of the key says otherwise.
pub fn check(client: &Client, key: usize, seen: Option<Bytes>) -> Result<(), String> {
    let model = &client.keys[key];
    let known = !model.retired && model.known_in.is_some() && model.known_in == client.session();
    match model.possible.as_slice() {
        [expected] if known && *expected != seen => Err(format!(
            "client {}: read {} as {seen:?} after its own write made it {expected:?}",
            client.id,
            client.path(key)
        )),
        _ => Ok(()),
    }
}
