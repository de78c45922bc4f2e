//! One command-room subscriber: snapshot, then the log from its cursor.
//!
//! Each `Watch` call gets a task that reads the shared log at its own pace and
//! pushes into a bounded channel to the client (`subscriber_buffer` messages).
//! When that channel is full the task waits: a slow client slows only itself.
//! If it waits so long that the log drops events it has not sent, it tells the
//! client (`Resync { LAGGED, missed }`) and sends a fresh snapshot: never a
//! silent gap.

use std::sync::Arc;

use patrol_dispatcher::BoundingBox;
use patrol_proto::shared::EncodedWatchEvent;
use patrol_proto::v1 as pb;
use pb::watch_event::Kind;
use prost::Message;
use tokio::sync::mpsc;
use tonic::Status;

use crate::convert::to_wire;
use crate::hub::{Hub, ReadResult, now_ms, shutdown_started};
use crate::telemetry as m;

/// Events read from the log per wake-up.
const READ_BATCH: usize = 256;
/// Units, cameras or incidents per snapshot chunk.
const SNAPSHOT_CHUNK: usize = 500;

type Tx = mpsc::Sender<Result<EncodedWatchEvent, Status>>;

/// The client went away or the server is stopping.
struct Closed;

pub struct Subscriber {
    hub: Arc<Hub>,
    bbox: Option<BoundingBox>,
    tx: Tx,
}

impl Subscriber {
    pub fn new(hub: Arc<Hub>, bbox: Option<BoundingBox>, tx: Tx) -> Self {
        Self { hub, bbox, tx }
    }

    /// Runs until the client disconnects or the server shuts down.
    pub async fn run(self, resume_after: u64, resume_epoch: u64) {
        metrics::gauge!(m::WATCH_SUBSCRIBERS).increment(1.0);
        let stop = shutdown_started(self.hub.shutdown_signal());
        tokio::select! {
            _ = self.stream(resume_after, resume_epoch) => {}
            _ = stop => {}
        }
        metrics::gauge!(m::WATCH_SUBSCRIBERS).decrement(1.0);
    }

    async fn stream(&self, resume_after: u64, resume_epoch: u64) -> Result<(), Closed> {
        let mut head = self.hub.head();
        let resumable = resume_after > 0
            && resume_epoch == self.hub.epoch()
            && self.hub.can_resume_after(resume_after);
        let mut cursor = if resumable {
            resume_after + 1
        } else {
            if resume_after > 0 {
                self.resync(pb::ResyncReason::HistoryUnavailable, 0).await?;
            }
            self.send_snapshot().await? + 1
        };
        loop {
            // Mark the head as seen before reading, so a commit racing with the
            // read still wakes us.
            head.borrow_and_update();
            match self.hub.read_log(cursor, READ_BATCH) {
                ReadResult::Lagged { missed } => {
                    metrics::counter!(m::WATCH_RESYNCS).increment(1);
                    tracing::warn!(cursor, missed, "watch subscriber lagged; resyncing");
                    self.resync(pb::ResyncReason::Lagged, missed).await?;
                    cursor = self.send_snapshot().await? + 1;
                }
                ReadResult::Events(events) if events.is_empty() => {
                    head.changed().await.map_err(|_| Closed)?;
                }
                ReadResult::Events(events) => {
                    let lag = head.borrow().saturating_sub(cursor);
                    metrics::histogram!(m::WATCH_LAG).record(lag as f64);
                    for event in events {
                        cursor = event.seq + 1;
                        let event = match &self.bbox {
                            None => event.encoded,
                            Some(bbox) => match filtered(bbox, &event.encoded) {
                                Some(event) => EncodedWatchEvent::encode(&event),
                                None => continue,
                            },
                        };
                        self.tx.send(Ok(event)).await.map_err(|_| Closed)?;
                    }
                }
            }
        }
    }

    async fn send(&self, event: pb::WatchEvent) -> Result<(), Closed> {
        self.tx
            .send(Ok(EncodedWatchEvent::encode(&event)))
            .await
            .map_err(|_| Closed)
    }

    async fn resync(&self, reason: pb::ResyncReason, missed: u64) -> Result<(), Closed> {
        let resync = pb::Resync {
            reason: reason as i32,
            missed,
        };
        self.send(pb::WatchEvent {
            seq: 0,
            time_unix_ms: now_ms(),
            kind: Some(Kind::Resync(resync)),
        })
        .await
    }

    /// Sends a consistent snapshot in chunks and returns the seq it reflects.
    async fn send_snapshot(&self) -> Result<u64, Closed> {
        let (snapshot, seq) = self.hub.snapshot();
        let time = now_ms();
        let inside = |p: Option<patrol_dispatcher::LonLat>| match (&self.bbox, p) {
            (None, _) => true,
            (Some(b), Some(p)) => b.contains(&p),
            (Some(_), None) => false,
        };
        let units: Vec<_> = snapshot
            .units
            .iter()
            .filter(|u| inside(u.fix.map(|f| f.at)))
            .collect();
        let cameras: Vec<_> = snapshot
            .cameras
            .iter()
            .filter(|c| inside(Some(c.at)))
            .collect();
        let incidents: Vec<_> = snapshot
            .incidents
            .iter()
            .filter(|i| inside(Some(i.location)))
            .collect();
        let chunk = |c: pb::SnapshotChunk| pb::WatchEvent {
            seq,
            time_unix_ms: time,
            kind: Some(Kind::Snapshot(c)),
        };
        for part in units.chunks(SNAPSHOT_CHUNK) {
            let units = part.iter().map(|u| to_wire::unit(u)).collect();
            self.send(chunk(pb::SnapshotChunk {
                units,
                ..Default::default()
            }))
            .await?;
        }
        for part in cameras.chunks(SNAPSHOT_CHUNK) {
            let cameras = part.iter().map(|c| to_wire::camera(c)).collect();
            self.send(chunk(pb::SnapshotChunk {
                cameras,
                ..Default::default()
            }))
            .await?;
        }
        for part in incidents.chunks(SNAPSHOT_CHUNK) {
            let incidents = part.iter().map(|i| to_wire::incident(i)).collect();
            self.send(chunk(pb::SnapshotChunk {
                incidents,
                ..Default::default()
            }))
            .await?;
        }
        let end = pb::SnapshotEnd {
            seq,
            units: units.len() as u64,
            cameras: cameras.len() as u64,
            incidents: incidents.len() as u64,
            log_epoch: self.hub.epoch(),
        };
        self.send(pb::WatchEvent {
            seq,
            time_unix_ms: time,
            kind: Some(Kind::SnapshotEnd(end)),
        })
        .await?;
        Ok(seq)
    }
}

/// The event as a subscriber with `bbox` should see it, or `None` when it lies
/// outside the box (positions are filtered one by one).
fn filtered(bbox: &BoundingBox, encoded: &EncodedWatchEvent) -> Option<pb::WatchEvent> {
    let event = pb::WatchEvent::decode(encoded.0.clone()).ok()?;
    let inside = |lon: f64, lat: f64| bbox.contains(&patrol_dispatcher::LonLat::new(lon, lat));
    let keep = match event.kind.as_ref()? {
        Kind::Positions(batch) => {
            let positions: Vec<_> = batch
                .positions
                .iter()
                .filter(|p| p.fix.as_ref().is_some_and(|f| inside(f.lon, f.lat)))
                .cloned()
                .collect();
            if positions.is_empty() {
                return None;
            }
            return Some(pb::WatchEvent {
                kind: Some(Kind::Positions(pb::PositionBatch { positions })),
                ..event
            });
        }
        Kind::Unit(u) => u.fix.as_ref().is_some_and(|f| inside(f.lon, f.lat)),
        Kind::Camera(c) => inside(c.lon, c.lat),
        Kind::Alert(a) => a.location.as_ref().is_some_and(|p| inside(p.lon, p.lat)),
        Kind::Incident(i) => i.location.as_ref().is_some_and(|p| inside(p.lon, p.lat)),
        Kind::Order(o) => o.location.as_ref().is_some_and(|p| inside(p.lon, p.lat)),
        Kind::Snapshot(_) | Kind::SnapshotEnd(_) | Kind::Resync(_) => true,
    };
    keep.then_some(event)
}
