//! Camera alerts and the policy that turns them into incidents.
//!
//! An alert whose label has a rule, at or above the policy's minimum
//! confidence, opens an incident at the camera; later alerts from the same
//! camera with the same label join that incident while it is open (new,
//! dispatched or on scene), so one fight seen for a minute is one incident, not
//! sixty. [`AlertJoins`] remembers which incident each (camera, label) opened.
//! [`Dispatcher::post_alert`](crate::Dispatcher::post_alert) is the door that
//! applies the decision.

use std::collections::HashMap;

use crate::Millis;
use crate::cameras::Camera;
use crate::geometry::LonLat;

/// An event from a camera system (video analytics), as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: String,
    pub camera_id: String,
    pub time: Millis,
    pub label: String,
    pub confidence: f32,
    pub snapshot_uri: String,
    pub location: LonLat,
    pub incident_id: Option<String>,
}

/// An alert as posted.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub camera_id: String,
    /// `None`: now.
    pub time: Option<Millis>,
    pub label: String,
    pub confidence: f32,
    pub snapshot_uri: String,
}

/// What happened to a posted alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertOutcome {
    pub alert: Alert,
    /// True when the alert opened the incident (false: joined or none).
    pub incident_created: bool,
}

/// Which alerts become incidents: a label rule and a minimum confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub label: String,
    pub incident_kind: String,
    pub priority: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertPolicy {
    pub min_confidence: f32,
    pub rules: Vec<AlertRule>,
}

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
        }
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
    pub fn decide(
        &self,
        policy: &AlertPolicy,
        alert: &Alert,
        is_open: impl Fn(&str) -> bool,
    ) -> AlertDisposition {
        let Some(rule) = policy.rule_for(&alert.label, alert.confidence) else {
            return AlertDisposition::RecordOnly;
        };
        let key = (alert.camera_id.clone(), alert.label.clone());
        match self.open.get(&key) {
            Some(incident_id) if is_open(incident_id) => {
                AlertDisposition::Join(incident_id.clone())
            }
            _ => AlertDisposition::Open(rule.clone()),
        }
    }

    /// Later alerts of `camera_id` with `label` join `incident_id`.
    pub fn remember(&mut self, camera_id: &str, label: &str, incident_id: &str) {
        self.open.insert(
            (camera_id.to_string(), label.to_string()),
            incident_id.to_string(),
        );
    }

    /// The incident no longer takes alerts (resolved or closed).
    pub fn forget_incident(&mut self, incident_id: &str) {
        self.open.retain(|_, iid| iid != incident_id);
    }

    /// (camera id, label, incident id), sorted: the same on every node.
    pub fn to_records(&self) -> Vec<(String, String, String)> {
        let mut records: Vec<_> = self
            .open
            .iter()
            .map(|((camera, label), incident)| (camera.clone(), label.clone(), incident.clone()))
            .collect();
        records.sort();
        records
    }

    /// Rebuilds the table from [`AlertJoins::to_records`].
    pub fn from_records(records: Vec<(String, String, String)>) -> Self {
        Self {
            open: records
                .into_iter()
                .map(|(camera, label, incident)| ((camera, label), incident))
                .collect(),
        }
    }
}

/// The description of an incident an alert opens.
pub(crate) fn incident_description(alert: &Alert, camera: &Camera) -> String {
    format!(
        "{} seen by camera {} ({:.0}% confidence)",
        alert.label,
        camera.name_or_id(),
        alert.confidence * 100.0
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

    fn alert(label: &str, confidence: f32) -> Alert {
        Alert {
            id: "alert-1".into(),
            camera_id: "cam-1".into(),
            time: 1,
            label: label.into(),
            confidence,
            snapshot_uri: String::new(),
            location: LonLat::new(24.95, 60.17),
            incident_id: None,
        }
    }

    #[test]
    fn alerts_open_join_or_are_only_recorded() {
        let policy = AlertPolicy::default();
        let mut joins = AlertJoins::default();
        let open = |_: &str| true;
        assert_eq!(
            joins.decide(&policy, &alert("fight", 0.3), open),
            AlertDisposition::RecordOnly
        );
        assert_eq!(
            joins.decide(&policy, &alert("rainbow", 0.99), open),
            AlertDisposition::RecordOnly
        );
        let AlertDisposition::Open(rule) = joins.decide(&policy, &alert("fight", 0.9), open) else {
            panic!("a confident fight opens an incident");
        };
        assert_eq!((rule.incident_kind.as_str(), rule.priority), ("fight", 1));
        joins.remember("cam-1", "fight", "inc-1");
        assert_eq!(
            joins.decide(&policy, &alert("fight", 0.8), open),
            AlertDisposition::Join("inc-1".into())
        );
        // a resolved incident takes no more alerts: the next one opens anew
        assert!(matches!(
            joins.decide(&policy, &alert("fight", 0.8), |_| false),
            AlertDisposition::Open(_)
        ));
        joins.forget_incident("inc-1");
        assert!(joins.to_records().is_empty());
    }
}
