//! Watch records: notifications, re-registration after reconnect, and persistent watches.

use crate::record;

record! {
    /// A notification: event type (1 created, 2 deleted, 3 data changed, 4 children
    /// changed), keeper state (3 SyncConnected) and the path.
    WatcherEvent {
        event_type: i32,
        state: i32,
        path: String,
    }
}

record! {
    /// Watches a client re-registers after reconnecting; events after `relative_zxid`
    /// that it missed are delivered at once.
    SetWatches {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
    }
}

record! {
    /// [`SetWatches`] plus persistent and persistent-recursive watches.
    SetWatches2 {
        relative_zxid: i64,
        data_watches: Vec<String>,
        exist_watches: Vec<String>,
        child_watches: Vec<String>,
        persistent_watches: Vec<String>,
        persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// `addWatch`: mode 0 is PERSISTENT, 1 is PERSISTENT_RECURSIVE.
    AddWatchRequest {
        path: String,
        mode: i32,
    }
}

record! {
    /// `checkWatches`: watcher type 1 children, 2 data, 3 any.
    CheckWatchesRequest {
        path: String,
        watcher_type: i32,
    }
}

record! {
    /// `removeWatches`: watcher type 1 children, 2 data, 3 any.
    RemoveWatchesRequest {
        path: String,
        watcher_type: i32,
    }
}
