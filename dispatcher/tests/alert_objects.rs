//! Alerts about the same tracked object (`object_id`) on the same camera
//! within the policy's object window become one incident.

use patrol_dispatcher::*;

const NOW: Millis = 1_700_000_000_000;
const WINDOW: Millis = 60_000;

fn nvr() -> Actor {
    Actor::new("frigate-bridge", "camera_system")
}

fn camera(id: &str, lon: f64) -> Camera {
    Camera {
        id: id.into(),
        at: LonLat::new(lon, 60.167),
        mount_height_m: 6.0,
        fov_deg: 60.0,
        range_m: 80.0,
        ..Camera::default()
    }
}

fn core() -> Dispatcher {
    let mut d = Dispatcher::new(DispatcherConfig {
        alerts: AlertPolicy {
            object_window_ms: WINDOW,
            ..AlertPolicy::default()
        },
        ..DispatcherConfig::default()
    });
    for (id, lon) in [("cam-1", 24.95), ("cam-2", 24.96)] {
        d.register_camera(camera(id, lon)).unwrap();
    }
    d
}

fn alert(camera: &str, object: Option<&str>, label: &str, confidence: f32) -> NewAlert {
    NewAlert {
        camera_id: camera.into(),
        time: None,
        label: label.into(),
        confidence,
        snapshot_uri: String::new(),
        request_id: None,
        object_id: object.map(str::to_string),
        location: None,
    }
}

fn post(d: &mut Dispatcher, new: NewAlert, now: Millis) -> AlertOutcome {
    d.post_alert(new, &nvr(), now).unwrap()
}

#[test]
fn the_same_object_within_the_window_joins_whatever_its_label() {
    let mut d = core();
    let first = post(&mut d, alert("cam-1", Some("obj-a"), "intrusion", 0.9), NOW);
    assert!(first.incident_created);
    let inc = first.alert.incident_id.clone().unwrap();
    assert_eq!(first.alert.object_id.as_deref(), Some("obj-a"));
    // a relabelled update, below the policy's confidence, still joins
    let relabelled = post(
        &mut d,
        alert("cam-1", Some("obj-a"), "rainbow", 0.1),
        NOW + 30_000,
    );
    assert!(!relabelled.incident_created);
    assert_eq!(relabelled.alert.incident_id.as_deref(), Some(inc.as_str()));
    // the window slides with each alert: 50 s after the last, 80 s after the first
    let later = post(
        &mut d,
        alert("cam-1", Some("obj-a"), "fight", 0.95),
        NOW + 80_000,
    );
    assert!(!later.incident_created);
    assert_eq!(later.alert.incident_id.as_deref(), Some(inc.as_str()));
    let incident = d.incident(&inc).unwrap();
    assert_eq!(incident.alert_ids.len(), 3);
    // the same object id on another camera is another object
    let elsewhere = post(
        &mut d,
        alert("cam-2", Some("obj-a"), "fight", 0.9),
        NOW + 80_000,
    );
    assert!(elsewhere.incident_created);
    assert_ne!(elsewhere.alert.incident_id.as_deref(), Some(inc.as_str()));
}

#[test]
fn after_the_window_an_object_opens_anew() {
    let mut d = core();
    let first = post(&mut d, alert("cam-1", Some("obj-a"), "fall", 0.9), NOW);
    let inc = first.alert.incident_id.clone().unwrap();
    // resolve it, so the (camera, label) rule does not join it either
    d.update_incident(
        &IncidentUpdate {
            id: inc.clone(),
            status: IncidentStatus::Resolved,
            note: String::new(),
            request_id: None,
        },
        &nvr(),
        NOW + 1,
    )
    .unwrap();
    // within the window: only recorded, never a second incident
    let inside = post(
        &mut d,
        alert("cam-1", Some("obj-a"), "fall", 0.9),
        NOW + WINDOW,
    );
    assert_eq!(inside.alert.incident_id, None);
    assert!(!inside.incident_created);
    // unseen for longer than the window: a new incident
    let after = post(
        &mut d,
        alert("cam-1", Some("obj-a"), "fall", 0.9),
        NOW + 2 * WINDOW + 1,
    );
    assert!(after.incident_created);
    assert_ne!(after.alert.incident_id.as_deref(), Some(inc.as_str()));
}

#[test]
fn a_low_first_sighting_opens_when_the_object_crosses_the_threshold() {
    let mut d = core();
    let low = post(&mut d, alert("cam-1", Some("obj-a"), "intrusion", 0.3), NOW);
    assert_eq!(low.alert.incident_id, None);
    let high = post(
        &mut d,
        alert("cam-1", Some("obj-a"), "intrusion", 0.8),
        NOW + 1_000,
    );
    assert!(high.incident_created);
    let again = post(
        &mut d,
        alert("cam-1", Some("obj-a"), "intrusion", 0.8),
        NOW + 2_000,
    );
    assert_eq!(again.alert.incident_id, high.alert.incident_id);
    assert!(!again.incident_created);
}

#[test]
fn different_objects_with_the_same_label_join_as_before() {
    let mut d = core();
    let a = post(&mut d, alert("cam-1", Some("obj-a"), "fight", 0.9), NOW);
    let b = post(
        &mut d,
        alert("cam-1", Some("obj-b"), "fight", 0.9),
        NOW + 1_000,
    );
    assert!(a.incident_created);
    assert!(!b.incident_created);
    assert_eq!(a.alert.incident_id, b.alert.incident_id);
    // another label from another object opens its own incident
    let c = post(
        &mut d,
        alert("cam-1", Some("obj-c"), "fire", 0.9),
        NOW + 2_000,
    );
    assert!(c.incident_created);
    assert_ne!(c.alert.incident_id, a.alert.incident_id);
    // and an alert without an object behaves as before too
    let plain = post(&mut d, alert("cam-1", None, "fire", 0.9), NOW + 3_000);
    assert_eq!(plain.alert.incident_id, c.alert.incident_id);
}

#[test]
fn remembered_objects_are_capped_and_survive_a_checkpoint() {
    let mut d = Dispatcher::new(DispatcherConfig {
        alerts: AlertPolicy {
            object_window_ms: WINDOW,
            max_objects: 2,
            ..AlertPolicy::default()
        },
        ..DispatcherConfig::default()
    });
    d.register_camera(camera("cam-1", 24.95)).unwrap();
    let a = post(&mut d, alert("cam-1", Some("obj-a"), "fight", 0.9), NOW);
    post(
        &mut d,
        alert("cam-1", Some("obj-b"), "weapon", 0.9),
        NOW + 1,
    );
    post(&mut d, alert("cam-1", Some("obj-c"), "fire", 0.9), NOW + 2);
    let meta = d.export_meta();
    let objects: Vec<_> = meta
        .alert_objects
        .iter()
        .map(|o| o.object_id.as_str())
        .collect();
    assert_eq!(objects, ["obj-b", "obj-c"], "obj-a, seen longest ago, went");
    // a rebuilt core decides the same: obj-b still joins its incident
    let config = d.config().clone();
    let mut rebuilt = Dispatcher::restore(config, d.export_all()).unwrap();
    let b_again = post(
        &mut rebuilt,
        alert("cam-1", Some("obj-b"), "rainbow", 0.1),
        NOW + 3,
    );
    assert!(b_again.alert.incident_id.is_some());
    // obj-a was forgotten: a relabelled, low alert is only recorded
    let a_again = post(
        &mut rebuilt,
        alert("cam-1", Some("obj-a"), "rainbow", 0.1),
        NOW + 4,
    );
    assert_eq!(a_again.alert.incident_id, None);
    assert!(a.incident_created);
}

#[test]
fn the_object_id_is_part_of_a_retry() {
    let mut d = core();
    let mut first = alert("cam-1", Some("obj-a"), "fight", 0.9);
    first.request_id = Some("evt-1".into());
    post(&mut d, first.clone(), NOW);
    assert_eq!(post(&mut d, first.clone(), NOW + 1).alert.id, "alert-1");
    let other = NewAlert {
        object_id: Some("obj-b".into()),
        ..first
    };
    assert!(d.post_alert(other, &nvr(), NOW + 2).is_err());
}

#[test]
fn alerts_of_the_older_build_replay_without_an_object() {
    let old = r#"{"camera_id":"cam-1","time":null,"label":"fight","confidence":0.9,
        "snapshot_uri":"","request_id":null}"#;
    let new: NewAlert = serde_json::from_str(old).unwrap();
    assert_eq!(new.object_id, None);
    let meta = r#"{"next_alert":3,"next_incident":2,"next_order":5,
        "alert_incidents":[],"capability_names":[],"incidents":[]}"#;
    let meta: persist::CoreMeta = serde_json::from_str(meta).unwrap();
    assert!(meta.alert_objects.is_empty());
}
