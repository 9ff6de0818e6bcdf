//! SASL authentication of clients (the `sasl` request, opcode 102) as ZooKeeper does it:
//! DIGEST-MD5 against the users of the JAAS file's `Server` section ([`jaas`],
//! [`digest_md5`]). A client that completes the exchange is `sasl:<user>`, and
//! `zookeeper.superUser` names the user that is also `super`. GSSAPI (Kerberos) is not
//! supported: a JAAS `Server` section without ZooKeeper's `DigestLoginModule` stops
//! start-up.

pub mod digest_md5;
pub mod jaas;

use std::collections::BTreeMap;

use base64::Engine;
use ring::rand::SecureRandom;

pub use digest_md5::{DigestError, DigestMd5Client, DigestMd5Server, Service, Step};

/// The JAAS section ZooKeeper's server reads (`zookeeper.sasl.serverconfig`'s default).
pub const SERVER_SECTION: &str = "Server";

/// The users who may authenticate with DIGEST-MD5, and who among them is super.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslUsers {
    /// User name to password.
    pub passwords: BTreeMap<String, String>,
    /// `zookeeper.superUser`.
    pub super_user: Option<String>,
}

/// A new server exchange for `service` with a fresh random nonce.
///
/// # Errors
/// [`DigestError`] when the system's random generator fails: no exchange then.
pub fn new_exchange(service: Service) -> Result<DigestMd5Server, DigestError> {
    Ok(DigestMd5Server::new(service, random_nonce()?))
}

/// 24 random bytes in base64, for a nonce or a cnonce.
///
/// # Errors
/// [`DigestError`] when the system's random generator fails.
pub fn random_nonce() -> Result<String, DigestError> {
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DigestError("no random nonce to be had".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The rest of a double-quoted string whose opening quote was read, `\\` escaping the
/// next character (JAAS option values and DIGEST-MD5 directives alike); `None` when the
/// closing quote never comes.
fn quoted(chars: &mut impl Iterator<Item = char>) -> Option<String> {
    let mut value = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => value.push(chars.next()?),
            c => value.push(c),
        }
    }
}
