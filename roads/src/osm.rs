//! Reading an OpenStreetMap `.osm.pbf` extract: the street network as a
//! [`RoadGraph`], the mapped surveillance cameras, and the street names.
//!
//! The only module that touches a file, and the only one that knows OSM tags:
//! [`way_attributes`] reduces a way's tags to the [`WayAttributes`] the
//! profiles read, and the graph is built from those alone. Nothing here is
//! tuned to one city. The file is read twice: first the `highway=*` ways, the
//! cameras and the `type=surveillance` relations, then the coordinates of only
//! the nodes those need, so memory follows the network, not the extract.
//!
//! Map data (c) OpenStreetMap contributors, ODbL 1.0.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use osmpbf::{Element, ElementReader, RelMemberType};

use crate::error::Error;
use crate::geo::LonLat;
use crate::graph::{Access, GraphBuilder, Oneway, RoadGraph, Sidewalk, WayAttributes, WayClass};
use crate::profile::ProfileConfig;

/// Where a camera's heading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadingSource {
    /// A `camera:direction`, `direction` or `surveillance:direction` tag.
    Tag,
    /// The centre of the nodes a `type=surveillance` relation says it watches.
    Relation,
    /// Not mapped: a stable pseudo-random value derived from the node id.
    Synthetic,
}

/// A surveillance camera from the map, with the facts the map lacks filled in
/// deterministically from its node id (so every run registers the same camera).
#[derive(Debug, Clone, PartialEq)]
pub struct MappedCamera {
    /// The OSM node id.
    pub osm_id: i64,
    /// `osm-cam-<node id>`.
    pub id: String,
    /// The `name` tag, else the nearest street's name and a number.
    pub name: String,
    /// Where it is mounted.
    pub position: LonLat,
    /// `height` or `est_height`, metres; 4 when not mapped.
    pub mount_height_m: f64,
    /// Degrees clockwise from north, [0, 360).
    pub heading_deg: f64,
    /// Where `heading_deg` came from.
    pub heading_source: HeadingSource,
    /// Horizontal field of view, degrees (360 for PTZ and dome cameras).
    pub fov_deg: f64,
    /// Useful viewing distance, metres: the farthest watched node (30-80), else
    /// 30-80 from the id.
    pub range_m: f64,
    /// Pan-tilt-zoom or dome (`revolving=yes`, `camera:type=panning|dome`).
    pub ptz: bool,
}

/// What an extract holds.
#[derive(Debug, Clone)]
pub struct MapExtract {
    /// The street network, each profile's largest strongly connected component.
    pub graph: RoadGraph,
    /// The mapped cameras (`man_made=surveillance`, camera type or untyped).
    pub cameras: Vec<MappedCamera>,
    /// Every street name on the network's ways, sorted, once each.
    pub streets: Vec<Arc<str>>,
}

/// Reads `path` and builds the network with `config`'s profiles.
pub fn load(path: impl AsRef<Path>, config: &ProfileConfig) -> Result<MapExtract, Error> {
    let path = path.as_ref();
    config.validate()?;
    let map_error = |source| Error::Map {
        path: path.to_path_buf(),
        source,
    };

    // Pass 1: ways, cameras, relations.
    let mut ways: Vec<(Vec<i64>, WayAttributes)> = Vec::new();
    let mut camera_nodes: Vec<CameraNode> = Vec::new();
    // (camera node ids, watched node ids) of each `type=surveillance` relation.
    let mut watched: Vec<(Vec<i64>, Vec<i64>)> = Vec::new();
    let mut names: HashMap<String, Arc<str>> = HashMap::new();
    let mut on_node = |id: i64, p: LonLat, tags: &mut dyn Iterator<Item = (&str, &str)>| {
        let tags: Vec<(&str, &str)> = tags.collect();
        if tag(&tags, "man_made") == Some("surveillance")
            && tag(&tags, "surveillance:type").is_none_or(|t| t == "camera")
        {
            let owned = tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            camera_nodes.push((id, p, owned));
        }
    };
    ElementReader::from_path(path)
        .map_err(map_error)?
        .for_each(|element| match element {
            Element::Node(n) => on_node(n.id(), LonLat::new(n.lon(), n.lat()), &mut n.tags()),
            Element::DenseNode(n) => on_node(n.id(), LonLat::new(n.lon(), n.lat()), &mut n.tags()),
            Element::Way(w) => {
                let tags: Vec<(&str, &str)> = w.tags().collect();
                if let Some(mut attrs) = way_attributes(&tags) {
                    if let Some(name) = tag(&tags, "name") {
                        let interned = names
                            .entry(name.to_owned())
                            .or_insert_with(|| Arc::from(name));
                        attrs.name = Some(Arc::clone(interned));
                    }
                    ways.push((w.refs().collect(), attrs));
                }
            }
            Element::Relation(r) => {
                if !r.tags().any(|(k, v)| k == "type" && v == "surveillance") {
                    return;
                }
                let (mut cams, mut seen) = (Vec::new(), Vec::new());
                for m in r.members().filter(|m| m.member_type == RelMemberType::Node) {
                    match m.role() {
                        Ok("camera") => cams.push(m.member_id),
                        Ok("visible" | "extent" | "") => seen.push(m.member_id),
                        _ => {}
                    }
                }
                watched.push((cams, seen));
            }
        })
        .map_err(map_error)?;

    // Pass 2: the coordinates of the nodes the ways and relations use.
    let needed: HashSet<i64> = ways
        .iter()
        .flat_map(|(refs, _)| refs.iter().copied())
        .chain(watched.iter().flat_map(|(_, seen)| seen.iter().copied()))
        .collect();
    let mut coords: HashMap<i64, LonLat> = HashMap::with_capacity(needed.len());
    let mut keep = |id: i64, lon: f64, lat: f64| {
        if needed.contains(&id) {
            coords.insert(id, LonLat::new(lon, lat));
        }
    };
    ElementReader::from_path(path)
        .map_err(map_error)?
        .for_each(|element| match element {
            Element::Node(n) => keep(n.id(), n.lon(), n.lat()),
            Element::DenseNode(n) => keep(n.id(), n.lon(), n.lat()),
            Element::Way(_) | Element::Relation(_) => {}
        })
        .map_err(map_error)?;

    let mut builder = GraphBuilder::new(config.clone()).keep_largest_components(true);
    for (refs, attrs) in ways {
        // A way clipped by the extract's border: route on the parts inside.
        for run in refs.split(|r| !coords.contains_key(r)) {
            builder.add_way(run.iter().map(|r| (*r, coords[r])), attrs.clone());
        }
    }
    let graph = builder.build();
    if graph.is_empty() {
        return Err(Error::NoNetwork {
            path: path.to_path_buf(),
        });
    }
    let cameras = cameras(&graph, &camera_nodes, &watched, &coords);
    let mut streets: Vec<Arc<str>> = names.into_values().collect();
    streets.sort();
    Ok(MapExtract {
        graph,
        cameras,
        streets,
    })
}

/// A camera node: id, position and its tags.
type CameraNode = (i64, LonLat, Vec<(String, String)>);

fn tag<'a>(tags: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The way's class from its `highway` value; `None` for ways that are not
/// (or no longer, or not yet) travelled.
fn way_class(highway: &str) -> Option<WayClass> {
    use WayClass::*;
    Some(match highway {
        "motorway" => Motorway,
        "motorway_link" => MotorwayLink,
        "trunk" => Trunk,
        "trunk_link" => TrunkLink,
        "primary" => Primary,
        "primary_link" => PrimaryLink,
        "secondary" => Secondary,
        "secondary_link" => SecondaryLink,
        "tertiary" => Tertiary,
        "tertiary_link" => TertiaryLink,
        "unclassified" => Unclassified,
        "residential" => Residential,
        "living_street" => LivingStreet,
        "service" => Service,
        "road" => Road,
        "busway" => Busway,
        "track" => Track,
        "pedestrian" => Pedestrian,
        "footway" | "sidewalk" | "crossing" => Footway,
        "path" => Path,
        "cycleway" => Cycleway,
        "bridleway" => Bridleway,
        "steps" => Steps,
        "corridor" => Corridor,
        "platform" => Platform,
        "construction" | "proposed" | "planned" | "abandoned" | "disused" | "razed" | "no"
        | "raceway" | "bus_guideway" | "escape" | "rest_area" | "services" => return None,
        _ => Other,
    })
}

/// An access value; `None` for values with no bearing on a patrol.
fn access(value: Option<&str>) -> Option<Access> {
    Some(match value? {
        "no" | "agricultural" | "forestry" | "use_sidepath" | "dismount" => Access::No,
        "private" => Access::Private,
        "destination" | "delivery" | "customers" => Access::Destination,
        "yes" | "discouraged" => Access::Yes,
        "permissive" => Access::Permissive,
        "designated" | "official" => Access::Designated,
        _ => return None,
    })
}

fn oneway(value: Option<&str>) -> Option<Oneway> {
    Some(match value? {
        "yes" | "true" | "1" => Oneway::Forward,
        "-1" | "reverse" => Oneway::Backward,
        "no" | "false" | "0" => Oneway::No,
        "reversible" | "alternating" => Oneway::Reversible,
        _ => return None,
    })
}

/// A `maxspeed` in km/h: "50", "30 mph"; `None` for "none", "walk" and zone
/// codes (which differ by country).
fn maxspeed_kmh(value: &str) -> Option<f32> {
    let value = value.trim();
    let (number, factor) = match value.strip_suffix("mph") {
        Some(n) => (n.trim(), 1.609_344),
        None => (value.strip_suffix("km/h").unwrap_or(value).trim(), 1.0),
    };
    number
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| v * factor)
}

/// Reduces a way's tags to what the profiles need; `None` for a way that is not
/// a `highway`, or is one nobody travels (proposed, under construction, ...).
pub fn way_attributes(tags: &[(&str, &str)]) -> Option<WayAttributes> {
    let class = way_class(tag(tags, "highway")?)?;
    let t = |key| tag(tags, key);
    let a = |key| access(t(key));
    let implied_oneway = matches!(t("junction"), Some("roundabout" | "circular"))
        || matches!(class, WayClass::Motorway | WayClass::MotorwayLink);
    let opposite = |v: Option<&str>| v.is_some_and(|v| v.starts_with("opposite"));
    let oneway_bicycle = match t("oneway:bicycle") {
        Some("no") => Some(false),
        Some("yes") => Some(true),
        _ if [
            "cycleway",
            "cycleway:left",
            "cycleway:right",
            "cycleway:both",
        ]
        .iter()
        .any(|k| opposite(t(k))) =>
        {
            Some(false)
        }
        _ => None,
    };
    let oneway_psv = if t("oneway:psv") == Some("no")
        || t("oneway:bus") == Some("no")
        || ["busway", "busway:left", "busway:right", "busway:both"]
            .iter()
            .any(|k| opposite(t(k)))
    {
        Some(false)
    } else {
        None
    };
    let side = |v: Option<&str>| match v {
        Some("both" | "left" | "right" | "yes") => Some(Sidewalk::Yes),
        Some("no" | "none") => Some(Sidewalk::No),
        Some("separate") => Some(Sidewalk::Separate),
        _ => None,
    };
    let sidewalk = side(t("sidewalk"))
        .or_else(|| {
            ["sidewalk:both", "sidewalk:left", "sidewalk:right"]
                .iter()
                .filter_map(|k| match t(k) {
                    Some("yes") => Some(Sidewalk::Yes),
                    Some("separate") => Some(Sidewalk::Separate),
                    Some("no") => Some(Sidewalk::No),
                    _ => None,
                })
                .min_by_key(|s| match s {
                    Sidewalk::Yes => 0,
                    Sidewalk::Separate => 1,
                    _ => 2,
                })
        })
        .unwrap_or(Sidewalk::Unknown);
    Some(WayAttributes {
        class,
        oneway: oneway(t("oneway")).unwrap_or(if implied_oneway {
            Oneway::Forward
        } else {
            Oneway::No
        }),
        oneway_bicycle,
        oneway_foot: oneway(t("oneway:foot")).unwrap_or(Oneway::No),
        oneway_psv,
        access: a("access"),
        motor_vehicle: a("motorcar").or(a("motor_vehicle")).or(a("vehicle")),
        motorcycle: a("motorcycle"),
        foot: a("foot"),
        bicycle: a("bicycle").or(a("vehicle")),
        psv: a("psv"),
        bus: a("bus"),
        emergency: a("emergency"),
        sidewalk,
        maxspeed_kmh: t("maxspeed").and_then(maxspeed_kmh),
        area: t("area") == Some("yes"),
        name: t("name").map(Arc::from),
    })
}

/// Parses an OSM direction value (`direction`, `camera:direction`): degrees
/// ("45", "292.5"), a 16-point compass letter ("N", "NE", "WSW"), a range ("0-90",
/// its middle) or a list ("45;135", its first). Returns degrees in [0, 360).
pub fn parse_direction(value: &str) -> Option<f64> {
    const COMPASS: [&str; 16] = [
        "N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW",
        "NW", "NNW",
    ];
    let first = value.split(';').next()?.trim();
    if let Some(i) = COMPASS.iter().position(|c| c.eq_ignore_ascii_case(first)) {
        return Some(i as f64 * 22.5);
    }
    if let Ok(deg) = first.parse::<f64>() {
        return deg.is_finite().then(|| deg.rem_euclid(360.0));
    }
    // A range "from-to", clockwise; the sign of a leading number is not a separator.
    let split = first.char_indices().skip(1).find(|&(_, c)| c == '-')?.0;
    let from = parse_direction(&first[..split])?;
    let to = parse_direction(&first[split + 1..])?;
    Some((from + (to - from).rem_euclid(360.0) / 2.0).rem_euclid(360.0))
}

/// A leading number of metres from a tag such as "4", "4.5 m" or "7m".
pub fn parse_metres(value: &str) -> Option<f64> {
    let number: String = value
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && *m > 0.0)
}

/// A deterministic value in [0, 1) from an OSM id and a salt (splitmix64).
fn id_fraction(id: i64, salt: u64) -> f64 {
    let mut z = (id as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn cameras(
    graph: &RoadGraph,
    nodes: &[CameraNode],
    watched: &[(Vec<i64>, Vec<i64>)],
    coords: &HashMap<i64, LonLat>,
) -> Vec<MappedCamera> {
    let mut per_street: HashMap<Arc<str>, usize> = HashMap::new();
    nodes
        .iter()
        .map(|(id, position, tags)| {
            let (id, position) = (*id, *position);
            let tags: Vec<(&str, &str)> =
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let watched_points: Vec<LonLat> = watched
                .iter()
                .filter(|(cams, _)| cams.contains(&id))
                .flat_map(|(_, seen)| seen.iter().filter_map(|s| coords.get(s).copied()))
                .collect();
            let tagged = ["camera:direction", "direction", "surveillance:direction"]
                .iter()
                .find_map(|k| tag(&tags, k).and_then(parse_direction));
            let (heading_deg, heading_source) = if let Some(deg) = tagged {
                (deg, HeadingSource::Tag)
            } else if !watched_points.is_empty() {
                let n = watched_points.len() as f64;
                let centre = LonLat::new(
                    watched_points.iter().map(|p| p.lon).sum::<f64>() / n,
                    watched_points.iter().map(|p| p.lat).sum::<f64>() / n,
                );
                (position.bearing_deg(&centre), HeadingSource::Relation)
            } else {
                (id_fraction(id, 1) * 360.0, HeadingSource::Synthetic)
            };
            let ptz = tag(&tags, "revolving") == Some("yes")
                || matches!(tag(&tags, "camera:type"), Some("panning" | "dome"));
            let fov_deg = if ptz {
                360.0
            } else {
                60.0 + 30.0 * id_fraction(id, 2)
            };
            // The farthest watched node, else 30-80 m.
            let range_m = watched_points
                .iter()
                .map(|p| position.distance_m(p))
                .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))))
                .map_or(30.0 + 50.0 * id_fraction(id, 3), |d| d.clamp(30.0, 80.0));
            let mount_height_m = tag(&tags, "height")
                .or(tag(&tags, "est_height"))
                .and_then(parse_metres)
                .unwrap_or(4.0);
            let name = match tag(&tags, "name") {
                Some(name) => name.to_owned(),
                None => match graph.street_near(position, 150.0) {
                    Some(street) => {
                        let n = per_street.entry(Arc::clone(street)).or_default();
                        *n += 1;
                        format!("{street} camera {n}")
                    }
                    None => format!("camera {id}"),
                },
            };
            MappedCamera {
                osm_id: id,
                id: format!("osm-cam-{id}"),
                name,
                position,
                mount_height_m,
                heading_deg,
                heading_source,
                fov_deg,
                range_m,
                ptz,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_direction_tags() {
        assert_eq!(parse_direction("45"), Some(45.0));
        assert_eq!(parse_direction("292.5"), Some(292.5));
        assert_eq!(parse_direction("-90"), Some(270.0));
        assert_eq!(parse_direction("360"), Some(0.0));
        assert_eq!(parse_direction("N"), Some(0.0));
        assert_eq!(parse_direction("ne"), Some(45.0));
        assert_eq!(parse_direction("WSW"), Some(247.5));
        assert_eq!(parse_direction("NNW"), Some(337.5));
        assert_eq!(parse_direction("90;180"), Some(90.0));
        assert_eq!(parse_direction("0-90"), Some(45.0));
        assert_eq!(parse_direction("315-45"), Some(0.0));
        assert_eq!(parse_direction("up"), None);
        assert_eq!(parse_direction(""), None);
        assert_eq!(parse_direction("NaN"), None);
    }

    #[test]
    fn parses_metres_and_maxspeed() {
        assert_eq!(parse_metres("4.5 m"), Some(4.5));
        assert_eq!(parse_metres("7m"), Some(7.0));
        assert_eq!(parse_metres("high"), None);
        assert_eq!(maxspeed_kmh("50"), Some(50.0));
        assert_eq!(maxspeed_kmh("30 km/h"), Some(30.0));
        assert!((maxspeed_kmh("30 mph").unwrap() - 48.28).abs() < 0.01);
        assert_eq!(maxspeed_kmh("none"), None);
        assert_eq!(maxspeed_kmh("FI:urban"), None);
    }

    #[test]
    fn reduces_tags_to_attributes() {
        assert_eq!(way_attributes(&[("building", "yes")]), None);
        assert_eq!(way_attributes(&[("highway", "construction")]), None);
        let street = way_attributes(&[
            ("highway", "residential"),
            ("oneway", "yes"),
            ("oneway:bicycle", "no"),
            ("name", "Mannerheimintie"),
            ("maxspeed", "30"),
            ("sidewalk", "both"),
        ])
        .unwrap();
        assert_eq!(street.class, WayClass::Residential);
        assert_eq!(street.oneway, Oneway::Forward);
        assert_eq!(street.oneway_bicycle, Some(false));
        assert_eq!(street.sidewalk, Sidewalk::Yes);
        assert_eq!(street.maxspeed_kmh, Some(30.0));
        assert_eq!(street.name.as_deref(), Some("Mannerheimintie"));

        let roundabout =
            way_attributes(&[("highway", "primary"), ("junction", "roundabout")]).unwrap();
        assert_eq!(roundabout.oneway, Oneway::Forward);
        let reverse = way_attributes(&[("highway", "primary"), ("oneway", "-1")]).unwrap();
        assert_eq!(reverse.oneway, Oneway::Backward);
        let motorway = way_attributes(&[("highway", "motorway")]).unwrap();
        assert_eq!(motorway.oneway, Oneway::Forward, "implied");

        let bus_street = way_attributes(&[
            ("highway", "tertiary"),
            ("access", "no"),
            ("bus", "yes"),
            ("psv", "designated"),
            ("emergency", "yes"),
            ("motorcar", "no"),
            ("motor_vehicle", "yes"),
            ("vehicle", "no"),
        ])
        .unwrap();
        assert_eq!(bus_street.access, Some(Access::No));
        assert_eq!(bus_street.bus, Some(Access::Yes));
        assert_eq!(bus_street.psv, Some(Access::Designated));
        assert_eq!(bus_street.emergency, Some(Access::Yes));
        assert_eq!(
            bus_street.motor_vehicle,
            Some(Access::No),
            "motorcar is the most specific"
        );
        assert_eq!(
            bus_street.bicycle,
            Some(Access::No),
            "vehicle=no applies to bicycles"
        );

        let contraflow = way_attributes(&[
            ("highway", "secondary"),
            ("oneway", "yes"),
            ("busway:left", "opposite_lane"),
        ])
        .unwrap();
        assert_eq!(contraflow.oneway_psv, Some(false));
        let cycle_contraflow = way_attributes(&[
            ("highway", "residential"),
            ("oneway", "yes"),
            ("cycleway", "opposite"),
        ])
        .unwrap();
        assert_eq!(cycle_contraflow.oneway_bicycle, Some(false));
        let steps = way_attributes(&[("highway", "steps"), ("oneway:foot", "yes")]).unwrap();
        assert_eq!(
            (steps.class, steps.oneway_foot),
            (WayClass::Steps, Oneway::Forward)
        );
        let square = way_attributes(&[
            ("highway", "pedestrian"),
            ("area", "yes"),
            ("foot", "designated"),
        ])
        .unwrap();
        assert!(square.area);
        assert_eq!(square.foot, Some(Access::Designated));
        let trunk =
            way_attributes(&[("highway", "trunk"), ("sidewalk:right", "separate")]).unwrap();
        assert_eq!(trunk.sidewalk, Sidewalk::Separate);
    }
}
