//! The shared state of one node: the dispatcher core, the ordered event log
//! that feeds the command room, and the routes to unit terminals.
//!
//! **Lock design.** One `Mutex` guards the core. Every change happens under it,
//! and before it is released the change's events get their sequence numbers and
//! are appended to the log ([`Hub::commit`]); so the log order is the order of
//! changes, and a snapshot taken under the core lock is exactly "everything up
//! to seq N". Ping batches take the lock once per batch, not once per ping, and
//! a ping touches the spatial index only when its unit crosses a grid-cell
//! border, so the critical section is a few hundred nanoseconds per ping. Positions are not logged per ping: a ticker
//! drains the moved units once per `position_interval` into `PositionBatch`
//! events (coalesced per unit). The log has its own `RwLock`, taken for writing
//! only while the core lock is held (lock order: core, then log, then orders);
//! subscribers read it without touching the core, each from its own cursor.
//!
//! **Where changes come from.** Every change is a [`Command`] run by
//! [`Hub::apply_locked`]. In memory, [`Hub::execute`] applies it at once; with
//! Redis it first goes to the region's log and this node's log reader applies
//! it in log order, like every other node (see [`crate::durable`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use patrol_dispatcher::{Dispatcher, Millis, Order};
use patrol_proto::shared::EncodedWatchEvent;
use patrol_proto::v1 as pb;
use tokio::sync::{mpsc, watch};
use tonic::Status;

use crate::command::{self, Command, Outcome};
use crate::config::Config;
use crate::convert::to_wire;
use crate::durable::RedisLog;
use crate::durable::checkpoint::Dirty;
use crate::telemetry as m;

/// Wall-clock Unix milliseconds: the only clock the server reads.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// One logged stream event, encoded once and shared by every subscriber.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub seq: u64,
    pub encoded: EncodedWatchEvent,
}

/// The bounded history of stream events, each with its sequence number. Bounded
/// by count and by encoded bytes, whichever is reached first.
#[derive(Debug)]
pub struct EventLog {
    events: VecDeque<LoggedEvent>,
    /// Seq of `events[0]` (or of the next event when empty).
    first_seq: u64,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

/// What a reader gets from the log.
#[derive(Debug)]
pub enum ReadResult {
    /// Events from the cursor on (possibly none yet).
    Events(Vec<LoggedEvent>),
    /// The cursor's events were dropped; `missed` of them.
    Lagged { missed: u64 },
}

impl EventLog {
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        Self::starting_after(0, max_events, max_bytes)
    }

    /// A log whose first event will be `last_seq + 1` (a node rebuilt from a
    /// checkpoint carries on the region's numbering).
    pub fn starting_after(last_seq: u64, max_events: usize, max_bytes: usize) -> Self {
        Self {
            events: VecDeque::with_capacity(max_events.min(1 << 16)),
            first_seq: last_seq + 1,
            bytes: 0,
            max_events,
            max_bytes,
        }
    }

    /// Seq of the newest event, 0 when none was ever logged.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64 - 1
    }

    fn append(&mut self, time: Millis, kind: pb::watch_event::Kind) {
        let seq = self.last_seq() + 1;
        let encoded = EncodedWatchEvent::encode(&pb::WatchEvent {
            seq,
            time_unix_ms: time,
            kind: Some(kind),
        });
        self.bytes += encoded.0.len();
        self.events.push_back(LoggedEvent { seq, encoded });
        while self.events.len() > 1
            && (self.events.len() > self.max_events || self.bytes > self.max_bytes)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.encoded.0.len();
                self.first_seq += 1;
            }
        }
    }

    /// Up to `max` events starting at seq `from`.
    pub fn read_from(&self, from: u64, max: usize) -> ReadResult {
        if from < self.first_seq {
            return ReadResult::Lagged {
                missed: self.first_seq - from,
            };
        }
        let start = (from - self.first_seq) as usize;
        ReadResult::Events(self.events.iter().skip(start).take(max).cloned().collect())
    }

    /// Whether a client that processed `seq` can resume from the history.
    pub fn can_resume_after(&self, seq: u64) -> bool {
        seq + 1 >= self.first_seq && seq <= self.last_seq()
    }
}

/// A terminal's order stream: the newest `ReceiveOrders` call per unit.
struct OrderRoute {
    connection: u64,
    tx: mpsc::Sender<Result<pb::DispatchOrder, tonic::Status>>,
}

/// Capacity of each terminal's order queue. When full the order is not lost: it
/// stays the unit's current order and is re-sent when the terminal reconnects.
pub const ORDER_QUEUE: usize = 32;

/// One node's shared state. See the module docs for the lock design.
pub struct Hub {
    core: Mutex<Dispatcher>,
    log: RwLock<EventLog>,
    head: watch::Sender<u64>,
    orders: Mutex<HashMap<String, OrderRoute>>,
    next_connection: AtomicU64,
    /// Identifies this log: seqs are comparable only within one epoch. The
    /// in-memory log starts afresh with each process, so it is the start time;
    /// with Redis it is the region's, shared by its nodes and restarts.
    epoch: u64,
    pub config: Config,
    shutdown: watch::Sender<bool>,
    /// The region's log, when Redis is configured.
    durable: Option<Arc<RedisLog>>,
    /// What changed since the last checkpoint (Redis only).
    dirty: Option<Mutex<Dirty>>,
    /// This node's clock when it last applied a tick, and a sweeping tick.
    last_tick: AtomicI64,
    last_sweep: AtomicI64,
}

/// How a node starts: from nothing (memory) or from the region's checkpoint.
pub struct HubStart {
    pub core: Dispatcher,
    pub epoch: u64,
    /// The seq of the last event already published (0: none).
    pub last_seq: u64,
    pub durable: Option<Arc<RedisLog>>,
}

impl Hub {
    /// An in-memory node.
    pub fn new(config: Config) -> Arc<Self> {
        let start = HubStart {
            core: Dispatcher::new(config.dispatcher()),
            epoch: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                .max(1),
            last_seq: 0,
            durable: None,
        };
        Self::from_start(config, start)
    }

    pub fn from_start(config: Config, start: HubStart) -> Arc<Self> {
        let dirty = start.durable.as_ref().map(|_| Mutex::new(Dirty::default()));
        Arc::new(Self {
            core: Mutex::new(start.core),
            log: RwLock::new(EventLog::starting_after(
                start.last_seq,
                config.watch.history_events,
                config.watch.history_bytes,
            )),
            head: watch::Sender::new(start.last_seq),
            orders: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
            epoch: start.epoch,
            config,
            shutdown: watch::Sender::new(false),
            durable: start.durable,
            dirty,
            last_tick: AtomicI64::new(0),
            last_sweep: AtomicI64::new(0),
        })
    }

    /// Makes a change: in memory at once; with Redis once it is in the
    /// region's log and this node has applied it.
    pub async fn execute(&self, command: Command) -> Result<Outcome, Status> {
        match &self.durable {
            Some(log) => log.submit(command).await,
            None => {
                let mut core = self.core();
                self.apply_locked(&mut core, command, now_ms())
            }
        }
    }

    /// Applies a command and logs its events. Call with the core lock held.
    pub fn apply_locked(
        &self,
        core: &mut Dispatcher,
        command: Command,
        now: Millis,
    ) -> Result<Outcome, Status> {
        if let Command::Tick { sweep } = command {
            let local = now_ms();
            self.last_tick.store(local, Ordering::Relaxed);
            if sweep {
                self.last_sweep.store(local, Ordering::Relaxed);
            }
        }
        let outcome = command::apply(self, core, command, now);
        self.commit(core, now);
        outcome
    }

    /// This node's clock when it last applied a tick (any node's), and a
    /// sweeping one: a node's ticker makes a tick only when none came lately.
    pub fn last_ticks(&self) -> (Millis, Millis) {
        (
            self.last_tick.load(Ordering::Relaxed),
            self.last_sweep.load(Ordering::Relaxed),
        )
    }

    /// What changed since the last checkpoint (emptied).
    pub fn take_dirty(&self) -> Dirty {
        self.dirty
            .as_ref()
            .map(|d| std::mem::take(&mut *d.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default()
    }

    /// Puts back changes whose checkpoint was not written.
    pub fn return_dirty(&self, dirty: Dirty) {
        if let Some(d) = &self.dirty {
            d.lock().unwrap_or_else(|p| p.into_inner()).absorb(dirty);
        }
    }

    fn mark_dirty(&self, f: impl FnOnce(&mut Dirty)) {
        if let Some(d) = &self.dirty {
            f(&mut d.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// The newest seq in the log.
    pub fn last_seq(&self) -> u64 {
        self.log
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last_seq()
    }

    /// Locks the core for reading. Changes go through [`Hub::execute`].
    pub fn core(&self) -> MutexGuard<'_, Dispatcher> {
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Logs the events the core left since the last commit, in order, stamped
    /// `now`, and routes new orders to their terminals. Call with the core
    /// lock held.
    fn commit(&self, core: &mut Dispatcher, now: Millis) {
        if !core.has_events() {
            return;
        }
        let events = core.take_events();
        self.mark_dirty(|dirty| {
            use patrol_dispatcher::Event;
            for event in &events {
                match event {
                    Event::Unit(u) => {
                        dirty.units.insert(u.profile.id.clone());
                    }
                    Event::Camera(c) => {
                        dirty.cameras.insert(c.id.clone());
                    }
                    Event::Incident(i) => {
                        dirty.incidents.insert(i.id.clone());
                    }
                    Event::Order(o) | Event::OrderReleased(o) => {
                        dirty.units.insert(o.unit_id.clone());
                        dirty.incidents.insert(o.incident_id.clone());
                    }
                    Event::Alert(a) => {
                        if let Some(id) = &a.incident_id {
                            dirty.incidents.insert(id.clone());
                        }
                    }
                }
            }
        });
        let last = {
            let mut log = self.log.write().unwrap_or_else(|p| p.into_inner());
            for event in &events {
                log.append(now, to_wire::event_kind(event));
            }
            log.last_seq()
        };
        for event in &events {
            match event {
                patrol_dispatcher::Event::Order(order) => {
                    self.deliver_order(order, pb::OrderState::Active)
                }
                patrol_dispatcher::Event::OrderReleased(order) => {
                    self.deliver_order(order, pb::OrderState::Released)
                }
                _ => {}
            }
        }
        self.head.send_replace(last);
    }

    /// Publishes the positions of units that moved since the last tick, as
    /// `PositionBatch` events stamped `now`. Call with the core lock held.
    pub fn publish_positions(&self, core: &mut Dispatcher, now: Millis) -> usize {
        let moved = core.take_moved();
        if moved.is_empty() {
            return 0;
        }
        self.mark_dirty(|dirty| dirty.units.extend(moved.iter().map(|(id, _)| id.clone())));
        let count = moved.len();
        let per_event = self.config.watch.max_positions_per_event;
        let mut positions = moved.into_iter().map(to_wire::position).peekable();
        let last = {
            let mut log = self.log.write().unwrap_or_else(|p| p.into_inner());
            while positions.peek().is_some() {
                let batch = pb::PositionBatch {
                    positions: positions.by_ref().take(per_event).collect(),
                };
                log.append(now, pb::watch_event::Kind::Positions(batch));
            }
            log.last_seq()
        };
        self.head.send_replace(last);
        count
    }

    /// Reads the log from `from` (see [`EventLog::read_from`]).
    pub fn read_log(&self, from: u64, max: usize) -> ReadResult {
        self.log
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .read_from(from, max)
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

    /// Snapshot of the core and the seq it reflects, taken atomically.
    pub fn snapshot(&self) -> (patrol_dispatcher::Snapshot, u64) {
        let core = self.core();
        let seq = self
            .log
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last_seq();
        (core.snapshot(now_ms()), seq)
    }

    fn deliver_order(&self, order: &Order, state: pb::OrderState) {
        let routes = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        let Some(route) = routes.get(&order.unit_id) else {
            return;
        };
        match route.tx.try_send(Ok(to_wire::order(order, state))) {
            Ok(()) => metrics::counter!(m::ORDERS_DELIVERED).increment(1),
            Err(_) => {
                metrics::counter!(m::ORDERS_QUEUE_FULL).increment(1);
                tracing::warn!(unit = %order.unit_id, order = %order.id, "order queue full or closed; the order stays current for the next ReceiveOrders");
            }
        }
    }

    /// Opens a terminal's order route, replacing an older one for the unit,
    /// and returns the unit's current order (if any) atomically with it, so no
    /// order falls between the two.
    pub fn open_orders(
        &self,
        unit_id: &str,
        tx: mpsc::Sender<Result<pb::DispatchOrder, tonic::Status>>,
    ) -> Result<(u64, Option<Order>), patrol_dispatcher::Error> {
        let core = self.core();
        let current = core.current_order(unit_id)?;
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let replaced = self
            .orders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(unit_id.to_string(), OrderRoute { connection, tx });
        if let Some(old) = replaced {
            // The older terminal must not reconnect and take the unit back.
            let _ = old.tx.try_send(Err(tonic::Status::aborted(format!(
                "replaced by a newer ReceiveOrders for unit {unit_id}"
            ))));
        }
        Ok((connection, current))
    }

    /// Removes a terminal's route if it is still the one opened as `connection`.
    pub fn close_orders(&self, unit_id: &str, connection: u64) {
        let mut routes = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        if routes
            .get(unit_id)
            .is_some_and(|r| r.connection == connection)
        {
            routes.remove(unit_id);
        }
    }

    /// Resolves when shutdown starts.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        if let Some(log) = &self.durable {
            log.close();
        }
        // Ends every ReceiveOrders stream, telling terminals to reconnect.
        let routes = std::mem::take(&mut *self.orders.lock().unwrap_or_else(|p| p.into_inner()));
        for route in routes.into_values() {
            let _ = route.tx.try_send(Err(tonic::Status::unavailable(
                "server shutting down; reconnect",
            )));
        }
    }
}

/// Waits until `rx` says shutdown has begun.
pub async fn shutdown_started(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> pb::watch_event::Kind {
        pb::watch_event::Kind::Positions(pb::PositionBatch::default())
    }

    #[test]
    fn log_keeps_a_bounded_history_and_reports_lag() {
        let mut log = EventLog::new(16, usize::MAX);
        assert_eq!(log.last_seq(), 0);
        assert!(log.can_resume_after(0));
        for _ in 0..20 {
            log.append(1, kind());
        }
        assert_eq!(log.last_seq(), 20);
        match log.read_from(1, 100) {
            ReadResult::Lagged { missed } => assert_eq!(missed, 4),
            other => panic!("{other:?}"),
        }
        match log.read_from(18, 100) {
            ReadResult::Events(e) => {
                assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), [18, 19, 20])
            }
            other => panic!("{other:?}"),
        }
        assert!(log.can_resume_after(4));
        assert!(!log.can_resume_after(3));
        assert!(!log.can_resume_after(21));
    }

    #[test]
    fn log_is_bounded_by_bytes_too() {
        let mut log = EventLog::new(1000, 100);
        for _ in 0..50 {
            log.append(1, kind());
        }
        assert_eq!(log.last_seq(), 50);
        assert!(log.bytes <= 100);
        assert!(matches!(log.read_from(1, 10), ReadResult::Lagged { .. }));
        match log.read_from(50, 10) {
            ReadResult::Events(e) => assert_eq!(e.len(), 1),
            other => panic!("{other:?}"),
        }
    }
}
