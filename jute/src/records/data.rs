//! The data records: identities, ACLs and stats (`org.apache.zookeeper.data`).

use crate::record;

record! {
    /// An identity: a scheme (`world`, `digest`, `ip`, `auth`, `super`, ...) and an id in it.
    Id {
        scheme: String,
        id: String,
    }
}

record! {
    /// One ACL entry: the permission bits (`READ=1 WRITE=2 CREATE=4 DELETE=8 ADMIN=16`)
    /// granted to an identity.
    Acl {
        perms: i32,
        id: Id,
    }
}

record! {
    /// A znode's metadata as clients see it.
    Stat {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        data_length: i32,
        num_children: i32,
        pzxid: i64,
    }
}

record! {
    /// A znode's metadata as ZooKeeper stores it in snapshots: `cversion` here counts
    /// child creations only, and there is no `data_length` or `num_children`.
    StatPersisted {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        pzxid: i64,
    }
}

record! {
    /// One authenticated identity of a connection, as `whoAmI` reports it.
    ClientInfo {
        auth_scheme: String,
        user: String,
    }
}
