//! The demo city: central Helsinki's real streets and surveillance cameras from
//! OpenStreetMap, with simulated patrol units, callers, camera analytics and a duty
//! operator, all driving a patrol server through its public gRPC API only.
//!
//! `patrold --demo` starts its server and then calls [`run`] in the same process;
//! the simulator is still just another client. Map data (c) OpenStreetMap
//! contributors, ODbL 1.0.
//!
//! # Layout
//! - [`osm`]: [`osm::CityMap`], a thin wrapper over the extract `patrol_roads`
//!   loads (the street network of every profile, the mapped cameras, street
//!   names) with what only a simulation picks: patrol destinations and random
//!   network points. Also used by the benchmark for realistic positions.
//! - `unit`: one task per unit: movement along routes on the street network with
//!   its own profile (`patrol_roads` routing), pings, its `ReceiveOrders`
//!   stream (reconnected with backoff), status changes and breaks.
//! - `positions`: batches every unit's pings onto one `ReportPositions` stream,
//!   reopened every `report_period` to log the server's counts.
//! - `operator`: calls become incidents, `Recommend` then `Dispatch`, closing
//!   incidents units have cleared; camera analytics posting alerts.
//! - this file: [`DemoConfig`], start-up (map load, connect with retries,
//!   registration) and shutdown.
//!
//! The city is tested end to end against a real patrold in
//! `tests/demo_city.rs` (workspace `tests/` crate).
//!
//! Randomness comes from [`DemoConfig::seed`]: every task has its own seeded
//! generator, so a run makes the same choices in each task (the interleaving with
//! the server's replies and the clock is not reproducible).

pub mod osm;

mod operator;
mod positions;
mod unit;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use patrol_proto::auth::{Authed, Bearer, authed};
use patrol_proto::v1::camera_service_client::CameraServiceClient;
use patrol_proto::v1::incident_service_client::IncidentServiceClient;
use patrol_proto::v1::unit_service_client::UnitServiceClient;
use patrol_proto::v1::{
    Camera, RegisterCameraRequest, RegisterUnitRequest, UnitStatus, UpdateStatusRequest,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::transport::Endpoint;
use tracing::{error, info, warn};

use crate::operator::Operator;
use crate::osm::CityMap;
use crate::unit::{UnitSpec, UnitTask};

/// The map shipped in the repository, relative to the working directory.
pub const DEFAULT_MAP_PATH: &str = "data/helsinki.osm.pbf";

/// Pings queued towards the server at most; beyond that a ping is dropped and
/// counted (the unit's next ping supersedes it).
const PING_QUEUE: usize = 4096;
/// `ReceiveOrders` streams per HTTP/2 connection, well under servers' usual limit
/// of concurrent streams (often 100-200) so unary calls never wait for a slot.
const ORDER_STREAMS_PER_CONNECTION: usize = 64;

/// What the demo city simulates and where it sends it.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The patrol server, e.g. `http://127.0.0.1:50051`.
    pub endpoint: String,
    /// The bearer token every call carries (the demo issues itself one);
    /// `None` for a server without `auth.required`.
    pub token: Option<String>,
    /// An `.osm.pbf` extract.
    pub map_path: PathBuf,
    /// Seeds every random choice.
    pub seed: u64,
    pub cars: usize,
    pub foot: usize,
    pub ebikes: usize,
    pub motorcycles: usize,
    /// How often each unit moves and pings.
    pub ping_interval: Duration,
    /// Mean time between calls (each jittered by 0.5-1.5x).
    pub incident_interval: Duration,
    /// Mean time between camera alerts (jittered by 0.5-1.5x).
    pub alert_interval: Duration,
    /// How long one `ReportPositions` stream stays open before it is closed to read
    /// the server's accepted/rejected counts.
    pub report_period: Duration,
    /// Simulated seconds per real second for movement, time on scene and breaks:
    /// 1 is real time; tests and impatient demos speed the city up (10 = units
    /// move ten times faster and clear scenes in 2-6 s).
    pub time_scale: f64,
    /// Connection attempts at start-up (the server may still be starting), 250 ms
    /// apart, doubling up to 2 s.
    pub connect_attempts: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            endpoint: "http://127.0.0.1:50051".to_owned(),
            token: None,
            map_path: default_map_path(),
            seed: 2024,
            cars: 12,
            foot: 20,
            ebikes: 6,
            motorcycles: 4,
            ping_interval: Duration::from_secs(1),
            incident_interval: Duration::from_secs(15),
            alert_interval: Duration::from_secs(10),
            report_period: Duration::from_secs(20),
            time_scale: 1.0,
            connect_attempts: 10,
        }
    }
}

/// [`DEFAULT_MAP_PATH`] when it exists in the working directory, else the
/// repository's copy as seen at build time (tests run from a crate's directory).
pub fn default_map_path() -> PathBuf {
    let relative = PathBuf::from(DEFAULT_MAP_PATH);
    if relative.exists() {
        return relative;
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/helsinki.osm.pbf"
    ))
}

/// Runs the demo city against `config.endpoint` until `shutdown` resolves, then
/// drops every task and stream. Fails only at start-up: the map cannot be read or
/// the server cannot be reached after `connect_attempts`. Server errors later are
/// logged and the city carries on.
pub async fn run(
    config: DemoConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    tokio::select! {
        biased;
        () = shutdown => {
            info!("demo city stopped");
            Ok(())
        }
        result = run_city(config) => result,
    }
}

/// Start-up, then wait on the tasks; dropping this future aborts them all.
async fn run_city(config: DemoConfig) -> anyhow::Result<()> {
    let map_path = config.map_path.clone();
    let load = async move {
        tokio::task::spawn_blocking(move || CityMap::load(&map_path))
            .await
            .context("map loader stopped")?
    };
    let bearer = Bearer::new(config.token.as_deref()).context("the demo's token")?;
    let (map, channel) =
        tokio::try_join!(load, connect(&config.endpoint, config.connect_attempts))?;
    let channel = authed(channel, bearer.clone());
    let map = Arc::new(map);
    info!(
        nodes = map.graph.node_count(),
        edges = map.graph.edge_count(),
        fingerprint = %map.graph.fingerprint(),
        cameras = map.cameras.len(),
        "map loaded (c) OpenStreetMap contributors, ODbL 1.0"
    );

    register_cameras(CameraServiceClient::new(channel.clone()), &map).await;

    let mut units = UnitServiceClient::new(channel.clone());
    let mut rng = StdRng::seed_from_u64(config.seed);
    let fleet = unit::fleet(
        config.cars,
        config.foot,
        config.ebikes,
        config.motorcycles,
        &mut rng,
    );
    let order_connections: Vec<Authed> = (0..fleet.len().div_ceil(ORDER_STREAMS_PER_CONNECTION))
        .map(|_| endpoint(&config.endpoint).map(|e| authed(e.connect_lazy(), bearer.clone())))
        .collect::<anyhow::Result<_>>()?;

    let mut tasks = JoinSet::new();
    let (ping_tx, ping_rx) = mpsc::channel(PING_QUEUE);
    let (event_tx, event_rx) = mpsc::channel(64);
    let dropped_pings = Arc::new(AtomicU64::new(0));
    let mut unit_commands = HashMap::new();
    for (i, spec) in fleet.into_iter().enumerate() {
        if !register_unit(&mut units, &spec).await {
            continue;
        }
        let (order_tx, order_rx) = mpsc::channel(8);
        let (command_tx, command_rx) = mpsc::channel(8);
        unit_commands.insert(spec.id.clone(), command_tx);
        let orders_client =
            UnitServiceClient::new(order_connections[i / ORDER_STREAMS_PER_CONNECTION].clone());
        tasks.spawn(unit::listen_for_orders(
            orders_client,
            spec.id.clone(),
            order_tx,
        ));
        let task = UnitTask::new(
            spec,
            Arc::clone(&map),
            substream(config.seed, 100 + i as u64),
            units.clone(),
            ping_tx.clone(),
            Arc::clone(&dropped_pings),
            event_tx.clone(),
            config.time_scale,
        );
        tasks.spawn(task.run(config.ping_interval, order_rx, command_rx));
    }
    let unit_count = unit_commands.len();
    drop(ping_tx);
    tasks.spawn(positions::report_positions(
        units.clone(),
        ping_rx,
        config.report_period,
        dropped_pings,
    ));
    tasks.spawn(operator::post_alerts(
        CameraServiceClient::new(channel.clone()),
        Arc::clone(&map),
        substream(config.seed, 1),
        config.alert_interval,
        event_tx,
    ));
    let duty_operator = Operator {
        incidents: IncidentServiceClient::new(channel),
        units,
        map,
        rng: substream(config.seed, 2),
        unit_commands,
    };
    tasks.spawn(duty_operator.run(config.incident_interval, event_rx));
    info!(units = unit_count, endpoint = %config.endpoint, "demo city running");

    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            error!(error = %e, "a demo city task failed");
        }
    }
    Ok(())
}

/// An independent generator per task, all from one seed.
fn substream(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn endpoint(uri: &str) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(uri.to_owned())
        .with_context(|| format!("invalid patrol server endpoint {uri:?}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true))
}

/// Connects, retrying with backoff while the server may still be starting.
async fn connect(uri: &str, attempts: u32) -> anyhow::Result<tonic::transport::Channel> {
    let endpoint = endpoint(uri)?;
    let attempts = attempts.max(1);
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(e) if attempt >= attempts => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot reach the patrol server at {uri} after {attempts} attempts"
                )));
            }
            Err(e) => {
                warn!(endpoint = %uri, attempt, error = %e, "patrol server not reachable yet")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
        attempt += 1;
    }
}

async fn register_cameras(mut cameras: CameraServiceClient<Authed>, map: &CityMap) {
    let mut failed = 0;
    for c in &map.cameras {
        let camera = Camera {
            vertical_fov_deg: Default::default(),
            last_seen_unix_ms: Default::default(),
            online: Default::default(),
            ptz_head: Default::default(),
            id: c.id.clone(),
            name: c.name.clone(),
            lon: c.position.lon,
            lat: c.position.lat,
            mount_height_m: c.mount_height_m,
            heading_deg: c.heading_deg,
            fov_deg: c.fov_deg,
            range_m: c.range_m,
            ptz: c.ptz,
        };
        if let Err(e) = cameras
            .register_camera(RegisterCameraRequest {
                camera: Some(camera),
            })
            .await
        {
            failed += 1;
            warn!(camera = %c.id, code = ?e.code(), message = e.message(), "camera registration refused");
        }
    }
    info!(
        registered = map.cameras.len() - failed,
        failed, "cameras registered"
    );
}

/// Registers a unit and makes it AVAILABLE unless the server holds an assignment
/// for it (its order stream will then resend the order). False when refused.
async fn register_unit(units: &mut UnitServiceClient<Authed>, spec: &UnitSpec) -> bool {
    let request = RegisterUnitRequest {
        id: spec.id.clone(),
        call_sign: spec.call_sign.clone(),
        kind: spec.kind.into(),
        capabilities: spec.capabilities.clone(),
    };
    let unit = match units.register_unit(request).await {
        Ok(reply) => reply.into_inner().unit,
        Err(e) => {
            warn!(unit = %spec.id, code = ?e.code(), message = e.message(), "unit registration refused");
            return false;
        }
    };
    let assigned = unit.as_ref().is_some_and(|u| !u.incident_id.is_empty());
    let available = unit
        .as_ref()
        .is_some_and(|u| u.status() == UnitStatus::Available);
    if !assigned && !available {
        let request = UpdateStatusRequest {
            unit_id: spec.id.clone(),
            status: UnitStatus::Available.into(),
        };
        if let Err(e) = units.update_status(request).await {
            warn!(unit = %spec.id, code = ?e.code(), message = e.message(), "cannot make unit available");
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.local_addr().expect("local addr").port()
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_clear_error_after_retries() {
        let config = DemoConfig {
            endpoint: format!("http://127.0.0.1:{}", closed_port()),
            connect_attempts: 2,
            ..DemoConfig::default()
        };
        let err = run(config, std::future::pending())
            .await
            .expect_err("nothing listens");
        let message = format!("{err:#}");
        assert!(
            message.contains("cannot reach the patrol server"),
            "{message}"
        );
        assert!(message.contains("after 2 attempts"), "{message}");
    }

    #[tokio::test]
    async fn a_missing_map_is_a_clear_error() {
        let config = DemoConfig {
            endpoint: format!("http://127.0.0.1:{}", closed_port()),
            map_path: PathBuf::from("/nonexistent/city.osm.pbf"),
            connect_attempts: 1000,
            ..DemoConfig::default()
        };
        let err = run(config, std::future::pending())
            .await
            .expect_err("no map");
        assert!(
            format!("{err:#}").contains("/nonexistent/city.osm.pbf"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn shutdown_stops_the_city_even_during_start_up() {
        let config = DemoConfig {
            endpoint: format!("http://127.0.0.1:{}", closed_port()),
            connect_attempts: 1000,
            ..DemoConfig::default()
        };
        run(config, async {})
            .await
            .expect("a requested stop is not an error");
    }

    #[test]
    fn an_invalid_endpoint_is_rejected() {
        let err = endpoint("not a uri").expect_err("invalid");
        assert!(format!("{err:#}").contains("not a uri"));
    }

    #[test]
    fn substreams_differ_and_repeat() {
        use rand::RngExt;
        let draw = |seed, stream| substream(seed, stream).random::<u64>();
        assert_eq!(draw(7, 1), draw(7, 1));
        assert_ne!(draw(7, 1), draw(7, 2));
        assert_ne!(draw(7, 1), draw(8, 1));
    }
}
