//! The core's state as plain records, for checkpoints: export what changed,
//! rebuild a core from the records. Slots (the order units, cameras and
//! incidents were first seen) are kept, because that order shows: listing
//! pages and the order of offline notices follow it, and a rebuilt node must
//! emit exactly what a node that never stopped emits.

use serde::{Deserialize, Serialize};

use crate::cameras::{Camera, CameraIndex};
use crate::core::{Dispatcher, DispatcherConfig};
use crate::error::Error;
use crate::incidents::{Incident, Order};
use crate::requests::RequestRecord;
use crate::units::{Fix, UnitKind, UnitProfile, UnitStatus};

/// One unit, as stored (its status is the stored one, never derived).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitState {
    pub slot: u32,
    pub id: String,
    pub call_sign: String,
    pub kind: UnitKind,
    pub capabilities: Vec<String>,
    pub status: UnitStatus,
    pub fix: Option<Fix>,
    pub incident_id: Option<String>,
    pub order: Option<Order>,
    pub offline_reported: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraState {
    pub slot: usize,
    pub camera: Camera,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentState {
    pub slot: usize,
    pub incident: Incident,
}

/// Everything else: id counters, which open incidents later alerts join, and
/// the capability tags in the order they were learnt.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CoreMeta {
    pub next_alert: u64,
    pub next_incident: u64,
    pub next_order: u64,
    /// (camera id, label, incident id).
    pub alert_incidents: Vec<(String, String, String)>,
    pub capability_names: Vec<String>,
    /// Request ids already applied, oldest first, so a rebuilt node still
    /// answers a retry with the first result. Absent in checkpoints of the
    /// older build.
    #[serde(default)]
    pub requests: Vec<RequestRecord>,
}

/// A whole core.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CoreState {
    pub meta: CoreMeta,
    pub units: Vec<UnitState>,
    pub cameras: Vec<CameraState>,
    pub incidents: Vec<IncidentState>,
}

impl Dispatcher {
    pub fn export_meta(&self) -> CoreMeta {
        let (next_alert, next_incident, next_order) = self.counters();
        let alert_incidents = self.alert_joins().to_records();
        CoreMeta {
            next_alert,
            next_incident,
            next_order,
            alert_incidents,
            capability_names: self.units().capability_names(),
            requests: self.request_log().to_records(),
        }
    }

    pub fn export_unit(&self, id: &str) -> Option<UnitState> {
        let units = self.units();
        let slot = units.slot(id).ok()?;
        let profile = units.profile(slot);
        let record = units.record(slot);
        Some(UnitState {
            slot,
            id: profile.id,
            call_sign: profile.call_sign,
            kind: profile.kind,
            capabilities: profile.capabilities,
            status: units.stored_status(slot),
            fix: record.fix(),
            incident_id: record.incident_id.as_deref().map(str::to_string),
            order: record.order.as_deref().cloned(),
            offline_reported: record.offline_reported,
        })
    }

    pub fn export_camera(&self, id: &str) -> Option<CameraState> {
        let cameras = self.camera_index();
        cameras.slot(id).map(|slot| CameraState {
            slot,
            camera: cameras.in_slot_order()[slot].clone(),
        })
    }

    pub fn export_incident(&self, id: &str) -> Option<IncidentState> {
        self.incident_slot(id).map(|slot| IncidentState {
            slot,
            incident: self.incidents_in_order()[slot].clone(),
        })
    }

    /// Every unit, camera and incident.
    pub fn export_all(&self) -> CoreState {
        let units = self.units();
        CoreState {
            meta: self.export_meta(),
            units: (0..units.len() as u32)
                .filter_map(|slot| self.export_unit(units.unit_id(slot)))
                .collect(),
            cameras: self
                .camera_index()
                .in_slot_order()
                .iter()
                .enumerate()
                .map(|(slot, camera)| CameraState {
                    slot,
                    camera: camera.clone(),
                })
                .collect(),
            incidents: self
                .incidents_in_order()
                .iter()
                .enumerate()
                .map(|(slot, incident)| IncidentState {
                    slot,
                    incident: incident.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a core from records. Slots must run 0, 1, 2, ... per kind.
    pub fn restore(config: DispatcherConfig, mut state: CoreState) -> Result<Self, Error> {
        let mut core = Dispatcher::new(config);
        core.units_mut()
            .restore_capabilities(&state.meta.capability_names)?;
        state.units.sort_by_key(|u| u.slot);
        for (expected, unit) in state.units.into_iter().enumerate() {
            check_slot("unit", expected, unit.slot as usize)?;
            core.units_mut().restore(unit)?;
        }
        state.cameras.sort_by_key(|c| c.slot);
        state.incidents.sort_by_key(|i| i.slot);
        let cameras = state
            .cameras
            .into_iter()
            .enumerate()
            .map(|(expected, c)| check_slot("camera", expected, c.slot).map(|_| c.camera))
            .collect::<Result<Vec<_>, _>>()?;
        let cameras = CameraIndex::from_slot_order(cameras)?;
        let incidents = state
            .incidents
            .into_iter()
            .enumerate()
            .map(|(expected, i)| check_slot("incident", expected, i.slot).map(|_| i.incident))
            .collect::<Result<Vec<_>, _>>()?;
        core.restore_rest(cameras, incidents, state.meta);
        Ok(core)
    }
}

fn check_slot(kind: &str, expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::FailedPrecondition(format!(
            "checkpoint is missing {kind} slot {expected} (next is {found})"
        )))
    }
}

impl UnitState {
    pub(crate) fn profile(&self) -> UnitProfile {
        UnitProfile {
            id: self.id.clone(),
            call_sign: self.call_sign.clone(),
            kind: self.kind,
            capabilities: self.capabilities.clone(),
        }
    }
}
