//! SASL between members (`quorum.auth.*`), read as ZooKeeper's `QuorumPeerConfig` reads
//! it: `enableSasl` turns it on, `learnerRequireSasl` has this member authenticate when
//! it connects to another, `serverRequireSasl` has it refuse a member that does not. The
//! credentials come from the JAAS file (`java.security.auth.login.config`): the users of
//! its `QuorumServer` section and the name and password of its `QuorumLearner` section,
//! both with ZooKeeper's `DigestLoginModule` (GSSAPI is not supported).

use std::collections::BTreeMap;

use super::properties::Reader;
use super::ConfigError;
use crate::sasl::jaas::{self, DIGEST_LOGIN_MODULE};

/// How members authenticate to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSasl {
    /// This member authenticates when it connects to another
    /// (`quorum.auth.learnerRequireSasl`).
    pub learner_required: bool,
    /// This member refuses another that does not authenticate, or fails to
    /// (`quorum.auth.serverRequireSasl`); without it a failure is logged and the
    /// connection kept, as ZooKeeper keeps it.
    pub server_required: bool,
    /// Who may authenticate to this member: the `QuorumServer` section's users.
    pub users: BTreeMap<String, String>,
    /// Whom this member authenticates as: the `QuorumLearner` section's user and
    /// password.
    pub learner: (String, String),
}

/// The settings, or `None` without `quorum.auth.enableSasl`.
///
/// # Errors
/// [`ConfigError`] for the combinations ZooKeeper refuses, a JAAS file that cannot be
/// read, or sections without DIGEST-MD5 credentials.
pub fn read_quorum_sasl(read: &mut Reader<'_>) -> Result<Option<QuorumSasl>, ConfigError> {
    let enabled = read.flag("quorum.auth.enableSasl", false)?;
    let server_required = read.flag("quorum.auth.serverRequireSasl", false)?;
    let learner_required = read.flag("quorum.auth.learnerRequireSasl", false)?;
    let refuse = |message: &str| Err(ConfigError::Inconsistent(message.to_owned()));
    if !enabled && server_required {
        return refuse(
            "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
        );
    }
    if !enabled && learner_required {
        return refuse(
            "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl",
        );
    }
    if !learner_required && server_required {
        return refuse(
            "quorum.auth.learnerRequireSasl is disabled, so cannot enable \
             quorum.auth.serverRequireSasl",
        );
    }
    if !enabled {
        return Ok(None);
    }
    let key = "java.security.auth.login.config";
    let Some(path) = read.text(key) else {
        return Err(ConfigError::Inconsistent(format!(
            "quorum.auth.enableSasl needs {key}, a JAAS file with QuorumServer and \
             QuorumLearner sections"
        )));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let sections =
        jaas::parse(&text).map_err(|err| ConfigError::invalid(key, path, err.to_string()))?;
    let section_name = |key: &str, default: &str| read.text(key).unwrap_or(default).to_owned();
    let server_section = section_name("quorum.auth.server.saslLoginContext", "QuorumServer");
    let learner_section = section_name("quorum.auth.learner.saslLoginContext", "QuorumLearner");
    let missing = |section: &str| {
        ConfigError::invalid(
            key,
            path,
            format!("its {section} section has no {DIGEST_LOGIN_MODULE} (GSSAPI is not supported)"),
        )
    };
    let users =
        jaas::digest_users(&sections, &server_section).ok_or_else(|| missing(&server_section))?;
    let learner = jaas::digest_module(&sections, &learner_section)
        .and_then(|module| {
            let username = jaas::option(module, "username")?;
            Some((username.to_owned(), jaas::option(module, "password")?.to_owned()))
        })
        .ok_or_else(|| missing(&learner_section))?;
    Ok(Some(QuorumSasl { learner_required, server_required, users, learner }))
}
