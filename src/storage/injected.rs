//! Storage faults injected on demand, so that a fault campaign on real processes can
//! give one member a slow disk, a failing fsync or a full disk. With
//! `ZKRS_INJECT_STORAGE_FAULTS=<file>` in its environment, `zkrs server` reads that file
//! before each write that must be durable (log appends and truncations, epochs) and does
//! what it says:
//! - empty or missing: nothing;
//! - `slow MS`: waits MS milliseconds, then writes;
//! - `fail`: writes, then reports that the sync failed, as a failing fsync leaves data
//!   that may or may not have reached the disk;
//! - `full`: writes nothing and reports ENOSPC, as a full disk does.
//!
//! A failed write stops the member (it must never acknowledge what it did not persist);
//! what it did persist must recover when it starts again. Without the variable the store
//! is used as it is, and this file's code does not run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Epochs, LogEntry, SnapshotHeader, SnapshotWriter, Storage, StorageError};
use crate::txn::Zxid;

/// The environment variable naming the control file.
pub const CONTROL_VARIABLE: &str = "ZKRS_INJECT_STORAGE_FAULTS";

/// What the control file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Slow(Duration),
    Fail,
    Full,
}

impl Fault {
    fn parse(text: &str) -> Fault {
        let mut words = text.split_whitespace();
        match (words.next(), words.next().and_then(|ms| ms.parse().ok())) {
            (Some("slow"), Some(ms)) => Fault::Slow(Duration::from_millis(ms)),
            (Some("fail"), _) => Fault::Fail,
            (Some("full"), _) => Fault::Full,
            _ => Fault::None,
        }
    }
}

/// A store whose durable writes obey a control file.
pub struct Injected {
    inner: Arc<dyn Storage>,
    control: PathBuf,
}

impl Injected {
    /// `inner` under the control file named by [`CONTROL_VARIABLE`], if it is set.
    pub fn from_environment(inner: Arc<dyn Storage>) -> Arc<dyn Storage> {
        match std::env::var_os(CONTROL_VARIABLE) {
            Some(control) => {
                tracing::warn!(
                    control = %PathBuf::from(&control).display(),
                    "storage faults are injected from a control file ({CONTROL_VARIABLE})"
                );
                Arc::new(Injected { inner, control: control.into() })
            }
            None => inner,
        }
    }

    /// Carries out `write` as the control file says.
    fn durable(
        &self,
        what: &'static str,
        write: impl FnOnce() -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let text = std::fs::read_to_string(&self.control).unwrap_or_default();
        match Fault::parse(&text) {
            Fault::None => write(),
            Fault::Slow(delay) => {
                std::thread::sleep(delay);
                write()
            }
            Fault::Fail => {
                write()?;
                let source = std::io::Error::other("the sync failed (an injected fault)");
                Err(StorageError::Io { what, source })
            }
            Fault::Full => {
                let source = std::io::Error::from_raw_os_error(ENOSPC);
                Err(StorageError::Io { what, source })
            }
        }
    }
}

/// ENOSPC, "No space left on device", on Linux.
const ENOSPC: i32 = 28;

impl Storage for Injected {
    fn append(&self, entries: &[LogEntry]) -> Result<(), StorageError> {
        self.durable("appending to the log", || self.inner.append(entries))
    }

    fn last_logged_zxid(&self) -> Zxid {
        self.inner.last_logged_zxid()
    }

    fn read_log(
        &self,
        after: Zxid,
        visit: &mut dyn FnMut(LogEntry) -> bool,
    ) -> Result<(), StorageError> {
        self.inner.read_log(after, visit)
    }

    fn truncate_after(&self, zxid: Zxid) -> Result<(), StorageError> {
        self.durable("truncating the log", || self.inner.truncate_after(zxid))
    }

    fn purge_log_through(&self, zxid: Zxid) -> Result<(), StorageError> {
        self.inner.purge_log_through(zxid)
    }

    fn begin_snapshot(&self, zxid: Zxid) -> Result<Box<dyn SnapshotWriter + '_>, StorageError> {
        self.inner.begin_snapshot(zxid)
    }

    fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StorageError> {
        self.inner.snapshots()
    }

    fn read_snapshot(
        &self,
        header: &SnapshotHeader,
        visit: &mut dyn FnMut(usize, Bytes) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.inner.read_snapshot(header, visit)
    }

    fn delete_snapshot(&self, zxid: Zxid) -> Result<(), StorageError> {
        self.inner.delete_snapshot(zxid)
    }

    fn epochs(&self) -> Result<Epochs, StorageError> {
        self.inner.epochs()
    }

    fn set_epochs(&self, epochs: Epochs) -> Result<(), StorageError> {
        self.durable("writing the epochs", || self.inner.set_epochs(epochs))
    }

    fn epoch_ends(&self) -> Result<Vec<Zxid>, StorageError> {
        self.inner.epoch_ends()
    }

    fn set_epoch_ends(&self, ends: &[Zxid]) -> Result<(), StorageError> {
        self.durable("writing the epoch ends", || self.inner.set_epoch_ends(ends))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    fn entry(counter: u32) -> LogEntry {
        LogEntry { zxid: Zxid::epoch_start(1) + counter, value: Bytes::from("x") }
    }

    #[test]
    fn the_control_file_makes_writes_fail_after_or_instead_of_writing() {
        let control =
            std::env::temp_dir().join(format!("zkrs-injected-faults-{}", std::process::id()));
        let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let injected = Injected { inner: inner.clone(), control: control.clone() };
        injected.append(&[entry(1)]).expect("no control file: no fault");
        std::fs::write(&control, "full").expect("write the control file");
        let full = injected.append(&[entry(2)]).expect_err("a full disk");
        assert!(full.to_string().contains("No space left"), "{full}");
        assert_eq!(inner.last_logged_zxid(), Zxid::epoch_start(1) + 1, "nothing written");
        std::fs::write(&control, "fail").expect("write the control file");
        injected.append(&[entry(2)]).expect_err("a failed sync");
        assert_eq!(inner.last_logged_zxid(), Zxid::epoch_start(1) + 2, "written all the same");
        std::fs::write(&control, "slow 1").expect("write the control file");
        injected.append(&[entry(3)]).expect("slow, but written");
        assert_eq!(Fault::parse("slow"), Fault::None, "a delay needs its milliseconds");
        std::fs::remove_file(&control).expect("remove the control file");
    }
}
