//! Apache ZooKeeper's own data files, as its `FileSnap` and `FileTxnLog` write them under
//! `dataDir/version-2` (and `dataLogDir/version-2`): the way into zkrs for a team moving
//! from ZooKeeper (`zkrs import`). Reading only; nothing here touches a zkrs store.
//!
//! Both kinds of file start with ZooKeeper's `FileHeader` (a magic number, format
//! version 2, a database id) and carry Adler-32 checksums, as ZooKeeper checks them.

pub mod snapshot;
pub mod txn_log;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use jute::{DecodeError, Reader};

/// Java's `Adler32.getValue()` of `bytes`: the checksum both kinds of file carry.
fn adler32(bytes: &[u8]) -> u32 {
    adler2::adler32_slice(bytes)
}

/// What went wrong reading a ZooKeeper file.
#[derive(Debug, thiserror::Error)]
pub enum ZkFileError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a file of the kind expected, or of a format version ZooKeeper 3.4-3.9 does not
    /// write.
    #[error("{path} is not a ZooKeeper {kind} (magic 0x{magic:08x}, version {version})")]
    NotThisKind {
        /// The file.
        path: String,
        /// Snapshot or transaction log.
        kind: &'static str,
        /// The magic number found.
        magic: i32,
        /// The version found.
        version: i32,
    },
    /// The file's bytes do not decode.
    #[error("{path}: {source}")]
    Malformed {
        /// The file.
        path: String,
        /// Where and why.
        source: DecodeError,
    },
    /// A checksum does not match what was read: ZooKeeper refuses such a file too.
    #[error("{path}: {what} fails its checksum (ZooKeeper refuses it as well)")]
    Checksum {
        /// The file.
        path: String,
        /// What failed.
        what: String,
    },
    /// The snapshot's nodes do not make a tree (a node before its parent, or twice):
    /// ZooKeeper refuses such a snapshot too ("Invalid Datatree").
    #[error("{path}: the tree is invalid: {reason}")]
    InvalidTree {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A compressed snapshot does not uncompress.
    #[error("{path}: {reason}")]
    Compressed {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The only file format version ZooKeeper writes.
const VERSION: i32 = 2;

/// Reads ZooKeeper's `FileHeader` (magic, version, database id) from a file at `path`
/// and checks it names `kind` by `magic`.
fn check_header(
    reader: &mut Reader<'_>,
    path: &str,
    kind: &'static str,
    magic: i32,
) -> Result<(), ZkFileError> {
    let malformed = |source| ZkFileError::Malformed { path: path.to_owned(), source };
    let found = reader.read_i32("magic").map_err(malformed)?;
    let version = reader.read_i32("version").map_err(malformed)?;
    reader.read_i64("dbid").map_err(malformed)?;
    if found != magic || version != VERSION {
        return Err(ZkFileError::NotThisKind {
            path: path.to_owned(),
            kind,
            magic: found,
            version,
        });
    }
    Ok(())
}

/// Copies `from/myid` to `to/myid`, if there is one: the file that names an ensemble
/// member, which ZooKeeper's dataDir and zkrs's share, for `zkrs import` and `zkrs
/// export`. Nothing to do when both are the same directory.
///
/// # Errors
/// If the file cannot be copied; the path that failed comes with the error.
pub fn copy_myid(from: &Path, to: &Path) -> Result<(), (PathBuf, std::io::Error)> {
    let source = from.join("myid");
    let target = to.join("myid");
    let (a, b) = (source.canonicalize(), target.canonicalize());
    let same = matches!((a, b), (Ok(a), Ok(b)) if a == b);
    if !source.exists() || same {
        return Ok(());
    }
    std::fs::create_dir_all(to).map_err(|err| (to.to_path_buf(), err))?;
    std::fs::copy(&source, &target).map(|_| ()).map_err(|err| (target, err))
}

/// The zxid in a ZooKeeper file's name (`snapshot.1f` or `log.100000001`, hex), the first
/// zxid a log may hold or the last one a snapshot has applied; `None` for any other name.
pub fn zxid_of_file_name(name: &str, prefix: &str) -> Option<i64> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let hex = rest.split('.').next()?;
    u64::from_str_radix(hex, 16).ok().map(|zxid| zxid as i64)
}

/// Reads the whole file at `path`.
fn read_file(path: &std::path::Path) -> Result<Bytes, ZkFileError> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|source| ZkFileError::Io { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_hex_zxids() {
        assert_eq!(zxid_of_file_name("snapshot.1f", "snapshot"), Some(0x1f));
        assert_eq!(zxid_of_file_name("snapshot.100000002.gz", "snapshot"), Some(0x1_0000_0002));
        assert_eq!(zxid_of_file_name("log.100000001", "log"), Some(0x1_0000_0001));
        assert_eq!(zxid_of_file_name("log.zz", "log"), None);
        assert_eq!(zxid_of_file_name("logs.1", "log"), None);
        assert_eq!(zxid_of_file_name("acceptedEpoch", "snapshot"), None);
    }
}
