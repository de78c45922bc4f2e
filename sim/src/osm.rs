//! The demo city's map, read from an OpenStreetMap `.osm.pbf` extract: a routable
//! graph for cars, one for people on foot, and the mapped surveillance cameras.
//!
//! Pure: no network, no clock. Coordinates are WGS84 degrees with x = longitude and
//! y = latitude; distances are metres (haversine), angles degrees clockwise from
//! north. Map data (c) OpenStreetMap contributors, ODbL 1.0.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use osmpbf::{Element, ElementReader, RelMemberType};
use rand::{Rng, RngExt};

/// Mean Earth radius in metres (IUGG), for haversine distances.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point on the map: x = longitude, y = latitude, WGS84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lon: f64,
    pub lat: f64,
}

impl Point {
    pub fn new(lon: f64, lat: f64) -> Self {
        Self { lon, lat }
    }

    /// The point `t` (0..=1) of the way to `other`, interpolated in degrees: exact
    /// enough over the few hundred metres of one street segment.
    pub fn lerp(self, other: Point, t: f64) -> Point {
        Point::new(
            self.lon + (other.lon - self.lon) * t,
            self.lat + (other.lat - self.lat) * t,
        )
    }
}

/// Great-circle distance in metres.
pub fn haversine_m(a: Point, b: Point) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Initial bearing from `a` to `b`, degrees clockwise from true north in [0, 360).
pub fn bearing_deg(a: Point, b: Point) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlon = (b.lon - a.lon).to_radians();
    let y = dlon.sin() * lat2.cos();
    let x = lat1.cos() * lat2.sin() - lat1.sin() * lat2.cos() * dlon.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

/// Parses an OSM direction value (`direction`, `camera:direction`): degrees
/// ("45", "292.5"), a 16-point compass letter ("N", "NE", "WSW"), a range ("0-90",
/// its middle) or a list ("45;135", its first). Returns degrees in [0, 360).
pub fn parse_direction(value: &str) -> Option<f64> {
    const COMPASS: [&str; 16] = [
        "N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW",
        "NW", "NNW",
    ];
    let first = value.split(';').next()?.trim();
    if let Some(i) = COMPASS.iter().position(|c| c.eq_ignore_ascii_case(first)) {
        return Some(i as f64 * 22.5);
    }
    if let Ok(deg) = first.parse::<f64>() {
        return deg.is_finite().then(|| deg.rem_euclid(360.0));
    }
    // A range "from-to", clockwise; the sign of a leading number is not a separator.
    let split = first.char_indices().skip(1).find(|&(_, c)| c == '-')?.0;
    let from = parse_direction(&first[..split])?;
    let to = parse_direction(&first[split + 1..])?;
    Some((from + (to - from).rem_euclid(360.0) / 2.0).rem_euclid(360.0))
}

/// A geographic box in WGS84 degrees (west/east longitudes, south/north latitudes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

/// A directed edge of a [`RoadGraph`].
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub to: usize,
    /// Haversine length in metres.
    pub length_m: f64,
}

/// A shortest path: node indexes from start to end, and its length in metres.
#[derive(Debug, Clone)]
pub struct NetworkPath {
    pub nodes: Vec<usize>,
    pub length_m: f64,
}

/// A routable street network: OSM way nodes joined by the way segments between
/// them. Only the largest strongly connected component is kept, so every node can
/// reach every other (respecting one-way streets for cars).
#[derive(Debug, Clone, Default)]
pub struct RoadGraph {
    points: Vec<Point>,
    edges: Vec<Vec<Edge>>,
    /// Nodes a patrol would choose as a destination: for foot, those on footways and
    /// pedestrian streets; for cars, all.
    patrol_nodes: Vec<usize>,
}

impl RoadGraph {
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn point(&self, node: usize) -> Point {
        self.points[node]
    }

    pub fn edges(&self, node: usize) -> &[Edge] {
        &self.edges[node]
    }

    /// The node closest to `p` (brute force: a city centre has ~10^4 nodes).
    pub fn nearest_node(&self, p: Point) -> Option<usize> {
        // Equirectangular squared distance: monotonic in metres at this scale.
        let k = p.lat.to_radians().cos();
        let dist_2 = |q: &Point| ((q.lon - p.lon) * k).powi(2) + (q.lat - p.lat).powi(2);
        (0..self.points.len())
            .min_by(|&a, &b| dist_2(&self.points[a]).total_cmp(&dist_2(&self.points[b])))
    }

    /// A random node preferred for patrols (see `patrol_nodes`).
    pub fn random_patrol_node<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<usize> {
        let pool = if self.patrol_nodes.is_empty() {
            self.len()
        } else {
            self.patrol_nodes.len()
        };
        (pool > 0).then(|| {
            let i = rng.random_range(0..pool);
            self.patrol_nodes.get(i).copied().unwrap_or(i)
        })
    }

    /// A random point on a random edge of the network.
    pub fn random_point<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Point> {
        let node = rng.random_range(0..self.len().max(1));
        let from = *self.points.get(node)?;
        let edges = &self.edges[node];
        if edges.is_empty() {
            return Some(from);
        }
        let to = self.points[edges[rng.random_range(0..edges.len())].to];
        Some(from.lerp(to, rng.random_range(0.0..1.0)))
    }

    /// Dijkstra by metres from `from` to `to`; `None` when unreachable.
    pub fn shortest_path(&self, from: usize, to: usize) -> Option<NetworkPath> {
        let n = self.len();
        if from >= n || to >= n {
            return None;
        }
        let mut dist = vec![f64::INFINITY; n];
        let mut prev = vec![usize::MAX; n];
        let mut heap = BinaryHeap::new();
        dist[from] = 0.0;
        heap.push(Frontier {
            cost_m: 0.0,
            node: from,
        });
        while let Some(Frontier { cost_m, node }) = heap.pop() {
            if node == to {
                break;
            }
            if cost_m > dist[node] {
                continue;
            }
            for e in &self.edges[node] {
                let next = cost_m + e.length_m;
                if next < dist[e.to] {
                    dist[e.to] = next;
                    prev[e.to] = node;
                    heap.push(Frontier {
                        cost_m: next,
                        node: e.to,
                    });
                }
            }
        }
        if !dist[to].is_finite() {
            return None;
        }
        let mut nodes = vec![to];
        while let Some(&last) = nodes.last()
            && last != from
        {
            nodes.push(prev[last]);
        }
        nodes.reverse();
        Some(NetworkPath {
            nodes,
            length_m: dist[to],
        })
    }

    /// Builds a graph from way segments and keeps its largest strongly connected
    /// component. `segments` are (from, to, one_way) pairs of OSM node ids.
    fn build(
        segments: &[(i64, i64, bool)],
        preferred: &[i64],
        coords: &HashMap<i64, Point>,
    ) -> RoadGraph {
        let mut index: HashMap<i64, usize> = HashMap::new();
        let mut points = Vec::new();
        let mut edges: Vec<Vec<Edge>> = Vec::new();
        for &(a, b, one_way) in segments {
            let (Some(&pa), Some(&pb)) = (coords.get(&a), coords.get(&b)) else {
                continue; // a way clipped by the extract's boundary
            };
            let mut node = |id: i64, p: Point| {
                *index.entry(id).or_insert_with(|| {
                    points.push(p);
                    edges.push(Vec::new());
                    points.len() - 1
                })
            };
            let (ia, ib) = (node(a, pa), node(b, pb));
            let length_m = haversine_m(pa, pb);
            edges[ia].push(Edge { to: ib, length_m });
            if !one_way {
                edges[ib].push(Edge { to: ia, length_m });
            }
        }
        let (component, sizes) = strongly_connected_components(&edges);
        let Some(largest) = (0..sizes.len()).max_by_key(|&c| sizes[c]) else {
            return RoadGraph::default();
        };
        let mut renumber = vec![usize::MAX; points.len()];
        let mut graph = RoadGraph::default();
        for (old, &c) in component.iter().enumerate() {
            if c == largest {
                renumber[old] = graph.points.len();
                graph.points.push(points[old]);
            }
        }
        graph.edges = (0..points.len())
            .filter(|&old| component[old] == largest)
            .map(|old| {
                edges[old]
                    .iter()
                    .filter(|e| renumber[e.to] != usize::MAX)
                    .map(|e| Edge {
                        to: renumber[e.to],
                        length_m: e.length_m,
                    })
                    .collect()
            })
            .collect();
        let mut patrol_nodes: Vec<usize> = preferred
            .iter()
            .filter_map(|id| index.get(id).map(|&old| renumber[old]))
            .filter(|&new| new != usize::MAX)
            .collect();
        patrol_nodes.sort_unstable();
        patrol_nodes.dedup();
        graph.patrol_nodes = patrol_nodes;
        graph
    }
}

/// A Dijkstra frontier entry, ordered so that `BinaryHeap` pops the cheapest.
#[derive(PartialEq)]
struct Frontier {
    cost_m: f64,
    node: usize,
}

impl Eq for Frontier {}

impl Ord for Frontier {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .cost_m
            .total_cmp(&self.cost_m)
            .then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Frontier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Kosaraju's algorithm, iterative. Returns each node's component and each
/// component's size.
fn strongly_connected_components(edges: &[Vec<Edge>]) -> (Vec<usize>, Vec<usize>) {
    let n = edges.len();
    let mut visited = vec![false; n];
    let mut finish_order = Vec::with_capacity(n);
    for start in 0..n {
        if visited[start] {
            continue;
        }
        visited[start] = true;
        let mut stack = vec![(start, 0usize)];
        while let Some((v, next_edge)) = stack.last_mut() {
            if let Some(e) = edges[*v].get(*next_edge) {
                *next_edge += 1;
                if !visited[e.to] {
                    visited[e.to] = true;
                    stack.push((e.to, 0));
                }
            } else {
                finish_order.push(*v);
                stack.pop();
            }
        }
    }
    let mut reverse = vec![Vec::new(); n];
    for (v, out) in edges.iter().enumerate() {
        for e in out {
            reverse[e.to].push(v);
        }
    }
    let mut component = vec![usize::MAX; n];
    let mut sizes = Vec::new();
    for &start in finish_order.iter().rev() {
        if component[start] != usize::MAX {
            continue;
        }
        let c = sizes.len();
        component[start] = c;
        let (mut stack, mut size) = (vec![start], 0);
        while let Some(v) = stack.pop() {
            size += 1;
            for &u in &reverse[v] {
                if component[u] == usize::MAX {
                    component[u] = c;
                    stack.push(u);
                }
            }
        }
        sizes.push(size);
    }
    (component, sizes)
}

/// Where a camera's heading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadingSource {
    /// A `camera:direction` or `direction` tag.
    Tag,
    /// The centre of the nodes a `type=surveillance` relation says it watches.
    Relation,
    /// Not mapped: a stable pseudo-random value derived from the node id.
    Synthetic,
}

/// A surveillance camera from the map, with the facts the map lacks filled in
/// deterministically from its node id (so every run registers the same camera).
#[derive(Debug, Clone)]
pub struct MappedCamera {
    pub osm_id: i64,
    /// `osm-cam-<node id>`.
    pub id: String,
    /// The `name` tag, else the nearest street's name and a number.
    pub name: String,
    pub position: Point,
    pub mount_height_m: f64,
    /// Degrees clockwise from north.
    pub heading_deg: f64,
    pub heading_source: HeadingSource,
    /// Horizontal field of view, degrees (360 for PTZ and dome cameras).
    pub fov_deg: f64,
    /// Useful viewing distance, metres.
    pub range_m: f64,
    pub ptz: bool,
}

/// The demo city: its car and foot networks and its cameras.
#[derive(Debug, Clone)]
pub struct CityMap {
    pub car: RoadGraph,
    pub foot: RoadGraph,
    pub cameras: Vec<MappedCamera>,
    /// The extent of both networks.
    pub bounds: Bounds,
    /// Nodes of named highways, for naming places ("near Aleksanterinkatu").
    named_points: Vec<(Point, Arc<str>)>,
}

/// What one `highway` way contributes.
struct Way {
    refs: Vec<i64>,
    car: Option<CarDirection>,
    foot: bool,
    foot_preferred: bool,
    name: Option<Arc<str>>,
}

#[derive(Clone, Copy, PartialEq)]
enum CarDirection {
    Both,
    Forward,
    Backward,
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Whether and how cars may use a way, from `highway`, access tags and `oneway`.
fn car_direction(tags: &[(String, String)]) -> Option<CarDirection> {
    const CAR_ROADS: &[&str] = &[
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
    ];
    if !CAR_ROADS.contains(&tag(tags, "highway")?) || tag(tags, "area") == Some("yes") {
        return None;
    }
    let closed = |v: Option<&str>| matches!(v, Some("no" | "private"));
    let open =
        |v: Option<&str>| matches!(v, Some("yes" | "permissive" | "destination" | "designated"));
    let motor = tag(tags, "motor_vehicle").or(tag(tags, "motorcar"));
    if closed(motor) || (closed(tag(tags, "access")) && !open(motor)) {
        return None;
    }
    Some(match tag(tags, "oneway") {
        Some("yes" | "true" | "1") => CarDirection::Forward,
        Some("-1" | "reverse") => CarDirection::Backward,
        Some("no") => CarDirection::Both,
        _ if tag(tags, "junction") == Some("roundabout") => CarDirection::Forward,
        _ => CarDirection::Both,
    })
}

/// Whether people on foot may use a way, and whether it is a footway or pedestrian
/// street (where foot patrols prefer to be).
fn foot_access(tags: &[(String, String)]) -> (bool, bool) {
    const PREFERRED: &[&str] = &["footway", "pedestrian", "path", "living_street"];
    const ALSO: &[&str] = &[
        "steps",
        "cycleway",
        "platform",
        "crossing",
        "track",
        "bridleway",
        "residential",
        "service",
        "unclassified",
        "road",
        "tertiary",
        "tertiary_link",
        "secondary",
        "secondary_link",
        "primary",
        "primary_link",
    ];
    let Some(highway) = tag(tags, "highway") else {
        return (false, false);
    };
    let foot = tag(tags, "foot");
    let allowed = (PREFERRED.contains(&highway) || ALSO.contains(&highway))
        && foot != Some("no")
        && (!matches!(tag(tags, "access"), Some("no" | "private"))
            || matches!(foot, Some("yes" | "designated" | "permissive")));
    (allowed, allowed && PREFERRED.contains(&highway))
}

/// A deterministic value in [0, 1) from an OSM id and a salt (splitmix64).
fn id_fraction(id: i64, salt: u64) -> f64 {
    let mut z = (id as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A leading number of metres from a tag such as "4", "4.5 m" or "7m".
fn parse_metres(value: &str) -> Option<f64> {
    let number: String = value
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && *m > 0.0)
}

impl CityMap {
    /// Reads an `.osm.pbf` file and builds the networks and the camera list.
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<CityMap> {
        let path = path.as_ref();
        let reader = ElementReader::from_path(path)
            .with_context(|| format!("cannot open map {}", path.display()))?;
        let mut coords: HashMap<i64, Point> = HashMap::new();
        let mut camera_nodes: Vec<(i64, Vec<(String, String)>)> = Vec::new();
        let mut ways: Vec<Way> = Vec::new();
        // (camera node ids, watched node ids) of each `type=surveillance` relation.
        let mut watched: Vec<(Vec<i64>, Vec<i64>)> = Vec::new();
        let owned = |it: &mut dyn Iterator<Item = (&str, &str)>| -> Vec<(String, String)> {
            it.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        };
        let mut on_node = |id: i64, p: Point, tags: Vec<(String, String)>| {
            coords.insert(id, p);
            if tag(&tags, "man_made") == Some("surveillance")
                && tag(&tags, "surveillance:type").is_none_or(|t| t == "camera")
            {
                camera_nodes.push((id, tags));
            }
        };
        reader
            .for_each(|element| match element {
                Element::Node(n) => {
                    on_node(n.id(), Point::new(n.lon(), n.lat()), owned(&mut n.tags()))
                }
                Element::DenseNode(n) => {
                    on_node(n.id(), Point::new(n.lon(), n.lat()), owned(&mut n.tags()))
                }
                Element::Way(w) => {
                    let tags = owned(&mut w.tags());
                    if tag(&tags, "highway").is_none() {
                        return;
                    }
                    let (foot, foot_preferred) = foot_access(&tags);
                    let car = car_direction(&tags);
                    if foot || car.is_some() {
                        let name = tag(&tags, "name").map(Arc::from);
                        ways.push(Way {
                            refs: w.refs().collect(),
                            car,
                            foot,
                            foot_preferred,
                            name,
                        });
                    }
                }
                Element::Relation(r) => {
                    if !r.tags().any(|(k, v)| k == "type" && v == "surveillance") {
                        return;
                    }
                    let (mut cams, mut seen) = (Vec::new(), Vec::new());
                    for m in r.members().filter(|m| m.member_type == RelMemberType::Node) {
                        match m.role() {
                            Ok("camera") => cams.push(m.member_id),
                            Ok("visible" | "extent" | "") => seen.push(m.member_id),
                            _ => {}
                        }
                    }
                    watched.push((cams, seen));
                }
            })
            .with_context(|| format!("cannot read map {}", path.display()))?;

        let (mut car_segments, mut foot_segments) = (Vec::new(), Vec::new());
        let (mut car_nodes, mut foot_preferred) = (Vec::new(), Vec::new());
        let mut named_points = Vec::new();
        for way in &ways {
            for pair in way.refs.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                match way.car {
                    Some(CarDirection::Both) => car_segments.push((a, b, false)),
                    Some(CarDirection::Forward) => car_segments.push((a, b, true)),
                    Some(CarDirection::Backward) => car_segments.push((b, a, true)),
                    None => {}
                }
                if way.foot {
                    foot_segments.push((a, b, false));
                }
            }
            if way.car.is_some() {
                car_nodes.extend(&way.refs);
            }
            if way.foot_preferred {
                foot_preferred.extend(&way.refs);
            }
            if let Some(name) = &way.name {
                named_points.extend(
                    way.refs
                        .iter()
                        .filter_map(|r| Some((*coords.get(r)?, name.clone()))),
                );
            }
        }
        let car = RoadGraph::build(&car_segments, &car_nodes, &coords);
        let foot = RoadGraph::build(&foot_segments, &foot_preferred, &coords);
        anyhow::ensure!(
            !car.is_empty() && !foot.is_empty(),
            "map {} has no street network",
            path.display()
        );

        let all = car.points.iter().chain(&foot.points);
        let bounds = all.fold(
            Bounds {
                west: f64::MAX,
                south: f64::MAX,
                east: f64::MIN,
                north: f64::MIN,
            },
            |b, p| Bounds {
                west: b.west.min(p.lon),
                south: b.south.min(p.lat),
                east: b.east.max(p.lon),
                north: b.north.max(p.lat),
            },
        );
        let mut map = CityMap {
            car,
            foot,
            cameras: Vec::new(),
            bounds,
            named_points,
        };
        map.cameras = map.cameras_from(&camera_nodes, &watched, &coords);
        Ok(map)
    }

    fn cameras_from(
        &self,
        nodes: &[(i64, Vec<(String, String)>)],
        watched: &[(Vec<i64>, Vec<i64>)],
        coords: &HashMap<i64, Point>,
    ) -> Vec<MappedCamera> {
        let mut per_street: HashMap<Arc<str>, usize> = HashMap::new();
        nodes
            .iter()
            .filter_map(|(id, tags)| {
                let position = *coords.get(id)?;
                let watched_points: Vec<Point> = watched
                    .iter()
                    .filter(|(cams, _)| cams.contains(id))
                    .flat_map(|(_, seen)| seen.iter().filter_map(|s| coords.get(s).copied()))
                    .collect();
                let tagged = ["camera:direction", "direction", "surveillance:direction"]
                    .iter()
                    .find_map(|k| tag(tags, k).and_then(parse_direction));
                let (heading_deg, heading_source) = if let Some(deg) = tagged {
                    (deg, HeadingSource::Tag)
                } else if !watched_points.is_empty() {
                    let n = watched_points.len() as f64;
                    let centre = Point::new(
                        watched_points.iter().map(|p| p.lon).sum::<f64>() / n,
                        watched_points.iter().map(|p| p.lat).sum::<f64>() / n,
                    );
                    (bearing_deg(position, centre), HeadingSource::Relation)
                } else {
                    (id_fraction(*id, 1) * 360.0, HeadingSource::Synthetic)
                };
                let ptz = tag(tags, "revolving") == Some("yes")
                    || matches!(tag(tags, "camera:type"), Some("panning" | "dome"));
                let fov_deg = if ptz {
                    360.0
                } else {
                    60.0 + 30.0 * id_fraction(*id, 2)
                };
                // The farthest watched node, else 30-80 m.
                let range_m = watched_points
                    .iter()
                    .map(|p| haversine_m(position, *p))
                    .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))))
                    .map_or(30.0 + 50.0 * id_fraction(*id, 3), |d| d.clamp(30.0, 80.0));
                let mount_height_m = tag(tags, "height")
                    .or(tag(tags, "est_height"))
                    .and_then(parse_metres)
                    .unwrap_or(4.0);
                let name = match tag(tags, "name") {
                    Some(name) => name.to_owned(),
                    None => match self.street_near(position, 150.0) {
                        Some(street) => {
                            let n = per_street.entry(street.clone()).or_default();
                            *n += 1;
                            format!("{street} camera {n}")
                        }
                        None => format!("camera {id}"),
                    },
                };
                Some(MappedCamera {
                    osm_id: *id,
                    id: format!("osm-cam-{id}"),
                    name,
                    position,
                    mount_height_m,
                    heading_deg,
                    heading_source,
                    fov_deg,
                    range_m,
                    ptz,
                })
            })
            .collect()
    }

    /// The name of the nearest named street within `max_m` metres.
    pub fn street_near(&self, p: Point, max_m: f64) -> Option<Arc<str>> {
        self.named_points
            .iter()
            .map(|(q, name)| (haversine_m(p, *q), name))
            .filter(|(d, _)| *d <= max_m)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, name)| name.clone())
    }

    /// A random point on the foot network (which covers the car network's streets
    /// too): where incidents happen and benchmark units stand.
    pub fn random_point_on_network<R: Rng + ?Sized>(&self, rng: &mut R) -> Point {
        self.foot.random_point(rng).unwrap_or(Point::new(
            (self.bounds.west + self.bounds.east) / 2.0,
            (self.bounds.south + self.bounds.north) / 2.0,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::sync::OnceLock;

    fn helsinki() -> &'static CityMap {
        static MAP: OnceLock<CityMap> = OnceLock::new();
        MAP.get_or_init(|| {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/helsinki.osm.pbf");
            CityMap::load(path).expect("the Helsinki extract loads")
        })
    }

    #[test]
    fn loads_every_mapped_camera() {
        let map = helsinki();
        // 221 nodes carry man_made=surveillance in this extract.
        assert_eq!(map.cameras.len(), 221);
        let ids: std::collections::HashSet<_> = map.cameras.iter().map(|c| &c.id).collect();
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
        for c in &map.cameras {
            assert!((0.0..360.0).contains(&c.heading_deg), "{c:?}");
            assert!(c.fov_deg > 0.0 && c.fov_deg <= 360.0, "{c:?}");
            assert!((30.0..=80.0).contains(&c.range_m), "{c:?}");
            assert!(c.mount_height_m > 0.0 && !c.name.is_empty(), "{c:?}");
            let b = map.bounds;
            assert!(
                c.position.lon > b.west - 0.01 && c.position.lon < b.east + 0.01,
                "{c:?}"
            );
        }
    }

    #[test]
    fn both_networks_are_one_strongly_connected_component() {
        let map = helsinki();
        for (name, graph) in [("car", &map.car), ("foot", &map.foot)] {
            assert!(graph.len() > 500, "{name} graph has {} nodes", graph.len());
            let (_, sizes) = strongly_connected_components(&graph.edges);
            assert_eq!(
                sizes,
                vec![graph.len()],
                "{name} graph is strongly connected"
            );
        }
        assert!(
            map.foot.patrol_nodes.len() > 200,
            "foot patrols have footways to walk"
        );
        assert!(map.foot.len() > map.car.len());
        // One-way streets make some car edges one-directional.
        let one_way = (0..map.car.len())
            .flat_map(|a| map.car.edges(a).iter().map(move |e| (a, e.to)))
            .filter(|&(a, b)| !map.car.edges(b).iter().any(|e| e.to == a))
            .count();
        assert!(one_way > 50, "{one_way} one-way car edges");
    }

    #[test]
    fn shortest_paths_exist_follow_edges_and_beat_no_straight_line() {
        let map = helsinki();
        let mut rng = StdRng::seed_from_u64(7);
        for graph in [&map.car, &map.foot] {
            for _ in 0..20 {
                let (a, b) = (
                    rng.random_range(0..graph.len()),
                    rng.random_range(0..graph.len()),
                );
                let path = graph.shortest_path(a, b).expect("connected graph");
                assert_eq!((path.nodes[0], *path.nodes.last().unwrap()), (a, b));
                let mut walked = 0.0;
                for pair in path.nodes.windows(2) {
                    let edge = graph.edges(pair[0]).iter().find(|e| e.to == pair[1]);
                    walked += edge
                        .expect("consecutive path nodes are joined by an edge")
                        .length_m;
                }
                assert!((walked - path.length_m).abs() < 1e-6);
                let straight = haversine_m(graph.point(a), graph.point(b));
                assert!(
                    path.length_m >= straight - 1e-6,
                    "{} < {straight}",
                    path.length_m
                );
            }
        }
    }

    #[test]
    fn random_points_lie_inside_the_city() {
        let map = helsinki();
        let mut rng = StdRng::seed_from_u64(1);
        let b = map.bounds;
        for _ in 0..100 {
            let p = map.random_point_on_network(&mut rng);
            assert!(p.lon >= b.west && p.lon <= b.east && p.lat >= b.south && p.lat <= b.north);
        }
        assert!(b.east - b.west > 0.01 && b.north - b.south > 0.005, "{b:?}");
    }

    #[test]
    fn parses_direction_tags() {
        assert_eq!(parse_direction("45"), Some(45.0));
        assert_eq!(parse_direction("292.5"), Some(292.5));
        assert_eq!(parse_direction("-90"), Some(270.0));
        assert_eq!(parse_direction("360"), Some(0.0));
        assert_eq!(parse_direction("N"), Some(0.0));
        assert_eq!(parse_direction("ne"), Some(45.0));
        assert_eq!(parse_direction("WSW"), Some(247.5));
        assert_eq!(parse_direction("NNW"), Some(337.5));
        assert_eq!(parse_direction("90;180"), Some(90.0));
        assert_eq!(parse_direction("0-90"), Some(45.0));
        assert_eq!(parse_direction("315-45"), Some(0.0));
        assert_eq!(parse_direction("up"), None);
        assert_eq!(parse_direction(""), None);
        assert_eq!(parse_direction("NaN"), None);
    }

    #[test]
    fn geometry_in_metres_and_degrees() {
        let a = Point::new(24.94, 60.17);
        let north = Point::new(24.94, 60.18);
        assert!((haversine_m(a, north) - 1111.95).abs() < 1.0);
        assert!(bearing_deg(a, north).abs() < 1e-9);
        assert!((bearing_deg(a, Point::new(24.95, 60.17)) - 90.0).abs() < 0.01);
        assert_eq!(parse_metres("4.5 m"), Some(4.5));
        assert_eq!(parse_metres("high"), None);
    }
}
