//! Wire → domain: each request becomes a validated domain value once, here,
//! before anything is logged or applied. A missing or unknown field is a
//! [`ServerError`] naming it and its value, never a panic; the stateless rules
//! themselves live in the dispatcher (`validate` on each input type), so the
//! edge and the core apply the same ones.

use bytes::Bytes;
use patrol_dispatcher as d;
use patrol_dispatcher::Validated;
use patrol_proto::shared::{PingParseError, PingView, parse_ping};
use patrol_proto::v1 as pb;

use crate::command::PingsOutcome;
use crate::convert::to_wire;
use crate::error::ServerError;

fn bad_enum(field: &str, value: i32, allowed: &str) -> ServerError {
    ServerError::bad(field, value, format!("must be one of {allowed}"))
}

/// An optional caller-chosen id: empty means none.
fn optional_id(field: &str, value: String) -> Result<Option<String>, ServerError> {
    if value.is_empty() {
        return Ok(None);
    }
    d::error::validate_id(field, &value)?;
    Ok(Some(value))
}

pub fn unit_kind(field: &str, value: i32) -> Result<d::UnitKind, ServerError> {
    match pb::UnitKind::try_from(value) {
        Ok(pb::UnitKind::Car) => Ok(d::UnitKind::Car),
        Ok(pb::UnitKind::Foot) => Ok(d::UnitKind::Foot),
        Ok(pb::UnitKind::EBike) => Ok(d::UnitKind::EBike),
        Ok(pb::UnitKind::Motorcycle) => Ok(d::UnitKind::Motorcycle),
        _ => Err(bad_enum(field, value, "CAR, FOOT, E_BIKE, MOTORCYCLE")),
    }
}

pub fn unit_status(field: &str, value: i32) -> Result<d::UnitStatus, ServerError> {
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

pub fn incident_status(field: &str, value: i32) -> Result<d::IncidentStatus, ServerError> {
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

pub fn incident_source(value: i32) -> Result<d::IncidentSource, ServerError> {
    use pb::IncidentSource as S;
    match S::try_from(value) {
        Ok(S::Unspecified) | Ok(S::Operator) => Ok(d::IncidentSource::Operator),
        Ok(S::Call) => Ok(d::IncidentSource::Call),
        Ok(S::CameraAlert) => Ok(d::IncidentSource::CameraAlert),
        Err(_) => Err(bad_enum("source", value, "CALL, CAMERA_ALERT, OPERATOR")),
    }
}

pub fn lonlat(field: &str, p: Option<&pb::LonLat>) -> Result<d::LonLat, ServerError> {
    let p = p.ok_or_else(|| ServerError::missing(field))?;
    Ok(d::LonLat::new(p.lon, p.lat).validated(field)?)
}

pub fn bbox(
    field: &str,
    b: Option<&pb::BoundingBox>,
) -> Result<Option<d::BoundingBox>, ServerError> {
    b.map(|b| {
        d::BoundingBox {
            west: b.west,
            south: b.south,
            east: b.east,
            north: b.north,
        }
        .validated(field)
        .map_err(ServerError::from)
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

/// A ping batch at the edge: every ping that parses and passes the stateless
/// checks at time `now` (kept encoded, with its index in `raw`), and the
/// refusals of the others. What depends on state (an unknown unit, an older
/// fix) is decided when the batch is applied.
pub struct CheckedPings {
    pub kept: Vec<Bytes>,
    /// `index[i]` is the position in the received batch of `kept[i]`.
    pub index: Vec<u32>,
    pub refused: PingsOutcome,
}

/// `covers(unit_id)` says whether the caller may report for a unit (a
/// terminal's scope; `Err` is the refusal's message, refused as
/// PERMISSION_DENIED); checked in the same pass as the rest.
pub fn pings(
    raw: Vec<Bytes>,
    now: d::Millis,
    future_tolerance_ms: d::Millis,
    covers: impl Fn(&str) -> Result<(), String>,
) -> CheckedPings {
    let mut out = CheckedPings {
        kept: Vec::with_capacity(raw.len()),
        index: Vec::with_capacity(raw.len()),
        refused: PingsOutcome::default(),
    };
    for (i, bytes) in raw.into_iter().enumerate() {
        let checked = match parse_ping(&bytes) {
            Ok(view) => {
                if let Err(message) = covers(view.unit_id) {
                    out.refused.reject(
                        i,
                        view.unit_id,
                        pb::PingRejectReason::PermissionDenied,
                        message,
                    );
                    continue;
                }
                ping(&view)
                    .check(now, future_tolerance_ms)
                    .map_err(|r| (view.unit_id.to_string(), r))
            }
            Err(error) => {
                let message = match error {
                    PingParseError::UnitIdNotUtf8 => "unit_id is not valid UTF-8".to_string(),
                    PingParseError::Malformed(why) => format!("not a valid Ping: {why}"),
                };
                out.refused
                    .reject(i, "", pb::PingRejectReason::Malformed, message);
                continue;
            }
        };
        match checked {
            Ok(()) => {
                out.kept.push(bytes);
                out.index.push(i as u32);
            }
            Err((unit_id, rejection)) => out.refused.reject(
                i,
                &unit_id,
                to_wire::ping_reject_reason(&rejection),
                rejection.message(&unit_id),
            ),
        }
    }
    out
}

pub fn unit_profile(req: pb::RegisterUnitRequest) -> Result<d::UnitProfile, ServerError> {
    let profile = d::UnitProfile {
        kind: unit_kind("kind", req.kind)?,
        call_sign: if req.call_sign.is_empty() {
            req.id.clone()
        } else {
            req.call_sign
        },
        id: req.id,
        capabilities: req.capabilities,
    };
    profile.validate()?;
    Ok(profile)
}

/// A status report: the unit and its new status.
pub fn status_report(req: pb::UpdateStatusRequest) -> Result<(String, d::UnitStatus), ServerError> {
    d::error::validate_id("unit_id", &req.unit_id)?;
    let status = unit_status("status", req.status)?;
    status.validate_reported()?;
    Ok((req.unit_id, status))
}

pub fn camera(c: Option<pb::Camera>) -> Result<d::Camera, ServerError> {
    let c = c.ok_or_else(|| ServerError::missing("camera"))?;
    Ok(d::Camera {
        id: c.id,
        name: c.name,
        at: d::LonLat::new(c.lon, c.lat),
        mount_height_m: c.mount_height_m,
        heading_deg: c.heading_deg,
        fov_deg: c.fov_deg,
        range_m: c.range_m,
        ptz: c.ptz,
        vertical_fov_deg: (c.vertical_fov_deg != 0.0).then_some(c.vertical_fov_deg),
        ptz_head: c.ptz_head.map(|h| {
            let pose = h.pose.unwrap_or_default();
            d::Ptz {
                zero_pan_azimuth_deg: h.zero_pan_azimuth_deg,
                pan_min_deg: h.pan_min_deg,
                pan_max_deg: h.pan_max_deg,
                tilt_min_deg: h.tilt_min_deg,
                tilt_max_deg: h.tilt_max_deg,
                pose: d::PtzPose {
                    pan_deg: pose.pan_deg,
                    tilt_deg: pose.tilt_deg,
                    zoom: pose.zoom,
                },
            }
        }),
        last_seen: (c.last_seen_unix_ms != 0).then_some(c.last_seen_unix_ms),
    }
    .validated()?)
}

/// What a camera question is about.
pub fn camera_target(field: &str, t: Option<pb::CameraTarget>) -> Result<d::Target, ServerError> {
    use pb::camera_target::Target as T;
    match t.and_then(|t| t.target) {
        Some(T::Point(p)) => Ok(d::Target::Point(lonlat(
            &format!("{field}.point"),
            Some(&p),
        )?)),
        Some(T::UnitId(id)) => {
            d::error::validate_id(&format!("{field}.unit_id"), &id)?;
            Ok(d::Target::Unit(id))
        }
        Some(T::IncidentId(id)) => {
            d::error::validate_id(&format!("{field}.incident_id"), &id)?;
            Ok(d::Target::Incident(id))
        }
        None => Err(ServerError::missing(&format!(
            "{field} (point, unit_id or incident_id)"
        ))),
    }
}

/// A limit on how many answers: `default` when 0, at most 1000.
pub fn limit(field: &str, value: u32, default: usize) -> Result<usize, ServerError> {
    match value as usize {
        0 => Ok(default),
        n if n > d::MAX_CAMERA_ANSWERS => Err(ServerError::bad(
            field,
            n,
            format!("must be at most {}", d::MAX_CAMERA_ANSWERS),
        )),
        n => Ok(n),
    }
}

/// A height above the ground to aim at: 0 means the default.
pub fn target_height(value: f64) -> Result<Option<f64>, ServerError> {
    if value == 0.0 {
        return Ok(None);
    }
    if !value.is_finite() || !(0.0..=100.0).contains(&value) {
        return Err(ServerError::bad(
            "target_height_m",
            value,
            "must be in 0..=100 metres",
        ));
    }
    Ok(Some(value))
}

/// An alert at time `now` (an alert without a time happened `now`).
pub fn new_alert(
    req: pb::PostAlertRequest,
    now: d::Millis,
    future_tolerance_ms: d::Millis,
) -> Result<d::NewAlert, ServerError> {
    let alert = d::NewAlert {
        camera_id: req.camera_id,
        time: (req.time_unix_ms != 0).then_some(req.time_unix_ms),
        label: req.label,
        confidence: req.confidence,
        snapshot_uri: req.snapshot_uri,
        request_id: optional_id("request_id", req.request_id)?,
        object_id: optional_id("object_id", req.object_id)?,
        location: req
            .location
            .as_ref()
            .map(|p| lonlat("location", Some(p)))
            .transpose()?,
    };
    alert.validate(now, future_tolerance_ms)?;
    Ok(alert)
}

/// A coverage query: step 1..=100 m (0: the default), a sane box.
pub fn coverage_query(req: &pb::CoverageRequest) -> Result<d::CoverageQuery, ServerError> {
    let step_m = if req.step_m == 0.0 {
        d::DEFAULT_COVERAGE_STEP_M
    } else {
        req.step_m
    };
    let query = d::CoverageQuery {
        bbox: bbox("bbox", req.bbox.as_ref())?,
        include_segments: req.include_segments,
        step_m,
    };
    query.validate()?;
    Ok(query)
}

pub fn new_incident(req: pb::CreateIncidentRequest) -> Result<d::NewIncident, ServerError> {
    let new = d::NewIncident {
        location: lonlat("location", req.location.as_ref())?,
        source: incident_source(req.source)?,
        kind: req.r#type,
        priority: (req.priority != 0).then_some(req.priority),
        description: req.description,
        request_id: optional_id("request_id", req.request_id)?,
    };
    new.validate()?;
    Ok(new)
}

pub fn dispatch_request(req: pb::DispatchRequest) -> Result<d::DispatchRequest, ServerError> {
    let request = d::DispatchRequest {
        incident_id: req.incident_id,
        unit_ids: req.unit_ids,
        note: req.note,
        request_id: optional_id("request_id", req.request_id)?,
        intercept: req
            .intercept
            .as_ref()
            .map(|p| lonlat("intercept", Some(p)))
            .transpose()?,
    };
    request.validate()?;
    Ok(request)
}

/// A sighting as reported (`field` names it in errors).
pub fn sighting(field: &str, s: Option<pb::SightingInput>) -> Result<d::NewSighting, ServerError> {
    let s = s.ok_or_else(|| ServerError::missing(field))?;
    let sighting = d::NewSighting {
        time: (s.time_unix_ms != 0).then_some(s.time_unix_ms),
        at: s
            .point
            .as_ref()
            .map(|p| lonlat(&format!("{field}.point"), Some(p)))
            .transpose()?,
        camera_id: (!s.camera_id.is_empty()).then_some(s.camera_id),
        note: s.note,
    };
    sighting.validate(field)?;
    Ok(sighting)
}

pub fn new_track(req: pb::StartTrackRequest) -> Result<d::NewTrack, ServerError> {
    let new = d::NewTrack {
        label: req.label,
        mode: if req.mode == 0 {
            d::UnitKind::Foot
        } else {
            unit_kind("mode", req.mode)?
        },
        incident_id: optional_id("incident_id", req.incident_id)?,
        priority: (req.priority != 0).then_some(req.priority),
        sighting: sighting("sighting", req.sighting)?,
        request_id: optional_id("request_id", req.request_id)?,
    };
    new.validate()?;
    Ok(new)
}

pub fn intercept_query(
    req: &pb::RecommendInterceptsRequest,
) -> Result<d::InterceptQuery, ServerError> {
    let kinds = req
        .kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| unit_kind(&format!("kinds[{i}]"), k))
        .collect::<Result<Vec<_>, _>>()?;
    let k = if req.k == 0 { 3 } else { req.k as usize };
    if k > d::recommend::MAX_K {
        return Err(ServerError::bad(
            "k",
            k,
            format!("must be at most {}", d::recommend::MAX_K),
        ));
    }
    Ok(d::InterceptQuery {
        k,
        kinds,
        priority: None,
        include_routes: req.include_routes,
    })
}

pub fn incident_update(req: pb::UpdateIncidentRequest) -> Result<d::IncidentUpdate, ServerError> {
    let update = d::IncidentUpdate {
        status: incident_status("status", req.status)?,
        id: req.id,
        note: req.note,
        request_id: optional_id("request_id", req.request_id)?,
    };
    update.validate()?;
    Ok(update)
}

pub fn recommend(req: pb::RecommendRequest) -> Result<(d::Target, d::UnitQuery), ServerError> {
    let target = match req.target {
        Some(pb::recommend_request::Target::IncidentId(id)) => d::Target::Incident(id),
        Some(pb::recommend_request::Target::Point(p)) => {
            d::Target::Point(d::LonLat::new(p.lon, p.lat))
        }
        None => return Err(ServerError::missing("target (incident_id or point)")),
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
        priority: (req.priority != 0).then_some(req.priority),
        include_routes: req.include_routes,
    };
    Ok((target, query))
}

pub fn unit_filter(req: &pb::ListUnitsRequest) -> Result<d::UnitFilter, ServerError> {
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

/// A zone from its GeoJSON and the request's overrides.
pub fn zone_spec(req: &pb::PutZoneRequest) -> Result<d::ZoneSpec, ServerError> {
    if req.geojson.is_empty() {
        return Err(ServerError::missing("geojson"));
    }
    let id = (!req.id.is_empty()).then_some(req.id.as_str());
    let name = (!req.name.is_empty()).then_some(req.name.as_str());
    Ok(d::ZoneSpec::from_geojson(&req.geojson, id, name)?)
}
