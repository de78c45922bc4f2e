//! One configuration struct, versioned, with defaults that run the demo.
//! Layered: TOML file < environment (`PATROL_*`) < command-line flags; the
//! binary does the layering (`bin/patrold.rs`), tests build a `Config` in code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// The configuration format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// Largest queue or in-flight bound a setting may ask for.
pub const MAX_QUEUE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Must be `CONFIG_VERSION`.
    pub version: u32,
    /// gRPC listen address.
    pub grpc: SocketAddr,
    /// HTTP listen address (`/metrics`, `/healthz`).
    pub http: SocketAddr,
    /// This node's name: it names the node in every actor of the audit trail
    /// (default: the gRPC address), and in memory it prefixes server-assigned
    /// ids ("a:inc-1") when set. With Redis ids carry no prefix: they come
    /// from the region's shared log.
    pub node_id: String,
    pub units: UnitsConfig,
    pub watch: WatchConfig,
    pub alerts: AlertsConfig,
    pub demo: DemoConfig,
    /// Durable, shared state in Redis; off (in memory) unless `urls` is set.
    pub redis: RedisConfig,
    /// Credentials, roles, sessions and lockout (see `auth` in the README).
    pub auth: AuthConfig,
    /// An OpenStreetMap extract (`.osm.pbf`) to route over: units are then
    /// ranked by travel time over its streets and footways, and orders carry
    /// their route. Empty: no map (straight-line ETAs), unless the demo runs,
    /// which uses its own map. Every node of a region must load the same map
    /// (checked at start with Redis).
    pub map: PathBuf,
    /// How a fix becomes a travel time on the map.
    pub network: patrol_dispatcher::network::NetworkSettings,
    /// Who may use which street, and how fast (per kind of unit, emergency
    /// mode).
    pub profiles: patrol_roads::ProfileConfig,
    /// Which positions to believe (per kind of unit).
    pub trust: patrol_dispatcher::TrustConfig,
    /// Response plans by incident type and priority: `[[response.plans]]`
    /// and `[response.default]`.
    pub response: patrol_dispatcher::PlanBook,
    /// Acknowledgements, re-dispatch, status timers, automatic dispatch.
    pub dispatch: patrol_dispatcher::DispatchPolicy,
    /// How tracks (a suspect followed from camera to camera) predict the way
    /// ahead and look for intercepts.
    pub tracks: patrol_dispatcher::TrackConfig,
    /// Zone hysteresis (margins, dwell times) and the home-zone preference
    /// of recommendations.
    pub zones: patrol_dispatcher::ZoneConfig,
    /// A GeoJSON FeatureCollection of patrol zones and segments put at start
    /// (each feature's `id`, `properties.name`, `properties.kind` "zone" or
    /// "segment", `properties.parent`); empty: none. Zones can also be
    /// managed at run time (ZoneService).
    pub zone_file: PathBuf,
    /// Camera health.
    pub cameras: CamerasConfig,
    /// Sizes a request may have.
    pub limits: LimitsConfig,
    /// Remembered `request_id`s, for retries.
    pub requests: RequestsConfig,
    /// How long shutdown waits for streams and calls to finish, milliseconds.
    pub shutdown_grace_ms: u64,
    /// The Frigate NVR bridge (MQTT `frigate/events` to alerts); off unless
    /// `mqtt_url` is set.
    pub frigate: FrigateConfig,
    /// TLS on both ports (gRPC and HTTP), optionally mutual. Required unless
    /// `plaintext = true`.
    pub tls: TlsConfig,
    /// The audit log: who did what, when (see `crate::audit`).
    pub audit: AuditConfig,
}

/// TLS for the gRPC and the HTTP port (rustls). Files are PEM; they are
/// checked every `reload_check_ms` and a changed, valid set is used for new
/// connections without a restart (a bad one keeps the old set and is logged).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain (leaf first), PEM.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates are verified against:
    /// set, this is mutual TLS. Empty: clients are not asked for one.
    pub client_ca: PathBuf,
    /// With `client_ca`: a gRPC client without a certificate is refused at
    /// the handshake. False: a certificate is optional, but verified when
    /// presented. The HTTP port (`/metrics`, `/healthz`) never requires one.
    pub require_client_cert: bool,
    /// Serve without TLS: traffic (and any credential in it) is unencrypted.
    /// Only for loopback, tests and the demo.
    pub plaintext: bool,
    /// How often the files are checked for changes, milliseconds.
    pub reload_check_ms: u64,
    /// A client that has not finished its TLS handshake after this long is
    /// dropped, milliseconds.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            client_ca: PathBuf::new(),
            require_client_cert: false,
            plaintext: false,
            reload_check_ms: 5_000,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl TlsConfig {
    /// Whether client certificates are asked for (mutual TLS).
    pub fn mutual(&self) -> bool {
        !self.client_ca.as_os_str().is_empty()
    }

    fn validate(&self) -> anyhow::Result<()> {
        let cert = !self.cert.as_os_str().is_empty();
        let key = !self.key.as_os_str().is_empty();
        if self.plaintext {
            anyhow::ensure!(
                !cert && !key && !self.mutual(),
                "tls.plaintext = true together with tls.cert, tls.key or tls.client_ca: \
                 choose one (plaintext serves without TLS)"
            );
            return Ok(());
        }
        anyhow::ensure!(
            cert || key,
            "TLS is required: set tls.cert and tls.key (PEM files), \
             or tls.plaintext = true to serve without TLS (loopback and tests only)"
        );
        anyhow::ensure!(
            cert && key,
            "tls.cert and tls.key go together: only tls.{} is set",
            if cert { "cert" } else { "key" }
        );
        anyhow::ensure!(
            !self.require_client_cert || self.mutual(),
            "tls.require_client_cert = true needs tls.client_ca (the CA client certificates are verified against)"
        );
        anyhow::ensure!(
            self.reload_check_ms >= 100,
            "tls.reload_check_ms must be >= 100"
        );
        anyhow::ensure!(
            self.handshake_timeout_ms >= 1,
            "tls.handshake_timeout_ms must be >= 1"
        );
        Ok(())
    }
}

/// The audit log. In memory without Redis (a bounded ring: the oldest
/// records are dropped first, and counted); with Redis a Stream per region
/// (`patrol:{region}:audit`), trimmed by age.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// With Redis, records older than this are trimmed (approximately: Redis
    /// drops whole stream nodes once every record in them is older),
    /// milliseconds; default one year.
    pub retention_ms: u64,
    /// Without Redis, at most this many records are kept (the oldest are
    /// dropped first).
    pub memory_records: usize,
    /// With Redis, records waiting to be written; when full, new records are
    /// dropped and counted (`patrol_audit_dropped_total`) rather than slowing
    /// commands down.
    pub queue_records: usize,
    /// With Redis, at most this many records are written per round trip.
    pub batch_records: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_ms: 365 * 24 * 3_600 * 1_000,
            memory_records: 100_000,
            queue_records: 10_000,
            batch_records: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnitsConfig {
    /// A unit with no fix for longer than this is offline, milliseconds.
    pub offline_after_ms: i64,
    /// Fix times may be this far in the future (clock skew), milliseconds.
    pub future_tolerance_ms: i64,
    /// Side of the spatial index's grid cells, metres.
    pub cell_size_m: f64,
    /// How often units are checked for going offline, milliseconds.
    pub offline_sweep_ms: u64,
    /// Pings go through the position trust rules (`[trust]`): implausible
    /// jumps refused, a standing unit's drift held at its anchor.
    pub trust_positions: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CamerasConfig {
    /// A camera whose system last reported longer ago than this is offline
    /// and left out of every answer, milliseconds.
    pub offline_after_ms: i64,
}

impl Default for CamerasConfig {
    fn default() -> Self {
        Self {
            offline_after_ms: patrol_dispatcher::cameras::CameraConfig::default().offline_after_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Positions are coalesced per unit and published once per interval, ms.
    pub position_interval_ms: u64,
    /// Events kept for resuming and slow readers; older ones force a resync.
    pub history_events: usize,
    /// The same history bounded by encoded size, bytes.
    pub history_bytes: usize,
    /// At most this many positions per PositionBatch event.
    pub max_positions_per_event: usize,
    /// Messages buffered per subscriber before it waits for the client.
    pub subscriber_buffer: usize,
    /// Subscribers connecting within this long of each other share one
    /// snapshot (built once under the core lock), milliseconds.
    pub snapshot_reuse_ms: u64,
    /// Open Watch streams on this node at most, from all callers together;
    /// one more is refused with RESOURCE_EXHAUSTED until one leaves.
    pub max_subscribers: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request or stream message, encoded bytes; larger ones get
    /// RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// Most pings in one ReportPositions batch (it bounds how long one batch
    /// holds the core lock); a larger batch ends the stream with
    /// RESOURCE_EXHAUSTED, the batches before it kept.
    pub max_batch_pings: usize,
    /// Pings per second one caller may report (its authenticated identity, or
    /// its `x-patrol-actor`, else its IP), over all its streams; a batch over
    /// the quota ends its ReportPositions stream with RESOURCE_EXHAUSTED, the
    /// batches before it kept. 0: no limit.
    pub pings_per_second_per_caller: u32,
    /// Pings a caller may send at once above that rate (must be at least
    /// `max_batch_pings`, so every allowed batch can pass).
    pub ping_burst_per_caller: u32,
    /// PostAlert calls per second per caller (a camera system); over it:
    /// RESOURCE_EXHAUSTED. 0: no limit.
    pub alerts_per_second_per_caller: u32,
    pub alert_burst_per_caller: u32,
    /// Login attempts per second per peer address (whatever identity they
    /// name; each costs an Argon2 hash), and the burst; over it:
    /// RESOURCE_EXHAUSTED. It slows guessing of identities the lockout cannot
    /// count (unknown ones) and keeps a flood of logins off the CPU. 0: no
    /// limit.
    pub logins_per_second_per_peer: u32,
    pub login_burst_per_peer: u32,
    /// Open ReportPositions and Watch streams per caller at most. (A
    /// ReceiveOrders stream is bounded per unit instead: one live stream per
    /// registered unit, a newer one replaces the older, so a fleet gateway
    /// with one stream per terminal is not capped here.)
    pub max_streams_per_caller: usize,
    /// A ReportPositions stream that sends nothing for this long is ended
    /// with RESOURCE_EXHAUSTED, milliseconds; 0: never.
    pub stream_idle_timeout_ms: u64,
    /// HTTP/2 PING (and TCP keep-alive) every this long on an idle
    /// connection, so dead peers are found and their streams dropped,
    /// milliseconds; 0: off.
    pub keepalive_interval_ms: u64,
    /// A connection whose PING is not answered within this long is closed,
    /// milliseconds.
    pub keepalive_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestsConfig {
    /// How long a `request_id` is remembered, milliseconds.
    pub ttl_ms: i64,
    /// At most this many are remembered (the oldest are forgotten first).
    pub max: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port` URLs. Empty: state lives in this process only.
    /// One URL for a single Redis; with `cluster`, any of the cluster's nodes.
    pub urls: Vec<String>,
    /// Talk to a Redis Cluster (keys of one region share a hash slot).
    pub cluster: bool,
    /// The region this node serves. Every key carries it as the hash tag
    /// (`patrol:{region}:log`), so one region lives on one shard; all nodes of
    /// a region must use the same value (and the same `units`, `alerts` and
    /// `watch.max_positions_per_event` settings, which shape the shared state).
    pub region: String,
    /// Routine changes (pings, registrations) waiting for Redis at once.
    /// When full a caller waits up to `queue_wait_ms`, then gets
    /// ResourceExhausted: backpressure, not memory.
    pub max_in_flight: usize,
    /// The same for urgent changes (incidents, dispatch, alerts, status,
    /// ticks), which have their own lane and connection so a ping flood never
    /// holds them up.
    pub urgent_max_in_flight: usize,
    pub queue_wait_ms: u64,
    /// How long a caller waits for its stored change to be applied here.
    pub apply_timeout_ms: u64,
    /// Timeout of one Redis command (the log reader's blocking read is
    /// shorter than this).
    pub response_timeout_ms: u64,
    /// Write a checkpoint of the state to Redis hashes after this many log
    /// entries (the log is then trimmed up to the checkpoint, but never
    /// closer to now than `keep_ms`, for late readers).
    pub checkpoint_entries: u64,
    /// ... or after this long, whichever comes first, milliseconds.
    pub checkpoint_interval_ms: u64,
    /// Log entries younger than this are never trimmed, milliseconds.
    pub keep_ms: u64,
    /// Records written per Redis call while checkpointing (bounds how long
    /// Redis is busy with one call).
    pub checkpoint_chunk: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Alerts below this confidence never open an incident.
    pub min_confidence: f32,
    /// A repeated alert of the same object (`object_id`) on the same camera
    /// within this long of its previous one joins the incident the object's
    /// alerts went to, whatever its label, milliseconds.
    pub object_window_ms: i64,
    /// At most this many objects are remembered (the longest unseen are
    /// forgotten first).
    pub max_objects: usize,
    /// Without a location of its own, an alert's incident is placed this
    /// many metres from the camera in the centre of its current view
    /// (clamped to its range; 0: at the camera).
    pub view_distance_m: f64,
}

/// The Frigate bridge: subscribes to Frigate's MQTT events and posts one
/// alert per tracked object that reaches `min_score` on a mapped camera.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Every call except health checks and Login must carry a credential.
    /// Off only for tests and labs (the server warns): a call without one is
    /// then let through with no role checks, one with one is still checked.
    pub required: bool,
    /// How long a Login session lasts before the person must log in again,
    /// milliseconds (default 12 hours).
    pub session_ttl_ms: i64,
    /// This many failures (wrong secrets) of one identity within
    /// `lockout_window_ms` lock it until an admin unlocks it.
    pub lockout_failures: usize,
    pub lockout_window_ms: i64,
    /// With Redis: how long a node trusts what it read about a credential,
    /// milliseconds; a revocation or lockout on another node takes effect
    /// here within this long.
    pub cache_ms: u64,
    /// The key tokens are hashed with (HMAC-SHA-256). Empty: a random one per
    /// process in memory; with Redis, one made by the region's first node and
    /// kept there (set one, e.g. from `PATROL_AUTH_TOKEN_KEY`, to keep it out of
    /// Redis).
    pub token_key: String,
    /// When no admin exists yet: create identity `admin` with a key and write
    /// its token to this file (mode 0600) at start. Empty: do not.
    pub admin_token_file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            required: true,
            session_ttl_ms: 12 * 3_600_000,
            lockout_failures: 5,
            lockout_window_ms: 15 * 60_000,
            cache_ms: 1_000,
            token_key: String::new(),
            admin_token_file: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrigateConfig {
    /// `mqtt://[user[:password]@]host[:port]` of the broker Frigate
    /// publishes to (port 1883 by default; no TLS). Empty: no bridge.
    pub mqtt_url: String,
    /// The topic Frigate publishes events on.
    pub topic: String,
    /// The MQTT client id; empty: `patrold-<node name>`. Each node needs its
    /// own (a broker drops the older of two connections with the same id).
    pub client_id: String,
    /// Frigate camera name -> registered patrol camera id. Events of cameras
    /// not listed are only counted.
    pub cameras: BTreeMap<String, String>,
    /// An object becomes an alert once its score (`top_score`, or `score`)
    /// reaches this, 0..=1.
    pub min_score: f32,
    /// Frigate labels to bridge ("person", "car", ...); empty: all.
    pub labels: Vec<String>,
    /// Frigate label -> the alert label posted (the alert policy's rules are
    /// by label, e.g. "person" -> "intrusion"); a label not listed is posted
    /// as it is.
    pub label_map: BTreeMap<String, String>,
    /// Frigate's HTTP address (`http://frigate:5000`): snapshot links are
    /// then `<base>/api/events/<id>/snapshot.jpg`; empty:
    /// `frigate://<camera>/<id>/snapshot.jpg`.
    pub snapshot_base_url: String,
    /// After the broker is lost, the first reconnect waits this long,
    /// doubling up to `reconnect_max_ms`, milliseconds.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Run the simulated Helsinki in-process.
    pub enabled: bool,
    /// OpenStreetMap extract the demo city is built from.
    pub map: PathBuf,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            grpc: "127.0.0.1:50051".parse().expect("literal address"),
            http: "127.0.0.1:8080".parse().expect("literal address"),
            node_id: String::new(),
            units: UnitsConfig::default(),
            watch: WatchConfig::default(),
            alerts: AlertsConfig::default(),
            demo: DemoConfig::default(),
            redis: RedisConfig::default(),
            auth: AuthConfig::default(),
            map: PathBuf::new(),
            network: Default::default(),
            profiles: Default::default(),
            trust: Default::default(),
            response: Default::default(),
            dispatch: Default::default(),
            tracks: Default::default(),
            zones: Default::default(),
            zone_file: PathBuf::new(),
            cameras: CamerasConfig::default(),
            limits: LimitsConfig::default(),
            requests: RequestsConfig::default(),
            shutdown_grace_ms: 5_000,
            frigate: FrigateConfig::default(),
            tls: TlsConfig::default(),
            audit: AuditConfig::default(),
        }
    }
}

impl Default for UnitsConfig {
    fn default() -> Self {
        Self {
            offline_after_ms: 120_000,
            future_tolerance_ms: 5_000,
            cell_size_m: 150.0,
            offline_sweep_ms: 1_000,
            trust_positions: true,
        }
    }
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            position_interval_ms: 250,
            history_events: 100_000,
            history_bytes: 128 << 20,
            max_positions_per_event: 1_000,
            subscriber_buffer: 256,
            snapshot_reuse_ms: 1_000,
            max_subscribers: 1_000,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            max_batch_pings: 10_000,
            // A fleet gateway reporting 20 000 units once a second.
            pings_per_second_per_caller: 20_000,
            ping_burst_per_caller: 40_000,
            alerts_per_second_per_caller: 50,
            alert_burst_per_caller: 200,
            logins_per_second_per_peer: 1,
            login_burst_per_peer: 10,
            // Before authentication every anonymous caller behind one
            // address is one caller: room for a command room's screens and
            // the load tools (the bench's connect storm opens 100 Watch
            // streams from one address).
            max_streams_per_caller: 256,
            stream_idle_timeout_ms: 60_000,
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 10_000,
        }
    }
}

impl Default for RequestsConfig {
    fn default() -> Self {
        let core = patrol_dispatcher::DispatcherConfig::default();
        Self {
            ttl_ms: core.request_ttl_ms,
            max: core.max_requests,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            cluster: false,
            region: "default".to_string(),
            max_in_flight: 1024,
            urgent_max_in_flight: 256,
            queue_wait_ms: 2_000,
            apply_timeout_ms: 10_000,
            response_timeout_ms: 3_000,
            checkpoint_entries: 200_000,
            checkpoint_interval_ms: 60_000,
            keep_ms: 600_000,
            checkpoint_chunk: 1_000,
        }
    }
}

impl RedisConfig {
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            min_confidence: patrol_dispatcher::AlertPolicy::default().min_confidence,
            object_window_ms: patrol_dispatcher::AlertPolicy::default().object_window_ms,
            max_objects: patrol_dispatcher::AlertPolicy::default().max_objects,
            view_distance_m: patrol_dispatcher::AlertPolicy::default().view_distance_m,
        }
    }
}

impl Default for FrigateConfig {
    fn default() -> Self {
        Self {
            mqtt_url: String::new(),
            topic: "frigate/events".to_string(),
            client_id: String::new(),
            cameras: BTreeMap::new(),
            min_score: 0.7,
            labels: Vec::new(),
            label_map: BTreeMap::new(),
            snapshot_base_url: String::new(),
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
        }
    }
}

impl FrigateConfig {
    pub fn enabled(&self) -> bool {
        !self.mqtt_url.is_empty()
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            map: PathBuf::from("data/helsinki.osm.pbf"),
            seed: 7,
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys and a wrong version are errors.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let config = Self::parse_file(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML file without [`Config::validate`]: for callers that layer
    /// more settings on top (environment, flags) and validate the result.
    pub fn parse_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.version == CONFIG_VERSION,
            "config version = {}: this build reads version {CONFIG_VERSION}",
            self.version
        );
        anyhow::ensure!(
            self.watch.position_interval_ms >= 1,
            "watch.position_interval_ms must be >= 1"
        );
        anyhow::ensure!(
            self.auth.session_ttl_ms >= 1_000,
            "auth.session_ttl_ms = {}: must be >= 1000",
            self.auth.session_ttl_ms
        );
        anyhow::ensure!(
            self.auth.lockout_failures >= 1 && self.auth.lockout_window_ms >= 1,
            "auth.lockout_failures and auth.lockout_window_ms must be >= 1"
        );
        anyhow::ensure!(
            self.watch.history_events >= 16,
            "watch.history_events must be >= 16"
        );
        anyhow::ensure!(
            self.watch.history_bytes >= 1 << 16,
            "watch.history_bytes must be >= 65536"
        );
        anyhow::ensure!(
            self.watch.max_positions_per_event >= 1,
            "watch.max_positions_per_event must be >= 1"
        );
        // Each is a tokio channel's or semaphore's size: tokio panics past
        // 2^61, so a bound well below that is checked here, not at run time.
        anyhow::ensure!(
            (1..=MAX_QUEUE).contains(&self.watch.subscriber_buffer),
            "watch.subscriber_buffer must be in 1..={MAX_QUEUE}"
        );
        anyhow::ensure!(
            self.units.offline_after_ms > 0,
            "units.offline_after_ms must be > 0"
        );
        anyhow::ensure!(
            self.units.future_tolerance_ms >= 0,
            "units.future_tolerance_ms must be >= 0"
        );
        anyhow::ensure!(
            self.units.cell_size_m.is_finite()
                && (1.0..=1_000_000.0).contains(&self.units.cell_size_m),
            "units.cell_size_m must be in 1..=1000000"
        );
        anyhow::ensure!(
            self.units.offline_sweep_ms >= 1,
            "units.offline_sweep_ms must be >= 1"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.alerts.min_confidence),
            "alerts.min_confidence must be in 0..=1"
        );
        anyhow::ensure!(
            (0.0..=patrol_dispatcher::cameras::MAX_RANGE_M).contains(&self.alerts.view_distance_m),
            "alerts.view_distance_m must be in 0..={} metres",
            patrol_dispatcher::cameras::MAX_RANGE_M
        );
        anyhow::ensure!(
            self.alerts.object_window_ms >= 0 && self.alerts.max_objects >= 1,
            "alerts.object_window_ms must be >= 0 and alerts.max_objects >= 1"
        );
        if self.frigate.enabled() {
            crate::frigate::broker_address(&self.frigate.mqtt_url)
                .map_err(|e| anyhow::anyhow!("frigate.mqtt_url: {e}"))?;
            anyhow::ensure!(
                !self.frigate.topic.is_empty(),
                "frigate.topic must not be empty"
            );
        }
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.frigate.min_score),
            "frigate.min_score must be in 0..=1"
        );
        anyhow::ensure!(
            self.frigate.reconnect_min_ms >= 1
                && self.frigate.reconnect_max_ms >= self.frigate.reconnect_min_ms,
            "frigate.reconnect_min_ms must be >= 1 and <= frigate.reconnect_max_ms"
        );
        for (frigate, camera) in &self.frigate.cameras {
            patrol_dispatcher::error::validate_id("frigate.cameras", camera)
                .map_err(|e| anyhow::anyhow!("frigate.cameras.{frigate}: {e}"))?;
        }
        anyhow::ensure!(
            self.node_id.len() <= 32 && !self.node_id.contains(char::is_whitespace),
            "node_id must be at most 32 bytes without spaces"
        );
        anyhow::ensure!(
            !self.redis.region.is_empty()
                && self.redis.region.len() <= 64
                && !self.redis.region.contains(['{', '}', ' ', ':']),
            "redis.region = {:?}: must be 1-64 bytes without braces, colons or spaces",
            self.redis.region
        );
        anyhow::ensure!(
            self.redis.cluster || self.redis.urls.len() <= 1,
            "redis.urls has {} entries: more than one needs redis.cluster = true",
            self.redis.urls.len()
        );
        anyhow::ensure!(
            (1..=MAX_QUEUE).contains(&self.redis.max_in_flight)
                && (1..=MAX_QUEUE).contains(&self.redis.urgent_max_in_flight),
            "redis.max_in_flight and redis.urgent_max_in_flight must be in 1..={MAX_QUEUE}"
        );
        anyhow::ensure!(
            self.redis.checkpoint_chunk >= 1,
            "redis.checkpoint_chunk must be >= 1"
        );
        anyhow::ensure!(
            self.limits.max_message_bytes >= 1 << 10,
            "limits.max_message_bytes must be >= 1024"
        );
        anyhow::ensure!(
            self.limits.max_batch_pings >= 1,
            "limits.max_batch_pings must be >= 1"
        );
        let l = &self.limits;
        anyhow::ensure!(
            l.pings_per_second_per_caller == 0
                || l.ping_burst_per_caller as usize >= l.max_batch_pings,
            "limits.ping_burst_per_caller = {} must be >= limits.max_batch_pings = {} (a full batch could never pass)",
            l.ping_burst_per_caller,
            l.max_batch_pings
        );
        anyhow::ensure!(
            l.alerts_per_second_per_caller == 0 || l.alert_burst_per_caller >= 1,
            "limits.alert_burst_per_caller must be >= 1"
        );
        anyhow::ensure!(
            l.logins_per_second_per_peer == 0 || l.login_burst_per_peer >= 1,
            "limits.login_burst_per_peer must be >= 1"
        );
        anyhow::ensure!(
            l.max_streams_per_caller >= 1,
            "limits.max_streams_per_caller must be >= 1"
        );
        anyhow::ensure!(
            l.keepalive_interval_ms == 0 || l.keepalive_timeout_ms >= 1,
            "limits.keepalive_timeout_ms must be >= 1 when limits.keepalive_interval_ms is set"
        );
        anyhow::ensure!(
            self.watch.max_subscribers >= 1,
            "watch.max_subscribers must be >= 1"
        );
        anyhow::ensure!(
            self.requests.ttl_ms >= 0 && self.requests.max >= 1,
            "requests.ttl_ms must be >= 0 and requests.max >= 1"
        );
        self.tls.validate()?;
        self.network.validate()?;
        self.profiles.validate()?;
        self.trust.validate()?;
        self.response.validate()?;
        self.dispatch.validate()?;
        self.zones.validate()?;
        self.tracks
            .validate()
            .map_err(|e| anyhow::anyhow!("tracks: {e}"))?;
        anyhow::ensure!(
            self.cameras.offline_after_ms > 0,
            "cameras.offline_after_ms must be > 0"
        );
        anyhow::ensure!(
            self.redis.response_timeout_ms >= 100,
            "redis.response_timeout_ms must be >= 100"
        );
        anyhow::ensure!(
            self.redis.checkpoint_entries >= 1 && self.redis.checkpoint_interval_ms >= 1,
            "redis.checkpoint_entries and redis.checkpoint_interval_ms must be >= 1"
        );
        anyhow::ensure!(
            self.audit.retention_ms >= 1 && i64::try_from(self.audit.retention_ms).is_ok(),
            "audit.retention_ms must be >= 1 (and fit in an i64)"
        );
        anyhow::ensure!(
            self.audit.memory_records >= 1
                && self.audit.queue_records >= 1
                && self.audit.batch_records >= 1,
            "audit.memory_records, audit.queue_records and audit.batch_records must be >= 1"
        );
        Ok(())
    }

    pub fn position_interval(&self) -> Duration {
        Duration::from_millis(self.watch.position_interval_ms)
    }

    /// The map to load: `map`, or the demo's when the demo runs without one.
    pub fn map_path(&self) -> Option<&Path> {
        if !self.map.as_os_str().is_empty() {
            Some(&self.map)
        } else if self.demo.enabled {
            Some(&self.demo.map)
        } else {
            None
        }
    }

    /// The dispatcher core's settings (without the network: the server adds
    /// the loaded one).
    pub fn dispatcher(&self) -> patrol_dispatcher::DispatcherConfig {
        patrol_dispatcher::DispatcherConfig {
            units: patrol_dispatcher::UnitIndexConfig {
                offline_after_ms: self.units.offline_after_ms,
                future_tolerance_ms: self.units.future_tolerance_ms,
                cell_size_m: self.units.cell_size_m,
            },
            alerts: patrol_dispatcher::AlertPolicy {
                min_confidence: self.alerts.min_confidence,
                object_window_ms: self.alerts.object_window_ms,
                max_objects: self.alerts.max_objects,
                view_distance_m: self.alerts.view_distance_m,
                ..Default::default()
            },
            request_ttl_ms: self.requests.ttl_ms,
            max_requests: self.requests.max,
            network: None,
            trust: self.trust.clone(),
            trust_positions: self.units.trust_positions,
            plans: self.response.clone(),
            dispatch: self.dispatch.clone(),
            tracks: self.tracks,
            zones: self.zones,
            cameras: patrol_dispatcher::cameras::CameraConfig {
                offline_after_ms: self.cameras.offline_after_ms,
            },
            // With Redis every node of a region applies the same log and must
            // hand out the same ids, so there is no per-node prefix.
            id_prefix: if self.redis.enabled() || self.node_id.is_empty() {
                String::new()
            } else {
                format!("{}:", self.node_id)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_rejects_unknown_keys() {
        let c: Config = toml::from_str(
            "version = 1\ngrpc = \"127.0.0.1:1\"\n[watch]\nposition_interval_ms = 100\n",
        )
        .unwrap();
        assert_eq!(c.grpc.port(), 1);
        assert_eq!(c.watch.position_interval_ms, 100);
        assert_eq!(
            c.watch.history_events,
            WatchConfig::default().history_events
        );
        assert!(toml::from_str::<Config>("grcp = \"127.0.0.1:1\"").is_err());
        let wrong: Config = toml::from_str("version = 2").unwrap();
        assert!(
            wrong
                .validate()
                .unwrap_err()
                .to_string()
                .contains("version")
        );
        let mut plaintext = Config::default();
        plaintext.tls.plaintext = true;
        plaintext.validate().unwrap();
    }

    #[test]
    fn the_example_config_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/patrold.toml");
        assert_eq!(Config::parse_file(&path).unwrap(), Config::default());
    }

    fn tls_error(tls: TlsConfig) -> String {
        let config = Config {
            tls,
            ..Config::default()
        };
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn tls_is_required_unless_plaintext_is_chosen() {
        let err = tls_error(TlsConfig::default());
        assert!(
            err.contains("tls.cert")
                && err.contains("tls.key")
                && err.contains("tls.plaintext = true"),
            "{err}"
        );
        let files = TlsConfig {
            cert: "server.crt".into(),
            key: "server.key".into(),
            ..TlsConfig::default()
        };
        Config {
            tls: files.clone(),
            ..Config::default()
        }
        .validate()
        .unwrap();
        let err = tls_error(TlsConfig {
            key: PathBuf::new(),
            ..files.clone()
        });
        assert!(err.contains("only tls.cert is set"), "{err}");
        let err = tls_error(TlsConfig {
            cert: PathBuf::new(),
            ..files.clone()
        });
        assert!(err.contains("only tls.key is set"), "{err}");
        let err = tls_error(TlsConfig {
            plaintext: true,
            ..files.clone()
        });
        assert!(err.contains("tls.plaintext = true together with"), "{err}");
        let err = tls_error(TlsConfig {
            require_client_cert: true,
            ..files.clone()
        });
        assert!(err.contains("tls.client_ca"), "{err}");
        let parsed: Config = toml::from_str(
            "[tls]\ncert = \"a.pem\"\nkey = \"b.pem\"\nclient_ca = \"ca.pem\"\nrequire_client_cert = true\n",
        )
        .unwrap();
        assert!(parsed.tls.mutual());
        parsed.validate().unwrap();
        assert!(toml::from_str::<Config>("[tls]\ncertificate = \"a.pem\"\n").is_err());
    }
}
