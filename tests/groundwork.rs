//! The command path's guarantees, over real gRPC to an in-memory node: every
//! change names who made it, a retried call with the same `request_id`
//! changes nothing twice, a unit leaving a Watch box is announced, a resync
//! says exactly how much the snapshot covers, and size limits are
//! RESOURCE_EXHAUSTED.

use patrol_proto::v1 as pb;
use patrol_tests::{TestNode, as_actor, next_event, now_ms, ping, read_snapshot, test_config};
use pb::watch_event::Kind;
use tonic::Code;

const LON: f64 = 24.94;
const LAT: f64 = 60.17;

fn new_incident(request_id: &str) -> pb::CreateIncidentRequest {
    pb::CreateIncidentRequest {
        r#type: "theft".into(),
        priority: 2,
        location: Some(pb::LonLat { lon: LON, lat: LAT }),
        source: pb::IncidentSource::Call as i32,
        description: "bike stolen".into(),
        request_id: request_id.into(),
    }
}

async fn get_incident(node: &mut TestNode, id: &str) -> pb::Incident {
    node.incidents
        .get_incident(pb::GetIncidentRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap()
}

#[tokio::test]
async fn every_audit_entry_names_who_made_the_change() {
    let mut config = test_config();
    config.node_id = "node-a".into();
    let mut node = TestNode::start_with(config).await;
    node.register("car-1", pb::UnitKind::Car).await;
    node.report(vec![vec![ping("car-1", now_ms(), LON, LAT)]])
        .await
        .unwrap();

    let incident = node
        .incidents
        .create_incident(as_actor("alice", new_incident("")))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    node.incidents
        .dispatch(as_actor(
            "bob",
            pb::DispatchRequest {
                incident_id: incident.id.clone(),
                unit_ids: vec!["car-1".into()],
                note: "go".into(),
                request_id: String::new(),
                intercept: Default::default(),
            },
        ))
        .await
        .unwrap();
    node.units
        .update_status(as_actor(
            "car-1 terminal",
            pb::UpdateStatusRequest {
                unit_id: "car-1".into(),
                status: pb::UnitStatus::OnScene as i32,
            },
        ))
        .await
        .unwrap();
    node.incidents
        .update_incident(as_actor(
            "carol",
            pb::UpdateIncidentRequest {
                id: incident.id.clone(),
                status: pb::IncidentStatus::Closed as i32,
                note: "done".into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    // A caller that does not name itself is still identified by address.
    node.incidents
        .create_incident(new_incident(""))
        .await
        .unwrap();

    let audit = get_incident(&mut node, &incident.id).await.audit;
    let who = |action: &str| -> Vec<String> {
        audit
            .iter()
            .filter(|a| a.action == action)
            .map(|a| {
                a.actor
                    .as_ref()
                    .expect("every entry has an actor")
                    .identity
                    .clone()
            })
            .collect()
    };
    assert_eq!(who("created"), ["alice"]);
    assert_eq!(who("dispatched"), ["bob"]);
    assert_eq!(who("status")[0], "car-1 terminal", "{audit:?}");
    assert_eq!(who("status").last().unwrap(), "carol");
    assert_eq!(who("unit_released"), ["carol"]);
    for entry in &audit {
        let actor = entry.actor.as_ref().unwrap();
        assert_eq!(actor.node, "node-a", "{entry:?}");
        assert!(
            actor.peer.starts_with("127.0.0.1:"),
            "the peer address is recorded: {entry:?}"
        );
    }
    let anonymous = node
        .incidents
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents
        .into_iter()
        .find(|i| i.id != incident.id)
        .unwrap();
    let actor = anonymous.audit[0].actor.clone().unwrap();
    assert_eq!(actor.identity, "");
    assert!(actor.peer.starts_with("127.0.0.1:"));

    let err = node
        .incidents
        .create_incident(as_actor(&"x".repeat(200), new_incident("")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("x-patrol-actor"),
        "{}",
        err.message()
    );
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_retried_call_with_the_same_request_id_changes_nothing_twice() {
    let mut node = TestNode::start().await;
    node.register("car-1", pb::UnitKind::Car).await;
    node.report(vec![vec![ping("car-1", now_ms(), LON, LAT)]])
        .await
        .unwrap();
    node.cameras
        .register_camera(pb::RegisterCameraRequest {
            camera: Some(pb::Camera {
                id: "cam-1".into(),
                lon: LON,
                lat: LAT,
                mount_height_m: 6.0,
                heading_deg: 90.0,
                fov_deg: 60.0,
                range_m: 80.0,
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    let first = node
        .incidents
        .create_incident(new_incident("call-1"))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let again = node
        .incidents
        .create_incident(new_incident("call-1"))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(again.id, first.id);
    let open = node
        .incidents
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(open.len(), 1, "one incident, not two: {open:?}");

    let mut changed = new_incident("call-1");
    changed.description = "something else".into();
    let err = node.incidents.create_incident(changed).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("request_id"), "{}", err.message());

    let dispatch = pb::DispatchRequest {
        incident_id: first.id.clone(),
        unit_ids: vec!["car-1".into()],
        note: "go".into(),
        request_id: "dispatch-1".into(),
        intercept: Default::default(),
    };
    let orders = node
        .incidents
        .dispatch(dispatch.clone())
        .await
        .unwrap()
        .into_inner()
        .orders;
    let retried = node
        .incidents
        .dispatch(dispatch.clone())
        .await
        .expect("a retry of a dispatch that succeeded succeeds")
        .into_inner()
        .orders;
    assert_eq!(
        retried.iter().map(|o| &o.order_id).collect::<Vec<_>>(),
        orders.iter().map(|o| &o.order_id).collect::<Vec<_>>()
    );
    let audit = get_incident(&mut node, &first.id).await.audit;
    assert_eq!(
        audit.iter().filter(|a| a.action == "dispatched").count(),
        1,
        "{audit:?}"
    );

    let alert = pb::PostAlertRequest {
        camera_id: "cam-1".into(),
        time_unix_ms: now_ms(),
        label: "loitering".into(),
        confidence: 0.9,
        snapshot_uri: String::new(),
        request_id: "frigate-abc".into(),
        object_id: String::new(),
        location: None,
    };
    let a = node
        .cameras
        .post_alert(alert.clone())
        .await
        .unwrap()
        .into_inner();
    let b = node.cameras.post_alert(alert).await.unwrap().into_inner();
    assert_eq!(a, b);

    let close = pb::UpdateIncidentRequest {
        id: first.id.clone(),
        status: pb::IncidentStatus::Closed as i32,
        note: "done".into(),
        request_id: "close-1".into(),
    };
    node.incidents.update_incident(close.clone()).await.unwrap();
    node.incidents.update_incident(close.clone()).await.unwrap();
    let audit = get_incident(&mut node, &first.id).await.audit;
    assert_eq!(
        audit.iter().filter(|a| a.action == "status").count(),
        1,
        "{audit:?}"
    );
    let err = node
        .incidents
        .update_incident(pb::UpdateIncidentRequest {
            note: "another note".into(),
            ..close
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("request_id"), "{}", err.message());

    let err = node
        .incidents
        .create_incident(new_incident(&"r".repeat(200)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("request_id"), "{}", err.message());
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_unit_leaving_the_watch_box_is_announced_once() {
    let mut node = TestNode::start().await;
    node.register("foot-1", pb::UnitKind::Foot).await;
    node.register("foot-2", pb::UnitKind::Foot).await;
    let t0 = now_ms() - 600_000;
    node.report(vec![vec![
        ping("foot-1", t0, 24.999, 60.15),
        ping("foot-2", t0, 24.96, 60.15),
    ]])
    .await
    .unwrap();
    let mut stream = node
        .room
        .watch(pb::WatchRequest {
            bbox: Some(pb::BoundingBox {
                west: 24.9,
                south: 60.1,
                east: 25.0,
                north: 60.2,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (snapshot, _) = read_snapshot(&mut stream).await;
    assert_eq!(snapshot.units.len(), 2);

    // foot-1 walks out of the box (110 m east in two minutes); foot-2 stays in.
    node.report(vec![vec![
        ping("foot-1", t0 + 120_000, 25.001, 60.15),
        ping("foot-2", t0 + 120_000, 24.9601, 60.15),
    ]])
    .await
    .unwrap();
    let batch = loop {
        if let Kind::Positions(batch) = next_event(&mut stream).await.kind.unwrap() {
            break batch;
        }
    };
    let ids =
        |list: &[pb::UnitPosition]| list.iter().map(|p| p.unit_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&batch.positions), ["foot-2"]);
    assert_eq!(ids(&batch.left_area), ["foot-1"], "{batch:?}");
    assert_eq!(batch.left_area[0].fix.as_ref().unwrap().lon, 25.001);

    // Moving about outside says nothing more; coming back is a position.
    node.report(vec![vec![ping("foot-1", t0 + 240_000, 25.002, 60.15)]])
        .await
        .unwrap();
    node.report(vec![vec![ping("foot-1", t0 + 480_000, 24.999, 60.15)]])
        .await
        .unwrap();
    let batch = loop {
        if let Kind::Positions(batch) = next_event(&mut stream).await.kind.unwrap() {
            break batch;
        }
    };
    if batch.positions.is_empty() {
        panic!("a batch with only foot-1 outside is not sent: {batch:?}");
    }
    assert_eq!(ids(&batch.positions), ["foot-1"]);
    assert!(batch.left_area.is_empty(), "{batch:?}");
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_resync_counts_every_change_the_snapshot_covers() {
    let mut config = test_config();
    config.watch.history_events = 64;
    config.watch.subscriber_buffer = 1;
    let mut node = TestNode::start_with(config).await;
    let slow = tonic::transport::Channel::from_shared(node.server.grpc_url())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut room = pb::command_room_client::CommandRoomClient::new(slow);
    let mut stream = room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (_, end) = read_snapshot(&mut stream).await;
    let description = "x".repeat(3000);
    for i in 0..600 {
        let mut new = new_incident("");
        new.r#type = "noise".into();
        new.description = description.clone();
        new.location = Some(pb::LonLat {
            lon: 24.9 + (i % 100) as f64 * 0.0001,
            lat: 60.1,
        });
        node.incidents.create_incident(new).await.unwrap();
    }
    let mut last_seen = end.seq;
    let resync = loop {
        let event = next_event(&mut stream).await;
        match event.kind.unwrap() {
            Kind::Resync(r) => break r,
            Kind::Incident(_) => {
                assert_eq!(event.seq, last_seen + 1, "silent gap");
                last_seen = event.seq;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    let (_, after) = read_snapshot(&mut stream).await;
    assert_eq!(
        resync.missed,
        after.seq - last_seen,
        "missed = the snapshot's seq ({}) minus the last seq seen ({last_seen})",
        after.seq
    );

    // A resume from too far back is told the same way.
    let mut fresh = node
        .room
        .watch(pb::WatchRequest {
            resume_after_seq: 1,
            resume_epoch: after.log_epoch,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Kind::Resync(r) = next_event(&mut fresh).await.kind.unwrap() else {
        panic!("expected a resync");
    };
    let (_, end) = read_snapshot(&mut fresh).await;
    assert_eq!(r.reason, pb::ResyncReason::HistoryUnavailable as i32);
    assert_eq!(r.missed, end.seq - 1);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn messages_over_the_limits_are_resource_exhausted_and_the_server_keeps_serving() {
    let mut config = test_config();
    config.limits.max_message_bytes = 64 << 10;
    config.limits.max_batch_pings = 100;
    let mut node = TestNode::start_with(config).await;
    node.register("car-1", pb::UnitKind::Car).await;

    let mut big = new_incident("");
    big.description = "x".repeat(100 << 10);
    let err = node.incidents.create_incident(big).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    let t0 = now_ms() - 60_000;
    let huge: Vec<_> = (0..3_000)
        .map(|i| ping("car-1", t0 + i, LON, LAT))
        .collect();
    let err = node.report(vec![huge]).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // The batch limit: the batch before the oversized one is kept.
    let ok: Vec<_> = (0..10).map(|i| ping("car-1", t0 + i, LON, LAT)).collect();
    let over: Vec<_> = (0..101)
        .map(|i| ping("car-1", t0 + 100 + i, LON, LAT))
        .collect();
    let err = node.report(vec![ok, over]).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("limits.max_batch_pings"),
        "{}",
        err.message()
    );
    let unit = node
        .units
        .get_unit(pb::GetUnitRequest { id: "car-1".into() })
        .await
        .unwrap()
        .into_inner()
        .unit
        .unwrap();
    assert_eq!(unit.fix.unwrap().fix_time_unix_ms, t0 + 9);
    node.create_incident(LON, LAT).await;
    node.server.shutdown().await.unwrap();
}
