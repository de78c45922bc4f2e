//! Per-caller limits end to end (issue #11): a flood from one caller is
//! refused with RESOURCE_EXHAUSTED while other callers and the command room
//! carry on; the Watch cap, the per-caller stream limit, the idle stream
//! timeout, and the counters returning to zero once the flooders go. Small
//! quotas so the floods are short; no wall-clock assertions (polls with
//! generous deadlines).

use std::time::Duration;

use patrol_proto::v1 as pb;
use patrol_services::Config;
use patrol_services::limits::LimitCounts;
use patrol_tests::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request};

const LON: f64 = 24.9458;
const LAT: f64 = 60.1699;

/// A request as caller `actor` (its `x-patrol-actor`).
fn as_caller<T>(actor: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-patrol-actor", actor.parse().unwrap());
    request
}

/// Polls `check` every 20 ms until it holds, failing after 20 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut config = test_config();
    edit(&mut config);
    config
}

/// A ReportPositions stream as `actor` that stays open until the sender is
/// dropped; the task returns the call's result.
fn open_stream(
    node: &TestNode,
    actor: &str,
) -> (
    mpsc::Sender<pb::ReportPositionsRequest>,
    tokio::task::JoinHandle<Result<pb::ReportPositionsResponse, tonic::Status>>,
) {
    let (tx, rx) = mpsc::channel(16);
    let mut units = node.units.clone();
    let request = as_caller(actor, ReceiverStream::new(rx));
    let call = tokio::spawn(async move {
        units
            .report_positions(request)
            .await
            .map(|r| r.into_inner())
    });
    (tx, call)
}

fn counts(node: &TestNode) -> LimitCounts {
    node.server.hub().limits().counts()
}

#[tokio::test]
async fn a_ping_flood_from_one_caller_does_not_starve_another() {
    let mut node = TestNode::start_with(config(|c| {
        c.limits.pings_per_second_per_caller = 200;
        c.limits.ping_burst_per_caller = 400;
        c.limits.max_batch_pings = 100;
    }))
    .await;
    for i in 0..100 {
        node.register(&format!("a-{i}"), pb::UnitKind::Car).await;
    }
    node.register("b-1", pb::UnitKind::Car).await;
    let (mut room, _) = node.watch_all().await;

    // Caller A: batches of 100 pings as fast as it can, at most 200 batches
    // (20 000 pings, 50 times its burst).
    let mut flood_units = node.units.clone();
    let flood = tokio::spawn(async move {
        let t0 = now_ms();
        let batches = (0..200).map(move |b| pb::ReportPositionsRequest {
            pings: (0..100)
                .map(|i| {
                    ping(
                        &format!("a-{i}"),
                        t0 + b,
                        LON + b as f64 * 1e-5,
                        LAT + i as f64 * 1e-5,
                    )
                })
                .collect(),
        });
        flood_units
            .report_positions(as_caller("gateway-a", tokio_stream::iter(batches)))
            .await
    });

    // Caller B keeps reporting one unit, one ping at a time, during the flood
    // and after it: every ping is accepted and moves the unit.
    let mut b_units = node.units.clone();
    let mut flood = Some(flood);
    let mut after = 0;
    let mut step = 0;
    while after < 5 {
        step += 1;
        let lon = LON + step as f64 * 1e-4;
        let reply = b_units
            .report_positions(as_caller(
                "gateway-b",
                tokio_stream::iter([pb::ReportPositionsRequest {
                    pings: vec![ping("b-1", now_ms(), lon, LAT)],
                }]),
            ))
            .await
            .expect("caller B is not limited")
            .into_inner();
        assert_eq!((reply.accepted, reply.rejected), (1, 0), "{reply:?}");
        let unit = b_units
            .get_unit(pb::GetUnitRequest { id: "b-1".into() })
            .await
            .unwrap()
            .into_inner()
            .unit
            .unwrap();
        let at = unit.fix.expect("b-1 has a fix");
        assert!((at.lon - lon).abs() < 1e-9, "b-1 moved to {lon}: {at:?}");
        if flood.as_ref().is_some_and(|f| f.is_finished()) {
            let refused = flood.take().unwrap().await.unwrap().unwrap_err();
            assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
            assert!(
                refused.message().contains("gateway-a")
                    && refused
                        .message()
                        .contains("limits.pings_per_second_per_caller"),
                "{}",
                refused.message()
            );
        }
        if flood.is_none() {
            after += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The command room still hears about B: a position of b-1 at its last
    // place arrives (the flood's events before it are read past).
    let last = LON + step as f64 * 1e-4;
    let mut seen = false;
    while !seen {
        if let Some(pb::watch_event::Kind::Positions(batch)) = next_event(&mut room).await.kind {
            seen = batch
                .positions
                .iter()
                .any(|p| p.unit_id == "b-1" && p.fix.is_some_and(|f| (f.lon - last).abs() < 1e-9));
        }
    }

    let metrics = http_get(node.server.http_addr(), "/metrics").await;
    assert!(
        metrics.contains("patrol_rate_limited_total{what=\"pings\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_alert_flood_from_one_camera_system_is_refused_while_another_goes_through() {
    let mut node = TestNode::start_with(config(|c| {
        c.limits.alerts_per_second_per_caller = 2;
        c.limits.alert_burst_per_caller = 5;
    }))
    .await;
    node.cameras
        .register_camera(pb::RegisterCameraRequest {
            camera: Some(pb::Camera {
                id: "cam-1".into(),
                name: "camera".into(),
                lon: LON,
                lat: LAT,
                mount_height_m: 6.0,
                fov_deg: 60.0,
                range_m: 80.0,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    // Below the incident threshold: the alerts are stored, nothing opens.
    let alert = pb::PostAlertRequest {
        camera_id: "cam-1".into(),
        label: "loitering".into(),
        confidence: 0.05,
        ..Default::default()
    };
    let mut refused = None;
    let mut accepted = 0;
    for _ in 0..100 {
        match node
            .cameras
            .post_alert(as_caller("vms-a", alert.clone()))
            .await
        {
            Ok(_) => accepted += 1,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("100 alerts in a row from one caller are refused at some point");
    assert!(accepted >= 5, "the burst passes: {accepted}");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("vms-a")
            && refused
                .message()
                .contains("limits.alerts_per_second_per_caller"),
        "{}",
        refused.message()
    );
    // Another camera system's alerts go through meanwhile.
    for _ in 0..5 {
        node.cameras
            .post_alert(as_caller("vms-b", alert.clone()))
            .await
            .expect("caller B's alerts are not limited");
    }
}

#[tokio::test]
async fn the_watch_cap_refuses_one_more_and_admits_again_after_one_leaves() {
    let mut node = TestNode::start_with(config(|c| c.watch.max_subscribers = 3)).await;
    let mut screens = Vec::new();
    for i in 0..3 {
        let stream = node
            .room
            .watch(as_caller(
                &format!("screen-{i}"),
                pb::WatchRequest::default(),
            ))
            .await
            .expect("under the cap")
            .into_inner();
        screens.push(stream);
    }
    let full = node
        .room
        .watch(as_caller("screen-3", pb::WatchRequest::default()))
        .await
        .expect_err("the fourth is refused");
    assert_eq!(full.code(), Code::ResourceExhausted, "{full:?}");
    assert!(
        full.message()
            .contains("command room full: 3 subscribers (watch.max_subscribers)"),
        "{}",
        full.message()
    );
    assert_eq!(counts(&node).watch_subscribers, 3);
    // One screen leaves (the client drops its stream): room for another.
    drop(screens.pop());
    eventually("a screen's place is given back", async || {
        counts(&node).watch_subscribers == 2
    })
    .await;
    let mut again = node
        .room
        .watch(as_caller("screen-3", pb::WatchRequest::default()))
        .await
        .expect("admitted after one left")
        .into_inner();
    read_snapshot(&mut again).await;
    // It is a working stream: it sees a new unit.
    node.register("u-1", pb::UnitKind::Foot).await;
    loop {
        if let Some(pb::watch_event::Kind::Unit(unit)) = next_event(&mut again).await.kind
            && unit.id == "u-1"
        {
            break;
        }
    }
    drop((again, screens));
    eventually("every screen's place is given back", async || {
        counts(&node).watch_subscribers == 0
    })
    .await;
}

#[tokio::test]
async fn one_caller_has_at_most_its_streams_and_they_are_given_back() {
    let mut node = TestNode::start_with(config(|c| c.limits.max_streams_per_caller = 2)).await;
    node.register("u-1", pb::UnitKind::Car).await;
    node.register("u-2", pb::UnitKind::Car).await;
    let (a1, a1_call) = open_stream(&node, "gateway-a");
    let (_a2, a2_call) = open_stream(&node, "gateway-a");
    eventually("A's two streams are open", async || {
        counts(&node).streams == 2
    })
    .await;

    let (_a3, a3_call) = open_stream(&node, "gateway-a");
    let refused = a3_call.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("gateway-a")
            && refused.message().contains("limits.max_streams_per_caller"),
        "{}",
        refused.message()
    );
    // Watch counts among A's streams too.
    let watch = node
        .room
        .watch(as_caller("gateway-a", pb::WatchRequest::default()))
        .await
        .expect_err("A's Watch is over its streams");
    assert_eq!(watch.code(), Code::ResourceExhausted);
    assert_eq!(
        counts(&node).watch_subscribers,
        0,
        "a refused Watch holds no place"
    );

    // Caller B is not affected.
    let reply = node
        .units
        .report_positions(as_caller(
            "gateway-b",
            tokio_stream::iter([pb::ReportPositionsRequest {
                pings: vec![ping("u-1", now_ms(), LON, LAT)],
            }]),
        ))
        .await
        .expect("B has its own streams")
        .into_inner();
    assert_eq!(reply.accepted, 1);

    // A stream that A closes, and one whose client vanishes (the call is
    // dropped mid-stream), both give their place back.
    a1.send(pb::ReportPositionsRequest {
        pings: vec![ping("u-2", now_ms(), LON + 1e-4, LAT)],
    })
    .await
    .unwrap();
    drop(a1);
    assert_eq!(a1_call.await.unwrap().unwrap().accepted, 1);
    a2_call.abort();
    eventually("A's streams are given back", async || {
        counts(&node).streams == 0 && counts(&node).stream_callers == 0
    })
    .await;
    let (a4, a4_call) = open_stream(&node, "gateway-a");
    drop(a4);
    a4_call.await.unwrap().expect("A may open streams again");
}

#[tokio::test]
async fn an_idle_report_positions_stream_is_ended() {
    let mut node = TestNode::start_with(config(|c| c.limits.stream_idle_timeout_ms = 1_500)).await;
    node.register("u-1", pb::UnitKind::Car).await;
    node.register("u-2", pb::UnitKind::Car).await;

    // A busy stream (a batch every 50 ms for longer than the timeout) is
    // not ended.
    let (busy, busy_call) = open_stream(&node, "busy");
    // An idle one: one batch, then silence.
    let (idle, idle_call) = open_stream(&node, "idle");
    idle.send(pb::ReportPositionsRequest {
        pings: vec![ping("u-2", now_ms(), LON, LAT)],
    })
    .await
    .unwrap();
    for i in 0..50 {
        busy.send(pb::ReportPositionsRequest {
            pings: vec![ping("u-1", now_ms(), LON + i as f64 * 1e-5, LAT)],
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(30), idle_call)
        .await
        .expect("the idle stream is ended")
        .unwrap()
        .unwrap_err();
    assert_eq!(ended.code(), Code::ResourceExhausted, "{ended:?}");
    assert!(
        ended.message().contains("limits.stream_idle_timeout_ms"),
        "{}",
        ended.message()
    );
    drop(idle);
    drop(busy);
    let reply = busy_call.await.unwrap().expect("the busy stream ends well");
    assert_eq!(reply.accepted, 50);
    // The idle stream's batch was kept.
    let unit = node
        .units
        .get_unit(pb::GetUnitRequest { id: "u-2".into() })
        .await
        .unwrap()
        .into_inner()
        .unit
        .unwrap();
    assert!(unit.fix.is_some());
    eventually("the streams are given back", async || {
        counts(&node).streams == 0
    })
    .await;
}

#[tokio::test]
async fn the_limiters_forget_callers_once_they_have_gone() {
    let mut node = TestNode::start_with(config(|c| {
        // A caller's state is as good as fresh again `used / rate` after its
        // last request: 2 s for the pings, 3 s for the alerts here.
        c.limits.pings_per_second_per_caller = 50;
        c.limits.ping_burst_per_caller = 100;
        c.limits.max_batch_pings = 100;
        c.limits.alerts_per_second_per_caller = 1;
        c.limits.alert_burst_per_caller = 10;
    }))
    .await;
    node.register("u-1", pb::UnitKind::Car).await;
    for caller in 0..20 {
        let batches = (0..5).map(|i| pb::ReportPositionsRequest {
            pings: vec![ping("u-1", now_ms() + i, LON, LAT); 50],
        });
        // Some of these are refused (100 pings of burst, 250 sent): either way
        // the caller is remembered for now.
        let _ = node
            .units
            .report_positions(as_caller(
                &format!("flood-{caller}"),
                tokio_stream::iter(batches),
            ))
            .await;
        for _ in 0..3 {
            let _ = node
                .cameras
                .post_alert(as_caller(
                    &format!("flood-{caller}"),
                    pb::PostAlertRequest {
                        camera_id: "none".into(),
                        label: "x".into(),
                        confidence: 0.5,
                        ..Default::default()
                    },
                ))
                .await;
        }
    }
    assert!(counts(&node).ping_callers > 0 && counts(&node).alert_callers > 0);
    eventually("the limiters forget the flooders", async || {
        counts(&node) == LimitCounts::default()
    })
    .await;
}
