//! Snapping a point to the nearest edge a profile may use.
//!
//! The index is an R-tree (rstar) per profile of every piece of every usable
//! segment's polyline
//! as a 3-D line between points on the Earth's sphere (metres from its centre):
//! the straight-line distance between such points orders candidates by true
//! distance anywhere on Earth, with no projection. The winning piece is then
//! measured exactly: the foot of the perpendicular in a local equirectangular
//! projection around the query point, and the great-circle metres to it.

use std::sync::Arc;

use rstar::RTree;
use rstar::primitives::{GeomWithData, Line};

use crate::geo::{LocalProjection, LonLat, arc_for_chord_m};
use crate::graph::{EdgeId, RoadGraph};
use crate::profile::{Metric, WEIGHT_SETS};

/// Slack in metres when deciding that no later candidate can be nearer: covers
/// the difference between a chord and the surface over one street piece.
const SLACK_M: f64 = 0.5;

/// Where a point lies on the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    /// The directed edge the point is on, one the profile it was snapped for may
    /// use (its twin, the same street the other way, is used too where the
    /// profile allows).
    pub edge: EdgeId,
    /// How far along the edge from its tail, 0..=1 of its length.
    pub fraction: f64,
    /// How far along the edge from its tail, metres.
    pub offset_m: f64,
    /// The nearest point on the edge.
    pub point: LonLat,
    /// From the query point to `point`, metres (0 for a position given on an
    /// edge). Not part of any ETA: walking from the kerb is the caller's call.
    pub distance_m: f64,
}

type Piece = GeomWithData<Line<[f64; 3]>, (u32, u32)>;

/// One R-tree of segment pieces per distinct set of usable segments: car and
/// motorcycle usually share one, each emergency mode has one, foot and e-bike
/// their own. A search then never wades through pieces its profile may not use
/// (a car snapped in a pedestrian quarter would otherwise visit every footway
/// piece nearer than the nearest street).
#[derive(Debug, Clone, Default)]
pub(crate) struct SnapIndex {
    trees: Vec<RTree<Piece>>,
    /// The tree of each weight set.
    tree_of_set: [usize; WEIGHT_SETS],
}

impl SnapIndex {
    pub(crate) fn new(graph: &RoadGraph) -> SnapIndex {
        let usable = |set: usize, s: &crate::graph::Segment| {
            let metric = Metric::DISTINCT[set];
            graph.is_usable(s.edges[0], metric) || graph.is_usable(s.edges[1], metric)
        };
        let masks: Vec<Vec<bool>> = (0..WEIGHT_SETS)
            .map(|set| graph.segments.iter().map(|s| usable(set, s)).collect())
            .collect();
        let mut trees = Vec::new();
        let mut tree_of_set = [0; WEIGHT_SETS];
        for set in 0..WEIGHT_SETS {
            if let Some(same) = (0..set).find(|&earlier| masks[earlier] == masks[set]) {
                tree_of_set[set] = tree_of_set[same];
                continue;
            }
            let mut pieces = Vec::new();
            for (s, seg) in graph.segments.iter().enumerate() {
                if !masks[set][s] {
                    continue;
                }
                let points: Vec<[f64; 3]> = graph
                    .edge_points(seg.edges[0])
                    .map(|p| p.to_xyz())
                    .collect();
                for (i, w) in points.windows(2).enumerate() {
                    pieces.push(Piece::new(Line::new(w[0], w[1]), (s as u32, i as u32)));
                }
            }
            tree_of_set[set] = trees.len();
            trees.push(RTree::bulk_load(pieces));
        }
        SnapIndex { trees, tree_of_set }
    }

    /// Leaves plus an estimate of the inner nodes (about one per six leaves).
    pub(crate) fn memory_bytes(&self) -> usize {
        let leaf = std::mem::size_of::<Piece>() + 8;
        self.trees.iter().map(|t| t.size() * leaf * 7 / 6).sum()
    }
}

/// The nearest piece found: segment, metres from the segment's start, the
/// point, and the distance to it.
struct Found {
    segment: u32,
    offset_m: f64,
    point: LonLat,
    distance_m: f64,
}

impl RoadGraph {
    /// Snaps `point` to the nearest edge `metric` may use, within
    /// `max_distance_m` metres; `None` when there is none that close (the point
    /// is off the network).
    pub fn snap(
        &self,
        point: LonLat,
        metric: impl Into<Metric>,
        max_distance_m: f64,
    ) -> Option<Snap> {
        let metric = metric.into();
        let tree = &self.snap.trees[self.snap.tree_of_set[metric.set()]];
        let found = self.nearest(tree, point, max_distance_m, |_| true)?;
        let seg = &self.segments[found.segment as usize];
        let length = seg.length_m;
        let fraction = if length > 0.0 {
            (found.offset_m / length).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (edge, fraction, offset_m) = if self.is_usable(seg.edges[0], metric) {
            (seg.edges[0], fraction, found.offset_m)
        } else {
            (seg.edges[1], 1.0 - fraction, length - found.offset_m)
        };
        Some(Snap {
            edge,
            fraction,
            offset_m,
            point: found.point,
            distance_m: found.distance_m,
        })
    }

    /// The position `fraction` (0..=1) of the way along `edge` from its tail, as
    /// a snap at distance 0.
    pub fn snap_on_edge(&self, edge: EdgeId, fraction: f64) -> Snap {
        let fraction = fraction.clamp(0.0, 1.0);
        let offset_m = fraction * self.edge_length_m(edge);
        Snap {
            edge,
            fraction,
            offset_m,
            point: self.point_along(edge, offset_m),
            distance_m: 0.0,
        }
    }

    /// The name of the nearest named way within `max_distance_m` metres.
    pub fn street_near(&self, point: LonLat, max_distance_m: f64) -> Option<&Arc<str>> {
        let named = |s: u32| {
            let seg = &self.segments[s as usize];
            self.edge_attributes(seg.edges[0]).name.is_some()
        };
        let found = self
            .snap
            .trees
            .iter()
            .filter_map(|tree| self.nearest(tree, point, max_distance_m, named))
            .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m))?;
        let edge = self.segments[found.segment as usize].edges[0];
        self.edge_attributes(edge).name.as_ref()
    }

    fn nearest(
        &self,
        tree: &RTree<Piece>,
        point: LonLat,
        max_distance_m: f64,
        accept: impl Fn(u32) -> bool,
    ) -> Option<Found> {
        let proj = LocalProjection::new(point);
        let mut best: Option<Found> = None;
        for (piece, d2) in tree.nearest_neighbor_iter_with_distance_2(&point.to_xyz()) {
            let near_m = arc_for_chord_m(d2.sqrt());
            if near_m > max_distance_m + SLACK_M
                || best
                    .as_ref()
                    .is_some_and(|b| near_m > b.distance_m + SLACK_M)
            {
                break;
            }
            let (segment, index) = piece.data;
            if !accept(segment) {
                continue;
            }
            let edge = self.segments[segment as usize].edges[0];
            let mut offset_m = 0.0;
            let mut points = self.edge_points(edge).skip(index as usize);
            let mut at = self.edge_points(edge).next().expect("an edge has points");
            for next in self.edge_points(edge).skip(1).take(index as usize) {
                offset_m += at.distance_m(&next);
                at = next;
            }
            let a = points.next().expect("piece start");
            let b = points.next().expect("piece end");
            let ([ax, ay], [bx, by]) = (proj.to_local(a), proj.to_local(b));
            let (dx, dy) = (bx - ax, by - ay);
            let len_2 = dx * dx + dy * dy;
            let t = if len_2 > 0.0 {
                (-(ax * dx + ay * dy) / len_2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let on = proj.to_lonlat([ax + t * dx, ay + t * dy]);
            let distance_m = point.distance_m(&on);
            if distance_m > max_distance_m
                || best.as_ref().is_some_and(|b| b.distance_m <= distance_m)
            {
                continue;
            }
            best = Some(Found {
                segment,
                offset_m: offset_m + t * a.distance_m(&b),
                point: on,
                distance_m,
            });
        }
        best
    }
}
