//! [`NodeState`]: the synchronous state of one node: the dispatcher core, the
//! command-room log and the routes to unit terminals, changed only by
//! [`NodeState::apply`] (the position tick included). Nothing here is async
//! or knows where a command came from; ordering commands is the sequencer's
//! job (in memory, or the region's Redis log).
//!
//! **Lock design.** One `Mutex` guards the core. Every change happens under it,
//! and before it is released the change's events get their sequence numbers and
//! are appended to the log; so the log order is the order of changes, and a
//! snapshot taken under the core lock is exactly "everything up to seq N".
//! Ping batches take the lock once per batch, not once per ping, and a ping
//! touches the spatial index only when its unit crosses a grid-cell border.
//! Positions are not logged per ping: the tick drains the moved units once per
//! `position_interval` into `PositionBatch` events (coalesced per unit). The
//! log has its own `RwLock`, taken for writing only while the core lock is
//! held (lock order: core, then log, then routes); subscribers read it
//! without touching the core, each from its own cursor, and appending does no
//! wire conversion (events are encoded lazily, once, outside every lock).

pub mod log;
pub mod routes;
pub mod snapshot;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use patrol_dispatcher::{Dispatcher, Event, Fix, Millis, Order, PingOutcome};
use patrol_proto::shared::parse_ping;
use patrol_proto::v1 as pb;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::command::{Command, Envelope, Outcome, PingsOutcome};
use crate::convert::{from_wire, to_wire};
use crate::error::ServerError;
use log::{EventBody, EventLog, ReadResult};
use routes::{OrderRoutes, OrderTx};

/// Observes what each applied command changed. The checkpointer tracks dirty
/// records this way; in memory nothing needs to, so `()` ignores it all.
pub trait ChangeSink {
    /// Events the core made, in order.
    fn events(&mut self, events: &[Event]) {
        let _ = events;
    }
    /// Units whose coalesced positions were just published.
    fn moved(&mut self, moved: &[(String, Fix)]) {
        let _ = moved;
    }
}

impl ChangeSink for () {}

/// Settings of the node state.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub history_events: usize,
    pub history_bytes: usize,
    pub max_positions_per_event: usize,
    /// A camera event shows the camera offline past this age, ms.
    pub camera_offline_after_ms: Millis,
}

/// How a node starts: from nothing (memory) or from the region's checkpoint.
pub struct NodeStart {
    pub core: Dispatcher,
    /// Identifies this log: seqs are comparable only within one epoch.
    pub epoch: u64,
    /// The seq of the last event already published (0: none).
    pub last_seq: u64,
}

/// The synchronous state of one node. See the module docs.
pub struct NodeState {
    core: Mutex<Dispatcher>,
    log: RwLock<EventLog>,
    head: watch::Sender<u64>,
    routes: OrderRoutes,
    watchers: crate::residue::Watchers,
    epoch: u64,
    settings: NodeSettings,
    shutdown: watch::Sender<bool>,
    /// This node's clock when it last applied a tick, and a sweeping tick.
    last_tick: AtomicI64,
    last_sweep: AtomicI64,
    /// Times this node's state was rebuilt from a checkpoint while running.
    reloads: AtomicU64,
}

impl NodeState {
    pub fn new(settings: NodeSettings, start: NodeStart) -> Self {
        Self {
            core: Mutex::new(start.core),
            log: RwLock::new(
                EventLog::starting_after(
                    start.last_seq,
                    settings.history_events,
                    settings.history_bytes,
                )
                .with_camera_offline_after(settings.camera_offline_after_ms),
            ),
            head: watch::Sender::new(start.last_seq),
            routes: OrderRoutes::default(),
            watchers: crate::residue::Watchers::default(),
            epoch: start.epoch,
            settings,
            shutdown: watch::Sender::new(false),
            last_tick: AtomicI64::new(0),
            last_sweep: AtomicI64::new(0),
            reloads: AtomicU64::new(0),
        }
    }

    fn lock_core(&self) -> MutexGuard<'_, Dispatcher> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one command; see [`Applier::apply`].
    pub fn apply(
        &self,
        envelope: Envelope,
        changes: &mut dyn ChangeSink,
    ) -> Result<Outcome, ServerError> {
        self.applier().apply(envelope, changes)
    }

    /// Takes the core lock to apply a run of commands (the log reader applies
    /// a page of entries under one lock).
    pub fn applier(&self) -> Applier<'_> {
        Applier {
            node: self,
            core: self.lock_core(),
        }
    }

    /// Reads the core. The closure runs under the core lock: keep it short.
    pub fn read<R>(&self, f: impl FnOnce(&Dispatcher) -> R) -> R {
        f(&self.lock_core())
    }

    /// Replaces the whole state with one rebuilt from a checkpoint whose events
    /// end at `last_seq` (a node that fell behind the log's trim point). Every
    /// Watch subscriber behind it gets a Resync and a fresh snapshot; each
    /// connected terminal is sent its unit's current order again.
    pub fn reload(&self, core: Dispatcher, last_seq: u64) {
        let mut guard = self.lock_core();
        *guard = core;
        {
            let mut log = self.log.write().unwrap_or_else(|p| p.into_inner());
            *log = EventLog::starting_after(
                last_seq.max(log.last_seq()),
                self.settings.history_events,
                self.settings.history_bytes,
            )
            .with_camera_offline_after(self.settings.camera_offline_after_ms);
        }
        for unit_id in self.routes.unit_ids() {
            if let Ok(Some(order)) = guard.current_order(&unit_id) {
                self.routes.deliver(&order, pb::OrderState::Active);
            }
        }
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.head.send_replace(last_seq);
    }

    /// How many times [`NodeState::reload`] ran.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// This node's clock when it last applied a tick (any node's), and a
    /// sweeping one: a node's ticker makes a tick only when none came lately.
    pub fn last_ticks(&self) -> (Millis, Millis) {
        (
            self.last_tick.load(Ordering::Relaxed),
            self.last_sweep.load(Ordering::Relaxed),
        )
    }

    /// The newest seq in the log.
    pub fn last_seq(&self) -> u64 {
        self.log
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last_seq()
    }

    /// The running `Watch` subscribers.
    pub fn watchers(&self) -> &crate::residue::Watchers {
        &self.watchers
    }

    /// Units with an open `ReceiveOrders` stream.
    pub fn order_routes(&self) -> usize {
        self.routes.len()
    }

    /// Encoded bytes of the command-room history.
    pub fn history_bytes(&self) -> usize {
        self.log.read().unwrap_or_else(|p| p.into_inner()).bytes()
    }

    /// Reads the log from `from` (see [`EventLog::read_from`]).
    pub fn read_log(&self, from: u64, max: usize) -> ReadResult {
        self.log
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .read_from(from, max)
    }

    /// Whether the log holds everything after `seq` and all of it is
    /// position batches (a snapshot at `seq` is then current but for them).
    pub fn only_positions_after(&self, seq: u64) -> bool {
        let log = self.log.read().unwrap_or_else(|p| p.into_inner());
        log.can_resume_after(seq) && log.all_positions_from(seq + 1)
    }

    pub fn can_resume_after(&self, seq: u64) -> bool {
        self.log
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .can_resume_after(seq)
    }

    /// The log's epoch (see `SnapshotEnd.log_epoch`).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The newest seq, for waking subscribers.
    pub fn head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Runs `f` on the core together with the seq it reflects, atomically.
    pub fn at_seq<R>(&self, f: impl FnOnce(&Dispatcher, u64) -> R) -> R {
        let core = self.lock_core();
        let seq = self
            .log
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last_seq();
        f(&core, seq)
    }

    /// Opens a terminal's order route, replacing an older one for the unit,
    /// and returns its connection number and the unit's current order (if
    /// any), atomically, so no order falls between the two.
    pub fn open_orders(
        &self,
        unit_id: &str,
        tx: OrderTx,
    ) -> Result<(u64, Option<Order>), ServerError> {
        let core = self.lock_core();
        let current = core.current_order(unit_id)?;
        let connection = self.routes.open(unit_id, tx);
        Ok((connection, current))
    }

    /// Removes a terminal's route if it is still the one opened as `connection`.
    pub fn close_orders(&self, unit_id: &str, connection: u64) {
        self.routes.close(unit_id, connection);
    }

    /// Resolves when shutdown starts.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Marks shutdown and ends every terminal's order stream.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        self.routes.close_all();
    }
}

/// The core lock, held to apply commands. Only [`Applier::apply`] changes
/// anything; [`Applier::core`] reads.
pub struct Applier<'a> {
    node: &'a NodeState,
    core: MutexGuard<'a, Dispatcher>,
}

impl Applier<'_> {
    /// The core, read-only.
    pub fn core(&self) -> &Dispatcher {
        &self.core
    }

    /// The newest seq in the log.
    pub fn last_seq(&self) -> u64 {
        self.node.last_seq()
    }

    /// Applies `envelope` at its time, logs the events it made, in order, and
    /// routes new orders to their terminals; `changes` sees every change.
    pub fn apply(
        &mut self,
        envelope: Envelope,
        changes: &mut dyn ChangeSink,
    ) -> Result<Outcome, ServerError> {
        let Envelope { actor, time, body } = envelope;
        let core = &mut *self.core;
        let outcome = match body {
            Command::RegisterUnit(profile) => {
                let (unit, created) = core.register_unit(profile, time)?;
                Ok(Outcome::Unit { unit, created })
            }
            Command::Pings(pings) => Ok(Outcome::Pings(apply_pings(core, &pings, time))),
            Command::UpdateStatus { unit_id, status } => core
                .update_unit_status(&unit_id, status, &actor, time)
                .map(|unit| Outcome::Unit {
                    unit,
                    created: false,
                })
                .map_err(ServerError::from),
            Command::RegisterCamera(camera) => core
                .register_camera(camera)
                .map(|(camera, created)| Outcome::Camera { camera, created })
                .map_err(ServerError::from),
            Command::PostAlert(alert) => core
                .post_alert(alert, &actor, time)
                .map(Outcome::Alert)
                .map_err(ServerError::from),
            Command::CreateIncident(new) => core
                .create_incident(new, &actor, time)
                .map(Outcome::Incident)
                .map_err(ServerError::from),
            Command::Dispatch(request) => core
                .dispatch(&request, &actor, time)
                .map(|(incident, orders)| Outcome::Dispatched { incident, orders })
                .map_err(ServerError::from),
            Command::UpdateIncident(update) => core
                .update_incident(&update, &actor, time)
                .map(Outcome::Incident)
                .map_err(ServerError::from),
            Command::AcknowledgeOrder { unit_id, order_id } => core
                .acknowledge_order(&unit_id, &order_id, &actor, time)
                .map(Outcome::Order)
                .map_err(ServerError::from),
            Command::AimCameras {
                target,
                target_height_m,
                camera_ids,
                limit,
                dry_run,
            } => core
                .aim_cameras_at_target(
                    &target,
                    target_height_m,
                    &camera_ids,
                    limit,
                    dry_run,
                    &actor,
                    time,
                )
                .map(|(point, aims)| Outcome::Aims {
                    target: point,
                    aims,
                })
                .map_err(ServerError::from),
            Command::FollowUnit {
                unit_id,
                camera_ids,
                stop,
            } => if stop {
                core.unfollow_unit(&unit_id).map(|_| Outcome::Follow(None))
            } else {
                core.follow_unit(&unit_id, &camera_ids, time)
                    .map(|f| Outcome::Follow(Some(f)))
            }
            .map_err(ServerError::from),
            Command::StartTrack(new) => core
                .start_track(new, &actor, time)
                .map(|t| Outcome::Track(Box::new(t)))
                .map_err(ServerError::from),
            Command::AddSighting { track_id, sighting } => core
                .add_sighting(&track_id, &sighting, &actor, time)
                .map(|t| Outcome::Track(Box::new(t)))
                .map_err(ServerError::from),
            Command::CloseTrack { track_id, reason } => core
                .close_track(&track_id, &reason, &actor, time)
                .map(|t| Outcome::Track(Box::new(t)))
                .map_err(ServerError::from),
            Command::PutZone(spec) => core
                .put_zone(*spec, time)
                .map(|z| Outcome::Zone(Box::new(z)))
                .map_err(ServerError::from),
            Command::RemoveZone { zone_id } => core
                .remove_zone(&zone_id, time)
                .map(|z| Outcome::Zone(Box::new(z)))
                .map_err(ServerError::from),
            Command::SetHomeZone { unit_id, zone_id } => core
                .set_home_zone(&unit_id, zone_id.as_deref())
                .map(|()| Outcome::Done)
                .map_err(ServerError::from),
            Command::CameraHealth {
                camera_ids,
                time: seen,
            } => {
                let mut updated = 0;
                for id in &camera_ids {
                    // An unknown camera in a batch changes nothing and does
                    // not stop the others.
                    if core.touch_camera(id, seen, time).unwrap_or(false) {
                        updated += 1;
                    }
                }
                Ok(Outcome::Count(updated))
            }
            Command::Tick { sweep } => {
                let local = now_ms();
                self.node.last_tick.store(local, Ordering::Relaxed);
                if sweep {
                    self.node.last_sweep.store(local, Ordering::Relaxed);
                }
                let positions = self.publish_positions(time, changes);
                if sweep {
                    self.core.sweep_offline(time);
                    self.core.sweep_offline_cameras(time);
                }
                // Acknowledgement deadlines and status timers; cameras
                // following units turn to their latest fixes.
                self.core.run_timers(time);
                self.core.run_follows(time);
                Ok(Outcome::Ticked { positions })
            }
        };
        self.commit(time, changes);
        outcome
    }

    /// Logs the events the core left since the last commit, in order, stamped
    /// `time`, and routes new orders to their terminals.
    fn commit(&mut self, time: Millis, changes: &mut dyn ChangeSink) {
        if !self.core.has_events() {
            return;
        }
        let events = self.core.take_events();
        changes.events(&events);
        let node = self.node;
        for event in &events {
            match event {
                Event::Order(order) => node.routes.deliver(order, pb::OrderState::Active),
                Event::OrderReleased(order) => node.routes.deliver(order, pb::OrderState::Released),
                _ => {}
            }
        }
        let last = {
            let mut log = node.log.write().unwrap_or_else(|p| p.into_inner());
            let mut last = log.last_seq();
            for event in events {
                last = log.append(time, EventBody::Core(event));
            }
            last
        };
        node.head.send_replace(last);
    }

    /// Publishes the positions of units that moved since the last tick, as
    /// `PositionBatch` events stamped `time`.
    fn publish_positions(&mut self, time: Millis, changes: &mut dyn ChangeSink) -> usize {
        let moved = self.core.take_moved();
        if moved.is_empty() {
            return 0;
        }
        changes.moved(&moved);
        let count = moved.len();
        let per_event = self.node.settings.max_positions_per_event;
        let node = self.node;
        let last = {
            let mut log = node.log.write().unwrap_or_else(|p| p.into_inner());
            let mut last = log.last_seq();
            let mut moved = moved.into_iter().peekable();
            while moved.peek().is_some() {
                let batch: Vec<_> = moved.by_ref().take(per_event).collect();
                last = log.append(time, EventBody::Positions(batch));
            }
            last
        };
        node.head.send_replace(last);
        count
    }
}

/// Applies a batch of pings that passed the edge's checks (so each parses);
/// what is refused here depends on state: unknown units, older fixes.
fn apply_pings(core: &mut Dispatcher, raw: &[Bytes], now: Millis) -> PingsOutcome {
    let mut out = PingsOutcome::default();
    let (mut accepted, mut duplicates) = (0, 0);
    for (i, bytes) in raw.iter().enumerate() {
        let Ok(view) = parse_ping(bytes) else {
            // Checked at the edge; an entry from an older build may still
            // hold one.
            out.reject(
                i,
                "",
                pb::PingRejectReason::Malformed,
                "not a valid Ping".to_string(),
            );
            continue;
        };
        match core.apply_ping(&from_wire::ping(&view), now) {
            Ok(PingOutcome::Moved) => accepted += 1,
            Ok(PingOutcome::Duplicate) => duplicates += 1,
            Err(rejection) => out.reject(
                i,
                view.unit_id,
                to_wire::ping_reject_reason(&rejection),
                rejection.message(view.unit_id),
            ),
        }
    }
    out.accepted = accepted;
    out.duplicates = duplicates;
    out
}
