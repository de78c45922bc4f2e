//! Redis mode, against real `redis-server` processes on free loopback ports:
//! nothing acknowledged is lost when patrold or Redis is killed, several nodes
//! agree on one order, a unit is never assigned twice, and the same binaries
//! run against a 3-shard Redis Cluster.

use std::collections::HashMap;
use std::time::Duration;

use patrol_proto::v1 as pb;
use patrol_services::Config;
use patrol_tests::processes::{PatroldProcess, RedisCluster, RedisServer};
use patrol_tests::{Clients, TestNode, next_event, now_ms, ping, read_snapshot, test_config};
use prost::Message;
use tonic::Code;

const LON: f64 = 24.94;
const LAT: f64 = 60.17;

fn redis_config(urls: Vec<String>, cluster: bool) -> Config {
    let mut config = test_config();
    config.redis.urls = urls;
    config.redis.cluster = cluster;
    config.redis.response_timeout_ms = 1_000;
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

async fn create_incident(c: &mut Clients) -> pb::Incident {
    patrol_tests::create_incident(&mut c.incidents, LON, LAT).await
}

async fn unit(c: &mut Clients, id: &str) -> pb::Unit {
    c.units
        .get_unit(pb::GetUnitRequest { id: id.into() })
        .await
        .expect("get unit")
        .into_inner()
        .unit
        .unwrap()
}

async fn incident(c: &mut Clients, id: &str) -> pb::Incident {
    c.incidents
        .get_incident(pb::GetIncidentRequest { id: id.into() })
        .await
        .expect("get incident")
        .into_inner()
        .incident
        .unwrap()
}

/// Sends rounds of pings (one per unit, each round newer) until sending
/// fails or `rounds` are done; returns the fix time of every acknowledged
/// round, per unit.
async fn ingest(
    mut c: Clients,
    units: Vec<String>,
    start: i64,
    rounds: usize,
) -> HashMap<String, i64> {
    let mut acked = HashMap::new();
    for round in 0..rounds {
        let time = start + round as i64;
        let pings = units
            .iter()
            .enumerate()
            .map(|(i, u)| ping(u, time, LON + i as f64 * 1e-4, LAT + round as f64 * 1e-6))
            .collect();
        match report(&mut c, pings).await {
            Ok(reply) => {
                assert_eq!(reply.rejected, 0, "{reply:?}");
                for u in &units {
                    acked.insert(u.clone(), time);
                }
            }
            Err(_) => break,
        }
    }
    acked
}

/// Follows a Watch until it fails; returns the epoch and every seq seen.
async fn follow(mut c: Clients) -> (u64, Vec<u64>) {
    let mut stream = c
        .room
        .watch(pb::WatchRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let (_, end) = read_snapshot(&mut stream).await;
    let mut seqs = vec![end.seq];
    while let Ok(Some(event)) = stream.message().await {
        seqs.push(event.seq);
    }
    (end.log_epoch, seqs)
}

fn assert_consecutive(seqs: &[u64]) {
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "gap in {seqs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_patrold_mid_ingest_loses_nothing_acknowledged() {
    let redis = RedisServer::start();
    let node = PatroldProcess::start(&["--redis", &redis.url()]);
    let mut c = Clients::connect(&node.grpc_url).await;
    let units: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    for u in &units {
        register(&mut c, u).await;
    }
    let start = now_ms() - 100_000;
    report(
        &mut c,
        units.iter().map(|u| ping(u, start - 1, LON, LAT)).collect(),
    )
    .await
    .unwrap();
    let inc = create_incident(&mut c).await;
    c.incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: inc.id.clone(),
            unit_ids: vec!["u0".into(), "u1".into()],
            note: "go".into(),
            intercept: Default::default(),
        })
        .await
        .expect("dispatch");

    let watcher = tokio::spawn(follow(c.clone()));
    let ingest = tokio::spawn(ingest(c.clone(), units.clone(), start, 100_000));
    // Let ingest run, then pull the plug while batches are in flight.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    node.kill_9();
    let acked = ingest.await.unwrap();
    let (epoch, seqs) = watcher.await.unwrap();
    assert_eq!(acked.len(), units.len(), "some rounds were acknowledged");
    assert!(
        acked["u0"] < start + 99_999,
        "the kill came while ingest was still sending"
    );
    assert_consecutive(&seqs);
    let last_seq = *seqs.last().unwrap();
    assert!(
        seqs.len() > 5,
        "the watcher saw positions before the kill: {seqs:?}"
    );

    let node = PatroldProcess::start(&["--redis", &redis.url()]);
    let mut c = Clients::connect(&node.grpc_url).await;
    for u in &units {
        let fix = unit(&mut c, u).await.fix.expect("a fix");
        assert!(
            fix.fix_time_unix_ms >= acked[u],
            "{u}: acknowledged fix {} lost (have {})",
            acked[u],
            fix.fix_time_unix_ms
        );
    }
    let after = incident(&mut c, &inc.id).await;
    assert_eq!(after.status, pb::IncidentStatus::Dispatched as i32);
    assert_eq!(after.unit_ids, ["u0", "u1"]);
    for u in ["u0", "u1"] {
        let assigned = unit(&mut c, u).await;
        assert_eq!(assigned.status, pb::UnitStatus::Assigned as i32);
        assert_eq!(assigned.incident_id, inc.id);
    }

    // The watcher comes back with its last seq: no resync, no gap.
    let mut resumed = c
        .room
        .watch(pb::WatchRequest {
            resume_after_seq: last_seq,
            resume_epoch: epoch,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let time = now_ms();
    report(
        &mut c,
        units.iter().map(|u| ping(u, time, LON, LAT)).collect(),
    )
    .await
    .unwrap();
    let mut expected = last_seq + 1;
    let mut saw_new_positions = false;
    while !saw_new_positions {
        let event = next_event(&mut resumed).await;
        match event.kind.expect("kind") {
            pb::watch_event::Kind::Positions(batch) => {
                saw_new_positions = batch
                    .positions
                    .iter()
                    .any(|p| p.fix.as_ref().is_some_and(|f| f.fix_time_unix_ms == time));
            }
            pb::watch_event::Kind::Resync(r) => panic!("resumed watch was resynced: {r:?}"),
            _ => {}
        }
        assert_eq!(event.seq, expected, "resumed watch skipped a seq");
        expected += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_agree_on_order_and_share_incidents() {
    let redis = RedisServer::start();
    let a = TestNode::start_with(redis_config(vec![redis.url()], false)).await;
    let b = TestNode::start_with(redis_config(vec![redis.url()], false)).await;
    let mut ca = Clients::connect(&a.server.grpc_url()).await;
    let mut cb = Clients::connect(&b.server.grpc_url()).await;
    for i in 0..6 {
        register(if i % 2 == 0 { &mut ca } else { &mut cb }, &format!("u{i}")).await;
    }
    let mut wa = ca
        .room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut wb = cb
        .room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (_, end_a) = read_snapshot(&mut wa).await;
    let (_, end_b) = read_snapshot(&mut wb).await;
    assert_eq!(end_a.log_epoch, end_b.log_epoch, "one region, one epoch");

    // Pings to both nodes, interleaved, plus an incident made on A and
    // dispatched from B.
    let base = now_ms() - 10_000;
    for round in 0..20 {
        let c = if round % 2 == 0 { &mut ca } else { &mut cb };
        let pings = (0..6)
            .map(|i| {
                ping(
                    &format!("u{i}"),
                    base + round * 10,
                    LON + i as f64 * 1e-3,
                    LAT,
                )
            })
            .collect();
        report(c, pings).await.unwrap();
    }
    let inc = create_incident(&mut ca).await;
    let dispatched = cb
        .incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: inc.id.clone(),
            unit_ids: vec!["u3".into()],
            note: String::new(),
            intercept: Default::default(),
        })
        .await
        .expect("an incident made on A is dispatched from B")
        .into_inner();
    assert_eq!(dispatched.orders[0].unit_id, "u3");
    let seen_on_a = incident(&mut ca, &inc.id).await;
    assert_eq!(seen_on_a.unit_ids, ["u3"]);

    // Both streams, over the same seqs, carry byte-identical events.
    let from = end_a.seq.max(end_b.seq) + 1;
    let collect = async |stream: &mut tonic::Streaming<pb::WatchEvent>| {
        let mut events = Vec::new();
        loop {
            let event = next_event(stream).await;
            if event.seq < from {
                continue;
            }
            let incident_seen = matches!(&event.kind, Some(pb::watch_event::Kind::Incident(i)) if i.unit_ids == ["u3"]);
            events.push(event.encode_to_vec());
            if incident_seen {
                return events;
            }
        }
    };
    let on_a = collect(&mut wa).await;
    let on_b = collect(&mut wb).await;
    assert!(
        on_a.len() >= 4,
        "positions, incident, order: {}",
        on_a.len()
    );
    assert_eq!(
        on_a, on_b,
        "node A and node B stream the same events in the same order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_dispatch_of_one_unit_on_two_nodes_assigns_it_once() {
    let redis = RedisServer::start();
    let a = TestNode::start_with(redis_config(vec![redis.url()], false)).await;
    let b = TestNode::start_with(redis_config(vec![redis.url()], false)).await;
    let mut ca = Clients::connect(&a.server.grpc_url()).await;
    let mut cb = Clients::connect(&b.server.grpc_url()).await;
    register(&mut ca, "u1").await;
    report(&mut ca, vec![ping("u1", now_ms() - 1_000, LON, LAT)])
        .await
        .unwrap();
    for round in 0..10 {
        let first = create_incident(&mut ca).await;
        let second = create_incident(&mut cb).await;
        let dispatch = |mut c: Clients, incident_id: String| async move {
            c.incidents
                .dispatch(pb::DispatchRequest {
                    request_id: Default::default(),
                    incident_id,
                    unit_ids: vec!["u1".into()],
                    note: String::new(),
                    intercept: Default::default(),
                })
                .await
        };
        let (ra, rb) = tokio::join!(
            dispatch(ca.clone(), first.id.clone()),
            dispatch(cb.clone(), second.id.clone())
        );
        let (won, lost) = match (&ra, &rb) {
            (Ok(_), Err(e)) => (first.id.clone(), e.clone()),
            (Err(e), Ok(_)) => (second.id.clone(), e.clone()),
            other => panic!("round {round}: exactly one dispatch must win: {other:?}"),
        };
        assert_eq!(lost.code(), Code::FailedPrecondition, "{lost:?}");
        assert!(lost.message().contains("u1"), "{}", lost.message());
        for c in [&mut ca, &mut cb] {
            assert_eq!(unit(c, "u1").await.incident_id, won, "both nodes agree");
        }
        // Free the unit for the next round.
        for id in [&first.id, &second.id] {
            ca.incidents
                .update_incident(pb::UpdateIncidentRequest {
                    request_id: Default::default(),
                    id: id.clone(),
                    status: pb::IncidentStatus::Closed as i32,
                    note: String::new(),
                })
                .await
                .expect("close");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load_loses_nothing_acknowledged() {
    let mut redis = RedisServer::start();
    let node = TestNode::start_with(redis_config(vec![redis.url()], false)).await;
    let mut c = Clients::connect(&node.server.grpc_url()).await;
    let units: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    for u in &units {
        register(&mut c, u).await;
    }
    let start = now_ms() - 120_000;
    let mut acked: HashMap<String, i64> = HashMap::new();
    let mut refused = Vec::new();
    let mut round = 0i64;
    let mut send = async |c: &mut Clients,
                          acked: &mut HashMap<String, i64>,
                          refused: &mut Vec<tonic::Status>| {
        round += 1;
        let time = start + round * 10;
        let pings = units.iter().map(|u| ping(u, time, LON, LAT)).collect();
        match report(c, pings).await {
            Ok(_) => {
                for u in &units {
                    acked.insert(u.clone(), time);
                }
                true
            }
            Err(status) => {
                refused.push(status);
                false
            }
        }
    };
    for _ in 0..50 {
        assert!(send(&mut c, &mut acked, &mut refused).await, "{refused:?}");
    }
    redis.kill();
    for _ in 0..5 {
        send(&mut c, &mut acked, &mut refused).await;
    }
    assert!(
        !refused.is_empty(),
        "ingest must not claim success while Redis is down"
    );
    for status in &refused {
        assert!(
            matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
            "{status:?}"
        );
    }
    redis.restart();
    // Ingest recovers by itself: the connection comes back without a restart.
    let mut recovered = false;
    for _ in 0..200 {
        if send(&mut c, &mut acked, &mut refused).await {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "ingest never recovered: {:?}", refused.last());
    for _ in 0..20 {
        assert!(send(&mut c, &mut acked, &mut refused).await);
    }
    for u in &units {
        assert_eq!(
            unit(&mut c, u).await.fix.unwrap().fix_time_unix_ms,
            acked[u]
        );
    }
    // A fresh node built only from Redis holds every acknowledged fix too.
    let fresh = TestNode::start_with(redis_config(vec![redis.url()], false)).await;
    let mut cf = Clients::connect(&fresh.server.grpc_url()).await;
    for u in &units {
        assert_eq!(
            unit(&mut cf, u).await.fix.unwrap().fix_time_unix_ms,
            acked[u]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_trim_the_log_and_a_restart_rebuilds_from_them() {
    let redis = RedisServer::start();
    let mut config = redis_config(vec![redis.url()], false);
    config.redis.checkpoint_entries = 20;
    config.redis.keep_ms = 0;
    let node = TestNode::start_with(config.clone()).await;
    let mut c = Clients::connect(&node.server.grpc_url()).await;
    for i in 0..8 {
        register(&mut c, &format!("u{i}")).await;
    }
    let inc = create_incident(&mut c).await;
    let start = now_ms() - 60_000;
    for round in 0..200 {
        let pings = (0..8)
            .map(|i| {
                ping(
                    &format!("u{i}"),
                    start + round * 10,
                    LON + i as f64 * 1e-3,
                    LAT,
                )
            })
            .collect();
        report(&mut c, pings).await.unwrap();
    }
    c.incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: inc.id.clone(),
            unit_ids: vec!["u2".into()],
            note: String::new(),
            intercept: Default::default(),
        })
        .await
        .unwrap();
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Wait for a checkpoint that covers the dispatch (ticks run every 20 ms).
    let mut stored = None;
    for _ in 0..200 {
        let json: Option<String> = redis::cmd("HGET")
            .arg("patrol:{default}:units")
            .arg("u2")
            .query_async(&mut conn)
            .await
            .unwrap();
        if json.as_deref().is_some_and(|j| j.contains(&inc.id)) {
            stored = json;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stored.is_some(), "u2's assignment reached the units hash");
    let length: u64 = redis::cmd("XLEN")
        .arg("patrol:{default}:log")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        length < 150,
        "the log was trimmed behind the checkpoint: {length} entries"
    );
    let before: Vec<pb::Unit> = {
        let mut units = Vec::new();
        for i in 0..8 {
            units.push(unit(&mut c, &format!("u{i}")).await);
        }
        units
    };
    drop(c);
    node.server.shutdown().await.unwrap();

    let node = TestNode::start_with(config).await;
    let mut c = Clients::connect(&node.server.grpc_url()).await;
    for expected in before {
        assert_eq!(unit(&mut c, &expected.id).await, expected);
    }
    assert_eq!(incident(&mut c, &inc.id).await.unit_ids, ["u2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_binaries_run_on_a_three_shard_redis_cluster() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    let args_for = |region: &str| {
        vec![
            "--redis".to_string(),
            urls.join(","),
            "--redis-cluster".to_string(),
            "--region".to_string(),
            region.to_string(),
        ]
    };
    let helsinki_args = args_for("helsinki");
    let helsinki_args: Vec<&str> = helsinki_args.iter().map(String::as_str).collect();
    let a = PatroldProcess::start(&helsinki_args);
    let b = PatroldProcess::start(&helsinki_args);
    let espoo_args = args_for("espoo");
    let espoo_args: Vec<&str> = espoo_args.iter().map(String::as_str).collect();
    let espoo = PatroldProcess::start(&espoo_args);
    let mut ca = Clients::connect(&a.grpc_url).await;
    let mut cb = Clients::connect(&b.grpc_url).await;
    let mut ce = Clients::connect(&espoo.grpc_url).await;

    register(&mut ca, "h1").await;
    register(&mut ce, "e1").await;
    let time = now_ms() - 1_000;
    report(&mut cb, vec![ping("h1", time, LON, LAT)])
        .await
        .unwrap();
    let inc = create_incident(&mut cb).await;
    ca.incidents
        .dispatch(pb::DispatchRequest {
            request_id: Default::default(),
            incident_id: inc.id.clone(),
            unit_ids: vec!["h1".into()],
            note: String::new(),
            intercept: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(unit(&mut cb, "h1").await.incident_id, inc.id);
    // Regions are separate: espoo does not know helsinki's unit.
    let missing = ce
        .units
        .get_unit(pb::GetUnitRequest { id: "h1".into() })
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);

    // Each region's keys share one slot, so one shard holds the region.
    let owner = cluster.owner_of("patrol:{helsinki}:log");
    assert_eq!(cluster.owner_of("patrol:{helsinki}:meta"), owner);
    assert_eq!(cluster.owner_of("patrol:{helsinki}:units"), owner);
    let mut conn = cluster.nodes[owner]
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let length: u64 = redis::cmd("XLEN")
        .arg("patrol:{helsinki}:log")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        length >= 4,
        "helsinki's log lives on shard {owner}: {length}"
    );

    // kill -9 both helsinki nodes; a new one rebuilds the region.
    a.kill_9();
    b.kill_9();
    let a = PatroldProcess::start(&helsinki_args);
    let mut ca = Clients::connect(&a.grpc_url).await;
    let h1 = unit(&mut ca, "h1").await;
    assert_eq!(h1.incident_id, inc.id);
    assert_eq!(h1.fix.unwrap().fix_time_unix_ms, time);
}
