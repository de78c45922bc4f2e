//! Camera alerts and the policy that turns them into incidents.
//!
//! An alert whose label has a rule, at or above the policy's minimum
//! confidence, opens an incident at the camera; later alerts from the same
//! camera with the same label join that incident while it is open (new,
//! dispatched or on scene), so one fight seen for a minute is one incident, not
//! sixty. `AlertJoins` remembers which incident each (camera, label) opened.
//! [`Dispatcher::post_alert`](crate::Dispatcher::post_alert) is the door that
//! applies the decision.
//!
//! An alert may also name the tracked object it is about (`object_id`, e.g. a
//! Frigate event id). Repeated alerts of the same object on the same camera
//! within [`AlertPolicy::object_window_ms`] of its previous alert join the
//! incident its first alerts opened or joined, whatever their label, and
//! never open a second one. `AlertObjects` remembers those objects, at most
//! [`AlertPolicy::max_objects`] of them (the longest unseen go first).

use std::collections::{BTreeSet, HashMap};

use crate::Millis;
use crate::cameras::Camera;
use crate::error::{Error, validate_id};
use crate::fingerprint::Fingerprint;
use crate::geometry::{LonLat, Validated};
use crate::incidents::validate_request_id;

/// Longest accepted alert label, in bytes.
pub const MAX_LABEL_LEN: usize = 64;
/// Longest accepted snapshot link, in bytes.
pub const MAX_SNAPSHOT_URI_LEN: usize = 4096;
/// Default [`AlertPolicy::object_window_ms`]: ten minutes.
pub const DEFAULT_OBJECT_WINDOW_MS: Millis = 10 * 60 * 1000;
/// Default [`AlertPolicy::max_objects`].
pub const DEFAULT_MAX_OBJECTS: usize = 10_000;

/// An event from a camera system (video analytics), as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Server-assigned: `{id_prefix}alert-{n}`.
    pub id: String,
    /// The camera that saw it.
    pub camera_id: String,
    /// When it happened, Unix ms (the analytics' time, or when it was posted).
    pub time: Millis,
    /// What the analytics saw, e.g. "fight", "intrusion", "plate_hit".
    pub label: String,
    /// The analytics' confidence, 0..=1.
    pub confidence: f32,
    /// A link to the frame or clip, for operators.
    pub snapshot_uri: String,
    /// Where: the camera's position (x = longitude, y = latitude, degrees).
    pub location: LonLat,
    /// The incident it opened or joined, if the policy made it one.
    pub incident_id: Option<String>,
    /// The tracked object the analytics say it is about (e.g. a Frigate
    /// event id), if any. Absent in entries of older builds.
    #[serde(default)]
    pub object_id: Option<String>,
}

/// An alert as posted.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewAlert {
    /// A registered camera's id.
    pub camera_id: String,
    /// When it happened, Unix ms; `None`: now.
    pub time: Option<Millis>,
    /// What the analytics saw, 1..=64 bytes.
    pub label: String,
    /// The analytics' confidence, 0..=1.
    pub confidence: f32,
    /// A link to the frame or clip, at most 4096 bytes (may be empty).
    pub snapshot_uri: String,
    /// Caller-chosen: a retry with the same id and content returns the
    /// first outcome instead of recording the alert twice.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The tracked object this alert is about (e.g. a Frigate event id): a
    /// later alert of the same object on the same camera, within the
    /// policy's object window, joins the incident this one opened or joined
    /// instead of opening another. Absent in entries of older builds.
    #[serde(default)]
    pub object_id: Option<String>,
    /// Where the analytics place what they saw, if they do: the incident
    /// it opens goes there instead of the centre of the camera's view.
    #[serde(default)]
    pub location: Option<LonLat>,
}

/// What happened to a posted alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertOutcome {
    /// The alert as recorded, with the incident it opened or joined.
    pub alert: Alert,
    /// True when the alert opened the incident (false: joined or none).
    pub incident_created: bool,
}

/// One label that becomes an incident, and what kind of incident.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// The alert label this rule matches, exactly.
    pub label: String,
    /// The type of the incident it opens, e.g. "medical" for "fall".
    pub incident_kind: String,
    /// The incident's priority, 1 (most urgent) ..= 5.
    pub priority: u32,
}

/// Which alerts become incidents: those whose label has a rule, at or above
/// a minimum confidence. Every node of a region must use the same policy.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPolicy {
    /// Alerts below this confidence (0..=1) are only recorded.
    pub min_confidence: f32,
    /// One rule per label.
    pub rules: Vec<AlertRule>,
    /// How long after an object's last alert (by the core's `now`, ms) a
    /// further alert of the same object on the same camera still joins its
    /// incident. Default ten minutes.
    pub object_window_ms: Millis,
    /// At most this many objects are remembered; the longest unseen go
    /// first.
    pub max_objects: usize,
    /// An incident an alert opens is placed at the alert's own location if
    /// it gives one, else this many metres along the ground from the camera
    /// in the centre of its current view (clamped to its range; 0: at the
    /// camera). Default [`DEFAULT_VIEW_DISTANCE_M`].
    pub view_distance_m: f64,
}

/// Default [`AlertPolicy::view_distance_m`], metres.
pub const DEFAULT_VIEW_DISTANCE_M: f64 = 15.0;

impl Default for AlertPolicy {
    fn default() -> Self {
        let rule = |label: &str, kind: &str, priority| AlertRule {
            label: label.into(),
            incident_kind: kind.into(),
            priority,
        };
        Self {
            min_confidence: 0.6,
            rules: vec![
                rule("fight", "fight", 1),
                rule("weapon", "weapon", 1),
                rule("fall", "medical", 1),
                rule("intrusion", "intrusion", 2),
                rule("car_break_in", "theft", 2),
                rule("plate_hit", "wanted_vehicle", 2),
                rule("fire", "fire", 1),
                rule("loitering", "suspicious_person", 4),
            ],
            object_window_ms: DEFAULT_OBJECT_WINDOW_MS,
            max_objects: DEFAULT_MAX_OBJECTS,
            view_distance_m: DEFAULT_VIEW_DISTANCE_M,
        }
    }
}

impl NewAlert {
    /// The checks that need no state: camera id, label, confidence, snapshot
    /// link and time (positive, at most `future_tolerance_ms` after `now`,
    /// both Unix ms). The service runs this at the edge before logging the
    /// alert; [`Dispatcher::post_alert`](crate::Dispatcher::post_alert) runs
    /// it again, so the rules live here only.
    pub fn validate(&self, now: Millis, future_tolerance_ms: Millis) -> Result<(), Error> {
        validate_id("camera_id", &self.camera_id)?;
        if self.label.is_empty() || self.label.len() > MAX_LABEL_LEN {
            return Err(Error::invalid(
                "label",
                format!("{:?}", &self.label[..self.label.floor_char_boundary(32)]),
                format!("must be 1..={MAX_LABEL_LEN} bytes"),
            ));
        }
        if !self.confidence.is_finite() || !(0.0..=1.0).contains(&self.confidence) {
            return Err(Error::invalid(
                "confidence",
                self.confidence,
                "must be in 0..=1",
            ));
        }
        if self.snapshot_uri.len() > MAX_SNAPSHOT_URI_LEN {
            return Err(Error::invalid(
                "snapshot_uri",
                format!("{} bytes", self.snapshot_uri.len()),
                format!("must be at most {MAX_SNAPSHOT_URI_LEN} bytes"),
            ));
        }
        let time = self.time_at(now);
        if time <= 0 || time > now.saturating_add(future_tolerance_ms) {
            return Err(Error::invalid(
                "time_unix_ms",
                time,
                "must be a positive time, not in the future",
            ));
        }
        if let Some(object_id) = &self.object_id {
            validate_id("object_id", object_id)?;
        }
        if let Some(location) = self.location {
            location.validated("location")?;
        }
        validate_request_id(&self.request_id)
    }

    /// The request's content as `actor` sent it, for recognising retries.
    /// A missing time stays missing: a retry means "now" again.
    pub(crate) fn fingerprint(&self, actor: &crate::Actor) -> u64 {
        let fingerprint = Fingerprint::of("post_alert")
            .str(&actor.identity)
            .str(&self.camera_id)
            .opt(self.time, Fingerprint::i64)
            .str(&self.label)
            .f32(self.confidence)
            .str(&self.snapshot_uri);
        // Only when present, so requests without one keep the fingerprint of
        // older builds (request logs in checkpoints stay valid).
        let fingerprint = match &self.object_id {
            Some(object_id) => fingerprint.str("object_id").str(object_id),
            None => fingerprint,
        };
        match self.location {
            Some(p) => fingerprint.str("location").f64(p.lon).f64(p.lat),
            None => fingerprint,
        }
        .finish()
    }

    /// When the alert happened: its own time, or `now` when it has none.
    pub fn time_at(&self, now: Millis) -> Millis {
        self.time.unwrap_or(now)
    }
}

impl AlertPolicy {
    /// The rule that makes an alert with this label and confidence an
    /// incident, if any.
    pub fn rule_for(&self, label: &str, confidence: f32) -> Option<&AlertRule> {
        self.rules
            .iter()
            .find(|r| r.label == label)
            .filter(|_| confidence >= self.min_confidence)
    }
}

/// What to do with a recorded alert.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AlertDisposition {
    /// No rule applies: record the alert only.
    RecordOnly,
    /// Join this open incident, raised earlier by the same camera and label.
    Join(String),
    /// Open a new incident by this rule.
    Open(AlertRule),
}

/// Which open incident each (camera id, label) raised: later alerts join it.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertJoins {
    open: HashMap<(String, String), String>,
}

impl AlertJoins {
    /// Decides an alert's fate: `is_open` says whether an incident still
    /// accepts alerts (new, dispatched or on scene).
    pub(crate) fn decide(
        &self,
        policy: &AlertPolicy,
        camera_id: &str,
        label: &str,
        confidence: f32,
        is_open: impl Fn(&str) -> bool,
    ) -> AlertDisposition {
        let Some(rule) = policy.rule_for(label, confidence) else {
            return AlertDisposition::RecordOnly;
        };
        let key = (camera_id.to_string(), label.to_string());
        match self.open.get(&key) {
            Some(incident_id) if is_open(incident_id) => {
                AlertDisposition::Join(incident_id.clone())
            }
            _ => AlertDisposition::Open(rule.clone()),
        }
    }

    /// Later alerts of `camera_id` with `label` join `incident_id`.
    pub(crate) fn remember(&mut self, camera_id: &str, label: &str, incident_id: &str) {
        self.open.insert(
            (camera_id.to_string(), label.to_string()),
            incident_id.to_string(),
        );
    }

    /// The incident no longer takes alerts (resolved or closed).
    pub(crate) fn forget_incident(&mut self, incident_id: &str) {
        self.open.retain(|_, iid| iid != incident_id);
    }

    /// (camera id, label, incident id), sorted: the same on every node.
    pub(crate) fn to_records(&self) -> Vec<(String, String, String)> {
        let mut records: Vec<_> = self
            .open
            .iter()
            .map(|((camera, label), incident)| (camera.clone(), label.clone(), incident.clone()))
            .collect();
        records.sort();
        records
    }

    /// Rebuilds the table from [`AlertJoins::to_records`].
    pub(crate) fn from_records(records: Vec<(String, String, String)>) -> Self {
        Self {
            open: records
                .into_iter()
                .map(|(camera, label, incident)| ((camera, label), incident))
                .collect(),
        }
    }
}

/// One remembered object, as a checkpoint holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertObjectRecord {
    /// The camera that saw it.
    pub camera_id: String,
    /// The analytics' object id.
    pub object_id: String,
    /// The incident its alerts joined or opened, if any did.
    pub incident_id: Option<String>,
    /// The core's `now` at its latest alert, Unix ms.
    pub last_seen: Millis,
}

/// Objects seen lately, by (camera id, object id): the incident their alerts
/// go to and when they were last seen. Bounded; ordered by last sighting
/// (then ids) so eviction is the same on every node.
#[derive(Debug, Clone, Default)]
pub(crate) struct AlertObjects {
    objects: HashMap<(String, String), (Option<String>, Millis)>,
    by_age: BTreeSet<(Millis, String, String)>,
}

impl AlertObjects {
    /// The object's remembered incident (`Some(None)`: seen, but none
    /// yet), when its last alert is at most `window_ms` before `now`.
    pub(crate) fn get(
        &self,
        camera_id: &str,
        object_id: &str,
        now: Millis,
        window_ms: Millis,
    ) -> Option<Option<&str>> {
        let (incident, last_seen) = self
            .objects
            .get(&(camera_id.to_string(), object_id.to_string()))?;
        (now.saturating_sub(*last_seen) <= window_ms).then_some(incident.as_deref())
    }

    /// The object was seen at `now`, its alerts going to `incident_id`. Then
    /// forgets objects unseen for longer than `window_ms` and, beyond
    /// `max_objects`, the longest unseen.
    pub(crate) fn seen(
        &mut self,
        camera_id: &str,
        object_id: &str,
        incident_id: Option<String>,
        now: Millis,
        window_ms: Millis,
        max_objects: usize,
    ) {
        let key = (camera_id.to_string(), object_id.to_string());
        if let Some((_, last_seen)) = self.objects.get(&key) {
            self.by_age
                .remove(&(*last_seen, key.0.clone(), key.1.clone()));
        }
        self.by_age.insert((now, key.0.clone(), key.1.clone()));
        self.objects.insert(key, (incident_id, now));
        while let Some((last_seen, camera, object)) = self.by_age.first().cloned() {
            let expired = now.saturating_sub(last_seen) > window_ms;
            if !expired && self.objects.len() <= max_objects.max(1) {
                break;
            }
            self.by_age.pop_first();
            self.objects.remove(&(camera, object));
        }
    }

    /// How many objects are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    /// Every remembered object, oldest sighting first.
    pub(crate) fn to_records(&self) -> Vec<AlertObjectRecord> {
        self.by_age
            .iter()
            .map(|(last_seen, camera, object)| AlertObjectRecord {
                camera_id: camera.clone(),
                object_id: object.clone(),
                incident_id: self.objects[&(camera.clone(), object.clone())].0.clone(),
                last_seen: *last_seen,
            })
            .collect()
    }

    /// Rebuilds the table from [`AlertObjects::to_records`].
    pub(crate) fn from_records(records: Vec<AlertObjectRecord>) -> Self {
        let mut objects = Self::default();
        for r in records {
            objects
                .by_age
                .insert((r.last_seen, r.camera_id.clone(), r.object_id.clone()));
            objects
                .objects
                .insert((r.camera_id, r.object_id), (r.incident_id, r.last_seen));
        }
        objects
    }
}

/// The description of an incident an alert (`label`, `confidence`) opens.
pub(crate) fn incident_description(label: &str, confidence: f32, camera: &Camera) -> String {
    format!(
        "{label} seen by camera {} ({:.0}% confidence)",
        camera.name_or_id(),
        confidence * 100.0
    )
}

/// The audit detail when an alert joins an incident.
pub(crate) fn joined_detail(alert: &Alert) -> String {
    format!(
        "alert {} ({} {:.2})",
        alert.id, alert.label, alert.confidence
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_open_join_or_are_only_recorded() {
        let policy = AlertPolicy::default();
        let mut joins = AlertJoins::default();
        let open = |_: &str| true;
        assert_eq!(
            joins.decide(&policy, "cam-1", "fight", 0.3, open),
            AlertDisposition::RecordOnly
        );
        assert_eq!(
            joins.decide(&policy, "cam-1", "rainbow", 0.99, open),
            AlertDisposition::RecordOnly
        );
        let AlertDisposition::Open(rule) = joins.decide(&policy, "cam-1", "fight", 0.9, open)
        else {
            panic!("a confident fight opens an incident");
        };
        assert_eq!((rule.incident_kind.as_str(), rule.priority), ("fight", 1));
        joins.remember("cam-1", "fight", "inc-1");
        assert_eq!(
            joins.decide(&policy, "cam-1", "fight", 0.8, open),
            AlertDisposition::Join("inc-1".into())
        );
        // another camera, or another label, does not join
        assert!(matches!(
            joins.decide(&policy, "cam-2", "fight", 0.8, open),
            AlertDisposition::Open(_)
        ));
        // a resolved incident takes no more alerts: the next one opens anew
        assert!(matches!(
            joins.decide(&policy, "cam-1", "fight", 0.8, |_| false),
            AlertDisposition::Open(_)
        ));
        joins.forget_incident("inc-1");
        assert!(joins.to_records().is_empty());
    }

    fn new_alert() -> NewAlert {
        NewAlert {
            camera_id: "cam-1".into(),
            time: Some(1_000),
            label: "fight".into(),
            confidence: 0.9,
            snapshot_uri: String::new(),
            request_id: None,
            object_id: None,
            location: None,
        }
    }

    #[test]
    fn objects_expire_and_the_longest_unseen_go_first() {
        let mut objects = AlertObjects::default();
        objects.seen("cam-1", "a", Some("inc-1".into()), 1_000, 100, 2);
        assert_eq!(objects.get("cam-1", "a", 1_100, 100), Some(Some("inc-1")));
        assert_eq!(objects.get("cam-1", "a", 1_101, 100), None);
        assert_eq!(objects.get("cam-2", "a", 1_000, 100), None);
        objects.seen("cam-1", "b", None, 1_050, 100, 2);
        assert_eq!(objects.get("cam-1", "b", 1_050, 100), Some(None));
        // a third object pushes out the longest unseen ("a")
        objects.seen("cam-1", "c", None, 1_060, 100, 2);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects.get("cam-1", "a", 1_060, 100), None);
        // seeing "b" again moves it to the back: "c" goes next
        objects.seen("cam-1", "b", Some("inc-2".into()), 1_070, 100, 2);
        objects.seen("cam-1", "d", None, 1_080, 100, 2);
        assert_eq!(objects.get("cam-1", "b", 1_080, 100), Some(Some("inc-2")));
        assert_eq!(objects.get("cam-1", "c", 1_080, 100), None);
        // expired ones are dropped when anything is seen
        objects.seen("cam-9", "z", None, 5_000, 100, 2);
        assert_eq!(objects.len(), 1);
        let records = objects.to_records();
        let back = AlertObjects::from_records(records.clone());
        assert_eq!(back.to_records(), records);
    }

    #[test]
    fn alert_checks_name_the_field() {
        let field = |a: NewAlert| match a.validate(1_000, 5_000) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert!(new_alert().validate(1_000, 5_000).is_ok());
        assert!(
            NewAlert {
                time: None,
                ..new_alert()
            }
            .validate(1_000, 0)
            .is_ok()
        );
        assert_eq!(
            field(NewAlert {
                camera_id: String::new(),
                ..new_alert()
            }),
            "camera_id"
        );
        assert_eq!(
            field(NewAlert {
                label: "x".repeat(65),
                ..new_alert()
            }),
            "label"
        );
        assert_eq!(
            field(NewAlert {
                confidence: 1.5,
                ..new_alert()
            }),
            "confidence"
        );
        assert_eq!(
            field(NewAlert {
                time: Some(6_001),
                ..new_alert()
            }),
            "time_unix_ms"
        );
        assert_eq!(
            field(NewAlert {
                time: Some(0),
                ..new_alert()
            }),
            "time_unix_ms"
        );
        assert_eq!(
            field(NewAlert {
                snapshot_uri: "u".repeat(4097),
                ..new_alert()
            }),
            "snapshot_uri"
        );
        assert_eq!(
            field(NewAlert {
                object_id: Some(String::new()),
                ..new_alert()
            }),
            "object_id"
        );
        assert_eq!(
            field(NewAlert {
                request_id: Some(String::new()),
                ..new_alert()
            }),
            "request_id"
        );
    }
}
