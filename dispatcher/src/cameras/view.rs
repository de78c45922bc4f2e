//! What a camera sees on the ground: its current view and, for a PTZ
//! camera, everything it could see after turning, as regions of the ground
//! around it; whether a point lies in them; the polygons the map draws.
//!
//! **Frame.** Each camera measures in its own local horizontal frame on the
//! WGS84 ellipsoid (east and north, metres): bearings there are true-north
//! bearings as a surveyor's (within 0.001 degrees of the ellipsoidal geodesic
//! at 10 km), which is what an aimed camera needs; the sphere the rest of
//! patrol uses would be off by up to 0.2 degrees near the equator. Ground
//! distances in that frame agree with patrol's great-circle metres to within
//! 0.6 % (the ellipsoid is not the sphere).
//!
//! **Regions.** A region is the ground between two distances from the camera
//! and within an angle either side of a centre bearing (an annular sector).
//! A fixed camera's view runs from its foot to its range inside half its
//! horizontal field of view of its heading. A PTZ camera's view is also cut
//! by its tilt: the ground it sees lies between the depressions `tilt -
//! vfov/2` and `tilt + vfov/2` below the horizontal, which on flat ground is
//! between the distances `h / tan(tilt + vfov/2)` and `h / tan(tilt -
//! vfov/2)` for a mounting height `h`. Its reach is the union of its views
//! over every pose its limits allow.
//!
//! **No occlusion.** Nothing here knows about buildings, trees or hills: a
//! camera "sees" every point of flat ground inside its region.

use super::model::{Camera, angle_diff, pan_clamped, wrap360};
use crate::geometry::LonLat;

/// WGS84 semi-major axis, metres.
pub(crate) const WGS84_A: f64 = 6_378_137.0;
/// WGS84 flattening.
const WGS84_F: f64 = 1.0 / 298.257_223_563;
/// WGS84 first eccentricity squared.
pub(crate) const WGS84_E2: f64 = WGS84_F * (2.0 - WGS84_F);

/// A point on the WGS84 ellipsoid (height 0) as an Earth-centred vector,
/// metres.
pub(crate) fn ecef(p: &LonLat) -> [f64; 3] {
    let (sin_lat, cos_lat) = p.lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = p.lon.to_radians().sin_cos();
    let n = WGS84_A / (1.0 - WGS84_E2 * sin_lat * sin_lat).sqrt();
    [
        n * cos_lat * cos_lon,
        n * cos_lat * sin_lon,
        n * (1.0 - WGS84_E2) * sin_lat,
    ]
}

/// The local horizontal frame at a point: east and north, metres.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    origin: [f64; 3],
    sin_lat: f64,
    cos_lat: f64,
    sin_lon: f64,
    cos_lon: f64,
}

impl Frame {
    pub(crate) fn at(p: &LonLat) -> Frame {
        let (sin_lat, cos_lat) = p.lat.to_radians().sin_cos();
        let (sin_lon, cos_lon) = p.lon.to_radians().sin_cos();
        let n = WGS84_A / (1.0 - WGS84_E2 * sin_lat * sin_lat).sqrt();
        Frame {
            origin: [
                n * cos_lat * cos_lon,
                n * cos_lat * sin_lon,
                n * (1.0 - WGS84_E2) * sin_lat,
            ],
            sin_lat,
            cos_lat,
            sin_lon,
            cos_lon,
        }
    }

    /// East and north (metres) of a point given by its [`ecef`] vector: the
    /// horizontal part of the straight line from the frame's origin to it.
    pub(crate) fn east_north(&self, q: &[f64; 3]) -> (f64, f64) {
        let (dx, dy, dz) = (
            q[0] - self.origin[0],
            q[1] - self.origin[1],
            q[2] - self.origin[2],
        );
        let east = -self.sin_lon * dx + self.cos_lon * dy;
        let north = -self.sin_lat * self.cos_lon * dx - self.sin_lat * self.sin_lon * dy
            + self.cos_lat * dz;
        (east, north)
    }

    /// The ground point under the point `east`, `north` metres away in the
    /// frame's horizontal plane (within a centimetre of the inverse of
    /// [`Frame::east_north`] out to 10 km).
    pub(crate) fn ground_point(&self, east: f64, north: f64) -> LonLat {
        let x = self.origin[0] - self.sin_lon * east - self.sin_lat * self.cos_lon * north;
        let y = self.origin[1] + self.cos_lon * east - self.sin_lat * self.sin_lon * north;
        let z = self.origin[2] + self.cos_lat * north;
        let p = x.hypot(y);
        let mut lat = z.atan2(p * (1.0 - WGS84_E2));
        for _ in 0..5 {
            let sin_lat = lat.sin();
            let n = WGS84_A / (1.0 - WGS84_E2 * sin_lat * sin_lat).sqrt();
            lat = (z + WGS84_E2 * n * sin_lat).atan2(p);
        }
        LonLat::new(y.atan2(x).to_degrees(), lat.to_degrees())
    }
}

/// Ground distance (metres) and bearing (degrees clockwise from north,
/// 0..360) of an east/north offset.
pub(crate) fn polar(east: f64, north: f64) -> (f64, f64) {
    (east.hypot(north), wrap360(east.atan2(north).to_degrees()))
}

/// The ground between `near_m` and `far_m` from the camera within
/// `half_width_deg` either side of `centre_deg` (all of it round when the
/// half width is 180 or more). Empty when `near_m > far_m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Region {
    pub centre_deg: f64,
    pub half_width_deg: f64,
    pub near_m: f64,
    pub far_m: f64,
}

/// Bounds of the ground a band of depressions `lo..=hi` (degrees below the
/// horizontal) covers from `height_m`, cut at `range_m`: (near, far) metres.
fn depression_band(height_m: f64, range_m: f64, lo_deg: f64, hi_deg: f64) -> (f64, f64) {
    // Every ground point lies at depression atan2(h, d), which falls from 90
    // at the camera's foot towards 0 far away (and is 0 everywhere for h = 0).
    let far = if lo_deg <= 0.0 {
        range_m
    } else if lo_deg >= 90.0 {
        0.0
    } else {
        (height_m / lo_deg.to_radians().tan()).min(range_m)
    };
    let near = if hi_deg >= 90.0 {
        0.0
    } else if hi_deg < 0.0 || (hi_deg == 0.0 && height_m > 0.0) {
        f64::INFINITY
    } else {
        height_m / hi_deg.to_radians().tan()
    };
    (near, far)
}

impl Region {
    pub(crate) fn full_circle(&self) -> bool {
        self.half_width_deg >= 180.0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.near_m > self.far_m
    }

    fn in_wedge(&self, bearing_deg: f64) -> bool {
        self.full_circle() || angle_diff(bearing_deg, self.centre_deg).abs() <= self.half_width_deg
    }

    /// Whether the ground point at `distance_m` along `bearing_deg` lies in
    /// the region (the camera's own foot counts as in the wedge).
    pub(crate) fn contains(&self, distance_m: f64, bearing_deg: f64) -> bool {
        distance_m >= self.near_m
            && distance_m <= self.far_m
            && (distance_m == 0.0 || self.in_wedge(bearing_deg))
    }

    /// Distance in the frame's plane (metres) from the point `x` east and `y`
    /// north of the camera to the nearest point of the region.
    pub(crate) fn distance_to(&self, x: f64, y: f64) -> f64 {
        if self.is_empty() {
            return f64::INFINITY;
        }
        let (rho, bearing) = polar(x, y);
        if rho == 0.0 {
            return self.near_m;
        }
        let mut best = f64::INFINITY;
        if self.in_wedge(bearing) {
            if rho > self.far_m {
                best = rho - self.far_m;
            } else if rho < self.near_m {
                best = self.near_m - rho;
            } else {
                return 0.0;
            }
        }
        if !self.full_circle() {
            for edge in self.edges() {
                let (ux, uy) = unit(edge);
                let along = (x * ux + y * uy).clamp(self.near_m, self.far_m);
                best = best.min((x - along * ux).hypot(y - along * uy));
            }
        }
        best
    }

    /// The region's bounding box in the frame's plane: (west, east, south,
    /// north) metres from the camera, `None` when it is empty.
    pub(crate) fn plane_bounds(&self) -> Option<[f64; 4]> {
        if self.is_empty() {
            return None;
        }
        let far = self.far_m;
        if self.full_circle() {
            return Some([-far, far, -far, far]);
        }
        let mut bounds = [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut add = |distance: f64, bearing: f64| {
            let (ux, uy) = unit(bearing);
            let (x, y) = (distance * ux, distance * uy);
            bounds[0] = bounds[0].min(x);
            bounds[1] = bounds[1].max(x);
            bounds[2] = bounds[2].min(y);
            bounds[3] = bounds[3].max(y);
        };
        for edge in self.edges() {
            add(self.near_m, edge);
            add(far, edge);
        }
        for cardinal in [0.0, 90.0, 180.0, 270.0] {
            if self.in_wedge(cardinal) {
                add(far, cardinal);
            }
        }
        Some(bounds)
    }

    /// The bearings of the two radial edges.
    fn edges(&self) -> [f64; 2] {
        [
            self.centre_deg - self.half_width_deg,
            self.centre_deg + self.half_width_deg,
        ]
    }

    /// Where a straight segment from `a` to `b` (east, north metres in the
    /// frame) first comes within `corridor_m` of the region: the fraction
    /// 0..=1 of the way from `a`, or `None`.
    ///
    /// The set of points within `corridor_m` is closed and its boundary lies
    /// on circles about the camera (radii `far + c`, `near - c`), lines
    /// parallel to the radial edges at distance `c`, and circles of radius
    /// `c` about the four corners; the first entry is therefore `a` itself or
    /// a crossing of one of those, and every crossing is checked against the
    /// exact distance.
    pub(crate) fn first_within(
        &self,
        a: (f64, f64),
        b: (f64, f64),
        corridor_m: f64,
    ) -> Option<f64> {
        const TOLERANCE_M: f64 = 1e-6;
        if self.is_empty() {
            return None;
        }
        let c = corridor_m;
        if self.distance_to(a.0, a.1) <= c + TOLERANCE_M {
            return Some(0.0);
        }
        let d = (b.0 - a.0, b.1 - a.1);
        if d.0 == 0.0 && d.1 == 0.0 {
            return None;
        }
        let mut ts: Vec<f64> = Vec::with_capacity(16);
        let circle = |cx: f64, cy: f64, r: f64, ts: &mut Vec<f64>| {
            if r.is_nan() || r <= 0.0 || r.is_infinite() {
                return;
            }
            // |a + t d - centre|^2 = r^2
            let (fx, fy) = (a.0 - cx, a.1 - cy);
            let qa = d.0 * d.0 + d.1 * d.1;
            let qb = 2.0 * (fx * d.0 + fy * d.1);
            let qc = fx * fx + fy * fy - r * r;
            let disc = qb * qb - 4.0 * qa * qc;
            if disc < 0.0 {
                return;
            }
            let root = disc.sqrt();
            ts.push((-qb - root) / (2.0 * qa));
            ts.push((-qb + root) / (2.0 * qa));
        };
        circle(0.0, 0.0, self.far_m + c, &mut ts);
        circle(0.0, 0.0, self.near_m - c, &mut ts);
        if !self.full_circle() {
            for edge in self.edges() {
                let (ux, uy) = unit(edge);
                // the edge's normal
                let (nx, ny) = (uy, -ux);
                let dn = d.0 * nx + d.1 * ny;
                if dn != 0.0 {
                    let an = a.0 * nx + a.1 * ny;
                    ts.push((c - an) / dn);
                    ts.push((-c - an) / dn);
                }
                for r in [self.near_m, self.far_m] {
                    circle(r * ux, r * uy, c, &mut ts);
                }
            }
        }
        ts.retain(|t| (0.0..=1.0).contains(t));
        ts.sort_by(f64::total_cmp);
        ts.into_iter().find(|&t| {
            let (x, y) = (a.0 + t * d.0, a.1 + t * d.1);
            self.distance_to(x, y) <= c + TOLERANCE_M
        })
    }

    /// The region's outline as a closed ring of ground points (first =
    /// last), `steps` segments along each arc: apex and arc; outer arc and
    /// inner arc back; a circle; or, for a ring, the outer circle and the
    /// inner one joined by a zero-width cut (a keyhole). Empty when the
    /// region is.
    pub(crate) fn polygon(&self, frame: &Frame, steps: usize) -> Vec<LonLat> {
        if self.is_empty() {
            return Vec::new();
        }
        let steps = steps.clamp(1, 3600);
        let point = |distance: f64, bearing: f64| {
            let (ux, uy) = unit(bearing);
            frame.ground_point(distance * ux, distance * uy)
        };
        let (from, width) = if self.full_circle() {
            (0.0, 360.0)
        } else {
            (
                self.centre_deg - self.half_width_deg,
                2.0 * self.half_width_deg,
            )
        };
        let arc = |distance: f64| {
            (0..=steps).map(move |i| (distance, from + width * i as f64 / steps as f64))
        };
        let mut ring: Vec<LonLat> = Vec::with_capacity(2 * steps + 4);
        match (self.full_circle(), self.near_m > 0.0) {
            (false, false) => {
                ring.push(point(0.0, 0.0));
                ring.extend(arc(self.far_m).map(|(d, b)| point(d, b)));
            }
            (false, true) | (true, true) => {
                ring.extend(arc(self.far_m).map(|(d, b)| point(d, b)));
                let inner: Vec<_> = arc(self.near_m).map(|(d, b)| point(d, b)).collect();
                ring.extend(inner.into_iter().rev());
            }
            (true, false) => {
                ring.extend(arc(self.far_m).map(|(d, b)| point(d, b)));
            }
        }
        if ring.first() != ring.last()
            && let Some(&first) = ring.first()
        {
            ring.push(first);
        }
        ring
    }
}

/// The unit vector (east, north) along a bearing in degrees.
fn unit(bearing_deg: f64) -> (f64, f64) {
    bearing_deg.to_radians().sin_cos()
}

/// How a camera sees a point on the ground.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSight {
    /// The camera's id.
    pub camera_id: String,
    /// Ground distance from the camera's foot to the point, metres.
    pub distance_m: f64,
    /// Bearing from the camera to the point, degrees clockwise from true
    /// north, 0..360.
    pub bearing_deg: f64,
    /// How far the point lies off the centre line of the camera's current
    /// view, degrees, signed: positive clockwise (to the right in the
    /// picture), in (-180, 180].
    pub off_axis_deg: f64,
    /// The point is in the camera's current view.
    pub sees_now: bool,
    /// For a PTZ camera that does not see the point now but can after
    /// turning: the pose to turn to, which centres the point as nearly as
    /// the limits allow. `None` when it sees the point now or cannot.
    pub after_turn: Option<Turn>,
}

/// A pose a PTZ camera can take to see a point.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Turn {
    /// Pan, degrees clockwise from zero pan, inside the pan range.
    pub pan_deg: f64,
    /// Tilt, degrees below the horizontal, inside the tilt range.
    pub tilt_deg: f64,
    /// The heading that pan gives, degrees clockwise from true north.
    pub heading_deg: f64,
}

/// What [`Camera::look`] found: a [`CameraSight`] without the id, and the
/// score it ranks by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Look {
    pub distance_m: f64,
    pub bearing_deg: f64,
    pub off_axis_deg: f64,
    pub sees_now: bool,
    pub after_turn: Option<Turn>,
    /// See [`Look::rank_key`].
    pub score: f64,
}

impl Look {
    pub(crate) fn into_sight(self, camera_id: &str) -> CameraSight {
        CameraSight {
            camera_id: camera_id.to_string(),
            distance_m: self.distance_m,
            bearing_deg: self.bearing_deg,
            off_axis_deg: self.off_axis_deg,
            sees_now: self.sees_now,
            after_turn: self.after_turn,
        }
    }

    /// Cameras that see the point now first, then those that must turn;
    /// within each, by score (lower is better), distance and slot.
    pub(crate) fn rank_key(&self, slot: u32) -> RankKey {
        (!self.sees_now, self.score, self.distance_m, slot)
    }
}

/// What [`Look::rank_key`] gives: (must turn, score, distance, slot).
pub(crate) type RankKey = (bool, f64, f64, u32);

/// Orders two [`Look::rank_key`]s.
pub(crate) fn rank_cmp(a: &RankKey, b: &RankKey) -> std::cmp::Ordering {
    a.0.cmp(&b.0)
        .then(a.1.total_cmp(&b.1))
        .then(a.2.total_cmp(&b.2))
        .then(a.3.cmp(&b.3))
}

impl Camera {
    /// The current view as a region of the ground around the camera.
    pub(crate) fn view_region(&self) -> Region {
        let (near_m, far_m) = match &self.ptz_head {
            Some(head) => {
                let half = self.vertical_fov() / 2.0;
                depression_band(
                    self.mount_height_m,
                    self.range_m,
                    head.pose.tilt_deg - half,
                    head.pose.tilt_deg + half,
                )
            }
            None => (0.0, self.range_m),
        };
        Region {
            centre_deg: self.heading_deg,
            half_width_deg: self.fov_deg / 2.0,
            near_m,
            far_m,
        }
    }

    /// Everything the camera could see after turning, as a region: the
    /// current view for a fixed camera.
    pub(crate) fn reach_region(&self) -> Region {
        let Some(head) = &self.ptz_head else {
            return self.view_region();
        };
        let half_v = self.vertical_fov() / 2.0;
        let (near_m, far_m) = depression_band(
            self.mount_height_m,
            self.range_m,
            head.tilt_min_deg - half_v,
            head.tilt_max_deg + half_v,
        );
        Region {
            centre_deg: wrap360(
                head.zero_pan_azimuth_deg + (head.pan_min_deg + head.pan_max_deg) / 2.0,
            ),
            half_width_deg: (head.pan_max_deg - head.pan_min_deg) / 2.0 + self.fov_deg / 2.0,
            near_m,
            far_m,
        }
    }

    /// The current field of view on the ground as a closed polygon of
    /// (longitude, latitude) points, `steps` segments along each arc
    /// (1..=3600): the camera's position and the arc at its range; for a
    /// PTZ camera the near edge its tilt leaves unseen replaces the apex
    /// with an inner arc. Empty when it sees no ground (a PTZ looking
    /// above the horizon). Flat ground, no occlusion.
    pub fn sector(&self, steps: usize) -> Vec<LonLat> {
        self.view_region().polygon(&Frame::at(&self.at), steps)
    }

    /// Everything a PTZ camera could see after turning, as a polygon like
    /// [`Camera::sector`]: its views swept over the pan range (a ring for a
    /// continuous pan) and the tilt range. The current view for a fixed
    /// camera.
    pub fn reach(&self, steps: usize) -> Vec<LonLat> {
        self.reach_region().polygon(&Frame::at(&self.at), steps)
    }

    /// The ground point `distance_m` (clamped to 0..=range) from the camera
    /// along its current heading: the centre line of its view, in its own
    /// frame. The camera's position for 0.
    pub fn view_centre(&self, distance_m: f64) -> LonLat {
        let d = if distance_m.is_finite() {
            distance_m.clamp(0.0, self.range_m)
        } else {
            0.0
        };
        if d == 0.0 {
            return self.at;
        }
        let (east, north) = unit(self.heading_deg);
        Frame::at(&self.at).ground_point(east * d, north * d)
    }

    /// How the camera sees the ground point `target`, ignoring its health.
    pub fn sight(&self, target: &LonLat) -> Option<CameraSight> {
        let frame = Frame::at(&self.at);
        self.look_in(&frame, &ecef(target))
            .map(|look| look.into_sight(&self.id))
    }

    /// [`Camera::sight`] from a target's [`ecef`] vector, computing the
    /// camera's frame.
    pub(crate) fn look(&self, target: &[f64; 3]) -> Option<Look> {
        self.look_in(&Frame::at(&self.at), target)
    }

    /// The sight from the camera's own `frame`, or `None` when it neither
    /// sees the point now nor could after turning.
    pub(crate) fn look_in(&self, frame: &Frame, target: &[f64; 3]) -> Option<Look> {
        let (east, north) = frame.east_north(target);
        let (distance_m, bearing_deg) = polar(east, north);
        if distance_m > self.range_m {
            return None;
        }
        let look = self.look_at(distance_m, bearing_deg);
        (look.sees_now || look.after_turn.is_some()).then_some(look)
    }

    /// The sight of the ground point at `distance_m` along `bearing_deg`.
    ///
    /// Score: for a camera that sees the point now, `|off_axis| / (fov/2) +
    /// distance / range`: how far from the centre of the picture and how far
    /// into its range, each as a fraction (0 = dead centre at the camera's
    /// foot, 2 = the corner of its view). For one that must turn,
    /// `|off_axis| / 180 + distance / range`: how far it must turn, as a
    /// fraction of a half turn, and how far.
    pub(crate) fn look_at(&self, distance_m: f64, bearing_deg: f64) -> Look {
        let off_axis_deg = if distance_m == 0.0 {
            0.0
        } else {
            angle_diff(bearing_deg, self.heading_deg)
        };
        let depth = distance_m / self.range_m;
        let mut look = Look {
            distance_m,
            bearing_deg,
            off_axis_deg,
            sees_now: false,
            after_turn: None,
            score: off_axis_deg.abs() / 180.0 + depth,
        };
        if self.view_region().contains(distance_m, bearing_deg) {
            look.sees_now = true;
            look.score = off_axis_deg.abs() / (self.fov_deg / 2.0) + depth;
            return look;
        }
        if self.ptz_head.is_some() && self.reach_region().contains(distance_m, bearing_deg) {
            look.after_turn = self.turn_towards(distance_m, bearing_deg);
        }
        look
    }

    /// For a PTZ camera, the pose that centres the ground point at
    /// `distance_m` along `bearing_deg` as nearly as its limits allow.
    pub(crate) fn turn_towards(&self, distance_m: f64, bearing_deg: f64) -> Option<Turn> {
        let head = self.ptz_head.as_ref()?;
        let relative = wrap360(bearing_deg - head.zero_pan_azimuth_deg);
        let pan_deg = pan_clamped(relative, head.pan_min_deg, head.pan_max_deg);
        let depression = self.mount_height_m.atan2(distance_m).to_degrees();
        Some(Turn {
            pan_deg,
            tilt_deg: depression.clamp(head.tilt_min_deg, head.tilt_max_deg),
            heading_deg: wrap360(head.zero_pan_azimuth_deg + pan_deg),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_round_trips_ground_points() {
        for (lon, lat) in [(24.95, 60.17), (0.0, 0.0), (-75.0, 45.0), (179.99, -33.0)] {
            let origin = LonLat::new(lon, lat);
            let frame = Frame::at(&origin);
            let (e, n) = frame.east_north(&ecef(&origin));
            assert!(e.abs() < 1e-6 && n.abs() < 1e-6);
            for (east, north) in [(100.0, 0.0), (0.0, -250.0), (7000.0, 7000.0), (-3.0, 4.0)] {
                let p = frame.ground_point(east, north);
                let (e, n) = frame.east_north(&ecef(&p));
                let miss = (e - east).hypot(n - north);
                assert!(
                    miss < 0.02,
                    "{origin:?} ({east}, {north}) came back {miss} m off"
                );
            }
        }
    }

    #[test]
    fn depression_bands_on_flat_ground() {
        // 10 m up, looking 45 degrees down with 30 degrees of view
        let (near, far) = depression_band(10.0, 500.0, 30.0, 60.0);
        assert!((near - 10.0 / 60f64.to_radians().tan()).abs() < 1e-9);
        assert!((far - 10.0 / 30f64.to_radians().tan()).abs() < 1e-9);
        // upper edge above the horizon: out to range
        assert_eq!(depression_band(10.0, 500.0, -5.0, 25.0).1, 500.0);
        // lower edge past straight down: from the foot
        assert_eq!(depression_band(10.0, 500.0, 70.0, 100.0).0, 0.0);
        // all of it above the horizon: no ground
        let (near, far) = depression_band(10.0, 500.0, -40.0, -10.0);
        assert!(near > far);
        // at ground level every point is at depression 0
        let (near, far) = depression_band(0.0, 500.0, -10.0, 10.0);
        assert_eq!((near, far), (0.0, 500.0));
    }

    #[test]
    fn distance_to_a_region_and_first_entry() {
        // north-facing 90 degree wedge from 10 m to 100 m
        let r = Region {
            centre_deg: 0.0,
            half_width_deg: 45.0,
            near_m: 10.0,
            far_m: 100.0,
        };
        assert_eq!(r.distance_to(0.0, 50.0), 0.0);
        assert!((r.distance_to(0.0, 150.0) - 50.0).abs() < 1e-9);
        assert!((r.distance_to(0.0, 5.0) - 5.0).abs() < 1e-9);
        // due east at 50 m: nearest is the east edge (bearing 45)
        let expect = 50.0 * 45f64.to_radians().sin();
        assert!((r.distance_to(50.0, 0.0) - expect).abs() < 1e-9);
        assert_eq!(r.distance_to(0.0, 0.0), 10.0);
        // a path along y = 50 from far west to far east enters at x = -50
        let t = r.first_within((-200.0, 50.0), (200.0, 50.0), 0.0).unwrap();
        assert!((t * 400.0 - 150.0).abs() < 1e-6, "{t}");
        // with a 5 m corridor it enters 5 / sin(45) earlier
        let t = r.first_within((-200.0, 50.0), (200.0, 50.0), 5.0).unwrap();
        let expect = 150.0 - 5.0 / 45f64.to_radians().sin();
        assert!(
            (t * 400.0 - expect).abs() < 1e-6,
            "{} vs {expect}",
            t * 400.0
        );
        // passing behind the camera misses
        assert_eq!(r.first_within((-200.0, -20.0), (200.0, -20.0), 0.0), None);
        // but a corridor wider than the gap to the corner catches it
        assert!(
            r.first_within((-200.0, -1.0), (200.0, -1.0), 12.0)
                .is_some()
        );
        // starting inside
        assert_eq!(r.first_within((0.0, 50.0), (0.0, 500.0), 0.0), Some(0.0));
    }
}
