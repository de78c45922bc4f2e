//! The live view as plain text: a header, the units table, the open
//! incidents and the newest events. No escape codes (those are
//! [`super::terminal`]'s) and no clock: `now_ms` comes in.

use std::collections::BTreeMap;

use patrol_proto::v1::{BoundingBox, Incident, IncidentStatus, Unit, UnitKind, UnitStatus};

use super::state::RoomState;
use crate::format::{EnumWord, Table, age, clock, natural_cmp, truncate, word_of};

/// How the view is laid out; the defaults fit about 50 lines of 100 columns.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub server: String,
    pub bbox: Option<BoundingBox>,
    pub max_units: usize,
    pub max_incidents: usize,
    pub max_events: usize,
}

impl View {
    pub(crate) fn new(server: &str, bbox: Option<BoundingBox>) -> Self {
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

fn seq_text(state: &RoomState) -> String {
    state.last_seq().map_or("-".into(), |s| s.to_string())
}

/// The whole screen as plain text (no escape codes), one `\n` per line.
pub(crate) fn render(state: &RoomState, view: &View, now_ms: i64) -> String {
    let mut lines = header(state, view, now_ms);
    lines.push(String::new());
    units_table(&mut lines, state, view, now_ms);
    lines.push(String::new());
    incidents_table(&mut lines, state, view, now_ms);
    lines.push(String::new());
    events_table(&mut lines, state, view);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The title line, the counts, and the alarms.
fn header(state: &RoomState, view: &View, now_ms: i64) -> Vec<String> {
    let mut lines = Vec::new();
    let area = view.bbox.map_or(String::new(), |b| {
        format!("  bbox {},{},{},{}", b.west, b.south, b.east, b.north)
    });
    lines.push(format!(
        "patrolctl watch  {}{area}  seq {}  {} UTC  {:.1} ev/s  [{}]",
        view.server,
        seq_text(state),
        clock(now_ms),
        state.rate_per_sec(),
        truncate(state.connection(), 40)
    ));

    let mut by_status: BTreeMap<u8, (String, usize)> = BTreeMap::new();
    for unit in state.units().values() {
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
        state.units().len(),
        if counts.is_empty() {
            "-".into()
        } else {
            counts.join(", ")
        },
        state.cameras().len(),
        state.incidents().len()
    ));
    if let Some(last) = state.gaps().last() {
        lines.push(format!(
            "!! {} seq gaps; last: {}",
            state.gaps().len(),
            last.describe()
        ));
    }
    if !state.has_snapshot() && state.last_seq().is_none() {
        lines.push("waiting for the snapshot...".into());
    }
    lines
}

fn units_table(lines: &mut Vec<String>, state: &RoomState, view: &View, now_ms: i64) {
    let mut units: Vec<&Unit> = state.units().values().collect();
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
    more(lines, units.len(), view.max_units);
}

fn incidents_table(lines: &mut Vec<String>, state: &RoomState, view: &View, now_ms: i64) {
    let mut incidents: Vec<&Incident> = state.incidents().values().collect();
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
    more(lines, incidents.len(), view.max_incidents);
}

fn events_table(lines: &mut Vec<String>, state: &RoomState, view: &View) {
    let mut table = Table::new(&[("SEQ", 9), ("TIME", 8), ("EVENT", 76)]);
    let recent = state.recent();
    let skip = recent.len().saturating_sub(view.max_events);
    for entry in recent.iter().skip(skip) {
        table.row(vec![
            entry.seq.map_or("*".into(), |s| s.to_string()),
            clock(entry.time_ms),
            entry.text.clone(),
        ]);
    }
    lines.extend(table.lines_or("no events yet"));
}

/// A one-line summary printed when `watch --log` ends.
pub(crate) fn summary(state: &RoomState) -> String {
    format!(
        "watched {} changes up to seq {}; {} units, {} open incidents; {} seq gaps",
        state.changes(),
        seq_text(state),
        state.units().len(),
        state.incidents().len(),
        state.gaps().len()
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use patrol_proto::v1::watch_event::Kind;
    use patrol_proto::v1::{
        Alert, Camera, PositionBatch, Resync, ResyncReason, UnitPosition, WatchEvent,
    };

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
    fn before_the_snapshot_the_view_says_it_waits() {
        let state = RoomState::new(false);
        let screen = render(&state, &View::new("s", None), T0);
        assert!(screen.contains("  seq -  "), "{screen}");
        assert!(screen.contains("waiting for the snapshot..."), "{screen}");
        assert!(screen.contains("no units") && screen.contains("no events yet"));
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
        apply_all(&mut state, &events);
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
        assert_eq!(
            summary(&state),
            "watched 4 changes up to seq 14; 2 units, 0 open incidents; 0 seq gaps"
        );
    }

    #[test]
    fn gaps_are_shown_in_the_header() {
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
        for seq in [11, 14, 13] {
            state.apply(&alert(seq), T0);
        }
        let screen = render(&state, &View::new("s", None), T0);
        assert!(
            screen.contains("!! 2 seq gaps; last: SEQ WENT BACKWARDS"),
            "{screen}"
        );
        assert!(screen.contains("alert fight cam cam-1 0.91"));
    }

    #[test]
    fn resync_replaces_the_state_with_the_new_snapshot() {
        let mut state = started();
        state.apply(&event(11, Kind::Positions(PositionBatch::default())), T0);
        let resync = Resync {
            reason: ResyncReason::Lagged as i32,
            missed: 25,
        };
        state.apply(
            &WatchEvent {
                seq: 0,
                time_unix_ms: T0,
                kind: Some(Kind::Resync(resync)),
            },
            T0,
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
