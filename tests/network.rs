//! The street network over real gRPC: a node started with `--map` on any
//! OpenStreetMap extract (Helsinki's, or a made-up town) ranks units by
//! network ETA and sends orders with their route; terminals acknowledge
//! orders, an order nobody acknowledges is withdrawn on the stream and the
//! next unit sent; with Redis, nodes of one region must load the same map.

use std::path::PathBuf;
use std::time::Duration;

use patrol_proto::v1 as pb;
use patrol_tests::processes::RedisServer;
use patrol_tests::{TestNode, next_event, now_ms, ping, read_snapshot, test_config};
use pb::watch_event::Kind;

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(file)
}

async fn unit_at(node: &mut TestNode, id: &str, kind: pb::UnitKind, lon: f64, lat: f64) {
    node.register(id, kind).await;
    let reply = node
        .report(vec![vec![ping(id, now_ms() - 1_000, lon, lat)]])
        .await
        .unwrap();
    assert_eq!(reply.accepted, 1, "{reply:?}");
}

#[tokio::test]
async fn any_extract_works_ranked_by_network_eta_with_routes() {
    // Gridtown: a made-up grid town elsewhere (scripts/make-gridtown.py).
    let mut config = test_config();
    config.map = data("gridtown.osm.pbf");
    let mut node = TestNode::start_with(config).await;
    // Corners of the grid are 100 m apart; (10.75, 59.91) is its south-west.
    let dlon = 100.0 / (111_195.0 * 59.91_f64.to_radians().cos());
    let dlat = 100.0 / 111_195.0;
    unit_at(
        &mut node,
        "car-1",
        pb::UnitKind::Car,
        10.75 + 2.0 * dlon,
        59.91,
    )
    .await;
    unit_at(
        &mut node,
        "foot-1",
        pb::UnitKind::Foot,
        10.75,
        59.91 + 3.0 * dlat,
    )
    .await;
    let target = pb::LonLat {
        lon: 10.75 + 4.0 * dlon,
        lat: 59.91 + 4.0 * dlat,
    };
    let rec = node
        .incidents
        .recommend(pb::RecommendRequest {
            target: Some(pb::recommend_request::Target::Point(target)),
            k: 2,
            include_routes: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rec.units.len(), 2);
    for u in &rec.units {
        assert_eq!(u.eta_method, pb::EtaMethod::Network as i32, "{u:?}");
        assert!(u.route.len() >= 3, "a route over the grid: {:?}", u.route);
        assert!(u.route_m.unwrap() + 1.0 >= u.distance_m, "{u:?}");
        assert!(u.confidence.as_ref().unwrap().score > 0.0);
        assert!(u.reason.contains("street"), "{}", u.reason);
    }
    // Orders carry the route.
    let incident = node.create_incident(target.lon, target.lat).await;
    let reply = node
        .incidents
        .dispatch(pb::DispatchRequest {
            incident_id: incident.id,
            unit_ids: vec!["car-1".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let order = &reply.orders[0];
    assert_eq!(order.eta_method, pb::EtaMethod::Network as i32);
    assert!(order.route.len() >= 3);
    assert!(order.eta_s.unwrap() > 0.0);
    node.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unacknowledged_order_is_withdrawn_on_the_stream_and_the_next_unit_sent() {
    let mut config = test_config();
    config.map = data("helsinki.osm.pbf");
    config.dispatch.ack_timeout_ms = 300;
    let mut node = TestNode::start_with(config).await;
    unit_at(&mut node, "car-1", pb::UnitKind::Car, 24.9440, 60.1690).await;
    unit_at(&mut node, "car-2", pb::UnitKind::Car, 24.9470, 60.1700).await;
    unit_at(&mut node, "car-3", pb::UnitKind::Car, 24.9500, 60.1710).await;
    let mut room = node
        .room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    read_snapshot(&mut room).await;
    let incident = node.create_incident(24.9458, 60.1699).await;
    // car-3's terminal listens and acknowledges; car-1's is silent.
    let mut orders3 = node
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "car-3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut orders1 = node
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "car-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    node.incidents
        .dispatch(pb::DispatchRequest {
            incident_id: incident.id.clone(),
            unit_ids: vec!["car-1".into(), "car-3".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let first3 = tokio::time::timeout(Duration::from_secs(10), orders3.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let acked = node
        .units
        .acknowledge_order(pb::AcknowledgeOrderRequest {
            unit_id: "car-3".into(),
            order_id: first3.order_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert!(acked.acknowledged_unix_ms > 0);
    // car-1's order is withdrawn: RELEASED on its stream, a UnitAlert on the
    // command room's, and car-2 (the next car) is sent.
    let first1 = orders1.message().await.unwrap().unwrap();
    assert_eq!(first1.state, pb::OrderState::Active as i32);
    let released = tokio::time::timeout(Duration::from_secs(10), orders1.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(released.state, pb::OrderState::Released as i32);
    assert_eq!(released.order_id, first1.order_id);
    let mut alerted = false;
    let mut second_sent = false;
    for _ in 0..500 {
        match next_event(&mut room).await.kind.unwrap() {
            Kind::UnitAlert(a) => {
                assert_eq!(a.unit_id, "car-1");
                assert_eq!(a.kind, pb::UnitAlertKind::OrderNotAcknowledged as i32);
                alerted = true;
            }
            Kind::Order(o) if o.unit_id == "car-2" => second_sent = true,
            _ => {}
        }
        if alerted && second_sent {
            break;
        }
    }
    assert!(alerted && second_sent);
    let got = node
        .incidents
        .get_incident(pb::GetIncidentRequest {
            id: incident.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(got.withdrawn_unit_ids, ["car-1"]);
    let mut sent = got.unit_ids.clone();
    sent.sort();
    assert_eq!(sent, ["car-2", "car-3"], "the acknowledged car stays");
    node.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_one_region_must_route_over_the_same_map() {
    let redis = RedisServer::start();
    let mut config = test_config();
    config.redis.urls = vec![redis.url()];
    config.map = data("helsinki.osm.pbf");
    let a = TestNode::start_with(config.clone()).await;
    config.map = data("gridtown.osm.pbf");
    let err = match patrol_services::start(config.clone()).await {
        Ok(_) => panic!("a node with another map must not join the region"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains("routes over map"), "{err}");
    config.map = data("helsinki.osm.pbf");
    let b = patrol_services::start(config)
        .await
        .expect("the same map joins");
    b.shutdown().await.unwrap();
    a.server.shutdown().await.unwrap();
}
