//! Camera coverage of the loaded street network: which stretches of street
//! some online camera sees now, which it could after turning, and the blind
//! spots no camera can see at all; the covered share of street length for
//! cars and for foot. A query: nothing changes.
//!
//! Each street (an edge and its twin) counts once. It is cut into `n =
//! ceil(length / step)` equal pieces and each piece is judged at its
//! midpoint with the cameras' own test ([`CameraIndex::covers`], the same
//! judgement as `CamerasSeeing`): a piece seen there counts its whole length
//! as seen. Only the pieces whose midpoint lies in the query's box count.
//! A street counts for cars when a car may drive it in either direction
//! (normal driving), for foot when someone on foot may walk it; a street
//! neither may use (a cycleway) counts for neither.

use patrol_roads::{EdgeId, Metric, Profile, RoadGraph};

use super::Dispatcher;
use crate::Millis;
use crate::cameras::CameraIndex;
use crate::error::Error;
use crate::geometry::{BoundingBox, LonLat};
use crate::network::Network;

/// Default distance between judged points along a street, metres.
pub const DEFAULT_COVERAGE_STEP_M: f64 = 5.0;
/// Most blind spots one answer lists (the metres count all of them).
pub const MAX_BLIND_SPOTS: usize = 10_000;
/// Most points one coverage query judges: a smaller box or a longer step
/// for more.
pub const MAX_COVERAGE_SAMPLES: u64 = 20_000_000;

/// What to compute the coverage of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoverageQuery {
    /// Only street pieces whose midpoint lies in the box (all without one).
    pub bbox: Option<BoundingBox>,
    /// Whether to list the blind spots.
    pub include_segments: bool,
    /// Distance between judged points along a street, 1..=100 metres.
    pub step_m: f64,
}

impl Default for CoverageQuery {
    fn default() -> Self {
        Self {
            bbox: None,
            include_segments: false,
            step_m: DEFAULT_COVERAGE_STEP_M,
        }
    }
}

/// Street metres for one mode of travel.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ModeCoverage {
    /// All street metres the mode may use.
    pub total_m: f64,
    /// Metres some online camera sees in its current pose.
    pub seen_now_m: f64,
    /// Metres some online camera sees now or could after turning.
    pub seen_after_turning_m: f64,
}

impl ModeCoverage {
    /// `seen_now_m / total_m`, 0 without streets.
    pub fn share_now(&self) -> f64 {
        share(self.seen_now_m, self.total_m)
    }

    /// `seen_after_turning_m / total_m`, 0 without streets.
    pub fn share_after_turning(&self) -> f64 {
        share(self.seen_after_turning_m, self.total_m)
    }
}

fn share(part: f64, total: f64) -> f64 {
    if total > 0.0 {
        (part / total).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// A stretch of one street no online camera sees, now or after turning.
#[derive(Debug, Clone, PartialEq)]
pub struct BlindSpot {
    /// Its line, along the street's geometry.
    pub points: Vec<LonLat>,
    /// Its length, metres (the pieces it is made of).
    pub length_m: f64,
    /// The street's name, if it has one.
    pub name: Option<String>,
    /// Whether cars may use the street.
    pub car: bool,
    /// Whether someone on foot may.
    pub foot: bool,
}

/// The answer of [`Dispatcher::coverage`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Coverage {
    /// Streets a car may drive.
    pub car: ModeCoverage,
    /// Streets someone on foot may walk.
    pub foot: ModeCoverage,
    /// The step the streets were judged at, metres.
    pub step_m: f64,
    /// Points judged.
    pub samples: u64,
    /// The blind spots (merged runs of unseen pieces per street), longest
    /// first then by position, at most [`MAX_BLIND_SPOTS`]; empty unless
    /// asked for.
    pub blind_spots: Vec<BlindSpot>,
    /// How many blind spots there are in all (more than listed when capped).
    pub blind_spot_count: usize,
    /// Metres of street (car or foot) no camera sees even after turning.
    pub blind_m: f64,
}

impl CoverageQuery {
    /// Checks the step and the box, naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        if !(1.0..=100.0).contains(&self.step_m) {
            return Err(Error::invalid(
                "step_m",
                self.step_m,
                "must be in 1..=100 metres",
            ));
        }
        if let Some(bbox) = self.bbox {
            bbox.validated("bbox")?;
        }
        Ok(())
    }
}

/// The street's pieces: count and length of each.
fn pieces(length_m: f64, step_m: f64) -> (usize, f64) {
    let n = ((length_m / step_m).ceil() as usize).max(1);
    (n, length_m / n as f64)
}

/// Whether the edge's points' box meets `bbox` (always without one).
fn may_meet(graph: &RoadGraph, edge: EdgeId, bbox: Option<&BoundingBox>) -> bool {
    let Some(b) = bbox else {
        return true;
    };
    let (mut west, mut east, mut south, mut north) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in graph.edge_points(edge) {
        west = west.min(p.lon);
        east = east.max(p.lon);
        south = south.min(p.lat);
        north = north.max(p.lat);
    }
    west <= b.east && east >= b.west && south <= b.north && north >= b.south
}

/// The part of the edge's line from `from_m` to `to_m` metres along it.
fn sub_line(graph: &RoadGraph, edge: EdgeId, from_m: f64, to_m: f64) -> Vec<LonLat> {
    let mut out = vec![graph.point_along(edge, from_m)];
    let mut walked = 0.0;
    let mut points = graph.edge_points(edge);
    let mut at = points.next().expect("an edge has two ends");
    for next in points {
        walked += at.distance_m(&next);
        if walked > from_m && walked < to_m {
            out.push(next);
        }
        at = next;
    }
    out.push(graph.point_along(edge, to_m));
    out.dedup();
    if out.len() < 2 {
        out.push(out[0]);
    }
    out
}

/// Adds the metres of one piece to a mode.
fn count(mode: &mut ModeCoverage, piece_m: f64, now: bool, turned: bool) {
    mode.total_m += piece_m;
    if now {
        mode.seen_now_m += piece_m;
    }
    if turned {
        mode.seen_after_turning_m += piece_m;
    }
}

/// [`Dispatcher::coverage`] over a network and camera index of one's own
/// (a copy taken under a lock, say, so the long walk runs outside it).
/// `None`: no map loaded, a failed precondition.
pub fn coverage_of(
    network: Option<&Network>,
    cameras: &CameraIndex,
    query: &CoverageQuery,
    now: Millis,
) -> Result<Coverage, Error> {
    let network = network.ok_or_else(|| {
        Error::FailedPrecondition(
            "no map loaded: coverage needs the street network (config `map`)".into(),
        )
    })?;
    compute(network.graph(), cameras, query, now)
}

/// The coverage computation over one graph and camera index.
fn compute(
    graph: &RoadGraph,
    cameras: &CameraIndex,
    query: &CoverageQuery,
    now: Millis,
) -> Result<Coverage, Error> {
    query.validate()?;
    let bbox = query.bbox.as_ref();
    let car = Metric::normal(Profile::Car);
    let foot = Metric::normal(Profile::Foot);
    // The streets: one edge of each pair, usable by car or foot.
    let mut streets: Vec<(EdgeId, bool, bool)> = Vec::new();
    let mut planned: u64 = 0;
    for edge in 0..graph.edge_count() as EdgeId {
        if !graph.is_along_way(edge) {
            continue;
        }
        let twin = graph.twin(edge);
        let by_car = graph.is_usable(edge, car) || graph.is_usable(twin, car);
        let by_foot = graph.is_usable(edge, foot) || graph.is_usable(twin, foot);
        if !(by_car || by_foot) || !may_meet(graph, edge, bbox) {
            continue;
        }
        planned += pieces(graph.edge_length_m(edge), query.step_m).0 as u64;
        if planned > MAX_COVERAGE_SAMPLES {
            return Err(Error::invalid(
                "step_m",
                query.step_m,
                format!(
                    "would judge more than {MAX_COVERAGE_SAMPLES} points: give a smaller bbox or a longer step"
                ),
            ));
        }
        streets.push((edge, by_car, by_foot));
    }
    let mut out = Coverage {
        step_m: query.step_m,
        ..Coverage::default()
    };
    for (edge, by_car, by_foot) in streets {
        let length = graph.edge_length_m(edge);
        let (n, piece) = pieces(length, query.step_m);
        // the current run of unseen pieces: its first piece
        let mut run: Option<usize> = None;
        let close_run = |first: usize, end: usize, out: &mut Coverage| {
            out.blind_spot_count += 1;
            if query.include_segments {
                let (from, to) = (first as f64 * piece, end as f64 * piece);
                out.blind_spots.push(BlindSpot {
                    points: sub_line(graph, edge, from, to),
                    length_m: to - from,
                    name: graph
                        .edge_attributes(edge)
                        .name
                        .as_deref()
                        .map(str::to_string),
                    car: by_car,
                    foot: by_foot,
                });
            }
        };
        for i in 0..n {
            let at = graph.point_along(edge, (i as f64 + 0.5) * piece);
            let inside = bbox.is_none_or(|b| b.contains(&at));
            let mut blind = false;
            if inside {
                out.samples += 1;
                let (now_seen, turned) = cameras.covers(&at, now);
                if by_car {
                    count(&mut out.car, piece, now_seen, turned);
                }
                if by_foot {
                    count(&mut out.foot, piece, now_seen, turned);
                }
                blind = !turned;
                if blind {
                    out.blind_m += piece;
                }
            }
            match (blind, run) {
                (true, None) => run = Some(i),
                (false, Some(first)) => {
                    close_run(first, i, &mut out);
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(first) = run {
            close_run(first, n, &mut out);
        }
    }
    out.blind_spots.sort_by(|a, b| {
        b.length_m.total_cmp(&a.length_m).then_with(|| {
            let (p, q) = (a.points[0], b.points[0]);
            p.lon.total_cmp(&q.lon).then(p.lat.total_cmp(&q.lat))
        })
    });
    out.blind_spots.truncate(MAX_BLIND_SPOTS);
    Ok(out)
}

impl Dispatcher {
    /// How much of the loaded street network the online cameras see: street
    /// metres and shares for cars and for foot, seen now and seen now or
    /// after turning, and (when asked) the blind spots no camera can see.
    /// See the [module docs](self). Without a network: a failed
    /// precondition.
    pub fn coverage(&self, query: &CoverageQuery, now: Millis) -> Result<Coverage, Error> {
        coverage_of(self.config.network.as_ref(), &self.cameras, query, now)
    }
}
