//! The profiles and searches on a hand-built town of six nodes (no file).
//!
//! ```text
//!  D(0,200) ----------- C(100,200) ==bus only== F(200,200)
//!   |                    |                       |
//!   |                    |                    cycleway
//!   |                    |                       |
//!  A(0,0) --one-way--> B(100,0) ~~~steps~~~~~~ E(200,0)
//! ```
//! Metres east and north of (24.94, 60.17); every street is a residential
//! street unless drawn otherwise. C-F is `access=no` with `bus=yes` and
//! `bicycle=yes`.

use patrol_roads::{
    Access, GraphBuilder, LocalProjection, LonLat, Metric, Oneway, Profile, ProfileConfig,
    ReverseSearch, RoadGraph, Route, Snap, WayAttributes, WayClass,
};

fn at(x: f64, y: f64) -> LonLat {
    LocalProjection::new(LonLat::new(24.94, 60.17)).to_lonlat([x, y])
}

const A: (i64, f64, f64) = (1, 0.0, 0.0);
const B: (i64, f64, f64) = (2, 100.0, 0.0);
const C: (i64, f64, f64) = (3, 100.0, 200.0);
const D: (i64, f64, f64) = (4, 0.0, 200.0);
const E: (i64, f64, f64) = (5, 200.0, 0.0);
const F: (i64, f64, f64) = (6, 200.0, 200.0);

fn way(b: &mut GraphBuilder, nodes: &[(i64, f64, f64)], attrs: WayAttributes) {
    b.add_way(nodes.iter().map(|&(id, x, y)| (id, at(x, y))), attrs);
}

fn town_with(bus_way: WayAttributes) -> RoadGraph {
    let residential = || WayAttributes::new(WayClass::Residential);
    let mut b = GraphBuilder::new(ProfileConfig::default());
    way(
        &mut b,
        &[A, B],
        WayAttributes {
            oneway: Oneway::Forward,
            ..residential()
        },
    );
    way(&mut b, &[B, C], residential());
    way(&mut b, &[C, D], residential());
    way(&mut b, &[D, A], residential());
    way(&mut b, &[B, E], WayAttributes::new(WayClass::Steps));
    way(&mut b, &[E, F], WayAttributes::new(WayClass::Cycleway));
    way(&mut b, &[C, F], bus_way);
    b.build()
}

fn bus_only() -> WayAttributes {
    WayAttributes {
        access: Some(Access::No),
        bus: Some(Access::Yes),
        bicycle: Some(Access::Yes),
        ..WayAttributes::new(WayClass::Residential)
    }
}

fn town() -> RoadGraph {
    town_with(bus_only())
}

const CAR: Metric = Metric::normal(Profile::Car);
const FOOT: Metric = Metric::normal(Profile::Foot);
const BIKE: Metric = Metric::normal(Profile::EBike);

fn snap(g: &RoadGraph, metric: Metric, x: f64, y: f64) -> Snap {
    g.snap(at(x, y), metric, 5.0)
        .unwrap_or_else(|| panic!("({x}, {y}) is on the {metric:?} network"))
}

fn route(g: &RoadGraph, metric: Metric, from: (f64, f64), to: (f64, f64)) -> Route {
    let (a, b) = (snap(g, metric, from.0, from.1), snap(g, metric, to.0, to.1));
    let r = g.route(metric, &a, &b).expect("reachable");
    // The geometry runs from one snapped point to the other and is as long as
    // the route says.
    assert!(r.geometry[0].distance_m(&a.point) < 1e-6, "{r:?}");
    assert!(
        r.geometry.last().unwrap().distance_m(&b.point) < 1e-6,
        "{r:?}"
    );
    let walked: f64 = r.geometry.windows(2).map(|w| w[0].distance_m(&w[1])).sum();
    assert!((walked - r.metres).abs() < 0.01, "{walked} vs {}", r.metres);
    // The many-to-one search agrees with it.
    let mut search = ReverseSearch::new(g, metric, &b);
    let via_reverse = search.route_from(&a).expect("reachable backwards too");
    assert_eq!(via_reverse.seconds, r.seconds);
    assert!((via_reverse.metres - r.metres).abs() < 1e-6);
    r
}

fn uses_class(g: &RoadGraph, r: &Route, class: WayClass) -> bool {
    r.edges.iter().any(|&e| g.edge_attributes(e).class == class)
}

#[test]
fn snapping_finds_the_nearest_usable_edge() {
    let g = town();
    assert_eq!(g.node_count(), 6);
    assert_eq!(g.edge_count(), 14);
    // 3 m north of the one-way A->B, 40 m along it
    let s = g.snap(at(40.0, 3.0), CAR, 10.0).unwrap();
    assert!((s.distance_m - 3.0).abs() < 0.01, "{s:?}");
    assert!((s.offset_m - 40.0).abs() < 0.01, "{s:?}");
    assert!((s.fraction - 0.4).abs() < 1e-4, "{s:?}");
    assert!(s.point.distance_m(&at(40.0, 0.0)) < 0.01);
    assert!(
        g.is_usable(s.edge, CAR),
        "the car-usable direction of a one-way"
    );
    assert!(
        g.snap(at(40.0, 30.0), CAR, 10.0).is_none(),
        "off the network"
    );
    // Beside the steps: a car snaps to the nearest street instead.
    let car = g.snap(at(150.0, 1.0), CAR, 100.0).unwrap();
    assert_ne!(g.edge_attributes(car.edge).class, WayClass::Steps);
    assert!(car.distance_m > 40.0);
    let foot = g.snap(at(150.0, 1.0), FOOT, 100.0).unwrap();
    assert_eq!(g.edge_attributes(foot.edge).class, WayClass::Steps);
}

#[test]
fn a_one_way_street_the_car_cannot_take_back_but_foot_can() {
    let g = town();
    // from 90 m along A->B back to 10 m north of A
    let car = route(&g, CAR, (90.0, 0.0), (0.0, 10.0));
    assert!(
        (car.metres - 500.0).abs() < 0.5,
        "around the block: {car:?}"
    );
    let foot = route(&g, FOOT, (90.0, 0.0), (0.0, 10.0));
    assert!((foot.metres - 100.0).abs() < 0.5, "straight back: {foot:?}");
}

#[test]
fn foot_takes_the_steps_with_a_penalty_the_ebike_goes_round() {
    let g = town();
    let foot = route(&g, FOOT, (100.0, 10.0), (200.0, 10.0));
    assert!(uses_class(&g, &foot, WayClass::Steps));
    assert!((foot.metres - 120.0).abs() < 0.5, "{foot:?}");
    let walk_s = foot.metres / (5.0 / 3.6);
    assert!(
        (foot.seconds - (walk_s + 5.0)).abs() < 0.01,
        "{} vs {walk_s} + 5 s",
        foot.seconds
    );

    let bike = route(&g, BIKE, (100.0, 10.0), (200.0, 10.0));
    assert!(!uses_class(&g, &bike, WayClass::Steps));
    assert!((bike.metres - 480.0).abs() < 0.5, "via C and F: {bike:?}");
}

#[test]
fn the_police_car_uses_a_bus_only_street() {
    let g = town();
    let car = route(&g, CAR, (100.0, 100.0), (150.0, 200.0));
    assert!((car.metres - 150.0).abs() < 0.5, "{car:?}");
    let last = *car.edges.last().unwrap();
    assert_eq!(g.edge_attributes(last).bus, Some(Access::Yes));

    // The same street without its bus tag is closed to the car.
    let closed = town_with(WayAttributes {
        bus: None,
        ..bus_only()
    });
    assert!(closed.snap(at(150.0, 200.0), CAR, 30.0).is_none());
    assert!(closed.snap(at(150.0, 200.0), BIKE, 1.0).is_some());
}

#[test]
fn emergency_mode_drives_against_a_one_way() {
    let g = town();
    let normal = route(&g, CAR, (90.0, 0.0), (0.0, 10.0));
    let emergency = route(
        &g,
        Metric::emergency(Profile::Car),
        (90.0, 0.0),
        (0.0, 10.0),
    );
    assert!((emergency.metres - 100.0).abs() < 0.5, "{emergency:?}");
    assert!(emergency.seconds < normal.seconds);
    // 90 m against the flow at 10 km/h, 10 m with it at 25 * 1.25 km/h
    let expected = 90.0 / (10.0 / 3.6) + 10.0 / (31.25 / 3.6);
    assert!(
        (emergency.seconds - expected).abs() < 0.01,
        "{} vs {expected}",
        emergency.seconds
    );
    let against = emergency.edges[0];
    assert!(!g.is_usable(against, CAR) && g.is_usable(against, Metric::emergency(Profile::Car)));
}

#[test]
fn source_and_target_on_the_same_edge() {
    let g = town();
    // A two-way street, either way along it.
    let up = route(&g, CAR, (100.0, 20.0), (100.0, 150.0));
    let down = route(&g, CAR, (100.0, 150.0), (100.0, 20.0));
    assert!((up.metres - 130.0).abs() < 0.01 && (down.metres - 130.0).abs() < 0.01);
    assert_eq!(up.edges.len(), 1);
    assert_eq!(up.seconds, down.seconds);
    // The one-way: forward is direct, backward goes round the block.
    let forward = route(&g, CAR, (20.0, 0.0), (80.0, 0.0));
    assert!((forward.metres - 60.0).abs() < 0.01, "{forward:?}");
    let backward = route(&g, CAR, (80.0, 0.0), (20.0, 0.0));
    assert!((backward.metres - 540.0).abs() < 0.5, "{backward:?}");
    assert_eq!(
        backward.edges.first(),
        backward.edges.last(),
        "leaves and comes back on A->B"
    );
    // The same point: nothing to travel.
    let here = snap(&g, CAR, 50.0, 0.0);
    let mut search = ReverseSearch::new(&g, CAR, &here);
    let eta = search.eta_from(&here).unwrap();
    assert_eq!((eta.seconds, eta.metres), (0.0, 0.0));
}

#[test]
fn lazy_many_to_one_equals_one_to_one_for_every_source() {
    let g = town();
    for metric in Metric::DISTINCT {
        let sources: Vec<Snap> = (0..g.edge_count() as u32)
            .filter(|&e| g.is_usable(e, metric))
            .flat_map(|e| [0.0, 0.3, 0.5, 1.0].map(|f| g.snap_on_edge(e, f)))
            .collect();
        for target in &sources {
            let mut search = ReverseSearch::new(&g, metric, target);
            // backwards order, so later answers need less new work
            for source in sources.iter().rev() {
                let lazy = search.eta_from(source);
                let direct = g.route(metric, source, target);
                match (lazy, direct) {
                    (Some(l), Some(d)) => {
                        assert_eq!(l.seconds, d.seconds, "{metric:?} {source:?} -> {target:?}");
                        assert!((l.metres - d.metres).abs() < 1e-6 || l.seconds == d.seconds);
                    }
                    (None, None) => {}
                    other => panic!("{metric:?} {source:?} -> {target:?}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn the_search_settles_only_what_it_needs() {
    let g = town();
    let target = snap(&g, FOOT, 0.0, 100.0);
    let mut search = ReverseSearch::new(&g, FOOT, &target);
    // on the same street: nothing to settle
    let near = snap(&g, FOOT, 0.0, 90.0);
    assert!((search.eta_from(&near).unwrap().metres - 10.0).abs() < 0.01);
    assert_eq!(search.settled_nodes(), 0);
    let before = search.frontier_seconds();
    let far = snap(&g, FOOT, 200.0, 100.0);
    let eta = search.eta_from(&far).unwrap();
    assert!(search.settled_nodes() > 0);
    assert!(search.frontier_seconds() >= before);
    // everything settled below the frontier covers this answer
    assert!(search.frontier_seconds() + 200.0 >= eta.seconds);
    // The lower bound from the fastest speed holds.
    let straight = far.point.distance_m(&target.point);
    assert!(eta.seconds >= straight / g.max_speed_mps(FOOT) - 1e-9);
}

#[test]
fn a_limited_question_settles_less_and_answers_only_below_the_limit() {
    let g = town();
    // The car is 10 m from A on A->B but the target is just behind it, 10 m
    // north of A: 500 m round the block.
    let target = snap(&g, CAR, 0.0, 10.0);
    let car = snap(&g, CAR, 10.0, 0.0);
    let mut limited = ReverseSearch::new(&g, CAR, &target);
    assert_eq!(limited.eta_from_within(&car, 5.0), None, "not within 5 s");
    let settled_limited = limited.settled_nodes();
    let mut full = ReverseSearch::new(&g, CAR, &target);
    let eta = full.eta_from(&car).unwrap();
    assert!(eta.seconds > 60.0, "{eta:?}");
    assert!(
        settled_limited < full.settled_nodes(),
        "{settled_limited} vs {}",
        full.settled_nodes()
    );
    // Asked again with a limit above the answer, the same search gives it.
    assert_eq!(
        limited.eta_from_within(&car, eta.seconds + 0.001),
        Some(eta)
    );
    assert_eq!(
        limited.eta_from_within(&car, eta.seconds),
        None,
        "strictly below"
    );
}

/// The metres of the town's edge parts that `reach` returned, per undirected
/// street (by its two end nodes), as the union of the intervals travelled.
fn reached_metres(g: &RoadGraph, reach: &patrol_roads::Reach) -> f64 {
    // Mark each street's metres on a 1 cm grid: parts overlap when a street
    // is reached from both ends.
    use std::collections::HashMap;
    let mut marks: HashMap<(u32, u32), Vec<bool>> = HashMap::new();
    for p in &reach.pieces {
        let (tail, head) = (g.edge_tail(p.edge), g.edge_head(p.edge));
        let len = g.edge_length_m(p.edge);
        let (key, from, to) = if tail < head {
            ((tail, head), p.from_m, p.to_m)
        } else {
            ((head, tail), len - p.to_m, len - p.from_m)
        };
        let cells = marks
            .entry(key)
            .or_insert_with(|| vec![false; (len * 100.0).ceil() as usize]);
        for c in (from * 100.0).round() as usize..(to * 100.0).round() as usize {
            if let Some(m) = cells.get_mut(c) {
                *m = true;
            }
        }
    }
    marks.values().flatten().filter(|&&m| m).count() as f64 / 100.0
}

#[test]
fn reach_covers_what_lies_within_the_distance_and_only_ahead_when_asked() {
    let g = town();
    // On foot from the middle of A-B (50, 0), 120 m every way: 50 m to A and
    // 70 m up A-D; 50 m to B, then 70 m up B-C and 70 m of the steps B-E.
    let start = snap(&g, FOOT, 50.0, 0.0);
    let all = g.reach(FOOT, &start, None, 120.0);
    let metres = reached_metres(&g, &all);
    assert!((metres - (100.0 + 70.0 * 3.0)).abs() < 0.5, "{metres}");
    for p in &all.pieces {
        assert!(p.start_m + (p.to_m - p.from_m) <= 120.0 + 1e-6, "{p:?}");
    }
    // Heading east (towards B) only: the 50 m to B, B-C 70 m, B-E 70 m, and
    // 70 m back from B towards A (turning back at B): A-B from 30 m to 100 m.
    let east = [start.edge, g.twin(start.edge)]
        .into_iter()
        .find(|&e| g.node(g.edge_head(e)).distance_m(&at(100.0, 0.0)) < 1.0)
        .unwrap();
    let ahead_only = g.reach(FOOT, &start, Some(east), 120.0);
    let metres = reached_metres(&g, &ahead_only);
    assert!((metres - (70.0 + 70.0 * 2.0)).abs() < 0.5, "{metres}");
    // Nothing leaves the start westwards.
    assert!(
        ahead_only
            .pieces
            .iter()
            .all(|p| p.start_m > 0.0 || p.edge == east),
        "{:?}",
        ahead_only.pieces
    );
    // A car may not drive A-B backwards: from (50, 0) it reaches only B's
    // side however far it may go.
    let car_start = snap(&g, CAR, 50.0, 0.0);
    let car = g.reach(CAR, &car_start, None, 60.0);
    let metres = reached_metres(&g, &car);
    assert!((metres - (50.0 + 10.0)).abs() < 0.5, "{metres}");
}

#[test]
fn ahead_goes_straight_on_at_junctions_and_stops_at_the_distance() {
    let g = town();
    // From (0, 150) heading south to A; at A the only way on (not back) is
    // east to B; at B straight on is the steps to E (east), not C (north).
    let start = snap(&g, FOOT, 0.0, 150.0);
    let south = [start.edge, g.twin(start.edge)]
        .into_iter()
        .find(|&e| g.node(g.edge_head(e)).distance_m(&at(0.0, 0.0)) < 1.0)
        .unwrap();
    let a = g.ahead(FOOT, &start, Some(south), 300.0);
    assert!((a.metres - 300.0).abs() < 1e-6, "{}", a.metres);
    let end = *a.geometry.last().unwrap();
    // 150 m to A, 100 m to B, 50 m along the steps towards E.
    assert!(end.distance_m(&at(150.0, 0.0)) < 0.5, "{end:?}");
    let walked: f64 = a.geometry.windows(2).map(|w| w[0].distance_m(&w[1])).sum();
    assert!((walked - 300.0).abs() < 0.5, "{walked}");
}
