//! Property test: on random small graphs, the lazy many-to-one search and the
//! one-to-one Dijkstra both give exactly the time a brute-force Bellman-Ford
//! gives, for every source position, in any query order, and the limited
//! question ("faster than L?") answers exactly that.

use patrol_roads::{
    Access, GraphBuilder, LocalProjection, LonLat, Metric, Oneway, ProfileConfig, ReverseSearch,
    RoadGraph, Snap, WayAttributes, WayClass,
};
use proptest::prelude::*;

const CLASSES: [WayClass; 7] = [
    WayClass::Residential,
    WayClass::Primary,
    WayClass::Footway,
    WayClass::Steps,
    WayClass::Cycleway,
    WayClass::Pedestrian,
    WayClass::Service,
];
const ONEWAYS: [Oneway; 3] = [Oneway::No, Oneway::Forward, Oneway::Backward];

/// One way: its two end nodes, maybe an inner bend, class, one-way, bus-only.
type WaySpec = (usize, usize, Option<(f64, f64)>, usize, usize, bool);

fn graph(points: &[(f64, f64)], ways: &[WaySpec]) -> RoadGraph {
    let proj = LocalProjection::new(LonLat::new(24.94, 60.17));
    let at = |(x, y): (f64, f64)| proj.to_lonlat([x, y]);
    let mut b = GraphBuilder::new(ProfileConfig::default());
    for (i, &(a, z, bend, class, oneway, bus_only)) in ways.iter().enumerate() {
        let mut nodes = vec![(a as i64, at(points[a]))];
        if let Some(p) = bend {
            nodes.push((1000 + i as i64, at(p)));
        }
        nodes.push((z as i64, at(points[z])));
        let mut attrs = WayAttributes::new(CLASSES[class]);
        attrs.oneway = ONEWAYS[oneway];
        if bus_only {
            attrs.access = Some(Access::No);
            attrs.bus = Some(Access::Yes);
        }
        b.add_way(nodes, attrs);
    }
    b.build()
}

fn partial(w: u32, fraction: f64) -> u64 {
    (f64::from(w) * fraction.clamp(0.0, 1.0) - 1e-6)
        .ceil()
        .max(0.0) as u64
}

/// Milliseconds from `source` to `target` by Bellman-Ford over node labels.
fn brute_force(g: &RoadGraph, metric: Metric, source: &Snap, target: &Snap) -> Option<u64> {
    let w = |e: u32| g.weight_ms(metric, e);
    let n = g.node_count();
    let mut to_target = vec![u64::MAX; n];
    let (f, r) = (target.edge, target.fraction);
    for (edge, fraction) in [(f, r), (g.twin(f), 1.0 - r)] {
        if let Some(w) = w(edge) {
            let t = g.edge_tail(edge) as usize;
            to_target[t] = to_target[t].min(partial(w, fraction));
        }
    }
    for _ in 0..n {
        for e in 0..g.edge_count() as u32 {
            if let Some(w) = w(e) {
                let (t, h) = (g.edge_tail(e) as usize, g.edge_head(e) as usize);
                if to_target[h] != u64::MAX {
                    to_target[t] = to_target[t].min(to_target[h] + u64::from(w));
                }
            }
        }
    }
    let mut best = u64::MAX;
    let (e, t) = (source.edge, source.fraction);
    for (edge, fraction) in [(e, 1.0 - t), (g.twin(e), t)] {
        if let Some(w) = w(edge) {
            let h = g.edge_head(edge) as usize;
            if to_target[h] != u64::MAX {
                best = best.min(partial(w, fraction) + to_target[h]);
            }
        }
    }
    // Both on one stretch of street: straight along it, if allowed.
    if e == f || g.twin(e) == f {
        let along = |s: &Snap| {
            if g.is_along_way(s.edge) {
                s.fraction
            } else {
                1.0 - s.fraction
            }
        };
        let forward = if g.is_along_way(e) { e } else { g.twin(e) };
        let (ps, pg) = (along(source), along(target));
        let (edge, fraction) = if pg >= ps {
            (forward, pg - ps)
        } else {
            (g.twin(forward), ps - pg)
        };
        if let Some(w) = w(edge) {
            best = best.min(partial(w, fraction));
        }
    }
    (best != u64::MAX).then_some(best)
}

fn spec() -> impl Strategy<Value = (Vec<(f64, f64)>, Vec<WaySpec>, usize, u64)> {
    (2usize..7).prop_flat_map(|n| {
        let points = prop::collection::vec((0.0..400.0, 0.0..400.0), n);
        let way = (
            0..n,
            0..n,
            prop::option::of((0.0..400.0, 0.0..400.0)),
            0..CLASSES.len(),
            0..ONEWAYS.len(),
            prop::bool::weighted(0.2),
        );
        (
            points,
            prop::collection::vec(way, 1..12),
            0..Metric::DISTINCT.len(),
            any::<u64>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn many_to_one_and_one_to_one_equal_brute_force((points, ways, metric, seed) in spec()) {
        let g = graph(&points, &ways);
        let metric = Metric::DISTINCT[metric];
        let positions: Vec<Snap> = (0..g.edge_count() as u32)
            .filter(|&e| g.is_usable(e, metric))
            .flat_map(|e| [0.0, 0.25, 0.6, 1.0].map(|f| g.snap_on_edge(e, f)))
            .collect();
        prop_assume!(!positions.is_empty());
        let target = positions[(seed as usize) % positions.len()];
        let mut search = ReverseSearch::new(&g, metric, &target);
        // A seeded shuffle of the query order, each source asked twice.
        let mut order: Vec<usize> = (0..positions.len()).chain(0..positions.len()).collect();
        let mut x = seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for i in order {
            let source = &positions[i];
            let expected = brute_force(&g, metric, source, &target);
            // A limited question first: "faster than `limit` ms?"
            let limit = x % 400_000;
            let within = search
                .eta_from_within(source, limit as f64 / 1000.0)
                .map(|e| (e.seconds * 1000.0).round() as u64);
            prop_assert_eq!(within, expected.filter(|&ms| ms < limit), "within {} ms", limit);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let lazy = search.eta_from(source).map(|e| (e.seconds * 1000.0).round() as u64);
            prop_assert_eq!(lazy, expected, "many-to-one from {:?}", source);
            let route = g.route(metric, source, &target);
            let direct = route.as_ref().map(|r| (r.seconds * 1000.0).round() as u64);
            prop_assert_eq!(direct, expected, "one-to-one from {:?}", source);
            if let Some(r) = route {
                let back = search.route_from(source).expect("the same answer");
                prop_assert_eq!(back.seconds, r.seconds);
                for pair in r.edges.windows(2) {
                    prop_assert_eq!(g.edge_head(pair[0]), g.edge_tail(pair[1]));
                }
                prop_assert!(r.geometry[0].distance_m(&source.point) < 1e-6);
                prop_assert!(r.geometry.last().unwrap().distance_m(&target.point) < 1e-6);
            }
        }
    }
}
