//! The loader and the searches on the real extract of central Helsinki
//! (`data/helsinki.osm.pbf`, (c) OpenStreetMap contributors, ODbL 1.0).

use std::collections::{HashSet, VecDeque};
use std::sync::OnceLock;

use patrol_roads::osm::{self, HeadingSource, MapExtract};
use patrol_roads::{LonLat, Metric, Profile, ProfileConfig, ReverseSearch, RoadGraph, WayClass};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const MAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/helsinki.osm.pbf");

fn helsinki() -> &'static MapExtract {
    static EXTRACT: OnceLock<MapExtract> = OnceLock::new();
    EXTRACT.get_or_init(|| {
        osm::load(MAP, &ProfileConfig::default()).expect("the Helsinki extract loads")
    })
}

/// A random point on an edge `metric` may use.
fn random_point(g: &RoadGraph, metric: Metric, rng: &mut StdRng) -> LonLat {
    loop {
        let e = rng.random_range(0..g.edge_count() as u32);
        if g.is_usable(e, metric) {
            return g.point_along(e, rng.random_range(0.0..=g.edge_length_m(e)));
        }
    }
}

/// Nodes reached from `start` over usable edges, forwards or backwards.
fn reached(g: &RoadGraph, metric: Metric, start: u32, backward: bool) -> HashSet<u32> {
    let mut seen = HashSet::from([start]);
    let mut todo = VecDeque::from([start]);
    while let Some(v) = todo.pop_front() {
        let next: Vec<u32> = if backward {
            g.in_edges(v)
                .iter()
                .filter(|&&e| g.is_usable(e, metric))
                .map(|&e| g.edge_tail(e))
                .collect()
        } else {
            g.out_edges(v)
                .filter(|&e| g.is_usable(e, metric))
                .map(|e| g.edge_head(e))
                .collect()
        };
        for n in next {
            if seen.insert(n) {
                todo.push_back(n);
            }
        }
    }
    seen
}

#[test]
fn loads_every_mapped_camera() {
    let map = helsinki();
    // 221 nodes carry man_made=surveillance (camera or untyped) in this extract.
    assert_eq!(map.cameras.len(), 221);
    let ids: HashSet<_> = map.cameras.iter().map(|c| &c.id).collect();
    assert_eq!(ids.len(), map.cameras.len(), "camera ids are unique");
    assert_eq!(
        map.cameras.iter().filter(|c| c.ptz).count(),
        34 + 6,
        "34 revolving=yes, 6 camera:type=dome"
    );
    assert!(
        map.cameras
            .iter()
            .filter(|c| c.heading_source == HeadingSource::Relation)
            .count()
            > 100
    );
    let b = map.graph.bounds();
    for c in &map.cameras {
        assert!((0.0..360.0).contains(&c.heading_deg), "{c:?}");
        assert!(c.fov_deg > 0.0 && c.fov_deg <= 360.0, "{c:?}");
        assert!((30.0..=80.0).contains(&c.range_m), "{c:?}");
        assert!(c.mount_height_m > 0.0 && !c.name.is_empty(), "{c:?}");
        assert!(
            c.position.lon > b.west - 0.01 && c.position.lon < b.east + 0.01,
            "{c:?}"
        );
        assert!(
            c.position.lat > b.south - 0.01 && c.position.lat < b.north + 0.01,
            "{c:?}"
        );
    }
    let named_by_street = map
        .cameras
        .iter()
        .filter(|c| c.name.contains(" camera "))
        .count();
    assert!(
        named_by_street > 100,
        "{named_by_street} cameras named after their street"
    );
}

#[test]
fn street_names_are_known() {
    let map = helsinki();
    assert!(map.streets.len() > 50, "{}", map.streets.len());
    assert!(map.streets.iter().any(|s| &**s == "Aleksanterinkatu"));
    assert!(
        map.streets.windows(2).all(|w| w[0] < w[1]),
        "sorted, once each"
    );
    // Senate Square's south-east corner is on Aleksanterinkatu.
    let near = map
        .graph
        .street_near(LonLat::new(24.9526, 60.1690), 60.0)
        .map(|s| s.to_string());
    assert!(near.is_some(), "a named street within 60 m");
}

#[test]
fn each_profiles_network_is_one_strongly_connected_component_and_most_of_the_graph() {
    let g = &helsinki().graph;
    let n = g.node_count();
    assert!(n > 1000, "{n} nodes");
    let mut sizes = Vec::new();
    for metric in Metric::DISTINCT {
        let nodes: HashSet<u32> = (0..g.edge_count() as u32)
            .filter(|&e| g.is_usable(e, metric))
            .flat_map(|e| [g.edge_tail(e), g.edge_head(e)])
            .collect();
        let start = *nodes.iter().min().expect("every profile has a network");
        assert_eq!(
            reached(g, metric, start, false),
            nodes,
            "{metric:?}: all reachable"
        );
        assert_eq!(
            reached(g, metric, start, true),
            nodes,
            "{metric:?}: all reach back"
        );
        sizes.push((metric, nodes.len()));
    }
    let share = |p: Profile| {
        sizes
            .iter()
            .find(|(m, _)| *m == Metric::normal(p))
            .unwrap()
            .1 as f64
            / n as f64
    };
    assert!(
        share(Profile::Foot) > 0.9,
        "foot covers {:.2}",
        share(Profile::Foot)
    );
    assert!(
        share(Profile::Car) > 0.3,
        "car covers {:.2}",
        share(Profile::Car)
    );
    assert!(
        share(Profile::EBike) > 0.3,
        "e-bike covers {:.2}",
        share(Profile::EBike)
    );
    // Foot patrols have footways to walk; cars have one-way streets.
    let car = Metric::normal(Profile::Car);
    let foot = Metric::normal(Profile::Foot);
    let footways = (0..g.edge_count() as u32)
        .filter(|&e| {
            matches!(
                g.edge_attributes(e).class,
                WayClass::Footway | WayClass::Pedestrian
            )
        })
        .filter(|&e| g.is_usable(e, foot))
        .count();
    assert!(footways > 500, "{footways} footway edges");
    let one_way = (0..g.edge_count() as u32)
        .filter(|&e| g.is_usable(e, car) && !g.is_usable(g.twin(e), car))
        .count();
    assert!(one_way > 50, "{one_way} one-way car edges");
    let steps = (0..g.edge_count() as u32)
        .filter(|&e| g.edge_attributes(e).class == WayClass::Steps)
        .count();
    assert!(steps > 0, "the extract has steps");
}

#[test]
fn snapping_lands_within_a_few_metres_of_points_on_streets() {
    let g = &helsinki().graph;
    let mut rng = StdRng::seed_from_u64(5);
    for metric in Metric::DISTINCT {
        for _ in 0..200 {
            let on = random_point(g, metric, &mut rng);
            let s = g.snap(on, metric, 25.0).expect("on the network");
            assert!(s.distance_m < 0.05, "{metric:?} {on:?}: {s:?}");
            assert!(g.is_usable(s.edge, metric));
            // 3 m to one side: never farther than 3 m from some usable street.
            let beside = on.destination(rng.random_range(0.0..360.0), 3.0);
            let s = g.snap(beside, metric, 25.0).expect("near the network");
            assert!(s.distance_m <= 3.0 + 1e-6, "{metric:?}: {s:?}");
            assert!((beside.distance_m(&s.point) - s.distance_m).abs() < 1e-6);
            let along = g.point_along(s.edge, s.offset_m);
            assert!(
                along.distance_m(&s.point) < 0.05,
                "offset matches the point"
            );
        }
    }
    // A point in the sea south of the extract is off the network.
    let sea = LonLat::new(24.95, 60.14);
    assert!(g.snap(sea, Profile::Foot, 100.0).is_none());
}

#[test]
fn routes_exist_between_random_points_and_agree_both_ways() {
    let g = &helsinki().graph;
    let mut rng = StdRng::seed_from_u64(9);
    for metric in Metric::DISTINCT {
        let target_point = random_point(g, metric, &mut rng);
        let target = g.snap(target_point, metric, 5.0).unwrap();
        let mut search = ReverseSearch::new(g, metric, &target);
        for _ in 0..25 {
            let from = g
                .snap(random_point(g, metric, &mut rng), metric, 5.0)
                .unwrap();
            let route = g
                .route(metric, &from, &target)
                .expect("one strongly connected component");
            let eta = search
                .eta_from(&from)
                .expect("the same component backwards");
            assert_eq!(eta.seconds, route.seconds, "{metric:?}");
            let straight = from.point.distance_m(&target.point);
            assert!(
                route.metres >= straight - 0.01,
                "{} < {straight}",
                route.metres
            );
            assert!(route.seconds >= straight / g.max_speed_mps(metric) - 1e-6);
            let walked: f64 = route
                .geometry
                .windows(2)
                .map(|w| w[0].distance_m(&w[1]))
                .sum();
            assert!(
                (walked - route.metres).abs() < 0.1,
                "{walked} vs {}",
                route.metres
            );
            for pair in route.edges.windows(2) {
                assert_eq!(g.edge_head(pair[0]), g.edge_tail(pair[1]), "edges join");
            }
        }
    }
}

#[test]
fn loading_twice_gives_the_same_fingerprint() {
    let again = osm::load(MAP, &ProfileConfig::default()).unwrap();
    assert_eq!(again.graph.fingerprint(), helsinki().graph.fingerprint());
    assert_eq!(again.graph.fingerprint().len(), 32);
    let mut slower = ProfileConfig::default();
    slower.foot.walk_kmh = 4.0;
    let other = osm::load(MAP, &slower).unwrap();
    assert_ne!(other.graph.fingerprint(), again.graph.fingerprint());
    assert!(again.graph.memory_bytes() > 100_000);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = osm::load("/nonexistent/city.osm.pbf", &ProfileConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/city.osm.pbf"),
        "{err}"
    );
    let mut bad = ProfileConfig::default();
    bad.ebike.speed_kmh = -1.0;
    let err = osm::load(MAP, &bad).unwrap_err();
    assert!(err.to_string().contains("ebike.speed_kmh"), "{err}");
}
