//! Units and pings: the vocabulary ([`UnitKind`], [`UnitStatus`], [`Fix`],
//! [`Ping`], [`UnitProfile`], [`Unit`], ...) and [`UnitIndex`], the record
//! table, id table and spatial index that change together only through its
//! methods.
//!
//! - `store`: the compact per-unit records and the arenas their ids and call
//!   signs live in.
//! - `index`: [`UnitIndex`] and its operations: registration, pings, status,
//!   listing and the candidate walk behind recommendations.

use crate::Millis;
use crate::geometry::{BoundingBox, LonLat};

mod index;
mod store;

pub(crate) use index::Candidate;
pub use index::{IndexMemory, UnitIndex};

/// Estimated bytes a hashbrown table with room for `capacity` entries of
/// `entry_bytes` each reserves: its buckets (a power of two, at most 7/8
/// full), one control byte per bucket and a group of trailing control bytes.
pub(crate) fn hash_table_bytes(capacity: usize, entry_bytes: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * (entry_bytes + 1) + 16
}

/// What a unit is: it decides who is suitable and how fast they get there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UnitKind {
    Car,
    Foot,
    EBike,
    Motorcycle,
}

impl UnitKind {
    /// A planning speed in metres per second for straight-line ETAs in a city.
    pub fn planning_speed_mps(self) -> f64 {
        match self {
            UnitKind::Car => 8.3,
            UnitKind::Motorcycle => 9.7,
            UnitKind::EBike => 5.0,
            UnitKind::Foot => 1.5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Car => "car",
            UnitKind::Foot => "foot",
            UnitKind::EBike => "e-bike",
            UnitKind::Motorcycle => "motorcycle",
        }
    }
}

/// A unit's status. `Offline` is never stored: it is derived from the age of the
/// last fix (see [`UnitIndex::effective_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UnitStatus {
    Available,
    Assigned,
    EnRoute,
    OnScene,
    Busy,
    OffDuty,
    Offline,
}

impl UnitStatus {
    pub const ALL: [UnitStatus; 7] = [
        UnitStatus::Available,
        UnitStatus::Assigned,
        UnitStatus::EnRoute,
        UnitStatus::OnScene,
        UnitStatus::Busy,
        UnitStatus::OffDuty,
        UnitStatus::Offline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitStatus::Available => "available",
            UnitStatus::Assigned => "assigned",
            UnitStatus::EnRoute => "en_route",
            UnitStatus::OnScene => "on_scene",
            UnitStatus::Busy => "busy",
            UnitStatus::OffDuty => "off_duty",
            UnitStatus::Offline => "offline",
        }
    }
}

/// The latest accepted fix of a unit.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fix {
    pub at: LonLat,
    pub time: Millis,
    pub speed_mps: Option<f32>,
    pub heading_deg: Option<f32>,
    pub accuracy_m: Option<f32>,
}

/// Who a unit is, as registered.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitProfile {
    pub id: String,
    pub call_sign: String,
    pub kind: UnitKind,
    pub capabilities: Vec<String>,
}

/// A unit as callers see it: profile, effective status, fix and assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub profile: UnitProfile,
    pub status: UnitStatus,
    pub fix: Option<Fix>,
    pub incident_id: Option<String>,
}

/// One GPS fix as it arrives, borrowed from the wire message.
#[derive(Debug, Clone, Copy)]
pub struct Ping<'a> {
    pub unit_id: &'a str,
    pub time: Millis,
    pub at: LonLat,
    pub speed_mps: Option<f32>,
    pub heading_deg: Option<f32>,
    pub accuracy_m: Option<f32>,
}

/// What an accepted ping did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    /// The unit's fix is now this ping.
    Moved,
    /// Same fix time as the one held: a harmless repeat, nothing changed.
    Duplicate,
}

/// Why a ping was refused. The unit keeps its previous fix.
#[derive(Debug, Clone, PartialEq)]
pub enum PingRejection {
    MissingUnitId,
    UnknownUnit,
    InvalidCoordinates { lon: f64, lat: f64 },
    MissingFixTime { time: Millis },
    FutureFixTime { time: Millis, now: Millis },
    OutOfOrder { time: Millis, held: Millis },
    InvalidMotion { field: &'static str, value: f32 },
}

impl PingRejection {
    /// A human-readable reason naming the field and value.
    pub fn message(&self, unit_id: &str) -> String {
        match self {
            PingRejection::MissingUnitId => "unit_id is empty".to_string(),
            PingRejection::UnknownUnit => format!("unit_id {unit_id:?} is not registered"),
            PingRejection::InvalidCoordinates { lon, lat } => format!(
                "lon/lat ({lon}, {lat}) out of range: lon must be finite in -180..=180, lat in -90..=90"
            ),
            PingRejection::MissingFixTime { time } => {
                format!("fix_time_unix_ms = {time}: must be a positive Unix time in milliseconds")
            }
            PingRejection::FutureFixTime { time, now } => format!(
                "fix_time_unix_ms = {time} is {} ms in the future (server time {now})",
                time - now
            ),
            PingRejection::OutOfOrder { time, held } => format!(
                "fix_time_unix_ms = {time} is older than the fix already held ({held}); the unit was not moved back"
            ),
            PingRejection::InvalidMotion { field, value } => {
                format!("{field} = {value} is not finite or out of range")
            }
        }
    }
}

/// Settings for the unit index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitIndexConfig {
    /// A unit whose last fix is older than this is offline (milliseconds).
    pub offline_after_ms: Millis,
    /// How far in the future a fix time may be (clock skew), milliseconds.
    pub future_tolerance_ms: Millis,
    /// Side of the spatial index's cells, metres. Smaller cells mean fewer
    /// units examined per query, more cell changes per move.
    pub cell_size_m: f64,
}

impl Default for UnitIndexConfig {
    fn default() -> Self {
        Self {
            offline_after_ms: 120_000,
            future_tolerance_ms: 5_000,
            cell_size_m: 150.0,
        }
    }
}

/// Which units `list` returns. Empty sets mean any.
#[derive(Debug, Clone, Default)]
pub struct UnitFilter {
    pub statuses: Vec<UnitStatus>,
    pub kinds: Vec<UnitKind>,
    pub bbox: Option<BoundingBox>,
}
