//! SASL between members (`quorum.auth.*`), at the start of every election and quorum
//! connection, as ZooKeeper's `SaslQuorumAuthLearner` and `SaslQuorumAuthServer` run it:
//! the member that dialled authenticates (under `learnerRequireSasl`) with DIGEST-MD5 as
//! its `QuorumLearner` user, in `QuorumAuthPacket`s; the member dialled checks it against
//! its `QuorumServer` users, and refuses one that does not authenticate, or fails to,
//! only under `serverRequireSasl` (otherwise it logs the failure and goes on).
//!
//! Both take the bytes already read from the connection in `buf` and leave there what was
//! read past the exchange, which belongs to the packets after it.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::quorum_sasl::QuorumSasl;
use crate::ensemble::zookeeper::quorum_auth::{AuthPacket, Status};
use crate::sasl::{self, DigestMd5Client, Service, Step};
use crate::tls::stream::Transport;

/// Challenges a member may take before ZooKeeper's server gives up on it.
const CHALLENGES_MAX: usize = 5;

fn failed(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, reason.into())
}

/// This member authenticating to the member it dialled, if `learnerRequireSasl` says so.
///
/// # Errors
/// When the other member refuses it, or proves not to know the password itself.
pub async fn as_learner(
    stream: &mut Transport,
    sasl: &QuorumSasl,
    buf: &mut BytesMut,
) -> io::Result<()> {
    if !sasl.learner_required {
        return Ok(());
    }
    let (username, password) = &sasl.learner;
    let cnonce = sasl::random_nonce().map_err(|err| failed(err.to_string()))?;
    let mut client = DigestMd5Client::new(Service::QUORUM, username, password, cnonce);
    send(stream, Status::InProgress, Some(Bytes::new())).await?;
    loop {
        let packet = receive(stream, buf).await?;
        let token = packet.token.unwrap_or_default();
        match packet.status {
            Status::InProgress => {
                let response = client.respond(&token).map_err(|err| failed(err.to_string()))?;
                send(stream, Status::InProgress, Some(Bytes::from(response))).await?;
            }
            Status::Success => {
                return client.verify(&token).map_err(|err| failed(err.to_string()));
            }
            Status::Error => return Err(failed("the member refused this one's SASL credentials")),
        }
    }
}

/// This member authenticating a member that dialled it. `Ok` when the member
/// authenticated, or did not need to.
///
/// # Errors
/// Under `serverRequireSasl`, a member that does not authenticate or fails to.
pub async fn as_server(
    stream: &mut Transport,
    sasl: &QuorumSasl,
    buf: &mut BytesMut,
) -> io::Result<()> {
    let authenticates = loop {
        if let Some(starts) = AuthPacket::starts(buf) {
            break starts;
        }
        if stream.read_buf(buf).await? == 0 {
            break false;
        }
    };
    if !authenticates {
        return if sasl.server_required {
            Err(failed("the member did not authenticate and quorum.auth.serverRequireSasl is set"))
        } else {
            Ok(())
        };
    }
    match exchange(stream, sasl, buf).await {
        Ok(identity) => {
            tracing::info!(user = %identity, "a member authenticated with SASL");
            Ok(())
        }
        Err(err) if sasl.server_required => Err(err),
        Err(err) => {
            tracing::warn!(cause = %err, "a member failed SASL; keeping its connection, as \
                           quorum.auth.serverRequireSasl is not set");
            Ok(())
        }
    }
}

/// The server's side of one exchange: the user the member proved to be.
async fn exchange(
    stream: &mut Transport,
    sasl: &QuorumSasl,
    buf: &mut BytesMut,
) -> io::Result<String> {
    let mut server = sasl::new_exchange(Service::QUORUM).map_err(|err| failed(err.to_string()))?;
    for _ in 0..=CHALLENGES_MAX {
        let token = receive(stream, buf).await?.token.unwrap_or_default();
        match server.step(&token, &sasl.users) {
            Ok(Step::Challenge(challenge)) => {
                send(stream, Status::InProgress, Some(Bytes::from(challenge))).await?;
            }
            Ok(Step::Done { token, identity }) => {
                send(stream, Status::Success, Some(Bytes::from(token))).await?;
                return Ok(identity);
            }
            Err(err) => {
                send(stream, Status::Error, Some(Bytes::new())).await?;
                return Err(failed(err.to_string()));
            }
        }
    }
    send(stream, Status::Error, Some(Bytes::new())).await?;
    Err(failed("the member's SASL exchange went on too long"))
}

async fn send(stream: &mut Transport, status: Status, token: Option<Bytes>) -> io::Result<()> {
    let mut out = BytesMut::new();
    AuthPacket { status, token }.encode(&mut out);
    stream.write_all(&out).await?;
    stream.flush().await
}

async fn receive(stream: &mut Transport, buf: &mut BytesMut) -> io::Result<AuthPacket> {
    loop {
        match AuthPacket::decode(buf) {
            Ok(Some(packet)) => return Ok(packet),
            Ok(None) => {}
            Err(err) => return Err(io::Error::new(io::ErrorKind::InvalidData, err)),
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the member hung up during SASL",
            ));
        }
    }
}
