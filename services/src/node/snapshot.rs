//! Snapshots for new command-room subscribers, shared.
//!
//! A snapshot taken at seq N followed by the log's events from N + 1 is a
//! consistent view however old the snapshot is, as long as the log still
//! holds N + 1. So subscribers that connect close together (a command room's
//! screens after a restart, say) share one snapshot: it is taken under the
//! core lock only as a bulk copy of the compact tables, built, converted and
//! encoded outside it, and reused while it is young
//! (`watch.snapshot_reuse_ms`) and nothing but positions has been logged
//! since. A hundred screens connecting cost the core lock a few copies, not a
//! hundred snapshots built under it.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use patrol_dispatcher::{BoundingBox, LonLat, Millis};
use patrol_proto::shared::EncodedWatchEvent;
use patrol_proto::v1 as pb;
use pb::watch_event::Kind;

use super::NodeState;
use crate::clock::now_ms;
use crate::convert::to_wire;
use crate::telemetry as m;

/// Units, cameras or incidents per snapshot chunk.
pub const SNAPSHOT_CHUNK: usize = 500;

/// One snapshot, in wire form, with where each thing is (for boxes).
#[derive(Debug)]
pub struct SharedSnapshot {
    /// Every change up to and including this seq is in it.
    pub seq: u64,
    pub time: Millis,
    pub epoch: u64,
    pub units: Vec<(Option<LonLat>, pb::Unit)>,
    pub cameras: Vec<(LonLat, pb::Camera)>,
    pub incidents: Vec<(LonLat, pb::Incident)>,
    pub tracks: Vec<(LonLat, pb::Track)>,
    /// Every zone (sent whatever the box: there are few).
    pub zones: Vec<pb::Zone>,
    built: Instant,
    /// The whole snapshot as stream events (chunks, then SnapshotEnd),
    /// encoded once for every subscriber without a box.
    encoded: OnceLock<Vec<EncodedWatchEvent>>,
}

impl SharedSnapshot {
    /// Copies the core under its lock (bulk copies of the compact unit
    /// table: no unit is built there), then builds and converts outside it.
    pub fn build(node: &NodeState) -> Self {
        let time = now_ms();
        let (snapshot, online, seq) = node.at_seq(|core, seq| {
            let snapshot = core.snapshot_copy();
            let online: Vec<bool> = snapshot
                .cameras
                .iter()
                .map(|c| core.camera_online(c, time))
                .collect();
            (snapshot, online, seq)
        });
        Self {
            seq,
            time,
            epoch: node.epoch(),
            units: snapshot
                .units
                .units(time)
                .map(|u| (u.fix.map(|f| f.at), to_wire::unit(&u)))
                .collect(),
            cameras: snapshot
                .cameras
                .iter()
                .zip(online)
                .map(|(c, online)| (c.at, to_wire::camera_at(c, online)))
                .collect(),
            incidents: snapshot
                .incidents
                .iter()
                .map(|i| (i.location, to_wire::incident(i)))
                .collect(),
            tracks: snapshot
                .tracks
                .iter()
                .map(|t| (t.last().at, to_wire::track(t)))
                .collect(),
            zones: snapshot.zones.iter().map(to_wire::zone).collect(),
            built: Instant::now(),
            encoded: OnceLock::new(),
        }
    }

    /// The snapshot as stream events for a subscriber with `bbox` (or none):
    /// chunks of units, cameras and incidents inside it, then SnapshotEnd.
    pub fn events(&self, bbox: Option<&BoundingBox>) -> Vec<EncodedWatchEvent> {
        match bbox {
            None => self.encoded.get_or_init(|| self.render(|_| true)).clone(),
            Some(b) => self.render(|p| p.is_some_and(|p| b.contains(&p))),
        }
    }

    /// Ids of the units inside `bbox` in this snapshot.
    pub fn unit_ids_inside(&self, bbox: &BoundingBox) -> Vec<String> {
        self.units
            .iter()
            .filter(|(at, _)| at.is_some_and(|p| bbox.contains(&p)))
            .map(|(_, u)| u.id.clone())
            .collect()
    }

    fn render(&self, inside: impl Fn(Option<LonLat>) -> bool) -> Vec<EncodedWatchEvent> {
        let event = |kind| {
            EncodedWatchEvent::encode(&pb::WatchEvent {
                seq: self.seq,
                time_unix_ms: self.time,
                kind: Some(kind),
            })
        };
        let units: Vec<&pb::Unit> = self
            .units
            .iter()
            .filter(|(at, _)| inside(*at))
            .map(|(_, u)| u)
            .collect();
        let cameras: Vec<&pb::Camera> = self
            .cameras
            .iter()
            .filter(|(at, _)| inside(Some(*at)))
            .map(|(_, c)| c)
            .collect();
        let incidents: Vec<&pb::Incident> = self
            .incidents
            .iter()
            .filter(|(at, _)| inside(Some(*at)))
            .map(|(_, i)| i)
            .collect();
        let tracks: Vec<&pb::Track> = self
            .tracks
            .iter()
            .filter(|(at, _)| inside(Some(*at)))
            .map(|(_, t)| t)
            .collect();
        let mut out = Vec::new();
        for part in units.chunks(SNAPSHOT_CHUNK) {
            out.push(event(Kind::Snapshot(pb::SnapshotChunk {
                units: part.iter().map(|u| (*u).clone()).collect(),
                ..Default::default()
            })));
        }
        for part in cameras.chunks(SNAPSHOT_CHUNK) {
            out.push(event(Kind::Snapshot(pb::SnapshotChunk {
                cameras: part.iter().map(|c| (*c).clone()).collect(),
                ..Default::default()
            })));
        }
        for part in incidents.chunks(SNAPSHOT_CHUNK) {
            out.push(event(Kind::Snapshot(pb::SnapshotChunk {
                incidents: part.iter().map(|i| (*i).clone()).collect(),
                ..Default::default()
            })));
        }
        for part in tracks.chunks(SNAPSHOT_CHUNK) {
            out.push(event(Kind::Snapshot(pb::SnapshotChunk {
                tracks: part.iter().map(|t| (*t).clone()).collect(),
                ..Default::default()
            })));
        }
        for part in self.zones.chunks(SNAPSHOT_CHUNK) {
            out.push(event(Kind::Snapshot(pb::SnapshotChunk {
                zones: part.to_vec(),
                ..Default::default()
            })));
        }
        out.push(event(Kind::SnapshotEnd(pb::SnapshotEnd {
            seq: self.seq,
            units: units.len() as u64,
            cameras: cameras.len() as u64,
            incidents: incidents.len() as u64,
            log_epoch: self.epoch,
        })));
        out
    }
}

/// The newest snapshot, handed to every subscriber that connects while it is
/// young and still resumable.
pub struct SnapshotCache {
    current: tokio::sync::Mutex<Option<Arc<SharedSnapshot>>>,
    reuse: Duration,
}

impl SnapshotCache {
    pub fn new(reuse: Duration) -> Self {
        Self {
            current: tokio::sync::Mutex::new(None),
            reuse,
        }
    }

    /// The newest snapshot if it is younger than the reuse window and
    /// nothing but positions was logged since (so its units, cameras and
    /// incidents are today's; the positions follow in the stream); otherwise
    /// a new one. Subscribers arriving while one is being built wait for it
    /// instead of building their own.
    pub async fn get(&self, node: &NodeState) -> Arc<SharedSnapshot> {
        let mut current = self.current.lock().await;
        if let Some(snapshot) = current.as_ref()
            && snapshot.built.elapsed() < self.reuse
            && node.only_positions_after(snapshot.seq)
        {
            metrics::counter!(m::WATCH_SNAPSHOTS, "built" => "shared").increment(1);
            return snapshot.clone();
        }
        let snapshot = Arc::new(SharedSnapshot::build(node));
        metrics::counter!(m::WATCH_SNAPSHOTS, "built" => "new").increment(1);
        *current = Some(snapshot.clone());
        snapshot
    }
}
