//! A core rebuilt from its exported records behaves exactly like the original:
//! the same state, and the same events (same order) for the same commands,
//! actors and request ids; two cores fed the same commands agree byte for
//! byte.

use patrol_dispatcher::persist::CoreState;
use patrol_dispatcher::*;

const NOW: Millis = 1_700_000_000_000;

/// The operator every test command comes from, unless it says otherwise.
fn op() -> Actor {
    Actor::new("alice", "operator")
        .with_peer("10.0.0.5:4431")
        .with_node("node-a")
}

/// A patrol terminal reporting for `unit`.
fn terminal(unit: &str) -> Actor {
    Actor::new(unit, "terminal")
        .with_peer("100.64.0.9:7000")
        .with_node("node-b")
}

/// The video analytics box posting alerts.
fn nvr() -> Actor {
    Actor::new("nvr-1", "camera").with_node("node-a")
}

fn with_id(mut request: DispatchRequest, request_id: &str) -> DispatchRequest {
    request.request_id = Some(request_id.into());
    request
}

fn send(incident_id: &str, unit_ids: &[&str], note: &str) -> DispatchRequest {
    DispatchRequest {
        intercept: Default::default(),
        incident_id: incident_id.into(),
        unit_ids: unit_ids.iter().map(|u| u.to_string()).collect(),
        note: note.into(),
        request_id: None,
    }
}

fn to(id: &str, status: IncidentStatus, note: &str) -> IncidentUpdate {
    IncidentUpdate {
        id: id.into(),
        status,
        note: note.into(),
        request_id: None,
    }
}

fn ping(d: &mut Dispatcher, id: &str, lon: f64, lat: f64, time: Millis) {
    d.apply_ping(
        &Ping {
            unit_id: id,
            time,
            at: LonLat::new(lon, lat),
            speed_mps: Some(3.0),
            heading_deg: None,
            accuracy_m: Some(5.0),
        },
        time,
    )
    .unwrap();
}

fn busy_city() -> Dispatcher {
    let mut d = Dispatcher::new(DispatcherConfig::default());
    for i in 0..12 {
        let id = format!("u{i}");
        d.register_unit(
            UnitProfile {
                id: id.clone(),
                call_sign: format!("P-{i}"),
                kind: if i % 3 == 0 {
                    UnitKind::Foot
                } else {
                    UnitKind::Car
                },
                capabilities: if i % 2 == 0 {
                    vec!["k9".into()]
                } else {
                    vec!["medic".into(), "k9".into()]
                },
            },
            NOW,
        )
        .unwrap();
        // Unit 11 never reports: it stays offline.
        if i < 11 {
            ping(&mut d, &id, 24.93 + i as f64 * 0.002, 60.17, NOW - 1000 + i);
        }
    }
    d.update_unit_status("u5", UnitStatus::OffDuty, &terminal("u5"), NOW)
        .unwrap();
    d.register_camera(Camera {
        id: "cam-1".into(),
        name: "Market".into(),
        at: LonLat::new(24.95, 60.168),
        mount_height_m: 6.0,
        heading_deg: 90.0,
        fov_deg: 60.0,
        range_m: 80.0,
        ptz: true,
        ..Camera::default()
    })
    .unwrap();
    d.post_alert(
        NewAlert {
            camera_id: "cam-1".into(),
            time: None,
            label: "fight".into(),
            confidence: 0.9,
            snapshot_uri: String::new(),
            request_id: Some("evt-1".into()),
            object_id: None,
            location: None,
        },
        &nvr(),
        NOW,
    )
    .unwrap();
    let inc = d
        .create_incident(
            NewIncident {
                kind: "theft".into(),
                priority: Some(2),
                location: LonLat::new(24.941, 60.1705),
                source: IncidentSource::Call,
                description: "bike".into(),
                request_id: Some("call-1".into()),
            },
            &op(),
            NOW,
        )
        .unwrap();
    d.dispatch(
        &with_id(send(&inc.id, &["u1", "u2"], "go"), "send-1"),
        &op(),
        NOW,
    )
    .unwrap();
    d.update_unit_status("u2", UnitStatus::EnRoute, &terminal("u2"), NOW)
        .unwrap();
    d.sweep_offline(NOW);
    d.take_moved();
    d.take_events();
    d
}

/// The same commands on both cores, returning each core's events.
fn carry_on(d: &mut Dispatcher) -> Vec<Event> {
    let later = NOW + 200_000; // every fix is now stale
    ping(d, "u3", 24.95, 60.171, later - 10);
    d.sweep_offline(later);
    let incidents = d.list_incidents(&[IncidentStatus::Dispatched], 10);
    let inc = incidents[0].id.clone();
    let mut events = d.take_events();
    // retries of commands applied before the checkpoint: recognised, so
    // nothing is created or refused and no event is emitted
    let call = NewIncident {
        kind: "theft".into(),
        priority: Some(2),
        location: LonLat::new(24.941, 60.1705),
        source: IncidentSource::Call,
        description: "bike".into(),
        request_id: Some("call-1".into()),
    };
    assert_eq!(d.create_incident(call, &op(), later).unwrap().id, inc);
    let (_, orders) = d
        .dispatch(
            &with_id(send(&inc, &["u1", "u2"], "go"), "send-1"),
            &op(),
            later,
        )
        .unwrap();
    assert_eq!(orders.len(), 2);
    assert!(!d.has_events(), "{:?}", d.take_events());
    // a used id with other content is refused the same way everywhere
    assert!(
        d.dispatch(&with_id(send(&inc, &["u4"], "go"), "send-1"), &op(), later)
            .is_err()
    );
    let chief = Actor::new("duty-chief", "supervisor").with_node("node-c");
    let close = IncidentUpdate {
        request_id: Some("close-1".into()),
        ..to(&inc, IncidentStatus::Closed, "done")
    };
    d.update_incident(&close, &chief, later).unwrap();
    d.update_incident(&close, &chief, later + 1).unwrap();
    let fresh = d
        .create_incident(
            NewIncident {
                kind: "noise".into(),
                priority: None,
                location: LonLat::new(24.95, 60.171),
                source: IncidentSource::Operator,
                description: String::new(),
                request_id: Some("call-2".into()),
            },
            &op(),
            later,
        )
        .unwrap();
    d.dispatch(
        &with_id(send(&fresh.id, &["u3"], ""), "send-2"),
        &op(),
        later,
    )
    .unwrap();
    d.update_unit_status("u3", UnitStatus::EnRoute, &terminal("u3"), later)
        .unwrap();
    d.post_alert(
        NewAlert {
            camera_id: "cam-1".into(),
            time: None,
            label: "fight".into(),
            confidence: 0.95,
            snapshot_uri: String::new(),
            request_id: Some("evt-2".into()),
            object_id: None,
            location: None,
        },
        &nvr(),
        later,
    )
    .unwrap();
    events.extend(d.take_events());
    events.extend(d.take_moved().into_iter().map(|(id, fix)| {
        Event::Unit(Unit {
            profile: UnitProfile {
                id,
                call_sign: String::new(),
                kind: UnitKind::Car,
                capabilities: vec![],
            },
            status: UnitStatus::Available,
            fix: Some(fix),
            incident_id: None,
        })
    }));
    events
}

#[test]
fn a_restored_core_equals_the_original_and_carries_on_identically() {
    let mut original = busy_city();
    let exported = original.export_all();
    assert_eq!(exported.units.len(), 12);
    assert_eq!(
        exported.incidents.len(),
        2,
        "the alert opened one, the call one"
    );
    let mut restored =
        Dispatcher::restore(DispatcherConfig::default(), exported.clone()).expect("restores");
    assert_eq!(restored.export_all(), exported);
    assert_eq!(
        restored.snapshot(NOW + 1),
        original.snapshot(NOW + 1),
        "callers see the same units, cameras and incidents"
    );
    let a = carry_on(&mut original);
    let b = carry_on(&mut restored);
    assert!(a.len() > 10, "{a:?}");
    assert_eq!(a, b);
    assert_eq!(restored.export_all(), original.export_all());
}

#[test]
fn two_cores_fed_the_same_commands_agree_byte_for_byte() {
    let (mut a, mut b) = (busy_city(), busy_city());
    let (events_a, events_b) = (carry_on(&mut a), carry_on(&mut b));
    assert_eq!(events_a, events_b);
    let (state_a, state_b) = (a.export_all(), b.export_all());
    assert_eq!(state_a, state_b);
    // what a checkpoint writes is identical too (no hash-map order leaks)
    let json = |s: &CoreState| {
        (
            serde_json::to_string(&s.meta).unwrap(),
            serde_json::to_string(&s.incidents).unwrap(),
        )
    };
    assert_eq!(json(&state_a), json(&state_b));
    // the audit trail names who did what, on both
    let closed = state_a
        .incidents
        .iter()
        .find(|i| i.incident.status == IncidentStatus::Closed)
        .expect("carry_on closes the call");
    let who: Vec<String> = closed
        .incident
        .audit
        .iter()
        .map(|e| format!("{}: {}", e.action, e.actor))
        .collect();
    assert!(
        who.contains(&"status: duty-chief (supervisor) via node-c".to_string()),
        "{who:?}"
    );
    assert!(
        who.contains(&"dispatched: alice (operator) from 10.0.0.5:4431 via node-a".to_string()),
        "{who:?}"
    );
    let requests: Vec<&str> = state_a
        .meta
        .requests
        .iter()
        .map(|r| r.request_id.as_str())
        .collect();
    assert_eq!(
        requests,
        [
            "evt-1", "call-1", "send-1", "close-1", "call-2", "send-2", "evt-2"
        ]
    );
}

#[test]
fn restore_survives_a_json_round_trip_and_refuses_gaps() {
    let original = busy_city();
    let mut state = original.export_all();
    let units: Vec<_> = state
        .units
        .iter()
        .map(|u| serde_json::to_string(u).unwrap())
        .collect();
    state.units = units
        .iter()
        .rev()
        .map(|j| serde_json::from_str(j).unwrap())
        .collect();
    let restored = Dispatcher::restore(DispatcherConfig::default(), state.clone()).unwrap();
    assert_eq!(restored.export_all(), original.export_all());

    let mut gap = state;
    gap.units.retain(|u| u.slot != 4);
    let err = Dispatcher::restore(DispatcherConfig::default(), gap).unwrap_err();
    assert!(err.to_string().contains("unit slot 4"), "{err}");
    let _ = CoreState::default();
}

#[test]
fn checkpoints_from_the_older_build_still_load() {
    // An incident record written before audit entries named their actor.
    let old = r#"{"slot":0,"incident":{"id":"inc-1","kind":"theft","priority":2,
        "location":{"lon":24.941,"lat":60.1705},"source":"Call","status":"New",
        "description":"","unit_ids":[],"camera_ids":[],"alert_ids":[],
        "created":1,"updated":1,
        "audit":[{"time":1,"action":"created","detail":"theft p2"}]}}"#;
    let state: patrol_dispatcher::persist::IncidentState = serde_json::from_str(old).unwrap();
    assert_eq!(state.incident.audit[0].actor, Actor::default());
    assert_eq!(state.incident.audit[0].actor.to_string(), "anonymous");
}
