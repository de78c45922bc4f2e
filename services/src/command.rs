//! Every change to a node's state, as one value: a [`Command`]. The gRPC
//! handlers build commands; [`apply`] is the one place that runs them on the
//! core. With the in-memory default a command is applied as soon as it arrives;
//! with Redis it is first appended to the region's log (a Redis Stream) and
//! every node applies the log in the same order (see [`crate::durable`]).
//!
//! `apply` is deterministic: given the same core state, the same command and
//! the same `now` (which travels with the command in the log), every node makes
//! the same change, hands out the same ids and logs the same events with the
//! same sequence numbers.

use bytes::Bytes;
use patrol_dispatcher::{AlertOutcome, Dispatcher, Incident, Millis, Order, PingOutcome};
use patrol_proto::shared::{PingParseError, parse_ping};
use patrol_proto::v1 as pb;
use tonic::Status;

use crate::convert::{from_wire, to_wire};
use crate::hub::Hub;
use crate::status::IntoStatus;

/// A change, as requested. Request messages are kept as they came off the
/// wire, so the log holds exactly what the caller asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RegisterUnit(pb::RegisterUnitRequest),
    /// One batch of encoded `Ping` messages.
    Pings(Vec<Bytes>),
    UpdateStatus(pb::UpdateStatusRequest),
    RegisterCamera(pb::RegisterCameraRequest),
    PostAlert(pb::PostAlertRequest),
    CreateIncident(pb::CreateIncidentRequest),
    Dispatch(pb::DispatchRequest),
    UpdateIncident(pb::UpdateIncidentRequest),
    /// Publish coalesced positions; with `sweep`, also announce units that
    /// went offline or came back. Made by a node's ticker, so that every node
    /// publishes the same batches at the same points of the log.
    Tick {
        sweep: bool,
    },
}

impl Command {
    /// A short name for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::RegisterUnit(_) => "register_unit",
            Command::Pings(_) => "pings",
            Command::UpdateStatus(_) => "update_status",
            Command::RegisterCamera(_) => "register_camera",
            Command::PostAlert(_) => "post_alert",
            Command::CreateIncident(_) => "create_incident",
            Command::Dispatch(_) => "dispatch",
            Command::UpdateIncident(_) => "update_incident",
            Command::Tick { .. } => "tick",
        }
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

/// What a command did, for the caller's reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Unit {
        unit: patrol_dispatcher::Unit,
        created: bool,
    },
    Pings(PingsOutcome),
    Camera {
        camera: patrol_dispatcher::Camera,
        created: bool,
    },
    Alert(AlertOutcome),
    Incident(Incident),
    Dispatched {
        incident: Incident,
        orders: Vec<Order>,
    },
    Ticked {
        positions: usize,
    },
}

/// The reply a handler builds when a command's outcome is not the kind it
/// asked for (a bug, never a caller's mistake).
pub fn unexpected(command: &str, outcome: &Outcome) -> Status {
    Status::internal(format!(
        "{command} produced an unexpected outcome: {outcome:?}"
    ))
}

/// Runs `command` on the core at time `now`. Call with the core lock held and
/// commit the core's events afterwards ([`Hub::apply_locked`] does both).
pub fn apply(
    hub: &Hub,
    core: &mut Dispatcher,
    command: Command,
    now: Millis,
) -> Result<Outcome, Status> {
    Ok(match command {
        Command::RegisterUnit(req) => {
            let profile = from_wire::unit_profile(req)?;
            let (unit, created) = core.register_unit(profile, now).into_status()?;
            Outcome::Unit { unit, created }
        }
        Command::Pings(pings) => Outcome::Pings(apply_pings(core, &pings, now)),
        Command::UpdateStatus(req) => {
            let status = from_wire::unit_status("status", req.status)?;
            let unit = core
                .update_unit_status(&req.unit_id, status, now)
                .into_status()?;
            Outcome::Unit {
                unit,
                created: false,
            }
        }
        Command::RegisterCamera(req) => {
            let camera = from_wire::camera(req.camera)?;
            let (camera, created) = core.register_camera(camera).into_status()?;
            Outcome::Camera { camera, created }
        }
        Command::PostAlert(req) => {
            let alert = from_wire::new_alert(req);
            Outcome::Alert(core.post_alert(alert, now).into_status()?)
        }
        Command::CreateIncident(req) => {
            let new = from_wire::new_incident(req)?;
            Outcome::Incident(core.create_incident(new, now).into_status()?)
        }
        Command::Dispatch(req) => {
            let (incident, orders) = core
                .dispatch(&req.incident_id, &req.unit_ids, &req.note, now)
                .into_status()?;
            Outcome::Dispatched { incident, orders }
        }
        Command::UpdateIncident(req) => {
            let status = from_wire::incident_status("status", req.status)?;
            let incident = core
                .update_incident(&req.id, status, &req.note, now)
                .into_status()?;
            Outcome::Incident(incident)
        }
        Command::Tick { sweep } => {
            let positions = hub.publish_positions(core, now);
            if sweep {
                core.sweep_offline(now);
            }
            Outcome::Ticked { positions }
        }
    })
}

/// At most this many refused pings are itemised per batch (all are counted).
pub const MAX_ITEMISED_REJECTIONS: usize = 1000;

fn apply_pings(core: &mut Dispatcher, raw: &[Bytes], now: Millis) -> PingsOutcome {
    let mut out = PingsOutcome::default();
    let mut reject = |index: usize, unit_id: &str, reason: pb::PingRejectReason, message| {
        out.rejected += 1;
        if out.rejections.len() < MAX_ITEMISED_REJECTIONS {
            out.rejections.push(pb::PingRejection {
                index: index as u64,
                unit_id: unit_id.chars().take(128).collect(),
                reason: reason as i32,
                message,
            });
        }
    };
    let (mut accepted, mut duplicates) = (0, 0);
    for (i, bytes) in raw.iter().enumerate() {
        let view = match parse_ping(bytes) {
            Ok(view) => view,
            Err(error) => {
                let message = match error {
                    PingParseError::UnitIdNotUtf8 => "unit_id is not valid UTF-8".to_string(),
                    PingParseError::Malformed(why) => format!("not a valid Ping: {why}"),
                };
                reject(i, "", pb::PingRejectReason::Malformed, message);
                continue;
            }
        };
        match core.apply_ping(&from_wire::ping(&view), now) {
            Ok(PingOutcome::Moved) => accepted += 1,
            Ok(PingOutcome::Duplicate) => duplicates += 1,
            Err(rejection) => reject(
                i,
                view.unit_id,
                to_wire::ping_reject_reason(&rejection),
                rejection.message(view.unit_id),
            ),
        }
    }
    out.accepted = accepted;
    out.duplicates = duplicates;
    out
}
