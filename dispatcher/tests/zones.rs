//! Patrol zones: GeoJSON reading (errors name field and value), point in
//! zone and boundary distance against an independent ray cast in planar
//! metres, membership hysteresis driven by fix times, the home-zone
//! preference of recommendations, and zones surviving a checkpoint.

mod common;

use patrol_dispatcher::persist::CoreState;
use patrol_dispatcher::*;

const NOW: Millis = 1_700_000_000_000;
/// Metres per degree of latitude on the core's sphere.
const M_PER_DEG: f64 = patrol_dispatcher::geometry::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// The test square: lon 24.93..24.95, lat 60.165..60.175 (about 1.1 km by
/// 1.1 km), as GeoJSON.
const SQUARE: &str = r#"{"type":"Feature","id":"kallio","properties":{"name":"Kallio"},
 "geometry":{"type":"Polygon","coordinates":[[[24.93,60.165],[24.95,60.165],[24.95,60.175],[24.93,60.175],[24.93,60.165]]]}}"#;
const EAST_EDGE: f64 = 24.95;
const MID_LAT: f64 = 60.17;

fn kx(lat: f64) -> f64 {
    M_PER_DEG * lat.to_radians().cos()
}

/// The longitude `m` metres west (inside) of the east edge at `MID_LAT`
/// (negative `m`: east, outside).
fn inside_by(m: f64) -> LonLat {
    LonLat::new(EAST_EDGE - m / kx(MID_LAT), MID_LAT)
}

fn invalid_field(e: Error) -> (String, String) {
    match e {
        Error::Invalid { field, value, .. } => (field, value),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn core() -> Dispatcher {
    Dispatcher::new(DispatcherConfig::default())
}

fn register(d: &mut Dispatcher, id: &str) {
    d.register_unit(
        UnitProfile {
            id: id.into(),
            call_sign: format!("P-{id}"),
            kind: UnitKind::Car,
            capabilities: vec![],
        },
        NOW,
    )
    .unwrap();
}

fn ping(d: &mut Dispatcher, id: &str, time: Millis, at: LonLat) {
    d.apply_ping(
        &Ping {
            unit_id: id,
            time,
            at,
            speed_mps: None,
            heading_deg: None,
            accuracy_m: None,
        },
        time,
    )
    .unwrap();
}

fn zone_events(d: &mut Dispatcher) -> Vec<ZoneChange> {
    d.take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Zone(z) => Some(z),
            _ => None,
        })
        .collect()
}

fn with_square() -> Dispatcher {
    let mut d = core();
    d.put_zone(ZoneSpec::from_geojson(SQUARE, None, None).unwrap(), NOW)
        .unwrap();
    d.take_events();
    d
}

// ----- GeoJSON ----------------------------------------------------------

#[test]
fn a_feature_a_collection_and_a_bare_geometry_are_read() {
    let spec = ZoneSpec::from_geojson(SQUARE, None, None).unwrap();
    assert_eq!(spec.id, "kallio");
    assert_eq!(spec.name, "Kallio");
    assert_eq!(spec.kind, ZoneKind::Zone);
    assert_eq!(spec.polygon.0.len(), 1);
    assert_eq!(spec.polygon.0[0].exterior().0.len(), 5);

    let bare = r#"{"type":"MultiPolygon","coordinates":[
        [[[0,0],[1,0],[1,1],[0,0]]],
        [[[2,2],[3,2],[3,3],[2,2]]]]}"#;
    let spec = ZoneSpec::from_geojson(bare, Some("z2"), Some("Two")).unwrap();
    assert_eq!((spec.id.as_str(), spec.name.as_str()), ("z2", "Two"));
    assert_eq!(spec.polygon.0.len(), 2);

    let collection = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","id":"north","properties":{"name":"North"},
       "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
      {"type":"Feature","properties":{"id":"north-1","kind":"segment","parent":"north"},
       "geometry":{"type":"Polygon","coordinates":[[[0,0],[0.5,0],[0.5,0.5],[0,0]]]}}]}"#;
    let specs = parse_zones(collection).unwrap();
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[1].id, "north-1");
    assert_eq!(
        specs[1].kind,
        ZoneKind::Segment {
            parent: Some("north".into())
        }
    );
    let g =
        parse_geometry(r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}"#).unwrap();
    assert_eq!(g.0.len(), 1);
}

#[test]
fn bad_geojson_is_refused_naming_field_and_value() {
    let cases: &[(&str, &str, &str)] = &[
        // not a polygon
        (
            r#"{"type":"Feature","id":"a","geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}}"#,
            "geometry.type",
            "\"LineString\"",
        ),
        // too few ring points
        (
            r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}"#,
            "coordinates[0]",
            "3 points",
        ),
        // unclosed ring
        (
            r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#,
            "coordinates[0]",
            "first [0,0] last [0,1]",
        ),
        // latitude out of range
        (
            r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,91],[0,0]]]}"#,
            "coordinates[0][2][1]",
            "91",
        ),
        // longitude out of range, in a collection
        (
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":"a","geometry":
              {"type":"Polygon","coordinates":[[[0,0],[181,0],[1,1],[0,0]]]}}]}"#,
            "features[0].geometry.coordinates[0][1][0]",
            "181",
        ),
        // a coordinate that is not a number
        (
            r#"{"type":"Polygon","coordinates":[[[0,0],["x",0],[1,1],[0,0]]]}"#,
            "coordinates[0][1][0]",
            "\"x\"",
        ),
        // empty id
        (
            r#"{"type":"Feature","id":"","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}"#,
            "id",
            "\"\"",
        ),
        // a zone with a parent
        (
            r#"{"type":"Feature","id":"a","properties":{"kind":"zone","parent":"b"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}"#,
            "properties.parent",
            "\"b\"",
        ),
        // unknown kind
        (
            r#"{"type":"Feature","id":"a","properties":{"kind":"district"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}"#,
            "properties.kind",
            "\"district\"",
        ),
    ];
    for (text, field, value) in cases {
        // Collections go through parse_zones, the rest through
        // from_geojson (a bare geometry gets its id from the caller).
        let err = if text.contains("Collection") {
            parse_zones(text).unwrap_err()
        } else {
            let id = (!text.contains("\"id\"")).then_some("a");
            ZoneSpec::from_geojson(text, id, None).unwrap_err()
        };
        let (f, v) = invalid_field(err.clone());
        assert_eq!(f, *field, "{text}: {err}");
        assert_eq!(v, *value, "{text}: {err}");
    }

    // Too many vertices.
    let n = MAX_ZONE_VERTICES + 1;
    let mut ring: Vec<String> = (0..n - 1)
        .map(|i| {
            let a = i as f64 / (n - 1) as f64 * std::f64::consts::TAU;
            format!("[{},{}]", a.cos(), a.sin())
        })
        .collect();
    ring.push(ring[0].clone());
    let text = format!(
        r#"{{"type":"Polygon","coordinates":[[{}]]}}"#,
        ring.join(",")
    );
    let err = ZoneSpec::from_geojson(&text, Some("big"), None).unwrap_err();
    let (f, v) = invalid_field(err.clone());
    assert_eq!((f.as_str(), v), ("coordinates[0]", format!("{n} points")));
    assert!(err.to_string().contains("at most 20000 vertices"), "{err}");

    // NaN cannot be written in JSON, but a polygon built in code is
    // checked too.
    let mut spec = ZoneSpec::from_geojson(SQUARE, None, None).unwrap();
    spec.polygon.0[0].exterior_mut(|r| r.0[1].y = f64::NAN);
    let (f, v) = invalid_field(core().put_zone(spec, NOW).unwrap_err());
    assert_eq!(
        (f.as_str(), v.as_str()),
        ("zone.polygon[0][0][1][1]", "NaN")
    );
}

#[test]
fn the_zone_config_has_its_defaults_and_names_bad_fields() {
    let c = ZoneConfig::default();
    assert_eq!(
        (
            c.enter_margin_m,
            c.enter_dwell_ms,
            c.exit_margin_m,
            c.exit_dwell_ms,
            c.prefer_margin_s
        ),
        (10.0, 10_000, 25.0, 20_000, 30.0)
    );
    assert!(c.validate().is_ok());
    // A config file section with only some fields.
    let read: ZoneConfig = serde_json::from_str(r#"{"exit_margin_m": 40}"#).unwrap();
    assert_eq!(read.exit_margin_m, 40.0);
    assert_eq!(read.enter_dwell_ms, 10_000);
    assert!(serde_json::from_str::<ZoneConfig>(r#"{"exit_margn_m": 40}"#).is_err());
    let bad = ZoneConfig {
        enter_margin_m: -1.0,
        ..c
    };
    assert_eq!(
        invalid_field(bad.validate().unwrap_err()).0,
        "zones.enter_margin_m"
    );
    let bad = ZoneConfig {
        exit_dwell_ms: -5,
        ..c
    };
    assert_eq!(
        invalid_field(bad.validate().unwrap_err()),
        ("zones.exit_dwell_ms".to_string(), "-5".to_string())
    );
    let bad = ZoneConfig {
        prefer_margin_s: f64::NAN,
        ..c
    };
    assert_eq!(
        invalid_field(bad.validate().unwrap_err()).0,
        "zones.prefer_margin_s"
    );
}

// ----- point in zone, boundary distance ---------------------------------

/// A concave polygon with a hole, lon/lat around Helsinki.
const CONCAVE: &str = r#"{"type":"Polygon","coordinates":[
  [[24.900,60.150],[24.960,60.150],[24.960,60.190],[24.935,60.165],[24.900,60.190],[24.900,60.150]],
  [[24.910,60.155],[24.920,60.155],[24.920,60.160],[24.910,60.160],[24.910,60.155]]]}"#;

/// Rings as (x, y) degrees, for the independent computation.
fn rings_of(zone: &Zone) -> Vec<Vec<(f64, f64)>> {
    zone.polygon
        .0
        .iter()
        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
        .map(|r| r.0.iter().map(|c| (c.x, c.y)).collect())
        .collect()
}

/// Even-odd ray casting over every ring.
fn ray_cast(rings: &[Vec<(f64, f64)>], x: f64, y: f64) -> bool {
    let mut inside = false;
    for ring in rings {
        for w in ring.windows(2) {
            let ((x1, y1), (x2, y2)) = (w[0], w[1]);
            if (y1 > y) != (y2 > y) && x < x1 + (y - y1) * (x2 - x1) / (y2 - y1) {
                inside = !inside;
            }
        }
    }
    inside
}

/// Least planar metres from (x, y) to any ring edge, by sampling each edge
/// finely in metres around the point and taking the minimum, refined
/// with the exact foot of the perpendicular.
fn edge_metres(rings: &[Vec<(f64, f64)>], x: f64, y: f64) -> f64 {
    let (sx, sy) = (kx(y), M_PER_DEG);
    let mut best = f64::INFINITY;
    for ring in rings {
        for w in ring.windows(2) {
            let (ax, ay) = ((w[0].0 - x) * sx, (w[0].1 - y) * sy);
            let (bx, by) = ((w[1].0 - x) * sx, (w[1].1 - y) * sy);
            // Minimise |a + t (b - a)|^2 over t in [0, 1] by ternary search.
            let f = |t: f64| {
                let (px, py) = (ax + t * (bx - ax), ay + t * (by - ay));
                (px * px + py * py).sqrt()
            };
            let (mut lo, mut hi) = (0.0f64, 1.0f64);
            for _ in 0..200 {
                let (m1, m2) = (lo + (hi - lo) / 3.0, hi - (hi - lo) / 3.0);
                if f(m1) < f(m2) {
                    hi = m2;
                } else {
                    lo = m1;
                }
            }
            best = best.min(f((lo + hi) / 2.0)).min(f(0.0)).min(f(1.0));
        }
    }
    best
}

#[test]
fn point_in_zone_and_boundary_distance_match_a_ray_cast_in_planar_metres() {
    let mut d = core();
    let spec = ZoneSpec::from_geojson(CONCAVE, Some("c"), None).unwrap();
    let zone = d.put_zone(spec, NOW).unwrap();
    let rings = rings_of(&zone);
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut inside, mut outside) = (0, 0);
    for _ in 0..3000 {
        let x = 24.89 + next() * 0.08;
        let y = 60.14 + next() * 0.06;
        let at = LonLat::new(x, y);
        let expect_in = ray_cast(&rings, x, y);
        let expect_m = edge_metres(&rings, x, y);
        if expect_m < 0.01 {
            continue; // on the boundary: either answer is right
        }
        let got = d.zone_index().signed_distance_m("c", at).unwrap();
        let signed = if expect_in { expect_m } else { -expect_m };
        assert!(
            (got - signed).abs() < 1e-3,
            "({x}, {y}): got {got}, expected {signed}"
        );
        let holding: Vec<String> = d
            .zone_index()
            .containing(at)
            .iter()
            .map(|z| z.id.clone())
            .collect();
        assert_eq!(holding.is_empty(), !expect_in, "({x}, {y})");
        assert_eq!(d.zone_at(at).is_some(), expect_in);
        if expect_in {
            inside += 1;
        } else {
            outside += 1;
        }
    }
    // The sample covers both sides, the notch and the hole.
    assert!(inside > 500 && outside > 500, "{inside} in, {outside} out");
    assert!(
        !d.zone_index()
            .containing(LonLat::new(24.915, 60.1575))
            .iter()
            .any(|z| z.id == "c"),
        "the hole"
    );
    assert!(
        d.zone_index()
            .containing(LonLat::new(24.935, 60.18))
            .is_empty(),
        "the notch"
    );
}

#[test]
fn an_incident_point_gets_the_smallest_zone_holding_it() {
    let mut d = with_square();
    let seg = r#"{"type":"Feature","id":"kallio-1","properties":{"kind":"segment","parent":"kallio"},
     "geometry":{"type":"Polygon","coordinates":[[[24.93,60.165],[24.94,60.165],[24.94,60.17],[24.93,60.17],[24.93,60.165]]]}}"#;
    d.put_zone(ZoneSpec::from_geojson(seg, None, None).unwrap(), NOW)
        .unwrap();
    assert_eq!(
        d.zone_at(LonLat::new(24.935, 60.167)).unwrap().id,
        "kallio-1"
    );
    assert_eq!(d.zone_at(LonLat::new(24.945, 60.172)).unwrap().id, "kallio");
    assert!(d.zone_at(LonLat::new(24.96, 60.172)).is_none());
    let ids: Vec<_> = d.zones().into_iter().map(|z| z.id).collect();
    assert_eq!(ids, ["kallio", "kallio-1"]);
}

#[test]
fn putting_again_bumps_the_version_and_removing_tells_the_stream() {
    let mut d = core();
    let z = d
        .put_zone(ZoneSpec::from_geojson(SQUARE, None, None).unwrap(), NOW)
        .unwrap();
    assert_eq!((z.version, z.updated), (1, NOW));
    let z = d
        .put_zone(
            ZoneSpec::from_geojson(SQUARE, None, Some("Kallio 2")).unwrap(),
            NOW + 5,
        )
        .unwrap();
    assert_eq!(
        (z.version, z.updated, z.name.as_str()),
        (2, NOW + 5, "Kallio 2")
    );
    d.remove_zone("kallio", NOW + 9).unwrap();
    let kinds: Vec<_> = zone_events(&mut d)
        .iter()
        .map(|e| (e.kind, e.time, e.zone.as_ref().map(|z| z.version)))
        .collect();
    assert_eq!(
        kinds,
        [
            (ZoneChangeKind::Put, NOW, Some(1)),
            (ZoneChangeKind::Put, NOW + 5, Some(2)),
            (ZoneChangeKind::Removed, NOW + 9, None)
        ]
    );
    assert!(matches!(d.zone("kallio"), Err(Error::NotFound { .. })));
    assert!(matches!(
        d.remove_zone("kallio", NOW),
        Err(Error::NotFound { .. })
    ));
    assert!(
        d.zone_index()
            .containing(LonLat::new(24.94, 60.17))
            .is_empty()
    );
}

// ----- hysteresis -------------------------------------------------------

#[test]
fn a_unit_walking_in_enters_only_after_the_margin_and_the_dwell() {
    let mut d = with_square();
    register(&mut d, "u1");
    let cfg = ZoneConfig::default();
    // From 50 m outside, 1.5 m/s west, a ping every second.
    let mut expected_since = None;
    let mut entered_at = None;
    for s in 0..120 {
        let t = NOW + s * 1000;
        let m = -50.0 + 1.5 * s as f64;
        let at = inside_by(m);
        ping(&mut d, "u1", t, at);
        // The independent view: metres inside the east edge.
        let inside_m = (EAST_EDGE - at.lon) * kx(MID_LAT);
        if inside_m >= cfg.enter_margin_m && expected_since.is_none() {
            expected_since = Some(t);
        }
        let events = zone_events(&mut d);
        if !events.is_empty() {
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].kind, ZoneChangeKind::Entered);
            assert_eq!(events[0].unit_id.as_deref(), Some("u1"));
            assert_eq!(events[0].zone_id, "kallio");
            assert!(entered_at.is_none(), "entered twice");
            entered_at = Some(events[0].time);
        }
        // Inside the zone but not yet entered: not a member.
        if entered_at.is_none() {
            assert!(d.unit_zones("u1").unwrap().is_empty(), "at {s} s");
        }
    }
    let since = expected_since.unwrap();
    assert_eq!(entered_at, Some(since + cfg.enter_dwell_ms));
    assert_eq!(d.unit_zones("u1").unwrap(), ["kallio"]);
}

#[test]
fn a_unit_jittering_on_the_boundary_for_minutes_emits_nothing() {
    let mut d = with_square();
    register(&mut d, "u1");
    register(&mut d, "u2");
    // u1: +-5 m around the edge, every second, ten minutes.
    // u2: 15 m inside (past the enter margin) for 8 s, then 5 m outside for
    // 2 s, over and over: never 10 s running.
    for s in 0..600 {
        let t = NOW + s * 1000;
        let wobble = if s % 2 == 0 { 5.0 } else { -5.0 } * ((s % 7) as f64 / 6.0);
        ping(&mut d, "u1", t, inside_by(wobble));
        let m = if s % 10 < 8 { 15.0 } else { -5.0 };
        ping(&mut d, "u2", t, inside_by(m));
    }
    assert_eq!(zone_events(&mut d), vec![]);
    assert!(d.unit_zones("u1").unwrap().is_empty());
    assert!(d.unit_zones("u2").unwrap().is_empty());
}

#[test]
fn a_member_leaves_only_after_the_exit_margin_and_dwell() {
    let mut d = with_square();
    register(&mut d, "u1");
    let cfg = ZoneConfig::default();
    // Settle 100 m inside until entered.
    let mut t = NOW;
    for _ in 0..=10 {
        ping(&mut d, "u1", t, inside_by(100.0));
        t += 1000;
    }
    let events = zone_events(&mut d);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind, events[0].time),
        (ZoneChangeKind::Entered, NOW + 10_000)
    );
    // Jitter between 20 m outside and 5 m inside for five minutes: within
    // the exit margin, so it stays.
    for s in 0..300 {
        let m = if s % 3 == 0 { 5.0 } else { -20.0 };
        ping(&mut d, "u1", t, inside_by(m));
        t += 1000;
    }
    assert_eq!(zone_events(&mut d), vec![]);
    assert_eq!(d.unit_zones("u1").unwrap(), ["kallio"]);
    // 30 m outside for 19 s, then back to 20 m outside: resets.
    for _ in 0..20 {
        ping(&mut d, "u1", t, inside_by(-30.0));
        t += 1000;
    }
    ping(&mut d, "u1", t, inside_by(-20.0));
    t += 1000;
    assert_eq!(zone_events(&mut d), vec![]);
    // Walk away east at 1 m/s from 20 m outside.
    let mut since = None;
    let mut exited = None;
    for s in 0..60 {
        let at = inside_by(-20.0 - s as f64);
        ping(&mut d, "u1", t, at);
        let outside_m = (at.lon - EAST_EDGE) * kx(MID_LAT);
        if outside_m >= cfg.exit_margin_m && since.is_none() {
            since = Some(t);
        }
        for e in zone_events(&mut d) {
            assert_eq!(
                (e.kind, e.zone_id.as_str()),
                (ZoneChangeKind::Exited, "kallio")
            );
            assert!(exited.replace(e.time).is_none());
        }
        t += 1000;
    }
    assert_eq!(exited, Some(since.unwrap() + cfg.exit_dwell_ms));
    assert!(d.unit_zones("u1").unwrap().is_empty());
}

#[test]
fn a_unit_jumping_far_away_still_leaves_and_removal_forgets_members() {
    let mut d = with_square();
    register(&mut d, "u1");
    for s in 0..=10 {
        ping(&mut d, "u1", NOW + s * 1000, inside_by(200.0));
    }
    assert_eq!(d.unit_zones("u1").unwrap(), ["kallio"]);
    // 20 km away: outside the zone's box, yet the exit is still seen.
    let far = LonLat::new(25.3, 60.17);
    for s in 11..=31 {
        ping(&mut d, "u1", NOW + s * 1000, far);
    }
    let kinds: Vec<_> = zone_events(&mut d)
        .iter()
        .map(|e| (e.kind, e.time))
        .collect();
    assert_eq!(
        kinds,
        [
            (ZoneChangeKind::Entered, NOW + 10_000),
            (ZoneChangeKind::Exited, NOW + 31_000)
        ]
    );
    for s in 40..=50 {
        ping(&mut d, "u1", NOW + s * 1000, inside_by(200.0));
    }
    assert_eq!(d.unit_zones("u1").unwrap(), ["kallio"]);
    d.remove_zone("kallio", NOW + 60_000).unwrap();
    assert!(d.unit_zones("u1").unwrap().is_empty());
    ping(&mut d, "u1", NOW + 61_000, inside_by(200.0));
    let kinds: Vec<_> = zone_events(&mut d).iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ZoneChangeKind::Entered, ZoneChangeKind::Removed]);
}

// ----- home-zone preference ---------------------------------------------

/// The incident point, in the square, and a unit `m` metres south of it.
fn incident() -> LonLat {
    LonLat::new(24.94, 60.17)
}
fn south_of_incident(m: f64) -> LonLat {
    LonLat::new(24.94, 60.17 - m / M_PER_DEG)
}

fn query(k: usize) -> UnitQuery {
    UnitQuery {
        k,
        ..Default::default()
    }
}

fn two_units(home_m: f64) -> Dispatcher {
    let mut d = with_square();
    // The other zone, where the fast unit lives.
    let east = r#"{"type":"Polygon","coordinates":[[[24.95,60.165],[24.97,60.165],[24.97,60.175],[24.95,60.175],[24.95,60.165]]]}"#;
    d.put_zone(
        ZoneSpec::from_geojson(east, Some("east"), None).unwrap(),
        NOW,
    )
    .unwrap();
    register(&mut d, "fast");
    register(&mut d, "home");
    ping(&mut d, "fast", NOW - 1000, south_of_incident(300.0));
    ping(&mut d, "home", NOW - 1000, south_of_incident(home_m));
    d.set_home_zone("fast", Some("east")).unwrap();
    d.set_home_zone("home", Some("kallio")).unwrap();
    d
}

#[test]
fn a_home_unit_within_the_margin_is_preferred_and_says_so() {
    let d = two_units(400.0);
    let fast_eta = network::straight_eta_s(UnitKind::Car, 300.0, recommend::DETOUR_FACTOR);
    let home_eta = network::straight_eta_s(UnitKind::Car, 400.0, recommend::DETOUR_FACTOR);
    assert!(home_eta - fast_eta < 30.0 && home_eta > fast_eta);
    for k in [1, 2] {
        let r = d
            .recommend(&Target::Point(incident()), &query(k), NOW)
            .unwrap();
        assert_eq!(r.units.len(), k);
        assert_eq!(r.units[0].unit.profile.id, "home", "k = {k}");
        assert!(
            (r.units[0].eta_s - home_eta).abs() < 0.5,
            "{}",
            r.units[0].eta_s
        );
        assert!(
            r.units[0]
                .reason
                .starts_with("home zone kallio, within 30 s of the fastest (P-fast"),
            "{}",
            r.units[0].reason
        );
        if k == 2 {
            assert_eq!(r.units[1].unit.profile.id, "fast");
        }
    }
    // Without home zones the faster one is first.
    let mut d = d;
    d.set_home_zone("home", None).unwrap();
    let r = d
        .recommend(&Target::Point(incident()), &query(1), NOW)
        .unwrap();
    assert_eq!(r.units[0].unit.profile.id, "fast");
    assert!(!r.units[0].reason.contains("home zone"));
}

#[test]
fn a_faster_unit_beyond_the_margin_stays_first() {
    let d = two_units(600.0);
    let fast_eta = network::straight_eta_s(UnitKind::Car, 300.0, recommend::DETOUR_FACTOR);
    let home_eta = network::straight_eta_s(UnitKind::Car, 600.0, recommend::DETOUR_FACTOR);
    assert!(home_eta - fast_eta > 30.0);
    let r = d
        .recommend(&Target::Point(incident()), &query(2), NOW)
        .unwrap();
    let ids: Vec<_> = r.units.iter().map(|u| u.unit.profile.id.as_str()).collect();
    assert_eq!(ids, ["fast", "home"]);
    assert!(r.units.iter().all(|u| !u.reason.contains("home zone")));
    // An incident outside every zone: no preference either.
    let d = two_units(400.0);
    let r = d
        .recommend(&Target::Point(LonLat::new(24.94, 60.16)), &query(1), NOW)
        .unwrap();
    assert!(!r.units[0].reason.contains("home zone"));
}

#[test]
fn an_incident_in_the_zone_prefers_its_home_unit() {
    let mut d = two_units(400.0);
    let incident = d
        .create_incident(
            NewIncident {
                kind: "theft".into(),
                priority: Some(3),
                location: incident(),
                source: IncidentSource::Operator,
                description: String::new(),
                request_id: None,
            },
            &Actor::new("alice", "operator"),
            NOW,
        )
        .unwrap();
    let r = d
        .recommend(&Target::Incident(incident.id.clone()), &query(1), NOW)
        .unwrap();
    assert_eq!(r.units[0].unit.profile.id, "home");
}

// ----- checkpoints ------------------------------------------------------

#[test]
fn zones_memberships_and_home_zones_survive_export_and_import() {
    let mut d = two_units(400.0);
    // u1 is in kallio; u2 is half-way through its enter dwell.
    register(&mut d, "u1");
    register(&mut d, "u2");
    for s in 0..=10 {
        ping(&mut d, "u1", NOW + s * 1000, inside_by(100.0));
    }
    for s in 5..=10 {
        ping(&mut d, "u2", NOW + s * 1000, inside_by(100.0));
    }
    d.take_events();
    let state = d.export_all();
    // Through JSON, as a checkpoint stores the meta.
    let meta = serde_json::from_str(&serde_json::to_string(&state.meta).unwrap()).unwrap();
    let state = CoreState { meta, ..state };
    let mut back = Dispatcher::restore(DispatcherConfig::default(), state).unwrap();
    assert_eq!(back.zones(), d.zones());
    assert_eq!(back.unit_zones("u1").unwrap(), ["kallio"]);
    assert_eq!(back.home_zone("home").unwrap(), Some("kallio"));
    assert_eq!(back.home_zone("fast").unwrap(), Some("east"));
    assert_eq!(
        back.recommend(&Target::Point(incident()), &query(1), NOW)
            .unwrap()
            .units[0]
            .unit
            .profile
            .id,
        "home"
    );
    // u2's pending entry was kept: it enters 10 s after its first fix.
    for s in 11..=15 {
        ping(&mut back, "u2", NOW + s * 1000, inside_by(100.0));
        ping(&mut d, "u2", NOW + s * 1000, inside_by(100.0));
    }
    let (a, b) = (zone_events(&mut back), zone_events(&mut d));
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].kind, a[0].time),
        (ZoneChangeKind::Entered, NOW + 15_000)
    );
    assert_eq!(
        back.zone_index()
            .signed_distance_m("kallio", inside_by(40.0))
            .map(|m| m.round()),
        Some(40.0)
    );
}

#[test]
fn a_replaced_zone_is_checked_afresh_on_the_next_fixes() {
    let mut d = with_square();
    register(&mut d, "u1");
    // A standing unit 300 m inside: entered after the dwell (and checked
    // once more as a member).
    for s in 0..=11 {
        ping(&mut d, "u1", NOW + s * 1000, inside_by(300.0));
    }
    assert_eq!(d.unit_zones("u1").unwrap(), ["kallio"]);
    // The zone shrinks to its western half: the unit is now ~250 m
    // outside, without having moved; it leaves after the exit dwell.
    let west = r#"{"type":"Polygon","coordinates":[[[24.93,60.165],[24.94,60.165],[24.94,60.175],[24.93,60.175],[24.93,60.165]]]}"#;
    d.put_zone(
        ZoneSpec::from_geojson(west, Some("kallio"), None).unwrap(),
        NOW + 11_500,
    )
    .unwrap();
    for s in 12..=40 {
        ping(&mut d, "u1", NOW + s * 1000, inside_by(300.0));
    }
    let kinds: Vec<_> = zone_events(&mut d)
        .iter()
        .map(|e| (e.kind, e.time))
        .collect();
    assert_eq!(
        kinds,
        [
            (ZoneChangeKind::Entered, NOW + 10_000),
            (ZoneChangeKind::Put, NOW + 11_500),
            (ZoneChangeKind::Exited, NOW + 32_000)
        ]
    );
}

/// Over the Helsinki street network: the preferred home unit that the
/// ranking did not pick (k = 1) carries the same network ETA and route
/// length as when the ranking does pick it, and the margin decides.
#[test]
fn over_the_street_network_the_margin_decides_with_network_etas() {
    let target = LonLat::new(24.9414, 60.1699);
    let a_at = LonLat::new(24.9440, 60.1675);
    let b_at = LonLat::new(24.9370, 60.1660);
    let build = |prefer_margin_s: f64| {
        let mut d = Dispatcher::new(DispatcherConfig {
            network: Some(common::network()),
            zones: ZoneConfig {
                prefer_margin_s,
                ..Default::default()
            },
            ..Default::default()
        });
        let around = r#"{"type":"Polygon","coordinates":[[[24.93,60.16],[24.95,60.16],[24.95,60.175],[24.93,60.175],[24.93,60.16]]]}"#;
        d.put_zone(
            ZoneSpec::from_geojson(around, Some("centre"), None).unwrap(),
            NOW,
        )
        .unwrap();
        register(&mut d, "a");
        register(&mut d, "b");
        ping(&mut d, "a", NOW - 1000, a_at);
        ping(&mut d, "b", NOW - 1000, b_at);
        d
    };
    // Without home zones: who is faster, and by how much.
    let d = build(30.0);
    let plain = d.recommend(&Target::Point(target), &query(2), NOW).unwrap();
    assert!(
        plain
            .units
            .iter()
            .all(|u| u.eta_method == EtaMethod::Network)
    );
    let (fast, slow) = (&plain.units[0], &plain.units[1]);
    let gap = slow.eta_s - fast.eta_s;
    assert!(gap > 2.0, "the two units need distinct ETAs: {gap}");
    let slow_id = slow.unit.profile.id.clone();
    // The slower unit at home in the zone, the margin just above the gap:
    // it is preferred, with the ETA and metres the ranking gave it.
    let mut d = build(gap + 1.0);
    d.set_home_zone(&slow_id, Some("centre")).unwrap();
    let r = d.recommend(&Target::Point(target), &query(1), NOW).unwrap();
    assert_eq!(r.units.len(), 1);
    let home = &r.units[0];
    assert_eq!(home.unit.profile.id, slow_id);
    assert!(
        (home.eta_s - slow.eta_s).abs() < 1e-6,
        "{} vs {}",
        home.eta_s,
        slow.eta_s
    );
    assert_eq!(
        home.route_m.map(|m| m.round()),
        slow.route_m.map(|m| m.round())
    );
    assert_eq!(home.eta_method, EtaMethod::Network);
    assert!(
        home.reason.starts_with("home zone centre, within"),
        "{}",
        home.reason
    );
    // The margin just below the gap: the faster unit stays first.
    let mut d = build(gap - 1.0);
    d.set_home_zone(&slow_id, Some("centre")).unwrap();
    let r = d.recommend(&Target::Point(target), &query(1), NOW).unwrap();
    assert_eq!(r.units[0].unit.profile.id, fast.unit.profile.id);
}
