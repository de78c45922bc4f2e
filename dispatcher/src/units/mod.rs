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
mod snaps;
mod store;

pub(crate) use index::Candidate;
pub use index::{IndexMemory, UnitIndex, UnitTableCopy};

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
    /// A patrol car.
    Car,
    /// An officer on foot.
    Foot,
    /// An officer on an e-bike.
    EBike,
    /// A motorcycle.
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

    /// The kind as it reads in messages, e.g. "e-bike".
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
/// last fix and the offline age in [`UnitIndexConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UnitStatus {
    /// Free to be dispatched.
    Available,
    /// Dispatched, not yet moving (set only by dispatching).
    Assigned,
    /// Dispatched and on the way.
    EnRoute,
    /// Dispatched and arrived.
    OnScene,
    /// On duty, not free (e.g. on a stop of its own).
    Busy,
    /// Not working; stays so whatever its fix age.
    OffDuty,
    /// No fix for longer than the offline age (derived, never stored).
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

    /// Every status, in declaration order (for counting by status).
    pub const ALL: [UnitStatus; 7] = [
        UnitStatus::Available,
        UnitStatus::Assigned,
        UnitStatus::EnRoute,
        UnitStatus::OnScene,
        UnitStatus::Busy,
        UnitStatus::OffDuty,
        UnitStatus::Offline,
    ];

    /// The status as it reads in messages, e.g. "en_route".
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
    /// Where (x = longitude, y = latitude, degrees).
    pub at: LonLat,
    /// When the GPS took it, Unix ms (not when it was sent).
    pub time: Millis,
    /// Ground speed, metres per second.
    pub speed_mps: Option<f32>,
    /// Direction of travel, degrees clockwise from north.
    pub heading_deg: Option<f32>,
    /// Horizontal accuracy, metres.
    pub accuracy_m: Option<f32>,
}

/// Who a unit is, as registered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnitProfile {
    /// Caller-chosen id, unique per region, e.g. "car-12".
    pub id: String,
    /// What the radio calls it, at most 64 bytes, e.g. "Patrol 12".
    pub call_sign: String,
    /// Car, foot, e-bike or motorcycle.
    pub kind: UnitKind,
    /// Tags a query may require, e.g. "medic", "k9"; at most 64 per unit
    /// and 64 distinct per index.
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
    /// Who it is.
    pub profile: UnitProfile,
    /// Its effective status: `Offline` when its fix is too old.
    pub status: UnitStatus,
    /// Its latest accepted fix, if any.
    pub fix: Option<Fix>,
    /// The incident it is assigned to, if any.
    pub incident_id: Option<String>,
}

/// One GPS fix as it arrives, borrowed from the wire message.
#[derive(Debug, Clone, Copy)]
pub struct Ping<'a> {
    /// The reporting unit's id.
    pub unit_id: &'a str,
    /// When the GPS took the fix, Unix ms.
    pub time: Millis,
    /// Where (x = longitude, y = latitude, degrees).
    pub at: LonLat,
    /// Ground speed, metres per second, 0..=200.
    pub speed_mps: Option<f32>,
    /// Direction of travel, degrees clockwise from north, 0..=360.
    pub heading_deg: Option<f32>,
    /// Horizontal accuracy, metres, 0..=100000.
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
    /// The ping names no unit.
    MissingUnitId,
    /// The unit is not registered.
    UnknownUnit,
    /// Longitude or latitude is not finite or out of range.
    InvalidCoordinates {
        /// The longitude sent, degrees.
        lon: f64,
        /// The latitude sent, degrees.
        lat: f64,
    },
    /// The fix time is missing (zero) or not positive.
    MissingFixTime {
        /// The fix time sent, Unix ms.
        time: Millis,
    },
    /// The fix time is further ahead of the server's clock than the skew
    /// tolerance.
    FutureFixTime {
        /// The fix time sent, Unix ms.
        time: Millis,
        /// The server's time, Unix ms.
        now: Millis,
    },
    /// Older than the fix already held: a unit never moves back in time.
    OutOfOrder {
        /// The fix time sent, Unix ms.
        time: Millis,
        /// The time of the fix held, Unix ms.
        held: Millis,
    },
    /// Speed, heading or accuracy is not finite or out of range.
    InvalidMotion {
        /// "speed_mps", "heading_deg" or "accuracy_m".
        field: &'static str,
        /// The value sent.
        value: f32,
    },
    /// Refused by the position trust rules (an impossible jump, an accuracy
    /// past the hard limit): the message names the field and value.
    Implausible(String),
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
            PingRejection::Implausible(message) => message.clone(),
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
    /// Only units in one of these effective statuses.
    pub statuses: Vec<UnitStatus>,
    /// Only units of one of these kinds.
    pub kinds: Vec<UnitKind>,
    /// Only units whose latest fix lies inside (degrees).
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
