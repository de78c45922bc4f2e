//! Cameras over real gRPC: which cameras see a point (checked against an
//! independent sector test), aiming a PTZ camera turns it on every screen,
//! "aim every camera at the incident", following a unit as it moves, camera
//! health, and the cameras along a dispatched unit's route.

use std::path::PathBuf;
use std::time::Duration;

use patrol_proto::v1 as pb;
use patrol_tests::{TestNode, haversine_m, next_event, now_ms, ping, read_snapshot, test_config};
use pb::watch_event::Kind;

const LON: f64 = 24.9458;
const LAT: f64 = 60.1699;

fn fixed(id: &str, lon: f64, lat: f64, heading: f64) -> pb::Camera {
    pb::Camera {
        id: id.into(),
        name: format!("camera {id}"),
        lon,
        lat,
        mount_height_m: 6.0,
        heading_deg: heading,
        fov_deg: 60.0,
        range_m: 80.0,
        ..Default::default()
    }
}

fn ptz(id: &str, lon: f64, lat: f64) -> pb::Camera {
    pb::Camera {
        ptz: true,
        range_m: 150.0,
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
        ..fixed(id, lon, lat, 0.0)
    }
}

async fn register(node: &mut TestNode, camera: pb::Camera) -> pb::Camera {
    node.cameras
        .register_camera(pb::RegisterCameraRequest {
            camera: Some(camera),
        })
        .await
        .unwrap()
        .into_inner()
        .camera
        .unwrap()
}

fn point(lon: f64, lat: f64) -> pb::CameraTarget {
    pb::CameraTarget {
        target: Some(pb::camera_target::Target::Point(pb::LonLat { lon, lat })),
    }
}

/// Bearing from a to b, degrees clockwise from north (plain spherical
/// trigonometry, written here).
fn bearing(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (l1, l2) = (a.1.to_radians(), b.1.to_radians());
    let dl = (b.0 - a.0).to_radians();
    let y = dl.sin() * l2.cos();
    let x = l1.cos() * l2.sin() - l1.sin() * l2.cos() * dl.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

#[tokio::test]
async fn cameras_seeing_a_point_are_the_ones_whose_sector_holds_it() {
    let mut node = TestNode::start().await;
    // A ring of fixed cameras around the point, half of them facing it.
    for i in 0..12 {
        let angle = (i as f64 * 30.0).to_radians();
        let lon = LON + 0.0006 * angle.sin();
        let lat = LAT + 0.0003 * angle.cos();
        let towards = bearing((lon, lat), (LON, LAT));
        let heading = if i % 2 == 0 { towards } else { towards + 180.0 };
        register(&mut node, fixed(&format!("cam-{i}"), lon, lat, heading)).await;
    }
    let reply = node
        .cameras
        .cameras_seeing(pb::CamerasSeeingRequest {
            target: Some(point(LON, LAT)),
            limit: 50,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen: Vec<String> = reply.cameras.iter().map(|c| c.camera_id.clone()).collect();
    seen.sort();
    // Independently: within range and within half the FOV of the heading.
    let listed = node
        .cameras
        .list_cameras(pb::ListCamerasRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cameras;
    let mut want: Vec<String> = listed
        .iter()
        .filter(|c| {
            let d = haversine_m((c.lon, c.lat), (LON, LAT));
            let off = (bearing((c.lon, c.lat), (LON, LAT)) - c.heading_deg + 540.0) % 360.0 - 180.0;
            d <= c.range_m && off.abs() <= c.fov_deg / 2.0
        })
        .map(|c| c.id.clone())
        .collect();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(want.len(), 6, "the six facing it");
    for c in &reply.cameras {
        assert!(c.sees_now);
        assert!(c.off_axis_deg.abs() < 1.0, "{c:?}");
    }
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn aiming_a_ptz_camera_turns_it_on_every_screen() {
    let mut node = TestNode::start().await;
    let camera = register(&mut node, ptz("dome-1", LON, LAT)).await;
    assert!(camera.online);
    let mut room = node
        .room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    read_snapshot(&mut room).await;
    // A point about 100 m east.
    let target = (LON + 0.0018, LAT);
    let reply = node
        .cameras
        .aim_camera(pb::AimCameraRequest {
            camera_id: "dome-1".into(),
            target: Some(point(target.0, target.1)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let aim = reply.aim.unwrap();
    assert!(aim.applied && aim.within_pan && aim.within_tilt && aim.within_range);
    let want = bearing((LON, LAT), target);
    assert!(
        (aim.bearing_deg - want).abs() < 0.1,
        "{} vs {want}",
        aim.bearing_deg
    );
    // Depression from 6 m minus a person's 1.5 m over the ground distance.
    let ground = haversine_m((LON, LAT), target);
    let tilt = ((6.0 - 1.5) / ground).atan().to_degrees();
    assert!(
        (aim.tilt_deg - tilt).abs() < 0.1,
        "{} vs {tilt}",
        aim.tilt_deg
    );
    let onvif = aim.onvif.unwrap();
    assert!(onvif.tilt_deg < 0.0, "ONVIF tilt is positive upwards");
    assert!((-1.0..=1.0).contains(&onvif.generic_pan));
    assert!((reply.camera.unwrap().heading_deg - want).abs() < 0.1);
    let turned = loop {
        if let Kind::Camera(c) = next_event(&mut room).await.kind.unwrap() {
            break c;
        }
    };
    assert_eq!(turned.id, "dome-1");
    assert!((turned.heading_deg - want).abs() < 0.1);
    // A dry run computes without turning.
    let dry = node
        .cameras
        .aim_camera(pb::AimCameraRequest {
            camera_id: "dome-1".into(),
            target: Some(point(LON, LAT + 0.0009)),
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!dry.aim.unwrap().applied);
    assert!((dry.camera.unwrap().heading_deg - want).abs() < 0.1);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_camera_that_can_see_an_incident_is_aimed_at_it() {
    let mut node = TestNode::start().await;
    register(&mut node, ptz("dome-1", LON + 0.001, LAT)).await;
    register(&mut node, ptz("dome-2", LON - 0.001, LAT)).await;
    register(&mut node, ptz("dome-far", LON + 0.01, LAT)).await;
    register(&mut node, fixed("fixed-1", LON, LAT + 0.0004, 180.0)).await;
    let incident = node.create_incident(LON, LAT).await;
    let reply = node
        .cameras
        .aim_cameras(pb::AimCamerasRequest {
            target: Some(pb::CameraTarget {
                target: Some(pb::camera_target::Target::IncidentId(incident.id)),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids: Vec<(&str, bool)> = reply
        .aims
        .iter()
        .map(|a| (a.camera_id.as_str(), a.applied))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [("dome-1", true), ("dome-2", true), ("fixed-1", false)]
    );
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_followed_unit_keeps_its_cameras_on_it() {
    let mut node = TestNode::start().await;
    register(&mut node, ptz("dome-1", LON, LAT)).await;
    node.register("foot-1", pb::UnitKind::Foot).await;
    let t0 = now_ms() - 60_000;
    node.report(vec![vec![ping("foot-1", t0, LON + 0.0005, LAT)]])
        .await
        .unwrap();
    let follow = node
        .cameras
        .follow_unit(pb::FollowUnitRequest {
            unit_id: "foot-1".into(),
            camera_ids: vec!["dome-1".into()],
            stop: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(follow.following);
    // The unit walks north of the camera; the camera turns to it.
    node.report(vec![vec![ping("foot-1", t0 + 30_000, LON, LAT + 0.0005)]])
        .await
        .unwrap();
    let mut turned = false;
    for _ in 0..100 {
        let cams = node_cameras(&node).await;
        let h = cams[0].heading_deg;
        if !(5.0..=355.0).contains(&h) {
            turned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(turned, "the camera points north at the unit");
    node.cameras
        .follow_unit(pb::FollowUnitRequest {
            unit_id: "foot-1".into(),
            stop: true,
            ..Default::default()
        })
        .await
        .unwrap();
    node.server.shutdown().await.unwrap();
}

async fn node_cameras(node: &TestNode) -> Vec<pb::Camera> {
    let mut client = node.cameras.clone();
    client
        .list_cameras(pb::ListCamerasRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cameras
}

#[tokio::test]
async fn a_camera_whose_system_stops_reporting_is_shown_offline_and_left_out() {
    let mut config = test_config();
    config.cameras.offline_after_ms = 500;
    config.units.offline_sweep_ms = 50;
    let mut node = TestNode::start_with(config).await;
    register(&mut node, fixed("cam-1", LON, LAT - 0.0003, 0.0)).await;
    register(&mut node, fixed("cam-2", LON, LAT + 0.0003, 180.0)).await;
    let ask = pb::CamerasSeeingRequest {
        target: Some(point(LON, LAT)),
        limit: 10,
    };
    let reply = node
        .cameras
        .report_camera_health(pb::ReportCameraHealthRequest {
            camera_ids: vec!["cam-1".into(), "cam-2".into()],
            time_unix_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.updated, 2);
    let seeing = node
        .cameras
        .cameras_seeing(ask.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seeing.cameras.len(), 2);
    // cam-2 keeps reporting, cam-1 stops.
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        node.cameras
            .report_camera_health(pb::ReportCameraHealthRequest {
                camera_ids: vec!["cam-2".into()],
                time_unix_ms: 0,
            })
            .await
            .unwrap();
        let seeing = node
            .cameras
            .cameras_seeing(ask.clone())
            .await
            .unwrap()
            .into_inner();
        if seeing.cameras.len() == 1 {
            assert_eq!(seeing.cameras[0].camera_id, "cam-2");
            gone = true;
            break;
        }
    }
    assert!(gone, "cam-1 went offline");
    let listed = node_cameras(&node).await;
    let online: Vec<(String, bool)> = listed.iter().map(|c| (c.id.clone(), c.online)).collect();
    assert_eq!(
        online,
        [("cam-1".to_string(), false), ("cam-2".to_string(), true)]
    );
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_cameras_along_a_dispatched_units_route_are_listed_in_order() {
    let mut config = test_config();
    config.map = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/gridtown.osm.pbf");
    let mut node = TestNode::start_with(config).await;
    // Gridtown's streets run every 100 m from (10.75, 59.91).
    let dlon = 100.0 / (111_195.0 * 59.91_f64.to_radians().cos());
    let dlat = 100.0 / 111_195.0;
    node.register("car-1", pb::UnitKind::Car).await;
    node.report(vec![vec![ping("car-1", now_ms() - 1_000, 10.75, 59.91)]])
        .await
        .unwrap();
    // Cameras along Avenue 0 (the southern street) and one far away.
    register(
        &mut node,
        fixed("cam-a", 10.75 + 1.5 * dlon, 59.91 + 0.0001, 90.0),
    )
    .await;
    register(
        &mut node,
        fixed("cam-b", 10.75 + 3.5 * dlon, 59.91 + 0.0001, 90.0),
    )
    .await;
    register(
        &mut node,
        fixed("cam-far", 10.75 + 8.0 * dlon, 59.91 + 8.0 * dlat, 90.0),
    )
    .await;
    let incident = node.create_incident(10.75 + 4.0 * dlon, 59.91).await;
    node.incidents
        .dispatch(pb::DispatchRequest {
            incident_id: incident.id,
            unit_ids: vec!["car-1".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let along = node
        .cameras
        .cameras_along(pb::CamerasAlongRequest {
            path: Some(pb::cameras_along_request::Path::UnitId("car-1".into())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = along
        .cameras
        .iter()
        .map(|c| c.sight.as_ref().unwrap().camera_id.as_str())
        .collect();
    assert_eq!(ids, ["cam-a", "cam-b"]);
    assert!(along.cameras[0].along_m < along.cameras[1].along_m);
    node.server.shutdown().await.unwrap();
}
