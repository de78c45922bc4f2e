//! The camera network: where each camera is, where it points and how far it
//! sees, and [`CameraIndex`], the id map and the slot-ordered table that change
//! together only through its methods.

use std::collections::HashMap;

use crate::error::{Error, validate_id};
use crate::geometry::Validated;
use crate::geometry::{BoundingBox, LonLat};

/// Longest accepted camera name, in bytes.
pub const MAX_CAMERA_NAME_LEN: usize = 256;

/// A fixed or PTZ camera. `heading_deg` is clockwise from north; `fov_deg` is the
/// horizontal field of view; `range_m` how far it usefully sees.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Camera {
    /// Caller-chosen id, unique per region.
    pub id: String,
    /// What operators call it, e.g. "Market square north"; may be empty.
    pub name: String,
    /// Where it is mounted (x = longitude, y = latitude, degrees).
    pub at: LonLat,
    /// Mounting height above ground, metres (0..=500).
    pub mount_height_m: f64,
    /// Where it points, degrees clockwise from north (stored as 0..360).
    pub heading_deg: f64,
    /// Horizontal field of view, degrees, (0, 360].
    pub fov_deg: f64,
    /// How far it usefully sees, metres, (0, 10000].
    pub range_m: f64,
    /// Whether operators can pan, tilt and zoom it.
    pub ptz: bool,
}

impl Camera {
    /// Checks every field, naming the bad one; normalises the heading to 0..360.
    pub fn validated(mut self) -> Result<Self, Error> {
        validate_id("camera.id", &self.id)?;
        if self.name.len() > MAX_CAMERA_NAME_LEN {
            return Err(Error::invalid(
                "camera.name",
                format!("{:?}...", &self.name[..self.name.floor_char_boundary(32)]),
                format!("must be at most {MAX_CAMERA_NAME_LEN} bytes"),
            ));
        }
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

    /// Whether the camera stands inside `bbox` (always, without one).
    pub fn within(&self, bbox: Option<&BoundingBox>) -> bool {
        bbox.is_none_or(|b| b.contains(&self.at))
    }

    /// The name operators know the camera by, or its id when it has none.
    pub fn name_or_id(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// Every registered camera, in the order each was first registered (its slot),
/// and the id map into that order. Both change together, only here: like the
/// unit index, one door. Slot order is what listings and checkpoints show, so
/// a rebuilt node lists cameras exactly as one that never stopped.
#[derive(Debug, Default)]
pub struct CameraIndex {
    cameras: Vec<Camera>,
    slots: HashMap<String, usize>,
}

impl CameraIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many cameras are registered.
    pub fn len(&self) -> usize {
        self.cameras.len()
    }

    /// Whether no camera is registered.
    pub fn is_empty(&self) -> bool {
        self.cameras.is_empty()
    }

    /// Validates `camera` and stores it: a new id takes the next slot, a known
    /// id is replaced in its slot. Returns the stored camera (heading
    /// normalised) and whether it is new.
    pub fn register(&mut self, camera: Camera) -> Result<(Camera, bool), Error> {
        let camera = camera.validated()?;
        let created = match self.slots.get(&camera.id) {
            Some(&slot) => {
                self.cameras[slot] = camera.clone();
                false
            }
            None => {
                self.slots.insert(camera.id.clone(), self.cameras.len());
                self.cameras.push(camera.clone());
                true
            }
        };
        Ok((camera, created))
    }

    /// The camera with this id.
    pub fn get(&self, id: &str) -> Option<&Camera> {
        self.slots.get(id).map(|&slot| &self.cameras[slot])
    }

    /// The camera's slot: the order it was first registered in.
    pub fn slot(&self, id: &str) -> Option<usize> {
        self.slots.get(id).copied()
    }

    /// Every camera, in slot order.
    pub fn in_slot_order(&self) -> &[Camera] {
        &self.cameras
    }

    /// The cameras inside `bbox` (all, without one), in slot order.
    pub fn within<'a>(&'a self, bbox: Option<&'a BoundingBox>) -> impl Iterator<Item = &'a Camera> {
        self.cameras.iter().filter(move |c| c.within(bbox))
    }

    /// Rebuilds the index from cameras in slot order (from a checkpoint).
    /// Refuses an id listed twice, which would leave two slots for one camera.
    pub fn from_slot_order(cameras: Vec<Camera>) -> Result<Self, Error> {
        let mut slots = HashMap::with_capacity(cameras.len());
        for (slot, camera) in cameras.iter().enumerate() {
            if slots.insert(camera.id.clone(), slot).is_some() {
                return Err(Error::FailedPrecondition(format!(
                    "checkpoint lists camera {:?} twice",
                    camera.id
                )));
            }
        }
        Ok(Self { cameras, slots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(id: &str, heading_deg: f64) -> Camera {
        Camera {
            id: id.into(),
            name: String::new(),
            at: LonLat::new(24.95, 60.17),
            mount_height_m: 6.0,
            heading_deg,
            fov_deg: 60.0,
            range_m: 80.0,
            ptz: false,
        }
    }

    #[test]
    fn re_registering_keeps_the_slot_and_replaces_the_camera() {
        let mut index = CameraIndex::new();
        assert!(index.register(camera("a", 0.0)).unwrap().1);
        assert!(index.register(camera("b", 0.0)).unwrap().1);
        let (stored, created) = index.register(camera("a", -90.0)).unwrap();
        assert!(!created);
        assert_eq!(stored.heading_deg, 270.0);
        assert_eq!(index.len(), 2);
        assert_eq!(index.slot("a"), Some(0));
        assert_eq!(index.get("a").unwrap().heading_deg, 270.0);
        let ids: Vec<_> = index
            .in_slot_order()
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        // a refused camera changes nothing
        let mut bad = camera("c", 0.0);
        bad.range_m = 0.0;
        assert!(index.register(bad).is_err());
        assert_eq!(index.len(), 2);
        assert!(index.get("c").is_none());
    }

    #[test]
    fn rebuilding_refuses_a_camera_listed_twice() {
        let index = CameraIndex::from_slot_order(vec![camera("a", 0.0), camera("b", 0.0)]).unwrap();
        assert_eq!(index.slot("b"), Some(1));
        let err =
            CameraIndex::from_slot_order(vec![camera("a", 0.0), camera("a", 1.0)]).unwrap_err();
        assert!(err.to_string().contains("\"a\" twice"), "{err}");
    }
}
