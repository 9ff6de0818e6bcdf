//! Operation codes of ZooKeeper's client protocol (`ZooDefs.OpCode`), and the special xids.

macro_rules! opcodes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// The `type` field of a `RequestHeader`, `MultiHeader` or `TxnHeader`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum OpCode {
            $($(#[$doc])* $name = $value,)*
        }

        impl OpCode {
            /// The opcode with this number, if ZooKeeper 3.8 defines one.
            pub fn from_i32(value: i32) -> Option<OpCode> {
                match value {
                    $($value => Some(OpCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

opcodes! {
    /// A watch notification (server to client only).
    Notification = 0,
    /// Create a node, reply with its path.
    Create = 1,
    /// Delete a node.
    Delete = 2,
    /// Stat a node, optionally leaving an exists watch.
    Exists = 3,
    /// Read a node's data and stat.
    GetData = 4,
    /// Replace a node's data.
    SetData = 5,
    /// Read a node's ACL.
    GetAcl = 6,
    /// Replace a node's ACL.
    SetAcl = 7,
    /// List a node's children.
    GetChildren = 8,
    /// Flush the channel between this server and the leader.
    Sync = 9,
    /// Keep the session alive.
    Ping = 11,
    /// List a node's children with its stat.
    GetChildren2 = 12,
    /// Check a node's version (inside multi).
    Check = 13,
    /// An atomic list of write ops.
    Multi = 14,
    /// Create a node, reply with its path and stat.
    Create2 = 15,
    /// Change the ensemble's membership.
    Reconfig = 16,
    /// Check that a watch exists.
    CheckWatches = 17,
    /// Remove a watch.
    RemoveWatches = 18,
    /// Create a container node.
    CreateContainer = 19,
    /// Delete an empty container (server internal).
    DeleteContainer = 20,
    /// Create a node with a time to live.
    CreateTtl = 21,
    /// A list of read ops, answered individually.
    MultiRead = 22,
    /// Add authentication credentials to the connection.
    Auth = 100,
    /// Re-register watches after a reconnect.
    SetWatches = 101,
    /// One SASL round.
    Sasl = 102,
    /// List the session's ephemeral nodes.
    GetEphemerals = 103,
    /// Count all descendants of a node.
    GetAllChildrenNumber = 104,
    /// Re-register watches, including persistent ones, after a reconnect.
    SetWatches2 = 105,
    /// Add a persistent or persistent-recursive watch.
    AddWatch = 106,
    /// List the connection's authenticated identities.
    WhoAmI = 107,
    /// Create a session (txn only).
    CreateSession = -10,
    /// Close the session.
    CloseSession = -11,
    /// A failed request (txn only).
    Error = -1,
}

impl OpCode {
    /// The number on the wire.
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

/// The xid of a watch notification.
pub const XID_NOTIFICATION: i32 = -1;
/// The xid of a ping and its reply.
pub const XID_PING: i32 = -2;
/// The xid of an auth packet and its reply.
pub const XID_AUTH: i32 = -4;
/// The xid of the setWatches a client sends after reconnecting.
pub const XID_SET_WATCHES: i32 = -8;
