//! Incidents and their lifecycle.
//!
//! ```text
//!   New ──dispatch──▶ Dispatched ──▶ OnScene ──▶ Resolved ──▶ Closed
//!    │                    │             │                       ▲
//!    └────────────────────┴─────────────┴───────────────────────┘
//! ```
//! `New` may also go straight to `Resolved`. Nothing leaves `Closed`. `Dispatched`
//! is entered only by assigning units (see `Dispatcher::dispatch`).

use crate::Millis;
use crate::actor::Actor;
use crate::error::{Error, validate_id};
use crate::fingerprint::Fingerprint;
use crate::geometry::LonLat;
use crate::geometry::Validated;
use crate::network::EtaMethod;

/// Longest accepted incident type, in bytes.
pub const MAX_KIND_LEN: usize = 64;
/// Longest accepted free text (description, note), in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// The priority of an incident created without one.
pub const DEFAULT_PRIORITY: u32 = 3;
/// At most this many units are sent in one dispatch.
pub const MAX_DISPATCH_UNITS: usize = 1000;

fn check_text(field: &str, text: &str) -> Result<(), Error> {
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::invalid(
            field,
            format!("{} bytes", text.len()),
            format!("must be at most {MAX_TEXT_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Where an incident is in its lifecycle (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IncidentStatus {
    /// Opened, no unit sent yet.
    New,
    /// At least one unit was sent.
    Dispatched,
    /// A unit reported on scene.
    OnScene,
    /// Dealt with; units may still be there.
    Resolved,
    /// Done: its units are released and nothing changes it again.
    Closed,
}

impl IncidentStatus {
    /// The status as it reads in messages and audit trails, e.g. "on_scene".
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::New => "new",
            IncidentStatus::Dispatched => "dispatched",
            IncidentStatus::OnScene => "on_scene",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    /// Whether units may still be sent.
    pub fn accepts_units(self) -> bool {
        matches!(
            self,
            IncidentStatus::New | IncidentStatus::Dispatched | IncidentStatus::OnScene
        )
    }

    /// Whether `self -> to` is a legal operator transition.
    pub fn can_become(self, to: IncidentStatus) -> bool {
        use IncidentStatus::*;
        matches!(
            (self, to),
            (New, Resolved | Closed)
                | (Dispatched, OnScene | Resolved | Closed)
                | (OnScene, Resolved | Closed)
                | (Resolved, Closed)
        )
    }

    /// Whether the incident is not closed (it shows in snapshots and lists).
    pub fn is_open(self) -> bool {
        self != IncidentStatus::Closed
    }
}

/// How an incident came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IncidentSource {
    /// A 110/122 call.
    Call,
    /// A camera alert that passed the alert policy.
    CameraAlert,
    /// An operator, e.g. one patrolling through cameras.
    Operator,
}

impl IncidentSource {
    /// The source as it reads in messages, e.g. "camera_alert".
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentSource::Call => "call",
            IncidentSource::CameraAlert => "camera_alert",
            IncidentSource::Operator => "operator",
        }
    }
}

/// Checks an optional caller-chosen request id like any id.
pub(crate) fn validate_request_id(request_id: &Option<String>) -> Result<(), Error> {
    match request_id {
        Some(id) => validate_id("request_id", id),
        None => Ok(()),
    }
}

/// One line of an incident's audit trail: what happened, when, by whom.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// When, Unix ms (the `now` of the command).
    pub time: Millis,
    /// What, as a stable word: "created", "dispatched", "status",
    /// "alert_joined", "unit_cleared", "unit_released".
    pub action: String,
    /// The particulars for people, e.g. "unit u3 (order-7)".
    pub detail: String,
    /// Who did it. Entries written before actors were recorded load with
    /// the default (unknown) actor.
    #[serde(default)]
    pub actor: Actor,
}

/// Something that needs police, with its units, cameras, alerts and trail.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    /// Server-assigned: `{id_prefix}inc-{n}`.
    pub id: String,
    /// Its type, e.g. "theft", "fight", "medical".
    pub kind: String,
    /// 1 (most urgent) ..= 5.
    pub priority: u32,
    /// Where (x = longitude, y = latitude, degrees).
    pub location: LonLat,
    /// How it came in.
    pub source: IncidentSource,
    /// Where it is in its lifecycle.
    pub status: IncidentStatus,
    /// Free text, at most 4096 bytes.
    pub description: String,
    /// Units currently assigned.
    pub unit_ids: Vec<String>,
    /// Cameras that saw it (the one whose alert opened it).
    pub camera_ids: Vec<String>,
    /// Alerts that opened or joined it.
    pub alert_ids: Vec<String>,
    /// When it was opened, Unix ms.
    pub created: Millis,
    /// When its trail last grew, Unix ms.
    pub updated: Millis,
    /// Everything that happened to it, oldest first.
    pub audit: Vec<AuditEntry>,
    /// Units whose order for it was withdrawn (not acknowledged in time):
    /// never sent to it again automatically.
    #[serde(default)]
    pub withdrawn_unit_ids: Vec<String>,
}

impl Incident {
    pub(crate) fn record(
        &mut self,
        time: Millis,
        actor: &Actor,
        action: &'static str,
        detail: String,
    ) {
        self.updated = time;
        self.audit.push(AuditEntry {
            time,
            action: action.to_string(),
            detail,
            actor: actor.clone(),
        });
    }
}

/// What a caller supplies to open an incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewIncident {
    /// Its type, 1..=64 bytes, e.g. "theft".
    pub kind: String,
    /// 1..=5; `None` means 3.
    pub priority: Option<u32>,
    /// Where (x = longitude, y = latitude, degrees).
    pub location: LonLat,
    /// How it came in.
    pub source: IncidentSource,
    /// Free text, at most 4096 bytes.
    pub description: String,
    /// Caller-chosen: a retry with the same id and content returns the
    /// first result instead of opening a second incident.
    #[serde(default)]
    pub request_id: Option<String>,
}

impl NewIncident {
    /// The checks that need no state: type, priority, location and
    /// description. The service runs this at the edge before logging the
    /// command; the core runs it again, so the rules live here only.
    pub fn validate(&self) -> Result<(), Error> {
        if self.kind.is_empty() || self.kind.len() > MAX_KIND_LEN {
            return Err(Error::invalid(
                "type",
                format!("{:?}", self.kind),
                format!("must be 1..={MAX_KIND_LEN} bytes"),
            ));
        }
        let priority = self.priority_or_default();
        if !(1..=5).contains(&priority) {
            return Err(Error::invalid(
                "priority",
                priority,
                "must be 1 (most urgent) ..= 5",
            ));
        }
        self.location.validated("location")?;
        check_text("description", &self.description)?;
        validate_request_id(&self.request_id)
    }

    /// The request's content as `actor` sent it, for recognising retries.
    pub(crate) fn fingerprint(&self, actor: &crate::Actor) -> u64 {
        Fingerprint::of("create_incident")
            .str(&actor.identity)
            .str(&self.kind)
            .opt(self.priority, |f, p| f.u64(p.into()))
            .f64(self.location.lon)
            .f64(self.location.lat)
            .str(self.source.as_str())
            .str(&self.description)
            .finish()
    }

    /// The priority, or [`DEFAULT_PRIORITY`] when none was given.
    pub fn priority_or_default(&self) -> u32 {
        self.priority.unwrap_or(DEFAULT_PRIORITY)
    }
}

/// A request to send units to an incident, all or none.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DispatchRequest {
    /// The incident to send them to.
    pub incident_id: String,
    /// Distinct unit ids, at least one, at most [`MAX_DISPATCH_UNITS`].
    pub unit_ids: Vec<String>,
    /// Free text for the units' orders, e.g. what to look for.
    pub note: String,
    /// Caller-chosen: a retry with the same id and content returns the
    /// first result instead of being refused as busy units.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Send the units to this point instead of the incident's location: a
    /// point ahead of a followed suspect ([`crate::tracks`]).
    #[serde(default)]
    pub intercept: Option<LonLat>,
}

impl DispatchRequest {
    /// The checks that need no state: ids well-formed, at least one unit,
    /// none listed twice, the note's length. Whether the incident and units
    /// exist and are free is the core's to check.
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("incident_id", &self.incident_id)?;
        if self.unit_ids.is_empty() {
            return Err(Error::invalid("unit_ids", "[]", "name at least one unit"));
        }
        if self.unit_ids.len() > MAX_DISPATCH_UNITS {
            return Err(Error::invalid(
                "unit_ids",
                format!("{} units", self.unit_ids.len()),
                format!("name at most {MAX_DISPATCH_UNITS} units"),
            ));
        }
        for (i, id) in self.unit_ids.iter().enumerate() {
            let field = format!("unit_ids[{i}]");
            validate_id(&field, id)?;
            if self.unit_ids[..i].contains(id) {
                return Err(Error::invalid(&field, id, "is listed twice"));
            }
        }
        check_text("note", &self.note)?;
        if let Some(p) = self.intercept {
            p.validated("intercept")?;
        }
        validate_request_id(&self.request_id)
    }

    /// The request's content as `actor` sent it, for recognising retries.
    pub(crate) fn fingerprint(&self, actor: &crate::Actor) -> u64 {
        let mut f = Fingerprint::of("dispatch")
            .str(&actor.identity)
            .str(&self.incident_id)
            .u64(self.unit_ids.len() as u64);
        for id in &self.unit_ids {
            f = f.str(id);
        }
        f.str(&self.note)
            .opt(self.intercept, |f, p| f.f64(p.lon).f64(p.lat))
            .finish()
    }
}

/// A request to move an incident through its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncidentUpdate {
    /// The incident's id.
    pub id: String,
    /// The status to move to; the current one is a no-op.
    pub status: IncidentStatus,
    /// Free text for the audit trail, e.g. how it was resolved.
    pub note: String,
    /// Caller-chosen: a retry with the same id and content returns the
    /// incident instead of being refused as an illegal transition.
    #[serde(default)]
    pub request_id: Option<String>,
}

impl IncidentUpdate {
    /// The checks that need no state: the id and the note's length. Whether
    /// the transition is legal is the core's to check.
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("id", &self.id)?;
        check_text("note", &self.note)?;
        validate_request_id(&self.request_id)
    }

    /// The request's content as `actor` sent it, for recognising retries.
    pub(crate) fn fingerprint(&self, actor: &crate::Actor) -> u64 {
        Fingerprint::of("update_incident")
            .str(&actor.identity)
            .str(&self.id)
            .str(self.status.as_str())
            .str(&self.note)
            .finish()
    }
}

/// An order for one unit to go to an incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    /// Server-assigned: `{id_prefix}order-{n}`; a terminal acts once per id.
    pub id: String,
    /// The unit sent.
    pub unit_id: String,
    /// The incident it is sent to.
    pub incident_id: String,
    /// The incident's type, so the terminal needs no second call.
    pub incident_kind: String,
    /// The incident's priority, 1 (most urgent) ..= 5.
    pub priority: u32,
    /// Where to go (x = longitude, y = latitude, degrees): the incident's
    /// location, or an intercept point (`intercept`).
    pub location: LonLat,
    /// The incident's description.
    pub description: String,
    /// When it was issued, Unix ms.
    pub issued: Millis,
    /// Straight-line metres from the unit's fix when issued.
    pub distance_m: Option<f64>,
    /// The dispatcher's note, e.g. "suspect in red jacket".
    pub note: String,
    /// Expected seconds to arrive when issued.
    #[serde(default)]
    pub eta_s: Option<f64>,
    /// Metres to travel: over the street network, or straight line times the
    /// detour factor (see `eta_method`).
    #[serde(default)]
    pub route_m: Option<f64>,
    /// How the ETA and route were made.
    #[serde(default)]
    pub eta_method: Option<EtaMethod>,
    /// The way to go, from the unit's fix to the incident, WGS84 degrees.
    #[serde(default)]
    pub route: Vec<LonLat>,
    /// When the unit's terminal acknowledged it, Unix ms.
    #[serde(default)]
    pub acknowledged: Option<Millis>,
    /// `location` is a point to intercept a followed suspect at, not the
    /// incident's location.
    #[serde(default)]
    pub intercept: bool,
}

#[cfg(test)]
mod tests {
    use super::IncidentStatus::*;
    use super::*;

    fn field(result: Result<(), Error>) -> String {
        match result {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn new_incident() -> NewIncident {
        NewIncident {
            kind: "theft".into(),
            priority: None,
            location: LonLat::new(24.94, 60.17),
            source: IncidentSource::Call,
            description: String::new(),
            request_id: None,
        }
    }

    #[test]
    fn incident_commands_are_checked_without_state() {
        assert!(new_incident().validate().is_ok());
        assert_eq!(new_incident().priority_or_default(), 3);
        let bad = |f: fn(&mut NewIncident)| {
            let mut n = new_incident();
            f(&mut n);
            field(n.validate())
        };
        assert_eq!(bad(|n| n.kind.clear()), "type");
        assert_eq!(bad(|n| n.priority = Some(6)), "priority");
        assert_eq!(bad(|n| n.priority = Some(0)), "priority");
        assert_eq!(bad(|n| n.location.lat = 91.0), "location");
        assert_eq!(bad(|n| n.description = "d".repeat(4097)), "description");
        assert_eq!(bad(|n| n.request_id = Some(String::new())), "request_id");

        let send = |ids: &[&str]| DispatchRequest {
            intercept: Default::default(),
            incident_id: "inc-1".into(),
            unit_ids: ids.iter().map(|s| s.to_string()).collect(),
            note: String::new(),
            request_id: None,
        };
        assert!(send(&["u1", "u2"]).validate().is_ok());
        assert_eq!(field(send(&[]).validate()), "unit_ids");
        assert_eq!(field(send(&["u1", "u2", "u1"]).validate()), "unit_ids[2]");
        assert_eq!(field(send(&["u1", ""]).validate()), "unit_ids[1]");
        let many: Vec<String> = (0..=MAX_DISPATCH_UNITS).map(|i| format!("u{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(field(send(&many).validate()), "unit_ids");
        let mut long_note = send(&["u1"]);
        long_note.note = "n".repeat(4097);
        assert_eq!(field(long_note.validate()), "note");
        let mut bad_request = send(&["u1"]);
        bad_request.request_id = Some("x".repeat(129));
        assert_eq!(field(bad_request.validate()), "request_id");
        let mut no_incident = send(&["u1"]);
        no_incident.incident_id.clear();
        assert_eq!(field(no_incident.validate()), "incident_id");

        let update = IncidentUpdate {
            id: "inc-1".into(),
            status: Closed,
            note: "done".into(),
            request_id: Some("r-1".into()),
        };
        assert!(update.validate().is_ok());
        assert_eq!(
            field(
                IncidentUpdate {
                    id: "a\nb".into(),
                    ..update.clone()
                }
                .validate()
            ),
            "id"
        );
        assert_eq!(
            field(
                IncidentUpdate {
                    request_id: Some("r\t1".into()),
                    ..update
                }
                .validate()
            ),
            "request_id"
        );
    }

    #[test]
    fn lifecycle_rejects_illegal_moves() {
        assert!(New.can_become(Closed));
        assert!(Dispatched.can_become(OnScene));
        assert!(OnScene.can_become(Resolved));
        assert!(Resolved.can_become(Closed));
        assert!(!New.can_become(OnScene));
        assert!(!New.can_become(Dispatched));
        assert!(!Closed.can_become(New));
        assert!(!Closed.can_become(OnScene));
        assert!(!Resolved.can_become(Dispatched));
        assert!(!OnScene.can_become(Dispatched));
    }
}
