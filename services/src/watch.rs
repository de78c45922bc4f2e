//! One command-room subscriber: snapshot, then the log from its cursor.
//!
//! Each `Watch` call gets a task that reads the shared log at its own pace and
//! pushes into a bounded channel to the client (`subscriber_buffer` messages).
//! When that channel is full the task waits: a slow client slows only itself.
//! If it waits so long that the log drops events it has not sent, it tells the
//! client (`Resync { LAGGED, missed }`) and sends a fresh snapshot: never a
//! silent gap.
//!
//! Every subscriber sends the log's shared encoding of each event; one with a
//! bounding box decides from the event's domain value whether it lies inside
//! (no decoding), re-encodes only position batches that are partly inside,
//! and tells the client when a unit it was showing leaves the box
//! (`PositionBatch.left_area`), so screens show no ghosts.

use std::collections::HashSet;
use std::sync::Arc;

use patrol_dispatcher::{BoundingBox, Event, UnitFilter};
use patrol_proto::shared::EncodedWatchEvent;
use patrol_proto::v1 as pb;
use pb::watch_event::Kind;
use tokio::sync::mpsc;
use tonic::Status;

use crate::clock::now_ms;
use crate::convert::to_wire;
use crate::hub::{Hub, shutdown_started};
use crate::node::log::{EventBody, LoggedEvent, ReadResult};
use crate::node::snapshot::SharedSnapshot;
use crate::telemetry as m;

/// Events read from the log per wake-up.
const READ_BATCH: usize = 256;

type Tx = mpsc::Sender<Result<EncodedWatchEvent, Status>>;

/// The client went away or the server is stopping.
struct Closed;

pub struct Subscriber {
    hub: Arc<Hub>,
    bbox: Option<BoundingBox>,
    tx: Tx,
    /// With a box: the units the client was last told are inside it.
    inside: HashSet<String>,
}

impl Subscriber {
    pub fn new(hub: Arc<Hub>, bbox: Option<BoundingBox>, tx: Tx) -> Self {
        Self {
            hub,
            bbox,
            tx,
            inside: HashSet::new(),
        }
    }

    /// Runs until the client disconnects or the server shuts down.
    pub async fn run(mut self, resume_after: u64, resume_epoch: u64) {
        // Counted (and in the gauge) until this returns or is cancelled.
        let _watching = self.hub.node().watchers().enter(self.tx.clone());
        let stop = shutdown_started(self.hub.shutdown_signal());
        // A client that goes while nothing is being sent (a quiet log) ends
        // the task too, not only the next send: its place under
        // `watch.max_subscribers` is already given back.
        let tx = self.tx.clone();
        tokio::select! {
            _ = self.stream(resume_after, resume_epoch) => {}
            _ = stop => {}
            _ = tx.closed() => {}
        }
    }

    async fn stream(&mut self, resume_after: u64, resume_epoch: u64) -> Result<(), Closed> {
        let node = self.hub.node().clone();
        let mut head = node.head();
        let same_epoch = resume_epoch == node.epoch();
        let resumable = resume_after > 0 && same_epoch && node.can_resume_after(resume_after);
        let mut cursor = if resumable {
            if let Some(bbox) = self.bbox {
                // The client's view is not known here: assume it shows what is
                // inside the box now.
                let filter = UnitFilter {
                    bbox: Some(bbox),
                    ..Default::default()
                };
                self.inside = self.hub.read(|core| {
                    core.list_units(&filter, 0, usize::MAX, now_ms())
                        .0
                        .into_iter()
                        .map(|u| u.profile.id)
                        .collect()
                });
            }
            resume_after + 1
        } else {
            let snapshot = self.hub.snapshots().get(&node).await;
            if resume_after > 0 {
                let missed = if same_epoch {
                    snapshot.seq.saturating_sub(resume_after)
                } else {
                    0
                };
                self.resync(pb::ResyncReason::HistoryUnavailable, missed)
                    .await?;
            }
            self.send_snapshot(&snapshot).await?
        };
        loop {
            // Mark the head as seen before reading, so a commit racing with the
            // read still wakes us.
            head.borrow_and_update();
            match node.read_log(cursor, READ_BATCH) {
                ReadResult::Lagged { first } => {
                    metrics::counter!(m::WATCH_RESYNCS).increment(1);
                    let snapshot = self.hub.snapshots().get(&node).await;
                    // Everything after the last event sent, up to the
                    // snapshot, reaches the client only through the snapshot.
                    let missed = snapshot.seq.saturating_sub(cursor - 1);
                    tracing::warn!(cursor, first, missed, "watch subscriber lagged; resyncing");
                    self.resync(pb::ResyncReason::Lagged, missed).await?;
                    cursor = self.send_snapshot(&snapshot).await?;
                }
                ReadResult::Events(events) if events.is_empty() => {
                    // A client that leaves while nothing happens must not
                    // keep its subscriber until the next event.
                    tokio::select! {
                        changed = head.changed() => changed.map_err(|_| Closed)?,
                        () = self.tx.closed() => return Err(Closed),
                    }
                }
                ReadResult::Events(events) => {
                    let lag = head.borrow().saturating_sub(cursor);
                    metrics::histogram!(m::WATCH_LAG).record(lag as f64);
                    for event in events {
                        cursor = event.seq + 1;
                        let message = match self.bbox {
                            None => Some(event.encoded().clone()),
                            Some(bbox) => self.filtered(&bbox, &event),
                        };
                        if let Some(message) = message {
                            self.tx.send(Ok(message)).await.map_err(|_| Closed)?;
                        }
                    }
                }
            }
        }
    }

    async fn send(&self, event: EncodedWatchEvent) -> Result<(), Closed> {
        self.tx.send(Ok(event)).await.map_err(|_| Closed)
    }

    async fn resync(&self, reason: pb::ResyncReason, missed: u64) -> Result<(), Closed> {
        let resync = pb::Resync {
            reason: reason as i32,
            missed,
        };
        self.send(EncodedWatchEvent::encode(&pb::WatchEvent {
            seq: 0,
            time_unix_ms: now_ms(),
            kind: Some(Kind::Resync(resync)),
        }))
        .await
    }

    /// Sends a consistent snapshot and returns the cursor after it.
    async fn send_snapshot(&mut self, snapshot: &SharedSnapshot) -> Result<u64, Closed> {
        if let Some(bbox) = &self.bbox {
            self.inside = snapshot.unit_ids_inside(bbox).into_iter().collect();
        }
        for event in snapshot.events(self.bbox.as_ref()) {
            self.send(event).await?;
        }
        Ok(snapshot.seq + 1)
    }

    /// What a subscriber with `bbox` is sent for `event`, if anything.
    fn filtered(&mut self, bbox: &BoundingBox, event: &LoggedEvent) -> Option<EncodedWatchEvent> {
        match &event.body {
            EventBody::Positions(positions) => {
                let all_inside = event.extent.is_some_and(|e| bbox.contains_box(&e));
                if all_inside {
                    self.inside
                        .extend(positions.iter().map(|(id, _)| id.clone()));
                    return Some(event.encoded().clone());
                }
                let mut batch = pb::PositionBatch::default();
                for (id, fix) in positions {
                    if bbox.contains(&fix.at) {
                        if !self.inside.contains(id) {
                            self.inside.insert(id.clone());
                        }
                        batch.positions.push(to_wire::position((id.clone(), *fix)));
                    } else if self.inside.remove(id) {
                        batch.left_area.push(to_wire::position((id.clone(), *fix)));
                    }
                }
                if batch.positions.is_empty() && batch.left_area.is_empty() {
                    return None;
                }
                Some(EncodedWatchEvent::encode(
                    &event.to_wire(Kind::Positions(batch)),
                ))
            }
            EventBody::Core(Event::Unit(unit)) => {
                let id = &unit.profile.id;
                match unit.fix {
                    Some(fix) if bbox.contains(&fix.at) => {
                        self.inside.insert(id.clone());
                        Some(event.encoded().clone())
                    }
                    Some(fix) if self.inside.remove(id) => {
                        let left = pb::PositionBatch {
                            positions: Vec::new(),
                            left_area: vec![to_wire::position((id.clone(), fix))],
                        };
                        Some(EncodedWatchEvent::encode(
                            &event.to_wire(Kind::Positions(left)),
                        ))
                    }
                    _ => None,
                }
            }
            // About a unit the screen shows: sent; otherwise not.
            EventBody::Core(Event::UnitAlert(alert)) => self
                .inside
                .contains(&alert.unit_id)
                .then(|| event.encoded().clone()),
            EventBody::Core(_) => event
                .location()
                .is_some_and(|p| bbox.contains(&p))
                .then(|| event.encoded().clone()),
        }
    }
}
