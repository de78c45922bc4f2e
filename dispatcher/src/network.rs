//! The street network in the core: travel times for ranking units and routes
//! for their orders.
//!
//! A [`Network`] is the loaded [`RoadGraph`] (shared, read-only) with the few
//! settings that turn a fix into a travel time: how far a fix may lie from a
//! usable street and still count as on it, how fast a unit covers the legs
//! off the network (from its fix to the street, from the street to the
//! target), and the detour factor for a unit that is off the network
//! altogether. Every ETA says how it was made ([`EtaMethod`]).
//!
//! Time is travel time over the graph for the unit's profile (a car obeys
//! one-way streets and may use bus and emergency ways; a foot officer takes
//! footways and steps; see `patrol_roads::profile`), in emergency mode for the
//! most urgent priorities, plus the two off-network legs at the unit's
//! off-network speed. Every speed used is at most [`Network::max_speed_mps`],
//! so straight-line metres over it bound every ETA from below: the ranking
//! stops taking candidates once no further unit can arrive earlier.

use std::sync::{Arc, Mutex};

use patrol_roads::{Metric, Profile, RoadGraph, SearchScratch, Snap};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::geometry::LonLat;
use crate::units::UnitKind;

/// How an ETA was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EtaMethod {
    /// Travel time over the street network for the unit's profile.
    Network,
    /// No network is loaded, or the unit or target is off it (or no route
    /// joins them): straight-line metres times the detour factor at the
    /// kind's planning speed.
    StraightLine,
}

impl EtaMethod {
    /// The method as it reads in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            EtaMethod::Network => "network",
            EtaMethod::StraightLine => "straight line",
        }
    }
}

/// Per kind of unit, one speed in metres per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindSpeeds {
    /// Patrol cars.
    pub car: f64,
    /// Officers on foot.
    pub foot: f64,
    /// E-bikes (`e_bike` in the file).
    pub e_bike: f64,
    /// Motorcycles.
    pub motorcycle: f64,
}

impl KindSpeeds {
    /// The speed for `kind`, m/s.
    pub fn of(&self, kind: UnitKind) -> f64 {
        match kind {
            UnitKind::Car => self.car,
            UnitKind::Foot => self.foot,
            UnitKind::EBike => self.e_bike,
            UnitKind::Motorcycle => self.motorcycle,
        }
    }

    fn validate(&self, field: &str) -> Result<(), Error> {
        for (name, v) in [
            ("car", self.car),
            ("foot", self.foot),
            ("e_bike", self.e_bike),
            ("motorcycle", self.motorcycle),
        ] {
            if !v.is_finite() || !(0.1..=100.0).contains(&v) {
                return Err(Error::invalid(
                    &format!("{field}.{name}"),
                    v,
                    "must be a speed in 0.1..=100 m/s",
                ));
            }
        }
        Ok(())
    }
}

impl Default for KindSpeeds {
    /// Off the network a car creeps along an unmapped lane or its crew walks
    /// the last stretch; everyone else moves at their own pace.
    fn default() -> Self {
        Self {
            car: 2.0,
            foot: 1.4,
            e_bike: 3.0,
            motorcycle: 2.0,
        }
    }
}

/// How a fix becomes a travel time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// A fix or target farther than this from any street the unit may use is
    /// off the network, metres (default 250).
    pub max_snap_m: f64,
    /// Speeds over the legs off the network: from the fix to the street and
    /// from the street to the target, m/s.
    pub off_network_speed_mps: KindSpeeds,
    /// Straight-line metres are stretched by this for street detours when no
    /// network ETA can be made (default 1.3).
    pub detour_factor: f64,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            max_snap_m: 250.0,
            off_network_speed_mps: KindSpeeds::default(),
            detour_factor: 1.3,
        }
    }
}

impl NetworkSettings {
    /// Checks every setting, naming it.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.max_snap_m.is_finite() || !(1.0..=5_000.0).contains(&self.max_snap_m) {
            return Err(Error::invalid(
                "network.max_snap_m",
                self.max_snap_m,
                "must be in 1..=5000 metres",
            ));
        }
        if !self.detour_factor.is_finite() || !(1.0..=5.0).contains(&self.detour_factor) {
            return Err(Error::invalid(
                "network.detour_factor",
                self.detour_factor,
                "must be in 1..=5",
            ));
        }
        self.off_network_speed_mps
            .validate("network.off_network_speed_mps")
    }
}

/// The profile a kind of unit travels with.
pub fn profile_of(kind: UnitKind) -> Profile {
    match kind {
        UnitKind::Car => Profile::Car,
        UnitKind::Foot => Profile::Foot,
        UnitKind::EBike => Profile::EBike,
        UnitKind::Motorcycle => Profile::Motorcycle,
    }
}

/// The loaded street network and its settings; cheap to clone (shared).
/// Two are equal when their graphs have the same fingerprint and their
/// settings agree: the same inputs give the same ETAs on every node.
#[derive(Clone)]
pub struct Network {
    graph: Arc<RoadGraph>,
    settings: NetworkSettings,
    /// Search labels reused across queries (one per concurrent search).
    scratch: Arc<Mutex<Vec<SearchScratch>>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("fingerprint", &self.graph.fingerprint())
            .field("nodes", &self.graph.node_count())
            .field("settings", &self.settings)
            .finish()
    }
}

impl PartialEq for Network {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
            && (Arc::ptr_eq(&self.graph, &other.graph)
                || self.graph.fingerprint() == other.graph.fingerprint())
    }
}

impl Network {
    /// The network over `graph` with `settings`.
    pub fn new(graph: Arc<RoadGraph>, settings: NetworkSettings) -> Result<Self, Error> {
        settings.validate()?;
        Ok(Self {
            graph,
            settings,
            scratch: Arc::default(),
        })
    }

    /// The graph.
    pub fn graph(&self) -> &RoadGraph {
        &self.graph
    }

    /// The settings.
    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    /// The metric a unit of `kind` travels with to an incident of
    /// `priority` (emergency mode for the most urgent, by the graph's
    /// profile settings; `None`: normal).
    pub fn metric(&self, kind: UnitKind, priority: Option<u32>) -> Metric {
        let emergency = priority.is_some_and(|p| self.graph.config().emergency.applies(p));
        Metric {
            profile: profile_of(kind),
            emergency,
        }
    }

    /// The fastest any unit of `kinds` (all when empty) can travel by any
    /// means the ranking counts, m/s: over the network (emergency mode
    /// included), off it, or by the straight-line estimate.
    pub fn max_speed_mps(&self, kinds: &[UnitKind]) -> f64 {
        let all = [
            UnitKind::Car,
            UnitKind::Foot,
            UnitKind::EBike,
            UnitKind::Motorcycle,
        ];
        let kinds = if kinds.is_empty() { &all[..] } else { kinds };
        kinds
            .iter()
            .map(|&k| {
                let p = profile_of(k);
                self.graph
                    .max_speed_mps(Metric::normal(p))
                    .max(self.graph.max_speed_mps(Metric::emergency(p)))
                    .max(self.settings.off_network_speed_mps.of(k))
                    .max(k.planning_speed_mps() / self.settings.detour_factor)
            })
            .fold(0.1, f64::max)
    }

    /// Where `point` lies on the network for `metric`, if within reach.
    pub fn snap(&self, point: LonLat, metric: Metric) -> Option<Snap> {
        self.graph.snap(point, metric, self.settings.max_snap_m)
    }

    /// Straight-line ETA: metres times the detour factor at the kind's
    /// planning speed.
    pub fn straight_eta_s(&self, kind: UnitKind, straight_m: f64) -> f64 {
        straight_eta_s(kind, straight_m, self.settings.detour_factor)
    }

    /// A scratch for one search (returned with [`Network::give_back`]).
    pub(crate) fn take_scratch(&self) -> SearchScratch {
        self.scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// Returns a scratch for reuse.
    pub(crate) fn give_back(&self, scratch: SearchScratch) {
        let mut pool = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 16 {
            pool.push(scratch);
        }
    }

    /// The route a unit of `kind` at `from` takes to `to` for an incident of
    /// `priority`: its ETA, length and geometry (from the fix, along the
    /// streets, to the target), or a straight-line estimate when either end is
    /// off the network or no route joins them.
    pub fn route(
        &self,
        kind: UnitKind,
        from: LonLat,
        to: LonLat,
        priority: Option<u32>,
    ) -> RoutePlan {
        let metric = self.metric(kind, priority);
        let straight_m = from.distance_m(&to);
        let off = self.settings.off_network_speed_mps.of(kind);
        let snapped = self.snap(from, metric).zip(self.snap(to, metric));
        let mut scratch = self.take_scratch();
        let route = snapped.and_then(|(a, b)| {
            self.graph
                .route_with(metric, &a, &b, &mut scratch)
                .map(|r| (a, b, r))
        });
        self.give_back(scratch);
        match route {
            Some((a, b, r)) => {
                let mut geometry = Vec::with_capacity(r.geometry.len() + 2);
                geometry.push(from);
                geometry.extend(r.geometry);
                geometry.push(to);
                RoutePlan {
                    eta_s: r.seconds + (a.distance_m + b.distance_m) / off,
                    route_m: r.metres + a.distance_m + b.distance_m,
                    straight_m,
                    method: EtaMethod::Network,
                    geometry,
                }
            }
            None => RoutePlan {
                eta_s: self.straight_eta_s(kind, straight_m),
                route_m: straight_m * self.settings.detour_factor,
                straight_m,
                method: EtaMethod::StraightLine,
                geometry: vec![from, to],
            },
        }
    }
}

/// Straight-line ETA without a network: metres times `detour` at the kind's
/// planning speed.
pub fn straight_eta_s(kind: UnitKind, straight_m: f64, detour: f64) -> f64 {
    straight_m * detour / kind.planning_speed_mps()
}

/// A unit's way to a target: what an order carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutePlan {
    /// Expected travel time, seconds.
    pub eta_s: f64,
    /// Metres travelled (over the network, or straight line times the detour
    /// factor).
    pub route_m: f64,
    /// Great-circle metres from the start to the target.
    pub straight_m: f64,
    /// How the ETA was made.
    pub method: EtaMethod,
    /// The path, start to target, WGS84 degrees (just the two ends when not
    /// over the network).
    pub geometry: Vec<LonLat>,
}
