//! Shortest travel times over the graph for one profile.
//!
//! - [`RoadGraph::route`]: one-to-one Dijkstra between two snapped positions,
//!   with the path's seconds, metres and geometry.
//! - [`ReverseSearch`]: many-to-one. A Dijkstra from one target over the
//!   reverse graph, expanded *lazily*: [`ReverseSearch::eta_from`] settles
//!   nodes only until that source's time is exact, and later calls carry on
//!   from where the search stopped. [`ReverseSearch::frontier_seconds`] says
//!   how far it has settled, so a caller ranking candidates by a lower bound
//!   (straight-line metres over [`RoadGraph::max_speed_mps`]) knows when to
//!   stop asking, and [`ReverseSearch::eta_from_within`] answers only "faster
//!   than the k-th best?" without settling further than that.
//!
//! Times are whole milliseconds inside (edge weights, and the part of an edge
//! a position covers rounded up), seconds outside. A search allocates only
//! when its [`SearchScratch`] first meets a graph larger than before: labels
//! carry a generation stamp, so starting a search clears nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::geo::LonLat;
use crate::graph::{EdgeId, FORBIDDEN, NodeId, RoadGraph};
use crate::profile::Metric;
use crate::snap::Snap;

/// A travel time and the length of the path it was measured on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eta {
    /// Seconds (a multiple of 0.001).
    pub seconds: f64,
    /// Metres along the path.
    pub metres: f64,
}

/// A path between two snapped positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Travel time, seconds.
    pub seconds: f64,
    /// Length, metres.
    pub metres: f64,
    /// The edges travelled in order; the first and the last may be travelled
    /// only in part (from the start position, up to the end position).
    pub edges: Vec<EdgeId>,
    /// The path from the start's snapped point to the end's, WGS84 degrees.
    pub geometry: Vec<LonLat>,
}

/// Reusable label arrays for searches on graphs of up to the size it has seen.
#[derive(Debug, Clone, Default)]
pub struct SearchScratch {
    /// `2 * generation` when labelled in this search, `+ 1` once settled.
    stamp: Vec<u32>,
    generation: u32,
    time_ms: Vec<u32>,
    metres: Vec<f64>,
    /// The edge a node's label came over; `PARTIAL |` an end position's edge.
    via: Vec<u32>,
    heap: BinaryHeap<Reverse<(u32, NodeId)>>,
    settled: usize,
}

/// Marks a label that came over part of an end position's own edge.
const PARTIAL: u32 = 1 << 31;

/// The milliseconds to travel `fraction` of an edge of weight `weight_ms`,
/// rounded up (so no time is ever less than its metres at full speed).
fn partial_ms(weight_ms: u32, fraction: f64) -> u32 {
    (f64::from(weight_ms) * fraction.clamp(0.0, 1.0) - 1e-6)
        .ceil()
        .max(0.0) as u32
}

impl SearchScratch {
    /// Empty scratch; it grows to the graph on first use.
    pub fn new() -> SearchScratch {
        SearchScratch::default()
    }

    fn reset(&mut self, nodes: usize) {
        if self.stamp.len() < nodes {
            self.stamp.resize(nodes, 0);
            self.time_ms.resize(nodes, 0);
            self.metres.resize(nodes, 0.0);
            self.via.resize(nodes, 0);
        }
        self.generation += 1;
        if self.generation >= u32::MAX / 2 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        self.heap.clear();
        self.settled = 0;
    }

    fn labelled(&self, v: NodeId) -> bool {
        self.stamp[v as usize] >> 1 == self.generation
    }

    fn is_settled(&self, v: NodeId) -> bool {
        self.stamp[v as usize] == 2 * self.generation + 1
    }

    fn label(&mut self, v: NodeId, time_ms: u32, metres: f64, via: u32) {
        let i = v as usize;
        if self.is_settled(v) || (self.labelled(v) && self.time_ms[i] <= time_ms) {
            return;
        }
        self.stamp[i] = 2 * self.generation;
        self.time_ms[i] = time_ms;
        self.metres[i] = metres;
        self.via[i] = via;
        self.heap.push(Reverse((time_ms, v)));
    }

    /// The smallest label not yet settled, dropping stale heap entries.
    fn frontier_ms(&mut self) -> Option<u32> {
        while let Some(&Reverse((t, v))) = self.heap.peek() {
            if self.is_settled(v) || self.time_ms[v as usize] != t {
                self.heap.pop();
            } else {
                return Some(t);
            }
        }
        None
    }

    /// Settles the frontier's node and relaxes its edges (out-edges going
    /// forward, in-edges going backward). False when nothing is left.
    fn settle_next(&mut self, graph: &RoadGraph, set: usize, backward: bool) -> bool {
        if self.frontier_ms().is_none() {
            return false;
        }
        let Reverse((t, v)) = self.heap.pop().expect("frontier exists");
        self.stamp[v as usize] = 2 * self.generation + 1;
        self.settled += 1;
        let m = self.metres[v as usize];
        let mut relax = |e: EdgeId, next: NodeId| {
            let w = graph.raw_weight(set, e);
            if w != FORBIDDEN {
                let nt = t.saturating_add(w).min(FORBIDDEN - 1);
                self.label(next, nt, m + graph.edge_length_m(e), e);
            }
        };
        if backward {
            for &e in graph.in_edges(v) {
                relax(e, graph.edge_tail(e));
            }
        } else {
            for e in graph.out_edges(v) {
                relax(e, graph.edge_head(e));
            }
        }
        true
    }
}

/// A node next to a position, what it costs to go between them, and the edge.
#[derive(Debug, Clone, Copy)]
struct End {
    node: NodeId,
    ms: u32,
    metres: f64,
    edge: EdgeId,
}

/// At most two [`End`]s, without allocating.
#[derive(Debug, Clone, Copy, Default)]
struct Ends {
    items: [Option<End>; 2],
}

impl Ends {
    fn push(&mut self, end: End) {
        let slot = self
            .items
            .iter_mut()
            .find(|e| e.is_none())
            .expect("two ends at most");
        *slot = Some(end);
    }

    fn iter(&self) -> impl Iterator<Item = End> + '_ {
        self.items.iter().flatten().copied()
    }
}

/// The nodes one can reach from a position: its edge's head, its twin's head.
fn leaving(graph: &RoadGraph, set: usize, at: &Snap) -> Ends {
    let (e, t) = (at.edge, at.fraction);
    let len = graph.edge_length_m(e);
    let twin = graph.twin(e);
    let mut ends = Ends::default();
    for (edge, fraction) in [(e, 1.0 - t), (twin, t)] {
        let w = graph.raw_weight(set, edge);
        if w != FORBIDDEN {
            ends.push(End {
                node: graph.edge_head(edge),
                ms: partial_ms(w, fraction),
                metres: fraction * len,
                edge,
            });
        }
    }
    ends
}

/// The nodes from which one reaches a position: its edge's tail, its twin's tail.
fn arriving(graph: &RoadGraph, set: usize, at: &Snap) -> Ends {
    let (f, r) = (at.edge, at.fraction);
    let len = graph.edge_length_m(f);
    let twin = graph.twin(f);
    let mut ends = Ends::default();
    for (edge, fraction) in [(f, r), (twin, 1.0 - r)] {
        let w = graph.raw_weight(set, edge);
        if w != FORBIDDEN {
            ends.push(End {
                node: graph.edge_tail(edge),
                ms: partial_ms(w, fraction),
                metres: fraction * len,
                edge,
            });
        }
    }
    ends
}

/// The position's fraction along its way's node order.
fn along_way(graph: &RoadGraph, at: &Snap) -> f64 {
    if graph.is_along_way(at.edge) {
        at.fraction
    } else {
        1.0 - at.fraction
    }
}

/// Travelling straight from `from` to `to` when both are on one segment:
/// (ms, metres, edge).
fn direct(graph: &RoadGraph, set: usize, from: &Snap, to: &Snap) -> Option<(u32, f64, EdgeId)> {
    let (e, f) = (from.edge, to.edge);
    if e != f && graph.twin(e) != f {
        return None;
    }
    let (ps, pg) = (along_way(graph, from), along_way(graph, to));
    let along = if graph.is_along_way(e) {
        e
    } else {
        graph.twin(e)
    };
    let (edge, fraction) = if pg >= ps {
        (along, pg - ps)
    } else {
        (graph.twin(along), ps - pg)
    };
    let w = graph.raw_weight(set, edge);
    (w != FORBIDDEN).then(|| {
        (
            partial_ms(w, fraction),
            fraction * graph.edge_length_m(e),
            edge,
        )
    })
}

/// What the best path found so far goes through.
#[derive(Debug, Clone, Copy)]
enum Best {
    Direct { ms: u64, metres: f64, edge: EdgeId },
    End { ms: u64, metres: f64, end: End },
}

impl Best {
    fn ms(&self) -> u64 {
        match *self {
            Best::Direct { ms, .. } | Best::End { ms, .. } => ms,
        }
    }
}

/// Settles until the best path through `finish` (or `direct`) is exact, or
/// until no path below `limit_ms` can be found (then `None`).
fn settle_until(
    graph: &RoadGraph,
    set: usize,
    scratch: &mut SearchScratch,
    backward: bool,
    finish: &Ends,
    direct: Option<(u32, f64, EdgeId)>,
    limit_ms: u64,
) -> Option<Best> {
    loop {
        let mut best = direct.map(|(ms, metres, edge)| Best::Direct {
            ms: u64::from(ms),
            metres,
            edge,
        });
        let mut needed: Option<u64> = None;
        for end in finish.iter() {
            if scratch.labelled(end.node) {
                let i = end.node as usize;
                let ms = u64::from(end.ms) + u64::from(scratch.time_ms[i]);
                if best.is_none_or(|b| ms < b.ms()) {
                    best = Some(Best::End {
                        ms,
                        metres: end.metres + scratch.metres[i],
                        end,
                    });
                }
            }
            if !scratch.is_settled(end.node) {
                needed = Some(needed.map_or(u64::from(end.ms), |n| n.min(u64::from(end.ms))));
            }
        }
        let best = best.filter(|b| b.ms() < limit_ms);
        let Some(cheapest_end) = needed else {
            return best;
        };
        let Some(frontier) = scratch.frontier_ms() else {
            return best;
        };
        let enough = best.map_or(limit_ms, |b| b.ms());
        if u64::from(frontier) + cheapest_end >= enough {
            return best;
        }
        scratch.settle_next(graph, set, backward);
    }
}

/// Appends the part of `edge` from `from_m` to `to_m` metres after its tail,
/// skipping a point equal to the last one already there.
pub(crate) fn push_part(
    graph: &RoadGraph,
    edge: EdgeId,
    from_m: f64,
    to_m: f64,
    out: &mut Vec<LonLat>,
) {
    let mut push = |p: LonLat| {
        if out.last() != Some(&p) {
            out.push(p);
        }
    };
    push(graph.point_along(edge, from_m));
    let mut offset = 0.0;
    let mut points = graph.edge_points(edge);
    let mut at = points.next().expect("an edge has points");
    for next in points {
        offset += at.distance_m(&next);
        at = next;
        if offset > from_m && offset < to_m {
            push(next);
        }
    }
    push(graph.point_along(edge, to_m));
}

impl RoadGraph {
    /// The fastest path for `metric` from `from` to `to` (both snapped for that
    /// metric), by one-to-one Dijkstra; `None` when unreachable. Allocates its
    /// labels; see [`RoadGraph::route_with`] to reuse them.
    pub fn route(&self, metric: impl Into<Metric>, from: &Snap, to: &Snap) -> Option<Route> {
        self.route_with(metric, from, to, &mut SearchScratch::new())
    }

    /// [`RoadGraph::route`] with caller-owned scratch labels.
    pub fn route_with(
        &self,
        metric: impl Into<Metric>,
        from: &Snap,
        to: &Snap,
        scratch: &mut SearchScratch,
    ) -> Option<Route> {
        let set = metric.into().set();
        scratch.reset(self.node_count());
        for end in leaving(self, set, from).iter() {
            scratch.label(end.node, end.ms, end.metres, PARTIAL | end.edge);
        }
        let finish = arriving(self, set, to);
        let best = settle_until(
            self,
            set,
            scratch,
            false,
            &finish,
            direct(self, set, from, to),
            u64::MAX,
        )?;
        Some(match best {
            Best::Direct { ms, metres, edge } => {
                let (a, b) = (position_on(self, edge, from), position_on(self, edge, to));
                let mut geometry = Vec::new();
                push_part(self, edge, a, b, &mut geometry);
                Route {
                    seconds: ms as f64 / 1000.0,
                    metres,
                    edges: vec![edge],
                    geometry,
                }
            }
            Best::End { ms, metres, end } => {
                // Back from the end node to the start position's edge.
                let mut edges = vec![end.edge];
                let mut v = end.node;
                loop {
                    let via = scratch.via[v as usize];
                    edges.push(via & !PARTIAL);
                    if via & PARTIAL != 0 {
                        break;
                    }
                    v = self.edge_tail(via);
                }
                edges.reverse();
                let geometry = self.path_geometry(&edges, from, to);
                Route {
                    seconds: ms as f64 / 1000.0,
                    metres,
                    edges,
                    geometry,
                }
            }
        })
    }

    /// The polyline of `edges` from position `from` on the first to `to` on the
    /// last.
    fn path_geometry(&self, edges: &[EdgeId], from: &Snap, to: &Snap) -> Vec<LonLat> {
        let mut geometry = Vec::new();
        let last = edges.len() - 1;
        for (i, &e) in edges.iter().enumerate() {
            let len = self.edge_length_m(e);
            let start = if i == 0 {
                position_on(self, e, from)
            } else {
                0.0
            };
            let end = if i == last {
                position_on(self, e, to)
            } else {
                len
            };
            push_part(self, e, start, end, &mut geometry);
        }
        geometry
    }
}

/// Metres from `edge`'s tail to the position (on `edge` or its twin).
fn position_on(graph: &RoadGraph, edge: EdgeId, at: &Snap) -> f64 {
    let len = graph.edge_length_m(edge);
    if at.edge == edge {
        at.fraction * len
    } else {
        (1.0 - at.fraction) * len
    }
}

enum ScratchSlot<'a> {
    Owned(Box<SearchScratch>),
    Borrowed(&'a mut SearchScratch),
}

impl ScratchSlot<'_> {
    fn get(&mut self) -> &mut SearchScratch {
        match self {
            ScratchSlot::Owned(s) => s,
            ScratchSlot::Borrowed(s) => s,
        }
    }

    fn peek(&self) -> &SearchScratch {
        match self {
            ScratchSlot::Owned(s) => s,
            ScratchSlot::Borrowed(s) => s,
        }
    }
}

/// Travel times for one metric from any number of sources to one target,
/// computed lazily; see the [module docs](self).
pub struct ReverseSearch<'a> {
    graph: &'a RoadGraph,
    set: usize,
    target: Snap,
    scratch: ScratchSlot<'a>,
}

impl<'a> ReverseSearch<'a> {
    /// A search towards `target` (snapped for `metric`) with its own labels.
    pub fn new(
        graph: &'a RoadGraph,
        metric: impl Into<Metric>,
        target: &Snap,
    ) -> ReverseSearch<'a> {
        Self::start(
            graph,
            metric.into(),
            target,
            ScratchSlot::Owned(Box::default()),
        )
    }

    /// A search reusing `scratch` (no allocation once it has seen this graph).
    pub fn with_scratch(
        graph: &'a RoadGraph,
        metric: impl Into<Metric>,
        target: &Snap,
        scratch: &'a mut SearchScratch,
    ) -> ReverseSearch<'a> {
        Self::start(graph, metric.into(), target, ScratchSlot::Borrowed(scratch))
    }

    fn start(
        graph: &'a RoadGraph,
        metric: Metric,
        target: &Snap,
        scratch: ScratchSlot<'a>,
    ) -> Self {
        let mut search = ReverseSearch {
            graph,
            set: metric.set(),
            target: *target,
            scratch,
        };
        let s = search.scratch.get();
        s.reset(graph.node_count());
        for end in arriving(graph, search.set, target).iter() {
            s.label(end.node, end.ms, end.metres, PARTIAL | end.edge);
        }
        search
    }

    /// The fastest time and its path length from `source` (snapped for this
    /// search's metric) to the target; `None` when the target cannot be reached
    /// from there. Settles only as far as this answer needs.
    pub fn eta_from(&mut self, source: &Snap) -> Option<Eta> {
        self.eta_from_within(source, f64::INFINITY)
    }

    /// [`ReverseSearch::eta_from`] when the answer is below `max_seconds`,
    /// else `None`: settles no further than `max_seconds` needs. What a top-k
    /// ranking asks once it has k answers (the k-th best is the limit), so a
    /// unit a short walk away but a long drive round a one-way maze costs no
    /// more than the maze's first `max_seconds`.
    pub fn eta_from_within(&mut self, source: &Snap, max_seconds: f64) -> Option<Eta> {
        let limit_ms = if max_seconds.is_finite() {
            (max_seconds * 1000.0).ceil().max(0.0) as u64
        } else {
            u64::MAX
        };
        let best = self.best_from(source, limit_ms)?;
        Some(match best {
            Best::Direct { ms, metres, .. } | Best::End { ms, metres, .. } => Eta {
                seconds: ms as f64 / 1000.0,
                metres,
            },
        })
    }

    fn best_from(&mut self, source: &Snap, limit_ms: u64) -> Option<Best> {
        let (graph, set) = (self.graph, self.set);
        let finish = leaving(graph, set, source);
        let direct = direct(graph, set, source, &self.target);
        settle_until(
            graph,
            set,
            self.scratch.get(),
            true,
            &finish,
            direct,
            limit_ms,
        )
    }

    /// [`ReverseSearch::eta_from`] with the path: edges and geometry from the
    /// source's snapped point to the target's.
    pub fn route_from(&mut self, source: &Snap) -> Option<Route> {
        let best = self.best_from(source, u64::MAX)?;
        let graph = self.graph;
        let target = self.target;
        Some(match best {
            Best::Direct { ms, metres, edge } => {
                let mut geometry = Vec::new();
                let (a, b) = (
                    position_on(graph, edge, source),
                    position_on(graph, edge, &target),
                );
                push_part(graph, edge, a, b, &mut geometry);
                Route {
                    seconds: ms as f64 / 1000.0,
                    metres,
                    edges: vec![edge],
                    geometry,
                }
            }
            Best::End { ms, metres, end } => {
                let scratch = self.scratch.peek();
                let mut edges = vec![end.edge];
                let mut v = end.node;
                loop {
                    let via = scratch.via[v as usize];
                    edges.push(via & !PARTIAL);
                    if via & PARTIAL != 0 {
                        break;
                    }
                    v = graph.edge_head(via);
                }
                let geometry = graph.path_geometry(&edges, source, &target);
                Route {
                    seconds: ms as f64 / 1000.0,
                    metres,
                    edges,
                    geometry,
                }
            }
        })
    }

    /// Every source whose time is below this many seconds could already be
    /// answered without settling more; infinite once the whole reachable
    /// graph is settled.
    pub fn frontier_seconds(&mut self) -> f64 {
        self.scratch
            .get()
            .frontier_ms()
            .map_or(f64::INFINITY, |ms| f64::from(ms) / 1000.0)
    }

    /// Nodes settled so far (a measure of the work done).
    pub fn settled_nodes(&self) -> usize {
        self.scratch.peek().settled
    }

    /// The target this search runs to.
    pub fn target(&self) -> &Snap {
        &self.target
    }
}
