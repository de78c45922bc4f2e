//! A seeded, realistic city of patrol units: most units in a dense centre, the
//! rest spread over a city-sized region, 40% of them busy, each moving a few
//! metres per ping. The same seed gives the same city, moves and query points,
//! so patrold, the in-process core and Redis all see identical positions.
//!
//! With `--helsinki`, the dense centre is the real street network of central
//! Helsinki (the OpenStreetMap extract in `data/`, (c) OpenStreetMap
//! contributors, ODbL 1.0): centre units start at random points on its streets
//! and footways instead of a Gaussian cloud.
//!
//! Coordinates are WGS84 degrees, x = longitude, y = latitude. Offsets are in
//! metres on a local equirectangular projection around the region's centre,
//! which is accurate to well under a metre over a 40 km box.

use std::sync::Arc;

use patrol_proto::v1 as pb;
use patrol_sim::osm::CityMap;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Metres per degree of latitude (mean Earth radius 6 371 008.8 m).
pub const M_PER_DEG_LAT: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// A square region around a centre, `half_extent_m` metres each way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Centre longitude, degrees.
    pub centre_lon: f64,
    /// Centre latitude, degrees.
    pub centre_lat: f64,
    /// Half the side of the box, metres.
    pub half_extent_m: f64,
}

impl Region {
    /// A 40 x 40 km box around central Helsinki (60.17 N, 24.94 E).
    pub const HELSINKI: Region = Region {
        centre_lon: 24.94,
        centre_lat: 60.17,
        half_extent_m: 20_000.0,
    };

    /// Metres per degree of longitude at the centre's latitude.
    pub fn m_per_deg_lon(&self) -> f64 {
        M_PER_DEG_LAT * self.centre_lat.to_radians().cos()
    }

    /// The point `east_m` east and `north_m` north of the centre (lon, lat).
    pub fn offset(&self, east_m: f64, north_m: f64) -> (f64, f64) {
        (
            self.centre_lon + east_m / self.m_per_deg_lon(),
            self.centre_lat + north_m / M_PER_DEG_LAT,
        )
    }

    /// Metres east and north of the centre of (lon, lat).
    pub fn local_m(&self, lon: f64, lat: f64) -> (f64, f64) {
        (
            (lon - self.centre_lon) * self.m_per_deg_lon(),
            (lat - self.centre_lat) * M_PER_DEG_LAT,
        )
    }

    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let (e, n) = self.local_m(lon, lat);
        e.abs() <= self.half_extent_m && n.abs() <= self.half_extent_m
    }

    /// A point uniformly anywhere in the region (lon, lat).
    pub fn uniform_point(&self, rng: &mut Xoshiro256PlusPlus) -> (f64, f64) {
        let h = self.half_extent_m;
        self.offset(rng.random_range(-h..=h), rng.random_range(-h..=h))
    }
}

/// What a simulated unit is; it decides how far it moves per ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Car,
    Foot,
    EBike,
    Motorcycle,
}

impl Kind {
    /// The step per ping in metres (low, high).
    fn step_m(self) -> (f64, f64) {
        match self {
            Kind::Car | Kind::Motorcycle => (5.0, 15.0),
            Kind::EBike => (2.0, 6.0),
            Kind::Foot => (1.0, 2.0),
        }
    }

    pub fn to_proto(self) -> pb::UnitKind {
        match self {
            Kind::Car => pb::UnitKind::Car,
            Kind::Foot => pb::UnitKind::Foot,
            Kind::EBike => pb::UnitKind::EBike,
            Kind::Motorcycle => pb::UnitKind::Motorcycle,
        }
    }

    pub fn to_core(self) -> patrol_dispatcher::UnitKind {
        match self {
            Kind::Car => patrol_dispatcher::UnitKind::Car,
            Kind::Foot => patrol_dispatcher::UnitKind::Foot,
            Kind::EBike => patrol_dispatcher::UnitKind::EBike,
            Kind::Motorcycle => patrol_dispatcher::UnitKind::Motorcycle,
        }
    }
}

/// Where the dense centre's units start.
#[derive(Debug, Clone)]
pub enum Centre {
    /// A Gaussian cloud around the region's centre, `sigma_m` metres per axis.
    Gaussian { sigma_m: f64 },
    /// Random points on a real street network.
    Network(Arc<CityMap>),
}

/// How the city is drawn.
#[derive(Debug, Clone)]
pub struct CitySpec {
    pub seed: u64,
    pub units: usize,
    pub region: Region,
    /// Share of units in the dense centre (the rest are uniform over the region).
    pub centre_share: f64,
    pub centre: Centre,
    /// Share of units that are busy (not available for a recommendation).
    pub busy_share: f64,
}

impl CitySpec {
    pub fn new(seed: u64, units: usize) -> Self {
        Self {
            seed,
            units,
            region: Region::HELSINKI,
            centre_share: 0.7,
            centre: Centre::Gaussian { sigma_m: 1_500.0 },
            busy_share: 0.4,
        }
    }
}

/// One simulated unit terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct SimUnit {
    pub id: String,
    pub kind: Kind,
    /// Current position, degrees.
    pub lon: f64,
    pub lat: f64,
    /// Direction of travel, degrees clockwise from north, in [0, 360).
    pub heading_deg: f64,
    /// Metres moved by the last step.
    pub last_step_m: f64,
    /// The fix time of the last ping this unit produced (Unix ms); 0 if none.
    pub last_fix_ms: i64,
    pub busy: bool,
}

impl SimUnit {
    /// Moves a few metres along a gently wandering heading, turning back at the
    /// region's edge.
    pub fn step(&mut self, rng: &mut Xoshiro256PlusPlus, region: &Region) {
        let (lo, hi) = self.kind.step_m();
        let step = rng.random_range(lo..hi);
        let turn: f64 = rng.random_range(-20.0..20.0);
        self.heading_deg = (self.heading_deg + turn).rem_euclid(360.0);
        let rad = self.heading_deg.to_radians();
        let (east, north) = region.local_m(self.lon, self.lat);
        let (e2, n2) = (east + step * rad.sin(), north + step * rad.cos());
        if e2.abs() > region.half_extent_m || n2.abs() > region.half_extent_m {
            self.heading_deg = (self.heading_deg + 180.0).rem_euclid(360.0);
            self.last_step_m = 0.0;
            return;
        }
        (self.lon, self.lat) = region.offset(e2, n2);
        self.last_step_m = step;
    }

    /// A fix time at or after `now_ms` that is strictly newer than this unit's
    /// previous one (the server refuses an older or equal one).
    pub fn next_fix_ms(&mut self, now_ms: i64) -> i64 {
        let t = now_ms.max(self.last_fix_ms + 1);
        self.last_fix_ms = t;
        t
    }

    /// A ping at the current position, taken at `now_ms` (or just after).
    pub fn ping(&mut self, now_ms: i64) -> pb::Ping {
        let fix_time_unix_ms = self.next_fix_ms(now_ms);
        pb::Ping {
            unit_id: self.id.clone(),
            fix_time_unix_ms,
            lon: self.lon,
            lat: self.lat,
            // a ping a second: speed is the last step per second
            speed_mps: Some(self.last_step_m as f32),
            heading_deg: Some(self.heading_deg as f32),
            accuracy_m: Some(5.0),
        }
    }
}

/// The generated units.
#[derive(Debug, Clone)]
pub struct City {
    pub spec: CitySpec,
    pub units: Vec<SimUnit>,
}

/// A unit id: fixed width, like a fleet number.
pub fn unit_id(i: usize) -> String {
    format!("unit-{i:07}")
}

/// A standard normal sample (Box-Muller), so the city does not depend on a
/// distribution crate's algorithm.
fn standard_normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A point drawn like a unit's start: in the centre with probability
/// `centre_share`, else uniform over the region (lon, lat).
fn place(spec: &CitySpec, rng: &mut Xoshiro256PlusPlus) -> (f64, f64) {
    let region = spec.region;
    let h = region.half_extent_m;
    if rng.random_bool(spec.centre_share) {
        match &spec.centre {
            Centre::Gaussian { sigma_m } => region.offset(
                (standard_normal(rng) * sigma_m).clamp(-h, h),
                (standard_normal(rng) * sigma_m).clamp(-h, h),
            ),
            Centre::Network(map) => {
                let p = map.random_point_on_network(rng);
                (p.lon, p.lat)
            }
        }
    } else {
        region.uniform_point(rng)
    }
}

impl City {
    pub fn generate(spec: CitySpec) -> City {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed);
        let mut units: Vec<SimUnit> = (0..spec.units)
            .map(|i| {
                let (lon, lat) = place(&spec, &mut rng);
                let kind = match rng.random_range(0..10) {
                    0..5 => Kind::Car,
                    5..8 => Kind::Foot,
                    8 => Kind::EBike,
                    _ => Kind::Motorcycle,
                };
                SimUnit {
                    id: unit_id(i),
                    kind,
                    lon,
                    lat,
                    heading_deg: rng.random_range(0.0..360.0),
                    last_step_m: 0.0,
                    last_fix_ms: 0,
                    busy: false,
                }
            })
            .collect();
        // Exactly busy_share of the units, chosen by a seeded partial shuffle.
        let busy = ((spec.units as f64) * spec.busy_share).round() as usize;
        let mut order: Vec<usize> = (0..spec.units).collect();
        for i in 0..busy.min(spec.units) {
            let j = rng.random_range(i..spec.units);
            order.swap(i, j);
            units[order[i]].busy = true;
        }
        City { spec, units }
    }

    /// The same city with its centre on a street network.
    pub fn with_centre(mut spec: CitySpec, centre: Centre) -> City {
        spec.centre = centre;
        City::generate(spec)
    }

    /// `count` query points uniformly anywhere in the region (lon, lat), from
    /// their own seed so they do not depend on the unit count.
    pub fn query_points(&self, count: usize) -> Vec<(f64, f64)> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.spec.seed ^ 0x9e37_79b9_7f4a_7c15);
        (0..count)
            .map(|_| self.spec.region.uniform_point(&mut rng))
            .collect()
    }

    /// `count` query points placed the way units are (the dense centre's share
    /// in the centre, the rest uniform): incidents where the people are.
    pub fn centre_weighted_points(&self, count: usize) -> Vec<(f64, f64)> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.spec.seed ^ 0x5851_f42d_4c95_7f2d);
        (0..count).map(|_| place(&self.spec, &mut rng)).collect()
    }

    pub fn available(&self) -> impl Iterator<Item = &SimUnit> {
        self.units.iter().filter(|u| !u.busy)
    }

    /// Puts every unit back at `positions` (lon, lat), unit by unit.
    pub fn restore_positions(&mut self, positions: &[(f64, f64)]) {
        for (u, &(lon, lat)) in self.units.iter_mut().zip(positions) {
            u.lon = lon;
            u.lat = lat;
        }
    }

    /// Every unit's position (lon, lat), in unit order.
    pub fn positions(&self) -> Vec<(f64, f64)> {
        self.units.iter().map(|u| (u.lon, u.lat)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_city() {
        let a = City::generate(CitySpec::new(7, 2_000));
        let b = City::generate(CitySpec::new(7, 2_000));
        assert_eq!(a.units, b.units);
        assert_eq!(a.query_points(50), b.query_points(50));
        let c = City::generate(CitySpec::new(8, 2_000));
        assert_ne!(a.units, c.units);
    }

    #[test]
    fn shape_is_a_dense_centre_with_spread_rest() {
        let city = City::generate(CitySpec::new(1, 20_000));
        let region = city.spec.region;
        assert!(city.units.iter().all(|u| region.contains(u.lon, u.lat)));
        let within = |r: f64| {
            city.units
                .iter()
                .filter(|u| {
                    let (e, n) = region.local_m(u.lon, u.lat);
                    e.hypot(n) <= r
                })
                .count() as f64
                / city.units.len() as f64
        };
        // 70% Gaussian (sigma 1.5 km): 86% of them within 3 km, plus a little of
        // the uniform 30%.
        let centre = within(3_000.0);
        assert!(
            (0.58..0.66).contains(&centre),
            "share within 3 km: {centre}"
        );
        // The uniform part reaches the corners.
        assert!(within(25_000.0) > within(19_000.0));
        let busy = city.units.iter().filter(|u| u.busy).count();
        assert_eq!(busy, 8_000);
        let cars = city.units.iter().filter(|u| u.kind == Kind::Car).count() as f64 / 20_000.0;
        assert!((0.45..0.55).contains(&cars));
    }

    #[test]
    fn helsinki_centre_puts_units_on_the_street_network() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/helsinki.osm.pbf");
        let map = Arc::new(CityMap::load(path).expect("the Helsinki extract loads"));
        let bounds = map.bounds;
        let city = City::with_centre(CitySpec::new(2, 2_000), Centre::Network(map));
        let inside = city
            .units
            .iter()
            .filter(|u| {
                (bounds.west..=bounds.east).contains(&u.lon)
                    && (bounds.south..=bounds.north).contains(&u.lat)
            })
            .count() as f64
            / 2_000.0;
        // 70% on the network, plus the few uniform ones that land in its box
        assert!((0.65..0.75).contains(&inside), "{inside}");
        assert!(
            city.units
                .iter()
                .all(|u| city.spec.region.contains(u.lon, u.lat))
        );
    }

    #[test]
    fn query_points_cover_the_region() {
        let city = City::generate(CitySpec::new(3, 10));
        let region = city.spec.region;
        let points = city.query_points(4_000);
        assert!(points.iter().all(|&(lon, lat)| region.contains(lon, lat)));
        let far = points
            .iter()
            .filter(|&&(lon, lat)| {
                let (e, n) = region.local_m(lon, lat);
                e.abs() > 15_000.0 && n.abs() > 15_000.0
            })
            .count();
        // the four 5 km corner squares hold 1/16 of a uniform sample
        assert!((150..350).contains(&far), "{far}");
    }

    #[test]
    fn centre_weighted_points_follow_the_units() {
        let city = City::generate(CitySpec::new(3, 10));
        let region = city.spec.region;
        let points = city.centre_weighted_points(10_000);
        assert_eq!(points, city.centre_weighted_points(10_000));
        let near = points
            .iter()
            .filter(|&&(lon, lat)| {
                let (e, n) = region.local_m(lon, lat);
                e.hypot(n) <= 3_000.0
            })
            .count() as f64
            / 10_000.0;
        assert!((0.58..0.66).contains(&near), "{near}");
    }

    #[test]
    fn units_move_a_few_metres_and_fix_times_increase() {
        let mut city = City::generate(CitySpec::new(5, 100));
        let region = city.spec.region;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for u in &mut city.units {
            let (e0, n0) = region.local_m(u.lon, u.lat);
            u.step(&mut rng, &region);
            let (e1, n1) = region.local_m(u.lon, u.lat);
            let moved = (e1 - e0).hypot(n1 - n0);
            assert!(moved <= 15.0 + 1e-6, "moved {moved} m");
            let a = u.ping(1_000).fix_time_unix_ms;
            let b = u.ping(1_000).fix_time_unix_ms;
            assert!(b > a);
            let p = u.ping(5_000);
            assert_eq!(p.fix_time_unix_ms, 5_000);
            assert!((0.0..360.0).contains(&p.heading_deg.unwrap()));
        }
    }

    #[test]
    fn region_offset_round_trips() {
        let r = Region::HELSINKI;
        let (lon, lat) = r.offset(12_345.0, -6_789.0);
        let (e, n) = r.local_m(lon, lat);
        assert!((e - 12_345.0).abs() < 1e-6 && (n + 6_789.0).abs() < 1e-6);
    }
}
