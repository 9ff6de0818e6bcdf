//! The async shell around the write pipeline: it feeds the [`Pipeline`] what comes in
//! (client inputs, frames from the other members, ticks, storage completions) and does
//! the IO it asks for, and nothing else. It owns the threads that touch the store or
//! walk the tree for a long time — the storage thread, periodic snapshots, snapshot
//! transfers to and from other members — and the links to the other members.
//!
//! A snapshot a leader sends arrives as chunks before its `Snap`; the shell hands them to
//! a transfer thread as they come and, with the `Snap`, hands the pipeline the sealed
//! result, having first stopped every thread that reads the state it replaces. It never
//! waits for that thread: while the thread is behind, or sealing, the shell takes no
//! more link events (so frames keep their order) and goes on with everything else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ensemble::frame::PeerFrame;
use crate::ensemble::link::{LinkEvent, Links, Listeners, Streamed};
use crate::ensemble::Membership;
use crate::fast_hash::FastHashMap;
use crate::server::pipeline::{Effect, Input, Pipeline};
use crate::server::restore::Restore;
use crate::server::snapshotter::{live_sessions, Snapshotter};
use crate::server::storage_writer::{StorageWriter, Synced, Written};
use crate::server::transfer::{Inbound, Outbound, Sealed, TransferError};
use crate::server::Shared;
use crate::storage::{Storage, StorageError};
use crate::txn::Zxid;
use crate::zab::{Message, Restored, ServerId};
use crate::zk_format::snapshot::TransferPiece;

/// Most client inputs taken in one round before the pipeline logs what they made.
const BATCH_MAX: usize = 1000;

/// The transfer thread finishing a received snapshot.
type SealFuture = Pin<Box<dyn Future<Output = Result<Sealed, TransferError>> + Send>>;

/// The shell of a server, standalone or an ensemble member.
struct Shell {
    pipeline: Pipeline,
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    writer: StorageWriter,
    /// Batch completions from the storage thread.
    written: mpsc::Receiver<Written>,
    snapshotter: Snapshotter,
    links: Links,
    /// An ensemble of one: no links, so no link events.
    standalone: bool,
    /// The snapshot a leader (the member named) is sending.
    inbound: Option<(ServerId, Inbound)>,
    /// Pieces of it the transfer thread has no room for yet; link events wait behind
    /// them.
    held_pieces: Option<(ServerId, Zxid, u32, Vec<TransferPiece>)>,
    /// A `Snap` from the member named whose snapshot is being sealed; link events wait
    /// behind it.
    sealing: Option<(ServerId, PeerFrame, SealFuture)>,
    /// Snapshots this member is sending its learners.
    outbound: Vec<Outbound>,
    /// Snapshot streams started for a learner, waiting for the `Snap` they go with.
    streams: FastHashMap<ServerId, mpsc::Receiver<Streamed>>,
    /// The pipeline's effects being carried out.
    effects: Vec<Effect>,
    /// A restore taken from [`Shared::restore`]: client requests and session expiry
    /// wait until the writes in flight are applied and it is installed.
    restoring: Option<Restore>,
}

/// Runs the pipeline until `stop` is cancelled, then stops the storage thread and any
/// snapshot in progress and waits for both, so the store closes before the caller goes
/// on. `restored` is what it recovered (the state is at `restored.applied`),
/// `listeners` its quorum and election ports (none when standalone). A standalone
/// server elects itself before it takes its first input.
///
/// # Errors
/// If the log or the store fails; the server must stop.
pub async fn run(
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    mut inputs: mpsc::Receiver<Input>,
    stop: CancellationToken,
    membership: Membership,
    restored: Restored,
    listeners: Option<Listeners>,
) -> Result<(), StorageError> {
    let config = &shared.config;
    let timing = shared.clone();
    let timed = move |synced: &Synced<'_>| timing.stats.synced(synced);
    let (writer, written) =
        StorageWriter::spawn(storage.clone(), config.fsync_warning_threshold_ms, timed)
            .map_err(|source| StorageError::Io { what: "starting the storage thread", source })?;
    let snapshotter = Snapshotter::new(
        config.snap_count,
        config.snap_retain_count,
        config.purge_interval_hours == 0,
        shared.clock.wall_ms(),
    );
    let (events_tx, mut events) = mpsc::channel(4096);
    let links = Links::start(&membership.links, listeners, events_tx, &stop);
    let started =
        Pipeline::start(shared.clone(), membership.zab.clone(), restored, membership.standalone);
    let pipeline = match started {
        Ok(pipeline) => pipeline,
        Err(err) => {
            drop(written);
            writer.close();
            snapshotter.close();
            return Err(err);
        }
    };
    let mut shell = Shell {
        pipeline,
        shared,
        storage,
        writer,
        written,
        snapshotter,
        links,
        standalone: membership.standalone,
        inbound: None,
        held_pieces: None,
        sealing: None,
        restoring: None,
        outbound: Vec::new(),
        streams: FastHashMap::default(),
        effects: Vec::new(),
    };
    let core_tick = Duration::from_millis(membership.core_tick_ms);
    shell.carry_out();
    let outcome = shell.serve(&mut inputs, &mut events, core_tick, &stop).await;
    let Shell { writer, written, snapshotter, outbound, .. } = shell;
    drop(written);
    outbound.into_iter().for_each(Outbound::stop);
    writer.close();
    snapshotter.close();
    outcome
}

/// An interval that skips ticks missed while the driver was busy.
fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

impl Shell {
    async fn serve(
        &mut self,
        inputs: &mut mpsc::Receiver<Input>,
        events: &mut mpsc::Receiver<LinkEvent>,
        core_tick: Duration,
        stop: &CancellationToken,
    ) -> Result<(), StorageError> {
        let config = &self.shared.config;
        let mut session_ticks = interval(Duration::from_millis(u64::from(config.tick_time_ms)));
        let mut reaps = interval(Duration::from_millis(config.container_check_interval_ms.max(1)));
        let mut core_ticks = interval(core_tick);
        loop {
            if self.restoring.is_some() && self.pipeline.drained() {
                if let Some(restore) = self.restoring.take() {
                    self.snapshotter.interrupt();
                    self.pipeline.restore(restore);
                }
            }
            if let Some(batch) = self.pipeline.take_batch() {
                self.writer.write(batch)?;
            }
            let taking = self.restoring.is_none();
            let held = self.held_pieces.is_some();
            let room = self.inbound.as_ref().filter(|_| held).map(|(_, inbound)| inbound.room());
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                input = inputs.recv(), if taking => {
                    let Some(input) = input else { return Ok(()) };
                    if self.pipeline.is_leading() {
                        let waiting = inputs.len() as u64 + 1;
                        self.shared.stats.processors.prep_queue_size.record(waiting);
                    }
                    self.pipeline.client_input(input)?;
                    for _ in 0..BATCH_MAX {
                        match inputs.try_recv() {
                            Ok(input) => self.pipeline.client_input(input)?,
                            Err(_) => break,
                        }
                    }
                }
                event = events.recv(), if self.takes_link_events() => {
                    let Some(event) = event else { return Ok(()) };
                    self.link_event(event)?;
                }
                () = waiting(room), if held => self.offer_held(),
                sealed = waiting(self.sealing.as_mut().map(|(_, _, seal)| seal.as_mut())),
                    if self.sealing.is_some() => self.snapshot_sealed(sealed)?,
                outcome = self.written.recv(), if self.pipeline.is_writing() => {
                    let batches = write_outcome(outcome)?;
                    let durable = self.pipeline.batch_written(batches);
                    if let Some(batch) = self.pipeline.take_batch() {
                        self.writer.write(batch)?;
                    }
                    self.pipeline.persisted(durable)?;
                }
                () = self.shared.read_barrier.asked() => self.pipeline.read_barrier()?,
                () = self.shared.restore.asked(), if taking => {
                    self.restoring = self.shared.restore.take();
                }
                _ = core_ticks.tick() => self.pipeline.core_tick()?,
                _ = session_ticks.tick(), if taking => self.pipeline.session_tick()?,
                _ = reaps.tick(), if taking => self.pipeline.reap_tick()?,
            }
            self.carry_out();
        }
    }

    /// Carries out the pipeline's effects, in order, until it has none left. The buffer
    /// goes back and forth between the two, so no round allocates.
    fn carry_out(&mut self) {
        let mut effects = std::mem::take(&mut self.effects);
        loop {
            self.pipeline.take_effects(&mut effects);
            if effects.is_empty() {
                break;
            }
            for effect in effects.drain(..) {
                match effect {
                    Effect::Send { to, frame } => self.send(to, frame),
                    Effect::StreamSnapshot { to, zxid } => self.stream_snapshot(to, zxid),
                    Effect::ResetLink(peer) => {
                        self.streams.remove(&peer);
                        self.links.reset(peer);
                    }
                    Effect::EndTerm => {
                        self.streams.clear();
                        self.links.end_term();
                    }
                    Effect::Applied(count) => {
                        let zxid = self.shared.database.last_applied_zxid();
                        let shared = &self.shared;
                        self.snapshotter
                            .applied(count, zxid, shared, &self.storage, || live_sessions(shared));
                    }
                }
            }
        }
        self.effects = effects;
    }

    /// Sends `frame` to `to`; a `Snap` goes with the stream of its snapshot, and not at
    /// all if that stream could not start (the link is being reset).
    fn send(&mut self, to: ServerId, frame: PeerFrame) {
        if let PeerFrame::Zab(Message::Snap { .. }) = frame {
            if let Some(snapshot) = self.streams.remove(&to) {
                self.links.send_snapshot(to, frame, snapshot);
            }
            return;
        }
        self.links.send(to, frame);
    }

    /// The leader starts sending a learner its state, labelled `zxid`, from a thread of
    /// its own; the chunks wait for the `Snap` that offers them.
    fn stream_snapshot(&mut self, to: ServerId, zxid: Zxid) {
        self.outbound.retain(|outbound| !outbound.is_finished());
        let sessions = live_sessions(&self.shared);
        match Outbound::start(self.shared.clone(), to, zxid, sessions) {
            Ok((outbound, chunks)) => {
                self.outbound.push(outbound);
                self.streams.insert(to, chunks);
            }
            Err(err) => {
                tracing::error!(learner = to, cause = %err, "cannot start a snapshot transfer");
                self.pipeline.drop_link(to);
            }
        }
    }

    /// Whether link events are taken now: not when standalone (there are no links), and
    /// not while a received snapshot's chunk or seal waits for its transfer thread, so
    /// the frames behind it keep their order.
    fn takes_link_events(&self) -> bool {
        !self.standalone && self.held_pieces.is_none() && self.sealing.is_none()
    }

    fn link_event(&mut self, event: LinkEvent) -> Result<(), StorageError> {
        match event {
            LinkEvent::Disconnected { peer, breaks } => {
                self.links.disconnected(peer, breaks);
                self.streams.remove(&peer);
                // A snapshot in transit is incomplete: the leader sends a whole one again.
                if self.inbound.as_ref().is_some_and(|(source, _)| *source == peer) {
                    self.inbound = None;
                }
                self.pipeline.disconnected(peer)
            }
            LinkEvent::Frame { from, frame: PeerFrame::SnapshotPieces { zxid, index, pieces } } => {
                self.snapshot_pieces(from, zxid, index, pieces)
            }
            LinkEvent::Frame { from, frame } => {
                if let PeerFrame::Zab(Message::Snap { zxid, .. }) = &frame {
                    self.seal_snapshot(from, *zxid, frame);
                    return Ok(());
                }
                self.pipeline.peer_frame(from, frame)
            }
        }
    }

    /// Pieces of the snapshot the leader `from` is sending: the first batch starts a new
    /// transfer. A batch out of order drops the link; the leader starts over.
    fn snapshot_pieces(
        &mut self,
        from: ServerId,
        zxid: Zxid,
        index: u32,
        pieces: Vec<TransferPiece>,
    ) -> Result<(), StorageError> {
        if index == 0 {
            self.inbound = None;
            self.snapshotter.interrupt();
            let created_ms = self.shared.clock.wall_ms() as i64;
            let tree = self.shared.database.tree();
            let inbound =
                Inbound::start(self.storage.clone(), tree, zxid, created_ms).map_err(|source| {
                    StorageError::Io { what: "starting a snapshot transfer", source }
                })?;
            self.inbound = Some((from, inbound));
        }
        self.offer(from, zxid, index, pieces);
        Ok(())
    }

    /// Hands pieces to the transfer thread, or holds them while the thread is behind.
    fn offer(&mut self, from: ServerId, zxid: Zxid, index: u32, pieces: Vec<TransferPiece>) {
        let offered = match &mut self.inbound {
            Some((source, inbound)) if *source == from => inbound.offer(zxid, index, pieces),
            _ => Err(TransferError::Unexpected { zxid, index }),
        };
        match offered {
            Ok(None) => {}
            Ok(Some(pieces)) => self.held_pieces = Some((from, zxid, index, pieces)),
            Err(err) => self.abandon_snapshot(from, &err),
        }
    }

    /// The transfer thread has room again: the held chunk goes.
    fn offer_held(&mut self) {
        if let Some((from, zxid, index, pieces)) = self.held_pieces.take() {
            self.offer(from, zxid, index, pieces);
        }
    }

    /// Gives up the transfer from `from` and drops the link; the leader starts over.
    fn abandon_snapshot(&mut self, from: ServerId, err: &TransferError) {
        tracing::warn!(from, cause = %err, "a bad snapshot transfer; dropping the link");
        self.inbound = None;
        self.pipeline.drop_link(from);
    }

    /// The leader `from` offers the snapshot `zxid` it sent (the `frame`): the transfer
    /// thread finishes loading it while the shell goes on. If its chunks did not come,
    /// the link is dropped and the offer ignored.
    fn seal_snapshot(&mut self, from: ServerId, zxid: Zxid, frame: PeerFrame) {
        match self.inbound.take() {
            Some((source, inbound)) if source == from && inbound.zxid() == zxid => {
                self.sealing = Some((from, frame, Box::pin(inbound.seal())));
            }
            _ => self.abandon_snapshot(from, &TransferError::Missing { zxid }),
        }
    }

    /// The offered snapshot is sealed: every thread reading the state it replaces stops,
    /// and the pipeline gets it with its `Snap`. If it did not load, the link is dropped.
    fn snapshot_sealed(
        &mut self,
        sealed: Result<Sealed, TransferError>,
    ) -> Result<(), StorageError> {
        let Some((from, frame, _)) = self.sealing.take() else {
            return Ok(());
        };
        match sealed {
            Ok(sealed) => {
                self.snapshotter.interrupt();
                self.outbound.drain(..).for_each(Outbound::stop);
                self.pipeline.snapshot_sealed(from, sealed);
                self.pipeline.peer_frame(from, frame)
            }
            Err(err) => {
                self.abandon_snapshot(from, &err);
                Ok(())
            }
        }
    }
}

/// Waits for `future`, or forever if there is none (a disabled `select!` branch).
async fn waiting<F: Future>(future: Option<F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// A batch's outcome, or the error that must stop the server.
fn write_outcome(outcome: Option<Written>) -> Result<usize, StorageError> {
    let outcome =
        outcome.unwrap_or_else(|| Err(StorageError::Backend("the storage thread stopped".into())));
    if let Err(err) = &outcome {
        tracing::error!(cause = %err, "writing to the store failed; stopping");
    }
    outcome
}
