//! A backup's copy in object storage: `zkrs backup --upload URL` copies each file of the
//! backup directory there once it is whole and will not change (every snapshot, every
//! segment the writer left), and `zkrs restore`/`zkrs backup verify` read the copy
//! back. The objects carry the files' names under the URL's path, so the copy is a
//! backup directory of its own: a restore needs nothing but it.
//!
//! `s3://bucket/prefix` takes credentials, region and endpoint from the environment as
//! the AWS tools do (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT` for an S3-compatible store, `AWS_ALLOW_HTTP=true` for one without
//! TLS); `file:///path` is a directory (a mounted share, say).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::dir::{self, named, Named, SEGMENT_HEAD};
use crate::txn::Zxid;

/// Bytes read from a local file per write to an upload.
const UPLOAD_CHUNK: usize = 8 << 20;

/// What went wrong with object storage.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL names no store zkrs can use.
    #[error("{url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("{object}: {source}")]
    Store {
        /// The object.
        object: String,
        /// Why.
        source: object_store::Error,
    },
    /// An upload could not be finished.
    #[error("{object}: {source}")]
    Upload {
        /// The object.
        object: String,
        /// Why.
        source: std::io::Error,
    },
    /// A local file failed.
    #[error("{path}: {source}")]
    Local {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The backup directory cannot be read.
    #[error(transparent)]
    Dir(#[from] dir::DirError),
    /// An object is not the file it should be a copy of.
    #[error("{object}: {reason}")]
    Mismatch {
        /// The object.
        object: String,
        /// How.
        reason: String,
    },
    /// The backup was stopped during a copy; the store was told to drop its parts.
    #[error("{object}: stopped before the copy was finished")]
    Stopped {
        /// The object.
        object: String,
    },
}

fn local(path: &Path) -> impl Fn(std::io::Error) -> RemoteError + '_ {
    move |source| RemoteError::Local { path: path.display().to_string(), source }
}

/// A backup directory in object storage.
#[derive(Debug, Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
}

impl Remote {
    /// The store `url` names: `s3://bucket/prefix` or `file:///path`.
    ///
    /// # Errors
    /// A URL that does not parse, of another kind, or an S3 store the environment does
    /// not configure.
    pub fn open(url: &str) -> Result<Remote, RemoteError> {
        let failed = |reason: String| RemoteError::Url { url: url.to_owned(), reason };
        let parsed = url::Url::parse(url).map_err(|err| failed(err.to_string()))?;
        let (scheme, prefix) =
            ObjectStoreScheme::parse(&parsed).map_err(|err| failed(err.to_string()))?;
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::AmazonS3 => Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|err| failed(err.to_string()))?,
            ),
            ObjectStoreScheme::Local => Arc::new(LocalFileSystem::new()),
            other => {
                return Err(failed(format!("{other:?} is not supported: use s3:// or file://")))
            }
        };
        Ok(Remote { store, prefix, url: url.to_owned() })
    }

    /// The URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn object(&self, file: Named) -> ObjectPath {
        self.prefix.child(file.name())
    }

    /// The URL of `file`, for messages.
    fn url_of(&self, file: Named) -> String {
        format!("{}/{}", self.url.trim_end_matches('/'), file.name())
    }

    fn store_error(&self, file: Named) -> impl Fn(object_store::Error) -> RemoteError + '_ {
        move |source| RemoteError::Store { object: self.url_of(file), source }
    }

    /// The backup's files in the store, with their sizes.
    ///
    /// # Errors
    /// If the store cannot be listed.
    pub async fn list(&self) -> Result<BTreeMap<Named, u64>, RemoteError> {
        let listed = self.store.list_with_delimiter(Some(&self.prefix)).await;
        let object = self.url.clone();
        let listed = listed.map_err(|source| RemoteError::Store { object, source })?;
        let mut files = BTreeMap::new();
        for meta in listed.objects {
            if let Some(file) = meta.location.filename().and_then(named) {
                files.insert(file, meta.size);
            }
        }
        Ok(files)
    }

    /// Copies the local file at `path` to `file`, and checks the copy's size. When
    /// `stop` is cancelled first, the upload is aborted, so that the store drops the
    /// parts it took (an S3 multipart upload left open is kept, and billed, until a
    /// lifecycle rule removes it).
    ///
    /// # Errors
    /// If the file cannot be read, the store written, the copy differs in size, or
    /// `stop` came first ([`RemoteError::Stopped`]).
    pub async fn upload(
        &self,
        path: &Path,
        file: Named,
        stop: &CancellationToken,
    ) -> Result<u64, RemoteError> {
        let mut source = tokio::fs::File::open(path).await.map_err(local(path))?;
        let mut writer = BufWriter::new(self.store.clone(), self.object(file));
        let sent = match self.send(&mut source, &mut writer, path, file, stop).await {
            Ok(sent) => sent,
            Err(err) => {
                let _ = writer.abort().await;
                return Err(err);
            }
        };
        // Finishing is not cut short: a writer cannot be aborted once it finishes, and a
        // whole object leaves no open upload behind.
        let finished = writer.shutdown().await;
        finished.map_err(|source| RemoteError::Upload { object: self.url_of(file), source })?;
        let stored = self.store.head(&self.object(file)).await.map_err(self.store_error(file))?;
        if stored.size != sent {
            let reason = format!("holds {} bytes of the {sent} sent", stored.size);
            return Err(RemoteError::Mismatch { object: self.url_of(file), reason });
        }
        Ok(sent)
    }

    /// Hands `source` to `writer` a chunk at a time, and returns how many bytes it took.
    /// `stop` is heard between chunks, never during one: a writer cut short while it
    /// creates the multipart upload forgets the upload, and could then not abort it. A
    /// chunk waits at most for one request to the store.
    async fn send(
        &self,
        source: &mut tokio::fs::File,
        writer: &mut BufWriter,
        path: &Path,
        file: Named,
        stop: &CancellationToken,
    ) -> Result<u64, RemoteError> {
        let mut chunk = vec![0u8; UPLOAD_CHUNK];
        let mut sent = 0u64;
        loop {
            if stop.is_cancelled() {
                return Err(RemoteError::Stopped { object: self.url_of(file) });
            }
            let read = source.read(&mut chunk).await.map_err(local(path))?;
            if read == 0 {
                return Ok(sent);
            }
            let piece = bytes::Bytes::copy_from_slice(&chunk[..read]);
            writer.put(piece).await.map_err(self.store_error(file))?;
            sent += read as u64;
        }
    }

    /// Copies `file` into the directory `dir`, synced. False if the store no longer holds
    /// it: a backup's retention may prune the copy between a listing and the fetch, and a
    /// file pruned is one the backup no longer has, as a listing made after would show.
    ///
    /// # Errors
    /// If the store cannot be read or the file written.
    pub async fn download(&self, file: Named, dir: &Path) -> Result<bool, RemoteError> {
        let path = dir.join(file.name());
        let got = match self.store.get(&self.object(file)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(err) => return Err(self.store_error(file)(err)),
        };
        let mut stream = got.into_stream();
        let mut out = tokio::fs::File::create(&path).await.map_err(local(&path))?;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(self.store_error(file))?;
            out.write_all(&piece).await.map_err(local(&path))?;
        }
        out.sync_all().await.map_err(local(&path))?;
        Ok(true)
    }

    /// The zxid a segment's head says it goes on from.
    ///
    /// # Errors
    /// If the store cannot be read.
    pub async fn segment_after(&self, first: Zxid) -> Result<Option<Zxid>, RemoteError> {
        let file = Named::Segment(first);
        let head = self.store.get_range(&self.object(file), 0..SEGMENT_HEAD).await;
        let head = head.map_err(self.store_error(file))?;
        Ok(<[u8; 8]>::try_from(&head[..]).ok().map(|head| Zxid::new(i64::from_be_bytes(head))))
    }

    /// Removes `file`.
    ///
    /// # Errors
    /// If the store refuses.
    pub async fn delete(&self, file: Named) -> Result<(), RemoteError> {
        self.store.delete(&self.object(file)).await.map_err(self.store_error(file))
    }
}

/// Keeps a [`Remote`] holding every file of the backup directory `dir` that will not
/// change, and, with `retain`, only the newest snapshots and what restores from them
/// (chosen from what the store holds, as [`dir::prune`] chooses locally).
#[derive(Debug)]
pub struct Uploader {
    remote: Remote,
    dir: PathBuf,
    retain: usize,
    /// Cancelled when the backup stops: a copy under way is aborted.
    stop: CancellationToken,
    /// What the store holds, as last listed and since copied.
    stored: Option<BTreeMap<Named, u64>>,
    /// The heads of stored segments (they never change).
    heads: BTreeMap<Zxid, Option<Zxid>>,
}

/// What one pass of an [`Uploader`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Files copied.
    pub uploaded: usize,
    /// Bytes copied.
    pub bytes: u64,
    /// Files removed from the store by the retention.
    pub deleted: usize,
}

impl Uploader {
    /// Copies the backup in `dir` to `remote` until `stop` is cancelled.
    pub fn new(remote: Remote, dir: &Path, retain: usize, stop: CancellationToken) -> Uploader {
        let dir = dir.to_owned();
        Uploader { remote, dir, retain, stop, stored: None, heads: BTreeMap::new() }
    }

    /// Copies each snapshot, and each segment up to the one whose first zxid is
    /// `sealed`, that the store lacks; then applies the retention to the store.
    ///
    /// # Errors
    /// If the store fails; the next pass goes on from what it holds then.
    pub async fn pass(&mut self, sealed: Option<Zxid>) -> Result<Pass, RemoteError> {
        let stored = match self.stored.take() {
            Some(stored) => stored,
            None => self.remote.list().await?,
        };
        let stored = self.stored.insert(stored);
        let files = dir::files(&self.dir)?;
        let mut pass = Pass::default();
        let snapshots = files.snapshots.iter().map(|zxid| (Named::Snapshot(*zxid), None));
        let segments = files
            .segments
            .iter()
            .filter(|(first, _)| sealed.is_some_and(|sealed| *first <= sealed))
            .map(|(first, path)| (Named::Segment(*first), Some(path.clone())));
        for (file, path) in snapshots.chain(segments).collect::<Vec<_>>() {
            if stored.contains_key(&file) {
                continue;
            }
            let path = path.unwrap_or_else(|| self.dir.join(file.name()));
            match self.remote.upload(&path, file, &self.stop).await {
                Ok(bytes) => {
                    stored.insert(file, bytes);
                    pass.uploaded += 1;
                    pass.bytes += bytes;
                }
                // Pruned locally since the listing: nothing to copy.
                Err(RemoteError::Local { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    self.stored = None;
                    return Err(err);
                }
            }
        }
        pass.deleted = self.apply_retention().await?;
        Ok(pass)
    }

    async fn apply_retention(&mut self) -> Result<usize, RemoteError> {
        let Some(stored) = self.stored.as_ref() else {
            return Ok(0);
        };
        if self.retain == 0 {
            return Ok(0);
        }
        let mut snapshots = Vec::new();
        let mut firsts = Vec::new();
        for file in stored.keys() {
            match file {
                Named::Snapshot(zxid) => snapshots.push(*zxid),
                Named::Segment(first) => firsts.push(*first),
            }
        }
        if snapshots.len() <= self.retain {
            return Ok(0);
        }
        let mut segments = Vec::with_capacity(firsts.len());
        for first in firsts {
            let after = match self.heads.get(&first) {
                Some(after) => *after,
                None => {
                    let after = self.remote.segment_after(first).await?;
                    self.heads.insert(first, after);
                    after
                }
            };
            segments.push((first, after));
        }
        let (old_snapshots, old_segments) = dir::prunable(&snapshots, &segments, self.retain);
        let doomed = old_snapshots
            .into_iter()
            .map(Named::Snapshot)
            .chain(segments[..old_segments].iter().map(|(first, _)| Named::Segment(*first)));
        let mut deleted = 0;
        for file in doomed.collect::<Vec<_>>() {
            self.remote.delete(file).await?;
            if let Some(stored) = self.stored.as_mut() {
                stored.remove(&file);
            }
            if let Named::Segment(first) = file {
                self.heads.remove(&first);
            }
            deleted += 1;
        }
        Ok(deleted)
    }
}

/// Copies the backup in `dir` to `remote` every `every` until the uploader's stop is
/// cancelled, each segment once `sealed` (the writer's [`dir::SegmentWriter::sealed`])
/// reaches it. A store that fails is tried again at the next pass; the backup directory
/// goes on meanwhile.
pub async fn keep_uploaded(
    mut uploader: Uploader,
    mut sealed: tokio::sync::watch::Receiver<Option<Zxid>>,
    every: Duration,
) {
    let url = uploader.remote.url().to_owned();
    let stop = uploader.stop.clone();
    loop {
        let through = *sealed.borrow_and_update();
        match uploader.pass(through).await {
            Ok(pass) if pass != Pass::default() => {
                let (uploaded, bytes, deleted) = (pass.uploaded, pass.bytes, pass.deleted);
                tracing::info!(%url, uploaded, bytes, deleted, "backup copied");
            }
            Ok(_) => {}
            Err(err @ RemoteError::Stopped { .. }) => {
                tracing::info!(%url, cause = %err, "copy aborted");
                return;
            }
            Err(err) => tracing::warn!(%url, cause = %err, "cannot copy the backup; trying again"),
        }
        if unless_stopped(&stop, tokio::time::sleep(every)).await.is_none() {
            return;
        }
    }
}

/// What `step` gives, unless `stop` is cancelled first (`None`; `step` is dropped).
async fn unless_stopped<T>(
    stop: &CancellationToken,
    step: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        () = stop.cancelled() => None,
        out = step => Some(out),
    }
}

/// A backup brought down from object storage into a directory of its own, removed when
/// this is dropped.
#[derive(Debug)]
pub struct Downloaded {
    /// The directory.
    pub dir: PathBuf,
}

impl Drop for Downloaded {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Downloaded {
    /// A new directory in `parent`.
    fn new(parent: &Path) -> Result<Downloaded, RemoteError> {
        static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nth = TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("zkrs-download-{}-{nth}", std::process::id());
        let dir = parent.join(name);
        // A process of the same id before a restart may have left it.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(local(&dir))?;
        Ok(Downloaded { dir })
    }
}

/// Brings down every file of the backup in `remote` into a new directory in `parent`
/// (but those pruned while it runs).
///
/// # Errors
/// If the store or the local directory fails.
pub async fn download_all(remote: &Remote, parent: &Path) -> Result<Downloaded, RemoteError> {
    let listed = remote.list().await?;
    download_listed(remote, listed.into_keys(), parent).await
}

/// Brings down `files` of the backup in `remote` into a new directory in `parent`,
/// leaving out any the store no longer holds.
async fn download_listed(
    remote: &Remote,
    files: impl IntoIterator<Item = Named>,
    parent: &Path,
) -> Result<Downloaded, RemoteError> {
    let downloaded = Downloaded::new(parent)?;
    for file in files {
        remote.download(file, &downloaded.dir).await?;
    }
    Ok(downloaded)
}

/// Brings down what restoring the state `target` needs into a new directory in `parent`:
/// every segment, then snapshots, newest first, until one at or before the target's zxid
/// reaches it.
///
/// # Errors
/// If the store or the local directory fails, or the backup does not reach the target.
pub async fn download_for(
    remote: &Remote,
    target: super::restore::Target,
    parent: &Path,
) -> Result<(Downloaded, Zxid), String> {
    use super::restore::Target;
    let downloaded = Downloaded::new(parent).map_err(|err| err.to_string())?;
    let listed = remote.list().await.map_err(|err| err.to_string())?;
    let mut snapshots = Vec::new();
    for file in listed.keys() {
        match file {
            Named::Segment(_) => {
                remote.download(*file, &downloaded.dir).await.map_err(|err| err.to_string())?;
            }
            Named::Snapshot(zxid) => snapshots.push(*zxid),
        }
    }
    let scan = dir::scan(&downloaded.dir).map_err(|err| err.to_string())?;
    let zxid = match target {
        Target::Zxid(zxid) => zxid,
        Target::Time(ms) => super::restore::last_at_or_before(&scan, ms)?,
        Target::Latest => scan
            .segments
            .last()
            .map(|segment| segment.last)
            .max(snapshots.last().copied())
            .ok_or("the backup is empty")?,
    };
    for snapshot in snapshots.into_iter().rev().filter(|snapshot| *snapshot <= zxid) {
        let file = Named::Snapshot(snapshot);
        if !remote.download(file, &downloaded.dir).await.map_err(|err| err.to_string())? {
            continue;
        }
        let scan = dir::scan(&downloaded.dir).map_err(|err| err.to_string())?;
        if super::restore::reachable(&scan)
            .iter()
            .any(|(from, to)| *from == snapshot && *to >= zxid)
        {
            return Ok((downloaded, zxid));
        }
    }
    Err(format!("{} reaches no state at 0x{:x}", remote.url(), zxid.raw()))
}

#[cfg(test)]
#[path = "remote_test.rs"]
mod tests;
