//! How each event is told: the line `watch --log` prints for it and the text
//! of its "recent events" entry. Pure functions of the event and of what the
//! picture held before it (a unit's old status, a call sign); they change
//! nothing.

use patrol_proto::v1::{
    Alert, Camera, DispatchOrder, Incident, IncidentStatus, PositionBatch, Resync, ResyncReason,
    SnapshotChunk, SnapshotEnd, Track, Unit, UnitAlert, UnitAlertKind, UnitKind, UnitStatus,
    ZoneChange, ZoneChangeKind,
};

use crate::format::{metres, word_of};

/// The two texts of one change.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Told {
    /// For `watch --log`, after the `seq=N ` prefix.
    pub log: String,
    /// For the recent-events list; none for position batches, which would
    /// flood it.
    pub recent: Option<String>,
}

impl Told {
    fn both(log: String, recent: String) -> Self {
        Self {
            log,
            recent: Some(recent),
        }
    }
}

pub(super) fn snapshot_chunk(seq: u64, chunk: &SnapshotChunk) -> String {
    format!(
        "seq={seq} snapshot units={} cameras={} incidents={}",
        chunk.units.len(),
        chunk.cameras.len(),
        chunk.incidents.len()
    )
}

/// The log line and the recent-events text of a snapshot's end.
pub(super) fn snapshot_end(end: &SnapshotEnd) -> (String, String) {
    let log = format!(
        "seq={} snapshot_end units={} cameras={} incidents={} epoch={}",
        end.seq, end.units, end.cameras, end.incidents, end.log_epoch
    );
    let recent = format!(
        "snapshot at seq {}: {} units, {} cameras, {} incidents",
        end.seq, end.units, end.cameras, end.incidents
    );
    (log, recent)
}

/// The log line and the recent-events text of a Resync.
pub(super) fn resync(seq: u64, resync: &Resync) -> (String, String) {
    let reason = word_of::<ResyncReason>(resync.reason);
    let log = format!("seq={seq} resync reason={reason} missed={}", resync.missed);
    let recent = format!(
        "RESYNC ({reason}, missed {}): reloading snapshot",
        resync.missed
    );
    (log, recent)
}

pub(super) fn positions(batch: &PositionBatch) -> Told {
    let log = if batch.left_area.is_empty() {
        format!("positions n={}", batch.positions.len())
    } else {
        format!(
            "positions n={} left_area={}",
            batch.positions.len(),
            batch
                .left_area
                .iter()
                .map(|p| p.unit_id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    Told { log, recent: None }
}

/// A unit alert (overdue, order not acknowledged); `call_sign` from the
/// picture.
pub(super) fn unit_alert(alert: &UnitAlert, call_sign: &str) -> Told {
    let kind = word_of::<UnitAlertKind>(alert.kind);
    Told::both(
        format!(
            "unit_alert {} kind={kind} incident={} message={:?}",
            alert.unit_id,
            if alert.incident_id.is_empty() {
                "-"
            } else {
                &alert.incident_id
            },
            alert.message
        ),
        format!("ALERT {call_sign}: {}", alert.message),
    )
}

pub(super) fn track(track: &Track) -> Told {
    let state = if track.closed_unix_ms != 0 {
        "closed"
    } else {
        "open"
    };
    let handoffs = track.prediction.as_ref().map_or(0, |p| p.handoffs.len());
    let next = track
        .prediction
        .as_ref()
        .and_then(|p| p.handoffs.first())
        .map_or("-", |h| h.camera_id.as_str());
    Told::both(
        format!(
            "track {} {state} label={:?} sightings={} handoffs={handoffs} next={next}",
            track.id,
            track.label,
            track.sightings.len()
        ),
        if track.closed_unix_ms != 0 {
            format!("track {} closed: {}", track.id, track.close_reason)
        } else {
            format!(
                "track {} ({}): {} sightings, next camera {next}",
                track.id,
                track.label,
                track.sightings.len()
            )
        },
    )
}

pub(super) fn zone(change: &ZoneChange, call_sign: &str) -> Told {
    let kind = word_of::<ZoneChangeKind>(change.kind);
    let zone = &change.zone_id;
    Told::both(
        if change.unit_id.is_empty() {
            format!("zone {zone} {kind}")
        } else {
            format!("zone {zone} {kind} unit={}", change.unit_id)
        },
        match ZoneChangeKind::try_from(change.kind) {
            Ok(ZoneChangeKind::Entered) => format!("{call_sign} entered zone {zone}"),
            Ok(ZoneChangeKind::Exited) => format!("{call_sign} left zone {zone}"),
            Ok(ZoneChangeKind::Removed) => format!("zone {zone} removed"),
            _ => format!("zone {zone} updated"),
        },
    )
}

pub(super) fn camera(camera: &Camera) -> Told {
    Told::both(
        format!(
            "camera {} name={:?} heading={:.0} fov={:.0}",
            camera.id, camera.name, camera.heading_deg, camera.fov_deg
        ),
        format!("camera {} updated", camera.id),
    )
}

pub(super) fn alert(alert: &Alert) -> Told {
    let incident = if alert.incident_id.is_empty() {
        "-"
    } else {
        &alert.incident_id
    };
    let log = format!(
        "alert {} label={} camera={} confidence={:.2} incident={incident}",
        alert.id, alert.label, alert.camera_id, alert.confidence
    );
    let mut recent = format!(
        "alert {} cam {} {:.2}",
        alert.label, alert.camera_id, alert.confidence
    );
    if !alert.incident_id.is_empty() {
        recent.push_str(&format!(" -> {}", alert.incident_id));
    }
    Told::both(log, recent)
}

/// A unit event; `old` is the unit as the picture held it before.
pub(super) fn unit(unit: &Unit, old: Option<&Unit>) -> Told {
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
    let recent = match old {
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
    Told::both(log, recent)
}

/// An incident event; `old` is the open incident as the picture held it,
/// `unit_names` its units' call signs.
pub(super) fn incident(incident: &Incident, old: Option<&Incident>, unit_names: &str) -> Told {
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
    let recent = match old {
        None if incident.status == IncidentStatus::New as i32 => format!(
            "{} new: {} p{}",
            incident.id, incident.r#type, incident.priority
        ),
        Some(old) if old.status == incident.status && old.unit_ids == incident.unit_ids => {
            format!("{} updated", incident.id)
        }
        _ if incident.unit_ids.is_empty() => format!("{} {status}", incident.id),
        _ => format!("{} {status}: {unit_names}", incident.id),
    };
    Told::both(log, recent)
}

/// A dispatch order; `call_sign` is its unit's.
pub(super) fn order(order: &DispatchOrder, call_sign: &str) -> Told {
    let distance = order.distance_m.map_or("-".into(), |d| format!("{d:.0}"));
    let log = format!(
        "order {} unit={} incident={} distance_m={distance}",
        order.order_id, order.unit_id, order.incident_id
    );
    let recent = format!(
        "order {}: {call_sign} -> {} ({} p{}{})",
        order.order_id,
        order.incident_id,
        order.incident_type,
        order.priority,
        order
            .distance_m
            .map_or(String::new(), |d| format!(", {}", metres(d)))
    );
    Told::both(log, recent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_registered_then_changes_status() {
        let mut u = Unit {
            id: "car-1".into(),
            call_sign: "Car 1".into(),
            kind: UnitKind::Car as i32,
            status: UnitStatus::Available as i32,
            ..Default::default()
        };
        assert_eq!(
            unit(&u, None).recent.as_deref(),
            Some("Car 1 registered (car, available)")
        );
        let old = u.clone();
        u.status = UnitStatus::EnRoute as i32;
        u.incident_id = "inc-2".into();
        let told = unit(&u, Some(&old));
        assert_eq!(
            told.log,
            "unit Car 1 id=car-1 kind=car status=en_route incident=inc-2"
        );
        assert_eq!(
            told.recent.as_deref(),
            Some("Car 1: available -> en_route (inc-2)")
        );
        assert_eq!(unit(&u, Some(&u)).recent.as_deref(), Some("Car 1 updated"));
    }

    #[test]
    fn an_order_names_the_unit_by_call_sign() {
        let o = DispatchOrder {
            order_id: "order-3".into(),
            unit_id: "car-1".into(),
            incident_id: "inc-2".into(),
            incident_type: "theft".into(),
            priority: 2,
            distance_m: Some(420.0),
            ..Default::default()
        };
        let told = order(&o, "Car 1");
        assert_eq!(
            told.log,
            "order order-3 unit=car-1 incident=inc-2 distance_m=420"
        );
        let recent = told.recent.unwrap();
        assert!(
            recent.starts_with("order order-3: Car 1 -> inc-2 (theft p2, "),
            "{recent}"
        );
    }

    #[test]
    fn positions_stay_out_of_recent_events() {
        let told = positions(&PositionBatch::default());
        assert_eq!(told.log, "positions n=0");
        assert_eq!(told.recent, None);
    }
}
