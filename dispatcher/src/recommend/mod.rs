//! Suitable units for a target: the ranking policy.
//!
//! Candidates come from the spatial index cell by cell, nearest cell first (see
//! `grid`). With a street network loaded, units are ranked by who arrives
//! first over it ([`eta`]); without one, by great-circle metres from each
//! unit's latest fix, and every reason says so. The walk stops when the next
//! cell cannot hold anything better than the k-th pick, or lies past
//! `max_distance_m`.
//!
//! Two steps: the search ([`nearest_units`] by straight line, no allocation
//! per candidate; `eta::rank_by_eta` over the network), and
//! [`recommend_units`], which explains the result for operators.

mod eta;

use crate::Millis;
use crate::geometry::{LonLat, chord_for_arc_m};
use crate::network::{EtaMethod, Network};
use crate::trust::{LocationConfidence, TrustConfig, confidence};
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
    /// The incident's priority (1 most urgent): the most urgent ones are
    /// driven in emergency mode. `None`: normal driving. Set from the incident
    /// for an incident target.
    pub priority: Option<u32>,
    /// Return each recommended unit's route geometry.
    pub include_routes: bool,
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
    /// Suitable and closer by straight line than a pick, but arrives later
    /// over the street network (a one-way maze, a river, a fence).
    ArrivesLater,
}

/// One recommended unit, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct RecommendedUnit {
    /// The unit as of the query's `now`.
    pub unit: Unit,
    /// Great-circle metres from the unit's last fix to the target.
    pub distance_m: f64,
    /// Expected seconds to arrive: over the network, or (see `eta_method`)
    /// distance x detour factor / planning speed.
    pub eta_s: f64,
    /// How `eta_s` was made.
    pub eta_method: EtaMethod,
    /// Metres travelled over the network (with the legs to and from it),
    /// when the ETA is a network one.
    pub route_m: Option<f64>,
    /// The way there, fix to target (only when the query asked for routes
    /// and the ETA is a network one).
    pub route: Vec<LonLat>,
    /// How far to trust the unit's position (fix age and accuracy).
    pub confidence: LocationConfidence,
    /// Why it was chosen, for operators, e.g. "first to arrive #1: car,
    /// 1 min 40 s over 640 m of road (420 m straight line)".
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
    /// For an incident: its response plan, filled (see [`crate::plans`]).
    pub plan: Option<PlanOutcome>,
}

/// A response plan filled from the ranked units.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOutcome {
    /// Which plan applied, e.g. "fight, priority 1-2".
    pub plan: String,
    /// The units the plan asks for, fastest first, with the need each fills.
    pub chosen: Vec<PlannedUnit>,
    /// What the plan asks for that no unit can give, e.g. "no second car
    /// within 10 minutes".
    pub shortfalls: Vec<String>,
    /// True when every required need is met.
    pub complete: bool,
}

/// One unit a plan chose.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedUnit {
    /// The unit's id.
    pub unit_id: String,
    /// Its ETA, seconds.
    pub eta_s: f64,
    /// Why, e.g. "the car the plan needs: 1 min 10 s".
    pub reason: String,
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
pub(crate) fn exclusion(
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
        ExclusionReason::ArrivesLater => format!(
            "{} arrives later over the street network than the {} chosen",
            record.kind.as_str(),
            query.k
        ),
    }
}

/// What the ranking may use besides the units.
#[derive(Debug, Clone, Copy)]
pub struct RankContext<'a> {
    /// The street network, when one is loaded.
    pub network: Option<&'a Network>,
    /// Position trust rules (for each pick's location confidence).
    pub trust: &'a TrustConfig,
}

/// "1 min 40 s", "45 s".
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "unknown".to_string();
    }
    let s = seconds.round() as i64;
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The suitable units that arrive first at `target` (by the network when
/// `ctx` has one, else by straight line), explained: each pick with its
/// distance, ETA, how the ETA was made and why it was chosen; each closer unit
/// left out with why.
pub fn recommend_units(
    index: &UnitIndex,
    target: LonLat,
    query: &UnitQuery,
    now: Millis,
    ctx: RankContext<'_>,
) -> Recommendation {
    let with = if query.required_capabilities.is_empty() {
        String::new()
    } else {
        format!(" with {}", query.required_capabilities.join(", "))
    };
    let (picks, excluded, later) = match ctx.network {
        Some(network) => {
            let r = eta::rank_by_eta(index, network, target, query, now);
            (r.picks, r.excluded, r.later)
        }
        None => {
            let nearest = nearest_units(index, target, query, now);
            let picks = nearest
                .picks
                .iter()
                .map(|&(chord, slot)| {
                    let straight_m = crate::geometry::arc_for_chord_m(chord);
                    eta::EtaPick {
                        slot,
                        straight_m,
                        eta_s: crate::network::straight_eta_s(
                            index.record(slot).kind,
                            straight_m,
                            DETOUR_FACTOR,
                        ),
                        route_m: None,
                        method: EtaMethod::StraightLine,
                        note: Some("no street network is loaded"),
                        route: Vec::new(),
                    }
                })
                .collect();
            (picks, nearest.excluded, Vec::new())
        }
    };
    let units = picks
        .into_iter()
        .enumerate()
        .map(|(rank, pick)| {
            let unit = index.view(pick.slot, now);
            let fix = unit.fix.expect("indexed units have a fix");
            let distance_m = fix.at.distance_m(&target);
            let kind = unit.profile.kind;
            let reason = match (pick.method, pick.route_m) {
                (EtaMethod::Network, Some(route_m)) => format!(
                    "first to arrive #{}{with}: {}, {} over {route_m:.0} m of street ({distance_m:.0} m straight line)",
                    rank + 1,
                    kind.as_str(),
                    format_duration(pick.eta_s)
                ),
                _ => format!(
                    "nearest available {} #{}{with}: {distance_m:.0} m, about {} at {} speed (straight line: {})",
                    kind.as_str(),
                    rank + 1,
                    format_duration(pick.eta_s),
                    kind.as_str(),
                    pick.note.unwrap_or("estimate")
                ),
            };
            RecommendedUnit {
                confidence: confidence(&fix, now, kind, ctx.trust),
                unit,
                distance_m,
                eta_s: pick.eta_s,
                eta_method: pick.method,
                route_m: pick.route_m,
                route: pick.route,
                reason,
            }
        })
        .collect();
    let mut excluded: Vec<ExcludedUnit> = excluded
        .iter()
        .map(|&(_, slot, reason)| excluded_unit(index, slot, reason, target, query, now))
        .collect();
    excluded.extend(later.iter().map(|p| {
        excluded_unit(
            index,
            p.slot,
            ExclusionReason::ArrivesLater,
            target,
            query,
            now,
        )
    }));
    excluded.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
    excluded.truncate(MAX_EXCLUSIONS);
    Recommendation {
        target,
        units,
        excluded,
        plan: None,
    }
}

fn excluded_unit(
    index: &UnitIndex,
    slot: u32,
    reason: ExclusionReason,
    target: LonLat,
    query: &UnitQuery,
    now: Millis,
) -> ExcludedUnit {
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
}
