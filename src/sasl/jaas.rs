//! The JAAS login configuration ZooKeeper reads its SASL users from
//! (`java.security.auth.login.config`): sections of login modules with options,
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```
//!
//! Only what zkrs uses is kept: the `user_<name>="<password>"` options of the
//! `DigestLoginModule` in one section. Comments (`//`, `/* */`) are skipped as Java's
//! `ConfigFile` skips them.

use std::collections::BTreeMap;

/// ZooKeeper's DIGEST-MD5 login module.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// One login module entry of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The module's class name.
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// Its options, in order.
    pub options: Vec<(String, String)>,
}

/// Why a JAAS file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("JAAS configuration: {0}")]
pub struct JaasError(String);

/// The sections of a JAAS file, by name.
///
/// # Errors
/// [`JaasError`] for text that is not a JAAS configuration.
pub fn parse(text: &str) -> Result<BTreeMap<String, Vec<LoginModule>>, JaasError> {
    let tokens = tokenize(text)?;
    let mut tokens = tokens.into_iter().peekable();
    let mut sections = BTreeMap::new();
    while let Some(name) = tokens.next() {
        expect(&mut tokens, "{")?;
        let mut modules = Vec::new();
        loop {
            let class = tokens.next().ok_or_else(|| JaasError(format!("{name}: no closing }}")))?;
            if class == "}" {
                break;
            }
            let flag = tokens.next().ok_or_else(|| JaasError(format!("{class}: no flag")))?;
            let mut options = Vec::new();
            loop {
                let key = tokens.next().ok_or_else(|| JaasError(format!("{class}: no ;")))?;
                if key == ";" {
                    break;
                }
                expect(&mut tokens, "=")?;
                let value = tokens.next().ok_or_else(|| JaasError(format!("{key}: no value")))?;
                options.push((key, value));
            }
            modules.push(LoginModule { class, flag, options });
        }
        expect(&mut tokens, ";")?;
        sections.insert(name, modules);
    }
    Ok(sections)
}

/// Section `name`'s `DigestLoginModule`, if it has one.
pub fn digest_module<'a>(
    sections: &'a BTreeMap<String, Vec<LoginModule>>,
    name: &str,
) -> Option<&'a LoginModule> {
    sections.get(name)?.iter().find(|module| module.class == DIGEST_LOGIN_MODULE)
}

/// A login module's option `name`.
pub fn option<'a>(module: &'a LoginModule, name: &str) -> Option<&'a str> {
    module.options.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// The DIGEST-MD5 users (`user_<name>` options) of section `name`'s
/// `DigestLoginModule`, or `None` when the section has none.
pub fn digest_users(
    sections: &BTreeMap<String, Vec<LoginModule>>,
    name: &str,
) -> Option<BTreeMap<String, String>> {
    let users = digest_module(sections, name)?
        .options
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("user_")?.to_owned(), value.clone())))
        .collect();
    Some(users)
}

fn expect(
    tokens: &mut std::iter::Peekable<std::vec::IntoIter<String>>,
    wanted: &str,
) -> Result<(), JaasError> {
    match tokens.next() {
        Some(token) if token == wanted => Ok(()),
        Some(token) => Err(JaasError(format!("expected {wanted}, found {token}"))),
        None => Err(JaasError(format!("expected {wanted} at the end"))),
    }
}

/// Words, quoted strings (without their quotes) and the punctuation `{ } ; =`.
fn tokenize(text: &str) -> Result<Vec<String>, JaasError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '{' | '}' | ';' | '=' => tokens.push(c.to_string()),
            '"' => {
                let value = super::quoted(&mut chars)
                    .ok_or_else(|| JaasError("an unterminated quoted string".into()))?;
                tokens.push(value);
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                loop {
                    match chars.next() {
                        Some('/') if last == '*' => break,
                        Some(c) => last = c,
                        None => return Err(JaasError("an unterminated comment".into())),
                    }
                }
            }
            _ => {
                let mut word = c.to_string();
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "{};=\"".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        // The server's users.
        Server {
            org.apache.zookeeper.server.auth.DigestLoginModule required
            user_super="adminsecret"
            user_bob="bob;secret=\"quoted\"";
        };
        /* A client section, as zkCli reads it. */
        Client {
            org.apache.zookeeper.server.auth.DigestLoginModule required
            username="bob" password="bobsecret";
        };
    "#;

    #[test]
    fn reads_the_users_of_a_section() {
        let sections = parse(FILE).expect("a valid file");
        assert_eq!(sections.len(), 2);
        let users = digest_users(&sections, "Server").expect("users");
        assert_eq!(users.get("super").map(String::as_str), Some("adminsecret"));
        assert_eq!(users.get("bob").map(String::as_str), Some("bob;secret=\"quoted\""));
        assert_eq!(digest_users(&sections, "Client"), Some(BTreeMap::new()));
        assert_eq!(digest_users(&sections, "QuorumServer"), None);
    }

    #[test]
    fn malformed_files_are_errors() {
        for text in ["Server {", "Server { M required a=\"b\" }; ", "S { M r a=\"b;", "/* x"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
