//! `restore`'s upload: a ZooKeeper snapshot file (ZooKeeper's own, or one zkrs's
//! `snapshot` streamed) read from the HTTP body as it arrives, through a bounded channel
//! into a tree of its own on a blocking thread, every seal checked; then handed to the
//! driver to replace the state.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::import::load_node;
use crate::server::restore::Restore;
use crate::server::Shared;
use crate::tree::DataTree;
use crate::txn::{SessionId, Zxid};
use crate::zk_format::snapshot::{read_stream, TransferPiece};

/// Pieces of the upload read but not yet loaded.
const PIECES_IN_FLIGHT: usize = 8;

/// Loads the snapshot in `body` and has the driver install it; returns the zxid it was
/// installed at, once durable.
///
/// # Errors
/// Why not, as the answer's error.
pub async fn restore(shared: &Arc<Shared>, body: Body) -> Result<Zxid, String> {
    let (pieces, received) = mpsc::channel::<Bytes>(PIECES_IN_FLIGHT);
    let tree = shared.database.tree().empty_like();
    let loading = tokio::task::spawn_blocking(move || load(received, tree));
    let mut upload = body.into_data_stream();
    while let Some(piece) = upload.next().await {
        let piece = piece.map_err(|err| format!("reading the upload: {err}"))?;
        if pieces.send(piece).await.is_err() {
            // The loader stopped at something it could not read; it says what.
            break;
        }
    }
    drop(pieces);
    let (tree, sessions) = loading.await.map_err(|err| err.to_string())??;
    let (done, answered) = oneshot::channel();
    if !shared.restore.offer(Restore { tree, sessions, done }) {
        return Err("another restore is under way".into());
    }
    answered.await.map_err(|_| "the server stopped before the restored state was durable")?
}

/// Reads the snapshot file from `pieces` into `tree`.
fn load(
    pieces: mpsc::Receiver<Bytes>,
    tree: DataTree,
) -> Result<(DataTree, Vec<(SessionId, i32)>), String> {
    let mut input = Pieces { pieces, current: Bytes::new() };
    let mut sessions = Vec::new();
    let mut nodes = 0u64;
    read_stream(&mut input, "the uploaded snapshot", &mut |piece| match piece {
        TransferPiece::Sessions(list) => {
            sessions =
                list.into_iter().map(|(id, timeout)| (SessionId::new(id), timeout)).collect();
            Ok(())
        }
        TransferPiece::Node(node) => {
            nodes += 1;
            load_node(&tree, &node)
        }
    })
    .map_err(|err| err.to_string())?;
    if nodes == 0 {
        return Err("the uploaded snapshot holds no nodes".into());
    }
    tracing::info!(nodes, sessions = sessions.len(), "restore: snapshot loaded");
    Ok((tree, sessions))
}

/// The upload as a blocking reader.
struct Pieces {
    pieces: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for Pieces {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.pieces.blocking_recv() {
                Some(piece) => self.current = piece,
                None => return Ok(0),
            }
        }
        let len = out.len().min(self.current.len());
        out[..len].copy_from_slice(&self.current[..len]);
        self.current.advance(len);
        Ok(len)
    }
}
