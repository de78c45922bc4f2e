//! Ranking by who arrives first, on the real Helsinki street network: the
//! core's network ETAs agree with a plain Dijkstra written here over the same
//! graph, its top k is the true top k, and there are places where the unit
//! nearest by straight line is not the first to arrive (a one-way street for
//! a car; a foot officer across a pedestrian area) and the core picks the
//! faster one.

mod common;

use common::{graph, independent_eta_s, network};
use patrol_dispatcher::network::profile_of;
use patrol_dispatcher::{
    Actor, Dispatcher, DispatcherConfig, EtaMethod, ExclusionReason, LonLat, Ping, Target,
    UnitKind, UnitProfile, UnitQuery,
};
use patrol_roads::{Metric, RoadGraph};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const NOW: i64 = 1_800_000_000_000;

/// A random point on a street (any edge some profile may use).
fn point_on_network(g: &RoadGraph, rng: &mut StdRng) -> LonLat {
    loop {
        let edge = rng.random_range(0..g.edge_count() as u32);
        let usable = [UnitKind::Car, UnitKind::Foot]
            .iter()
            .any(|&k| g.is_usable(edge, Metric::normal(profile_of(k))));
        if usable {
            let offset = rng.random::<f64>() * g.edge_length_m(edge);
            return g.point_along(edge, offset);
        }
    }
}

fn core_with(units: &[(String, UnitKind, LonLat)]) -> Dispatcher {
    let mut d = Dispatcher::new(DispatcherConfig {
        network: Some(network()),
        ..Default::default()
    });
    for (id, kind, at) in units {
        d.register_unit(
            UnitProfile {
                id: id.clone(),
                call_sign: id.clone(),
                kind: *kind,
                capabilities: vec![],
            },
            NOW,
        )
        .unwrap();
        d.apply_ping(
            &Ping {
                unit_id: id,
                time: NOW - 1_000,
                at: *at,
                speed_mps: None,
                heading_deg: None,
                accuracy_m: None,
            },
            NOW,
        )
        .unwrap();
    }
    d
}

#[test]
fn network_etas_agree_with_a_plain_dijkstra_and_the_top_k_is_exact() {
    let g = graph();
    let net = network();
    let mut rng = StdRng::seed_from_u64(11);
    let kinds = [
        UnitKind::Car,
        UnitKind::Foot,
        UnitKind::EBike,
        UnitKind::Motorcycle,
    ];
    let units: Vec<(String, UnitKind, LonLat)> = (0..300)
        .map(|i| {
            (
                format!("u{i}"),
                kinds[i % 4],
                point_on_network(&g, &mut rng),
            )
        })
        .collect();
    let core = core_with(&units);
    let mut network_picks = 0;
    for _ in 0..30 {
        let target = point_on_network(&g, &mut rng);
        let query = UnitQuery {
            k: 5,
            ..Default::default()
        };
        let rec = core.recommend(&Target::Point(target), &query, NOW).unwrap();
        assert_eq!(rec.units.len(), 5);
        for pick in &rec.units {
            let (_, kind, at) = units.iter().find(|u| u.0 == pick.unit.profile.id).unwrap();
            let want = independent_eta_s(&net, *kind, *at, target);
            assert!(
                (pick.eta_s - want).abs() < 1.0,
                "{}: core {:.3} s, Dijkstra {want:.3} s",
                pick.unit.profile.id,
                pick.eta_s
            );
            network_picks += usize::from(pick.eta_method == EtaMethod::Network);
        }
        // The true top 5 by the independent ETAs.
        let mut all: Vec<f64> = units
            .iter()
            .map(|(_, kind, at)| independent_eta_s(&net, *kind, *at, target))
            .collect();
        all.sort_by(f64::total_cmp);
        for (pick, want) in rec.units.iter().zip(&all[..5]) {
            assert!(
                (pick.eta_s - want).abs() < 1.0,
                "rank mismatch: core {:.2} s vs true {want:.2} s",
                pick.eta_s
            );
        }
    }
    assert!(
        network_picks > 100,
        "most picks are network ETAs: {network_picks}"
    );
}

/// Looks for a target and two units of `near_kind` and `far_kind`, the first
/// nearer by straight line, the second arriving sooner by at least `margin_s`.
fn find_case(
    near_kind: UnitKind,
    far_kind: UnitKind,
    near_m: std::ops::Range<f64>,
    far_m: std::ops::Range<f64>,
    margin_s: f64,
    seed: u64,
) -> (LonLat, LonLat, LonLat) {
    let g = graph();
    let net = network();
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..200_000 {
        let target = point_on_network(&g, &mut rng);
        let near = point_on_network(&g, &mut rng);
        let dn = near.distance_m(&target);
        if !near_m.contains(&dn) {
            continue;
        }
        let far = point_on_network(&g, &mut rng);
        let df = far.distance_m(&target);
        if !far_m.contains(&df) || df <= dn {
            continue;
        }
        let eta_near = independent_eta_s(&net, near_kind, near, target);
        let eta_far = independent_eta_s(&net, far_kind, far, target);
        if eta_far + margin_s < eta_near {
            return (target, near, far);
        }
    }
    panic!("no such case found on the map");
}

fn first_and_explanation(
    units: &[(String, UnitKind, LonLat)],
    target: LonLat,
) -> patrol_dispatcher::Recommendation {
    let core = core_with(units);
    core.recommend(
        &Target::Point(target),
        &UnitQuery {
            k: 1,
            ..Default::default()
        },
        NOW,
    )
    .unwrap()
}

#[test]
fn a_car_nearer_by_straight_line_but_behind_one_way_streets_is_not_first() {
    let (target, near, far) = find_case(
        UnitKind::Car,
        UnitKind::Car,
        60.0..200.0,
        200.0..400.0,
        30.0,
        3,
    );
    let units = vec![
        ("near-car".to_string(), UnitKind::Car, near),
        ("far-car".to_string(), UnitKind::Car, far),
    ];
    let rec = first_and_explanation(&units, target);
    assert_eq!(rec.units[0].unit.profile.id, "far-car", "{rec:#?}");
    assert_eq!(rec.units[0].eta_method, EtaMethod::Network);
    let later = rec
        .excluded
        .iter()
        .find(|e| e.unit_id == "near-car")
        .expect("the nearer car is explained");
    assert_eq!(later.reason, ExclusionReason::ArrivesLater);
    // The straight line would have picked the other one.
    assert!(near.distance_m(&target) < far.distance_m(&target));
}

#[test]
fn a_foot_officer_across_a_pedestrian_area_beats_a_nearer_car() {
    let (target, car, officer) = find_case(
        UnitKind::Car,
        UnitKind::Foot,
        100.0..170.0,
        170.0..260.0,
        20.0,
        5,
    );
    let units = vec![
        ("car".to_string(), UnitKind::Car, car),
        ("officer".to_string(), UnitKind::Foot, officer),
    ];
    let rec = first_and_explanation(&units, target);
    assert_eq!(rec.units[0].unit.profile.id, "officer", "{rec:#?}");
    assert!(
        rec.units[0].reason.contains("foot"),
        "{}",
        rec.units[0].reason
    );
}

#[test]
fn orders_carry_the_route_over_the_network() {
    let g = graph();
    let mut rng = StdRng::seed_from_u64(8);
    let at = point_on_network(&g, &mut rng);
    let target = point_on_network(&g, &mut rng);
    let mut core = core_with(&[("car-1".to_string(), UnitKind::Car, at)]);
    let incident = core
        .create_incident(
            patrol_dispatcher::NewIncident {
                kind: "theft".into(),
                priority: Some(3),
                location: target,
                source: patrol_dispatcher::IncidentSource::Call,
                description: String::new(),
                request_id: None,
            },
            &Actor::default(),
            NOW,
        )
        .unwrap();
    let (_, orders) = core
        .dispatch(
            &patrol_dispatcher::DispatchRequest {
                intercept: Default::default(),
                incident_id: incident.id,
                unit_ids: vec!["car-1".into()],
                note: String::new(),
                request_id: None,
            },
            &Actor::default(),
            NOW,
        )
        .unwrap();
    let order = &orders[0];
    assert_eq!(order.eta_method, Some(EtaMethod::Network));
    assert!(order.route.len() >= 3, "{:?}", order.route);
    assert_eq!(order.route.first(), Some(&at));
    assert_eq!(order.route.last(), Some(&target));
    let want = independent_eta_s(&network(), UnitKind::Car, at, target);
    assert!((order.eta_s.unwrap() - want).abs() < 1.0);
    // The route is no shorter than the straight line.
    assert!(order.route_m.unwrap() + 1.0 >= at.distance_m(&target));
}

#[test]
fn without_a_network_every_eta_says_it_is_a_straight_line() {
    let mut rng = StdRng::seed_from_u64(9);
    let g = graph();
    let units: Vec<_> = (0..10)
        .map(|i| {
            (
                format!("u{i}"),
                UnitKind::Car,
                point_on_network(&g, &mut rng),
            )
        })
        .collect();
    let mut core = Dispatcher::new(DispatcherConfig::default());
    for (id, kind, at) in &units {
        core.register_unit(
            UnitProfile {
                id: id.clone(),
                call_sign: id.clone(),
                kind: *kind,
                capabilities: vec![],
            },
            NOW,
        )
        .unwrap();
        core.apply_ping(
            &Ping {
                unit_id: id,
                time: NOW - 1_000,
                at: *at,
                speed_mps: None,
                heading_deg: None,
                accuracy_m: None,
            },
            NOW,
        )
        .unwrap();
    }
    let rec = core
        .recommend(
            &Target::Point(point_on_network(&g, &mut rng)),
            &UnitQuery {
                k: 3,
                ..Default::default()
            },
            NOW,
        )
        .unwrap();
    for u in &rec.units {
        assert_eq!(u.eta_method, EtaMethod::StraightLine);
        assert!(u.reason.contains("straight line"), "{}", u.reason);
    }
    let _ = rng.random::<u8>();
}
