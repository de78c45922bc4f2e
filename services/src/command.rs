//! Every change to a node's state, as one validated domain value: a
//! [`Command`], wrapped in an [`Envelope`] that says who sent it and when.
//!
//! Requests become commands once, at the edge ([`crate::convert::from_wire`]),
//! before anything is logged or applied: a bad request is refused there and
//! can never reach the shared log. The log (in memory or the region's Redis
//! Stream) and [`crate::node::NodeState::apply`] take envelopes only.
//! Applying is deterministic: the same state, envelope and `time` (which
//! travels with the envelope in the log) give the same change, the same ids
//! and the same events on every node.

use bytes::Bytes;
use patrol_dispatcher::{
    Actor, Aim, AlertOutcome, Camera, DispatchRequest, Follow, Incident, IncidentUpdate, LonLat,
    Millis, NewAlert, NewIncident, NewSighting, NewTrack, Order, Target, Track, Unit, UnitProfile,
    UnitStatus, Zone, ZoneSpec,
};
use patrol_proto::v1 as pb;
use serde::{Deserialize, Serialize};

use crate::error::ServerError;

/// A change, validated. Everything in it passed the stateless checks; what
/// depends on state (an unknown unit, a busy one) is decided when it is
/// applied, identically on every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    RegisterUnit(UnitProfile),
    /// A batch of encoded `Ping` messages, each of which parsed and passed the
    /// stateless checks at the edge (kept encoded: parsed again zero-copy when
    /// applied, so ingest never allocates per ping).
    #[serde(skip)]
    Pings(Vec<Bytes>),
    UpdateStatus {
        unit_id: String,
        status: UnitStatus,
    },
    RegisterCamera(Camera),
    PostAlert(NewAlert),
    CreateIncident(NewIncident),
    Dispatch(DispatchRequest),
    UpdateIncident(IncidentUpdate),
    /// A terminal acknowledges its unit's order.
    AcknowledgeOrder {
        unit_id: String,
        order_id: String,
    },
    /// Aim cameras at a target (the named ones, or every one that can see
    /// it), turning the PTZ ones unless `dry_run`.
    AimCameras {
        target: Target,
        target_height_m: Option<f64>,
        camera_ids: Vec<String>,
        limit: usize,
        dry_run: bool,
    },
    /// Keep cameras aimed at a unit (or stop).
    FollowUnit {
        unit_id: String,
        camera_ids: Vec<String>,
        stop: bool,
    },
    /// Start following a suspect.
    StartTrack(NewTrack),
    /// Another sighting of a followed suspect.
    AddSighting {
        track_id: String,
        sighting: NewSighting,
    },
    /// Stop following.
    CloseTrack {
        track_id: String,
        reason: String,
    },
    /// Create or replace a zone.
    PutZone(Box<ZoneSpec>),
    /// Remove a zone.
    RemoveZone {
        zone_id: String,
    },
    /// Set or clear a unit's home zone.
    SetHomeZone {
        unit_id: String,
        zone_id: Option<String>,
    },
    /// A camera system reports its cameras alive at `time`.
    CameraHealth {
        camera_ids: Vec<String>,
        time: Millis,
    },
    /// Publish coalesced positions; with `sweep`, also announce units that
    /// went offline or came back. Made by a node's ticker, so that every node
    /// publishes the same batches at the same points of the log.
    Tick {
        sweep: bool,
    },
}

/// Which queue a command waits in for the durable log. Urgent work (an
/// emergency incident, a dispatch, an alert, an operator's change, the
/// position ticker) never waits behind routine position updates: each lane
/// has its own permits and its own Redis connection, and order stays
/// deterministic because both lanes append to the one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Pings and registrations from terminals and camera systems.
    Routine,
    /// Incidents, dispatch, alerts, status changes, ticks.
    Urgent,
}

impl Lane {
    /// A short name for metrics and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Routine => "routine",
            Lane::Urgent => "urgent",
        }
    }
}

impl Command {
    /// A short name for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RegisterUnit(_) => "register_unit",
            Command::Pings(_) => "pings",
            Command::UpdateStatus { .. } => "update_status",
            Command::RegisterCamera(_) => "register_camera",
            Command::PostAlert(_) => "post_alert",
            Command::CreateIncident(_) => "create_incident",
            Command::Dispatch(_) => "dispatch",
            Command::UpdateIncident(_) => "update_incident",
            Command::AcknowledgeOrder { .. } => "acknowledge_order",
            Command::AimCameras { .. } => "aim_cameras",
            Command::FollowUnit { .. } => "follow_unit",
            Command::CameraHealth { .. } => "camera_health",
            Command::StartTrack(_) => "start_track",
            Command::AddSighting { .. } => "add_sighting",
            Command::CloseTrack { .. } => "close_track",
            Command::PutZone(_) => "put_zone",
            Command::RemoveZone { .. } => "remove_zone",
            Command::SetHomeZone { .. } => "set_home_zone",
            Command::Tick { .. } => "tick",
        }
    }

    /// Whether the audit log records this command: every change a person or
    /// system asked for, but not the routine flow (position pings, the
    /// node's ticks, camera health reports).
    pub fn audited(&self) -> bool {
        !matches!(
            self,
            Command::Pings(_) | Command::Tick { .. } | Command::CameraHealth { .. }
        )
    }

    /// What the command is about, for the audit log: the incident, unit,
    /// camera(s), track or zone id ("" when the server assigns it, e.g. a new
    /// incident or track: [`Outcome::audit_target`] has it then).
    pub fn audit_target(&self) -> String {
        match self {
            Command::RegisterUnit(p) => p.id.clone(),
            Command::UpdateStatus { unit_id, .. }
            | Command::AcknowledgeOrder { unit_id, .. }
            | Command::FollowUnit { unit_id, .. }
            | Command::SetHomeZone { unit_id, .. } => unit_id.clone(),
            Command::RegisterCamera(c) => c.id.clone(),
            Command::PostAlert(a) => a.camera_id.clone(),
            Command::Dispatch(r) => r.incident_id.clone(),
            Command::UpdateIncident(u) => u.id.clone(),
            Command::AimCameras { target, .. } => match target {
                Target::Incident(id) | Target::Unit(id) => id.clone(),
                Target::Point(p) => format!("({:.6}, {:.6})", p.lon, p.lat),
            },
            Command::AddSighting { track_id, .. } | Command::CloseTrack { track_id, .. } => {
                track_id.clone()
            }
            Command::PutZone(z) => z.id.clone(),
            Command::RemoveZone { zone_id } => zone_id.clone(),
            Command::CreateIncident(_)
            | Command::StartTrack(_)
            | Command::Pings(_)
            | Command::CameraHealth { .. }
            | Command::Tick { .. } => String::new(),
        }
    }

    /// A short summary for people, for the audit log.
    pub fn audit_detail(&self) -> String {
        let ids = |ids: &[String]| {
            if ids.is_empty() {
                "cameras that can see it".to_string()
            } else {
                ids.join(", ")
            }
        };
        match self {
            Command::RegisterUnit(p) => format!("{} {}", p.kind.as_str(), p.call_sign),
            Command::Pings(p) => format!("{} pings", p.len()),
            Command::UpdateStatus { status, .. } => status.as_str().to_string(),
            Command::RegisterCamera(c) => {
                format!("{} ({})", c.name, if c.ptz { "ptz" } else { "fixed" })
            }
            Command::PostAlert(a) => format!("{} ({:.2})", a.label, a.confidence),
            Command::CreateIncident(n) => format!(
                "{} priority {} from {}",
                n.kind,
                n.priority_or_default(),
                n.source.as_str()
            ),
            Command::Dispatch(r) => format!("units {}", r.unit_ids.join(", ")),
            Command::UpdateIncident(u) if u.note.is_empty() => u.status.as_str().to_string(),
            Command::UpdateIncident(u) => format!("{}: {}", u.status.as_str(), u.note),
            Command::AcknowledgeOrder { order_id, .. } => order_id.clone(),
            Command::AimCameras {
                target,
                camera_ids,
                dry_run,
                ..
            } => {
                let at = match target {
                    Target::Incident(id) => format!("incident {id}"),
                    Target::Unit(id) => format!("unit {id}"),
                    Target::Point(p) => format!("({:.6}, {:.6})", p.lon, p.lat),
                };
                let dry = if *dry_run { " (dry run)" } else { "" };
                format!("{} at {at}{dry}", ids(camera_ids))
            }
            Command::FollowUnit {
                camera_ids, stop, ..
            } => {
                if *stop {
                    "stop following".to_string()
                } else {
                    format!("follow with {}", ids(camera_ids))
                }
            }
            Command::StartTrack(t) => match &t.incident_id {
                Some(incident) => format!("{} for incident {incident}", t.label),
                None => t.label.clone(),
            },
            Command::AddSighting { sighting, .. } => match &sighting.camera_id {
                Some(camera) => format!("seen by camera {camera}"),
                None => "sighting".to_string(),
            },
            Command::CloseTrack { reason, .. } => reason.clone(),
            Command::PutZone(z) => z.name.clone(),
            Command::RemoveZone { .. } => String::new(),
            Command::SetHomeZone { zone_id, .. } => match zone_id {
                Some(zone) => format!("home zone {zone}"),
                None => "home zone cleared".to_string(),
            },
            Command::CameraHealth { camera_ids, .. } => format!("{} cameras", camera_ids.len()),
            Command::Tick { sweep: true } => "sweep".to_string(),
            Command::Tick { sweep: false } => String::new(),
        }
    }

    /// The lane this command waits in.
    pub fn lane(&self) -> Lane {
        match self {
            Command::Pings(_)
            | Command::RegisterUnit(_)
            | Command::RegisterCamera(_)
            | Command::CameraHealth { .. } => Lane::Routine,
            Command::UpdateStatus { .. }
            | Command::PostAlert(_)
            | Command::CreateIncident(_)
            | Command::Dispatch(_)
            | Command::UpdateIncident(_)
            | Command::AcknowledgeOrder { .. }
            | Command::AimCameras { .. }
            | Command::FollowUnit { .. }
            | Command::StartTrack(_)
            | Command::AddSighting { .. }
            | Command::CloseTrack { .. }
            | Command::PutZone(_)
            | Command::RemoveZone { .. }
            | Command::SetHomeZone { .. }
            | Command::Tick { .. } => Lane::Urgent,
        }
    }
}

/// A command with who sent it and when it was accepted. `time` is the `now`
/// every node applies it with.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub actor: Actor,
    pub time: Millis,
    pub body: Command,
}

impl Envelope {
    pub fn new(actor: Actor, time: Millis, body: Command) -> Self {
        Self { actor, time, body }
    }
}

/// What a ping batch did: counts, and the refused pings by index in the batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingsOutcome {
    pub accepted: u64,
    pub duplicates: u64,
    /// Every refused ping, itemised or not.
    pub rejected: u64,
    pub rejections: Vec<pb::PingRejection>,
}

/// At most this many refused pings are itemised per batch (all are counted).
pub const MAX_ITEMISED_REJECTIONS: usize = 1000;

impl PingsOutcome {
    /// Counts a refused ping, itemising it while there is room.
    pub fn reject(
        &mut self,
        index: usize,
        unit_id: &str,
        reason: pb::PingRejectReason,
        message: String,
    ) {
        self.rejected += 1;
        if self.rejections.len() < MAX_ITEMISED_REJECTIONS {
            self.rejections.push(pb::PingRejection {
                index: index as u64,
                unit_id: unit_id.chars().take(128).collect(),
                reason: reason as i32,
                message,
            });
        }
    }
}

/// What a command did, for the caller's reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Unit {
        unit: Unit,
        created: bool,
    },
    Pings(PingsOutcome),
    Camera {
        camera: Camera,
        created: bool,
    },
    Alert(AlertOutcome),
    Incident(Incident),
    Dispatched {
        incident: Incident,
        orders: Vec<Order>,
    },
    Order(Order),
    /// Each camera's aim at the target, and whether it was turned.
    Aims {
        target: LonLat,
        aims: Vec<(String, Aim, bool)>,
    },
    Follow(Option<Follow>),
    Track(Box<Track>),
    Zone(Box<Zone>),
    /// Done; nothing to report.
    Done,
    Count(usize),
    Ticked {
        positions: usize,
    },
}

impl Outcome {
    /// The id a command's outcome names when the command itself could not
    /// (a new incident's, a new track's), for the audit log.
    pub fn audit_target(&self) -> Option<String> {
        match self {
            Outcome::Incident(i) => Some(i.id.clone()),
            Outcome::Track(t) => Some(t.id.clone()),
            _ => None,
        }
    }
}

/// A typed reply taken out of an [`Outcome`]: each command's caller asks for
/// the type its command produces. A mismatch is a bug in this server, never a
/// caller's mistake.
pub trait FromOutcome: Sized {
    fn from_outcome(outcome: Outcome) -> Option<Self>;
}

/// Takes `T` out of `outcome`, or reports the bug.
pub fn expect<T: FromOutcome>(command: &'static str, outcome: Outcome) -> Result<T, ServerError> {
    let shown = format!("{outcome:?}");
    T::from_outcome(outcome).ok_or_else(|| {
        ServerError::Internal(format!(
            "{command} produced an unexpected outcome: {shown:.200}"
        ))
    })
}

impl FromOutcome for (Unit, bool) {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Unit { unit, created } => Some((unit, created)),
            _ => None,
        }
    }
}

impl FromOutcome for Unit {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        <(Unit, bool)>::from_outcome(outcome).map(|(unit, _)| unit)
    }
}

impl FromOutcome for PingsOutcome {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Pings(p) => Some(p),
            _ => None,
        }
    }
}

impl FromOutcome for (Camera, bool) {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Camera { camera, created } => Some((camera, created)),
            _ => None,
        }
    }
}

impl FromOutcome for AlertOutcome {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Alert(a) => Some(a),
            _ => None,
        }
    }
}

impl FromOutcome for Incident {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Incident(i) => Some(i),
            _ => None,
        }
    }
}

impl FromOutcome for (Incident, Vec<Order>) {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Dispatched { incident, orders } => Some((incident, orders)),
            _ => None,
        }
    }
}

impl FromOutcome for Order {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Order(o) => Some(o),
            _ => None,
        }
    }
}

/// The target and each camera's aim.
pub type Aims = (LonLat, Vec<(String, Aim, bool)>);

impl FromOutcome for Aims {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Aims { target, aims } => Some((target, aims)),
            _ => None,
        }
    }
}

impl FromOutcome for Option<Follow> {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Follow(f) => Some(f),
            _ => None,
        }
    }
}

impl FromOutcome for Track {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Track(t) => Some(*t),
            _ => None,
        }
    }
}

impl FromOutcome for Zone {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Zone(z) => Some(*z),
            _ => None,
        }
    }
}

impl FromOutcome for () {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Done => Some(()),
            _ => None,
        }
    }
}

impl FromOutcome for usize {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Count(n) => Some(n),
            _ => None,
        }
    }
}

/// The count of positions a tick published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticked(pub usize);

impl FromOutcome for Ticked {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Ticked { positions } => Some(Ticked(positions)),
            _ => None,
        }
    }
}
