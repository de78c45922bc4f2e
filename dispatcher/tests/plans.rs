//! Response plans: the fight plan ("two units, at least one car; also the
//! nearest foot unit if it is within 3 minutes") against candidate lists,
//! shortfall messages, which plan applies, parsing and validation, and the
//! rules `fill` keeps for any plan and candidates.

use patrol_dispatcher::plans::{MAX_PLAN_UNITS, fill};
use patrol_dispatcher::*;
use proptest::prelude::*;

const NONE: &[String] = &[];

fn cand<'a>(key: &'static str, kind: UnitKind, eta_s: f64) -> PlanCandidate<'a, &'static str> {
    PlanCandidate {
        key,
        kind,
        capabilities: NONE,
        eta_s,
    }
}

/// The plan as the example TOML writes it, read from the same structure.
fn fight_plan() -> ResponsePlan {
    serde_json::from_str(
        r#"{
            "incident_type": "fight",
            "priorities": [1, 2],
            "needs": [ { "count": 2 }, { "count": 1, "kinds": ["car"] } ],
            "optional": [ { "count": 1, "kinds": ["foot"], "within_s": 180 } ]
        }"#,
    )
    .unwrap()
}

fn keys<K: Copy>(f: &PlanFill<K>) -> Vec<K> {
    f.chosen.iter().map(|c| c.key).collect()
}

fn messages<K>(f: &PlanFill<K>) -> Vec<(NeedRef, &str)> {
    f.shortfalls
        .iter()
        .map(|s| (s.need, s.message.as_str()))
        .collect()
}

#[test]
fn the_example_reads_as_written() {
    assert_eq!(
        fight_plan(),
        ResponsePlan {
            incident_type: "fight".into(),
            priorities: 1..=2,
            needs: vec![Need::any(2), Need::of(1, UnitKind::Car)],
            optional: vec![Need::of(1, UnitKind::Foot).within(180.0)],
        }
    );
}

#[test]
fn the_car_is_nearest() {
    use NeedRef::*;
    let f = fill(
        &fight_plan(),
        &[
            cand("car-1", UnitKind::Car, 60.0),
            cand("foot-1", UnitKind::Foot, 90.0),
            cand("foot-2", UnitKind::Foot, 120.0),
        ],
    );
    assert_eq!(keys(&f), ["car-1", "foot-1"]);
    // the car is the car and one of the two; the foot officer is the other
    // and the optional foot unit
    assert_eq!(f.chosen[0].chosen_for, Required(1));
    assert_eq!(f.chosen[0].counts_for, [Required(1), Required(0)]);
    assert_eq!(f.chosen[1].chosen_for, Required(0));
    assert_eq!(f.chosen[1].counts_for, [Required(0), Optional(0)]);
    assert_eq!(
        f.chosen[0].reason,
        "car, 1 min: for needs[1] (1 car); also counts for needs[0] (2 units)"
    );
    assert_eq!(
        f.chosen[1].reason,
        "foot, 1 min 30 s: for needs[0] (2 units); also counts for optional[0] (1 foot unit within 3 minutes)"
    );
    assert!(f.shortfalls.is_empty());
    assert!(f.is_complete());
}

#[test]
fn two_units_at_least_one_car_is_two_units_not_three() {
    let f = fill(
        &fight_plan(),
        &[
            cand("foot-1", UnitKind::Foot, 60.0),
            cand("foot-2", UnitKind::Foot, 80.0),
            cand("car-1", UnitKind::Car, 300.0),
            cand("car-2", UnitKind::Car, 400.0),
        ],
    );
    // the car, and the fastest other unit, which is also the foot unit
    assert_eq!(keys(&f), ["foot-1", "car-1"]);
    assert!(f.shortfalls.is_empty());
}

#[test]
fn only_foot_units() {
    let f = fill(
        &fight_plan(),
        &[
            cand("foot-1", UnitKind::Foot, 60.0),
            cand("foot-2", UnitKind::Foot, 90.0),
            cand("foot-3", UnitKind::Foot, 200.0),
        ],
    );
    assert_eq!(keys(&f), ["foot-1", "foot-2"]);
    assert_eq!(messages(&f), [(NeedRef::Required(1), "no car available")]);
    assert_eq!(f.shortfalls[0].wanted, 1);
    assert_eq!(f.shortfalls[0].found, 0);
    assert!(!f.is_complete());
}

#[test]
fn nothing_within_the_optional_limit() {
    let f = fill(
        &fight_plan(),
        &[
            cand("car-1", UnitKind::Car, 60.0),
            cand("car-2", UnitKind::Car, 100.0),
            cand("foot-1", UnitKind::Foot, 320.0),
            cand("foot-2", UnitKind::Foot, 400.0),
        ],
    );
    assert_eq!(keys(&f), ["car-1", "car-2"]);
    assert_eq!(
        messages(&f),
        [(
            NeedRef::Optional(0),
            "no foot unit within 3 minutes (nearest: 5 min 20 s)"
        )]
    );
    let late = f.shortfalls[0].nearest_late.as_ref().unwrap();
    assert_eq!((late.key, late.eta_s), ("foot-1", 320.0));
    // an optional need short is still a complete answer
    assert!(f.is_complete());

    // and with no foot unit at all, no "nearest"
    let f = fill(&fight_plan(), &[cand("car-1", UnitKind::Car, 60.0)]);
    assert_eq!(keys(&f), ["car-1"]);
    assert_eq!(
        messages(&f),
        [
            (NeedRef::Required(0), "no second unit available"),
            (NeedRef::Optional(0), "no foot unit within 3 minutes"),
        ]
    );
    assert_eq!(f.shortfalls[1].nearest_late, None);
}

#[test]
fn nothing_at_all() {
    let f = fill::<&str>(&fight_plan(), &[]);
    assert!(f.chosen.is_empty());
    assert_eq!(
        messages(&f),
        [
            (NeedRef::Required(1), "no car available"),
            (NeedRef::Required(0), "no unit available (0 of 2 found)"),
            (NeedRef::Optional(0), "no foot unit within 3 minutes"),
        ]
    );
}

#[test]
fn shortfalls_say_which_unit_is_missing() {
    let plan = ResponsePlan {
        needs: vec![Need::of(2, UnitKind::Car).within(600.0)],
        ..ResponsePlan::one_unit()
    };
    let f = fill(
        &plan,
        &[
            cand("car-1", UnitKind::Car, 100.0),
            cand("moto-1", UnitKind::Motorcycle, 110.0),
            cand("car-2", UnitKind::Car, 700.0),
        ],
    );
    assert_eq!(keys(&f), ["car-1"]);
    assert_eq!(
        messages(&f),
        [(
            NeedRef::Required(0),
            "no second car within 10 minutes (nearest: 11 min 40 s)"
        )]
    );
    let s = &f.shortfalls[0];
    assert_eq!((s.wanted, s.found), (2, 1));

    let plan = ResponsePlan {
        needs: vec![
            Need {
                kinds: vec![UnitKind::Car, UnitKind::Motorcycle],
                capabilities: vec!["k9".into()],
                ..Need::any(3)
            }
            .within(90.0),
        ],
        ..ResponsePlan::one_unit()
    };
    let f = fill(&plan, &[cand("car-1", UnitKind::Car, 10.0)]);
    assert_eq!(
        messages(&f),
        [(
            NeedRef::Required(0),
            "no car or motorcycle with k9 within 1 min 30 s (0 of 3 found)"
        )]
    );
}

#[test]
fn capabilities_and_limits_are_respected() {
    let medic = vec!["medic".to_string(), "first_aid".to_string()];
    let plan = ResponsePlan {
        needs: vec![
            Need::any(2),
            Need {
                capabilities: vec!["medic".into()],
                ..Need::any(1)
            },
        ],
        optional: vec![Need::of(1, UnitKind::EBike).within(120.0)],
        ..ResponsePlan::one_unit()
    };
    let f = fill(
        &plan,
        &[
            cand("car-1", UnitKind::Car, 50.0),
            PlanCandidate {
                capabilities: &medic,
                ..cand("foot-medic", UnitKind::Foot, 70.0)
            },
            PlanCandidate {
                capabilities: &medic,
                ..cand("car-medic", UnitKind::Car, 80.0)
            },
            cand("bike-1", UnitKind::EBike, 100.0),
        ],
    );
    // the medic is the fastest one with the tag; the other unit is the
    // fastest of all; the e-bike within 2 minutes comes on top
    assert_eq!(keys(&f), ["car-1", "foot-medic", "bike-1"]);
    assert_eq!(f.chosen[1].chosen_for, NeedRef::Required(1));
    assert_eq!(f.chosen[2].chosen_for, NeedRef::Optional(0));
    assert!(f.shortfalls.is_empty());

    // a limit of 100 s is met by a unit at exactly 100 s, not 100.5
    let plan = ResponsePlan {
        needs: vec![Need::any(1).within(100.0)],
        ..ResponsePlan::one_unit()
    };
    let f = fill(&plan, &[cand("a", UnitKind::Car, 100.0)]);
    assert_eq!(keys(&f), ["a"]);
    let f = fill(&plan, &[cand("a", UnitKind::Car, 100.5)]);
    assert!(f.chosen.is_empty());
    assert_eq!(
        f.shortfalls[0].message,
        "no unit within 1 min 40 s (nearest: 1 min 41 s)"
    );
}

#[test]
fn never_the_same_unit_twice_and_fastest_first_whatever_the_order_given() {
    let plan = ResponsePlan {
        needs: vec![Need::any(3)],
        ..ResponsePlan::one_unit()
    };
    let f = fill(
        &plan,
        &[
            cand("c", UnitKind::Car, 300.0),
            cand("a", UnitKind::Car, 100.0),
            // the same unit again, from a second search
            cand("a", UnitKind::Car, 100.0),
            cand("x", UnitKind::Car, f64::NAN),
            cand("b", UnitKind::Foot, 200.0),
            cand("y", UnitKind::Car, -1.0),
        ],
    );
    assert_eq!(keys(&f), ["a", "b", "c"]);
    assert!(f.shortfalls.is_empty());
    let etas: Vec<f64> = f.chosen.iter().map(|c| c.eta_s).collect();
    assert_eq!(etas, [100.0, 200.0, 300.0]);
}

#[test]
fn the_default_plan_sends_the_fastest_unit() {
    let book = PlanBook::default();
    let choice = book.plan_for("theft", 3);
    assert_eq!(choice.index, None);
    assert_eq!(choice.label(), "default plan");
    let f = fill(
        choice.plan,
        &[
            cand("foot-1", UnitKind::Foot, 40.0),
            cand("car-1", UnitKind::Car, 90.0),
        ],
    );
    assert_eq!(keys(&f), ["foot-1"]);
    assert!(f.shortfalls.is_empty());
}

fn plan(
    incident_type: &str,
    priorities: std::ops::RangeInclusive<u32>,
    count: u32,
) -> ResponsePlan {
    ResponsePlan {
        incident_type: incident_type.into(),
        priorities,
        needs: vec![Need::any(count)],
        optional: vec![],
    }
}

#[test]
fn the_most_specific_plan_applies() {
    let book = PlanBook {
        plans: vec![
            plan("*", 1..=5, 1),
            plan("fight", 1..=5, 2),
            plan("fight", 1..=2, 3),
            plan("theft", 1..=1, 4),
            plan("fight", 2..=3, 5),
            plan("*", 1..=1, 6),
        ],
        default: ResponsePlan::one_unit(),
    };
    book.validate().unwrap();
    let index = |t: &str, p: u32| book.plan_for(t, p).index;
    // a named type beats "*" even when "*" has the narrower range
    assert_eq!(index("fight", 1), Some(2));
    // narrower ranges beat wider ones; equal widths: the one written first
    assert_eq!(index("fight", 2), Some(2));
    assert_eq!(index("fight", 3), Some(4));
    assert_eq!(index("fight", 5), Some(1));
    assert_eq!(index("theft", 1), Some(3));
    assert_eq!(index("theft", 2), Some(0));
    assert_eq!(index("noise", 1), Some(5));
    assert_eq!(index("noise", 4), Some(0));
    // types match exactly
    assert_eq!(index("Fight", 1), Some(5));
    assert_eq!(
        book.plan_for("fight", 3).label(),
        "plans[4] (fight, priorities 2..=3)"
    );

    // with no "*" plan, the default applies
    let book = PlanBook {
        plans: vec![plan("fight", 1..=2, 2)],
        default: ResponsePlan::one_unit(),
    };
    assert_eq!(book.plan_for("fight", 3).index, None);
    assert_eq!(book.plan_for("fight", 3).plan, &ResponsePlan::one_unit());
    assert_eq!(book.plan_for("noise", 1).index, None);
}

#[test]
fn a_book_parses_with_defaults() {
    let book: PlanBook = serde_json::from_str(
        r#"{
            "plans": [
                { "incident_type": "fight", "priorities": [1, 2],
                  "needs": [ { "count": 2 }, { "count": 1, "kinds": ["car"] } ],
                  "optional": [ { "count": 1, "kinds": ["foot"], "within_s": 180 } ] },
                { "incident_type": "medical", "needs": [ { "capabilities": ["medic"], "within_s": 300.5 } ] },
                { "needs": [ { "kinds": ["e-bike", "motorcycle"] } ] }
            ],
            "default": { "needs": [ { "count": 2 } ] }
        }"#,
    )
    .unwrap();
    assert_eq!(book.plans[0], fight_plan());
    assert_eq!(book.plans[1].priorities, 1..=5);
    assert_eq!(book.plans[1].needs[0].count, 1);
    assert_eq!(book.plans[1].needs[0].within_s, Some(300.5));
    assert_eq!(book.plans[2].incident_type, "*");
    assert_eq!(
        book.plans[2].needs[0].kinds,
        [UnitKind::EBike, UnitKind::Motorcycle]
    );
    assert_eq!(book.default.needs, [Need::any(2)]);
    // an empty book is the default book, and what it writes it reads back
    assert_eq!(
        serde_json::from_str::<PlanBook>("{}").unwrap(),
        PlanBook::default()
    );
    let again: PlanBook = serde_json::from_str(&serde_json::to_string(&book).unwrap()).unwrap();
    assert_eq!(again, book);
    assert!(
        serde_json::to_string(&book)
            .unwrap()
            .contains(r#""kinds":["e-bike","motorcycle"]"#)
    );
}

#[test]
fn a_book_with_unknown_names_is_refused() {
    let err = |json: &str| {
        serde_json::from_str::<PlanBook>(json)
            .unwrap_err()
            .to_string()
    };
    let e = err(r#"{"plans": [{"needs": [{"count": 1, "kinds": ["truck"]}]}]}"#);
    assert!(
        e.contains(r#"unknown unit kind "truck": expected car, foot, e-bike or motorcycle"#),
        "{e}"
    );
    // the wire spelling is not the config spelling
    assert!(err(r#"{"plans": [{"needs": [{"kinds": ["Car"]}]}]}"#).contains("unknown unit kind"));
    assert!(err(r#"{"plans": [{"needs": [{"cuont": 1}]}]}"#).contains("unknown field `cuont`"));
    assert!(
        err(r#"{"plans": [{"type": "fight", "needs": [{}]}]}"#).contains("unknown field `type`")
    );
    assert!(err(r#"{"plan": []}"#).contains("unknown field `plan`"));
    assert!(err(r#"{"plans": [{"priorities": [1], "needs": [{}]}]}"#).contains("invalid length 1"));
    // validation runs while parsing
    let e = err(r#"{"plans": [{"needs": [{"count": 1}]}, {"needs": [{"count": 0}]}]}"#);
    assert!(e.contains("invalid plans[1].needs[0].count = 0"), "{e}");
}

#[test]
fn validation_names_the_field_and_value() {
    let fails = |change: fn(&mut PlanBook)| {
        let mut book = PlanBook {
            plans: vec![plan("*", 1..=5, 1), plan("theft", 1..=5, 1), fight_plan()],
            default: ResponsePlan::one_unit(),
        };
        assert_eq!(book.validate(), Ok(()));
        change(&mut book);
        match book.validate() {
            Err(e @ Error::Invalid { .. }) => e.to_string(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    };
    let starts = |got: String, want: &str| assert!(got.starts_with(want), "{got}");
    starts(
        fails(|b| b.plans[2].needs[0].count = 0),
        "invalid plans[2].needs[0].count = 0: must be 1..=100 units",
    );
    starts(
        fails(|b| b.plans[2].optional[0].within_s = Some(-5.0)),
        "invalid plans[2].optional[0].within_s = -5",
    );
    starts(
        fails(|b| b.plans[2].optional[0].within_s = Some(f64::INFINITY)),
        "invalid plans[2].optional[0].within_s = inf",
    );
    starts(
        fails(|b| b.plans[1].priorities = 0..=2),
        "invalid plans[1].priorities = [0, 2]",
    );
    starts(
        fails(|b| {
            #[allow(clippy::reversed_empty_ranges)]
            let backwards = 3..=1;
            b.plans[1].priorities = backwards;
        }),
        "invalid plans[1].priorities = [3, 1]",
    );
    starts(
        fails(|b| b.plans[1].priorities = 1..=6),
        "invalid plans[1].priorities = [1, 6]",
    );
    starts(
        fails(|b| b.plans[1].needs.clear()),
        "invalid plans[1].needs = []",
    );
    starts(
        fails(|b| b.plans[2].needs[1].kinds = vec![UnitKind::Car, UnitKind::Foot, UnitKind::Car]),
        r#"invalid plans[2].needs[1].kinds[2] = "car": is named twice"#,
    );
    starts(
        fails(|b| b.plans[2].needs[0].capabilities = vec!["medic".into(), String::new()]),
        r#"invalid plans[2].needs[0].capabilities[1] = """#,
    );
    starts(
        fails(|b| b.plans[1].incident_type = String::new()),
        r#"invalid plans[1].incident_type = """#,
    );
    starts(
        fails(|b| b.plans[1].incident_type = "x".repeat(65)),
        "invalid plans[1].incident_type",
    );
    starts(
        fails(|b| b.plans[2].needs[0].count = MAX_PLAN_UNITS),
        "invalid plans[2] = 102 units: needs and optional needs may ask for at most 100 units together",
    );
    starts(
        fails(|b| b.plans.push(plan("theft", 1..=5, 3))),
        r#"invalid plans[3] = "theft" priorities [1, 5]: plans[1] has the same"#,
    );
    starts(
        fails(|b| b.default.incident_type = "fight".into()),
        r#"invalid default.incident_type = "fight""#,
    );
    starts(
        fails(|b| b.default.priorities = 1..=3),
        "invalid default.priorities = [1, 3]",
    );
    starts(
        fails(|b| b.default.needs[0].count = 0),
        "invalid default.needs[0].count = 0",
    );
}

#[test]
fn candidate_queries_cover_every_kind_a_need_admits() {
    let queries = fight_plan().candidate_queries();
    // "two units" admits every kind; the car and foot searches are the same
    // as those, so they are left out
    let kinds: Vec<Vec<UnitKind>> = queries.iter().map(|q| q.kinds.clone()).collect();
    assert_eq!(
        kinds,
        [
            vec![UnitKind::Car],
            vec![UnitKind::Foot],
            vec![UnitKind::EBike],
            vec![UnitKind::Motorcycle]
        ]
    );
    assert!(
        queries
            .iter()
            .all(|q| q.k == 4 && q.max_distance_m.is_none())
    );
    let medic = ResponsePlan {
        needs: vec![
            Need::of(1, UnitKind::Car),
            Need {
                capabilities: vec!["medic".into()],
                ..Need::of(1, UnitKind::Car)
            },
        ],
        ..ResponsePlan::one_unit()
    };
    let queries = medic.candidate_queries();
    assert_eq!(queries.len(), 2);
    assert_eq!(queries[1].required_capabilities, ["medic"]);
}

/// Candidates: (kind, medic, eta seconds).
fn candidates_strategy() -> impl Strategy<Value = Vec<(UnitKind, bool, f64)>> {
    let kind = prop_oneof![
        Just(UnitKind::Car),
        Just(UnitKind::Foot),
        Just(UnitKind::EBike),
        Just(UnitKind::Motorcycle)
    ];
    prop::collection::vec((kind, any::<bool>(), 0.0f64..900.0), 0..12)
}

fn need_strategy() -> impl Strategy<Value = Need> {
    (
        1u32..4,
        prop::sample::subsequence(
            vec![
                UnitKind::Car,
                UnitKind::Foot,
                UnitKind::EBike,
                UnitKind::Motorcycle,
            ],
            0..3,
        ),
        any::<bool>(),
        prop::option::of(30.0f64..600.0),
    )
        .prop_map(|(count, kinds, medic, within_s)| Need {
            count,
            kinds,
            capabilities: if medic { vec!["medic".into()] } else { vec![] },
            within_s,
        })
}

proptest! {
    /// For any plan and candidates: no unit twice, fastest first, every
    /// chosen unit fills a need it matches, no need counts more than it
    /// asks, a need is short exactly when no unchosen unit could have
    /// filled it, and the late unit it names arrives after the limit.
    #[test]
    fn fill_keeps_its_rules(
        cands in candidates_strategy(),
        needs in prop::collection::vec(need_strategy(), 1..4),
        optional in prop::collection::vec(need_strategy(), 0..3),
    ) {
        let medic = vec!["medic".to_string()];
        let candidates: Vec<PlanCandidate<'_, usize>> = cands
            .iter()
            .enumerate()
            .map(|(i, &(kind, has_medic, eta_s))| PlanCandidate {
                key: i,
                kind,
                capabilities: if has_medic { &medic } else { NONE },
                eta_s,
            })
            .collect();
        let plan = ResponsePlan { needs, optional, ..ResponsePlan::one_unit() };
        let f = fill(&plan, &candidates);
        let matches = |n: &Need, c: &PlanCandidate<'_, usize>| {
            (n.kinds.is_empty() || n.kinds.contains(&c.kind))
                && n.capabilities.iter().all(|t| c.capabilities.contains(t))
                && n.within_s.is_none_or(|w| c.eta_s <= w)
        };
        let mut seen = std::collections::HashSet::new();
        for pair in f.chosen.windows(2) {
            prop_assert!(pair[0].eta_s <= pair[1].eta_s);
        }
        for c in &f.chosen {
            prop_assert!(seen.insert(c.key));
            prop_assert_eq!(c.counts_for[0], c.chosen_for);
            for r in &c.counts_for {
                prop_assert!(matches(plan.need(*r).unwrap(), &candidates[c.key]));
            }
        }
        prop_assert!(f.chosen.len() as u32 <= plan.max_units());
        let all = plan.needs.iter().enumerate().map(|(i, n)| (NeedRef::Required(i), n))
            .chain(plan.optional.iter().enumerate().map(|(i, n)| (NeedRef::Optional(i), n)));
        for (r, need) in all {
            let counted = f.chosen.iter().filter(|c| c.counts_for.contains(&r)).count() as u32;
            prop_assert!(counted <= need.count);
            let short = f.shortfalls.iter().find(|s| s.need == r);
            prop_assert_eq!(short.is_some(), counted < need.count);
            if let Some(s) = short {
                prop_assert_eq!(s.found, counted);
                // nobody left out could have filled it
                for c in &candidates {
                    if !seen.contains(&c.key) {
                        prop_assert!(!matches(need, c));
                    }
                }
                if let Some(late) = &s.nearest_late {
                    prop_assert!(late.eta_s > need.within_s.unwrap());
                }
            }
        }
    }

    /// "n units, at least m of kind K" chooses exactly the n fastest units
    /// that include the m fastest of kind K, when there are enough.
    #[test]
    fn at_least_m_of_a_kind_is_the_smallest_fastest_set(
        cands in candidates_strategy(),
        n in 1u32..5,
        m in 1u32..3,
    ) {
        let candidates: Vec<PlanCandidate<'_, usize>> = cands
            .iter()
            .enumerate()
            .map(|(i, &(kind, _, eta_s))| PlanCandidate { key: i, kind, capabilities: NONE, eta_s })
            .collect();
        let plan = ResponsePlan {
            needs: vec![Need::any(n), Need::of(m, UnitKind::Car)],
            ..ResponsePlan::one_unit()
        };
        let f = fill(&plan, &candidates);
        let mut by_eta: Vec<&PlanCandidate<'_, usize>> = candidates.iter().collect();
        by_eta.sort_by(|a, b| a.eta_s.total_cmp(&b.eta_s));
        let cars: Vec<usize> = by_eta.iter().filter(|c| c.kind == UnitKind::Car)
            .take(m as usize).map(|c| c.key).collect();
        let others: Vec<usize> = by_eta.iter().map(|c| c.key).filter(|k| !cars.contains(k))
            .take((n as usize).saturating_sub(cars.len())).collect();
        let mut want: Vec<usize> = cars.into_iter().chain(others).collect();
        want.sort_by(|a, b| candidates[*a].eta_s.total_cmp(&candidates[*b].eta_s));
        let mut got: Vec<usize> = f.chosen.iter().map(|c| c.key).collect();
        got.sort_by(|a, b| candidates[*a].eta_s.total_cmp(&candidates[*b].eta_s));
        let eta = |ks: &[usize]| ks.iter().map(|k| candidates[*k].eta_s).collect::<Vec<_>>();
        prop_assert_eq!(eta(&got), eta(&want));
    }
}
