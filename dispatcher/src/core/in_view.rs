//! "Unit in view": on every applied fix, the online cameras whose current
//! view holds the unit's new position are compared with those that held its
//! previous one; each camera it entered or left is an [`Event::UnitInView`].
//!
//! Cheap on the ingest path: only units that moved are looked at, the
//! camera index's view tree is walked at the fix's point only (no camera
//! whose view box holds the point, nothing is judged), and a unit in view
//! of no camera holds no memory. Per unit at most [`MAX_IN_VIEW`] cameras
//! are remembered (the first in slot order).
//!
//! The memory goes into checkpoints ([`crate::persist::CoreMeta::in_view`]),
//! so a rebuilt node does not announce again a unit already in view.

use std::collections::HashMap;

use super::{Dispatcher, Event};
use crate::Millis;
use crate::error::Error;
use crate::geometry::LonLat;

/// At most this many cameras are remembered per unit.
pub const MAX_IN_VIEW: usize = 32;

/// A unit entered or left a camera's current view.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitInView {
    /// The unit.
    pub unit_id: String,
    /// The camera.
    pub camera_id: String,
    /// The fix's time, Unix ms.
    pub time: Millis,
    /// The fix's point.
    pub at: LonLat,
    /// True when it entered the view, false when it left it (or the camera
    /// went offline or turned away, seen at the unit's next fix).
    pub entered: bool,
}

/// Per unit slot, the camera slots whose view held its last fix (sorted).
#[derive(Debug, Clone, Default)]
pub(crate) struct InView {
    by_unit: HashMap<u32, Vec<u32>>,
}

impl InView {
    /// How many units are in some camera's view.
    pub(crate) fn len(&self) -> usize {
        self.by_unit.len()
    }
}

impl Dispatcher {
    /// The hook on every applied fix that moved the unit.
    pub(super) fn update_in_view(&mut self, slot: u32, now: Millis) {
        if self.cameras.is_empty() {
            return;
        }
        let Some(fix) = self.units.record(slot).fix() else {
            return;
        };
        let mut seen = self.cameras.viewing(&fix.at, now);
        seen.truncate(MAX_IN_VIEW);
        let before = if seen.is_empty() {
            match self.in_view.by_unit.remove(&slot) {
                Some(before) => before,
                None => return,
            }
        } else {
            self.in_view
                .by_unit
                .insert(slot, seen.clone())
                .unwrap_or_default()
        };
        if before == seen {
            return;
        }
        let unit_id = self.units.unit_id(slot);
        let cameras = self.cameras.in_slot_order();
        let mut event = |camera: u32, entered: bool| {
            self.outbox.push(Event::UnitInView(UnitInView {
                unit_id: unit_id.to_string(),
                camera_id: cameras[camera as usize].id.clone(),
                time: fix.time,
                at: fix.at,
                entered,
            }));
        };
        for &camera in &before {
            if seen.binary_search(&camera).is_err() {
                event(camera, false);
            }
        }
        for &camera in &seen {
            if before.binary_search(&camera).is_err() {
                event(camera, true);
            }
        }
    }

    /// (unit id, camera ids) of every unit in some camera's view, by unit
    /// id, for checkpoints.
    pub(crate) fn export_in_view(&self) -> Vec<(String, Vec<String>)> {
        let cameras = self.cameras.in_slot_order();
        let mut out: Vec<(String, Vec<String>)> = self
            .in_view
            .by_unit
            .iter()
            .map(|(&unit, slots)| {
                (
                    self.units.unit_id(unit).to_string(),
                    slots
                        .iter()
                        .map(|&s| cameras[s as usize].id.clone())
                        .collect(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Restores [`Dispatcher::export_in_view`] (after the units and
    /// cameras); cameras no longer registered are dropped.
    pub(crate) fn import_in_view(
        &mut self,
        records: Vec<(String, Vec<String>)>,
    ) -> Result<(), Error> {
        self.in_view = InView::default();
        for (unit_id, camera_ids) in records {
            let unit = self.units.slot(&unit_id)?;
            let mut slots: Vec<u32> = camera_ids
                .iter()
                .filter_map(|id| self.cameras.slot(id).map(|s| s as u32))
                .collect();
            slots.sort_unstable();
            slots.dedup();
            slots.truncate(MAX_IN_VIEW);
            if !slots.is_empty() {
                self.in_view.by_unit.insert(unit, slots);
            }
        }
        Ok(())
    }

    /// How many units are in some online camera's view (as of their last
    /// fix).
    pub fn units_in_view(&self) -> usize {
        self.in_view.len()
    }
}
