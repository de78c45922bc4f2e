//! [`CameraIndex`]: the camera table, its id map and its spatial indexes,
//! changed together only through its methods, and the queries over them.
//!
//! **Spatial indexes.** Two rstar R-trees of boxes on the sphere of
//! `geometry` (3-D vectors in metres, padded for the ellipsoid and for `f32`
//! rounding), each entry a camera's slot:
//! - the *view tree* holds every camera by a box around the ground it sees
//!   now (its current sector, cut by its tilt): turning a camera moves its
//!   entry;
//! - the *reach tree* holds every PTZ camera by a box around the ball its
//!   range reaches, whatever its pose.
//!
//! A point query walks the view boxes that contain the point and judges each
//! camera exactly ([`Camera::sight`]); only when fewer than `limit` cameras
//! see the point now does it walk the reach tree for cameras that could after
//! turning (they rank after every camera that sees it now). A sector's box is
//! a few times smaller than its range ball, so in dense centres far fewer
//! cameras are judged. Boxes are `f32`: a tree node costs 56 bytes instead of
//! 80.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use rstar::{AABB, RTree, RTreeObject};

use super::aim::Aim;
use super::model::{Camera, CameraConfig, PtzPose};
use super::view::{
    CameraSight, Frame, Look, RankKey, Region, WGS84_A, WGS84_E2, ecef, polar, rank_cmp,
};
use crate::Millis;
use crate::error::Error;
use crate::geometry::{BoundingBox, EARTH_RADIUS_M, LonLat, chord_for_arc_m};

/// A tree entry: a camera's slot and a box around ground it covers.
#[derive(Debug, Clone, PartialEq)]
struct SlotBox {
    envelope: AABB<[f32; 3]>,
    slot: u32,
}

impl RTreeObject for SlotBox {
    type Envelope = AABB<[f32; 3]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// Margin (metres) for rounding the trees' `f32` coordinates: at 6,400 km
/// from the Earth's centre an `f32` is within 0.25 m of the true value.
const F32_PAD_M: f64 = 2.0;

/// (low, high) corners of a box in metres, `f64`.
type Corners = ([f64; 3], [f64; 3]);

/// A ball of `radius_m` (metres along the ground) around `at` as a box on
/// the sphere. Ellipsoidal ground distances, which the cameras measure in,
/// are within 0.6 % of the sphere's: the ball is widened by 1 % and a metre.
fn ball(at: &LonLat, radius_m: f64) -> Corners {
    let xyz = at.to_xyz();
    let r = chord_for_arc_m(radius_m * 1.01 + 1.0);
    (xyz.map(|v| v - r), xyz.map(|v| v + r))
}

/// A box on the sphere around the ground `region` of the camera at `at`
/// covers, no larger than its range ball; `None` when it covers none.
///
/// The region's rectangle in the camera's plane (grown by 1 % and a metre)
/// is mapped to the sphere to first order: `x` metres east and `y` north
/// move `x R / N` along the sphere's east and `y R / M` along its north
/// (`M`, `N` the ellipsoid's radii of curvature there), which turns the
/// rectangle into a parallelogram spanned by its corners. Second-order terms
/// (the Earth's curve, the meridians' convergence) stay below `d^2 / 2R *
/// (1 + |tan(lat)|)` for a rectangle of diagonal `d`; the box is padded by
/// twice that.
fn region_box(at: &LonLat, region: &Region, range_m: f64) -> Option<Corners> {
    let [west, east, south, north] = region.plane_bounds()?;
    let grow = region.far_m * 0.01 + 1.0;
    let (west, east, south, north) = (west - grow, east + grow, south - grow, north + grow);
    let (sin_lat, cos_lat) = at.lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = at.lon.to_radians().sin_cos();
    let w = 1.0 - WGS84_E2 * sin_lat * sin_lat;
    let n = WGS84_A / w.sqrt();
    let m = WGS84_A * (1.0 - WGS84_E2) / (w * w.sqrt());
    let (east_scale, north_scale) = (EARTH_RADIUS_M / n, EARTH_RADIUS_M / m);
    let east_unit = [-sin_lon, cos_lon, 0.0];
    let north_unit = [-sin_lat * cos_lon, -sin_lat * sin_lon, cos_lat];
    let centre = at.to_xyz();
    let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
    for x in [west, east] {
        for y in [south, north] {
            for d in 0..3 {
                let v = centre[d] + x * east_scale * east_unit[d] + y * north_scale * north_unit[d];
                lo[d] = lo[d].min(v);
                hi[d] = hi[d].max(v);
            }
        }
    }
    let diagonal = (east - west).hypot(north - south);
    let pad = diagonal * diagonal / EARTH_RADIUS_M * (1.0 + at.lat.to_radians().tan().abs()) + 1.0;
    let (ball_lo, ball_hi) = ball(at, range_m);
    Some((
        [0, 1, 2].map(|d| (lo[d] - pad).max(ball_lo[d])),
        [0, 1, 2].map(|d| (hi[d] + pad).min(ball_hi[d])),
    ))
}

/// A box as `f32`, padded for the rounding.
fn to_f32((lo, hi): Corners) -> AABB<[f32; 3]> {
    AABB::from_corners(
        lo.map(|v| (v - F32_PAD_M) as f32),
        hi.map(|v| (v + F32_PAD_M) as f32),
    )
}

/// The camera's entry in the view tree (`None` when it sees no ground).
fn view_box(camera: &Camera, slot: u32) -> Option<SlotBox> {
    region_box(&camera.at, &camera.view_region(), camera.range_m).map(|corners| SlotBox {
        envelope: to_f32(corners),
        slot,
    })
}

/// The camera's entry in the reach tree: PTZ cameras only.
fn reach_box(camera: &Camera, slot: u32) -> Option<SlotBox> {
    camera.ptz_head.as_ref().map(|_| SlotBox {
        envelope: to_f32(ball(&camera.at, camera.range_m)),
        slot,
    })
}

fn xyz_f32(p: &LonLat) -> [f32; 3] {
    let xyz = p.to_xyz();
    [xyz[0] as f32, xyz[1] as f32, xyz[2] as f32]
}

/// The stream was last told this camera is offline.
const OFFLINE_REPORTED: u8 = 1;
/// Its health changed since the last [`CameraIndex::take_touched`].
const TOUCHED: u8 = 2;

/// What a health report changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touched {
    /// `last_seen` moved forward (an older or equal report changes nothing).
    pub changed: bool,
    /// The camera had been announced offline and is online again: announce
    /// it (the index has noted that it did).
    pub came_online: bool,
}

/// A camera that sees a point of a path, and where along the path.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSight {
    /// Metres along the path from its first point to where the camera first
    /// covers it: the first point within the corridor of the ground it sees
    /// now or, for a PTZ camera, could see after turning.
    pub along_m: f64,
    /// The path point at `along_m` (x = longitude, y = latitude, degrees).
    pub at: LonLat,
    /// Metres along the path to where its *current* view first covers it,
    /// if it does (never before `along_m`).
    pub now_along_m: Option<f64>,
    /// How the camera sees `at`: distance, bearing and off-axis angle to
    /// it; `sees_now` when its current view covers the path from `at` on
    /// (within the corridor, so `at` itself may lie up to `corridor_m`
    /// outside it); otherwise, for a PTZ camera, `after_turn`, the pose
    /// that centres `at` as nearly as its limits allow.
    pub sight: CameraSight,
}

/// A camera that sees a point, and how to aim it there.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraAim {
    /// How it sees the point on the ground.
    pub sight: CameraSight,
    /// How to centre it on the point at the asked height.
    pub aim: Aim,
}

/// What the camera index holds, in bytes, from its own accounting (like
/// [`crate::IndexMemory`]: what it asked the allocator for, not RSS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CameraIndexMemory {
    /// The camera table, by capacity.
    pub table: usize,
    /// The ids' and names' heap bytes, by capacity.
    pub strings: usize,
    /// The hash table from id to slot.
    pub id_table: usize,
    /// The two R-trees: an estimate of their nodes (each reserves room for
    /// seven children), leaves included.
    pub tree: usize,
    /// Per-camera flags and health times, and the list of cameras touched
    /// since the last take.
    pub other: usize,
}

impl CameraIndexMemory {
    /// Every counted byte.
    pub fn total(&self) -> usize {
        self.table + self.strings + self.id_table + self.tree + self.other
    }
}

/// Every registered camera in the order each was first registered (its
/// slot), the id map into that order and the two R-trees over their views
/// and reach. All of them change together, only here: like the unit index,
/// one door. Slot
/// order is what listings and checkpoints show, so a rebuilt node lists
/// cameras exactly as one that never stopped; query answers are ranked by
/// value and slot, never by the tree's shape, so nodes that built their trees
/// in different orders answer alike.
#[derive(Debug, Default)]
pub struct CameraIndex {
    config: CameraConfig,
    cameras: Vec<Camera>,
    ids: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Every camera, by the ground it sees now.
    view_tree: RTree<SlotBox>,
    /// PTZ cameras, by the ground their range reaches.
    reach_tree: RTree<SlotBox>,
    /// Per slot: [`OFFLINE_REPORTED`], [`TOUCHED`].
    flags: Vec<u8>,
    /// Per slot: the camera's `last_seen` (`Millis::MIN`: not monitored),
    /// a dense copy so a sweep over a million cameras reads 8 MB, not the
    /// whole table.
    seen: Vec<Millis>,
    touched: Vec<u32>,
}

impl CameraIndex {
    /// An empty index.
    pub fn new(config: CameraConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The settings the index was built with.
    pub fn config(&self) -> &CameraConfig {
        &self.config
    }

    /// How many cameras are registered.
    pub fn len(&self) -> usize {
        self.cameras.len()
    }

    /// Whether no camera is registered.
    pub fn is_empty(&self) -> bool {
        self.cameras.is_empty()
    }

    fn find(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id.as_bytes());
        self.ids
            .find(hash, |&slot| self.cameras[slot as usize].id == id)
            .copied()
    }

    fn insert_boxes(&mut self, view: Option<SlotBox>, reach: Option<SlotBox>) {
        if let Some(b) = view {
            self.view_tree.insert(b);
        }
        if let Some(b) = reach {
            self.reach_tree.insert(b);
        }
    }

    fn remove_boxes(&mut self, view: Option<SlotBox>, reach: Option<SlotBox>) {
        if let Some(b) = view {
            let removed = self.view_tree.remove(&b);
            debug_assert!(
                removed.is_some(),
                "slot {} was not in the view tree",
                b.slot
            );
        }
        if let Some(b) = reach {
            let removed = self.reach_tree.remove(&b);
            debug_assert!(
                removed.is_some(),
                "slot {} was not in the reach tree",
                b.slot
            );
        }
    }

    /// Validates `camera` and stores it: a new id takes the next slot, a known
    /// id is replaced in its slot (and moved in the trees if what it covers
    /// changed). A camera given without `last_seen` keeps the one
    /// stored; a given one replaces it only if newer. Returns the stored
    /// camera and whether it is new.
    pub fn upsert(&mut self, camera: Camera) -> Result<(Camera, bool), Error> {
        let mut camera = camera.validated()?;
        match self.find(&camera.id) {
            Some(slot) => {
                let old = &self.cameras[slot as usize];
                camera.last_seen = match (old.last_seen, camera.last_seen) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                let (old_view, old_reach) = (view_box(old, slot), reach_box(old, slot));
                let (new_view, new_reach) = (view_box(&camera, slot), reach_box(&camera, slot));
                if old_view != new_view {
                    self.remove_boxes(old_view, None);
                    self.insert_boxes(new_view, None);
                }
                if old_reach != new_reach {
                    self.remove_boxes(None, old_reach);
                    self.insert_boxes(None, new_reach);
                }
                self.seen[slot as usize] = camera.last_seen.unwrap_or(Millis::MIN);
                self.cameras[slot as usize] = camera.clone();
                Ok((camera, false))
            }
            None => {
                if self.cameras.len() >= u32::MAX as usize {
                    return Err(Error::full("camera table", format!("{} cameras", u32::MAX)));
                }
                let slot = self.cameras.len() as u32;
                let hash = self.hasher.hash_one(camera.id.as_bytes());
                let (cameras, hasher) = (&self.cameras, &self.hasher);
                self.ids.insert_unique(hash, slot, |&s| {
                    hasher.hash_one(cameras[s as usize].id.as_bytes())
                });
                self.insert_boxes(view_box(&camera, slot), reach_box(&camera, slot));
                self.cameras.push(camera.clone());
                self.flags.push(0);
                self.seen.push(camera.last_seen.unwrap_or(Millis::MIN));
                Ok((camera, true))
            }
        }
    }

    /// Turns a PTZ camera: checks `pose` against its limits (naming
    /// `pose.pan_deg`, `pose.tilt_deg`, `pose.zoom`), stores it with its pan
    /// inside the range and the heading it gives, and moves its view-tree
    /// entry. Refuses a fixed camera. Its reach does not depend on its pose.
    pub fn set_pose(&mut self, id: &str, pose: PtzPose) -> Result<&Camera, Error> {
        let slot = self
            .find(id)
            .ok_or_else(|| Error::not_found("camera", id))?;
        let camera = &self.cameras[slot as usize];
        let Some(head) = camera.ptz_head.as_ref() else {
            return Err(Error::FailedPrecondition(format!(
                "camera {id} is fixed: it cannot pan, tilt or zoom"
            )));
        };
        let pose = head.validated_pose(pose, "pose")?;
        let old_view = view_box(camera, slot);
        let camera = &mut self.cameras[slot as usize];
        if let Some(head) = camera.ptz_head.as_mut() {
            head.pose = pose;
            camera.heading_deg = head.heading_deg();
        }
        let new_view = view_box(&self.cameras[slot as usize], slot);
        if old_view != new_view {
            self.remove_boxes(old_view, None);
            self.insert_boxes(new_view, None);
        }
        Ok(&self.cameras[slot as usize])
    }

    /// Records that the camera's system reported it alive at `last_seen`
    /// (Unix ms). Only a newer report changes anything.
    pub fn touch(&mut self, id: &str, last_seen: Millis, now: Millis) -> Result<Touched, Error> {
        let slot = self
            .find(id)
            .ok_or_else(|| Error::not_found("camera", id))?;
        let camera = &mut self.cameras[slot as usize];
        if camera.last_seen.is_some_and(|seen| seen >= last_seen) {
            return Ok(Touched {
                changed: false,
                came_online: false,
            });
        }
        camera.last_seen = Some(last_seen);
        self.seen[slot as usize] = last_seen;
        let online = camera.is_online(now, self.config.offline_after_ms);
        let flags = &mut self.flags[slot as usize];
        let came_online = online && *flags & OFFLINE_REPORTED != 0;
        if came_online {
            *flags &= !OFFLINE_REPORTED;
        }
        self.mark_touched(slot);
        Ok(Touched {
            changed: true,
            came_online,
        })
    }

    fn mark_touched(&mut self, slot: u32) {
        let flags = &mut self.flags[slot as usize];
        if *flags & TOUCHED == 0 {
            *flags |= TOUCHED;
            self.touched.push(slot);
        }
    }

    /// The ids of cameras whose stored record changed without an event
    /// (health reports) since the previous call, in the order they first
    /// changed: what a checkpoint must rewrite.
    pub fn take_touched(&mut self) -> Vec<String> {
        let touched = std::mem::take(&mut self.touched);
        touched
            .into_iter()
            .map(|slot| {
                self.flags[slot as usize] &= !TOUCHED;
                self.cameras[slot as usize].id.clone()
            })
            .collect()
    }

    /// Slots of the cameras whose health changed between online and offline
    /// since the stream was last told, in slot order; notes that it now is.
    /// Cameras without health reports are never offline.
    pub fn sweep_offline(&mut self, now: Millis) -> Vec<u32> {
        let after = self.config.offline_after_ms;
        let mut changed = Vec::new();
        for (slot, (&seen, flags)) in self.seen.iter().zip(&mut self.flags).enumerate() {
            let offline = seen != Millis::MIN && now.saturating_sub(seen) > after;
            if offline != (*flags & OFFLINE_REPORTED != 0) {
                *flags ^= OFFLINE_REPORTED;
                changed.push(slot as u32);
            }
        }
        changed
    }

    /// Whether the stream was last told this slot is offline.
    pub fn offline_reported(&self, slot: usize) -> bool {
        self.flags
            .get(slot)
            .is_some_and(|f| f & OFFLINE_REPORTED != 0)
    }

    /// Whether `camera` is online at `now` by this index's offline age.
    pub fn is_online(&self, camera: &Camera, now: Millis) -> bool {
        camera.is_online(now, self.config.offline_after_ms)
    }

    /// The camera with this id.
    pub fn get(&self, id: &str) -> Option<&Camera> {
        self.find(id).map(|slot| &self.cameras[slot as usize])
    }

    /// The camera's slot: the order it was first registered in.
    pub fn slot(&self, id: &str) -> Option<usize> {
        self.find(id).map(|slot| slot as usize)
    }

    /// Every camera, in slot order.
    pub fn in_slot_order(&self) -> &[Camera] {
        &self.cameras
    }

    /// The cameras standing inside `bbox` (all, without one), in slot order.
    pub fn within<'a>(&'a self, bbox: Option<&'a BoundingBox>) -> impl Iterator<Item = &'a Camera> {
        self.cameras.iter().filter(move |c| c.within(bbox))
    }

    /// Rebuilds the index from cameras in slot order, each with whether the
    /// stream was last told it is offline (from a checkpoint). Validates
    /// every camera (an older checkpoint's PTZ cameras get their assumed
    /// head) and refuses an id listed twice, which would leave two slots for
    /// one camera.
    pub fn from_slot_order(
        config: CameraConfig,
        cameras: Vec<(Camera, bool)>,
    ) -> Result<Self, Error> {
        let mut index = Self::new(config);
        index.cameras.reserve_exact(cameras.len());
        index.flags.reserve_exact(cameras.len());
        index.seen.reserve_exact(cameras.len());
        let (mut views, mut reaches) = (Vec::with_capacity(cameras.len()), Vec::new());
        for (slot, (camera, offline_reported)) in cameras.into_iter().enumerate() {
            let camera = camera.validated()?;
            if index.find(&camera.id).is_some() {
                return Err(Error::FailedPrecondition(format!(
                    "checkpoint lists camera {:?} twice",
                    camera.id
                )));
            }
            let slot = slot as u32;
            let hash = index.hasher.hash_one(camera.id.as_bytes());
            let (table, hasher) = (&index.cameras, &index.hasher);
            index.ids.insert_unique(hash, slot, |&s| {
                hasher.hash_one(table[s as usize].id.as_bytes())
            });
            views.extend(view_box(&camera, slot));
            reaches.extend(reach_box(&camera, slot));
            index.seen.push(camera.last_seen.unwrap_or(Millis::MIN));
            index.cameras.push(camera);
            index.flags.push(if offline_reported {
                OFFLINE_REPORTED
            } else {
                0
            });
        }
        index.view_tree = RTree::bulk_load(views);
        index.reach_tree = RTree::bulk_load(reaches);
        Ok(index)
    }

    /// Bytes held, by the index's own accounting.
    pub fn memory(&self) -> CameraIndexMemory {
        use std::mem::size_of;
        let strings = self
            .cameras
            .iter()
            .map(|c| c.id.capacity() + c.name.capacity())
            .sum();
        // Every node reserves MAX_SIZE + 1 = 7 children; a bulk-loaded tree
        // fills six, one built by inserts about four and a half. Count one
        // node per camera, then a parent's spare room and the inner levels
        // (a fifth more).
        let node = size_of::<rstar::RTreeNode<SlotBox>>();
        let tree = (self.view_tree.size() + self.reach_tree.size()) * node * 7 / 5 * 6 / 5;
        CameraIndexMemory {
            table: self.cameras.capacity() * size_of::<Camera>(),
            strings,
            id_table: crate::units::hash_table_bytes(self.ids.capacity(), size_of::<u32>()),
            tree,
            other: self.flags.capacity()
                + self.seen.capacity() * size_of::<Millis>()
                + self.touched.capacity() * size_of::<u32>(),
        }
    }

    // ----- queries ------------------------------------------------------

    /// The slots whose box in `tree` contains `target`.
    fn containing<'a>(tree: &'a RTree<SlotBox>, target: &LonLat) -> impl Iterator<Item = u32> + 'a {
        tree.locate_in_envelope_intersecting(&AABB::from_point(xyz_f32(target)))
            .map(|entry| entry.slot)
    }

    /// The online cameras that see the ground point `target` now, or could
    /// after turning, with what each must do, best first, at most `limit`.
    ///
    /// Ranking: cameras that see it now first, then those that must turn;
    /// within each by a score, lower first: seeing now, `|off_axis| /
    /// (fov/2) + distance / range` (how far off the centre of the picture
    /// plus how far into its range, each 0..1); turning, `|off_axis| / 180 +
    /// distance / range` (how far it must turn, as a fraction of a half turn,
    /// plus how far); ties by distance, then slot. No occlusion: buildings
    /// do not block anything.
    pub fn seeing(&self, target: &LonLat, now: Millis, limit: usize) -> Vec<CameraSight> {
        self.ranked(target, now, limit)
            .into_iter()
            .map(|(slot, look)| look.into_sight(&self.cameras[slot as usize].id))
            .collect()
    }

    fn ranked(&self, target: &LonLat, now: Millis, limit: usize) -> Vec<(u32, Look)> {
        if limit == 0 {
            return Vec::new();
        }
        let target_ecef = ecef(target);
        let after = self.config.offline_after_ms;
        let near = NearFilter::new(target);
        let judge = |slot: u32, now_only: bool| {
            let camera = &self.cameras[slot as usize];
            if !camera.is_online(now, after) || near.beyond(camera) {
                return None;
            }
            camera
                .look(&target_ecef)
                .filter(|look| look.sees_now == now_only)
                .map(|look| (look.rank_key(slot), look))
        };
        let mut found: Vec<(RankKey, Look)> = Self::containing(&self.view_tree, target)
            .filter_map(|slot| judge(slot, true))
            .collect();
        // every camera that must turn ranks after every one that sees now
        if found.len() < limit {
            found.extend(
                Self::containing(&self.reach_tree, target).filter_map(|slot| judge(slot, false)),
            );
        }
        if found.len() > limit {
            found.select_nth_unstable_by(limit - 1, |a, b| rank_cmp(&a.0, &b.0));
            found.truncate(limit);
        }
        found.sort_unstable_by(|a, b| rank_cmp(&a.0, &b.0));
        found.into_iter().map(|(key, look)| (key.3, look)).collect()
    }

    /// Whether some online camera sees the ground point `target` now, and
    /// whether some sees it now or could after turning: the same judgement
    /// as [`CameraIndex::seeing`] (a point it answers with a camera that
    /// sees now is `(true, true)`; with only cameras that must turn,
    /// `(false, true)`), without building the answers.
    pub fn covers(&self, target: &LonLat, now: Millis) -> (bool, bool) {
        let target_ecef = ecef(target);
        let after = self.config.offline_after_ms;
        let near = NearFilter::new(target);
        let usable = |slot: u32| {
            let camera = &self.cameras[slot as usize];
            (camera.is_online(now, after) && !near.beyond(camera)).then_some(camera)
        };
        let now_seen = Self::containing(&self.view_tree, target).any(|slot| {
            usable(slot)
                .and_then(|c| c.look(&target_ecef))
                .is_some_and(|look| look.sees_now)
        });
        if now_seen {
            return (true, true);
        }
        let turned = Self::containing(&self.reach_tree, target).any(|slot| {
            usable(slot)
                .and_then(|c| c.look(&target_ecef))
                .is_some_and(|look| look.after_turn.is_some())
        });
        (false, turned)
    }

    /// The slots of the online cameras that see the ground point `target`
    /// now (their current pose), in slot order. Walks only the view boxes
    /// that hold the point: nothing near, nothing judged.
    pub fn viewing(&self, target: &LonLat, now: Millis) -> Vec<u32> {
        let mut slots: Vec<u32> = Self::containing(&self.view_tree, target).collect();
        if slots.is_empty() {
            return slots;
        }
        let target_ecef = ecef(target);
        let after = self.config.offline_after_ms;
        let near = NearFilter::new(target);
        slots.retain(|&slot| {
            let camera = &self.cameras[slot as usize];
            camera.is_online(now, after)
                && !near.beyond(camera)
                && camera.look(&target_ecef).is_some_and(|look| look.sees_now)
        });
        slots.sort_unstable();
        slots
    }

    /// [`CameraIndex::seeing`], with each camera's aim at `target`,
    /// `target_height_m` above the ground.
    pub fn aim_all(
        &self,
        target: &LonLat,
        target_height_m: f64,
        now: Millis,
        limit: usize,
    ) -> Vec<CameraAim> {
        self.ranked(target, now, limit)
            .into_iter()
            .map(|(slot, look)| {
                let camera = &self.cameras[slot as usize];
                CameraAim {
                    sight: look.into_sight(&camera.id),
                    aim: camera.aim(target, target_height_m),
                }
            })
            .collect()
    }

    /// The online cameras that see some point of the polyline `path` (x =
    /// longitude, y = latitude) or within `corridor_m` metres of it, now or
    /// after turning, ordered by where along the path each first does
    /// (metres from its first point), then by [`CameraIndex::seeing`]'s
    /// ranking at that point, then slot; at most `limit`.
    ///
    /// Each camera judges the path in its own local plane, where the path is
    /// straight between its points; along-path metres are great-circle
    /// metres. First sights are exact to a micrometre in that plane. The
    /// path is walked leg by leg and the walk stops after the leg where
    /// `limit` cameras have first seen it: no later camera can rank before
    /// them.
    pub fn along(
        &self,
        path: &[LonLat],
        corridor_m: f64,
        now: Millis,
        limit: usize,
    ) -> Vec<PathSight> {
        if path.is_empty() || limit == 0 {
            return Vec::new();
        }
        let after = self.config.offline_after_ms;
        let points: Vec<[f64; 3]> = path.iter().map(ecef).collect();
        // great-circle metres from the start to each point
        let mut cumulative = Vec::with_capacity(path.len());
        let mut total = 0.0;
        cumulative.push(0.0);
        for pair in path.windows(2) {
            total += pair[0].distance_m(&pair[1]);
            cumulative.push(total);
        }
        // a one-point path is one leg from the point to itself
        let legs = path.len().saturating_sub(1).max(1);
        let leg_ends = |leg: usize| (leg, (leg + 1).min(path.len() - 1));
        let mut tracked: hashbrown::HashMap<u32, Tracked> = hashbrown::HashMap::new();
        let mut first_seen = 0usize;
        let mut walked = legs;
        let mut slots = Vec::new();
        for leg in 0..legs {
            let (from, to) = leg_ends(leg);
            slots.clear();
            self.leg_candidates(&path[from], &path[to], corridor_m, &mut slots);
            for &slot in &slots {
                let camera = &self.cameras[slot as usize];
                let t = tracked
                    .entry(slot)
                    .or_insert_with(|| Tracked::new(camera, camera.is_online(now, after)));
                if !t.online || t.now_along_m.is_some() {
                    continue;
                }
                let a = t.frame.east_north(&points[from]);
                let b = t.frame.east_north(&points[to]);
                let length = cumulative[to] - cumulative[from];
                if t.first.is_none()
                    && let Some(f) = t.reach.first_within(a, b, corridor_m)
                {
                    let at = (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1));
                    t.first = Some((cumulative[from] + f * length, at));
                    first_seen += 1;
                }
                if t.first.is_some()
                    && let Some(f) = t.view.first_within(a, b, corridor_m)
                {
                    t.now_along_m = Some(cumulative[from] + f * length);
                }
            }
            if first_seen >= limit {
                walked = leg + 1;
                break;
            }
        }
        // the cameras found before the walk stopped still need to know where
        // their current view first covers the path
        if walked < legs {
            for t in tracked.values_mut() {
                if !t.online || t.first.is_none() || t.now_along_m.is_some() {
                    continue;
                }
                for leg in walked..legs {
                    let (from, to) = leg_ends(leg);
                    let a = t.frame.east_north(&points[from]);
                    let b = t.frame.east_north(&points[to]);
                    if segment_distance(a, b) > t.view.far_m + corridor_m + 1.0 {
                        continue;
                    }
                    if let Some(f) = t.view.first_within(a, b, corridor_m) {
                        t.now_along_m =
                            Some(cumulative[from] + f * (cumulative[to] - cumulative[from]));
                        break;
                    }
                }
            }
        }
        let mut found: Vec<((f64, RankKey), PathSight)> = tracked
            .into_iter()
            .filter_map(|(slot, t)| {
                let (along_m, (east, north)) = t.first?;
                let camera = &self.cameras[slot as usize];
                // judged where the path enters, in the camera's plane: on the
                // edge of the view, where re-measuring a lon/lat could fall
                // either way
                let (distance_m, bearing_deg) = polar(east, north);
                let mut look = camera.look_at(distance_m, bearing_deg);
                let now_along_m = t.now_along_m.map(|m| m.max(along_m));
                look.sees_now = now_along_m == Some(along_m);
                look.after_turn = if look.sees_now {
                    None
                } else {
                    camera.turn_towards(distance_m, bearing_deg)
                };
                Some((
                    (along_m, look.rank_key(slot)),
                    PathSight {
                        along_m,
                        at: t.frame.ground_point(east, north),
                        now_along_m,
                        sight: look.into_sight(&camera.id),
                    },
                ))
            })
            .collect();
        let cmp =
            |a: &(f64, RankKey), b: &(f64, RankKey)| a.0.total_cmp(&b.0).then(rank_cmp(&a.1, &b.1));
        if found.len() > limit {
            found.select_nth_unstable_by(limit - 1, |a, b| cmp(&a.0, &b.0));
            found.truncate(limit);
        }
        found.sort_unstable_by(|a, b| cmp(&a.0, &b.0));
        found.into_iter().map(|(_, sight)| sight).collect()
    }

    /// The slots (sorted, once each) of cameras whose boxes come within
    /// `corridor_m` of the leg from `a` to `b`: fixed cameras by their view,
    /// PTZ cameras by their reach.
    fn leg_candidates(&self, a: &LonLat, b: &LonLat, corridor_m: f64, out: &mut Vec<u32>) {
        const CHUNK_M: f64 = 200.0;
        let (xa, xb) = (a.to_xyz(), b.to_xyz());
        let length = a.distance_m(b);
        let chunks = ((length / CHUNK_M).ceil() as usize).clamp(1, 1 << 20);
        let chunk_len = length / chunks as f64;
        // a chunk's chord sags below the ground by at most len^2 / 8R
        let pad = chord_for_arc_m(corridor_m * 1.01)
            + F32_PAD_M
            + chunk_len * chunk_len / (8.0 * EARTH_RADIUS_M)
            + 1.0;
        let lerp = |f: f64| [0, 1, 2].map(|d| xa[d] + (xb[d] - xa[d]) * f);
        for i in 0..chunks {
            let (p, q) = (
                lerp(i as f64 / chunks as f64),
                lerp((i + 1) as f64 / chunks as f64),
            );
            let chunk = AABB::from_corners(
                [0, 1, 2].map(|d| (p[d].min(q[d]) - pad) as f32),
                [0, 1, 2].map(|d| (p[d].max(q[d]) + pad) as f32),
            );
            out.extend(
                self.view_tree
                    .locate_in_envelope_intersecting(&chunk)
                    .filter(|entry| self.cameras[entry.slot as usize].ptz_head.is_none())
                    .chain(self.reach_tree.locate_in_envelope_intersecting(&chunk))
                    .map(|entry| entry.slot),
            );
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// A cheap, conservative test that a camera is out of range of a point,
/// before its exact frame is built: equirectangular metres from the point's
/// latitude, within 2 % of the camera's own measure out to 10 km below 80
/// degrees of latitude (where it is used).
struct NearFilter {
    lon: f64,
    lat: f64,
    metres_per_deg_lon: f64,
    active: bool,
}

const METRES_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

impl NearFilter {
    fn new(p: &LonLat) -> Self {
        NearFilter {
            lon: p.lon,
            lat: p.lat,
            metres_per_deg_lon: METRES_PER_DEG * p.lat.to_radians().cos(),
            active: p.lat.abs() <= 80.0,
        }
    }

    /// Surely farther than its range from the point.
    fn beyond(&self, camera: &Camera) -> bool {
        if !self.active {
            return false;
        }
        let dy = (camera.at.lat - self.lat) * METRES_PER_DEG;
        let mut dlon = camera.at.lon - self.lon;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        let dx = dlon * self.metres_per_deg_lon;
        let reach = camera.range_m * 1.03 + 2.0;
        dx * dx + dy * dy > reach * reach
    }
}

/// What `along` knows of one camera so far.
struct Tracked {
    frame: Frame,
    view: Region,
    reach: Region,
    online: bool,
    /// Along-path metres and plane point of its first sight.
    first: Option<(f64, (f64, f64))>,
    now_along_m: Option<f64>,
}

impl Tracked {
    fn new(camera: &Camera, online: bool) -> Self {
        Tracked {
            frame: Frame::at(&camera.at),
            view: camera.view_region(),
            reach: camera.reach_region(),
            online,
            first: None,
            now_along_m: None,
        }
    }
}

/// Distance (metres) from the plane's origin to the segment from `a` to `b`.
fn segment_distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    let d = (b.0 - a.0, b.1 - a.1);
    let len2 = d.0 * d.0 + d.1 * d.1;
    let t = if len2 > 0.0 {
        (-(a.0 * d.0 + a.1 * d.1) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a.0 + t * d.0).hypot(a.1 + t * d.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cameras::model::Ptz;
    use rstar::Envelope;

    /// xorshift64*, for reproducible cases.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.next()
        }
    }

    #[test]
    fn every_point_a_camera_covers_lies_in_its_boxes() {
        let mut rng = Rng(7);
        for case in 0..3_000 {
            let lat = if case % 10 == 0 {
                rng.range(80.0, 89.9)
            } else {
                rng.range(-80.0, 80.0)
            };
            let range_m = if case % 3 == 0 {
                rng.range(1_000.0, 10_000.0)
            } else {
                rng.range(5.0, 500.0)
            };
            let ptz = case % 2 == 0;
            let camera = Camera {
                id: "c".into(),
                at: LonLat::new(rng.range(-180.0, 180.0), lat),
                mount_height_m: rng.range(0.0, 60.0),
                heading_deg: rng.range(0.0, 360.0),
                fov_deg: rng.range(1.0, 360.0),
                range_m,
                ptz,
                ptz_head: ptz.then(|| Ptz {
                    zero_pan_azimuth_deg: rng.range(0.0, 360.0),
                    pan_min_deg: -90.0,
                    pan_max_deg: 90.0,
                    tilt_min_deg: -20.0,
                    tilt_max_deg: 90.0,
                    pose: PtzPose {
                        pan_deg: rng.range(-90.0, 90.0),
                        tilt_deg: rng.range(-20.0, 90.0),
                        zoom: 0.0,
                    },
                }),
                ..Camera::default()
            }
            .validated()
            .unwrap();
            let frame = Frame::at(&camera.at);
            let view = view_box(&camera, 0);
            let reach = reach_box(&camera, 0);
            for k in 0..60 {
                // half of them at the far edge, where the boxes are tightest
                let d = if k % 2 == 0 {
                    rng.range(0.0, range_m)
                } else {
                    range_m * rng.range(0.995, 1.0)
                };
                let b = rng.range(0.0, 360.0);
                let (ux, uy) = b.to_radians().sin_cos();
                let p = frame.ground_point(d * ux, d * uy);
                let Some(look) = camera.look(&ecef(&p)) else {
                    continue;
                };
                if camera.at.lat.abs() <= 80.0 || p.lat.abs() <= 80.0 {
                    assert!(
                        !NearFilter::new(&p).beyond(&camera),
                        "{camera:?} sees {p:?} the filter drops"
                    );
                }
                let q = xyz_f32(&p);
                if look.sees_now {
                    let view = view.as_ref().expect("a camera that sees has a view box");
                    assert!(
                        view.envelope.contains_point(&q),
                        "{camera:?} sees {p:?} outside its view box"
                    );
                }
                if camera.ptz_head.is_some() {
                    assert!(
                        reach.as_ref().unwrap().envelope.contains_point(&q),
                        "{camera:?} reaches {p:?} outside its box"
                    );
                }
            }
        }
    }

    #[test]
    fn a_turn_moves_the_view_box() {
        let mut index = CameraIndex::default();
        let camera = Camera {
            id: "dome".into(),
            at: LonLat::new(24.95, 60.17),
            mount_height_m: 8.0,
            fov_deg: 40.0,
            range_m: 150.0,
            ptz: true,
            ..Camera::default()
        };
        index.upsert(camera).unwrap();
        let north = LonLat::new(24.95, 60.17).destination(0.0, 60.0);
        let south = LonLat::new(24.95, 60.17).destination(180.0, 60.0);
        assert!(index.seeing(&north, 0, 5)[0].sees_now);
        assert!(!index.seeing(&south, 0, 5)[0].sees_now);
        let tilt = index.get("dome").unwrap().ptz_head.unwrap().pose.tilt_deg;
        index
            .set_pose(
                "dome",
                PtzPose {
                    pan_deg: 180.0,
                    tilt_deg: tilt,
                    zoom: 0.0,
                },
            )
            .unwrap();
        assert!(!index.seeing(&north, 0, 5)[0].sees_now);
        assert!(index.seeing(&south, 0, 5)[0].sees_now);
        assert_eq!(index.view_tree.size(), 1);
        assert_eq!(index.reach_tree.size(), 1);
    }
}
