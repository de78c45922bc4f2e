//! Which zones each unit is in, with hysteresis: a unit enters a zone only
//! after every fix for `enter_dwell_ms` was at least `enter_margin_m`
//! inside, and leaves only after every fix for `exit_dwell_ms` was at least
//! `exit_margin_m` outside. A fix in the band between resets the pending
//! change, so a unit on a boundary emits nothing. Time is the fix time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::index::{ZoneIndex, signed_distance_m};
use super::{ZoneChange, ZoneChangeKind, ZoneConfig};
use crate::Millis;
use crate::geometry::LonLat;

/// A change a unit is waiting to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingZone {
    /// The zone.
    pub zone_id: String,
    /// True: waiting to enter; false: waiting to leave.
    pub entering: bool,
    /// Fix time of the first fix of the unbroken run past the margin.
    pub since: Millis,
}

/// One unit's zones: those it is in, and changes it is waiting to make.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitZones {
    /// Zones it is in, sorted.
    pub inside: Vec<String>,
    /// Pending entries and exits.
    pub pending: Vec<PendingZone>,
}

impl UnitZones {
    fn is_empty(&self) -> bool {
        self.inside.is_empty() && self.pending.is_empty()
    }
}

/// A remembered answer for one unit and zone: at `from` the unit was
/// `slack_m` metres (less a safety allowance) from the threshold that
/// decides `past`, so until it has moved that far the answer stands
/// (distance to a boundary changes by at most the distance moved). Spares
/// the polygon work for units that stay well inside or well outside.
#[derive(Debug, Clone)]
struct Slack {
    zone_id: String,
    version: u64,
    member: bool,
    from: LonLat,
    slack_m: f64,
    past: bool,
}

/// Every unit's zones, by unit slot. Units with nothing have no entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Memberships {
    by_slot: HashMap<u32, UnitZones>,
    /// Per unit, for the zones near its last fix: a cache, never persisted.
    slack: HashMap<u32, Vec<Slack>>,
}

impl Memberships {
    /// One unit's zones.
    pub(crate) fn get(&self, slot: u32) -> Option<&UnitZones> {
        self.by_slot.get(&slot)
    }

    /// Every unit's zones (for checkpoints), by slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &UnitZones)> {
        self.by_slot.iter().map(|(s, z)| (*s, z))
    }

    /// Sets one unit's zones (checkpoint restore).
    pub(crate) fn set(&mut self, slot: u32, zones: UnitZones) {
        if zones.is_empty() {
            self.by_slot.remove(&slot);
        } else {
            self.by_slot.insert(slot, zones);
        }
    }

    /// Forgets a removed zone in every unit.
    pub(crate) fn drop_zone(&mut self, zone_id: &str) {
        // A zone put again after removal starts at version 1 again.
        self.slack.clear();
        self.by_slot.retain(|_, z| {
            z.inside.retain(|id| id != zone_id);
            z.pending.retain(|p| p.zone_id != zone_id);
            !z.is_empty()
        });
    }

    /// Applies a unit's new fix at `at`, taken at `time`, and returns the
    /// entries and exits it completes (no allocation when there are none). Does
    /// nothing when there are no zones and the unit holds no state; else
    /// looks only at zones whose box widened by the larger margin holds the
    /// fix, and at the zones the unit is in or waiting on.
    pub(crate) fn apply_fix(
        &mut self,
        slot: u32,
        unit_id: &str,
        at: LonLat,
        time: Millis,
        zones: &ZoneIndex,
        config: &ZoneConfig,
    ) -> Vec<ZoneChange> {
        let mut out = Vec::new();
        if zones.is_empty() && !self.by_slot.contains_key(&slot) {
            return out;
        }
        let Self { by_slot, slack } = self;
        let mut near = zones.near(at, config.reach_m()).peekable();
        let state = match by_slot.get_mut(&slot) {
            Some(state) => state,
            None if near.peek().is_none() => {
                slack.remove(&slot);
                return out;
            }
            None => by_slot.entry(slot).or_default(),
        };
        // The zones to look at: near ones, then those the unit is in or
        // waiting on that are not near (it left their box: far outside).
        let mut ids: Vec<&str> = near.map(|z| z.id.as_str()).collect();
        for id in state
            .inside
            .iter()
            .chain(state.pending.iter().map(|p| &p.zone_id))
        {
            if let Some(zone) = zones.get(id)
                && !ids.contains(&zone.id.as_str())
            {
                ids.push(zone.id.as_str());
            }
        }
        let slacks = slack.entry(slot).or_default();
        slacks.retain(|s| ids.contains(&s.zone_id.as_str()));
        let mut changes: Vec<(String, ZoneChangeKind)> = Vec::new();
        for &id in &ids {
            let Some(zone) = zones.get(id) else {
                continue;
            };
            let member = state.inside.iter().any(|z| z == id);
            let (threshold, dwell) = if member {
                (-config.exit_margin_m, config.exit_dwell_ms)
            } else {
                (config.enter_margin_m, config.enter_dwell_ms)
            };
            let known = slacks
                .iter()
                .position(|s| s.zone_id == id && s.version == zone.version && s.member == member);
            let past = match known {
                Some(i) if slacks[i].from.distance_m(&at) < slacks[i].slack_m => slacks[i].past,
                _ => {
                    let d = signed_distance_m(zone, at);
                    let past = if member {
                        d <= threshold
                    } else {
                        d >= threshold
                    };
                    let remembered = Slack {
                        zone_id: id.to_string(),
                        version: zone.version,
                        member,
                        from: at,
                        // 5 % and half a metre for the projection and the
                        // sphere: a shorter slack only costs a recomputation.
                        slack_m: (d - threshold).abs() * 0.95 - 0.5,
                        past,
                    };
                    match slacks.iter().position(|s| s.zone_id == id) {
                        Some(i) => slacks[i] = remembered,
                        None => slacks.push(remembered),
                    }
                    past
                }
            };
            let pending = state
                .pending
                .iter()
                .position(|p| p.zone_id == id && p.entering != member);
            match (past, pending) {
                (false, None) => {}
                (false, Some(i)) => {
                    state.pending.swap_remove(i);
                }
                (true, pending) => {
                    let since = match pending {
                        Some(i) => state.pending[i].since,
                        None => {
                            state.pending.push(PendingZone {
                                zone_id: id.to_string(),
                                entering: !member,
                                since: time,
                            });
                            time
                        }
                    };
                    if time - since >= dwell {
                        state.pending.retain(|p| p.zone_id != id);
                        let kind = if member {
                            ZoneChangeKind::Exited
                        } else {
                            ZoneChangeKind::Entered
                        };
                        changes.push((id.to_string(), kind));
                    }
                }
            }
        }
        for (id, kind) in changes {
            match kind {
                ZoneChangeKind::Entered => {
                    let at = state.inside.partition_point(|z| *z < id);
                    state.inside.insert(at, id.clone());
                }
                _ => state.inside.retain(|z| *z != id),
            }
            out.push(ZoneChange {
                kind,
                zone_id: id,
                unit_id: Some(unit_id.to_string()),
                time,
                zone: None,
            });
        }
        if slacks.is_empty() {
            slack.remove(&slot);
        }
        if state.is_empty() {
            by_slot.remove(&slot);
        }
        out
    }
}
