//! [`ZoneIndex`]: the zones by id and an R-tree over their bounding boxes,
//! which change together only through its methods.

use std::collections::BTreeMap;

use geo::{BoundingRect, Contains, Point};
use rstar::{AABB, RTree, RTreeObject};

use super::Zone;
use crate::geometry::{EARTH_RADIUS_M, LonLat};

/// Metres per degree of latitude.
fn m_per_deg() -> f64 {
    EARTH_RADIUS_M * std::f64::consts::PI / 180.0
}

/// One zone's bounding box in the R-tree (lon/lat degrees).
#[derive(Debug, Clone, PartialEq)]
struct ZoneBox {
    min: [f64; 2],
    max: [f64; 2],
    id: String,
}

impl RTreeObject for ZoneBox {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners(self.min, self.max)
    }
}

fn zone_box(zone: &Zone) -> ZoneBox {
    let rect = zone
        .polygon
        .bounding_rect()
        .expect("a checked zone has points");
    ZoneBox {
        min: [rect.min().x, rect.min().y],
        max: [rect.max().x, rect.max().y],
        id: zone.id.clone(),
    }
}

/// The zones by id (sorted, so listings are the same on every node) and an
/// R-tree over their bounding boxes.
#[derive(Debug, Default)]
pub struct ZoneIndex {
    by_id: BTreeMap<String, Zone>,
    tree: RTree<ZoneBox>,
}

impl Clone for ZoneIndex {
    fn clone(&self) -> Self {
        Self::from_zones(self.by_id.values().cloned())
    }
}

impl ZoneIndex {
    /// An index holding these zones (later ones replace earlier with the
    /// same id).
    pub fn from_zones(zones: impl IntoIterator<Item = Zone>) -> Self {
        let by_id: BTreeMap<String, Zone> = zones.into_iter().map(|z| (z.id.clone(), z)).collect();
        let tree = RTree::bulk_load(by_id.values().map(zone_box).collect());
        Self { by_id, tree }
    }

    /// How many zones.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The zone with this id.
    pub fn get(&self, id: &str) -> Option<&Zone> {
        self.by_id.get(id)
    }

    /// Every zone, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.by_id.values()
    }

    /// Puts a zone (replacing one with the same id); returns the old one.
    pub(crate) fn put(&mut self, zone: Zone) -> Option<Zone> {
        let old = self.remove(&zone.id);
        self.tree.insert(zone_box(&zone));
        self.by_id.insert(zone.id.clone(), zone);
        old
    }

    /// Removes a zone; returns it.
    pub(crate) fn remove(&mut self, id: &str) -> Option<Zone> {
        let old = self.by_id.remove(id)?;
        self.tree.remove(&zone_box(&old));
        Some(old)
    }

    /// Zones whose bounding box, widened by `margin_m` metres, holds `at`:
    /// the only ones that can be within `margin_m` of it. Cheap: an R-tree
    /// lookup, no polygon work.
    pub fn near(&self, at: LonLat, margin_m: f64) -> impl Iterator<Item = &Zone> {
        let dlat = margin_m / m_per_deg();
        let dlon = dlat / at.lat.to_radians().cos().max(1e-6);
        let envelope = AABB::from_corners(
            [at.lon - dlon, at.lat - dlat],
            [at.lon + dlon, at.lat + dlat],
        );
        self.tree
            .locate_in_envelope_intersecting(&envelope)
            .filter_map(|b| self.by_id.get(&b.id))
    }

    /// Zones that hold `at`, by id.
    pub fn containing(&self, at: LonLat) -> Vec<&Zone> {
        let mut zones: Vec<&Zone> = self.near(at, 0.0).filter(|z| contains(z, at)).collect();
        zones.sort_by(|a, b| a.id.cmp(&b.id));
        zones
    }

    /// Zones that hold `at`, smallest area first (a segment before the zone
    /// it is part of), then by id.
    pub fn containing_smallest_first(&self, at: LonLat) -> Vec<&Zone> {
        use geo::Area;
        let mut zones: Vec<(f64, &Zone)> = self
            .containing(at)
            .into_iter()
            .map(|z| (z.polygon.unsigned_area(), z))
            .collect();
        zones.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        zones.into_iter().map(|(_, z)| z).collect()
    }

    /// The zone of an incident at `at`: the smallest-area zone holding it
    /// (a segment before the zone it is part of), if any.
    pub fn zone_of(&self, at: LonLat) -> Option<&Zone> {
        self.containing_smallest_first(at).into_iter().next()
    }
}

/// Whether the zone holds `at` (points on the boundary do not count).
pub(super) fn contains(zone: &Zone, at: LonLat) -> bool {
    zone.polygon.contains(&Point::new(at.lon, at.lat))
}

/// Metres from `at` to the zone's boundary: positive inside, negative
/// outside. Planar, in an equirectangular projection around `at`.
pub(super) fn signed_distance_m(zone: &Zone, at: LonLat) -> f64 {
    let ky = m_per_deg();
    let kx = ky * at.lat.to_radians().cos();
    let mut best = f64::INFINITY;
    for poly in &zone.polygon.0 {
        for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
            for seg in ring.0.windows(2) {
                let (ax, ay) = ((seg[0].x - at.lon) * kx, (seg[0].y - at.lat) * ky);
                let (bx, by) = ((seg[1].x - at.lon) * kx, (seg[1].y - at.lat) * ky);
                best = best.min(point_segment_sq(ax, ay, bx, by));
            }
        }
    }
    let d = best.sqrt();
    if contains(zone, at) { d } else { -d }
}

/// Squared distance from the origin to segment a-b.
fn point_segment_sq(ax: f64, ay: f64, bx: f64, by: f64) -> f64 {
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (px, py) = (ax + t * dx, ay + t * dy);
    px * px + py * py
}

impl ZoneIndex {
    /// Metres from `at` to the boundary of zone `id` (positive inside), if
    /// the zone exists.
    pub fn signed_distance_m(&self, id: &str, at: LonLat) -> Option<f64> {
        self.get(id).map(|z| signed_distance_m(z, at))
    }
}
