//! Camera coverage, "unit in view" and alert placement over real gRPC on
//! Gridtown: the blind spots parse as GeoJSON and add up, the covered
//! shares rise when a camera is added; a unit walking along a street into a
//! camera's sector gets one "entered" event for it and none for a camera
//! looking away; an alert's incident lies in the centre of the camera's
//! view at the configured distance, or where the alert says.

use std::path::PathBuf;

use patrol_proto::v1 as pb;
use patrol_tests::{TestNode, haversine_m, next_event, now_ms, ping, test_config};
use pb::watch_event::Kind;

/// Gridtown's south-west corner; its streets run every 100 m from it.
const LON: f64 = 10.75;
const LAT: f64 = 59.91;

fn dlon(m: f64) -> f64 {
    m / (111_195.0 * LAT.to_radians().cos())
}

fn dlat(m: f64) -> f64 {
    m / 111_195.0
}

fn gridtown() -> patrol_services::Config {
    let mut config = test_config();
    config.map = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gridtown.osm.pbf");
    config
}

/// A fixed camera `x` metres east and `y` north of the corner.
fn camera(id: &str, x: f64, y: f64, heading: f64) -> pb::Camera {
    pb::Camera {
        id: id.into(),
        name: format!("camera {id}"),
        lon: LON + dlon(x),
        lat: LAT + dlat(y),
        mount_height_m: 6.0,
        heading_deg: heading,
        fov_deg: 60.0,
        range_m: 80.0,
        ..Default::default()
    }
}

async fn register(node: &mut TestNode, c: pb::Camera) {
    node.cameras
        .register_camera(pb::RegisterCameraRequest { camera: Some(c) })
        .await
        .unwrap();
}

async fn coverage(node: &mut TestNode, include_segments: bool) -> pb::CoverageResponse {
    node.cameras
        .coverage(pb::CoverageRequest {
            bbox: None,
            include_segments,
            step_m: 0.0,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn coverage_reports_blind_spots_as_geojson_and_rises_with_a_camera() {
    let mut node = TestNode::start_with(gridtown()).await;
    let before = coverage(&mut node, false).await;
    assert!(before.blind_spots_geojson.is_empty());
    assert_eq!(before.step_m, 5.0);
    // along Avenue 0 (the southern street), both ways
    register(&mut node, camera("east", 300.0, -10.0, 90.0)).await;
    register(&mut node, camera("west", 300.0, -10.0, 270.0)).await;
    let after = coverage(&mut node, true).await;
    for (name, b, a) in [
        ("car", before.car.unwrap(), after.car.unwrap()),
        ("foot", before.foot.unwrap(), after.foot.unwrap()),
    ] {
        assert!(
            a.total_m > 1_000.0 && a.total_m == b.total_m,
            "{name}: {a:?}"
        );
        for s in [
            a.share_now,
            a.share_after_turning,
            b.share_now,
            b.share_after_turning,
        ] {
            assert!((0.0..=1.0).contains(&s), "{name}: {s}");
        }
        assert!(a.share_now > b.share_now, "{name}: {b:?} -> {a:?}");
        assert!(a.seen_now_m - b.seen_now_m > 50.0, "{name}: {b:?} -> {a:?}");
        assert!(a.share_after_turning >= a.share_now);
        assert!((a.seen_now_m / a.total_m - a.share_now).abs() < 1e-9);
    }
    assert!(after.blind_m < before.blind_m);
    let geojson: serde_json::Value = serde_json::from_str(&after.blind_spots_geojson).unwrap();
    assert_eq!(geojson["type"], "FeatureCollection");
    let features = geojson["features"].as_array().unwrap();
    assert_eq!(features.len() as u64, after.blind_spot_count);
    let mut metres = 0.0;
    for f in features {
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["geometry"]["type"], "LineString");
        let coords = f["geometry"]["coordinates"].as_array().unwrap();
        assert!(coords.len() >= 2);
        for c in coords {
            let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
            assert!((lon - LON).abs() < 0.05 && (lat - LAT).abs() < 0.05);
        }
        let p = &f["properties"];
        assert!(p["metres"].as_f64().unwrap() > 0.0);
        assert!(p["car"].as_bool().unwrap() || p["foot"].as_bool().unwrap());
        assert!(p["name"].is_null() || p["name"].is_string());
        metres += p["metres"].as_f64().unwrap();
    }
    assert!(
        (metres - after.blind_m).abs() < 1e-3,
        "{metres} vs {}",
        after.blind_m
    );
    // a box around the cameras only: mostly seen
    let boxed = node
        .cameras
        .coverage(pb::CoverageRequest {
            bbox: Some(pb::BoundingBox {
                west: LON + dlon(230.0),
                south: LAT - dlat(5.0),
                east: LON + dlon(370.0),
                north: LAT + dlat(5.0),
            }),
            include_segments: false,
            step_m: 2.0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(boxed.car.unwrap().share_now > 0.6, "{boxed:?}");
    // bad input names the field
    for (step_m, bbox, field) in [
        (0.5, None, "step_m"),
        (101.0, None, "step_m"),
        (
            5.0,
            Some(pb::BoundingBox {
                west: 11.0,
                south: 59.0,
                east: 10.0,
                north: 60.0,
            }),
            "bbox",
        ),
    ] {
        let err = node
            .cameras
            .coverage(pb::CoverageRequest {
                bbox,
                include_segments: false,
                step_m,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(field), "{err:?}");
    }
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn coverage_without_a_map_is_a_failed_precondition() {
    let mut node = TestNode::start().await;
    let err = node
        .cameras
        .coverage(pb::CoverageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("no map loaded"), "{err:?}");
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_unit_walking_into_a_sector_is_in_view_once() {
    let mut node = TestNode::start_with(gridtown()).await;
    register(&mut node, camera("east", 300.0, -15.0, 90.0)).await;
    register(&mut node, camera("away", 300.0, -15.0, 180.0)).await;
    node.register("foot-1", pb::UnitKind::Foot).await;
    let (mut room, _) = node.watch_all().await;
    // along Avenue 0 from x = 0 to 600 m, 5 m a second: in "east"'s sector
    // from x = 326 (30 degrees off its axis) to 378 (its range)
    let start = now_ms() - 200_000;
    let pings: Vec<pb::Ping> = (0..=120)
        .map(|i| ping("foot-1", start + i * 1_000, LON + dlon(i as f64 * 5.0), LAT))
        .collect();
    node.report(vec![pings]).await.unwrap();
    let marker = node.create_incident(LON, LAT).await;
    let mut seen = Vec::new();
    loop {
        match next_event(&mut room).await.kind {
            Some(Kind::UnitInView(v)) => seen.push(v),
            Some(Kind::Incident(i)) if i.id == marker.id => break,
            _ => {}
        }
    }
    let entered: Vec<_> = seen.iter().filter(|v| v.entered).collect();
    assert_eq!(entered.len(), 1, "{seen:?}");
    assert_eq!(entered[0].camera_id, "east");
    assert_eq!(entered[0].unit_id, "foot-1");
    let x = (entered[0].time_unix_ms - start) as f64 / 1_000.0 * 5.0;
    assert!((x - 326.0).abs() <= 6.0, "entered at x = {x}");
    let at = entered[0].at.unwrap();
    assert!(haversine_m((at.lon, at.lat), (LON + dlon(x), LAT)) < 1.0);
    assert!(seen.iter().all(|v| v.camera_id == "east"), "{seen:?}");
    let left: Vec<_> = seen.iter().filter(|v| !v.entered).collect();
    assert_eq!(left.len(), 1, "{seen:?}");
    node.server.shutdown().await.unwrap();
}

async fn alert_incident(
    node: &mut TestNode,
    label: &str,
    location: Option<pb::LonLat>,
) -> pb::LonLat {
    let reply = node
        .cameras
        .post_alert(pb::PostAlertRequest {
            camera_id: "east".into(),
            label: label.into(),
            confidence: 0.9,
            location,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.incident_created, "{reply:?}");
    node.incidents
        .get_incident(pb::GetIncidentRequest {
            id: reply.incident_id,
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap()
        .location
        .unwrap()
}

#[tokio::test]
async fn an_alerts_incident_is_in_the_cameras_view() {
    let mut config = gridtown();
    config.alerts.view_distance_m = 25.0;
    let mut node = TestNode::start_with(config).await;
    let cam = camera("east", 300.0, -15.0, 90.0);
    let (cam_lon, cam_lat) = (cam.lon, cam.lat);
    register(&mut node, cam).await;
    let inc = alert_incident(&mut node, "fight", None).await;
    let d = haversine_m((cam_lon, cam_lat), (inc.lon, inc.lat));
    assert!((d - 25.0).abs() < 0.3, "{d} m from the camera");
    // east of it: the same latitude, a larger longitude
    assert!(inc.lon > cam_lon && haversine_m((cam_lon, cam_lat), (cam_lon, inc.lat)) < 0.3);
    // the alert's own location wins (another label: a new incident)
    let given = pb::LonLat {
        lon: LON + dlon(310.0),
        lat: LAT + dlat(2.0),
    };
    let inc = alert_incident(&mut node, "weapon", Some(given)).await;
    assert!(haversine_m((inc.lon, inc.lat), (given.lon, given.lat)) < 0.01);
    node.server.shutdown().await.unwrap();
}
