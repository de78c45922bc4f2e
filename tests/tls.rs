//! TLS and mutual TLS on a real node: certificates made here with rcgen (a CA,
//! a server certificate for 127.0.0.1 and localhost, client certificates),
//! real tonic and tokio-rustls clients over 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use patrol_proto::v1 as pb;
use patrol_services::config::TlsConfig;
use patrol_tests::pki::{Ca, Dir, Pair};
use patrol_tests::{Clients, test_config, tls_channel, tls_connector};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A config serving TLS with `server`'s files in `dir`, and mutual TLS
/// against `client_ca` when given.
fn tls_config(
    dir: &Dir,
    server: &Pair,
    client_ca: Option<&Ca>,
    require: bool,
) -> patrol_services::Config {
    let mut config = test_config();
    config.tls = TlsConfig {
        cert: dir.write("server.crt", &server.cert),
        key: dir.write("server.key", &server.key),
        client_ca: client_ca
            .map(|ca| dir.write("clients-ca.crt", &ca.pem))
            .unwrap_or_default(),
        require_client_cert: require,
        plaintext: false,
        reload_check_ms: 100,
        handshake_timeout_ms: 10_000,
    };
    config
}

fn new_incident() -> pb::CreateIncidentRequest {
    pb::CreateIncidentRequest {
        r#type: "theft".into(),
        priority: 2,
        location: Some(pb::LonLat {
            lon: 24.94,
            lat: 60.17,
        }),
        source: pb::IncidentSource::Call as i32,
        description: "bike stolen".into(),
        request_id: String::new(),
    }
}

/// Creates an incident (as `header` in `x-patrol-actor`, if given) and
/// returns the actor its "created" audit entry names.
async fn created_by(clients: &mut Clients, header: Option<&str>) -> pb::Actor {
    let mut request = tonic::Request::new(new_incident());
    if let Some(name) = header {
        request
            .metadata_mut()
            .insert("x-patrol-actor", name.parse().unwrap());
    }
    let id = clients
        .incidents
        .create_incident(request)
        .await
        .expect("create incident")
        .into_inner()
        .incident
        .unwrap()
        .id;
    let incident = clients
        .incidents
        .get_incident(pb::GetIncidentRequest { id })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    incident
        .audit
        .iter()
        .find(|entry| entry.action == "created")
        .expect("a created entry")
        .actor
        .clone()
        .expect("an actor")
}

/// The leaf certificate `addr` serves (DER), from a raw handshake.
async fn served_leaf(addr: SocketAddr, ca: &Ca) -> Vec<u8> {
    let connector = tls_connector(&ca.pem, &["h2"], None);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("tls handshake");
    let (_, session) = stream.get_ref();
    session.peer_certificates().expect("server certificates")[0].to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// Polls `check` every 20 ms until it holds, for up to 20 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` over HTTP/1.1 inside TLS; the whole response.
async fn https_get(addr: SocketAddr, ca: &Ca, path: &str) -> String {
    let connector = tls_connector(&ca.pem, &["http/1.1"], None);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut stream = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("tls handshake on the HTTP port");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    // A peer closing without close_notify is fine here: the body is read.
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_tls_node_serves_grpc_and_http_to_clients_that_trust_its_ca() {
    let ca = Ca::new("patrol test CA");
    let dir = Dir::new("basic");
    let server = patrol_services::start(tls_config(&dir, &ca.server(), None, false))
        .await
        .expect("a TLS node starts");
    assert!(
        server.grpc_url().starts_with("https://"),
        "{}",
        server.grpc_url()
    );

    let channel = tls_channel(server.grpc_addr(), "localhost", &ca.pem, None)
        .await
        .expect("a TLS client connects");
    let mut clients = Clients::over(channel);
    let actor = created_by(&mut clients, Some("dispatcher-1")).await;
    // Without a client certificate the header still names the caller, and
    // the peer address comes through the TLS stream.
    assert_eq!(actor.identity, "dispatcher-1");
    assert!(actor.peer.starts_with("127.0.0.1:"), "{actor:?}");

    // A plaintext client is refused: its HTTP/2 preface is no TLS hello.
    let plaintext =
        tonic::transport::Channel::from_shared(format!("http://{}", server.grpc_addr()))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await;
    match plaintext {
        Err(_) => {}
        Ok(channel) => {
            let mut units = pb::unit_service_client::UnitServiceClient::new(channel);
            let answer = units.list_units(pb::ListUnitsRequest::default()).await;
            assert!(answer.is_err(), "a plaintext call was answered: {answer:?}");
        }
    }
    // A client that does not trust the CA is refused too.
    let other = Ca::new("some other CA");
    assert!(
        tls_channel(server.grpc_addr(), "localhost", &other.pem, None)
            .await
            .is_err()
    );

    // The HTTP port: the same certificate, no credential needed.
    let health = https_get(server.http_addr(), &ca, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok\n"), "{health}");
    // The failed handshakes above are counted.
    let (http, ca_ref) = (server.http_addr(), &ca);
    eventually("handshake failures are counted", || async move {
        https_get(http, ca_ref, "/metrics")
            .await
            .lines()
            .any(|l| l.starts_with("patrol_tls_handshake_failures_total{port=\"grpc\""))
    })
    .await;

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_and_names_those_with_one() {
    let ca = Ca::new("patrol test CA");
    let clients_ca = Ca::new("patrol terminals CA");
    let dir = Dir::new("mutual");
    let server = patrol_services::start(tls_config(&dir, &ca.server(), Some(&clients_ca), true))
        .await
        .expect("a mutual-TLS node starts");
    let addr = server.grpc_addr();

    // No certificate: the handshake (or the first call) fails.
    let refused = match tls_channel(addr, "localhost", &ca.pem, None).await {
        Err(_) => true,
        Ok(channel) => pb::unit_service_client::UnitServiceClient::new(channel)
            .list_units(pb::ListUnitsRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    // A certificate from a CA the node does not trust: refused as well.
    let stranger = ca.client("unit-9");
    let refused = match tls_channel(
        addr,
        "localhost",
        &ca.pem,
        Some((&stranger.cert, &stranger.key)),
    )
    .await
    {
        Err(_) => true,
        Ok(channel) => pb::unit_service_client::UnitServiceClient::new(channel)
            .list_units(pb::ListUnitsRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "a certificate of an untrusted CA was accepted");

    // unit-7's certificate: served, and its CN is the actor, ahead of any
    // header the caller sends.
    let unit = clients_ca.client("unit-7");
    let channel = tls_channel(addr, "localhost", &ca.pem, Some((&unit.cert, &unit.key)))
        .await
        .expect("a client with a certificate connects");
    let mut clients = Clients::over(channel);
    let actor = created_by(&mut clients, Some("someone-else")).await;
    assert_eq!(actor.identity, "unit-7", "{actor:?}");
    assert!(actor.peer.starts_with("127.0.0.1:"), "{actor:?}");
    let actor = created_by(&mut clients, None).await;
    assert_eq!(actor.identity, "unit-7", "{actor:?}");

    // Monitoring needs no client certificate on the HTTP port.
    let health = https_get(server.http_addr(), &ca, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_optional_client_certificate_is_used_when_presented() {
    let ca = Ca::new("patrol test CA");
    let dir = Dir::new("optional");
    let server = patrol_services::start(tls_config(&dir, &ca.server(), Some(&ca), false))
        .await
        .expect("a node with optional client certificates starts");
    let addr = server.grpc_addr();

    let mut anonymous = Clients::over(tls_channel(addr, "localhost", &ca.pem, None).await.unwrap());
    assert_eq!(
        created_by(&mut anonymous, Some("desk-2")).await.identity,
        "desk-2"
    );
    assert_eq!(created_by(&mut anonymous, None).await.identity, "");

    let car = ca.client("car-3");
    let mut certified = Clients::over(
        tls_channel(addr, "127.0.0.1", &ca.pem, Some((&car.cert, &car.key)))
            .await
            .unwrap(),
    );
    assert_eq!(
        created_by(&mut certified, Some("desk-2")).await.identity,
        "car-3"
    );

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn new_files_serve_new_connections_without_a_restart_and_bad_ones_are_ignored() {
    let ca = Ca::new("patrol test CA");
    let dir = Dir::new("reload");
    let first = ca.server();
    let server = patrol_services::start(tls_config(&dir, &first, None, false))
        .await
        .expect("a TLS node starts");
    let addr = server.grpc_addr();
    assert_eq!(served_leaf(addr, &ca).await, der_of(&first.cert));
    // A connection open before the change keeps working after it.
    let mut open = Clients::over(tls_channel(addr, "localhost", &ca.pem, None).await.unwrap());
    created_by(&mut open, None).await;

    // A key that does not match the certificate: the old pair stays.
    let second = ca.server();
    dir.write("server.crt", &second.cert);
    // The bad state is seen (and counted) before the good one is written.
    let (http, ca_ref) = (server.http_addr(), &ca);
    eventually("the mismatched pair is reported", || async move {
        let metrics = https_get(http, ca_ref, "/metrics").await;
        metrics
            .lines()
            .any(|l| l.starts_with("patrol_tls_reloads_total{result=\"error\"}"))
    })
    .await;
    assert_eq!(served_leaf(addr, &ca).await, der_of(&first.cert));

    dir.write("server.key", &second.key);
    let want = der_of(&second.cert);
    let want_ref = &want;
    eventually("a new connection gets the new certificate", || async move {
        served_leaf(addr, ca_ref).await == *want_ref
    })
    .await;
    // The HTTP port too.
    let connector = tls_connector(&ca.pem, &["http/1.1"], None);
    let tcp = TcpStream::connect(server.http_addr()).await.unwrap();
    let stream = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
        der_of(&second.cert)
    );
    created_by(&mut open, None).await;
    let mut fresh = Clients::over(tls_channel(addr, "localhost", &ca.pem, None).await.unwrap());
    created_by(&mut fresh, None).await;
    assert!(dir.path().exists());

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_client_does_not_hold_up_the_handshakes_of_others() {
    let ca = Ca::new("patrol test CA");
    let dir = Dir::new("silent");
    let mut config = tls_config(&dir, &ca.server(), None, false);
    config.tls.handshake_timeout_ms = 300;
    let server = patrol_services::start(config)
        .await
        .expect("a TLS node starts");
    let addr = server.grpc_addr();

    // Connected, never says a word.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Others are served meanwhile.
    let mut clients = Clients::over(tls_channel(addr, "localhost", &ca.pem, None).await.unwrap());
    created_by(&mut clients, None).await;
    // And the silent one is dropped after the handshake timeout.
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
        .await
        .expect("the silent connection is closed by the server");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missing_or_bad_file_stops_the_start_with_its_name() {
    let ca = Ca::new("patrol test CA");
    let dir = Dir::new("bad");
    let pair = ca.server();
    let mut config = tls_config(&dir, &pair, None, false);
    config.tls.key = dir.path().join("missing.key");
    let err = format!(
        "{:#}",
        patrol_services::start(config).await.err().expect("refused")
    );
    assert!(
        err.contains("tls.key") && err.contains("missing.key"),
        "{err}"
    );

    let mut config = tls_config(&dir, &pair, None, false);
    config.tls.cert = dir.write("not-a-cert.pem", "hello");
    let err = format!(
        "{:#}",
        patrol_services::start(config).await.err().expect("refused")
    );
    assert!(err.contains("tls.cert"), "{err}");
}
