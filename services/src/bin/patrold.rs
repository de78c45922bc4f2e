//! `patrold`: parse configuration (file < environment < flags), start the node,
//! announce it in the ready file if asked, optionally run the demo city against
//! it, stop on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use patrol_services::Config;

#[derive(Debug, Parser)]
#[command(
    name = "patrold",
    version,
    about = "Real-time patrol dispatch and command-room server"
)]
struct Args {
    /// TOML configuration file (lowest precedence).
    #[arg(long, env = "PATROL_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC listen address [default 127.0.0.1:50051].
    #[arg(long, env = "PATROL_GRPC")]
    grpc: Option<SocketAddr>,
    /// HTTP listen address for /metrics and /healthz [default 127.0.0.1:8080].
    #[arg(long, env = "PATROL_HTTP")]
    http: Option<SocketAddr>,
    /// Run the demo city (simulated Helsinki) in this process; implies
    /// --plaintext (the demo is loopback).
    #[arg(long, env = "PATROL_DEMO")]
    demo: bool,
    /// Serve gRPC and HTTP without TLS (tls.plaintext = true): traffic is
    /// unencrypted. For loopback and tests; otherwise set tls.cert and tls.key.
    #[arg(long, env = "PATROL_PLAINTEXT")]
    plaintext: bool,
    /// TLS certificate chain, PEM (tls.cert).
    #[arg(long, env = "PATROL_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key, PEM (tls.key).
    #[arg(long, env = "PATROL_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// CA that client certificates are verified against, PEM: mutual TLS
    /// (tls.client_ca).
    #[arg(long, env = "PATROL_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// OpenStreetMap extract (.osm.pbf) to route over: units are ranked by
    /// travel time over its streets and footways [default: none, or the
    /// demo's map with --demo].
    #[arg(long, env = "PATROL_MAP")]
    map: Option<PathBuf>,
    /// OpenStreetMap extract for the demo [default data/helsinki.osm.pbf].
    #[arg(long, env = "PATROL_DEMO_MAP")]
    demo_map: Option<PathBuf>,
    /// Whether pings go through the position trust rules (implausible jumps
    /// refused, drift held) [default true].
    #[arg(long, env = "PATROL_TRUST_POSITIONS")]
    trust_positions: Option<bool>,
    /// This node's name (prefixes server-assigned ids).
    #[arg(long, env = "PATROL_NODE_ID")]
    node_id: Option<String>,
    /// Position coalescing interval for the command-room stream, ms [default 250].
    #[arg(long, env = "PATROL_POSITION_INTERVAL_MS")]
    position_interval_ms: Option<u64>,
    /// Keep state in Redis: `redis://host:port` (durable, shared by every node
    /// of the region). Comma-separated nodes with --redis-cluster.
    #[arg(long, env = "PATROL_REDIS", value_delimiter = ',')]
    redis: Vec<String>,
    /// The Redis URLs are nodes of a Redis Cluster.
    #[arg(long, env = "PATROL_REDIS_CLUSTER")]
    redis_cluster: bool,
    /// The region this node serves (the hash tag of its Redis keys) [default "default"].
    #[arg(long, env = "PATROL_REGION")]
    region: Option<String>,
    /// Let calls without a credential through, with no role checks (tests and
    /// labs only; the server warns) [default: a credential is required].
    #[arg(long, env = "PATROL_NO_AUTH")]
    no_auth: bool,
    /// When no admin exists yet, create identity `admin` and write its token
    /// to this file (owner-only) [auth.admin_token_file].
    #[arg(long, env = "PATROL_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Log filter, e.g. "info" or "patrol_services=debug" [default info].
    #[arg(long, env = "PATROL_LOG", default_value = "info")]
    log: String,
    /// Once serving, write the bound addresses here as JSON
    /// (`{"grpc":"127.0.0.1:PORT","http":"127.0.0.1:PORT","pid":N}`), atomically
    /// (temp file + rename), so `--grpc 127.0.0.1:0` callers learn the ports;
    /// removed again when shutdown starts.
    #[arg(long, env = "PATROL_READY_FILE")]
    ready_file: Option<PathBuf>,
}

impl Args {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            // Validated below, once the flags are on top.
            Some(path) => Config::parse_file(path)?,
            None => Config::default(),
        };
        if let Some(grpc) = self.grpc {
            config.grpc = grpc;
        }
        if let Some(http) = self.http {
            config.http = http;
        }
        if self.demo {
            config.demo.enabled = true;
        }
        if self.plaintext || self.demo {
            config.tls.plaintext = true;
        }
        if let Some(cert) = &self.tls_cert {
            config.tls.cert = cert.clone();
        }
        if let Some(key) = &self.tls_key {
            config.tls.key = key.clone();
        }
        if let Some(ca) = &self.tls_client_ca {
            config.tls.client_ca = ca.clone();
        }
        if let Some(map) = &self.map {
            config.map = map.clone();
        }
        if let Some(map) = &self.demo_map {
            config.demo.map = map.clone();
        }
        if let Some(trust) = self.trust_positions {
            config.units.trust_positions = trust;
        }
        if let Some(node_id) = &self.node_id {
            config.node_id = node_id.clone();
        }
        if let Some(ms) = self.position_interval_ms {
            config.watch.position_interval_ms = ms;
        }
        if !self.redis.is_empty() {
            config.redis.urls = self.redis.clone();
        }
        if self.redis_cluster {
            config.redis.cluster = true;
        }
        if let Some(region) = &self.region {
            config.redis.region = region.clone();
        }
        if self.no_auth {
            config.auth.required = false;
        }
        if let Some(path) = &self.admin_token_file {
            config.auth.admin_token_file = path.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("--log filter")?)
        .with_writer(std::io::stderr)
        .init();
    let config = args.config()?;
    let stop = shutdown_signal()?;
    let demo = config.demo.clone();
    let server = patrol_services::start(config).await?;
    if let Some(path) = &args.ready_file {
        write_ready_file(path, server.grpc_addr(), server.http_addr())?;
    }
    let demo_token = if demo.enabled {
        Some(demo_credentials(&server).await?)
    } else {
        None
    };
    let demo_task = demo.enabled.then(|| {
        let sim = patrol_sim::DemoConfig {
            endpoint: server.grpc_url(),
            token: demo_token,
            map_path: demo.map.clone(),
            seed: demo.seed,
            ..Default::default()
        };
        let stop = patrol_services::hub::shutdown_started(server.hub().shutdown_signal());
        tokio::spawn(async move {
            if let Err(err) = patrol_sim::run(sim, stop).await {
                tracing::error!(error = %format!("{err:#}"), "demo city stopped");
            }
        })
    });
    stop.await;
    if let Some(path) = &args.ready_file {
        // Not ready any more: health turns NOT_SERVING now too.
        if let Err(err) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %err, "removing the ready file");
        }
    }
    server.shutdown().await?;
    if let Some(task) = demo_task {
        let _ = task.await;
    }
    Ok(())
}

/// Issues the demo its credentials: a key for the simulated city (admin: it
/// registers units and cameras and drives them), and a login and a session
/// for an operator and a viewer. Writes them to the demo credentials file
/// (owner-only; `patrolctl` on this machine reads it) and says where; returns
/// the city's token.
async fn demo_credentials(server: &patrol_services::RunningServer) -> anyhow::Result<String> {
    use patrol_services::auth::{Kind, Role, demo_credentials_path};
    let store = server.credentials();
    let now = patrol_services::clock::now_ms();
    let (_, _, city) = store
        .issue(
            "demo-city",
            Role::Admin,
            vec![],
            Kind::Key,
            "demo city".into(),
            0,
            None,
            now,
        )
        .await?;
    let session_ttl = store.config().session_ttl_ms;
    let mut people = serde_json::Map::new();
    for (name, role) in [("operator", Role::Operator), ("viewer", Role::Viewer)] {
        let identity = format!("demo-{name}");
        let (_, _, secret) = store
            .issue(
                &identity,
                role,
                vec![],
                Kind::Login,
                "demo".into(),
                0,
                None,
                now,
            )
            .await?;
        let (_, _, token) = store
            .issue(
                &identity,
                role,
                vec![],
                Kind::Session,
                "demo session".into(),
                session_ttl,
                None,
                now,
            )
            .await?;
        people.insert(
            name.to_string(),
            serde_json::json!({ "identity": identity, "secret": secret, "token": token }),
        );
    }
    people.insert(
        "admin".into(),
        serde_json::json!({ "identity": "demo-city", "token": city }),
    );
    people.insert("grpc".into(), serde_json::json!(server.grpc_url()));
    people.insert(
        "http".into(),
        serde_json::json!(format!("http://{}", server.http_addr())),
    );
    let path = demo_credentials_path();
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(people.clone()))?;
    patrol_services::server::write_secret_file(&path, &format!("{text}\n"))?;
    let operator = &people["operator"];
    tracing::info!(
        file = %path.display(),
        operator = %operator["identity"].as_str().unwrap_or_default(),
        secret = %operator["secret"].as_str().unwrap_or_default(),
        "demo credentials issued: patrolctl on this machine uses the operator's session from the file; `patrolctl login demo-operator` with the secret opens a new one"
    );
    Ok(city)
}

/// Writes `{"grpc":..,"http":..,"pid":..}` to `path` so that a reader sees
/// either no file or the whole of it: a temp file in the same directory (same
/// filesystem), then a rename over `path`.
fn write_ready_file(path: &Path, grpc: SocketAddr, http: SocketAddr) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "grpc": grpc.to_string(),
        "http": http.to_string(),
        "pid": std::process::id(),
    });
    let name = path
        .file_name()
        .with_context(|| format!("--ready-file {} has no file name", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    std::fs::write(&temp, format!("{json}\n"))
        .with_context(|| format!("writing the ready file {}", temp.display()))?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
    tracing::info!(path = %path.display(), "ready file written");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, whichever comes first. The handlers are
/// installed when this is called, so call it before announcing readiness: a
/// signal that arrives between "serving" and the first poll is not lost.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
