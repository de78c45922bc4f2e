//! Where someone moving from a position can get within a distance, and the way
//! straight ahead.
//!
//! - [`RoadGraph::reach`]: a forward Dijkstra by metres over the edges a
//!   metric may use, optionally leaving the start only in one direction (a
//!   target seen walking north goes on north first). It returns every part of
//!   an edge travelled within the distance, each with the metres from the
//!   start to its beginning, so a caller can ask what lies along them (the
//!   cameras a followed suspect can pass next) and when.
//! - [`RoadGraph::ahead`]: the most likely way on: from a position in a
//!   direction, at every junction the edge that turns least, up to a distance.
//!
//! Distances only: the caller knows the speed (an observed target's, not a
//! profile's).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::geo::LonLat;
use crate::graph::{EdgeId, FORBIDDEN, NodeId, RoadGraph};
use crate::profile::Metric;
use crate::snap::Snap;

/// A part of a directed edge travelled from the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReachPiece {
    /// The directed edge.
    pub edge: EdgeId,
    /// Where the part begins, metres from the edge's tail.
    pub from_m: f64,
    /// Where it ends, metres from the edge's tail (`>= from_m`).
    pub to_m: f64,
    /// Metres from the start position to where the part begins.
    pub start_m: f64,
}

/// Everything reachable within a distance: see [`RoadGraph::reach`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reach {
    /// Every edge part travelled within the distance, in the order they were
    /// reached (by `start_m`). An edge reached from both ends has two parts.
    pub pieces: Vec<ReachPiece>,
    /// How many junctions were settled.
    pub settled: usize,
}

/// The way straight ahead: see [`RoadGraph::ahead`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ahead {
    /// The directed edges in order; the first from the start position, the
    /// last possibly only in part.
    pub edges: Vec<EdgeId>,
    /// The polyline from the start position on, WGS84 degrees.
    pub geometry: Vec<LonLat>,
    /// Its length, metres.
    pub metres: f64,
}

/// Millimetres, for an exact heap order.
fn mm(metres: f64) -> u64 {
    (metres * 1000.0).round().max(0.0) as u64
}

impl RoadGraph {
    /// The directions one can leave `at` in for `metric`: its edge and its
    /// twin (the same street the other way), where usable, each with the
    /// metres from its tail to the position. `forward`, when it is one of the
    /// two, keeps only that one.
    fn leaving_ways(
        &self,
        metric: Metric,
        at: &Snap,
        forward: Option<EdgeId>,
    ) -> Vec<(EdgeId, f64)> {
        let len = self.edge_length_m(at.edge);
        let twin = self.twin(at.edge);
        let mut ways = Vec::with_capacity(2);
        for (edge, from_m) in [
            (at.edge, at.fraction * len),
            (twin, (1.0 - at.fraction) * len),
        ] {
            if let Some(f) = forward
                && (f == at.edge || f == twin)
                && f != edge
            {
                continue;
            }
            if self.is_usable(edge, metric) && !ways.iter().any(|&(e, _)| e == edge) {
                ways.push((edge, from_m));
            }
        }
        ways
    }

    /// Every part of an edge `metric` may use that lies within `max_m` metres
    /// of `from` over the network, leaving `from` along `forward` only when it
    /// is `from`'s edge or its twin (otherwise both ways). Junctions are
    /// settled by metres (a Dijkstra), so each part's `start_m` is the
    /// shortest way there.
    pub fn reach(
        &self,
        metric: impl Into<Metric>,
        from: &Snap,
        forward: Option<EdgeId>,
        max_m: f64,
    ) -> Reach {
        let metric = metric.into();
        let max_m = max_m.max(0.0);
        let mut reach = Reach::default();
        let mut best: labels::Labels = labels::Labels::default();
        let mut heap: BinaryHeap<Reverse<(u64, NodeId)>> = BinaryHeap::new();
        for (edge, from_m) in self.leaving_ways(metric, from, forward) {
            let len = self.edge_length_m(edge);
            let rest = len - from_m;
            reach.pieces.push(ReachPiece {
                edge,
                from_m,
                to_m: from_m + rest.min(max_m),
                start_m: 0.0,
            });
            if rest <= max_m {
                let head = self.edge_head(edge);
                if best.improve(head, rest) {
                    heap.push(Reverse((mm(rest), head)));
                }
            }
        }
        let mut settled = labels::Settled::default();
        while let Some(Reverse((_, v))) = heap.pop() {
            if !settled.insert(v) {
                continue;
            }
            reach.settled += 1;
            let d = best.get(v).expect("a node on the heap is labelled");
            for e in self.out_edges(v) {
                if self.raw_weight(metric.set(), e) == FORBIDDEN {
                    continue;
                }
                let len = self.edge_length_m(e);
                reach.pieces.push(ReachPiece {
                    edge: e,
                    from_m: 0.0,
                    to_m: len.min(max_m - d),
                    start_m: d,
                });
                let nd = d + len;
                let head = self.edge_head(e);
                if nd <= max_m && !settled.contains(head) && best.improve(head, nd) {
                    heap.push(Reverse((mm(nd), head)));
                }
            }
        }
        reach
    }

    /// The most likely way on from `from` heading along `forward` (`from`'s
    /// edge or its twin; otherwise `from`'s edge), for `max_m` metres: at
    /// each junction the usable edge whose first bearing turns least from
    /// the way it arrived, never straight back the way it came unless that is
    /// the only way on (a dead end ends it). Stops early at a junction
    /// already passed.
    pub fn ahead(
        &self,
        metric: impl Into<Metric>,
        from: &Snap,
        forward: Option<EdgeId>,
        max_m: f64,
    ) -> Ahead {
        let metric = metric.into();
        let mut ahead = Ahead::default();
        let Some(&(first, from_m)) = self.leaving_ways(metric, from, forward).first() else {
            return ahead;
        };
        let push = |geometry: &mut Vec<LonLat>, p: LonLat| {
            if geometry.last() != Some(&p) {
                geometry.push(p);
            }
        };
        let mut edge = first;
        let mut start = from_m;
        let mut seen: Vec<NodeId> = Vec::new();
        loop {
            let len = self.edge_length_m(edge);
            let take = (len - start).min(max_m - ahead.metres).max(0.0);
            ahead.edges.push(edge);
            push(&mut ahead.geometry, self.point_along(edge, start));
            let mut offset = 0.0;
            let mut points = self.edge_points(edge);
            let mut at = points.next().expect("an edge has points");
            for next in points {
                offset += at.distance_m(&next);
                at = next;
                if offset > start && offset < start + take {
                    push(&mut ahead.geometry, next);
                }
            }
            push(&mut ahead.geometry, self.point_along(edge, start + take));
            ahead.metres += take;
            if ahead.metres >= max_m - 1e-9 || start + take < len - 1e-9 {
                break;
            }
            let v = self.edge_head(edge);
            if seen.contains(&v) {
                break;
            }
            seen.push(v);
            let arriving = self.end_bearing(edge);
            let back = self.twin(edge);
            let next = self
                .out_edges(v)
                .filter(|&e| e != back && self.raw_weight(metric.set(), e) != FORBIDDEN)
                .map(|e| (turn_deg(arriving, self.start_bearing(e)), e))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let Some((_, e)) = next else {
                break;
            };
            edge = e;
            start = 0.0;
        }
        ahead
    }

    /// The polyline of the part of `edge` from `from_m` to `to_m` metres
    /// after its tail (a [`ReachPiece`]'s ground), WGS84 degrees.
    pub fn edge_part(&self, edge: EdgeId, from_m: f64, to_m: f64) -> Vec<LonLat> {
        let mut out = Vec::new();
        crate::route::push_part(self, edge, from_m, to_m.max(from_m), &mut out);
        out
    }

    /// The bearing of an edge's first piece, degrees.
    fn start_bearing(&self, edge: EdgeId) -> f64 {
        let mut points = self.edge_points(edge);
        let a = points.next().expect("an edge has points");
        let b = points.next().unwrap_or(a);
        a.bearing_deg(&b)
    }

    /// The bearing of an edge's last piece, degrees.
    fn end_bearing(&self, edge: EdgeId) -> f64 {
        let mut points = self.edge_points(edge).rev();
        let b = points.next().expect("an edge has points");
        let a = points.next().unwrap_or(b);
        a.bearing_deg(&b)
    }
}

/// How far a turn from bearing `a` to bearing `b` is, 0..=180 degrees.
fn turn_deg(a: f64, b: f64) -> f64 {
    let d = (b - a).rem_euclid(360.0);
    d.min(360.0 - d)
}

/// Label maps keyed by node: the searches here touch a few thousand nodes of
/// a graph of a million, so a sorted map beats clearing a node-sized array.
mod labels {
    use std::collections::{BTreeMap, BTreeSet};

    use crate::graph::NodeId;

    #[derive(Default)]
    pub(super) struct Labels(BTreeMap<NodeId, f64>);

    impl Labels {
        /// Sets `v`'s label to `d` if that is shorter; whether it was.
        pub(super) fn improve(&mut self, v: NodeId, d: f64) -> bool {
            match self.0.get_mut(&v) {
                Some(old) if *old <= d => false,
                Some(old) => {
                    *old = d;
                    true
                }
                None => {
                    self.0.insert(v, d);
                    true
                }
            }
        }

        pub(super) fn get(&self, v: NodeId) -> Option<f64> {
            self.0.get(&v).copied()
        }
    }

    #[derive(Default)]
    pub(super) struct Settled(BTreeSet<NodeId>);

    impl Settled {
        pub(super) fn insert(&mut self, v: NodeId) -> bool {
            self.0.insert(v)
        }

        pub(super) fn contains(&self, v: NodeId) -> bool {
            self.0.contains(&v)
        }
    }
}
