//! SASL DIGEST-MD5 (RFC 2831) as ZooKeeper runs it, quality of protection `auth` only:
//! for clients (realm and server name `zk-sasl-md5`, protocol `zookeeper`) and between
//! members (`zk-quorum-sasl-md5`, `zookeeper-quorum`).
//!
//! The server takes two steps: an empty client token gets the challenge; the client's
//! digest response, checked against the user's password, gets `rspauth=...` and
//! completes the exchange with the user name as the identity. The client (a member
//! authenticating to another) answers the challenge and checks the `rspauth`. Anything
//! else fails the exchange.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

/// Whom an exchange authenticates to: ZooKeeper's server name (also the realm) and
/// protocol, which make the `digest-uri` a client must answer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The server name and realm.
    pub server_name: &'static str,
    /// The protocol.
    pub protocol: &'static str,
}

impl Service {
    /// Clients of the client port.
    pub const CLIENTS: Service = Service { server_name: "zk-sasl-md5", protocol: "zookeeper" };
    /// Members authenticating to each other (`quorum.auth.enableSasl`).
    pub const QUORUM: Service =
        Service { server_name: "zk-quorum-sasl-md5", protocol: "zookeeper-quorum" };

    fn digest_uri(self) -> String {
        format!("{}/{}", self.protocol, self.server_name)
    }
}

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

/// One connection's DIGEST-MD5 exchange, server side.
#[derive(Debug)]
pub struct DigestMd5Server {
    service: Service,
    nonce: String,
    challenged: bool,
    complete: bool,
}

impl DigestMd5Server {
    /// A new exchange for `service` whose challenge carries `nonce` (random, from the
    /// caller).
    pub fn new(service: Service, nonce: String) -> DigestMd5Server {
        DigestMd5Server { service, nonce, challenged: false, complete: false }
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
                "realm=\"{}\",nonce=\"{}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                self.service.server_name, self.nonce
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
        let uri = self.service.digest_uri();
        if field("digest-uri")? != &uri {
            return Err(DigestError(format!("the digest-uri is not {uri}")));
        }
        let realm = fields.get("realm").map_or("", String::as_str);
        let authzid = fields.get("authzid").map(String::as_str);
        let password = users
            .get(username.as_str())
            .ok_or_else(|| DigestError(format!("no user {username}")))?;
        let session = Session { username, realm, password, nonce: &self.nonce, cnonce, authzid };
        if !response.eq_ignore_ascii_case(&session.digest(&format!("AUTHENTICATE:{uri}"))) {
            return Err(DigestError("mismatched response: a wrong password".into()));
        }
        if authzid.is_some_and(|authzid| authzid != username) {
            return Err(DigestError(format!("{username} may not act as another user")));
        }
        self.complete = true;
        let token = format!("rspauth={}", session.digest(&format!(":{uri}"))).into_bytes();
        Ok(Step::Done { token, identity: username.clone() })
    }
}

/// What both ends of an exchange compute their digests from (`nc` is always 1).
struct Session<'a> {
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a str,
    cnonce: &'a str,
    authzid: Option<&'a str>,
}

impl Session<'_> {
    /// RFC 2831's response value for `a2` (`AUTHENTICATE:<uri>` from the client,
    /// `:<uri>` for the server's `rspauth`), with qop `auth`.
    fn digest(&self, a2: &str) -> String {
        let Session { username, realm, password, nonce, cnonce, authzid } = self;
        let secret = Md5::digest(format!("{username}:{realm}:{password}").as_bytes());
        let mut a1 = secret.to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        if let Some(authzid) = authzid {
            a1.extend_from_slice(format!(":{authzid}").as_bytes());
        }
        let ha1 = hex(&Md5::digest(&a1));
        let ha2 = hex(&Md5::digest(a2.as_bytes()));
        hex(&Md5::digest(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes()))
    }
}

/// One DIGEST-MD5 exchange, client side: a member authenticating to another as
/// `username` (the JAAS `QuorumLearner` section's).
#[derive(Debug)]
pub struct DigestMd5Client {
    service: Service,
    username: String,
    password: String,
    cnonce: String,
    /// The `rspauth` the server must send back, once the response is sent.
    expected: Option<String>,
}

impl DigestMd5Client {
    /// A new exchange for `service` whose response carries `cnonce` (random, from the
    /// caller).
    pub fn new(service: Service, username: &str, password: &str, cnonce: String) -> Self {
        DigestMd5Client {
            service,
            username: username.to_owned(),
            password: password.to_owned(),
            cnonce,
            expected: None,
        }
    }

    /// The response to the server's challenge.
    ///
    /// # Errors
    /// [`DigestError`] for a malformed challenge, or one that does not offer qop `auth`.
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, DigestError> {
        let text = std::str::from_utf8(challenge)
            .map_err(|_| DigestError("a challenge that is not UTF-8".into()))?;
        let fields = directives(text)?;
        let nonce =
            fields.get("nonce").ok_or_else(|| DigestError("the challenge has no nonce".into()))?;
        let offers_auth =
            fields.get("qop").is_none_or(|qop| qop.split(',').any(|qop| qop.trim() == "auth"));
        if !offers_auth {
            return Err(DigestError("the challenge does not offer qop auth".into()));
        }
        let realm = fields.get("realm").map_or(self.service.server_name, String::as_str);
        let uri = self.service.digest_uri();
        let session = Session {
            username: &self.username,
            realm,
            password: &self.password,
            nonce,
            cnonce: &self.cnonce,
            authzid: None,
        };
        let response = session.digest(&format!("AUTHENTICATE:{uri}"));
        self.expected = Some(format!("rspauth={}", session.digest(&format!(":{uri}"))));
        let charset = if fields.contains_key("charset") { "charset=utf-8," } else { "" };
        Ok(format!(
            "{charset}username=\"{}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"{}\",digest-uri=\"{uri}\",maxbuf=65536,response={response},qop=auth",
            self.username, self.cnonce
        )
        .into_bytes())
    }

    /// Checks the server's last token, its `rspauth`: proof that it knows the password.
    ///
    /// # Errors
    /// [`DigestError`] when it is not the one expected, or comes before the response.
    pub fn verify(&self, token: &[u8]) -> Result<(), DigestError> {
        match &self.expected {
            Some(expected) if expected.as_bytes() == token => Ok(()),
            Some(_) => Err(DigestError("the server's rspauth is wrong".into())),
            None => Err(DigestError("an rspauth before the response".into())),
        }
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
        let mut a1 = Md5::digest(format!("bob:zk-sasl-md5:{password}").as_bytes()).to_vec();
        a1.extend_from_slice(format!(":{nonce}:OA6MG9tEQGm2hh").as_bytes());
        let ha2 = md5_hex(b"AUTHENTICATE:zookeeper/zk-sasl-md5");
        let response = md5_hex(
            format!("{}:{nonce}:00000001:OA6MG9tEQGm2hh:auth:{ha2}", md5_hex(&a1)).as_bytes(),
        );
        format!(
            "charset=utf-8,username=\"bob\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"OA6MG9tEQGm2hh\",digest-uri=\"zookeeper/zk-sasl-md5\",maxbuf=65536,\
             response={response},qop=auth"
        )
    }

    #[test]
    fn the_right_password_completes_with_the_user_name() {
        let mut server = DigestMd5Server::new(Service::CLIENTS, "abc123".into());
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
            let mut server = DigestMd5Server::new(Service::CLIENTS, "abc123".into());
            server.step(b"", &users()).expect("challenge");
            assert!(server.step(attempt.as_bytes(), &users()).is_err(), "{attempt}");
        }
    }

    #[test]
    fn the_client_may_not_speak_first() {
        let mut server = DigestMd5Server::new(Service::CLIENTS, "n".into());
        assert!(server.step(b"username=\"bob\"", &users()).is_err());
    }

    #[test]
    fn a_member_authenticates_to_another_and_checks_its_rspauth() {
        let users = BTreeMap::from([("member".to_owned(), "quorumsecret".to_owned())]);
        let mut server = DigestMd5Server::new(Service::QUORUM, "n0nce".into());
        let mut client =
            DigestMd5Client::new(Service::QUORUM, "member", "quorumsecret", "c".into());
        let Ok(Step::Challenge(challenge)) = server.step(b"", &users) else {
            panic!("a challenge first");
        };
        let response = client.respond(&challenge).expect("a response");
        let text = String::from_utf8(response.clone()).expect("text");
        assert!(text.contains("digest-uri=\"zookeeper-quorum/zk-quorum-sasl-md5\""), "{text}");
        let Ok(Step::Done { token, identity }) = server.step(&response, &users) else {
            panic!("the exchange completes");
        };
        assert_eq!(identity, "member");
        assert_eq!(client.verify(&token), Ok(()));
        assert!(client.verify(b"rspauth=00000000000000000000000000000000").is_err());

        let mut wrong = DigestMd5Client::new(Service::QUORUM, "member", "guess", "c".into());
        let mut server = DigestMd5Server::new(Service::QUORUM, "n0nce".into());
        let Ok(Step::Challenge(challenge)) = server.step(b"", &users) else {
            panic!("a challenge first");
        };
        let response = wrong.respond(&challenge).expect("a response");
        assert!(server.step(&response, &users).is_err(), "a wrong password");
        let mut client_port = DigestMd5Server::new(Service::CLIENTS, "n0nce".into());
        client_port.step(b"", &users).expect("challenge");
        let mut member =
            DigestMd5Client::new(Service::QUORUM, "member", "quorumsecret", "c".into());
        let response = member.respond(&challenge).expect("a response");
        assert!(client_port.step(&response, &users).is_err(), "the quorum's digest-uri");
    }
}
