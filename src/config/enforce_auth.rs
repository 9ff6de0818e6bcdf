//! Which authentication a client must have before its requests are served
//! (`enforce.auth.enabled` with `enforce.auth.schemes`, or `sessionRequireClientSASLAuth`),
//! read and checked as ZooKeeper's `AuthenticationHelper` does at start-up.

use std::collections::BTreeSet;

use super::keys;
use super::properties::{Properties, Reader};
use super::ConfigError;

/// The schemes of ZooKeeper's built-in providers, by the class `authProvider.N` names.
const PROVIDER_SCHEMES: [(&str, &str); 4] = [
    ("org.apache.zookeeper.server.auth.DigestAuthenticationProvider", "digest"),
    ("org.apache.zookeeper.server.auth.IPAuthenticationProvider", "ip"),
    ("org.apache.zookeeper.server.auth.X509AuthenticationProvider", "x509"),
    ("org.apache.zookeeper.server.auth.SASLAuthenticationProvider", "sasl"),
];

/// The schemes the `authProvider.N` keys add to ZooKeeper's `ProviderRegistry`, which
/// has `ip` and (unless it is off) `digest` without them.
pub fn configured_schemes(properties: &Properties) -> BTreeSet<&'static str> {
    let mut schemes = BTreeSet::new();
    for (name, value) in properties.iter() {
        if keys::lookup(name).is_some_and(|entry| entry.name == "authProvider.*") {
            let class = value.trim();
            let provided = PROVIDER_SCHEMES.iter().find(|(known, _)| *known == class);
            schemes.extend(provided.map(|(_, scheme)| *scheme));
        }
    }
    schemes
}

/// The schemes a connection must have authenticated with (any one of them) before a
/// request other than `auth` or SASL is served; `None` when nothing is enforced.
/// `sessionRequireClientSASLAuth=true` means `sasl`, whatever `enforce.auth.*` say.
///
/// # Errors
/// Enforcement on with no scheme, or a scheme no provider serves (`digest` while
/// `digest_enabled` is false), with ZooKeeper's
/// messages; a flag that is not a boolean.
pub fn read_enforced_auth(
    read: &mut Reader<'_>,
    properties: &Properties,
    digest_enabled: bool,
) -> Result<Option<Vec<String>>, ConfigError> {
    let schemes = if read.flag("sessionRequireClientSASLAuth", false)? {
        vec!["sasl".to_owned()]
    } else if read.flag("enforce.auth.enabled", false)? {
        let listed = read.text("enforce.auth.schemes");
        listed.map_or_else(Vec::new, |text| text.split(',').map(|s| s.trim().to_owned()).collect())
    } else {
        return Ok(None);
    };
    if schemes.is_empty() {
        return Err(ConfigError::Inconsistent(
            "zookeeper.enforce.auth.enabled is true zookeeper.enforce.auth.schemes must be \
             configured."
                .into(),
        ));
    }
    let mut provided = configured_schemes(properties);
    provided.insert("ip");
    if digest_enabled {
        provided.insert("digest");
    }
    if let Some(missing) = schemes.iter().find(|scheme| !provided.contains(scheme.as_str())) {
        return Err(ConfigError::Inconsistent(format!(
            "Authentication scheme {missing} is not available."
        )));
    }
    Ok(Some(schemes))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn enforced(lines: &str) -> Result<Option<Vec<String>>, String> {
        Config::parse(&format!("dataDir=/d\nclientPort=2181\n{lines}"))
            .map(|config| config.enforced_auth_schemes)
            .map_err(|err| err.to_string())
    }

    const SASL: &str =
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
                        java.security.auth.login.config=/nonexistent/jaas.conf\n";

    #[test]
    fn schemes_are_enforced_only_when_enabled() {
        assert_eq!(enforced(""), Ok(None));
        assert_eq!(enforced("enforce.auth.schemes=digest\n"), Ok(None));
        let both = enforced("enforce.auth.enabled=TRUE\nenforce.auth.schemes= digest , ip\n");
        assert_eq!(both, Ok(Some(vec!["digest".to_owned(), "ip".to_owned()])));
        let prefixed = "zookeeper.enforce.auth.enabled=true\nzookeeper.enforce.auth.schemes=ip\n";
        assert_eq!(enforced(prefixed), Ok(Some(vec!["ip".to_owned()])));
    }

    #[test]
    fn a_scheme_needs_a_provider_and_enforcement_needs_a_scheme() {
        let none = enforced("enforce.auth.enabled=true\n").expect_err("no scheme");
        assert!(none.contains("zookeeper.enforce.auth.schemes must be"), "{none}");
        let x509 = enforced("enforce.auth.enabled=true\nenforce.auth.schemes=x509\n");
        assert!(x509.expect_err("no x509 provider").contains("scheme x509 is not available"));
        let provided =
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n\
                        enforce.auth.enabled=true\nenforce.auth.schemes=x509\n";
        assert_eq!(enforced(provided), Ok(Some(vec!["x509".to_owned()])));
        let off = "DigestAuthenticationProvider.enabled=false\n\
                   enforce.auth.enabled=true\nenforce.auth.schemes=digest\n";
        let digest = enforced(off).expect_err("the digest provider is off");
        assert!(digest.contains("scheme digest is not available"), "{digest}");
        let sasl = enforced("sessionRequireClientSASLAuth=true\n").expect_err("no provider");
        assert!(sasl.contains("scheme sasl is not available"), "{sasl}");
        // With the provider, the JAAS file is read next, so the error is its absence.
        let with_provider = enforced(&format!("{SASL}sessionRequireClientSASLAuth=true\n"));
        assert!(with_provider.expect_err("no JAAS file").contains("jaas.conf"));
    }
}
