//! [`UnitIndex`]: the unit registry and its spatial index, changed together
//! only through its methods.
//!
//! A ping overwrites the unit's fix and its entry in its cell's member list,
//! and only when the unit crosses a cell border moves that entry to another
//! cell's list. Queries read the member lists (position, status, fix time per
//! unit, contiguous per cell) and touch a unit's full record only when they
//! filter on kind or capability, or for the units they return.

use std::collections::HashMap;

use crate::Millis;
use crate::error::Error;
use crate::geometry::{LonLat, chord_m};
use crate::grid::{CellGrid, Member, NO_CELL};
use crate::trust::{self, TrustConfig, TrustState};

use super::store::{Hot, IdTable, NameArena, StoredFix, UnitRecord};
use super::{
    Fix, Ping, PingOutcome, PingRejection, Unit, UnitFilter, UnitIndexConfig, UnitProfile,
    UnitStatus, hash_table_bytes,
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

/// What the unit index holds, in bytes, from its own accounting: the
/// capacities and lengths of its tables times their element sizes. An
/// estimate of what it asked the allocator for, not the process's resident
/// memory (RSS): allocator overhead and freed-but-kept pages do not show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexMemory {
    /// The per-unit record table (by capacity).
    pub records: usize,
    /// Heap behind assigned units: their incident ids and current orders.
    pub assignments: usize,
    /// The per-unit hot table: stored status, fix time, cell position.
    pub hot: usize,
    /// The unit id arena and each slot's span in it.
    pub id_arena: usize,
    /// The hash table from id to slot.
    pub id_table: usize,
    /// The call sign arena (by capacity), garbage included.
    pub name_arena: usize,
    /// Bytes of the call sign arena that hold no live call sign (counted in
    /// `name_arena`, not again in [`IndexMemory::total`]).
    pub name_garbage: usize,
    /// The spatial index: cells, their member lists, the key map, the R-tree.
    pub grid_cells: usize,
    /// Capability tags, the list of units moved since the last take, the
    /// position trust rules' memory and the network snaps remembered by
    /// queries.
    pub other: usize,
}

impl IndexMemory {
    /// Every counted byte (`name_garbage` is part of `name_arena`).
    pub fn total(&self) -> usize {
        self.records
            + self.assignments
            + self.hot
            + self.id_arena
            + self.id_table
            + self.name_arena
            + self.grid_cells
            + self.other
    }
}

/// The unit registry and its spatial index, kept in step through one door.
#[derive(Debug)]
pub struct UnitIndex {
    config: UnitIndexConfig,
    records: Vec<UnitRecord>,
    hot: Vec<Hot>,
    /// Every unit's id and the slot it maps to; grows only for new ids.
    ids: IdTable,
    /// Every call sign; re-registering never grows it without bound.
    names: NameArena,
    /// The distinct capability tags seen, at most 64: a unit's capabilities
    /// are a bit mask over them.
    capability_names: Vec<Box<str>>,
    grid: CellGrid,
    moved: Vec<u32>,
    /// The position trust rules' memory, for the units that have any.
    trust: hashbrown::HashMap<u32, TrustState>,
    /// Units' fixes snapped to the street network by earlier queries.
    snaps: super::snaps::SnapMemory,
}

impl UnitIndex {
    /// An empty index.
    pub fn new(config: UnitIndexConfig) -> Self {
        Self {
            config,
            records: Vec::new(),
            hot: Vec::new(),
            ids: IdTable::default(),
            names: NameArena::default(),
            capability_names: Vec::new(),
            grid: CellGrid::new(config.cell_size_m),
            moved: Vec::new(),
            trust: hashbrown::HashMap::new(),
            snaps: Default::default(),
        }
    }

    /// The settings the index was built with.
    pub fn config(&self) -> &UnitIndexConfig {
        &self.config
    }

    /// How many units are registered.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no unit is registered.
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

    /// The bytes the index holds, by its own accounting (see
    /// [`IndexMemory`]). Walks the records and cells once: O(units + cells),
    /// for a metrics scrape, not for every ping.
    pub fn memory(&self) -> IndexMemory {
        use std::mem::size_of;
        let assignments = self
            .records
            .iter()
            .map(|r| {
                r.incident_id.as_ref().map_or(0, |i| i.len())
                    + r.order.as_ref().map_or(0, |o| {
                        size_of::<crate::incidents::Order>()
                            + o.id.capacity()
                            + o.unit_id.capacity()
                            + o.incident_id.capacity()
                            + o.incident_kind.capacity()
                            + o.description.capacity()
                            + o.note.capacity()
                    })
            })
            .sum();
        IndexMemory {
            records: self.records.capacity() * size_of::<UnitRecord>(),
            assignments,
            hot: self.hot.capacity() * size_of::<Hot>(),
            id_arena: self.ids.arena_bytes(),
            id_table: self.ids.table_bytes(),
            name_arena: self.names.capacity_bytes(),
            name_garbage: self.names.garbage(),
            grid_cells: self.grid.memory_bytes(),
            other: self.capability_names.capacity() * size_of::<Box<str>>()
                + self.capability_names.iter().map(|c| c.len()).sum::<usize>()
                + self.moved.capacity() * size_of::<u32>()
                + hash_table_bytes(self.trust.capacity(), size_of::<(u32, TrustState)>())
                + self.snaps.bytes(),
        }
    }

    /// Units' network snaps remembered between queries (see `snaps`).
    pub(crate) fn snaps(&self) -> &super::snaps::SnapMemory {
        &self.snaps
    }

    /// How many units are registered.
    pub(crate) fn registered(&self) -> usize {
        self.records.len()
    }

    /// The unit's id.
    pub(crate) fn unit_id(&self, slot: u32) -> &str {
        self.ids.get(slot)
    }

    /// The unit's call sign.
    pub(crate) fn call_sign(&self, slot: u32) -> &str {
        self.names.get(self.records[slot as usize].call_sign)
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
        profile_of(
            slot,
            &self.records[slot as usize],
            &self.ids,
            &self.names,
            &self.capability_names,
        )
    }

    /// A copy of the whole table in its compact form: a few bulk copies
    /// (records, per-slot state, the id and call-sign arenas), with no
    /// per-unit allocation but for assigned units' incident and order. Take
    /// it where the index is locked; turn it into [`Unit`]s after letting go
    /// ([`UnitTableCopy::units`]). A command-room snapshot of 100k units costs
    /// the lock a few megabytes of copying, not 100k units built.
    pub fn copy_table(&self) -> UnitTableCopy {
        UnitTableCopy {
            offline_after_ms: self.config.offline_after_ms,
            records: self.records.clone(),
            hot: self.hot.clone(),
            ids: self.ids.copy_ids(),
            names: self.names.clone(),
            capability_names: self.capability_names.clone(),
        }
    }

    /// Refuses, changing nothing, when `capabilities` would take the index
    /// past 64 distinct tags.
    fn check_capability_room(&self, capabilities: &[String]) -> Result<(), Error> {
        let mut unknown: Vec<&str> = Vec::new();
        for cap in capabilities {
            if !self.capability_names.iter().any(|c| **c == **cap) && !unknown.contains(&&**cap) {
                if self.capability_names.len() + unknown.len() == 64 {
                    return Err(Error::full(
                        "capability tag table",
                        format!("64 distinct capabilities; {cap:?} would be the 65th"),
                    ));
                }
                unknown.push(cap);
            }
        }
        Ok(())
    }

    /// The bit mask for `capabilities`, learning new tags. Call
    /// `check_capability_room` first: past 64 tags, the rest are ignored.
    fn capability_mask(&mut self, capabilities: &[String]) -> u64 {
        let mut mask = 0u64;
        for cap in capabilities {
            let bit = match self.capability_names.iter().position(|c| **c == **cap) {
                Some(bit) => bit,
                None if self.capability_names.len() < 64 => {
                    self.capability_names.push(cap.as_str().into());
                    self.capability_names.len() - 1
                }
                None => continue,
            };
            mask |= 1 << bit;
        }
        mask
    }

    /// Rewrites the name arena's live spans, in slot order, once enough
    /// garbage has piled up.
    fn compact_names_if_needed(&mut self) {
        if self.names.needs_compaction() {
            self.names
                .compact(self.records.iter_mut().map(|r| &mut r.call_sign));
        }
    }

    /// Registers a unit or updates its profile. Returns the unit and whether it
    /// is new. A refused registration changes nothing.
    ///
    /// Re-registering (terminals do on every reconnect) grows nothing: the id
    /// is found, not stored again, and the call sign keeps its span when
    /// unchanged or when the new one fits (see the name arena in `store`).
    pub fn register(&mut self, profile: UnitProfile, now: Millis) -> Result<(Unit, bool), Error> {
        profile.validate()?;
        self.check_capability_room(&profile.capabilities)?;
        let existing = self.ids.find(&profile.id);
        if existing.is_none() {
            self.ids.check_room(profile.id.len())?;
        }
        if self.names.would_overflow(profile.call_sign.len()) && self.names.garbage() > 0 {
            self.names
                .compact(self.records.iter_mut().map(|r| &mut r.call_sign));
        }
        let old_span = existing.map(|slot| self.records[slot as usize].call_sign);
        // The last step that can refuse; everything after it succeeds.
        let call_sign = self.names.store(old_span, &profile.call_sign)?;
        let capabilities = self.capability_mask(&profile.capabilities);
        let (slot, created) = match existing {
            Some(slot) => {
                let record = &mut self.records[slot as usize];
                record.call_sign = call_sign;
                record.kind = profile.kind;
                record.capabilities = capabilities;
                (slot, false)
            }
            None => {
                let slot = self.ids.insert(&profile.id);
                debug_assert_eq!(slot as usize, self.records.len());
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
                (slot, true)
            }
        };
        self.compact_names_if_needed();
        Ok((self.view(slot, now), created))
    }

    /// The capability tags in the order they were learnt.
    pub(crate) fn capability_names(&self) -> Vec<String> {
        self.capability_names
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    /// The position trust rules' memory of the unit, if any.
    pub(crate) fn trust_state(&self, slot: u32) -> Option<&TrustState> {
        self.trust.get(&slot)
    }

    /// The stored status (never `Offline`, which is derived from fix age).
    pub(crate) fn stored_status(&self, slot: u32) -> UnitStatus {
        self.hot[slot as usize].status
    }

    /// Learns capability tags in a checkpoint's order (on an empty index).
    pub(crate) fn restore_capabilities(&mut self, names: &[String]) -> Result<(), Error> {
        self.check_capability_room(names)?;
        self.capability_mask(names);
        Ok(())
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
        if let Some(trust) = state.trust {
            self.trust.insert(slot, trust);
        }
        if let Some(fix) = state.fix.filter(|f| f.at.is_valid()) {
            record.fix = StoredFix::from_fix(&fix);
            self.hot[slot as usize].fix_time = fix.time;
            self.place(slot, &fix.at, fix.at.to_xyz(), fix.time);
        }
        Ok(())
    }

    pub(crate) fn slot(&self, id: &str) -> Result<u32, Error> {
        self.ids
            .find(id)
            .ok_or_else(|| Error::not_found("unit", id))
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
        self.apply_ping_to_slot(ping, now, None)
            .map(|(outcome, _)| outcome)
    }

    /// [`UnitIndex::apply_ping`], also saying which slot the ping moved.
    pub(crate) fn apply_ping_to_slot(
        &mut self,
        ping: &Ping<'_>,
        now: Millis,
        trust: Option<&TrustConfig>,
    ) -> Result<(PingOutcome, u32), PingRejection> {
        ping.check(now, self.config.future_tolerance_ms)?;
        let slot = self
            .ids
            .find(ping.unit_id)
            .ok_or(PingRejection::UnknownUnit)?;
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
        let mut fix = Fix {
            at: ping.at,
            time: ping.time,
            speed_mps: ping.speed_mps,
            heading_deg: ping.heading_deg,
            accuracy_m: ping.accuracy_m,
        };
        if let Some(config) = trust {
            // The plausibility rules (see `trust`): a jump no unit of this kind
            // can make is refused, a standing unit's drift held at its anchor.
            // Only units with something to remember (an anchor, a pending
            // jump) have an entry.
            let held = record.fix();
            let state = self.trust.entry(slot).or_default();
            let assessment = trust::assess(record.kind, held.as_ref(), &fix, state, config);
            if state.is_empty() {
                self.trust.remove(&slot);
            }
            match assessment.fix_to_store(&fix) {
                Some(stored) => fix = stored,
                None => return Err(PingRejection::Implausible(assessment.message())),
            }
        }
        record.fix = StoredFix::from_fix(&fix);
        if !record.moved {
            record.moved = true;
            self.moved.push(slot);
        }
        self.hot[slot as usize].fix_time = fix.time;
        self.place(slot, &fix.at, fix.at.to_xyz(), fix.time);
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
        effective(self.config.offline_after_ms, status, fix_time, now)
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

    /// The unit with this id, its status as of `now` (Unix ms).
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

/// A unit's status as of `now`: offline when its fix is missing or older than
/// `offline_after_ms` (off-duty units stay off duty).
fn effective(
    offline_after_ms: Millis,
    status: UnitStatus,
    fix_time: Millis,
    now: Millis,
) -> UnitStatus {
    match status {
        UnitStatus::OffDuty => UnitStatus::OffDuty,
        status if now.saturating_sub(fix_time) <= offline_after_ms => status,
        _ => UnitStatus::Offline,
    }
}

/// A unit's profile from its compact record and the index's tables.
fn profile_of(
    slot: u32,
    record: &UnitRecord,
    ids: &IdTable,
    names: &NameArena,
    capability_names: &[Box<str>],
) -> UnitProfile {
    UnitProfile {
        id: ids.get(slot).to_string(),
        call_sign: names.get(record.call_sign).to_string(),
        kind: record.kind,
        capabilities: (0..capability_names.len())
            .filter(|bit| record.capabilities & (1 << bit) != 0)
            .map(|bit| capability_names[bit].to_string())
            .collect(),
    }
}

/// The unit table as [`UnitIndex::copy_table`] copied it: everything needed
/// to rebuild each [`Unit`], in slot (registration) order.
#[derive(Debug)]
pub struct UnitTableCopy {
    offline_after_ms: Millis,
    records: Vec<UnitRecord>,
    hot: Vec<Hot>,
    ids: IdTable,
    names: NameArena,
    capability_names: Vec<Box<str>>,
}

impl UnitTableCopy {
    /// How many units.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The unit in `slot`, its status as of `now` (Unix ms), as
    /// [`UnitIndex::get`] would have returned it when the copy was taken.
    pub fn unit(&self, slot: u32, now: Millis) -> Unit {
        let record = &self.records[slot as usize];
        let hot = &self.hot[slot as usize];
        Unit {
            profile: profile_of(slot, record, &self.ids, &self.names, &self.capability_names),
            status: effective(self.offline_after_ms, hot.status, hot.fix_time, now),
            fix: record.fix(),
            incident_id: record.incident_id.as_deref().map(str::to_string),
        }
    }

    /// Every unit, in slot order, statuses as of `now`.
    pub fn units(&self, now: Millis) -> impl Iterator<Item = Unit> + '_ {
        (0..self.records.len() as u32).map(move |slot| self.unit(slot, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::UnitKind;
    use crate::units::store::NameArena;

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
    fn a_table_copy_rebuilds_exactly_the_units_the_index_holds() {
        let mut index = UnitIndex::new(UnitIndexConfig {
            offline_after_ms: 1_000,
            ..Default::default()
        });
        for i in 0..300 {
            let mut p = profile(&format!("u{i}"), UnitKind::Foot);
            p.capabilities = vec![format!("cap{}", i % 5)];
            index.register(p, 0).unwrap();
        }
        for i in 0..300 {
            let id = format!("u{i}");
            if i % 3 != 0 {
                index
                    .apply_ping(&ping(&id, 100 + i, 24.9 + i as f64 * 1e-4, 60.1), 1_000)
                    .unwrap();
            }
            if i % 7 == 0 {
                let slot = index.slot(&id).unwrap();
                index.set_status(slot, UnitStatus::Busy);
            }
            // Call signs that change and grow, so the arena compacts.
            let mut p = profile(&id, UnitKind::Car);
            p.call_sign = format!("{}-{}", "x".repeat((i % 60) as usize), i);
            index.register(p, 1_000).unwrap();
        }
        let copy = index.copy_table();
        assert_eq!(copy.len(), 300);
        for now in [1_000, 1_150] {
            let from_copy: Vec<Unit> = copy.units(now).collect();
            assert_eq!(from_copy, index.all(now), "at {now}");
        }
        // Later changes do not reach the copy.
        index
            .apply_ping(&ping("u1", 5_000, 25.0, 60.2), 5_000)
            .unwrap();
        assert_ne!(copy.unit(1, 5_000), index.get("u1", 5_000).unwrap());
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

    fn named(id: &str, call_sign: &str) -> UnitProfile {
        UnitProfile {
            call_sign: call_sign.into(),
            ..profile(id, UnitKind::Car)
        }
    }

    #[test]
    fn re_registering_with_the_same_call_sign_grows_nothing() {
        let mut idx = UnitIndex::new(UnitIndexConfig::default());
        idx.register(named("u1", "Patrol 1"), 0).unwrap();
        let after_first = idx.memory();
        assert!(after_first.total() > 0);
        for _ in 0..100_000 {
            let (unit, created) = idx.register(named("u1", "Patrol 1"), 0).unwrap();
            assert!(!created);
            assert_eq!(unit.profile.call_sign, "Patrol 1");
        }
        assert_eq!(idx.memory(), after_first);
        assert_eq!(idx.memory().total(), after_first.total());
    }

    #[test]
    fn switching_between_two_call_signs_stays_bounded() {
        let mut idx = UnitIndex::new(UnitIndexConfig::default());
        idx.register(named("u0", "Other"), 0).unwrap();
        let names = ["Foot patrol Kamppi 12", "K-12"];
        idx.register(named("u1", names[0]), 0).unwrap();
        idx.register(named("u1", names[1]), 0).unwrap();
        let settled = idx.memory();
        for i in 0..100_000 {
            let name = names[i % 2];
            idx.register(named("u1", name), 0).unwrap();
            assert_eq!(idx.call_sign(1), name);
        }
        let memory = idx.memory();
        assert!(memory.name_arena < 128 * 1024, "{memory:?}");
        // the short one is written over the long one's span: nothing grows
        assert_eq!(memory, settled);
        assert_eq!(idx.call_sign(0), "Other");
    }

    #[test]
    fn call_signs_survive_compaction() {
        let mut idx = UnitIndex::new(UnitIndexConfig::default());
        let units = 2_000;
        let call_sign = |unit: usize, round: usize| {
            // grows by a byte a round, so each round outgrows the old span
            let mut s = format!("U{unit}-");
            while s.len() < 8 + round {
                s.push(char::from(b'a' + (round % 26) as u8));
            }
            s
        };
        for round in 0..40 {
            for unit in 0..units {
                idx.register(named(&format!("u{unit}"), &call_sign(unit, round)), 0)
                    .unwrap();
            }
            let memory = idx.memory();
            assert!(
                memory.name_garbage <= NameArena::MIN_GARBAGE.max(memory.name_arena / 2),
                "round {round}: {memory:?}"
            );
        }
        assert!(idx.names.compactions() >= 5, "{}", idx.names.compactions());
        for unit in 0..units {
            let id = format!("u{unit}");
            assert_eq!(
                idx.get(&id, 0).unwrap().profile.call_sign,
                call_sign(unit, 39)
            );
        }
        // live call signs: 2000 x 47 bytes; the arena holds at most about twice
        let live = units * 47;
        assert!(
            idx.memory().name_arena <= 2 * live + NameArena::MIN_GARBAGE,
            "{:?}",
            idx.memory()
        );
    }

    #[test]
    fn a_refused_registration_changes_nothing() {
        let mut idx = UnitIndex::new(UnitIndexConfig::default());
        for i in 0..63 {
            let mut p = profile(&format!("x{i}"), UnitKind::Car);
            p.capabilities = vec![format!("cap{i}")];
            idx.register(p, 0).unwrap();
        }
        let before = idx.memory();
        let mut p = profile("late", UnitKind::Car);
        p.capabilities = vec!["new-1".into(), "new-2".into()];
        let err = idx.register(p, 0).unwrap_err();
        assert!(matches!(err, Error::Full { .. }), "{err:?}");
        assert!(
            err.to_string().contains("\"new-2\" would be the 65th"),
            "{err}"
        );
        assert_eq!(idx.capability_names().len(), 63, "new-1 was not learnt");
        assert_eq!(idx.memory(), before);
        assert!(idx.slot("late").is_err());
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
