//! What the Helsinki tests share: the graph loaded once, the network over
//! it, and a plain Dijkstra written here (not the project's search) to check
//! ETAs against.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use patrol_dispatcher::{LonLat, Network, NetworkSettings, UnitKind};
use patrol_roads::osm::MappedCamera;
use patrol_roads::{Metric, RoadGraph, Snap};

/// The Helsinki graph and its mapped cameras, loaded once per test binary.
fn helsinki() -> &'static (Arc<RoadGraph>, Vec<MappedCamera>) {
    static MAP: OnceLock<(Arc<RoadGraph>, Vec<MappedCamera>)> = OnceLock::new();
    MAP.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/helsinki.osm.pbf");
        let map = patrol_roads::osm::load(&path, &Default::default()).expect("Helsinki loads");
        (Arc::new(map.graph), map.cameras)
    })
}

/// The Helsinki graph.
pub(crate) fn graph() -> Arc<RoadGraph> {
    helsinki().0.clone()
}

/// The cameras mapped in the Helsinki extract.
pub(crate) fn mapped_cameras() -> &'static [MappedCamera] {
    &helsinki().1
}

pub(crate) fn network() -> Network {
    Network::new(graph(), NetworkSettings::default()).unwrap()
}

/// Seconds over the network from `from` to `to` for `metric`, by a plain
/// Dijkstra over the graph's edges: partial first and last edges (either
/// direction the metric allows), exact fractions, no lazy tricks.
pub(crate) fn dijkstra_s(g: &RoadGraph, metric: Metric, from: &Snap, to: &Snap) -> Option<f64> {
    let weight = |e: u32| g.weight_ms(metric, e).map(f64::from);
    // Where the source can enter the graph: each end of its edge, at a cost.
    let mut dist = vec![f64::INFINITY; g.node_count()];
    let mut heap = BinaryHeap::new();
    let push =
        |node: u32, ms: f64, dist: &mut Vec<f64>, heap: &mut BinaryHeap<Reverse<(u64, u32)>>| {
            if ms < dist[node as usize] {
                dist[node as usize] = ms;
                heap.push(Reverse(((ms * 1000.0) as u64, node)));
            }
        };
    let (e, f) = (from.edge, from.fraction);
    let mut best = f64::INFINITY;
    for (edge, frac) in [(e, f), (g.twin(e), 1.0 - f)] {
        if let Some(w) = weight(edge) {
            push(g.edge_head(edge), (1.0 - frac) * w, &mut dist, &mut heap);
            // Straight along this edge to the target, when it lies ahead on it.
            for (target_edge, target_frac) in
                [(to.edge, to.fraction), (g.twin(to.edge), 1.0 - to.fraction)]
            {
                if target_edge == edge && target_frac >= frac {
                    best = best.min((target_frac - frac) * w);
                }
            }
        }
    }
    // How the target is reached from each end of its edge.
    let mut arrive: Vec<(u32, f64)> = Vec::new();
    for (edge, frac) in [(to.edge, to.fraction), (g.twin(to.edge), 1.0 - to.fraction)] {
        if let Some(w) = weight(edge) {
            arrive.push((g.edge_tail(edge), frac * w));
        }
    }
    while let Some(Reverse((_, v))) = heap.pop() {
        let d = dist[v as usize];
        for e in g.out_edges(v) {
            if let Some(w) = weight(e) {
                let h = g.edge_head(e);
                if d + w < dist[h as usize] {
                    dist[h as usize] = d + w;
                    heap.push(Reverse((((d + w) * 1000.0) as u64, h)));
                }
            }
        }
    }
    for (node, ms) in arrive {
        best = best.min(dist[node as usize] + ms);
    }
    best.is_finite().then_some(best / 1000.0)
}

/// The full ETA the core defines: the network time plus the legs to and from
/// the street at the kind's off-network speed; straight line when off it.
pub(crate) fn independent_eta_s(net: &Network, kind: UnitKind, at: LonLat, target: LonLat) -> f64 {
    let metric = net.metric(kind, None);
    let off = net.settings().off_network_speed_mps.of(kind);
    match (net.snap(at, metric), net.snap(target, metric)) {
        (Some(a), Some(b)) => match dijkstra_s(net.graph(), metric, &a, &b) {
            Some(s) => s + (a.distance_m + b.distance_m) / off,
            None => net.straight_eta_s(kind, at.distance_m(&target)),
        },
        _ => net.straight_eta_s(kind, at.distance_m(&target)),
    }
}
