//! `recommend` against brute force: over random cities, random statuses, stale
//! fixes and random moves (which move units between cells of several sizes), the recommended
//! units are exactly the k nearest eligible ones by haversine.

use patrol_dispatcher::*;
use proptest::prelude::*;

const NOW: Millis = 10_000_000;

#[derive(Debug, Clone)]
struct SimUnit {
    kind: UnitKind,
    medic: bool,
    /// 0: available, 1: busy, 2: off duty, 3: stale fix, 4: never pinged
    state: u8,
    moves: Vec<(f64, f64)>,
}

fn kind_strategy() -> impl Strategy<Value = UnitKind> {
    prop_oneof![
        Just(UnitKind::Car),
        Just(UnitKind::Foot),
        Just(UnitKind::EBike),
        Just(UnitKind::Motorcycle)
    ]
}

fn unit_strategy() -> impl Strategy<Value = SimUnit> {
    (
        kind_strategy(),
        any::<bool>(),
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8)],
        // positions in a ~0.2 x 0.1 degree box around Helsinki; 1-3 fixes
        prop::collection::vec((24.85f64..25.05, 60.13f64..60.23), 1..4),
    )
        .prop_map(|(kind, medic, state, moves)| SimUnit {
            kind,
            medic,
            state,
            moves,
        })
}

fn build(units: &[SimUnit], cell_size_m: f64) -> Dispatcher {
    let mut d = Dispatcher::new(DispatcherConfig {
        units: UnitIndexConfig {
            cell_size_m,
            ..Default::default()
        },
        ..Default::default()
    });
    for (i, u) in units.iter().enumerate() {
        let id = format!("u{i}");
        let capabilities = if u.medic {
            vec!["medic".to_string()]
        } else {
            vec![]
        };
        d.register_unit(
            UnitProfile {
                id: id.clone(),
                call_sign: id.clone(),
                kind: u.kind,
                capabilities,
            },
            NOW,
        )
        .unwrap();
        if u.state == 4 {
            continue;
        }
        let base_time = if u.state == 3 {
            NOW - 600_000
        } else {
            NOW - 10_000
        };
        for (j, &(lon, lat)) in u.moves.iter().enumerate() {
            let ping = Ping {
                unit_id: &id,
                time: base_time + j as i64,
                at: LonLat::new(lon, lat),
                speed_mps: None,
                heading_deg: None,
                accuracy_m: None,
            };
            d.apply_ping(&ping, NOW).unwrap();
        }
        match u.state {
            1 => {
                d.update_unit_status(&id, UnitStatus::Busy, &Actor::default(), NOW)
                    .unwrap();
            }
            2 => {
                d.update_unit_status(&id, UnitStatus::OffDuty, &Actor::default(), NOW)
                    .unwrap();
            }
            _ => {}
        }
    }
    d
}

/// Distances of the k nearest eligible units, by brute force.
fn brute_force(units: &[SimUnit], target: LonLat, query: &UnitQuery) -> Vec<f64> {
    let mut eligible: Vec<f64> = units
        .iter()
        .filter(|u| u.state == 0)
        .filter(|u| query.kinds.is_empty() || query.kinds.contains(&u.kind))
        .filter(|u| query.required_capabilities.is_empty() || u.medic)
        .map(|u| {
            let (lon, lat) = *u.moves.last().unwrap();
            LonLat::new(lon, lat).distance_m(&target)
        })
        .filter(|d| query.max_distance_m.is_none_or(|m| *d <= m))
        .collect();
    eligible.sort_by(f64::total_cmp);
    eligible.truncate(query.k);
    eligible
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn recommend_matches_brute_force_haversine(
        units in prop::collection::vec(unit_strategy(), 0..120),
        target in (24.8f64..25.1, 60.1f64..60.26),
        k in 1usize..8,
        kinds in prop::collection::vec(kind_strategy(), 0..2),
        medic in any::<bool>(),
        max_distance in prop::option::of(500.0f64..8000.0),
        cell_size_m in prop_oneof![Just(10.0), Just(150.0), Just(5000.0)],
    ) {
        let d = build(&units, cell_size_m);
        let target = LonLat::new(target.0, target.1);
        let query = UnitQuery {
            include_routes: Default::default(),
            priority: Default::default(),
            k,
            kinds,
            required_capabilities: if medic { vec!["medic".into()] } else { vec![] },
            max_distance_m: max_distance,
        };
        let got = d.recommend(&Target::Point(target), &query, NOW).unwrap();
        let want = brute_force(&units, target, &query);
        let got_d: Vec<f64> = got.units.iter().map(|r| r.distance_m).collect();
        prop_assert_eq!(got_d.len(), want.len(), "got {:?} want {:?}", got_d, want);
        for (g, w) in got_d.iter().zip(&want) {
            prop_assert!((g - w).abs() < 1e-6, "got {:?} want {:?}", got_d, want);
        }
        // the bare search agrees with the explained recommendation
        let nearest: Vec<f64> = d.nearest(&Target::Point(target), &query, NOW).unwrap().distances_m().collect();
        prop_assert_eq!(nearest.len(), got_d.len());
        for (n, g) in nearest.iter().zip(&got_d) {
            prop_assert!((n - g).abs() < 1e-3, "nearest {:?} vs recommend {:?}", nearest, got_d);
        }
        for r in &got.units {
            prop_assert_eq!(r.unit.status, UnitStatus::Available);
        }
        // every exclusion is a real, closer-than-last-pick, ineligible unit
        if let Some(last) = got_d.last().filter(|_| got_d.len() == k) {
            for e in &got.excluded {
                prop_assert!(e.distance_m <= *last + 1e-6);
            }
        }
    }
}
