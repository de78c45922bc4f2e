//! The demo city's map: the street network, cameras and street names that
//! `patrol_roads` loads from an OpenStreetMap `.osm.pbf` extract, plus the
//! choices only a simulation makes (where patrols like to go, random places
//! for incidents).
//!
//! Coordinates are WGS84 degrees with x = longitude and y = latitude; distances
//! are metres. Map data (c) OpenStreetMap contributors, ODbL 1.0.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
pub use patrol_roads::osm::{HeadingSource, MappedCamera};
pub use patrol_roads::{Bounds, LonLat};
use patrol_roads::{EdgeId, Metric, Profile, ProfileConfig, RoadGraph, Snap, WayClass};
use rand::{Rng, RngExt};

/// How far a unit or an incident may be from the street it is snapped to,
/// metres; farther away it walks or drives straight.
pub const MAX_SNAP_M: f64 = 500.0;

/// The demo city: its street network (every profile) and its cameras.
#[derive(Debug, Clone)]
pub struct CityMap {
    /// The routable network of every profile.
    pub graph: RoadGraph,
    /// The mapped cameras.
    pub cameras: Vec<MappedCamera>,
    /// The extent of the network.
    pub bounds: Bounds,
    /// Per profile (in [`Profile::ALL`] order), the edges a patrol would pick as
    /// a destination: for foot, footways, pedestrian streets, paths and living
    /// streets; for the others, every edge they may use.
    patrol_edges: [Vec<EdgeId>; 4],
}

fn slot(profile: Profile) -> usize {
    Profile::ALL
        .iter()
        .position(|p| *p == profile)
        .expect("every profile is in ALL")
}

impl CityMap {
    /// Reads an `.osm.pbf` file with the default profiles.
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<CityMap> {
        let path = path.as_ref();
        let extract = patrol_roads::osm::load(path, &ProfileConfig::default())
            .with_context(|| format!("cannot load map {}", path.display()))?;
        let graph = extract.graph;
        let patrol_edges = Profile::ALL.map(|profile| {
            let metric = Metric::normal(profile);
            (0..graph.edge_count() as EdgeId)
                .filter(|&e| graph.is_usable(e, metric))
                .filter(|&e| {
                    profile != Profile::Foot
                        || matches!(
                            graph.edge_attributes(e).class,
                            WayClass::Footway
                                | WayClass::Pedestrian
                                | WayClass::Path
                                | WayClass::LivingStreet
                        )
                })
                .collect()
        });
        Ok(CityMap {
            bounds: graph.bounds(),
            graph,
            cameras: extract.cameras,
            patrol_edges,
        })
    }

    /// The name of the nearest named street within `max_m` metres.
    pub fn street_near(&self, p: LonLat, max_m: f64) -> Option<Arc<str>> {
        self.graph.street_near(p, max_m).cloned()
    }

    /// Where `p` is on `metric`'s network, within [`MAX_SNAP_M`].
    pub fn snap(&self, p: LonLat, metric: Metric) -> Option<Snap> {
        self.graph.snap(p, metric, MAX_SNAP_M)
    }

    /// A random place a patrol of `profile` would head for.
    pub fn random_patrol_snap<R: Rng + ?Sized>(
        &self,
        profile: Profile,
        rng: &mut R,
    ) -> Option<Snap> {
        let edges = &self.patrol_edges[slot(profile)];
        if edges.is_empty() {
            return None;
        }
        let edge = edges[rng.random_range(0..edges.len())];
        Some(self.graph.snap_on_edge(edge, rng.random_range(0.0..=1.0)))
    }

    /// A random point on the foot network (which covers the car network's
    /// streets too): where incidents happen and benchmark units stand.
    pub fn random_point_on_network<R: Rng + ?Sized>(&self, rng: &mut R) -> LonLat {
        let foot = Metric::normal(Profile::Foot);
        for _ in 0..64 {
            let e = rng.random_range(0..self.graph.edge_count().max(1)) as EdgeId;
            if (e as usize) < self.graph.edge_count() && self.graph.is_usable(e, foot) {
                let offset = rng.random_range(0.0..=self.graph.edge_length_m(e));
                return self.graph.point_along(e, offset);
            }
        }
        self.bounds.centre()
    }

    /// Edges a patrol of `profile` picks destinations from.
    pub fn patrol_edges(&self, profile: Profile) -> &[EdgeId] {
        &self.patrol_edges[slot(profile)]
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
    fn every_profile_has_a_network_to_patrol() {
        let map = helsinki();
        let g = &map.graph;
        let usable = |p| {
            let m = Metric::normal(p);
            (0..g.edge_count() as EdgeId)
                .filter(|&e| g.is_usable(e, m))
                .count()
        };
        for p in Profile::ALL {
            assert!(usable(p) > 500, "{p:?} has {} edges", usable(p));
            assert!(!map.patrol_edges(p).is_empty(), "{p:?}");
        }
        assert!(
            map.patrol_edges(Profile::Foot).len() > 200,
            "foot patrols have footways to walk"
        );
        assert!(usable(Profile::Foot) > usable(Profile::Car));
        // One-way streets make some car edges one-directional.
        let car = Metric::normal(Profile::Car);
        let one_way = (0..g.edge_count() as EdgeId)
            .filter(|&e| g.is_usable(e, car) && !g.is_usable(g.twin(e), car))
            .count();
        assert!(one_way > 50, "{one_way} one-way car edges");
    }

    #[test]
    fn routes_exist_follow_edges_and_beat_no_straight_line() {
        let map = helsinki();
        let mut rng = StdRng::seed_from_u64(7);
        for profile in [Profile::Car, Profile::Foot] {
            let metric = Metric::normal(profile);
            for _ in 0..20 {
                let a = map.random_patrol_snap(profile, &mut rng).unwrap();
                let b = map.random_patrol_snap(profile, &mut rng).unwrap();
                let route = map.graph.route(metric, &a, &b).expect("connected network");
                for pair in route.edges.windows(2) {
                    assert_eq!(
                        map.graph.edge_head(pair[0]),
                        map.graph.edge_tail(pair[1]),
                        "consecutive edges join"
                    );
                }
                let walked: f64 = route
                    .geometry
                    .windows(2)
                    .map(|w| w[0].distance_m(&w[1]))
                    .sum();
                assert!((walked - route.metres).abs() < 0.1);
                let straight = a.point.distance_m(&b.point);
                assert!(
                    route.metres >= straight - 1e-6,
                    "{} < {straight}",
                    route.metres
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
            let on = map.snap(p, Metric::normal(Profile::Foot)).unwrap();
            assert!(on.distance_m < 0.05, "on the foot network: {on:?}");
        }
        assert!(b.east - b.west > 0.01 && b.north - b.south > 0.005, "{b:?}");
    }

    #[test]
    fn names_places_after_streets() {
        let map = helsinki();
        let mut rng = StdRng::seed_from_u64(3);
        let named = (0..50)
            .filter(|_| {
                map.street_near(map.random_point_on_network(&mut rng), 200.0)
                    .is_some()
            })
            .count();
        assert!(named > 40, "{named} of 50 points near a named street");
    }
}
