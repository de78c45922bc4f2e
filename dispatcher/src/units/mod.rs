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
use crate::error::{Error, validate_id};
use crate::geometry::{BoundingBox, LonLat};

/// Longest accepted call sign, in bytes.
pub const MAX_CALL_SIGN_LEN: usize = 64;
/// At most this many capability tags per unit (and per index: a unit's
/// capabilities are a 64-bit mask over the index's tags).
pub const MAX_CAPABILITIES: usize = 64;

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
    /// Refuses the statuses a unit may not report itself: `Assigned` is set
    /// only by dispatching, `Offline` only by the age of its last fix.
    /// Stateless, so the service runs it at the edge; whether the unit's
    /// assignment allows the status is the core's check.
    pub fn validate_reported(self) -> Result<(), Error> {
        match self {
            UnitStatus::Assigned | UnitStatus::Offline => Err(Error::invalid(
                "status",
                self.as_str(),
                "assigned is set by Dispatch and offline by fix age; a unit may report available, en_route, on_scene, busy or off_duty",
            )),
            _ => Ok(()),
        }
    }

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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnitProfile {
    pub id: String,
    pub call_sign: String,
    pub kind: UnitKind,
    pub capabilities: Vec<String>,
}

impl UnitProfile {
    /// The checks that need no state: id, call sign length, each capability
    /// tag well-formed, at most [`MAX_CAPABILITIES`] of them. The service runs
    /// this at the edge before logging a registration; the index runs it
    /// again. Whether the index still has room for new tags is its own check.
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("id", &self.id)?;
        if self.call_sign.len() > MAX_CALL_SIGN_LEN {
            return Err(Error::invalid(
                "call_sign",
                format!("{:?}", self.call_sign),
                format!("must be at most {MAX_CALL_SIGN_LEN} bytes"),
            ));
        }
        if self.capabilities.len() > MAX_CAPABILITIES {
            return Err(Error::invalid(
                "capabilities",
                format!("{} tags", self.capabilities.len()),
                format!("must be at most {MAX_CAPABILITIES} tags"),
            ));
        }
        for cap in &self.capabilities {
            validate_id("capabilities", cap)?;
        }
        Ok(())
    }
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

impl Ping<'_> {
    /// The checks that need no state: an id, coordinates in range, a positive
    /// fix time at most `future_tolerance_ms` after `now` (Unix ms), finite
    /// speed (0..=200 m/s), heading (0..=360 degrees) and accuracy
    /// (0..=100 km, metres). Whether the unit exists and the fix is newer
    /// than the one held is the index's check.
    pub fn check(&self, now: Millis, future_tolerance_ms: Millis) -> Result<(), PingRejection> {
        if self.unit_id.is_empty() {
            return Err(PingRejection::MissingUnitId);
        }
        if !self.at.is_valid() {
            return Err(PingRejection::InvalidCoordinates {
                lon: self.at.lon,
                lat: self.at.lat,
            });
        }
        if self.time <= 0 {
            return Err(PingRejection::MissingFixTime { time: self.time });
        }
        if self.time > now.saturating_add(future_tolerance_ms) {
            return Err(PingRejection::FutureFixTime {
                time: self.time,
                now,
            });
        }
        check_motion("speed_mps", self.speed_mps, 0.0, 200.0)?;
        check_motion("heading_deg", self.heading_deg, 0.0, 360.0)?;
        check_motion("accuracy_m", self.accuracy_m, 0.0, 100_000.0)
    }
}

fn check_motion(
    field: &'static str,
    value: Option<f32>,
    min: f32,
    max: f32,
) -> Result<(), PingRejection> {
    match value {
        Some(v) if !v.is_finite() || v < min || v > max => {
            Err(PingRejection::InvalidMotion { field, value: v })
        }
        _ => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_reported_statuses_are_checked_without_state() {
        let profile = UnitProfile {
            id: "u1".into(),
            call_sign: "P-1".into(),
            kind: UnitKind::Car,
            capabilities: vec!["k9".into()],
        };
        assert!(profile.validate().is_ok());
        let field = |p: UnitProfile| match p.validate() {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(UnitProfile {
                id: String::new(),
                ..profile.clone()
            }),
            "id"
        );
        assert_eq!(
            field(UnitProfile {
                call_sign: "c".repeat(65),
                ..profile.clone()
            }),
            "call_sign"
        );
        assert_eq!(
            field(UnitProfile {
                capabilities: vec!["".into()],
                ..profile.clone()
            }),
            "capabilities"
        );
        assert_eq!(
            field(UnitProfile {
                capabilities: (0..65).map(|i| format!("c{i}")).collect(),
                ..profile
            }),
            "capabilities"
        );
        for status in UnitStatus::ALL {
            let allowed = !matches!(status, UnitStatus::Assigned | UnitStatus::Offline);
            assert_eq!(status.validate_reported().is_ok(), allowed, "{status:?}");
        }
    }

    #[test]
    fn ping_checks_need_no_index() {
        let ping = Ping {
            unit_id: "u1",
            time: 1_000,
            at: LonLat::new(24.9, 60.1),
            speed_mps: Some(3.0),
            heading_deg: Some(359.0),
            accuracy_m: None,
        };
        assert_eq!(ping.check(1_000, 0), Ok(()));
        assert_eq!(
            Ping {
                time: 1_001,
                ..ping
            }
            .check(1_000, 0),
            Err(PingRejection::FutureFixTime {
                time: 1_001,
                now: 1_000
            })
        );
        assert!(matches!(
            Ping {
                heading_deg: Some(361.0),
                ..ping
            }
            .check(1_000, 0),
            Err(PingRejection::InvalidMotion {
                field: "heading_deg",
                ..
            })
        ));
        // saturating: a huge tolerance does not overflow
        assert_eq!(ping.check(Millis::MAX, Millis::MAX), Ok(()));
    }
}
