//! Events and states shared by the watch tests.

use patrol_proto::v1::watch_event::Kind;
use patrol_proto::v1::{
    Camera, Fix, Incident, IncidentStatus, SnapshotChunk, SnapshotEnd, Unit, UnitKind, UnitStatus,
    WatchEvent,
};

use super::state::{Applied, RoomState};

/// 2024-05-01 12:00:00 UTC.
pub(super) const T0: i64 = 1_714_564_800_000;

pub(super) fn event(seq: u64, kind: Kind) -> WatchEvent {
    WatchEvent {
        seq,
        time_unix_ms: T0 + seq as i64 * 1000,
        kind: Some(kind),
    }
}

pub(super) fn fix(lon: f64, lat: f64, at: i64) -> Fix {
    Fix {
        lon,
        lat,
        fix_time_unix_ms: at,
        speed_mps: Some(8.25),
        ..Default::default()
    }
}

pub(super) fn unit(
    id: &str,
    call_sign: &str,
    kind: UnitKind,
    status: UnitStatus,
    incident: &str,
) -> Unit {
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

pub(super) fn incident(id: &str, status: IncidentStatus, units: &[&str]) -> Incident {
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

/// A snapshot at `seq` in two chunks (units; cameras and incidents) and its end.
pub(super) fn snapshot(
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

pub(super) fn apply_all(state: &mut RoomState, events: &[WatchEvent]) -> Vec<Applied> {
    events.iter().map(|e| state.apply(e, T0)).collect()
}

/// The state after a snapshot at seq 10: two units, one open incident.
pub(super) fn started() -> RoomState {
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
