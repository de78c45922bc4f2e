//! Hostile clients against a real node: malformed protobuf on every kind of
//! RPC, truncated streams, clients that vanish mid-stream (the stream or the
//! whole connection), and a command-room client that never reads while the
//! node publishes. After each attack the node still serves, and once the
//! clients are gone what it holds for them (`Hub::residue`: Watch
//! subscribers, their queued events, order routes) and the runtime's alive
//! tasks (each HTTP/2 stream and connection is a task, so open
//! ReportPositions streams show there) are back at their baseline.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use patrol_proto::v1 as pb;
use patrol_services::residue::Residue;
use patrol_tests::{TestNode, now_ms, ping, test_config};
use prost::Message;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

/// Sends and receives message bodies as they are: any bytes at all.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

async fn raw_unary(
    channel: &Channel,
    path: &'static str,
    body: Bytes,
) -> Result<Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    grpc.unary(
        tonic::Request::new(body),
        PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(|r| r.into_inner())
}

async fn raw_client_stream(
    channel: &Channel,
    path: &'static str,
    bodies: Vec<Bytes>,
) -> Result<Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    grpc.client_streaming(
        tonic::Request::new(tokio_stream::iter(bodies)),
        PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(|r| r.into_inner())
}

/// Deterministic garbage (xorshift), so a failure can be replayed.
fn garbage(seed: u64, len: usize) -> Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Bodies that are not the message they claim to be.
fn malformed(valid: &[u8]) -> Vec<Bytes> {
    let mut bodies = vec![
        Bytes::from_static(&[0xff; 16]),
        // a field 1 string claiming 4 GiB
        Bytes::from_static(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, b'x']),
        // a varint that never ends
        Bytes::from_static(&[
            0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]),
        // field 0, and an end-group with no start
        Bytes::from_static(&[0x00, 0x01]),
        Bytes::from_static(&[0x0c]),
        // invalid UTF-8 in a string field
        Bytes::from_static(&[0x0a, 0x02, 0xc3, 0x28]),
        // field 11, length-delimited, again and again, each claiming more
        // than is left
        Bytes::from(
            std::iter::repeat_n([0x5a_u8, 0x7f], 200)
                .flatten()
                .collect::<Vec<_>>(),
        ),
    ];
    for cut in [1, valid.len() / 2, valid.len().saturating_sub(1)] {
        bodies.push(Bytes::copy_from_slice(&valid[..cut.min(valid.len())]));
    }
    for seed in 1..=24 {
        bodies.push(garbage(seed, (seed as usize * 37) % 300));
    }
    bodies
}

/// The runtime's alive tasks (the node and this test share the runtime).
fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Polls until the node holds nothing more for clients than `baseline` and
/// the runtime runs no more tasks than `baseline_tasks`; fails after 20 s.
async fn back_to_baseline(node: &TestNode, baseline: Residue, baseline_tasks: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let residue = node.server.hub().residue();
        let now_tasks = tasks();
        let back = residue.watch_subscribers <= baseline.watch_subscribers
            && residue.watch_queued <= baseline.watch_queued
            && residue.order_routes <= baseline.order_routes
            && now_tasks <= baseline_tasks;
        if back {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "residue after the clients left: {residue:?} and {now_tasks} tasks, baseline {baseline:?} and {baseline_tasks} tasks"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node answers an ordinary call.
async fn still_serves(node: &mut TestNode) {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!(
        "ok-{}",
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    node.register(&id, pb::UnitKind::Car).await;
    let reply = node
        .report(vec![vec![ping(&id, now_ms(), 24.94, 60.17)]])
        .await
        .expect("a normal ReportPositions");
    assert_eq!(reply.accepted, 1);
}

/// A node after one call of every kind, so lazily started parts are running.
async fn settled_node(config: patrol_services::Config) -> (TestNode, Residue, usize) {
    let mut node = TestNode::start_with(config).await;
    still_serves(&mut node).await;
    let (watch, _) = node.watch_all().await;
    drop(watch);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let baseline = node.server.hub().residue();
    assert_eq!(baseline.watch_subscribers, 0);
    assert_eq!(baseline.order_routes, 0);
    (node, baseline, tasks())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_refused_and_the_node_keeps_serving() {
    let (mut node, baseline, baseline_tasks) = settled_node(test_config()).await;
    let channel = node.channel.clone();

    let alert = pb::PostAlertRequest {
        camera_id: "cam-1".into(),
        label: "intrusion".into(),
        confidence: 0.9,
        ..Default::default()
    }
    .encode_to_vec();
    let zone = pb::PutZoneRequest {
        geojson:
            r#"{"type":"Polygon","coordinates":[[[24.9,60.1],[25,60.1],[25,60.2],[24.9,60.1]]]}"#
                .into(),
        id: "z".into(),
        name: "z".into(),
    }
    .encode_to_vec();
    let unit = pb::RegisterUnitRequest {
        id: "u".into(),
        kind: pb::UnitKind::Car as i32,
        ..Default::default()
    }
    .encode_to_vec();
    let pings = pb::ReportPositionsRequest {
        pings: vec![ping("u", now_ms(), 24.94, 60.17)],
    }
    .encode_to_vec();

    let unary: [(&'static str, &[u8]); 5] = [
        ("/patrol.v1.CameraService/PostAlert", &alert),
        ("/patrol.v1.ZoneService/PutZone", &zone),
        ("/patrol.v1.UnitService/RegisterUnit", &unit),
        ("/patrol.v1.IncidentService/CreateIncident", &[]),
        ("/patrol.v1.CameraService/RegisterCamera", &[]),
    ];
    let mut refused = 0;
    for (path, valid) in unary {
        for body in malformed(valid) {
            match raw_unary(&channel, path, body.clone()).await {
                // Garbage that happens to decode is an ordinary request.
                Ok(_) => {}
                Err(status) => {
                    refused += 1;
                    assert!(
                        matches!(
                            status.code(),
                            Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition
                        ),
                        "{path} {body:02x?}: {status:?}"
                    );
                    assert!(
                        status.message().len() < 2_000,
                        "{path}: long message {} bytes",
                        status.message().len()
                    );
                }
            }
        }
        still_serves(&mut node).await;
    }
    assert!(refused > 50, "only {refused} refusals");

    // ReportPositions: a bad batch ends the stream; bad pings in a good
    // batch are refused one by one.
    for body in malformed(&pings) {
        let first = Bytes::from(pings.clone());
        match raw_client_stream(
            &channel,
            "/patrol.v1.UnitService/ReportPositions",
            vec![first, body],
        )
        .await
        {
            Ok(reply) => {
                pb::ReportPositionsResponse::decode(reply).expect("a reply");
            }
            Err(status) => assert!(matches!(status.code(), Code::InvalidArgument), "{status:?}"),
        }
    }
    still_serves(&mut node).await;
    // Not a protobuf batch at all, but field 1 of each is garbage: one
    // rejection per ping, the stream goes on.
    let mut batch = Vec::new();
    for seed in 1..=50 {
        prost::encoding::bytes::encode(1, &garbage(seed, 20), &mut batch);
    }
    let reply = raw_client_stream(
        &channel,
        "/patrol.v1.UnitService/ReportPositions",
        vec![Bytes::from(batch), Bytes::from(pings.clone())],
    )
    .await
    .expect("garbage pings are refused one by one");
    let reply = pb::ReportPositionsResponse::decode(reply).unwrap();
    assert_eq!(reply.rejected + reply.accepted + reply.duplicates, 51);
    assert!(reply.rejected >= 50);

    still_serves(&mut node).await;
    back_to_baseline(&node, baseline, baseline_tasks).await;
    node.server.shutdown().await.unwrap();
}

/// An HTTP/2 connection of its own to the node, for frames tonic never sends.
async fn h2_connect(
    addr: std::net::SocketAddr,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}

fn grpc_request(addr: std::net::SocketAddr, path: &str) -> http::Request<()> {
    http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// A gRPC frame header claiming `len` bytes.
fn frame_header(len: u32) -> Vec<u8> {
    let mut h = vec![0u8];
    h.extend(len.to_be_bytes());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_vanishing_streams_leave_no_residue() {
    let (mut node, baseline, baseline_tasks) = settled_node(test_config()).await;
    node.register("car-1", pb::UnitKind::Car).await;
    let addr = node.server.grpc_addr();
    let good = pb::ReportPositionsRequest {
        pings: vec![ping("car-1", now_ms(), 24.94, 60.17)],
    }
    .encode_to_vec();

    // Truncated: a frame that claims 1000 bytes, 10 sent, then the end of
    // the stream. The call fails; nothing waits for the rest.
    let (client, connection) = h2_connect(addr).await;
    let mut client = client.ready().await.unwrap();
    let (response, mut send) = client
        .send_request(
            grpc_request(addr, "/patrol.v1.UnitService/ReportPositions"),
            false,
        )
        .unwrap();
    let mut body = frame_header(good.len() as u32);
    body.extend(&good);
    body.extend(frame_header(1000));
    body.extend([0x0a; 10]);
    send.send_data(Bytes::from(body), true).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("an answer to a truncated stream")
        .unwrap();
    let (parts, mut body) = response.into_parts();
    let mut status = parts.headers.get("grpc-status").cloned();
    while let Some(chunk) = body.data().await {
        let _ = chunk;
    }
    if let Ok(Some(trailers)) = body.trailers().await {
        status = status.or(trailers.get("grpc-status").cloned());
    }
    let status = status.expect("a grpc-status");
    assert_ne!(
        status.as_bytes(),
        b"0",
        "a truncated stream is not a success"
    );

    // Vanishing: a frame header and half a message, then the connection
    // is dropped without ending the stream.
    let mut client = client.ready().await.unwrap();
    let (response, mut send) = client
        .send_request(
            grpc_request(addr, "/patrol.v1.UnitService/ReportPositions"),
            false,
        )
        .unwrap();
    let mut half = frame_header(good.len() as u32);
    half.extend(&good[..good.len() / 2]);
    send.send_data(Bytes::from(half), false).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop((response, send, client));
    connection.abort();

    // A ReceiveOrders stream on a connection that is then dropped whole,
    // and one on the shared connection whose stream is dropped.
    let own = Endpoint::from_shared(node.server.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut units = pb::unit_service_client::UnitServiceClient::new(own.clone());
    let orders = units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "car-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    node.register("car-2", pb::UnitKind::Car).await;
    let orders_2 = node
        .units
        .receive_orders(pb::ReceiveOrdersRequest {
            unit_id: "car-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while node.server.hub().residue().order_routes < 2 {
        assert!(tokio::time::Instant::now() < deadline, "routes open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Watch: one read to its snapshot then dropped, one never read, one on
    // the dropped connection.
    let (read, _) = node.watch_all().await;
    let unread = node
        .room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut room = pb::command_room_client::CommandRoomClient::new(own.clone());
    let on_own = room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    // A ReportPositions stream that sent one batch and then vanishes.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::ReportPositionsRequest {
        pings: vec![ping("car-1", now_ms(), 24.95, 60.17)],
    })
    .await
    .unwrap();
    let mut units_2 = units.clone();
    let pending = tokio::spawn(async move {
        units_2
            .report_positions(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while node.server.hub().residue().watch_subscribers < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscribers running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(tasks() > baseline_tasks);

    drop((read, unread, on_own, orders, orders_2));
    pending.abort();
    drop((units, room, own, tx));
    // Nothing else happens on the node: subscribers must notice their
    // clients left without waiting for the next event.
    back_to_baseline(&node, baseline, baseline_tasks).await;

    still_serves(&mut node).await;
    back_to_baseline(&node, baseline, baseline_tasks).await;
    node.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_never_reads_is_resynced_not_buffered() {
    let mut config = test_config();
    config.watch.subscriber_buffer = 4;
    config.watch.history_events = 16;
    config.watch.history_bytes = 1 << 16;
    let buffer = config.watch.subscriber_buffer;
    let history_bytes = config.watch.history_bytes;
    let (mut node, baseline, baseline_tasks) = settled_node(config).await;

    // A small HTTP/2 window, so the transport stops taking events soon.
    let slow = Endpoint::from_shared(node.server.grpc_url())
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .unwrap();
    let mut room = pb::command_room_client::CommandRoomClient::new(slow.clone());
    let mut never_read = room
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();

    // Many events, each a few hundred bytes: far more than the window, the
    // queue and the history together.
    let description = "x".repeat(400);
    let mut max_queued = 0;
    for i in 0..600 {
        node.incidents
            .create_incident(pb::CreateIncidentRequest {
                r#type: "theft".into(),
                priority: 3,
                location: Some(pb::LonLat {
                    lon: 24.94,
                    lat: 60.17,
                }),
                source: pb::IncidentSource::Call as i32,
                description: format!("{i} {description}"),
                ..Default::default()
            })
            .await
            .expect("incidents are created whoever does not read");
        let residue = node.server.hub().residue();
        assert_eq!(residue.watch_subscribers, 1);
        assert!(residue.watch_queued <= buffer, "{residue:?}");
        assert!(residue.history_bytes <= history_bytes, "{residue:?}");
        max_queued = max_queued.max(residue.watch_queued);
    }
    assert_eq!(max_queued, buffer, "the slow subscriber's queue filled");
    still_serves(&mut node).await;

    // When it finally reads, it is told it lagged, then gets a snapshot.
    let mut resynced = false;
    for _ in 0..2_000 {
        let event = tokio::time::timeout(Duration::from_secs(10), never_read.message())
            .await
            .expect("an event")
            .expect("stream ok")
            .expect("stream open");
        if let Some(pb::watch_event::Kind::Resync(r)) = event.kind {
            assert_eq!(r.reason, pb::ResyncReason::Lagged as i32);
            assert!(r.missed > 0);
            resynced = true;
            break;
        }
    }
    assert!(resynced, "a lagging subscriber is resynced");

    drop((never_read, room, slow));
    back_to_baseline(&node, baseline, baseline_tasks).await;
    node.server.shutdown().await.unwrap();
}
