//! The command-room log: the bounded history of stream events, each with its
//! sequence number.
//!
//! Each event is held once, as a shared value ([`LoggedEvent`] behind an
//! `Arc`): the domain change it reports, where it happened (so a subscriber
//! with a bounding box filters without decoding anything), and its wire
//! encoding, made lazily by the first subscriber that sends it and then shared
//! by all. Appending happens under the core lock, so it does no wire
//! conversion at all.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use patrol_dispatcher::{BoundingBox, Event, Fix, LonLat, Millis};
use patrol_proto::shared::EncodedWatchEvent;
use patrol_proto::v1 as pb;

use crate::convert::to_wire;

/// What a logged event reports.
// Each logged event is held once (shared by every subscriber) and a
// positions batch is one event per tick, so the unboxed core event costs
// little; boxing it would add an allocation to every core change.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    /// A change the core made.
    Core(Event),
    /// The latest positions of units that moved since the previous batch.
    Positions(Vec<(String, Fix)>),
}

/// One logged stream event, shared by every subscriber.
#[derive(Debug)]
pub struct LoggedEvent {
    pub seq: u64,
    pub time: Millis,
    pub body: EventBody,
    /// For positions: the box around them (all in or all out is decided
    /// without looking at each one).
    pub extent: Option<BoundingBox>,
    /// The camera offline age, to show a camera event's health.
    camera_offline_after_ms: Millis,
    encoded: OnceLock<EncodedWatchEvent>,
}

impl LoggedEvent {
    fn new(seq: u64, time: Millis, body: EventBody, camera_offline_after_ms: Millis) -> Self {
        let extent = match &body {
            EventBody::Positions(positions) => extent(positions.iter().map(|(_, f)| f.at)),
            EventBody::Core(_) => None,
        };
        Self {
            seq,
            time,
            body,
            extent,
            camera_offline_after_ms,
            encoded: OnceLock::new(),
        }
    }

    /// The wire event, encoded on first use and shared afterwards.
    pub fn encoded(&self) -> &EncodedWatchEvent {
        self.encoded
            .get_or_init(|| EncodedWatchEvent::encode(&self.to_wire(self.kind())))
    }

    /// Whether the shared encoding was already made (for tests and metrics).
    pub fn is_encoded(&self) -> bool {
        self.encoded.get().is_some()
    }

    /// The event's wire kind.
    pub fn kind(&self) -> pb::watch_event::Kind {
        match &self.body {
            EventBody::Core(Event::Camera(c)) => pb::watch_event::Kind::Camera(to_wire::camera_at(
                c,
                c.is_online(self.time, self.camera_offline_after_ms),
            )),
            EventBody::Core(event) => to_wire::event_kind(event),
            EventBody::Positions(positions) => {
                pb::watch_event::Kind::Positions(pb::PositionBatch {
                    positions: positions
                        .iter()
                        .map(|(id, fix)| to_wire::position((id.clone(), *fix)))
                        .collect(),
                    left_area: Vec::new(),
                })
            }
        }
    }

    /// `kind` as a whole event with this one's seq and time.
    pub fn to_wire(&self, kind: pb::watch_event::Kind) -> pb::WatchEvent {
        pb::WatchEvent {
            seq: self.seq,
            time_unix_ms: self.time,
            kind: Some(kind),
        }
    }

    /// Where a core event happened, if it has a place.
    pub fn location(&self) -> Option<LonLat> {
        match &self.body {
            EventBody::Core(Event::Unit(u)) => u.fix.map(|f| f.at),
            EventBody::Core(Event::Camera(c)) => Some(c.at),
            EventBody::Core(Event::Alert(a)) => Some(a.location),
            EventBody::Core(Event::Incident(i)) => Some(i.location),
            EventBody::Core(Event::Order(o) | Event::OrderReleased(o)) => Some(o.location),
            EventBody::Core(Event::Track(t)) => Some(t.last().at),
            EventBody::Core(Event::UnitInView(v)) => Some(v.at),
            // Zones and unit alerts go to every screen.
            EventBody::Core(Event::UnitAlert(_) | Event::Zone(_)) | EventBody::Positions(_) => None,
        }
    }

    /// A rough size, for bounding the history by bytes without encoding.
    fn approx_bytes(&self) -> usize {
        const BASE: usize = 64;
        BASE + match &self.body {
            EventBody::Positions(p) => p.iter().map(|(id, _)| id.len() + 56).sum(),
            EventBody::Core(Event::Unit(u)) => {
                120 + u.profile.id.len() * 2
                    + u.profile.call_sign.len()
                    + u.profile
                        .capabilities
                        .iter()
                        .map(|c| c.len() + 2)
                        .sum::<usize>()
            }
            EventBody::Core(Event::Camera(c)) => 96 + c.id.len() + c.name.len(),
            EventBody::Core(Event::Alert(a)) => 96 + a.label.len() + a.snapshot_uri.len(),
            EventBody::Core(Event::Incident(i)) => {
                160 + i.description.len()
                    + i.audit
                        .iter()
                        .map(|a| 48 + a.action.len() + a.detail.len())
                        .sum::<usize>()
            }
            EventBody::Core(Event::Order(o) | Event::OrderReleased(o)) => {
                128 + o.description.len() + o.note.len() + o.route.len() * 20
            }
            EventBody::Core(Event::UnitAlert(a)) => 64 + a.unit_id.len() + a.message.len(),
            EventBody::Core(Event::UnitInView(v)) => 48 + v.unit_id.len() + v.camera_id.len(),
            EventBody::Core(Event::Zone(z)) => {
                64 + z.zone_id.len()
                    + z.zone.as_ref().map_or(0, |zone| {
                        zone.name.len()
                            + zone
                                .polygon
                                .0
                                .iter()
                                .map(|p| p.exterior().0.len() * 20)
                                .sum::<usize>()
                    })
            }
            EventBody::Core(Event::Track(t)) => {
                128 + t.label.len()
                    + t.sightings.len() * 64
                    + t.prediction.as_ref().map_or(0, |p| {
                        (p.path.len() + p.ahead.len()) * 20 + p.handoffs.len() * 96
                    })
            }
        }
    }
}

fn extent(points: impl Iterator<Item = LonLat>) -> Option<BoundingBox> {
    let mut b: Option<BoundingBox> = None;
    for p in points {
        let e = b.get_or_insert(BoundingBox {
            west: p.lon,
            south: p.lat,
            east: p.lon,
            north: p.lat,
        });
        e.west = e.west.min(p.lon);
        e.east = e.east.max(p.lon);
        e.south = e.south.min(p.lat);
        e.north = e.north.max(p.lat);
    }
    b
}

/// The bounded history of stream events. Bounded by count and by (estimated)
/// bytes, whichever is reached first.
#[derive(Debug)]
pub struct EventLog {
    events: VecDeque<Arc<LoggedEvent>>,
    /// Seq of `events[0]` (or of the next event when empty).
    first_seq: u64,
    bytes: usize,
    sizes: VecDeque<u32>,
    max_events: usize,
    max_bytes: usize,
    camera_offline_after_ms: Millis,
}

/// What a reader gets from the log.
#[derive(Debug)]
pub enum ReadResult {
    /// Events from the cursor on (possibly none yet).
    Events(Vec<Arc<LoggedEvent>>),
    /// The cursor's events were dropped; the oldest one held is `first`.
    Lagged { first: u64 },
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
            sizes: VecDeque::with_capacity(max_events.min(1 << 16)),
            max_events,
            max_bytes,
            camera_offline_after_ms: Millis::MAX,
        }
    }

    /// Camera events show a camera offline when its last report is older
    /// than this at the event's time.
    pub fn with_camera_offline_after(mut self, ms: Millis) -> Self {
        self.camera_offline_after_ms = ms;
        self
    }

    /// Seq of the newest event, 0 when none was ever logged.
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64 - 1
    }

    /// Appends an event stamped `time`; returns its seq.
    pub fn append(&mut self, time: Millis, body: EventBody) -> u64 {
        let seq = self.last_seq() + 1;
        let event = LoggedEvent::new(seq, time, body, self.camera_offline_after_ms);
        let size = event.approx_bytes();
        self.bytes += size;
        self.sizes.push_back(size as u32);
        self.events.push_back(Arc::new(event));
        while self.events.len() > 1
            && (self.events.len() > self.max_events || self.bytes > self.max_bytes)
        {
            self.events.pop_front();
            if let Some(size) = self.sizes.pop_front() {
                self.bytes -= size as usize;
            }
            self.first_seq += 1;
        }
        seq
    }

    /// Up to `max` events starting at seq `from`.
    pub fn read_from(&self, from: u64, max: usize) -> ReadResult {
        if from < self.first_seq {
            return ReadResult::Lagged {
                first: self.first_seq,
            };
        }
        let start = (from - self.first_seq) as usize;
        ReadResult::Events(self.events.iter().skip(start).take(max).cloned().collect())
    }

    /// Whether a client that processed `seq` can resume from the history.
    pub fn can_resume_after(&self, seq: u64) -> bool {
        seq + 1 >= self.first_seq && seq <= self.last_seq()
    }

    /// Whether every event from seq `from` on is a position batch (true when
    /// there are none; false when `from` is no longer held).
    pub fn all_positions_from(&self, from: u64) -> bool {
        if from < self.first_seq {
            return false;
        }
        let start = (from - self.first_seq) as usize;
        self.events
            .iter()
            .skip(start)
            .all(|e| matches!(e.body, EventBody::Positions(_)))
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions() -> EventBody {
        EventBody::Positions(vec![(
            "u1".into(),
            Fix {
                at: LonLat::new(24.94, 60.17),
                time: 1,
                speed_mps: None,
                heading_deg: None,
                accuracy_m: None,
            },
        )])
    }

    #[test]
    fn log_keeps_a_bounded_history_and_reports_lag() {
        let mut log = EventLog::new(16, usize::MAX);
        assert_eq!(log.last_seq(), 0);
        assert!(log.can_resume_after(0));
        for _ in 0..20 {
            log.append(1, positions());
        }
        assert_eq!(log.last_seq(), 20);
        match log.read_from(1, 100) {
            ReadResult::Lagged { first } => assert_eq!(first - 1, 4),
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
        let mut log = EventLog::new(1000, 1000);
        for _ in 0..50 {
            log.append(1, positions());
        }
        assert_eq!(log.last_seq(), 50);
        assert!(log.bytes() <= 1000);
        assert!(matches!(log.read_from(1, 10), ReadResult::Lagged { .. }));
        match log.read_from(50, 10) {
            ReadResult::Events(e) => assert_eq!(e.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_event_is_encoded_once_on_first_use() {
        let mut log = EventLog::new(16, usize::MAX);
        log.append(7, positions());
        let ReadResult::Events(events) = log.read_from(1, 1) else {
            panic!("lagged")
        };
        let event = &events[0];
        assert!(!event.is_encoded(), "appending does not encode");
        let first = event.encoded().0.clone();
        let again = event.encoded().0.clone();
        assert_eq!(first.as_ptr(), again.as_ptr(), "the encoding is shared");
        let decoded: pb::WatchEvent = prost::Message::decode(first).unwrap();
        assert_eq!((decoded.seq, decoded.time_unix_ms), (1, 7));
        let extent = event.extent.unwrap();
        assert_eq!((extent.west, extent.north), (24.94, 60.17));
    }
}
