//! What the core's ETA ranking costs: `Dispatcher::recommend` (k = 5, any
//! kind) over the street network of an OpenStreetMap extract, with units
//! placed at random points of its streets and footways (60% cars, 30% foot,
//! 10% e-bikes; 40% busy), queried at random points of the network. The
//! same call the server makes, without gRPC. Also the graph's load time and
//! memory. Prints; asserts nothing.
//!
//! ```text
//! cargo run -p patrol-dispatcher --release --example eta_ranking [-- MAP [UNITS [QUERIES]]]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patrol_dispatcher::*;
use patrol_roads::{Metric, Profile, RoadGraph};

const NOW: Millis = 1_700_000_000_000;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_point(g: &RoadGraph, rng: &mut Rng) -> LonLat {
    let foot = Metric::normal(Profile::Foot);
    loop {
        let e = (rng.next() % g.edge_count() as u64) as u32;
        if g.is_usable(e, foot) || g.is_usable(e, Metric::normal(Profile::Car)) {
            return g.point_along(e, rng.unit() * g.edge_length_m(e));
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
        samples.last().unwrap().as_secs_f64() * 1e6
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let map = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/helsinki.osm.pbf"),
        PathBuf::from,
    );
    let units: usize = args.next().map_or(100_000, |s| s.parse().unwrap());
    let queries: usize = args.next().map_or(2_000, |s| s.parse().unwrap());

    let t = Instant::now();
    let loaded = patrol_roads::osm::load(&map, &Default::default()).expect("the map loads");
    let load = t.elapsed();
    let graph = Arc::new(loaded.graph);
    println!(
        "graph {}: {} nodes, {} edges, loaded in {:.0} ms, {:.1} MiB",
        map.display(),
        graph.node_count(),
        graph.edge_count(),
        load.as_secs_f64() * 1e3,
        graph.memory_bytes() as f64 / (1024.0 * 1024.0)
    );
    let network = Network::new(graph.clone(), NetworkSettings::default()).expect("a network");
    for kind in [
        UnitKind::Car,
        UnitKind::Foot,
        UnitKind::EBike,
        UnitKind::Motorcycle,
    ] {
        println!(
            "top speed bound {}: {:.1} m/s",
            kind.as_str(),
            network.max_speed_mps(&[kind])
        );
    }
    let mut core = Dispatcher::new(DispatcherConfig {
        network: Some(network),
        units: UnitIndexConfig {
            offline_after_ms: 24 * 3_600_000,
            ..Default::default()
        },
        ..Default::default()
    });
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let actor = Actor::system("bench");
    let t = Instant::now();
    for i in 0..units {
        let kind = match i % 10 {
            0..=5 => UnitKind::Car,
            6..=8 => UnitKind::Foot,
            _ => UnitKind::EBike,
        };
        let id = format!("u{i}");
        core.register_unit(
            UnitProfile {
                id: id.clone(),
                call_sign: id.clone(),
                kind,
                capabilities: Vec::new(),
            },
            NOW,
        )
        .unwrap();
        let at = random_point(&graph, &mut rng);
        core.apply_ping(
            &Ping {
                unit_id: &id,
                time: NOW - 1_000,
                at,
                speed_mps: None,
                heading_deg: None,
                accuracy_m: Some(5.0),
            },
            NOW,
        )
        .unwrap();
        if rng.unit() < 0.4 {
            core.update_unit_status(&id, UnitStatus::Busy, &actor, NOW)
                .unwrap();
        }
    }
    core.take_events();
    println!(
        "{units} units placed on the network in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let points: Vec<LonLat> = (0..queries)
        .map(|_| random_point(&graph, &mut rng))
        .collect();
    let query = UnitQuery {
        k: 5,
        ..Default::default()
    };
    for &p in points.iter().take(100) {
        core.recommend(&Target::Point(p), &query, NOW).unwrap();
    }
    let mut samples = Vec::with_capacity(points.len());
    let mut network_picks = 0;
    let mut picks = 0;
    for &p in &points {
        let t = Instant::now();
        let rec = core.recommend(&Target::Point(p), &query, NOW).unwrap();
        samples.push(t.elapsed());
        picks += rec.units.len();
        network_picks += rec
            .units
            .iter()
            .filter(|u| u.eta_method == EtaMethod::Network)
            .count();
    }
    percentiles(
        &format!("recommend k=5 over the network at {units} units"),
        samples,
    );
    println!("picks by network ETA: {network_picks} of {picks}");
    let with_routes = UnitQuery {
        include_routes: true,
        ..query.clone()
    };
    let mut samples = Vec::with_capacity(points.len());
    for &p in &points {
        let t = Instant::now();
        core.recommend(&Target::Point(p), &with_routes, NOW)
            .unwrap();
        samples.push(t.elapsed());
    }
    percentiles("the same with route geometry", samples);
}
