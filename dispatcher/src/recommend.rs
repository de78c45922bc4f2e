//! Nearest suitable units: the ranking policy.
//!
//! Candidates come from the spatial index cell by cell, nearest cell first (see
//! `grid`); ranking uses great-circle metres from each unit's latest fix. The
//! walk stops when the next cell cannot hold anything closer than the k-th
//! pick, or lies past `max_distance_m`.
//!
//! Two steps: [`nearest_units`] is the search (no allocation per candidate; a
//! candidate's eligibility is judged from the index's compact table, its
//! record read only when the query filters on kind or capability), and
//! [`recommend_units`] explains the result for operators.

use crate::Millis;
use crate::geometry::{LonLat, chord_for_arc_m};
use crate::units::{Candidate, Unit, UnitIndex, UnitKind, UnitStatus};

/// At most this many excluded units are reported.
pub const MAX_EXCLUSIONS: usize = 20;
/// At most this many units are recommended.
pub const MAX_K: usize = 100;
/// Straight-line ETAs are stretched by this factor for street detours.
pub const DETOUR_FACTOR: f64 = 1.3;

/// What makes a unit suitable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitQuery {
    /// How many units to return (1..=MAX_K).
    pub k: usize,
    /// Only these kinds (empty: any).
    pub kinds: Vec<UnitKind>,
    /// The unit must have all of these.
    pub required_capabilities: Vec<String>,
    /// Ignore units farther than this, metres.
    pub max_distance_m: Option<f64>,
}

/// Why a nearby unit was not recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExclusionReason {
    /// Already assigned to an incident (assigned, en route or on scene).
    Assigned,
    /// Busy or off duty.
    NotAvailable,
    /// No fix for longer than the offline age.
    Offline,
    /// Not one of the kinds the query asked for.
    WrongKind,
    /// Lacks a capability the query requires.
    MissingCapability,
}

/// One recommended unit, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendedUnit {
    /// The unit as of the query's `now`.
    pub unit: Unit,
    /// Great-circle metres from the unit's last fix to the target.
    pub distance_m: f64,
    /// Straight-line estimate: distance x detour factor / planning speed.
    pub eta_s: f64,
    /// Why it was chosen, for operators, e.g. "nearest available car #1:
    /// 420 m, about 66 s at car speed".
    pub reason: String,
}

/// A unit near the target that was left out, and why: operators ask "why
/// not the one right there?".
#[derive(Debug, Clone, PartialEq)]
pub struct ExcludedUnit {
    /// The unit's id.
    pub unit_id: String,
    /// The unit's call sign.
    pub call_sign: String,
    /// Great-circle metres from its last fix to the target.
    pub distance_m: f64,
    /// Why it was left out.
    pub reason: ExclusionReason,
    /// The same for operators, e.g. "en_route for incident inc-7".
    pub detail: String,
}

/// Ranked units for a target, with the closer ones left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The point searched from (x = longitude, y = latitude, degrees).
    pub target: LonLat,
    /// Nearest first.
    pub units: Vec<RecommendedUnit>,
    /// Units closer than the farthest pick (or within reach, when fewer than k
    /// were found) that were left out, nearest first.
    pub excluded: Vec<ExcludedUnit>,
}

/// The search result: slots and chords, nearest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NearestUnits {
    /// (chord metres, slot) of the picks, nearest first.
    pub(crate) picks: Vec<(f64, u32)>,
    /// (chord metres, slot, reason) of units closer than the farthest pick
    /// (all examined ones when fewer than k were found), nearest first.
    pub(crate) excluded: Vec<(f64, u32, ExclusionReason)>,
}

impl NearestUnits {
    /// How many units were picked.
    pub fn len(&self) -> usize {
        self.picks.len()
    }

    /// Whether no unit was picked.
    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }

    /// Great-circle metres of each pick, nearest first.
    pub fn distances_m(&self) -> impl Iterator<Item = f64> + '_ {
        self.picks
            .iter()
            .map(|(chord, _)| crate::geometry::arc_for_chord_m(*chord))
    }
}

/// Why the unit in `slot`, whose effective status is `status`, may not be
/// recommended for `query`, if it may not. Cheap: no allocation; it runs for
/// every unit a query examines.
fn exclusion(
    index: &UnitIndex,
    slot: u32,
    status: UnitStatus,
    query: &UnitQuery,
) -> Option<ExclusionReason> {
    match status {
        UnitStatus::Available => {}
        UnitStatus::Offline => return Some(ExclusionReason::Offline),
        UnitStatus::Assigned | UnitStatus::EnRoute | UnitStatus::OnScene => {
            return Some(ExclusionReason::Assigned);
        }
        UnitStatus::Busy | UnitStatus::OffDuty => return Some(ExclusionReason::NotAvailable),
    }
    if query.kinds.is_empty() && query.required_capabilities.is_empty() {
        return None;
    }
    let record = index.record(slot);
    if !query.kinds.is_empty() && !query.kinds.contains(&record.kind) {
        return Some(ExclusionReason::WrongKind);
    }
    if !query
        .required_capabilities
        .iter()
        .all(|c| index.has_capability(slot, c))
    {
        return Some(ExclusionReason::MissingCapability);
    }
    None
}

/// The k nearest suitable units to `target` by great-circle distance, and the
/// closer units left out.
pub fn nearest_units(
    index: &UnitIndex,
    target: LonLat,
    query: &UnitQuery,
    now: Millis,
) -> NearestUnits {
    let k = query.k.clamp(1, MAX_K);
    let query_xyz = target.to_xyz();
    let max_chord = query.max_distance_m.map(chord_for_arc_m);
    let mut picks: Vec<(f64, u32)> = Vec::with_capacity(k + 1);
    let mut excluded: Vec<(f64, u32, ExclusionReason)> = Vec::new();
    for Candidate {
        slot,
        lower,
        chord,
        status,
    } in index.nearest_candidates(&query_xyz, now)
    {
        if picks.len() == k && lower > picks[k - 1].0 {
            break;
        }
        if max_chord.is_some_and(|m| lower > m) {
            break;
        }
        if max_chord.is_some_and(|m| chord > m) {
            continue;
        }
        match exclusion(index, slot, status, query) {
            None => {
                let at = picks.partition_point(|(c, s)| (*c, *s) < (chord, slot));
                if at < k {
                    picks.insert(at, (chord, slot));
                    picks.truncate(k);
                }
            }
            Some(reason) => {
                let at = excluded.partition_point(|(c, ..)| *c < chord);
                if at < MAX_EXCLUSIONS {
                    excluded.insert(at, (chord, slot, reason));
                    excluded.truncate(MAX_EXCLUSIONS);
                }
            }
        }
    }
    // Exclusions only matter when they were closer than a pick we made.
    if picks.len() == k {
        let farthest = picks[k - 1].0;
        excluded.retain(|(c, ..)| *c < farthest);
    }
    NearestUnits { picks, excluded }
}

/// The operator-facing explanation of an exclusion.
fn exclusion_detail(
    index: &UnitIndex,
    slot: u32,
    reason: ExclusionReason,
    query: &UnitQuery,
    now: Millis,
) -> String {
    let record = index.record(slot);
    match reason {
        ExclusionReason::Offline => {
            let age_s = record.fix().map(|f| (now - f.time) / 1000).unwrap_or(0);
            format!("offline: last fix {age_s} s ago")
        }
        ExclusionReason::Assigned => format!(
            "{} for incident {}",
            index.effective_status(slot, now).as_str(),
            record.incident_id.as_deref().unwrap_or("?")
        ),
        ExclusionReason::NotAvailable => index.effective_status(slot, now).as_str().to_string(),
        ExclusionReason::WrongKind => {
            format!("kind {} not requested", record.kind.as_str())
        }
        ExclusionReason::MissingCapability => {
            let missing = query
                .required_capabilities
                .iter()
                .find(|c| !index.has_capability(slot, c));
            format!("lacks capability {:?}", missing.map_or("", |c| c.as_str()))
        }
    }
}

/// [`nearest_units`], explained: each pick with its distance, ETA and why it
/// was chosen, each exclusion with why it was left out.
pub fn recommend_units(
    index: &UnitIndex,
    target: LonLat,
    query: &UnitQuery,
    now: Millis,
) -> Recommendation {
    let nearest = nearest_units(index, target, query, now);
    let with = if query.required_capabilities.is_empty() {
        String::new()
    } else {
        format!(" with {}", query.required_capabilities.join(", "))
    };
    let units = nearest
        .picks
        .iter()
        .enumerate()
        .map(|(rank, &(_, slot))| {
            let unit = index.view(slot, now);
            let fix = unit.fix.expect("indexed units have a fix");
            let distance_m = fix.at.distance_m(&target);
            let kind = unit.profile.kind;
            let eta_s = distance_m * DETOUR_FACTOR / kind.planning_speed_mps();
            let reason = format!(
                "nearest available {} #{}{with}: {distance_m:.0} m, about {eta_s:.0} s at {} speed",
                kind.as_str(),
                rank + 1,
                kind.as_str()
            );
            RecommendedUnit {
                unit,
                distance_m,
                eta_s,
                reason,
            }
        })
        .collect();
    let excluded = nearest
        .excluded
        .iter()
        .map(|&(_, slot, reason)| {
            let record = index.record(slot);
            ExcludedUnit {
                unit_id: index.unit_id(slot).to_string(),
                call_sign: index.call_sign(slot).to_string(),
                distance_m: record
                    .fix()
                    .map(|f| f.at.distance_m(&target))
                    .unwrap_or(f64::NAN),
                reason,
                detail: exclusion_detail(index, slot, reason, query, now),
            }
        })
        .collect();
    Recommendation {
        target,
        units,
        excluded,
    }
}
