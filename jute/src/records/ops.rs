//! The request and response record of each client operation.

use bytes::Bytes;

use crate::record;
use crate::records::{Acl, ClientInfo, Stat};

record! {
    /// `create`, `create2` and `createContainer`.
    CreateRequest {
        path: String,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        flags: i32,
    }
}

record! {
    /// `createTTL`: a create with a time to live in milliseconds.
    CreateTtlRequest {
        path: String,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        flags: i32,
        ttl: i64,
    }
}

record! {
    /// Reply to `create`.
    CreateResponse {
        path: String,
    }
}

record! {
    /// Reply to `create2`, `createContainer` and `createTTL`.
    Create2Response {
        path: String,
        stat: Stat,
    }
}

record! {
    /// `delete`; version -1 matches any version.
    DeleteRequest {
        path: String,
        version: i32,
    }
}

record! {
    /// `exists`, optionally leaving a watch even when the node is missing.
    ExistsRequest {
        path: String,
        watch: bool,
    }
}

record! {
    /// Reply to `exists`.
    ExistsResponse {
        stat: Stat,
    }
}

record! {
    /// `getData`.
    GetDataRequest {
        path: String,
        watch: bool,
    }
}

record! {
    /// Reply to `getData`.
    GetDataResponse {
        data: Option<Bytes>,
        stat: Stat,
    }
}

record! {
    /// `setData`; version -1 matches any version.
    SetDataRequest {
        path: String,
        data: Option<Bytes>,
        version: i32,
    }
}

record! {
    /// Reply to `setData` (and to a standalone `check`).
    SetDataResponse {
        stat: Stat,
    }
}

record! {
    /// `getACL`.
    GetAclRequest {
        path: String,
    }
}

record! {
    /// Reply to `getACL`.
    GetAclResponse {
        acl: Vec<Acl>,
        stat: Stat,
    }
}

record! {
    /// `setACL`; version -1 matches any ACL version.
    SetAclRequest {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    }
}

record! {
    /// Reply to `setACL`.
    SetAclResponse {
        stat: Stat,
    }
}

record! {
    /// `getChildren`.
    GetChildrenRequest {
        path: String,
        watch: bool,
    }
}

record! {
    /// Reply to `getChildren`.
    GetChildrenResponse {
        children: Vec<String>,
    }
}

record! {
    /// `getChildren2`.
    GetChildren2Request {
        path: String,
        watch: bool,
    }
}

record! {
    /// Reply to `getChildren2`.
    GetChildren2Response {
        children: Vec<String>,
        stat: Stat,
    }
}

record! {
    /// `check`, as an op of `multi`.
    CheckVersionRequest {
        path: String,
        version: i32,
    }
}

record! {
    /// `sync`.
    SyncRequest {
        path: String,
    }
}

record! {
    /// Reply to `sync`.
    SyncResponse {
        path: String,
    }
}

record! {
    /// `getAllChildrenNumber`.
    GetAllChildrenNumberRequest {
        path: String,
    }
}

record! {
    /// Reply to `getAllChildrenNumber`.
    GetAllChildrenNumberResponse {
        total_number: i32,
    }
}

record! {
    /// `getEphemerals`: the session's ephemeral nodes whose path starts with the prefix.
    GetEphemeralsRequest {
        prefix_path: String,
    }
}

record! {
    /// Reply to `getEphemerals`.
    GetEphemeralsResponse {
        ephemerals: Vec<String>,
    }
}

record! {
    /// Reply to `whoAmI`.
    WhoAmIResponse {
        client_info: Vec<ClientInfo>,
    }
}

record! {
    /// `reconfig`; null and empty strings differ (null `new_members` means incremental).
    ReconfigRequest {
        joining_servers: Option<String>,
        leaving_servers: Option<String>,
        new_members: Option<String>,
        cur_config_id: i64,
    }
}

record! {
    /// An error code inside a multi reply.
    ErrorResponse {
        err: i32,
    }
}
