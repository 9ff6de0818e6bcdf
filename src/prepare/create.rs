//! create, create2, createContainer and createTTL (`pRequest2TxnCreate`).

use bytes::Bytes;
use jute::records::{Acl, CreateContainerTxn, CreateTtlTxn, CreateTxn};
use jute::{Code, OpCode};

use super::{NodeRecord, Scope};
use crate::proto::validate_path;
use crate::session::auth::{check_acl, fixup_acl};
use crate::tree::acl::perms;
use crate::tree::node::{NodeKind, CONTAINER_EPHEMERAL_OWNER};
use crate::tree::quota::Usage;
use crate::txn::TxnBody;

/// The fields shared by `CreateRequest` and `CreateTtlRequest`.
pub(super) struct CreateArgs<'a> {
    pub path: &'a str,
    pub data: Option<&'a Bytes>,
    pub acl: &'a [Acl],
    pub flags: i32,
    /// -1 for creates without a TTL.
    pub ttl: i64,
}

/// ZooKeeper's `CreateMode`, from a request's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// 0.
    Persistent,
    /// 1: deleted with its session.
    Ephemeral,
    /// 2: a persistent node named with a sequence number.
    PersistentSequential,
    /// 3.
    EphemeralSequential,
    /// 4: deleted by the server once its last child is gone.
    Container,
    /// 5: deleted by the server once unchanged and childless for its TTL.
    PersistentWithTtl,
    /// 6.
    PersistentSequentialWithTtl,
}

impl CreateMode {
    /// The mode `flags` ask for, `None` for flags ZooKeeper refuses.
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    /// The mode's Java name in lower case, as ZooKeeper's audit log writes it.
    pub fn java_name(self) -> &'static str {
        match self {
            CreateMode::Persistent => "persistent",
            CreateMode::Ephemeral => "ephemeral",
            CreateMode::PersistentSequential => "persistent_sequential",
            CreateMode::EphemeralSequential => "ephemeral_sequential",
            CreateMode::Container => "container",
            CreateMode::PersistentWithTtl => "persistent_with_ttl",
            CreateMode::PersistentSequentialWithTtl => "persistent_sequential_with_ttl",
        }
    }

    fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    pub(super) fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

/// Prepares a create whose opcode is `op` (it decides the txn record: a create with
/// container flags but opcode create makes a persistent node, as in ZooKeeper).
pub(super) fn create(
    scope: &mut Scope<'_, '_>,
    op: OpCode,
    args: CreateArgs<'_>,
) -> Result<(OpCode, TxnBody), Code> {
    let mode = CreateMode::from_flags(args.flags).ok_or(Code::BadArguments)?;
    if mode.is_ttl() && !scope.context.extended_types_enabled {
        return Err(Code::Unimplemented);
    }
    let ttl_owner = if mode.is_ttl() {
        Some(NodeKind::ttl_owner(args.ttl).ok_or(Code::BadArguments)?)
    } else if args.ttl >= 0 || op == OpCode::CreateTtl {
        // ZooKeeper 3.8 accepts createTTL with a non-TTL mode and ttl -1, then dies
        // applying it; zkrs refuses it like any other invalid TTL.
        return Err(Code::BadArguments);
    } else {
        None
    };
    scope.check_session()?;

    let slash =
        args.path.rfind('/').filter(|_| !args.path.contains('\0')).ok_or(Code::BadArguments)?;
    let parent_path = args.path.get(..slash).ok_or(Code::BadArguments)?;
    let acl = fixup_acl(args.acl, scope.context.auth, scope.context.digest_auth_enabled)?;
    let mut parent = scope.record(parent_path)?;
    check_acl(&parent.acl, perms::CREATE, scope.context.auth)?;

    let path = if mode.is_sequential() {
        sequential_path(args.path, parent.cversion)
    } else {
        args.path.to_owned()
    };
    validate_path(&path).map_err(|_| Code::BadArguments)?;
    if scope.lookup(&path).is_some() {
        return Err(Code::NodeExists);
    }
    if matches!(
        NodeKind::from_owner(parent.ephemeral_owner, scope.context.extended_types_enabled),
        NodeKind::Ephemeral(_)
    ) {
        return Err(Code::NoChildrenForEphemerals);
    }
    let parent_cversion = parent.cversion + 1;
    let data_len = args.data.map_or(0, Bytes::len);
    scope.check_quota(&path, Usage::node(data_len))?;
    let data = args.data.cloned();
    let body = match op {
        OpCode::CreateContainer => TxnBody::CreateContainer(CreateContainerTxn {
            path: path.clone(),
            data,
            acl: acl.clone(),
            parent_cversion,
        }),
        OpCode::CreateTtl => TxnBody::CreateTtl(CreateTtlTxn {
            path: path.clone(),
            data,
            acl: acl.clone(),
            parent_cversion,
            ttl: args.ttl,
        }),
        _ => TxnBody::Create(CreateTxn {
            path: path.clone(),
            data,
            acl: acl.clone(),
            ephemeral: mode.is_ephemeral(),
            parent_cversion,
        }),
    };
    let ephemeral_owner = match (mode, ttl_owner) {
        (CreateMode::Container, _) => CONTAINER_EPHEMERAL_OWNER,
        (_, Some(owner)) => owner,
        _ if mode.is_ephemeral() => scope.context.session_id.raw(),
        _ => 0,
    };
    parent.child_count += 1;
    parent.cversion = parent_cversion;
    scope.set(parent_path, Some(parent));
    scope.set(
        &path,
        Some(NodeRecord {
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            child_count: 0,
            data_len,
            acl: acl.into(),
        }),
    );
    Ok((op, body))
}

/// `path` with the parent's cversion appended as ZooKeeper's `%010d` writes it. Written
/// by hand, since the formatter's padding cost as much as the rest of a create's
/// preparation; a negative cversion (after wrapping) takes the formatter's way.
fn sequential_path(path: &str, cversion: i32) -> String {
    const DIGITS: usize = 10;
    let Ok(mut rest) = u32::try_from(cversion) else {
        return format!("{path}{cversion:010}");
    };
    let mut digits = [b'0'; DIGITS];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let mut sequential = String::with_capacity(path.len() + DIGITS);
    sequential.push_str(path);
    sequential.extend(digits.iter().map(|&digit| char::from(digit)));
    sequential
}

#[cfg(test)]
mod tests {
    use super::sequential_path;

    #[test]
    fn sequential_names_are_zero_padded_to_ten_digits_as_in_zookeeper() {
        assert_eq!(sequential_path("/q/n-", 0), "/q/n-0000000000");
        assert_eq!(sequential_path("/q/n-", 42), "/q/n-0000000042");
        assert_eq!(sequential_path("/q/", i32::MAX), "/q/2147483647");
        // Java's String.format("%010d", -5): the sign counts toward the width.
        assert_eq!(sequential_path("/q/n-", -5), "/q/n--000000005");
        assert_eq!(sequential_path("/q/n-", i32::MIN), "/q/n--2147483648");
    }
}
