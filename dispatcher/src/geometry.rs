//! Coordinates and distances.
//!
//! x = longitude, y = latitude, WGS84 degrees, everywhere. Distances are
//! great-circle metres on the GRS80 mean sphere (geo's `Haversine`).
//!
//! The spatial index works on 3-D vectors on that sphere (metres from the
//! Earth's centre). The straight-line (chord) distance between two such vectors
//! is a strictly increasing function of their great-circle distance, so nearest
//! by chord *is* nearest by great circle, with no projection error anywhere on
//! Earth, and a box around a cell bounds the chord to anything inside it.

use crate::error::Error;

pub use patrol_roads::{EARTH_RADIUS_M, LonLat};

/// Checking a [`LonLat`] that came from a caller. (`LonLat` itself lives in
/// `patrol-roads`, the one point type of the workspace; this check returns the
/// dispatcher's error.)
pub trait Validated: Sized {
    /// The point, when both coordinates are finite and in range; otherwise an
    /// error naming `field` and the value.
    fn validated(self, field: &str) -> Result<Self, Error>;
}

impl Validated for LonLat {
    fn validated(self, field: &str) -> Result<Self, Error> {
        if self.is_valid() {
            Ok(self)
        } else {
            Err(Error::invalid(
                field,
                format!("({}, {})", self.lon, self.lat),
                "lon must be finite in -180..=180 and lat finite in -90..=90",
            ))
        }
    }
}

/// Chord length (metres) between two points given as `to_xyz` vectors.
pub fn chord_m(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    (dx * dx + dy * dy + dz * dz).sqrt()
}

/// The chord length that corresponds to a great-circle distance in metres.
pub fn chord_for_arc_m(arc_m: f64) -> f64 {
    let half_angle = (arc_m / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    2.0 * EARTH_RADIUS_M * half_angle.sin()
}

/// The great-circle distance that corresponds to a chord in metres.
pub fn arc_for_chord_m(chord_m: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (chord_m / (2.0 * EARTH_RADIUS_M)).clamp(0.0, 1.0).asin()
}

/// A box in WGS84 degrees (`west <= east`, no antimeridian crossing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Smallest longitude, degrees.
    pub west: f64,
    /// Smallest latitude, degrees.
    pub south: f64,
    /// Largest longitude, degrees.
    pub east: f64,
    /// Largest latitude, degrees.
    pub north: f64,
}

impl BoundingBox {
    /// Checks the box, naming `field` in the error.
    pub fn validated(self, field: &str) -> Result<Self, Error> {
        let corners_ok = LonLat::new(self.west, self.south).is_valid()
            && LonLat::new(self.east, self.north).is_valid();
        if corners_ok && self.west <= self.east && self.south <= self.north {
            Ok(self)
        } else {
            Err(Error::invalid(
                field,
                format!(
                    "(west {}, south {}, east {}, north {})",
                    self.west, self.south, self.east, self.north
                ),
                "corners must be valid coordinates with west <= east and south <= north",
            ))
        }
    }

    /// Whether `p` lies inside the box, edges included.
    pub fn contains(&self, p: &LonLat) -> bool {
        (self.west..=self.east).contains(&p.lon) && (self.south..=self.north).contains(&p.lat)
    }

    /// True when `other` lies wholly inside this box.
    pub fn contains_box(&self, other: &BoundingBox) -> bool {
        self.west <= other.west
            && other.east <= self.east
            && self.south <= other.south
            && other.north <= self.north
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chord_order_matches_haversine_order() {
        let q = LonLat::new(24.94, 60.17);
        let a = LonLat::new(24.95, 60.17);
        let b = LonLat::new(24.94, 60.185);
        let (da, db) = (q.distance_m(&a), q.distance_m(&b));
        let (ca, cb) = (
            chord_m(&q.to_xyz(), &a.to_xyz()),
            chord_m(&q.to_xyz(), &b.to_xyz()),
        );
        assert_eq!(da < db, ca < cb);
        // chord and arc agree to well under a millimetre at city scale
        assert!(
            (chord_for_arc_m(da) - ca).abs() < 1e-3,
            "{} vs {}",
            chord_for_arc_m(da),
            ca
        );
    }

    #[test]
    fn destination_round_trips_distance() {
        let p = LonLat::new(24.94, 60.17);
        let d = p.destination(73.0, 1234.0);
        assert!((p.distance_m(&d) - 1234.0).abs() < 0.01);
    }

    #[test]
    fn invalid_points_name_the_field() {
        let err = LonLat::new(f64::NAN, 10.0)
            .validated("ping.lon")
            .unwrap_err();
        assert!(err.to_string().contains("ping.lon"), "{err}");
        assert!(LonLat::new(181.0, 0.0).validated("x").is_err());
        assert!(LonLat::new(0.0, -90.5).validated("x").is_err());
        assert!(LonLat::new(180.0, -90.0).validated("x").is_ok());
    }
}
