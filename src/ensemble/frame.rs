//! What the pipeline and a link say to each other about one member: the replication
//! core's messages, plus what the shells tell each other around them (forwarded client
//! requests, session activity and revalidation, the pieces of a snapshot). Each is one
//! of ZooKeeper's quorum packets or part of one; the link translates
//! (`ensemble::zookeeper`, `ensemble::link`). Frames to one member keep their order: the
//! pieces of a snapshot arrive before the `Snap` that installs them, and a learner's
//! forwarded requests reach the leader in the order its clients sent them.

use bytes::Bytes;
use jute::records::Id;

use crate::ensemble::zookeeper::sessions::Forwarded;
use crate::txn::{SessionId, Zxid};
use crate::zab::Message;
use crate::zk_format::snapshot::TransferPiece;

/// One frame between members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerFrame {
    /// A message of the replication core.
    Zab(Message),
    /// Learner → leader (REQUEST): a client's request exactly as the client framed it
    /// (xid, opcode, record), with the identities its connection had when it was read.
    /// Writes, `sync`, and `createSession` for a session whose id the learner chose.
    Request {
        /// The client's session.
        session_id: SessionId,
        /// The connection's identities, for ACL checks at the leader.
        auth: Vec<Id>,
        /// The request frame, without its length prefix.
        frame: Bytes,
    },
    /// Learner → leader: sessions whose clients the learner heard from since its last
    /// report, with their timeouts; the leader, which expires sessions, pushes their
    /// deadlines back. They travel in the learner's next PING answer.
    Touch(Vec<(SessionId, i32)>),
    /// Learner → leader (REVALIDATE): a client resumed this session here; requests for
    /// it from other members are stale from now on.
    Revalidate {
        /// The session.
        session_id: SessionId,
        /// The timeout its client asked for.
        timeout_ms: i32,
    },
    /// Leader → learner (REVALIDATE): whether a session a learner revalidated is alive.
    Revalidated {
        /// The session.
        session_id: SessionId,
        /// Whether it is alive (and now owned by the learner).
        valid: bool,
    },
    /// Leader → learner: the next pieces of the snapshot the coming `Snap` installs,
    /// as ZooKeeper's leader streams it after SNAP.
    SnapshotPieces {
        /// The snapshot's label: the zxid the leader had applied when it began.
        zxid: Zxid,
        /// The batch's place, from 0; batches come in order.
        index: u32,
        /// The sessions (first) and the nodes, parents before their children.
        pieces: Vec<TransferPiece>,
    },
}

impl PeerFrame {
    /// A learner's new session, whose id it chose, as the `createSession` request
    /// ZooKeeper's learners forward (with the timeout its client negotiated).
    pub fn create_session(session_id: SessionId, timeout_ms: i32) -> PeerFrame {
        let Forwarded { session_id, frame, auth } =
            Forwarded::create_session(session_id, timeout_ms);
        PeerFrame::Request { session_id, auth, frame }
    }
}
