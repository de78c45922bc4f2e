//! [`Hub`]: what the gRPC services talk to. It stamps each change with who
//! sent it and when ([`Origin`]), hands it to the [`Sequencer`] (which orders
//! it, in memory or through the region's Redis log) and returns the typed
//! outcome; reads go to the [`NodeState`] directly.
//!
//! Ownership: the node state is synchronous and owns the core, the
//! command-room log and the terminal routes ([`crate::node`]); the sequencer
//! owns ordering ([`crate::sequencer`], [`crate::durable`]); the checkpointer
//! owns change tracking ([`crate::durable::checkpoint`]). The hub owns none of
//! them, only the wiring.

use std::sync::Arc;

use bytes::Bytes;
use patrol_dispatcher::{
    Actor, AlertOutcome, Camera, DispatchRequest, Dispatcher, Follow, Incident, IncidentUpdate,
    Millis, NewAlert, NewIncident, NewSighting, NewTrack, Order, Target, Track, Unit, UnitProfile,
    UnitStatus, Zone, ZoneSpec,
};
use tokio::sync::watch;

use crate::audit::{AuditLog, AuditRecord, OUTCOME_OK, outcome_of};
use crate::clock::now_ms;
use crate::command::{Aims, Command, Envelope, FromOutcome, PingsOutcome, Ticked, expect};
use crate::config::Config;
use crate::error::ServerError;
use crate::limits::Limits;
use crate::node::snapshot::SnapshotCache;
use crate::node::{NodeSettings, NodeStart, NodeState};
use crate::sequencer::Sequencer;

/// Who sent a change and when this node accepted it.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub actor: Actor,
    pub time: Millis,
}

impl Origin {
    /// The server itself, now.
    pub fn system(node: &str) -> Self {
        Self {
            actor: Actor::system(node),
            time: now_ms(),
        }
    }
}

/// One node's services' view of its state. See the module docs.
pub struct Hub {
    node: Arc<NodeState>,
    sequencer: Sequencer,
    snapshots: SnapshotCache,
    limits: Arc<Limits>,
    pub config: Config,
    /// This node's name in actors ("node_id", or the gRPC address).
    name: String,
    /// Who did what: one record per audited command (see [`Hub::run`]).
    audit: AuditLog,
}

impl Hub {
    /// An in-memory node whose core has these settings.
    pub fn in_memory(config: Config, core: patrol_dispatcher::DispatcherConfig) -> Arc<Self> {
        let start = NodeStart {
            core: Dispatcher::new(core),
            epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                .max(1),
            last_seq: 0,
        };
        let node = Arc::new(NodeState::new(settings(&config), start));
        let audit = AuditLog::memory(&config.audit);
        Self::new(config, node, Sequencer::Memory, audit)
    }

    /// A node over `node` whose commands `sequencer` orders, recording them
    /// in `audit`.
    pub fn new(
        config: Config,
        node: Arc<NodeState>,
        sequencer: Sequencer,
        audit: AuditLog,
    ) -> Arc<Self> {
        let name = if config.node_id.is_empty() {
            config.grpc.to_string()
        } else {
            config.node_id.clone()
        };
        Arc::new(Self {
            node,
            sequencer,
            snapshots: SnapshotCache::new(std::time::Duration::from_millis(
                config.watch.snapshot_reuse_ms,
            )),
            limits: Arc::new(Limits::new(&config)),
            config,
            name,
            audit,
        })
    }

    /// The audit log (queries, flush).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The node state (reads, the Watch log, order routes).
    pub fn node(&self) -> &Arc<NodeState> {
        &self.node
    }

    /// Shared snapshots for new Watch subscribers.
    pub fn snapshots(&self) -> &SnapshotCache {
        &self.snapshots
    }

    /// Per-caller rate and stream limits.
    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// This node's name, as actors carry it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the core. The closure runs under the core lock: keep it short.
    pub fn read<R>(&self, f: impl FnOnce(&Dispatcher) -> R) -> R {
        self.node.read(f)
    }

    /// Every command goes through here: it is ordered and applied, and an
    /// audited one ([`Command::audited`]) leaves one audit record with who
    /// sent it, when, what it was about and its outcome (without waiting
    /// for the record to be stored).
    async fn run<T: FromOutcome>(&self, origin: Origin, body: Command) -> Result<T, ServerError> {
        let name = body.name();
        let audit = body.audited().then(|| AuditRecord {
            time_ms: origin.time,
            actor: origin.actor.clone(),
            action: name.to_string(),
            target: body.audit_target(),
            detail: body.audit_detail(),
            outcome: String::new(),
        });
        let result = self
            .sequencer
            .submit(&self.node, Envelope::new(origin.actor, origin.time, body))
            .await;
        if let Some(mut rec) = audit {
            match &result {
                Ok(outcome) => {
                    if rec.target.is_empty() {
                        rec.target = outcome.audit_target().unwrap_or_default();
                    }
                    rec.outcome = OUTCOME_OK.to_string();
                }
                Err(err) => {
                    rec.outcome = outcome_of(err);
                    let why: String = err.to_string().chars().take(200).collect();
                    rec.detail = format!("{}; refused: {why}", rec.detail);
                }
            }
            self.audit.record(rec);
        }
        expect(name, result?)
    }

    /// Registers a unit or updates its profile; true when it is new.
    pub async fn register_unit(
        &self,
        origin: Origin,
        profile: UnitProfile,
    ) -> Result<(Unit, bool), ServerError> {
        self.run(origin, Command::RegisterUnit(profile)).await
    }

    /// Applies a batch of pings that passed the edge's checks.
    pub async fn report_pings(
        &self,
        origin: Origin,
        pings: Vec<Bytes>,
    ) -> Result<PingsOutcome, ServerError> {
        self.run(origin, Command::Pings(pings)).await
    }

    pub async fn update_status(
        &self,
        origin: Origin,
        unit_id: String,
        status: UnitStatus,
    ) -> Result<Unit, ServerError> {
        self.run(origin, Command::UpdateStatus { unit_id, status })
            .await
    }

    /// Registers a camera or updates it; true when it is new.
    pub async fn register_camera(
        &self,
        origin: Origin,
        camera: Camera,
    ) -> Result<(Camera, bool), ServerError> {
        self.run(origin, Command::RegisterCamera(camera)).await
    }

    pub async fn post_alert(
        &self,
        origin: Origin,
        alert: NewAlert,
    ) -> Result<AlertOutcome, ServerError> {
        self.run(origin, Command::PostAlert(alert)).await
    }

    pub async fn create_incident(
        &self,
        origin: Origin,
        new: NewIncident,
    ) -> Result<Incident, ServerError> {
        self.run(origin, Command::CreateIncident(new)).await
    }

    /// Assigns units to an incident, all or none; returns the incident and
    /// each unit's order.
    pub async fn dispatch(
        &self,
        origin: Origin,
        request: DispatchRequest,
    ) -> Result<(Incident, Vec<Order>), ServerError> {
        self.run(origin, Command::Dispatch(request)).await
    }

    pub async fn update_incident(
        &self,
        origin: Origin,
        update: IncidentUpdate,
    ) -> Result<Incident, ServerError> {
        self.run(origin, Command::UpdateIncident(update)).await
    }

    /// A terminal acknowledges its unit's order.
    pub async fn acknowledge_order(
        &self,
        origin: Origin,
        unit_id: String,
        order_id: String,
    ) -> Result<Order, ServerError> {
        self.run(origin, Command::AcknowledgeOrder { unit_id, order_id })
            .await
    }

    /// Aims cameras at `target` (the named ones, or every one that can see
    /// it), turning the PTZ ones unless `dry_run`.
    pub async fn aim_cameras(
        &self,
        origin: Origin,
        target: Target,
        target_height_m: Option<f64>,
        camera_ids: Vec<String>,
        limit: usize,
        dry_run: bool,
    ) -> Result<Aims, ServerError> {
        self.run(
            origin,
            Command::AimCameras {
                target,
                target_height_m,
                camera_ids,
                limit,
                dry_run,
            },
        )
        .await
    }

    /// Keeps cameras on a unit, or stops (`None` after stopping).
    pub async fn follow_unit(
        &self,
        origin: Origin,
        unit_id: String,
        camera_ids: Vec<String>,
        stop: bool,
    ) -> Result<Option<Follow>, ServerError> {
        self.run(
            origin,
            Command::FollowUnit {
                unit_id,
                camera_ids,
                stop,
            },
        )
        .await
    }

    /// Starts a track.
    pub async fn start_track(&self, origin: Origin, new: NewTrack) -> Result<Track, ServerError> {
        self.run(origin, Command::StartTrack(new)).await
    }

    /// Adds a sighting to a track.
    pub async fn add_sighting(
        &self,
        origin: Origin,
        track_id: String,
        sighting: NewSighting,
    ) -> Result<Track, ServerError> {
        self.run(origin, Command::AddSighting { track_id, sighting })
            .await
    }

    /// Closes a track.
    pub async fn close_track(
        &self,
        origin: Origin,
        track_id: String,
        reason: String,
    ) -> Result<Track, ServerError> {
        self.run(origin, Command::CloseTrack { track_id, reason })
            .await
    }

    /// Creates or replaces a zone.
    pub async fn put_zone(&self, origin: Origin, spec: ZoneSpec) -> Result<Zone, ServerError> {
        self.run(origin, Command::PutZone(Box::new(spec))).await
    }

    /// Removes a zone.
    pub async fn remove_zone(&self, origin: Origin, zone_id: String) -> Result<Zone, ServerError> {
        self.run(origin, Command::RemoveZone { zone_id }).await
    }

    /// Sets or clears a unit's home zone.
    pub async fn set_home_zone(
        &self,
        origin: Origin,
        unit_id: String,
        zone_id: Option<String>,
    ) -> Result<(), ServerError> {
        self.run(origin, Command::SetHomeZone { unit_id, zone_id })
            .await
    }

    /// Cameras reported alive at `time`; returns how many reports were newer.
    pub async fn camera_health(
        &self,
        origin: Origin,
        camera_ids: Vec<String>,
        time: Millis,
    ) -> Result<usize, ServerError> {
        self.run(origin, Command::CameraHealth { camera_ids, time })
            .await
    }

    /// Publishes coalesced positions (and, with `sweep`, offline changes);
    /// returns how many positions went out.
    pub async fn tick(&self, sweep: bool) -> Result<usize, ServerError> {
        let Ticked(positions) = self
            .run(Origin::system(&self.name), Command::Tick { sweep })
            .await?;
        Ok(positions)
    }

    /// Resolves when shutdown starts.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.node.shutdown_signal()
    }

    /// Stops taking changes and ends every terminal's order stream.
    pub fn begin_shutdown(&self) {
        self.node.begin_shutdown();
        self.sequencer.close();
    }
}

/// The node state's settings from the config.
pub fn settings(config: &Config) -> NodeSettings {
    NodeSettings {
        history_events: config.watch.history_events,
        history_bytes: config.watch.history_bytes,
        max_positions_per_event: config.watch.max_positions_per_event,
        camera_offline_after_ms: config.cameras.offline_after_ms,
    }
}

/// Waits until `rx` says shutdown has begun.
pub async fn shutdown_started(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
