//! The spatial index behind [`UnitIndex`](crate::units::UnitIndex): an R-tree
//! over occupied grid cells, each cell holding the units currently inside it.
//!
//! **Why cells.** A per-unit R-tree entry costs a remove plus an insert whenever a
//! unit moves, and rstar's removal dominated ingest profiles. Here a unit only
//! changes cell when it crosses a cell border (a car at 10 m/s in 150 m cells:
//! every ~15 s), and that is two `Vec` operations, not a tree update. The tree
//! changes only when a cell is first occupied. Queries stay exact: every unit
//! sits in the cell of its *current* position, and a cell's envelope bounds all
//! of its units.
//!
//! **Geometry.** Cells are rows of equal latitude height; each row is cut into
//! columns about as wide as the row is high at that latitude. Envelopes are 3-D
//! boxes around the cell's patch of the sphere (vectors in metres from the
//! Earth's centre, see `geometry`), padded for the patch's curvature, so the
//! tree's box distance is a lower bound on the chord to any unit in the cell,
//! and chord order is great-circle order.

use hashbrown::HashMap;
use rstar::{AABB, PointDistance, RTree, RTreeObject};

use crate::geometry::{EARTH_RADIUS_M, LonLat};

/// No cell: a unit without a fix.
pub(crate) const NO_CELL: u32 = u32::MAX;

/// An occupied (or once occupied) cell's tree entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CellEntry {
    envelope: AABB<[f64; 3]>,
    pub cell: u32,
}

impl RTreeObject for CellEntry {
    type Envelope = AABB<[f64; 3]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

impl PointDistance for CellEntry {
    fn distance_2(&self, point: &[f64; 3]) -> f64 {
        self.envelope.distance_2(point)
    }
}

/// What a query needs of a unit, kept inside its cell's list so a query scans
/// a cell's units from one contiguous block instead of chasing each unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub slot: u32,
    /// Stored status (see `Hot::status`, of which this is a copy).
    pub status: crate::units::UnitStatus,
    pub fix_time: crate::Millis,
    /// Current fix as a vector from the Earth's centre, metres.
    pub xyz: [f64; 3],
}

/// One cell: where it lies and the units inside it, in no particular order.
#[derive(Debug)]
pub(crate) struct Cell {
    /// (south, west) corner and (north, east) corner in degrees: lets a ping
    /// that stays in its cell skip locating the cell at all.
    south_west: LonLat,
    north_east: LonLat,
    pub members: Vec<Member>,
}

impl Cell {
    /// Whether `p` lies in this cell (half-open, like `CellGrid::key`).
    pub(crate) fn contains(&self, p: &LonLat) -> bool {
        p.lat >= self.south_west.lat
            && p.lat < self.north_east.lat
            && p.lon >= self.south_west.lon
            && p.lon < self.north_east.lon
    }
}

/// Cells and the R-tree over them.
#[derive(Debug)]
pub(crate) struct CellGrid {
    /// Row height in degrees of latitude.
    row_deg: f64,
    cells: Vec<Cell>,
    by_key: HashMap<(i32, i32), u32>,
    tree: RTree<CellEntry>,
}

impl CellGrid {
    /// Cells about `cell_m` metres on a side.
    pub(crate) fn new(cell_m: f64) -> Self {
        let cell_m = cell_m.clamp(1.0, 1_000_000.0);
        Self {
            row_deg: (cell_m / EARTH_RADIUS_M).to_degrees(),
            cells: Vec::new(),
            by_key: HashMap::default(),
            tree: RTree::new(),
        }
    }

    pub(crate) fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// Estimated bytes the grid reserves: the cell table, every cell's member
    /// list (by capacity), the key map and the R-tree (one leaf per cell plus
    /// about half as much again for inner nodes and their slack).
    pub(crate) fn memory_bytes(&self) -> usize {
        let cells = self.cells.capacity() * std::mem::size_of::<Cell>();
        let members: usize = self
            .cells
            .iter()
            .map(|c| c.members.capacity() * std::mem::size_of::<Member>())
            .sum();
        let by_key = crate::units::hash_table_bytes(
            self.by_key.capacity(),
            std::mem::size_of::<((i32, i32), u32)>(),
        );
        let tree = self.tree.size() * std::mem::size_of::<rstar::RTreeNode<CellEntry>>() * 3 / 2;
        cells + members + by_key + tree
    }

    fn rows(&self) -> i32 {
        (180.0 / self.row_deg).ceil() as i32
    }

    /// Columns in `row`: about square cells, one cell near the poles.
    fn columns(&self, row: i32) -> i32 {
        let lat_mid = (-90.0 + (row as f64 + 0.5) * self.row_deg).clamp(-90.0, 90.0);
        let cols = (360.0 * lat_mid.to_radians().cos() / self.row_deg).floor();
        cols.clamp(1.0, 1e9) as i32
    }

    /// The (row, column) a point falls in.
    pub(crate) fn key(&self, p: &LonLat) -> (i32, i32) {
        let row = (((p.lat + 90.0) / self.row_deg).floor() as i32).clamp(0, self.rows() - 1);
        let cols = self.columns(row);
        let col = (((p.lon + 180.0) / 360.0 * cols as f64).floor() as i32).clamp(0, cols - 1);
        (row, col)
    }

    /// The cell for `key`, created (and put in the tree) on first use.
    pub(crate) fn cell_for(&mut self, key: (i32, i32)) -> u32 {
        if let Some(&cell) = self.by_key.get(&key) {
            return cell;
        }
        let cell = self.cells.len() as u32;
        let (south_west, north_east) = self.bounds(key);
        self.cells.push(Cell {
            south_west,
            north_east,
            members: Vec::new(),
        });
        self.by_key.insert(key, cell);
        self.tree.insert(CellEntry {
            envelope: self.envelope(key),
            cell,
        });
        cell
    }

    pub(crate) fn cell(&self, cell: u32) -> &Cell {
        &self.cells[cell as usize]
    }

    pub(crate) fn cell_mut(&mut self, cell: u32) -> &mut Cell {
        &mut self.cells[cell as usize]
    }

    /// Cells nearest-first from `query` (a `to_xyz` vector), each with a lower
    /// bound (metres) on the chord from `query` to any point inside it.
    pub(crate) fn nearest_cells<'a>(
        &'a self,
        query: &'a [f64; 3],
    ) -> impl Iterator<Item = (u32, f64)> + 'a {
        self.tree
            .nearest_neighbor_iter_with_distance_2(query)
            .map(|(entry, d2)| (entry.cell, d2.sqrt()))
    }

    /// The cell's (south-west, north-east) corners in degrees.
    fn bounds(&self, (row, col): (i32, i32)) -> (LonLat, LonLat) {
        let lat0 = (-90.0 + row as f64 * self.row_deg).max(-90.0);
        let lat1 = (lat0 + self.row_deg).min(90.0);
        let width = 360.0 / self.columns(row) as f64;
        let lon0 = -180.0 + col as f64 * width;
        (LonLat::new(lon0, lat0), LonLat::new(lon0 + width, lat1))
    }

    /// A 3-D box containing the cell's patch of the sphere.
    fn envelope(&self, key: (i32, i32)) -> AABB<[f64; 3]> {
        let (sw, ne) = self.bounds(key);
        let (lat0, lat1, lon0, lon1) = (sw.lat, ne.lat, sw.lon, ne.lon);
        let width = lon1 - lon0;
        // Sample the patch on a grid; between samples the sphere bulges by at
        // most R(1 - cos(theta / 2)) for a sample spacing of angle theta.
        const STEPS: usize = 8;
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for i in 0..=STEPS {
            for j in 0..=STEPS {
                let lat = lat0 + (lat1 - lat0) * i as f64 / STEPS as f64;
                let lon = lon0 + (lon1 - lon0) * j as f64 / STEPS as f64;
                let p = LonLat::new(lon, lat).to_xyz();
                for d in 0..3 {
                    lo[d] = lo[d].min(p[d]);
                    hi[d] = hi[d].max(p[d]);
                }
            }
        }
        let step_angle = ((lat1 - lat0).max(width) / STEPS as f64).to_radians();
        let pad = 2.0 * EARTH_RADIUS_M * (1.0 - (step_angle / 2.0).cos()) + 0.01;
        AABB::from_corners(
            [lo[0] - pad, lo[1] - pad, lo[2] - pad],
            [hi[0] + pad, hi[1] + pad, hi[2] + pad],
        )
    }

    #[cfg(test)]
    pub(crate) fn envelope_contains(&self, key: (i32, i32), p: &LonLat) -> bool {
        use rstar::Envelope;
        self.envelope(key).contains_point(&p.to_xyz())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_lies_in_its_cells_envelope() {
        for cell_m in [10.0, 150.0, 5_000.0, 200_000.0] {
            let grid = CellGrid::new(cell_m);
            let mut x = 12345u64;
            for _ in 0..20_000 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let lon = (x >> 11) as f64 / (1u64 << 53) as f64 * 360.0 - 180.0;
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let lat = (x >> 11) as f64 / (1u64 << 53) as f64 * 180.0 - 90.0;
                let p = LonLat::new(lon, lat);
                assert!(
                    grid.envelope_contains(grid.key(&p), &p),
                    "{p:?} at {cell_m} m"
                );
            }
            for p in [
                LonLat::new(180.0, 90.0),
                LonLat::new(-180.0, -90.0),
                LonLat::new(0.0, 0.0),
                LonLat::new(179.999999, 89.9999),
            ] {
                assert!(
                    grid.envelope_contains(grid.key(&p), &p),
                    "{p:?} at {cell_m} m"
                );
            }
        }
    }

    #[test]
    fn cells_are_about_the_asked_size() {
        let grid = CellGrid::new(150.0);
        let a = LonLat::new(24.94, 60.17);
        let (row, col) = grid.key(&a);
        // the next cell east begins within ~150 m
        let mut east = a;
        while grid.key(&east) == (row, col) {
            east = east.destination(90.0, 5.0);
        }
        assert!(a.distance_m(&east) <= 160.0);
    }
}
