//! Points, great-circle metres and a local projection.
//!
//! x = longitude, y = latitude, WGS84 degrees, everywhere. Distances are metres
//! on the sphere of the GRS80 mean radius (the haversine formula, computed
//! exactly as geo's `Haversine` does, so both give the same bits). Bearings are
//! degrees clockwise from true north.

/// Mean Earth radius in metres (GRS80), the sphere every distance is measured on.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Metres per degree of latitude on that sphere.
pub const M_PER_DEG_LAT: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// A WGS84 position: `lon` is x, `lat` is y, both in degrees.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LonLat {
    /// Longitude (x), degrees east of Greenwich, -180..=180.
    pub lon: f64,
    /// Latitude (y), degrees north of the equator, -90..=90.
    pub lat: f64,
}

impl LonLat {
    /// The point at longitude `lon` (x) and latitude `lat` (y), degrees.
    pub const fn new(lon: f64, lat: f64) -> Self {
        Self { lon, lat }
    }

    /// True when both are finite and in range (lon -180..=180, lat -90..=90).
    pub fn is_valid(&self) -> bool {
        self.lon.is_finite()
            && self.lat.is_finite()
            && (-180.0..=180.0).contains(&self.lon)
            && (-90.0..=90.0).contains(&self.lat)
    }

    /// Great-circle distance to `other` in metres (haversine).
    pub fn distance_m(&self, other: &LonLat) -> f64 {
        let theta1 = self.lat.to_radians();
        let theta2 = other.lat.to_radians();
        let delta_theta = (other.lat - self.lat).to_radians();
        let delta_lambda = (other.lon - self.lon).to_radians();
        let a = (delta_theta / 2.0).sin().powi(2)
            + theta1.cos() * theta2.cos() * (delta_lambda / 2.0).sin().powi(2);
        let c = 2.0 * a.sqrt().asin();
        EARTH_RADIUS_M * c
    }

    /// The point as a vector from the Earth's centre, in metres.
    pub fn to_xyz(&self) -> [f64; 3] {
        let (sin_lat, cos_lat) = self.lat.to_radians().sin_cos();
        let (sin_lon, cos_lon) = self.lon.to_radians().sin_cos();
        [
            EARTH_RADIUS_M * cos_lat * cos_lon,
            EARTH_RADIUS_M * cos_lat * sin_lon,
            EARTH_RADIUS_M * sin_lat,
        ]
    }

    /// The point `distance_m` metres away along `bearing_deg` (degrees clockwise
    /// from north), on the sphere.
    pub fn destination(&self, bearing_deg: f64, distance_m: f64) -> LonLat {
        let delta = distance_m / EARTH_RADIUS_M;
        let theta = bearing_deg.to_radians();
        let (phi1, lambda1) = (self.lat.to_radians(), self.lon.to_radians());
        let phi2 = (phi1.sin() * delta.cos() + phi1.cos() * delta.sin() * theta.cos()).asin();
        let lambda2 = lambda1
            + (theta.sin() * delta.sin() * phi1.cos()).atan2(delta.cos() - phi1.sin() * phi2.sin());
        let lon = (lambda2.to_degrees() + 540.0) % 360.0 - 180.0;
        LonLat::new(lon, phi2.to_degrees())
    }

    /// Initial bearing from here to `other`, degrees clockwise from true north in
    /// [0, 360).
    pub fn bearing_deg(&self, other: &LonLat) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlon = (other.lon - self.lon).to_radians();
        let y = dlon.sin() * lat2.cos();
        let x = lat1.cos() * lat2.sin() - lat1.sin() * lat2.cos() * dlon.cos();
        y.atan2(x).to_degrees().rem_euclid(360.0)
    }

    /// The point `t` (0..=1) of the way to `other`, interpolated in degrees: exact
    /// to millimetres over the few hundred metres of one street segment.
    pub fn lerp(self, other: LonLat, t: f64) -> LonLat {
        LonLat::new(
            self.lon + (other.lon - self.lon) * t,
            self.lat + (other.lat - self.lat) * t,
        )
    }
}

/// An equirectangular projection around a reference point: metres east (x) and
/// north (y) of it. Fast, and accurate to a few millimetres per 100 m within a
/// kilometre or two of the reference, which is what snapping a point to a
/// nearby street needs. Not for distances across a country.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalProjection {
    origin: LonLat,
    m_per_deg_lon: f64,
}

impl LocalProjection {
    /// A projection centred on `origin` (its latitude sets the scale of x).
    pub fn new(origin: LonLat) -> Self {
        Self {
            origin,
            m_per_deg_lon: M_PER_DEG_LAT * origin.lat.to_radians().cos(),
        }
    }

    /// The reference point, at (0, 0).
    pub fn origin(&self) -> LonLat {
        self.origin
    }

    /// `p` as [metres east, metres north] of the origin.
    pub fn to_local(&self, p: LonLat) -> [f64; 2] {
        [
            (p.lon - self.origin.lon) * self.m_per_deg_lon,
            (p.lat - self.origin.lat) * M_PER_DEG_LAT,
        ]
    }

    /// The point `xy[0]` metres east and `xy[1]` metres north of the origin.
    pub fn to_lonlat(&self, xy: [f64; 2]) -> LonLat {
        LonLat::new(
            self.origin.lon + xy[0] / self.m_per_deg_lon,
            self.origin.lat + xy[1] / M_PER_DEG_LAT,
        )
    }
}

/// A box in WGS84 degrees: west/east longitudes (x), south/north latitudes (y).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bounds {
    /// Smallest longitude, degrees.
    pub west: f64,
    /// Smallest latitude, degrees.
    pub south: f64,
    /// Largest longitude, degrees.
    pub east: f64,
    /// Largest latitude, degrees.
    pub north: f64,
}

impl Bounds {
    /// The box around `points`; `None` when there are none.
    pub fn around(points: impl IntoIterator<Item = LonLat>) -> Option<Bounds> {
        points.into_iter().fold(None, |b: Option<Bounds>, p| {
            Some(match b {
                None => Bounds {
                    west: p.lon,
                    south: p.lat,
                    east: p.lon,
                    north: p.lat,
                },
                Some(b) => Bounds {
                    west: b.west.min(p.lon),
                    south: b.south.min(p.lat),
                    east: b.east.max(p.lon),
                    north: b.north.max(p.lat),
                },
            })
        })
    }

    /// True when `p` is inside or on the border.
    pub fn contains(&self, p: &LonLat) -> bool {
        (self.west..=self.east).contains(&p.lon) && (self.south..=self.north).contains(&p.lat)
    }

    /// The middle of the box.
    pub fn centre(&self) -> LonLat {
        LonLat::new(
            (self.west + self.east) / 2.0,
            (self.south + self.north) / 2.0,
        )
    }
}

/// The chord (straight line through the Earth) in metres that corresponds to a
/// great-circle distance of `arc_m` metres.
#[cfg(test)]
pub(crate) fn chord_for_arc_m(arc_m: f64) -> f64 {
    let half_angle = (arc_m / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    2.0 * EARTH_RADIUS_M * half_angle.sin()
}

/// The great-circle distance in metres that corresponds to a chord of
/// `chord_m` metres.
pub(crate) fn arc_for_chord_m(chord_m: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (chord_m / (2.0 * EARTH_RADIUS_M)).clamp(0.0, 1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Distance, Haversine, Point};

    #[test]
    fn distance_is_bit_for_bit_geos_haversine() {
        let points = [
            LonLat::new(24.94, 60.17),
            LonLat::new(24.9458, 60.1699),
            LonLat::new(-74.006, 40.7128),
            LonLat::new(-0.1278, 51.5074),
            LonLat::new(179.9, -89.0),
        ];
        for a in points {
            for b in points {
                let ours = a.distance_m(&b);
                let geo = Haversine.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat));
                assert_eq!(ours.to_bits(), geo.to_bits(), "{a:?} {b:?}");
            }
        }
        assert!(
            (LonLat::new(24.94, 60.17).distance_m(&LonLat::new(24.94, 60.18)) - 1111.95).abs()
                < 1.0
        );
    }

    #[test]
    fn destination_round_trips_distance_and_bearing() {
        let p = LonLat::new(24.94, 60.17);
        let d = p.destination(73.0, 1234.0);
        assert!((p.distance_m(&d) - 1234.0).abs() < 0.01);
        assert!((p.bearing_deg(&d) - 73.0).abs() < 0.01);
    }

    #[test]
    fn bearings_are_clockwise_from_north() {
        let a = LonLat::new(24.94, 60.17);
        assert!(a.bearing_deg(&LonLat::new(24.94, 60.18)).abs() < 1e-9);
        assert!((a.bearing_deg(&LonLat::new(24.95, 60.17)) - 90.0).abs() < 0.01);
        assert!((a.bearing_deg(&LonLat::new(24.94, 60.16)) - 180.0).abs() < 1e-9);
        assert!((a.bearing_deg(&LonLat::new(24.93, 60.17)) - 270.0).abs() < 0.01);
    }

    #[test]
    fn validity_ranges() {
        assert!(!LonLat::new(f64::NAN, 10.0).is_valid());
        assert!(!LonLat::new(181.0, 0.0).is_valid());
        assert!(!LonLat::new(0.0, -90.5).is_valid());
        assert!(LonLat::new(180.0, -90.0).is_valid());
    }

    #[test]
    fn local_projection_measures_metres_near_its_origin() {
        let origin = LonLat::new(24.94, 60.17);
        let proj = LocalProjection::new(origin);
        for (bearing, dist) in [(0.0, 150.0), (90.0, 400.0), (225.0, 900.0)] {
            let p = origin.destination(bearing, dist);
            let [x, y] = proj.to_local(p);
            let local = (x * x + y * y).sqrt();
            assert!(
                (local - dist).abs() < dist * 1e-4,
                "{bearing}: {local} vs {dist}"
            );
            let back = proj.to_lonlat([x, y]);
            assert!(back.distance_m(&p) < 1e-6);
        }
    }

    #[test]
    fn chord_and_arc_invert_each_other() {
        for arc in [0.0, 1.0, 250.0, 10_000.0] {
            assert!((arc_for_chord_m(chord_for_arc_m(arc)) - arc).abs() < 1e-6);
        }
        let (a, b) = (LonLat::new(24.94, 60.17), LonLat::new(24.95, 60.175));
        let [ax, ay, az] = a.to_xyz();
        let [bx, by, bz] = b.to_xyz();
        let chord = ((ax - bx).powi(2) + (ay - by).powi(2) + (az - bz).powi(2)).sqrt();
        assert!((arc_for_chord_m(chord) - a.distance_m(&b)).abs() < 1e-3);
    }

    #[test]
    fn bounds_around_points() {
        let b = Bounds::around([LonLat::new(1.0, 2.0), LonLat::new(-1.0, 3.0)]).unwrap();
        assert_eq!((b.west, b.south, b.east, b.north), (-1.0, 2.0, 1.0, 3.0));
        assert!(b.contains(&LonLat::new(0.0, 2.5)) && !b.contains(&LonLat::new(0.0, 4.0)));
        assert_eq!(b.centre(), LonLat::new(0.0, 2.5));
        assert!(Bounds::around([]).is_none());
    }
}
