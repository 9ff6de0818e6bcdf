//! Authentication schemes and ACL checks, as ZooKeeper's auth providers do them.
//!
//! Schemes: `world` (only `anyone`), `digest` (`user:base64(sha1(user:password))`), `ip`
//! (an address with an optional prefix length) and `auth` (in an ACL: "whoever I am
//! authenticated as"). A `super` identity, gained by the super digest, passes every check.

use std::net::IpAddr;

use base64::Engine;
use jute::records::{Acl, ClientInfo, Id};
use jute::Code;
use sha1::Digest;

use crate::tree::java_hash_set::java_string_hash;

/// The identities a connection has authenticated as, in the order ZooKeeper's
/// `ServerCnxn.authInfo` (a `ConcurrentHashMap` key set) iterates them, so `whoAmI` and
/// `auth`-scheme ACLs come out in the same order as with ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthIds {
    ids: Vec<Id>,
    /// Whether every ACL lets these identities through: the server runs with
    /// `skipACL=yes`. Not an identity: `whoAmI` does not show it.
    acl_skipped: bool,
}

impl AuthIds {
    /// A new connection from `client_ip`, which is its first identity (`ip:<address>`).
    pub fn for_client(client_ip: IpAddr) -> AuthIds {
        let ids = vec![Id { scheme: "ip".into(), id: java_host_address(client_ip) }];
        AuthIds { ids, acl_skipped: false }
    }

    /// The server's own identity, for the requests it makes itself (session expiry,
    /// container reaping), which no ACL may stop.
    pub fn server() -> AuthIds {
        AuthIds { ids: vec![Id { scheme: "super".into(), id: String::new() }], acl_skipped: false }
    }

    /// Identities exactly as another member's [`AuthIds::ids`] listed them.
    pub fn from_ids(ids: Vec<Id>) -> AuthIds {
        AuthIds { ids, acl_skipped: false }
    }

    /// These identities, let through every ACL when `skip` (`skipACL=yes`), as
    /// ZooKeeper's `checkACL` returns at once then.
    #[must_use]
    pub fn skipping_acl(mut self, skip: bool) -> AuthIds {
        self.acl_skipped = skip;
        self
    }

    /// Adds an identity; a duplicate is ignored.
    pub fn add(&mut self, id: Id) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
            self.ids = java_hash_set_order(std::mem::take(&mut self.ids));
        }
    }

    /// The identities in iteration order.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    /// The schemes of the identities, in iteration order.
    pub fn schemes(&self) -> Vec<String> {
        self.ids.iter().map(|id| id.scheme.clone()).collect()
    }

    /// Whether this connection is the super user.
    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|id| id.scheme == "super")
    }

    /// The identities' user names joined by commas, as ZooKeeper's audit log names who
    /// sent a request (`AuthUtil.getUsers`); `None` if none has a name (the server's
    /// own `super`).
    pub fn user_names(&self) -> Option<String> {
        let names: Vec<String> = self
            .client_infos()
            .into_iter()
            .filter(|info| info.auth_scheme != "super" && !info.user.trim().is_empty())
            .map(|info| info.user)
            .collect();
        (!names.is_empty()).then(|| names.join(","))
    }

    /// What `whoAmI` reports: each identity's scheme and user name.
    pub fn client_infos(&self) -> Vec<ClientInfo> {
        self.ids
            .iter()
            .map(|id| {
                let user = match id.scheme.as_str() {
                    "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
                    _ => id.id.clone(),
                };
                ClientInfo { auth_scheme: id.scheme.clone(), user }
            })
            .collect()
    }
}

/// Orders ids as a `ConcurrentHashMap` key set iterates them: by bucket of the jute
/// `Id.hashCode`, then insertion order within a bucket.
fn java_hash_set_order(ids: Vec<Id>) -> Vec<Id> {
    let mut table_len = 16usize;
    while ids.len() >= table_len * 3 / 4 {
        table_len *= 2;
    }
    let bucket = |id: &Id| {
        let hash = 37i32
            .wrapping_mul(37i32.wrapping_mul(17).wrapping_add(java_string_hash(&id.scheme)))
            .wrapping_add(java_string_hash(&id.id));
        let spread = (hash ^ ((hash as u32) >> 16) as i32) & 0x7fff_ffff;
        spread as usize & (table_len - 1)
    };
    let mut indexed: Vec<(usize, usize, Id)> =
        ids.into_iter().enumerate().map(|(order, id)| (bucket(&id), order, id)).collect();
    indexed.sort_by_key(|(bucket, order, _)| (*bucket, *order));
    indexed.into_iter().map(|(_, _, id)| id).collect()
}

/// How Java's `InetAddress.getHostAddress` prints an address.
pub fn java_host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|segment| format!("{segment:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
    }
}

/// The hash of the digest scheme (`DigestAuthenticationProvider.digestAlg`), one of the
/// algorithms Java's `MessageDigest` offers ZooKeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestAlgorithm {
    /// SHA-1, ZooKeeper's default.
    #[default]
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA-512/224.
    Sha512Trunc224,
    /// SHA-512/256.
    Sha512Trunc256,
    /// SHA3-224.
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
    /// MD5.
    Md5,
}

impl DigestAlgorithm {
    /// The algorithm Java's `MessageDigest.getInstance` finds by `name` (in any case, with
    /// its aliases: `SHA` and `SHA1` for SHA-1, `SHA256` for SHA-256, ...); `None` for one
    /// it lacks, or for MD2, which zkrs does not offer.
    pub fn from_java_name(name: &str) -> Option<DigestAlgorithm> {
        use DigestAlgorithm::*;
        let algorithm = match name.to_ascii_uppercase().as_str() {
            "SHA" | "SHA1" | "SHA-1" => Sha1,
            "SHA224" | "SHA-224" => Sha224,
            "SHA256" | "SHA-256" => Sha256,
            "SHA384" | "SHA-384" => Sha384,
            "SHA512" | "SHA-512" => Sha512,
            "SHA512/224" | "SHA-512/224" => Sha512Trunc224,
            "SHA512/256" | "SHA-512/256" => Sha512Trunc256,
            "SHA3-224" => Sha3_224,
            "SHA3-256" => Sha3_256,
            "SHA3-384" => Sha3_384,
            "SHA3-512" => Sha3_512,
            "MD5" => Md5,
            _ => return None,
        };
        Some(algorithm)
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        use DigestAlgorithm::*;
        match self {
            Sha1 => sha1::Sha1::digest(data).to_vec(),
            Sha224 => sha2::Sha224::digest(data).to_vec(),
            Sha256 => sha2::Sha256::digest(data).to_vec(),
            Sha384 => sha2::Sha384::digest(data).to_vec(),
            Sha512 => sha2::Sha512::digest(data).to_vec(),
            Sha512Trunc224 => sha2::Sha512_224::digest(data).to_vec(),
            Sha512Trunc256 => sha2::Sha512_256::digest(data).to_vec(),
            Sha3_224 => sha3::Sha3_224::digest(data).to_vec(),
            Sha3_256 => sha3::Sha3_256::digest(data).to_vec(),
            Sha3_384 => sha3::Sha3_384::digest(data).to_vec(),
            Sha3_512 => sha3::Sha3_512::digest(data).to_vec(),
            Md5 => md5::Md5::digest(data).to_vec(),
        }
    }
}

/// ZooKeeper's digest authentication provider as configured: its hash, and the digest
/// that makes a connection the super user (`DigestAuthenticationProvider.superDigest`).
/// `None` where the provider is off (`DigestAuthenticationProvider.enabled=false`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestProvider {
    /// The hash of `user:password`.
    pub algorithm: DigestAlgorithm,
    /// `super:<digest>`, as `digest` computes it.
    pub super_digest: Option<String>,
}

/// `user:base64(hash(user:password))` for `user:password`.
pub fn digest(user_password: &str, algorithm: DigestAlgorithm) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = algorithm.hash(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// The identities an `addauth` packet grants, or `AuthFailed` for a scheme without a
/// provider (ZooKeeper then closes the connection): `digest` only while its provider
/// is on.
///
/// # Errors
/// [`Code::AuthFailed`] for unknown schemes.
pub fn authenticate(
    scheme: &str,
    auth: &[u8],
    client_ip: IpAddr,
    digests: Option<&DigestProvider>,
) -> Result<Vec<Id>, Code> {
    match (scheme, digests) {
        ("digest", Some(provider)) => {
            let digest = digest(&String::from_utf8_lossy(auth), provider.algorithm);
            let mut ids = Vec::new();
            if provider.super_digest.as_deref() == Some(digest.as_str()) {
                ids.push(Id { scheme: "super".into(), id: String::new() });
            }
            ids.push(Id { scheme: "digest".into(), id: digest });
            Ok(ids)
        }
        ("ip", _) => Ok(vec![Id { scheme: "ip".into(), id: java_host_address(client_ip) }]),
        _ => Err(Code::AuthFailed),
    }
}

/// The identities a verified client certificate grants (ZooKeeper's
/// `X509AuthenticationProvider`): `super:<subject>` first when the subject is
/// `X509AuthenticationProvider.superUser`, then `x509:<subject>`.
pub fn x509_ids(subject: String, super_user: Option<&str>) -> Vec<Id> {
    let mut ids = Vec::with_capacity(2);
    if super_user == Some(subject.as_str()) {
        ids.push(Id { scheme: "super".into(), id: subject.clone() });
    }
    ids.push(Id { scheme: "x509".into(), id: subject });
    ids
}

/// The identities a completed SASL exchange grants, in ZooKeeper's `processSasl` order
/// (which decides `whoAmI`'s when ids share a bucket): `sasl:<user>`, then `super` when
/// the user is `zookeeper.superUser`.
pub fn sasl_ids(user: String, super_user: Option<&str>) -> Vec<Id> {
    let is_super = super_user == Some(user.as_str());
    let mut ids = vec![Id { scheme: "sasl".into(), id: user }];
    if is_super {
        ids.push(Id { scheme: "super".into(), id: String::new() });
    }
    ids
}

fn parse_ip_expression(expression: &str) -> Option<(IpAddr, u32)> {
    let (address, bits) = match expression.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (expression, None),
    };
    let address: IpAddr = address.parse().ok()?;
    let max_bits = if address.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(bits) => bits.parse::<u32>().ok().filter(|bits| *bits <= max_bits)?,
        None => max_bits,
    };
    Some((address, bits))
}

fn ip_matches(client: &str, expression: &str) -> bool {
    let (Some((acl_address, bits)), Ok(client)) =
        (parse_ip_expression(expression), client.parse::<IpAddr>())
    else {
        return false;
    };
    let masked = |address: IpAddr| -> Option<u128> {
        let (value, width) = match address {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let mask = if bits == 0 { 0 } else { (!0u128 >> (128 - bits)) << (width - bits) };
        Some(value & mask)
    };
    acl_address.is_ipv4() == client.is_ipv4() && masked(acl_address) == masked(client)
}

/// Whether an ACL id is well formed for its scheme (the provider's `isValid`); a digest id
/// is valid only while the digest provider is on.
fn is_valid_id(id: &Id, digest_enabled: bool) -> bool {
    match id.scheme.as_str() {
        "digest" if digest_enabled => {
            // Java's split(":") drops trailing empty parts.
            let mut parts: Vec<&str> = id.id.split(':').collect();
            while parts.last() == Some(&"") {
                parts.pop();
            }
            parts.len() == 2
        }
        "ip" => parse_ip_expression(&id.id).is_some(),
        "x509" => is_distinguished_name(&id.id),
        "sasl" => !id.id.is_empty(),
        _ => false,
    }
}

/// Whether `name` reads as a distinguished name (`X500Principal`'s parse, in outline):
/// attribute `type=value` pairs joined by unescaped `,` or `+`.
fn is_distinguished_name(name: &str) -> bool {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in name.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                current.push(c);
            }
            '\\' => {
                escaped = true;
                current.push(c);
            }
            ',' | '+' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    !escaped
        && parts
            .iter()
            .all(|part| part.split_once('=').is_some_and(|(kind, _)| !kind.trim().is_empty()))
}

/// Checks and expands the ACL of a create or setACL (`PrepRequestProcessor.fixupACL`):
/// duplicates dropped, `auth` entries replaced by the requester's authenticated ids.
///
/// # Errors
/// [`Code::InvalidAcl`] for an empty list, a malformed id (a digest one while the digest
/// provider is off), or `auth` without an authenticated identity.
pub fn fixup_acl(acl: &[Acl], auth: &AuthIds, digest_enabled: bool) -> Result<Vec<Acl>, Code> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(Code::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        let id = &entry.id;
        if id.scheme == "world" && id.id == "anyone" {
            fixed.push(entry.clone());
        } else if id.scheme == "auth" {
            // The identities of providers that authenticate (ZooKeeper's
            // `isAuthenticated`): digest, x509 and sasl, not ip.
            let authenticated: Vec<&Id> = auth
                .ids()
                .iter()
                .filter(|id| matches!(id.scheme.as_str(), "digest" | "x509" | "sasl"))
                .collect();
            if authenticated.is_empty() {
                return Err(Code::InvalidAcl);
            }
            fixed.extend(
                authenticated.into_iter().map(|id| Acl { perms: entry.perms, id: id.clone() }),
            );
        } else if is_valid_id(id, digest_enabled) {
            fixed.push(entry.clone());
        } else {
            return Err(Code::InvalidAcl);
        }
    }
    Ok(fixed)
}

/// Whether `auth` may do `perm` on a node with `acl` (`ZooKeeperServer.checkACL`).
///
/// # Errors
/// [`Code::NoAuth`] if no entry grants the permission.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &AuthIds) -> Result<(), Code> {
    if acl.is_empty() || auth.is_super() || auth.acl_skipped {
        return Ok(());
    }
    for entry in acl.iter().filter(|entry| entry.perms & perm != 0) {
        let id = &entry.id;
        let granted = match id.scheme.as_str() {
            "world" => id.id == "anyone",
            "digest" => auth.ids().iter().any(|own| own.scheme == "digest" && own.id == id.id),
            "ip" => auth.ids().iter().any(|own| own.scheme == "ip" && ip_matches(&own.id, &id.id)),
            "x509" | "sasl" => {
                auth.ids().iter().any(|own| own.scheme == id.scheme && own.id == id.id)
            }
            _ => false,
        };
        if granted {
            return Ok(());
        }
    }
    Err(Code::NoAuth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl::perms;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl { perms, id: Id { scheme: scheme.into(), id: id.into() } }
    }

    fn localhost() -> AuthIds {
        AuthIds::for_client("127.0.0.1".parse().expect("ip"))
    }

    #[test]
    fn digest_matches_zookeeper() {
        // zkcli-expected.txt: digest:alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E= for alice:secret.
        assert_eq!(
            digest("alice:secret", DigestAlgorithm::Sha1),
            "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="
        );
        // The compat harness's super digest is super:test.
        assert_eq!(
            digest("super:test", DigestAlgorithm::Sha1),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn whoami_order_matches_zookeeper() {
        let mut auth = localhost();
        auth.add(Id { scheme: "digest".into(), id: digest("alice:secret", DigestAlgorithm::Sha1) });
        let infos: Vec<String> = auth
            .client_infos()
            .iter()
            .map(|info| format!("{}: {}", info.auth_scheme, info.user))
            .collect();
        assert_eq!(infos, ["digest: alice", "ip: 127.0.0.1"]);
    }

    #[test]
    fn an_x509_identity_matches_its_own_subject_and_counts_for_auth_acls() {
        let subject = "CN=client.test,OU=client,O=zkrs tests,C=US";
        let mut auth = localhost();
        auth.add(Id { scheme: "x509".into(), id: subject.into() });
        let own = [acl(perms::READ, "x509", subject)];
        assert_eq!(check_acl(&own, perms::READ, &auth), Ok(()));
        let other = [acl(perms::READ, "x509", "CN=other.test")];
        assert_eq!(check_acl(&other, perms::READ, &auth), Err(Code::NoAuth));
        let fixed = fixup_acl(&[acl(perms::ALL, "auth", "")], &auth, true).expect("x509 counts");
        assert_eq!(fixed, [acl(perms::ALL, "x509", subject)]);
        assert_eq!(fixup_acl(&own, &auth, true), Ok(own.to_vec()));
        for invalid in ["", "no equals sign", "CN=a,", "CN=a\\"] {
            assert_eq!(
                fixup_acl(&[acl(perms::READ, "x509", invalid)], &auth, true),
                Err(Code::InvalidAcl),
                "{invalid:?}"
            );
        }
        assert!(is_distinguished_name("CN=a\\,b+UID=7,O=x"));
    }

    #[test]
    fn super_digest_grants_super() {
        let ip = "10.0.0.1".parse().expect("ip");
        let super_digest = Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".to_owned());
        let provider = DigestProvider { algorithm: DigestAlgorithm::Sha1, super_digest };
        let ids = authenticate("digest", b"super:test", ip, Some(&provider)).expect("ok");
        assert_eq!(ids[0].scheme, "super");
        assert_eq!(authenticate("kerberos", b"x", ip, Some(&provider)), Err(Code::AuthFailed));
        // With the digest provider off, as ZooKeeper: no provider for the scheme.
        assert_eq!(authenticate("digest", b"super:test", ip, None), Err(Code::AuthFailed));
        assert!(authenticate("ip", b"", ip, None).is_ok());
    }

    #[test]
    fn every_digest_algorithm_hashes_as_javas_message_digest() {
        // Java 17's MessageDigest.getInstance(name).digest("bob:secret"), base64.
        let expected = [
            ("sha", "fyVmFCwVbTJYrznoSu1koqYEYF0="),
            ("SHA-224", "5/BxB7nGacUX3CA0wafV2XS7GbQ54deqor/oXg=="),
            ("SHA256", "huAluaVu3uER4LIpielGv9Qqk5x3YVDr6I2R/mXf2wE="),
            ("SHA-384", "sK3FknlHR28F5XDVFyv279SPFI+mcaciCe23ZtSFn7CeJGi9j80tCAbRDiVejZ6K"),
            ("SHA-512/224", "yTt2wxbXBJcyMOIehFa5UplgRq0T/nu9skYVcw=="),
            ("SHA512/256", "Og/IurIw/GdzbFYQ/Z98uLvNTACkWBakgqXV2r5V1Zw="),
            ("SHA3-224", "RWLJ9PCRZyjMaWsFPHvSpbY168zfDgTW8akZzQ=="),
            ("sha3-256", "ukO6WgYOvbjGYGRnCevsZ2T9tQ3ynirMDLl7Q45X6Rc="),
            ("SHA3-384", "lez47SW3dbfkQSe7psLgnTgaeQNC8V3Q/V4KUvBZqSyP5PYFdLx1bSgbREtiqWkT"),
            ("md5", "pasriMfeJxH/y5wk/opUWg=="),
        ];
        for (name, hash) in expected {
            let algorithm = DigestAlgorithm::from_java_name(name).expect(name);
            assert_eq!(digest("bob:secret", algorithm), format!("bob:{hash}"), "{name}");
        }
        let sha512 = DigestAlgorithm::from_java_name("SHA512").expect("SHA512");
        assert!(digest("bob:secret", sha512).starts_with("bob:MON49O1q1UU4gzHRH8XFfdstQyTR"));
        let sha3_512 = DigestAlgorithm::from_java_name("SHA3-512").expect("SHA3-512");
        assert!(digest("bob:secret", sha3_512).starts_with("bob:WISyoZv7veYA99eCjRXIryiJS6na"));
        for unknown in ["SHA3256", "SHA-2", "MD2", ""] {
            assert_eq!(DigestAlgorithm::from_java_name(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn acl_checks() {
        let mut auth = localhost();
        let alice = acl(
            perms::READ | perms::WRITE,
            "digest",
            &digest("alice:secret", DigestAlgorithm::Sha1),
        );
        assert_eq!(check_acl(std::slice::from_ref(&alice), perms::READ, &auth), Err(Code::NoAuth));
        auth.add(Id { scheme: "digest".into(), id: digest("alice:secret", DigestAlgorithm::Sha1) });
        assert_eq!(check_acl(std::slice::from_ref(&alice), perms::READ, &auth), Ok(()));
        assert_eq!(check_acl(&[alice], perms::ADMIN, &auth), Err(Code::NoAuth));
        assert_eq!(
            check_acl(&[acl(perms::ALL, "ip", "127.0.0.0/8")], perms::DELETE, &localhost()),
            Ok(())
        );
        assert_eq!(
            check_acl(&[acl(perms::ALL, "ip", "10.0.0.0/8")], perms::DELETE, &localhost()),
            Err(Code::NoAuth)
        );
        assert_eq!(check_acl(&[], perms::ADMIN, &localhost()), Ok(()));
    }

    #[test]
    fn fixup_expands_auth_and_rejects_bad_ids() {
        let mut auth = localhost();
        assert_eq!(fixup_acl(&[acl(perms::READ, "auth", "")], &auth, true), Err(Code::InvalidAcl));
        auth.add(Id { scheme: "digest".into(), id: "alice:x".into() });
        let fixed =
            fixup_acl(&[acl(perms::READ, "auth", ""), acl(perms::READ, "auth", "")], &auth, true)
                .expect("valid");
        assert_eq!(fixed, [acl(perms::READ, "digest", "alice:x")]);
        assert_eq!(fixup_acl(&[], &auth, true), Err(Code::InvalidAcl));
        assert_eq!(fixup_acl(&[acl(1, "digest", "nocolon")], &auth, true), Err(Code::InvalidAcl));
        assert_eq!(fixup_acl(&[acl(1, "world", "someone")], &auth, true), Err(Code::InvalidAcl));
        assert_eq!(fixup_acl(&[acl(1, "ip", "1.2.3.4/33")], &auth, true), Err(Code::InvalidAcl));
        assert!(fixup_acl(&[acl(1, "ip", "1.2.3.4/24")], &auth, true).is_ok());
        assert!(fixup_acl(&[acl(1, "digest", "a:b:")], &auth, true).is_ok());
        let off = fixup_acl(&[acl(1, "digest", "a:b")], &auth, false);
        assert_eq!(off, Err(Code::InvalidAcl), "no digest provider");
    }
}
