//! The client's copy of the command room, built only from `WatchEvent`s:
//! snapshots (a run of `SnapshotChunk`s closed by `SnapshotEnd { seq }`, which
//! replaces the whole picture), changes in seq order, `Resync` (sent with seq 0,
//! announcing a fresh snapshot) and resuming after a known seq.
//!
//! Pure: no network, no terminal and no clock. Every method that needs the
//! time takes `now_ms` (Unix milliseconds), so tests replay a stream event by
//! event.

use std::collections::{BTreeMap, VecDeque};

use patrol_proto::v1::watch_event::Kind;
use patrol_proto::v1::{Camera, Incident, IncidentStatus, SnapshotEnd, Unit, WatchEvent};

use super::cursor::{Cursor, Gap};
use super::describe::{self, Told};
use super::rate::RateMeter;

/// Recent events kept for the view (only the newest `max_events` are drawn).
const RECENT_KEEP: usize = 64;

/// One line of the "recent events" list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// `None` for notices from this client (reconnects, gaps).
    pub seq: Option<u64>,
    pub time_ms: i64,
    pub text: String,
}

/// What applying one event produced.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Applied {
    /// One line for `watch --log`, e.g. `seq=12 positions n=37`.
    pub log_line: String,
    /// Problems to report loudly (gaps, inconsistent snapshots).
    pub warnings: Vec<String>,
    /// True when this event completed a snapshot.
    pub snapshot_done: bool,
}

/// Units, cameras and incidents of a snapshot still being received.
#[derive(Debug, Default)]
struct PendingSnapshot {
    units: BTreeMap<String, Unit>,
    cameras: BTreeMap<String, Camera>,
    incidents: BTreeMap<String, Incident>,
}

/// The client's copy of the command room.
#[derive(Debug)]
pub(crate) struct RoomState {
    units: BTreeMap<String, Unit>,
    cameras: BTreeMap<String, Camera>,
    /// Open incidents only: a CLOSED incident leaves the picture.
    incidents: BTreeMap<String, Incident>,
    pending: Option<PendingSnapshot>,
    cursor: Cursor,
    has_snapshot: bool,
    recent: VecDeque<Entry>,
    changes: u64,
    rate: RateMeter,
    connection: String,
}

impl RoomState {
    /// `bbox_filtered`: the stream is limited to a box, so seqs may skip.
    pub(crate) fn new(bbox_filtered: bool) -> Self {
        Self {
            units: BTreeMap::new(),
            cameras: BTreeMap::new(),
            incidents: BTreeMap::new(),
            pending: None,
            cursor: Cursor::new(bbox_filtered),
            has_snapshot: false,
            recent: VecDeque::new(),
            changes: 0,
            rate: RateMeter::default(),
            connection: "connecting".into(),
        }
    }

    /// Starts from a seq the caller already processed (`--resume-after`), in
    /// the server log's `epoch`.
    pub(crate) fn resume_from(&mut self, seq: u64, epoch: u64) {
        self.cursor.resume_from(seq, epoch);
    }

    /// The epoch to pass as `resume_epoch` with [`RoomState::resume_point`].
    pub(crate) fn epoch(&self) -> u64 {
        self.cursor.epoch()
    }

    /// The seq to pass as `resume_after_seq` when reconnecting (0: snapshot).
    pub(crate) fn resume_point(&self) -> u64 {
        self.cursor.last_seq().unwrap_or(0)
    }

    /// The last change applied (or the seq the snapshot reflects).
    pub(crate) fn last_seq(&self) -> Option<u64> {
        self.cursor.last_seq()
    }

    pub(crate) fn gaps(&self) -> &[Gap] {
        self.cursor.gaps()
    }

    pub(crate) fn units(&self) -> &BTreeMap<String, Unit> {
        &self.units
    }

    pub(crate) fn cameras(&self) -> &BTreeMap<String, Camera> {
        &self.cameras
    }

    /// Open incidents by id.
    pub(crate) fn incidents(&self) -> &BTreeMap<String, Incident> {
        &self.incidents
    }

    /// Recent events, oldest first (at most [`RECENT_KEEP`]).
    pub(crate) fn recent(&self) -> &VecDeque<Entry> {
        &self.recent
    }

    pub(crate) fn has_snapshot(&self) -> bool {
        self.has_snapshot
    }

    /// Changes applied since the start (snapshots not counted).
    pub(crate) fn changes(&self) -> u64 {
        self.changes
    }

    /// Changes per second over the last closed window.
    pub(crate) fn rate_per_sec(&self) -> f64 {
        self.rate.per_sec()
    }

    /// What the connection is doing, shown in the header.
    pub(crate) fn connection(&self) -> &str {
        &self.connection
    }

    /// The stream broke: a half-received snapshot is useless.
    pub(crate) fn stream_restarted(&mut self) {
        self.pending = None;
    }

    pub(crate) fn set_connection(&mut self, text: impl Into<String>) {
        self.connection = text.into();
    }

    /// Adds a client-side notice (reconnects and the like) to recent events.
    pub(crate) fn note(&mut self, now_ms: i64, text: impl Into<String>) {
        self.push_entry(None, now_ms, text.into());
    }

    /// Advances the events-per-second window; call before rendering.
    pub(crate) fn tick(&mut self, now_ms: i64) {
        self.rate.roll(now_ms);
    }

    fn push_entry(&mut self, seq: Option<u64>, time_ms: i64, text: String) {
        if self.recent.len() == RECENT_KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(Entry { seq, time_ms, text });
    }

    /// A unit's call sign, or its id when the picture does not know it.
    pub(crate) fn call_sign<'a>(&'a self, unit_id: &'a str) -> &'a str {
        self.units
            .get(unit_id)
            .map_or(unit_id, |u| u.call_sign.as_str())
    }

    /// Call signs of `ids`, comma-separated.
    pub(crate) fn unit_names(&self, ids: &[String]) -> String {
        ids.iter()
            .map(|id| self.call_sign(id))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Applies one event received at `now_ms`.
    pub(crate) fn apply(&mut self, event: &WatchEvent, now_ms: i64) -> Applied {
        let seq = event.seq;
        let Some(kind) = &event.kind else {
            return Applied {
                log_line: format!("seq={seq} empty event (ignored)"),
                ..Default::default()
            };
        };
        match kind {
            Kind::Snapshot(chunk) => {
                let pending = self.pending.get_or_insert_with(PendingSnapshot::default);
                for u in &chunk.units {
                    pending.units.insert(u.id.clone(), u.clone());
                }
                for c in &chunk.cameras {
                    pending.cameras.insert(c.id.clone(), c.clone());
                }
                for i in &chunk.incidents {
                    pending.incidents.insert(i.id.clone(), i.clone());
                }
                Applied {
                    log_line: describe::snapshot_chunk(seq, chunk),
                    ..Default::default()
                }
            }
            Kind::SnapshotEnd(end) => self.end_snapshot(end, event.time_unix_ms),
            Kind::Resync(resync) => {
                let (log_line, text) = describe::resync(seq, resync);
                self.pending = None;
                self.cursor.forget();
                self.push_entry(None, event.time_unix_ms, text);
                Applied {
                    log_line,
                    ..Default::default()
                }
            }
            change => self.apply_change(seq, change, event.time_unix_ms, now_ms),
        }
    }

    fn end_snapshot(&mut self, end: &SnapshotEnd, time_ms: i64) -> Applied {
        let warnings = self.finish_snapshot(end);
        let (log_line, text) = describe::snapshot_end(end);
        self.push_entry(Some(end.seq), time_ms, text);
        for warning in &warnings {
            self.push_entry(None, time_ms, format!("!! {warning}"));
        }
        Applied {
            log_line,
            warnings,
            snapshot_done: true,
        }
    }

    fn finish_snapshot(&mut self, end: &SnapshotEnd) -> Vec<String> {
        let snapshot = self.pending.take().unwrap_or_default();
        let mut warnings = Vec::new();
        let counts = [
            ("units", end.units, snapshot.units.len()),
            ("cameras", end.cameras, snapshot.cameras.len()),
            ("incidents", end.incidents, snapshot.incidents.len()),
        ];
        for (what, announced, carried) in counts {
            if announced != carried as u64 {
                warnings.push(format!(
                    "snapshot at seq {} announced {announced} {what} but carried {carried}",
                    end.seq
                ));
            }
        }
        self.units = snapshot.units;
        self.cameras = snapshot.cameras;
        self.incidents = snapshot.incidents;
        self.incidents
            .retain(|_, i| i.status != IncidentStatus::Closed as i32);
        self.cursor.snapshot_at(end.seq, end.log_epoch);
        self.has_snapshot = true;
        warnings
    }

    /// A change: checked against the sequence, then applied to the picture.
    fn apply_change(&mut self, seq: u64, change: &Kind, time_ms: i64, now_ms: i64) -> Applied {
        let mut applied = Applied::default();
        if let Some(gap) = self.cursor.check(seq) {
            applied.warnings.push(gap.describe());
            self.push_entry(Some(seq), time_ms, format!("!! {}", gap.describe()));
            if gap.is_backwards() {
                applied.log_line = format!("seq={seq} stale event ignored");
                return applied;
            }
        }
        self.changes += 1;
        self.rate.count(now_ms);
        let told = self.change_picture(change);
        applied.log_line = format!("seq={seq} {}", told.log);
        if let Some(text) = told.recent {
            self.push_entry(Some(seq), time_ms, text);
        }
        applied
    }

    /// Changes the picture; what it says is told from the picture before.
    fn change_picture(&mut self, change: &Kind) -> Told {
        match change {
            Kind::Positions(batch) => {
                for position in &batch.positions {
                    let Some(fix) = position.fix else { continue };
                    // A unit first seen through a position (it entered the
                    // bbox) is shown by id until a unit event tells us more.
                    let unit = self
                        .units
                        .entry(position.unit_id.clone())
                        .or_insert_with(|| Unit {
                            id: position.unit_id.clone(),
                            call_sign: position.unit_id.clone(),
                            ..Default::default()
                        });
                    unit.fix = Some(fix);
                }
                // Units that left a watched box: off the picture.
                for left in &batch.left_area {
                    self.units.remove(&left.unit_id);
                }
                describe::positions(batch)
            }
            Kind::Unit(unit) => {
                let told = describe::unit(unit, self.units.get(&unit.id));
                let mut unit = unit.clone();
                if unit.fix.is_none() {
                    // Keep the last known position if the event carried none.
                    unit.fix = self.units.get(&unit.id).and_then(|old| old.fix);
                }
                self.units.insert(unit.id.clone(), unit);
                told
            }
            Kind::Camera(camera) => {
                self.cameras.insert(camera.id.clone(), camera.clone());
                describe::camera(camera)
            }
            Kind::Alert(alert) => describe::alert(alert),
            Kind::Incident(incident) => {
                let names = self.unit_names(&incident.unit_ids);
                let told = describe::incident(incident, self.incidents.get(&incident.id), &names);
                if incident.status == IncidentStatus::Closed as i32 {
                    self.incidents.remove(&incident.id);
                } else {
                    self.incidents.insert(incident.id.clone(), incident.clone());
                }
                told
            }
            Kind::Order(order) => describe::order(order, self.call_sign(&order.unit_id)),
            Kind::UnitAlert(alert) => describe::unit_alert(alert, self.call_sign(&alert.unit_id)),
            Kind::Track(track) => describe::track(track),
            Kind::Zone(change) => describe::zone(change, self.call_sign(&change.unit_id)),
            Kind::UnitInView(v) => Told {
                log: format!(
                    "{} {} the view of camera {}",
                    self.call_sign(&v.unit_id),
                    if v.entered { "entered" } else { "left" },
                    v.camera_id
                ),
                recent: None,
            },
            Kind::Snapshot(_) | Kind::SnapshotEnd(_) | Kind::Resync(_) => Told {
                log: "not a change".into(),
                recent: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use patrol_proto::v1::{
        Alert, PositionBatch, Resync, ResyncReason, UnitKind, UnitPosition, UnitStatus,
    };

    fn recent_texts(state: &RoomState) -> Vec<&str> {
        state.recent().iter().map(|e| e.text.as_str()).collect()
    }

    #[test]
    fn a_snapshot_builds_the_picture() {
        let state = started();
        assert_eq!(state.resume_point(), 10);
        assert_eq!(state.epoch(), 99);
        assert!(state.has_snapshot());
        assert_eq!(state.units().len(), 2);
        assert_eq!(state.cameras().len(), 3);
        assert_eq!(state.incidents().keys().collect::<Vec<_>>(), ["inc-4"]);
        assert_eq!(
            recent_texts(&state),
            ["snapshot at seq 10: 2 units, 3 cameras, 1 incidents"]
        );
        assert_eq!(state.changes(), 0, "a snapshot is not a change");
    }

    #[test]
    fn changes_update_units_and_incidents() {
        let mut state = started();
        let mut moved = unit(
            "car-11",
            "Car 11",
            UnitKind::Car,
            UnitStatus::EnRoute,
            "inc-4",
        );
        moved.fix = None; // a status change without a position keeps the last fix
        let positions = PositionBatch {
            left_area: Default::default(),
            positions: vec![UnitPosition {
                unit_id: "foot-3".into(),
                fix: Some(fix(24.95, 60.17, T0 + 1000)),
            }],
        };
        let events = [
            event(
                11,
                Kind::Incident(incident("inc-4", IncidentStatus::Dispatched, &["car-11"])),
            ),
            event(12, Kind::Unit(moved)),
            event(13, Kind::Positions(positions)),
        ];
        let lines: Vec<String> = apply_all(&mut state, &events)
            .into_iter()
            .map(|a| a.log_line)
            .collect();
        assert_eq!(
            lines,
            [
                "seq=11 incident inc-4 status=dispatched type=theft priority=2 units=car-11",
                "seq=12 unit Car 11 id=car-11 kind=car status=en_route incident=inc-4",
                "seq=13 positions n=1",
            ]
        );
        let car = &state.units()["car-11"];
        assert_eq!(car.status, UnitStatus::EnRoute as i32);
        assert_eq!(car.fix.map(|f| f.lon), Some(24.945_12), "last fix kept");
        assert_eq!(state.units()["foot-3"].fix.map(|f| f.lon), Some(24.95));
        assert_eq!(state.incidents()["inc-4"].unit_ids, ["car-11"]);
        assert_eq!(
            recent_texts(&state)[1..],
            [
                "inc-4 dispatched: Car 11",
                "Car 11: available -> en_route (inc-4)"
            ],
            "positions stay out of recent events"
        );
        assert_eq!(state.changes(), 3);

        state.apply(
            &event(
                14,
                Kind::Incident(incident("inc-4", IncidentStatus::Closed, &[])),
            ),
            T0,
        );
        assert!(state.incidents().is_empty(), "a closed incident leaves");
        assert_eq!(recent_texts(&state).last(), Some(&"inc-4 closed"));
        assert!(state.gaps().is_empty());
    }

    #[test]
    fn gaps_and_backward_seqs_are_reported() {
        let mut state = started();
        let alert = |seq| {
            event(
                seq,
                Kind::Alert(Alert {
                    id: format!("a-{seq}"),
                    label: "fight".into(),
                    camera_id: "cam-1".into(),
                    confidence: 0.91,
                    ..Default::default()
                }),
            )
        };
        assert!(state.apply(&alert(11), T0).warnings.is_empty());
        let applied = state.apply(&alert(14), T0);
        assert_eq!(
            applied.warnings,
            ["SEQ GAP: expected 12, got 14 (2 events missing; the server promises none)"]
        );
        assert_eq!(
            applied.log_line,
            "seq=14 alert a-14 label=fight camera=cam-1 confidence=0.91 incident=-"
        );
        let applied = state.apply(&alert(13), T0);
        assert_eq!(applied.log_line, "seq=13 stale event ignored");
        assert!(applied.warnings[0].contains("BACKWARDS"));
        assert_eq!(
            state.gaps(),
            [
                Gap {
                    expected: 12,
                    got: 14
                },
                Gap {
                    expected: 15,
                    got: 13
                }
            ]
        );
        assert_eq!(state.resume_point(), 14);
        assert_eq!(state.changes(), 2, "the stale event is not applied");
        assert!(
            recent_texts(&state)
                .iter()
                .any(|t| t.starts_with("!! SEQ GAP"))
        );
    }

    #[test]
    fn with_a_bbox_seqs_may_skip_but_not_go_back() {
        let mut state = RoomState::new(true);
        apply_all(&mut state, &snapshot(10, vec![], vec![], 0));
        let ping = |seq| event(seq, Kind::Positions(PositionBatch::default()));
        assert!(state.apply(&ping(15), T0).warnings.is_empty());
        assert!(state.apply(&ping(40), T0).warnings.is_empty());
        assert_eq!(state.apply(&ping(40), T0).warnings.len(), 1);
    }

    #[test]
    fn resync_replaces_the_state_with_the_new_snapshot() {
        let mut state = started();
        state.apply(&event(11, Kind::Positions(PositionBatch::default())), T0);
        let resync = Resync {
            reason: ResyncReason::Lagged as i32,
            missed: 25,
        };
        let applied = state.apply(
            &WatchEvent {
                seq: 0,
                time_unix_ms: T0,
                kind: Some(Kind::Resync(resync)),
            },
            T0,
        );
        assert_eq!(applied.log_line, "seq=0 resync reason=lagged missed=25");
        assert!(applied.warnings.is_empty());
        assert_eq!(
            state.resume_point(),
            0,
            "no resume point until the new snapshot ends"
        );
        let chunks = snapshot(
            40,
            vec![unit(
                "bike-1",
                "Bike 1",
                UnitKind::EBike,
                UnitStatus::Busy,
                "",
            )],
            vec![],
            0,
        );
        state.apply(&chunks[0], T0);
        assert!(
            state.units().contains_key("car-11"),
            "the old picture stays while the new snapshot arrives"
        );
        state.apply(&chunks[2], T0);
        assert_eq!(state.units().keys().collect::<Vec<_>>(), ["bike-1"]);
        assert!(state.incidents().is_empty() && state.cameras().is_empty());
        assert!(recent_texts(&state).contains(&"RESYNC (lagged, missed 25): reloading snapshot"));
        assert!(
            state
                .apply(&event(41, Kind::Positions(PositionBatch::default())), T0)
                .warnings
                .is_empty()
        );
        assert!(state.gaps().is_empty());
    }

    #[test]
    fn a_snapshot_that_disagrees_with_its_end_is_reported() {
        let mut state = RoomState::new(false);
        let mut events = snapshot(
            5,
            vec![unit("u", "U", UnitKind::Car, UnitStatus::Available, "")],
            vec![],
            0,
        );
        events.remove(0);
        let applied = apply_all(&mut state, &events);
        assert_eq!(
            applied[1].warnings,
            ["snapshot at seq 5 announced 1 units but carried 0"]
        );
    }

    #[test]
    fn an_empty_snapshot_is_just_its_end() {
        let mut state = RoomState::new(false);
        let end = SnapshotEnd {
            seq: 0,
            ..Default::default()
        };
        assert!(
            state
                .apply(&event(0, Kind::SnapshotEnd(end)), T0)
                .snapshot_done
        );
        assert!(
            state
                .apply(&event(1, Kind::Positions(PositionBatch::default())), T0)
                .warnings
                .is_empty()
        );
        assert_eq!(state.resume_point(), 1);
    }

    #[test]
    fn resuming_checks_from_the_given_seq() {
        let mut state = RoomState::new(false);
        state.resume_from(100, 7);
        assert_eq!(state.resume_point(), 100);
        let ping = |seq| event(seq, Kind::Positions(PositionBatch::default()));
        assert!(state.apply(&ping(101), T0).warnings.is_empty());
        state.stream_restarted();
        assert_eq!(state.apply(&ping(103), T0).warnings.len(), 1);
    }

    #[test]
    fn a_unit_first_seen_by_position_is_known_by_its_id() {
        let mut state = started();
        let batch = PositionBatch {
            left_area: Default::default(),
            positions: vec![UnitPosition {
                unit_id: "moto-9".into(),
                fix: Some(fix(24.9, 60.1, T0)),
            }],
        };
        state.apply(&event(11, Kind::Positions(batch)), T0);
        let moto = &state.units()["moto-9"];
        assert_eq!(moto.call_sign, "moto-9");
        assert_eq!((moto.kind, moto.status), (0, 0), "not known yet");
        assert_eq!(state.call_sign("moto-9"), "moto-9");
        assert_eq!(state.call_sign("car-11"), "Car 11");
    }

    #[test]
    fn recent_events_are_bounded() {
        let mut state = started();
        for seq in 11..200 {
            state.apply(
                &event(
                    seq,
                    Kind::Camera(Camera {
                        id: format!("cam-{seq}"),
                        ..Default::default()
                    }),
                ),
                T0,
            );
        }
        assert_eq!(state.recent().len(), RECENT_KEEP);
        assert_eq!(
            state.recent().back().map(|e| e.text.as_str()),
            Some("camera cam-199 updated")
        );
    }

    #[test]
    fn an_event_without_a_kind_is_ignored() {
        let mut state = started();
        let applied = state.apply(
            &WatchEvent {
                seq: 11,
                time_unix_ms: T0,
                kind: None,
            },
            T0,
        );
        assert_eq!(applied.log_line, "seq=11 empty event (ignored)");
        assert_eq!(state.resume_point(), 10);
    }
}
