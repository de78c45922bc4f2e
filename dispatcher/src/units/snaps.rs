//! Where units' fixes lie on the street network, remembered between
//! queries. Snapping a fix (the nearest usable edge) is most of what a
//! candidate costs a network ranking, and a unit is a candidate of many
//! queries between two fixes. A snap is a pure function of the fix and the
//! metric, so a remembered one is used only for the very same fix: results
//! are the same with or without the memory. Filled by queries (which hold
//! the index shared), hence the lock; at most [`MAX_PER_UNIT`] entries per
//! registered unit, all dropped when that is exceeded.

use std::sync::{Mutex, MutexGuard};

use hashbrown::HashMap;
use patrol_roads::{Metric, Snap};

use crate::geometry::LonLat;

/// Entries per registered unit before the memory starts over.
pub(crate) const MAX_PER_UNIT: usize = 4;

/// Slot and metric to (the fix snapped, its snap or none: off the network).
type Entries = HashMap<(u32, Metric), (LonLat, Option<Snap>)>;

#[derive(Debug, Default)]
pub(crate) struct SnapMemory(Mutex<Entries>);

impl SnapMemory {
    /// The memory, for one query's walk.
    pub(crate) fn lock(&self) -> SnapsHeld<'_> {
        SnapsHeld(self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Bytes held (roughly: entries times their size).
    pub(crate) fn bytes(&self) -> usize {
        let entries = self.0.lock().unwrap_or_else(|p| p.into_inner()).capacity();
        entries * (std::mem::size_of::<((u32, Metric), (LonLat, Option<Snap>))>() + 1)
    }
}

/// The memory while one query uses it.
pub(crate) struct SnapsHeld<'a>(MutexGuard<'a, Entries>);

impl SnapsHeld<'_> {
    /// The snap of `at` for `metric`, from memory when `slot`'s last one was
    /// of this very fix, else made by `snap` and remembered.
    pub(crate) fn get_or(
        &mut self,
        slot: u32,
        metric: Metric,
        at: LonLat,
        units: usize,
        snap: impl FnOnce() -> Option<Snap>,
    ) -> Option<Snap> {
        if let Some((fix, found)) = self.0.get(&(slot, metric))
            && fix.lon.to_bits() == at.lon.to_bits()
            && fix.lat.to_bits() == at.lat.to_bits()
        {
            return *found;
        }
        let found = snap();
        if self.0.len() >= units.max(1) * MAX_PER_UNIT {
            self.0.clear();
        }
        self.0.insert((slot, metric), (at, found));
        found
    }
}

#[cfg(test)]
mod tests {
    use patrol_roads::Profile;

    use super::*;

    fn snap(edge: u32) -> Option<Snap> {
        Some(Snap {
            edge,
            fraction: 0.5,
            offset_m: 1.0,
            point: LonLat::new(24.9, 60.1),
            distance_m: 2.0,
        })
    }

    #[test]
    fn a_remembered_snap_is_used_only_for_the_same_fix_and_metric() {
        let memory = SnapMemory::default();
        let mut held = memory.lock();
        let car = Metric::normal(Profile::Car);
        let foot = Metric::normal(Profile::Foot);
        let here = LonLat::new(24.94, 60.17);
        assert_eq!(held.get_or(7, car, here, 10, || snap(1)), snap(1));
        // Same fix, same metric: from memory (the closure would say 2).
        assert_eq!(held.get_or(7, car, here, 10, || snap(2)), snap(1));
        // Another metric or another fix: snapped afresh.
        assert_eq!(held.get_or(7, foot, here, 10, || snap(3)), snap(3));
        let moved = LonLat::new(24.94, 60.170_001);
        assert_eq!(held.get_or(7, car, moved, 10, || None), None);
        assert_eq!(held.get_or(7, car, moved, 10, || snap(4)), None);
    }

    #[test]
    fn the_memory_starts_over_past_its_bound() {
        let memory = SnapMemory::default();
        let mut held = memory.lock();
        let car = Metric::normal(Profile::Car);
        for slot in 0..100 {
            held.get_or(slot, car, LonLat::new(24.9, 60.1), 2, || snap(slot));
        }
        assert!(held.0.len() <= 2 * MAX_PER_UNIT, "{}", held.0.len());
    }
}
