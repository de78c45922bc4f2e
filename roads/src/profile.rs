//! Travel profiles: how long each kind of unit takes over an edge, or whether it
//! may use it at all.
//!
//! The rules read only [`WayAttributes`] (the tags a loader reduced); the graph
//! builder applies them once per edge and stores the result as whole
//! milliseconds, so a search does no tag logic. Speeds are km/h in the
//! configuration, metres per second inside; times are milliseconds.
//!
//! - **Car** (a police car): roads by class; one-way streets respected; unlike a
//!   civilian car it may use bus-only and PSV-only ways, bus contraflow lanes and
//!   anything tagged `emergency=yes`; footways, pedestrian streets, paths and
//!   cycleways only where `motor_vehicle`/`emergency` allow it; never steps.
//! - **Motorcycle**: the car's rules with its own speeds (and its own
//!   `motorcycle` access tag).
//! - **Emergency mode** (car and motorcycle, for the most urgent priorities):
//!   faster on roads, one-way streets against the flow at a crawl (not on
//!   motorways or trunk roads), pedestrian streets at walking-plus speed.
//! - **Foot**: footways, pedestrian streets, paths, steps (with a time penalty per
//!   step edge), tracks, and the sidewalks of ordinary roads; not motorways, not
//!   trunk roads without a sidewalk, nothing tagged `foot=no`. Only
//!   `oneway:foot` is obeyed, never a car one-way.
//! - **E-bike**: cycleways, paths, tracks, roads (not motorways; trunk roads only
//!   with `bicycle=yes`), footways and pedestrian streets only where `bicycle`
//!   allows; never steps. Obeys `oneway` unless `oneway:bicycle=no`.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::graph::{Access, Oneway, Sidewalk, WayAttributes, WayClass};

/// A kind of unit, which decides the ways it may use and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// A police car.
    Car,
    /// An officer on foot.
    Foot,
    /// An officer on an electric bicycle.
    EBike,
    /// A police motorcycle.
    Motorcycle,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 4] = [
        Profile::Car,
        Profile::Foot,
        Profile::EBike,
        Profile::Motorcycle,
    ];
}

/// The travel times a search uses: a profile, in normal or emergency mode.
/// Emergency mode changes only the car and the motorcycle; for foot and e-bike
/// it is the same as normal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Metric {
    /// Who travels.
    pub profile: Profile,
    /// Lights and siren: see [`EmergencyConfig`].
    pub emergency: bool,
}

/// How many distinct weight sets a graph stores (car and motorcycle have two).
pub(crate) const WEIGHT_SETS: usize = 6;

impl Metric {
    /// Normal driving or walking for `profile`.
    pub const fn normal(profile: Profile) -> Metric {
        Metric {
            profile,
            emergency: false,
        }
    }

    /// Emergency mode for `profile` (the same as normal for foot and e-bike).
    pub const fn emergency(profile: Profile) -> Metric {
        Metric {
            profile,
            emergency: true,
        }
    }

    /// One metric per distinct weight set, in set order.
    pub const DISTINCT: [Metric; WEIGHT_SETS] = [
        Metric::normal(Profile::Car),
        Metric::emergency(Profile::Car),
        Metric::normal(Profile::Motorcycle),
        Metric::emergency(Profile::Motorcycle),
        Metric::normal(Profile::Foot),
        Metric::normal(Profile::EBike),
    ];

    /// The index of this metric's weight set in a graph.
    pub(crate) const fn set(self) -> usize {
        match (self.profile, self.emergency) {
            (Profile::Car, false) => 0,
            (Profile::Car, true) => 1,
            (Profile::Motorcycle, false) => 2,
            (Profile::Motorcycle, true) => 3,
            (Profile::Foot, _) => 4,
            (Profile::EBike, _) => 5,
        }
    }
}

impl From<Profile> for Metric {
    fn from(profile: Profile) -> Metric {
        Metric::normal(profile)
    }
}

/// Every profile's settings. The defaults suit a European city centre; every
/// speed is km/h, every time seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// The police car.
    pub car: MotorConfig,
    /// The police motorcycle.
    pub motorcycle: MotorConfig,
    /// Officers on foot.
    pub foot: FootConfig,
    /// Officers on e-bikes.
    pub ebike: BikeConfig,
    /// Emergency mode of the car and the motorcycle.
    pub emergency: EmergencyConfig,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            car: MotorConfig::default(),
            motorcycle: MotorConfig {
                speeds_kmh: RoadSpeeds::MOTORCYCLE,
                respect_maxspeed: true,
            },
            foot: FootConfig::default(),
            ebike: BikeConfig::default(),
            emergency: EmergencyConfig::default(),
        }
    }
}

/// A car's or motorcycle's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotorConfig {
    /// Typical speed per road class, km/h (0 = never use that class).
    pub speeds_kmh: RoadSpeeds,
    /// Cap the class speed at a way's `maxspeed` when it is tagged.
    pub respect_maxspeed: bool,
}

impl Default for MotorConfig {
    fn default() -> Self {
        MotorConfig {
            speeds_kmh: RoadSpeeds::CAR,
            respect_maxspeed: true,
        }
    }
}

/// Speeds per road class in km/h, for motor vehicles. A speed of 0 keeps the
/// vehicle off that class. `other` is the speed on a way of a non-road class
/// (a footway, a cycleway) that `motor_vehicle` or `emergency` opens to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RoadSpeeds {
    pub motorway: f64,
    pub motorway_link: f64,
    pub trunk: f64,
    pub trunk_link: f64,
    pub primary: f64,
    pub primary_link: f64,
    pub secondary: f64,
    pub secondary_link: f64,
    pub tertiary: f64,
    pub tertiary_link: f64,
    pub unclassified: f64,
    pub residential: f64,
    pub living_street: f64,
    pub service: f64,
    pub road: f64,
    pub busway: f64,
    pub track: f64,
    pub other: f64,
}

impl RoadSpeeds {
    /// A police car in city traffic.
    pub const CAR: RoadSpeeds = RoadSpeeds {
        motorway: 90.0,
        motorway_link: 50.0,
        trunk: 70.0,
        trunk_link: 40.0,
        primary: 45.0,
        primary_link: 30.0,
        secondary: 40.0,
        secondary_link: 30.0,
        tertiary: 35.0,
        tertiary_link: 25.0,
        unclassified: 30.0,
        residential: 25.0,
        living_street: 10.0,
        service: 15.0,
        road: 20.0,
        busway: 35.0,
        track: 15.0,
        other: 10.0,
    };

    /// A police motorcycle: a little quicker through traffic than a car.
    pub const MOTORCYCLE: RoadSpeeds = RoadSpeeds {
        motorway: 90.0,
        motorway_link: 55.0,
        trunk: 75.0,
        trunk_link: 45.0,
        primary: 50.0,
        primary_link: 35.0,
        secondary: 45.0,
        secondary_link: 35.0,
        tertiary: 40.0,
        tertiary_link: 30.0,
        unclassified: 35.0,
        residential: 28.0,
        living_street: 12.0,
        service: 18.0,
        road: 25.0,
        busway: 40.0,
        track: 18.0,
        other: 12.0,
    };

    /// The speed for `class`, km/h; `None` for classes that are not roads.
    pub fn for_class(&self, class: WayClass) -> Option<f64> {
        use WayClass::*;
        Some(match class {
            Motorway => self.motorway,
            MotorwayLink => self.motorway_link,
            Trunk => self.trunk,
            TrunkLink => self.trunk_link,
            Primary => self.primary,
            PrimaryLink => self.primary_link,
            Secondary => self.secondary,
            SecondaryLink => self.secondary_link,
            Tertiary => self.tertiary,
            TertiaryLink => self.tertiary_link,
            Unclassified => self.unclassified,
            Residential => self.residential,
            LivingStreet => self.living_street,
            Service => self.service,
            Road => self.road,
            Busway => self.busway,
            Track => self.track,
            Pedestrian | Footway | Path | Cycleway | Bridleway | Steps | Corridor | Platform
            | Other => return None,
        })
    }

    fn all(&self) -> [(&'static str, f64); 18] {
        [
            ("motorway", self.motorway),
            ("motorway_link", self.motorway_link),
            ("trunk", self.trunk),
            ("trunk_link", self.trunk_link),
            ("primary", self.primary),
            ("primary_link", self.primary_link),
            ("secondary", self.secondary),
            ("secondary_link", self.secondary_link),
            ("tertiary", self.tertiary),
            ("tertiary_link", self.tertiary_link),
            ("unclassified", self.unclassified),
            ("residential", self.residential),
            ("living_street", self.living_street),
            ("service", self.service),
            ("road", self.road),
            ("busway", self.busway),
            ("track", self.track),
            ("other", self.other),
        ]
    }
}

impl Default for RoadSpeeds {
    fn default() -> Self {
        RoadSpeeds::CAR
    }
}

/// An officer on foot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FootConfig {
    /// Walking speed, km/h (5 = a brisk 1.39 m/s).
    pub walk_kmh: f64,
    /// Seconds added to every edge of steps, on top of walking its length.
    pub step_penalty_s: f64,
}

impl Default for FootConfig {
    fn default() -> Self {
        FootConfig {
            walk_kmh: 5.0,
            step_penalty_s: 5.0,
        }
    }
}

/// An officer on an e-bike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BikeConfig {
    /// Riding speed on roads, cycleways, paths and tracks, km/h.
    pub speed_kmh: f64,
    /// Speed on footways and pedestrian streets open to bicycles, km/h.
    pub shared_kmh: f64,
}

impl Default for BikeConfig {
    fn default() -> Self {
        BikeConfig {
            speed_kmh: 20.0,
            shared_kmh: 12.0,
        }
    }
}

/// Emergency mode: blue lights and siren, for the most urgent priorities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmergencyConfig {
    /// Incidents of this priority or more urgent (1 is the most urgent) are
    /// driven to in emergency mode; 0 turns emergency mode off.
    pub max_priority: u32,
    /// Road speeds are multiplied by this (traffic makes way).
    pub speed_factor: f64,
    /// Speed against the flow of a one-way street, km/h (0 = never).
    pub against_oneway_kmh: f64,
    /// Speed on pedestrian streets, km/h (0 = never).
    pub pedestrian_street_kmh: f64,
}

impl Default for EmergencyConfig {
    fn default() -> Self {
        EmergencyConfig {
            max_priority: 1,
            speed_factor: 1.25,
            against_oneway_kmh: 10.0,
            pedestrian_street_kmh: 8.0,
        }
    }
}

impl EmergencyConfig {
    /// True when an incident of `priority` (1 most urgent) is driven to in
    /// emergency mode.
    pub fn applies(&self, priority: u32) -> bool {
        priority <= self.max_priority
    }
}

impl ProfileConfig {
    /// Checks every speed and time: finite and not negative, walking and riding
    /// speeds above zero, the emergency factor at least 1. The error names the
    /// field and its value.
    pub fn validate(&self) -> Result<(), Error> {
        let mut checks: Vec<(String, f64, bool)> = Vec::new();
        for (name, motor) in [("car", &self.car), ("motorcycle", &self.motorcycle)] {
            for (class, v) in motor.speeds_kmh.all() {
                checks.push((format!("{name}.speeds_kmh.{class}"), v, v >= 0.0));
            }
        }
        checks.push((
            "foot.walk_kmh".into(),
            self.foot.walk_kmh,
            self.foot.walk_kmh > 0.0,
        ));
        checks.push((
            "foot.step_penalty_s".into(),
            self.foot.step_penalty_s,
            self.foot.step_penalty_s >= 0.0,
        ));
        checks.push((
            "ebike.speed_kmh".into(),
            self.ebike.speed_kmh,
            self.ebike.speed_kmh > 0.0,
        ));
        checks.push((
            "ebike.shared_kmh".into(),
            self.ebike.shared_kmh,
            self.ebike.shared_kmh > 0.0,
        ));
        let e = &self.emergency;
        checks.push((
            "emergency.speed_factor".into(),
            e.speed_factor,
            e.speed_factor >= 1.0,
        ));
        checks.push((
            "emergency.against_oneway_kmh".into(),
            e.against_oneway_kmh,
            e.against_oneway_kmh >= 0.0,
        ));
        checks.push((
            "emergency.pedestrian_street_kmh".into(),
            e.pedestrian_street_kmh,
            e.pedestrian_street_kmh >= 0.0,
        ));
        for (field, value, ok) in checks {
            if !(value.is_finite() && ok) {
                return Err(Error::InvalidConfig {
                    field,
                    value: value.to_string(),
                    reason: "must be a finite number in range (speeds >= 0 km/h, walking and riding > 0, emergency factor >= 1)",
                });
            }
        }
        Ok(())
    }

    /// Every number in the configuration, in a fixed order, for the graph's
    /// fingerprint.
    pub(crate) fn fingerprint_values(&self) -> Vec<f64> {
        let mut v = Vec::new();
        for motor in [&self.car, &self.motorcycle] {
            v.extend(motor.speeds_kmh.all().iter().map(|&(_, s)| s));
            v.push(f64::from(u8::from(motor.respect_maxspeed)));
        }
        v.extend([
            self.foot.walk_kmh,
            self.foot.step_penalty_s,
            self.ebike.speed_kmh,
            self.ebike.shared_kmh,
            f64::from(self.emergency.max_priority),
            self.emergency.speed_factor,
            self.emergency.against_oneway_kmh,
            self.emergency.pedestrian_street_kmh,
        ]);
        v
    }
}

/// A weight meaning "not allowed".
pub(crate) const FORBIDDEN: u32 = u32::MAX;

/// The time in whole milliseconds to travel `length_m` metres of a way with
/// `attrs`, along the way's node order when `forward`, else against it; or
/// [`FORBIDDEN`].
pub(crate) fn travel_ms(
    attrs: &WayAttributes,
    length_m: f64,
    forward: bool,
    metric: Metric,
    config: &ProfileConfig,
) -> u32 {
    let (speed_kmh, penalty_s) = match metric.profile {
        Profile::Car => (motor_kmh(attrs, forward, metric, &config.car, config), 0.0),
        Profile::Motorcycle => (
            motor_kmh(attrs, forward, metric, &config.motorcycle, config),
            0.0,
        ),
        Profile::Foot => match foot_allowed(attrs, forward) {
            true if attrs.class == WayClass::Steps => {
                (Some(config.foot.walk_kmh), config.foot.step_penalty_s)
            }
            true => (Some(config.foot.walk_kmh), 0.0),
            false => (None, 0.0),
        },
        Profile::EBike => (ebike_kmh(attrs, forward, &config.ebike), 0.0),
    };
    match speed_kmh {
        Some(kmh) if kmh > 0.0 && kmh.is_finite() => {
            let ms = (length_m / (kmh / 3.6) + penalty_s) * 1000.0;
            ms.round().min(f64::from(FORBIDDEN - 1)) as u32
        }
        _ => FORBIDDEN,
    }
}

fn allows(a: Option<Access>) -> Option<bool> {
    a.map(Access::allows)
}

/// A car's or motorcycle's speed in km/h, or `None` when it may not go there.
fn motor_kmh(
    attrs: &WayAttributes,
    forward: bool,
    metric: Metric,
    motor: &MotorConfig,
    config: &ProfileConfig,
) -> Option<f64> {
    let em = &config.emergency;
    let specific = match metric.profile {
        Profile::Motorcycle => attrs.motorcycle.or(attrs.motor_vehicle),
        _ => attrs.motor_vehicle,
    };
    if attrs.emergency == Some(Access::No) || attrs.class == WayClass::Steps {
        return None;
    }
    let privileged = allows(attrs.emergency) == Some(true)
        || matches!(attrs.psv, Some(Access::Yes | Access::Designated))
        || matches!(attrs.bus, Some(Access::Yes | Access::Designated));
    let road_kmh = motor
        .speeds_kmh
        .for_class(attrs.class)
        .filter(|_| !attrs.area);
    let mut kmh = match road_kmh {
        Some(kmh) => {
            // A busway is for buses by definition: a police car may use it.
            let busway = attrs.class == WayClass::Busway;
            let civilian = !busway && allows(specific.or(attrs.access)).unwrap_or(true);
            if !(civilian || privileged || busway) {
                return None;
            }
            let capped = match attrs.maxspeed_kmh {
                Some(max) if motor.respect_maxspeed && max > 0.0 => kmh.min(f64::from(max)),
                _ => kmh,
            };
            if metric.emergency {
                capped * em.speed_factor
            } else {
                capped
            }
        }
        None => {
            let opened = allows(specific) == Some(true) || allows(attrs.emergency) == Some(true);
            if opened {
                motor.speeds_kmh.other
            } else if metric.emergency
                && attrs.class == WayClass::Pedestrian
                && em.pedestrian_street_kmh > 0.0
            {
                em.pedestrian_street_kmh
            } else {
                return None;
            }
        }
    };
    if kmh <= 0.0 {
        return None;
    }
    let with_flow = match attrs.oneway {
        Oneway::No => true,
        Oneway::Forward => forward,
        Oneway::Backward => !forward,
        Oneway::Reversible => false,
    };
    if !with_flow {
        let contraflow_lane = attrs.oneway_psv == Some(false) && attrs.oneway != Oneway::Reversible;
        let fast_road = matches!(
            attrs.class,
            WayClass::Motorway | WayClass::MotorwayLink | WayClass::Trunk | WayClass::TrunkLink
        );
        if contraflow_lane {
            // A bus lane against the flow: open to police like to buses.
        } else if metric.emergency && !fast_road && em.against_oneway_kmh > 0.0 {
            kmh = kmh.min(em.against_oneway_kmh);
        } else {
            return None;
        }
    }
    Some(kmh)
}

/// Whether someone on foot may walk the way in this direction.
fn foot_allowed(attrs: &WayAttributes, forward: bool) -> bool {
    use WayClass::*;
    let direction_ok = match attrs.oneway_foot {
        Oneway::No => true,
        Oneway::Forward => forward,
        Oneway::Backward => !forward,
        Oneway::Reversible => false,
    };
    if !direction_ok {
        return false;
    }
    match allows(attrs.foot) {
        Some(explicit) => return explicit,
        None if allows(attrs.access) == Some(false) => return false,
        None => {}
    }
    match attrs.class {
        Motorway | MotorwayLink | Busway => false,
        Trunk | TrunkLink => attrs.sidewalk == Sidewalk::Yes,
        _ => true,
    }
}

/// An e-bike's speed in km/h, or `None` when it may not go there.
fn ebike_kmh(attrs: &WayAttributes, forward: bool, bike: &BikeConfig) -> Option<f64> {
    use WayClass::*;
    let with_flow = match attrs.oneway_bicycle {
        Some(false) => true,
        Some(true) if attrs.oneway == Oneway::No => forward,
        _ => match attrs.oneway {
            Oneway::No => true,
            Oneway::Forward => forward,
            Oneway::Backward => !forward,
            Oneway::Reversible => false,
        },
    };
    if !with_flow || attrs.class == Steps {
        return None;
    }
    let explicit = allows(attrs.bicycle);
    let (default_allowed, shared) = match attrs.class {
        Motorway | MotorwayLink | Steps => return None,
        Trunk | TrunkLink | Busway | Bridleway | Other => (false, false),
        Footway | Pedestrian | Platform | Corridor => (false, true),
        _ => (true, false),
    };
    let allowed = match explicit {
        Some(explicit) => explicit,
        None => default_allowed && allows(attrs.access) != Some(false),
    };
    if !allowed {
        return None;
    }
    let kmh = if shared {
        bike.shared_kmh
    } else {
        bike.speed_kmh
    };
    Some(match attrs.maxspeed_kmh {
        Some(max) if max > 0.0 => kmh.min(f64::from(max)),
        _ => kmh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn way(class: WayClass) -> WayAttributes {
        WayAttributes::new(class)
    }

    fn ms(attrs: &WayAttributes, forward: bool, metric: Metric) -> u32 {
        travel_ms(attrs, 100.0, forward, metric, &ProfileConfig::default())
    }

    const CAR: Metric = Metric::normal(Profile::Car);
    const CAR_EM: Metric = Metric::emergency(Profile::Car);
    const FOOT: Metric = Metric::normal(Profile::Foot);
    const BIKE: Metric = Metric::normal(Profile::EBike);
    const MOTO: Metric = Metric::normal(Profile::Motorcycle);

    #[test]
    fn a_car_drives_roads_at_their_class_speed_capped_by_maxspeed() {
        let residential = way(WayClass::Residential);
        // 100 m at 25 km/h = 14.4 s
        assert_eq!(ms(&residential, true, CAR), 14_400);
        assert_eq!(ms(&residential, false, CAR), 14_400);
        let capped = WayAttributes {
            maxspeed_kmh: Some(20.0),
            ..residential.clone()
        };
        assert_eq!(ms(&capped, true, CAR), 18_000);
        // emergency: 25 km/h * 1.25
        assert_eq!(ms(&residential, true, CAR_EM), 11_520);
        assert!(ms(&residential, true, MOTO) < ms(&residential, true, CAR));
    }

    #[test]
    fn a_car_keeps_off_paths_unless_opened_to_it() {
        for class in [
            WayClass::Footway,
            WayClass::Pedestrian,
            WayClass::Cycleway,
            WayClass::Path,
            WayClass::Steps,
        ] {
            assert_eq!(ms(&way(class), true, CAR), FORBIDDEN, "{class:?}");
        }
        let opened = WayAttributes {
            motor_vehicle: Some(Access::Yes),
            ..way(WayClass::Footway)
        };
        assert_ne!(ms(&opened, true, CAR), FORBIDDEN);
        let emergency_access = WayAttributes {
            emergency: Some(Access::Designated),
            ..way(WayClass::Cycleway)
        };
        assert_ne!(ms(&emergency_access, true, CAR), FORBIDDEN);
        let steps = WayAttributes {
            motor_vehicle: Some(Access::Yes),
            ..way(WayClass::Steps)
        };
        assert_eq!(ms(&steps, true, CAR), FORBIDDEN, "never steps");
    }

    #[test]
    fn police_use_bus_and_psv_ways_civilians_may_not() {
        let closed = WayAttributes {
            access: Some(Access::No),
            ..way(WayClass::Residential)
        };
        assert_eq!(ms(&closed, true, CAR), FORBIDDEN);
        for privileged in [
            WayAttributes {
                bus: Some(Access::Yes),
                ..closed.clone()
            },
            WayAttributes {
                psv: Some(Access::Designated),
                ..closed.clone()
            },
            WayAttributes {
                emergency: Some(Access::Yes),
                ..closed.clone()
            },
            way(WayClass::Busway),
        ] {
            assert_ne!(ms(&privileged, true, CAR), FORBIDDEN, "{privileged:?}");
        }
        let no_emergency = WayAttributes {
            bus: Some(Access::Yes),
            emergency: Some(Access::No),
            ..closed
        };
        assert_eq!(ms(&no_emergency, true, CAR), FORBIDDEN);
    }

    #[test]
    fn one_way_streets_for_cars_and_contraflow() {
        let oneway = WayAttributes {
            oneway: Oneway::Forward,
            ..way(WayClass::Residential)
        };
        assert_ne!(ms(&oneway, true, CAR), FORBIDDEN);
        assert_eq!(ms(&oneway, false, CAR), FORBIDDEN);
        // emergency: against the flow at 10 km/h = 36 s per 100 m
        assert_eq!(ms(&oneway, false, CAR_EM), 36_000);
        let backward = WayAttributes {
            oneway: Oneway::Backward,
            ..oneway.clone()
        };
        assert_eq!(ms(&backward, true, CAR), FORBIDDEN);
        assert_ne!(ms(&backward, false, CAR), FORBIDDEN);
        let bus_contraflow = WayAttributes {
            oneway_psv: Some(false),
            ..oneway.clone()
        };
        assert_eq!(ms(&bus_contraflow, false, CAR), 14_400);
        let motorway = WayAttributes {
            oneway: Oneway::Forward,
            ..way(WayClass::Motorway)
        };
        assert_eq!(
            ms(&motorway, false, CAR_EM),
            FORBIDDEN,
            "not against a motorway"
        );
        // foot ignores a car one-way, obeys oneway:foot
        assert_ne!(ms(&oneway, false, FOOT), FORBIDDEN);
        let foot_oneway = WayAttributes {
            oneway_foot: Oneway::Forward,
            ..way(WayClass::Footway)
        };
        assert_eq!(ms(&foot_oneway, false, FOOT), FORBIDDEN);
        assert_ne!(ms(&foot_oneway, true, FOOT), FORBIDDEN);
    }

    #[test]
    fn emergency_mode_opens_pedestrian_streets_at_walking_plus_speed() {
        let street = way(WayClass::Pedestrian);
        assert_eq!(ms(&street, true, CAR), FORBIDDEN);
        assert_eq!(ms(&street, true, CAR_EM), 45_000); // 8 km/h
        assert_eq!(ms(&way(WayClass::Footway), true, CAR_EM), FORBIDDEN);
    }

    #[test]
    fn foot_rules() {
        // 100 m at 5 km/h = 72 s
        assert_eq!(ms(&way(WayClass::Footway), true, FOOT), 72_000);
        assert_eq!(
            ms(&way(WayClass::Steps), true, FOOT),
            77_000,
            "5 s per step edge"
        );
        assert_eq!(
            ms(&way(WayClass::Primary), true, FOOT),
            72_000,
            "its sidewalk"
        );
        assert_eq!(ms(&way(WayClass::Motorway), true, FOOT), FORBIDDEN);
        assert_eq!(ms(&way(WayClass::Trunk), true, FOOT), FORBIDDEN);
        let trunk_with_sidewalk = WayAttributes {
            sidewalk: Sidewalk::Yes,
            ..way(WayClass::Trunk)
        };
        assert_eq!(ms(&trunk_with_sidewalk, true, FOOT), 72_000);
        let no_foot = WayAttributes {
            foot: Some(Access::No),
            ..way(WayClass::Residential)
        };
        assert_eq!(ms(&no_foot, true, FOOT), FORBIDDEN);
        let private = WayAttributes {
            access: Some(Access::Private),
            ..way(WayClass::Service)
        };
        assert_eq!(ms(&private, true, FOOT), FORBIDDEN);
        let private_but_foot = WayAttributes {
            foot: Some(Access::Yes),
            ..private
        };
        assert_eq!(ms(&private_but_foot, true, FOOT), 72_000);
    }

    #[test]
    fn ebike_rules() {
        // 100 m at 20 km/h = 18 s
        assert_eq!(ms(&way(WayClass::Cycleway), true, BIKE), 18_000);
        assert_eq!(ms(&way(WayClass::Residential), true, BIKE), 18_000);
        assert_eq!(ms(&way(WayClass::Steps), true, BIKE), FORBIDDEN);
        assert_eq!(ms(&way(WayClass::Footway), true, BIKE), FORBIDDEN);
        let shared = WayAttributes {
            bicycle: Some(Access::Designated),
            ..way(WayClass::Footway)
        };
        assert_eq!(ms(&shared, true, BIKE), 30_000, "12 km/h among pedestrians");
        let oneway = WayAttributes {
            oneway: Oneway::Forward,
            ..way(WayClass::Residential)
        };
        assert_eq!(ms(&oneway, false, BIKE), FORBIDDEN);
        let contraflow = WayAttributes {
            oneway_bicycle: Some(false),
            ..oneway
        };
        assert_eq!(ms(&contraflow, false, BIKE), 18_000);
        let no_bikes = WayAttributes {
            bicycle: Some(Access::No),
            ..way(WayClass::Cycleway)
        };
        assert_eq!(ms(&no_bikes, true, BIKE), FORBIDDEN);
    }

    #[test]
    fn configuration_defaults_deny_unknown_fields_and_validate() {
        let config: ProfileConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, ProfileConfig::default());
        let partial: ProfileConfig = serde_json::from_str(
            r#"{"foot": {"walk_kmh": 4.0}, "car": {"speeds_kmh": {"residential": 30.0}}}"#,
        )
        .unwrap();
        assert_eq!(partial.foot.walk_kmh, 4.0);
        assert_eq!(partial.foot.step_penalty_s, 5.0);
        assert_eq!(partial.car.speeds_kmh.residential, 30.0);
        assert_eq!(partial.car.speeds_kmh.primary, RoadSpeeds::CAR.primary);
        assert!(serde_json::from_str::<ProfileConfig>(r#"{"foot": {"speed": 4.0}}"#).is_err());
        assert!(ProfileConfig::default().validate().is_ok());
        let mut bad = ProfileConfig::default();
        bad.car.speeds_kmh.primary = f64::NAN;
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("car.speeds_kmh.primary"), "{err}");
        let mut bad = ProfileConfig::default();
        bad.foot.walk_kmh = 0.0;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("foot.walk_kmh")
        );
        assert!(EmergencyConfig::default().applies(1));
        assert!(!EmergencyConfig::default().applies(2));
    }

    #[test]
    fn metric_sets_are_distinct_and_emergency_only_changes_motor_profiles() {
        let sets: std::collections::HashSet<_> = Metric::DISTINCT.iter().map(|m| m.set()).collect();
        assert_eq!(sets.len(), WEIGHT_SETS);
        for (i, m) in Metric::DISTINCT.iter().enumerate() {
            assert_eq!(m.set(), i);
        }
        assert_eq!(
            Metric::emergency(Profile::Foot).set(),
            Metric::normal(Profile::Foot).set()
        );
        assert_eq!(Metric::from(Profile::EBike), Metric::normal(Profile::EBike));
    }
}
