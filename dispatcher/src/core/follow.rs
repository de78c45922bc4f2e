//! Aiming cameras as a command, and following a unit with cameras.
//!
//! Aiming reads the camera index ([`Dispatcher::aim_camera`],
//! [`Dispatcher::aim_cameras`]); *applying* an aim turns PTZ cameras, which
//! every node must agree on, so it is a command here that leaves a camera
//! event for each camera it turned. Following keeps a set of cameras aimed
//! at a unit: on every tick ([`Dispatcher::run_follows`]) each followed unit's
//! latest fix is aimed at by its cameras (the ones named, or, with none
//! named, the PTZ cameras that can see it now, chosen afresh as it moves),
//! turning only those whose pose would change by more than a degree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Dispatcher, Target};
use crate::Millis;
use crate::actor::Actor;
use crate::cameras::{Aim, Camera};
use crate::error::{Error, validate_id};
use crate::geometry::LonLat;

/// Each camera's aim, and whether it was turned.
type CameraAims = Vec<(String, Aim, bool)>;

/// At most this many cameras follow one unit.
pub const MAX_FOLLOW_CAMERAS: usize = 8;

/// A pose change smaller than this (degrees of pan or tilt) is not applied
/// while following: it would only flood the stream.
const FOLLOW_STEP_DEG: f64 = 1.0;

/// A unit followed by cameras, as checkpoints store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Follow {
    /// The unit.
    pub unit_id: String,
    /// The cameras named for it; empty: the PTZ cameras that can see it.
    pub camera_ids: Vec<String>,
    /// When following started, Unix ms.
    pub since: Millis,
}

/// Every followed unit, by id (sorted, so every node turns cameras in the
/// same order).
#[derive(Debug, Clone, Default)]
pub(crate) struct Follows {
    by_unit: BTreeMap<String, Follow>,
}

impl Dispatcher {
    /// Aims the cameras named in `camera_ids` (or, when empty, every online
    /// camera that can see `target` now or after turning, best first, at
    /// most `limit`) at `target`, `target_height_m` above the ground, and
    /// turns the PTZ ones whose aim lies within their limits (unless
    /// `dry_run`). Returns each camera's aim (a fixed camera's says where it
    /// would have to point) and whether it was turned, and leaves a camera
    /// event for each one turned.
    pub fn aim_cameras_at(
        &mut self,
        target: LonLat,
        target_height_m: Option<f64>,
        camera_ids: &[String],
        limit: usize,
        dry_run: bool,
        now: Millis,
    ) -> Result<Vec<(String, Aim, bool)>, Error> {
        let aims: Vec<(String, Aim)> = if camera_ids.is_empty() {
            self.aim_cameras(target, target_height_m, now, limit)?
                .into_iter()
                .map(|a| (a.sight.camera_id, a.aim))
                .collect()
        } else {
            let mut aims = Vec::with_capacity(camera_ids.len());
            for (i, id) in camera_ids.iter().enumerate() {
                validate_id(&format!("camera_ids[{i}]"), id)?;
                aims.push((
                    id.clone(),
                    self.aim_camera(id, target, target_height_m, now)?,
                ));
            }
            aims
        };
        Ok(aims
            .into_iter()
            .map(|(id, aim)| {
                let applied = !dry_run && self.apply_aim(&id, &aim, 0.0, now);
                (id, aim, applied)
            })
            .collect())
    }

    /// Aims cameras at `target` (a point, an incident or a unit) as
    /// [`Dispatcher::aim_cameras_at`] does, returning the point aimed at
    /// too. An aim at an incident that is not a `dry_run` is written on the
    /// incident's trail ("cameras_aimed", by `actor`: which cameras were
    /// turned and which were not) and leaves an incident event.
    #[allow(clippy::too_many_arguments)]
    pub fn aim_cameras_at_target(
        &mut self,
        target: &Target,
        target_height_m: Option<f64>,
        camera_ids: &[String],
        limit: usize,
        dry_run: bool,
        actor: &Actor,
        now: Millis,
    ) -> Result<(LonLat, CameraAims), Error> {
        let point = self.target_point(target)?;
        let aims = self.aim_cameras_at(point, target_height_m, camera_ids, limit, dry_run, now)?;
        if let Target::Incident(id) = target
            && !dry_run
            && let Some(slot) = self.incident_slot(id)
        {
            let list = |turned: bool| {
                aims.iter()
                    .filter(|(_, _, t)| *t == turned)
                    .map(|(c, _, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let (turned, not_turned) = (list(true), list(false));
            let detail = match (turned.is_empty(), not_turned.is_empty()) {
                (true, true) => "no camera can see it".to_string(),
                (false, true) => format!("turned {turned}"),
                (true, false) => format!("not turned {not_turned}"),
                (false, false) => format!("turned {turned}; not turned {not_turned}"),
            };
            let inc = &mut self.incidents[slot];
            inc.record(now, actor, "cameras_aimed", detail);
            self.outbox.push(super::Event::Incident(inc.clone()));
        }
        Ok((point, aims))
    }

    /// Turns camera `id` to `aim`'s pose if it is a PTZ camera, the target is
    /// within its limits and the pose moves by more than `min_step_deg`.
    fn apply_aim(&mut self, id: &str, aim: &Aim, min_step_deg: f64, now: Millis) -> bool {
        let Some(pose) = aim.pose else { return false };
        if !(aim.within_pan && aim.within_tilt) {
            return false;
        }
        let Ok(camera) = self.camera(id) else {
            return false;
        };
        let Some(head) = camera.ptz_head.as_ref() else {
            return false;
        };
        let moved = angle_between(head.pose.pan_deg, pose.pan_deg)
            .max((head.pose.tilt_deg - pose.tilt_deg).abs());
        if moved <= min_step_deg && (head.pose.zoom - pose.zoom).abs() < 1e-6 {
            return false;
        }
        self.set_camera_pose(id, pose, now).is_ok()
    }

    /// Starts (or changes) following `unit_id` with `camera_ids` (empty: the
    /// PTZ cameras that can see it, chosen as it moves; at most
    /// [`MAX_FOLLOW_CAMERAS`]), and aims them now.
    pub fn follow_unit(
        &mut self,
        unit_id: &str,
        camera_ids: &[String],
        now: Millis,
    ) -> Result<Follow, Error> {
        validate_id("unit_id", unit_id)?;
        if camera_ids.len() > MAX_FOLLOW_CAMERAS {
            return Err(Error::invalid(
                "camera_ids",
                format!("{} cameras", camera_ids.len()),
                format!("at most {MAX_FOLLOW_CAMERAS} cameras follow one unit"),
            ));
        }
        self.units.slot(unit_id)?;
        for (i, id) in camera_ids.iter().enumerate() {
            validate_id(&format!("camera_ids[{i}]"), id)?;
            let camera = self.camera(id)?;
            if camera.ptz_head.is_none() {
                return Err(Error::FailedPrecondition(format!(
                    "camera {id} is fixed: only PTZ cameras can follow a unit"
                )));
            }
        }
        let follow = Follow {
            unit_id: unit_id.to_string(),
            camera_ids: camera_ids.to_vec(),
            since: now,
        };
        self.follows
            .by_unit
            .insert(unit_id.to_string(), follow.clone());
        self.aim_follow(&follow, now);
        Ok(follow)
    }

    /// Stops following `unit_id`; true when it was followed.
    pub fn unfollow_unit(&mut self, unit_id: &str) -> Result<bool, Error> {
        validate_id("unit_id", unit_id)?;
        Ok(self.follows.by_unit.remove(unit_id).is_some())
    }

    /// The units followed now.
    pub fn follows(&self) -> Vec<Follow> {
        self.follows.by_unit.values().cloned().collect()
    }

    /// Re-aims every followed unit's cameras at its latest fix (the tick
    /// calls this). Returns how many cameras turned.
    pub fn run_follows(&mut self, now: Millis) -> usize {
        let follows: Vec<Follow> = self.follows.by_unit.values().cloned().collect();
        follows.iter().map(|f| self.aim_follow(f, now)).sum()
    }

    fn aim_follow(&mut self, follow: &Follow, now: Millis) -> usize {
        let Ok(unit) = self.unit(&follow.unit_id, now) else {
            return 0;
        };
        let Some(fix) = unit.fix else { return 0 };
        let aims: Vec<(String, Aim)> = if follow.camera_ids.is_empty() {
            self.aim_cameras(fix.at, None, now, MAX_FOLLOW_CAMERAS * 4)
                .unwrap_or_default()
                .into_iter()
                .filter(|a| self.camera(&a.sight.camera_id).is_ok_and(Camera::is_ptz))
                .take(MAX_FOLLOW_CAMERAS)
                .map(|a| (a.sight.camera_id, a.aim))
                .collect()
        } else {
            follow
                .camera_ids
                .iter()
                .filter_map(|id| {
                    self.aim_camera(id, fix.at, None, now)
                        .ok()
                        .map(|a| (id.clone(), a))
                })
                .collect()
        };
        aims.iter()
            .filter(|(id, aim)| self.apply_aim(id, aim, FOLLOW_STEP_DEG, now))
            .count()
    }

    /// The follows, for checkpoints.
    pub(crate) fn export_follows(&self) -> Vec<Follow> {
        self.follows()
    }

    /// Restores the follows from a checkpoint.
    pub(crate) fn restore_follows(&mut self, follows: Vec<Follow>) {
        self.follows.by_unit = follows
            .into_iter()
            .map(|f| (f.unit_id.clone(), f))
            .collect();
    }
}

/// Degrees between two bearings, 0..=180.
fn angle_between(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

impl Camera {
    /// Whether it can be turned (it has a PTZ head).
    pub fn is_ptz(&self) -> bool {
        self.ptz_head.is_some()
    }
}
