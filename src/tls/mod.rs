//! TLS with rustls, for clients and between members: the TLS contexts built from
//! ZooKeeper's key and trust stores ([`stores`], [`jks`]), their reload when the files
//! change (`client.certReload`, `sslQuorumReloadCertFiles`), the x509 identity a client
//! certificate gives ([`subject`]), and what members check of each other ([`peers`]).
//!
//! The settings come parsed from [`crate::config::tls`]; this module owns no socket.
//! [`crate::server::listener`] hands each accepted client connection to a [`ServerTls`];
//! the ensemble's links dial and accept members with one.

pub mod jks;
pub mod peers;
pub mod stores;
pub mod stream;
pub mod subject;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::tls::{ClientAuth, Protocol, TlsSettings};
use stores::StoreError;

/// TLS sessions a server remembers for clients resuming by session id (TLS 1.2); a few
/// hundred bytes each. TLS 1.3 clients resume with stateless tickets.
const SESSION_CACHE_ENTRIES: usize = 4096;

/// How often the stores' files are looked at under `client.certReload`.
const RELOAD_POLL: Duration = Duration::from_secs(1);

/// Why a TLS context could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key or trust store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No trust store is set and the system's roots could not be read.
    #[error("no trust store is set and the system's CA roots cannot be read")]
    NoSystemRoots,
    /// `ssl.ciphersuites` names no suite zkrs has for the enabled protocols.
    #[error("ssl.ciphersuites names no cipher suite zkrs can serve: {0}")]
    NoCipherSuite(String),
    /// rustls refused the settings (a key that does not match its certificate, say).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// The trust store's certificates cannot verify clients.
    #[error("the trust store cannot verify client certificates: {0}")]
    Verifier(String),
}

/// A TLS context for accepting connections (a client port's, or a member's ports'),
/// and for dialling (a member's), rebuilt when the stores change if the settings ask.
#[derive(Debug)]
pub struct ServerTls {
    settings: TlsSettings,
    current: RwLock<Contexts>,
}

/// The contexts built from one version of the stores.
#[derive(Debug, Clone)]
struct Contexts {
    server: Arc<ServerConfig>,
    /// Only for a member, which dials other members.
    client: Option<Arc<ClientConfig>>,
}

impl Contexts {
    fn build(settings: &TlsSettings, dials: bool) -> Result<Contexts, TlsError> {
        let server = server_config(settings)?;
        let client = if dials { Some(peers::client_config(settings)?) } else { None };
        Ok(Contexts { server, client })
    }
}

impl ServerTls {
    /// Builds the context of a client port from the stores, so start-up fails on a bad
    /// one.
    ///
    /// # Errors
    /// [`TlsError`] when a store cannot be read or the settings make no context.
    pub fn new(settings: TlsSettings) -> Result<ServerTls, TlsError> {
        let contexts = Contexts::build(&settings, false)?;
        Ok(ServerTls { settings, current: RwLock::new(contexts) })
    }

    /// Builds the contexts of a member, which also dials other members.
    ///
    /// # Errors
    /// As [`ServerTls::new`].
    pub fn for_members(settings: TlsSettings) -> Result<ServerTls, TlsError> {
        let contexts = Contexts::build(&settings, true)?;
        Ok(ServerTls { settings, current: RwLock::new(contexts) })
    }

    /// The settings the context was built from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The context for a connection accepted now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.read().server.clone()
    }

    /// The context for dialling a member now (`None` outside a member).
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.current.read().client.clone()
    }

    /// Under `client.certReload`, rebuilds the context whenever a store's file changes,
    /// until the task is dropped. A store that fails to load is logged and the old
    /// context kept, so a half-written file never takes the port down.
    pub async fn reload_on_change(self: Arc<Self>) {
        if !self.settings.cert_reload {
            return std::future::pending().await;
        }
        let mut seen = self.fingerprint();
        loop {
            tokio::time::sleep(RELOAD_POLL).await;
            let now = self.fingerprint();
            if now == seen {
                continue;
            }
            seen = now;
            let settings = self.settings.clone();
            let dials = self.current.read().client.is_some();
            match tokio::task::spawn_blocking(move || Contexts::build(&settings, dials)).await {
                Ok(Ok(contexts)) => {
                    *self.current.write() = contexts;
                    tracing::info!("TLS stores changed; new connections use them");
                }
                Ok(Err(err)) => {
                    tracing::error!(cause = %err, "cannot reload the TLS stores; \
                                    keeping the previous ones")
                }
                Err(err) => tracing::error!(cause = %err, "the TLS reload task failed"),
            }
        }
    }

    /// What changes when a store's file is replaced or rewritten.
    fn fingerprint(&self) -> Vec<Option<(SystemTime, u64)>> {
        let files = std::iter::once(&self.settings.key_store).chain(&self.settings.trust_store);
        files
            .map(|store| {
                let metadata = std::fs::metadata(&store.location).ok()?;
                Some((metadata.modified().ok()?, metadata.len()))
            })
            .collect()
    }
}

/// A rustls server context for `settings`.
///
/// # Errors
/// [`TlsError`] when a store cannot be read or the settings make no context.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider(settings)?);
    let identity = settings.key_store.identity()?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(settings))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = Arc::new(trust_roots(settings)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier =
                if auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|err| TlsError::Verifier(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(identity.chain, identity.key)?;
    // Resumption skips the certificate signature and chain checks of a full handshake,
    // as the JVM's session cache does for ZooKeeper. A reloaded context starts afresh,
    // so no session verified under an old trust store resumes.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}

/// The protocol versions the settings enable.
fn versions(settings: &TlsSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    settings
        .protocols
        .iter()
        .map(|protocol| match protocol {
            Protocol::Tls13 => &rustls::version::TLS13,
            Protocol::Tls12 => &rustls::version::TLS12,
        })
        .collect()
}

/// ring's provider, with only the cipher suites `ssl.ciphersuites` names (Java spells
/// TLS 1.3 suites `TLS_AES_...` where rustls says `TLS13_AES_...`).
fn provider(settings: &TlsSettings) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &settings.cipher_suites {
        let iana = |suite: &rustls::SupportedCipherSuite| {
            let name = suite.suite().as_str().unwrap_or("");
            name.strip_prefix("TLS13_").map_or(name.to_owned(), |rest| format!("TLS_{rest}"))
        };
        provider.cipher_suites.retain(|suite| names.contains(&iana(suite)));
        for name in names {
            if !provider.cipher_suites.iter().any(|suite| &iana(suite) == name) {
                tracing::warn!(suite = %name, "ssl.ciphersuites: zkrs has no such suite");
            }
        }
        let usable = provider.cipher_suites.iter().any(|suite| {
            settings.protocols.iter().any(|protocol| match protocol {
                Protocol::Tls13 => suite.tls13().is_some(),
                Protocol::Tls12 => suite.tls13().is_none(),
            })
        });
        if !usable {
            return Err(TlsError::NoCipherSuite(names.join(",")));
        }
    }
    Ok(provider)
}

/// The trust store's certificates, or the system's roots when none is set.
fn trust_roots(settings: &TlsSettings) -> Result<RootCertStore, TlsError> {
    let certificates = match &settings.trust_store {
        Some(store) => store.trusted()?,
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(TlsError::NoSystemRoots);
            }
            found.certs
        }
    };
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certificates);
    if ignored > 0 {
        tracing::warn!(ignored, "trust store certificates that are not usable as roots");
    }
    if added == 0 {
        return Err(TlsError::Verifier("it holds no usable certificate".into()));
    }
    Ok(roots)
}
