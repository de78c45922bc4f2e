//! The audit log over real gRPC: callers naming themselves (`x-patrol-actor`)
//! create an incident, dispatch, change a status, aim cameras and start a
//! track; the log then answers "what did alice do, when" with exactly her
//! records, in order, and the incident's timeline shows the same. With Redis
//! the log is the region's: written on one node, read on another, kept across
//! restarts and trimmed by age.

use std::time::Duration;

use patrol_proto::v1 as pb;
use patrol_services::Config;
use patrol_services::audit::{AuditRecord, stream_key};
use patrol_tests::processes::RedisServer;
use patrol_tests::{TestNode, as_actor, now_ms, ping, test_config};

const LON: f64 = 24.94;
const LAT: f64 = 60.17;

fn config(node_id: &str, redis: Option<&RedisServer>) -> Config {
    let mut config = test_config();
    config.node_id = node_id.into();
    if let Some(redis) = redis {
        config.redis.urls = vec![redis.url()];
        config.redis.response_timeout_ms = 1_000;
    }
    config
}

/// What alice and bob did, in order: (who, action, target, outcome).
type Expected = Vec<(&'static str, &'static str, String, &'static str)>;

/// Bob registers a car and a camera and moves the car; alice opens an
/// incident, dispatches the car, aims the cameras at it and starts a track;
/// bob reports the car on scene; alice dispatches to an incident that does not
/// exist.
async fn work_an_incident(node: &mut TestNode) -> (String, Expected) {
    node.units
        .register_unit(as_actor(
            "bob",
            pb::RegisterUnitRequest {
                id: "car-1".into(),
                call_sign: "CS car-1".into(),
                kind: pb::UnitKind::Car as i32,
                capabilities: vec![],
            },
        ))
        .await
        .unwrap();
    node.cameras
        .register_camera(as_actor(
            "bob",
            pb::RegisterCameraRequest {
                camera: Some(pb::Camera {
                    id: "dome-1".into(),
                    name: "dome".into(),
                    lon: LON + 0.001,
                    lat: LAT,
                    mount_height_m: 6.0,
                    fov_deg: 60.0,
                    range_m: 150.0,
                    ptz: true,
                    ptz_head: Some(pb::PtzHead {
                        pan_min_deg: -180.0,
                        pan_max_deg: 180.0,
                        tilt_max_deg: 90.0,
                        pose: Some(pb::PtzPose {
                            pan_deg: 0.0,
                            tilt_deg: 10.0,
                            zoom: 0.0,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap();
    // Routine pings are not audited.
    node.report(vec![vec![ping("car-1", now_ms(), LON + 0.002, LAT)]])
        .await
        .unwrap();
    let incident = node
        .incidents
        .create_incident(as_actor(
            "alice",
            pb::CreateIncidentRequest {
                r#type: "theft".into(),
                priority: 2,
                location: Some(pb::LonLat { lon: LON, lat: LAT }),
                source: pb::IncidentSource::Call as i32,
                description: "bike stolen".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let dispatch = |incident_id: &str| pb::DispatchRequest {
        incident_id: incident_id.into(),
        unit_ids: vec!["car-1".into()],
        note: String::new(),
        request_id: String::new(),
        intercept: Default::default(),
    };
    node.incidents
        .dispatch(as_actor("alice", dispatch(&incident.id)))
        .await
        .unwrap();
    let aims = node
        .cameras
        .aim_cameras(as_actor(
            "alice",
            pb::AimCamerasRequest {
                target: Some(pb::CameraTarget {
                    target: Some(pb::camera_target::Target::IncidentId(incident.id.clone())),
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        aims.aims
            .iter()
            .any(|a| a.camera_id == "dome-1" && a.applied),
        "{aims:?}"
    );
    let track = node
        .tracks
        .start_track(as_actor(
            "alice",
            pb::StartTrackRequest {
                label: "man in a red jacket".into(),
                mode: pb::UnitKind::Foot as i32,
                incident_id: incident.id.clone(),
                sighting: Some(pb::SightingInput {
                    time_unix_ms: now_ms(),
                    point: Some(pb::LonLat { lon: LON, lat: LAT }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .track
        .unwrap();
    node.units
        .update_status(as_actor(
            "bob",
            pb::UpdateStatusRequest {
                unit_id: "car-1".into(),
                status: pb::UnitStatus::OnScene as i32,
            },
        ))
        .await
        .unwrap();
    let refused = node
        .incidents
        .dispatch(as_actor("alice", dispatch("inc-nope")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
    let id = incident.id.clone();
    let expected = vec![
        ("bob", "register_unit", "car-1".to_string(), "ok"),
        ("bob", "register_camera", "dome-1".to_string(), "ok"),
        ("alice", "create_incident", id.clone(), "ok"),
        ("alice", "dispatch", id.clone(), "ok"),
        ("alice", "aim_cameras", id.clone(), "ok"),
        ("alice", "start_track", track.id.clone(), "ok"),
        ("bob", "update_status", "car-1".to_string(), "ok"),
        ("alice", "dispatch", "inc-nope".to_string(), "not_found"),
    ];
    (id, expected)
}

/// Checks `records` are exactly `who`'s part of `expected`, in order, from
/// `node`, between `from` and `to`.
fn check(records: &[AuditRecord], who: &str, expected: &Expected, node: &str, from: i64, to: i64) {
    let got: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| (r.action.as_str(), r.target.as_str(), r.outcome.as_str()))
        .collect();
    let want: Vec<(&str, &str, &str)> = expected
        .iter()
        .filter(|e| e.0 == who)
        .map(|e| (e.1, e.2.as_str(), e.3))
        .collect();
    assert_eq!(got, want, "{records:#?}");
    for r in records {
        assert_eq!(r.actor.identity, who, "{r:?}");
        assert_eq!(r.actor.node, node, "{r:?}");
        assert!(r.actor.peer.starts_with("127.0.0.1:"), "{r:?}");
        assert!(
            (from..=to).contains(&r.time_ms),
            "{r:?} not in {from}..={to}"
        );
    }
    assert!(
        records.windows(2).all(|w| w[0].time_ms <= w[1].time_ms),
        "oldest first: {records:#?}"
    );
}

#[tokio::test]
async fn the_log_names_who_did_what_and_the_timeline_agrees() {
    let mut node = TestNode::start_with(config("node-a", None)).await;
    let from = now_ms();
    let (incident_id, expected) = work_an_incident(&mut node).await;
    let to = now_ms();
    let audit = node.server.hub().audit();
    audit.flush().await;

    let (alice, truncated) = audit.query(Some("alice"), from, to, 100).await.unwrap();
    check(&alice, "alice", &expected, "node-a", from, to);
    assert!(!truncated);
    let dispatch = alice.iter().find(|r| r.action == "dispatch").unwrap();
    assert_eq!(dispatch.detail, "units car-1");
    let refused = alice.last().unwrap();
    assert!(refused.detail.contains("refused"), "{refused:?}");

    let (bob, truncated) = audit.query(Some("bob"), from, to, 100).await.unwrap();
    check(&bob, "bob", &expected, "node-a", from, to);
    assert!(!truncated);
    assert_eq!(bob.last().unwrap().detail, "on_scene");
    // The newest `limit`, and a flag that there were more.
    let (newest, truncated) = audit.query(Some("bob"), from, to, 2).await.unwrap();
    assert_eq!(newest, bob[1..]);
    assert!(truncated);
    // Everyone: no pings, no ticks.
    let (all, _) = audit.query(None, from, to, 1_000).await.unwrap();
    assert_eq!(all.len(), expected.len(), "{all:#?}");
    // A range before anything happened is empty.
    let (none, _) = audit.query(None, 0, from - 1, 100).await.unwrap();
    assert!(none.is_empty(), "{none:?}");

    // The incident's timeline shows the same people.
    let timeline = node
        .incidents
        .get_incident(pb::GetIncidentRequest { id: incident_id })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap()
        .audit;
    let who = |action: &str| -> Vec<String> {
        timeline
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.actor.as_ref().unwrap().identity.clone())
            .collect()
    };
    assert_eq!(who("created"), ["alice"], "{timeline:#?}");
    assert_eq!(who("dispatched"), ["alice"], "{timeline:#?}");
    assert_eq!(who("cameras_aimed"), ["alice"], "{timeline:#?}");
    assert_eq!(who("track_started"), ["alice"], "{timeline:#?}");
    assert!(who("status").contains(&"bob".to_string()), "{timeline:#?}");
    let aimed = timeline
        .iter()
        .find(|e| e.action == "cameras_aimed")
        .unwrap();
    assert!(aimed.detail.contains("dome-1"), "{aimed:?}");
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn with_redis_the_log_is_the_regions_and_outlives_a_restart() {
    let redis = RedisServer::start();
    let mut a = TestNode::start_with(config("node-a", Some(&redis))).await;
    let from = now_ms();
    let (_, expected) = work_an_incident(&mut a).await;
    let to = now_ms();
    a.server.hub().audit().flush().await;
    assert!(a.server.hub().audit().is_durable());

    // Read on another node of the region.
    let b = TestNode::start_with(config("node-b", Some(&redis))).await;
    let (alice, truncated) = b
        .server
        .hub()
        .audit()
        .query(Some("alice"), from, to, 100)
        .await
        .unwrap();
    check(&alice, "alice", &expected, "node-a", from, to);
    assert!(!truncated);

    // Both nodes stop; a new one still has it.
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
    let a = TestNode::start_with(config("node-a", Some(&redis))).await;
    let (again, _) = a
        .server
        .hub()
        .audit()
        .query(Some("alice"), from, to, 100)
        .await
        .unwrap();
    assert_eq!(again, alice);
    let (bob, _) = a
        .server
        .hub()
        .audit()
        .query(Some("bob"), from, to, 100)
        .await
        .unwrap();
    check(&bob, "bob", &expected, "node-a", from, to);
    a.server.shutdown().await.unwrap();
}

/// Registers car-1 `n` times as alice; returns the times around it.
async fn register_many(node: &mut TestNode, n: usize) -> (i64, i64) {
    let from = now_ms();
    for _ in 0..n {
        node.units
            .register_unit(as_actor(
                "alice",
                pb::RegisterUnitRequest {
                    id: "car-1".into(),
                    call_sign: "CS car-1".into(),
                    kind: pb::UnitKind::Car as i32,
                    capabilities: vec![],
                },
            ))
            .await
            .unwrap();
    }
    node.server.hub().audit().flush().await;
    (from, now_ms())
}

#[tokio::test]
async fn with_redis_old_records_are_trimmed_as_new_ones_come() {
    let redis = RedisServer::start();
    let mut cfg = config("node-a", Some(&redis));
    // Long enough to write a batch within it, short enough to wait out.
    cfg.audit.retention_ms = 3_000;
    let mut node = TestNode::start_with(cfg).await;
    // More than one stream node's worth (100 entries), so that Redis can drop
    // whole nodes.
    let (old_from, old_to) = register_many(&mut node, 150).await;
    let audit = node.server.hub().audit();
    let (old, _) = audit.query(None, old_from, old_to, 1_000).await.unwrap();
    assert_eq!(old.len(), 150);
    // Past the retention, then new records.
    while now_ms() <= old_to + 3_100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (new_from, new_to) = register_many(&mut node, 150).await;
    let audit = node.server.hub().audit();
    let (new, _) = audit.query(None, new_from, new_to, 1_000).await.unwrap();
    assert_eq!(new.len(), 150, "new records are kept");
    let (left, _) = audit.query(None, old_from, old_to, 1_000).await.unwrap();
    assert!(
        left.len() < 100,
        "at least the oldest stream node was trimmed: {} of 150 left",
        left.len()
    );
    if let Some(first) = left.first() {
        assert!(first.time_ms >= old[0].time_ms);
    }
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg(stream_key("default"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((150..250).contains(&len), "stream length {len}");
    node.server.shutdown().await.unwrap();
}
