//! The client port's TLS settings, read from ZooKeeper's keys: `secureClientPort`,
//! `client.portUnification` and the `ssl.*` family (`zookeeper.ssl.*` as system
//! properties), with ZooKeeper's defaults.
//!
//! What is wrong with them is found here, before anything is bound: a secure port without
//! a key store, a store of an unknown type, protocols or cipher suites zkrs cannot serve
//! at all. Loading the stores themselves is [`crate::tls`]'s job.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::properties::Reader;
use super::{port_on_address, ConfigError, Notice};
use crate::tls::stores::{StoreFile, StoreType};

/// ZooKeeper's `X509Util.DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MILLIS`.
const HANDSHAKE_DETECTION_TIMEOUT_MS_DEFAULT: u64 = 5000;

/// Whether and how a TLS server asks for the client's certificate (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never asks.
    None,
    /// Asks; a client without one is let in without an x509 identity.
    Want,
    /// Asks, and closes a client that has none (ZooKeeper's default).
    Need,
}

/// A TLS protocol version zkrs can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// TLS on the client port(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// `secureClientPort` (with `secureClientPortAddress`): a port that speaks only TLS.
    pub secure_address: Option<SocketAddr>,
    /// `client.portUnification`: the plain client port also takes TLS clients.
    pub port_unification: bool,
    /// The server's own key and certificate (`ssl.keyStore.*`).
    pub key_store: StoreFile,
    /// Whom client certificates must chain to (`ssl.trustStore.*`); `None`: the system's
    /// roots, as the JVM's default trust store.
    pub trust_store: Option<StoreFile>,
    /// `ssl.clientAuth`.
    pub client_auth: ClientAuth,
    /// The protocol versions served, newest first (`ssl.enabledProtocols`, else
    /// `ssl.protocol`).
    pub protocols: Vec<Protocol>,
    /// IANA names of the cipher suites allowed (`ssl.ciphersuites`); `None`: rustls's
    /// defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// `client.certReload`: serve the stores' new content when their files change.
    pub cert_reload: bool,
    /// How long a unified port waits for a new connection's first bytes
    /// (`ssl.handshakeDetectionTimeoutMillis`).
    pub handshake_detection_timeout_ms: u64,
}

/// The client TLS settings, or `None` when neither a secure port nor port unification
/// asks for TLS.
///
/// # Errors
/// [`ConfigError`] for settings that cannot make a TLS server: no key store, an unknown
/// store type, client auth, protocol or an empty protocol list.
pub fn read_client_tls(
    read: &mut Reader<'_>,
    notices: &mut Vec<Notice>,
) -> Result<Option<ClientTls>, ConfigError> {
    let secure_address = port_on_address(read, "secureClientPort", "secureClientPortAddress")?;
    let port_unification = read.flag("client.portUnification", false)?;
    if secure_address.is_none() && !port_unification {
        return Ok(None);
    }
    let key_store = store(read, "ssl.keyStore")?.ok_or_else(|| {
        ConfigError::Inconsistent(
            "TLS on the client port (secureClientPort or client.portUnification) needs \
             ssl.keyStore.location"
                .into(),
        )
    })?;
    let client_auth = match read.text("ssl.clientAuth").map(str::trim) {
        None | Some("") => ClientAuth::Need,
        Some(value) => match value.to_ascii_uppercase().as_str() {
            "NONE" => ClientAuth::None,
            "WANT" => ClientAuth::Want,
            "NEED" => ClientAuth::Need,
            _ => {
                return Err(ConfigError::invalid(
                    "ssl.clientAuth",
                    value,
                    "expected none, want or need".into(),
                ))
            }
        },
    };
    let handshake_detection_timeout_ms =
        match read.number::<i64>("ssl.handshakeDetectionTimeoutMillis", 0)? {
            ms if ms >= 1 => ms as u64,
            _ => HANDSHAKE_DETECTION_TIMEOUT_MS_DEFAULT,
        };
    Ok(Some(ClientTls {
        secure_address,
        port_unification,
        key_store,
        trust_store: store(read, "ssl.trustStore")?,
        client_auth,
        protocols: protocols(read, notices)?,
        cipher_suites: read.text("ssl.ciphersuites").map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(String::from)
                .collect()
        }),
        cert_reload: read.flag("client.certReload", false)?,
        handshake_detection_timeout_ms,
    }))
}

/// `<prefix>.location`, `.password` or `.passwordPath`, and `.type`.
fn store(read: &Reader<'_>, prefix: &str) -> Result<Option<StoreFile>, ConfigError> {
    let location_key = format!("{prefix}.location");
    let Some(location) = read.text(&location_key).map(str::trim).filter(|path| !path.is_empty())
    else {
        return Ok(None);
    };
    let location = PathBuf::from(location);
    let type_key = format!("{prefix}.type");
    let kind = StoreType::of(read.text(&type_key), &location).map_err(|reason| {
        ConfigError::invalid(&type_key, read.text(&type_key).unwrap_or(""), reason)
    })?;
    let path_key = format!("{prefix}.passwordPath");
    let password = match read.text(&path_key).filter(|path| !path.is_empty()) {
        Some(path) => {
            let secret = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.into(), source })?;
            secret.strip_suffix('\n').unwrap_or(&secret).to_owned()
        }
        None => read.text(&format!("{prefix}.password")).unwrap_or("").to_owned(),
    };
    Ok(Some(StoreFile { location, password, kind }))
}

/// The versions to serve: `ssl.enabledProtocols` when set, else what `ssl.protocol`
/// enables. TLS 1.1 and older are not served (rustls has none); a list left empty by
/// that refuses to start.
fn protocols(read: &Reader<'_>, notices: &mut Vec<Notice>) -> Result<Vec<Protocol>, ConfigError> {
    let (key, names): (&str, Vec<&str>) = match read.text("ssl.enabledProtocols") {
        Some(list) => ("ssl.enabledProtocols", list.split(',').map(str::trim).collect()),
        None => match read.text("ssl.protocol").map(str::trim) {
            None | Some("TLS" | "TLSv1.3") => return Ok(vec![Protocol::Tls13, Protocol::Tls12]),
            Some(name) => ("ssl.protocol", vec![name]),
        },
    };
    let mut protocols = Vec::new();
    for name in names.into_iter().filter(|name| !name.is_empty()) {
        match name {
            "TLSv1.3" => protocols.push(Protocol::Tls13),
            "TLSv1.2" => protocols.push(Protocol::Tls12),
            "TLSv1.1" | "TLSv1" | "SSLv3" => notices.push(Notice::warn(format!(
                "{key}: {name} is not served; zkrs speaks TLSv1.2 and TLSv1.3 only"
            ))),
            other => {
                return Err(ConfigError::invalid(key, other, "not a TLS protocol version".into()))
            }
        }
    }
    protocols.sort_unstable_by(|a, b| b.cmp(a));
    protocols.dedup();
    if protocols.is_empty() {
        return Err(ConfigError::Inconsistent(format!(
            "{key} enables no protocol zkrs can serve (TLSv1.2, TLSv1.3)"
        )));
    }
    Ok(protocols)
}
