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

use crate::api::{CameraApi, CommandRoomApi, IncidentApi, UnitApi};
use crate::config::Config;
use crate::hub::{Hub, now_ms, shutdown_started};
use crate::telemetry as m;

/// The fully qualified names of the four patrol services (for health checks).
pub const SERVICE_NAMES: [&str; 4] = [
    "patrol.v1.UnitService",
    "patrol.v1.CameraService",
    "patrol.v1.IncidentService",
    "patrol.v1.CommandRoom",
];

/// A node that is serving. Drop does not stop it: call [`RunningServer::shutdown`].
pub struct RunningServer {
    hub: Arc<Hub>,
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

    /// `http://` URL of the gRPC endpoint, for clients.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
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
    let hub = Hub::new(config);

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

    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            patrol_proto::shared::unit_service_server::UnitServiceServer::new(UnitApi::new(
                hub.clone(),
            )),
        )
        .add_service(pb::camera_service_server::CameraServiceServer::new(
            CameraApi::new(hub.clone()),
        ))
        .add_service(pb::incident_service_server::IncidentServiceServer::new(
            IncidentApi::new(hub.clone()),
        ))
        .add_service(
            patrol_proto::shared::command_room_server::CommandRoomServer::new(CommandRoomApi::new(
                hub.clone(),
            )),
        );
    let incoming = TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
    let grpc = tokio::spawn(
        router.serve_with_incoming_shutdown(incoming, shutdown_started(hub.shutdown_signal())),
    );
    let http = tokio::spawn(m::serve_http(
        http_listener,
        shutdown_started(hub.shutdown_signal()),
    ));
    let tickers = vec![
        tokio::spawn(publish_positions(hub.clone())),
        tokio::spawn(sweep_units(hub.clone())),
    ];
    tracing::info!(grpc = %grpc_addr, http = %http_addr, "patrold serving");
    Ok(RunningServer {
        hub,
        grpc_addr,
        http_addr,
        health,
        grpc,
        http,
        tickers,
    })
}

/// Publishes coalesced positions once per `position_interval`.
async fn publish_positions(hub: Arc<Hub>) {
    let mut interval = tokio::time::interval(hub.config.position_interval());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let published = hub.flush_positions();
        metrics::counter!(m::POSITIONS_PUBLISHED).increment(published as u64);
    }
}

/// Announces units going offline or back online, and refreshes the unit gauges.
async fn sweep_units(hub: Arc<Hub>) {
    let mut interval =
        tokio::time::interval(Duration::from_millis(hub.config.units.offline_sweep_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let counts = hub.with_core_mut(|core, now| {
            core.sweep_offline(now);
            core.units().count_by_status(now_ms().max(now))
        });
        for (status, count) in counts {
            metrics::gauge!(m::UNITS, "status" => status.as_str()).set(count as f64);
        }
    }
}
