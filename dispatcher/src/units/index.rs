//! [`UnitIndex`]: the unit registry and its spatial index, changed together
//! only through its methods.
//!
//! A ping overwrites the unit's fix and its entry in its cell's member list,
//! and only when the unit crosses a cell border moves that entry to another
//! cell's list. Queries read the member lists (position, status, fix time per
//! unit, contiguous per cell) and touch a unit's full record only when they
//! filter on kind or capability, or for the units they return.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;
use hashbrown::HashTable;

use crate::Millis;
use crate::error::{Error, validate_id};
use crate::geometry::{LonLat, chord_m};
use crate::grid::{CellGrid, Member, NO_CELL};

use super::store::{Hot, StoredFix, UnitRecord};
use super::{
    Fix, Ping, PingOutcome, PingRejection, Unit, UnitFilter, UnitIndexConfig, UnitProfile,
    UnitStatus,
};

/// One unit the spatial search examined.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub slot: u32,
    /// Lower bound (metres) on the chord to this and every later candidate.
    pub lower: f64,
    /// True chord from the query, metres.
    pub chord: f64,
    pub status: UnitStatus,
}

/// The unit registry and its spatial index, kept in step through one door.
#[derive(Debug)]
pub struct UnitIndex {
    config: UnitIndexConfig,
    records: Vec<UnitRecord>,
    hot: Vec<Hot>,
    /// Slots, hashed by their unit's id.
    ids: HashTable<u32>,
    /// Every id's bytes, back to back, and each slot's (start, len) in it: the
    /// id table compares against this dense copy instead of chasing each
    /// record's heap string, which kept ingest waiting on cache misses.
    id_arena: Vec<u8>,
    id_spans: Vec<(u32, u32)>,
    /// Every call sign's bytes, back to back (a re-registered call sign is
    /// appended; the old bytes stay, re-registration being rare).
    name_arena: Vec<u8>,
    /// The distinct capability tags seen, at most 64: a unit's capabilities
    /// are a bit mask over them.
    capability_names: Vec<Box<str>>,
    hasher: DefaultHashBuilder,
    grid: CellGrid,
    moved: Vec<u32>,
}

impl UnitIndex {
    pub fn new(config: UnitIndexConfig) -> Self {
        Self {
            config,
            records: Vec::new(),
            hot: Vec::new(),
            ids: HashTable::new(),
            id_arena: Vec::new(),
            id_spans: Vec::new(),
            name_arena: Vec::new(),
            capability_names: Vec::new(),
            hasher: DefaultHashBuilder::default(),
            grid: CellGrid::new(config.cell_size_m),
            moved: Vec::new(),
        }
    }

    pub fn config(&self) -> &UnitIndexConfig {
        &self.config
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Units in the spatial index (those with a fix).
    pub fn indexed_len(&self) -> usize {
        self.hot.iter().filter(|h| h.cell != NO_CELL).count()
    }

    /// Cells the spatial index has created.
    pub fn cell_count(&self) -> usize {
        self.grid.cell_count()
    }

    /// The unit's id.
    pub(crate) fn unit_id(&self, slot: u32) -> &str {
        // The arena only ever receives whole `&str`s, so every span is UTF-8.
        std::str::from_utf8(self.id_bytes(slot)).unwrap_or_default()
    }

    /// The unit's call sign.
    pub(crate) fn call_sign(&self, slot: u32) -> &str {
        let (start, len) = self.records[slot as usize].call_sign;
        std::str::from_utf8(&self.name_arena[start as usize..(start + len) as usize])
            .unwrap_or_default()
    }

    /// Whether the unit has `capability`.
    pub(crate) fn has_capability(&self, slot: u32, capability: &str) -> bool {
        self.capability_names
            .iter()
            .position(|c| &**c == capability)
            .is_some_and(|bit| self.records[slot as usize].capabilities & (1 << bit) != 0)
    }

    /// The unit's profile, rebuilt from the compact record.
    pub(crate) fn profile(&self, slot: u32) -> UnitProfile {
        let record = &self.records[slot as usize];
        UnitProfile {
            id: self.unit_id(slot).to_string(),
            call_sign: self.call_sign(slot).to_string(),
            kind: record.kind,
            capabilities: (0..self.capability_names.len())
                .filter(|bit| record.capabilities & (1 << bit) != 0)
                .map(|bit| self.capability_names[bit].to_string())
                .collect(),
        }
    }

    /// The bit mask for `capabilities`, learning new tags (at most 64).
    fn capability_mask(&mut self, capabilities: &[String]) -> Result<u64, Error> {
        let mut mask = 0u64;
        for cap in capabilities {
            let bit = match self.capability_names.iter().position(|c| **c == **cap) {
                Some(bit) => bit,
                None if self.capability_names.len() < 64 => {
                    self.capability_names.push(cap.as_str().into());
                    self.capability_names.len() - 1
                }
                None => {
                    return Err(Error::full(
                        "capability tag table",
                        format!("64 distinct capabilities; {cap:?} would be the 65th"),
                    ));
                }
            };
            mask |= 1 << bit;
        }
        Ok(mask)
    }

    /// Stores a call sign in the name arena.
    fn store_name(&mut self, name: &str) -> Result<(u32, u32), Error> {
        let start = u32::try_from(self.name_arena.len())
            .map_err(|_| Error::full("call sign arena", format!("{} bytes", u32::MAX)))?;
        self.name_arena.extend_from_slice(name.as_bytes());
        Ok((start, name.len() as u32))
    }

    fn id_bytes(&self, slot: u32) -> &[u8] {
        let (start, len) = self.id_spans[slot as usize];
        &self.id_arena[start as usize..(start + len) as usize]
    }

    fn find(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id.as_bytes());
        self.ids
            .find(hash, |&slot| self.id_bytes(slot) == id.as_bytes())
            .copied()
    }

    /// Registers a unit or updates its profile. Returns the unit and whether it
    /// is new.
    pub fn register(&mut self, profile: UnitProfile, now: Millis) -> Result<(Unit, bool), Error> {
        validate_id("id", &profile.id)?;
        if profile.call_sign.len() > 64 {
            return Err(Error::invalid(
                "call_sign",
                format!("{:?}", profile.call_sign),
                "must be at most 64 bytes",
            ));
        }
        for cap in &profile.capabilities {
            validate_id("capabilities", cap)?;
        }
        let capabilities = self.capability_mask(&profile.capabilities)?;
        let call_sign = self.store_name(&profile.call_sign)?;
        let created = match self.find(&profile.id) {
            Some(slot) => {
                let record = &mut self.records[slot as usize];
                record.call_sign = call_sign;
                record.kind = profile.kind;
                record.capabilities = capabilities;
                false
            }
            None => {
                let slot = u32::try_from(self.records.len())
                    .ok()
                    .filter(|s| *s != u32::MAX)
                    .ok_or_else(|| Error::full("unit table", format!("{} units", u32::MAX)))?;
                let start = u32::try_from(self.id_arena.len())
                    .map_err(|_| Error::full("unit id arena", format!("{} bytes", u32::MAX)))?;
                self.id_arena.extend_from_slice(profile.id.as_bytes());
                self.id_spans.push((start, profile.id.len() as u32));
                let hash = self.hasher.hash_one(profile.id.as_bytes());
                let (arena, spans, hasher) = (&self.id_arena, &self.id_spans, &self.hasher);
                self.ids.insert_unique(hash, slot, |&s| {
                    let (start, len) = spans[s as usize];
                    hasher.hash_one(&arena[start as usize..(start + len) as usize])
                });
                self.records.push(UnitRecord {
                    call_sign,
                    capabilities,
                    kind: profile.kind,
                    fix: StoredFix::NONE,
                    moved: false,
                    offline_reported: true,
                    incident_id: None,
                    order: None,
                });
                self.hot.push(Hot {
                    fix_time: Millis::MIN,
                    status: UnitStatus::Available,
                    cell: NO_CELL,
                    pos_in_cell: 0,
                });
                true
            }
        };
        let unit = self.get(&profile.id, now)?;
        Ok((unit, created))
    }

    /// The capability tags in the order they were learnt.
    pub(crate) fn capability_names(&self) -> Vec<String> {
        self.capability_names
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    /// The stored status (never `Offline`, which is derived from fix age).
    pub(crate) fn stored_status(&self, slot: u32) -> UnitStatus {
        self.hot[slot as usize].status
    }

    /// Learns capability tags in a checkpoint's order (on an empty index).
    pub(crate) fn restore_capabilities(&mut self, names: &[String]) -> Result<(), Error> {
        self.capability_mask(names).map(|_| ())
    }

    /// Adds a unit from a checkpoint as the next slot, with its fix, status,
    /// assignment and liveness as they were.
    pub(crate) fn restore(&mut self, state: crate::persist::UnitState) -> Result<(), Error> {
        let (_, created) = self.register(state.profile(), 0)?;
        let slot = self.slot(&state.id)?;
        if !created || slot != state.slot {
            return Err(Error::FailedPrecondition(format!(
                "checkpoint lists unit {:?} twice or out of order",
                state.id
            )));
        }
        if state.status != UnitStatus::Offline {
            self.hot[slot as usize].status = state.status;
        }
        let record = &mut self.records[slot as usize];
        record.incident_id = state.incident_id.map(String::into_boxed_str);
        record.order = state.order.map(Box::new);
        record.offline_reported = state.offline_reported;
        if let Some(fix) = state.fix.filter(|f| f.at.is_valid()) {
            record.fix = StoredFix::from_fix(&fix);
            self.hot[slot as usize].fix_time = fix.time;
            self.place(slot, &fix.at, fix.at.to_xyz(), fix.time);
        }
        Ok(())
    }

    pub(crate) fn slot(&self, id: &str) -> Result<u32, Error> {
        self.find(id).ok_or_else(|| Error::not_found("unit", id))
    }

    #[cfg(test)]
    pub(crate) fn hot(&self, slot: u32) -> &Hot {
        &self.hot[slot as usize]
    }

    pub(crate) fn record(&self, slot: u32) -> &UnitRecord {
        &self.records[slot as usize]
    }

    pub(crate) fn record_mut(&mut self, slot: u32) -> &mut UnitRecord {
        &mut self.records[slot as usize]
    }

    /// Applies one ping. Validation never changes anything; an accepted ping
    /// moves the unit, and its cell when it crosses a cell border.
    pub fn apply_ping(
        &mut self,
        ping: &Ping<'_>,
        now: Millis,
    ) -> Result<PingOutcome, PingRejection> {
        self.apply_ping_to_slot(ping, now)
            .map(|(outcome, _)| outcome)
    }

    /// [`UnitIndex::apply_ping`], also saying which slot the ping moved.
    pub(crate) fn apply_ping_to_slot(
        &mut self,
        ping: &Ping<'_>,
        now: Millis,
    ) -> Result<(PingOutcome, u32), PingRejection> {
        if ping.unit_id.is_empty() {
            return Err(PingRejection::MissingUnitId);
        }
        if !ping.at.is_valid() {
            return Err(PingRejection::InvalidCoordinates {
                lon: ping.at.lon,
                lat: ping.at.lat,
            });
        }
        if ping.time <= 0 {
            return Err(PingRejection::MissingFixTime { time: ping.time });
        }
        if ping.time > now.saturating_add(self.config.future_tolerance_ms) {
            return Err(PingRejection::FutureFixTime {
                time: ping.time,
                now,
            });
        }
        check_motion("speed_mps", ping.speed_mps, 0.0, 200.0)?;
        check_motion("heading_deg", ping.heading_deg, 0.0, 360.0)?;
        check_motion("accuracy_m", ping.accuracy_m, 0.0, 100_000.0)?;
        let slot = self.find(ping.unit_id).ok_or(PingRejection::UnknownUnit)?;
        let record = &mut self.records[slot as usize];
        if let Some(held) = record.fix() {
            if ping.time < held.time {
                return Err(PingRejection::OutOfOrder {
                    time: ping.time,
                    held: held.time,
                });
            }
            if ping.time == held.time {
                return Ok((PingOutcome::Duplicate, slot));
            }
        }
        record.fix = StoredFix::from_fix(&Fix {
            at: ping.at,
            time: ping.time,
            speed_mps: ping.speed_mps,
            heading_deg: ping.heading_deg,
            accuracy_m: ping.accuracy_m,
        });
        if !record.moved {
            record.moved = true;
            self.moved.push(slot);
        }
        self.hot[slot as usize].fix_time = ping.time;
        self.place(slot, &ping.at, ping.at.to_xyz(), ping.time);
        Ok((PingOutcome::Moved, slot))
    }

    /// Puts `slot`'s member entry, with its new position, in the cell of `at`,
    /// leaving its old cell if that differs.
    fn place(&mut self, slot: u32, at: &LonLat, xyz: [f64; 3], fix_time: Millis) {
        let Hot {
            cell: old,
            pos_in_cell,
            status,
            ..
        } = self.hot[slot as usize];
        let member = Member {
            slot,
            status,
            fix_time,
            xyz,
        };
        // Most pings stay in their cell: no lookup at all.
        if old != NO_CELL && self.grid.cell(old).contains(at) {
            self.grid.cell_mut(old).members[pos_in_cell as usize] = member;
            return;
        }
        let target = self.grid.cell_for(self.grid.key(at));
        if target == old {
            // On a border, rounding may disagree with `contains`: stay put.
            self.grid.cell_mut(old).members[pos_in_cell as usize] = member;
            return;
        }
        if old != NO_CELL {
            let members = &mut self.grid.cell_mut(old).members;
            members.swap_remove(pos_in_cell as usize);
            if let Some(moved_in) = members.get(pos_in_cell as usize) {
                self.hot[moved_in.slot as usize].pos_in_cell = pos_in_cell;
            }
        }
        let members = &mut self.grid.cell_mut(target).members;
        let hot = &mut self.hot[slot as usize];
        hot.cell = target;
        hot.pos_in_cell = members.len() as u32;
        members.push(member);
    }

    /// Status as callers see it: stored status, or `Offline` when the last fix
    /// is missing or older than `offline_after_ms` (off-duty units stay off duty).
    pub(crate) fn effective_status(&self, slot: u32, now: Millis) -> UnitStatus {
        let hot = &self.hot[slot as usize];
        self.effective(hot.status, hot.fix_time, now)
    }

    fn effective(&self, status: UnitStatus, fix_time: Millis, now: Millis) -> UnitStatus {
        match status {
            UnitStatus::OffDuty => UnitStatus::OffDuty,
            status if now.saturating_sub(fix_time) <= self.config.offline_after_ms => status,
            _ => UnitStatus::Offline,
        }
    }

    /// Sets a unit's stored status (never `Offline`, which is derived), and
    /// its member entry's copy.
    pub(crate) fn set_status(&mut self, slot: u32, status: UnitStatus) {
        debug_assert_ne!(status, UnitStatus::Offline);
        let hot = &mut self.hot[slot as usize];
        hot.status = status;
        if hot.cell != NO_CELL {
            self.grid.cell_mut(hot.cell).members[hot.pos_in_cell as usize].status = status;
        }
    }

    pub(crate) fn view(&self, slot: u32, now: Millis) -> Unit {
        let record = &self.records[slot as usize];
        Unit {
            profile: self.profile(slot),
            status: self.effective_status(slot, now),
            fix: record.fix(),
            incident_id: record.incident_id.as_deref().map(str::to_string),
        }
    }

    pub fn get(&self, id: &str, now: Millis) -> Result<Unit, Error> {
        Ok(self.view(self.slot(id)?, now))
    }

    /// Units matching the filter, in registration order, starting at slot
    /// `start`; returns them and the slot to continue from, if any.
    pub fn list(
        &self,
        filter: &UnitFilter,
        start: usize,
        limit: usize,
        now: Millis,
    ) -> (Vec<Unit>, Option<usize>) {
        let mut out = Vec::new();
        for (slot, record) in self.records.iter().enumerate().skip(start) {
            if out.len() == limit {
                return (out, Some(slot));
            }
            let status = self.effective_status(slot as u32, now);
            let keep = (filter.statuses.is_empty() || filter.statuses.contains(&status))
                && (filter.kinds.is_empty() || filter.kinds.contains(&record.kind))
                && filter
                    .bbox
                    .is_none_or(|b| record.fix().is_some_and(|f| b.contains(&f.at)));
            if keep {
                out.push(self.view(slot as u32, now));
            }
        }
        (out, None)
    }

    /// Every unit, as of `now`.
    pub fn all(&self, now: Millis) -> Vec<Unit> {
        (0..self.records.len() as u32)
            .map(|s| self.view(s, now))
            .collect()
    }

    /// The latest fixes of units that moved since the previous call, in the
    /// order they first moved.
    pub fn take_moved(&mut self) -> Vec<(String, Fix)> {
        let moved = std::mem::take(&mut self.moved);
        moved
            .into_iter()
            .filter_map(|slot| {
                let record = &mut self.records[slot as usize];
                record.moved = false;
                let fix = record.fix();
                fix.map(|fix| (self.unit_id(slot).to_string(), fix))
            })
            .collect()
    }

    /// Units whose effective status changed between online and offline since
    /// they were last reported; marks them reported.
    pub fn take_liveness_changes(&mut self, now: Millis) -> Vec<u32> {
        let mut changed = Vec::new();
        for slot in 0..self.records.len() {
            let offline = self.effective_status(slot as u32, now) == UnitStatus::Offline;
            let record = &mut self.records[slot];
            if offline != record.offline_reported {
                record.offline_reported = offline;
                changed.push(slot as u32);
            }
        }
        changed
    }

    /// How many units are in each effective status.
    pub fn count_by_status(&self, now: Millis) -> HashMap<UnitStatus, usize> {
        let mut counts: HashMap<UnitStatus, usize> =
            UnitStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for slot in 0..self.hot.len() as u32 {
            *counts.entry(self.effective_status(slot, now)).or_default() += 1;
        }
        counts
    }

    /// Units cell by cell, nearest cell first, each with its effective status
    /// at `now`, its true chord from `query_xyz`, and a lower bound on the
    /// chord to it and every later candidate. Callers stop once the bound
    /// exceeds what they need.
    pub(crate) fn nearest_candidates<'a>(
        &'a self,
        query_xyz: &'a [f64; 3],
        now: Millis,
    ) -> impl Iterator<Item = Candidate> + 'a {
        self.grid
            .nearest_cells(query_xyz)
            .flat_map(move |(cell, lower)| {
                self.grid.cell(cell).members.iter().map(move |m| Candidate {
                    slot: m.slot,
                    lower,
                    chord: chord_m(&m.xyz, query_xyz),
                    status: self.effective(m.status, m.fix_time, now),
                })
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::UnitKind;

    fn profile(id: &str, kind: UnitKind) -> UnitProfile {
        UnitProfile {
            id: id.into(),
            call_sign: format!("CS-{id}"),
            kind,
            capabilities: vec![],
        }
    }

    fn ping(id: &str, time: Millis, lon: f64, lat: f64) -> Ping<'_> {
        Ping {
            unit_id: id,
            time,
            at: LonLat::new(lon, lat),
            speed_mps: None,
            heading_deg: None,
            accuracy_m: None,
        }
    }

    #[test]
    fn ping_rules() {
        let mut idx = UnitIndex::new(UnitIndexConfig::default());
        let now = 1_000_000;
        idx.register(profile("u1", UnitKind::Car), now).unwrap();
        assert_eq!(
            idx.apply_ping(&ping("u1", now - 10, 24.9, 60.1), now),
            Ok(PingOutcome::Moved)
        );
        // repeated ping is harmless
        assert_eq!(
            idx.apply_ping(&ping("u1", now - 10, 24.9, 60.1), now),
            Ok(PingOutcome::Duplicate)
        );
        // older fix never moves the unit back
        assert!(matches!(
            idx.apply_ping(&ping("u1", now - 20, 25.0, 60.2), now),
            Err(PingRejection::OutOfOrder { .. })
        ));
        assert_eq!(
            idx.get("u1", now).unwrap().fix.unwrap().at,
            LonLat::new(24.9, 60.1)
        );
        assert!(matches!(
            idx.apply_ping(&ping("u1", now + 60_000, 24.9, 60.1), now),
            Err(PingRejection::FutureFixTime { .. })
        ));
        assert!(matches!(
            idx.apply_ping(&ping("u1", now, f64::NAN, 60.1), now),
            Err(PingRejection::InvalidCoordinates { .. })
        ));
        assert!(matches!(
            idx.apply_ping(&ping("u1", now, 24.0, 91.0), now),
            Err(PingRejection::InvalidCoordinates { .. })
        ));
        assert_eq!(
            idx.apply_ping(&ping("nope", now, 24.0, 60.0), now),
            Err(PingRejection::UnknownUnit)
        );
        assert_eq!(
            idx.apply_ping(&ping("", now, 24.0, 60.0), now),
            Err(PingRejection::MissingUnitId)
        );
        let mut bad_speed = ping("u1", now, 24.0, 60.0);
        bad_speed.speed_mps = Some(f32::INFINITY);
        assert!(matches!(
            idx.apply_ping(&bad_speed, now),
            Err(PingRejection::InvalidMotion {
                field: "speed_mps",
                ..
            })
        ));
        // a small tolerance for clock skew is fine
        assert_eq!(
            idx.apply_ping(&ping("u1", now + 2_000, 24.91, 60.1), now),
            Ok(PingOutcome::Moved)
        );
    }

    #[test]
    fn units_change_cell_only_across_cell_borders() {
        let mut idx = UnitIndex::new(UnitIndexConfig {
            cell_size_m: 100.0,
            ..Default::default()
        });
        let now = 10_000;
        for id in ["u1", "u2", "u3"] {
            idx.register(profile(id, UnitKind::Foot), now).unwrap();
        }
        let start = LonLat::new(24.94, 60.17);
        for (t, id) in ["u1", "u2", "u3"].iter().enumerate() {
            idx.apply_ping(&ping(id, 1 + t as i64, start.lon, start.lat), now)
                .unwrap();
        }
        let cell = idx.hot(0).cell;
        assert_eq!(idx.cell_count(), 1);
        assert!((0..3).all(|s| idx.hot(s).cell == cell));
        // u1 leaves: u3 takes its place in the cell's list
        let far = start.destination(90.0, 1_000.0);
        idx.apply_ping(&ping("u1", 10, far.lon, far.lat), now)
            .unwrap();
        assert_ne!(idx.hot(0).cell, cell);
        assert_eq!(idx.cell_count(), 2);
        let members = &idx.grid.cell(cell).members;
        assert_eq!(members.len(), 2);
        for (pos, member) in members.iter().enumerate() {
            assert_eq!(idx.hot(member.slot).pos_in_cell as usize, pos);
            assert_eq!(idx.hot(member.slot).cell, cell);
        }
        assert_eq!(idx.indexed_len(), 3);
        assert_eq!(idx.take_moved().len(), 3);
        assert!(idx.take_moved().is_empty());
    }

    #[test]
    fn profiles_round_trip_through_the_compact_record() {
        let mut idx = UnitIndex::new(UnitIndexConfig::default());
        let mut p = profile("u1", UnitKind::EBike);
        p.capabilities = vec!["medic".into(), "k9".into()];
        idx.register(p.clone(), 0).unwrap();
        assert_eq!(idx.profile(0), p);
        assert!(idx.has_capability(0, "k9") && !idx.has_capability(0, "dutch"));
        // re-registering updates call sign and capabilities
        p.call_sign = "Bike Seven".into();
        p.capabilities = vec!["dutch".into()];
        let (unit, created) = idx.register(p.clone(), 0).unwrap();
        assert!(!created);
        assert_eq!(unit.profile, p);
        // at most 64 distinct capability tags, refused by name
        for i in 0..61 {
            let mut q = profile(&format!("x{i}"), UnitKind::Car);
            q.capabilities = vec![format!("cap{i}")];
            idx.register(q, 0).unwrap();
        }
        let mut q = profile("x99", UnitKind::Car);
        q.capabilities = vec!["one-too-many".into()];
        let err = idx.register(q, 0).unwrap_err();
        assert!(err.to_string().contains("capabilities"), "{err}");
        assert!(matches!(err, Error::Full { .. }), "{err:?}");
        assert!(err.to_string().contains("one-too-many"), "{err}");
    }

    #[test]
    fn offline_is_derived_from_fix_age() {
        let mut idx = UnitIndex::new(UnitIndexConfig::default());
        idx.register(profile("u1", UnitKind::Car), 0).unwrap();
        assert_eq!(idx.get("u1", 0).unwrap().status, UnitStatus::Offline);
        idx.apply_ping(&ping("u1", 1_000, 24.0, 60.0), 1_000)
            .unwrap();
        assert_eq!(idx.get("u1", 1_000).unwrap().status, UnitStatus::Available);
        assert_eq!(idx.take_liveness_changes(1_000), vec![0]);
        assert!(idx.take_liveness_changes(2_000).is_empty());
        assert_eq!(idx.get("u1", 200_000).unwrap().status, UnitStatus::Offline);
        assert_eq!(idx.take_liveness_changes(200_000), vec![0]);
    }
}
