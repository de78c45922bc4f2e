//! The core's state as plain records, for checkpoints: export what changed,
//! rebuild a core from the records. Slots (the order units, cameras and
//! incidents were first seen) are kept, because that order shows: listing
//! pages and the order of offline notices follow it, and a rebuilt node must
//! emit exactly what a node that never stopped emits.

use serde::{Deserialize, Serialize};

use crate::alerts::AlertObjectRecord;
use crate::cameras::{Camera, CameraIndex};
use crate::core::{Dispatcher, DispatcherConfig};
use crate::core::{Follow, StatusTimer};
use crate::error::Error;
use crate::incidents::{Incident, Order};
use crate::requests::RequestRecord;
use crate::tracks::Track;
use crate::trust::TrustState;
use crate::units::{Fix, UnitKind, UnitProfile, UnitStatus};
use crate::zones::{Rings, UnitZones, Zone, ZoneKind, check_polygon, from_rings, to_rings};

/// One unit, as stored (its status is the stored one, never derived).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitState {
    /// Its place in registration order, from 0.
    pub slot: u32,
    /// The unit's id.
    pub id: String,
    /// Its call sign.
    pub call_sign: String,
    /// Car, foot, e-bike or motorcycle.
    pub kind: UnitKind,
    /// Its capability tags, in the index's learnt order.
    pub capabilities: Vec<String>,
    /// The stored status (never `Offline`, which is derived from fix age).
    pub status: UnitStatus,
    /// Its latest fix, if any.
    pub fix: Option<Fix>,
    /// The incident it is assigned to, if any.
    pub incident_id: Option<String>,
    /// The order that assigned it, if any.
    pub order: Option<Order>,
    /// Whether the stream was last told it is offline.
    pub offline_reported: bool,
    /// The position trust rules' memory, when it holds anything. Absent in
    /// checkpoints of older builds.
    #[serde(default)]
    pub trust: Option<TrustState>,
}

/// One camera, with its slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraState {
    /// Its place in registration order, from 0.
    pub slot: usize,
    /// The camera as stored: PTZ head and pose, health (`last_seen`)
    /// included.
    pub camera: Camera,
    /// Whether the stream was last told it is offline. Absent in checkpoints
    /// of the older build (which knew no camera health).
    #[serde(default)]
    pub offline_reported: bool,
}

/// One incident, with its slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentState {
    /// Its place in creation order, from 0.
    pub slot: usize,
    /// The incident, audit trail included.
    pub incident: Incident,
}

/// Everything else: id counters, which open incidents later alerts join, the
/// capability tags in the order they were learnt, and the request log.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CoreMeta {
    /// The number in the next alert id.
    pub next_alert: u64,
    /// The number in the next incident id.
    pub next_incident: u64,
    /// The number in the next order id.
    pub next_order: u64,
    /// (camera id, label, incident id): open incidents later alerts join,
    /// sorted.
    pub alert_incidents: Vec<(String, String, String)>,
    /// Objects seen lately by a camera and the incident their alerts go to,
    /// longest unseen first. Absent in checkpoints of older builds.
    #[serde(default)]
    pub alert_objects: Vec<AlertObjectRecord>,
    /// Capability tags in the order they were learnt (bit i is tag i).
    pub capability_names: Vec<String>,
    /// Request ids already applied, oldest first, so a rebuilt node still
    /// answers a retry with the first result. Absent in checkpoints of the
    /// older build.
    #[serde(default)]
    pub requests: Vec<RequestRecord>,
    /// Units en route or on scene: since when, and whether their overdue
    /// alert went out (acknowledgement deadlines are rebuilt from the units'
    /// orders). Absent in checkpoints of older builds.
    #[serde(default)]
    pub timers: Vec<StatusTimer>,
    /// Units followed by cameras. Absent in checkpoints of older builds.
    #[serde(default)]
    pub follows: Vec<Follow>,
    /// Every track, open and closed, by id.
    #[serde(default)]
    pub tracks: Vec<Track>,
    /// The number of the last track id handed out.
    #[serde(default)]
    pub next_track: u64,
    /// Every zone, by id. Absent in checkpoints of older builds.
    #[serde(default)]
    pub zones: Vec<ZoneRecord>,
    /// (unit id, its zones and pending entries/exits), by unit id.
    #[serde(default)]
    pub zone_members: Vec<(String, UnitZones)>,
    /// (unit id, home zone id), by unit id.
    #[serde(default)]
    pub home_zones: Vec<(String, String)>,
    /// (unit id, ids of the cameras whose view held its last fix), by unit
    /// id. Absent in checkpoints of older builds (rebuilt from the next
    /// fixes).
    #[serde(default)]
    pub in_view: Vec<(String, Vec<String>)>,
}

/// One zone, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneRecord {
    /// The zone's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Zone or segment.
    pub kind: ZoneKind,
    /// Polygons, rings, `[lon, lat]` positions.
    pub rings: Rings,
    /// Its version.
    pub version: u64,
    /// When it was last put, Unix ms.
    pub updated: i64,
}

impl ZoneRecord {
    /// The record of a zone.
    pub fn of(zone: &Zone) -> Self {
        Self {
            id: zone.id.clone(),
            name: zone.name.clone(),
            kind: zone.kind.clone(),
            rings: to_rings(&zone.polygon),
            version: zone.version,
            updated: zone.updated,
        }
    }

    /// The zone, its polygon checked.
    pub fn zone(&self) -> Result<Zone, Error> {
        let polygon = from_rings(&self.rings);
        check_polygon(&format!("zones[{}].rings", self.id), &polygon)?;
        Ok(Zone {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            polygon,
            version: self.version,
            updated: self.updated,
        })
    }
}

/// A whole core.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CoreState {
    /// Counters, joins, capability tags, request log.
    pub meta: CoreMeta,
    /// Every unit.
    pub units: Vec<UnitState>,
    /// Every camera.
    pub cameras: Vec<CameraState>,
    /// Every incident, closed ones included.
    pub incidents: Vec<IncidentState>,
}

impl Dispatcher {
    /// The state that is not per unit, camera or incident; a checkpoint
    /// writes it with every save.
    pub fn export_meta(&self) -> CoreMeta {
        let (next_alert, next_incident, next_order) = self.counters();
        let alert_incidents = self.alert_joins().to_records();
        let (tracks, next_track) = self.export_tracks();
        let (zones, zone_members, home_zones) = self.export_zones();
        CoreMeta {
            next_alert,
            next_incident,
            next_order,
            alert_incidents,
            alert_objects: self.alert_objects().to_records(),
            capability_names: self.units().capability_names(),
            requests: self.request_log().to_records(),
            timers: self.export_timers(),
            follows: self.export_follows(),
            tracks,
            next_track,
            zones: zones.iter().map(ZoneRecord::of).collect(),
            zone_members,
            home_zones,
            in_view: self.export_in_view(),
        }
    }

    /// One unit's record, if it exists (a checkpoint writes those that
    /// changed).
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
            trust: units.trust_state(slot).cloned(),
        })
    }

    /// One camera's record, if it exists.
    pub fn export_camera(&self, id: &str) -> Option<CameraState> {
        let cameras = self.camera_index();
        cameras.slot(id).map(|slot| CameraState {
            slot,
            camera: cameras.in_slot_order()[slot].clone(),
            offline_reported: cameras.offline_reported(slot),
        })
    }

    /// One incident's record, if it exists.
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
            cameras: (0..self.camera_index().len())
                .map(|slot| {
                    let cameras = self.camera_index();
                    CameraState {
                        slot,
                        camera: cameras.in_slot_order()[slot].clone(),
                        offline_reported: cameras.offline_reported(slot),
                    }
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
            .map(|(expected, c)| {
                check_slot("camera", expected, c.slot).map(|_| (c.camera, c.offline_reported))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cameras = CameraIndex::from_slot_order(core.config().cameras, cameras)?;
        let incidents = state
            .incidents
            .into_iter()
            .enumerate()
            .map(|(expected, i)| check_slot("incident", expected, i.slot).map(|_| i.incident))
            .collect::<Result<Vec<_>, _>>()?;
        let timers = std::mem::take(&mut state.meta.timers);
        let follows = std::mem::take(&mut state.meta.follows);
        let tracks = std::mem::take(&mut state.meta.tracks);
        let next_track = state.meta.next_track;
        let zones = std::mem::take(&mut state.meta.zones)
            .iter()
            .map(ZoneRecord::zone)
            .collect::<Result<Vec<_>, _>>()?;
        let zone_members = std::mem::take(&mut state.meta.zone_members);
        let home_zones = std::mem::take(&mut state.meta.home_zones);
        let in_view = std::mem::take(&mut state.meta.in_view);
        core.restore_rest(cameras, incidents, state.meta);
        core.restore_timers(timers);
        core.restore_follows(follows);
        core.import_tracks(tracks, next_track);
        core.import_zones((zones, zone_members, home_zones))?;
        core.import_in_view(in_view)?;
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
