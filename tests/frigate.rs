//! The Frigate bridge against a real Mosquitto broker: Frigate events
//! (new, updates, end) published on `frigate/events` become one alert per
//! object on a mapped camera once it reaches the score, and one incident per
//! object; unmapped cameras, low scores and garbage make nothing, the server
//! keeps serving, and the bridge comes back after the broker restarts.

use std::collections::BTreeMap;
use std::time::Duration;

use patrol_proto::v1 as pb;
use patrol_services::config::FrigateConfig;
use patrol_tests::processes::MosquittoServer;
use patrol_tests::{TestNode, http_get, next_event, now_ms, read_snapshot, test_config};
use pb::watch_event::Kind;
use rumqttc::{AsyncClient, MqttOptions, QoS};

const TOPIC: &str = "frigate/events";

fn camera(id: &str, lon: f64) -> pb::Camera {
    pb::Camera {
        id: id.into(),
        name: format!("camera {id}"),
        lon,
        lat: 60.1699,
        mount_height_m: 6.0,
        heading_deg: 90.0,
        fov_deg: 60.0,
        range_m: 80.0,
        ..Default::default()
    }
}

/// One Frigate event message, shaped as Frigate sends it (with fields the
/// bridge does not read).
fn frigate_event(kind: &str, id: &str, camera: &str, label: &str, score: f64, top: f64) -> String {
    let start = (now_ms() - 5_000) as f64 / 1000.0;
    let object = |score: f64, top: f64| {
        serde_json::json!({
            "id": id, "camera": camera, "frame_time": start + 1.0,
            "snapshot_time": start + 0.5, "label": label, "sub_label": null,
            "top_score": top, "false_positive": false, "start_time": start,
            "end_time": if kind == "end" { serde_json::json!(start + 3.0) } else { serde_json::Value::Null },
            "score": score, "box": [424, 500, 536, 712], "area": 23744,
            "ratio": 0.528, "region": [264, 450, 667, 853],
            "current_zones": ["driveway"], "entered_zones": ["yard", "driveway"],
            "thumbnail": null, "has_snapshot": true, "has_clip": true,
            "stationary": false, "motionless_count": 0, "position_changes": 2,
            "attributes": {}, "current_attributes": []
        })
    };
    serde_json::json!({
        "type": kind,
        "before": object(score * 0.9, top * 0.9),
        "after": object(score, top),
    })
    .to_string()
}

/// A publishing MQTT client (its event loop polled in the background).
async fn publisher(broker: &MosquittoServer) -> AsyncClient {
    let mut options = MqttOptions::new("frigate-test-publisher", "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    client
}

async fn publish(client: &AsyncClient, payload: impl Into<Vec<u8>>) {
    client
        .publish(TOPIC, QoS::AtLeastOnce, false, payload.into())
        .await
        .expect("queued for the broker");
}

/// The bridge's event counters, by result, from `/metrics`.
async fn frigate_counts(node: &TestNode) -> BTreeMap<String, u64> {
    let body = http_get(node.server.http_addr(), "/metrics").await;
    body.lines()
        .filter_map(|line| line.strip_prefix("patrol_frigate_events_total{result=\""))
        .filter_map(|rest| {
            let (result, value) = rest.split_once("\"} ")?;
            Some((result.to_string(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

fn count(counts: &BTreeMap<String, u64>, result: &str) -> u64 {
    counts.get(result).copied().unwrap_or(0)
}

/// Polls `/metrics` until the bridge has counted `n` events of `result`
/// (bounded: 30 s).
async fn wait_for_count(node: &TestNode, result: &str, n: u64) -> BTreeMap<String, u64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let counts = frigate_counts(node).await;
        if count(&counts, result) >= n {
            return counts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bridge counted {result} {} times, waiting for {n}: {counts:?}",
            count(&counts, result)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes probes (a type the bridge only counts) until the bridge has
/// counted `n` of them: it is then subscribed.
async fn probe_until(node: &TestNode, client: &AsyncClient, n: u64) -> BTreeMap<String, u64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        publish(client, r#"{"type":"probe"}"#).await;
        let counts = frigate_counts(node).await;
        if count(&counts, "other_type") >= n {
            return counts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bridge never counted probe {n}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn camera_incidents(node: &mut TestNode) -> Vec<pb::Incident> {
    let mut incidents = node
        .incidents
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .expect("the server still serves")
        .into_inner()
        .incidents;
    incidents.retain(|i| i.source == pb::IncidentSource::CameraAlert as i32);
    incidents.sort_by(|a, b| a.camera_ids.cmp(&b.camera_ids));
    incidents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frigate_objects_become_one_alert_and_one_incident_each() {
    let mut broker = MosquittoServer::start();
    let mut config = test_config();
    config.frigate = FrigateConfig {
        mqtt_url: broker.url(),
        client_id: "patrold-frigate-test".into(),
        cameras: [
            ("front_door".to_string(), "cam-1".to_string()),
            ("backyard".to_string(), "cam-2".to_string()),
        ]
        .into(),
        label_map: [("person".to_string(), "intrusion".to_string())].into(),
        min_score: 0.7,
        reconnect_min_ms: 50,
        reconnect_max_ms: 500,
        ..FrigateConfig::default()
    };
    let mut node = TestNode::start_with(config).await;
    for (id, lon) in [("cam-1", 24.9458), ("cam-2", 24.9500), ("cam-3", 24.9600)] {
        node.cameras
            .register_camera(pb::RegisterCameraRequest {
                camera: Some(camera(id, lon)),
            })
            .await
            .unwrap();
    }
    let mut watch = node
        .room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    read_snapshot(&mut watch).await;

    let client = publisher(&broker).await;
    probe_until(&node, &client, 1).await;

    // Object A on a mapped camera: below the score when new, then it
    // crosses, then more updates and its end.
    let a = "1733300000.100000-aaaaaa";
    publish(
        &client,
        frigate_event("new", a, "front_door", "person", 0.55, 0.55),
    )
    .await;
    publish(
        &client,
        frigate_event("update", a, "front_door", "person", 0.74, 0.74),
    )
    .await;
    publish(
        &client,
        frigate_event("update", a, "front_door", "person", 0.65, 0.81),
    )
    .await;
    publish(
        &client,
        frigate_event("update", a, "front_door", "person", 0.90, 0.90),
    )
    .await;
    publish(
        &client,
        frigate_event("end", a, "front_door", "person", 0.88, 0.90),
    )
    .await;
    // An unmapped camera, and a low-scoring object on a mapped one.
    let unmapped = "1733300000.200000-cccccc";
    publish(
        &client,
        frigate_event("new", unmapped, "garage", "person", 0.95, 0.95),
    )
    .await;
    publish(
        &client,
        frigate_event("update", unmapped, "garage", "person", 0.97, 0.97),
    )
    .await;
    let low = "1733300000.300000-dddddd";
    publish(
        &client,
        frigate_event("new", low, "backyard", "person", 0.40, 0.40),
    )
    .await;
    publish(
        &client,
        frigate_event("update", low, "backyard", "person", 0.50, 0.62),
    )
    .await;
    publish(
        &client,
        frigate_event("end", low, "backyard", "person", 0.50, 0.62),
    )
    .await;
    // Garbage: not JSON, and JSON of the wrong shape.
    publish(&client, "{not json at all").await;
    publish(&client, r#"{"type":"new","after":{"id":17}}"#).await;
    // Object B, after the garbage, on another camera: straight above.
    let b = "1733300000.400000-bbbbbb";
    publish(
        &client,
        frigate_event("new", b, "backyard", "person", 0.93, 0.93),
    )
    .await;
    publish(
        &client,
        frigate_event("update", b, "backyard", "person", 0.95, 0.95),
    )
    .await;
    publish(
        &client,
        frigate_event("end", b, "backyard", "person", 0.95, 0.95),
    )
    .await;

    // B's end is the last message: once it is counted, all are handled.
    let counts = wait_for_count(&node, "ended", 3).await;
    assert_eq!(count(&counts, "posted"), 2, "{counts:?}");
    assert_eq!(count(&counts, "duplicate"), 3, "{counts:?}");
    assert_eq!(count(&counts, "ended"), 3, "{counts:?}");
    assert_eq!(count(&counts, "unmapped_camera"), 2, "{counts:?}");
    assert_eq!(count(&counts, "below_score"), 3, "{counts:?}");
    assert_eq!(count(&counts, "bad_json"), 2, "{counts:?}");

    let incidents = camera_incidents(&mut node).await;
    assert_eq!(
        incidents.len(),
        2,
        "one incident per object: {incidents:#?}"
    );
    let (inc_a, inc_b) = (&incidents[0], &incidents[1]);
    assert_eq!(inc_a.camera_ids, ["cam-1"]);
    assert_eq!(inc_b.camera_ids, ["cam-2"]);
    for inc in [inc_a, inc_b] {
        assert_eq!(inc.r#type, "intrusion");
        assert_eq!(inc.alert_ids.len(), 1, "one alert per object: {inc:#?}");
    }

    // The alerts as the command room saw them: the Frigate ids as objects,
    // Frigate's top score, start time and snapshot.
    let mut alerts = BTreeMap::new();
    while alerts.len() < 2 {
        if let Some(Kind::Alert(alert)) = next_event(&mut watch).await.kind {
            alerts.insert(alert.object_id.clone(), alert);
        }
    }
    let alert_a = &alerts[a];
    assert_eq!(alert_a.camera_id, "cam-1");
    assert_eq!(alert_a.label, "intrusion");
    assert_eq!(alert_a.incident_id, inc_a.id);
    assert!((alert_a.confidence - 0.74).abs() < 1e-6, "{alert_a:?}");
    assert_eq!(
        alert_a.snapshot_uri,
        format!("frigate://front_door/{a}/snapshot.jpg")
    );
    assert!(alert_a.time_unix_ms > 0 && alert_a.time_unix_ms <= now_ms());
    assert_eq!(alerts[b].incident_id, inc_b.id);

    // The broker goes away and comes back: the bridge reconnects and
    // subscribes again; a new object on cam-1 joins A's open incident
    // (same camera, same label) and is posted once.
    broker.kill();
    broker.restart();
    let probes = count(&frigate_counts(&node).await, "other_type");
    probe_until(&node, &client, probes + 1).await;
    let c = "1733300000.500000-eeeeee";
    publish(
        &client,
        frigate_event("new", c, "front_door", "person", 0.99, 0.99),
    )
    .await;
    publish(
        &client,
        frigate_event("update", c, "front_door", "person", 0.99, 0.99),
    )
    .await;
    let counts = wait_for_count(&node, "posted", 3).await;
    assert_eq!(count(&counts, "rejected"), 0, "{counts:?}");
    let incidents = camera_incidents(&mut node).await;
    assert_eq!(incidents.len(), 2, "{incidents:#?}");
    assert_eq!(incidents[0].alert_ids.len(), 2, "{:#?}", incidents[0]);

    node.server.shutdown().await.unwrap();
}
