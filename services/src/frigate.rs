//! The Frigate bridge: Frigate (the open-source NVR) publishes each tracked
//! object's life on MQTT (`frigate/events`: `type` "new", "update", "end",
//! with `before` / `after` snapshots of the object). The bridge subscribes,
//! and the first time an object on a mapped camera reaches `min_score` it
//! posts one alert through the hub (the PostAlert path), with the Frigate
//! event id as the alert's `object_id` (so the core keeps every later alert
//! of that object in one incident) and as its `request_id` (so several nodes
//! bridging the same broker record it once). Updates after that, and `end`
//! events, are only counted.
//!
//! [`Bridge`] is the decision, pure and synchronous; [`run`] is the MQTT
//! side: rumqttc's event loop (which reconnects on its next poll after an
//! error; the bridge waits with a doubling backoff between tries and
//! subscribes again on every connection), feeding payloads to the decision
//! over a bounded queue so a slow post never stalls the MQTT keep-alive.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use patrol_dispatcher::{Actor, Millis, NewAlert};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::config::FrigateConfig;
use crate::error::ServerError;
use crate::hub::{Hub, Origin};
use crate::telemetry as m;

/// The identity the bridge's alerts carry in the audit trail.
pub const BRIDGE_IDENTITY: &str = "frigate-bridge";
/// Objects the bridge remembers at once (the oldest go first).
pub const MAX_TRACKED_OBJECTS: usize = 4096;
/// Payloads waiting for the decision; beyond this they are dropped (counted).
const QUEUE: usize = 1024;
/// Largest MQTT packet accepted (Frigate events may carry a thumbnail).
const MAX_PACKET_BYTES: usize = 1 << 20;

/// One message on `frigate/events`. Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct FrigateEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub before: Option<FrigateObject>,
    #[serde(default)]
    pub after: Option<FrigateObject>,
}

/// A tracked object as Frigate describes it (the fields the bridge reads).
#[derive(Debug, Clone, Deserialize)]
pub struct FrigateObject {
    /// The event id, e.g. "1607123955.475377-mxklsc": one per object.
    pub id: String,
    pub camera: String,
    pub label: String,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub top_score: Option<f64>,
    /// Seconds since the epoch, fractional.
    #[serde(default)]
    pub start_time: Option<f64>,
    #[serde(default)]
    pub current_zones: Vec<String>,
    #[serde(default)]
    pub has_snapshot: bool,
    /// Frigate's own verdict until the object is confirmed.
    #[serde(default)]
    pub false_positive: Option<bool>,
}

/// What to do with one payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Post this alert for the Frigate object `object`, then report the
    /// result with [`Bridge::posted`].
    Post { object: String, alert: NewAlert },
    /// Nothing to post; counted under this result.
    Skip(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
enum ObjectState {
    /// An alert was built and is being posted (or is to be tried again).
    Pending(NewAlert),
    /// Posted, or refused for good: nothing more for this object.
    Done,
}

/// The bridge's decision: which Frigate events become which alerts. Pure:
/// time comes in as `now`.
#[derive(Debug)]
pub struct Bridge {
    config: FrigateConfig,
    future_tolerance_ms: Millis,
    objects: HashMap<String, (u64, ObjectState)>,
    by_age: BTreeMap<u64, String>,
    next: u64,
    max_objects: usize,
}

impl Bridge {
    pub fn new(config: FrigateConfig, future_tolerance_ms: Millis) -> Self {
        Self {
            config,
            future_tolerance_ms,
            objects: HashMap::new(),
            by_age: BTreeMap::new(),
            next: 0,
            max_objects: MAX_TRACKED_OBJECTS,
        }
    }

    /// Remembers at most `max` objects (for tests of eviction).
    pub fn with_max_objects(mut self, max: usize) -> Self {
        self.max_objects = max.max(1);
        self
    }

    /// Objects remembered now.
    pub fn tracked(&self) -> usize {
        self.objects.len()
    }

    /// Decides what one MQTT payload does, at `now` (Unix ms).
    pub fn on_payload(&mut self, payload: &[u8], now: Millis) -> Step {
        let event: FrigateEvent = match serde_json::from_slice(payload) {
            Ok(event) => event,
            Err(_) => return Step::Skip("bad_json"),
        };
        self.on_event(event, now)
    }

    /// Decides what one parsed event does, at `now` (Unix ms).
    pub fn on_event(&mut self, event: FrigateEvent, now: Millis) -> Step {
        match event.kind.as_str() {
            "new" | "update" => {}
            "end" => {
                if let Some(object) = event.after.as_ref().or(event.before.as_ref()) {
                    self.forget(&object.id);
                }
                return Step::Skip("ended");
            }
            _ => return Step::Skip("other_type"),
        }
        let Some(object) = event.after else {
            return Step::Skip("no_object");
        };
        let Some(camera_id) = self.config.cameras.get(&object.camera) else {
            return Step::Skip("unmapped_camera");
        };
        if !self.config.labels.is_empty() && !self.config.labels.contains(&object.label) {
            return Step::Skip("label_filtered");
        }
        match self.objects.get(&object.id) {
            Some((_, ObjectState::Done)) => return Step::Skip("duplicate"),
            Some((_, ObjectState::Pending(alert))) => {
                // The last try failed on the way: the same alert again, so a
                // node that did record it answers with the first outcome.
                return Step::Post {
                    object: object.id.clone(),
                    alert: alert.clone(),
                };
            }
            None => {}
        }
        if object.false_positive == Some(true) {
            return Step::Skip("false_positive");
        }
        let top = object.top_score.or(object.score).unwrap_or(0.0);
        let score = top.max(object.score.unwrap_or(0.0));
        if !score.is_finite() || score < f64::from(self.config.min_score) {
            return Step::Skip("below_score");
        }
        let time = object
            .start_time
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| (s * 1000.0).round() as Millis)
            .filter(|&t| t <= now.saturating_add(self.future_tolerance_ms));
        let label = self
            .config
            .label_map
            .get(&object.label)
            .unwrap_or(&object.label)
            .clone();
        let snapshot_uri = if !object.has_snapshot {
            String::new()
        } else if self.config.snapshot_base_url.is_empty() {
            format!("frigate://{}/{}/snapshot.jpg", object.camera, object.id)
        } else {
            format!(
                "{}/api/events/{}/snapshot.jpg",
                self.config.snapshot_base_url.trim_end_matches('/'),
                object.id
            )
        };
        let alert = NewAlert {
            camera_id: camera_id.clone(),
            time,
            label,
            confidence: top.clamp(0.0, 1.0) as f32,
            snapshot_uri,
            request_id: Some(format!("frigate-{}", object.id)),
            object_id: Some(object.id.clone()),
            location: None,
        };
        self.remember(&object.id, ObjectState::Pending(alert.clone()));
        Step::Post {
            object: object.id,
            alert,
        }
    }

    /// The post of `object`'s alert ended: `retry` when it may succeed
    /// later (the server was busy or stopping), else nothing more is posted
    /// for it.
    pub fn posted(&mut self, object: &str, retry: bool) {
        if !retry && let Some((_, state)) = self.objects.get_mut(object) {
            *state = ObjectState::Done;
        }
    }

    fn remember(&mut self, object: &str, state: ObjectState) {
        self.forget(object);
        let seq = self.next;
        self.next += 1;
        self.objects.insert(object.to_string(), (seq, state));
        self.by_age.insert(seq, object.to_string());
        while self.objects.len() > self.max_objects {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.objects.remove(&oldest);
        }
    }

    fn forget(&mut self, object: &str) {
        if let Some((seq, _)) = self.objects.remove(object) {
            self.by_age.remove(&seq);
        }
    }
}

/// Where the broker is, from `frigate.mqtt_url`.
#[derive(Debug, Clone, PartialEq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    /// User and password, if the URL has them.
    pub credentials: Option<(String, String)>,
}

/// The broker's host, port (1883 unless given) and credentials from
/// `mqtt://[user[:password]@]host[:port]` (or `tcp://`).
pub fn broker_address(url: &str) -> Result<Broker, String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| format!("{url:?}: must start with mqtt:// (TLS is not supported)"))?;
    let rest = rest.trim_end_matches('/');
    let (credentials, hostport) = match rest.rsplit_once('@') {
        Some((creds, hostport)) => {
            let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
            (Some((user.to_string(), password.to_string())), hostport)
        }
        None => (None, rest),
    };
    let (host, port) = match hostport.strip_prefix('[') {
        // [v6 address] or [v6 address]:port
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed ["))?;
            (host, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        },
    };
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .map_err(|_| format!("{url:?}: bad port {port:?}"))?,
        None => 1883,
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("{url:?}: no host"));
    }
    Ok(Broker {
        host: host.to_string(),
        port,
        credentials,
    })
}

/// Starts the bridge for `hub.config.frigate` (which must be enabled). The
/// task runs until aborted (server shutdown aborts it).
pub fn spawn(hub: Arc<Hub>) -> anyhow::Result<JoinHandle<()>> {
    let config = hub.config.frigate.clone();
    let Broker {
        host,
        port,
        credentials,
    } = broker_address(&config.mqtt_url).map_err(|e| anyhow::anyhow!("frigate.mqtt_url: {e}"))?;
    let client_id = if config.client_id.is_empty() {
        let name: String = hub
            .name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("patrold-{name}")
    } else {
        config.client_id.clone()
    };
    let mut options = MqttOptions::new(client_id, host.clone(), port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    tracing::info!(broker = %format!("{host}:{port}"), topic = %config.topic, cameras = config.cameras.len(), "frigate bridge starting");
    Ok(tokio::spawn(run(hub, options, format!("{host}:{port}"))))
}

/// The MQTT loop and the decision loop, in one task (aborting it stops both).
async fn run(hub: Arc<Hub>, options: MqttOptions, broker: String) {
    let config = hub.config.frigate.clone();
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    let topic = config.topic.clone();
    let min_backoff = Duration::from_millis(config.reconnect_min_ms);
    let max_backoff = Duration::from_millis(config.reconnect_max_ms);
    let poll = async move {
        let mut backoff = min_backoff;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = min_backoff;
                    tracing::info!(topic = %topic, "frigate bridge connected; subscribing");
                    if let Err(err) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(error = %err, "frigate bridge could not subscribe");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if tx.try_send(publish.payload).is_err() {
                        metrics::counter!(m::FRIGATE_EVENTS, "result" => "dropped").increment(1);
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(
                        error = %err,
                        retry_in_ms = backoff.as_millis() as u64,
                        "frigate bridge lost the broker; reconnecting"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(max_backoff);
                }
            }
        }
    };
    let decide = async move {
        let mut bridge = Bridge::new(config, hub.config.units.future_tolerance_ms);
        let mut bad = 0u64;
        let actor = Actor {
            identity: BRIDGE_IDENTITY.to_string(),
            role: "camera_bridge".to_string(),
            peer: broker,
            node: hub.name().to_string(),
        };
        while let Some(payload) = rx.recv().await {
            let now = now_ms();
            let result = match bridge.on_payload(&payload, now) {
                Step::Skip(result) => {
                    if result == "bad_json" {
                        bad += 1;
                        if bad.is_power_of_two() {
                            let error = serde_json::from_slice::<FrigateEvent>(&payload)
                                .err()
                                .map(|e| e.to_string())
                                .unwrap_or_default();
                            tracing::warn!(%error, bad, bytes = payload.len(), "frigate event not understood");
                        }
                    }
                    result
                }
                Step::Post { object, alert } => {
                    let (result, retry) = post(&hub, &actor, alert, now).await;
                    bridge.posted(&object, retry);
                    result
                }
            };
            metrics::counter!(m::FRIGATE_EVENTS, "result" => result).increment(1);
        }
    };
    tokio::join!(poll, decide);
}

/// Posts one alert; the metric result and whether to try again later.
async fn post(hub: &Hub, actor: &Actor, alert: NewAlert, now: Millis) -> (&'static str, bool) {
    if let Err(err) = alert.validate(now, hub.config.units.future_tolerance_ms) {
        tracing::warn!(error = %err, object = ?alert.object_id, "frigate alert refused");
        return ("rejected", false);
    }
    let origin = Origin {
        actor: actor.clone(),
        time: now,
    };
    let object = alert.object_id.clone();
    match hub.post_alert(origin, alert).await {
        Ok(outcome) => {
            let result = match (&outcome.alert.incident_id, outcome.incident_created) {
                (Some(_), true) => "opened_incident",
                (Some(_), false) => "joined_incident",
                (None, _) => "no_incident",
            };
            metrics::counter!(m::ALERTS, "result" => result).increment(1);
            tracing::info!(alert = %outcome.alert.id, incident = ?outcome.alert.incident_id, object = ?object, "frigate object posted");
            ("posted", false)
        }
        Err(ServerError::Core(err)) => {
            tracing::warn!(error = %err, object = ?object, "frigate alert refused");
            ("rejected", false)
        }
        Err(err) => {
            tracing::warn!(error = %err, object = ?object, "frigate alert not stored; next update tries again");
            ("failed", true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_700_000_100_000;

    fn config() -> FrigateConfig {
        FrigateConfig {
            mqtt_url: "mqtt://127.0.0.1:1883".into(),
            cameras: [("front_door".to_string(), "cam-1".to_string())].into(),
            label_map: [("person".to_string(), "intrusion".to_string())].into(),
            ..FrigateConfig::default()
        }
    }

    fn event(kind: &str, id: &str, camera: &str, label: &str, top: f64) -> Vec<u8> {
        serde_json::json!({
            "type": kind,
            "before": {"id": id, "camera": camera, "label": label, "score": 0.5, "top_score": 0.5},
            "after": {
                "id": id, "camera": camera, "label": label, "score": top, "top_score": top,
                "start_time": 1_700_000_000.25, "has_snapshot": true, "false_positive": false,
                "current_zones": ["yard"], "box": [1, 2, 3, 4], "sub_label": null
            }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn one_alert_per_object_once_it_reaches_the_score() {
        let mut bridge = Bridge::new(config(), 5_000);
        assert_eq!(
            bridge.on_payload(&event("new", "o1", "front_door", "person", 0.5), NOW),
            Step::Skip("below_score")
        );
        let Step::Post { object, alert } =
            bridge.on_payload(&event("update", "o1", "front_door", "person", 0.8), NOW)
        else {
            panic!("crossing the score posts");
        };
        assert_eq!(object, "o1");
        assert_eq!(alert.camera_id, "cam-1");
        assert_eq!(alert.label, "intrusion");
        assert_eq!(alert.time, Some(1_700_000_000_250));
        assert_eq!(alert.object_id.as_deref(), Some("o1"));
        assert_eq!(alert.request_id.as_deref(), Some("frigate-o1"));
        assert_eq!(alert.snapshot_uri, "frigate://front_door/o1/snapshot.jpg");
        assert!((alert.confidence - 0.8).abs() < 1e-6);
        bridge.posted("o1", false);
        assert_eq!(
            bridge.on_payload(&event("update", "o1", "front_door", "person", 0.9), NOW),
            Step::Skip("duplicate")
        );
        assert_eq!(
            bridge.on_payload(&event("end", "o1", "front_door", "person", 0.9), NOW),
            Step::Skip("ended")
        );
        assert_eq!(bridge.tracked(), 0);
    }

    #[test]
    fn a_failed_post_is_tried_again_with_the_same_alert() {
        let mut bridge = Bridge::new(config(), 5_000);
        let Step::Post { alert: first, .. } =
            bridge.on_payload(&event("new", "o1", "front_door", "person", 0.8), NOW)
        else {
            panic!("posts");
        };
        bridge.posted("o1", true);
        let Step::Post { alert: again, .. } =
            bridge.on_payload(&event("update", "o1", "front_door", "person", 0.95), NOW)
        else {
            panic!("tries again");
        };
        assert_eq!(again, first, "the retry keeps the first content");
    }

    #[test]
    fn unmapped_filtered_false_positive_and_garbage_post_nothing() {
        let mut bridge = Bridge::new(
            FrigateConfig {
                labels: vec!["person".into()],
                ..config()
            },
            5_000,
        );
        assert_eq!(
            bridge.on_payload(&event("new", "o2", "garage", "person", 0.9), NOW),
            Step::Skip("unmapped_camera")
        );
        assert_eq!(
            bridge.on_payload(&event("new", "o3", "front_door", "cat", 0.9), NOW),
            Step::Skip("label_filtered")
        );
        assert_eq!(bridge.on_payload(b"{not json", NOW), Step::Skip("bad_json"));
        assert_eq!(
            bridge.on_payload(br#"{"type":"new","after":{"id":1}}"#, NOW),
            Step::Skip("bad_json")
        );
        assert_eq!(
            bridge.on_payload(br#"{"type":"new"}"#, NOW),
            Step::Skip("no_object")
        );
        assert_eq!(
            bridge.on_payload(br#"{"type":"reviewed"}"#, NOW),
            Step::Skip("other_type")
        );
        let mut fp: serde_json::Value =
            serde_json::from_slice(&event("new", "o4", "front_door", "person", 0.9)).unwrap();
        fp["after"]["false_positive"] = true.into();
        assert_eq!(
            bridge.on_payload(fp.to_string().as_bytes(), NOW),
            Step::Skip("false_positive")
        );
        assert_eq!(bridge.tracked(), 0);
    }

    #[test]
    fn a_future_start_time_means_now_and_a_base_url_makes_http_links() {
        let mut bridge = Bridge::new(
            FrigateConfig {
                snapshot_base_url: "http://frigate:5000/".into(),
                ..config()
            },
            5_000,
        );
        let Step::Post { alert, .. } = bridge.on_payload(
            &event("new", "o1", "front_door", "dog", 0.9),
            1_700_000_000_000 - 10_000,
        ) else {
            panic!("posts");
        };
        assert_eq!(alert.time, None);
        assert_eq!(alert.label, "dog");
        assert_eq!(
            alert.snapshot_uri,
            "http://frigate:5000/api/events/o1/snapshot.jpg"
        );
    }

    #[test]
    fn remembered_objects_are_bounded() {
        let mut bridge = Bridge::new(config(), 5_000).with_max_objects(2);
        for id in ["a", "b", "c"] {
            bridge.on_payload(&event("new", id, "front_door", "person", 0.9), NOW);
            bridge.posted(id, false);
        }
        assert_eq!(bridge.tracked(), 2);
        // "a" went first: it is posted again (the core's object window keeps
        // it in its incident), "c" is still known
        assert!(matches!(
            bridge.on_payload(&event("update", "a", "front_door", "person", 0.9), NOW),
            Step::Post { .. }
        ));
        assert_eq!(
            bridge.on_payload(&event("update", "c", "front_door", "person", 0.9), NOW),
            Step::Skip("duplicate")
        );
    }

    #[test]
    fn broker_urls() {
        let broker = |host: &str, port, credentials: Option<(&str, &str)>| Broker {
            host: host.into(),
            port,
            credentials: credentials.map(|(u, p)| (u.into(), p.into())),
        };
        assert_eq!(
            broker_address("mqtt://broker").unwrap(),
            broker("broker", 1883, None)
        );
        assert_eq!(
            broker_address("mqtt://u:p@10.0.0.2:1884/").unwrap(),
            broker("10.0.0.2", 1884, Some(("u", "p")))
        );
        assert_eq!(
            broker_address("tcp://[::1]:1885").unwrap(),
            broker("::1", 1885, None)
        );
        assert_eq!(
            broker_address("mqtt://[::1]").unwrap(),
            broker("::1", 1883, None)
        );
        assert!(broker_address("mqtts://broker").is_err());
        assert!(broker_address("mqtt://broker:x").is_err());
        assert!(broker_address("mqtt://").is_err());
    }
}
