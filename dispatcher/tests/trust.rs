//! Which fixes to believe: jumps refused and then believed when the fixes
//! that follow agree, fast cars accepted, accuracy limits, a standing foot
//! officer held at the anchor (and a driving car not), confidence by age and
//! accuracy, and the state surviving a checkpoint.

use patrol_dispatcher::trust::{assess, confidence};
use patrol_dispatcher::*;

const T0: Millis = 1_700_000_000_000;
const HELSINKI: LonLat = LonLat::new(24.9384, 60.1699);

fn fix(at: LonLat, time: Millis, accuracy_m: f32, speed_mps: Option<f32>) -> Fix {
    Fix {
        at,
        time,
        speed_mps,
        heading_deg: None,
        accuracy_m: Some(accuracy_m),
    }
}

/// Feeds `fixes` through the rules as the index would: the fix held is what
/// the previous assessment said to store.
struct Unit {
    kind: UnitKind,
    held: Option<Fix>,
    state: TrustState,
    config: TrustConfig,
}

impl Unit {
    fn new(kind: UnitKind) -> Self {
        Self {
            kind,
            held: None,
            state: TrustState::default(),
            config: TrustConfig::default(),
        }
    }

    fn ping(&mut self, new: Fix) -> Assessment {
        let got = assess(
            self.kind,
            self.held.as_ref(),
            &new,
            &mut self.state,
            &self.config,
        );
        if let Some(stored) = got.fix_to_store(&new) {
            self.held = Some(stored);
        }
        got
    }

    fn position(&self) -> LonLat {
        self.held.expect("a fix held").at
    }
}

#[test]
fn a_jump_is_refused_then_believed_after_three_agreeing_fixes() {
    let mut car = Unit::new(UnitKind::Car);
    assert_eq!(
        car.ping(fix(HELSINKI, T0, 5.0, Some(0.0))),
        Assessment::Accept
    );
    let far = HELSINKI.destination(45.0, 3_000.0);

    // one second later, 3 km away: refused, the fix held stays
    let got = car.ping(fix(far, T0 + 1_000, 5.0, Some(0.0)));
    let Assessment::Reject(why) = got else {
        panic!("expected a refusal, got {got:?}");
    };
    let FixRejection::ImpliedSpeed {
        speed_mps,
        limit_mps,
        agreeing_fixes,
        ..
    } = why
    else {
        panic!("expected ImpliedSpeed, got {why:?}");
    };
    assert!((speed_mps - 2_990.0).abs() < 1.0, "{speed_mps}");
    assert_eq!(limit_mps, 70.0);
    assert_eq!(agreeing_fixes, 1);
    assert!(
        why.message().starts_with(
            "implied speed 2990 m/s from the fix held (car limit 70 m/s): 3000 m in 1.0 s"
        ),
        "{}",
        why.message()
    );
    assert!(
        why.message()
            .ends_with("1 of 3 agreeing fixes to move there")
    );
    assert_eq!(why.field(), "lon/lat");
    assert_eq!(car.position(), HELSINKI);

    // a second fix that agrees with the jump: still refused, counted
    let got = car.ping(fix(far.destination(0.0, 4.0), T0 + 2_000, 5.0, Some(0.0)));
    assert!(
        matches!(
            got,
            Assessment::Reject(FixRejection::ImpliedSpeed {
                agreeing_fixes: 2,
                ..
            })
        ),
        "{got:?}"
    );
    assert_eq!(car.position(), HELSINKI);

    // the third: the fix held was the lie
    let third = fix(far.destination(0.0, 8.0), T0 + 3_000, 5.0, Some(0.0));
    assert_eq!(
        car.ping(third),
        Assessment::Relocated {
            from: HELSINKI,
            agreeing_fixes: 3
        }
    );
    assert_eq!(car.position(), third.at);
    assert!(car.state.pending.is_none());
}

#[test]
fn a_one_off_jump_is_forgotten_when_the_next_fix_agrees_with_the_fix_held() {
    let mut car = Unit::new(UnitKind::Car);
    car.ping(fix(HELSINKI, T0, 5.0, None));
    let far = HELSINKI.destination(90.0, 3_000.0);
    assert!(car.ping(fix(far, T0 + 1_000, 5.0, None)).is_rejected());
    assert!(car.ping(fix(far, T0 + 2_000, 5.0, None)).is_rejected());
    // back where it was: accepted, and the run of agreeing fixes is over
    assert!(!car.ping(fix(HELSINKI, T0 + 3_000, 5.0, None)).is_rejected());
    assert!(car.state.pending.is_none());
    let got = car.ping(fix(far, T0 + 4_000, 5.0, None));
    assert!(
        matches!(
            got,
            Assessment::Reject(FixRejection::ImpliedSpeed {
                agreeing_fixes: 1,
                ..
            })
        ),
        "{got:?}"
    );
}

#[test]
fn fixes_that_agree_with_neither_start_a_new_count() {
    let mut car = Unit::new(UnitKind::Car);
    car.ping(fix(HELSINKI, T0, 5.0, None));
    let east = HELSINKI.destination(90.0, 3_000.0);
    let west = HELSINKI.destination(270.0, 3_000.0);
    assert!(car.ping(fix(east, T0 + 1_000, 5.0, None)).is_rejected());
    // 6 km from the last refused fix in 1 s: no agreement, a new run
    let got = car.ping(fix(west, T0 + 2_000, 5.0, None));
    assert!(
        matches!(
            got,
            Assessment::Reject(FixRejection::ImpliedSpeed {
                agreeing_fixes: 1,
                ..
            })
        ),
        "{got:?}"
    );
    assert!(car.ping(fix(west, T0 + 3_000, 5.0, None)).is_rejected());
    assert!(matches!(
        car.ping(fix(west, T0 + 4_000, 5.0, None)),
        Assessment::Relocated {
            agreeing_fixes: 3,
            ..
        }
    ));
    assert_eq!(car.position(), west);
}

#[test]
fn a_bad_first_fix_is_replaced_by_the_fixes_that_follow() {
    let mut foot = Unit::new(UnitKind::Foot);
    let wrong = HELSINKI.destination(180.0, 2_000.0);
    // nothing to compare the first fix with: it is taken
    assert_eq!(foot.ping(fix(wrong, T0, 10.0, None)), Assessment::Accept);
    // the officer's real position, every 5 s: 2 km in 5 s is no walk
    for (n, time) in [(1, T0 + 5_000), (2, T0 + 10_000)] {
        let got = foot.ping(fix(HELSINKI, time, 10.0, None));
        assert!(
            matches!(
                got,
                Assessment::Reject(FixRejection::ImpliedSpeed { agreeing_fixes, .. }) if agreeing_fixes == n
            ),
            "{got:?}"
        );
    }
    assert_eq!(
        foot.ping(fix(HELSINKI, T0 + 15_000, 10.0, None)),
        Assessment::Relocated {
            from: wrong,
            agreeing_fixes: 3
        }
    );
    assert_eq!(foot.position(), HELSINKI);
}

#[test]
fn a_fast_car_is_accepted_and_the_same_pace_on_an_e_bike_is_not() {
    let mut car = Unit::new(UnitKind::Car);
    let mut at = HELSINKI;
    for s in 0..20 {
        let got = car.ping(fix(at, T0 + s * 1_000, 5.0, Some(45.0)));
        assert_eq!(got, Assessment::Accept, "second {s}");
        assert_eq!(car.position(), at);
        at = at.destination(10.0, 45.0);
    }
    // 45 m/s = 162 km/h: beyond an e-bike's 15 m/s even after the 10 m
    // the two accuracy radii explain
    let mut bike = Unit::new(UnitKind::EBike);
    bike.ping(fix(HELSINKI, T0, 5.0, Some(45.0)));
    let got = bike.ping(fix(
        HELSINKI.destination(10.0, 45.0),
        T0 + 1_000,
        5.0,
        Some(45.0),
    ));
    assert!(
        matches!(
            got,
            Assessment::Reject(FixRejection::ImpliedSpeed { speed_mps, limit_mps, .. })
                if (speed_mps - 35.0).abs() < 0.1 && limit_mps == 15.0
        ),
        "{got:?}"
    );
}

#[test]
fn accuracy_radii_explain_a_jump() {
    // 160 m in 2 s: 75 m/s beyond 5 m + 5 m of accuracy, over a car's 70;
    // 50 m/s beyond 30 m + 30 m
    let mut car = Unit::new(UnitKind::Car);
    car.ping(fix(HELSINKI, T0, 5.0, Some(20.0)));
    let next = HELSINKI.destination(0.0, 160.0);
    assert!(
        car.ping(fix(next, T0 + 2_000, 5.0, Some(20.0)))
            .is_rejected()
    );
    let mut car = Unit::new(UnitKind::Car);
    car.ping(fix(HELSINKI, T0, 30.0, Some(20.0)));
    assert_eq!(
        car.ping(fix(next, T0 + 2_000, 30.0, Some(20.0))),
        Assessment::Accept
    );
}

#[test]
fn accuracy_worse_than_the_limits_is_flagged_or_refused() {
    let mut foot = Unit::new(UnitKind::Foot);
    assert_eq!(
        foot.ping(fix(HELSINKI, T0, 40.0, Some(1.2))),
        Assessment::Accept
    );
    let walked = HELSINKI.destination(0.0, 6.0);
    let got = foot.ping(fix(walked, T0 + 5_000, 80.0, Some(1.2)));
    assert_eq!(
        got,
        Assessment::AcceptFlagged(FixFlag::LowAccuracy {
            kind: UnitKind::Foot,
            accuracy_m: 80.0,
            limit_m: 50.0
        })
    );
    assert_eq!(
        got.message(),
        "accuracy_m = 80 m is worse than the foot flag limit of 50 m: kept, low confidence"
    );
    assert_eq!(foot.position(), walked);

    // indoors, 300 m: refused, the unit stays where it was
    let got = foot.ping(fix(
        HELSINKI.destination(0.0, 12.0),
        T0 + 10_000,
        300.0,
        Some(1.2),
    ));
    assert_eq!(
        got,
        Assessment::Reject(FixRejection::Accuracy {
            kind: UnitKind::Foot,
            accuracy_m: 300.0,
            limit_m: 250.0
        })
    );
    assert_eq!(
        got.message(),
        "accuracy_m = 300 m is worse than the foot limit of 250 m"
    );
    assert_eq!(foot.position(), walked);

    // a refused-for-accuracy fix is no evidence for a jump either way
    let mut car = Unit::new(UnitKind::Car);
    car.ping(fix(HELSINKI, T0, 5.0, None));
    let far = HELSINKI.destination(0.0, 3_000.0);
    car.ping(fix(far, T0 + 1_000, 5.0, None));
    car.ping(fix(far, T0 + 1_500, 500.0, None));
    let got = car.ping(fix(far, T0 + 2_000, 5.0, None));
    assert!(
        matches!(
            got,
            Assessment::Reject(FixRejection::ImpliedSpeed {
                agreeing_fixes: 2,
                ..
            })
        ),
        "{got:?}"
    );
}

/// A phone on a standing officer: positions wandering at walking pace (7 m
/// per 5 s fix) around the true spot, never more than 12 m from it.
fn drifting(center: LonLat, n: i64, speed_mps: Option<f32>) -> Vec<Fix> {
    (0..n)
        .map(|i| {
            let bearing = (i * 37 % 360) as f64;
            let at = center.destination(bearing, 6.0 + (i % 2) as f64 * 6.0);
            fix(at, T0 + i * 5_000, 12.0, speed_mps)
        })
        .collect()
}

#[test]
fn a_standing_foot_officer_is_held_at_the_anchor() {
    for speed in [None, Some(0.0), Some(0.4)] {
        let mut foot = Unit::new(UnitKind::Foot);
        let fixes = drifting(HELSINKI, 24, speed);
        assert_eq!(foot.ping(fixes[0]), Assessment::Accept);
        let anchor = fixes[0].at;
        for f in &fixes[1..] {
            let got = foot.ping(*f);
            let Assessment::Stationary {
                anchor: at,
                accuracy_m,
            } = got
            else {
                panic!("{speed:?}: expected Stationary, got {got:?}");
            };
            assert_eq!(at, anchor);
            // the time moves on, the position does not; the accuracy
            // stored covers the fix
            let held = foot.held.unwrap();
            assert_eq!(held.time, f.time);
            assert_eq!(foot.position(), anchor);
            let off = f.at.distance_m(&anchor) as f32;
            assert!((accuracy_m - (12.0 + off)).abs() < 1e-3, "{accuracy_m}");
            assert_eq!(held.accuracy_m, Some(accuracy_m));
        }
        assert_eq!(foot.state.stationary_since(), Some(T0));
    }

    // without the rule the same phone wanders: the drift is real
    let mut foot = Unit::new(UnitKind::Foot);
    foot.config.foot.hold_stationary = false;
    let fixes = drifting(HELSINKI, 24, None);
    let mut wandered = 0.0f64;
    for f in &fixes {
        assert_eq!(foot.ping(*f), Assessment::Accept);
        wandered = wandered.max(foot.position().distance_m(&fixes[0].at));
    }
    assert!(wandered > 15.0, "{wandered}");
}

#[test]
fn a_standing_officer_who_walks_off_moves_again() {
    let mut foot = Unit::new(UnitKind::Foot);
    for f in drifting(HELSINKI, 6, None) {
        foot.ping(f);
    }
    assert!(foot.position().distance_m(&HELSINKI) < 13.0);
    // walking north at 1.4 m/s, accurate fixes, no reported speed: held
    // while within the accuracy radii (12 m + 5 m) of the anchor, then
    // moved, never further behind than that
    let start = T0 + 30_000;
    for s in 1..=60 {
        let at = HELSINKI.destination(0.0, 1.4 * s as f64);
        foot.ping(fix(at, start + s * 1_000, 5.0, None));
        let lag = foot.position().distance_m(&at);
        assert!(lag <= 17.0 + 1e-6, "second {s}: {lag} m behind");
    }
    assert!(foot.position().distance_m(&HELSINKI) > 84.0 - 17.0);
    // with a reported walking speed every fix moves it
    let at = HELSINKI.destination(0.0, 1.4 * 61.0);
    assert_eq!(
        foot.ping(fix(at, start + 61_000, 5.0, Some(1.4))),
        Assessment::Accept
    );
    assert_eq!(foot.position(), at);
    assert!(foot.state.anchor.is_none());
}

#[test]
fn a_driving_car_is_never_held() {
    // 5 m/s in traffic, a fix a second: each step is inside the 10 m radius,
    // but the car reports its speed
    let mut car = Unit::new(UnitKind::Car);
    let mut at = HELSINKI;
    for s in 0..30 {
        assert_eq!(
            car.ping(fix(at, T0 + s * 1_000, 10.0, Some(5.0))),
            Assessment::Accept
        );
        assert_eq!(car.position(), at);
        at = at.destination(90.0, 5.0);
    }
    assert!(car.state.anchor.is_none());
    // parked, its GPS drifting: held like anyone standing
    let parked = at;
    let mut held = 0;
    for (i, mut f) in drifting(parked, 10, Some(0.0)).into_iter().enumerate() {
        f.time = T0 + 60_000 + i as i64 * 5_000;
        f.accuracy_m = Some(10.0);
        if matches!(car.ping(f), Assessment::Stationary { .. }) {
            held += 1;
        }
    }
    assert!(held >= 8, "{held}");
}

#[test]
fn confidence_falls_with_age_and_accuracy() {
    let config = TrustConfig::default();
    let f = fix(HELSINKI, T0, 5.0, None);
    let fresh = confidence(&f, T0, UnitKind::Foot, &config);
    assert!((fresh.score - 100.0 / 105.0).abs() < 1e-6, "{fresh:?}");
    assert_eq!(fresh.note, ConfidenceNote::Good);
    assert_eq!(fresh.age_s, 0.0);
    assert_eq!(fresh.accuracy_m, Some(5.0));

    // older: lower, and faster kinds lose it faster
    let mut last = fresh.score;
    for age_s in [5, 30, 60, 120, 240] {
        let c = confidence(&f, T0 + age_s * 1_000, UnitKind::Foot, &config);
        assert!(c.score < last, "{age_s} s: {c:?}");
        assert_eq!(c.age_s, age_s as f64);
        last = c.score;
    }
    let foot_60 = confidence(&f, T0 + 60_000, UnitKind::Foot, &config);
    let car_60 = confidence(&f, T0 + 60_000, UnitKind::Car, &config);
    assert!(car_60.score < foot_60.score);
    // foot: 5 m + 60 s x 1.5 m/s = 95 m
    assert!((foot_60.radius_m - 95.0).abs() < 1e-9);
    assert_eq!(foot_60.note, ConfidenceNote::Stale);

    // vaguer: lower
    let mut last = 1.0;
    for accuracy_m in [1.0, 10.0, 50.0, 80.0, 200.0] {
        let c = confidence(
            &fix(HELSINKI, T0, accuracy_m, None),
            T0,
            UnitKind::Car,
            &config,
        );
        assert!(c.score < last, "{accuracy_m} m: {c:?}");
        last = c.score;
    }
    let vague = confidence(&fix(HELSINKI, T0, 80.0, None), T0, UnitKind::Car, &config);
    assert_eq!(vague.note, ConfidenceNote::LowAccuracy);
    let unknown = confidence(
        &Fix {
            accuracy_m: None,
            ..f
        },
        T0,
        UnitKind::Car,
        &config,
    );
    assert_eq!(unknown.note, ConfidenceNote::UnknownAccuracy);
    assert_eq!(unknown.radius_m, 20.0);

    // past the kind's offline timeout: nothing
    let car_off = confidence(&f, T0 + 120_001, UnitKind::Car, &config);
    assert_eq!(
        (car_off.score, car_off.note),
        (0.0, ConfidenceNote::Offline)
    );
    let foot_on = confidence(&f, T0 + 120_001, UnitKind::Foot, &config);
    assert!(foot_on.score > 0.0);
    // a fix slightly ahead of the clock counts as fresh
    assert_eq!(confidence(&f, T0 - 2_000, UnitKind::Foot, &config), fresh);
}

/// A mixed day for one unit: standing, a jump, walking, a vague fix, a
/// bad-fix relocation.
fn day() -> Vec<Fix> {
    let mut fixes = drifting(HELSINKI, 8, None);
    let t = T0 + 40_000;
    let far = HELSINKI.destination(200.0, 2_500.0);
    fixes.push(fix(far, t, 8.0, None));
    fixes.push(fix(HELSINKI, t + 5_000, 8.0, Some(0.0)));
    for s in 1..12 {
        fixes.push(fix(
            HELSINKI.destination(0.0, 7.0 * s as f64),
            t + 5_000 + s * 5_000,
            6.0,
            if s % 3 == 0 { None } else { Some(1.4) },
        ));
    }
    fixes.push(fix(
        HELSINKI.destination(0.0, 84.0),
        t + 65_000,
        90.0,
        Some(1.4),
    ));
    fixes.push(fix(far, t + 70_000, 90.0, None));
    fixes.push(fix(far, t + 75_000, 300.0, None));
    for s in 0..4 {
        fixes.push(fix(
            far.destination(0.0, s as f64),
            t + 80_000 + s * 5_000,
            8.0,
            None,
        ));
    }
    fixes
}

#[test]
fn the_state_survives_a_checkpoint() {
    let fixes = day();
    let run = |fixes: &[Fix]| {
        let mut foot = Unit::new(UnitKind::Foot);
        fixes.iter().map(|f| foot.ping(*f)).collect::<Vec<_>>()
    };
    let whole = run(&fixes);
    // every kind of outcome happens in this day
    assert!(
        whole
            .iter()
            .any(|a| matches!(a, Assessment::Stationary { .. }))
    );
    assert!(
        whole
            .iter()
            .any(|a| matches!(a, Assessment::Relocated { .. }))
    );
    assert!(
        whole
            .iter()
            .any(|a| matches!(a, Assessment::AcceptFlagged(_)))
    );
    assert!(whole.iter().any(|a| matches!(a, Assessment::Reject(_))));
    assert_eq!(run(&fixes), whole, "same fixes, same assessments");

    // checkpoint after every prefix: the rebuilt unit carries on the same
    for cut in 0..fixes.len() {
        let mut foot = Unit::new(UnitKind::Foot);
        let mut got: Vec<Assessment> = fixes[..cut].iter().map(|f| foot.ping(*f)).collect();
        let state_json = serde_json::to_string(&foot.state).unwrap();
        let held_json = serde_json::to_string(&foot.held).unwrap();
        let mut rebuilt = Unit::new(UnitKind::Foot);
        rebuilt.state = serde_json::from_str(&state_json).unwrap();
        rebuilt.held = serde_json::from_str(&held_json).unwrap();
        assert_eq!(rebuilt.state, foot.state);
        got.extend(fixes[cut..].iter().map(|f| rebuilt.ping(*f)));
        assert_eq!(got, whole, "checkpoint after {cut} fixes");
    }
}
