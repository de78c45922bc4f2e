//! Cameras against independent oracles: visibility against a point-in-polygon
//! test on sectors built here from plain trigonometry, aim bearings against
//! geographiclib's geodesic (through `geo`), tilt against plain
//! trigonometry, the index against a brute-force scan, `along` against
//! sampling the path with `seeing`; plus pan limits, wrap-around, health and
//! checkpoints.

use geo::{Bearing, Contains, Coord, Distance, Geodesic, LineString, Point, Polygon};
use patrol_dispatcher::cameras::angle_diff;
use patrol_dispatcher::persist::CoreState;
use patrol_dispatcher::*;
use proptest::prelude::*;

const NOW: Millis = 50_000_000;

// ----- an independent local plane ------------------------------------------

/// East and north metres of `p` from `origin` by the Gauss mid-latitude
/// formulas on WGS84 (no Earth-centred vectors, nothing from the crate).
fn local_xy(origin: LonLat, p: LonLat) -> (f64, f64) {
    let a = 6_378_137.0;
    let f = 1.0 / 298.257_223_563;
    let e2 = f * (2.0 - f);
    let mid = ((origin.lat + p.lat) / 2.0).to_radians();
    let w = 1.0 - e2 * mid.sin().powi(2);
    let n = a / w.sqrt();
    let m = a * (1.0 - e2) / w.powf(1.5);
    let mut dlon = p.lon - origin.lon;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let (dlon, dlat) = (dlon.to_radians(), (p.lat - origin.lat).to_radians());
    let (x, y) = (dlon * n * mid.cos(), dlat * m);
    // the azimuth at the midpoint, turned back by half the meridian convergence
    let (d, az_mid) = (x.hypot(y), x.atan2(y));
    let az = az_mid - dlon * mid.sin() / 2.0;
    (d * az.sin(), d * az.cos())
}

/// An annular sector in the local plane: bearing `centre ± half` (all round
/// when half >= 180), distance near..=far.
#[derive(Debug, Clone, Copy)]
struct Sector {
    centre: f64,
    half: f64,
    near: f64,
    far: f64,
}

impl Sector {
    /// A polygon (with a hole for a full ring) whose arcs circumscribe the
    /// circles, from plain trigonometry.
    fn polygon(&self) -> Option<Polygon<f64>> {
        if self.near > self.far {
            return None;
        }
        let full = self.half >= 180.0;
        let (from, width) = if full {
            (0.0, 360.0)
        } else {
            (self.centre - self.half, 2.0 * self.half)
        };
        let steps = ((width * 4.0).ceil() as usize).max(8);
        let step = (width / steps as f64).to_radians();
        let arc = |r: f64, outer: bool| -> Vec<Coord<f64>> {
            // outer arcs pushed out, inner pulled in: never cut the sector
            let r = if outer { r / (step / 2.0).cos() } else { r };
            (0..=steps)
                .map(|i| {
                    let t = (from + width * i as f64 / steps as f64).to_radians();
                    Coord {
                        x: r * t.sin(),
                        y: r * t.cos(),
                    }
                })
                .collect()
        };
        let mut ring = arc(self.far, true);
        let mut holes = vec![];
        if full {
            if self.near > 0.0 {
                holes.push(LineString::new(arc(self.near, false)));
            }
        } else if self.near > 0.0 {
            ring.extend(arc(self.near, false).into_iter().rev());
        } else {
            ring.push(Coord { x: 0.0, y: 0.0 });
        }
        Some(Polygon::new(LineString::new(ring), holes))
    }

    /// Whether (x, y) lies within `tol_m` metres or `tol_deg` degrees of an
    /// edge, where rounding may decide either way.
    fn near_edge(&self, x: f64, y: f64, tol_m: f64, tol_deg: f64) -> bool {
        let d = x.hypot(y);
        let b = x.atan2(y).to_degrees();
        (d - self.far).abs() < tol_m
            || (self.near > 0.0 && (d - self.near).abs() < tol_m)
            || d < tol_m
            || (self.half < 180.0 && (angle_diff(b, self.centre).abs() - self.half).abs() < tol_deg)
    }
}

/// Near and far ground distances seen between depressions lo..=hi from
/// `h` metres up.
fn band(h: f64, range: f64, lo: f64, hi: f64) -> (f64, f64) {
    let far = if lo <= 0.0 {
        range
    } else {
        (h / lo.to_radians().tan()).min(range)
    };
    let near = if hi >= 90.0 {
        0.0
    } else if hi <= 0.0 {
        f64::INFINITY
    } else {
        h / hi.to_radians().tan()
    };
    (near, far)
}

fn view_sector(c: &Camera) -> Sector {
    let (near, far) = match &c.ptz_head {
        Some(head) => {
            let v = c.vertical_fov_deg.unwrap();
            band(
                c.mount_height_m,
                c.range_m,
                head.pose.tilt_deg - v / 2.0,
                head.pose.tilt_deg + v / 2.0,
            )
        }
        None => (0.0, c.range_m),
    };
    Sector {
        centre: c.heading_deg,
        half: c.fov_deg / 2.0,
        near,
        far,
    }
}

fn reach_sector(c: &Camera) -> Sector {
    let Some(head) = &c.ptz_head else {
        return view_sector(c);
    };
    let v = c.vertical_fov_deg.unwrap();
    let (near, far) = band(
        c.mount_height_m,
        c.range_m,
        head.tilt_min_deg - v / 2.0,
        head.tilt_max_deg + v / 2.0,
    );
    Sector {
        centre: head.zero_pan_azimuth_deg + (head.pan_min_deg + head.pan_max_deg) / 2.0,
        half: (head.pan_max_deg - head.pan_min_deg) / 2.0 + c.fov_deg / 2.0,
        near,
        far,
    }
}

// ----- random cameras ------------------------------------------------------

#[derive(Debug, Clone)]
struct HeadSpec {
    zero: f64,
    pan_min: f64,
    span: f64,
    tilt_min: f64,
    tilt_span: f64,
    pan_frac: f64,
    tilt_frac: f64,
}

#[derive(Debug, Clone)]
struct CamSpec {
    at: (f64, f64),
    height: f64,
    heading: f64,
    fov: f64,
    vfov: f64,
    range: f64,
    head: Option<HeadSpec>,
}

fn head_strategy() -> impl Strategy<Value = HeadSpec> {
    (
        0.0f64..360.0,
        -360.0f64..180.0,
        prop_oneof![2 => 0.0f64..360.0, 1 => Just(360.0), 1 => Just(0.0)],
        -30.0f64..60.0,
        0.0f64..120.0,
        0.0f64..=1.0,
        0.0f64..=1.0,
    )
        .prop_map(
            |(zero, pan_min, span, tilt_min, tilt_span, pan_frac, tilt_frac)| HeadSpec {
                zero,
                pan_min,
                span,
                tilt_min,
                tilt_span: tilt_span.min(90.0 - tilt_min),
                pan_frac,
                tilt_frac,
            },
        )
}

fn cam_strategy(lat: std::ops::Range<f64>) -> impl Strategy<Value = CamSpec> {
    (
        (-179.0f64..179.0, lat),
        0.0f64..40.0,
        0.0f64..360.0,
        prop_oneof![4 => 5.0f64..180.0, 1 => 180.0f64..360.0, 1 => Just(360.0)],
        5.0f64..120.0,
        5.0f64..500.0,
        prop::option::weighted(0.5, head_strategy()),
    )
        .prop_map(|(at, height, heading, fov, vfov, range, head)| CamSpec {
            at,
            height,
            heading,
            fov,
            vfov,
            range,
            head,
        })
}

impl CamSpec {
    fn camera(&self, id: &str) -> Camera {
        let head = self.head.as_ref().map(|h| {
            let pan_max = (h.pan_min + h.span).min(360.0);
            Ptz {
                zero_pan_azimuth_deg: h.zero,
                pan_min_deg: h.pan_min,
                pan_max_deg: pan_max,
                tilt_min_deg: h.tilt_min,
                tilt_max_deg: h.tilt_min + h.tilt_span,
                pose: PtzPose {
                    pan_deg: h.pan_min + (pan_max - h.pan_min) * h.pan_frac,
                    tilt_deg: h.tilt_min + h.tilt_span * h.tilt_frac,
                    zoom: 0.0,
                },
            }
        });
        Camera {
            id: id.into(),
            at: LonLat::new(self.at.0, self.at.1),
            mount_height_m: self.height,
            heading_deg: self.heading,
            fov_deg: self.fov,
            range_m: self.range,
            ptz: head.is_some(),
            vertical_fov_deg: Some(self.vfov),
            ptz_head: head,
            ..Camera::default()
        }
        .validated()
        .unwrap()
    }
}

/// Points around `at` out to 1.3 x `range`, by bearing and distance.
fn points_strategy() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((0.0f64..360.0, 0.0f64..1.3), 150)
}

// ----- visibility -----------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn visibility_agrees_with_point_in_polygon(
        spec in cam_strategy(-75.0..75.0),
        points in points_strategy(),
    ) {
        let cam = spec.camera("c");
        let (view, reach) = (view_sector(&cam), reach_sector(&cam));
        let (view_poly, reach_poly) = (view.polygon(), reach.polygon());
        // the crate's own map polygons, measured in the independent plane
        let drawn = |ring: Vec<LonLat>| -> Option<Polygon<f64>> {
            (!ring.is_empty()).then(|| {
                Polygon::new(
                    LineString::new(
                        ring.iter()
                            .map(|p| {
                                let (x, y) = local_xy(cam.at, *p);
                                Coord { x, y }
                            })
                            .collect(),
                    ),
                    vec![],
                )
            })
        };
        let sector_drawn = drawn(cam.sector(720));
        let tol_m = 0.05 + cam.range_m * 1e-4;
        for (bearing, frac) in points {
            let p = cam.at.destination(bearing, frac * cam.range_m);
            let (x, y) = local_xy(cam.at, p);
            let sight = cam.sight(&p);
            let sees_now = sight.as_ref().is_some_and(|s| s.sees_now);
            let reachable = sight.is_some();
            if !view.near_edge(x, y, tol_m, 0.02) {
                let inside = view_poly.as_ref().is_some_and(|poly| poly.contains(&Point::new(x, y)));
                prop_assert_eq!(sees_now, inside, "view at ({}, {}) of {:?}", x, y, cam);
                let on_map = sector_drawn.as_ref().is_some_and(|poly| poly.contains(&Point::new(x, y)));
                // the keyhole ring of a full-circle annulus is drawn as a
                // zero-width cut: skip points on it
                if !(view.half >= 180.0 && view.near > 0.0) {
                    prop_assert_eq!(sees_now, on_map, "sector() at ({}, {}) of {:?}", x, y, cam);
                }
            }
            if cam.ptz_head.is_some() && !reach.near_edge(x, y, tol_m, 0.02) {
                let inside = reach_poly.as_ref().is_some_and(|poly| poly.contains(&Point::new(x, y)));
                prop_assert_eq!(reachable, inside, "reach at ({}, {}) of {:?}", x, y, cam);
            }
            if cam.ptz_head.is_none() {
                prop_assert!(sight.as_ref().is_none_or(|s| s.after_turn.is_none()));
            }
            // turning as told brings the point into view
            if let Some(turn) = sight.as_ref().and_then(|s| s.after_turn) {
                let s = sight.as_ref().unwrap();
                prop_assert!(!s.sees_now);
                let head = cam.ptz_head.unwrap();
                prop_assert!(turn.pan_deg >= head.pan_min_deg - 1e-9 && turn.pan_deg <= head.pan_max_deg + 1e-9);
                prop_assert!(turn.tilt_deg >= head.tilt_min_deg && turn.tilt_deg <= head.tilt_max_deg);
                let off = angle_diff(s.bearing_deg, turn.heading_deg).abs();
                prop_assert!(off <= cam.fov_deg / 2.0 + 1e-6, "{off} off after {turn:?}");
                let depression = cam.mount_height_m.atan2(s.distance_m).to_degrees();
                let v = cam.vertical_fov_deg.unwrap();
                prop_assert!((depression - turn.tilt_deg).abs() <= v / 2.0 + 1e-6);
            }
        }
    }

    #[test]
    fn aim_bearings_match_the_geodesic_and_tilt_plain_trigonometry(
        spec in cam_strategy(-80.0..80.0),
        bearing in 0.0f64..360.0,
        distance in 1.0f64..10_000.0,
        target_height in 0.0f64..3.0,
    ) {
        let cam = spec.camera("c");
        let target = cam.at.destination(bearing, distance);
        let aim = cam.aim(&target, target_height);
        let (from, to) = (Point::new(cam.at.lon, cam.at.lat), Point::new(target.lon, target.lat));
        let geodesic = Geodesic.bearing(from, to);
        prop_assert!(angle_diff(aim.bearing_deg, geodesic).abs() < 0.1,
            "bearing {} vs geodesic {}", aim.bearing_deg, geodesic);
        // in fact far closer: the local frame is exact up to curvature terms
        prop_assert!(angle_diff(aim.bearing_deg, geodesic).abs() < 0.002,
            "bearing {} vs geodesic {}", aim.bearing_deg, geodesic);
        let ground = Geodesic.distance(from, to);
        prop_assert!((aim.distance_m - ground).abs() < 0.01 + ground * 1e-6,
            "{} vs {}", aim.distance_m, ground);
        let tilt = ((cam.mount_height_m - target_height) / ground).atan().to_degrees();
        prop_assert!((aim.tilt_deg - tilt).abs() < 0.01, "tilt {} vs {}", aim.tilt_deg, tilt);
        let slant = ground.hypot(cam.mount_height_m - target_height);
        prop_assert!((aim.slant_m - slant).abs() < 0.02);
        prop_assert_eq!(aim.within_range, aim.distance_m <= cam.range_m);
        if let Some(head) = cam.ptz_head {
            let pose = aim.pose.unwrap();
            let onvif = aim.onvif.unwrap();
            // the pan that centres it, relative to zero pan
            let relative = angle_diff(geodesic, head.zero_pan_azimuth_deg);
            prop_assert!(angle_diff(aim.pan_relative_deg, relative).abs() < 0.002);
            if aim.within_pan {
                prop_assert!(aim.pan_relative_deg >= head.pan_min_deg && aim.pan_relative_deg <= head.pan_max_deg);
                prop_assert!((pose.pan_deg - aim.pan_relative_deg).abs() < 1e-9);
            }
            prop_assert!(pose.pan_deg >= head.pan_min_deg && pose.pan_deg <= head.pan_max_deg);
            if tilt > head.tilt_min_deg + 0.01 && tilt < head.tilt_max_deg - 0.01 {
                prop_assert!(aim.within_tilt);
            }
            if tilt < head.tilt_min_deg - 0.01 || tilt > head.tilt_max_deg + 0.01 {
                prop_assert!(!aim.within_tilt);
            }
            prop_assert!(onvif.pan_deg > -180.0 && onvif.pan_deg <= 180.0);
            prop_assert!(angle_diff(onvif.pan_deg, pose.pan_deg).abs() < 1e-9);
            prop_assert_eq!(onvif.tilt_deg, -pose.tilt_deg);
            prop_assert!((-1.0..=1.0).contains(&onvif.generic_pan));
            prop_assert!((-1.0..=1.0).contains(&onvif.generic_tilt));
            // the pose the aim gives is one the camera accepts
            let mut turned = cam.clone();
            turned.ptz_head.as_mut().unwrap().pose = pose;
            prop_assert!(turned.validated().is_ok());
        } else {
            prop_assert!(aim.pose.is_none() && aim.onvif.is_none());
            let off = angle_diff(geodesic, cam.heading_deg).abs();
            if (off - cam.fov_deg / 2.0).abs() > 0.01 {
                prop_assert_eq!(aim.within_pan, off < cam.fov_deg / 2.0);
            }
        }
    }
}

// ----- the index against brute force ---------------------------------------

#[derive(Debug, Clone)]
enum Change {
    /// Move camera i to a new spot (and range).
    Move(usize, (f64, f64), f64),
    /// Turn camera i (a PTZ) to fractions of its ranges.
    Turn(usize, f64, f64),
    /// Report camera i alive at this age (ms before NOW).
    Seen(usize, i64),
}

fn change_strategy() -> impl Strategy<Value = Change> {
    prop_oneof![
        (
            0usize..40,
            (24.93f64..24.97, 60.16f64..60.18),
            5.0f64..400.0
        )
            .prop_map(|(i, at, r)| Change::Move(i, at, r)),
        (0usize..40, 0.0f64..=1.0, 0.0f64..=1.0).prop_map(|(i, p, t)| Change::Turn(i, p, t)),
        (0usize..40, 0i64..600_000).prop_map(|(i, age)| Change::Seen(i, age)),
    ]
}

/// The ranking as documented on `CameraIndex::seeing`, from the sight and
/// the camera alone.
fn documented_key(s: &CameraSight, cam: &Camera, slot: usize) -> (bool, f64, f64, usize) {
    let depth = s.distance_m / cam.range_m;
    let score = if s.sees_now {
        s.off_axis_deg.abs() / (cam.fov_deg / 2.0) + depth
    } else {
        s.off_axis_deg.abs() / 180.0 + depth
    };
    (!s.sees_now, score, s.distance_m, slot)
}

fn key_cmp(a: &(bool, f64, f64, usize), b: &(bool, f64, f64, usize)) -> std::cmp::Ordering {
    a.0.cmp(&b.0)
        .then(a.1.total_cmp(&b.1))
        .then(a.2.total_cmp(&b.2))
        .then(a.3.cmp(&b.3))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_index_agrees_with_a_brute_force_scan(
        specs in prop::collection::vec(cam_strategy(60.16..60.18), 1..40),
        changes in prop::collection::vec(change_strategy(), 0..30),
        queries in prop::collection::vec((24.93f64..24.97, 60.16f64..60.18), 30),
        limit in 1usize..12,
    ) {
        let mut d = Dispatcher::new(DispatcherConfig::default());
        for (i, spec) in specs.iter().enumerate() {
            let mut spec = spec.clone();
            // pack them into central Helsinki
            spec.at.0 = 24.93 + (spec.at.0 + 179.0) / 358.0 * 0.04;
            d.register_camera(spec.camera(&format!("c{i}"))).unwrap();
        }
        for change in &changes {
            match *change {
                Change::Move(i, (lon, lat), range) if i < specs.len() => {
                    let mut cam = d.camera(&format!("c{i}")).unwrap().clone();
                    cam.at = LonLat::new(lon, lat);
                    cam.range_m = range;
                    d.register_camera(cam).unwrap();
                }
                Change::Turn(i, p, t) if i < specs.len() => {
                    let cam = d.camera(&format!("c{i}")).unwrap().clone();
                    match cam.ptz_head {
                        Some(head) => {
                            let pose = PtzPose {
                                pan_deg: head.pan_min_deg + (head.pan_max_deg - head.pan_min_deg) * p,
                                tilt_deg: head.tilt_min_deg + (head.tilt_max_deg - head.tilt_min_deg) * t,
                                zoom: 0.3,
                            };
                            if !cam.is_online(NOW, d.config().cameras.offline_after_ms) {
                                prop_assert!(d.set_camera_pose(&cam.id, pose, NOW).is_err());
                                continue;
                            }
                            let turned = d.set_camera_pose(&cam.id, pose, NOW).unwrap();
                            prop_assert!((turned.heading_deg - (head.zero_pan_azimuth_deg + turned.ptz_head.unwrap().pose.pan_deg).rem_euclid(360.0)).abs() < 1e-9);
                        }
                        None => prop_assert!(d.set_camera_pose(&cam.id, PtzPose::default(), NOW).is_err()),
                    }
                }
                Change::Seen(i, age) if i < specs.len() => {
                    d.touch_camera(&format!("c{i}"), NOW - age, NOW).unwrap();
                }
                _ => {}
            }
        }
        let after = d.config().cameras.offline_after_ms;
        for (lon, lat) in queries {
            let target = LonLat::new(lon, lat);
            let mut brute: Vec<((bool, f64, f64, usize), CameraSight)> = d
                .camera_index()
                .in_slot_order()
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_online(NOW, after))
                .filter_map(|(slot, c)| c.sight(&target).map(|s| (documented_key(&s, c, slot), s)))
                .collect();
            brute.sort_by(|a, b| key_cmp(&a.0, &b.0));
            let expected: Vec<CameraSight> = brute.into_iter().map(|(_, s)| s).take(limit).collect();
            let got = d.cameras_seeing(target, NOW, limit).unwrap();
            prop_assert_eq!(&got, &expected);
            let aims = d.aim_cameras(target, None, NOW, limit).unwrap();
            prop_assert_eq!(aims.iter().map(|a| &a.sight).collect::<Vec<_>>(), expected.iter().collect::<Vec<_>>());
            for a in &aims {
                let cam = d.camera(&a.sight.camera_id).unwrap();
                prop_assert_eq!(a.aim, cam.aim(&target, 1.5));
            }
        }
        // a rebuilt node answers alike
        let restored = Dispatcher::restore(DispatcherConfig::default(), d.export_all()).unwrap();
        for (lon, lat) in [(24.95, 60.17), (24.94, 60.165), (24.96, 60.175)] {
            let target = LonLat::new(lon, lat);
            prop_assert_eq!(
                restored.cameras_seeing(target, NOW, 50).unwrap(),
                d.cameras_seeing(target, NOW, 50).unwrap()
            );
        }
    }
}

// ----- along a path ----------------------------------------------------------

/// The point a fraction `f` of the way from `a` to `b` along the great
/// circle (the spherical interpolation formula, plain trigonometry).
fn between(a: LonLat, b: LonLat, f: f64) -> LonLat {
    let (p1, l1, p2, l2) = (
        a.lat.to_radians(),
        a.lon.to_radians(),
        b.lat.to_radians(),
        b.lon.to_radians(),
    );
    let delta = 2.0
        * (((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * ((l2 - l1) / 2.0).sin().powi(2))
            .sqrt()
            .asin();
    if delta == 0.0 {
        return a;
    }
    let (wa, wb) = (
        ((1.0 - f) * delta).sin() / delta.sin(),
        (f * delta).sin() / delta.sin(),
    );
    let x = wa * p1.cos() * l1.cos() + wb * p2.cos() * l2.cos();
    let y = wa * p1.cos() * l1.sin() + wb * p2.cos() * l2.sin();
    let z = wa * p1.sin() + wb * p2.sin();
    LonLat::new(y.atan2(x).to_degrees(), z.atan2(x.hypot(y)).to_degrees())
}

/// Points every `step_m` metres along the path (great circles between its
/// points), with their along-path metres.
fn samples(path: &[LonLat], step_m: f64) -> Vec<(f64, LonLat)> {
    let mut out = vec![(0.0, path[0])];
    let mut base = 0.0;
    for pair in path.windows(2) {
        let len = pair[0].distance_m(&pair[1]);
        let n = (len / step_m).ceil().max(1.0) as usize;
        for i in 1..=n {
            let f = i as f64 / n as f64;
            out.push((base + len * f, between(pair[0], pair[1], f)));
        }
        base += len;
    }
    out
}

/// The point `m` metres along the path (clamped to its ends).
fn point_at(path: &[LonLat], m: f64) -> LonLat {
    let mut base = 0.0;
    for pair in path.windows(2) {
        let len = pair[0].distance_m(&pair[1]);
        if m <= base + len {
            return between(pair[0], pair[1], ((m - base) / len).clamp(0.0, 1.0));
        }
        base += len;
    }
    *path.last().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn along_agrees_with_sampling_the_path(
        specs in prop::collection::vec(cam_strategy(60.16..60.18), 1..25),
        path in prop::collection::vec((24.935f64..24.965, 60.163f64..60.177), 1..6),
    ) {
        let mut d = Dispatcher::new(DispatcherConfig::default());
        for (i, spec) in specs.iter().enumerate() {
            let mut spec = spec.clone();
            spec.at.0 = 24.93 + (spec.at.0 + 179.0) / 358.0 * 0.04;
            spec.range = spec.range.min(250.0);
            d.register_camera(spec.camera(&format!("c{i}"))).unwrap();
        }
        let path: Vec<LonLat> = path.into_iter().map(|(lon, lat)| LonLat::new(lon, lat)).collect();
        let along = d.cameras_along(&path, 0.0, NOW, 1000).unwrap();
        // ordered by first sight
        for pair in along.windows(2) {
            prop_assert!(pair[0].along_m <= pair[1].along_m);
        }
        let first = |id: &str| along.iter().find(|s| s.sight.camera_id == id);
        for (m, p) in samples(&path, 1.0) {
            for s in d.cameras_seeing(p, NOW, 1000).unwrap() {
                let found = first(&s.camera_id);
                prop_assert!(found.is_some(), "{} sees {:?} at {} m but along misses it", s.camera_id, p, m);
                let found = found.unwrap();
                prop_assert!(found.along_m <= m + 0.01, "{} seen at {} m, along says {}", s.camera_id, m, found.along_m);
                if s.sees_now {
                    prop_assert!(found.now_along_m.is_some_and(|n| n <= m + 0.01),
                        "{} sees {} m now, along says {:?}", s.camera_id, m, found.now_along_m);
                }
            }
        }
        // and each first sight is a real one: the path is in view there, to
        // within a few centimetres
        for s in &along {
            let cam = d.camera(&s.sight.camera_id).unwrap();
            let seen = [0.0, 0.01, -0.01, 0.02, 0.05]
                .iter()
                .any(|delta| cam.sight(&point_at(&path, s.along_m + delta)).is_some());
            prop_assert!(seen, "{:?} is not seen where along says", s);
            prop_assert!(s.now_along_m.is_none_or(|n| n >= s.along_m));
        }
        // the corridor only adds, and never later
        let wide = d.cameras_along(&path, 20.0, NOW, 1000).unwrap();
        for s in &along {
            let w = wide.iter().find(|w| w.sight.camera_id == s.sight.camera_id);
            prop_assert!(w.is_some_and(|w| w.along_m <= s.along_m + 1e-6));
        }
        // a walk cut short by a limit gives the same first cameras
        for limit in [1, 2, 5] {
            for (corridor, all) in [(0.0, &along), (20.0, &wide)] {
                let part = d.cameras_along(&path, corridor, NOW, limit).unwrap();
                prop_assert_eq!(&part[..], &all[..limit.min(all.len())]);
            }
        }
    }
}

// ----- worked cases ----------------------------------------------------------

/// The point `m` metres from `p` along the WGS84 geodesic at `bearing`
/// (geographiclib, through `geo`).
fn dest(p: LonLat, bearing: f64, m: f64) -> LonLat {
    use geo::Destination;
    let q = Geodesic.destination(Point::new(p.lon, p.lat), bearing, m);
    LonLat::new(q.x(), q.y())
}

fn square() -> LonLat {
    LonLat::new(24.9458, 60.1699)
}

fn fixed(id: &str, at: LonLat, heading: f64, fov: f64, range: f64) -> Camera {
    Camera {
        id: id.into(),
        at,
        mount_height_m: 5.0,
        heading_deg: heading,
        fov_deg: fov,
        range_m: range,
        ..Camera::default()
    }
}

fn ptz(id: &str, at: LonLat, zero: f64, pan: (f64, f64), pose_pan: f64) -> Camera {
    Camera {
        id: id.into(),
        at,
        mount_height_m: 10.0,
        fov_deg: 40.0,
        range_m: 200.0,
        ptz: true,
        ptz_head: Some(Ptz {
            zero_pan_azimuth_deg: zero,
            pan_min_deg: pan.0,
            pan_max_deg: pan.1,
            tilt_min_deg: 0.0,
            tilt_max_deg: 90.0,
            pose: PtzPose {
                pan_deg: pose_pan,
                tilt_deg: 10.0,
                zoom: 0.0,
            },
        }),
        ..Camera::default()
    }
}

#[test]
fn a_pan_range_across_the_back_of_the_head() {
    let mut d = Dispatcher::new(DispatcherConfig::default());
    // zero pan due north; it pans 90..270: east, south, west, never north
    let (cam, _) = d
        .register_camera(ptz("back", square(), 0.0, (90.0, 270.0), 100.0))
        .unwrap();
    assert!((cam.heading_deg - 100.0).abs() < 1e-9);
    let south = dest(square(), 180.0, 100.0);
    let sight = &d.cameras_seeing(south, NOW, 5).unwrap()[0];
    assert!(!sight.sees_now);
    let turn = sight.after_turn.unwrap();
    assert!((turn.pan_deg - 180.0).abs() < 0.01, "{turn:?}");
    // a bearing of 200 is pan 200: inside, though past +-180
    let aim = d
        .aim_camera("back", dest(square(), 200.0, 100.0), None, NOW)
        .unwrap();
    assert!(aim.within_pan && (aim.pan_relative_deg - 200.0).abs() < 0.01);
    let onvif = aim.onvif.unwrap();
    assert!(
        (onvif.pan_deg + 160.0).abs() < 0.01,
        "ONVIF pan is -180..180"
    );
    assert!((onvif.generic_pan - (2.0 * 110.0 / 180.0 - 1.0)).abs() < 1e-3);
    // due north (pan 0 or 360) is 90 beyond either limit: out of reach
    // even with half the 40-degree view
    let north = dest(square(), 0.0, 100.0);
    assert!(d.cameras_seeing(north, NOW, 5).unwrap().is_empty());
    let aim = d.aim_camera("back", north, None, NOW).unwrap();
    assert!(!aim.within_pan);
    // bearing 290 is 20 past 270: in view once panned to the limit
    let past = dest(square(), 285.0, 100.0);
    let turn = d.cameras_seeing(past, NOW, 5).unwrap()[0]
        .after_turn
        .unwrap();
    assert!((turn.pan_deg - 270.0).abs() < 1e-9);
}

#[test]
fn a_continuous_pan_reaches_every_bearing() {
    let mut d = Dispatcher::new(DispatcherConfig::default());
    d.register_camera(ptz("round", square(), 45.0, (-180.0, 180.0), 0.0))
        .unwrap();
    for bearing in (0..360).step_by(15) {
        let p = dest(square(), bearing as f64, 120.0);
        let sights = d.cameras_seeing(p, NOW, 5).unwrap();
        assert_eq!(sights.len(), 1, "bearing {bearing}");
        let s = &sights[0];
        if let Some(turn) = s.after_turn {
            assert!((-180.0..180.0).contains(&turn.pan_deg));
            assert!(angle_diff(turn.heading_deg, bearing as f64).abs() < 0.01);
        } else {
            assert!(s.sees_now && angle_diff(bearing as f64, 45.0).abs() <= 20.01);
        }
    }
    // a pose of 540 is accepted as -180
    let cam = d
        .set_camera_pose(
            "round",
            PtzPose {
                pan_deg: 540.0,
                tilt_deg: 10.0,
                zoom: 1.0,
            },
            NOW,
        )
        .unwrap();
    assert_eq!(cam.ptz_head.unwrap().pose.pan_deg, -180.0);
    assert!((cam.heading_deg - 225.0).abs() < 1e-9);
}

#[test]
fn a_pose_changes_what_a_camera_sees_and_leaves_an_event() {
    let mut d = Dispatcher::new(DispatcherConfig::default());
    d.register_camera(ptz("dome", square(), 0.0, (-170.0, 170.0), 0.0))
        .unwrap();
    d.take_events();
    let east = dest(square(), 90.0, 80.0);
    assert!(!d.cameras_seeing(east, NOW, 5).unwrap()[0].sees_now);
    let aim = d.aim_camera("dome", east, None, NOW).unwrap();
    let cam = d.set_camera_pose("dome", aim.pose.unwrap(), NOW).unwrap();
    assert!(matches!(&d.take_events()[..], [Event::Camera(c)] if *c == cam));
    let now = &d.cameras_seeing(east, NOW, 5).unwrap()[0];
    assert!(now.sees_now && now.off_axis_deg.abs() < 1e-6, "{now:?}");
    // refusals name the field and leave no event
    let err = d
        .set_camera_pose(
            "dome",
            PtzPose {
                pan_deg: 0.0,
                tilt_deg: 95.0,
                zoom: 0.0,
            },
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "pose.tilt_deg"),
        "{err}"
    );
    assert!(!d.has_events());
    assert!(matches!(
        d.set_camera_pose("nope", PtzPose::default(), NOW),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn an_aim_at_an_incident_is_on_its_trail_with_who_aimed() {
    let mut d = Dispatcher::new(DispatcherConfig::default());
    d.register_camera(ptz("dome", square(), 0.0, (-170.0, 170.0), 0.0))
        .unwrap();
    d.register_camera(fixed("wall", square(), 0.0, 60.0, 150.0))
        .unwrap();
    let east = dest(square(), 90.0, 80.0);
    let alice = Actor::new("alice", "operator").with_node("node-a");
    let inc = d
        .create_incident(
            NewIncident {
                kind: "theft".into(),
                priority: Some(2),
                location: east,
                source: IncidentSource::Call,
                description: String::new(),
                request_id: None,
            },
            &alice,
            NOW,
        )
        .unwrap();
    let trail = inc.audit.len();
    d.take_events();
    let target = Target::Incident(inc.id.clone());
    let both = ["dome".to_string(), "wall".to_string()];
    // a dry run changes nothing, on the trail or elsewhere
    let (point, aims) = d
        .aim_cameras_at_target(&target, None, &both, 5, true, &alice, NOW + 1)
        .unwrap();
    assert_eq!(point, east);
    assert!(aims.iter().all(|(_, _, turned)| !turned), "{aims:?}");
    assert_eq!(d.incident(&inc.id).unwrap().audit.len(), trail);
    assert!(!d.has_events());
    let (_, aims) = d
        .aim_cameras_at_target(&target, None, &both, 5, false, &alice, NOW + 2)
        .unwrap();
    assert_eq!(
        aims.iter()
            .map(|(id, _, t)| (id.as_str(), *t))
            .collect::<Vec<_>>(),
        [("dome", true), ("wall", false)]
    );
    let after = d.incident(&inc.id).unwrap().clone();
    assert_eq!(after.audit.len(), trail + 1);
    let entry = after.audit.last().unwrap();
    assert_eq!(entry.action, "cameras_aimed");
    assert_eq!(entry.detail, "turned dome; not turned wall");
    assert_eq!(entry.actor, alice);
    assert_eq!(entry.time, NOW + 2);
    assert_eq!(after.updated, NOW + 2);
    let events = d.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Incident(i) if *i == after)),
        "{events:?}"
    );
    // an aim at a point touches no incident
    d.aim_cameras_at_target(&Target::Point(east), None, &[], 5, false, &alice, NOW + 3)
        .unwrap();
    assert_eq!(d.incident(&inc.id).unwrap().audit.len(), trail + 1);
}

#[test]
fn offline_cameras_are_shown_offline_and_left_out() {
    let config = DispatcherConfig {
        cameras: CameraConfig {
            offline_after_ms: 60_000,
        },
        ..Default::default()
    };
    let mut d = Dispatcher::new(config);
    d.register_camera(fixed("quiet", square(), 0.0, 90.0, 100.0))
        .unwrap();
    d.register_camera(ptz("dome", square(), 0.0, (-170.0, 170.0), 0.0))
        .unwrap();
    d.register_camera(fixed("unmonitored", square(), 0.0, 90.0, 100.0))
        .unwrap();
    d.touch_camera("quiet", NOW - 120_000, NOW).unwrap();
    d.touch_camera("dome", NOW - 90_000, NOW).unwrap();
    d.take_events();
    let north = dest(square(), 0.0, 50.0);
    let ids = |v: Vec<CameraSight>| v.into_iter().map(|s| s.camera_id).collect::<Vec<_>>();
    assert_eq!(
        ids(d.cameras_seeing(north, NOW, 10).unwrap()),
        ["unmonitored"]
    );
    let path = [dest(square(), 270.0, 60.0), north];
    let along: Vec<_> = d
        .cameras_along(&path, 0.0, NOW, 10)
        .unwrap()
        .into_iter()
        .map(|s| s.sight.camera_id)
        .collect();
    assert_eq!(along, ["unmonitored"]);
    assert_eq!(d.aim_cameras(north, None, NOW, 10).unwrap().len(), 1);
    let err = d.aim_camera("dome", north, None, NOW).unwrap_err();
    assert!(err.to_string().contains("offline"), "{err}");
    assert!(d.set_camera_pose("dome", PtzPose::default(), NOW).is_err());
    // the sweep announces both, once, in registration order
    assert_eq!(d.sweep_offline_cameras(NOW), 2);
    let announced: Vec<_> = d
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::Camera(c) => (c.id.clone(), d.camera_online(&c, NOW)),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        announced,
        [("quiet".to_string(), false), ("dome".to_string(), false)]
    );
    assert_eq!(d.sweep_offline_cameras(NOW + 1), 0);
    // a fresh report brings one back, with an event, at once
    assert!(d.touch_camera("dome", NOW, NOW).unwrap());
    assert!(matches!(&d.take_events()[..], [Event::Camera(c)] if c.id == "dome"));
    assert_eq!(d.cameras_seeing(north, NOW, 10).unwrap().len(), 2);
    // a report from the future is refused by name
    let err = d.touch_camera("quiet", NOW + 60_000, NOW).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { field, .. } if field == "last_seen"),
        "{err}"
    );
    // registering again keeps the health it knew
    let (cam, _) = d
        .register_camera(fixed("quiet", square(), 10.0, 90.0, 100.0))
        .unwrap();
    assert_eq!(cam.last_seen, Some(NOW - 120_000));
    assert!(!d.camera_online(&cam, NOW));
}

#[test]
fn along_orders_cameras_by_first_sight() {
    let mut d = Dispatcher::new(DispatcherConfig::default());
    // a street running east from the square; cameras beside it looking
    // across it at 100, 300 and 200 m, and one looking away
    let start = square();
    let end = dest(start, 90.0, 500.0);
    let beside = |m: f64| dest(dest(start, 90.0, m), 0.0, 20.0);
    d.register_camera(fixed("at-100", beside(100.0), 180.0, 30.0, 60.0))
        .unwrap();
    d.register_camera(fixed("at-300", beside(300.0), 180.0, 30.0, 60.0))
        .unwrap();
    d.register_camera(fixed("at-200", beside(200.0), 180.0, 30.0, 60.0))
        .unwrap();
    d.register_camera(fixed("away", beside(250.0), 0.0, 30.0, 60.0))
        .unwrap();
    let along = d.cameras_along(&[start, end], 0.0, NOW, 10).unwrap();
    let ids: Vec<_> = along.iter().map(|s| s.sight.camera_id.as_str()).collect();
    assert_eq!(ids, ["at-100", "at-200", "at-300"]);
    // each first sees the street where its view's west edge crosses it:
    // 20 m out at 15 degrees, 20 tan(15) = 5.36 m before it (along-path
    // metres are great-circle metres, 0.4 % short of the geodesic here)
    for (s, m) in along.iter().zip([100.0, 200.0, 300.0]) {
        let expect = start.distance_m(&dest(start, 90.0, m - 20.0 * 15f64.to_radians().tan()));
        assert!(
            (s.along_m - expect).abs() < 0.1,
            "{} at {}",
            s.sight.camera_id,
            s.along_m
        );
        assert_eq!(s.now_along_m, Some(s.along_m));
        assert!(s.sight.sees_now);
    }
    // a 30 m corridor catches the camera looking away (it sees 30 m of
    // ground north of the street) and the others earlier
    let wide = d.cameras_along(&[start, end], 30.0, NOW, 10).unwrap();
    assert_eq!(wide.len(), 4);
    assert!(wide.iter().zip(&along).all(|(w, a)| w.along_m <= a.along_m));
    // a one-point path is a point with a corridor
    let one = d
        .cameras_along(&[dest(beside(200.0), 180.0, 20.0)], 0.0, NOW, 10)
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].along_m, 0.0);
    // refusals
    assert!(d.cameras_along(&[], 0.0, NOW, 10).is_err());
    let err = d
        .cameras_along(&[start, LonLat::new(200.0, 0.0)], 0.0, NOW, 10)
        .unwrap_err();
    assert!(err.to_string().contains("path[1]"), "{err}");
    let err = d.cameras_along(&[start], -1.0, NOW, 10).unwrap_err();
    assert!(err.to_string().contains("corridor_m"), "{err}");
    let err = d.cameras_seeing(start, NOW, 0).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}

#[test]
fn checkpoints_keep_poses_limits_and_health() {
    let mut d = Dispatcher::new(DispatcherConfig::default());
    d.register_camera(ptz("dome", square(), 30.0, (-100.0, 120.0), 5.0))
        .unwrap();
    d.register_camera(fixed("fixed", square(), 200.0, 70.0, 90.0))
        .unwrap();
    d.set_camera_pose(
        "dome",
        PtzPose {
            pan_deg: 110.0,
            tilt_deg: 35.0,
            zoom: 0.7,
        },
        NOW,
    )
    .unwrap();
    d.touch_camera("fixed", NOW - 3_600_000, NOW).unwrap();
    d.touch_camera("dome", NOW, NOW).unwrap();
    assert_eq!(d.sweep_offline_cameras(NOW), 1);
    let state = d.export_all();
    let json: Vec<String> = state
        .cameras
        .iter()
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    let restored_state = CoreState {
        cameras: json
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect(),
        ..state.clone()
    };
    let mut restored = Dispatcher::restore(DispatcherConfig::default(), restored_state).unwrap();
    assert_eq!(restored.export_all(), state);
    let dome = restored.camera("dome").unwrap();
    assert_eq!(dome.ptz_head.unwrap().pose.pan_deg, 110.0);
    assert_eq!(dome.ptz_head.unwrap().pan_max_deg, 120.0);
    assert_eq!(dome.last_seen, Some(NOW));
    // the offline notice is not repeated after the rebuild
    assert_eq!(restored.sweep_offline_cameras(NOW), 0);
    let target = dest(square(), 140.0, 40.0);
    assert_eq!(
        restored.cameras_seeing(target, NOW, 10).unwrap(),
        d.cameras_seeing(target, NOW, 10).unwrap()
    );
}

#[test]
fn cameras_from_the_older_build_still_load() {
    // a checkpoint record written before PTZ heads and health
    let old = r#"{"slot":0,"camera":{"id":"cam-1","name":"Market",
        "at":{"lon":24.95,"lat":60.167},"mount_height_m":6.0,"heading_deg":10.0,
        "fov_deg":60.0,"range_m":80.0,"ptz":true}}"#;
    let state: patrol_dispatcher::persist::CameraState = serde_json::from_str(old).unwrap();
    assert!(!state.offline_reported);
    assert_eq!(state.camera.ptz_head, None);
    let restored = Dispatcher::restore(
        DispatcherConfig::default(),
        CoreState {
            cameras: vec![state],
            meta: Default::default(),
            ..Default::default()
        },
    )
    .unwrap();
    let cam = restored.camera("cam-1").unwrap();
    let head = cam.ptz_head.expect("an assumed head");
    assert!(head.continuous_pan());
    assert_eq!(cam.heading_deg, 10.0);
    assert!(restored.camera_online(cam, NOW));
}
