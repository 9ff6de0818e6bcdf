//! ZooKeeper's audit log (`audit.enable=true`): a line for each client write once it is
//! applied, each ephemeral node a closed session loses, and the server's start and stop,
//! in the words and order of ZooKeeper's `Slf4jAuditLogger`:
//! `session=0x…␉user=…␉ip=…␉operation=create␉znode=/a␉znode_type=persistent␉result=success`.
//!
//! The lines are events of the `zkrs::audit` target, at INFO, or ERROR for a failure as
//! ZooKeeper logs them; `logging` also writes them to `zookeeper_audit.log`. What is
//! audited follows ZooKeeper's `AuditHelper` to the letter, its quirks included: a
//! createTTL is audited only inside a multi, and there without its type; a sequential
//! create inside a multi has no type either (its mode is looked up by the created path).
//! Only the member holding the client's connection logs its writes; every member logs
//! the ephemerals a closed session loses.

use std::net::IpAddr;

use jute::records::Acl;
use jute::OpCode;

use crate::fast_hash::FastHashMap;
use crate::prepare::CreateMode;
use crate::proto::Request;
use crate::session::AuthIds;
use crate::tree::acl::perm_letters;
use crate::tree::TxnResult;
use crate::txn::{SessionId, TxnBody};

/// The log target every audit line goes to.
pub const TARGET: &str = "zkrs::audit";

/// What the audit log needs of a client's write, taken as the request enters the
/// pipeline: who sent it from where, and what the txn's result does not tell.
#[derive(Debug)]
pub struct AuditRequest {
    session: SessionId,
    user: Option<String>,
    ip: String,
    op: Audited,
}

#[derive(Debug)]
enum Audited {
    Create {
        path: String,
        mode: Option<&'static str>,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
    },
    SetAcl {
        path: String,
        acl: String,
    },
    /// The mode of each create, create2 and createContainer, by requested path.
    Multi {
        create_modes: FastHashMap<String, &'static str>,
    },
    Reconfig,
}

/// How an audited action ended, as ZooKeeper names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Invoked,
}

/// One line's fields, each left out when `None`, as `AuditEvent.toString` writes them.
#[derive(Debug, Default)]
struct Line<'a> {
    session: Option<SessionId>,
    user: Option<&'a str>,
    ip: Option<&'a str>,
    operation: &'a str,
    znode: Option<&'a str>,
    znode_type: Option<&'a str>,
    acl: Option<&'a str>,
}

impl Line<'_> {
    fn render(&self, outcome: Outcome) -> String {
        let session = self.session.map(|session| session.to_string());
        let fields = [
            ("session", session.as_deref()),
            ("user", self.user),
            ("ip", self.ip),
            ("operation", Some(self.operation)),
            ("znode", self.znode),
            ("znode_type", self.znode_type),
            ("acl", self.acl),
        ];
        let result = match outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Invoked => "invoked",
        };
        let mut text = String::new();
        for (name, value) in fields.iter().filter_map(|(name, value)| Some((name, (*value)?))) {
            text.push_str(name);
            text.push('=');
            text.push_str(value);
            text.push('\t');
        }
        text.push_str("result=");
        text.push_str(result);
        text
    }

    fn log(&self, outcome: Outcome) {
        let text = self.render(outcome);
        if outcome == Outcome::Failure {
            tracing::error!(target: TARGET, "{text}");
        } else {
            tracing::info!(target: TARGET, "{text}");
        }
    }
}

/// `ZKUtil.aclToString`: each entry as `scheme:id:perms`, with nothing between entries.
fn acl_text(acl: &[Acl]) -> String {
    acl.iter()
        .map(|entry| format!("{}:{}:{}", entry.id.scheme, entry.id.id, perm_letters(entry.perms)))
        .collect()
}

fn mode_name(flags: i32) -> Option<&'static str> {
    CreateMode::from_flags(flags).map(CreateMode::java_name)
}

impl AuditRequest {
    /// What to audit of `request` from `session`, or `None` for a request ZooKeeper does
    /// not audit (reads, checks, createTTL, session requests).
    pub fn new(
        request: &Request,
        session: SessionId,
        auth: &AuthIds,
        ip: IpAddr,
    ) -> Option<AuditRequest> {
        let op = match request {
            Request::Create { request, .. } => {
                Audited::Create { path: request.path.clone(), mode: mode_name(request.flags) }
            }
            Request::Delete(delete) => Audited::Delete { path: delete.path.clone() },
            Request::DeleteContainer(path) => Audited::Delete { path: path.clone() },
            Request::SetData(set) => Audited::SetData { path: set.path.clone() },
            Request::SetAcl(set) => {
                Audited::SetAcl { path: set.path.clone(), acl: acl_text(&set.acl) }
            }
            Request::Multi(multi) => Audited::Multi {
                create_modes: multi
                    .ops
                    .iter()
                    .filter_map(|op| match op {
                        jute::records::MultiOp::Create { request, .. } => {
                            Some((request.path.clone(), mode_name(request.flags)?))
                        }
                        _ => None,
                    })
                    .collect(),
            },
            Request::Reconfig(_) => Audited::Reconfig,
            _ => return None,
        };
        Some(AuditRequest {
            session,
            user: auth.user_names(),
            ip: crate::session::auth::java_host_address(ip),
            op,
        })
    }

    /// Logs what the request's txn `body` did once applied, `result` being what applying
    /// it gave. A txn that is an error (its request failed before it was logged) is
    /// told with the request's own path; any other with the result's.
    pub fn applied(&self, body: &TxnBody, result: &TxnResult) {
        let line = |operation, znode| self.line(operation, znode);
        let failed_txn = matches!(body, TxnBody::Error(_));
        let outcome = if failed_txn || result.err != jute::Code::Ok {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        let znode = |requested| Some(if failed_txn { requested } else { result.path.as_str() });
        match &self.op {
            Audited::Create { path, mode } => {
                Line { znode_type: *mode, ..line("create", znode(path)) }.log(outcome);
            }
            Audited::Delete { path } => line("delete", znode(path)).log(outcome),
            Audited::SetData { path } => line("setData", znode(path)).log(outcome),
            Audited::SetAcl { path, acl } => {
                Line { acl: Some(acl), ..line("setAcl", znode(path)) }.log(outcome);
            }
            Audited::Reconfig => line("reconfig", None).log(outcome),
            Audited::Multi { .. } if failed_txn => line("multiOperation", None).log(outcome),
            Audited::Multi { create_modes } => {
                let mut failed = false;
                for sub in &result.multi {
                    let path = Some(sub.path.as_str());
                    match sub.op_type {
                        OpCode::Create
                        | OpCode::Create2
                        | OpCode::CreateTtl
                        | OpCode::CreateContainer => {
                            let mode = create_modes.get(&sub.path).copied();
                            Line { znode_type: mode, ..line("create", path) }.log(Outcome::Success);
                        }
                        OpCode::Delete | OpCode::DeleteContainer => {
                            line("delete", path).log(Outcome::Success);
                        }
                        OpCode::SetData => line("setData", path).log(Outcome::Success),
                        OpCode::Error => failed = true,
                        _ => {}
                    }
                }
                if failed {
                    line("multiOperation", None).log(Outcome::Failure);
                }
            }
        }
    }
}

impl AuditRequest {
    fn line<'a>(&'a self, operation: &'a str, znode: Option<&'a str>) -> Line<'a> {
        Line {
            session: Some(self.session),
            user: self.user.as_deref(),
            ip: Some(&self.ip),
            operation,
            znode,
            ..Line::default()
        }
    }
}

/// Logs an ephemeral node of `session` deleted (or already gone) as the session ended,
/// in the name of the user the server runs as.
pub fn ephemeral_deleted(session: SessionId, path: &str, deleted: bool) {
    let line = Line {
        session: Some(session),
        user: Some(server_user()),
        operation: "ephemeralZNodeDeletionOnSessionCloseOrExpire",
        znode: Some(path),
        ..Line::default()
    };
    line.log(if deleted { Outcome::Success } else { Outcome::Failure });
}

/// Logs the server's start (`succeeded`) or its failure to start.
pub fn server_started(succeeded: bool) {
    let line = Line { user: Some(server_user()), operation: "serverStart", ..Line::default() };
    line.log(if succeeded { Outcome::Success } else { Outcome::Failure });
}

/// Logs that the server was asked to stop.
pub fn server_stopping() {
    let line = Line { user: Some(server_user()), operation: "serverStop", ..Line::default() };
    line.log(Outcome::Invoked);
}

/// The user the server runs as, as Java's `user.name` gives it (read once: a session
/// may lose thousands of ephemerals at once).
fn server_user() -> &'static str {
    static USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    USER.get_or_init(|| crate::server::four_letter::process_user().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::records::Id;

    #[test]
    fn a_line_leaves_out_missing_fields_and_ends_with_the_result() {
        let line = Line {
            session: Some(SessionId::new(0x0100_026a_757a_0000)),
            user: Some("bob,127.0.0.1"),
            ip: Some("127.0.0.1"),
            operation: "create",
            znode: Some("/a"),
            znode_type: Some("persistent"),
            ..Line::default()
        };
        assert_eq!(
            line.render(Outcome::Success),
            "session=0x100026a757a0000\tuser=bob,127.0.0.1\tip=127.0.0.1\toperation=create\t\
             znode=/a\tznode_type=persistent\tresult=success"
        );
        let stop = Line { user: Some("zk"), operation: "serverStop", ..Line::default() };
        assert_eq!(stop.render(Outcome::Invoked), "user=zk\toperation=serverStop\tresult=invoked");
    }

    #[test]
    fn acls_are_written_back_to_back_as_zookeeper_does() {
        let entry = |scheme: &str, id: &str, perms| Acl {
            perms,
            id: Id { scheme: scheme.to_owned(), id: id.to_owned() },
        };
        let acl = [entry("digest", "bob:x=", 31), entry("world", "anyone", 1 | 16)];
        assert_eq!(acl_text(&acl), "digest:bob:x=:cdrwaworld:anyone:ra");
    }
}
