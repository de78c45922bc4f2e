//! Patrol zones and segments: polygons (lon/lat degrees) read from GeoJSON,
//! the [`ZoneIndex`] that answers "which zones hold this point" and "how far
//! inside", and the [`ZoneConfig`] of the hysteresis that decides when a unit
//! enters or leaves a zone (see `membership`).
//!
//! GeoJSON is read by hand with `serde_json` (no I/O, no new crates): a
//! `FeatureCollection`, a `Feature`, or a bare `Polygon` / `MultiPolygon`
//! geometry. Every refusal names the field (a JSON path such as
//! `features[2].geometry.coordinates[0][3]`) and the value.
//!
//! Distances are planar metres in a local equirectangular projection around
//! the point asked about, which is exact enough for city-sized zones.
//! Polygons crossing the antimeridian are not supported.

#[cfg(test)]
mod fuzz;
mod index;
pub(crate) mod membership;

pub use index::ZoneIndex;
pub use membership::{PendingZone, UnitZones};

use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Millis;
use crate::error::{Error, validate_id};

/// Most vertices (over all rings) one zone may have.
pub const MAX_ZONE_VERTICES: usize = 20_000;
/// Most zones the core holds.
pub const MAX_ZONES: usize = 10_000;
/// Longest zone name, bytes.
pub const MAX_ZONE_NAME_LEN: usize = 128;

/// Whether a zone is a patrol zone or a segment of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZoneKind {
    /// A patrol zone.
    Zone,
    /// A segment (beat) of the patrol zone with this id (if known).
    Segment {
        /// The parent zone's id, when one is given.
        parent: Option<String>,
    },
}

/// A zone as the caller describes it (before the core stamps a version).
/// Serialized (for a command log) with its polygon as plain [`Rings`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneSpec {
    /// Caller-chosen id, e.g. "kallio".
    pub id: String,
    /// Name for operators.
    pub name: String,
    /// Zone or segment.
    pub kind: ZoneKind,
    /// The area (x = longitude, y = latitude, degrees).
    #[serde(with = "as_rings")]
    pub polygon: MultiPolygon<f64>,
}

/// Serde for a polygon as [`Rings`].
mod as_rings {
    use geo::MultiPolygon;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(p: &MultiPolygon<f64>, s: S) -> Result<S::Ok, S::Error> {
        super::to_rings(p).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<MultiPolygon<f64>, D::Error> {
        Ok(super::from_rings(&super::Rings::deserialize(d)?))
    }
}

/// A zone held by the core.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Caller-chosen id.
    pub id: String,
    /// Name for operators.
    pub name: String,
    /// Zone or segment.
    pub kind: ZoneKind,
    /// The area (x = longitude, y = latitude, degrees).
    pub polygon: MultiPolygon<f64>,
    /// 1 when first put, +1 on every replacement.
    pub version: u64,
    /// The `now` of the command that last put it, Unix ms.
    pub updated: Millis,
}

/// What happened to a zone or to a unit's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZoneChangeKind {
    /// The unit entered the zone (after the enter margin and dwell).
    Entered,
    /// The unit left the zone (after the exit margin and dwell).
    Exited,
    /// The zone was created or replaced (`zone` holds it).
    Put,
    /// The zone was removed (memberships and home zones in it are dropped).
    Removed,
}

/// One zone change on the stream ([`crate::Event::Zone`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneChange {
    /// What happened.
    pub kind: ZoneChangeKind,
    /// The zone.
    pub zone_id: String,
    /// The unit, for `Entered` / `Exited`.
    pub unit_id: Option<String>,
    /// For `Entered` / `Exited` the fix time that completed the dwell; for
    /// `Put` / `Removed` the command's `now`. Unix ms.
    pub time: Millis,
    /// The zone as put, for `Put`.
    pub zone: Option<Zone>,
}

/// The zone rules, read from the `[zones]` section of a config file (every
/// field has a default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneConfig {
    /// A unit enters only when at least this many metres inside the
    /// boundary. Default 10.
    pub enter_margin_m: f64,
    /// ... continuously for this long (by fix time), ms. Default 10 000.
    pub enter_dwell_ms: Millis,
    /// A unit leaves only when at least this many metres outside the
    /// boundary. Default 25.
    pub exit_margin_m: f64,
    /// ... continuously for this long (by fix time), ms. Default 20 000.
    pub exit_dwell_ms: Millis,
    /// A unit whose home zone holds the target is recommended first when it
    /// arrives at most this many seconds after the fastest. Default 30.
    pub prefer_margin_s: f64,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            enter_margin_m: 10.0,
            enter_dwell_ms: 10_000,
            exit_margin_m: 25.0,
            exit_dwell_ms: 20_000,
            prefer_margin_s: 30.0,
        }
    }
}

impl ZoneConfig {
    /// Margins 0..=10 000 m, dwells 0..=1 h, preference margin 0..=3600 s.
    pub fn validate(&self) -> Result<(), Error> {
        for (field, m) in [
            ("zones.enter_margin_m", self.enter_margin_m),
            ("zones.exit_margin_m", self.exit_margin_m),
        ] {
            if !(m.is_finite() && (0.0..=10_000.0).contains(&m)) {
                return Err(Error::invalid(field, m, "must be in 0..=10000 metres"));
            }
        }
        for (field, d) in [
            ("zones.enter_dwell_ms", self.enter_dwell_ms),
            ("zones.exit_dwell_ms", self.exit_dwell_ms),
        ] {
            if !(0..=3_600_000).contains(&d) {
                return Err(Error::invalid(field, d, "must be in 0..=3600000 ms"));
            }
        }
        let p = self.prefer_margin_s;
        if !(p.is_finite() && (0.0..=3600.0).contains(&p)) {
            return Err(Error::invalid(
                "zones.prefer_margin_s",
                p,
                "must be in 0..=3600 seconds",
            ));
        }
        Ok(())
    }

    /// How far outside a zone's bounding box a point can be and still matter.
    pub(crate) fn reach_m(&self) -> f64 {
        self.enter_margin_m.max(self.exit_margin_m)
    }
}

impl ZoneSpec {
    /// The checks that need no state: the id, the name's length, the
    /// polygon (rings closed, at least 4 points, coordinates in range, at
    /// most [`MAX_ZONE_VERTICES`]).
    pub fn validate(&self) -> Result<(), Error> {
        validate_id("zone.id", &self.id)?;
        if self.name.len() > MAX_ZONE_NAME_LEN {
            return Err(Error::invalid(
                "zone.name",
                format!("{:?}", &self.name[..self.name.floor_char_boundary(32)]),
                format!("must be at most {MAX_ZONE_NAME_LEN} bytes"),
            ));
        }
        if let ZoneKind::Segment {
            parent: Some(parent),
        } = &self.kind
        {
            validate_id("zone.parent", parent)?;
            if parent == &self.id {
                return Err(Error::invalid(
                    "zone.parent",
                    parent,
                    "a segment cannot be its own parent",
                ));
            }
        }
        check_polygon("zone.polygon", &self.polygon)
    }

    /// One zone from GeoJSON: a `Feature` (id from `id` or
    /// `properties.id`, `properties.name`, `properties.kind` "zone" or
    /// "segment", `properties.parent`), or a bare `Polygon` /
    /// `MultiPolygon` geometry, which takes `id` and `name` from the
    /// arguments. Arguments that are `Some` win over the feature's.
    pub fn from_geojson(text: &str, id: Option<&str>, name: Option<&str>) -> Result<Self, Error> {
        let value = parse_json(text)?;
        let mut spec = match type_of(&value, "")? {
            "Feature" => feature(&value, "")?,
            "Polygon" | "MultiPolygon" => ZoneSpec {
                id: String::new(),
                name: String::new(),
                kind: ZoneKind::Zone,
                polygon: geometry(&value, "")?,
            },
            other => {
                return Err(Error::invalid(
                    "type",
                    quoted(other),
                    "must be Feature, Polygon or MultiPolygon",
                ));
            }
        };
        if let Some(id) = id {
            spec.id = id.to_string();
        }
        if let Some(name) = name {
            spec.name = name.to_string();
        }
        spec.validate().map_err(|e| prefix(e, ""))?;
        Ok(spec)
    }
}

/// Every zone in a GeoJSON text: a `FeatureCollection` (each feature as in
/// [`ZoneSpec::from_geojson`], each with an id) or one `Feature`. Ids must
/// be distinct.
pub fn parse_zones(text: &str) -> Result<Vec<ZoneSpec>, Error> {
    let value = parse_json(text)?;
    let specs = match type_of(&value, "")? {
        "FeatureCollection" => {
            let features = value
                .get("features")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    Error::invalid("features", shorten(&value["features"]), "must be an array")
                })?;
            features
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let path = format!("features[{i}]");
                    let t = type_of(f, &path)?;
                    if t != "Feature" {
                        return Err(Error::invalid(
                            &field(&path, "type"),
                            quoted(t),
                            "must be Feature",
                        ));
                    }
                    feature(f, &path)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        "Feature" => vec![feature(&value, "")?],
        other => {
            return Err(Error::invalid(
                "type",
                quoted(other),
                "must be FeatureCollection or Feature",
            ));
        }
    };
    let collection = type_of(&value, "")? == "FeatureCollection";
    let mut seen = std::collections::HashSet::new();
    for (i, spec) in specs.iter().enumerate() {
        let base = if collection {
            format!("features[{i}]")
        } else {
            String::new()
        };
        spec.validate().map_err(|e| prefix(e, &base))?;
        if !seen.insert(spec.id.as_str()) {
            return Err(Error::invalid(
                &field(&base, "id"),
                format!("{:?}", spec.id),
                "is given twice",
            ));
        }
    }
    Ok(specs)
}

/// A bare `Polygon` / `MultiPolygon` geometry, checked.
pub fn parse_geometry(text: &str) -> Result<MultiPolygon<f64>, Error> {
    let value = parse_json(text)?;
    let polygon = geometry(&value, "")?;
    check_polygon("coordinates", &polygon)?;
    Ok(polygon)
}

fn parse_json(text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::invalid(
            "geojson",
            format!("{:?}", &text[..text.floor_char_boundary(40)]),
            format!("is not JSON: {e}"),
        )
    })
}

fn field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A caller's string as an error quotes it: at most 40 bytes of it.
fn quoted(s: &str) -> String {
    format!("{:?}", &s[..s.floor_char_boundary(40)])
}

fn shorten(value: &Value) -> String {
    let s = value.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

/// Names a field of a checked spec the way GeoJSON does, under `path`.
fn prefix(e: Error, path: &str) -> Error {
    match e {
        Error::Invalid {
            field,
            value,
            reason,
        } => {
            let name = match field.as_str() {
                "zone.id" => "id".to_string(),
                "zone.name" => "properties.name".to_string(),
                "zone.parent" => "properties.parent".to_string(),
                other => other.trim_start_matches("zone.").to_string(),
            };
            Error::Invalid {
                field: self::field(path, &name),
                value,
                reason,
            }
        }
        e => e,
    }
}

fn type_of<'a>(value: &'a Value, path: &str) -> Result<&'a str, Error> {
    value.get("type").and_then(Value::as_str).ok_or_else(|| {
        Error::invalid(
            &field(path, "type"),
            shorten(value.get("type").unwrap_or(&Value::Null)),
            "must be a GeoJSON type string",
        )
    })
}

fn feature(value: &Value, path: &str) -> Result<ZoneSpec, Error> {
    let props = value.get("properties").filter(|p| !p.is_null());
    let prop_str = |name: &str| -> Result<Option<String>, Error> {
        match props.and_then(|p| p.get(name)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::invalid(
                &field(path, &format!("properties.{name}")),
                shorten(other),
                "must be a string",
            )),
        }
    };
    let id = match value.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => prop_str("id")?.unwrap_or_default(),
        Some(other) => {
            return Err(Error::invalid(
                &field(path, "id"),
                shorten(other),
                "must be a string or number",
            ));
        }
    };
    let name = prop_str("name")?.unwrap_or_default();
    let parent = prop_str("parent")?;
    let kind = match prop_str("kind")?.as_deref() {
        None | Some("zone") if parent.is_none() => ZoneKind::Zone,
        None | Some("segment") => ZoneKind::Segment { parent },
        Some("zone") => {
            return Err(Error::invalid(
                &field(path, "properties.parent"),
                quoted(&parent.unwrap_or_default()),
                "only a segment has a parent",
            ));
        }
        Some(other) => {
            return Err(Error::invalid(
                &field(path, "properties.kind"),
                quoted(other),
                "must be \"zone\" or \"segment\"",
            ));
        }
    };
    let geom_path = field(path, "geometry");
    let geom = value
        .get("geometry")
        .filter(|g| !g.is_null())
        .ok_or_else(|| Error::invalid(&geom_path, "null", "a zone needs a geometry"))?;
    let polygon = geometry(geom, &geom_path)?;
    check_polygon(&field(&geom_path, "coordinates"), &polygon)?;
    Ok(ZoneSpec {
        id,
        name,
        kind,
        polygon,
    })
}

/// A `Polygon` or `MultiPolygon` geometry object, shape only (the ring rules
/// are [`check_polygon`]'s, apart from those the reading itself needs).
fn geometry(value: &Value, path: &str) -> Result<MultiPolygon<f64>, Error> {
    let t = type_of(value, path)?;
    let cpath = field(path, "coordinates");
    let coords = value
        .get("coordinates")
        .ok_or_else(|| Error::invalid(&cpath, "null", "is missing"))?;
    match t {
        "Polygon" => Ok(MultiPolygon(vec![polygon(coords, &cpath)?])),
        "MultiPolygon" => {
            let polys = array(coords, &cpath)?;
            if polys.is_empty() {
                return Err(Error::invalid(&cpath, "[]", "needs at least one polygon"));
            }
            let polys = polys
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p, &format!("{cpath}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(MultiPolygon(polys))
        }
        other => Err(Error::invalid(
            &field(path, "type"),
            quoted(other),
            "is not a polygon: must be Polygon or MultiPolygon",
        )),
    }
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, Error> {
    value
        .as_array()
        .ok_or_else(|| Error::invalid(path, shorten(value), "must be an array"))
}

fn polygon(value: &Value, path: &str) -> Result<Polygon<f64>, Error> {
    let rings = array(value, path)?;
    if rings.is_empty() {
        return Err(Error::invalid(path, "[]", "needs an exterior ring"));
    }
    unclosed_check(value, path)?;
    let mut vertices = 0usize;
    let mut rings = rings
        .iter()
        .enumerate()
        .map(|(r, ring)| {
            let rpath = format!("{path}[{r}]");
            let points = array(ring, &rpath)?;
            vertices += points.len();
            if vertices > MAX_ZONE_VERTICES {
                return Err(Error::invalid(
                    &rpath,
                    format!("{} points", points.len()),
                    format!("a zone may have at most {MAX_ZONE_VERTICES} vertices"),
                ));
            }
            points
                .iter()
                .enumerate()
                .map(|(i, p)| position(p, &format!("{rpath}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(LineString::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let exterior = rings.remove(0);
    Ok(Polygon::new(exterior, rings))
}

/// Refuses rings whose last position is not their first (GeoJSON requires
/// closed rings; geo would close them silently).
fn unclosed_check(value: &Value, path: &str) -> Result<(), Error> {
    for (r, ring) in value.as_array().into_iter().flatten().enumerate() {
        let Some(points) = ring.as_array() else {
            continue;
        };
        if points.len() < 4 {
            return Err(Error::invalid(
                &format!("{path}[{r}]"),
                format!("{} points", points.len()),
                "a ring needs at least 4 positions (a closed triangle)",
            ));
        }
        let (first, last) = (&points[0], &points[points.len() - 1]);
        if first != last {
            return Err(Error::invalid(
                &format!("{path}[{r}]"),
                format!("first {} last {}", shorten(first), shorten(last)),
                "a ring must be closed: its last position must equal its first",
            ));
        }
    }
    Ok(())
}

fn position(value: &Value, path: &str) -> Result<Coord<f64>, Error> {
    let p = array(value, path)?;
    if p.len() < 2 {
        return Err(Error::invalid(
            path,
            shorten(value),
            "a position needs [longitude, latitude]",
        ));
    }
    let num = |i: usize, name: &str| {
        p[i].as_f64().ok_or_else(|| {
            Error::invalid(
                &format!("{path}[{i}]"),
                shorten(&p[i]),
                format!("{name} must be a number"),
            )
        })
    };
    let (x, y) = (num(0, "longitude")?, num(1, "latitude")?);
    check_coord(path, x, y)?;
    Ok(Coord { x, y })
}

fn check_coord(path: &str, x: f64, y: f64) -> Result<(), Error> {
    if !(x.is_finite() && (-180.0..=180.0).contains(&x)) {
        return Err(Error::invalid(
            &format!("{path}[0]"),
            x,
            "longitude must be finite, in -180..=180",
        ));
    }
    if !(y.is_finite() && (-90.0..=90.0).contains(&y)) {
        return Err(Error::invalid(
            &format!("{path}[1]"),
            y,
            "latitude must be finite, in -90..=90",
        ));
    }
    Ok(())
}

/// The ring rules for a polygon however it was made: at least one polygon,
/// every ring closed with at least 4 positions, coordinates finite and in
/// range, at most [`MAX_ZONE_VERTICES`] in all.
pub(crate) fn check_polygon(path: &str, polygon: &MultiPolygon<f64>) -> Result<(), Error> {
    if polygon.0.is_empty() {
        return Err(Error::invalid(path, "[]", "needs at least one polygon"));
    }
    let mut vertices = 0usize;
    for (p, poly) in polygon.0.iter().enumerate() {
        for (r, ring) in std::iter::once(poly.exterior())
            .chain(poly.interiors())
            .enumerate()
        {
            let rpath = format!("{path}[{p}][{r}]");
            vertices += ring.0.len();
            if vertices > MAX_ZONE_VERTICES {
                return Err(Error::invalid(
                    &rpath,
                    format!("{vertices} vertices so far"),
                    format!("a zone may have at most {MAX_ZONE_VERTICES} vertices"),
                ));
            }
            if ring.0.len() < 4 {
                return Err(Error::invalid(
                    &rpath,
                    format!("{} points", ring.0.len()),
                    "a ring needs at least 4 positions (a closed triangle)",
                ));
            }
            if ring.0.first() != ring.0.last() {
                return Err(Error::invalid(
                    &rpath,
                    format!("{:?} .. {:?}", ring.0[0], ring.0[ring.0.len() - 1]),
                    "a ring must be closed: its last position must equal its first",
                ));
            }
            for (i, c) in ring.0.iter().enumerate() {
                check_coord(&format!("{rpath}[{i}]"), c.x, c.y)?;
            }
        }
    }
    Ok(())
}

/// A zone's polygon as plain rings, for checkpoints: polygons, rings,
/// `[lon, lat]` positions.
pub type Rings = Vec<Vec<Vec<[f64; 2]>>>;

pub(crate) fn to_rings(polygon: &MultiPolygon<f64>) -> Rings {
    polygon
        .0
        .iter()
        .map(|p| {
            std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(|r| r.0.iter().map(|c| [c.x, c.y]).collect())
                .collect()
        })
        .collect()
}

pub(crate) fn from_rings(rings: &Rings) -> MultiPolygon<f64> {
    MultiPolygon(
        rings
            .iter()
            .map(|p| {
                let mut rs = p
                    .iter()
                    .map(|r| LineString::new(r.iter().map(|&[x, y]| Coord { x, y }).collect()));
                let exterior = rs.next().unwrap_or_else(|| LineString::new(Vec::new()));
                Polygon::new(exterior, rs.collect())
            })
            .collect(),
    )
}
