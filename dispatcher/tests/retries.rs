//! Idempotent retries: a command sent again with the same `request_id` and
//! the same content returns the first result and changes nothing; the same
//! id with other content is refused; ids expire; a rebuilt core remembers.

use patrol_dispatcher::*;

const NOW: Millis = 1_700_000_000_000;

fn op() -> Actor {
    Actor::new("alice", "operator")
        .with_peer("10.0.0.5:4431")
        .with_node("node-a")
}

fn city(config: DispatcherConfig) -> Dispatcher {
    let mut d = Dispatcher::new(config);
    for (i, lon) in [24.940, 24.945, 24.960].into_iter().enumerate() {
        let id = format!("u{i}");
        d.register_unit(
            UnitProfile {
                id: id.clone(),
                call_sign: format!("P-{i}"),
                kind: UnitKind::Car,
                capabilities: vec![],
            },
            NOW,
        )
        .unwrap();
        d.apply_ping(
            &Ping {
                unit_id: &id,
                time: NOW - 1000,
                at: LonLat::new(lon, 60.17),
                speed_mps: None,
                heading_deg: None,
                accuracy_m: None,
            },
            NOW,
        )
        .unwrap();
    }
    d.register_camera(Camera {
        id: "cam-1".into(),
        name: "Market".into(),
        at: LonLat::new(24.95, 60.168),
        mount_height_m: 6.0,
        heading_deg: 90.0,
        fov_deg: 60.0,
        range_m: 80.0,
        ptz: false,
        ..Camera::default()
    })
    .unwrap();
    d.take_events();
    d
}

fn call(request_id: Option<&str>) -> NewIncident {
    NewIncident {
        kind: "theft".into(),
        priority: Some(2),
        location: LonLat::new(24.941, 60.1705),
        source: IncidentSource::Call,
        description: "bike".into(),
        request_id: request_id.map(str::to_string),
    }
}

fn send(incident_id: &str, unit_ids: &[&str], request_id: &str) -> DispatchRequest {
    DispatchRequest {
        intercept: Default::default(),
        incident_id: incident_id.into(),
        unit_ids: unit_ids.iter().map(|u| u.to_string()).collect(),
        note: "go".into(),
        request_id: Some(request_id.into()),
    }
}

fn fight(request_id: &str) -> NewAlert {
    NewAlert {
        camera_id: "cam-1".into(),
        time: None,
        label: "fight".into(),
        confidence: 0.9,
        snapshot_uri: String::new(),
        request_id: Some(request_id.into()),
        object_id: None,
        location: None,
    }
}

fn reused(err: Error) -> bool {
    matches!(err, Error::Invalid { ref field, ref value, ref reason }
        if field == "request_id" && reason.contains("different request") && !value.is_empty())
}

#[test]
fn a_repeated_create_returns_the_same_incident() {
    let mut d = city(DispatcherConfig::default());
    let first = d.create_incident(call(Some("call-1")), &op(), NOW).unwrap();
    assert!(d.has_events());
    d.take_events();
    // the retry arrives over another connection to another node
    let elsewhere = Actor::new("alice", "operator")
        .with_peer("10.0.0.5:5000")
        .with_node("node-b");
    let again = d
        .create_incident(call(Some("call-1")), &elsewhere, NOW + 2_000)
        .unwrap();
    assert_eq!(again, first);
    assert!(!d.has_events(), "a retry changes nothing");
    assert_eq!(d.list_incidents(&[], 100).len(), 1);
    // without a request id, the same content is a second incident
    let other = d.create_incident(call(None), &op(), NOW).unwrap();
    assert_ne!(other.id, first.id);
    // a retry returns the incident as it is now, not as it was
    d.dispatch(&send(&first.id, &["u0"], "send-1"), &op(), NOW)
        .unwrap();
    let now = d.create_incident(call(Some("call-1")), &op(), NOW).unwrap();
    assert_eq!(now.status, IncidentStatus::Dispatched);
    assert_eq!(now.id, first.id);
}

#[test]
fn a_repeated_dispatch_returns_the_same_orders_and_emits_nothing() {
    let mut d = city(DispatcherConfig::default());
    let inc = d.create_incident(call(None), &op(), NOW).unwrap();
    let (_, orders) = d
        .dispatch(&send(&inc.id, &["u0", "u1"], "send-1"), &op(), NOW)
        .unwrap();
    d.take_events();
    // the units are assigned now: without the request id this is refused
    let err = d
        .dispatch(
            &DispatchRequest {
                request_id: None,
                ..send(&inc.id, &["u0", "u1"], "send-1")
            },
            &op(),
            NOW,
        )
        .unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
    let (incident, again) = d
        .dispatch(&send(&inc.id, &["u0", "u1"], "send-1"), &op(), NOW + 500)
        .unwrap();
    assert_eq!(again, orders);
    assert_eq!(incident, *d.incident(&inc.id).unwrap());
    assert!(!d.has_events(), "{:?}", d.take_events());
    // the next order id was not taken by the retry
    let (_, next) = d
        .dispatch(&send(&inc.id, &["u2"], "send-2"), &op(), NOW)
        .unwrap();
    assert_eq!(next[0].id, "order-3");
}

#[test]
fn a_reused_request_id_with_other_content_is_refused() {
    let mut d = city(DispatcherConfig::default());
    let inc = d.create_incident(call(Some("r-1")), &op(), NOW).unwrap();
    d.take_events();
    let mut changed = call(Some("r-1"));
    changed.priority = Some(1);
    assert!(reused(d.create_incident(changed, &op(), NOW).unwrap_err()));
    // another command with the same id is other content too
    assert!(reused(
        d.dispatch(&send(&inc.id, &["u0"], "r-1"), &op(), NOW)
            .unwrap_err()
    ));
    assert!(reused(d.post_alert(fight("r-1"), &op(), NOW).unwrap_err()));
    // so is the same content from another caller: ids are caller-chosen and
    // may collide, and one caller must never get another's result
    let bob = Actor::new("bob", "operator");
    assert!(reused(
        d.create_incident(call(Some("r-1")), &bob, NOW).unwrap_err()
    ));
    // dispatch: other units under a used id
    d.dispatch(&send(&inc.id, &["u0"], "s-1"), &op(), NOW)
        .unwrap();
    assert!(reused(
        d.dispatch(&send(&inc.id, &["u1"], "s-1"), &op(), NOW)
            .unwrap_err()
    ));
    d.take_events();
    // the refusals changed nothing
    assert_eq!(d.list_incidents(&[], 100).len(), 1);
    assert_eq!(d.unit("u1", NOW).unwrap().status, UnitStatus::Available);
    assert!(!d.has_events());
}

#[test]
fn alerts_and_updates_are_idempotent_too() {
    let mut d = city(DispatcherConfig::default());
    let first = d.post_alert(fight("a-1"), &op(), NOW).unwrap();
    assert!(first.incident_created);
    d.take_events();
    let again = d.post_alert(fight("a-1"), &op(), NOW + 3_000).unwrap();
    assert_eq!(
        again, first,
        "same alert id, same incident, still 'created'"
    );
    assert!(!d.has_events());
    let inc_id = first.alert.incident_id.clone().unwrap();
    assert_eq!(d.incident(&inc_id).unwrap().alert_ids.len(), 1);
    // the alert counter did not move
    let next = d.post_alert(fight("a-2"), &op(), NOW).unwrap();
    assert_eq!(next.alert.id, "alert-2");

    let resolve = IncidentUpdate {
        id: inc_id.clone(),
        status: IncidentStatus::Resolved,
        note: "calm".into(),
        request_id: Some("up-1".into()),
    };
    d.update_incident(&resolve, &op(), NOW).unwrap();
    d.update_incident(
        &IncidentUpdate {
            status: IncidentStatus::Closed,
            request_id: None,
            ..resolve.clone()
        },
        &op(),
        NOW,
    )
    .unwrap();
    d.take_events();
    // closed -> resolved is illegal, but this is a retry: it gets the
    // incident as it is now
    let retried = d.update_incident(&resolve, &op(), NOW + 1).unwrap();
    assert_eq!(retried.status, IncidentStatus::Closed);
    assert!(!d.has_events());
}

#[test]
fn a_refused_command_is_not_remembered() {
    let mut d = city(DispatcherConfig::default());
    let inc = d.create_incident(call(None), &op(), NOW).unwrap();
    d.update_unit_status("u0", UnitStatus::Busy, &op(), NOW)
        .unwrap();
    let request = send(&inc.id, &["u0"], "send-1");
    assert!(matches!(
        d.dispatch(&request, &op(), NOW),
        Err(Error::FailedPrecondition(_))
    ));
    d.update_unit_status("u0", UnitStatus::Available, &op(), NOW)
        .unwrap();
    // running it again is safe, and now it succeeds
    let (_, orders) = d.dispatch(&request, &op(), NOW).unwrap();
    assert_eq!(orders[0].unit_id, "u0");
}

#[test]
fn request_ids_expire_after_the_ttl_and_the_log_is_bounded() {
    let config = DispatcherConfig {
        request_ttl_ms: 60_000,
        max_requests: 3,
        ..Default::default()
    };
    let mut d = city(config);
    let first = d.create_incident(call(Some("c-1")), &op(), NOW).unwrap();
    assert_eq!(
        d.create_incident(call(Some("c-1")), &op(), NOW + 59_999)
            .unwrap()
            .id,
        first.id
    );
    // expired: the id is free again, a new incident is opened
    let later = d
        .create_incident(call(Some("c-1")), &op(), NOW + 60_000)
        .unwrap();
    assert_ne!(later.id, first.id);
    // at most 3 remembered: the oldest (c-1 of NOW + 60 s) goes first
    for i in 2..=4 {
        d.create_incident(call(Some(&format!("c-{i}"))), &op(), NOW + 60_000)
            .unwrap();
    }
    assert_eq!(d.remembered_requests(), 3);
    let count = d.list_incidents(&[], 100).len();
    d.create_incident(call(Some("c-1")), &op(), NOW + 60_001)
        .unwrap();
    assert_eq!(d.list_incidents(&[], 100).len(), count + 1);
    // pruning is driven by `now`: every id expires a minute on
    d.create_incident(call(None), &op(), NOW + 200_000).unwrap();
    assert_eq!(d.remembered_requests(), 0);
}

#[test]
fn a_rebuilt_core_still_recognises_a_retry() {
    let mut d = city(DispatcherConfig::default());
    let inc = d.create_incident(call(Some("call-1")), &op(), NOW).unwrap();
    let (_, orders) = d
        .dispatch(&send(&inc.id, &["u0"], "send-1"), &op(), NOW)
        .unwrap();
    let alert = d.post_alert(fight("alert-1"), &op(), NOW).unwrap();
    let state = d.export_all();
    assert_eq!(state.meta.requests.len(), 3);
    // through JSON, as a checkpoint stores it
    let meta: persist::CoreMeta =
        serde_json::from_str(&serde_json::to_string(&state.meta).unwrap()).unwrap();
    assert_eq!(meta, state.meta);
    let mut rebuilt = Dispatcher::restore(
        DispatcherConfig::default(),
        persist::CoreState { meta, ..state },
    )
    .unwrap();
    let again = rebuilt
        .create_incident(call(Some("call-1")), &op(), NOW + 1)
        .unwrap();
    assert_eq!(again.id, inc.id);
    let (_, again) = rebuilt
        .dispatch(&send(&inc.id, &["u0"], "send-1"), &op(), NOW + 1)
        .unwrap();
    assert_eq!(again, orders);
    assert_eq!(
        rebuilt
            .post_alert(fight("alert-1"), &op(), NOW + 1)
            .unwrap(),
        alert
    );
    assert!(!rebuilt.has_events());
    assert!(reused(
        rebuilt
            .dispatch(&send(&inc.id, &["u1"], "send-1"), &op(), NOW + 1)
            .unwrap_err()
    ));
}

#[test]
fn checkpoint_meta_from_the_older_build_loads_without_requests() {
    let old = r#"{"next_alert":3,"next_incident":2,"next_order":5,
        "alert_incidents":[],"capability_names":["k9"]}"#;
    let meta: persist::CoreMeta = serde_json::from_str(old).unwrap();
    assert!(meta.requests.is_empty());
    assert_eq!(meta.next_order, 5);
}
