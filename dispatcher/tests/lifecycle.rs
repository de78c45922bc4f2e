//! Dispatch rules and the incident lifecycle through the `Dispatcher` door.

use patrol_dispatcher::*;

const NOW: Millis = 1_700_000_000_000;

/// The operator every test command comes from, unless it says otherwise.
fn op() -> Actor {
    Actor::new("alice", "operator")
        .with_peer("10.0.0.5:4431")
        .with_node("node-a")
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

fn city() -> Dispatcher {
    let mut d = Dispatcher::new(DispatcherConfig::default());
    for (i, (lon, lat)) in [(24.940, 60.170), (24.945, 60.171), (24.960, 60.175)]
        .into_iter()
        .enumerate()
    {
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
                at: LonLat::new(lon, lat),
                speed_mps: None,
                heading_deg: None,
                accuracy_m: None,
            },
            NOW,
        )
        .unwrap();
    }
    d.take_events();
    d
}

fn incident(d: &mut Dispatcher) -> Incident {
    d.create_incident(
        NewIncident {
            kind: "theft".into(),
            priority: Some(2),
            location: LonLat::new(24.941, 60.1705),
            source: IncidentSource::Call,
            description: String::new(),
            request_id: None,
        },
        &op(),
        NOW,
    )
    .unwrap()
}

#[test]
fn dispatch_assigns_and_a_busy_unit_is_refused() {
    let mut d = city();
    let inc = incident(&mut d);
    let rec = d
        .recommend(
            &Target::Incident(inc.id.clone()),
            &UnitQuery {
                k: 1,
                ..Default::default()
            },
            NOW,
        )
        .unwrap();
    assert_eq!(rec.units[0].unit.profile.id, "u0");
    let (inc2, orders) = d
        .dispatch(&send(&inc.id, &["u0"], "go"), &op(), NOW)
        .unwrap();
    assert_eq!(inc2.status, IncidentStatus::Dispatched);
    assert_eq!(orders[0].unit_id, "u0");
    assert_eq!(d.current_order("u0").unwrap().unwrap().id, orders[0].id);
    // u0 is no longer recommended, and is reported as excluded
    let rec = d
        .recommend(
            &Target::Incident(inc.id.clone()),
            &UnitQuery {
                k: 1,
                ..Default::default()
            },
            NOW,
        )
        .unwrap();
    assert_eq!(rec.units[0].unit.profile.id, "u1");
    assert_eq!(rec.excluded[0].unit_id, "u0");
    assert_eq!(rec.excluded[0].reason, ExclusionReason::Assigned);
    // dispatching it again, to another incident, is refused
    let other = incident(&mut d);
    let err = d
        .dispatch(&send(&other.id, &["u0"], ""), &op(), NOW)
        .unwrap_err();
    assert!(
        matches!(err, Error::FailedPrecondition(ref m) if m.contains("u0")),
        "{err}"
    );
    // all or none: u1 was not assigned by the refused call
    let err = d
        .dispatch(&send(&other.id, &["u1", "u0"], ""), &op(), NOW)
        .unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)));
    assert_eq!(d.unit("u1", NOW).unwrap().status, UnitStatus::Available);
    assert!(matches!(
        d.dispatch(&send(&other.id, &["ghost"], ""), &op(), NOW),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        d.dispatch(&send("inc-999", &["u1"], ""), &op(), NOW),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn lifecycle_and_closing_frees_units() {
    let mut d = city();
    let inc = incident(&mut d);
    let err = d
        .update_incident(&to(&inc.id, IncidentStatus::OnScene, ""), &op(), NOW)
        .unwrap_err();
    assert!(
        matches!(err, Error::FailedPrecondition(ref m) if m.contains("new") && m.contains("on_scene")),
        "{err}"
    );
    d.dispatch(&send(&inc.id, &["u0", "u1"], ""), &op(), NOW)
        .unwrap();
    let terminal = |unit: &str| Actor::new(unit, "terminal").with_node("node-b");
    d.update_unit_status("u0", UnitStatus::EnRoute, &terminal("u0"), NOW)
        .unwrap();
    d.update_unit_status("u0", UnitStatus::OnScene, &terminal("u0"), NOW)
        .unwrap();
    assert_eq!(d.incident(&inc.id).unwrap().status, IncidentStatus::OnScene);
    // a unit clearing itself leaves the incident
    d.update_unit_status("u1", UnitStatus::Available, &terminal("u1"), NOW)
        .unwrap();
    assert_eq!(
        d.incident(&inc.id).unwrap().unit_ids,
        vec!["u0".to_string()]
    );
    d.update_incident(
        &to(&inc.id, IncidentStatus::Resolved, "suspect detained"),
        &op(),
        NOW,
    )
    .unwrap();
    assert_eq!(d.unit("u0", NOW).unwrap().status, UnitStatus::OnScene);
    let closed = d
        .update_incident(&to(&inc.id, IncidentStatus::Closed, ""), &op(), NOW)
        .unwrap();
    assert!(closed.unit_ids.is_empty());
    assert_eq!(d.unit("u0", NOW).unwrap().status, UnitStatus::Available);
    assert_eq!(d.unit("u0", NOW).unwrap().incident_id, None);
    assert!(
        d.update_incident(&to(&inc.id, IncidentStatus::OnScene, ""), &op(), NOW)
            .is_err()
    );
    assert!(d.dispatch(&send(&inc.id, &["u2"], ""), &op(), NOW).is_err());
    let actions: Vec<_> = closed.audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "created",
            "dispatched",
            "dispatched",
            "status",
            "unit_cleared",
            "status",
            "unit_released",
            "status"
        ]
    );
    // each entry names who did it: the operator, or the terminal that
    // reported on scene and cleared itself
    let actors: Vec<_> = closed.audit.iter().map(|a| a.actor.to_string()).collect();
    let alice = "alice (operator) from 10.0.0.5:4431 via node-a";
    assert_eq!(
        actors,
        [
            alice,
            alice,
            alice,
            "u0 (terminal) via node-b",
            "u1 (terminal) via node-b",
            alice,
            alice,
            alice
        ]
    );
}

#[test]
fn unit_status_rules() {
    let mut d = city();
    assert!(matches!(
        d.update_unit_status("u0", UnitStatus::EnRoute, &op(), NOW),
        Err(Error::FailedPrecondition(_))
    ));
    assert!(
        matches!(d.update_unit_status("u0", UnitStatus::Assigned, &op(), NOW), Err(Error::Invalid { ref field, .. }) if field == "status")
    );
    assert!(matches!(
        d.update_unit_status("u0", UnitStatus::Offline, &op(), NOW),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        d.update_unit_status("nobody", UnitStatus::Busy, &op(), NOW),
        Err(Error::NotFound { .. })
    ));
    d.update_unit_status("u0", UnitStatus::Busy, &op(), NOW)
        .unwrap();
    let inc = incident(&mut d);
    let err = d
        .dispatch(&send(&inc.id, &["u0"], ""), &op(), NOW)
        .unwrap_err();
    assert!(err.to_string().contains("busy"), "{err}");
}

#[test]
fn camera_alerts_open_and_join_incidents() {
    let mut d = city();
    let cam = Camera {
        id: "cam-1".into(),
        name: "Market square".into(),
        at: LonLat::new(24.95, 60.167),
        mount_height_m: 6.0,
        heading_deg: -90.0,
        fov_deg: 60.0,
        range_m: 80.0,
        ptz: false,
        ..Camera::default()
    };
    let (cam, created) = d.register_camera(cam).unwrap();
    assert!(created);
    assert_eq!(cam.heading_deg, 270.0);
    let alert = |label: &str, confidence: f32| NewAlert {
        camera_id: "cam-1".into(),
        time: None,
        label: label.into(),
        confidence,
        snapshot_uri: "https://nvr.local/snap/1.jpg".into(),
        request_id: None,
        object_id: None,
        location: None,
    };
    let low = d.post_alert(alert("fight", 0.3), &op(), NOW).unwrap();
    assert_eq!(low.alert.incident_id, None);
    let first = d.post_alert(alert("fight", 0.9), &op(), NOW).unwrap();
    assert!(first.incident_created);
    let second = d
        .post_alert(alert("fight", 0.8), &op(), NOW + 1000)
        .unwrap();
    assert!(!second.incident_created);
    assert_eq!(second.alert.incident_id, first.alert.incident_id);
    let inc = d
        .incident(first.alert.incident_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(inc.source, IncidentSource::CameraAlert);
    assert_eq!(inc.alert_ids.len(), 2);
    assert_eq!(inc.camera_ids, vec!["cam-1".to_string()]);
    assert!(inc.audit.iter().all(|a| a.actor == op()), "{:?}", inc.audit);
    assert!(matches!(
        d.post_alert(
            NewAlert {
                camera_id: "nope".into(),
                ..alert("fight", 0.9)
            },
            &op(),
            NOW
        ),
        Err(Error::NotFound { .. })
    ));
    assert!(
        matches!(d.post_alert(alert("fight", f32::NAN), &op(), NOW), Err(Error::Invalid { ref field, .. }) if field == "confidence")
    );
    let bad_cam = Camera {
        id: "cam-2".into(),
        name: String::new(),
        at: LonLat::new(24.95, 60.167),
        mount_height_m: 6.0,
        heading_deg: 0.0,
        fov_deg: 0.0,
        range_m: 80.0,
        ptz: false,
        ..Camera::default()
    };
    assert!(
        matches!(d.register_camera(bad_cam), Err(Error::Invalid { ref field, .. }) if field == "camera.fov_deg")
    );
}

#[test]
fn events_are_left_in_order() {
    let mut d = city();
    let inc = incident(&mut d);
    d.dispatch(&send(&inc.id, &["u2"], ""), &op(), NOW).unwrap();
    let kinds: Vec<&str> = d
        .take_events()
        .iter()
        .map(|e| match e {
            Event::Unit(_) => "unit",
            Event::Camera(_) => "camera",
            Event::Alert(_) => "alert",
            Event::Incident(_) => "incident",
            Event::Order(_) => "order",
            Event::OrderReleased(_) => "released",
            Event::UnitAlert(_) => "unit_alert",
            Event::Track(_) => "track",
            Event::Zone(_) => "zone",
            Event::UnitInView(_) => "unit_in_view",
        })
        .collect();
    assert_eq!(kinds, ["incident", "unit", "order", "incident"]);
    assert!(!d.has_events());
}

#[test]
fn a_refused_alert_changes_nothing() {
    // A configured rule names an incident type the core refuses: the alert is
    // refused before it takes an id or records anything.
    let mut config = DispatcherConfig::default();
    config.alerts.rules[0].incident_kind = String::new();
    let mut d = Dispatcher::new(config);
    d.register_camera(Camera {
        id: "cam-1".into(),
        name: String::new(),
        at: LonLat::new(24.95, 60.167),
        mount_height_m: 6.0,
        heading_deg: 0.0,
        fov_deg: 60.0,
        range_m: 80.0,
        ptz: false,
        ..Camera::default()
    })
    .unwrap();
    d.take_events();
    let alert = |label: &str| NewAlert {
        camera_id: "cam-1".into(),
        time: None,
        label: label.into(),
        confidence: 0.9,
        snapshot_uri: String::new(),
        request_id: None,
        object_id: None,
        location: None,
    };
    let err = d.post_alert(alert(&d.config().alerts.rules[0].label.clone()), &op(), NOW);
    assert!(
        matches!(err, Err(Error::Invalid { ref field, .. }) if field == "type"),
        "{err:?}"
    );
    assert!(!d.has_events());
    let ok = d.post_alert(alert("loitering"), &op(), NOW).unwrap();
    assert_eq!(ok.alert.id, "alert-1", "the refused alert took no id");
}

#[test]
fn commands_round_trip_through_json() {
    // The service logs validated commands as JSON: each must come back equal.
    fn round_trip<T>(value: &T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_string(value).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value, "{json}");
    }
    round_trip(&UnitProfile {
        id: "u1".into(),
        call_sign: "P-1".into(),
        kind: UnitKind::EBike,
        capabilities: vec!["medic".into()],
    });
    round_trip(&UnitStatus::EnRoute);
    round_trip(&NewAlert {
        camera_id: "cam-1".into(),
        time: Some(NOW),
        label: "fight".into(),
        confidence: 0.7,
        snapshot_uri: "https://nvr.local/1.jpg".into(),
        request_id: None,
        object_id: None,
        location: None,
    });
    round_trip(&NewIncident {
        kind: "theft".into(),
        priority: None,
        location: LonLat::new(24.941, 60.1705),
        source: IncidentSource::CameraAlert,
        description: "bike".into(),
        request_id: None,
    });
    round_trip(&send("inc-1", &["u1", "u2"], "north"));
    round_trip(&to("inc-1", IncidentStatus::Resolved, "ok"));
    round_trip(&Camera {
        id: "cam-1".into(),
        name: "Market".into(),
        at: LonLat::new(24.95, 60.167),
        mount_height_m: 6.0,
        heading_deg: 10.0,
        fov_deg: 60.0,
        range_m: 80.0,
        ptz: true,
        ..Camera::default()
    });
}
