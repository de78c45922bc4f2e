//! Domain → wire.

use patrol_dispatcher as d;
use patrol_proto::v1 as pb;

pub fn lonlat(p: d::LonLat) -> pb::LonLat {
    pb::LonLat {
        lon: p.lon,
        lat: p.lat,
    }
}

pub fn unit_kind(k: d::UnitKind) -> pb::UnitKind {
    match k {
        d::UnitKind::Car => pb::UnitKind::Car,
        d::UnitKind::Foot => pb::UnitKind::Foot,
        d::UnitKind::EBike => pb::UnitKind::EBike,
        d::UnitKind::Motorcycle => pb::UnitKind::Motorcycle,
    }
}

pub fn unit_status(s: d::UnitStatus) -> pb::UnitStatus {
    match s {
        d::UnitStatus::Available => pb::UnitStatus::Available,
        d::UnitStatus::Assigned => pb::UnitStatus::Assigned,
        d::UnitStatus::EnRoute => pb::UnitStatus::EnRoute,
        d::UnitStatus::OnScene => pb::UnitStatus::OnScene,
        d::UnitStatus::Busy => pb::UnitStatus::Busy,
        d::UnitStatus::OffDuty => pb::UnitStatus::OffDuty,
        d::UnitStatus::Offline => pb::UnitStatus::Offline,
    }
}

pub fn incident_status(s: d::IncidentStatus) -> pb::IncidentStatus {
    match s {
        d::IncidentStatus::New => pb::IncidentStatus::New,
        d::IncidentStatus::Dispatched => pb::IncidentStatus::Dispatched,
        d::IncidentStatus::OnScene => pb::IncidentStatus::OnScene,
        d::IncidentStatus::Resolved => pb::IncidentStatus::Resolved,
        d::IncidentStatus::Closed => pb::IncidentStatus::Closed,
    }
}

pub fn fix(f: &d::Fix) -> pb::Fix {
    pb::Fix {
        lon: f.at.lon,
        lat: f.at.lat,
        fix_time_unix_ms: f.time,
        speed_mps: f.speed_mps,
        heading_deg: f.heading_deg,
        accuracy_m: f.accuracy_m,
    }
}

pub fn unit(u: &d::Unit) -> pb::Unit {
    pb::Unit {
        id: u.profile.id.clone(),
        call_sign: u.profile.call_sign.clone(),
        kind: unit_kind(u.profile.kind) as i32,
        capabilities: u.profile.capabilities.clone(),
        status: unit_status(u.status) as i32,
        fix: u.fix.as_ref().map(fix),
        incident_id: u.incident_id.clone().unwrap_or_default(),
    }
}

/// A camera as the stream and listings show it, with whether it is online.
pub fn camera_at(c: &d::Camera, online: bool) -> pb::Camera {
    pb::Camera {
        id: c.id.clone(),
        name: c.name.clone(),
        lon: c.at.lon,
        lat: c.at.lat,
        mount_height_m: c.mount_height_m,
        heading_deg: c.heading_deg,
        fov_deg: c.fov_deg,
        range_m: c.range_m,
        ptz: c.ptz,
        vertical_fov_deg: c.vertical_fov_deg.unwrap_or(0.0),
        ptz_head: c.ptz_head.as_ref().map(|h| pb::PtzHead {
            zero_pan_azimuth_deg: h.zero_pan_azimuth_deg,
            pan_min_deg: h.pan_min_deg,
            pan_max_deg: h.pan_max_deg,
            tilt_min_deg: h.tilt_min_deg,
            tilt_max_deg: h.tilt_max_deg,
            pose: Some(pose(&h.pose)),
        }),
        last_seen_unix_ms: c.last_seen.unwrap_or(0),
        online,
    }
}

/// A camera whose health is not known here (shown online).
pub fn camera(c: &d::Camera) -> pb::Camera {
    camera_at(c, true)
}

pub fn pose(p: &d::PtzPose) -> pb::PtzPose {
    pb::PtzPose {
        pan_deg: p.pan_deg,
        tilt_deg: p.tilt_deg,
        zoom: p.zoom,
    }
}

pub fn sight(s: &d::CameraSight) -> pb::CameraSight {
    pb::CameraSight {
        camera_id: s.camera_id.clone(),
        distance_m: s.distance_m,
        bearing_deg: s.bearing_deg,
        off_axis_deg: s.off_axis_deg,
        sees_now: s.sees_now,
        after_turn: s.after_turn.as_ref().map(turn),
    }
}

pub fn aim(camera_id: &str, a: &d::Aim, applied: bool) -> pb::CameraAim {
    pb::CameraAim {
        camera_id: camera_id.to_string(),
        bearing_deg: a.bearing_deg,
        pan_relative_deg: a.pan_relative_deg,
        tilt_deg: a.tilt_deg,
        distance_m: a.distance_m,
        slant_m: a.slant_m,
        within_pan: a.within_pan,
        within_tilt: a.within_tilt,
        within_range: a.within_range,
        pose: a.pose.as_ref().map(pose),
        onvif: a.onvif.as_ref().map(|o| pb::OnvifPose {
            pan_deg: o.pan_deg,
            tilt_deg: o.tilt_deg,
            generic_pan: o.generic_pan,
            generic_tilt: o.generic_tilt,
            zoom: o.zoom,
        }),
        applied,
    }
}

pub fn path_sight(p: &d::PathSight) -> pb::PathSight {
    pb::PathSight {
        sight: Some(sight(&p.sight)),
        along_m: p.along_m,
        at: Some(lonlat(p.at)),
        now_along_m: p.now_along_m,
    }
}

pub fn alert(a: &d::Alert) -> pb::Alert {
    pb::Alert {
        id: a.id.clone(),
        camera_id: a.camera_id.clone(),
        time_unix_ms: a.time,
        label: a.label.clone(),
        confidence: a.confidence,
        snapshot_uri: a.snapshot_uri.clone(),
        incident_id: a.incident_id.clone().unwrap_or_default(),
        location: Some(lonlat(a.location)),
        object_id: a.object_id.clone().unwrap_or_default(),
    }
}

pub fn incident(i: &d::Incident) -> pb::Incident {
    pb::Incident {
        id: i.id.clone(),
        r#type: i.kind.clone(),
        priority: i.priority,
        location: Some(lonlat(i.location)),
        source: match i.source {
            d::IncidentSource::Call => pb::IncidentSource::Call,
            d::IncidentSource::CameraAlert => pb::IncidentSource::CameraAlert,
            d::IncidentSource::Operator => pb::IncidentSource::Operator,
        } as i32,
        status: incident_status(i.status) as i32,
        description: i.description.clone(),
        unit_ids: i.unit_ids.clone(),
        camera_ids: i.camera_ids.clone(),
        alert_ids: i.alert_ids.clone(),
        created_unix_ms: i.created,
        updated_unix_ms: i.updated,
        audit: i
            .audit
            .iter()
            .map(|a| pb::AuditEntry {
                time_unix_ms: a.time,
                action: a.action.to_string(),
                detail: a.detail.clone(),
                actor: Some(actor(&a.actor)),
            })
            .collect(),
        withdrawn_unit_ids: i.withdrawn_unit_ids.clone(),
    }
}

pub fn actor(a: &d::Actor) -> pb::Actor {
    pb::Actor {
        identity: a.identity.clone(),
        role: a.role.clone(),
        peer: a.peer.clone(),
        node: a.node.clone(),
    }
}

pub fn order(o: &d::Order, state: pb::OrderState) -> pb::DispatchOrder {
    pb::DispatchOrder {
        order_id: o.id.clone(),
        unit_id: o.unit_id.clone(),
        incident_id: o.incident_id.clone(),
        incident_type: o.incident_kind.clone(),
        priority: o.priority,
        location: Some(lonlat(o.location)),
        description: o.description.clone(),
        issued_unix_ms: o.issued,
        distance_m: o.distance_m,
        note: o.note.clone(),
        state: state as i32,
        eta_s: o.eta_s,
        route_m: o.route_m,
        eta_method: o.eta_method.map_or(pb::EtaMethod::Unspecified, eta_method) as i32,
        route: o.route.iter().copied().map(lonlat).collect(),
        acknowledged_unix_ms: o.acknowledged.unwrap_or(0),
        intercept: o.intercept,
    }
}

pub fn eta_method(m: d::EtaMethod) -> pb::EtaMethod {
    match m {
        d::EtaMethod::Network => pb::EtaMethod::Network,
        d::EtaMethod::StraightLine => pb::EtaMethod::StraightLine,
    }
}

pub fn confidence(c: &d::LocationConfidence) -> pb::LocationConfidence {
    pb::LocationConfidence {
        score: c.score,
        age_s: c.age_s,
        accuracy_m: c.accuracy_m,
        radius_m: c.radius_m,
        note: c.note.as_str().to_string(),
    }
}

pub fn plan(p: &d::PlanOutcome) -> pb::PlanFill {
    pb::PlanFill {
        plan: p.plan.clone(),
        units: p
            .chosen
            .iter()
            .map(|u| pb::PlannedUnit {
                unit_id: u.unit_id.clone(),
                eta_s: u.eta_s,
                reason: u.reason.clone(),
            })
            .collect(),
        shortfalls: p.shortfalls.clone(),
        complete: p.complete,
    }
}

pub fn unit_alert(a: &d::UnitAlert) -> pb::UnitAlert {
    pb::UnitAlert {
        unit_id: a.unit_id.clone(),
        kind: match a.kind {
            d::UnitAlertKind::EnRouteOverdue => pb::UnitAlertKind::EnRouteOverdue,
            d::UnitAlertKind::OnSceneOverdue => pb::UnitAlertKind::OnSceneOverdue,
            d::UnitAlertKind::OrderNotAcknowledged => pb::UnitAlertKind::OrderNotAcknowledged,
        } as i32,
        incident_id: a.incident_id.clone().unwrap_or_default(),
        since_unix_ms: a.since,
        message: a.message.clone(),
    }
}

pub fn recommendation(r: &d::Recommendation) -> pb::RecommendResponse {
    pb::RecommendResponse {
        target: Some(lonlat(r.target)),
        units: r
            .units
            .iter()
            .map(|u| pb::RecommendedUnit {
                unit: Some(unit(&u.unit)),
                distance_m: u.distance_m,
                eta_s: u.eta_s,
                reason: u.reason.clone(),
                eta_method: eta_method(u.eta_method) as i32,
                route_m: u.route_m,
                route: u.route.iter().copied().map(lonlat).collect(),
                confidence: Some(confidence(&u.confidence)),
            })
            .collect(),
        excluded: r
            .excluded
            .iter()
            .map(|e| pb::ExcludedUnit {
                unit_id: e.unit_id.clone(),
                call_sign: e.call_sign.clone(),
                distance_m: e.distance_m,
                reason: match e.reason {
                    d::ExclusionReason::Assigned => pb::ExclusionReason::Assigned,
                    d::ExclusionReason::NotAvailable => pb::ExclusionReason::NotAvailable,
                    d::ExclusionReason::Offline => pb::ExclusionReason::Offline,
                    d::ExclusionReason::WrongKind => pb::ExclusionReason::WrongKind,
                    d::ExclusionReason::MissingCapability => pb::ExclusionReason::MissingCapability,
                    d::ExclusionReason::ArrivesLater => pb::ExclusionReason::ArrivesLater,
                } as i32,
                detail: e.detail.clone(),
            })
            .collect(),
        plan: r.plan.as_ref().map(plan),
    }
}

pub fn ping_reject_reason(r: &d::PingRejection) -> pb::PingRejectReason {
    match r {
        d::PingRejection::MissingUnitId => pb::PingRejectReason::MissingUnitId,
        d::PingRejection::UnknownUnit => pb::PingRejectReason::UnknownUnit,
        d::PingRejection::InvalidCoordinates { .. } => pb::PingRejectReason::InvalidCoordinates,
        d::PingRejection::MissingFixTime { .. } => pb::PingRejectReason::MissingFixTime,
        d::PingRejection::FutureFixTime { .. } => pb::PingRejectReason::FutureFixTime,
        d::PingRejection::OutOfOrder { .. } => pb::PingRejectReason::OutOfOrder,
        d::PingRejection::InvalidMotion { .. } => pb::PingRejectReason::InvalidMotion,
        d::PingRejection::Implausible(_) => pb::PingRejectReason::Implausible,
    }
}

/// The stream event for a domain event (`seq` and time are set by the log).
pub fn event_kind(e: &d::Event) -> pb::watch_event::Kind {
    use pb::watch_event::Kind;
    match e {
        d::Event::Unit(u) => Kind::Unit(unit(u)),
        d::Event::Camera(c) => Kind::Camera(camera(c)),
        d::Event::Alert(a) => Kind::Alert(alert(a)),
        d::Event::Incident(i) => Kind::Incident(incident(i)),
        d::Event::Order(o) => Kind::Order(order(o, pb::OrderState::Active)),
        d::Event::OrderReleased(o) => Kind::Order(order(o, pb::OrderState::Released)),
        d::Event::UnitAlert(a) => Kind::UnitAlert(unit_alert(a)),
        d::Event::Track(t) => Kind::Track(track(t)),
        d::Event::Zone(z) => Kind::Zone(zone_change(z)),
        d::Event::UnitInView(v) => Kind::UnitInView(unit_in_view(v)),
    }
}

pub fn unit_in_view(v: &d::UnitInView) -> pb::UnitInView {
    pb::UnitInView {
        unit_id: v.unit_id.clone(),
        camera_id: v.camera_id.clone(),
        time_unix_ms: v.time,
        entered: v.entered,
        at: Some(lonlat(v.at)),
    }
}

fn mode_coverage(m: &d::ModeCoverage) -> pb::ModeCoverage {
    pb::ModeCoverage {
        total_m: m.total_m,
        seen_now_m: m.seen_now_m,
        seen_after_turning_m: m.seen_after_turning_m,
        share_now: m.share_now(),
        share_after_turning: m.share_after_turning(),
    }
}

/// The blind spots as a GeoJSON FeatureCollection of LineStrings.
pub fn blind_spots_geojson(spots: &[d::BlindSpot]) -> String {
    let features: Vec<serde_json::Value> = spots
        .iter()
        .map(|b| {
            serde_json::json!({
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": b.points.iter().map(|p| [p.lon, p.lat]).collect::<Vec<_>>(),
                },
                "properties": {
                    "name": b.name,
                    "metres": b.length_m,
                    "car": b.car,
                    "foot": b.foot,
                },
            })
        })
        .collect();
    serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
}

pub fn coverage(c: &d::Coverage, include_segments: bool) -> pb::CoverageResponse {
    pb::CoverageResponse {
        car: Some(mode_coverage(&c.car)),
        foot: Some(mode_coverage(&c.foot)),
        step_m: c.step_m,
        samples: c.samples,
        blind_m: c.blind_m,
        blind_spot_count: c.blind_spot_count as u64,
        blind_spots_geojson: if include_segments {
            blind_spots_geojson(&c.blind_spots)
        } else {
            String::new()
        },
    }
}

fn turn(t: &d::Turn) -> pb::CameraTurn {
    pb::CameraTurn {
        pan_deg: t.pan_deg,
        tilt_deg: t.tilt_deg,
        heading_deg: t.heading_deg,
    }
}

fn points(p: &[d::LonLat]) -> Vec<pb::LonLat> {
    p.iter().copied().map(lonlat).collect()
}

pub fn track(t: &d::Track) -> pb::Track {
    pb::Track {
        id: t.id.clone(),
        label: t.label.clone(),
        mode: unit_kind(t.mode) as i32,
        incident_id: t.incident_id.clone(),
        sightings: t
            .sightings
            .iter()
            .map(|s| pb::Sighting {
                time_unix_ms: s.time,
                point: Some(lonlat(s.at)),
                camera_id: s.camera_id.clone().unwrap_or_default(),
                note: s.note.clone(),
                actor: Some(actor(&s.actor)),
            })
            .collect(),
        created_unix_ms: t.created,
        closed_unix_ms: t.closed.unwrap_or(0),
        close_reason: t.close_reason.clone(),
        prediction: t.prediction.as_ref().map(|p| pb::Prediction {
            made_unix_ms: p.made,
            from: Some(lonlat(p.from)),
            from_unix_ms: p.from_time,
            speed_mps: p.speed_mps,
            speed_observed: p.speed_observed,
            heading_deg: p.heading_deg,
            path: points(&p.path),
            ahead: points(&p.ahead),
            ahead_m: p.ahead_m,
            reachable_m: p.reachable_m,
            handoffs: p
                .handoffs
                .iter()
                .map(|h| pb::Handoff {
                    camera_id: h.camera_id.clone(),
                    at: Some(lonlat(h.at)),
                    distance_m: h.distance_m,
                    expected_unix_ms: h.expected,
                    window_start_unix_ms: h.window_start,
                    window_end_unix_ms: h.window_end,
                    sees_now: h.sees_now,
                    turn: h.turn.as_ref().map(turn),
                    on_way_ahead: h.on_way_ahead,
                })
                .collect(),
            method: eta_method(p.method) as i32,
        }),
    }
}

pub fn intercepts(i: &d::Intercepts) -> pb::RecommendInterceptsResponse {
    pb::RecommendInterceptsResponse {
        intercepts: i
            .intercepts
            .iter()
            .map(|x| pb::Intercept {
                unit: Some(unit(&x.unit)),
                at: Some(lonlat(x.at)),
                along_m: x.along_m,
                target_earliest_unix_ms: x.target_earliest,
                target_expected_unix_ms: x.target_expected,
                eta_s: x.eta_s,
                unit_arrival_unix_ms: x.unit_arrival,
                lead_s: x.lead_s,
                eta_method: eta_method(x.eta_method) as i32,
                route: points(&x.route),
                reason: x.reason.clone(),
            })
            .collect(),
        points_tried: i.points_tried as u32,
        shortfall: i.shortfall.clone().unwrap_or_default(),
    }
}

/// One unit's latest position, taking its id by value (no second copy on the
/// position ticker's path).
pub fn position((unit_id, f): (String, d::Fix)) -> pb::UnitPosition {
    pb::UnitPosition {
        unit_id,
        fix: Some(fix(&f)),
    }
}

pub fn zone(z: &d::Zone) -> pb::Zone {
    let ring = |r: &geo::LineString<f64>| pb::ZoneRing {
        points: r
            .0
            .iter()
            .map(|c| pb::LonLat { lon: c.x, lat: c.y })
            .collect(),
    };
    let (kind, parent_id) = match &z.kind {
        d::ZoneKind::Zone => (pb::ZoneKind::Zone, String::new()),
        d::ZoneKind::Segment { parent } => {
            (pb::ZoneKind::Segment, parent.clone().unwrap_or_default())
        }
    };
    pb::Zone {
        id: z.id.clone(),
        name: z.name.clone(),
        kind: kind as i32,
        parent_id,
        polygons: z
            .polygon
            .0
            .iter()
            .map(|p| pb::ZonePolygon {
                exterior: Some(ring(p.exterior())),
                holes: p.interiors().iter().map(ring).collect(),
            })
            .collect(),
        version: z.version,
        updated_unix_ms: z.updated,
    }
}

pub fn zone_change(c: &d::ZoneChange) -> pb::ZoneChange {
    let kind = match c.kind {
        d::ZoneChangeKind::Entered => pb::ZoneChangeKind::Entered,
        d::ZoneChangeKind::Exited => pb::ZoneChangeKind::Exited,
        d::ZoneChangeKind::Put => pb::ZoneChangeKind::Put,
        d::ZoneChangeKind::Removed => pb::ZoneChangeKind::Removed,
    };
    pb::ZoneChange {
        kind: kind as i32,
        zone_id: c.zone_id.clone(),
        unit_id: c.unit_id.clone().unwrap_or_default(),
        time_unix_ms: c.time,
        zone: c.zone.as_ref().map(zone),
    }
}
