//! From sightings to a [`Prediction`]: speed, heading, reachable ground, the
//! way ahead and the handoff list.

use std::collections::HashMap;

use patrol_roads::{EdgeId, Metric, Snap};

use super::{Handoff, Prediction, Sighting, Track, TrackConfig};
use crate::Millis;
use crate::cameras::{CameraIndex, PathSight};
use crate::geometry::LonLat;
use crate::network::{EtaMethod, Network, profile_of};
use crate::units::UnitKind;

/// Sightings the path so far is drawn through, at most.
const PATH_SIGHTINGS: usize = 10;
/// Slowest speed a moving target is credited with, m/s (a standing target
/// still has somewhere to go next).
const MIN_SPEED_MPS: f64 = 0.3;

/// The usual speed of a target moving this way, m/s, when only one
/// sighting says nothing about it.
fn usual_speed_mps(mode: UnitKind) -> f64 {
    match mode {
        UnitKind::Foot => 1.4,
        UnitKind::EBike => 5.0,
        UnitKind::Car => 8.3,
        UnitKind::Motorcycle => 9.0,
    }
}

/// The fastest a target moving this way is believed to go, m/s: an
/// observed speed above it is a bad sighting, not a fast target.
fn top_speed_mps(mode: UnitKind) -> f64 {
    match mode {
        UnitKind::Foot => 9.0,
        UnitKind::EBike => 14.0,
        UnitKind::Car => 45.0,
        UnitKind::Motorcycle => 50.0,
    }
}

/// The target's speed from the way between its last two sightings: the
/// metres covered over the seconds between them, within the mode's range;
/// `None` with a single sighting or two at the same instant.
fn observed_speed(
    previous: &Sighting,
    last: &Sighting,
    metres: f64,
    mode: UnitKind,
) -> Option<f64> {
    let seconds = (last.time - previous.time) as f64 / 1000.0;
    (seconds > 0.0).then(|| (metres / seconds).clamp(MIN_SPEED_MPS, top_speed_mps(mode)))
}

/// Where the target is going: see [`Prediction`]. With a network, over it
/// for the target's mode (a car follows a police car's access rules: no
/// better model of a civilian driver is loaded); without one, straight on
/// along the last heading, said in `method`.
pub fn predict(
    track: &Track,
    network: Option<&Network>,
    cameras: &CameraIndex,
    config: &TrackConfig,
    now: Millis,
) -> Prediction {
    let last = track.last();
    let recent = &track.sightings[track.sightings.len().saturating_sub(PATH_SIGHTINGS)..];
    let previous = recent.len().checked_sub(2).map(|i| &recent[i]);
    let metric = Metric::normal(profile_of(track.mode));
    let on_network = network.and_then(|n| n.snap(last.at, metric).map(|s| (n.graph(), s)));
    let mut prediction = Prediction {
        made: now,
        from: last.at,
        from_time: last.time,
        speed_mps: usual_speed_mps(track.mode),
        speed_observed: false,
        heading_deg: None,
        path: Vec::new(),
        ahead: Vec::new(),
        ahead_m: 0.0,
        reachable_m: 0.0,
        handoffs: Vec::new(),
        method: EtaMethod::StraightLine,
    };
    let (fast, slow) = (1.0 + config.speed_tolerance, 1.0 - config.speed_tolerance);
    let last_camera = last.camera_id.as_deref();
    let Some((graph, at)) = on_network else {
        // Straight on along the heading between the last two sightings.
        prediction.path = recent.iter().map(|s| s.at).collect();
        if let Some(previous) = previous {
            let metres = previous.at.distance_m(&last.at);
            if let Some(speed) = observed_speed(previous, last, metres, track.mode) {
                prediction.speed_mps = speed;
                prediction.speed_observed = true;
            }
            if metres > 0.5 {
                prediction.heading_deg = Some(previous.at.bearing_deg(&last.at));
            }
        }
        if let Some(heading) = prediction.heading_deg {
            let length = (prediction.speed_mps * config.horizon_s).min(config.max_reach_m);
            prediction.ahead = vec![last.at, last.at.destination(heading, length)];
            prediction.ahead_m = length;
            let sights = cameras.along(
                &prediction.ahead,
                config.corridor_m,
                now,
                config.max_handoffs + 1,
            );
            let mut best = HashMap::new();
            for s in sights {
                note(&mut best, s, 0.0, last_camera);
            }
            prediction.handoffs = handoffs(best, &prediction, config, &HashMap::new(), fast, slow);
            for h in &mut prediction.handoffs {
                h.on_way_ahead = true;
            }
        }
        return prediction;
    };
    prediction.method = EtaMethod::Network;
    prediction.from = at.point;
    // The way so far, sighting to sighting; the last leg gives speed and
    // direction.
    let mut forward: Option<EdgeId> = None;
    let mut previous_snap: Option<Snap> = None;
    for (i, s) in recent.iter().enumerate() {
        let snap = if i + 1 == recent.len() {
            Some(at)
        } else {
            graph.snap(
                s.at,
                metric,
                network.map_or(50.0, |n| n.settings().max_snap_m),
            )
        };
        let Some(snap) = snap else {
            previous_snap = None;
            continue;
        };
        match previous_snap.and_then(|p| graph.route(metric, &p, &snap)) {
            Some(route) => {
                prediction.path.extend(route.geometry.iter().copied());
                if i + 1 == recent.len() {
                    forward = route
                        .edges
                        .last()
                        .copied()
                        .filter(|&e| e == at.edge || e == graph.twin(at.edge));
                    if let Some(previous) = previous
                        && let Some(speed) =
                            observed_speed(previous, last, route.metres, track.mode)
                    {
                        prediction.speed_mps = speed;
                        prediction.speed_observed = true;
                    }
                    prediction.heading_deg = last_bearing(&route.geometry);
                }
            }
            None => prediction.path.push(snap.point),
        }
        previous_snap = Some(snap);
    }
    prediction.path.dedup();
    let speed = prediction.speed_mps;
    let ahead = graph.ahead(
        metric,
        &at,
        forward,
        (speed * config.horizon_s).min(config.max_reach_m),
    );
    prediction.ahead_m = ahead.metres;
    prediction.ahead = ahead.geometry;
    // Which cameras the most likely way passes, and where.
    let on_way: HashMap<String, f64> = cameras
        .along(
            &prediction.ahead,
            config.corridor_m,
            now,
            crate::tracks::MAX_HANDOFFS,
        )
        .into_iter()
        .map(|s| (s.sight.camera_id, s.along_m))
        .collect();
    let max_m = (speed * fast * config.horizon_s).min(config.max_reach_m);
    let reach = graph.reach(metric, &at, forward, max_m);
    let mut best: HashMap<String, (f64, PathSight)> = HashMap::new();
    for piece in &reach.pieces {
        prediction.reachable_m += piece.to_m - piece.from_m;
        // Parts come in order of where they start: once enough cameras are
        // known nearer than this part's start, none here can rank before
        // them (the metres still count as reachable).
        let settled = best.values().filter(|(d, _)| *d <= piece.start_m).count();
        if settled >= config.max_handoffs || piece.to_m - piece.from_m <= 0.0 {
            continue;
        }
        let ground = graph.edge_part(piece.edge, piece.from_m, piece.to_m);
        for s in cameras.along(&ground, config.corridor_m, now, config.max_handoffs) {
            note(&mut best, s, piece.start_m, last_camera);
        }
    }
    prediction.handoffs = handoffs(best, &prediction, config, &on_way, fast, slow);
    prediction
}

/// Keeps the nearest sight of each camera (but never the camera that made
/// the last sighting: it is where the target was, not where it goes).
fn note(
    best: &mut HashMap<String, (f64, PathSight)>,
    sight: PathSight,
    start_m: f64,
    skip: Option<&str>,
) {
    if skip == Some(sight.sight.camera_id.as_str()) {
        return;
    }
    let d = start_m + sight.along_m;
    match best.get(&sight.sight.camera_id) {
        Some((old, _)) if *old <= d => {}
        _ => {
            best.insert(sight.sight.camera_id.clone(), (d, sight));
        }
    }
}

/// The handoff list from each camera's nearest sight: by distance (so by
/// expected arrival), then camera id; at most `max_handoffs`.
fn handoffs(
    best: HashMap<String, (f64, PathSight)>,
    prediction: &Prediction,
    config: &TrackConfig,
    on_way: &HashMap<String, f64>,
    fast: f64,
    slow: f64,
) -> Vec<Handoff> {
    let mut list: Vec<(f64, PathSight)> = best.into_values().collect();
    list.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| a.1.sight.camera_id.cmp(&b.1.sight.camera_id))
    });
    list.truncate(config.max_handoffs);
    let speed = prediction.speed_mps;
    let at_time =
        |metres: f64, v: f64| prediction.from_time + (metres / v * 1000.0).round() as Millis;
    list.into_iter()
        .map(|(distance_m, s)| Handoff {
            on_way_ahead: on_way.contains_key(&s.sight.camera_id),
            camera_id: s.sight.camera_id.clone(),
            at: s.at,
            distance_m,
            expected: at_time(distance_m, speed),
            window_start: at_time(distance_m, speed * fast),
            window_end: at_time(distance_m, speed * slow),
            sees_now: s.sight.sees_now,
            turn: s.sight.after_turn,
        })
        .collect()
}

/// The bearing of a polyline's last piece longer than half a metre.
fn last_bearing(points: &[LonLat]) -> Option<f64> {
    let end = *points.last()?;
    points
        .iter()
        .rev()
        .skip(1)
        .find(|p| p.distance_m(&end) > 0.5)
        .map(|p| p.bearing_deg(&end))
}
