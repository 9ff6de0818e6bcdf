//! Key and trust stores in the formats ZooKeeper reads (`ssl.keyStore.*`,
//! `ssl.trustStore.*`): PEM, PKCS12 and JKS, typed by `*.type` or else by the file's
//! extension, as ZooKeeper's `KeyStoreFileType` does.

use std::path::{Path, PathBuf};

use pkcs8::der::Decode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::jks;

/// A store's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// PEM text: certificates, and for a key store a private key (PKCS#8, optionally
    /// encrypted with the store's password, or PKCS#1/SEC1).
    Pem,
    /// PKCS#12, as `keytool` (the JDK's default type) and `openssl pkcs12` write it.
    Pkcs12,
    /// Java's JKS.
    Jks,
}

impl StoreType {
    /// The type `*.type` names (any case), or else the one the file's extension implies.
    ///
    /// # Errors
    /// A message naming the setting, for BCFKS (which needs BouncyCastle), an unknown type
    /// or an extension that implies none.
    pub fn of(setting: Option<&str>, location: &Path) -> Result<StoreType, String> {
        let named = setting.map(str::trim).filter(|name| !name.is_empty());
        let name = match named {
            Some(name) => name.to_ascii_uppercase(),
            None => {
                let extension = location.extension().and_then(|ext| ext.to_str()).unwrap_or("");
                match extension.to_ascii_lowercase().as_str() {
                    "pem" => "PEM".to_owned(),
                    "p12" | "pfx" => "PKCS12".to_owned(),
                    "jks" => "JKS".to_owned(),
                    "bcfks" => "BCFKS".to_owned(),
                    _ => {
                        return Err(format!(
                            "cannot tell the store type of {} from its name; set its type \
                             (PEM, PKCS12 or JKS)",
                            location.display()
                        ))
                    }
                }
            }
        };
        match name.as_str() {
            "PEM" => Ok(StoreType::Pem),
            "PKCS12" => Ok(StoreType::Pkcs12),
            "JKS" => Ok(StoreType::Jks),
            "BCFKS" => Err("BCFKS stores need BouncyCastle; zkrs reads PEM, PKCS12 and JKS".into()),
            other => Err(format!("unknown store type {other}")),
        }
    }
}

/// A key or trust store as zoo.cfg names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFile {
    /// `*.location`.
    pub location: PathBuf,
    /// `*.password`, or what `*.passwordPath` holds (one trailing newline dropped);
    /// empty when neither is set.
    pub password: String,
    /// The format.
    pub kind: StoreType,
}

/// Why a store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file's content could not be used.
    #[error("{path}: {reason}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A server's (or member's) own certificate chain and private key.
#[derive(Debug)]
pub struct Identity {
    /// The chain, the server's own certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
}

impl StoreFile {
    fn fail(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Content { path: self.location.clone(), reason: reason.to_string() }
    }

    fn bytes(&self) -> Result<Vec<u8>, StoreError> {
        std::fs::read(&self.location)
            .map_err(|source| StoreError::Read { path: self.location.clone(), source })
    }

    /// The first private key of a key store, with its chain.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be read, the password is wrong, or it holds no
    /// key with a certificate.
    pub fn identity(&self) -> Result<Identity, StoreError> {
        let bytes = self.bytes()?;
        let identity = match self.kind {
            StoreType::Pem => self.pem_identity(&bytes)?,
            StoreType::Pkcs12 => {
                let store = self.pkcs12(&bytes)?;
                let (_, chain) =
                    store.private_key_chain().ok_or_else(|| self.fail("holds no private key"))?;
                Identity {
                    chain: chain.certs().iter().map(|cert| der(cert.as_der())).collect(),
                    key: pkcs8_key(chain.key().as_der()),
                }
            }
            StoreType::Jks => {
                let entries = jks::read(&bytes, &self.password).map_err(|err| self.fail(err))?;
                entries
                    .into_iter()
                    .find_map(|entry| match entry {
                        jks::Entry::PrivateKey { key, chain, .. } => Some(Identity {
                            chain: chain.into_iter().map(CertificateDer::from).collect(),
                            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
                        }),
                        jks::Entry::Trusted { .. } => None,
                    })
                    .ok_or_else(|| self.fail("holds no private key"))?
            }
        };
        if identity.chain.is_empty() {
            return Err(self.fail("its private key has no certificate"));
        }
        Ok(identity)
    }

    /// The certificates a trust store trusts: its certificate entries and, as Java's
    /// trust managers take them, the own certificate of each key entry.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be read, the password is wrong, or it holds no
    /// certificate.
    pub fn trusted(&self) -> Result<Vec<CertificateDer<'static>>, StoreError> {
        let bytes = self.bytes()?;
        let certificates: Vec<CertificateDer<'static>> = match self.kind {
            StoreType::Pem => CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|err| self.fail(err))?,
            StoreType::Pkcs12 => {
                let store = self.pkcs12(&bytes)?;
                store
                    .entries()
                    .filter_map(|(_, entry)| match entry {
                        p12_keystore::KeyStoreEntry::Certificate(cert) => Some(der(cert.as_der())),
                        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                            chain.certs().first().map(|cert| der(cert.as_der()))
                        }
                        p12_keystore::KeyStoreEntry::Secret(_) => None,
                    })
                    .collect()
            }
            StoreType::Jks => jks::read(&bytes, &self.password)
                .map_err(|err| self.fail(err))?
                .into_iter()
                .filter_map(|entry| match entry {
                    jks::Entry::Trusted { certificate, .. } => Some(certificate),
                    jks::Entry::PrivateKey { chain, .. } => chain.into_iter().next(),
                })
                .map(CertificateDer::from)
                .collect(),
        };
        if certificates.is_empty() {
            return Err(self.fail("holds no certificate"));
        }
        Ok(certificates)
    }

    fn pkcs12(&self, bytes: &[u8]) -> Result<p12_keystore::KeyStore, StoreError> {
        let policy = p12_keystore::Pkcs12ImportPolicy::Relaxed;
        p12_keystore::KeyStore::from_pkcs12(bytes, &self.password, policy)
            .map_err(|err| self.fail(format!("not a PKCS12 store it can open ({err})")))
    }

    /// A PEM key store: its certificates, in order, and its one private key, decrypted
    /// with the store's password when it is an `ENCRYPTED PRIVATE KEY`.
    fn pem_identity(&self, bytes: &[u8]) -> Result<Identity, StoreError> {
        let chain = CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| self.fail(err))?;
        let key = match encrypted_pem_key(bytes) {
            Some(encrypted) => {
                let encrypted = encrypted.map_err(|reason| self.fail(reason))?;
                let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&encrypted)
                    .map_err(|err| self.fail(format!("a malformed encrypted key ({err})")))?;
                let document = info.decrypt(self.password.as_bytes()).map_err(|_| {
                    self.fail("cannot decrypt its private key: wrong password or algorithm")
                })?;
                pkcs8_key(document.as_bytes())
            }
            None => PrivateKeyDer::from_pem_slice(bytes)
                .map_err(|err| self.fail(format!("no usable private key ({err})")))?,
        };
        Ok(Identity { chain, key })
    }
}

/// The DER of the first `ENCRYPTED PRIVATE KEY` block of PEM text, if there is one.
fn encrypted_pem_key(bytes: &[u8]) -> Option<Result<Vec<u8>, String>> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(bytes);
    let start = text.find(BEGIN)? + BEGIN.len();
    let Some(len) = text[start..].find(END) else {
        return Some(Err("an encrypted private key without its END line".to_owned()));
    };
    let base64: String =
        text[start..start + len].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    use base64::Engine;
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(base64)
            .map_err(|err| format!("an encrypted private key that is not base64 ({err})")),
    )
}

fn der(bytes: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from(bytes.to_vec())
}

fn pkcs8_key(bytes: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_setting_wins_then_the_extension_decides() {
        let path = Path::new("/etc/zk/server.jks");
        assert_eq!(StoreType::of(Some("pkcs12"), path), Ok(StoreType::Pkcs12));
        assert_eq!(StoreType::of(None, path), Ok(StoreType::Jks));
        assert_eq!(StoreType::of(Some(" "), Path::new("a.PFX")), Ok(StoreType::Pkcs12));
        assert_eq!(StoreType::of(None, Path::new("a.pem")), Ok(StoreType::Pem));
        assert!(StoreType::of(None, Path::new("a.store")).is_err());
        assert!(StoreType::of(Some("BCFKS"), path).is_err());
        assert!(StoreType::of(Some("JCEKS"), path).is_err());
    }

    #[test]
    fn an_encrypted_pem_key_is_found_and_decoded() {
        let text = b"junk\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAEC\nAw==\n\
                     -----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(encrypted_pem_key(text), Some(Ok(vec![0, 1, 2, 3])));
        assert_eq!(encrypted_pem_key(b"-----BEGIN PRIVATE KEY-----"), None);
        let unterminated = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAEC";
        assert!(matches!(encrypted_pem_key(unterminated), Some(Err(_))));
    }
}
