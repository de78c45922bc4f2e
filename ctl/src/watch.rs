//! The command-room picture: what `patrolctl watch` knows, built only from
//! `WatchEvent`s, and how it is drawn.
//!
//! Pure: no network and no clock. Every method that needs the time takes
//! `now_ms` (Unix milliseconds), so tests replay a stream event by event and
//! compare the rendered text. The reconnecting stream around it is in
//! `session.rs`.
//!
//! Sequence rules checked here (from `CommandRoom/Watch` in the proto): a
//! snapshot is a run of `SnapshotChunk`s closed by `SnapshotEnd { seq }`, and
//! replaces the whole picture; after it, without a bbox, change `n` must be
//! followed by change `n + 1`. A `Resync` (sent with seq 0) announces a fresh
//! snapshot. Anything else is a gap and is reported, never hidden.

use std::collections::{BTreeMap, VecDeque};

use patrol_proto::v1::watch_event::Kind;
use patrol_proto::v1::{
    Alert, BoundingBox, Camera, DispatchOrder, Incident, IncidentStatus, PositionBatch, Resync,
    ResyncReason, SnapshotEnd, Unit, UnitKind, UnitStatus, WatchEvent,
};

use crate::format::{EnumWord, Table, age, clock, metres, natural_cmp, truncate, word_of};

/// Recent events kept for the view (only the newest `max_events` are drawn).
const RECENT_KEEP: usize = 64;
/// Events-per-second is measured over windows of at least this long.
const RATE_WINDOW_MS: i64 = 2000;

/// One line of the "recent events" list.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `None` for notices from this client (reconnects, gaps).
    pub seq: Option<u64>,
    pub time_ms: i64,
    pub text: String,
}

/// A break in the promised sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub expected: u64,
    pub got: u64,
}

impl Gap {
    pub fn describe(&self) -> String {
        if self.got < self.expected {
            format!(
                "SEQ WENT BACKWARDS: expected {}, got {} (event ignored)",
                self.expected, self.got
            )
        } else {
            format!(
                "SEQ GAP: expected {}, got {} ({} events missing; the server promises none)",
                self.expected,
                self.got,
                self.got - self.expected
            )
        }
    }
}

/// What applying one event produced.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
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

/// Events per second, measured over rolling windows.
#[derive(Debug, Default)]
struct RateMeter {
    window_start_ms: i64,
    count: u64,
    per_sec: f64,
}

impl RateMeter {
    fn roll(&mut self, now_ms: i64) {
        if self.window_start_ms == 0 {
            self.window_start_ms = now_ms;
        }
        let elapsed = now_ms - self.window_start_ms;
        if elapsed >= RATE_WINDOW_MS {
            self.per_sec = self.count as f64 * 1000.0 / elapsed as f64;
            self.count = 0;
            self.window_start_ms = now_ms;
        }
    }
}

/// The client's copy of the command room.
#[derive(Debug)]
pub struct RoomState {
    /// Without a bbox seqs must be consecutive; with one, only increasing.
    consecutive: bool,
    units: BTreeMap<String, Unit>,
    cameras: BTreeMap<String, Camera>,
    /// Open incidents only: a CLOSED incident leaves the picture.
    incidents: BTreeMap<String, Incident>,
    pending: Option<PendingSnapshot>,
    /// The last change applied (or the seq the snapshot reflects). `None`
    /// until the first snapshot, and again after a Resync until the next.
    last_seq: Option<u64>,
    /// The server log's epoch that `last_seq` belongs to (0: unknown).
    epoch: u64,
    has_snapshot: bool,
    recent: VecDeque<Entry>,
    gaps: Vec<Gap>,
    changes: u64,
    rate: RateMeter,
    connection: String,
}

impl RoomState {
    /// `bbox_filtered`: the stream is limited to a box, so seqs may skip.
    pub fn new(bbox_filtered: bool) -> Self {
        Self {
            consecutive: !bbox_filtered,
            units: BTreeMap::new(),
            cameras: BTreeMap::new(),
            incidents: BTreeMap::new(),
            pending: None,
            last_seq: None,
            epoch: 0,
            has_snapshot: false,
            recent: VecDeque::new(),
            gaps: Vec::new(),
            changes: 0,
            rate: RateMeter::default(),
            connection: "connecting".into(),
        }
    }

    /// Starts from a seq the caller already processed (`--resume-after`), in
    /// the server log's `epoch`.
    pub fn resume_from(&mut self, seq: u64, epoch: u64) {
        self.last_seq = Some(seq);
        self.epoch = epoch;
    }

    /// The epoch to pass as `resume_epoch` with [`RoomState::resume_point`].
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The seq to pass as `resume_after_seq` when reconnecting (0: snapshot).
    pub fn resume_point(&self) -> u64 {
        self.last_seq.unwrap_or(0)
    }

    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// The stream broke: a half-received snapshot is useless.
    pub fn stream_restarted(&mut self) {
        self.pending = None;
    }

    /// What the connection is doing, shown in the header.
    pub fn set_connection(&mut self, text: impl Into<String>) {
        self.connection = text.into();
    }

    /// Adds a client-side notice (reconnects and the like) to recent events.
    pub fn note(&mut self, now_ms: i64, text: impl Into<String>) {
        self.push_entry(None, now_ms, text.into());
    }

    /// Advances the events-per-second window; call before rendering.
    pub fn tick(&mut self, now_ms: i64) {
        self.rate.roll(now_ms);
    }

    fn push_entry(&mut self, seq: Option<u64>, time_ms: i64, text: String) {
        if self.recent.len() == RECENT_KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(Entry { seq, time_ms, text });
    }

    fn call_sign<'a>(&'a self, unit_id: &'a str) -> &'a str {
        self.units
            .get(unit_id)
            .map_or(unit_id, |u| u.call_sign.as_str())
    }

    /// Applies one event received at `now_ms`.
    pub fn apply(&mut self, event: &WatchEvent, now_ms: i64) -> Applied {
        let seq = event.seq;
        let mut applied = Applied::default();
        let Some(kind) = &event.kind else {
            applied.log_line = format!("seq={seq} empty event (ignored)");
            return applied;
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
                applied.log_line = format!(
                    "seq={seq} snapshot units={} cameras={} incidents={}",
                    chunk.units.len(),
                    chunk.cameras.len(),
                    chunk.incidents.len()
                );
            }
            Kind::SnapshotEnd(end) => {
                applied.warnings = self.finish_snapshot(end);
                applied.snapshot_done = true;
                applied.log_line = format!(
                    "seq={} snapshot_end units={} cameras={} incidents={} epoch={}",
                    end.seq, end.units, end.cameras, end.incidents, end.log_epoch
                );
                let text = format!(
                    "snapshot at seq {}: {} units, {} cameras, {} incidents",
                    end.seq, end.units, end.cameras, end.incidents
                );
                self.push_entry(Some(end.seq), event.time_unix_ms, text);
                for warning in &applied.warnings {
                    self.push_entry(None, event.time_unix_ms, format!("!! {warning}"));
                }
            }
            Kind::Resync(resync) => {
                applied.log_line = format!(
                    "seq={seq} resync reason={} missed={}",
                    word_of::<ResyncReason>(resync.reason),
                    resync.missed
                );
                self.start_resync(resync, event.time_unix_ms);
            }
            change => {
                if let Some(gap) = self.check_seq(seq) {
                    applied.warnings.push(gap.describe());
                    self.push_entry(
                        Some(seq),
                        event.time_unix_ms,
                        format!("!! {}", gap.describe()),
                    );
                    if gap.got < gap.expected {
                        applied.log_line = format!("seq={seq} stale event ignored");
                        return applied;
                    }
                }
                self.changes += 1;
                self.rate.roll(now_ms);
                self.rate.count += 1;
                let (log, entry) = self.apply_change(change);
                applied.log_line = format!("seq={seq} {log}");
                if let Some(text) = entry {
                    self.push_entry(Some(seq), event.time_unix_ms, text);
                }
            }
        }
        applied
    }

    /// Checks a change's seq against the last one and records any gap.
    fn check_seq(&mut self, seq: u64) -> Option<Gap> {
        let last = self.last_seq?;
        // Backwards is always wrong; skipping only without a bbox (a box
        // filters out the changes elsewhere).
        let broken = seq <= last || (self.consecutive && seq != last + 1);
        let gap = broken.then_some(Gap {
            expected: last + 1,
            got: seq,
        });
        if seq > last {
            self.last_seq = Some(seq);
        }
        if let Some(gap) = gap {
            self.gaps.push(gap);
        }
        gap
    }

    fn start_resync(&mut self, resync: &Resync, time_ms: i64) {
        self.pending = None;
        self.last_seq = None;
        let text = format!(
            "RESYNC ({}, missed {}): reloading snapshot",
            word_of::<ResyncReason>(resync.reason),
            resync.missed
        );
        self.push_entry(None, time_ms, text);
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
        self.last_seq = Some(end.seq);
        self.epoch = end.log_epoch;
        self.has_snapshot = true;
        warnings
    }

    /// Applies a change; returns its log text and its recent-events text
    /// (none for position batches, which would flood the list).
    fn apply_change(&mut self, change: &Kind) -> (String, Option<String>) {
        match change {
            Kind::Positions(batch) => (self.apply_positions(batch), None),
            Kind::Unit(unit) => self.apply_unit(unit),
            Kind::Camera(camera) => {
                self.cameras.insert(camera.id.clone(), camera.clone());
                let log = format!(
                    "camera {} name={:?} heading={:.0} fov={:.0}",
                    camera.id, camera.name, camera.heading_deg, camera.fov_deg
                );
                let entry = format!("camera {} updated", camera.id);
                (log, Some(entry))
            }
            Kind::Alert(alert) => alert_lines(alert),
            Kind::Incident(incident) => self.apply_incident(incident),
            Kind::Order(order) => self.order_lines(order),
            Kind::Snapshot(_) | Kind::SnapshotEnd(_) | Kind::Resync(_) => {
                ("not a change".into(), None)
            }
        }
    }

    fn apply_positions(&mut self, batch: &PositionBatch) -> String {
        for position in &batch.positions {
            let Some(fix) = position.fix else { continue };
            // A unit first seen through a position (it entered the bbox) is
            // shown by id until a unit event tells us more.
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
        format!("positions n={}", batch.positions.len())
    }

    fn apply_unit(&mut self, unit: &Unit) -> (String, Option<String>) {
        let status = word_of::<UnitStatus>(unit.status);
        let incident = if unit.incident_id.is_empty() {
            "-"
        } else {
            &unit.incident_id
        };
        let log = format!(
            "unit {} id={} kind={} status={status} incident={incident}",
            unit.call_sign,
            unit.id,
            word_of::<UnitKind>(unit.kind)
        );
        let entry = match self.units.get(&unit.id) {
            None => format!(
                "{} registered ({}, {status})",
                unit.call_sign,
                word_of::<UnitKind>(unit.kind)
            ),
            Some(old) if old.status != unit.status => {
                let was = word_of::<UnitStatus>(old.status);
                let on = if unit.incident_id.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", unit.incident_id)
                };
                format!("{}: {was} -> {status}{on}", unit.call_sign)
            }
            Some(_) => format!("{} updated", unit.call_sign),
        };
        let mut unit = unit.clone();
        if unit.fix.is_none() {
            // Keep the last known position if the event carried none.
            unit.fix = self.units.get(&unit.id).and_then(|old| old.fix);
        }
        self.units.insert(unit.id.clone(), unit);
        (log, Some(entry))
    }

    fn apply_incident(&mut self, incident: &Incident) -> (String, Option<String>) {
        let status = word_of::<IncidentStatus>(incident.status);
        let log = format!(
            "incident {} status={status} type={} priority={} units={}",
            incident.id,
            incident.r#type,
            incident.priority,
            if incident.unit_ids.is_empty() {
                "-".into()
            } else {
                incident.unit_ids.join(",")
            }
        );
        let units = self.unit_names(&incident.unit_ids);
        let entry = match self.incidents.get(&incident.id) {
            None if incident.status == IncidentStatus::New as i32 => format!(
                "{} new: {} p{}",
                incident.id, incident.r#type, incident.priority
            ),
            Some(old) if old.status == incident.status && old.unit_ids == incident.unit_ids => {
                format!("{} updated", incident.id)
            }
            _ if incident.unit_ids.is_empty() => format!("{} {status}", incident.id),
            _ => format!("{} {status}: {units}", incident.id),
        };
        if incident.status == IncidentStatus::Closed as i32 {
            self.incidents.remove(&incident.id);
        } else {
            self.incidents.insert(incident.id.clone(), incident.clone());
        }
        (log, Some(entry))
    }

    fn order_lines(&self, order: &DispatchOrder) -> (String, Option<String>) {
        let distance = order.distance_m.map_or("-".into(), |d| format!("{d:.0}"));
        let log = format!(
            "order {} unit={} incident={} distance_m={distance}",
            order.order_id, order.unit_id, order.incident_id
        );
        let entry = format!(
            "order {}: {} -> {} ({} p{}{})",
            order.order_id,
            self.call_sign(&order.unit_id),
            order.incident_id,
            order.incident_type,
            order.priority,
            order
                .distance_m
                .map_or(String::new(), |d| format!(", {}", metres(d)))
        );
        (log, Some(entry))
    }

    fn unit_names(&self, ids: &[String]) -> String {
        ids.iter()
            .map(|id| self.call_sign(id))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn alert_lines(alert: &Alert) -> (String, Option<String>) {
    let incident = if alert.incident_id.is_empty() {
        "-"
    } else {
        &alert.incident_id
    };
    let log = format!(
        "alert {} label={} camera={} confidence={:.2} incident={incident}",
        alert.id, alert.label, alert.camera_id, alert.confidence
    );
    let mut entry = format!(
        "alert {} cam {} {:.2}",
        alert.label, alert.camera_id, alert.confidence
    );
    if !alert.incident_id.is_empty() {
        entry.push_str(&format!(" -> {}", alert.incident_id));
    }
    (log, Some(entry))
}

/// How the view is laid out; the defaults fit about 50 lines of 100 columns.
#[derive(Debug, Clone)]
pub struct View {
    pub server: String,
    pub bbox: Option<BoundingBox>,
    pub max_units: usize,
    pub max_incidents: usize,
    pub max_events: usize,
}

impl View {
    pub fn new(server: &str, bbox: Option<BoundingBox>) -> Self {
        Self {
            server: server.to_string(),
            bbox,
            max_units: 20,
            max_incidents: 8,
            max_events: 12,
        }
    }
}

/// Units needing attention first: assigned and moving, then the rest.
fn status_rank(status: i32) -> u8 {
    match UnitStatus::try_from(status) {
        Ok(UnitStatus::Assigned) => 0,
        Ok(UnitStatus::EnRoute) => 1,
        Ok(UnitStatus::OnScene) => 2,
        Ok(UnitStatus::Busy) => 3,
        Ok(UnitStatus::Available) => 4,
        Ok(UnitStatus::OffDuty) => 5,
        Ok(UnitStatus::Offline) => 6,
        _ => 7,
    }
}

fn more(lines: &mut Vec<String>, total: usize, shown: usize) {
    if total > shown {
        lines.push(format!("... and {} more", total - shown));
    }
}

/// A word for a table cell: `?` when the value is not known yet (0).
fn view_word<E: EnumWord>(raw: i32) -> String {
    if raw == 0 {
        "?".into()
    } else {
        word_of::<E>(raw)
    }
}

/// The whole screen as plain text (no escape codes), one `\n` per line.
pub fn render(state: &RoomState, view: &View, now_ms: i64) -> String {
    let mut lines = Vec::new();
    let seq = state.last_seq.map_or("-".into(), |s| s.to_string());
    let area = view.bbox.map_or(String::new(), |b| {
        format!("  bbox {},{},{},{}", b.west, b.south, b.east, b.north)
    });
    lines.push(format!(
        "patrolctl watch  {}{area}  seq {seq}  {} UTC  {:.1} ev/s  [{}]",
        view.server,
        clock(now_ms),
        state.rate.per_sec,
        truncate(&state.connection, 40)
    ));

    let mut by_status: BTreeMap<u8, (String, usize)> = BTreeMap::new();
    for unit in state.units.values() {
        by_status
            .entry(status_rank(unit.status))
            .or_insert_with(|| (word_of::<UnitStatus>(unit.status), 0))
            .1 += 1;
    }
    let counts: Vec<String> = by_status
        .values()
        .map(|(w, n)| format!("{w} {n}"))
        .collect();
    lines.push(format!(
        "units {}: {}   cameras {}   open incidents {}",
        state.units.len(),
        if counts.is_empty() {
            "-".into()
        } else {
            counts.join(", ")
        },
        state.cameras.len(),
        state.incidents.len()
    ));
    if let Some(last) = state.gaps.last() {
        lines.push(format!(
            "!! {} seq gaps; last: {}",
            state.gaps.len(),
            last.describe()
        ));
    }
    if !state.has_snapshot && state.last_seq.is_none() {
        lines.push("waiting for the snapshot...".into());
    }

    lines.push(String::new());
    let mut units: Vec<&Unit> = state.units.values().collect();
    units.sort_by(|a, b| {
        status_rank(a.status)
            .cmp(&status_rank(b.status))
            .then_with(|| natural_cmp(&a.call_sign, &b.call_sign))
    });
    let mut table = Table::new(&[
        ("CALL SIGN", 12),
        ("KIND", 10),
        ("STATUS", 9),
        ("LON", 9),
        ("LAT", 9),
        ("SPEED", 8),
        ("FIX", 8),
        ("INCIDENT", 10),
    ]);
    for unit in units.iter().take(view.max_units) {
        let fix = unit.fix.as_ref();
        table.row(vec![
            unit.call_sign.clone(),
            view_word::<UnitKind>(unit.kind),
            view_word::<UnitStatus>(unit.status),
            fix.map_or("-".into(), |f| format!("{:.5}", f.lon)),
            fix.map_or("-".into(), |f| format!("{:.5}", f.lat)),
            fix.and_then(|f| f.speed_mps)
                .map_or("-".into(), |s| format!("{s:.1}m/s")),
            fix.map_or("no fix".into(), |f| age(f.fix_time_unix_ms, now_ms)),
            if unit.incident_id.is_empty() {
                "-".into()
            } else {
                unit.incident_id.clone()
            },
        ]);
    }
    lines.extend(table.lines_or("no units"));
    more(&mut lines, units.len(), view.max_units);

    lines.push(String::new());
    let mut incidents: Vec<&Incident> = state.incidents.values().collect();
    incidents.sort_by_key(|i| (i.priority, i.created_unix_ms, i.id.clone()));
    let mut table = Table::new(&[
        ("INCIDENT", 10),
        ("TYPE", 16),
        ("PRI", 3),
        ("STATUS", 10),
        ("UNITS", 30),
        ("AGE", 8),
    ]);
    for incident in incidents.iter().take(view.max_incidents) {
        table.row(vec![
            incident.id.clone(),
            incident.r#type.clone(),
            incident.priority.to_string(),
            word_of::<IncidentStatus>(incident.status),
            state.unit_names(&incident.unit_ids),
            age(incident.created_unix_ms, now_ms),
        ]);
    }
    lines.extend(table.lines_or("no open incidents"));
    more(&mut lines, incidents.len(), view.max_incidents);

    lines.push(String::new());
    let mut table = Table::new(&[("SEQ", 9), ("TIME", 8), ("EVENT", 76)]);
    let skip = state.recent.len().saturating_sub(view.max_events);
    for entry in state.recent.iter().skip(skip) {
        table.row(vec![
            entry.seq.map_or("*".into(), |s| s.to_string()),
            clock(entry.time_ms),
            entry.text.clone(),
        ]);
    }
    lines.extend(table.lines_or("no events yet"));

    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// A one-line summary printed when `watch --log` ends.
pub fn summary(state: &RoomState) -> String {
    format!(
        "watched {} changes up to seq {}; {} units, {} open incidents; {} seq gaps",
        state.changes,
        state.last_seq.map_or("-".into(), |s| s.to_string()),
        state.units.len(),
        state.incidents.len(),
        state.gaps.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use patrol_proto::v1::{Fix, SnapshotChunk, UnitPosition};

    /// 2024-05-01 12:00:00 UTC.
    const T0: i64 = 1_714_564_800_000;

    fn event(seq: u64, kind: Kind) -> WatchEvent {
        WatchEvent {
            seq,
            time_unix_ms: T0 + seq as i64 * 1000,
            kind: Some(kind),
        }
    }

    fn fix(lon: f64, lat: f64, at: i64) -> Fix {
        Fix {
            lon,
            lat,
            fix_time_unix_ms: at,
            speed_mps: Some(8.25),
            ..Default::default()
        }
    }

    fn unit(id: &str, call_sign: &str, kind: UnitKind, status: UnitStatus, incident: &str) -> Unit {
        Unit {
            id: id.into(),
            call_sign: call_sign.into(),
            kind: kind as i32,
            status: status as i32,
            fix: Some(fix(24.945_12, 60.168_01, T0)),
            incident_id: incident.into(),
            ..Default::default()
        }
    }

    fn incident(id: &str, status: IncidentStatus, units: &[&str]) -> Incident {
        Incident {
            id: id.into(),
            r#type: "theft".into(),
            priority: 2,
            status: status as i32,
            unit_ids: units.iter().map(|u| u.to_string()).collect(),
            created_unix_ms: T0 - 180_000,
            ..Default::default()
        }
    }

    fn snapshot(
        seq: u64,
        units: Vec<Unit>,
        incidents: Vec<Incident>,
        cameras: usize,
    ) -> Vec<WatchEvent> {
        let cameras: Vec<Camera> = (0..cameras)
            .map(|i| Camera {
                id: format!("cam-{i}"),
                ..Default::default()
            })
            .collect();
        let end = SnapshotEnd {
            seq,
            units: units.len() as u64,
            cameras: cameras.len() as u64,
            incidents: incidents.len() as u64,
            log_epoch: 99,
        };
        vec![
            event(
                seq,
                Kind::Snapshot(SnapshotChunk {
                    units,
                    ..Default::default()
                }),
            ),
            event(
                seq,
                Kind::Snapshot(SnapshotChunk {
                    cameras,
                    incidents,
                    ..Default::default()
                }),
            ),
            event(seq, Kind::SnapshotEnd(end)),
        ]
    }

    fn apply_all(state: &mut RoomState, events: &[WatchEvent]) -> Vec<Applied> {
        events.iter().map(|e| state.apply(e, T0)).collect()
    }

    /// The state after a snapshot at seq 10: two units, one open incident.
    fn started() -> RoomState {
        let mut state = RoomState::new(false);
        let units = vec![
            unit("car-11", "Car 11", UnitKind::Car, UnitStatus::Available, ""),
            unit(
                "foot-3",
                "Foot 3",
                UnitKind::Foot,
                UnitStatus::Available,
                "",
            ),
        ];
        let applied = apply_all(
            &mut state,
            &snapshot(
                10,
                units,
                vec![incident("inc-4", IncidentStatus::New, &[])],
                3,
            ),
        );
        assert!(applied.iter().all(|a| a.warnings.is_empty()));
        assert!(applied[2].snapshot_done);
        state
    }

    fn row<'a>(screen: &'a str, first: &str) -> Vec<&'a str> {
        let line = screen
            .lines()
            .find(|l| l.starts_with(first))
            .unwrap_or_else(|| panic!("no row starting {first:?} in\n{screen}"));
        line.split_whitespace().collect()
    }

    #[test]
    fn snapshot_builds_the_picture() {
        let state = started();
        assert_eq!(state.resume_point(), 10);
        let screen = render(&state, &View::new("http://x:1", None), T0 + 2000);
        assert!(
            screen.starts_with("patrolctl watch  http://x:1  seq 10  12:00:02 UTC"),
            "{screen}"
        );
        assert!(
            screen.contains("units 2: available 2   cameras 3   open incidents 1"),
            "{screen}"
        );
        assert_eq!(
            row(&screen, "Car 11"),
            [
                "Car",
                "11",
                "car",
                "available",
                "24.94512",
                "60.16801",
                "8.2m/s",
                "2s",
                "ago",
                "-"
            ]
        );
        assert_eq!(
            row(&screen, "inc-4"),
            ["inc-4", "theft", "2", "new", "3m", "ago"]
        );
        assert!(screen.contains("snapshot at seq 10: 2 units, 3 cameras, 1 incidents"));
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
        let screen = render(&state, &View::new("s", None), T0 + 5000);
        assert_eq!(
            row(&screen, "Car 11")[3..6],
            ["en_route", "24.94512", "60.16801"]
        );
        assert_eq!(row(&screen, "Foot 3")[4..6], ["24.95000", "60.17000"]);
        assert_eq!(row(&screen, "inc-4")[3..6], ["dispatched", "Car", "11"]);
        assert_eq!(
            row(&screen, "11 ")[1..],
            ["12:00:11", "inc-4", "dispatched:", "Car", "11"]
        );
        assert!(screen.contains("Car 11: available -> en_route (inc-4)"));
        // En-route units are listed before available ones.
        let car = screen.find("Car 11 ").unwrap_or(usize::MAX);
        let foot = screen.find("Foot 3 ").unwrap_or(0);
        assert!(car < foot, "{screen}");

        state.apply(
            &event(
                14,
                Kind::Incident(incident("inc-4", IncidentStatus::Closed, &[])),
            ),
            T0,
        );
        let screen = render(&state, &View::new("s", None), T0);
        assert!(screen.contains("open incidents 0"));
        assert!(screen.contains("inc-4 closed"));
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
        let screen = render(&state, &View::new("s", None), T0);
        assert!(
            screen.contains("!! 2 seq gaps; last: SEQ WENT BACKWARDS"),
            "{screen}"
        );
        assert!(screen.contains("alert fight cam cam-1 0.91"));
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
        // While the new snapshot arrives the old picture stays on screen.
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
        assert!(render(&state, &View::new("s", None), T0).contains("Car 11"));
        state.apply(&chunks[2], T0);
        let screen = render(&state, &View::new("s", None), T0);
        assert!(!screen.contains("Car 11"), "{screen}");
        assert_eq!(row(&screen, "Bike 1")[2..4], ["e_bike", "busy"]);
        assert!(
            screen.contains("units 1: busy 1   cameras 0   open incidents 0"),
            "{screen}"
        );
        assert!(screen.contains("RESYNC (lagged, missed 25): reloading snapshot"));
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
    fn a_unit_first_seen_by_position_is_shown_by_id() {
        let mut state = started();
        let batch = PositionBatch {
            left_area: Default::default(),
            positions: vec![UnitPosition {
                unit_id: "moto-9".into(),
                fix: Some(fix(24.9, 60.1, T0)),
            }],
        };
        state.apply(&event(11, Kind::Positions(batch)), T0);
        let screen = render(&state, &View::new("s", None), T0);
        assert_eq!(row(&screen, "moto-9")[1..3], ["?", "?"]);
    }

    #[test]
    fn long_tables_are_truncated() {
        let mut state = RoomState::new(false);
        let units = (0..25)
            .map(|i| {
                unit(
                    &format!("u{i:02}"),
                    &format!("Unit {i:02}"),
                    UnitKind::Foot,
                    UnitStatus::Available,
                    "",
                )
            })
            .collect();
        let incidents = (0..10)
            .map(|i| incident(&format!("inc-{i}"), IncidentStatus::New, &[]))
            .collect();
        apply_all(&mut state, &snapshot(1, units, incidents, 0));
        for seq in 2..30 {
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
        let screen = render(&state, &View::new("s", None), T0);
        assert!(screen.contains("Unit 19"));
        assert!(!screen.contains("Unit 20"));
        assert!(screen.contains("... and 5 more"));
        assert!(screen.contains("... and 2 more"));
        let events: Vec<&str> = screen
            .lines()
            .filter(|l| l.contains("camera cam-"))
            .collect();
        assert_eq!(events.len(), 12);
        assert!(events[11].contains("camera cam-29 updated"));
        assert!(screen.lines().all(|l| l.chars().count() <= 110), "{screen}");
    }

    #[test]
    fn events_per_second_over_a_window() {
        let mut state = started();
        for i in 0..10 {
            state.apply(
                &event(11 + i, Kind::Positions(PositionBatch::default())),
                T0 + i as i64 * 100,
            );
        }
        state.tick(T0 + 2000);
        assert!(render(&state, &View::new("s", None), T0 + 2000).contains("5.0 ev/s"));
    }
}
