//! Hostile zone GeoJSON: structure-aware generators (features and
//! collections with wrong types, wrong nesting, short, unclosed, degenerate,
//! self-intersecting or world-sized rings, out-of-range numbers, hostile ids
//! and names), then text mutations (cut, flipped or inserted bytes, `NaN`).
//! [`parse_zones`], [`ZoneSpec::from_geojson`] and [`parse_geometry`] must
//! accept sane zones or refuse naming a field; accepted zones go into a real
//! core and its index is queried. Bounded cases; `PROPTEST_CASES=100000
//! cargo test -p patrol-dispatcher fuzz` runs longer.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Value, json};

use super::{ZoneSpec, parse_geometry, parse_zones};
use crate::{Dispatcher, DispatcherConfig, Error, LonLat};

const NOW: i64 = 1_700_000_000_000;

fn cases(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,8}",
        any::<String>(),
        "[\\x00-\\x1f]{1,4}",
        "x{100,300}",
        "é{500,3000}",
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => (-180.0..=180.0f64).prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec![-180.0, 180.0, -90.0, 90.0, 180.1, -90.1, 1e300, -0.0])
            .prop_map(Value::from),
    ]
    .boxed()
}

/// Anything at all, shallow.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{1,4}|type|coordinates|features", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

fn position() -> BoxedStrategy<Value> {
    prop_oneof![
        12 => (number(), (-90.0..=90.0f64).prop_map(Value::from)).prop_map(|(x, y)| json!([x, y])),
        2 => (number(), number()).prop_map(|(x, y)| json!([x, y])),
        1 => (number(), number(), number()).prop_map(|(x, y, z)| json!([x, y, z])),
        1 => number().prop_map(|x| json!([x])),
        1 => any_json(),
    ]
    .boxed()
}

/// A ring: usually closed; sometimes unclosed, degenerate, a bow tie or the
/// whole world.
fn ring() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => prop::collection::vec(position(), 0..10).prop_map(|mut ps| {
            if let Some(first) = ps.first().cloned() {
                ps.push(first);
            }
            Value::Array(ps)
        }),
        1 => prop::collection::vec(position(), 0..8).prop_map(Value::Array),
        1 => position().prop_map(|p| json!([p, p, p, p])),
        1 => Just(json!([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]])),
        1 => Just(json!([[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]])),
        1 => Just(json!([[24.9, 60.1], [24.9, 60.1], [24.9, 60.1], [24.9, 60.1]])),
    ]
    .boxed()
}

fn polygon() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => prop::collection::vec(ring(), 0..3).prop_map(Value::Array),
        1 => ring(),       // one level too shallow
        1 => position(),   // two levels too shallow
        1 => any_json(),
    ]
    .boxed()
}

fn geometry() -> BoxedStrategy<Value> {
    (
        prop::sample::select(vec![
            "Polygon",
            "Polygon",
            "MultiPolygon",
            "Point",
            "LineString",
            "polygon",
            "",
        ]),
        prop_oneof![
            4 => polygon(),
            2 => prop::collection::vec(polygon(), 0..3).prop_map(Value::Array),
            1 => any_json(),
        ],
        any::<bool>(),
    )
        .prop_map(|(t, coordinates, with_coordinates)| {
            if with_coordinates {
                json!({"type": t, "coordinates": coordinates})
            } else {
                json!({"type": t})
            }
        })
        .boxed()
}

fn property() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => hostile_string().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any_json(),
    ]
    .boxed()
}

fn feature() -> BoxedStrategy<Value> {
    (
        prop_oneof![
            4 => "[a-c]".prop_map(Value::String),
            1 => any::<i64>().prop_map(Value::from),
            1 => Just(Value::Null),
            1 => property(),
        ],
        prop_oneof![
            4 => (
                property(),
                prop_oneof![Just(json!("zone")), Just(json!("segment")), Just(Value::Null), property()],
                prop_oneof![Just(Value::Null), "[a-c]".prop_map(Value::String), property()],
            )
                .prop_map(|(name, kind, parent)| json!({"name": name, "kind": kind, "parent": parent})),
            1 => Just(Value::Null),
            1 => any_json(),
        ],
        prop_oneof![5 => geometry(), 1 => Just(Value::Null), 1 => any_json()],
        prop::sample::select(vec!["Feature", "Feature", "Feature", "FeatureCollection", "Polygon"]),
    )
        .prop_map(|(id, properties, geometry, t)| {
            json!({"type": t, "id": id, "properties": properties, "geometry": geometry})
        })
    .boxed()
}

fn document() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::collection::vec(feature(), 0..5)
            .prop_map(|fs| json!({"type": "FeatureCollection", "features": fs})),
        2 => feature(),
        1 => geometry(),
        1 => any_json().prop_map(|fs| json!({"type": "FeatureCollection", "features": fs})),
        1 => any_json(),
    ]
    .boxed()
}

/// The document's text, sometimes mutated: cut, a byte changed, a number
/// written as `NaN` or out of f64 range.
fn text() -> BoxedStrategy<String> {
    (
        document(),
        prop_oneof![
            6 => Just(None),
            1 => any::<prop::sample::Index>().prop_map(|i| Some((i, None))),
            1 => (any::<prop::sample::Index>(), prop::sample::select(vec![
                "NaN", "Infinity", "-", "1e400", "]", "[", "{", ",", "\"", "\\u0000", "é",
            ]))
                .prop_map(|(i, s)| Some((i, Some(s)))),
        ],
    )
        .prop_map(|(doc, mutation)| {
            let mut text = doc.to_string();
            if let Some((i, insert)) = mutation {
                let at = text.floor_char_boundary(i.index(text.len() + 1));
                match insert {
                    None => text.truncate(at),
                    Some(s) => text.insert_str(at, s),
                }
            }
            text
        })
        .boxed()
}

/// A refusal names a field and quotes a short value.
fn check_refusal(e: &Error, text: &str) {
    let Error::Invalid { field, value, .. } = e else {
        panic!("not a field error: {e} for {text}");
    };
    assert!(!field.is_empty(), "{e}");
    // 400: any f64 prints in fewer (1e300 is 301 digits); strings are cut
    // to 40 bytes.
    assert!(
        value.len() <= 400,
        "long value quoted in {field}: {} bytes",
        value.len()
    );
}

fn check_spec(spec: &ZoneSpec) {
    spec.validate().unwrap();
    for c in spec
        .polygon
        .0
        .iter()
        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
        .flat_map(|r| r.0.iter())
    {
        assert!(LonLat::new(c.x, c.y).is_valid(), "accepted vertex {c:?}");
    }
}

/// Puts accepted zones into a core and asks it where points are.
fn use_zones(specs: Vec<ZoneSpec>, probes: &[(f64, f64)]) {
    let mut core = Dispatcher::new(DispatcherConfig::default());
    for spec in specs {
        core.put_zone(spec, NOW).unwrap();
    }
    let index = core.zone_index();
    for &(lon, lat) in probes {
        let at = LonLat::new(lon, lat);
        let _ = core.zone_at(at);
        let _ = index.containing_smallest_first(at);
        let _ = index.near(at, 50.0).count();
        for zone in index.iter() {
            let d = index.signed_distance_m(&zone.id, at).unwrap();
            assert!(!d.is_nan(), "NaN distance to {}", zone.id);
        }
    }
}

fn probes() -> BoxedStrategy<Vec<(f64, f64)>> {
    prop::collection::vec((-180.0..=180.0f64, -90.0..=90.0f64), 1..4).boxed()
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn fuzz_parse_zones(text in text(), probes in probes()) {
        match parse_zones(&text) {
            Ok(specs) => {
                let mut ids = std::collections::HashSet::new();
                for spec in &specs {
                    check_spec(spec);
                    assert!(ids.insert(spec.id.clone()), "id {} twice", spec.id);
                }
                use_zones(specs, &probes);
            }
            Err(e) => check_refusal(&e, &text),
        }
    }

    #[test]
    fn fuzz_zone_from_geojson(
        text in text(),
        id in proptest::option::of(hostile_string()),
        name in proptest::option::of(hostile_string()),
        probes in probes(),
    ) {
        match ZoneSpec::from_geojson(&text, id.as_deref(), name.as_deref()) {
            Ok(spec) => {
                check_spec(&spec);
                use_zones(vec![spec], &probes);
            }
            Err(e) => check_refusal(&e, &text),
        }
        match parse_geometry(&text) {
            Ok(polygon) => assert!(!polygon.0.is_empty()),
            Err(e) => check_refusal(&e, &text),
        }
    }
}

/// Found by `fuzz_parse_zones`: a refused `kind`, `parent` or `type` was
/// quoted whole, and so was a ring's first and last position.
#[test]
fn refused_long_strings_are_quoted_short() {
    let long = "é".repeat(1000);
    let ring = r#"[[24.9,60.1],[25,60.1],[25,60.2],[24.9,60.1]]"#;
    for text in [
        format!(
            r#"{{"type":"Feature","id":"a","properties":{{"kind":"{long}"}},"geometry":{{"type":"Polygon","coordinates":[{ring}]}}}}"#
        ),
        format!(
            r#"{{"type":"Feature","id":"a","properties":{{"kind":"zone","parent":"{long}"}},"geometry":{{"type":"Polygon","coordinates":[{ring}]}}}}"#
        ),
        format!(r#"{{"type":"{long}"}}"#),
        format!(r#"{{"type":"Feature","id":"a","geometry":{{"type":"{long}","coordinates":[]}}}}"#),
        format!(
            r#"{{"type":"Feature","id":"a","geometry":{{"type":"Polygon","coordinates":[[["{long}",1],[0,0],[1,1],[0,1]]]}}}}"#
        ),
    ] {
        let e = parse_zones(&text).unwrap_err();
        check_refusal(&e, &text);
    }
}
