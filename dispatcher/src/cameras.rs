//! The camera network: where each camera is, where it points and how far it sees.

use crate::error::{Error, validate_id};
use crate::geometry::{BoundingBox, LonLat};

/// A fixed or PTZ camera. `heading_deg` is clockwise from north; `fov_deg` is the
/// horizontal field of view; `range_m` how far it usefully sees.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Camera {
    pub id: String,
    pub name: String,
    pub at: LonLat,
    pub mount_height_m: f64,
    pub heading_deg: f64,
    pub fov_deg: f64,
    pub range_m: f64,
    pub ptz: bool,
}

impl Camera {
    /// Checks every field, naming the bad one; normalises the heading to 0..360.
    pub fn validated(mut self) -> Result<Self, Error> {
        validate_id("camera.id", &self.id)?;
        self.at = self.at.validated("camera.lon/lat")?;
        if !self.mount_height_m.is_finite() || !(0.0..=500.0).contains(&self.mount_height_m) {
            return Err(Error::invalid(
                "camera.mount_height_m",
                self.mount_height_m,
                "must be in 0..=500",
            ));
        }
        if !self.heading_deg.is_finite() {
            return Err(Error::invalid(
                "camera.heading_deg",
                self.heading_deg,
                "must be finite",
            ));
        }
        self.heading_deg = self.heading_deg.rem_euclid(360.0);
        if !self.fov_deg.is_finite() || self.fov_deg <= 0.0 || self.fov_deg > 360.0 {
            return Err(Error::invalid(
                "camera.fov_deg",
                self.fov_deg,
                "must be in (0, 360]",
            ));
        }
        if !self.range_m.is_finite() || self.range_m <= 0.0 || self.range_m > 10_000.0 {
            return Err(Error::invalid(
                "camera.range_m",
                self.range_m,
                "must be in (0, 10000]",
            ));
        }
        Ok(self)
    }

    pub fn within(&self, bbox: Option<&BoundingBox>) -> bool {
        bbox.is_none_or(|b| b.contains(&self.at))
    }
}
