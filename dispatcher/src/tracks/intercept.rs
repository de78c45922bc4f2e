//! Units that can get ahead of a followed target: for points along the way
//! ahead (then the handoff cameras' points), nearest first, the units whose
//! ETA there beats the earliest the target can arrive (at the fast end of its
//! speed tolerance) by a margin.

use super::{Prediction, TrackConfig};
use crate::Millis;
use crate::geometry::LonLat;
use crate::network::EtaMethod;
use crate::recommend::{MAX_K, RankContext, UnitQuery, recommend_units};
use crate::units::{Unit, UnitIndex, UnitKind};

/// What units to look for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterceptQuery {
    /// How many units (1..=MAX_K).
    pub k: usize,
    /// Only these kinds (empty: any).
    pub kinds: Vec<UnitKind>,
    /// Priority for the drive (emergency mode for the most urgent).
    pub priority: Option<u32>,
    /// Return each unit's route to its intercept point.
    pub include_routes: bool,
}

/// A unit that can be at a point of the target's way before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Intercept {
    /// The unit, as of now.
    pub unit: Unit,
    /// The intercept point: on the way ahead, or where a handoff camera
    /// will see the target.
    pub at: LonLat,
    /// Metres by street from the last sighting to `at`.
    pub along_m: f64,
    /// The earliest the target can be at `at` (fast end of the tolerance).
    pub target_earliest: Millis,
    /// When the target is expected at `at` at its observed speed.
    pub target_expected: Millis,
    /// The unit's ETA to `at`, seconds from now.
    pub eta_s: f64,
    /// When the unit gets there, Unix ms.
    pub unit_arrival: Millis,
    /// Seconds between the unit's arrival and the target's earliest.
    pub lead_s: f64,
    /// How the unit's ETA was made.
    pub eta_method: EtaMethod,
    /// Its way there (when asked for, over the network).
    pub route: Vec<LonLat>,
    /// For operators, e.g. "at 160 m ahead: there 1 min 05 s before the
    /// target can be".
    pub reason: String,
}

/// The intercepts found for a track.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Intercepts {
    /// The units, each at the nearest point of the way ahead it can reach in
    /// time; by that point's distance, then ETA.
    pub intercepts: Vec<Intercept>,
    /// How many points of the way ahead were tried.
    pub points_tried: usize,
    /// When fewer than asked were found, why.
    pub shortfall: Option<String>,
}

/// The point `metres` along `path`, if the path is that long.
fn point_along(path: &[LonLat], metres: f64) -> Option<LonLat> {
    let mut walked = 0.0;
    for w in path.windows(2) {
        let leg = w[0].distance_m(&w[1]);
        if walked + leg >= metres {
            let t = if leg > 0.0 {
                (metres - walked) / leg
            } else {
                0.0
            };
            return Some(w[0].lerp(w[1], t));
        }
        walked += leg;
    }
    None
}

/// Units that can be ahead of the target: see the [module docs](self).
/// Points are tried every `intercept_step_m` along the way ahead, from the
/// first the target cannot have passed by now (at its fastest); when that
/// finds fewer than k units (a short way ahead: a dead end, a square), the
/// points where the handoff cameras will see the target are tried too,
/// nearest first by street.
pub fn intercepts(
    prediction: &Prediction,
    units: &UnitIndex,
    query: &InterceptQuery,
    config: &TrackConfig,
    now: Millis,
    ctx: RankContext<'_>,
) -> Intercepts {
    let mut found = Intercepts::default();
    let k = query.k.clamp(1, MAX_K);
    let fast = prediction.speed_mps * (1.0 + config.speed_tolerance);
    let time_at =
        |metres: f64, v: f64| prediction.from_time + (metres / v * 1000.0).round() as Millis;
    let search = UnitQuery {
        k: (2 * k + 2).min(MAX_K),
        kinds: query.kinds.clone(),
        required_capabilities: Vec::new(),
        max_distance_m: None,
        priority: query.priority,
        include_routes: query.include_routes,
    };
    let margin_ms = (config.intercept_margin_s * 1000.0).round() as Millis;
    // Tries one point `along` metres by street from the last sighting.
    let try_point = |found: &mut Intercepts, at: LonLat, along: f64, place: &str| {
        let earliest = time_at(along, fast);
        if earliest <= now + margin_ms {
            return;
        }
        found.points_tried += 1;
        let ranked = recommend_units(units, at, &search, now, ctx);
        for r in ranked.units {
            if found.intercepts.len() >= k {
                break;
            }
            if found
                .intercepts
                .iter()
                .any(|i| i.unit.profile.id == r.unit.profile.id)
            {
                continue;
            }
            let arrival = now + (r.eta_s * 1000.0).round() as Millis;
            if arrival + margin_ms > earliest {
                continue;
            }
            let lead_s = (earliest - arrival) as f64 / 1000.0;
            found.intercepts.push(Intercept {
                reason: format!(
                    "{place}, {along:.0} m from the last sighting: there {} before the target can be ({} away)",
                    crate::recommend::format_duration(lead_s),
                    crate::recommend::format_duration(r.eta_s),
                ),
                unit: r.unit,
                at,
                along_m: along,
                target_earliest: earliest,
                target_expected: time_at(along, prediction.speed_mps),
                eta_s: r.eta_s,
                unit_arrival: arrival,
                lead_s,
                eta_method: r.eta_method,
                route: r.route,
            });
        }
    };
    let mut along = config.intercept_step_m;
    while along <= prediction.ahead_m + 1e-6 && found.intercepts.len() < k {
        let Some(at) = point_along(&prediction.ahead, along) else {
            break;
        };
        try_point(&mut found, at, along, "on the way ahead");
        along += config.intercept_step_m;
    }
    let mut handoffs: Vec<_> = prediction
        .handoffs
        .iter()
        .filter(|h| !h.on_way_ahead || h.distance_m > prediction.ahead_m)
        .collect();
    handoffs.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
    for h in handoffs {
        if found.intercepts.len() >= k {
            break;
        }
        let place = format!("where camera {} will see it", h.camera_id);
        try_point(&mut found, h.at, h.distance_m, &place);
    }
    if found.intercepts.len() < k {
        found.shortfall = Some(format!(
            "{} of {k} units can get ahead of the target within {:.0} m of the way ahead or at its {} handoff cameras ({} points tried)",
            found.intercepts.len(),
            prediction.ahead_m,
            prediction.handoffs.len(),
            found.points_tried
        ));
    }
    found
}
