//! The Frigate JSON bridge: sequences of payloads (a real event with fields
//! replaced by arbitrary JSON, removed, or its text mutated; arbitrary JSON;
//! arbitrary bytes) into one `Bridge`.

use patrol_dispatcher::{Actor, Millis};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{NOW, TOLERANCE_MS, byte_mutation, cases, hostile_string};
use crate::config::FrigateConfig;
use crate::frigate::{Bridge, Step};

const MAX_OBJECTS: usize = 4;

fn config() -> FrigateConfig {
    FrigateConfig {
        mqtt_url: "mqtt://127.0.0.1:1883".into(),
        cameras: [("front_door".to_string(), "cam-1".to_string())].into(),
        label_map: [("person".to_string(), "intrusion".to_string())].into(),
        min_score: 0.5,
        ..FrigateConfig::default()
    }
}

/// A Frigate event as Frigate 0.14 publishes it (trimmed).
fn real_event(kind: &str, id: &str) -> Value {
    let object = |score: f64| {
        json!({
            "id": id, "camera": "front_door", "frame_time": 1_700_000_000.5,
            "snapshot_time": 1_700_000_000.4, "label": "person", "sub_label": null,
            "top_score": score, "false_positive": false, "start_time": 1_699_999_999.25,
            "end_time": null, "score": score, "box": [424, 500, 536, 712], "area": 23744,
            "ratio": 0.528, "region": [264, 450, 667, 853], "stationary": false,
            "motionless_count": 0, "position_changes": 2, "current_zones": ["yard"],
            "entered_zones": ["yard"], "has_clip": true, "has_snapshot": true,
            "attributes": {}, "current_attributes": []
        })
    };
    json!({"type": kind, "before": object(0.4), "after": object(0.9)})
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        prop::sample::select(vec![0.0, -0.0, 1e-300, 1e300, -1.0, 0.5, 1.5, 1e15])
            .prop_map(Value::from),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "before",
            "after",
            "id",
            "camera",
            "label",
            "score",
            "top_score",
            "start_time",
            "current_zones",
            "has_snapshot",
            "false_positive",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,8}",
    ]
}

/// One change to the real event: a field of the event or of one of its
/// objects replaced by any JSON, or removed.
#[derive(Debug, Clone)]
enum Edit {
    Set(Option<bool>, String, Value),
    Remove(Option<bool>, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let target = proptest::option::of(any::<bool>());
    prop_oneof![
        3 => (target.clone(), key(), any_json()).prop_map(|(t, k, v)| Edit::Set(t, k, v)),
        1 => (target, key()).prop_map(|(t, k)| Edit::Remove(t, k)),
    ]
}

fn apply(event: &mut Value, edit: &Edit) {
    let (target, key) = match edit {
        Edit::Set(t, k, _) | Edit::Remove(t, k) => (t, k),
    };
    let object = match target {
        None => Some(&mut *event),
        Some(after) => event.get_mut(if *after { "after" } else { "before" }),
    };
    let Some(Value::Object(map)) = object else {
        return;
    };
    match edit {
        Edit::Set(_, _, value) => {
            map.insert(key.clone(), value.clone());
        }
        Edit::Remove(..) => {
            map.remove(key);
        }
    }
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (
            prop::sample::select(vec!["new", "update", "end", "other"]),
            prop::sample::select(vec!["1700000000.1-aaaa", "1700000000.2-bbbb", "1700000000.3-cccc",
                "1700000000.4-dddd", "1700000000.5-eeee", "1700000000.6-ffff"]),
            prop::collection::vec(edit(), 0..4),
            byte_mutation(),
        )
            .prop_map(|(kind, id, edits, mutation)| {
                let mut event = real_event(kind, id);
                for e in &edits {
                    apply(&mut event, e);
                }
                mutation.apply(event.to_string().into_bytes())
            }),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..128),
    ]
}

/// One payload: no panic; a post carries a sane alert for a mapped camera,
/// and anything the core refuses in it came from Frigate's own strings.
fn step(
    bridge: &mut Bridge,
    core: &mut patrol_dispatcher::Dispatcher,
    payload: &[u8],
    now: Millis,
    retry: bool,
) {
    match bridge.on_payload(payload, now) {
        Step::Post { object, alert } => {
            assert_eq!(alert.camera_id, "cam-1");
            assert!(alert.confidence.is_finite() && (0.0..=1.0).contains(&alert.confidence));
            assert_eq!(alert.object_id.as_deref(), Some(object.as_str()));
            assert_eq!(alert.request_id, Some(format!("frigate-{object}")));
            if let Some(time) = alert.time {
                assert!(
                    time <= now + TOLERANCE_MS,
                    "alert time {time} in the future"
                );
            }
            if let Err(e) = alert.validate(now, TOLERANCE_MS) {
                let patrol_dispatcher::Error::Invalid { field, .. } = &e else {
                    panic!("not a field error: {e}");
                };
                assert!(
                    ["label", "object_id", "request_id", "snapshot_uri"].contains(&field.as_str()),
                    "the bridge built a bad {field}: {e} from {}",
                    String::from_utf8_lossy(payload)
                );
            }
            let ok = core
                .post_alert(alert, &Actor::new("frigate-bridge", "camera"), now)
                .is_ok();
            bridge.posted(&object, retry && !ok);
        }
        Step::Skip(why) => assert!(!why.is_empty()),
    }
    assert!(bridge.tracked() <= MAX_OBJECTS);
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn fuzz_frigate_events(
        payloads in prop::collection::vec((payload(), any::<bool>()), 1..10),
    ) {
        let mut bridge = Bridge::new(config(), TOLERANCE_MS).with_max_objects(MAX_OBJECTS);
        let mut core = super::alerts::core_with_camera();
        for (i, (payload, retry)) in payloads.iter().enumerate() {
            step(&mut bridge, &mut core, payload, NOW + i as i64 * 1_000, *retry);
        }
    }
}
