//! The command-room stream: snapshot then every change in order, resume
//! without gaps, lag → resync, bounding boxes, shutdown with open streams.

use patrol_proto::v1 as pb;
use patrol_tests::*;
use pb::watch_event::Kind;

fn watch_request(resume_after_seq: u64, resume_epoch: u64) -> pb::WatchRequest {
    pb::WatchRequest {
        bbox: None,
        resume_after_seq,
        resume_epoch,
    }
}

/// Reads events until `done` says stop; checks consecutive seqs on the way.
async fn read_until(
    stream: &mut tonic::Streaming<pb::WatchEvent>,
    mut expected_seq: u64,
    mut done: impl FnMut(&pb::WatchEvent) -> bool,
) -> (Vec<pb::WatchEvent>, u64) {
    let mut events = Vec::new();
    loop {
        let event = next_event(stream).await;
        assert_eq!(
            event.seq, expected_seq,
            "gap or reorder in the stream: {event:?}"
        );
        expected_seq += 1;
        let stop = done(&event);
        events.push(event);
        if stop {
            return (events, expected_seq - 1);
        }
    }
}

#[tokio::test]
async fn watch_sends_a_snapshot_then_every_change_in_order() {
    let mut node = TestNode::start().await;
    node.register("u1", pb::UnitKind::Car).await;
    node.report(vec![vec![ping("u1", now_ms() - 100, 24.94, 60.17)]])
        .await
        .unwrap();
    let before = node.create_incident(24.95, 60.17).await;

    let mut stream = node
        .room
        .watch(watch_request(0, 0))
        .await
        .unwrap()
        .into_inner();
    let (snapshot, end) = read_snapshot(&mut stream).await;
    assert_eq!(snapshot.units.len(), 1);
    assert_eq!(snapshot.incidents.len(), 1);
    assert_eq!(snapshot.incidents[0].id, before.id);
    assert_eq!(end.units, 1);

    // changes after the snapshot, in order
    node.register("u2", pb::UnitKind::Foot).await;
    let now = now_ms();
    node.report(vec![
        vec![ping("u2", now, 24.941, 60.171)],
        vec![ping("u1", now, 24.942, 60.172)],
    ])
    .await
    .unwrap();
    let incident = node.create_incident(24.943, 60.173).await;
    node.incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: incident.id.clone(),
            unit_ids: vec!["u2".into()],
            note: String::new(),
            intercept: Default::default(),
        })
        .await
        .unwrap();

    let mut saw_u2_register = false;
    let mut saw_dispatched = false;
    let mut moved = std::collections::HashSet::new();
    let (events, _) = read_until(&mut stream, end.seq + 1, |e| {
        match e.kind.as_ref().unwrap() {
            Kind::Unit(u) if u.id == "u2" && u.status == pb::UnitStatus::Offline as i32 => {
                saw_u2_register = true
            }
            Kind::Positions(batch) => {
                moved.extend(batch.positions.iter().map(|p| p.unit_id.clone()))
            }
            Kind::Incident(i) if i.status == pb::IncidentStatus::Dispatched as i32 => {
                saw_dispatched = true
            }
            _ => {}
        }
        saw_dispatched && moved.len() == 2
    })
    .await;
    assert!(saw_u2_register);
    let order_seen = events.iter().any(|e| matches!(e.kind.as_ref().unwrap(), Kind::Order(o) if o.unit_id == "u2" && o.incident_id == incident.id));
    assert!(order_seen, "{events:?}");
    // the incident's creation precedes its dispatch
    let created_at = events.iter().position(|e| matches!(e.kind.as_ref().unwrap(), Kind::Incident(i) if i.id == incident.id && i.status == pb::IncidentStatus::New as i32)).unwrap();
    let dispatched_at = events.iter().position(|e| matches!(e.kind.as_ref().unwrap(), Kind::Incident(i) if i.id == incident.id && i.status == pb::IncidentStatus::Dispatched as i32)).unwrap();
    assert!(created_at < dispatched_at);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_resumed_watch_misses_nothing() {
    let mut node = TestNode::start().await;
    let mut stream = node
        .room
        .watch(watch_request(0, 0))
        .await
        .unwrap()
        .into_inner();
    let (_, end) = read_snapshot(&mut stream).await;
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(node.create_incident(24.9 + i as f64 * 0.001, 60.1).await.id);
    }
    let (events, last) = read_until(
        &mut stream,
        end.seq + 1,
        |e| matches!(e.kind.as_ref().unwrap(), Kind::Incident(i) if i.id == expected[2]),
    )
    .await;
    assert_eq!(events.len(), 3);
    // the operator's screen drops off the network
    drop(stream);
    for i in 5..10 {
        expected.push(node.create_incident(24.9 + i as f64 * 0.001, 60.1).await.id);
    }
    let mut resumed = node
        .room
        .watch(watch_request(last, end.log_epoch))
        .await
        .unwrap()
        .into_inner();
    // no snapshot: straight on from last + 1, every incident exactly once
    let (events, _) = read_until(
        &mut resumed,
        last + 1,
        |e| matches!(e.kind.as_ref().unwrap(), Kind::Incident(i) if i.id == expected[9]),
    )
    .await;
    let ids: Vec<&str> = events
        .iter()
        .map(|e| match e.kind.as_ref().unwrap() {
            Kind::Incident(i) => i.id.as_str(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let want: Vec<&str> = expected[3..].iter().map(String::as_str).collect();
    assert_eq!(ids, want);
    // resuming from a seq the server never issued, or from another log epoch
    // (say, before an in-memory server restarted), gets a resync and a snapshot
    for (seq, epoch) in [
        (1_000_000, end.log_epoch),
        (last, end.log_epoch + 1),
        (last, 0),
    ] {
        let mut stream = node
            .room
            .watch(watch_request(seq, epoch))
            .await
            .unwrap()
            .into_inner();
        match next_event(&mut stream).await.kind.unwrap() {
            Kind::Resync(r) => assert_eq!(r.reason, pb::ResyncReason::HistoryUnavailable as i32),
            other => panic!("expected resync for ({seq}, {epoch}), got {other:?}"),
        }
        let (snapshot, again) = read_snapshot(&mut stream).await;
        assert_eq!(snapshot.incidents.len(), 10);
        assert_eq!(again.log_epoch, end.log_epoch);
    }
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_and_resynced() {
    let mut config = test_config();
    config.watch.history_events = 64;
    config.watch.subscriber_buffer = 1;
    let mut node = TestNode::start_with(config).await;
    // a client with small HTTP/2 windows, so the server feels it not reading
    let slow = tonic::transport::Channel::from_shared(node.server.grpc_url())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut room = pb::command_room_client::CommandRoomClient::new(slow);
    let mut stream = room.watch(watch_request(0, 0)).await.unwrap().into_inner();
    let (_, end) = read_snapshot(&mut stream).await;
    // far more events than the history holds, while the client reads nothing;
    // big descriptions fill the transport's buffers so the server must wait
    let description = "x".repeat(3000);
    for i in 0..600 {
        node.incidents
            .create_incident(pb::CreateIncidentRequest {
                request_id: Default::default(),
                r#type: "noise".into(),
                priority: 4,
                location: Some(pb::LonLat {
                    lon: 24.9 + (i % 100) as f64 * 0.0001,
                    lat: 60.1,
                }),
                source: pb::IncidentSource::Call as i32,
                description: description.clone(),
            })
            .await
            .unwrap();
    }
    let mut expected = end.seq + 1;
    let mut resynced = None;
    for _ in 0..700 {
        let event = next_event(&mut stream).await;
        match event.kind.unwrap() {
            Kind::Resync(r) => {
                resynced = Some(r);
                break;
            }
            Kind::Incident(_) => {
                assert_eq!(event.seq, expected, "silent gap");
                expected += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let resync = resynced.expect("a resync notice before any gap");
    assert_eq!(resync.reason, pb::ResyncReason::Lagged as i32);
    assert!(resync.missed > 0);
    let (snapshot, end) = read_snapshot(&mut stream).await;
    assert_eq!(snapshot.incidents.len(), 600);
    assert_eq!(end.incidents, 600);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bounding_box_limits_what_is_sent() {
    let mut node = TestNode::start().await;
    let bbox = pb::BoundingBox {
        west: 24.9,
        south: 60.1,
        east: 25.0,
        north: 60.2,
    };
    let mut stream = node
        .room
        .watch(pb::WatchRequest {
            bbox: Some(bbox),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    read_snapshot(&mut stream).await;
    node.create_incident(30.0, 60.15).await; // outside
    let inside = node.create_incident(24.95, 60.15).await;
    match next_event(&mut stream).await.kind.unwrap() {
        Kind::Incident(i) => assert_eq!(i.id, inside.id),
        other => panic!("unexpected {other:?}"),
    }
    let err = node
        .room
        .watch(pb::WatchRequest {
            bbox: Some(pb::BoundingBox {
                west: 25.0,
                south: 60.1,
                east: 24.0,
                north: 60.2,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("bbox"));
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_marks_health_not_serving() {
    let mut node = TestNode::start().await;
    node.register("u1", pb::UnitKind::Car).await;
    let mut stream = node
        .room
        .watch(watch_request(0, 0))
        .await
        .unwrap()
        .into_inner();
    read_snapshot(&mut stream).await;
    let mut orders = node
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "u1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut health = tonic_health::pb::health_client::HealthClient::new(node.channel.clone());
    let mut health_watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = health_watch.message().await.unwrap().unwrap();
    assert_eq!(
        first.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // returns (within the grace period) although streams are open
    node.server.shutdown().await.unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("stream ends");
    assert!(matches!(next, Ok(None) | Err(_)));
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), orders.message())
        .await
        .expect("orders end");
    assert!(matches!(next, Ok(None) | Err(_)));
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), health_watch.message())
        .await
        .expect("health update");
    if let Ok(Some(update)) = status {
        assert_eq!(
            update.status,
            tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
        );
    }
}
