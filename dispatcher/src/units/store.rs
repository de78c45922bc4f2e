//! The compact per-unit state [`UnitIndex`](super::UnitIndex) holds: a city
//! holds a million units, so every byte here is paid a million times.

use crate::Millis;
use crate::geometry::LonLat;
use crate::incidents::Order;

use super::{Fix, UnitKind, UnitStatus};

/// Per slot: the stored status and fix time, and where the unit's member
/// entry is (which cell, which position in its list).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hot {
    /// Time of the current fix (`Millis::MIN` before the first).
    pub fix_time: Millis,
    /// Stored status (never `Offline`). Authoritative; the member entry
    /// holds a copy, written only through `UnitIndex::set_status`.
    pub status: UnitStatus,
    /// The unit's cell, or `NO_CELL` before its first fix.
    pub cell: u32,
    /// Its index in that cell's member list.
    pub pos_in_cell: u32,
}

/// Everything else held per unit, compactly: a city holds a million of these.
/// The id lives once, in the index's id arena.
#[derive(Debug, Clone)]
pub(crate) struct UnitRecord {
    /// (start, len) of the call sign in the index's name arena.
    pub call_sign: (u32, u32),
    /// Bit i set: the unit has the index's capability i.
    pub capabilities: u64,
    pub incident_id: Option<Box<str>>,
    /// The order that assigned the unit to `incident_id`.
    pub order: Option<Box<Order>>,
    pub fix: StoredFix,
    pub kind: UnitKind,
    /// Moved since the last `take_moved`.
    pub moved: bool,
    /// The stream was told this unit went offline.
    pub offline_reported: bool,
}

/// A [`Fix`] in 40 bytes instead of 56: `time == Millis::MIN` means none,
/// NaN means an optional value was absent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredFix {
    lon: f64,
    lat: f64,
    time: Millis,
    speed_mps: f32,
    heading_deg: f32,
    accuracy_m: f32,
}

impl StoredFix {
    pub const NONE: StoredFix = StoredFix {
        lon: 0.0,
        lat: 0.0,
        time: Millis::MIN,
        speed_mps: f32::NAN,
        heading_deg: f32::NAN,
        accuracy_m: f32::NAN,
    };

    pub fn from_fix(f: &Fix) -> Self {
        Self {
            lon: f.at.lon,
            lat: f.at.lat,
            time: f.time,
            speed_mps: f.speed_mps.unwrap_or(f32::NAN),
            heading_deg: f.heading_deg.unwrap_or(f32::NAN),
            accuracy_m: f.accuracy_m.unwrap_or(f32::NAN),
        }
    }

    pub fn get(&self) -> Option<Fix> {
        let some = |v: f32| (!v.is_nan()).then_some(v);
        (self.time != Millis::MIN).then(|| Fix {
            at: LonLat::new(self.lon, self.lat),
            time: self.time,
            speed_mps: some(self.speed_mps),
            heading_deg: some(self.heading_deg),
            accuracy_m: some(self.accuracy_m),
        })
    }
}

impl UnitRecord {
    pub fn fix(&self) -> Option<Fix> {
        self.fix.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Member;

    #[test]
    fn per_unit_state_stays_compact() {
        // A city holds a million units: these sizes are the memory budget.
        assert!(
            std::mem::size_of::<UnitRecord>() <= 88,
            "{}",
            std::mem::size_of::<UnitRecord>()
        );
        assert!(
            std::mem::size_of::<Hot>() <= 24,
            "{}",
            std::mem::size_of::<Hot>()
        );
        assert!(
            std::mem::size_of::<Member>() <= 48,
            "{}",
            std::mem::size_of::<Member>()
        );
    }

    #[test]
    fn stored_fix_round_trips() {
        let fix = Fix {
            at: LonLat::new(24.9, 60.1),
            time: 5,
            speed_mps: Some(3.5),
            heading_deg: None,
            accuracy_m: Some(0.0),
        };
        assert_eq!(StoredFix::from_fix(&fix).get(), Some(fix));
        assert_eq!(StoredFix::NONE.get(), None);
    }
}
