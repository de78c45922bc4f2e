//! Tracks over real gRPC on the Helsinki network: a suspect seen twice gets
//! a prediction (speed, heading, the way ahead) and a handoff list of the
//! cameras that can see where it goes next, in arrival order with windows;
//! every screen gets the track on the Watch stream; intercepts name units
//! that are at a point of the way ahead before the suspect can be, and
//! Dispatch sends a unit there; bad input gets clear errors.

use std::collections::HashMap;
use std::path::PathBuf;

use patrol_proto::v1 as pb;
use patrol_tests::{TestNode, haversine_m, next_event, now_ms, ping, test_config};
use pb::watch_event::Kind;
use tonic::Code;

/// Central Helsinki (Kamppi-Rautatientori).
const LON: f64 = 24.9458;
const LAT: f64 = 60.1699;

fn helsinki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/helsinki.osm.pbf")
}

/// PTZ cameras (full pan, 120 m) on a 150 m grid around the centre: every
/// street of the area is within reach of one after turning.
fn camera_grid() -> Vec<pb::Camera> {
    let dlon = 150.0 / (111_195.0 * LAT.to_radians().cos());
    let dlat = 150.0 / 111_195.0;
    let mut cameras = Vec::new();
    for i in -3..=3 {
        for j in -3..=3 {
            cameras.push(pb::Camera {
                id: format!("cam-{}-{}", i + 3, j + 3),
                name: format!("grid camera {i},{j}"),
                lon: LON + f64::from(i) * dlon,
                lat: LAT + f64::from(j) * dlat,
                mount_height_m: 8.0,
                heading_deg: 0.0,
                fov_deg: 60.0,
                range_m: 120.0,
                ptz: true,
                ptz_head: Some(pb::PtzHead {
                    zero_pan_azimuth_deg: 0.0,
                    pan_min_deg: -180.0,
                    pan_max_deg: 180.0,
                    tilt_min_deg: 0.0,
                    tilt_max_deg: 90.0,
                    pose: Some(pb::PtzPose {
                        pan_deg: 0.0,
                        tilt_deg: 10.0,
                        zoom: 0.0,
                    }),
                }),
                ..Default::default()
            });
        }
    }
    cameras
}

fn sighting(time: i64, lon: f64, lat: f64) -> Option<pb::SightingInput> {
    Some(pb::SightingInput {
        time_unix_ms: time,
        point: Some(pb::LonLat { lon, lat }),
        ..Default::default()
    })
}

fn ll(p: &pb::LonLat) -> (f64, f64) {
    (p.lon, p.lat)
}

/// The next Track event for `id` on the stream (other events skipped).
async fn next_track(room: &mut tonic::Streaming<pb::WatchEvent>, id: &str) -> pb::Track {
    loop {
        if let Some(Kind::Track(t)) = next_event(room).await.kind
            && t.id == id
        {
            return t;
        }
    }
}

#[tokio::test]
async fn a_followed_suspect_gets_handoffs_intercepts_and_a_unit_sent_ahead() {
    let mut config = test_config();
    config.map = helsinki();
    let tolerance = config.tracks.speed_tolerance;
    let margin_s = config.tracks.intercept_margin_s;
    let mut node = TestNode::start_with(config).await;
    let cameras: HashMap<String, pb::Camera> = camera_grid()
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    for camera in cameras.values() {
        node.cameras
            .register_camera(pb::RegisterCameraRequest {
                camera: Some(camera.clone()),
            })
            .await
            .unwrap();
    }
    let (mut room, _) = node.watch_all().await;

    // Seen first 150 m south-west of the centre, a minute ago; then at the
    // centre, now.
    let t1 = now_ms() - 60_000;
    let first = (LON - 0.0018, LAT - 0.0009);
    let track = node
        .tracks
        .start_track(pb::StartTrackRequest {
            label: "man in a red jacket".into(),
            mode: pb::UnitKind::Foot as i32,
            sighting: sighting(t1, first.0, first.1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .track
        .unwrap();
    assert!(!track.id.is_empty());
    assert!(
        !track.incident_id.is_empty(),
        "an incident is opened for it"
    );
    assert_eq!(track.sightings.len(), 1);
    let seen = next_track(&mut room, &track.id).await;
    assert_eq!(seen.sightings.len(), 1);

    let t2 = now_ms();
    let track = node
        .tracks
        .add_sighting(pb::AddSightingRequest {
            track_id: track.id.clone(),
            sighting: sighting(t2, LON, LAT),
        })
        .await
        .unwrap()
        .into_inner()
        .track
        .unwrap();
    assert_eq!(track.sightings.len(), 2);
    let p = track.prediction.clone().expect("a prediction");
    assert!(p.speed_observed, "{p:?}");
    // Over the network it walked at least the straight line in 60 s.
    let straight = haversine_m(first, (LON, LAT));
    let from_first = haversine_m(first, ll(p.path.first().unwrap()));
    assert!(
        p.speed_mps * 60.0 + from_first + 30.0 >= straight,
        "speed {} m/s for {straight} m in 60 s",
        p.speed_mps
    );
    assert!(p.heading_deg.is_some());
    assert!(p.ahead.len() >= 2 && p.ahead_m > 0.0, "{p:?}");
    let from = ll(p.from.as_ref().unwrap());
    assert!(
        haversine_m(from, (LON, LAT)) < 60.0,
        "snapped near the sighting"
    );

    // Handoffs: cameras of the grid, in arrival order, each able to see the
    // point it names, never before the last sighting, windows around the
    // expected time, the network distance at least the straight line.
    assert!(!p.handoffs.is_empty(), "{p:?}");
    let mut last = i64::MIN;
    for h in &p.handoffs {
        let camera = cameras.get(&h.camera_id).expect("a registered camera");
        let at = ll(h.at.as_ref().unwrap());
        assert!(
            haversine_m((camera.lon, camera.lat), at) <= camera.range_m + 6.0,
            "{h:?} is out of {}'s reach",
            camera.id
        );
        assert!(h.distance_m + 1.0 >= haversine_m(from, at), "{h:?}");
        assert!(
            h.expected_unix_ms >= t2 && h.expected_unix_ms >= last,
            "{h:?}"
        );
        assert!(h.window_start_unix_ms <= h.expected_unix_ms);
        assert!(h.expected_unix_ms <= h.window_end_unix_ms);
        let expected = t2 as f64 + h.distance_m / p.speed_mps * 1000.0;
        assert!(
            (h.expected_unix_ms as f64 - expected).abs() < 1_000.0,
            "{h:?}: expected at {expected}"
        );
        last = h.expected_unix_ms;
    }
    let seen = next_track(&mut room, &track.id).await;
    assert_eq!(seen.sightings.len(), 2);
    assert_eq!(seen.prediction.unwrap().handoffs.len(), p.handoffs.len());

    // Units placed along the way ahead can get there first.
    let far = ll(p.ahead.last().unwrap());
    let mid = ll(&p.ahead[p.ahead.len() / 2]);
    for (id, kind, at) in [
        ("car-1", pb::UnitKind::Car, far),
        ("foot-1", pb::UnitKind::Foot, mid),
    ] {
        node.register(id, kind).await;
        let reply = node
            .report(vec![vec![ping(id, now_ms() - 500, at.0, at.1)]])
            .await
            .unwrap();
        assert_eq!(reply.accepted, 1);
    }
    let found = node
        .tracks
        .recommend_intercepts(pb::RecommendInterceptsRequest {
            track_id: track.id.clone(),
            k: 2,
            include_routes: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!found.intercepts.is_empty(), "{found:?}");
    for i in &found.intercepts {
        let unit = i.unit.as_ref().unwrap();
        assert!(i.unit_arrival_unix_ms <= i.target_earliest_unix_ms, "{i:?}");
        assert!(i.lead_s + 0.5 >= margin_s, "{i:?}");
        // The target cannot be there sooner than its fast end allows.
        let fastest = p.speed_mps * (1.0 + tolerance);
        let earliest = p.from_unix_ms as f64 + i.along_m / fastest * 1000.0;
        assert!(
            i.target_earliest_unix_ms as f64 + 1_000.0 >= earliest,
            "{i:?}: the target could not be there before {earliest}"
        );
        let fix = unit.fix.as_ref().unwrap();
        assert!(
            i.eta_s * 40.0 + 5.0 >= haversine_m((fix.lon, fix.lat), ll(i.at.as_ref().unwrap())),
            "{i:?}: faster than 40 m/s"
        );
        assert!(!i.reason.is_empty());
    }

    // Send the first one there.
    let best = &found.intercepts[0];
    let reply = node
        .incidents
        .dispatch(pb::DispatchRequest {
            incident_id: track.incident_id.clone(),
            unit_ids: vec![best.unit.as_ref().unwrap().id.clone()],
            intercept: best.at,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let order = &reply.orders[0];
    assert!(order.intercept, "{order:?}");
    let location = order.location.as_ref().unwrap();
    assert!(haversine_m(ll(location), ll(best.at.as_ref().unwrap())) < 1.0);

    // Closing: listed as closed, no more sightings.
    let closed = node
        .tracks
        .close_track(pb::CloseTrackRequest {
            track_id: track.id.clone(),
            reason: "caught".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .track
        .unwrap();
    assert!(closed.closed_unix_ms > 0);
    assert_eq!(closed.close_reason, "caught");
    let open = node
        .tracks
        .list_tracks(pb::ListTracksRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(open.tracks.iter().all(|t| t.id != track.id));
    let all = node
        .tracks
        .list_tracks(pb::ListTracksRequest {
            include_closed: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(all.tracks.iter().any(|t| t.id == track.id));
    let err = node
        .tracks
        .add_sighting(pb::AddSightingRequest {
            track_id: track.id.clone(),
            sighting: sighting(now_ms(), LON, LAT),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_track_requests_get_clear_errors_and_nothing_changes() {
    let mut config = test_config();
    config.map = helsinki();
    let mut node = TestNode::start_with(config).await;
    let t = now_ms();
    let track = node
        .tracks
        .start_track(pb::StartTrackRequest {
            label: "a cyclist".into(),
            mode: pb::UnitKind::EBike as i32,
            sighting: sighting(t, LON, LAT),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .track
        .unwrap();

    let cases: Vec<(Code, &str, tonic::Status)> = vec![
        (
            Code::InvalidArgument,
            "label",
            node.tracks
                .start_track(pb::StartTrackRequest {
                    sighting: sighting(t, LON, LAT),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        ),
        (
            Code::InvalidArgument,
            "sighting",
            node.tracks
                .start_track(pb::StartTrackRequest {
                    label: "no sighting".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        ),
        (
            Code::InvalidArgument,
            "sighting.point",
            node.tracks
                .start_track(pb::StartTrackRequest {
                    label: "off the globe".into(),
                    sighting: sighting(t, 200.0, LAT),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        ),
        (
            Code::InvalidArgument,
            "sighting.time_unix_ms",
            node.tracks
                .add_sighting(pb::AddSightingRequest {
                    track_id: track.id.clone(),
                    sighting: sighting(t - 10_000, LON, LAT),
                })
                .await
                .unwrap_err(),
        ),
        (
            Code::NotFound,
            "no-such-track",
            node.tracks
                .add_sighting(pb::AddSightingRequest {
                    track_id: "no-such-track".into(),
                    sighting: sighting(t, LON, LAT),
                })
                .await
                .unwrap_err(),
        ),
        (
            Code::NotFound,
            "no-such-camera",
            node.tracks
                .add_sighting(pb::AddSightingRequest {
                    track_id: track.id.clone(),
                    sighting: Some(pb::SightingInput {
                        camera_id: "no-such-camera".into(),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap_err(),
        ),
        (
            Code::InvalidArgument,
            "k",
            node.tracks
                .recommend_intercepts(pb::RecommendInterceptsRequest {
                    track_id: track.id.clone(),
                    k: 101,
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        ),
        (
            Code::NotFound,
            "nope",
            node.tracks
                .get_track(pb::GetTrackRequest {
                    track_id: "nope".into(),
                })
                .await
                .unwrap_err(),
        ),
    ];
    for (code, names, err) in &cases {
        assert_eq!(err.code(), *code, "{err:?}");
        assert!(err.message().contains(names), "{names}: {err:?}");
    }
    // The track is as it was and the server keeps serving.
    let now = node
        .tracks
        .get_track(pb::GetTrackRequest {
            track_id: track.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .track
        .unwrap();
    assert_eq!(now.sightings.len(), 1);
    assert_eq!(now.mode, pb::UnitKind::EBike as i32);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_no_point_on_the_way_ahead_units_are_sent_where_a_handoff_camera_will_see_it() {
    let mut config = test_config();
    config.map = helsinki();
    // Steps longer than any way ahead: only the handoff points are tried.
    config.tracks.intercept_step_m = 100_000.0;
    let tolerance = config.tracks.speed_tolerance;
    let margin_s = config.tracks.intercept_margin_s;
    let mut node = TestNode::start_with(config).await;
    for camera in camera_grid() {
        node.cameras
            .register_camera(pb::RegisterCameraRequest {
                camera: Some(camera),
            })
            .await
            .unwrap();
    }
    let t1 = now_ms() - 60_000;
    let track = node
        .tracks
        .start_track(pb::StartTrackRequest {
            label: "a runner".into(),
            sighting: sighting(t1, LON - 0.0018, LAT - 0.0009),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .track
        .unwrap();
    let p = node
        .tracks
        .add_sighting(pb::AddSightingRequest {
            track_id: track.id.clone(),
            sighting: sighting(now_ms(), LON, LAT),
        })
        .await
        .unwrap()
        .into_inner()
        .track
        .unwrap()
        .prediction
        .unwrap();
    // A foot officer standing where the farthest handoff camera will see it.
    let far = p
        .handoffs
        .iter()
        .max_by(|a, b| a.distance_m.total_cmp(&b.distance_m))
        .expect("handoffs");
    let spot = ll(far.at.as_ref().unwrap());
    node.register("foot-9", pb::UnitKind::Foot).await;
    node.report(vec![vec![ping("foot-9", now_ms() - 500, spot.0, spot.1)]])
        .await
        .unwrap();
    let found = node
        .tracks
        .recommend_intercepts(pb::RecommendInterceptsRequest {
            track_id: track.id.clone(),
            k: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let i = found
        .intercepts
        .first()
        .unwrap_or_else(|| panic!("{found:?}"));
    let at = ll(i.at.as_ref().unwrap());
    let handoff = p
        .handoffs
        .iter()
        .find(|h| haversine_m(ll(h.at.as_ref().unwrap()), at) < 0.5)
        .unwrap_or_else(|| panic!("{i:?} is not at a handoff point"));
    assert!(i.reason.contains(&handoff.camera_id), "{i:?}");
    assert!((i.along_m - handoff.distance_m).abs() < 0.5, "{i:?}");
    let earliest = p.from_unix_ms as f64 + i.along_m / (p.speed_mps * (1.0 + tolerance)) * 1000.0;
    assert!(
        (i.target_earliest_unix_ms as f64 - earliest).abs() < 1_000.0,
        "{i:?}"
    );
    assert!(
        i.unit_arrival_unix_ms as f64 + margin_s * 1000.0 <= i.target_earliest_unix_ms as f64 + 1.0,
        "{i:?}"
    );
    node.server.shutdown().await.unwrap();
}
