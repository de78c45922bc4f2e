//! Incidents and their lifecycle.
//!
//! ```text
//!   New ──dispatch──▶ Dispatched ──▶ OnScene ──▶ Resolved ──▶ Closed
//!    │                    │             │                       ▲
//!    └────────────────────┴─────────────┴───────────────────────┘
//! ```
//! `New` may also go straight to `Resolved`. Nothing leaves `Closed`. `Dispatched`
//! is entered only by assigning units (see `Dispatcher::dispatch`).

use crate::Millis;
use crate::geometry::LonLat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IncidentStatus {
    New,
    Dispatched,
    OnScene,
    Resolved,
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::New => "new",
            IncidentStatus::Dispatched => "dispatched",
            IncidentStatus::OnScene => "on_scene",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
        }
    }

    /// Whether units may still be sent.
    pub fn accepts_units(self) -> bool {
        matches!(
            self,
            IncidentStatus::New | IncidentStatus::Dispatched | IncidentStatus::OnScene
        )
    }

    /// Whether `self -> to` is a legal operator transition.
    pub fn can_become(self, to: IncidentStatus) -> bool {
        use IncidentStatus::*;
        matches!(
            (self, to),
            (New, Resolved | Closed)
                | (Dispatched, OnScene | Resolved | Closed)
                | (OnScene, Resolved | Closed)
                | (Resolved, Closed)
        )
    }

    pub fn is_open(self) -> bool {
        self != IncidentStatus::Closed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IncidentSource {
    Call,
    CameraAlert,
    Operator,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub time: Millis,
    pub action: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    pub id: String,
    pub kind: String,
    /// 1 (most urgent) ..= 5.
    pub priority: u32,
    pub location: LonLat,
    pub source: IncidentSource,
    pub status: IncidentStatus,
    pub description: String,
    /// Units currently assigned.
    pub unit_ids: Vec<String>,
    pub camera_ids: Vec<String>,
    pub alert_ids: Vec<String>,
    pub created: Millis,
    pub updated: Millis,
    pub audit: Vec<AuditEntry>,
}

impl Incident {
    pub(crate) fn record(&mut self, time: Millis, action: &'static str, detail: String) {
        self.updated = time;
        self.audit.push(AuditEntry {
            time,
            action: action.to_string(),
            detail,
        });
    }
}

/// What a caller supplies to open an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    pub kind: String,
    /// 1..=5; `None` means 3.
    pub priority: Option<u32>,
    pub location: LonLat,
    pub source: IncidentSource,
    pub description: String,
}

/// An order for one unit to go to an incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub id: String,
    pub unit_id: String,
    pub incident_id: String,
    pub incident_kind: String,
    pub priority: u32,
    pub location: LonLat,
    pub description: String,
    pub issued: Millis,
    /// Straight-line metres from the unit's fix when issued.
    pub distance_m: Option<f64>,
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::IncidentStatus::*;

    #[test]
    fn lifecycle_rejects_illegal_moves() {
        assert!(New.can_become(Closed));
        assert!(Dispatched.can_become(OnScene));
        assert!(OnScene.can_become(Resolved));
        assert!(Resolved.can_become(Closed));
        assert!(!New.can_become(OnScene));
        assert!(!New.can_become(Dispatched));
        assert!(!Closed.can_become(New));
        assert!(!Closed.can_become(OnScene));
        assert!(!Resolved.can_become(Dispatched));
        assert!(!OnScene.can_become(Dispatched));
    }
}
