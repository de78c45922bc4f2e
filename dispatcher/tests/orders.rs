//! After dispatch, driven by the core's `now`: acknowledgements, an order
//! nobody acknowledged withdrawn and the next unit sent, overdue units
//! alerted once, response plans filled with their shortfalls, the most
//! urgent incidents dispatched by their plan, and the position trust rules on
//! ingest.

use patrol_dispatcher::{
    Actor, DispatchPolicy, DispatchRequest, Dispatcher, DispatcherConfig, Event, IncidentSource,
    LonLat, Need, NewIncident, PingRejection, PlanBook, ResponsePlan, Target, UnitAlertKind,
    UnitKind, UnitProfile, UnitQuery, UnitStatus,
};

const NOW: i64 = 1_800_000_000_000;
const LON: f64 = 24.94;
const LAT: f64 = 60.17;

fn op() -> Actor {
    Actor {
        identity: "op".into(),
        ..Default::default()
    }
}

fn ping(d: &mut Dispatcher, id: &str, time: i64, at: LonLat) -> Result<(), PingRejection> {
    d.apply_ping(
        &patrol_dispatcher::Ping {
            unit_id: id,
            time,
            at,
            speed_mps: None,
            heading_deg: None,
            accuracy_m: Some(5.0),
        },
        time,
    )
    .map(|_| ())
}

/// Units at increasing distances east of the incident point.
fn city(config: DispatcherConfig, units: &[(&str, UnitKind)]) -> Dispatcher {
    let mut d = Dispatcher::new(config);
    for (i, (id, kind)) in units.iter().enumerate() {
        d.register_unit(
            UnitProfile {
                id: id.to_string(),
                call_sign: id.to_string(),
                kind: *kind,
                capabilities: vec![],
            },
            NOW,
        )
        .unwrap();
        ping(
            &mut d,
            id,
            NOW - 1_000,
            LonLat::new(LON + 0.001 * (i + 1) as f64, LAT),
        )
        .unwrap();
    }
    d.take_events();
    d
}

fn incident(d: &mut Dispatcher, kind: &str, priority: u32, now: i64) -> String {
    d.create_incident(
        NewIncident {
            kind: kind.into(),
            priority: Some(priority),
            location: LonLat::new(LON, LAT),
            source: IncidentSource::Call,
            description: String::new(),
            request_id: None,
        },
        &op(),
        now,
    )
    .unwrap()
    .id
}

fn send(d: &mut Dispatcher, incident: &str, unit: &str, now: i64) -> String {
    let (_, orders) = d
        .dispatch(
            &DispatchRequest {
                intercept: Default::default(),
                incident_id: incident.into(),
                unit_ids: vec![unit.into()],
                note: String::new(),
                request_id: None,
            },
            &op(),
            now,
        )
        .unwrap();
    orders[0].id.clone()
}

fn alerts(events: &[Event]) -> Vec<(String, UnitAlertKind)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::UnitAlert(a) => Some((a.unit_id.clone(), a.kind)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_unacknowledged_order_is_withdrawn_and_the_next_unit_sent() {
    let config = DispatcherConfig {
        units: patrol_dispatcher::UnitIndexConfig {
            offline_after_ms: 3_600_000,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut d = city(
        config,
        &[
            ("car-1", UnitKind::Car),
            ("car-2", UnitKind::Car),
            ("foot-1", UnitKind::Foot),
        ],
    );
    let inc = incident(&mut d, "theft", 3, NOW);
    send(&mut d, &inc, "car-1", NOW);
    d.take_events();
    // Not yet: 59 s.
    assert_eq!(d.run_timers(NOW + 59_000), 0);
    assert!(d.take_events().is_empty());
    assert_eq!(d.run_timers(NOW + 60_000), 1);
    let events = d.take_events();
    assert_eq!(
        alerts(&events),
        [("car-1".to_string(), UnitAlertKind::OrderNotAcknowledged)]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::OrderReleased(o) if o.unit_id == "car-1"))
    );
    // The next car (same kind first) was sent.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Order(o) if o.unit_id == "car-2")),
        "{events:#?}"
    );
    let incident = d.incident(&inc).unwrap().clone();
    assert_eq!(incident.unit_ids, ["car-2"]);
    assert_eq!(incident.withdrawn_unit_ids, ["car-1"]);
    let actions: Vec<&str> = incident.audit.iter().map(|a| a.action.as_str()).collect();
    assert!(actions.contains(&"order_withdrawn"), "{actions:?}");
    assert_eq!(
        d.unit("car-1", NOW + 60_000).unwrap().status,
        UnitStatus::Available
    );
    // car-2 does not acknowledge either: the foot unit goes, never car-1.
    d.run_timers(NOW + 120_000);
    let incident = d.incident(&inc).unwrap().clone();
    assert_eq!(incident.unit_ids, ["foot-1"]);
    assert_eq!(incident.withdrawn_unit_ids, ["car-1", "car-2"]);
}

#[test]
fn an_acknowledged_order_stays() {
    let mut d = city(
        DispatcherConfig::default(),
        &[("car-1", UnitKind::Car), ("car-2", UnitKind::Car)],
    );
    let inc = incident(&mut d, "theft", 3, NOW);
    let order = send(&mut d, &inc, "car-1", NOW);
    let acked = d
        .acknowledge_order("car-1", &order, &op(), NOW + 5_000)
        .unwrap();
    assert_eq!(acked.acknowledged, Some(NOW + 5_000));
    // Again: harmless; a wrong order id is refused.
    d.acknowledge_order("car-1", &order, &op(), NOW + 6_000)
        .unwrap();
    assert!(
        d.acknowledge_order("car-1", "order-999", &op(), NOW)
            .is_err()
    );
    d.run_timers(NOW + 600_000);
    assert_eq!(d.incident(&inc).unwrap().unit_ids, ["car-1"]);
    let audit = &d.incident(&inc).unwrap().audit;
    assert_eq!(
        audit.iter().filter(|a| a.action == "acknowledged").count(),
        1
    );
}

#[test]
fn a_unit_en_route_too_long_raises_one_alert() {
    let config = DispatcherConfig {
        dispatch: DispatchPolicy {
            en_route_max_ms: 600_000,
            ack_timeout_ms: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut d = city(config, &[("car-1", UnitKind::Car)]);
    let inc = incident(&mut d, "theft", 3, NOW);
    send(&mut d, &inc, "car-1", NOW);
    d.update_unit_status("car-1", UnitStatus::EnRoute, &op(), NOW + 1_000)
        .unwrap();
    d.take_events();
    assert_eq!(d.run_timers(NOW + 600_999), 0);
    assert_eq!(d.run_timers(NOW + 601_000), 1);
    assert_eq!(
        alerts(&d.take_events()),
        [("car-1".to_string(), UnitAlertKind::EnRouteOverdue)]
    );
    assert_eq!(d.run_timers(NOW + 3_600_000), 0, "once per stay");
    // Arriving starts the on-scene timer, not another en-route alert.
    d.update_unit_status("car-1", UnitStatus::OnScene, &op(), NOW + 3_600_000)
        .unwrap();
    d.take_events();
    assert_eq!(d.run_timers(NOW + 3_600_000 + 59 * 60_000), 0);
    assert_eq!(d.run_timers(NOW + 3_600_000 + 60 * 60_000), 1);
    assert_eq!(
        alerts(&d.take_events()),
        [("car-1".to_string(), UnitAlertKind::OnSceneOverdue)]
    );
}

#[test]
fn timers_survive_a_checkpoint_and_rebuild() {
    let mut d = city(
        DispatcherConfig::default(),
        &[("car-1", UnitKind::Car), ("car-2", UnitKind::Car)],
    );
    let inc = incident(&mut d, "theft", 3, NOW);
    send(&mut d, &inc, "car-1", NOW);
    let mut rebuilt = Dispatcher::restore(DispatcherConfig::default(), d.export_all()).unwrap();
    d.take_events();
    rebuilt.take_events();
    assert_eq!(rebuilt.run_timers(NOW + 60_000), d.run_timers(NOW + 60_000));
    assert_eq!(rebuilt.take_events(), d.take_events());
}

fn fight_plan() -> PlanBook {
    PlanBook {
        plans: vec![ResponsePlan {
            incident_type: "fight".into(),
            priorities: 1..=2,
            needs: vec![Need::any(2), Need::of(1, UnitKind::Car)],
            optional: vec![Need::of(1, UnitKind::Foot).within(180.0)],
        }],
        ..Default::default()
    }
}

#[test]
fn recommend_fills_the_incidents_response_plan_and_names_shortfalls() {
    let config = DispatcherConfig {
        plans: fight_plan(),
        ..Default::default()
    };
    // Nearest first: two foot officers, then a car.
    let mut d = city(
        config.clone(),
        &[
            ("foot-1", UnitKind::Foot),
            ("foot-2", UnitKind::Foot),
            ("car-1", UnitKind::Car),
        ],
    );
    let inc = incident(&mut d, "fight", 1, NOW);
    let rec = d
        .recommend(
            &Target::Incident(inc.clone()),
            &UnitQuery {
                k: 5,
                ..Default::default()
            },
            NOW,
        )
        .unwrap();
    let plan = rec.plan.expect("an incident target fills its plan");
    assert!(plan.plan.contains("fight"), "{}", plan.plan);
    let chosen: Vec<&str> = plan.chosen.iter().map(|c| c.unit_id.as_str()).collect();
    assert!(
        chosen.contains(&"car-1"),
        "the plan needs a car: {chosen:?}"
    );
    assert!(chosen.contains(&"foot-1"), "{chosen:?}");
    assert!(plan.complete, "{plan:?}");

    // No car at all: the shortfall says so.
    let mut d = city(
        config,
        &[("foot-1", UnitKind::Foot), ("foot-2", UnitKind::Foot)],
    );
    let inc = incident(&mut d, "fight", 2, NOW);
    let plan = d
        .recommend(
            &Target::Incident(inc),
            &UnitQuery {
                k: 5,
                ..Default::default()
            },
            NOW,
        )
        .unwrap()
        .plan
        .unwrap();
    assert!(!plan.complete);
    assert!(
        plan.shortfalls.iter().any(|s| s.contains("car")),
        "{:?}",
        plan.shortfalls
    );
}

#[test]
fn the_most_urgent_incidents_are_dispatched_by_their_plan() {
    let config = DispatcherConfig {
        plans: fight_plan(),
        dispatch: DispatchPolicy {
            auto_dispatch_max_priority: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut d = city(
        config,
        &[
            ("car-1", UnitKind::Car),
            ("foot-1", UnitKind::Foot),
            ("car-2", UnitKind::Car),
        ],
    );
    let urgent = incident(&mut d, "fight", 1, NOW);
    let got = d.incident(&urgent).unwrap().clone();
    // Two units with a car among them (the two fastest: both cars), and the
    // optional foot officer, who is within three minutes.
    let mut sent = got.unit_ids.clone();
    sent.sort();
    assert_eq!(sent, ["car-1", "car-2", "foot-1"], "{:#?}", got.audit);
    assert!(
        got.audit.iter().any(|a| a.actor.identity == "system"),
        "{:?}",
        got.audit
    );
    // Priority 2 waits for an operator.
    let routine = incident(&mut d, "fight", 2, NOW);
    assert!(d.incident(&routine).unwrap().unit_ids.is_empty());
}

#[test]
fn the_trust_rules_refuse_a_jump_and_accept_a_real_move() {
    let config = DispatcherConfig {
        trust_positions: true,
        ..Default::default()
    };
    let mut d = city(config, &[("foot-1", UnitKind::Foot)]);
    let start = LonLat::new(LON + 0.001, LAT);
    // 3 km in 10 s on foot: refused.
    let far = LonLat::new(LON + 0.055, LAT);
    let err = ping(&mut d, "foot-1", NOW + 10_000, far).unwrap_err();
    assert!(matches!(err, PingRejection::Implausible(_)), "{err:?}");
    assert!(
        err.message("foot-1").contains("foot"),
        "{}",
        err.message("foot-1")
    );
    assert_eq!(
        d.unit("foot-1", NOW + 10_000).unwrap().fix.unwrap().at,
        start
    );
    // A walk (110 m in 80 s) is accepted.
    let near = LonLat::new(LON + 0.003, LAT);
    ping(&mut d, "foot-1", NOW + 80_000, near).unwrap();
    assert_eq!(
        d.unit("foot-1", NOW + 80_000).unwrap().fix.unwrap().at,
        near
    );
}
