//! Transaction records: what the transaction log stores and the ensemble replicates.

use bytes::Bytes;

use crate::record;
use crate::records::Acl;

record! {
    /// Precedes every transaction: the session, its xid, the zxid, the leader's wall
    /// time in milliseconds and the opcode.
    TxnHeader {
        client_id: i64,
        cxid: i32,
        zxid: i64,
        time: i64,
        op_type: i32,
    }
}

record! {
    /// Creates a node; `parent_cversion` is the parent's creation count after this create.
    CreateTxn {
        path: String,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        ephemeral: bool,
        parent_cversion: i32,
    }
}

record! {
    /// Creates a TTL node.
    CreateTtlTxn {
        path: String,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        parent_cversion: i32,
        ttl: i64,
    }
}

record! {
    /// Creates a container node.
    CreateContainerTxn {
        path: String,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        parent_cversion: i32,
    }
}

record! {
    /// Deletes a node.
    DeleteTxn {
        path: String,
    }
}

record! {
    /// Replaces a node's data; `version` is the new version.
    SetDataTxn {
        path: String,
        data: Option<Bytes>,
        version: i32,
    }
}

record! {
    /// A passed version check inside a multi.
    CheckVersionTxn {
        path: String,
        version: i32,
    }
}

record! {
    /// Replaces a node's ACL; `version` is the new ACL version.
    SetAclTxn {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    }
}

record! {
    /// Creates a session with its negotiated timeout in milliseconds.
    CreateSessionTxn {
        time_out: i32,
    }
}

record! {
    /// Closes a session and deletes its ephemeral nodes.
    CloseSessionTxn {
        paths_to_delete: Vec<String>,
    }
}

record! {
    /// A request that failed; it still takes a zxid, as in ZooKeeper.
    ErrorTxn {
        err: i32,
    }
}

record! {
    /// One encoded sub-transaction of a multi.
    Txn {
        op_type: i32,
        data: Bytes,
    }
}

record! {
    /// The sub-transactions of a multi, all under one zxid.
    MultiTxn {
        txns: Vec<Txn>,
    }
}
