//! A suspect followed from camera to camera.
//!
//! A [`Track`] is the sightings of one target (from camera alerts or an
//! operator's clicks). From them the core makes a [`Prediction`]: the path so
//! far over the street network, the observed speed and direction, where the
//! target can be over the next minutes (everything reachable along the
//! network at that speed, going on the way it was heading), the most likely
//! way on (straight ahead at every junction), and the *handoff list*: the
//! cameras it can pass next, by expected arrival, each with the window in
//! which it should appear there. [`Intercept`]s are units that can reach a
//! point of the way ahead *before the target does*.
//!
//! Pure: [`predict`] and [`intercepts`] take the network, the camera index
//! and the units as they are; the core calls them on every sighting (the
//! prediction travels with the track's event) and on request.

mod intercept;
mod predict;

pub use intercept::{Intercept, InterceptQuery, Intercepts, intercepts};
pub use predict::predict;

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::actor::Actor;
use crate::cameras::Turn;
use crate::error::{Error, validate_id};
use crate::geometry::{LonLat, Validated};
use crate::network::EtaMethod;
use crate::units::UnitKind;

/// At most this many sightings are kept per track (the oldest go first).
pub const MAX_SIGHTINGS: usize = 200;
/// At most this many cameras in a handoff list.
pub const MAX_HANDOFFS: usize = 50;
/// A note or label, at most this many bytes.
pub const MAX_TEXT_LEN: usize = 1024;

/// How tracks predict: tunable in the server's config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrackConfig {
    /// How far ahead to predict, seconds.
    pub horizon_s: f64,
    /// The target may move this much faster or slower than observed
    /// (0.3: 30%): the handoff windows and the intercept margin come from it.
    pub speed_tolerance: f64,
    /// Cameras in a handoff list, at most.
    pub max_handoffs: usize,
    /// A camera counts as seeing a street when its view comes within this
    /// many metres of it.
    pub corridor_m: f64,
    /// Reachable ground is searched out to at most this many metres.
    pub max_reach_m: f64,
    /// Intercept points are tried every this many metres along the way ahead.
    pub intercept_step_m: f64,
    /// A unit must be at an intercept point at least this many seconds before
    /// the earliest the target can be there.
    pub intercept_margin_s: f64,
}

impl Default for TrackConfig {
    fn default() -> Self {
        Self {
            horizon_s: 300.0,
            speed_tolerance: 0.3,
            max_handoffs: 10,
            corridor_m: 5.0,
            max_reach_m: 5_000.0,
            intercept_step_m: 40.0,
            intercept_margin_s: 20.0,
        }
    }
}

impl TrackConfig {
    /// Every setting within its range, naming the first that is not.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(field, v, "must be a positive number"))
            }
        };
        positive("tracks.horizon_s", self.horizon_s)?;
        positive("tracks.corridor_m", self.corridor_m)?;
        positive("tracks.max_reach_m", self.max_reach_m)?;
        positive("tracks.intercept_step_m", self.intercept_step_m)?;
        if !(self.speed_tolerance.is_finite() && (0.0..0.9).contains(&self.speed_tolerance)) {
            return Err(Error::invalid(
                "tracks.speed_tolerance",
                self.speed_tolerance,
                "must be in 0..0.9",
            ));
        }
        if !(self.intercept_margin_s.is_finite() && self.intercept_margin_s >= 0.0) {
            return Err(Error::invalid(
                "tracks.intercept_margin_s",
                self.intercept_margin_s,
                "must be 0 or more",
            ));
        }
        if !(1..=MAX_HANDOFFS).contains(&self.max_handoffs) {
            return Err(Error::invalid(
                "tracks.max_handoffs",
                self.max_handoffs,
                format!("must be 1..={MAX_HANDOFFS}"),
            ));
        }
        Ok(())
    }
}

/// Where and when the target was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    /// When, Unix ms.
    pub time: Millis,
    /// Where (x = longitude, y = latitude, degrees).
    pub at: LonLat,
    /// The camera that saw it, if a camera did.
    pub camera_id: Option<String>,
    /// Free text, e.g. "red jacket, running".
    pub note: String,
    /// Who reported it.
    pub actor: Actor,
}

/// A sighting as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSighting {
    /// When, Unix ms; `None`: the command's now.
    pub time: Option<Millis>,
    /// Where; `None`: the camera's position (then `camera_id` is required).
    pub at: Option<LonLat>,
    /// The camera that saw it.
    pub camera_id: Option<String>,
    /// Free text, at most [`MAX_TEXT_LEN`] bytes.
    pub note: String,
}

impl NewSighting {
    /// The checks that need no state.
    pub fn validate(&self, prefix: &str) -> Result<(), Error> {
        if let Some(at) = &self.at {
            (*at).validated(&format!("{prefix}.point"))?;
        }
        if let Some(id) = &self.camera_id {
            validate_id(&format!("{prefix}.camera_id"), id)?;
        }
        if self.at.is_none() && self.camera_id.is_none() {
            return Err(Error::invalid(
                &format!("{prefix}.point"),
                "none",
                "give a point, or the camera that saw it",
            ));
        }
        if self.note.len() > MAX_TEXT_LEN {
            return Err(Error::invalid(
                &format!("{prefix}.note"),
                format!("{} bytes", self.note.len()),
                format!("must be at most {MAX_TEXT_LEN} bytes"),
            ));
        }
        if let Some(t) = self.time
            && t <= 0
        {
            return Err(Error::invalid(
                &format!("{prefix}.time_unix_ms"),
                t,
                "must be a Unix time in ms",
            ));
        }
        Ok(())
    }
}

/// A track as an operator starts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTrack {
    /// What is followed, e.g. "man in a red jacket", 1..=1024 bytes.
    pub label: String,
    /// How the target moves: on foot, by car, by bike.
    pub mode: UnitKind,
    /// The incident it belongs to; `None`: one is opened at the first
    /// sighting (type "track", priority `priority`).
    pub incident_id: Option<String>,
    /// The priority of an incident opened for it; `None`: 2.
    pub priority: Option<u32>,
    /// The first sighting.
    pub sighting: NewSighting,
    /// Caller-chosen, for retries.
    #[serde(default)]
    pub request_id: Option<String>,
}

impl NewTrack {
    /// The checks that need no state.
    pub fn validate(&self) -> Result<(), Error> {
        if self.label.is_empty() || self.label.len() > MAX_TEXT_LEN {
            return Err(Error::invalid(
                "label",
                format!("{} bytes", self.label.len()),
                format!("must be 1..={MAX_TEXT_LEN} bytes"),
            ));
        }
        if let Some(id) = &self.incident_id {
            validate_id("incident_id", id)?;
        }
        if let Some(p) = self.priority
            && !(1..=5).contains(&p)
        {
            return Err(Error::invalid(
                "priority",
                p,
                "must be 1 (most urgent) ..= 5",
            ));
        }
        self.sighting.validate("sighting")
    }
}

/// A camera the target should reach next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// The camera.
    pub camera_id: String,
    /// Where the target first comes into its view (or, for a PTZ camera that
    /// must turn, into the ground it can see after turning).
    pub at: LonLat,
    /// Metres over the network from the last sighting to `at`.
    pub distance_m: f64,
    /// When the target should be there at its observed speed, Unix ms.
    pub expected: Millis,
    /// The earliest it can be there (at the fast end of the speed
    /// tolerance), Unix ms.
    pub window_start: Millis,
    /// The latest (at the slow end), Unix ms.
    pub window_end: Millis,
    /// Its current view covers that point; otherwise it must turn.
    pub sees_now: bool,
    /// For a PTZ camera that must turn: the pose that centres `at`.
    pub turn: Option<Turn>,
    /// `at` lies on the most likely way on ([`Prediction::ahead`]).
    pub on_way_ahead: bool,
}

/// Where the target is going, as of its last sighting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// When it was made (the command's now), Unix ms.
    pub made: Millis,
    /// The last sighting on the network (its snapped point), and its time.
    pub from: LonLat,
    /// The last sighting's time, Unix ms.
    pub from_time: Millis,
    /// Metres per second: observed between the last two sightings, or the
    /// mode's usual speed with a single sighting (`speed_observed` false).
    pub speed_mps: f64,
    /// Whether `speed_mps` was observed.
    pub speed_observed: bool,
    /// The direction it was going at the last sighting, degrees from north
    /// (none with a single sighting: every way is possible).
    pub heading_deg: Option<f64>,
    /// The way it came, over the network, through the recent sightings.
    pub path: Vec<LonLat>,
    /// The most likely way on: straight ahead at every junction, for the
    /// horizon at the observed speed.
    pub ahead: Vec<LonLat>,
    /// Its length, metres.
    pub ahead_m: f64,
    /// Metres of street reachable within the horizon (at the fast end of
    /// the tolerance).
    pub reachable_m: f64,
    /// The cameras to watch, by expected arrival.
    pub handoffs: Vec<Handoff>,
    /// Network, or straight line along the heading with no network (said
    /// here so every screen can say it).
    pub method: EtaMethod,
}

/// A suspect followed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Server-assigned: `{id_prefix}track-{n}`.
    pub id: String,
    /// What is followed.
    pub label: String,
    /// How the target moves.
    pub mode: UnitKind,
    /// The incident it belongs to.
    pub incident_id: String,
    /// Every sighting, oldest first (at most [`MAX_SIGHTINGS`]).
    pub sightings: Vec<Sighting>,
    /// When it was started, Unix ms.
    pub created: Millis,
    /// When it was closed, if it was.
    pub closed: Option<Millis>,
    /// Why it was closed.
    pub close_reason: String,
    /// The latest prediction.
    pub prediction: Option<Prediction>,
}

impl Track {
    /// The latest sighting (every track has one).
    pub fn last(&self) -> &Sighting {
        self.sightings.last().expect("a track has a sighting")
    }

    /// Whether it is still followed.
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }
}
