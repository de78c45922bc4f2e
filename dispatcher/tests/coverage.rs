//! Camera coverage of a small synthetic street map against an independent
//! computation (the streets sampled here every half metre in the map's own
//! planar metres, each camera's sector judged with plain trigonometry);
//! blind spots that no camera sees; "unit in view" events for a unit
//! walking through a camera's sector; incidents of alerts placed in the
//! camera's view; on Helsinki with its mapped fixed cameras, the shares
//! against a haversine sector test written here.

mod common;

use std::sync::Arc;

use patrol_dispatcher::*;
use patrol_roads::{
    GraphBuilder, LocalProjection, Metric, Profile, ProfileConfig, RoadGraph, WayAttributes,
    WayClass,
};

const NOW: Millis = 1_700_000_000_000;

fn origin() -> LonLat {
    LonLat::new(24.94, 60.17)
}

fn at(x: f64, y: f64) -> LonLat {
    LocalProjection::new(origin()).to_lonlat([x, y])
}

/// The map's streets in planar metres: (node keys and points, class).
/// A-M-B residential with a bend at M, B-C residential, C-D a footway (foot
/// only), D-A a motorway (cars only).
type Street = (Vec<(i64, [f64; 2])>, WayClass);

fn streets() -> Vec<Street> {
    let (a, m, b, c, d) = (
        (1, [0.0, 0.0]),
        (9, [100.0, 20.0]),
        (2, [200.0, 0.0]),
        (3, [200.0, 200.0]),
        (4, [0.0, 200.0]),
    );
    vec![
        (vec![a, m, b], WayClass::Residential),
        (vec![b, c], WayClass::Residential),
        (vec![c, d], WayClass::Footway),
        (vec![d, a], WayClass::Motorway),
    ]
}

fn graph() -> RoadGraph {
    let mut b = GraphBuilder::new(ProfileConfig::default());
    for (nodes, class) in streets() {
        b.add_way(
            nodes.iter().map(|&(k, [x, y])| (k, at(x, y))),
            WayAttributes {
                name: Some(format!("{class:?} street").into()),
                ..WayAttributes::new(class)
            },
        );
    }
    b.build()
}

/// A test camera in planar metres: where, heading, fov, range; `ptz`: a
/// continuous-pan head looking at `heading` (its reach is the whole disc).
#[derive(Clone, Copy)]
struct Cam {
    id: &'static str,
    x: f64,
    y: f64,
    heading: f64,
    fov: f64,
    range: f64,
    ptz: bool,
}

const CAMS: [Cam; 3] = [
    // looks east along A-M-B
    Cam {
        id: "east",
        x: 50.0,
        y: -10.0,
        heading: 90.0,
        fov: 60.0,
        range: 80.0,
        ptz: false,
    },
    // looks west across B-C
    Cam {
        id: "west",
        x: 230.0,
        y: 100.0,
        heading: 270.0,
        fov: 90.0,
        range: 50.0,
        ptz: false,
    },
    // at the corner D, looking north where no street is: sees none now,
    // could after turning see everything within 60 m
    Cam {
        id: "ptz",
        x: 0.0,
        y: 210.0,
        heading: 0.0,
        fov: 60.0,
        range: 60.0,
        ptz: true,
    },
];

fn camera(c: &Cam) -> Camera {
    let vfov = 34.0;
    Camera {
        id: c.id.into(),
        at: at(c.x, c.y),
        mount_height_m: 6.0,
        heading_deg: c.heading,
        fov_deg: c.fov,
        range_m: c.range,
        ptz: c.ptz,
        vertical_fov_deg: c.ptz.then_some(vfov),
        ptz_head: c.ptz.then(|| Ptz::assumed(c.heading, 6.0, c.range, vfov)),
        ..Camera::default()
    }
}

/// The independent judgement: (sees now, sees now or after turning) of the
/// planar point by one camera, by plain trigonometry.
fn judge(c: &Cam, x: f64, y: f64) -> (bool, bool) {
    let (dx, dy) = (x - c.x, y - c.y);
    let d = dx.hypot(dy);
    if d > c.range {
        return (false, false);
    }
    if c.ptz {
        // looking north at the tilt `Ptz::assumed` picks: no street point
        // lies within 30 degrees of north of it
        return (false, true);
    }
    let bearing = dx.atan2(dy).to_degrees();
    let off = ((bearing - c.heading + 540.0) % 360.0 - 180.0).abs();
    let now = off <= c.fov / 2.0;
    (now, now)
}

/// (car, foot) metres (total, now, after turning) and blind metres, the
/// streets sampled every `step` metres of their planar polylines.
fn independent(cams: &[Cam], step: f64) -> ([f64; 3], [f64; 3], f64) {
    let (mut car, mut foot, mut blind) = ([0.0; 3], [0.0; 3], 0.0);
    for (nodes, class) in streets() {
        let (by_car, by_foot) = match class {
            WayClass::Residential => (true, true),
            WayClass::Footway => (false, true),
            WayClass::Motorway => (true, false),
            _ => unreachable!(),
        };
        for leg in nodes.windows(2) {
            let ([x0, y0], [x1, y1]) = (leg[0].1, leg[1].1);
            let len = (x1 - x0).hypot(y1 - y0);
            let n = (len / step).ceil() as usize;
            let piece = len / n as f64;
            for i in 0..n {
                let t = (i as f64 + 0.5) / n as f64;
                let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
                let (mut now, mut turned) = (false, false);
                for c in cams {
                    let (a, b) = judge(c, x, y);
                    now |= a;
                    turned |= b;
                }
                for (on, acc) in [(by_car, &mut car), (by_foot, &mut foot)] {
                    if on {
                        acc[0] += piece;
                        acc[1] += if now { piece } else { 0.0 };
                        acc[2] += if turned { piece } else { 0.0 };
                    }
                }
                if !turned {
                    blind += piece;
                }
            }
        }
    }
    (car, foot, blind)
}

fn core_with(graph: RoadGraph, cams: &[Cam], alerts: AlertPolicy) -> Dispatcher {
    let network = Network::new(Arc::new(graph), NetworkSettings::default()).unwrap();
    let mut d = Dispatcher::new(DispatcherConfig {
        network: Some(network),
        alerts,
        ..DispatcherConfig::default()
    });
    for c in cams {
        d.register_camera(camera(c)).unwrap();
    }
    d
}

fn query(step_m: f64, include_segments: bool) -> CoverageQuery {
    CoverageQuery {
        bbox: None,
        include_segments,
        step_m,
    }
}

#[test]
fn the_synthetic_map_has_the_streets_the_test_assumes() {
    let g = graph();
    let (car, foot) = (Metric::normal(Profile::Car), Metric::normal(Profile::Foot));
    let mut kinds = Vec::new();
    for e in 0..g.edge_count() as u32 {
        if g.is_along_way(e) {
            let t = g.twin(e);
            kinds.push((
                g.edge_attributes(e).class,
                g.is_usable(e, car) || g.is_usable(t, car),
                g.is_usable(e, foot) || g.is_usable(t, foot),
            ));
        }
    }
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        [
            (WayClass::Footway, false, true),
            (WayClass::Motorway, true, false),
            (WayClass::Residential, true, true),
            (WayClass::Residential, true, true),
        ]
    );
}

#[test]
fn shares_agree_with_an_independent_computation() {
    let d = core_with(graph(), &CAMS, AlertPolicy::default());
    let got = d.coverage(&query(2.0, true), NOW).unwrap();
    let (car, foot, blind) = independent(&CAMS, 0.5);
    let close = |what: &str, a: f64, b: f64, tol: f64| {
        assert!((a - b).abs() <= tol, "{what}: core {a}, independent {b}");
    };
    for (name, mode, want) in [("car", got.car, car), ("foot", got.foot, foot)] {
        close(
            &format!("{name} total m"),
            mode.total_m,
            want[0],
            want[0] * 0.01,
        );
        close(
            &format!("{name} share now"),
            mode.share_now(),
            want[1] / want[0],
            0.01,
        );
        close(
            &format!("{name} share after turning"),
            mode.share_after_turning(),
            want[2] / want[0],
            0.01,
        );
        // the test's cameras are placed so every kind of coverage is partial
        assert!(mode.share_now() > 0.05 && mode.share_after_turning() < 0.95);
        assert!(mode.share_after_turning() > mode.share_now());
    }
    close("blind m", got.blind_m, blind, 8.0);
    // the blind spots add up to the blind metres, and none is seen
    let listed: f64 = got.blind_spots.iter().map(|b| b.length_m).sum();
    close("listed blind m", listed, got.blind_m, 1e-6);
    assert_eq!(got.blind_spot_count, got.blind_spots.len());
    let cameras: Vec<Camera> = CAMS.iter().map(camera).collect();
    let mut checked = 0;
    for spot in &got.blind_spots {
        assert!(spot.points.len() >= 2 && spot.name.is_some());
        assert!(spot.car || spot.foot);
        // walk the line a metre at a time, leaving out half a step at each
        // end (a run's ends lie half a step past its last unseen point)
        let mut walked = 0.0;
        for leg in spot.points.windows(2) {
            let len = leg[0].distance_m(&leg[1]);
            let mut s = 0.0;
            while s < len {
                let p = leg[0].lerp(leg[1], s / len);
                if walked + s > 1.5 && walked + s < spot.length_m - 1.5 {
                    for c in &cameras {
                        assert!(c.sight(&p).is_none(), "{} sees blind {p:?}", c.id);
                    }
                    checked += 1;
                }
                s += 1.0;
            }
            walked += len;
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn a_box_a_camera_and_the_checks() {
    let d = core_with(graph(), &CAMS[..1], AlertPolicy::default());
    let all = d.coverage(&query(5.0, false), NOW).unwrap();
    assert!(all.blind_spots.is_empty() && all.blind_spot_count > 0);
    // only the south street, x 40..160: the east camera sees most of it
    let bbox = BoundingBox {
        west: at(40.0, 0.0).lon,
        south: at(0.0, -5.0).lat,
        east: at(160.0, 0.0).lon,
        north: at(0.0, 30.0).lat,
    };
    let boxed = d
        .coverage(
            &CoverageQuery {
                bbox: Some(bbox),
                ..query(5.0, false)
            },
            NOW,
        )
        .unwrap();
    assert_eq!(boxed.foot.total_m, boxed.car.total_m, "only A-M-B");
    assert!((boxed.car.total_m - 120.0 * 1.02).abs() < 6.0, "{boxed:?}");
    assert!(boxed.car.share_now() > all.car.share_now());
    // adding a camera raises the share
    let more = core_with(graph(), &CAMS[..2], AlertPolicy::default());
    let with = more.coverage(&query(5.0, false), NOW).unwrap();
    assert!(with.car.share_now() > all.car.share_now());
    // checks name the field; no map, no coverage
    for step in [0.5, 101.0, f64::NAN] {
        match d.coverage(&query(step, false), NOW) {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "step_m"),
            other => panic!("{other:?}"),
        }
    }
    let bad = CoverageQuery {
        bbox: Some(BoundingBox {
            west: 25.0,
            south: 60.0,
            east: 24.0,
            north: 61.0,
        }),
        ..query(5.0, false)
    };
    assert!(matches!(d.coverage(&bad, NOW), Err(Error::Invalid { field, .. }) if field == "bbox"));
    let bare = Dispatcher::new(DispatcherConfig::default());
    let err = bare.coverage(&query(5.0, false), NOW).unwrap_err();
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.contains("no map loaded")),
        "{err}"
    );
}

fn walk(
    d: &mut Dispatcher,
    id: &str,
    start: Millis,
    points: impl Iterator<Item = LonLat>,
) -> Vec<UnitInView> {
    let mut out = Vec::new();
    for (i, p) in points.enumerate() {
        let time = start + i as i64 * 1_000;
        d.apply_ping(
            &Ping {
                unit_id: id,
                time,
                at: p,
                speed_mps: None,
                heading_deg: None,
                accuracy_m: None,
            },
            time,
        )
        .unwrap();
        out.extend(d.take_events().into_iter().filter_map(|e| match e {
            Event::UnitInView(v) => Some(v),
            _ => None,
        }));
    }
    out
}

#[test]
fn a_unit_walking_through_a_sector_enters_and_leaves_it_once() {
    let mut d = core_with(graph(), &CAMS, AlertPolicy::default());
    d.register_unit(
        UnitProfile {
            id: "u1".into(),
            call_sign: "F-1".into(),
            kind: UnitKind::Foot,
            capabilities: vec![],
        },
        NOW,
    )
    .unwrap();
    d.take_events();
    // along y = 5 from x = 0 to 200: in the east camera's sector from about
    // x = 76 (30 degrees off its axis) to about x = 128 (its range)
    let events = walk(
        &mut d,
        "u1",
        NOW,
        (0..=100).map(|i| at(i as f64 * 2.0, 5.0)),
    );
    let entered: Vec<_> = events.iter().filter(|e| e.entered).collect();
    let left: Vec<_> = events.iter().filter(|e| !e.entered).collect();
    assert_eq!(entered.len(), 1, "{events:?}");
    assert_eq!(left.len(), 1, "{events:?}");
    assert_eq!(
        (entered[0].camera_id.as_str(), entered[0].unit_id.as_str()),
        ("east", "u1")
    );
    assert_eq!(left[0].camera_id, "east");
    let x_in = (entered[0].time - NOW) as f64 / 1_000.0 * 2.0;
    let x_out = (left[0].time - NOW) as f64 / 1_000.0 * 2.0;
    let want_in = 50.0 + 15.0 / 30f64.to_radians().tan();
    let want_out = 50.0 + (80f64.powi(2) - 15f64.powi(2)).sqrt();
    assert!((x_in - want_in).abs() <= 3.0, "entered at x {x_in}");
    assert!((x_out - want_out).abs() <= 3.0, "left at x {x_out}");
    assert_eq!(d.units_in_view(), 0);
    // standing still in view says nothing more
    let events = walk(
        &mut d,
        "u1",
        NOW + 200_000,
        std::iter::repeat_n(at(100.0, 5.0), 3),
    );
    assert_eq!(events.len(), 1, "entered once: {events:?}");
    assert_eq!(d.units_in_view(), 1);
    // a node rebuilt from a checkpoint knows the unit is in view already
    let state = d.export_all();
    assert_eq!(
        state.meta.in_view,
        [("u1".to_string(), vec!["east".to_string()])]
    );
    let mut back = Dispatcher::restore(d.config().clone(), state).unwrap();
    assert_eq!(back.units_in_view(), 1);
    let events = walk(
        &mut back,
        "u1",
        NOW + 300_000,
        [at(102.0, 5.0), at(300.0, 5.0)].into_iter(),
    );
    assert_eq!(events.len(), 1, "only the leaving: {events:?}");
    assert!(!events[0].entered && events[0].camera_id == "east");
}

fn fight(camera_id: &str, location: Option<LonLat>) -> NewAlert {
    NewAlert {
        camera_id: camera_id.into(),
        time: None,
        label: "fight".into(),
        confidence: 0.9,
        snapshot_uri: String::new(),
        request_id: None,
        object_id: None,
        location,
    }
}

fn incident_at(d: &mut Dispatcher, alert: NewAlert) -> LonLat {
    let outcome = d
        .post_alert(alert, &Actor::new("vms", "camera_system"), NOW)
        .unwrap();
    assert!(outcome.incident_created);
    d.incident(outcome.alert.incident_id.as_deref().unwrap())
        .unwrap()
        .location
}

#[test]
fn an_alert_opens_its_incident_in_the_cameras_view() {
    let policy = AlertPolicy {
        view_distance_m: 20.0,
        ..AlertPolicy::default()
    };
    let mut d = core_with(graph(), &CAMS, policy);
    let cam = d.camera("east").unwrap().at;
    let inc = incident_at(&mut d, fight("east", None));
    assert!(
        (cam.distance_m(&inc) - 20.0).abs() < 0.2,
        "{}",
        cam.distance_m(&inc)
    );
    assert!(
        (cam.bearing_deg(&inc) - 90.0).abs() < 0.5,
        "{}",
        cam.bearing_deg(&inc)
    );
    // a distance beyond the range is cut to it
    let mut far = core_with(
        graph(),
        &CAMS,
        AlertPolicy {
            view_distance_m: 500.0,
            ..AlertPolicy::default()
        },
    );
    let west = far.camera("west").unwrap().at;
    let inc = incident_at(&mut far, fight("west", None));
    assert!((west.distance_m(&inc) - 50.0).abs() < 0.3);
    assert!((west.bearing_deg(&inc) - 270.0).abs() < 0.5);
    // the alert's own location wins
    let given = at(120.0, 5.0);
    let inc = incident_at(&mut far, fight("ptz", Some(given)));
    assert_eq!(inc, given);
    // 0: at the camera, as before
    let mut zero = core_with(
        graph(),
        &CAMS,
        AlertPolicy {
            view_distance_m: 0.0,
            ..AlertPolicy::default()
        },
    );
    assert_eq!(incident_at(&mut zero, fight("east", None)), cam);
    // a bad location names the field
    let bad = fight("east", Some(LonLat::new(200.0, 0.0)));
    match zero.post_alert(bad, &Actor::new("vms", "camera_system"), NOW) {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "location"),
        other => panic!("{other:?}"),
    }
}

/// Whether the mapped camera's sector holds `p`, by haversine distance and
/// the spherical initial bearing (written out here, not the project's).
fn mapped_sees(c: &patrol_roads::osm::MappedCamera, p: LonLat) -> bool {
    let (lat1, lat2) = (c.position.lat.to_radians(), p.lat.to_radians());
    let dlon = (p.lon - c.position.lon).to_radians();
    let dlat = lat2 - lat1;
    let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    let distance = 2.0 * 6_371_008.8 * a.sqrt().asin();
    if distance > c.range_m {
        return false;
    }
    if c.fov_deg >= 360.0 || distance < 1e-6 {
        return true;
    }
    let y = dlon.sin() * lat2.cos();
    let x = lat1.cos() * lat2.sin() - lat1.sin() * lat2.cos() * dlon.cos();
    let bearing = y.atan2(x).to_degrees().rem_euclid(360.0);
    let off = (bearing - c.heading_deg + 540.0).rem_euclid(360.0) - 180.0;
    off.abs() <= c.fov_deg / 2.0
}

#[test]
fn helsinki_shares_agree_with_a_haversine_sector_test() {
    let cameras: Vec<_> = common::mapped_cameras().iter().filter(|c| !c.ptz).collect();
    assert!(cameras.len() > 50);
    let mut d = Dispatcher::new(DispatcherConfig {
        network: Some(common::network()),
        ..DispatcherConfig::default()
    });
    for c in &cameras {
        d.register_camera(Camera {
            id: c.id.clone(),
            name: c.name.clone(),
            at: c.position,
            mount_height_m: c.mount_height_m,
            heading_deg: c.heading_deg,
            fov_deg: c.fov_deg,
            range_m: c.range_m,
            ..Camera::default()
        })
        .unwrap();
    }
    let step = 5.0;
    let started = std::time::Instant::now();
    let got = d.coverage(&query(step, true), NOW).unwrap();
    eprintln!(
        "Helsinki coverage at {step} m: {} points in {:?}",
        got.samples,
        started.elapsed()
    );
    // the same pieces, judged by the sector test above
    let g = common::graph();
    let (car_m, foot_m) = (Metric::normal(Profile::Car), Metric::normal(Profile::Foot));
    let (mut car, mut foot) = ([0.0f64; 2], [0.0f64; 2]);
    for e in 0..g.edge_count() as u32 {
        if !g.is_along_way(e) {
            continue;
        }
        let t = g.twin(e);
        let by_car = g.is_usable(e, car_m) || g.is_usable(t, car_m);
        let by_foot = g.is_usable(e, foot_m) || g.is_usable(t, foot_m);
        let len = g.edge_length_m(e);
        let n = ((len / step).ceil() as usize).max(1);
        let piece = len / n as f64;
        for i in 0..n {
            let p = g.point_along(e, (i as f64 + 0.5) * piece);
            let seen = cameras.iter().any(|c| mapped_sees(c, p));
            for (on, acc) in [(by_car, &mut car), (by_foot, &mut foot)] {
                if on {
                    acc[0] += piece;
                    acc[1] += if seen { piece } else { 0.0 };
                }
            }
        }
    }
    for (name, mode, want) in [("car", got.car, car), ("foot", got.foot, foot)] {
        assert!((mode.total_m - want[0]).abs() < 1e-6 * want[0], "{name}");
        let share = want[1] / want[0];
        eprintln!(
            "{name}: {:.0} m, share now {:.4} (independent {share:.4})",
            mode.total_m,
            mode.share_now()
        );
        assert!(share > 0.01 && share < 0.99, "{name}: {share}");
        assert!(
            (mode.share_now() - share).abs() < 0.005,
            "{name}: {mode:?} vs {share}"
        );
        // fixed cameras only: turning adds nothing
        assert_eq!(mode.seen_now_m, mode.seen_after_turning_m);
    }
    assert!(got.blind_spot_count > 0 && got.blind_spots.len() == got.blind_spot_count);
}
