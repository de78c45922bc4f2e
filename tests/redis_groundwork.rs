//! The command path with Redis on, against real `redis-server` processes:
//! invalid input never reaches the shared log, a ping flood that is being
//! refused leaves incidents and dispatch working (their own lane), a node that
//! fell behind the log's trim point rebuilds from the checkpoint instead of
//! skipping entries, and a retry through another node creates nothing twice.

use std::time::{Duration, Instant};

use bytes::Bytes;
use patrol_proto::v1 as pb;
use patrol_services::Config;
use patrol_services::durable::entry::{Body, LogEntry};
use patrol_tests::processes::{PatroldProcess, RedisServer};
use patrol_tests::{Clients, TestNode, http_get, now_ms, ping, test_config};
use prost::Message;
use tonic::Code;

const LON: f64 = 24.94;
const LAT: f64 = 60.17;

fn redis_config(url: String) -> Config {
    let mut config = test_config();
    config.redis.urls = vec![url];
    config.redis.response_timeout_ms = 2_000;
    config
}

async fn register(c: &mut Clients, id: &str) {
    c.units
        .register_unit(pb::RegisterUnitRequest {
            id: id.into(),
            call_sign: format!("CS {id}"),
            kind: pb::UnitKind::Car as i32,
            capabilities: vec![],
        })
        .await
        .expect("register");
}

async fn report(
    c: &mut Clients,
    pings: Vec<pb::Ping>,
) -> Result<pb::ReportPositionsResponse, tonic::Status> {
    c.units
        .report_positions(tokio_stream::iter([pb::ReportPositionsRequest { pings }]))
        .await
        .map(|r| r.into_inner())
}

fn new_incident(request_id: &str) -> pb::CreateIncidentRequest {
    pb::CreateIncidentRequest {
        r#type: "theft".into(),
        priority: 2,
        location: Some(pb::LonLat { lon: LON, lat: LAT }),
        source: pb::IncidentSource::Call as i32,
        description: String::new(),
        request_id: request_id.into(),
    }
}

/// One entry of a stream as `XRANGE` returns it: id, then field/value pairs.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

/// The log's entries other than ticks, decoded.
async fn commands_in_log(redis: &RedisServer) -> Vec<Body> {
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg("patrol:{default}:log")
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .flat_map(|(_, fields)| fields)
        .filter_map(|(_, value)| LogEntry::decode(Bytes::from(value)).ok()?.body)
        .filter(|body| !matches!(body, Body::Tick(_)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_alerts_and_dispatches_never_reach_the_log() {
    let redis = RedisServer::start();
    let node = TestNode::start_with(redis_config(redis.url())).await;
    let mut c = Clients::connect(&node.server.grpc_url()).await;
    register(&mut c, "car-1").await;
    report(&mut c, vec![ping("car-1", now_ms(), LON, LAT)])
        .await
        .unwrap();
    c.cameras
        .register_camera(pb::RegisterCameraRequest {
            camera: Some(pb::Camera {
                id: "cam-1".into(),
                lon: LON,
                lat: LAT,
                mount_height_m: 6.0,
                heading_deg: 0.0,
                fov_deg: 90.0,
                range_m: 50.0,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let incident = c
        .incidents
        .create_incident(new_incident(""))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let before = commands_in_log(&redis).await.len();
    assert_eq!(before, 4, "register, pings, camera, incident");

    let alert = pb::PostAlertRequest {
        camera_id: "cam-1".into(),
        time_unix_ms: 0,
        label: "fight".into(),
        confidence: 0.9,
        snapshot_uri: String::new(),
        request_id: String::new(),
        object_id: String::new(),
        location: None,
    };
    let bad_alerts = [
        pb::PostAlertRequest {
            confidence: 1.5,
            ..alert.clone()
        },
        pb::PostAlertRequest {
            label: String::new(),
            ..alert.clone()
        },
        pb::PostAlertRequest {
            camera_id: String::new(),
            ..alert.clone()
        },
        pb::PostAlertRequest {
            time_unix_ms: now_ms() + 3_600_000,
            ..alert.clone()
        },
    ];
    for bad in bad_alerts {
        let err = c.cameras.post_alert(bad.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
    }
    let dispatch = pb::DispatchRequest {
        incident_id: incident.id.clone(),
        unit_ids: vec!["car-1".into()],
        note: String::new(),
        request_id: String::new(),
        intercept: Default::default(),
    };
    let bad_dispatches = [
        pb::DispatchRequest {
            unit_ids: vec![],
            ..dispatch.clone()
        },
        pb::DispatchRequest {
            unit_ids: vec!["car-1".into(), "car-1".into()],
            ..dispatch.clone()
        },
        pb::DispatchRequest {
            incident_id: String::new(),
            ..dispatch.clone()
        },
        pb::DispatchRequest {
            note: "n".repeat(10_000),
            ..dispatch.clone()
        },
        pb::DispatchRequest {
            request_id: "\u{7}".into(),
            ..dispatch.clone()
        },
    ];
    for bad in bad_dispatches {
        let err = c.incidents.dispatch(bad.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    let err = c
        .units
        .update_status(pb::UpdateStatusRequest {
            unit_id: "car-1".into(),
            status: pb::UnitStatus::Assigned as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut bad_incident = new_incident("");
    bad_incident.priority = 9;
    let err = c.incidents.create_incident(bad_incident).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let bad_pings = report(&mut c, vec![ping("car-1", -5, f64::NAN, LAT)])
        .await
        .unwrap();
    assert_eq!(bad_pings.rejected, 1);
    assert_eq!(
        commands_in_log(&redis).await.len(),
        before,
        "nothing invalid was appended"
    );

    // The valid ones are, and work.
    c.cameras.post_alert(alert).await.unwrap();
    c.incidents.dispatch(dispatch).await.unwrap();
    let after = commands_in_log(&redis).await;
    assert_eq!(after.len(), before + 2);
    assert!(matches!(after[before], Body::Command(_)));
    node.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_ping_flood_does_not_stop_incidents_or_dispatch() {
    let redis = RedisServer::start();
    let mut config = redis_config(redis.url());
    // A routine lane so small that a flood is refused within a millisecond.
    config.redis.max_in_flight = 2;
    config.redis.queue_wait_ms = 1;
    let node = TestNode::start_with(config).await;
    let mut c = Clients::connect(&node.server.grpc_url()).await;
    let responders: Vec<String> = (0..15).map(|i| format!("resp-{i}")).collect();
    for id in &responders {
        register(&mut c, id).await;
    }
    let fixes = responders
        .iter()
        .map(|id| ping(id, now_ms(), LON, LAT))
        .collect();
    report(&mut c, fixes).await.unwrap();
    let flooders: Vec<String> = (0..40).map(|i| format!("flood-{i}")).collect();
    for id in &flooders {
        register(&mut c, id).await;
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for task in 0..16 {
        let (mut c, stop, ids) = (c.clone(), stop.clone(), flooders.clone());
        flood.push(tokio::spawn(async move {
            let (mut accepted, mut refused) = (0u64, 0u64);
            let mut round = 0i64;
            let start = now_ms() - 600_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let pings = ids
                    .iter()
                    .map(|id| ping(id, start + round * 16 + task, LON + 1e-4, LAT))
                    .collect();
                match report(&mut c, pings).await {
                    Ok(reply) => accepted += reply.accepted,
                    Err(status) if status.code() == Code::ResourceExhausted => refused += 1,
                    Err(status) => panic!("unexpected {status:?}"),
                }
            }
            (accepted, refused)
        }));
    }
    // Let the flood fill the routine lane first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, unit) in responders.iter().enumerate() {
        let incident = c
            .incidents
            .create_incident(new_incident(""))
            .await
            .unwrap_or_else(|e| panic!("incident {i} during the flood: {e:?}"))
            .into_inner()
            .incident
            .unwrap();
        c.incidents
            .dispatch(pb::DispatchRequest {
                incident_id: incident.id,
                unit_ids: vec![unit.clone()],
                note: String::new(),
                request_id: String::new(),
                intercept: Default::default(),
            })
            .await
            .unwrap_or_else(|e| panic!("dispatch {i} during the flood: {e:?}"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut accepted, mut refused) = (0, 0);
    for task in flood {
        let (a, r) = task.await.unwrap();
        accepted += a;
        refused += r;
    }
    assert!(
        refused > 0,
        "the flood was being refused while incidents were created (accepted {accepted})"
    );
    node.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_through_another_node_creates_one_incident() {
    let redis = RedisServer::start();
    let a = TestNode::start_with(redis_config(redis.url())).await;
    let b = TestNode::start_with(redis_config(redis.url())).await;
    let mut ca = Clients::connect(&a.server.grpc_url()).await;
    let mut cb = Clients::connect(&b.server.grpc_url()).await;
    let first = ca
        .incidents
        .create_incident(new_incident("call-42"))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let retry = cb
        .incidents
        .create_incident(new_incident("call-42"))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(retry.id, first.id);
    for c in [&mut ca, &mut cb] {
        let open = c
            .incidents
            .list_incidents(pb::ListIncidentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .incidents;
        assert_eq!(open.len(), 1, "{open:?}");
    }
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

/// The stream id of the newest log entry.
async fn last_entry_id(conn: &mut redis::aio::MultiplexedConnection) -> (u64, u64) {
    let newest: Vec<StreamEntry> = redis::cmd("XREVRANGE")
        .arg("patrol:{default}:log")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .unwrap();
    parse_id(&newest[0].0)
}

fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap();
    (ms.parse().unwrap(), seq.parse().unwrap())
}

/// Sends `n` rounds of pings (one batch, one log entry, each), numbered from
/// `from`; returns the next round's number.
async fn send_rounds(c: &mut Clients, units: &[String], start: i64, from: i64, n: i64) -> i64 {
    for round in from..from + n {
        let pings = units
            .iter()
            .map(|id| ping(id, start + round, LON + round as f64 * 1e-6, LAT))
            .collect();
        report(c, pings).await.unwrap();
    }
    from + n
}

async fn get_unit(c: &mut Clients, id: &str) -> Result<pb::Unit, tonic::Status> {
    c.units
        .get_unit(pb::GetUnitRequest { id: id.into() })
        .await
        .map(|r| r.into_inner().unit.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_trim_point_rebuilds_from_the_checkpoint() {
    let redis = RedisServer::start();
    let mut config = redis_config(redis.url());
    config.redis.checkpoint_entries = 10;
    config.redis.checkpoint_interval_ms = 50;
    config.redis.keep_ms = 0;
    let a = TestNode::start_with(config.clone()).await;
    let mut ca = Clients::connect(&a.server.grpc_url()).await;
    let units: Vec<String> = (0..5).map(|i| format!("u{i}")).collect();
    for id in &units {
        register(&mut ca, id).await;
    }
    let start = now_ms() - 600_000;
    let fixes = units.iter().map(|id| ping(id, start, LON, LAT)).collect();
    report(&mut ca, fixes).await.unwrap();

    // B: a patrold process on the same region, with the same settings.
    let dir = std::env::temp_dir().join(format!("patrol-lag-{}-{}", std::process::id(), now_ms()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("patrold.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\n[redis]\nurls = [\"{}\"]\nresponse_timeout_ms = 2000\ncheckpoint_entries = 10\ncheckpoint_interval_ms = 50\nkeep_ms = 0\n",
            redis.url()
        ),
    )
    .unwrap();
    let b = PatroldProcess::start(&["--config", file.to_str().unwrap()]);
    let mut cb = Clients::connect(&b.grpc_url).await;
    assert!(
        get_unit(&mut cb, "u4").await.is_ok(),
        "B caught up at start"
    );

    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    b.pause();
    // While B is frozen: a new unit and an incident B can only learn from
    // entries that will be trimmed (far enough on that a read B had in flight
    // when it froze, at most 256 entries, cannot hold them), then enough
    // traffic to trim past them.
    let next = send_rounds(&mut ca, &units, start, 1, 300).await;
    register(&mut ca, "late").await;
    let incident = ca
        .incidents
        .create_incident(new_incident(""))
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let next = send_rounds(&mut ca, &units, start, next, 500).await;
    let beyond = last_entry_id(&mut conn).await;
    send_rounds(&mut ca, &units, start, next, 500).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trimmed: Option<String> = redis::cmd("HGET")
            .arg("patrol:{default}:meta")
            .arg("trimmed")
            .query_async(&mut conn)
            .await
            .unwrap();
        if trimmed.as_deref().map(parse_id).is_some_and(|t| t > beyond) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log was not trimmed past B: {trimmed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.resume();

    // B rebuilds and then agrees with A on everything.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut same = get_unit(&mut cb, "late").await.is_ok();
        for id in &units {
            same &= get_unit(&mut cb, id).await.ok() == get_unit(&mut ca, id).await.ok();
        }
        if same {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never caught up with A; B's log:\n{}",
            b.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let on_b = cb
        .incidents
        .get_incident(pb::GetIncidentRequest {
            id: incident.id.clone(),
        })
        .await
        .expect("B knows the incident created while it was frozen")
        .into_inner()
        .incident
        .unwrap();
    assert_eq!(on_b.id, incident.id);
    let metrics = http_get(b.http_addr(), "/metrics").await;
    let reloads = metrics
        .lines()
        .find(|l| l.starts_with("patrol_log_reloads_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(reloads >= 1.0, "B counted its rebuild:\n{metrics}");
    a.server.shutdown().await.unwrap();
    drop(b);
    let _ = std::fs::remove_dir_all(dir);
}
