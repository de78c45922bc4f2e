//! The compact per-unit state [`UnitIndex`](super::UnitIndex) holds: a city
//! holds a million units, so every byte here is paid a million times.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::Millis;
use crate::error::Error;
use crate::geometry::LonLat;
use crate::incidents::Order;

use super::{Fix, UnitKind, UnitStatus, hash_table_bytes};

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
    /// Where the call sign lives in the index's name arena.
    pub call_sign: NameSpan,
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
    pub(crate) const NONE: StoredFix = StoredFix {
        lon: 0.0,
        lat: 0.0,
        time: Millis::MIN,
        speed_mps: f32::NAN,
        heading_deg: f32::NAN,
        accuracy_m: f32::NAN,
    };

    pub(crate) fn from_fix(f: &Fix) -> Self {
        Self {
            lon: f.at.lon,
            lat: f.at.lat,
            time: f.time,
            speed_mps: f.speed_mps.unwrap_or(f32::NAN),
            heading_deg: f.heading_deg.unwrap_or(f32::NAN),
            accuracy_m: f.accuracy_m.unwrap_or(f32::NAN),
        }
    }

    pub(crate) fn get(&self) -> Option<Fix> {
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
    pub(crate) fn fix(&self) -> Option<Fix> {
        self.fix.get()
    }
}

/// Every unit id's bytes, back to back, each slot's (start, len) in them, and
/// a hash table of slots keyed by those bytes. The table compares against this
/// dense copy instead of chasing each record's heap string, which kept ingest
/// waiting on cache misses.
///
/// Ids are never removed or changed, so the arena grows only when a new id is
/// inserted, and [`IdTable::insert`] is called only for an id `find` missed:
/// re-registering a unit costs nothing here.
#[derive(Debug, Default)]
pub(crate) struct IdTable {
    slots: HashTable<u32>,
    arena: Vec<u8>,
    spans: Vec<(u32, u32)>,
    hasher: DefaultHashBuilder,
}

impl IdTable {
    /// The id of `slot`.
    pub(super) fn get(&self, slot: u32) -> &str {
        // The arena only ever receives whole `&str`s, so every span is UTF-8.
        std::str::from_utf8(self.bytes(slot)).unwrap_or_default()
    }

    fn bytes(&self, slot: u32) -> &[u8] {
        let (start, len) = self.spans[slot as usize];
        &self.arena[start as usize..(start + len) as usize]
    }

    /// The slot of `id`, if it is held.
    pub(super) fn find(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id.as_bytes());
        self.slots
            .find(hash, |&slot| self.bytes(slot) == id.as_bytes())
            .copied()
    }

    /// Refuses, changing nothing, when one more id of `len` bytes would not
    /// fit: slots and arena offsets are `u32`, and `u32::MAX` is no slot.
    pub(super) fn check_room(&self, len: usize) -> Result<(), Error> {
        if self.spans.len() >= u32::MAX as usize {
            return Err(Error::full("unit table", format!("{} units", u32::MAX)));
        }
        if self.arena.len() + len > u32::MAX as usize {
            return Err(Error::full(
                "unit id arena",
                format!("{} bytes of ids", u32::MAX),
            ));
        }
        Ok(())
    }

    /// Adds `id`, which `find` missed and `check_room` accepted, as the next
    /// slot, and returns that slot.
    pub(super) fn insert(&mut self, id: &str) -> u32 {
        debug_assert!(self.find(id).is_none() && self.check_room(id.len()).is_ok());
        let slot = self.spans.len() as u32;
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(id.as_bytes());
        self.spans.push((start, id.len() as u32));
        let hash = self.hasher.hash_one(id.as_bytes());
        let (arena, spans, hasher) = (&self.arena, &self.spans, &self.hasher);
        self.slots.insert_unique(hash, slot, |&s| {
            let (start, len) = spans[s as usize];
            hasher.hash_one(&arena[start as usize..(start + len) as usize])
        });
        slot
    }

    /// The ids alone, without the hash table: bulk copies of the arena and
    /// the spans (for [`super::UnitTableCopy`]; lookups by id miss in it).
    pub(super) fn copy_ids(&self) -> IdTable {
        IdTable {
            slots: HashTable::new(),
            arena: self.arena.clone(),
            spans: self.spans.clone(),
            hasher: self.hasher.clone(),
        }
    }

    /// Bytes reserved for the id arena and its spans.
    pub(super) fn arena_bytes(&self) -> usize {
        self.arena.capacity() + self.spans.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    /// Bytes reserved for the hash table (an estimate from its capacity).
    pub(super) fn table_bytes(&self) -> usize {
        hash_table_bytes(self.slots.capacity(), std::mem::size_of::<u32>())
    }
}

/// Where a call sign lives in the [`NameArena`]: `len` bytes from `start`,
/// in a span of `cap` bytes that belongs to the unit (call signs are at most
/// 64 bytes, so a byte holds each length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NameSpan {
    start: u32,
    len: u8,
    cap: u8,
}

/// Every call sign's bytes, back to back.
///
/// Terminals re-register on every reconnect, so registration must not grow
/// the arena: an unchanged call sign keeps its span; a changed one is written
/// over the unit's span when it fits there (the span keeps its size, so
/// switching between two call signs never grows anything); otherwise it is
/// appended and the old span becomes garbage. When the garbage exceeds
/// `max(min_garbage, half the arena)` the index rewrites the live spans into a
/// fresh arena ([`NameArena::compact`]), so the arena stays within about twice
/// the live call signs plus `min_garbage`.
#[derive(Debug, Clone)]
pub(crate) struct NameArena {
    bytes: Vec<u8>,
    /// Bytes of `bytes` that hold no live call sign: abandoned spans and the
    /// unused tails of spans holding a shorter call sign than they once did.
    garbage: usize,
    /// Garbage below this never triggers a compaction (64 KiB by default).
    min_garbage: usize,
    /// Compactions so far (for tests and curiosity).
    compactions: u64,
}

impl Default for NameArena {
    fn default() -> Self {
        Self::with_min_garbage(Self::MIN_GARBAGE)
    }
}

impl NameArena {
    /// Garbage below this many bytes never triggers a compaction.
    pub(super) const MIN_GARBAGE: usize = 64 * 1024;

    pub(super) fn with_min_garbage(min_garbage: usize) -> Self {
        Self {
            bytes: Vec::new(),
            garbage: 0,
            min_garbage,
            compactions: 0,
        }
    }

    /// The call sign at `span`.
    pub(super) fn get(&self, span: NameSpan) -> &str {
        let start = span.start as usize;
        // Spans only ever receive whole `&str`s, so they are UTF-8.
        std::str::from_utf8(&self.bytes[start..start + span.len as usize]).unwrap_or_default()
    }

    /// Stores `name` for a unit whose call sign is at `old` (`None`: a new
    /// unit) and returns its span. Refuses, changing nothing, only when the
    /// arena would outgrow `u32` offsets (compact first: see `would_overflow`).
    pub(super) fn store(&mut self, old: Option<NameSpan>, name: &str) -> Result<NameSpan, Error> {
        let len = u8::try_from(name.len()).map_err(|_| {
            Error::invalid(
                "call_sign",
                format!("{:?}", name),
                "must be at most 64 bytes",
            )
        })?;
        if let Some(old) = old {
            if self.get(old) == name {
                return Ok(old);
            }
            if len <= old.cap {
                let start = old.start as usize;
                self.bytes[start..start + name.len()].copy_from_slice(name.as_bytes());
                self.garbage = self.garbage + old.len as usize - name.len();
                return Ok(NameSpan { len, ..old });
            }
        }
        if self.would_overflow(name.len()) {
            return Err(Error::full(
                "call sign arena",
                format!("{} bytes of call signs", u32::MAX),
            ));
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name.as_bytes());
        if let Some(old) = old {
            // Its tail (cap - len) was garbage already; now its head is too.
            self.garbage += old.len as usize;
        }
        Ok(NameSpan {
            start,
            len,
            cap: len,
        })
    }

    /// Whether appending `len` bytes would outgrow `u32` offsets.
    pub(super) fn would_overflow(&self, len: usize) -> bool {
        self.bytes.len() + len > u32::MAX as usize
    }

    /// Whether enough garbage has piled up to rewrite the arena.
    pub(super) fn needs_compaction(&self) -> bool {
        self.garbage > self.min_garbage.max(self.bytes.len() / 2)
    }

    /// Rewrites the live spans, in the order given (slot order: the same on
    /// every node), into a fresh arena holding nothing else, and points each
    /// span at its new place.
    pub(super) fn compact<'a>(&mut self, spans: impl Iterator<Item = &'a mut NameSpan>) {
        let live = self.bytes.len() - self.garbage;
        let mut fresh = Vec::with_capacity(live);
        for span in spans {
            let start = fresh.len() as u32;
            fresh.extend_from_slice(self.get(*span).as_bytes());
            *span = NameSpan {
                start,
                len: span.len,
                cap: span.len,
            };
        }
        debug_assert_eq!(fresh.len(), live);
        self.bytes = fresh;
        self.garbage = 0;
        self.compactions += 1;
    }

    /// Bytes reserved for the arena (its capacity).
    pub(super) fn capacity_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Bytes of the arena that hold no live call sign.
    pub(super) fn garbage(&self) -> usize {
        self.garbage
    }

    #[cfg(test)]
    pub(super) fn compactions(&self) -> u64 {
        self.compactions
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

    /// The arena against a plain map: random call signs for a few units, with
    /// a tiny compaction threshold so compactions happen often.
    #[test]
    fn name_arena_matches_a_map_through_rewrites_and_compactions() {
        let mut arena = NameArena::with_min_garbage(16);
        let mut spans: Vec<NameSpan> = Vec::new();
        let mut expected: Vec<String> = Vec::new();
        let mut x = 99u64;
        for step in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (x >> 33) as usize % 12;
            let len = (x >> 40) as usize % 65;
            let name: String = (0..len)
                .map(|i| char::from(b'a' + ((step + i) % 26) as u8))
                .collect();
            if unit >= spans.len() {
                spans.push(arena.store(None, &name).unwrap());
                expected.push(name);
            } else {
                spans[unit] = arena.store(Some(spans[unit]), &name).unwrap();
                expected[unit] = name;
            }
            let live: usize = expected.iter().map(String::len).sum();
            assert_eq!(arena.bytes.len() - arena.garbage(), live);
            if arena.needs_compaction() {
                arena.compact(spans.iter_mut());
                assert_eq!(arena.bytes.len(), live);
            }
            for (span, name) in spans.iter().zip(&expected) {
                assert_eq!(arena.get(*span), name);
            }
        }
        assert!(arena.compactions() > 10, "{}", arena.compactions());
        // bounded: at most max(min_garbage, half) garbage over the live bytes
        assert!(arena.bytes.len() <= 2 * 12 * 64 + 16);
    }

    #[test]
    fn a_changed_call_sign_that_fits_is_written_in_place() {
        let mut arena = NameArena::default();
        let long = arena.store(None, "Patrol Car Seven").unwrap();
        let short = arena.store(Some(long), "P-7").unwrap();
        assert_eq!(short.start, long.start);
        assert_eq!((arena.get(short), arena.garbage()), ("P-7", 13));
        let back = arena.store(Some(short), "Patrol Car Seven").unwrap();
        assert_eq!((back, arena.garbage()), (long, 0));
        assert_eq!(arena.store(Some(back), "Patrol Car Seven").unwrap(), back);
        // too long for the span: appended, the old span is garbage
        let longer = arena.store(Some(back), "Patrol Car Seventeen").unwrap();
        assert_ne!(longer.start, back.start);
        assert_eq!(
            (arena.get(longer), arena.garbage()),
            ("Patrol Car Seventeen", 16)
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
