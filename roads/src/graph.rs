//! The street network as a compact directed graph.
//!
//! Nodes are the junctions and dead ends of the ways; a *segment* is the stretch
//! of one way between two nodes, with the way's node polyline as its geometry.
//! Every segment gives two directed *edges*, one along the way's node order and
//! its *twin* against it, so a point on a street can be left in either
//! direction; whether a profile may use a direction is in that profile's
//! weights, not in the topology. Edges are stored in CSR order (grouped by tail
//! node) with a reverse adjacency beside them, and each profile's travel time
//! per edge is precomputed in whole milliseconds ([`FORBIDDEN`] = not allowed).
//!
//! The graph knows nothing about OSM files: [`GraphBuilder`] takes ways as node
//! polylines with [`WayAttributes`]. Lengths are great-circle metres;
//! coordinates are WGS84 degrees, x = longitude, y = latitude.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::geo::{Bounds, LonLat};
use crate::profile::{FORBIDDEN as FORBIDDEN_MS, Metric, ProfileConfig, WEIGHT_SETS, travel_ms};
use crate::snap::SnapIndex;

/// A node of a [`RoadGraph`]: an index into its nodes.
pub type NodeId = u32;
/// A directed edge of a [`RoadGraph`]: an index into its edges.
pub type EdgeId = u32;

/// The weight of an edge a profile may not use.
pub const FORBIDDEN: u32 = FORBIDDEN_MS;

/// What kind of way a segment belongs to (OSM `highway=*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum WayClass {
    Motorway,
    MotorwayLink,
    Trunk,
    TrunkLink,
    Primary,
    PrimaryLink,
    Secondary,
    SecondaryLink,
    Tertiary,
    TertiaryLink,
    Unclassified,
    Residential,
    LivingStreet,
    Service,
    Road,
    /// A road for buses only.
    Busway,
    Track,
    /// A pedestrian street.
    Pedestrian,
    Footway,
    Path,
    Cycleway,
    Bridleway,
    Steps,
    /// An indoor passage.
    Corridor,
    /// A public transport platform.
    Platform,
    /// Any other `highway` value (walkable unless tagged otherwise).
    Other,
}

/// An access value (`access`, `foot`, `motor_vehicle`, ... in OSM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Not allowed.
    No,
    /// Only with the owner's permission: treated as not allowed.
    Private,
    /// Only to reach a destination on the way: allowed.
    Destination,
    /// Allowed.
    Yes,
    /// Allowed until revoked.
    Permissive,
    /// Meant for this mode of travel.
    Designated,
}

impl Access {
    /// True when this value lets the mode of travel through.
    pub fn allows(self) -> bool {
        !matches!(self, Access::No | Access::Private)
    }
}

/// A one-way restriction, relative to the way's node order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Oneway {
    /// Both directions.
    #[default]
    No,
    /// Only along the node order.
    Forward,
    /// Only against the node order.
    Backward,
    /// The direction changes by time of day: neither, for routing.
    Reversible,
}

/// Whether a road has a sidewalk on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sidewalk {
    /// Not tagged.
    #[default]
    Unknown,
    /// Tagged as having none.
    No,
    /// On one side or both.
    Yes,
    /// Mapped as its own footway beside the road.
    Separate,
}

/// What the profiles need to know about a way: its class, one-way rules and
/// access by mode of travel. `None` means "not tagged" (the class's default).
#[derive(Debug, Clone, PartialEq)]
pub struct WayAttributes {
    /// The kind of way.
    pub class: WayClass,
    /// One-way for vehicles (`oneway`, implied by roundabouts and motorways).
    pub oneway: Oneway,
    /// `oneway:bicycle`: `Some(false)` lets bicycles ride against `oneway`.
    pub oneway_bicycle: Option<bool>,
    /// `oneway:foot`, the only one-way someone on foot obeys.
    pub oneway_foot: Oneway,
    /// `oneway:psv` / `oneway:bus`: `Some(false)` is a contraflow bus lane.
    pub oneway_psv: Option<bool>,
    /// `access`, for everyone.
    pub access: Option<Access>,
    /// `motor_vehicle` (or `motorcar`, or `vehicle`), for cars.
    pub motor_vehicle: Option<Access>,
    /// `motorcycle`, for motorcycles (else `motor_vehicle` applies).
    pub motorcycle: Option<Access>,
    /// `foot`.
    pub foot: Option<Access>,
    /// `bicycle` (or `vehicle`).
    pub bicycle: Option<Access>,
    /// `psv`: public service vehicles.
    pub psv: Option<Access>,
    /// `bus`.
    pub bus: Option<Access>,
    /// `emergency`: emergency vehicles.
    pub emergency: Option<Access>,
    /// `sidewalk` and `sidewalk:*`.
    pub sidewalk: Sidewalk,
    /// `maxspeed`, km/h.
    pub maxspeed_kmh: Option<f32>,
    /// `area=yes`: the outline of a square, walkable along its edge.
    pub area: bool,
    /// `name`.
    pub name: Option<Arc<str>>,
}

impl WayAttributes {
    /// A two-way way of `class` with nothing else tagged.
    pub fn new(class: WayClass) -> WayAttributes {
        WayAttributes {
            class,
            oneway: Oneway::No,
            oneway_bicycle: None,
            oneway_foot: Oneway::No,
            oneway_psv: None,
            access: None,
            motor_vehicle: None,
            motorcycle: None,
            foot: None,
            bicycle: None,
            psv: None,
            bus: None,
            emergency: None,
            sidewalk: Sidewalk::Unknown,
            maxspeed_kmh: None,
            area: false,
            name: None,
        }
    }

    /// The attributes as bytes in a fixed layout, for the fingerprint.
    fn fingerprint_bytes(&self, out: &mut Vec<u8>) {
        let access = |a: Option<Access>| a.map_or(0u8, |a| a as u8 + 1);
        let flag = |b: Option<bool>| b.map_or(0u8, |b| u8::from(b) + 1);
        out.extend([
            self.class as u8,
            self.oneway as u8,
            flag(self.oneway_bicycle),
            self.oneway_foot as u8,
            flag(self.oneway_psv),
            access(self.access),
            access(self.motor_vehicle),
            access(self.motorcycle),
            access(self.foot),
            access(self.bicycle),
            access(self.psv),
            access(self.bus),
            access(self.emergency),
            self.sidewalk as u8,
            u8::from(self.area),
        ]);
        out.extend(
            self.maxspeed_kmh
                .map_or(u32::MAX, f32::to_bits)
                .to_le_bytes(),
        );
        let name = self.name.as_deref().unwrap_or("");
        out.extend((name.len() as u32).to_le_bytes());
        out.extend(name.as_bytes());
    }
}

/// Collects ways and builds a [`RoadGraph`].
///
/// Ways meet where they share a node key (an OSM node id, or any number a test
/// picks). Ways are split into segments at every node used more than once;
/// the other nodes become the segments' geometry.
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    config: ProfileConfig,
    ways: Vec<(Vec<(i64, LonLat)>, WayAttributes)>,
    keep_largest_components: bool,
}

/// One stretch of a way between two nodes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub way: u32,
    pub tail: NodeId,
    pub head: NodeId,
    /// Its inner points: `geometry[start..end]` of the graph.
    pub geometry: (u32, u32),
    pub length_m: f64,
    /// The edge along the way's node order and its twin.
    pub edges: [EdgeId; 2],
}

impl GraphBuilder {
    /// A builder whose graph will carry `config`'s travel times.
    pub fn new(config: ProfileConfig) -> GraphBuilder {
        GraphBuilder {
            config,
            ways: Vec::new(),
            keep_largest_components: false,
        }
    }

    /// Keep, per weight set, only the edges inside its largest strongly
    /// connected component (others become [`FORBIDDEN`] for it), so that every
    /// snapped position can reach every other. Off by default.
    pub fn keep_largest_components(mut self, keep: bool) -> GraphBuilder {
        self.keep_largest_components = keep;
        self
    }

    /// Adds a way: its nodes in order as (key, position), and its attributes.
    /// A way of fewer than two distinct nodes adds nothing.
    pub fn add_way(
        &mut self,
        nodes: impl IntoIterator<Item = (i64, LonLat)>,
        attributes: WayAttributes,
    ) {
        let mut nodes: Vec<(i64, LonLat)> = nodes.into_iter().collect();
        nodes.dedup_by_key(|(key, _)| *key);
        if nodes.len() >= 2 {
            self.ways.push((nodes, attributes));
        }
    }

    /// Number of ways added so far.
    pub fn way_count(&self) -> usize {
        self.ways.len()
    }

    /// Splits, weighs, prunes and packs the ways into a graph. Segments no
    /// profile may use in either direction are left out, and so are nodes
    /// without segments.
    pub fn build(self) -> RoadGraph {
        let GraphBuilder {
            config,
            ways,
            keep_largest_components,
        } = self;

        // Which nodes are junctions or ends: used more than once.
        let mut uses: HashMap<i64, u32> = HashMap::new();
        for (nodes, _) in &ways {
            for (i, (key, _)) in nodes.iter().enumerate() {
                let end = i == 0 || i + 1 == nodes.len();
                *uses.entry(*key).or_default() += if end { 2 } else { 1 };
            }
        }

        // Split into raw segments; node ids by first appearance.
        struct Raw {
            way: u32,
            tail: u32,
            head: u32,
            points: Vec<LonLat>,
            length_m: f64,
            weights: [[u32; 2]; WEIGHT_SETS],
        }
        let mut node_of: HashMap<i64, u32> = HashMap::new();
        let mut coords: Vec<LonLat> = Vec::new();
        let mut raws: Vec<Raw> = Vec::new();
        for (way, (nodes, attrs)) in ways.iter().enumerate() {
            let mut node = |key: i64, p: LonLat| {
                *node_of.entry(key).or_insert_with(|| {
                    coords.push(p);
                    coords.len() as u32 - 1
                })
            };
            let mut start = 0;
            for i in 1..nodes.len() {
                let is_node = i + 1 == nodes.len() || uses[&nodes[i].0] >= 2;
                if !is_node {
                    continue;
                }
                let points: Vec<LonLat> = nodes[start..=i].iter().map(|&(_, p)| p).collect();
                let length_m: f64 = points.windows(2).map(|w| w[0].distance_m(&w[1])).sum();
                let tail = node(nodes[start].0, nodes[start].1);
                let head = node(nodes[i].0, nodes[i].1);
                start = i;
                if tail == head && length_m == 0.0 {
                    continue;
                }
                let mut weights = [[FORBIDDEN; 2]; WEIGHT_SETS];
                for (set, metric) in Metric::DISTINCT.iter().enumerate() {
                    weights[set] = [
                        travel_ms(attrs, length_m, true, *metric, &config),
                        travel_ms(attrs, length_m, false, *metric, &config),
                    ];
                }
                raws.push(Raw {
                    way: way as u32,
                    tail,
                    head,
                    points,
                    length_m,
                    weights,
                });
            }
        }
        assert!(raws.len() < 1 << 30, "at most 2^31 edges");
        let usable = |r: &Raw| r.weights.iter().flatten().any(|&w| w != FORBIDDEN);
        raws.retain(usable);

        if keep_largest_components {
            for set in 0..WEIGHT_SETS {
                let mut arcs = Vec::new();
                for r in &raws {
                    if r.weights[set][0] != FORBIDDEN {
                        arcs.push((r.tail, r.head));
                    }
                    if r.weights[set][1] != FORBIDDEN {
                        arcs.push((r.head, r.tail));
                    }
                }
                let inside = largest_strongly_connected(coords.len(), &arcs);
                for r in &mut raws {
                    if !(inside[r.tail as usize] && inside[r.head as usize]) {
                        r.weights[set] = [FORBIDDEN; 2];
                    }
                }
            }
            raws.retain(usable);
        }

        // Compact: nodes in order of first use by a kept segment.
        let mut renumber = vec![u32::MAX; coords.len()];
        let mut nodes: Vec<LonLat> = Vec::new();
        for r in &mut raws {
            for n in [&mut r.tail, &mut r.head] {
                if renumber[*n as usize] == u32::MAX {
                    renumber[*n as usize] = nodes.len() as u32;
                    nodes.push(coords[*n as usize]);
                }
                *n = renumber[*n as usize];
            }
        }

        // Directed edges: 2s along the way, 2s+1 against it, then CSR order.
        let n = nodes.len();
        let m = raws.len() * 2;
        let tail_of = |d: usize| {
            let r = &raws[d / 2];
            if d.is_multiple_of(2) { r.tail } else { r.head }
        };
        let mut first_out = vec![0u32; n + 1];
        for d in 0..m {
            first_out[tail_of(d) as usize + 1] += 1;
        }
        for v in 0..n {
            first_out[v + 1] += first_out[v];
        }
        let mut position = first_out.clone();
        let mut edge_of_directed = vec![0u32; m];
        for (d, slot) in edge_of_directed.iter_mut().enumerate() {
            let t = tail_of(d) as usize;
            *slot = position[t];
            position[t] += 1;
        }
        let mut head = vec![0u32; m];
        let mut tail = vec![0u32; m];
        let mut edge_segment = vec![0u32; m];
        let mut weights: [Vec<u32>; WEIGHT_SETS] = std::array::from_fn(|_| vec![FORBIDDEN; m]);
        let mut segments = Vec::with_capacity(raws.len());
        let mut geometry = Vec::new();
        for (s, r) in raws.iter().enumerate() {
            let along = edge_of_directed[2 * s];
            let against = edge_of_directed[2 * s + 1];
            for (dir, e) in [(0usize, along), (1, against)] {
                let e = e as usize;
                (tail[e], head[e]) = if dir == 0 {
                    (r.tail, r.head)
                } else {
                    (r.head, r.tail)
                };
                edge_segment[e] = (s as u32) << 1 | dir as u32;
                for (set, weights) in weights.iter_mut().enumerate() {
                    weights[e] = r.weights[set][dir];
                }
            }
            let start = geometry.len() as u32;
            geometry.extend_from_slice(&r.points[1..r.points.len() - 1]);
            segments.push(Segment {
                way: r.way,
                tail: r.tail,
                head: r.head,
                geometry: (start, geometry.len() as u32),
                length_m: r.length_m,
                edges: [along, against],
            });
        }

        // Reverse adjacency: edges grouped by head.
        let mut first_in = vec![0u32; n + 1];
        for &h in &head {
            first_in[h as usize + 1] += 1;
        }
        for v in 0..n {
            first_in[v + 1] += first_in[v];
        }
        let mut position = first_in.clone();
        let mut in_edges = vec![0u32; m];
        for (e, &h) in head.iter().enumerate() {
            in_edges[position[h as usize] as usize] = e as u32;
            position[h as usize] += 1;
        }

        let mut max_speed_mps = [0.0f64; WEIGHT_SETS];
        for (set, max) in max_speed_mps.iter_mut().enumerate() {
            for (e, &w) in weights[set].iter().enumerate() {
                let length = segments[(edge_segment[e] >> 1) as usize].length_m;
                if w != FORBIDDEN && w > 0 {
                    *max = max.max(length * 1000.0 / f64::from(w));
                }
            }
        }

        let bounds = Bounds::around(nodes.iter().chain(&geometry).copied()).unwrap_or(Bounds {
            west: 0.0,
            south: 0.0,
            east: 0.0,
            north: 0.0,
        });
        let ways = ways.into_iter().map(|(_, attrs)| attrs).collect();
        let mut graph = RoadGraph {
            config,
            nodes,
            first_out,
            head,
            tail,
            edge_segment,
            weights,
            first_in,
            in_edges,
            segments,
            geometry,
            ways,
            max_speed_mps,
            bounds,
            snap: SnapIndex::default(),
        };
        graph.snap = SnapIndex::new(&graph);
        graph
    }
}

/// A routable street network; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RoadGraph {
    config: ProfileConfig,
    nodes: Vec<LonLat>,
    first_out: Vec<u32>,
    head: Vec<NodeId>,
    tail: Vec<NodeId>,
    /// Segment index << 1 | 1 when the edge runs against the way's node order.
    edge_segment: Vec<u32>,
    weights: [Vec<u32>; WEIGHT_SETS],
    first_in: Vec<u32>,
    in_edges: Vec<EdgeId>,
    pub(crate) segments: Vec<Segment>,
    geometry: Vec<LonLat>,
    ways: Vec<WayAttributes>,
    max_speed_mps: [f64; WEIGHT_SETS],
    bounds: Bounds,
    pub(crate) snap: SnapIndex,
}

impl RoadGraph {
    /// The profile settings its travel times were computed with.
    pub fn config(&self) -> &ProfileConfig {
        &self.config
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of directed edges (twice the number of segments).
    pub fn edge_count(&self) -> usize {
        self.head.len()
    }

    /// True when the graph has no edges.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// A node's position.
    pub fn node(&self, node: NodeId) -> LonLat {
        self.nodes[node as usize]
    }

    /// The edges leaving `node`: a contiguous range of edge ids.
    pub fn out_edges(&self, node: NodeId) -> Range<EdgeId> {
        self.first_out[node as usize]..self.first_out[node as usize + 1]
    }

    /// The edges arriving at `node`.
    pub fn in_edges(&self, node: NodeId) -> &[EdgeId] {
        let v = node as usize;
        &self.in_edges[self.first_in[v] as usize..self.first_in[v + 1] as usize]
    }

    /// The node an edge leaves.
    pub fn edge_tail(&self, edge: EdgeId) -> NodeId {
        self.tail[edge as usize]
    }

    /// The node an edge arrives at.
    pub fn edge_head(&self, edge: EdgeId) -> NodeId {
        self.head[edge as usize]
    }

    /// The same stretch of street in the other direction.
    pub fn twin(&self, edge: EdgeId) -> EdgeId {
        let s = self.edge_segment[edge as usize];
        self.segments[(s >> 1) as usize].edges[(s & 1 ^ 1) as usize]
    }

    /// True when the edge runs along its way's node order.
    pub fn is_along_way(&self, edge: EdgeId) -> bool {
        self.edge_segment[edge as usize] & 1 == 0
    }

    fn segment_of(&self, edge: EdgeId) -> &Segment {
        &self.segments[(self.edge_segment[edge as usize] >> 1) as usize]
    }

    /// An edge's length along its geometry, metres.
    pub fn edge_length_m(&self, edge: EdgeId) -> f64 {
        self.segment_of(edge).length_m
    }

    /// The attributes of the way an edge belongs to.
    pub fn edge_attributes(&self, edge: EdgeId) -> &WayAttributes {
        &self.ways[self.segment_of(edge).way as usize]
    }

    /// The time to travel the whole edge under `metric`, milliseconds;
    /// `None` when the metric may not use it.
    pub fn weight_ms(&self, metric: Metric, edge: EdgeId) -> Option<u32> {
        let w = self.weights[metric.set()][edge as usize];
        (w != FORBIDDEN).then_some(w)
    }

    /// The raw weight ([`FORBIDDEN`] when not allowed), for searches.
    pub(crate) fn raw_weight(&self, set: usize, edge: EdgeId) -> u32 {
        self.weights[set][edge as usize]
    }

    /// True when `metric` may travel the edge in its direction.
    pub fn is_usable(&self, edge: EdgeId, metric: Metric) -> bool {
        self.weights[metric.set()][edge as usize] != FORBIDDEN
    }

    /// The edge's polyline in its direction of travel: its tail, its inner
    /// points, its head.
    pub fn edge_points(&self, edge: EdgeId) -> impl DoubleEndedIterator<Item = LonLat> + '_ {
        let seg = self.segment_of(edge);
        let inner = &self.geometry[seg.geometry.0 as usize..seg.geometry.1 as usize];
        let points = std::iter::once(self.nodes[seg.tail as usize])
            .chain(inner.iter().copied())
            .chain(std::iter::once(self.nodes[seg.head as usize]));
        let along = self.is_along_way(edge);
        let (fwd, back) = if along {
            (Some(points), None)
        } else {
            (None, Some(points.rev()))
        };
        fwd.into_iter().flatten().chain(back.into_iter().flatten())
    }

    /// The point `offset_m` metres from the edge's tail along its geometry
    /// (clamped to the edge).
    pub fn point_along(&self, edge: EdgeId, offset_m: f64) -> LonLat {
        let mut left = offset_m.max(0.0);
        let mut points = self.edge_points(edge);
        let mut at = points.next().expect("an edge has two ends");
        for next in points {
            let leg = at.distance_m(&next);
            if left <= leg && leg > 0.0 {
                return at.lerp(next, left / leg);
            }
            left -= leg;
            at = next;
        }
        at
    }

    /// The fastest speed `metric` reaches on any edge, metres per second, from
    /// the stored (rounded up) times: a path of `d` metres takes at least
    /// `d / max_speed_mps` seconds, so the straight-line distance between two
    /// snapped points over this speed is a lower bound of their ETA. 0 when the
    /// metric may use no edge.
    pub fn max_speed_mps(&self, metric: Metric) -> f64 {
        self.max_speed_mps[metric.set()]
    }

    /// The extent of every node and geometry point.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// A stable content fingerprint: 32 hex digits of FNV-1a 128 over the node
    /// coordinates, the segments (ends, way, geometry), the way attributes and
    /// the profile configuration, in a fixed little-endian layout. It depends
    /// only on the inputs (not on floating-point results such as lengths, nor on
    /// hash-map order), so it is the same on every machine and every build:
    /// servers compare it to know they loaded the same map with the same
    /// profiles.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv128::new();
        let mut buf = Vec::with_capacity(256);
        h.write(b"patrol-roads graph v1");
        h.write(&(self.nodes.len() as u64).to_le_bytes());
        for p in &self.nodes {
            h.write(&p.lon.to_bits().to_le_bytes());
            h.write(&p.lat.to_bits().to_le_bytes());
        }
        h.write(&(self.segments.len() as u64).to_le_bytes());
        for s in &self.segments {
            for v in [s.tail, s.head, s.way, s.geometry.1 - s.geometry.0] {
                h.write(&v.to_le_bytes());
            }
            for p in &self.geometry[s.geometry.0 as usize..s.geometry.1 as usize] {
                h.write(&p.lon.to_bits().to_le_bytes());
                h.write(&p.lat.to_bits().to_le_bytes());
            }
        }
        h.write(&(self.ways.len() as u64).to_le_bytes());
        for w in &self.ways {
            buf.clear();
            w.fingerprint_bytes(&mut buf);
            h.write(&buf);
        }
        for v in self.config.fingerprint_values() {
            h.write(&v.to_bits().to_le_bytes());
        }
        format!("{:032x}", h.0)
    }

    /// Heap memory held by the graph and its snapping index, bytes (the index's
    /// inner nodes estimated).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let vec = |len: usize, size: usize| len * size;
        let names: usize = self
            .ways
            .iter()
            .filter_map(|w| w.name.as_ref().map(|n| n.len()))
            .sum();
        vec(self.nodes.capacity(), size_of::<LonLat>())
            + vec(self.first_out.capacity(), 4)
            + vec(self.head.capacity(), 4)
            + vec(self.tail.capacity(), 4)
            + vec(self.edge_segment.capacity(), 4)
            + self.weights.iter().map(|w| w.capacity() * 4).sum::<usize>()
            + vec(self.first_in.capacity(), 4)
            + vec(self.in_edges.capacity(), 4)
            + vec(self.segments.capacity(), size_of::<Segment>())
            + vec(self.geometry.capacity(), size_of::<LonLat>())
            + vec(self.ways.capacity(), size_of::<WayAttributes>())
            + names
            + self.snap.memory_bytes()
    }
}

/// FNV-1a, 128 bits: a tiny, fully specified hash (no crate, no seed).
struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    fn new() -> Self {
        Fnv128(Self::OFFSET)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
}

/// Which of `n` nodes lie in the largest strongly connected component of the
/// directed `arcs` (Kosaraju, iterative). Ties go to the component found first.
pub(crate) fn largest_strongly_connected(n: usize, arcs: &[(u32, u32)]) -> Vec<bool> {
    let csr = |pairs: &mut dyn Iterator<Item = (u32, u32)>| {
        let pairs: Vec<(u32, u32)> = pairs.collect();
        let mut first = vec![0u32; n + 1];
        for &(a, _) in &pairs {
            first[a as usize + 1] += 1;
        }
        for v in 0..n {
            first[v + 1] += first[v];
        }
        let mut pos = first.clone();
        let mut to = vec![0u32; pairs.len()];
        for &(a, b) in &pairs {
            to[pos[a as usize] as usize] = b;
            pos[a as usize] += 1;
        }
        (first, to)
    };
    let (first, to) = csr(&mut arcs.iter().copied());
    let (rfirst, rto) = csr(&mut arcs.iter().map(|&(a, b)| (b, a)));

    let mut visited = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for start in 0..n {
        if visited[start] {
            continue;
        }
        visited[start] = true;
        stack.push((start as u32, first[start]));
        while let Some((v, next)) = stack.last_mut() {
            if *next < first[*v as usize + 1] {
                let w = to[*next as usize];
                *next += 1;
                if !visited[w as usize] {
                    visited[w as usize] = true;
                    stack.push((w, first[w as usize]));
                }
            } else {
                order.push(*v);
                stack.pop();
            }
        }
    }
    let mut component = vec![u32::MAX; n];
    let (mut best, mut best_size) = (u32::MAX, 0usize);
    let mut count = 0u32;
    let mut todo = Vec::new();
    for &start in order.iter().rev() {
        if component[start as usize] != u32::MAX {
            continue;
        }
        let c = count;
        count += 1;
        component[start as usize] = c;
        todo.push(start);
        let mut size = 0;
        while let Some(v) = todo.pop() {
            size += 1;
            for &u in &rto[rfirst[v as usize] as usize..rfirst[v as usize + 1] as usize] {
                if component[u as usize] == u32::MAX {
                    component[u as usize] = c;
                    todo.push(u);
                }
            }
        }
        if size > best_size {
            (best, best_size) = (c, size);
        }
    }
    component.iter().map(|&c| c == best).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    /// Roughly `x` metres east and `y` north of (24.94, 60.17), by IEEE
    /// arithmetic alone (no libm), so the golden fingerprint holds anywhere.
    fn at(x: f64, y: f64) -> LonLat {
        LonLat::new(24.94 + x / 55_000.0, 60.17 + y / 111_000.0)
    }

    fn residential() -> WayAttributes {
        WayAttributes::new(WayClass::Residential)
    }

    /// A-B-C-D in a line (C is shared with a side street C-E), B an inner point.
    fn line() -> RoadGraph {
        let mut b = GraphBuilder::new(ProfileConfig::default());
        b.add_way(
            [
                (1, at(0.0, 0.0)),
                (2, at(50.0, 0.0)),
                (3, at(100.0, 0.0)),
                (4, at(150.0, 0.0)),
            ],
            residential(),
        );
        b.add_way(
            [(3, at(100.0, 0.0)), (5, at(100.0, 80.0))],
            WayAttributes::new(WayClass::Footway),
        );
        b.build()
    }

    #[test]
    fn ways_split_at_shared_nodes_into_twin_edges() {
        let g = line();
        // nodes 1, 3, 4, 5; node 2 is geometry
        assert_eq!(g.node_count(), 4);
        assert_eq!(g.edge_count(), 6);
        for e in 0..g.edge_count() as u32 {
            let t = g.twin(e);
            assert_ne!(t, e);
            assert_eq!(g.twin(t), e);
            assert_eq!(g.edge_tail(t), g.edge_head(e));
            assert!(g.out_edges(g.edge_tail(e)).contains(&e));
            assert!(g.in_edges(g.edge_head(e)).contains(&e));
            let pts: Vec<_> = g.edge_points(e).collect();
            assert_eq!(pts[0], g.node(g.edge_tail(e)));
            assert_eq!(*pts.last().unwrap(), g.node(g.edge_head(e)));
            let rev: Vec<_> = g.edge_points(t).collect();
            assert_eq!(pts.iter().rev().copied().collect::<Vec<_>>(), rev);
        }
        let long = (0..6)
            .find(|&e| g.edge_points(e).count() == 3)
            .expect("1-2-3 keeps node 2");
        let expected =
            at(0.0, 0.0).distance_m(&at(50.0, 0.0)) + at(50.0, 0.0).distance_m(&at(100.0, 0.0));
        assert!((g.edge_length_m(long) - expected).abs() < 1e-9);
        assert!((g.edge_length_m(long) - 100.0).abs() < 2.0);
        let first_leg = at(0.0, 0.0).distance_m(&at(50.0, 0.0));
        let (a, b) = (
            g.point_along(long, first_leg),
            g.point_along(g.twin(long), expected - first_leg),
        );
        assert!(a.distance_m(&at(50.0, 0.0)) < 1e-6 && b.distance_m(&at(50.0, 0.0)) < 1e-6);
        let car = Metric::normal(Profile::Car);
        let footway = (0..6).filter(|&e| g.edge_attributes(e).class == WayClass::Footway);
        for e in footway {
            assert!(!g.is_usable(e, car));
            assert!(g.is_usable(e, Metric::normal(Profile::Foot)));
        }
        assert!(
            g.max_speed_mps(car) > 6.9 && g.max_speed_mps(car) < 7.0,
            "25 km/h"
        );
    }

    #[test]
    fn the_fingerprint_is_stable_and_sees_every_change() {
        let g = line();
        assert_eq!(g.fingerprint(), line().fingerprint());
        // Golden value: a change here means every deployed node must reload.
        assert_eq!(g.fingerprint(), "c4fc9519be332ecf30fef095952938f9");
    }

    #[test]
    fn the_fingerprint_changes_with_attributes_geometry_and_config() {
        let base = line().fingerprint();
        let mut b = GraphBuilder::new(ProfileConfig::default());
        b.add_way(
            [
                (1, at(0.0, 0.0)),
                (2, at(50.0, 0.0)),
                (3, at(100.0, 0.0)),
                (4, at(150.0, 0.0)),
            ],
            WayAttributes {
                oneway: Oneway::Forward,
                ..residential()
            },
        );
        b.add_way(
            [(3, at(100.0, 0.0)), (5, at(100.0, 80.0))],
            WayAttributes::new(WayClass::Footway),
        );
        assert_ne!(b.build().fingerprint(), base);
        let mut b = GraphBuilder::new(ProfileConfig::default());
        b.add_way(
            [
                (1, at(0.0, 0.0)),
                (2, at(50.0, 1.0)),
                (3, at(100.0, 0.0)),
                (4, at(150.0, 0.0)),
            ],
            residential(),
        );
        b.add_way(
            [(3, at(100.0, 0.0)), (5, at(100.0, 80.0))],
            WayAttributes::new(WayClass::Footway),
        );
        assert_ne!(b.build().fingerprint(), base);
        let mut config = ProfileConfig::default();
        config.foot.walk_kmh = 4.5;
        let mut b = GraphBuilder::new(config);
        b.add_way(
            [
                (1, at(0.0, 0.0)),
                (2, at(50.0, 0.0)),
                (3, at(100.0, 0.0)),
                (4, at(150.0, 0.0)),
            ],
            residential(),
        );
        b.add_way(
            [(3, at(100.0, 0.0)), (5, at(100.0, 80.0))],
            WayAttributes::new(WayClass::Footway),
        );
        assert_ne!(b.build().fingerprint(), base);
    }

    #[test]
    fn unusable_ways_and_small_components_are_left_out() {
        let mut b = GraphBuilder::new(ProfileConfig::default()).keep_largest_components(true);
        // a two-way square
        let sq = [
            (1, at(0.0, 0.0)),
            (2, at(100.0, 0.0)),
            (3, at(100.0, 100.0)),
            (4, at(0.0, 100.0)),
            (1, at(0.0, 0.0)),
        ];
        b.add_way(sq, residential());
        // a car can enter 5 but not leave it: outside the car's component
        b.add_way(
            [(2, at(100.0, 0.0)), (5, at(200.0, 0.0))],
            WayAttributes {
                oneway: Oneway::Forward,
                ..residential()
            },
        );
        // a motorway-only stub nobody on foot may use, with no way back
        b.add_way(
            [(6, at(500.0, 0.0)), (7, at(600.0, 0.0))],
            WayAttributes {
                oneway: Oneway::Forward,
                ..WayAttributes::new(WayClass::Motorway)
            },
        );
        let g = b.build();
        // nodes 1, 2 (junctions) and 5 (a dead end); 3 and 4 are geometry
        assert_eq!(g.node_count(), 3, "the motorway stub is gone");
        assert!((0..3).all(|n| g.node(n).distance_m(&at(500.0, 0.0)) > 100.0));
        let car = Metric::normal(Profile::Car);
        let to_five = (0..g.edge_count() as u32)
            .find(|&e| g.node(g.edge_head(e)).distance_m(&at(200.0, 0.0)) < 0.01)
            .unwrap();
        assert!(!g.is_usable(to_five, car), "a dead end for cars");
        assert!(
            g.is_usable(to_five, Metric::normal(Profile::Foot)),
            "walkable both ways"
        );
    }

    #[test]
    fn largest_component_of_a_small_digraph() {
        // 0 <-> 1 <-> 2 cycle-ish, 3 -> 0 only, 4 alone
        let arcs = [(0, 1), (1, 0), (1, 2), (2, 1), (3, 0)];
        let inside = largest_strongly_connected(5, &arcs);
        assert_eq!(inside, vec![true, true, true, false, false]);
        assert_eq!(largest_strongly_connected(0, &[]), Vec::<bool>::new());
    }
}
