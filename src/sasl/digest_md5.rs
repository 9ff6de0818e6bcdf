//! The server side of SASL DIGEST-MD5 (RFC 2831) as ZooKeeper runs it: realm and server
//! name `zk-sasl-md5`, protocol `zookeeper`, quality of protection `auth` only.
//!
//! Two steps: an empty client token gets the challenge; the client's digest response,
//! checked against the user's password, gets `rspauth=...` and completes the exchange
//! with the user name as the identity. Anything else fails the exchange.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

/// ZooKeeper's realm and server name for DIGEST-MD5.
pub const REALM: &str = "zk-sasl-md5";

/// The `digest-uri` a client must answer for: `zookeeper/zk-sasl-md5`.
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// Where an exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The token to send the client; the exchange goes on.
    Challenge(Vec<u8>),
    /// The last token to send; the client is now `identity`.
    Done {
        /// The token to send.
        token: Vec<u8>,
        /// The authenticated user name.
        identity: String,
    },
}

/// Why an exchange failed; the connection is then closed with AUTHFAILED.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("DIGEST-MD5: {0}")]
pub struct DigestError(pub String);

/// One connection's DIGEST-MD5 exchange.
#[derive(Debug)]
pub struct DigestMd5Server {
    nonce: String,
    challenged: bool,
    complete: bool,
}

impl DigestMd5Server {
    /// A new exchange whose challenge carries `nonce` (random, from the caller).
    pub fn new(nonce: String) -> DigestMd5Server {
        DigestMd5Server { nonce, challenged: false, complete: false }
    }

    /// Takes the client's next token.
    ///
    /// # Errors
    /// [`DigestError`] for a token out of turn, a malformed response, an unknown user or
    /// a wrong password.
    pub fn step(
        &mut self,
        token: &[u8],
        users: &BTreeMap<String, String>,
    ) -> Result<Step, DigestError> {
        if self.complete {
            return Err(DigestError("the exchange is already complete".into()));
        }
        if !self.challenged {
            if !token.is_empty() {
                return Err(DigestError("a client speaks first".into()));
            }
            self.challenged = true;
            let challenge = format!(
                "realm=\"{REALM}\",nonce=\"{}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                self.nonce
            );
            return Ok(Step::Challenge(challenge.into_bytes()));
        }
        let text = std::str::from_utf8(token)
            .map_err(|_| DigestError("a response that is not UTF-8".into()))?;
        let fields = directives(text)?;
        let field = |name: &str| {
            fields.get(name).ok_or_else(|| DigestError(format!("the response has no {name}")))
        };
        let username = field("username")?;
        let cnonce = field("cnonce")?;
        let nc = field("nc")?;
        let response = field("response")?;
        let qop = fields.get("qop").map_or("auth", String::as_str);
        if qop != "auth" {
            return Err(DigestError(format!("quality of protection {qop} is not offered")));
        }
        if field("nonce")? != &self.nonce {
            return Err(DigestError("the nonce is not the one given".into()));
        }
        if nc != "00000001" {
            return Err(DigestError(format!("nonce count {nc}")));
        }
        if field("digest-uri")? != DIGEST_URI {
            return Err(DigestError("the digest-uri is not zookeeper/zk-sasl-md5".into()));
        }
        let realm = fields.get("realm").map_or("", String::as_str);
        let authzid = fields.get("authzid").map(String::as_str);
        let password = users
            .get(username.as_str())
            .ok_or_else(|| DigestError(format!("no user {username}")))?;
        let ha1 = {
            let secret = Md5::digest(format!("{username}:{realm}:{password}").as_bytes());
            let mut a1 = secret.to_vec();
            a1.extend_from_slice(format!(":{}:{cnonce}", self.nonce).as_bytes());
            if let Some(authzid) = authzid {
                a1.extend_from_slice(format!(":{authzid}").as_bytes());
            }
            hex(&Md5::digest(&a1))
        };
        let digest = |a2: &str| {
            let ha2 = hex(&Md5::digest(a2.as_bytes()));
            let nonce = &self.nonce;
            hex(&Md5::digest(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes()))
        };
        if !response.eq_ignore_ascii_case(&digest(&format!("AUTHENTICATE:{DIGEST_URI}"))) {
            return Err(DigestError("mismatched response: a wrong password".into()));
        }
        if authzid.is_some_and(|authzid| authzid != username) {
            return Err(DigestError(format!("{username} may not act as another user")));
        }
        self.complete = true;
        let token = format!("rspauth={}", digest(&format!(":{DIGEST_URI}"))).into_bytes();
        Ok(Step::Done { token, identity: username.clone() })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `name=value` pairs separated by commas, values optionally quoted with `\` escapes.
fn directives(text: &str) -> Result<BTreeMap<String, String>, DigestError> {
    let mut fields = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(fields);
        }
        let mut name = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            name.push(c);
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            value = super::quoted(&mut chars)
                .ok_or_else(|| DigestError("an unterminated quoted value".into()))?;
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || fields.insert(name.clone(), value.trim().to_owned()).is_some() {
            return Err(DigestError(format!("a malformed or repeated directive {name:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        BTreeMap::from([("bob".to_owned(), "bobsecret".to_owned())])
    }

    /// A client's response, computed independently of the server code above.
    fn client_response(password: &str, nonce: &str) -> String {
        let md5_hex = |data: &[u8]| hex(&Md5::digest(data));
        let mut a1 = Md5::digest(format!("bob:{REALM}:{password}").as_bytes()).to_vec();
        a1.extend_from_slice(format!(":{nonce}:OA6MG9tEQGm2hh").as_bytes());
        let ha2 = md5_hex(b"AUTHENTICATE:zookeeper/zk-sasl-md5");
        let response = md5_hex(
            format!("{}:{nonce}:00000001:OA6MG9tEQGm2hh:auth:{ha2}", md5_hex(&a1)).as_bytes(),
        );
        format!(
            "charset=utf-8,username=\"bob\",realm=\"{REALM}\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"OA6MG9tEQGm2hh\",digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
             response={response},qop=auth"
        )
    }

    #[test]
    fn the_right_password_completes_with_the_user_name() {
        let mut server = DigestMd5Server::new("abc123".into());
        let Ok(Step::Challenge(challenge)) = server.step(b"", &users()) else {
            panic!("a challenge first");
        };
        let challenge = String::from_utf8(challenge).expect("text");
        assert!(
            challenge.contains("nonce=\"abc123\"") && challenge.contains("realm=\"zk-sasl-md5\"")
        );
        let response = client_response("bobsecret", "abc123");
        match server.step(response.as_bytes(), &users()) {
            Ok(Step::Done { token, identity }) => {
                assert_eq!(identity, "bob");
                assert!(token.starts_with(b"rspauth=") && token.len() == 8 + 32);
            }
            other => panic!("expected completion, got {other:?}"),
        }
        assert!(server.step(b"", &users()).is_err(), "nothing after completion");
    }

    #[test]
    fn a_wrong_password_an_unknown_user_or_a_replayed_nonce_fail() {
        let attempts = [
            client_response("wrong", "abc123"),
            client_response("bobsecret", "abc123").replace("\"bob\"", "\"eve\""),
            client_response("bobsecret", "other"),
            client_response("bobsecret", "abc123").replace("qop=auth", "qop=auth-conf"),
            client_response("bobsecret", "abc123").replace("nc=00000001", "nc=00000002"),
            "username=\"bob".to_owned(),
        ];
        for attempt in attempts {
            let mut server = DigestMd5Server::new("abc123".into());
            server.step(b"", &users()).expect("challenge");
            assert!(server.step(attempt.as_bytes(), &users()).is_err(), "{attempt}");
        }
    }

    #[test]
    fn the_client_may_not_speak_first() {
        let mut server = DigestMd5Server::new("n".into());
        assert!(server.step(b"username=\"bob\"", &users()).is_err());
    }
}
