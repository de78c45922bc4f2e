//! Measures the Helsinki graph: load time and memory, snapping, one-to-one
//! routes, and the lazy many-to-one ETA ranking of the 5 best of 100,000 random
//! units. Prints figures; asserts nothing about time.
//!
//! ```sh
//! cargo run --release -p patrol-roads --example measure [-- PATH [UNITS]]
//! ```

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use patrol_roads::{
    LonLat, Metric, Profile, ProfileConfig, ReverseSearch, RoadGraph, SearchScratch, Snap,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rstar::RTree;
use rstar::primitives::GeomWithData;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn random_point(g: &RoadGraph, metric: Metric, rng: &mut StdRng) -> LonLat {
    loop {
        let e = rng.random_range(0..g.edge_count() as u32);
        if g.is_usable(e, metric) {
            return g.point_along(e, rng.random_range(0.0..=g.edge_length_m(e)));
        }
    }
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: n={} p50={:.1} us p99={:.1} us max={:.1} us",
        samples.len(),
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        at(1.0).as_secs_f64() * 1e6
    );
}

const PROFILES: [Profile; 4] = [
    Profile::Car,
    Profile::Foot,
    Profile::EBike,
    Profile::Motorcycle,
];

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../data/helsinki.osm.pbf").to_owned()
    });
    let units: usize = args.next().and_then(|u| u.parse().ok()).unwrap_or(100_000);

    let before = rss_kib();
    let started = Instant::now();
    let map = patrol_roads::osm::load(&path, &ProfileConfig::default()).expect("map loads");
    let load = started.elapsed();
    let g = &map.graph;
    println!(
        "load: {:.0} ms; {} nodes, {} edges, {} cameras; memory_bytes {} KiB; RSS +{} KiB; fingerprint {}",
        load.as_secs_f64() * 1e3,
        g.node_count(),
        g.edge_count(),
        map.cameras.len(),
        g.memory_bytes() / 1024,
        rss_kib().saturating_sub(before),
        g.fingerprint()
    );
    for metric in Metric::DISTINCT {
        let usable = (0..g.edge_count() as u32)
            .filter(|&e| g.is_usable(e, metric))
            .count();
        println!(
            "  {metric:?}: {usable} usable edges ({:.0}%), max speed {:.1} m/s",
            100.0 * usable as f64 / g.edge_count() as f64,
            g.max_speed_mps(metric)
        );
    }

    let mut rng = StdRng::seed_from_u64(1);
    let b = g.bounds();
    // Snapping: uniform points in the extract's box (some far from streets).
    let points: Vec<LonLat> = (0..20_000)
        .map(|_| {
            LonLat::new(
                rng.random_range(b.west..b.east),
                rng.random_range(b.south..b.north),
            )
        })
        .collect();
    let mut times = Vec::with_capacity(points.len());
    let mut snapped = 0;
    for (i, p) in points.iter().enumerate() {
        let metric = Metric::normal(PROFILES[i % 4]);
        let t = Instant::now();
        let s = g.snap(*p, metric, 200.0);
        times.push(t.elapsed());
        snapped += usize::from(s.is_some());
    }
    percentiles(
        &format!("snap (uniform in box, {snapped} on network)"),
        times,
    );

    // One-to-one routes between random network points.
    let mut scratch = SearchScratch::new();
    for profile in PROFILES {
        let metric = Metric::normal(profile);
        let mut times = Vec::new();
        let mut metres = 0.0;
        for _ in 0..1000 {
            let a = g
                .snap(random_point(g, metric, &mut rng), metric, 5.0)
                .unwrap();
            let z = g
                .snap(random_point(g, metric, &mut rng), metric, 5.0)
                .unwrap();
            let t = Instant::now();
            let r = g
                .route_with(metric, &a, &z, &mut scratch)
                .expect("connected");
            times.push(t.elapsed());
            metres += r.metres;
        }
        percentiles(
            &format!(
                "route one-to-one {profile:?} (mean {:.0} m)",
                metres / 1000.0
            ),
            times,
        );
    }

    // Many-to-one: the 5 best ETAs of `units` random units, lazily.
    let mut unit_snaps: Vec<(Metric, Snap)> = Vec::with_capacity(units);
    let mut points = Vec::with_capacity(units);
    for i in 0..units {
        let profile = match i % 10 {
            0..=3 => Profile::Car,
            4..=7 => Profile::Foot,
            8 => Profile::EBike,
            _ => Profile::Motorcycle,
        };
        let metric = Metric::normal(profile);
        let p = random_point(g, metric, &mut rng);
        unit_snaps.push((metric, g.snap(p, metric, 50.0).unwrap()));
        points.push(GeomWithData::new(p.to_xyz(), i));
    }
    let tree = RTree::bulk_load(points);
    let v_max = PROFILES
        .iter()
        .map(|&p| g.max_speed_mps(Metric::normal(p)))
        .fold(0.0, f64::max);
    let mut scratches: Vec<SearchScratch> = (0..4).map(|_| SearchScratch::new()).collect();
    let (mut times, mut examined, mut settled) = (Vec::new(), 0usize, 0usize);
    for q in 0..2000 {
        let incident = random_point(g, Metric::normal(PROFILES[q % 4]), &mut rng);
        let t = Instant::now();
        let [s0, s1, s2, s3] = &mut scratches[..] else {
            unreachable!()
        };
        let mut searches: Vec<Option<ReverseSearch>> = Vec::new();
        let mut targets: Vec<Option<Snap>> = Vec::new();
        for (p, scratch) in PROFILES.iter().zip([s0, s1, s2, s3]) {
            let metric = Metric::normal(*p);
            let target = g.snap(incident, metric, 100.0);
            targets.push(target);
            searches.push(target.map(|t| ReverseSearch::with_scratch(g, metric, &t, scratch)));
        }
        // max-heap of the k best (ms, unit)
        let mut best: BinaryHeap<(u64, usize)> = BinaryHeap::new();
        for (xyz, d2) in tree.nearest_neighbor_iter_with_distance_2(&incident.to_xyz()) {
            let _ = xyz;
            let unit = xyz.data;
            let straight = d2.sqrt(); // chord <= arc: a lower bound of metres
            let (metric, snap) = &unit_snaps[unit];
            let slot = PROFILES.iter().position(|p| *p == metric.profile).unwrap();
            let slack = snap.distance_m + targets[slot].map_or(0.0, |t| t.distance_m);
            let bound_ms = ((straight - slack).max(0.0) / v_max * 1000.0) as u64;
            if best.len() == 5 && bound_ms >= best.peek().unwrap().0 {
                break;
            }
            examined += 1;
            let Some(search) = searches[slot].as_mut() else {
                continue;
            };
            if let Some(eta) = search.eta_from(snap) {
                let ms = (eta.seconds * 1000.0).round() as u64;
                if best.len() < 5 {
                    best.push((ms, unit));
                } else if ms < best.peek().unwrap().0 {
                    best.pop();
                    best.push((ms, unit));
                }
            }
        }
        settled += searches
            .iter()
            .flatten()
            .map(|s| s.settled_nodes())
            .sum::<usize>();
        times.push(t.elapsed());
        std::hint::black_box(&best);
    }
    println!(
        "many-to-one k=5 of {units} units: mean {:.1} candidates, {:.1} nodes settled per query",
        examined as f64 / 2000.0,
        settled as f64 / 2000.0
    );
    percentiles(
        "many-to-one k=5 (snap incident x4, lazy searches, straight-line candidates)",
        times,
    );
}
