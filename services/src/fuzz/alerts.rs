//! Alert payloads: `PostAlertRequest` (built, or mutated on the wire) →
//! `from_wire::new_alert` → a real core's `post_alert`; and the cameras
//! they name (`from_wire::camera` → `register_camera`).

use patrol_dispatcher::{Actor, Dispatcher};
use patrol_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;

use super::{
    NOW, TOLERANCE_MS, byte_mutation, cases, hostile_f32, hostile_f64, hostile_string, hostile_time,
};
use crate::Config;
use crate::convert::from_wire;
use crate::error::ServerError;

/// The field a refusal names, if it is about a field.
pub(super) fn field_of(e: &ServerError) -> Option<&str> {
    match e {
        ServerError::BadRequest { field, .. } | ServerError::Missing { field } => {
            Some(field.as_str())
        }
        ServerError::Core(patrol_dispatcher::Error::Invalid { field, .. }) => Some(field.as_str()),
        _ => None,
    }
}

pub(super) fn core_with_camera() -> Dispatcher {
    let mut core = Dispatcher::new(Config::default().dispatcher());
    let camera = from_wire::camera(Some(pb::Camera {
        id: "cam-1".into(),
        lon: 24.94,
        lat: 60.17,
        mount_height_m: 5.0,
        heading_deg: 90.0,
        fov_deg: 90.0,
        range_m: 100.0,
        ..Default::default()
    }))
    .unwrap();
    core.register_camera(camera).unwrap();
    core
}

fn lonlat() -> impl Strategy<Value = pb::LonLat> {
    (hostile_f64(-180.0..=180.0), hostile_f64(-90.0..=90.0))
        .prop_map(|(lon, lat)| pb::LonLat { lon, lat })
}

fn alert() -> impl Strategy<Value = pb::PostAlertRequest> {
    (
        prop_oneof![3 => Just("cam-1".to_string()), 1 => hostile_string()],
        prop_oneof![Just(0), hostile_time()],
        prop_oneof![2 => Just("intrusion".to_string()), 1 => hostile_string()],
        hostile_f32(0.0..1.0),
        prop_oneof![Just(String::new()), hostile_string()],
        prop_oneof![Just(String::new()), "r-[0-3]", hostile_string()],
        prop_oneof![Just(String::new()), "o-[0-3]", hostile_string()],
        proptest::option::of(lonlat()),
    )
        .prop_map(
            |(
                camera_id,
                time,
                label,
                confidence,
                snapshot_uri,
                request_id,
                object_id,
                location,
            )| {
                pb::PostAlertRequest {
                    camera_id,
                    time_unix_ms: time,
                    label,
                    confidence,
                    snapshot_uri,
                    request_id,
                    object_id,
                    location,
                }
            },
        )
}

/// Edge, then core: no panic; what the edge accepts is sane, what it
/// refuses names one of the request's fields.
fn post(core: &mut Dispatcher, req: pb::PostAlertRequest) {
    match from_wire::new_alert(req, NOW, TOLERANCE_MS) {
        Ok(alert) => {
            assert!(alert.confidence.is_finite() && (0.0..=1.0).contains(&alert.confidence));
            assert!(!alert.camera_id.is_empty() && !alert.label.is_empty());
            if let Some(at) = alert.location {
                assert!(at.is_valid());
            }
            let _ = core.post_alert(alert, &Actor::new("cam", "camera"), NOW);
        }
        Err(e) => {
            let field = field_of(&e).unwrap_or_else(|| panic!("refusal names no field: {e}"));
            let known = [
                "camera_id",
                "time_unix_ms",
                "label",
                "confidence",
                "snapshot_uri",
                "request_id",
                "object_id",
                "location",
            ];
            assert!(
                known.iter().any(|k| field.starts_with(k)),
                "unexpected field {field:?}: {e}"
            );
            // A refusal quotes a shortened value, not the whole request.
            assert!(
                e.to_string().len() < 2_000,
                "long refusal: {} bytes",
                e.to_string().len()
            );
        }
    }
}

fn camera() -> impl Strategy<Value = pb::Camera> {
    (
        prop_oneof![Just("cam-2".to_string()), hostile_string()],
        (hostile_f64(-180.0..=180.0), hostile_f64(-90.0..=90.0)),
        (
            hostile_f64(0.0..=50.0),
            hostile_f64(-360.0..=720.0),
            hostile_f64(0.0..=360.0),
            hostile_f64(0.0..=2_000.0),
        ),
        any::<bool>(),
        hostile_f64(0.0..=180.0),
        prop_oneof![Just(0), hostile_time()],
        proptest::option::of((
            hostile_f64(0.0..=360.0),
            (hostile_f64(-360.0..=360.0), hostile_f64(-360.0..=360.0)),
            (hostile_f64(-90.0..=90.0), hostile_f64(-90.0..=90.0)),
            (
                hostile_f64(-180.0..=180.0),
                hostile_f64(-90.0..=90.0),
                hostile_f64(0.0..=40.0),
            ),
        )),
    )
        .prop_map(
            |(id, (lon, lat), (h, heading, fov, range), ptz, vfov, seen, head)| pb::Camera {
                id,
                name: "c".into(),
                lon,
                lat,
                mount_height_m: h,
                heading_deg: heading,
                fov_deg: fov,
                range_m: range,
                ptz,
                vertical_fov_deg: vfov,
                ptz_head: head.map(
                    |(zero, (pan_min, pan_max), (tilt_min, tilt_max), (pan, tilt, zoom))| {
                        pb::PtzHead {
                            zero_pan_azimuth_deg: zero,
                            pan_min_deg: pan_min,
                            pan_max_deg: pan_max,
                            tilt_min_deg: tilt_min,
                            tilt_max_deg: tilt_max,
                            pose: Some(pb::PtzPose {
                                pan_deg: pan,
                                tilt_deg: tilt,
                                zoom,
                            }),
                        }
                    },
                ),
                last_seen_unix_ms: seen,
                online: true,
            },
        )
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn fuzz_alerts(alerts in prop::collection::vec(alert(), 1..6)) {
        let mut core = core_with_camera();
        for req in alerts {
            post(&mut core, req);
        }
    }

    #[test]
    fn fuzz_alert_bytes(req in alert(), mutation in byte_mutation()) {
        let wire = mutation.apply(req.encode_to_vec());
        if let Ok(req) = pb::PostAlertRequest::decode(wire.as_slice()) {
            post(&mut core_with_camera(), req);
        }
    }

    #[test]
    fn fuzz_cameras(cameras in prop::collection::vec(camera(), 1..4), alert in alert()) {
        let mut core = core_with_camera();
        for c in cameras {
            match from_wire::camera(Some(c)) {
                Ok(camera) => {
                    assert!(camera.at.is_valid());
                    let _ = core.register_camera(camera);
                }
                Err(e) => {
                    assert!(field_of(&e).is_some(), "refusal names no field: {e}");
                }
            }
        }
        // Alerts and camera questions still work over whatever was accepted.
        post(&mut core, alert);
    }
}

/// Found by `fuzz_alerts`: a refused label was quoted whole (a 3 KB label
/// made a 3 KB grpc-message).
#[test]
fn a_refused_long_label_is_quoted_short() {
    let e = from_wire::new_alert(
        pb::PostAlertRequest {
            camera_id: "cam-1".into(),
            label: "é".repeat(1500),
            confidence: 0.5,
            ..Default::default()
        },
        NOW,
        TOLERANCE_MS,
    )
    .unwrap_err();
    assert_eq!(field_of(&e), Some("label"));
    assert!(e.to_string().len() < 200, "{e}");
}
