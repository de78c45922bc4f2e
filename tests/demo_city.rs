//! The demo city against a real patrold: Helsinki's cameras registered, units
//! moving on the street network, incidents raised, dispatched and closed,
//! everything seen on the command-room stream in order. The simulator runs at
//! 50x speed; the test waits for the events, not for a clock.

use std::collections::HashSet;
use std::time::Duration;

use patrol_proto::v1 as pb;
use patrol_tests::*;
use pb::watch_event::Kind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_city_comes_alive() {
    let node = TestNode::start().await;
    let mut room = node.room.clone();
    let mut stream = room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (_, end) = read_snapshot(&mut stream).await;

    let config = patrol_sim::DemoConfig {
        endpoint: node.server.grpc_url(),
        map_path: patrol_sim::default_map_path(),
        ping_interval: Duration::from_millis(100),
        incident_interval: Duration::from_millis(300),
        alert_interval: Duration::from_millis(300),
        report_period: Duration::from_millis(500),
        time_scale: 50.0,
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let city = tokio::spawn(patrol_sim::run(config, async {
        let _ = stopped.await;
    }));

    let mut cameras = HashSet::new();
    let mut moved = HashSet::new();
    let mut dispatched = HashSet::new();
    let mut closed = HashSet::new();
    let mut expected_seq = end.seq + 1;
    let mut events = 0u64;
    // Each event arrives within next_event's 10 s limit or the test fails; the
    // loop itself is bounded by count, not time.
    while !(cameras.len() == 221
        && moved.len() >= 30
        && closed.iter().any(|id| dispatched.contains(id)))
    {
        events += 1;
        assert!(
            events < 200_000,
            "the city did not come alive: {} cameras, {} moved, {} dispatched, {} closed",
            cameras.len(),
            moved.len(),
            dispatched.len(),
            closed.len()
        );
        let event = next_event(&mut stream).await;
        assert_eq!(event.seq, expected_seq, "gap in the stream");
        expected_seq += 1;
        match event.kind.unwrap() {
            Kind::Camera(c) => {
                cameras.insert(c.id);
            }
            Kind::Positions(batch) => moved.extend(batch.positions.into_iter().map(|p| p.unit_id)),
            Kind::Incident(i) if i.status == pb::IncidentStatus::Dispatched as i32 => {
                dispatched.insert(i.id);
            }
            Kind::Incident(i) if i.status == pb::IncidentStatus::Closed as i32 => {
                closed.insert(i.id);
            }
            _ => {}
        }
    }
    let _ = stop.send(());
    city.await.unwrap().unwrap();

    // The server agrees: every unit is registered, moving units have fixes.
    let mut units = node.units.clone();
    let listed = units
        .list_units(pb::ListUnitsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .units;
    assert_eq!(listed.len(), 42);
    assert!(listed.iter().filter(|u| u.fix.is_some()).count() >= 30);
    let kinds: HashSet<i32> = listed.iter().map(|u| u.kind).collect();
    assert_eq!(kinds.len(), 4, "cars, foot, e-bikes and motorcycles");
    node.server.shutdown().await.unwrap();
}
