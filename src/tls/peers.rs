//! TLS between members, as ZooKeeper's `QuorumX509Util` and `ZKTrustManager` have it:
//! both ends present the `ssl.quorum` key store's certificate and check the other's
//! chain, and under `ssl.quorum.hostnameVerification` the certificate must also name the
//! other member: by its IP address, or else by the host name its `server.N` line gives
//! (for a member dialled). A member that dials in is known only by its address; as
//! ZooKeeper without `allowReverseDnsLookup`, no reverse lookup is made for it.
//!
//! rustls checks chains during the handshake; names are checked here, after it, since
//! they depend on which end dialled and under what name.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{provider, trust_roots, versions, TlsError};
use crate::config::tls::TlsSettings;

/// A rustls client context for dialling members: this member's certificate for the
/// other's client auth, and chain checks against the trust store.
///
/// # Errors
/// [`TlsError`] when a store cannot be read or the settings make no context.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(provider(settings)?);
    let identity = settings.key_store.identity()?;
    let roots = Arc::new(trust_roots(settings)?);
    let chains = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|err| TlsError::Verifier(err.to_string()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(settings))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(chains)))
        .with_client_auth_cert(identity.chain, identity.key)?;
    Ok(Arc::new(config))
}

/// Checks a member's certificate chain as rustls's WebPKI verifier does, leaving the
/// name to [`verify_names`].
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Why a member's certificate was not accepted for its name.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// The certificate does not parse.
    #[error("the member's certificate cannot be read")]
    Unreadable,
    /// It names neither the address nor the host.
    #[error(
        "the member's certificate does not name {address}{}",
        .host.as_deref().map(|host| format!(" or {host}")).unwrap_or_default()
    )]
    NotNamed {
        /// The member's address.
        address: IpAddr,
        /// The host name tried after it, if any.
        host: Option<String>,
    },
}

/// Checks that `certificate` names a member at `address`, or `host` (the name its
/// `server.N` line gives, when that is not an address). Java's hostname verifier takes
/// the subjectAltName's IP addresses and DNS names, and the subject's CN when there is
/// no DNS name; a DNS name may start with a `*.` wildcard for one label.
///
/// # Errors
/// [`NameError`] when it names neither.
pub fn verify_names(
    certificate: &[u8],
    address: IpAddr,
    host: Option<&str>,
) -> Result<(), NameError> {
    let (_, certificate) =
        X509Certificate::from_der(certificate).map_err(|_| NameError::Unreadable)?;
    let mut addresses = Vec::new();
    let mut dns_names = Vec::new();
    if let Ok(Some(alt_names)) = certificate.subject_alternative_name() {
        for name in &alt_names.value.general_names {
            match name {
                GeneralName::IPAddress(bytes) => {
                    if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                        addresses.push(IpAddr::from(octets));
                    } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                        addresses.push(IpAddr::from(octets));
                    }
                }
                GeneralName::DNSName(name) => dns_names.push(name.to_ascii_lowercase()),
                _ => {}
            }
        }
    }
    if dns_names.is_empty() {
        let common_names = certificate.subject().iter_common_name();
        dns_names.extend(
            common_names.filter_map(|cn| cn.as_str().ok()).map(|cn| cn.to_ascii_lowercase()),
        );
    }
    if addresses.contains(&address) {
        return Ok(());
    }
    let host = host.filter(|host| host.parse::<IpAddr>().is_err());
    if let Some(host) = host {
        let host = host.to_ascii_lowercase();
        if dns_names.iter().any(|name| dns_name_matches(name, &host)) {
            return Ok(());
        }
    }
    Err(NameError::NotNamed { address, host: host.map(str::to_owned) })
}

/// Whether a certificate's DNS name `pattern` (lower case) matches `host` (lower case):
/// equal, or `*.rest` where `host` is one label followed by `.rest`.
fn dns_name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => {
            host.split_once('.').is_some_and(|(label, after)| !label.is_empty() && after == rest)
        }
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_match_exactly_or_by_one_wildcard_label() {
        assert!(dns_name_matches("zk1.example.com", "zk1.example.com"));
        assert!(dns_name_matches("*.example.com", "zk1.example.com"));
        assert!(!dns_name_matches("*.example.com", "a.zk1.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("zk1.example.com", "zk2.example.com"));
    }
}
