//! Java's own key store format (JKS), which `keytool -storetype JKS` writes and older
//! ZooKeeper deployments keep their keys in.
//!
//! The file is big-endian: the magic `FEEDFEED`, version 2, an entry count, the entries,
//! then a SHA-1 over the password (UTF-16BE), the text "Mighty Aphrodite" and everything
//! before it. A private key entry holds a PKCS#8 key wrapped by Sun's `KeyProtector`
//! (a SHA-1 keystream XORed over the key, a SHA-1 check after it) and its certificate
//! chain; a trusted certificate entry holds one certificate. Every length is checked
//! against what is left before anything is allocated.

use sha1::{Digest, Sha1};

/// The first four bytes of a JKS file.
pub const MAGIC: [u8; 4] = [0xfe, 0xed, 0xfe, 0xed];

/// The OID of Sun's key protection algorithm, DER-encoded (1.3.6.1.4.1.42.2.17.1.1).
const KEY_PROTECTOR_OID: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

/// Why a JKS file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JksError {
    /// Not a JKS file.
    #[error("not a JKS key store (magic {0:02x?})")]
    NotJks([u8; 4]),
    /// A version this reader does not know.
    #[error("JKS version {0} is not supported")]
    Version(u32),
    /// The file ends early or a length runs past its end.
    #[error("the key store is truncated")]
    Truncated,
    /// The integrity check failed: a wrong password, or a damaged file.
    #[error("the key store password is wrong or the file is damaged")]
    Integrity,
    /// A private key is protected by something other than Sun's key protector.
    #[error("a private key is protected by an unsupported algorithm")]
    KeyAlgorithm,
    /// A private key's own check failed: it has a password of its own.
    #[error("a private key's password differs from the store's")]
    KeyPassword,
    /// An entry of a kind this reader does not know (JCEKS secret keys).
    #[error("entry kind {0} is not supported")]
    EntryKind(u32),
    /// A certificate that is not X.509.
    #[error("certificate type {0} is not supported")]
    CertificateType(String),
}

/// One entry of a key store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A private key (PKCS#8 DER) and its chain (DER, the key's own certificate first).
    PrivateKey {
        /// The alias keytool gave it.
        alias: String,
        /// The decrypted key, PKCS#8 DER.
        key: Vec<u8>,
        /// The certificate chain, DER.
        chain: Vec<Vec<u8>>,
    },
    /// A trusted certificate (DER).
    Trusted {
        /// The alias keytool gave it.
        alias: String,
        /// The certificate, DER.
        certificate: Vec<u8>,
    },
}

/// Reads a JKS file, checking its integrity with `password` and decrypting its keys
/// with the same password, as ZooKeeper's `JKSFileLoader` does.
///
/// # Errors
/// [`JksError`] for anything but a well-formed store whose password is `password`.
pub fn read(bytes: &[u8], password: &str) -> Result<Vec<Entry>, JksError> {
    let password = utf16_be(password);
    let body_len = bytes.len().checked_sub(20).ok_or(JksError::Truncated)?;
    let (body, digest) = bytes.split_at(body_len);
    let mut input = Input { bytes: body };
    let magic = input.array::<4>()?;
    if magic != MAGIC {
        return Err(JksError::NotJks(magic));
    }
    let version = input.u32()?;
    if version != 2 {
        return Err(JksError::Version(version));
    }
    let expected = Sha1::new()
        .chain_update(&password)
        .chain_update(b"Mighty Aphrodite")
        .chain_update(body)
        .finalize();
    if expected.as_slice() != digest {
        return Err(JksError::Integrity);
    }
    let count = input.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        entries.push(read_entry(&mut input, &password)?);
    }
    Ok(entries)
}

fn read_entry(input: &mut Input<'_>, password: &[u8]) -> Result<Entry, JksError> {
    let kind = input.u32()?;
    let alias = input.text()?;
    let _created_ms = input.array::<8>()?;
    match kind {
        1 => {
            let protected = input.block()?;
            let key = unprotect(protected, password)?;
            let count = input.u32()?;
            let mut chain = Vec::new();
            for _ in 0..count {
                chain.push(input.certificate()?);
            }
            Ok(Entry::PrivateKey { alias, key, chain })
        }
        2 => Ok(Entry::Trusted { alias, certificate: input.certificate()? }),
        other => Err(JksError::EntryKind(other)),
    }
}

/// Undoes Sun's `KeyProtector`: the DER `EncryptedPrivateKeyInfo` holds a 20-byte salt,
/// the key XORed with SHA-1 blocks chained from the salt, and SHA-1(password, key).
fn unprotect(der: &[u8], password: &[u8]) -> Result<Vec<u8>, JksError> {
    let (algorithm, encrypted) = split_encrypted_key_info(der).ok_or(JksError::KeyAlgorithm)?;
    if algorithm != KEY_PROTECTOR_OID {
        return Err(JksError::KeyAlgorithm);
    }
    let key_len = encrypted.len().checked_sub(40).ok_or(JksError::Truncated)?;
    let (salt, rest) = encrypted.split_at(20);
    let (cipher, check) = rest.split_at(key_len);
    let mut key = Vec::with_capacity(key_len);
    let mut block: [u8; 20] = salt.try_into().map_err(|_| JksError::Truncated)?;
    for chunk in cipher.chunks(20) {
        block = Sha1::new().chain_update(password).chain_update(block).finalize().into();
        key.extend(chunk.iter().zip(block).map(|(byte, pad)| byte ^ pad));
    }
    let digest = Sha1::new().chain_update(password).chain_update(&key).finalize();
    if digest.as_slice() != check {
        return Err(JksError::KeyPassword);
    }
    Ok(key)
}

/// The algorithm OID and the encrypted bytes of a DER `EncryptedPrivateKeyInfo`:
/// `SEQUENCE { SEQUENCE { OID, [NULL] }, OCTET STRING }`.
fn split_encrypted_key_info(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (outer, _) = der_element(der, 0x30)?;
    let (algorithm, rest) = der_element(outer, 0x30)?;
    let (oid, _) = der_element(algorithm, 0x06)?;
    let (encrypted, _) = der_element(rest, 0x04)?;
    Some((oid, encrypted))
}

/// The content of the DER element with `tag` at the start of `der`, and what follows it.
fn der_element(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = der.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, mut rest) = rest.split_first()?;
    let len = if len_byte < 0x80 {
        usize::from(len_byte)
    } else {
        let count = usize::from(len_byte & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, after) = rest.split_at(count);
        rest = after;
        len_bytes.iter().fold(0usize, |len, byte| (len << 8) | usize::from(*byte))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Java's `char[]` password as the bytes JKS hashes: UTF-16, big-endian.
fn utf16_be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// A cursor over the store's bytes.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], JksError> {
        if self.bytes.len() < len {
            return Err(JksError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], JksError> {
        self.take(N)?.try_into().map_err(|_| JksError::Truncated)
    }

    fn u32(&mut self) -> Result<u32, JksError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A `DataOutput.writeUTF` string: a 16-bit length, then modified UTF-8, which for
    /// aliases and type names is plain UTF-8.
    fn text(&mut self) -> Result<String, JksError> {
        let len = usize::from(u16::from_be_bytes(self.array()?));
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    /// A 32-bit length, then that many bytes.
    fn block(&mut self) -> Result<&'a [u8], JksError> {
        let len = usize::try_from(self.u32()?).map_err(|_| JksError::Truncated)?;
        self.take(len)
    }

    fn certificate(&mut self) -> Result<Vec<u8>, JksError> {
        let kind = self.text()?;
        if kind != "X.509" {
            return Err(JksError::CertificateType(kind));
        }
        Ok(self.block()?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store built the way keytool builds one, around a made-up key and certificate.
    fn store(password: &str, key_password: &str) -> Vec<u8> {
        let key = b"a PKCS#8 key, 27 bytes long".to_vec();
        let salt = [7u8; 20];
        let key_password_bytes = utf16_be(key_password);
        let mut cipher = Vec::new();
        let mut block = salt;
        for chunk in key.chunks(20) {
            block =
                Sha1::new().chain_update(&key_password_bytes).chain_update(block).finalize().into();
            cipher.extend(chunk.iter().zip(block).map(|(byte, pad)| byte ^ pad));
        }
        let check = Sha1::new().chain_update(&key_password_bytes).chain_update(&key).finalize();
        let mut encrypted = salt.to_vec();
        encrypted.extend(&cipher);
        encrypted.extend(check.as_slice());
        let mut algorithm = vec![0x06, KEY_PROTECTOR_OID.len() as u8];
        algorithm.extend(KEY_PROTECTOR_OID);
        algorithm.extend([0x05, 0x00]);
        let mut info = vec![0x30, algorithm.len() as u8];
        info.extend(&algorithm);
        info.extend([0x04, encrypted.len() as u8]);
        info.extend(&encrypted);
        let mut der = vec![0x30, info.len() as u8];
        der.extend(&info);

        let mut body = MAGIC.to_vec();
        body.extend(2u32.to_be_bytes());
        body.extend(2u32.to_be_bytes());
        body.extend(1u32.to_be_bytes());
        body.extend(text("server"));
        body.extend([0u8; 8]);
        body.extend((der.len() as u32).to_be_bytes());
        body.extend(&der);
        body.extend(1u32.to_be_bytes());
        body.extend(text("X.509"));
        body.extend(4u32.to_be_bytes());
        body.extend(b"cert");
        body.extend(2u32.to_be_bytes());
        body.extend(text("ca"));
        body.extend([0u8; 8]);
        body.extend(text("X.509"));
        body.extend(2u32.to_be_bytes());
        body.extend(b"ca");
        let digest = Sha1::new()
            .chain_update(utf16_be(password))
            .chain_update(b"Mighty Aphrodite")
            .chain_update(&body)
            .finalize();
        body.extend(digest.as_slice());
        body
    }

    fn text(value: &str) -> Vec<u8> {
        let mut bytes = (value.len() as u16).to_be_bytes().to_vec();
        bytes.extend(value.as_bytes());
        bytes
    }

    #[test]
    fn reads_a_key_with_its_chain_and_a_trusted_certificate() {
        let entries = read(&store("secret", "secret"), "secret").expect("a valid store");
        assert_eq!(
            entries,
            vec![
                Entry::PrivateKey {
                    alias: "server".into(),
                    key: b"a PKCS#8 key, 27 bytes long".to_vec(),
                    chain: vec![b"cert".to_vec()],
                },
                Entry::Trusted { alias: "ca".into(), certificate: b"ca".to_vec() },
            ]
        );
    }

    #[test]
    fn a_wrong_password_fails_the_integrity_check() {
        assert_eq!(read(&store("secret", "secret"), "guess"), Err(JksError::Integrity));
    }

    #[test]
    fn a_key_with_a_password_of_its_own_is_refused() {
        assert_eq!(read(&store("secret", "other"), "secret"), Err(JksError::KeyPassword));
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let bytes = store("secret", "secret");
        for len in 0..bytes.len() {
            assert!(read(&bytes[..len], "secret").is_err(), "length {len}");
        }
    }

    #[test]
    fn other_formats_are_named_as_such() {
        let mut bytes = vec![0x30, 0x82, 0x01, 0x00];
        bytes.extend([0u8; 40]);
        assert_eq!(read(&bytes, "x"), Err(JksError::NotJks([0x30, 0x82, 0x01, 0x00])));
    }
}
