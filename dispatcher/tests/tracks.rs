//! A suspect followed on the real Helsinki streets and cameras: the handoff
//! list names first the camera that an independent search (a Dijkstra by
//! metres written here, every reachable street sampled each metre, each
//! camera's sector tested by plain trigonometry) finds first, at the right
//! distance, and a suspect walking on there appears in it within the
//! predicted window; an intercept sends a unit that, by a plain Dijkstra of
//! its own, gets to the point before the target can; the order carries the
//! intercept point.

mod common;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use common::{graph, independent_eta_s, mapped_cameras, network};
use patrol_dispatcher::{
    Actor, Camera, DispatchRequest, Dispatcher, DispatcherConfig, InterceptQuery, LonLat,
    NewSighting, NewTrack, Ping, TrackConfig, UnitKind, UnitProfile,
};
use patrol_roads::osm::MappedCamera;
use patrol_roads::{Metric, Profile, RoadGraph};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const NOW: i64 = 1_800_000_000_000;
const FOOT: Metric = Metric::normal(Profile::Foot);
/// The suspect: 30 m in 20 s.
const SPEED: f64 = 1.5;

fn op() -> Actor {
    Actor::new("olga", "operator").with_node("node-a")
}

/// The fixed cameras of the map (PTZ heads would need turning rules).
fn fixed_cameras() -> Vec<&'static MappedCamera> {
    mapped_cameras().iter().filter(|c| !c.ptz).collect()
}

fn config() -> TrackConfig {
    TrackConfig {
        // exact sights: a camera sees a street only where its view is
        corridor_m: 0.5,
        ..TrackConfig::default()
    }
}

fn core() -> Dispatcher {
    let mut d = Dispatcher::new(DispatcherConfig {
        network: Some(network()),
        tracks: config(),
        ..Default::default()
    });
    for c in fixed_cameras() {
        d.register_camera(Camera {
            id: c.id.clone(),
            name: c.name.clone(),
            at: c.position,
            mount_height_m: c.mount_height_m,
            heading_deg: c.heading_deg,
            fov_deg: c.fov_deg,
            range_m: c.range_m,
            ptz: false,
            vertical_fov_deg: None,
            ptz_head: None,
            last_seen: None,
        })
        .unwrap();
    }
    d
}

/// Whether the camera's sector holds `p`: within its range and within half
/// its field of view of its heading, by haversine distance and the
/// spherical initial bearing (written out here, not the project's).
fn sees(c: &MappedCamera, p: LonLat) -> bool {
    let (lat1, lat2) = (c.position.lat.to_radians(), p.lat.to_radians());
    let dlon = (p.lon - c.position.lon).to_radians();
    let dlat = lat2 - lat1;
    let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    let distance = 2.0 * 6_371_008.8 * a.sqrt().asin();
    if distance > c.range_m {
        return false;
    }
    if c.fov_deg >= 360.0 || distance < 1e-6 {
        return true;
    }
    let y = dlon.sin() * lat2.cos();
    let x = lat1.cos() * lat2.sin() - lat1.sin() * lat2.cos() * dlon.cos();
    let bearing = y.atan2(x).to_degrees().rem_euclid(360.0);
    let off = (bearing - c.heading_deg + 540.0).rem_euclid(360.0) - 180.0;
    off.abs() <= c.fov_deg / 2.0
}

/// For each fixed camera near `start`, the fewest metres over the foot
/// network from `start` (metres `start_m` along `edge`, leaving along
/// `edge`) to a point it sees, within `max_m`: a Dijkstra by metres, then
/// every reachable edge sampled each metre. (camera index, metres, point).
fn first_sights(g: &RoadGraph, edge: u32, start_m: f64, max_m: f64) -> Vec<(usize, f64, LonLat)> {
    let start = g.point_along(edge, start_m);
    let cameras = fixed_cameras();
    let near: Vec<usize> = (0..cameras.len())
        .filter(|&i| cameras[i].position.distance_m(&start) <= max_m + cameras[i].range_m + 10.0)
        .collect();
    let mut dist = vec![f64::INFINITY; g.node_count()];
    let mut heap = BinaryHeap::new();
    // (edge, from metres on it, metres from the start at `from`)
    let mut parts = vec![(edge, start_m, 0.0)];
    let first = g.edge_length_m(edge) - start_m;
    dist[g.edge_head(edge) as usize] = first;
    heap.push(Reverse(((first * 1000.0) as u64, g.edge_head(edge))));
    while let Some(Reverse((_, v))) = heap.pop() {
        let d = dist[v as usize];
        if d > max_m {
            continue;
        }
        for e in g.out_edges(v) {
            if !g.is_usable(e, FOOT) {
                continue;
            }
            parts.push((e, 0.0, d));
            let h = g.edge_head(e);
            let nd = d + g.edge_length_m(e);
            if nd < dist[h as usize] {
                dist[h as usize] = nd;
                heap.push(Reverse(((nd * 1000.0) as u64, h)));
            }
        }
    }
    let mut best: Vec<Option<(f64, LonLat)>> = vec![None; cameras.len()];
    for (e, from, at_m) in parts {
        let len = g.edge_length_m(e);
        let mut s = 0.0;
        while from + s <= len && at_m + s <= max_m {
            let p = g.point_along(e, from + s);
            for &i in &near {
                if best[i].is_some_and(|(d, _)| d <= at_m + s) {
                    continue;
                }
                if sees(cameras[i], p) {
                    best[i] = Some((at_m + s, p));
                }
            }
            s += 1.0;
        }
    }
    let mut found: Vec<(usize, f64, LonLat)> = best
        .into_iter()
        .enumerate()
        .filter_map(|(i, b)| b.map(|(d, p)| (i, d, p)))
        .collect();
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    found
}

/// Foot edges at least 80 m long, in a seeded random order.
fn long_foot_edges(g: &RoadGraph, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut edges: Vec<u32> = (0..g.edge_count() as u32)
        .filter(|&e| g.is_usable(e, FOOT) && g.edge_length_m(e) >= 80.0)
        .collect();
    for i in (1..edges.len()).rev() {
        edges.swap(i, rng.random_range(0..=i));
    }
    edges
}

/// Starts a track with two sightings 30 m apart along `edge` (10 m and 40 m
/// from its tail, 20 s apart), so the suspect heads along `edge`.
fn follow_along(d: &mut Dispatcher, g: &RoadGraph, edge: u32) -> patrol_dispatcher::Track {
    let sighting = |m: f64, t: i64| NewSighting {
        time: Some(t),
        at: Some(g.point_along(edge, m)),
        camera_id: None,
        note: String::new(),
    };
    let track = d
        .start_track(
            NewTrack {
                label: "man in a red jacket".into(),
                mode: UnitKind::Foot,
                incident_id: None,
                priority: Some(2),
                sighting: sighting(10.0, NOW - 20_000),
                request_id: None,
            },
            &op(),
            NOW - 20_000,
        )
        .unwrap();
    d.add_sighting(&track.id, &sighting(40.0, NOW), &op(), NOW)
        .unwrap()
}

#[test]
fn the_first_handoff_camera_is_the_first_the_suspect_can_reach_and_it_appears_there_in_its_window()
{
    let g = graph();
    let cameras = fixed_cameras();
    let tolerance = config().speed_tolerance;
    let max_m = SPEED * (1.0 + tolerance) * config().horizon_s;
    let mut checked = 0;
    for edge in long_foot_edges(&g, 7) {
        // A point 40 m along the edge must snap back onto it (no other
        // street on top of it) for the direction to be the edge's.
        let on = network().snap(g.point_along(edge, 40.0), FOOT).unwrap();
        if on.edge != edge && on.edge != g.twin(edge) {
            continue;
        }
        let truth = first_sights(&g, edge, 40.0, max_m);
        let Some(&(first, first_m, first_at)) = truth.first() else {
            continue;
        };
        // A clear first: the runner-up is more than 3 m farther.
        if truth.get(1).is_some_and(|&(_, m, _)| m - first_m < 3.0) {
            continue;
        }
        let mut d = core();
        let track = follow_along(&mut d, &g, edge);
        let p = track.prediction.as_ref().unwrap();
        assert!(p.speed_observed);
        assert!((p.speed_mps - SPEED).abs() < 0.05, "{}", p.speed_mps);
        let h = p
            .handoffs
            .first()
            .unwrap_or_else(|| panic!("edge {edge}: no handoff, truth {truth:?}"));
        assert_eq!(
            h.camera_id, cameras[first].id,
            "edge {edge}: handoff {:?}, independent first {} at {first_m:.1} m",
            p.handoffs, cameras[first].id
        );
        assert!(
            (h.distance_m - first_m).abs() <= 2.0,
            "edge {edge}: {} m vs {first_m} m",
            h.distance_m
        );
        // The suspect walks on at its speed and comes into the camera's
        // view at `first_at` (seen by the sector test) at this time:
        assert!(sees(cameras[first], first_at));
        let arrives = NOW + (first_m / SPEED * 1000.0) as i64;
        assert!(
            h.window_start <= arrives && arrives <= h.window_end,
            "edge {edge}: at {arrives}, window {}..{}",
            h.window_start,
            h.window_end
        );
        assert!(
            (h.expected - arrives).abs() <= 2_000,
            "{} vs {arrives}",
            h.expected
        );
        checked += 1;
        if checked == 4 {
            break;
        }
    }
    assert_eq!(checked, 4, "found four streets with a camera ahead");
}

#[test]
fn an_intercept_unit_gets_to_the_point_before_the_target_can_and_is_sent_there() {
    let g = graph();
    let net = network();
    let cfg = config();
    let edge = long_foot_edges(&g, 3)
        .into_iter()
        .find(|&e| {
            let on = net.snap(g.point_along(e, 40.0), FOOT).unwrap();
            on.edge == e || on.edge == g.twin(e)
        })
        .unwrap();
    let mut d = core();
    let track = follow_along(&mut d, &g, edge);
    let p = track.prediction.clone().unwrap();
    assert!(p.ahead_m > 200.0, "{}", p.ahead_m);
    // Twelve cars scattered within 1.5 km of the suspect.
    let mut rng = StdRng::seed_from_u64(5);
    let centre = p.from;
    let mut units = Vec::new();
    for i in 0..12 {
        let at = centre.destination(
            rng.random::<f64>() * 360.0,
            200.0 + rng.random::<f64>() * 1300.0,
        );
        let id = format!("car-{i}");
        d.register_unit(
            UnitProfile {
                id: id.clone(),
                call_sign: id.clone(),
                kind: UnitKind::Car,
                capabilities: vec![],
            },
            NOW,
        )
        .unwrap();
        d.apply_ping(
            &Ping {
                unit_id: &id,
                time: NOW - 1_000,
                at,
                speed_mps: None,
                heading_deg: None,
                accuracy_m: None,
            },
            NOW,
        )
        .unwrap();
        units.push((id, at));
    }
    let found = d
        .recommend_intercepts(
            &track.id,
            &InterceptQuery {
                k: 2,
                kinds: vec![],
                priority: None,
                include_routes: true,
            },
            NOW,
        )
        .unwrap();
    let first = found.intercepts.first().expect("some car can get ahead");
    // The target's earliest time there, from the way ahead measured here.
    let mut walked = 0.0;
    let mut along_to = f64::NAN;
    for w in p.ahead.windows(2) {
        let leg = w[0].distance_m(&w[1]);
        let q = w[0].distance_m(&first.at);
        if q + first.at.distance_m(&w[1]) <= leg + 0.01 {
            along_to = walked + q;
            break;
        }
        walked += leg;
    }
    assert!(
        (along_to - first.along_m).abs() < 0.5,
        "{along_to} vs {}",
        first.along_m
    );
    let target_earliest = NOW as f64 + along_to / (SPEED * (1.0 + cfg.speed_tolerance)) * 1000.0;
    let unit_at = units
        .iter()
        .find(|u| u.0 == first.unit.profile.id)
        .unwrap()
        .1;
    let eta = independent_eta_s(&net, UnitKind::Car, unit_at, first.at);
    assert!((eta - first.eta_s).abs() < 1.0, "{eta} vs {}", first.eta_s);
    assert!(
        NOW as f64 + (eta + cfg.intercept_margin_s) * 1000.0 <= target_earliest + 1.0,
        "the unit is there {eta:.1} s from now; the target at the earliest {:.1} s",
        (target_earliest - NOW as f64) / 1000.0
    );
    // No car could have got ahead of the target at an earlier point tried.
    let mut earlier = cfg.intercept_step_m;
    while earlier < first.along_m - 1.0 {
        let mut at = None;
        let mut walked = 0.0;
        for w in p.ahead.windows(2) {
            let leg = w[0].distance_m(&w[1]);
            if walked + leg >= earlier {
                at = Some(w[0].lerp(w[1], (earlier - walked) / leg));
                break;
            }
            walked += leg;
        }
        let at = at.unwrap();
        let earliest = earlier / (SPEED * (1.0 + cfg.speed_tolerance));
        for (id, from) in &units {
            let eta = independent_eta_s(&net, UnitKind::Car, *from, at);
            assert!(
                eta + cfg.intercept_margin_s > earliest - 1.0,
                "{id} could have been at {earlier} m ahead in {eta:.1} s (target {earliest:.1} s)"
            );
        }
        earlier += cfg.intercept_step_m;
    }
    // Sent there: the order goes to the intercept point.
    let (_, orders) = d
        .dispatch(
            &DispatchRequest {
                incident_id: track.incident_id.clone(),
                unit_ids: vec![first.unit.profile.id.clone()],
                note: "get ahead of him".into(),
                request_id: None,
                intercept: Some(first.at),
            },
            &op(),
            NOW,
        )
        .unwrap();
    assert!(orders[0].intercept);
    assert_eq!(orders[0].location, first.at);
    assert!(orders[0].route.last().unwrap().distance_m(&first.at) < 1.0);
    assert!((orders[0].eta_s.unwrap() - eta).abs() < 1.0);
}

#[test]
fn sightings_are_checked_and_a_closed_incident_closes_its_track() {
    let g = graph();
    let edge = long_foot_edges(&g, 1)[0];
    let mut d = core();
    let track = follow_along(&mut d, &g, edge);
    let earlier = NewSighting {
        time: Some(NOW - 60_000),
        at: Some(g.point_along(edge, 50.0)),
        camera_id: None,
        note: String::new(),
    };
    let err = d.add_sighting(&track.id, &earlier, &op(), NOW).unwrap_err();
    assert!(err.to_string().contains("sighting.time_unix_ms"), "{err}");
    let unknown_camera = NewSighting {
        time: None,
        at: None,
        camera_id: Some("no-such-camera".into()),
        note: String::new(),
    };
    let err = d
        .add_sighting(&track.id, &unknown_camera, &op(), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("no-such-camera"), "{err}");
    assert_eq!(d.track(&track.id).unwrap().sightings.len(), 2);
    let incident = d.incident(&track.incident_id).unwrap();
    assert_eq!(incident.kind, "track");
    assert!(
        incident
            .audit
            .iter()
            .any(|a| a.action == "track_started" && a.actor.identity == "olga")
    );
    d.take_events();
    d.update_incident(
        &patrol_dispatcher::IncidentUpdate {
            id: track.incident_id.clone(),
            status: patrol_dispatcher::IncidentStatus::Closed,
            note: String::new(),
            request_id: None,
        },
        &op(),
        NOW + 1_000,
    )
    .unwrap();
    let closed = d.track(&track.id).unwrap();
    assert!(!closed.is_open());
    assert!(d.tracks(false).is_empty());
    assert!(d.take_events().iter().any(|e| matches!(e, patrol_dispatcher::Event::Track(t) if t.id == track.id && t.closed.is_some())));
    // And a checkpoint keeps tracks.
    let state = d.export_all();
    let restored = Dispatcher::restore(d.config().clone(), state).unwrap();
    assert_eq!(restored.tracks(true), d.tracks(true));
}
