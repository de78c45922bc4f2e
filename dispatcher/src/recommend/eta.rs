//! Ranking by who arrives first over the street network.
//!
//! Candidates come from the unit index nearest first by straight line, each
//! with a lower bound on its (and every later candidate's) straight-line
//! distance. A unit's ETA is its travel time over the network for its
//! profile ([`Network::metric`]) plus the legs off the network, so no unit can
//! arrive sooner than its straight-line metres at [`Network::max_speed_mps`]:
//! once k units are ranked and the next candidate's bound at that speed is no
//! sooner than the k-th ETA, nothing further can make the list, and the walk
//! stops. Network times come from one lazy reverse search from the target per
//! metric ([`ReverseSearch`]), asked for each candidate with the k-th ETA as
//! its limit, so a unit round a one-way maze costs no more than the maze's
//! first seconds. The result is exact: it equals ranking every unit by its
//! full ETA.

use patrol_roads::{Metric, ReverseSearch, SearchScratch, Snap};

use super::{ExclusionReason, MAX_EXCLUSIONS, MAX_K, UnitQuery, exclusion};
use crate::Millis;
use crate::geometry::{LonLat, arc_for_chord_m, chord_for_arc_m};
use crate::network::{EtaMethod, Network};
use crate::units::{Candidate, UnitIndex, UnitKind};

/// One ranked unit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EtaPick {
    pub slot: u32,
    /// Great-circle metres from the fix to the target.
    pub straight_m: f64,
    pub eta_s: f64,
    /// Metres travelled, when over the network.
    pub route_m: Option<f64>,
    pub method: EtaMethod,
    /// Why the method, when not the network ("off the network: fix 380 m
    /// from the nearest street").
    pub note: Option<&'static str>,
    /// The path, when asked for.
    pub route: Vec<LonLat>,
}

impl EtaPick {
    /// A unit that cannot arrive before the k-th pick (its ETA not made).
    fn later(slot: u32, straight_m: f64) -> Self {
        EtaPick {
            slot,
            straight_m,
            eta_s: f64::INFINITY,
            route_m: None,
            method: EtaMethod::Network,
            note: None,
            route: Vec::new(),
        }
    }
}

/// What [`rank_by_eta`] found.
#[derive(Debug, Clone, Default)]
pub(crate) struct EtaRanking {
    /// Fastest first.
    pub picks: Vec<EtaPick>,
    /// (chord metres, slot, reason), nearest first, closer than the farthest
    /// pick by straight line.
    pub excluded: Vec<(f64, u32, ExclusionReason)>,
    /// Suitable units closer by straight line than the farthest pick that
    /// arrive later than the k-th: the "why not the one right there" answer.
    pub later: Vec<EtaPick>,
}

/// One metric's lazy search towards the target (or why there is none).
enum Toward<'a> {
    NotYet,
    /// The target is off the network for this metric.
    OffNetwork,
    Search(Box<ReverseSearch<'a>>, Snap),
}

/// The k units that arrive first at `target`, by network ETA.
pub(crate) fn rank_by_eta(
    index: &UnitIndex,
    network: &Network,
    target: LonLat,
    query: &UnitQuery,
    now: Millis,
) -> EtaRanking {
    let k = query.k.clamp(1, MAX_K);
    let graph = network.graph();
    let vmax = network.max_speed_mps(&query.kinds);
    // Each kind's own top speed: a candidate whose straight line at it is
    // already no sooner than the k-th ETA is passed over without snapping
    // it (snapping is most of a candidate's cost).
    let kinds = [
        UnitKind::Car,
        UnitKind::Foot,
        UnitKind::EBike,
        UnitKind::Motorcycle,
    ];
    let vmax_of = kinds.map(|k| network.max_speed_mps(&[k]));
    let vmax_kind = |kind: UnitKind| vmax_of[kinds.iter().position(|&k| k == kind).unwrap_or(0)];
    let xyz = target.to_xyz();
    let max_chord = query.max_distance_m.map(chord_for_arc_m);
    // Scratch labels live outside the searches that borrow them.
    let mut scratches: Vec<SearchScratch> = (0..6).map(|_| network.take_scratch()).collect();
    let mut ranking = EtaRanking::default();
    {
        let mut slots = scratches.iter_mut();
        let mut toward: Vec<(Metric, Toward<'_>, Option<&mut SearchScratch>)> = Vec::new();
        let mut picks: Vec<EtaPick> = Vec::with_capacity(k + 1);
        let mut snaps = index.snaps().lock();
        let registered = index.registered();
        let mut passed_over: Vec<EtaPick> = Vec::new();
        for Candidate {
            slot,
            lower,
            chord,
            status,
        } in index.nearest_candidates(&xyz, now)
        {
            let lower_m = arc_for_chord_m(lower);
            if picks.len() == k && lower_m / vmax >= picks[k - 1].eta_s {
                break;
            }
            if max_chord.is_some_and(|m| lower > m) {
                break;
            }
            if max_chord.is_some_and(|m| chord > m) {
                continue;
            }
            if let Some(reason) = exclusion(index, slot, status, query) {
                let at = ranking.excluded.partition_point(|(c, ..)| *c < chord);
                if at < MAX_EXCLUSIONS {
                    ranking.excluded.insert(at, (chord, slot, reason));
                    ranking.excluded.truncate(MAX_EXCLUSIONS);
                }
                continue;
            }
            let record = index.record(slot);
            let Some(fix) = record.fix() else { continue };
            let kind = record.kind;
            let straight_m = arc_for_chord_m(chord);
            let limit = if picks.len() == k {
                picks[k - 1].eta_s
            } else {
                f64::INFINITY
            };
            if straight_m / vmax_kind(kind) >= limit {
                passed_over.push(EtaPick::later(slot, straight_m));
                continue;
            }
            let metric = network.metric(kind, query.priority);
            let off_speed = network.settings().off_network_speed_mps.of(kind);
            // This metric's search towards the target, started on first use.
            let at = match toward.iter().position(|(m, ..)| *m == metric) {
                Some(i) => i,
                None => {
                    toward.push((metric, Toward::NotYet, slots.next()));
                    toward.len() - 1
                }
            };
            if matches!(toward[at].1, Toward::NotYet) {
                let (_, state, scratch) = &mut toward[at];
                *state = match (network.snap(target, metric), scratch.take()) {
                    (Some(snap), Some(scratch)) => Toward::Search(
                        Box::new(ReverseSearch::with_scratch(graph, metric, &snap, scratch)),
                        snap,
                    ),
                    (Some(snap), None) => {
                        Toward::Search(Box::new(ReverseSearch::new(graph, metric, &snap)), snap)
                    }
                    (None, _) => Toward::OffNetwork,
                };
            }
            let straight = |note| EtaPick {
                slot,
                straight_m,
                eta_s: network.straight_eta_s(kind, straight_m),
                route_m: None,
                method: EtaMethod::StraightLine,
                note: Some(note),
                route: Vec::new(),
            };
            let pick = match &mut toward[at].1 {
                Toward::NotYet => unreachable!("started above"),
                Toward::OffNetwork => straight("the target is off the network"),
                Toward::Search(search, target_snap) => {
                    match snaps.get_or(slot, metric, fix.at, registered, || {
                        network.snap(fix.at, metric)
                    }) {
                        None => straight("the unit is off the network"),
                        Some(from) => {
                            let legs_m = from.distance_m + target_snap.distance_m;
                            let legs_s = legs_m / off_speed;
                            match search.eta_from_within(&from, limit - legs_s) {
                                Some(eta) => EtaPick {
                                    slot,
                                    straight_m,
                                    eta_s: eta.seconds + legs_s,
                                    route_m: Some(eta.metres + legs_m),
                                    method: EtaMethod::Network,
                                    note: None,
                                    route: if query.include_routes {
                                        route_of(search, &from, fix.at, target)
                                    } else {
                                        Vec::new()
                                    },
                                },
                                // Slower than the k-th (or no route at all).
                                None if limit.is_finite() => {
                                    passed_over.push(EtaPick::later(slot, straight_m));
                                    continue;
                                }
                                None => straight("no route joins the unit and the target"),
                            }
                        }
                    }
                }
            };
            let at = picks.partition_point(|p| (p.eta_s, p.slot) < (pick.eta_s, pick.slot));
            if at < k {
                picks.insert(at, pick);
                if picks.len() > k {
                    passed_over.extend(picks.pop());
                }
            } else {
                passed_over.push(pick);
            }
        }
        // The units the walk met that arrive later than the k-th, though
        // closer by straight line than the farthest pick.
        let farthest = picks.iter().map(|p| p.straight_m).fold(0.0, f64::max);
        passed_over.retain(|p| p.straight_m < farthest);
        passed_over.sort_by(|a, b| a.straight_m.total_cmp(&b.straight_m));
        passed_over.truncate(MAX_EXCLUSIONS);
        ranking.later = passed_over;
        if picks.len() == k {
            let farthest_chord = chord_for_arc_m(farthest);
            ranking.excluded.retain(|(c, ..)| *c < farthest_chord);
        }
        ranking.picks = picks;
    }
    for scratch in scratches {
        network.give_back(scratch);
    }
    ranking
}

/// The path from the fix along the streets to the target.
fn route_of(
    search: &mut ReverseSearch<'_>,
    from: &Snap,
    fix: LonLat,
    target: LonLat,
) -> Vec<LonLat> {
    let mut path = vec![fix];
    if let Some(route) = search.route_from(from) {
        path.extend(route.geometry);
    }
    path.push(target);
    path
}
