//! TLS settings, read from ZooKeeper's keys with ZooKeeper's defaults: the client port's
//! (`secureClientPort`, `client.portUnification` and the `ssl.*` family) and the
//! members' (`sslQuorum`, `portUnification` and the `ssl.quorum.*` family);
//! `zookeeper.ssl.*` as system properties.
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

/// What a TLS context is built from: one of ZooKeeper's `X509Util` key families,
/// `ssl.*` for clients or `ssl.quorum.*` between members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// This server's own key and certificate (`<prefix>keyStore.*`).
    pub key_store: StoreFile,
    /// Whom the other end's certificate must chain to (`<prefix>trustStore.*`); `None`:
    /// the system's roots, as the JVM's default trust store.
    pub trust_store: Option<StoreFile>,
    /// `<prefix>clientAuth`.
    pub client_auth: ClientAuth,
    /// The protocol versions served, newest first (`<prefix>enabledProtocols`, else
    /// `<prefix>protocol`).
    pub protocols: Vec<Protocol>,
    /// IANA names of the cipher suites allowed (`<prefix>ciphersuites`); `None`:
    /// rustls's defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// Serve the stores' new content when their files change (`client.certReload`,
    /// `sslQuorumReloadCertFiles`).
    pub cert_reload: bool,
    /// How long a unified port waits for a new connection's first bytes
    /// (`<prefix>handshakeDetectionTimeoutMillis`).
    pub handshake_detection_timeout_ms: u64,
}

/// TLS on the client port(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// `secureClientPort` (with `secureClientPortAddress`): a port that speaks only TLS.
    pub secure_address: Option<SocketAddr>,
    /// `client.portUnification`: the plain client port also takes TLS clients.
    pub port_unification: bool,
    /// The context's stores and protocols (`ssl.*`).
    pub settings: TlsSettings,
}

/// TLS between members (`sslQuorum`, `portUnification`, `ssl.quorum.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTls {
    /// `sslQuorum`: dial other members over TLS and take only TLS from them.
    pub dial_tls: bool,
    /// `portUnification`: the quorum and election ports take plain and TLS members
    /// alike, for moving an ensemble from one to the other a member at a time.
    pub port_unification: bool,
    /// `ssl.quorum.hostnameVerification`: the certificate of a member dialled must name
    /// its address, or the host its `server.N` line names.
    pub hostname_verification: bool,
    /// With it, `ssl.quorum.clientHostnameVerification`: so must the certificate of a
    /// member that dials this one, by its address.
    pub client_hostname_verification: bool,
    /// The context's stores and protocols (`ssl.quorum.*`).
    pub settings: TlsSettings,
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
    let needs = "TLS on the client port (secureClientPort or client.portUnification)";
    let settings = read_settings(read, notices, "ssl.", "client.certReload", needs)?;
    Ok(Some(ClientTls { secure_address, port_unification, settings }))
}

/// The members' TLS settings, or `None` when neither `sslQuorum` nor `portUnification`
/// asks for TLS.
///
/// # Errors
/// As [`read_client_tls`], for the `ssl.quorum.*` keys.
pub fn read_quorum_tls(
    read: &mut Reader<'_>,
    notices: &mut Vec<Notice>,
) -> Result<Option<QuorumTls>, ConfigError> {
    let dial_tls = read.flag("sslQuorum", false)?;
    let port_unification = read.flag("portUnification", false)?;
    if !dial_tls && !port_unification {
        return Ok(None);
    }
    let needs = "TLS between members (sslQuorum or portUnification)";
    let settings = read_settings(read, notices, "ssl.quorum.", "sslQuorumReloadCertFiles", needs)?;
    let hostname_verification = read.flag("ssl.quorum.hostnameVerification", true)?;
    let client_hostname_verification =
        hostname_verification && read.flag("ssl.quorum.clientHostnameVerification", true)?;
    Ok(Some(QuorumTls {
        dial_tls,
        port_unification,
        hostname_verification,
        client_hostname_verification,
        settings,
    }))
}

/// HTTPS on the AdminServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTls {
    /// `admin.portUnification`: plain HTTP is served on the same port too.
    pub port_unification: bool,
    /// The context: the `ssl.quorum` stores, a client certificate required only under
    /// `admin.needClientAuth`.
    pub settings: TlsSettings,
}

/// The AdminServer's HTTPS, or `None` when neither `admin.forceHttps` nor
/// `admin.portUnification` asks for it. As ZooKeeper's `JettyAdminServer`, it takes only
/// the `ssl.quorum` key and trust stores, and asks for client certificates only under
/// `admin.needClientAuth` (which plain HTTP ignores, with a warning here).
///
/// # Errors
/// No `ssl.quorum.keyStore.location`, or a store setting that cannot be read.
pub fn read_admin_tls(
    read: &mut Reader<'_>,
    notices: &mut Vec<Notice>,
) -> Result<Option<AdminTls>, ConfigError> {
    let force_https = read.flag("admin.forceHttps", false)?;
    let port_unification = read.flag("admin.portUnification", false)?;
    let need_client_auth = read.flag("admin.needClientAuth", false)?;
    if !force_https && !port_unification {
        if need_client_auth {
            notices.push(Notice::warn(
                "admin.needClientAuth=true asks nothing of clients over plain HTTP (as in \
                 ZooKeeper): set admin.forceHttps=true for the AdminServer to require \
                 certificates"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let key_store = store(read, "ssl.quorum.keyStore")?.ok_or_else(|| {
        ConfigError::Inconsistent(
            "HTTPS on the AdminServer (admin.forceHttps or admin.portUnification) needs \
             ssl.quorum.keyStore.location"
                .into(),
        )
    })?;
    let settings = TlsSettings {
        key_store,
        trust_store: store(read, "ssl.quorum.trustStore")?,
        client_auth: if need_client_auth { ClientAuth::Need } else { ClientAuth::None },
        protocols: vec![Protocol::Tls13, Protocol::Tls12],
        cipher_suites: None,
        cert_reload: false,
        handshake_detection_timeout_ms: HANDSHAKE_DETECTION_TIMEOUT_MS_DEFAULT,
    };
    Ok(Some(AdminTls { port_unification: port_unification && !force_https, settings }))
}

/// One key family: `<prefix>keyStore.*` (required, for `needs`), `trustStore.*`,
/// `clientAuth`, the protocols and suites, and the reload flag `reload_key`.
fn read_settings(
    read: &mut Reader<'_>,
    notices: &mut Vec<Notice>,
    prefix: &str,
    reload_key: &str,
    needs: &str,
) -> Result<TlsSettings, ConfigError> {
    let key_store = store(read, &format!("{prefix}keyStore"))?.ok_or_else(|| {
        ConfigError::Inconsistent(format!("{needs} needs {prefix}keyStore.location"))
    })?;
    let auth_key = format!("{prefix}clientAuth");
    let client_auth = match read.text(&auth_key).map(str::trim) {
        None | Some("") => ClientAuth::Need,
        Some(value) => match value.to_ascii_uppercase().as_str() {
            "NONE" => ClientAuth::None,
            "WANT" => ClientAuth::Want,
            "NEED" => ClientAuth::Need,
            _ => {
                return Err(ConfigError::invalid(
                    &auth_key,
                    value,
                    "expected none, want or need".into(),
                ))
            }
        },
    };
    let detection_key = format!("{prefix}handshakeDetectionTimeoutMillis");
    let handshake_detection_timeout_ms = match read.number::<i64>(&detection_key, 0)? {
        ms if ms >= 1 => ms as u64,
        _ => HANDSHAKE_DETECTION_TIMEOUT_MS_DEFAULT,
    };
    Ok(TlsSettings {
        key_store,
        trust_store: store(read, &format!("{prefix}trustStore"))?,
        client_auth,
        protocols: protocols(read, notices, prefix)?,
        cipher_suites: read.text(&format!("{prefix}ciphersuites")).map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(String::from)
                .collect()
        }),
        cert_reload: read.flag(reload_key, false)?,
        handshake_detection_timeout_ms,
    })
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

/// The versions to serve: `<prefix>enabledProtocols` when set, else what
/// `<prefix>protocol` enables. TLS 1.1 and older are not served (rustls has none); a
/// list left empty by that refuses to start.
fn protocols(
    read: &Reader<'_>,
    notices: &mut Vec<Notice>,
    prefix: &str,
) -> Result<Vec<Protocol>, ConfigError> {
    let enabled_key = format!("{prefix}enabledProtocols");
    let protocol_key = format!("{prefix}protocol");
    let (key, names): (&str, Vec<&str>) = match read.text(&enabled_key) {
        Some(list) => (&enabled_key, list.split(',').map(str::trim).collect()),
        None => match read.text(&protocol_key).map(str::trim) {
            None | Some("TLS" | "TLSv1.3") => return Ok(vec![Protocol::Tls13, Protocol::Tls12]),
            Some(name) => (&protocol_key, vec![name]),
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
