//! Building and running one `patrold` node: listeners first (so a caller knows
//! the addresses, and tests can use port 0 without sleeping), then the gRPC
//! services, health, reflection, the HTTP metrics server and the tickers.
//!
//! Shutdown (one path for SIGINT, SIGTERM and tests): health goes NOT_SERVING,
//! every Watch and ReceiveOrders stream ends, the gRPC server stops accepting and
//! drains in-flight calls under `shutdown_grace_ms`, then the HTTP server stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use patrol_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::{AuthApi, CameraApi, CommandRoomApi, IncidentApi, TrackApi, UnitApi, ZoneApi};
use crate::auth::CredentialStore;
use crate::auth::layer::{AuthLayer, Gate};
use crate::clock::now_ms;
use crate::config::Config;
use crate::durable::RedisLog;
use crate::durable::reader::Reader;
use crate::hub::{self, Hub, Origin, shutdown_started};
use crate::node::{NodeStart, NodeState};
use crate::sequencer::Sequencer;
use crate::telemetry as m;
use crate::tls::Port;

/// The fully qualified names of the patrol services (for health checks).
pub const SERVICE_NAMES: [&str; 7] = [
    "patrol.v1.UnitService",
    "patrol.v1.CameraService",
    "patrol.v1.IncidentService",
    "patrol.v1.TrackService",
    "patrol.v1.ZoneService",
    "patrol.v1.CommandRoom",
    "patrol.v1.AuthService",
];

/// A node that is serving. Drop does not stop it: call [`RunningServer::shutdown`].
pub struct RunningServer {
    hub: Arc<Hub>,
    credentials: Arc<CredentialStore>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    health: HealthReporter,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    http: JoinHandle<std::io::Result<()>>,
    tickers: Vec<JoinHandle<()>>,
}

impl RunningServer {
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// URL of the gRPC endpoint, for clients: `https://` with TLS,
    /// `http://` with `tls.plaintext`.
    pub fn grpc_url(&self) -> String {
        let scheme = if self.hub.config.tls.plaintext {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.grpc_addr)
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The credential store (to issue the demo's or a test's credentials).
    pub fn credentials(&self) -> &Arc<CredentialStore> {
        &self.credentials
    }

    /// Stops the node gracefully; see the module docs.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down");
        for name in std::iter::once("").chain(SERVICE_NAMES) {
            self.health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        self.hub.begin_shutdown();
        for ticker in &self.tickers {
            ticker.abort();
        }
        let grace = Duration::from_millis(self.hub.config.shutdown_grace_ms);
        match tokio::time::timeout(grace, self.grpc).await {
            Ok(joined) => joined.context("grpc server task")?.context("grpc server")?,
            Err(_) => tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "grpc calls still running after the grace period; stopping anyway"
            ),
        }
        if tokio::time::timeout(grace, self.hub.audit().flush())
            .await
            .is_err()
        {
            tracing::warn!("audit records still unwritten after the grace period");
        }
        match tokio::time::timeout(grace, self.http).await {
            Ok(joined) => joined.context("http server task")?.context("http server")?,
            Err(_) => {
                tracing::warn!("http server still running after the grace period; stopping anyway")
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Binds both listeners and starts serving.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    config.validate()?;
    m::prometheus();
    let grpc_listener = TcpListener::bind(config.grpc)
        .await
        .with_context(|| format!("binding gRPC address {}", config.grpc))?;
    let http_listener = TcpListener::bind(config.http)
        .await
        .with_context(|| format!("binding HTTP address {}", config.http))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    let tls = if config.tls.plaintext {
        tracing::warn!(
            grpc = %grpc_addr,
            http = %http_addr,
            "tls.plaintext = true: gRPC and HTTP traffic is unencrypted"
        );
        None
    } else {
        Some(crate::tls::Tls::load(&config.tls)?)
    };
    let mut tickers = Vec::new();
    let network = load_network(&config).await?;
    let mut core = config.dispatcher();
    core.network = network;
    let hub = if config.redis.enabled() {
        let (hub, reader) = open_durable(config, core).await?;
        tickers.push(reader);
        hub
    } else {
        Hub::in_memory(config, core)
    };
    if !hub.config.zone_file.as_os_str().is_empty() {
        let put = load_zone_file(&hub, &hub.config.zone_file).await?;
        tracing::info!(put, file = %hub.config.zone_file.display(), "zones loaded");
    }

    let credentials = Arc::new(open_credentials(&hub.config).await?);
    if !hub.config.auth.required {
        tracing::warn!(
            "auth.required = false: calls without a credential are let through with no role checks"
        );
    }
    if !hub.config.auth.admin_token_file.as_os_str().is_empty() {
        bootstrap_admin(&credentials, &hub.config.auth.admin_token_file).await?;
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    for name in SERVICE_NAMES {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let max_message = hub.config.limits.max_message_bytes;
    let gate = Arc::new(Gate {
        store: credentials.clone(),
        hub: hub.clone(),
    });
    let keepalive = match hub.config.limits.keepalive_interval_ms {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(keepalive)
        .http2_keepalive_timeout(Some(Duration::from_millis(
            hub.config.limits.keepalive_timeout_ms,
        )))
        .layer(tower::util::MapResponseLayer::new(
            crate::error::map_too_large,
        ))
        .layer(AuthLayer::new(gate))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            patrol_proto::shared::unit_service_server::UnitServiceServer::new(UnitApi::new(
                hub.clone(),
            ))
            .max_decoding_message_size(max_message),
        )
        .add_service(
            pb::camera_service_server::CameraServiceServer::new(CameraApi::new(hub.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            pb::incident_service_server::IncidentServiceServer::new(IncidentApi::new(hub.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            pb::track_service_server::TrackServiceServer::new(TrackApi::new(hub.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            pb::zone_service_server::ZoneServiceServer::new(ZoneApi::new(hub.clone()))
                .max_decoding_message_size(max_message),
        )
        .add_service(
            pb::auth_service_server::AuthServiceServer::new(AuthApi::new(
                hub.clone(),
                credentials.clone(),
            ))
            .max_decoding_message_size(max_message),
        )
        .add_service(
            patrol_proto::shared::command_room_server::CommandRoomServer::new(CommandRoomApi::new(
                hub.clone(),
            ))
            .max_decoding_message_size(max_message),
        );
    let grpc_shutdown = shutdown_started(hub.shutdown_signal());
    let (grpc, http_listener) = match &tls {
        None => {
            let incoming = TcpIncoming::from(grpc_listener)
                .with_nodelay(Some(true))
                .with_keepalive(keepalive);
            (
                tokio::spawn(router.serve_with_incoming_shutdown(incoming, grpc_shutdown)),
                m::HttpListener::Plain(http_listener),
            )
        }
        Some(tls) => {
            let incoming = crate::tls::incoming(grpc_listener, tls.clone(), Port::Grpc)?;
            tickers.push(tokio::spawn(crate::tls::reload(tls.clone())));
            (
                tokio::spawn(router.serve_with_incoming_shutdown(incoming, grpc_shutdown)),
                m::HttpListener::Tls(crate::tls::incoming(
                    http_listener,
                    tls.clone(),
                    Port::Http,
                )?),
            )
        }
    };
    let http = tokio::spawn(m::serve_http(
        http_listener,
        shutdown_started(hub.shutdown_signal()),
    ));
    tickers.push(tokio::spawn(tick(hub.clone())));
    tickers.push(tokio::spawn(unit_gauges(hub.clone())));
    tickers.push(tokio::spawn(crate::limits::sweep(hub.limits().clone())));
    if hub.config.frigate.enabled() {
        tickers.push(crate::frigate::spawn(hub.clone())?);
    }
    tracing::info!(
        grpc = %grpc_addr,
        http = %http_addr,
        tls = tls.is_some(),
        mutual_tls = tls.is_some() && hub.config.tls.mutual(),
        "patrold serving"
    );
    Ok(RunningServer {
        hub,
        credentials,
        grpc_addr,
        http_addr,
        health,
        grpc,
        http,
        tickers,
    })
}

/// The credential store: the region's in Redis, else this process's.
async fn open_credentials(config: &Config) -> anyhow::Result<CredentialStore> {
    if !config.redis.enabled() {
        return Ok(CredentialStore::in_memory(config.auth.clone()));
    }
    let timeout = Duration::from_millis(config.redis.response_timeout_ms.max(1));
    let conn = crate::durable::connect(&config.redis, timeout)
        .await
        .context("connecting to redis for the credential store")?;
    CredentialStore::redis(config.auth.clone(), conn, &config.redis.region)
        .await
        .context("opening the credential store in redis")
}

/// When no admin exists: creates identity `admin` with a key that never
/// expires and writes its token to `path` (owner-only), for the first login
/// of a new deployment.
async fn bootstrap_admin(store: &CredentialStore, path: &std::path::Path) -> anyhow::Result<()> {
    if store.has_admin().await? {
        return Ok(());
    }
    let (credential, _, token) = store
        .issue(
            "admin",
            crate::auth::Role::Admin,
            Vec::new(),
            crate::auth::Kind::Key,
            "bootstrap".into(),
            0,
            None,
            now_ms(),
        )
        .await?;
    write_secret_file(path, &format!("{token}\n"))?;
    tracing::warn!(
        path = %path.display(),
        credential = %credential.id,
        "no admin existed: issued identity `admin` a key; its token is in this file (revoke it once real admins exist)"
    );
    Ok(())
}

/// Writes `text` to `path`, readable by its owner only.
pub fn write_secret_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Connects to Redis, rebuilds the core from the region's newest checkpoint
/// and replays the log after it; returns once this node has caught up (it
/// serves nothing stale), with the log reader running.
async fn open_durable(
    config: Config,
    dispatcher: patrol_dispatcher::DispatcherConfig,
) -> anyhow::Result<(Arc<Hub>, JoinHandle<()>)> {
    let (log, start) = RedisLog::open(&config, &network_id(dispatcher.network.as_ref())).await?;
    let log = Arc::new(log);
    let (core, last_seq, after) = match start.checkpoint {
        Some(checkpoint) => (
            patrol_dispatcher::Dispatcher::restore(dispatcher.clone(), checkpoint.state).map_err(
                |e| anyhow::anyhow!("rebuilding from checkpoint {}: {e}", checkpoint.id),
            )?,
            checkpoint.event_seq,
            checkpoint.id,
        ),
        None => (
            patrol_dispatcher::Dispatcher::new(dispatcher.clone()),
            0,
            "0-0".to_string(),
        ),
    };
    let region = config.redis.region.clone();
    let node = Arc::new(NodeState::new(
        hub::settings(&config),
        NodeStart {
            core,
            epoch: start.epoch,
            last_seq,
        },
    ));
    let (caught_up, ready) = tokio::sync::oneshot::channel();
    let started = std::time::Instant::now();
    let reader = tokio::spawn(
        Reader {
            node: node.clone(),
            log: log.clone(),
            dispatcher,
            future_tolerance_ms: config.units.future_tolerance_ms,
            after: after.clone(),
            caught_up: Some(caught_up),
        }
        .run(),
    );
    ready
        .await
        .context("the log reader stopped before catching up")?;
    tracing::info!(
        region = %region,
        checkpoint = %after,
        replayed_to_seq = node.last_seq(),
        units = node.read(|core| core.units().len()),
        took_ms = started.elapsed().as_millis() as u64,
        "rebuilt from redis"
    );
    let audit = crate::audit::AuditLog::open(&config).await?;
    Ok((Hub::new(config, node, Sequencer::Redis(log), audit), reader))
}

/// Loads the map to route over (`map`, or the demo's), off the async
/// threads; `None` without one.
async fn load_network(config: &Config) -> anyhow::Result<Option<patrol_dispatcher::Network>> {
    let Some(path) = config.map_path().map(|p| p.to_path_buf()) else {
        tracing::info!("no map: ETAs are straight lines");
        return Ok(None);
    };
    let profiles = config.profiles.clone();
    let started = std::time::Instant::now();
    let shown = path.display().to_string();
    let map = tokio::task::spawn_blocking(move || patrol_roads::osm::load(&path, &profiles))
        .await
        .context("map loader")?
        .with_context(|| format!("loading map {shown}"))?;
    let graph = Arc::new(map.graph);
    tracing::info!(
        map = %shown,
        nodes = graph.node_count(),
        edges = graph.edge_count(),
        fingerprint = %graph.fingerprint(),
        memory_bytes = graph.memory_bytes(),
        took_ms = started.elapsed().as_millis() as u64,
        "map loaded"
    );
    let network = patrol_dispatcher::Network::new(graph, config.network.clone())
        .map_err(|e| anyhow::anyhow!("network settings: {e}"))?;
    Ok(Some(network))
}

/// What every node of a region must agree on about the map: the graph's
/// fingerprint and the settings that turn fixes into travel times.
fn network_id(network: Option<&patrol_dispatcher::Network>) -> String {
    match network {
        None => "none".to_string(),
        Some(n) => format!(
            "{} {}",
            n.graph().fingerprint(),
            serde_json::to_string(n.settings()).unwrap_or_default()
        ),
    }
}

/// Publishes coalesced positions once per `position_interval`, and announces
/// units going offline once per `offline_sweep_ms`, as `Tick` commands. With
/// Redis every node runs this, but a node ticks only when no tick (from any
/// node) was applied for an interval, so the region gets about one per
/// interval.
async fn tick(hub: Arc<Hub>) {
    let every = hub.config.position_interval();
    let interval_ms = every.as_millis() as i64;
    let sweep_ms = hub.config.units.offline_sweep_ms as i64;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        interval.tick().await;
        let now = now_ms();
        let (last_tick, last_sweep) = hub.node().last_ticks();
        if now - last_tick < interval_ms * 9 / 10 {
            continue;
        }
        let sweep = now - last_sweep >= sweep_ms;
        match hub.tick(sweep).await {
            Ok(positions) => {
                failures = 0;
                metrics::counter!(m::POSITIONS_PUBLISHED).increment(positions as u64);
            }
            Err(err) => {
                failures += 1;
                if failures.is_power_of_two() {
                    tracing::warn!(error = %err, failures, "tick not stored");
                }
            }
        }
    }
}

/// Refreshes the unit gauges once per `offline_sweep_ms`.
async fn unit_gauges(hub: Arc<Hub>) {
    let mut interval =
        tokio::time::interval(Duration::from_millis(hub.config.units.offline_sweep_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let counts = hub.read(|core| core.units().count_by_status(now_ms()));
        for (status, count) in counts {
            metrics::gauge!(m::UNITS, "status" => status.as_str()).set(count as f64);
        }
    }
}

/// Puts every zone of the config's GeoJSON `zone_file` whose content differs
/// from the zone held (so restarting nodes of a region do not bump versions);
/// returns how many were put.
async fn load_zone_file(hub: &Hub, path: &std::path::Path) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading zone_file {}", path.display()))?;
    let specs = patrol_dispatcher::parse_zones(&text)
        .map_err(|e| anyhow::anyhow!("zone_file {}: {e}", path.display()))?;
    let mut put = 0;
    for spec in specs {
        let same = hub.read(|core| {
            core.zone(&spec.id).is_ok_and(|z| {
                z.name == spec.name && z.kind == spec.kind && z.polygon == spec.polygon
            })
        });
        if !same {
            hub.put_zone(Origin::system(hub.name()), spec)
                .await
                .map_err(|e| anyhow::anyhow!("zone_file {}: {e}", path.display()))?;
            put += 1;
        }
    }
    Ok(put)
}
