//! Shared helpers for the end-to-end tests: a real `patrold` node on
//! `127.0.0.1:0` (bound before it is used, so no sleeps), real tonic clients.

pub mod pki;
pub mod processes;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patrol_proto::auth::{Authed, Bearer, authed};
use patrol_proto::v1 as pb;
use patrol_services::{Config, RunningServer};
use pb::auth_service_client::AuthServiceClient;
use pb::camera_service_client::CameraServiceClient;
use pb::command_room_client::CommandRoomClient;
use pb::incident_service_client::IncidentServiceClient;
use pb::track_service_client::TrackServiceClient;
use pb::unit_service_client::UnitServiceClient;
use pb::zone_service_client::ZoneServiceClient;
use tonic::transport::Channel;

/// `message` sent as `actor` (the `x-patrol-actor` metadata a caller
/// without a credential names itself in).
pub fn as_actor<T>(actor: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-patrol-actor", actor.parse().unwrap());
    request
}

/// A config for tests: ephemeral ports, a fast position interval.
pub fn test_config() -> Config {
    let mut config = Config {
        grpc: "127.0.0.1:0".parse().unwrap(),
        http: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace_ms: 2_000,
        ..Config::default()
    };
    // Loopback only: the TLS tests (tests/tls.rs) turn TLS on.
    config.tls.plaintext = true;
    config.watch.position_interval_ms = 20;
    // The tests move units by synthetic jumps (metres in a millisecond) that
    // the position trust rules rightly refuse; tests of those rules turn
    // them back on.
    config.units.trust_positions = false;
    // The tests of other features call without credentials; tests/auth.rs
    // turns this back on and checks every role.
    config.auth.required = false;
    config
}

/// A running node plus connected clients.
pub struct TestNode {
    pub server: RunningServer,
    pub units: UnitServiceClient<Channel>,
    pub cameras: CameraServiceClient<Channel>,
    pub incidents: IncidentServiceClient<Channel>,
    pub room: CommandRoomClient<Channel>,
    pub tracks: TrackServiceClient<Channel>,
    pub zones: ZoneServiceClient<Channel>,
    pub channel: Channel,
}

impl TestNode {
    pub async fn start() -> Self {
        Self::start_with(test_config()).await
    }

    pub async fn start_with(config: Config) -> Self {
        let server = patrol_services::start(config).await.expect("server starts");
        let c = Clients::connect(&server.grpc_url()).await;
        Self {
            units: c.units,
            cameras: c.cameras,
            incidents: c.incidents,
            room: c.room,
            tracks: c.tracks,
            zones: c.zones,
            channel: c.channel,
            server,
        }
    }

    pub async fn register(&mut self, id: &str, kind: pb::UnitKind) -> pb::Unit {
        self.units
            .register_unit(pb::RegisterUnitRequest {
                id: id.into(),
                call_sign: format!("CS {id}"),
                kind: kind as i32,
                capabilities: vec![],
            })
            .await
            .expect("register")
            .into_inner()
            .unit
            .unwrap()
    }

    /// Sends the batches over one ReportPositions stream and returns the reply.
    pub async fn report(
        &mut self,
        batches: Vec<Vec<pb::Ping>>,
    ) -> Result<pb::ReportPositionsResponse, tonic::Status> {
        let requests = batches
            .into_iter()
            .map(|pings| pb::ReportPositionsRequest { pings });
        self.units
            .report_positions(tokio_stream::iter(requests))
            .await
            .map(|r| r.into_inner())
    }

    /// A whole-map Watch stream and its snapshot (read to its end).
    pub async fn watch_all(&mut self) -> (tonic::Streaming<pb::WatchEvent>, pb::SnapshotChunk) {
        let mut room = self
            .room
            .watch(pb::WatchRequest::default())
            .await
            .unwrap()
            .into_inner();
        let (snapshot, _) = read_snapshot(&mut room).await;
        (room, snapshot)
    }

    pub async fn create_incident(&mut self, lon: f64, lat: f64) -> pb::Incident {
        create_incident(&mut self.incidents, lon, lat).await
    }
}

/// Opens a "theft" incident at (lon, lat).
pub async fn create_incident(
    client: &mut IncidentServiceClient<Channel>,
    lon: f64,
    lat: f64,
) -> pb::Incident {
    client
        .create_incident(pb::CreateIncidentRequest {
            request_id: Default::default(),
            r#type: "theft".into(),
            priority: 2,
            location: Some(pb::LonLat { lon, lat }),
            source: pb::IncidentSource::Call as i32,
            description: "test".into(),
        })
        .await
        .expect("create incident")
        .into_inner()
        .incident
        .unwrap()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn ping(unit: &str, time: i64, lon: f64, lat: f64) -> pb::Ping {
    pb::Ping {
        unit_id: unit.into(),
        fix_time_unix_ms: time,
        lon,
        lat,
        speed_mps: Some(1.0),
        heading_deg: Some(90.0),
        accuracy_m: Some(5.0),
    }
}

/// Next stream message, failing the test instead of hanging forever.
pub async fn next_event(stream: &mut tonic::Streaming<pb::WatchEvent>) -> pb::WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a watch event within 10 s")
        .expect("stream ok")
        .expect("stream open")
}

/// Reads the snapshot (chunks then end); returns the chunks merged and the end.
pub async fn read_snapshot(
    stream: &mut tonic::Streaming<pb::WatchEvent>,
) -> (pb::SnapshotChunk, pb::SnapshotEnd) {
    let mut merged = pb::SnapshotChunk::default();
    loop {
        match next_event(stream).await.kind.expect("kind") {
            pb::watch_event::Kind::Snapshot(chunk) => {
                merged.units.extend(chunk.units);
                merged.cameras.extend(chunk.cameras);
                merged.incidents.extend(chunk.incidents);
                merged.tracks.extend(chunk.tracks);
                merged.zones.extend(chunk.zones);
            }
            pb::watch_event::Kind::SnapshotEnd(end) => return (merged, end),
            other => panic!("expected snapshot, got {other:?}"),
        }
    }
}

/// Haversine metres on the same sphere as the server (GRS80 mean radius).
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_008.8_f64;
    let (lat1, lat2) = (a.1.to_radians(), b.1.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.0 - a.0).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

/// Clients to a node anywhere (an in-process one or a `patrold` process).
#[derive(Clone)]
pub struct Clients {
    pub units: UnitServiceClient<Channel>,
    pub cameras: CameraServiceClient<Channel>,
    pub incidents: IncidentServiceClient<Channel>,
    pub room: CommandRoomClient<Channel>,
    pub tracks: TrackServiceClient<Channel>,
    pub zones: ZoneServiceClient<Channel>,
    pub channel: Channel,
}

impl Clients {
    pub async fn connect(url: &str) -> Self {
        let channel = Channel::from_shared(url.to_string())
            .unwrap()
            .connect()
            .await
            .expect("connects");
        Self::over(channel)
    }

    /// Clients sharing `channel` (e.g. one from [`tls_channel`]).
    pub fn over(channel: Channel) -> Self {
        Self {
            units: UnitServiceClient::new(channel.clone()),
            cameras: CameraServiceClient::new(channel.clone()),
            incidents: IncidentServiceClient::new(channel.clone()),
            room: CommandRoomClient::new(channel.clone()),
            tracks: TrackServiceClient::new(channel.clone()),
            zones: ZoneServiceClient::new(channel.clone()),
            channel,
        }
    }
}

/// A gRPC channel over TLS to `addr` (a node with `[tls]`), trusting the
/// PEM `ca`, checking the server's certificate for `server_name`
/// ("localhost" or "127.0.0.1"), and presenting `identity` (certificate PEM,
/// key PEM) when mutual TLS asks for one.
pub async fn tls_channel(
    addr: std::net::SocketAddr,
    server_name: &str,
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel, tonic::transport::Error> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name(server_name);
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("an https URL")
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

/// A raw TLS client (tokio-rustls, ring) trusting the PEM `ca`, with `alpn`
/// protocols and an optional client identity: for handshakes tests look
/// into (the leaf certificate served, ALPN) and HTTP/1.1 over TLS.
pub fn tls_connector(
    ca: &str,
    alpn: &[&str],
    identity: Option<(&str, &str)>,
) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("a CA certificate");
    }
    // ring, as the server uses (deprecated in rustls 0.23.48 for lacking a
    // post-quantum key exchange; see services/src/tls.rs).
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("certificate PEM"),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM"),
            )
            .expect("a client identity"),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// A minimal HTTP/1.1 GET over a raw socket; the whole response.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut body = String::new();
    socket.read_to_string(&mut body).await.unwrap();
    body
}

/// Clients whose every call carries one bearer token (or none).
pub struct Caller {
    pub units: UnitServiceClient<Authed>,
    pub cameras: CameraServiceClient<Authed>,
    pub incidents: IncidentServiceClient<Authed>,
    pub room: CommandRoomClient<Authed>,
    pub tracks: TrackServiceClient<Authed>,
    pub zones: ZoneServiceClient<Authed>,
    pub auth: AuthServiceClient<Authed>,
}

impl Caller {
    /// Over `channel`, carrying `token`.
    pub fn new(channel: &Channel, token: Option<&str>) -> Self {
        let ch = authed(
            channel.clone(),
            Bearer::new(token).expect("printable token"),
        );
        Self {
            units: UnitServiceClient::new(ch.clone()),
            cameras: CameraServiceClient::new(ch.clone()),
            incidents: IncidentServiceClient::new(ch.clone()),
            room: CommandRoomClient::new(ch.clone()),
            tracks: TrackServiceClient::new(ch.clone()),
            zones: ZoneServiceClient::new(ch.clone()),
            auth: AuthServiceClient::new(ch),
        }
    }
}
