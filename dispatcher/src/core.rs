//! [`Dispatcher`]: units, cameras, alerts and incidents behind one door. Every
//! command takes `now` and leaves the changes it made as [`Event`]s in an outbox
//! that the caller drains in order with [`Dispatcher::take_events`].

use std::collections::HashMap;

use crate::Millis;
use crate::actor::Actor;
use crate::alerts::{
    Alert, AlertDisposition, AlertJoins, AlertObjects, AlertOutcome, AlertPolicy, NewAlert,
    incident_description, joined_detail,
};
use crate::cameras::{
    Aim, Camera, CameraAim, CameraConfig, CameraIndex, CameraSight, PathSight, PtzPose,
};
use crate::error::{Error, validate_id};
use crate::geometry::Validated;
use crate::geometry::{BoundingBox, LonLat};
use crate::incidents::{
    DispatchRequest, Incident, IncidentSource, IncidentStatus, IncidentUpdate, NewIncident, Order,
};
use crate::network::{Network, RoutePlan, straight_eta_s};
use crate::plans::PlanBook;
use crate::recommend::{
    DETOUR_FACTOR, NearestUnits, RankContext, Recommendation, UnitQuery, nearest_units,
    recommend_units,
};
use crate::requests::{
    DEFAULT_MAX_REQUESTS, DEFAULT_REQUEST_TTL_MS, RequestLog, RequestResult, different_request,
};
use crate::tracks::{Track, TrackConfig};
use crate::trust::TrustConfig;
use crate::units::{
    Fix, Ping, PingOutcome, PingRejection, Unit, UnitFilter, UnitIndex, UnitIndexConfig, UnitKind,
    UnitProfile, UnitStatus,
};
use crate::zones::{Zone, ZoneChange, ZoneConfig};

/// A change, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A unit registered, changed status or assignment, or went on/offline.
    Unit(Unit),
    /// A camera registered or changed.
    Camera(Camera),
    /// An alert was recorded (with the incident it opened or joined).
    Alert(Alert),
    /// An incident was opened or changed: status, units, alerts, audit.
    Incident(Incident),
    /// A unit was sent to an incident.
    Order(Order),
    /// The unit of this order is no longer needed for its incident.
    OrderReleased(Order),
    /// Something about a unit the command room must look at: overdue en
    /// route or on scene, or an order withdrawn for want of acknowledgement.
    UnitAlert(UnitAlert),
    /// A track was started, got a sighting (with a new prediction) or was
    /// closed.
    Track(Track),
    /// A zone was put or removed, or a unit entered or left one.
    Zone(ZoneChange),
    /// A unit's fix entered (or left) an online camera's current view.
    UnitInView(UnitInView),
}

/// Everything the core can be tuned with.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatcherConfig {
    /// Offline age, clock-skew tolerance and spatial cell size.
    pub units: UnitIndexConfig,
    /// When a camera counts as offline.
    pub cameras: CameraConfig,
    /// Which camera alerts open incidents.
    pub alerts: AlertPolicy,
    /// Prepended to server-assigned ids (alerts, incidents, orders), so several
    /// nodes never hand out the same id.
    pub id_prefix: String,
    /// How long a request id is remembered for retries, in milliseconds
    /// (by the `now` of later commands). Default ten minutes.
    pub request_ttl_ms: Millis,
    /// At most this many request ids are remembered; the oldest go first.
    pub max_requests: usize,
    /// The street network units travel on; without one, ETAs are straight
    /// lines and every reason says so.
    pub network: Option<Network>,
    /// How far to trust positions (location confidence; and, with
    /// `trust_positions`, which fixes are believed).
    pub trust: TrustConfig,
    /// Whether pings go through the trust rules: implausible jumps refused,
    /// a standing unit's drift held at its anchor. Off by default in the
    /// core (the server turns it on).
    pub trust_positions: bool,
    /// Response plans by incident type and priority.
    pub plans: PlanBook,
    /// Acknowledgements, re-dispatch, status timers, automatic dispatch.
    pub dispatch: DispatchPolicy,
    /// How tracks predict and look for intercepts.
    pub tracks: TrackConfig,
    /// Zone hysteresis and the home-zone preference.
    pub zones: ZoneConfig,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            units: UnitIndexConfig::default(),
            cameras: CameraConfig::default(),
            alerts: AlertPolicy::default(),
            id_prefix: String::new(),
            request_ttl_ms: DEFAULT_REQUEST_TTL_MS,
            max_requests: DEFAULT_MAX_REQUESTS,
            network: None,
            trust: TrustConfig::default(),
            trust_positions: false,
            plans: PlanBook::default(),
            dispatch: DispatchPolicy::default(),
            tracks: TrackConfig::default(),
            zones: ZoneConfig::default(),
        }
    }
}

/// Whether a command with a request id was seen before.
enum Retry {
    /// First time (or no request id): run it, then remember its result
    /// under this (request id, fingerprint), if any.
    Fresh(Option<(String, u64)>),
    /// Applied before with the same content: this is what it returned.
    Repeat(RequestResult),
}

/// A consistent picture of everything for a new command-room client.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Every unit, in registration order, with its effective status.
    pub units: Vec<Unit>,
    /// Every camera, in registration order.
    pub cameras: Vec<Camera>,
    /// Every incident that is not closed.
    pub incidents: Vec<Incident>,
    /// Every open track, by id.
    pub tracks: Vec<Track>,
    /// Every zone, by id.
    pub zones: Vec<Zone>,
}

/// [`Snapshot`] in its cheap-to-take form: the unit table as a bulk copy
/// ([`Dispatcher::snapshot_copy`]).
#[derive(Debug)]
pub struct SnapshotCopy {
    /// Every unit, in registration order.
    pub units: crate::units::UnitTableCopy,
    /// Every camera, in registration order.
    pub cameras: Vec<Camera>,
    /// Every incident that is not closed.
    pub incidents: Vec<Incident>,
    /// Every open track, by id.
    pub tracks: Vec<Track>,
    /// Every zone, by id.
    pub zones: Vec<Zone>,
}

/// What a recommendation (or a camera) is for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// An incident's location, by incident id.
    Incident(String),
    /// A point (x = longitude, y = latitude, degrees).
    Point(LonLat),
    /// A unit's latest fix, by unit id.
    Unit(String),
}

mod coverage;
mod follow;
mod in_view;
mod orders;
mod tracks;
mod zones;

pub use coverage::{
    BlindSpot, Coverage, CoverageQuery, DEFAULT_COVERAGE_STEP_M, MAX_BLIND_SPOTS,
    MAX_COVERAGE_SAMPLES, ModeCoverage, coverage_of,
};
pub use follow::{Follow, MAX_FOLLOW_CAMERAS};
pub use in_view::{MAX_IN_VIEW, UnitInView};
pub use orders::{DispatchPolicy, StatusTimer, UnitAlert, UnitAlertKind};
pub use tracks::MAX_OPEN_TRACKS;
pub use zones::MAX_HOME_CANDIDATES;

/// The dispatch core. No I/O, no clock: time arrives as `now` (Unix ms).
#[derive(Debug)]
pub struct Dispatcher {
    config: DispatcherConfig,
    units: UnitIndex,
    cameras: CameraIndex,
    incidents: Vec<Incident>,
    incident_slots: HashMap<String, usize>,
    /// Open incidents raised by a camera for a label: later alerts join them.
    alert_joins: AlertJoins,
    /// Objects seen lately by a camera: their later alerts join the same
    /// incident.
    alert_objects: AlertObjects,
    /// Request ids already applied, for answering retries.
    requests: RequestLog,
    next_alert: u64,
    next_incident: u64,
    next_order: u64,
    outbox: Vec<Event>,
    /// Acknowledgement deadlines and status timers.
    timers: orders::Timers,
    /// Units followed by cameras.
    follows: follow::Follows,
    /// Suspects followed from camera to camera.
    tracks: tracks::Tracks,
    /// Zones, unit memberships, home zones.
    zones: zones::Zones,
    /// Per unit, the cameras whose view held its last fix.
    in_view: in_view::InView,
}

impl Dispatcher {
    /// An empty core with this configuration; ids start at 1.
    pub fn new(config: DispatcherConfig) -> Self {
        Self {
            units: UnitIndex::new(config.units),
            cameras: CameraIndex::new(config.cameras),
            incidents: Vec::new(),
            incident_slots: HashMap::new(),
            alert_joins: AlertJoins::default(),
            alert_objects: AlertObjects::default(),
            requests: RequestLog::new(config.request_ttl_ms, config.max_requests),
            next_alert: 1,
            next_incident: 1,
            next_order: 1,
            outbox: Vec::new(),
            timers: orders::Timers::default(),
            follows: follow::Follows::default(),
            tracks: tracks::Tracks::default(),
            zones: zones::Zones::default(),
            in_view: in_view::InView::default(),
            config,
        }
    }

    /// The configuration the core was built with.
    pub fn config(&self) -> &DispatcherConfig {
        &self.config
    }

    /// The changes made since the previous call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.outbox)
    }

    /// Whether there are events to take.
    pub fn has_events(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The unit index, for queries and metrics (it changes only through the
    /// core's commands).
    pub fn units(&self) -> &UnitIndex {
        &self.units
    }

    // ----- retries -------------------------------------------------------

    /// Forgets expired request ids, then looks this one up: a repeat of an
    /// applied request gets its result, a reused id with other content is
    /// refused. `fingerprint` runs only when there is a request id.
    fn retry(
        &mut self,
        request_id: &Option<String>,
        fingerprint: impl FnOnce() -> u64,
        now: Millis,
    ) -> Result<Retry, Error> {
        self.requests.prune(now);
        let Some(id) = request_id else {
            return Ok(Retry::Fresh(None));
        };
        let fingerprint = fingerprint();
        Ok(match self.requests.check(id, fingerprint, now)? {
            Some(result) => Retry::Repeat(result.clone()),
            None => Retry::Fresh(Some((id.clone(), fingerprint))),
        })
    }

    /// Remembers a success under its request id, if it had one.
    fn remember(
        &mut self,
        key: Option<(String, u64)>,
        now: Millis,
        result: impl FnOnce() -> RequestResult,
    ) {
        if let Some((id, fingerprint)) = key {
            self.requests.remember(&id, fingerprint, now, result());
        }
    }

    /// How many request ids are remembered for retries.
    pub fn remembered_requests(&self) -> usize {
        self.requests.len()
    }

    // ----- units ---------------------------------------------------------

    /// Registers a unit or updates its profile (terminals do on every
    /// reconnect); returns the unit and whether it is new. A unit starts
    /// available and offline until its first fix.
    pub fn register_unit(
        &mut self,
        profile: UnitProfile,
        now: Millis,
    ) -> Result<(Unit, bool), Error> {
        let (unit, created) = self.units.register(profile, now)?;
        self.outbox.push(Event::Unit(unit.clone()));
        Ok((unit, created))
    }

    /// Applies one ping; see [`UnitIndex::apply_ping`]. A unit that comes back
    /// online is announced as a unit event.
    pub fn apply_ping(
        &mut self,
        ping: &Ping<'_>,
        now: Millis,
    ) -> Result<PingOutcome, PingRejection> {
        let trust = self.config.trust_positions.then_some(&self.config.trust);
        let (outcome, slot) = self.units.apply_ping_to_slot(ping, now, trust)?;
        if outcome == PingOutcome::Moved {
            self.update_zones(slot);
            self.update_in_view(slot, now);
        }
        if outcome == PingOutcome::Moved
            && self.units.record(slot).offline_reported
            && self.units.effective_status(slot, now) != UnitStatus::Offline
        {
            self.units.record_mut(slot).offline_reported = false;
            self.outbox.push(Event::Unit(self.units.view(slot, now)));
        }
        Ok(outcome)
    }

    /// Latest fixes of units that moved since the previous call.
    pub fn take_moved(&mut self) -> Vec<(String, Fix)> {
        self.units.take_moved()
    }

    /// Announces units that went offline (or came back) since the last sweep.
    /// Returns how many changed.
    pub fn sweep_offline(&mut self, now: Millis) -> usize {
        let changed = self.units.take_liveness_changes(now);
        for &slot in &changed {
            self.outbox.push(Event::Unit(self.units.view(slot, now)));
        }
        changed.len()
    }

    /// The unit with this id, its status as of `now` (Unix ms).
    pub fn unit(&self, id: &str, now: Millis) -> Result<Unit, Error> {
        validate_id("id", id)?;
        self.units.get(id, now)
    }

    /// Units matching `filter` in registration order, from slot `start`, at
    /// most `limit`; also the slot to continue from, if more may match.
    pub fn list_units(
        &self,
        filter: &UnitFilter,
        start: usize,
        limit: usize,
        now: Millis,
    ) -> (Vec<Unit>, Option<usize>) {
        self.units.list(filter, start, limit, now)
    }

    /// A status change from a unit's terminal or an operator.
    ///
    /// - `Available` clears any assignment (the unit leaves its incident).
    /// - `EnRoute` and `OnScene` need an assignment; `OnScene` moves a
    ///   dispatched incident on scene.
    /// - `Busy` and `OffDuty` need no assignment.
    /// - `Assigned` is set only by dispatching; `Offline` only by fix age.
    pub fn update_unit_status(
        &mut self,
        id: &str,
        status: UnitStatus,
        actor: &Actor,
        now: Millis,
    ) -> Result<Unit, Error> {
        validate_id("unit_id", id)?;
        actor.validate()?;
        status.validate_reported()?;
        let slot = self.units.slot(id)?;
        let incident_id = self.units.record(slot).incident_id.clone();
        match (status, &incident_id) {
            (UnitStatus::EnRoute | UnitStatus::OnScene, None) => {
                return Err(Error::FailedPrecondition(format!(
                    "unit {id} cannot report {}: it is not assigned to an incident",
                    status.as_str()
                )));
            }
            (UnitStatus::Busy | UnitStatus::OffDuty, Some(incident)) => {
                return Err(Error::FailedPrecondition(format!(
                    "unit {id} cannot report {}: it is assigned to incident {incident}; report available to clear first",
                    status.as_str()
                )));
            }
            (UnitStatus::Available, Some(incident)) => {
                self.unassign(
                    slot,
                    incident,
                    actor,
                    now,
                    "unit_cleared",
                    format!("unit {id} cleared"),
                );
            }
            (UnitStatus::OnScene, Some(incident)) => {
                let islot = self.incident_slots[&**incident];
                let inc = &mut self.incidents[islot];
                if inc.status == IncidentStatus::Dispatched {
                    inc.status = IncidentStatus::OnScene;
                    inc.record(now, actor, "status", format!("on_scene: unit {id} arrived"));
                    self.outbox.push(Event::Incident(inc.clone()));
                }
            }
            _ => {}
        }
        self.units.set_status(slot, status);
        self.time_status(slot, status, now);
        let unit = self.units.view(slot, now);
        self.outbox.push(Event::Unit(unit.clone()));
        Ok(unit)
    }

    /// Detaches a unit from its incident and makes it available.
    fn unassign(
        &mut self,
        slot: u32,
        incident_id: &str,
        actor: &Actor,
        now: Millis,
        action: &'static str,
        detail: String,
    ) {
        self.units.set_status(slot, UnitStatus::Available);
        self.time_status(slot, UnitStatus::Available, now);
        let record = self.units.record_mut(slot);
        record.incident_id = None;
        if let Some(order) = record.order.take() {
            self.outbox.push(Event::OrderReleased(*order));
        }
        let unit_id = self.units.unit_id(slot).to_string();
        if let Some(&islot) = self.incident_slots.get(incident_id) {
            let inc = &mut self.incidents[islot];
            inc.unit_ids.retain(|u| *u != unit_id);
            inc.record(now, actor, action, detail);
            self.outbox.push(Event::Incident(inc.clone()));
        }
    }

    // ----- cameras and alerts -------------------------------------------

    /// Registers a camera or replaces it (same id); returns the stored camera
    /// (heading normalised to 0..360, a PTZ camera's head filled in and its
    /// heading derived from it) and whether it is new. A camera given without
    /// `last_seen` keeps the health already known.
    pub fn register_camera(&mut self, camera: Camera) -> Result<(Camera, bool), Error> {
        let (camera, created) = self.cameras.upsert(camera)?;
        self.outbox.push(Event::Camera(camera.clone()));
        Ok((camera, created))
    }

    /// The camera with this id.
    pub fn camera(&self, id: &str) -> Result<&Camera, Error> {
        self.cameras
            .get(id)
            .ok_or_else(|| Error::not_found("camera", id))
    }

    /// The cameras inside `bbox` (all, without one), in registration order.
    pub fn cameras(&self, bbox: Option<&BoundingBox>) -> Vec<Camera> {
        self.cameras.within(bbox).cloned().collect()
    }

    /// The camera index, for queries and metrics (it changes only through
    /// the core's commands).
    pub fn camera_index(&self) -> &CameraIndex {
        &self.cameras
    }

    /// Whether `camera` is online at `now` (its system reported within
    /// `cameras.offline_after_ms`, or its health is not monitored): what a
    /// listing or an event shows.
    pub fn camera_online(&self, camera: &Camera, now: Millis) -> bool {
        self.cameras.is_online(camera, now)
    }

    /// The camera's system reported it alive at `last_seen` (Unix ms, at
    /// most `units.future_tolerance_ms` after `now`). Returns whether the
    /// report was newer than the last. A camera announced offline that
    /// comes back is announced again as a camera event; other reports leave
    /// no event (take them for checkpoints with
    /// [`Dispatcher::take_touched_cameras`]).
    pub fn touch_camera(
        &mut self,
        id: &str,
        last_seen: Millis,
        now: Millis,
    ) -> Result<bool, Error> {
        validate_id("camera_id", id)?;
        let tolerance = self.config.units.future_tolerance_ms;
        if last_seen > now.saturating_add(tolerance) {
            return Err(Error::invalid(
                "last_seen",
                last_seen,
                format!("must be at most {tolerance} ms after now ({now})"),
            ));
        }
        let touched = self.cameras.touch(id, last_seen, now)?;
        if touched.came_online
            && let Some(camera) = self.cameras.get(id)
        {
            self.outbox.push(Event::Camera(camera.clone()));
        }
        Ok(touched.changed)
    }

    /// Announces cameras that went offline (or came back) since the last
    /// sweep, as camera events in registration order. Returns how many
    /// changed.
    pub fn sweep_offline_cameras(&mut self, now: Millis) -> usize {
        let changed = self.cameras.sweep_offline(now);
        for &slot in &changed {
            self.outbox.push(Event::Camera(
                self.cameras.in_slot_order()[slot as usize].clone(),
            ));
        }
        changed.len()
    }

    /// Ids of cameras whose record changed without an event since the last
    /// call (health reports): a checkpoint rewrites them.
    pub fn take_touched_cameras(&mut self) -> Vec<String> {
        self.cameras.take_touched()
    }

    /// Turns a PTZ camera to `pose` (what [`Aim::pose`] gives): pan and tilt
    /// inside its limits, zoom 0..=1. Leaves the camera, with its new
    /// heading, as a camera event. Refuses a fixed or an offline camera.
    pub fn set_camera_pose(
        &mut self,
        id: &str,
        pose: PtzPose,
        now: Millis,
    ) -> Result<Camera, Error> {
        validate_id("camera_id", id)?;
        let camera = self.camera(id)?;
        if !self.cameras.is_online(camera, now) {
            return Err(camera_offline(camera));
        }
        let camera = self.cameras.set_pose(id, pose)?.clone();
        self.outbox.push(Event::Camera(camera.clone()));
        Ok(camera)
    }

    /// The online cameras that see the ground point `target` now or could
    /// after turning, best first, at most `limit` (1..=[`MAX_CAMERA_ANSWERS`]);
    /// see [`CameraIndex::seeing`] for the ranking.
    pub fn cameras_seeing(
        &self,
        target: LonLat,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<CameraSight>, Error> {
        let target = target.validated("target")?;
        check_limit(limit)?;
        Ok(self.cameras.seeing(&target, now, limit))
    }

    /// The online cameras that see the path (at most [`MAX_PATH_POINTS`]
    /// points) or within `corridor_m` (0..=1000) of it, ordered by where along
    /// it each first does; see [`CameraIndex::along`].
    pub fn cameras_along(
        &self,
        path: &[LonLat],
        corridor_m: f64,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<PathSight>, Error> {
        if path.is_empty() || path.len() > MAX_PATH_POINTS {
            return Err(Error::invalid(
                "path",
                format!("{} points", path.len()),
                format!("must have 1..={MAX_PATH_POINTS} points"),
            ));
        }
        for (i, p) in path.iter().enumerate() {
            p.validated(&format!("path[{i}]"))?;
        }
        if !corridor_m.is_finite() || !(0.0..=1000.0).contains(&corridor_m) {
            return Err(Error::invalid(
                "corridor_m",
                corridor_m,
                "must be in 0..=1000",
            ));
        }
        check_limit(limit)?;
        Ok(self.cameras.along(path, corridor_m, now, limit))
    }

    /// How to point camera `id` at `target`, `target_height_m` above the
    /// ground (default [`DEFAULT_TARGET_HEIGHT_M`](crate::cameras::DEFAULT_TARGET_HEIGHT_M)).
    /// Refuses an offline camera.
    pub fn aim_camera(
        &self,
        id: &str,
        target: LonLat,
        target_height_m: Option<f64>,
        now: Millis,
    ) -> Result<Aim, Error> {
        validate_id("camera_id", id)?;
        let target = target.validated("target")?;
        let height = target_height(target_height_m)?;
        let camera = self.camera(id)?;
        if !self.cameras.is_online(camera, now) {
            return Err(camera_offline(camera));
        }
        Ok(camera.aim(&target, height))
    }

    /// Every online camera that can see `target` now or after turning, best
    /// first (as [`Dispatcher::cameras_seeing`]), each with its aim at
    /// `target_height_m` (default 1.5 m).
    pub fn aim_cameras(
        &self,
        target: LonLat,
        target_height_m: Option<f64>,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<CameraAim>, Error> {
        let target = target.validated("target")?;
        let height = target_height(target_height_m)?;
        check_limit(limit)?;
        Ok(self.cameras.aim_all(&target, height, now, limit))
    }

    /// Records an alert; by the alert policy it may open an incident at the
    /// camera or join the open one the same camera raised for the same label.
    /// An alert naming an object (`new.object_id`) that the same camera
    /// alerted on within the policy's object window joins the incident that
    /// object's alerts went to, whatever its label or confidence; if that
    /// incident is no longer open the alert is only recorded (an object never
    /// opens a second incident while it is remembered).
    /// `new.request_id` makes a retry return the first outcome.
    pub fn post_alert(
        &mut self,
        new: NewAlert,
        actor: &Actor,
        now: Millis,
    ) -> Result<AlertOutcome, Error> {
        new.validate(now, self.config.units.future_tolerance_ms)?;
        actor.validate()?;
        let key = match self.retry(&new.request_id, || new.fingerprint(actor), now)? {
            Retry::Repeat(RequestResult::Alert(outcome)) => return Ok(outcome),
            Retry::Repeat(_) => return Err(different_request(&request_id_of(&new.request_id))),
            Retry::Fresh(key) => key,
        };
        let time = new.time_at(now);
        let camera = self.camera(&new.camera_id)?.clone();
        let (incidents, slots) = (&self.incidents, &self.incident_slots);
        let is_open = |iid: &str| {
            slots
                .get(iid)
                .is_some_and(|&s| incidents[s].status.accepts_units())
        };
        let policy = &self.config.alerts;
        let object_incident = new.object_id.as_deref().and_then(|object| {
            self.alert_objects
                .get(&camera.id, object, now, policy.object_window_ms)
                .flatten()
        });
        let disposition = match object_incident {
            Some(iid) if is_open(iid) => AlertDisposition::Join(iid.to_string()),
            Some(_) => AlertDisposition::RecordOnly,
            None => {
                self.alert_joins
                    .decide(policy, &camera.id, &new.label, new.confidence, is_open)
            }
        };
        let object_incident = object_incident.map(str::to_string);
        // Everything that can refuse happens before anything changes: a rule
        // from the configuration may name an incident type the core refuses.
        let opened = match &disposition {
            AlertDisposition::Open(rule) => {
                let new_incident = NewIncident {
                    kind: rule.incident_kind.clone(),
                    priority: Some(rule.priority),
                    location: new
                        .location
                        .unwrap_or_else(|| camera.view_centre(policy.view_distance_m)),
                    source: IncidentSource::CameraAlert,
                    description: incident_description(&new.label, new.confidence, &camera),
                    request_id: None,
                };
                new_incident.validate()?;
                Some(new_incident)
            }
            _ => None,
        };
        let id = format!("{}alert-{}", self.config.id_prefix, self.next_alert);
        self.next_alert += 1;
        let mut alert = Alert {
            id,
            camera_id: camera.id.clone(),
            time,
            label: new.label,
            confidence: new.confidence,
            snapshot_uri: new.snapshot_uri,
            location: camera.at,
            incident_id: None,
            object_id: new.object_id,
        };
        let mut incident_created = false;
        let islot = match (disposition, opened) {
            (AlertDisposition::Join(incident_id), _) => {
                let islot = self.incident_slots[&incident_id];
                let inc = &mut self.incidents[islot];
                inc.alert_ids.push(alert.id.clone());
                inc.record(now, actor, "alert_joined", joined_detail(&alert));
                Some(islot)
            }
            (_, Some(new_incident)) => {
                let inc = self.open_incident(new_incident, actor, now)?;
                let islot = self.incident_slots[&inc];
                let inc = &mut self.incidents[islot];
                inc.camera_ids.push(camera.id.clone());
                inc.alert_ids.push(alert.id.clone());
                self.alert_joins.remember(&camera.id, &alert.label, &inc.id);
                incident_created = true;
                Some(islot)
            }
            _ => None,
        };
        alert.incident_id = islot.map(|s| self.incidents[s].id.clone());
        if let Some(object) = &alert.object_id {
            let policy = &self.config.alerts;
            self.alert_objects.seen(
                &camera.id,
                object,
                alert.incident_id.clone().or(object_incident),
                now,
                policy.object_window_ms,
                policy.max_objects,
            );
        }
        self.outbox.push(Event::Alert(alert.clone()));
        if let Some(islot) = islot {
            self.outbox
                .push(Event::Incident(self.incidents[islot].clone()));
        }
        let outcome = AlertOutcome {
            alert,
            incident_created,
        };
        self.remember(key, now, || RequestResult::Alert(outcome.clone()));
        Ok(outcome)
    }

    // ----- incidents -------------------------------------------------------

    fn open_incident(
        &mut self,
        new: NewIncident,
        actor: &Actor,
        now: Millis,
    ) -> Result<String, Error> {
        new.validate()?;
        let priority = new.priority_or_default();
        let location = new.location;
        let id = format!("{}inc-{}", self.config.id_prefix, self.next_incident);
        self.next_incident += 1;
        let mut incident = Incident {
            id: id.clone(),
            kind: new.kind,
            priority,
            location,
            source: new.source,
            status: IncidentStatus::New,
            description: new.description,
            unit_ids: Vec::new(),
            camera_ids: Vec::new(),
            alert_ids: Vec::new(),
            created: now,
            updated: now,
            audit: Vec::new(),
            withdrawn_unit_ids: Vec::new(),
        };
        incident.record(
            now,
            actor,
            "created",
            format!(
                "{} p{} at ({:.6}, {:.6})",
                incident.kind, priority, location.lon, location.lat
            ),
        );
        self.incident_slots.insert(id.clone(), self.incidents.len());
        self.incidents.push(incident);
        Ok(id)
    }

    /// Opens an incident from a call or an operator; `new.request_id` makes
    /// a retry return the same incident.
    pub fn create_incident(
        &mut self,
        new: NewIncident,
        actor: &Actor,
        now: Millis,
    ) -> Result<Incident, Error> {
        new.validate()?;
        actor.validate()?;
        let key = match self.retry(&new.request_id, || new.fingerprint(actor), now)? {
            Retry::Repeat(RequestResult::Incident { incident_id }) => {
                return self.incident(&incident_id).cloned();
            }
            Retry::Repeat(_) => return Err(different_request(&request_id_of(&new.request_id))),
            Retry::Fresh(key) => key,
        };
        let id = self.open_incident(new, actor, now)?;
        let incident = self.incidents[self.incident_slots[&id]].clone();
        self.outbox.push(Event::Incident(incident));
        self.auto_dispatch(&id, now);
        let incident = self.incidents[self.incident_slots[&id]].clone();
        self.remember(key, now, || RequestResult::Incident { incident_id: id });
        Ok(incident)
    }

    /// The incident with this id, in whatever status.
    pub fn incident(&self, id: &str) -> Result<&Incident, Error> {
        validate_id("incident_id", id)?;
        self.incident_slots
            .get(id)
            .map(|&s| &self.incidents[s])
            .ok_or_else(|| Error::not_found("incident", id))
    }

    /// Incidents with one of `statuses` (empty: all but closed), newest first.
    pub fn list_incidents(&self, statuses: &[IncidentStatus], limit: usize) -> Vec<Incident> {
        self.incidents
            .iter()
            .rev()
            .filter(|i| {
                if statuses.is_empty() {
                    i.status.is_open()
                } else {
                    statuses.contains(&i.status)
                }
            })
            .take(limit)
            .cloned()
            .collect()
    }

    /// Checks a recommendation request and resolves its target to a point
    /// (and the incident, for an incident target).
    fn recommend_target(
        &self,
        target: &Target,
        query: &UnitQuery,
    ) -> Result<(LonLat, Option<&Incident>), Error> {
        let (point, incident) = match target {
            Target::Incident(id) => {
                let incident = self.incident(id)?;
                (incident.location, Some(incident))
            }
            Target::Point(p) => (p.validated("point")?, None),
            Target::Unit(id) => (self.unit_position(id)?, None),
        };
        if query.k > crate::recommend::MAX_K {
            return Err(Error::invalid(
                "k",
                query.k,
                format!("must be at most {}", crate::recommend::MAX_K),
            ));
        }
        if let Some(m) = query.max_distance_m
            && (!m.is_finite() || m < 0.0)
        {
            return Err(Error::invalid(
                "max_distance_m",
                m,
                "must be finite and >= 0",
            ));
        }
        if let Some(p) = query.priority
            && !(1..=5).contains(&p)
        {
            return Err(Error::invalid(
                "priority",
                p,
                "must be 1 (most urgent) ..= 5",
            ));
        }
        Ok((point, incident))
    }

    /// Where `target` is: the point, the incident's location, or the unit's
    /// latest fix (a unit without a fix is `FailedPrecondition`).
    pub fn target_point(&self, target: &Target) -> Result<LonLat, Error> {
        match target {
            Target::Point(p) => p.validated("point"),
            Target::Incident(id) => Ok(self.incident(id)?.location),
            Target::Unit(id) => self.unit_position(id),
        }
    }

    fn unit_position(&self, id: &str) -> Result<LonLat, Error> {
        validate_id("unit_id", id)?;
        let slot = self.units.slot(id)?;
        self.units
            .record(slot)
            .fix()
            .map(|f| f.at)
            .ok_or_else(|| Error::FailedPrecondition(format!("unit {id} has no position yet")))
    }

    /// What the ranking may use: the network and the trust rules.
    fn rank_context(&self) -> RankContext<'_> {
        RankContext {
            network: self.config.network.as_ref(),
            trust: &self.config.trust,
        }
    }

    /// The k suitable available units that arrive first at an incident or a
    /// point (over the street network when one is loaded), explained for
    /// operators; for an incident, its response plan filled as well.
    pub fn recommend(
        &self,
        target: &Target,
        query: &UnitQuery,
        now: Millis,
    ) -> Result<Recommendation, Error> {
        let (point, incident) = self.recommend_target(target, query)?;
        let mut query = query.clone();
        if let Some(incident) = incident {
            query.priority = Some(incident.priority);
        }
        let mut recommendation =
            recommend_units(&self.units, point, &query, now, self.rank_context());
        self.prefer_home(&mut recommendation, point, &query, now);
        if let Some(incident) = incident {
            recommendation.plan = Some(self.fill_plan(incident, now));
        }
        Ok(recommendation)
    }

    /// The way a unit of `kind` at `from` goes to `to` for an incident of
    /// `priority`: over the network when one is loaded, else straight.
    fn route_for(&self, kind: UnitKind, from: LonLat, to: LonLat, priority: u32) -> RoutePlan {
        match &self.config.network {
            Some(network) => network.route(kind, from, to, Some(priority)),
            None => {
                let straight_m = from.distance_m(&to);
                RoutePlan {
                    eta_s: straight_eta_s(kind, straight_m, DETOUR_FACTOR),
                    route_m: straight_m * DETOUR_FACTOR,
                    straight_m,
                    method: crate::network::EtaMethod::StraightLine,
                    geometry: vec![from, to],
                }
            }
        }
    }

    /// The ranked units for `point` alone (no plan), for filling plans.
    fn rank_for(
        &self,
        point: LonLat,
        query: &UnitQuery,
        now: Millis,
    ) -> Result<Recommendation, Error> {
        Ok(recommend_units(
            &self.units,
            point,
            query,
            now,
            self.rank_context(),
        ))
    }

    /// The search behind [`Dispatcher::recommend`] alone, without building the
    /// explanation (for measuring the spatial query by itself).
    pub fn nearest(
        &self,
        target: &Target,
        query: &UnitQuery,
        now: Millis,
    ) -> Result<NearestUnits, Error> {
        let (point, _) = self.recommend_target(target, query)?;
        Ok(nearest_units(&self.units, point, query, now))
    }

    /// Assigns units to an incident, all or none. Each unit must be available
    /// (not offline, busy, off duty or assigned elsewhere).
    /// `request.request_id` makes a retry return the incident as it is now
    /// and the orders the first call issued.
    pub fn dispatch(
        &mut self,
        request: &DispatchRequest,
        actor: &Actor,
        now: Millis,
    ) -> Result<(Incident, Vec<Order>), Error> {
        request.validate()?;
        actor.validate()?;
        let key = match self.retry(&request.request_id, || request.fingerprint(actor), now)? {
            Retry::Repeat(RequestResult::Dispatch {
                incident_id,
                orders,
            }) => return Ok((self.incident(&incident_id)?.clone(), orders)),
            Retry::Repeat(_) => return Err(different_request(&request_id_of(&request.request_id))),
            Retry::Fresh(key) => key,
        };
        let DispatchRequest {
            incident_id,
            unit_ids,
            note,
            request_id: _,
            intercept,
        } = request;
        let incident_id = incident_id.as_str();
        let islot = *self
            .incident_slots
            .get(incident_id)
            .ok_or_else(|| Error::not_found("incident", incident_id))?;
        let status = self.incidents[islot].status;
        if !status.accepts_units() {
            return Err(Error::FailedPrecondition(format!(
                "incident {incident_id} is {}: units can no longer be dispatched to it",
                status.as_str()
            )));
        }
        let mut slots = Vec::with_capacity(unit_ids.len());
        for id in unit_ids {
            let slot = self.units.slot(id)?;
            let record = self.units.record(slot);
            match self.units.effective_status(slot, now) {
                UnitStatus::Available => slots.push(slot),
                UnitStatus::Offline => {
                    return Err(Error::FailedPrecondition(format!(
                        "unit {id} is not available: offline (no recent fix)"
                    )));
                }
                other => {
                    let on = record
                        .incident_id
                        .as_deref()
                        .map(|i| format!(" on incident {i}"))
                        .unwrap_or_default();
                    return Err(Error::FailedPrecondition(format!(
                        "unit {id} is not available: {}{on}",
                        other.as_str()
                    )));
                }
            }
        }
        let mut orders = Vec::with_capacity(slots.len());
        for slot in slots {
            self.units.set_status(slot, UnitStatus::Assigned);
            let record = self.units.record_mut(slot);
            record.incident_id = Some(incident_id.into());
            let fix = record.fix();
            let kind = record.kind;
            let unit_id = self.units.unit_id(slot).to_string();
            let (location, priority) = (
                intercept.unwrap_or(self.incidents[islot].location),
                self.incidents[islot].priority,
            );
            let route = fix.map(|f| self.route_for(kind, f.at, location, priority));
            let inc = &self.incidents[islot];
            let order = Order {
                id: format!("{}order-{}", self.config.id_prefix, self.next_order),
                unit_id: unit_id.clone(),
                incident_id: inc.id.clone(),
                incident_kind: inc.kind.clone(),
                priority: inc.priority,
                location,
                description: inc.description.clone(),
                issued: now,
                distance_m: fix.map(|f| f.at.distance_m(&location)),
                note: note.clone(),
                eta_s: route.as_ref().map(|r| r.eta_s),
                route_m: route.as_ref().map(|r| r.route_m),
                eta_method: route.as_ref().map(|r| r.method),
                route: route.map(|r| r.geometry).unwrap_or_default(),
                acknowledged: None,
                intercept: intercept.is_some(),
            };
            self.next_order += 1;
            self.units.record_mut(slot).order = Some(Box::new(order.clone()));
            self.expect_ack(slot, &order);
            self.time_status(slot, UnitStatus::Assigned, now);
            let inc = &mut self.incidents[islot];
            inc.unit_ids.push(unit_id.clone());
            inc.record(
                now,
                actor,
                "dispatched",
                match intercept {
                    Some(p) => format!(
                        "unit {unit_id} ({}) to intercept at ({:.6}, {:.6})",
                        order.id, p.lon, p.lat
                    ),
                    None => format!("unit {unit_id} ({})", order.id),
                },
            );
            if inc.status == IncidentStatus::New {
                inc.status = IncidentStatus::Dispatched;
            }
            self.outbox.push(Event::Unit(self.units.view(slot, now)));
            self.outbox.push(Event::Order(order.clone()));
            orders.push(order);
        }
        let incident = self.incidents[islot].clone();
        self.outbox.push(Event::Incident(incident.clone()));
        self.remember(key, now, || RequestResult::Dispatch {
            incident_id: incident.id.clone(),
            orders: orders.clone(),
        });
        Ok((incident, orders))
    }

    /// Moves an incident through its lifecycle. Closing frees its units.
    /// `update.request_id` makes a retry return the incident as it is now.
    pub fn update_incident(
        &mut self,
        update: &IncidentUpdate,
        actor: &Actor,
        now: Millis,
    ) -> Result<Incident, Error> {
        update.validate()?;
        actor.validate()?;
        let key = match self.retry(&update.request_id, || update.fingerprint(actor), now)? {
            Retry::Repeat(RequestResult::Incident { incident_id }) => {
                return self.incident(&incident_id).cloned();
            }
            Retry::Repeat(_) => return Err(different_request(&request_id_of(&update.request_id))),
            Retry::Fresh(key) => key,
        };
        let (id, to, note) = (update.id.as_str(), update.status, update.note.as_str());
        let islot = *self
            .incident_slots
            .get(id)
            .ok_or_else(|| Error::not_found("incident", id))?;
        let from = self.incidents[islot].status;
        let remembered = || RequestResult::Incident {
            incident_id: id.to_string(),
        };
        if from == to {
            self.remember(key, now, remembered);
            return Ok(self.incidents[islot].clone());
        }
        if !from.can_become(to) {
            return Err(Error::FailedPrecondition(format!(
                "incident {id} cannot go from {} to {}",
                from.as_str(),
                to.as_str()
            )));
        }
        if to == IncidentStatus::Closed {
            for unit_id in self.incidents[islot].unit_ids.clone() {
                if let Ok(slot) = self.units.slot(&unit_id) {
                    self.unassign(
                        slot,
                        id,
                        actor,
                        now,
                        "unit_released",
                        format!("unit {unit_id} released on close"),
                    );
                    self.outbox.push(Event::Unit(self.units.view(slot, now)));
                }
            }
            self.close_tracks_of(id, now);
        }
        if !to.accepts_units() {
            self.alert_joins.forget_incident(id);
        }
        let inc = &mut self.incidents[islot];
        inc.status = to;
        let detail = if note.is_empty() {
            to.as_str().to_string()
        } else {
            format!("{}: {note}", to.as_str())
        };
        inc.record(now, actor, "status", detail);
        let incident = inc.clone();
        self.outbox.push(Event::Incident(incident.clone()));
        self.remember(key, now, remembered);
        Ok(incident)
    }

    /// The unit's current order, if it is assigned (re-sent to a reconnecting
    /// terminal).
    pub fn current_order(&self, unit_id: &str) -> Result<Option<Order>, Error> {
        validate_id("unit_id", unit_id)?;
        let slot = self.units.slot(unit_id)?;
        Ok(self.units.record(slot).order.as_deref().cloned())
    }

    // ----- persistence (see `persist`) -------------------------------------

    pub(crate) fn counters(&self) -> (u64, u64, u64) {
        (self.next_alert, self.next_incident, self.next_order)
    }

    pub(crate) fn alert_joins(&self) -> &AlertJoins {
        &self.alert_joins
    }

    pub(crate) fn alert_objects(&self) -> &AlertObjects {
        &self.alert_objects
    }

    pub(crate) fn request_log(&self) -> &RequestLog {
        &self.requests
    }

    pub(crate) fn incident_slot(&self, id: &str) -> Option<usize> {
        self.incident_slots.get(id).copied()
    }

    pub(crate) fn incidents_in_order(&self) -> &[Incident] {
        &self.incidents
    }

    pub(crate) fn units_mut(&mut self) -> &mut UnitIndex {
        &mut self.units
    }

    pub(crate) fn restore_rest(
        &mut self,
        cameras: CameraIndex,
        incidents: Vec<Incident>,
        meta: crate::persist::CoreMeta,
    ) {
        self.cameras = cameras;
        self.incident_slots = incidents
            .iter()
            .enumerate()
            .map(|(slot, i)| (i.id.clone(), slot))
            .collect();
        self.incidents = incidents;
        self.alert_joins = AlertJoins::from_records(meta.alert_incidents);
        self.alert_objects = AlertObjects::from_records(meta.alert_objects);
        self.requests = RequestLog::from_records(
            meta.requests,
            self.config.request_ttl_ms,
            self.config.max_requests,
        );
        self.next_alert = meta.next_alert;
        self.next_incident = meta.next_incident;
        self.next_order = meta.next_order;
    }

    /// Everything a new command-room client needs, copied cheaply (see
    /// [`UnitIndex::copy_table`]): build the units from it with
    /// [`SnapshotCopy::units`] after releasing whatever guards the core.
    pub fn snapshot_copy(&self) -> SnapshotCopy {
        SnapshotCopy {
            units: self.units.copy_table(),
            cameras: self.cameras.in_slot_order().to_vec(),
            incidents: self
                .incidents
                .iter()
                .filter(|i| i.status.is_open())
                .cloned()
                .collect(),
            tracks: self.tracks(false),
            zones: self.zones(),
        }
    }

    /// Everything a new command-room client needs.
    pub fn snapshot(&self, now: Millis) -> Snapshot {
        Snapshot {
            units: self.units.all(now),
            cameras: self.cameras.in_slot_order().to_vec(),
            incidents: self
                .incidents
                .iter()
                .filter(|i| i.status.is_open())
                .cloned()
                .collect(),
            tracks: self.tracks(false),
            zones: self.zones(),
        }
    }
}

/// Most cameras one camera query answers with.
pub const MAX_CAMERA_ANSWERS: usize = 1_000;

/// Most points a path for [`Dispatcher::cameras_along`] may have.
pub const MAX_PATH_POINTS: usize = 10_000;

fn check_limit(limit: usize) -> Result<(), Error> {
    if (1..=MAX_CAMERA_ANSWERS).contains(&limit) {
        Ok(())
    } else {
        Err(Error::invalid(
            "limit",
            limit,
            format!("must be in 1..={MAX_CAMERA_ANSWERS}"),
        ))
    }
}

fn target_height(height_m: Option<f64>) -> Result<f64, Error> {
    let height = height_m.unwrap_or(crate::cameras::DEFAULT_TARGET_HEIGHT_M);
    if height.is_finite() && (-100.0..=500.0).contains(&height) {
        Ok(height)
    } else {
        Err(Error::invalid(
            "target_height_m",
            height,
            "must be in -100..=500",
        ))
    }
}

fn camera_offline(camera: &Camera) -> Error {
    Error::FailedPrecondition(format!(
        "camera {} is offline (last seen {})",
        camera.id,
        camera
            .last_seen
            .map_or("never".to_string(), |t| t.to_string())
    ))
}

/// The request id of a command that has one (for the refusal of a reuse).
fn request_id_of(request_id: &Option<String>) -> String {
    request_id.clone().unwrap_or_default()
}
