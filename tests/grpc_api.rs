//! The gRPC API end to end: a real server on 127.0.0.1:0, real clients.

use patrol_proto::v1 as pb;
use patrol_tests::*;
use tokio_stream::StreamExt;
use tonic::Code;

/// A seeded, dependency-free generator for unit positions.
struct Lcg(u64);
impl Lcg {
    fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[tokio::test]
async fn recommend_returns_the_true_nearest_available_units() {
    let mut node = TestNode::start().await;
    let now = now_ms();
    let mut rng = Lcg(42);
    let mut positions = Vec::new();
    let mut pings = Vec::new();
    for i in 0..200 {
        let id = format!("u{i}");
        node.register(
            &id,
            if i % 3 == 0 {
                pb::UnitKind::Foot
            } else {
                pb::UnitKind::Car
            },
        )
        .await;
        let p = (24.90 + rng.next_f64() * 0.1, 60.15 + rng.next_f64() * 0.05);
        pings.push(ping(&id, now - 1000, p.0, p.1));
        positions.push((id, p));
    }
    let reply = node
        .report(pings.chunks(50).map(|c| c.to_vec()).collect())
        .await
        .unwrap();
    assert_eq!((reply.accepted, reply.rejected), (200, 0));
    // every 4th unit is busy
    let mut busy = std::collections::HashSet::new();
    for (i, (id, _)) in positions.iter().enumerate().filter(|(i, _)| i % 4 == 1) {
        node.units
            .update_status(pb::UpdateStatusRequest {
                unit_id: id.clone(),
                status: pb::UnitStatus::Busy as i32,
            })
            .await
            .unwrap();
        busy.insert(i);
    }
    for q in 0..20 {
        let target = (24.90 + rng.next_f64() * 0.1, 60.15 + rng.next_f64() * 0.05);
        let reply = node
            .incidents
            .recommend(pb::RecommendRequest {
                target: Some(pb::recommend_request::Target::Point(pb::LonLat {
                    lon: target.0,
                    lat: target.1,
                })),
                k: 5,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut expected: Vec<(f64, &str)> = positions
            .iter()
            .enumerate()
            .filter(|(i, _)| !busy.contains(i))
            .map(|(_, (id, p))| (haversine_m(*p, target), id.as_str()))
            .collect();
        expected.sort_by(|a, b| a.0.total_cmp(&b.0));
        let got: Vec<(f64, &str)> = reply
            .units
            .iter()
            .map(|u| (u.distance_m, u.unit.as_ref().unwrap().id.as_str()))
            .collect();
        assert_eq!(got.len(), 5, "query {q}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g.0 - e.0).abs() < 0.01,
                "query {q}: got {got:?}, expected {:?}",
                &expected[..5]
            );
        }
        for u in &reply.units {
            assert_eq!(
                u.unit.as_ref().unwrap().status,
                pb::UnitStatus::Available as i32
            );
            assert!(!u.reason.is_empty());
        }
        // busy units closer than the 5th pick are reported as excluded
        let fifth = got[4].0;
        let closer_busy = positions
            .iter()
            .enumerate()
            .filter(|(i, (_, p))| busy.contains(i) && haversine_m(*p, target) < fifth)
            .count();
        assert_eq!(reply.excluded.len(), closer_busy.min(20), "query {q}");
        assert!(
            reply
                .excluded
                .iter()
                .all(|e| e.reason == pb::ExclusionReason::NotAvailable as i32)
        );
    }
    // filters: kind
    let reply = node
        .incidents
        .recommend(pb::RecommendRequest {
            target: Some(pb::recommend_request::Target::Point(pb::LonLat {
                lon: 24.95,
                lat: 60.17,
            })),
            k: 3,
            kinds: vec![pb::UnitKind::Foot as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.units.len(), 3);
    assert!(
        reply
            .units
            .iter()
            .all(|u| u.unit.as_ref().unwrap().kind == pb::UnitKind::Foot as i32)
    );
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn dispatch_delivers_the_order_to_the_units_terminal() {
    let mut node = TestNode::start().await;
    node.register("car-1", pb::UnitKind::Car).await;
    node.register("car-2", pb::UnitKind::Car).await;
    let now = now_ms();
    node.report(vec![vec![
        ping("car-1", now, 24.94, 60.17),
        ping("car-2", now, 24.99, 60.19),
    ]])
    .await
    .unwrap();
    let mut orders = node
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "car-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let incident = node.create_incident(24.941, 60.171).await;
    let rec = node
        .incidents
        .recommend(pb::RecommendRequest {
            target: Some(pb::recommend_request::Target::IncidentId(
                incident.id.clone(),
            )),
            k: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rec.units[0].unit.as_ref().unwrap().id, "car-1");
    let reply = node
        .incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: incident.id.clone(),
            unit_ids: vec!["car-1".into()],
            note: "silent approach".into(),
            intercept: Default::default(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.incident.as_ref().unwrap().status,
        pb::IncidentStatus::Dispatched as i32
    );
    let order = tokio::time::timeout(std::time::Duration::from_secs(10), orders.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(order.unit_id, "car-1");
    assert_eq!(order.incident_id, incident.id);
    assert_eq!(order.order_id, reply.orders[0].order_id);
    assert_eq!(order.note, "silent approach");
    assert!(order.distance_m.unwrap() < 200.0);

    // a terminal that reconnects gets its current order first
    drop(orders);
    let mut again = node
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "car-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let resent = tokio::time::timeout(std::time::Duration::from_secs(10), again.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resent.order_id, order.order_id);

    // now car-1 is assigned: the next recommendation is car-2, and car-1 cannot be sent elsewhere
    let other = node.create_incident(24.942, 60.172).await;
    let rec = node
        .incidents
        .recommend(pb::RecommendRequest {
            target: Some(pb::recommend_request::Target::IncidentId(other.id.clone())),
            k: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rec.units[0].unit.as_ref().unwrap().id, "car-2");
    assert_eq!(rec.excluded[0].unit_id, "car-1");
    assert_eq!(rec.excluded[0].reason, pb::ExclusionReason::Assigned as i32);
    let err = node
        .incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: other.id.clone(),
            unit_ids: vec!["car-1".into()],
            note: String::new(),
            intercept: Default::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("car-1"), "{}", err.message());

    // a second terminal for the same unit replaces the first, which is told so
    let mut third = node
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "car-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let wait = std::time::Duration::from_secs(10);
    let current = tokio::time::timeout(wait, third.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(current.order_id, order.order_id);
    let replaced = tokio::time::timeout(wait, again.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(replaced.code(), Code::Aborted, "{replaced:?}");

    // closing frees the unit, and its terminal hears the order is released
    for status in [pb::IncidentStatus::Resolved, pb::IncidentStatus::Closed] {
        node.incidents
            .update_incident(pb::UpdateIncidentRequest {
                request_id: Default::default(),
                id: incident.id.clone(),
                status: status as i32,
                note: String::new(),
            })
            .await
            .unwrap();
    }
    let unit = node
        .units
        .get_unit(pb::GetUnitRequest { id: "car-1".into() })
        .await
        .unwrap()
        .into_inner()
        .unit
        .unwrap();
    assert_eq!(unit.status, pb::UnitStatus::Available as i32);
    assert!(unit.incident_id.is_empty());
    let released = tokio::time::timeout(wait, third.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(released.order_id, order.order_id);
    assert_eq!(released.state, pb::OrderState::Released as i32);
    assert_eq!(order.state, pb::OrderState::Active as i32);
    node.server.shutdown().await.unwrap();
    // shutdown tells the terminal to reconnect elsewhere
    let end = tokio::time::timeout(wait, third.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(end.code(), Code::Unavailable);
}

#[tokio::test]
async fn bad_pings_are_rejected_with_reasons_and_good_ones_are_kept() {
    let mut node = TestNode::start().await;
    node.register("u1", pb::UnitKind::Foot).await;
    node.register("u2", pb::UnitKind::Foot).await;
    let now = now_ms();
    let reply = node
        .report(vec![
            vec![
                ping("u1", now - 3000, 24.90, 60.10),
                ping("u2", now - 3000, f64::NAN, 60.10),
            ],
            vec![
                ping("ghost", now, 24.0, 60.0),
                ping("u2", now + 3_600_000, 24.0, 60.0),
                ping("", now, 24.0, 60.0),
                ping("u2", now - 2000, 24.0, 91.0),
                ping("u2", now - 2000, 24.91, 60.11),
            ],
            vec![
                ping("u1", now - 4000, 25.5, 60.5),
                ping("u1", now - 3000, 24.90, 60.10),
                ping("u1", now - 1000, 24.92, 60.12),
            ],
        ])
        .await
        .unwrap();
    assert_eq!(reply.accepted, 3, "{reply:?}");
    assert_eq!(reply.duplicates, 1);
    assert_eq!(reply.rejected, 6);
    let reasons: Vec<(u64, i32)> = reply
        .rejections
        .iter()
        .map(|r| (r.index, r.reason))
        .collect();
    use pb::PingRejectReason as R;
    assert_eq!(
        reasons,
        [
            (1, R::InvalidCoordinates as i32),
            (2, R::UnknownUnit as i32),
            (3, R::FutureFixTime as i32),
            (4, R::MissingUnitId as i32),
            (5, R::InvalidCoordinates as i32),
            (7, R::OutOfOrder as i32),
        ]
    );
    assert!(
        reply.rejections[0].message.contains("NaN"),
        "{}",
        reply.rejections[0].message
    );
    assert!(reply.rejections[1].message.contains("ghost"));
    // pings before and after the bad ones were kept; the old one did not move u1 back
    let u1 = node
        .units
        .get_unit(pb::GetUnitRequest { id: "u1".into() })
        .await
        .unwrap()
        .into_inner()
        .unit
        .unwrap();
    let fix = u1.fix.unwrap();
    assert_eq!(
        (fix.lon, fix.lat, fix.fix_time_unix_ms),
        (24.92, 60.12, now - 1000)
    );
    let u2 = node
        .units
        .get_unit(pb::GetUnitRequest { id: "u2".into() })
        .await
        .unwrap()
        .into_inner()
        .unit
        .unwrap();
    assert_eq!(u2.fix.unwrap().lon, 24.91);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_clear_codes_and_the_server_keeps_serving() {
    let mut node = TestNode::start().await;
    node.register("u1", pb::UnitKind::Car).await;
    let check = |result: Result<tonic::Response<_>, tonic::Status>, code: Code, needle: &str| {
        let err = result.map(|_: tonic::Response<_>| ()).unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
        assert!(
            err.message().contains(needle),
            "{:?} should name {needle:?}",
            err.message()
        );
    };
    // empty id
    let r = node
        .units
        .register_unit(pb::RegisterUnitRequest {
            id: String::new(),
            call_sign: "x".into(),
            kind: pb::UnitKind::Car as i32,
            capabilities: vec![],
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::InvalidArgument, "id");
    // missing kind
    let r = node
        .units
        .register_unit(pb::RegisterUnitRequest {
            id: "u9".into(),
            call_sign: "x".into(),
            kind: 0,
            capabilities: vec![],
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::InvalidArgument, "kind");
    // unknown unit
    let r = node
        .units
        .get_unit(pb::GetUnitRequest {
            id: "nobody".into(),
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::NotFound, "nobody");
    let r = node
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "nobody".into(),
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::NotFound, "nobody");
    // NaN and out-of-range incident location
    let r = node
        .incidents
        .create_incident(pb::CreateIncidentRequest {
            r#type: "theft".into(),
            location: Some(pb::LonLat {
                lon: f64::NAN,
                lat: 60.0,
            }),
            ..Default::default()
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::InvalidArgument, "location");
    let r = node
        .incidents
        .create_incident(pb::CreateIncidentRequest {
            r#type: "theft".into(),
            location: Some(pb::LonLat {
                lon: 24.0,
                lat: 95.0,
            }),
            ..Default::default()
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::InvalidArgument, "95");
    let r = node
        .incidents
        .create_incident(pb::CreateIncidentRequest {
            r#type: "theft".into(),
            location: None,
            ..Default::default()
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::InvalidArgument, "location");
    let r = node
        .incidents
        .recommend(pb::RecommendRequest {
            target: Some(pb::recommend_request::Target::Point(pb::LonLat {
                lon: 200.0,
                lat: 0.0,
            })),
            ..Default::default()
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::InvalidArgument, "point");
    // illegal status transitions
    let incident = node.create_incident(24.9, 60.1).await;
    let r = node
        .incidents
        .update_incident(pb::UpdateIncidentRequest {
            request_id: Default::default(),
            id: incident.id.clone(),
            status: pb::IncidentStatus::OnScene as i32,
            note: String::new(),
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::FailedPrecondition, "new");
    let r = node
        .units
        .update_status(pb::UpdateStatusRequest {
            unit_id: "u1".into(),
            status: pb::UnitStatus::OnScene as i32,
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::FailedPrecondition, "u1");
    let r = node
        .units
        .update_status(pb::UpdateStatusRequest {
            unit_id: "u1".into(),
            status: pb::UnitStatus::Offline as i32,
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::InvalidArgument, "status");
    // dispatching a busy unit, and an unknown one
    node.report(vec![vec![ping("u1", now_ms(), 24.9, 60.1)]])
        .await
        .unwrap();
    node.units
        .update_status(pb::UpdateStatusRequest {
            unit_id: "u1".into(),
            status: pb::UnitStatus::Busy as i32,
        })
        .await
        .unwrap();
    let r = node
        .incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: incident.id.clone(),
            unit_ids: vec!["u1".into()],
            note: String::new(),
            intercept: Default::default(),
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::FailedPrecondition, "busy");
    let r = node
        .incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: incident.id.clone(),
            unit_ids: vec!["ghost".into()],
            note: String::new(),
            intercept: Default::default(),
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::NotFound, "ghost");
    let r = node
        .incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: "inc-404".into(),
            unit_ids: vec!["u1".into()],
            note: String::new(),
            intercept: Default::default(),
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::NotFound, "inc-404");
    // camera with a bad field of view, alert from an unknown camera
    let r = node
        .cameras
        .register_camera(pb::RegisterCameraRequest {
            camera: Some(pb::Camera {
                id: "c1".into(),
                lon: 24.9,
                lat: 60.1,
                fov_deg: 400.0,
                range_m: 50.0,
                ..Default::default()
            }),
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::InvalidArgument, "fov_deg");
    let r = node
        .cameras
        .post_alert(pb::PostAlertRequest {
            camera_id: "c404".into(),
            label: "fight".into(),
            confidence: 0.9,
            ..Default::default()
        })
        .await;
    check(r.map(|r| r.map(|_| ())), Code::NotFound, "c404");
    // still serving, nothing lost
    let units = node
        .units
        .list_units(pb::ListUnitsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .units;
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].status, pb::UnitStatus::Busy as i32);
    let open = node
        .incidents
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(open.len(), 1);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn camera_alerts_open_incidents_that_can_be_dispatched() {
    let mut node = TestNode::start().await;
    let camera = pb::Camera {
        vertical_fov_deg: Default::default(),
        last_seen_unix_ms: Default::default(),
        online: Default::default(),
        ptz_head: Default::default(),
        id: "cam-1".into(),
        name: "Esplanadi".into(),
        lon: 24.948,
        lat: 60.167,
        mount_height_m: 5.0,
        heading_deg: 180.0,
        fov_deg: 70.0,
        range_m: 60.0,
        ptz: false,
    };
    let created = node
        .cameras
        .register_camera(pb::RegisterCameraRequest {
            camera: Some(camera),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.created);
    let reply = node
        .cameras
        .post_alert(pb::PostAlertRequest {
            request_id: Default::default(),
            camera_id: "cam-1".into(),
            label: "fight".into(),
            confidence: 0.93,
            snapshot_uri: "https://nvr.example/1.jpg".into(),
            time_unix_ms: 0,
            object_id: String::new(),
            location: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.incident_created);
    let incident = node
        .incidents
        .get_incident(pb::GetIncidentRequest {
            id: reply.incident_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(incident.source, pb::IncidentSource::CameraAlert as i32);
    assert_eq!(incident.camera_ids, vec!["cam-1".to_string()]);
    assert_eq!(incident.priority, 1);
    let cams = node
        .cameras
        .list_cameras(pb::ListCamerasRequest {
            bbox: Some(pb::BoundingBox {
                west: 24.9,
                south: 60.1,
                east: 25.0,
                north: 60.2,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cams.cameras.len(), 1);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_serves_and_reflection_lists_the_services() {
    let node = TestNode::start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(node.channel.clone());
    for service in ["", "patrol.v1.UnitService", "patrol.v1.CommandRoom"] {
        let reply = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            reply.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    use tonic_reflection::pb::v1 as refl;
    let mut reflection =
        refl::server_reflection_client::ServerReflectionClient::new(node.channel.clone());
    let request = refl::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            refl::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(refl::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("unexpected reflection reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in [
        "patrol.v1.UnitService",
        "patrol.v1.CameraService",
        "patrol.v1.IncidentService",
        "patrol.v1.CommandRoom",
        "patrol.v1.TrackService",
        "patrol.v1.ZoneService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    // v1alpha too, for older tools (grpcurl, evans)
    use tonic_reflection::pb::v1alpha as alpha;
    let mut old =
        alpha::server_reflection_client::ServerReflectionClient::new(node.channel.clone());
    let request = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut replies = old
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    assert!(replies.message().await.unwrap().is_some());
    // metrics are served on the HTTP port
    let metrics = http_get(node.server.http_addr(), "/metrics").await;
    assert!(metrics.contains("patrol_"), "{metrics}");
    node.server.shutdown().await.unwrap();
}
