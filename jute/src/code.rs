//! ZooKeeper's error codes, with the exact numbers of `KeeperException.Code`.

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// An error code as carried in `ReplyHeader.err`, `ErrorResponse` and `ErrorTxn`.
        ///
        /// The numbers are ZooKeeper's; clients map them to their own exceptions
        /// (kazoo's `NoNodeError`, Curator's `KeeperException.NoNodeException`, ...).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i32)]
        pub enum Code {
            $($(#[$doc])* $name = $value,)*
        }

        impl Code {
            /// The code with this number, if ZooKeeper defines one.
            pub fn from_i32(value: i32) -> Option<Code> {
                match value {
                    $($value => Some(Code::$name),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// Success.
    Ok = 0,
    /// A server-side failure with no better code.
    SystemError = -1,
    /// A multi op that was not executed because an earlier op failed.
    RuntimeInconsistency = -2,
    /// Data inconsistency detected.
    DataInconsistency = -3,
    /// Connection to the server lost (client-side only).
    ConnectionLoss = -4,
    /// A request that could not be decoded.
    MarshallingError = -5,
    /// An operation this server does not implement.
    Unimplemented = -6,
    /// Operation timeout (client-side only).
    OperationTimeout = -7,
    /// Invalid arguments, such as a malformed path.
    BadArguments = -8,
    /// Unknown session (internal).
    UnknownSession = -12,
    /// No quorum of the new configuration is connected.
    NewConfigNoQuorum = -13,
    /// Another reconfiguration is in progress.
    ReconfigInProgress = -14,
    /// Lower bound of the API error range.
    ApiError = -100,
    /// The node does not exist.
    NoNode = -101,
    /// Not authorized for the operation.
    NoAuth = -102,
    /// The expected version does not match.
    BadVersion = -103,
    /// Ephemeral nodes may not have children.
    NoChildrenForEphemerals = -108,
    /// The node already exists.
    NodeExists = -110,
    /// The node has children.
    NotEmpty = -111,
    /// The session has expired.
    SessionExpired = -112,
    /// Invalid callback (client-side only).
    InvalidCallback = -113,
    /// An ACL that is empty or malformed.
    InvalidAcl = -114,
    /// Authentication failed.
    AuthFailed = -115,
    /// The session moved to another server.
    SessionMoved = -118,
    /// A write to a read-only server.
    NotReadOnly = -119,
    /// An ephemeral node on a local session.
    EphemeralOnLocalSession = -120,
    /// No such watch to remove or check.
    NoWatcher = -121,
    /// Request timeout.
    RequestTimeout = -122,
    /// Reconfiguration is disabled.
    ReconfigDisabled = -123,
    /// The session was closed because SASL authentication is required.
    SessionClosedRequireSaslAuth = -124,
    /// A hard quota was exceeded.
    QuotaExceeded = -125,
    /// The operation was throttled.
    ThrottledOp = -127,
}

impl Code {
    /// The number on the wire.
    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn numbers_round_trip() {
        for value in -200..=10 {
            if let Some(code) = Code::from_i32(value) {
                assert_eq!(code.as_i32(), value);
            }
        }
        assert_eq!(Code::from_i32(-101), Some(Code::NoNode));
        assert_eq!(Code::from_i32(-109), None);
    }
}
