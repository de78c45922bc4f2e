//! Wire → domain.

use patrol_dispatcher as d;
use patrol_proto::shared::PingView;
use patrol_proto::v1 as pb;
use tonic::Status;

use crate::status::{IntoStatus, missing};

fn bad_enum(field: &str, value: i32, allowed: &str) -> Status {
    Status::invalid_argument(format!(
        "invalid {field} = {value}: must be one of {allowed}"
    ))
}

pub fn unit_kind(field: &str, value: i32) -> Result<d::UnitKind, Status> {
    match pb::UnitKind::try_from(value) {
        Ok(pb::UnitKind::Car) => Ok(d::UnitKind::Car),
        Ok(pb::UnitKind::Foot) => Ok(d::UnitKind::Foot),
        Ok(pb::UnitKind::EBike) => Ok(d::UnitKind::EBike),
        Ok(pb::UnitKind::Motorcycle) => Ok(d::UnitKind::Motorcycle),
        _ => Err(bad_enum(field, value, "CAR, FOOT, E_BIKE, MOTORCYCLE")),
    }
}

pub fn unit_status(field: &str, value: i32) -> Result<d::UnitStatus, Status> {
    use pb::UnitStatus as S;
    match S::try_from(value) {
        Ok(S::Available) => Ok(d::UnitStatus::Available),
        Ok(S::Assigned) => Ok(d::UnitStatus::Assigned),
        Ok(S::EnRoute) => Ok(d::UnitStatus::EnRoute),
        Ok(S::OnScene) => Ok(d::UnitStatus::OnScene),
        Ok(S::Busy) => Ok(d::UnitStatus::Busy),
        Ok(S::OffDuty) => Ok(d::UnitStatus::OffDuty),
        Ok(S::Offline) => Ok(d::UnitStatus::Offline),
        _ => Err(bad_enum(
            field,
            value,
            "AVAILABLE, ASSIGNED, EN_ROUTE, ON_SCENE, BUSY, OFF_DUTY, OFFLINE",
        )),
    }
}

pub fn incident_status(field: &str, value: i32) -> Result<d::IncidentStatus, Status> {
    use pb::IncidentStatus as S;
    match S::try_from(value) {
        Ok(S::New) => Ok(d::IncidentStatus::New),
        Ok(S::Dispatched) => Ok(d::IncidentStatus::Dispatched),
        Ok(S::OnScene) => Ok(d::IncidentStatus::OnScene),
        Ok(S::Resolved) => Ok(d::IncidentStatus::Resolved),
        Ok(S::Closed) => Ok(d::IncidentStatus::Closed),
        _ => Err(bad_enum(
            field,
            value,
            "NEW, DISPATCHED, ON_SCENE, RESOLVED, CLOSED",
        )),
    }
}

pub fn incident_source(value: i32) -> Result<d::IncidentSource, Status> {
    use pb::IncidentSource as S;
    match S::try_from(value) {
        Ok(S::Unspecified) | Ok(S::Operator) => Ok(d::IncidentSource::Operator),
        Ok(S::Call) => Ok(d::IncidentSource::Call),
        Ok(S::CameraAlert) => Ok(d::IncidentSource::CameraAlert),
        Err(_) => Err(bad_enum("source", value, "CALL, CAMERA_ALERT, OPERATOR")),
    }
}

pub fn lonlat(field: &str, p: Option<&pb::LonLat>) -> Result<d::LonLat, Status> {
    let p = p.ok_or_else(|| missing(field))?;
    d::LonLat::new(p.lon, p.lat).validated(field).into_status()
}

pub fn bbox(field: &str, b: Option<&pb::BoundingBox>) -> Result<Option<d::BoundingBox>, Status> {
    b.map(|b| {
        d::BoundingBox {
            west: b.west,
            south: b.south,
            east: b.east,
            north: b.north,
        }
        .validated(field)
        .into_status()
    })
    .transpose()
}

/// A ping borrowed from the wire: no allocation on the ingest path.
pub fn ping<'a>(p: &PingView<'a>) -> d::Ping<'a> {
    d::Ping {
        unit_id: p.unit_id,
        time: p.fix_time_unix_ms,
        at: d::LonLat::new(p.lon, p.lat),
        speed_mps: p.speed_mps,
        heading_deg: p.heading_deg,
        accuracy_m: p.accuracy_m,
    }
}

pub fn unit_profile(req: pb::RegisterUnitRequest) -> Result<d::UnitProfile, Status> {
    Ok(d::UnitProfile {
        kind: unit_kind("kind", req.kind)?,
        call_sign: if req.call_sign.is_empty() {
            req.id.clone()
        } else {
            req.call_sign
        },
        id: req.id,
        capabilities: req.capabilities,
    })
}

pub fn camera(c: Option<pb::Camera>) -> Result<d::Camera, Status> {
    let c = c.ok_or_else(|| missing("camera"))?;
    Ok(d::Camera {
        id: c.id,
        name: c.name,
        at: d::LonLat::new(c.lon, c.lat),
        mount_height_m: c.mount_height_m,
        heading_deg: c.heading_deg,
        fov_deg: c.fov_deg,
        range_m: c.range_m,
        ptz: c.ptz,
    })
}

pub fn new_alert(req: pb::PostAlertRequest) -> d::NewAlert {
    d::NewAlert {
        camera_id: req.camera_id,
        time: (req.time_unix_ms != 0).then_some(req.time_unix_ms),
        label: req.label,
        confidence: req.confidence,
        snapshot_uri: req.snapshot_uri,
    }
}

pub fn new_incident(req: pb::CreateIncidentRequest) -> Result<d::NewIncident, Status> {
    Ok(d::NewIncident {
        location: lonlat("location", req.location.as_ref())?,
        source: incident_source(req.source)?,
        kind: req.r#type,
        priority: (req.priority != 0).then_some(req.priority),
        description: req.description,
    })
}

pub fn recommend(req: pb::RecommendRequest) -> Result<(d::Target, d::UnitQuery), Status> {
    let target = match req.target {
        Some(pb::recommend_request::Target::IncidentId(id)) => d::Target::Incident(id),
        Some(pb::recommend_request::Target::Point(p)) => {
            d::Target::Point(d::LonLat::new(p.lon, p.lat))
        }
        None => return Err(missing("target (incident_id or point)")),
    };
    let kinds = req
        .kinds
        .iter()
        .enumerate()
        .map(|(i, k)| unit_kind(&format!("kinds[{i}]"), *k))
        .collect::<Result<_, _>>()?;
    let query = d::UnitQuery {
        k: if req.k == 0 { 5 } else { req.k as usize },
        kinds,
        required_capabilities: req.required_capabilities,
        max_distance_m: (req.max_distance_m != 0.0).then_some(req.max_distance_m),
    };
    Ok((target, query))
}

pub fn unit_filter(req: &pb::ListUnitsRequest) -> Result<d::UnitFilter, Status> {
    Ok(d::UnitFilter {
        statuses: req
            .statuses
            .iter()
            .enumerate()
            .map(|(i, s)| unit_status(&format!("statuses[{i}]"), *s))
            .collect::<Result<_, _>>()?,
        kinds: req
            .kinds
            .iter()
            .enumerate()
            .map(|(i, k)| unit_kind(&format!("kinds[{i}]"), *k))
            .collect::<Result<_, _>>()?,
        bbox: bbox("bbox", req.bbox.as_ref())?,
    })
}
