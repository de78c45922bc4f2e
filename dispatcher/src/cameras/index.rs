//! [`CameraIndex`]: the camera table, its id map and its spatial index,
//! changed together only through its methods, and the queries over them.
//!
//! **Spatial index.** One rstar R-tree entry per camera: a box around the
//! ball its range can reach (on the sphere of `geometry`, as 3-D vectors in
//! metres, padded for the ellipsoid and for `f32` rounding). The box does not
//! depend on where the camera points, so turning a camera ([`CameraIndex::set_pose`])
//! never touches the tree; only moving it or changing its range does. A
//! query for a point walks the boxes that contain it and judges each
//! camera exactly ([`Camera::sight`]). Boxes are `f32`: a tree node costs 56
//! bytes instead of 80, and a million cameras are a million nodes.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use rstar::{AABB, RTree, RTreeObject};

use super::aim::Aim;
use super::model::{Camera, CameraConfig, PtzPose};
use super::view::{CameraSight, Frame, Look, RankKey, ecef, polar, rank_cmp};
use crate::Millis;
use crate::error::Error;
use crate::geometry::{BoundingBox, LonLat, chord_for_arc_m};

/// The tree entry: a camera's slot and a box around everything its range
/// can reach.
#[derive(Debug, Clone, PartialEq)]
struct ReachBox {
    envelope: AABB<[f32; 3]>,
    slot: u32,
}

impl RTreeObject for ReachBox {
    type Envelope = AABB<[f32; 3]>;
    fn envelope(&self) -> Self::Envelope {
        self.envelope
    }
}

/// Margin (metres) for rounding the tree's `f32` coordinates: at 6,400 km
/// from the Earth's centre an `f32` is within 0.25 m of the true value.
const F32_PAD_M: f64 = 2.0;

/// A ball of `radius_m` (great-circle metres along the ground) around `at`,
/// as a padded `f32` box on the sphere. Ellipsoidal ground distances, which
/// the cameras measure in, are within 0.6 % of the sphere's: the ball is
/// widened by 1 % and a metre.
fn ball(at: &LonLat, radius_m: f64) -> AABB<[f32; 3]> {
    let xyz = at.to_xyz();
    let r = chord_for_arc_m(radius_m * 1.01 + 1.0) + F32_PAD_M;
    AABB::from_corners(
        [
            (xyz[0] - r) as f32,
            (xyz[1] - r) as f32,
            (xyz[2] - r) as f32,
        ],
        [
            (xyz[0] + r) as f32,
            (xyz[1] + r) as f32,
            (xyz[2] + r) as f32,
        ],
    )
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
    /// The R-tree: an estimate of its nodes (each reserves room for seven
    /// children), leaves included.
    pub tree: usize,
    /// Per-camera flags and the list of cameras touched since the last take.
    pub other: usize,
}

impl CameraIndexMemory {
    /// Every counted byte.
    pub fn total(&self) -> usize {
        self.table + self.strings + self.id_table + self.tree + self.other
    }
}

/// Every registered camera in the order each was first registered (its
/// slot), the id map into that order and the R-tree over their reach. All
/// three change together, only here: like the unit index, one door. Slot
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
    tree: RTree<ReachBox>,
    /// Per slot: [`OFFLINE_REPORTED`], [`TOUCHED`].
    flags: Vec<u8>,
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

    fn reach_box(camera: &Camera, slot: u32) -> ReachBox {
        ReachBox {
            envelope: ball(&camera.at, camera.range_m),
            slot,
        }
    }

    /// Validates `camera` and stores it: a new id takes the next slot, a known
    /// id is replaced in its slot (and moved in the tree if its position or
    /// range changed). A camera given without `last_seen` keeps the one
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
                if old.at != camera.at || old.range_m != camera.range_m {
                    let removed = self.tree.remove(&Self::reach_box(old, slot));
                    debug_assert!(removed.is_some(), "camera {} was not in the tree", old.id);
                    self.tree.insert(Self::reach_box(&camera, slot));
                }
                self.cameras[slot as usize] = camera.clone();
                self.mark_touched(slot);
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
                self.tree.insert(Self::reach_box(&camera, slot));
                self.cameras.push(camera.clone());
                self.flags.push(0);
                Ok((camera, true))
            }
        }
    }

    /// Turns a PTZ camera: checks `pose` against its limits (naming
    /// `pose.pan_deg`, `pose.tilt_deg`, `pose.zoom`), stores it with its pan
    /// inside the range and the heading it gives. Refuses a fixed camera.
    /// The tree is untouched: a camera's reach does not depend on its pose.
    pub fn set_pose(&mut self, id: &str, pose: PtzPose) -> Result<&Camera, Error> {
        let slot = self
            .find(id)
            .ok_or_else(|| Error::not_found("camera", id))? as usize;
        let camera = &mut self.cameras[slot];
        let Some(head) = camera.ptz_head.as_mut() else {
            return Err(Error::FailedPrecondition(format!(
                "camera {id} is fixed: it cannot pan, tilt or zoom"
            )));
        };
        head.pose = head.validated_pose(pose, "pose")?;
        camera.heading_deg = head.heading_deg();
        Ok(&self.cameras[slot])
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
    /// (health reports, re-registrations) since the previous call, in the
    /// order they first changed: what a checkpoint must rewrite.
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
        for (slot, (camera, flags)) in self.cameras.iter().zip(&mut self.flags).enumerate() {
            let offline = !camera.is_online(now, after);
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
        let mut boxes = Vec::with_capacity(cameras.len());
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
            boxes.push(Self::reach_box(&camera, slot));
            index.cameras.push(camera);
            index.flags.push(if offline_reported {
                OFFLINE_REPORTED
            } else {
                0
            });
        }
        index.tree = RTree::bulk_load(boxes);
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
        let node = size_of::<rstar::RTreeNode<ReachBox>>();
        let tree = self.tree.size() * node * 7 / 5 * 6 / 5;
        CameraIndexMemory {
            table: self.cameras.capacity() * size_of::<Camera>(),
            strings,
            id_table: crate::units::hash_table_bytes(self.ids.capacity(), size_of::<u32>()),
            tree,
            other: self.flags.capacity() + self.touched.capacity() * size_of::<u32>(),
        }
    }

    // ----- queries ------------------------------------------------------

    /// The slots whose reach box contains `target`.
    fn candidates<'a>(&'a self, target: &LonLat) -> impl Iterator<Item = u32> + 'a {
        self.tree
            .locate_in_envelope_intersecting(&AABB::from_point(xyz_f32(target)))
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
        let mut found: Vec<(RankKey, Look)> = self
            .candidates(target)
            .filter_map(|slot| {
                let camera = &self.cameras[slot as usize];
                if !camera.is_online(now, after) {
                    return None;
                }
                camera
                    .look(&target_ecef)
                    .map(|look| (look.rank_key(slot), look))
            })
            .collect();
        if found.len() > limit {
            found.select_nth_unstable_by(limit - 1, |a, b| rank_cmp(&a.0, &b.0));
            found.truncate(limit);
        }
        found.sort_unstable_by(|a, b| rank_cmp(&a.0, &b.0));
        found.into_iter().map(|(key, look)| (key.3, look)).collect()
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
    /// metres. First sights are exact to a micrometre in that plane.
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
        // (slot, segment) pairs whose boxes meet; a one-point path is one
        // segment from the point to itself
        let segments = path.len().saturating_sub(1).max(1);
        let mut hits: Vec<(u32, u32)> = Vec::new();
        for seg in 0..segments {
            let (a, b) = (path[seg], path[(seg + 1).min(path.len() - 1)]);
            let (xa, xb) = (a.to_xyz(), b.to_xyz());
            let length = cumulative[(seg + 1).min(path.len() - 1)] - cumulative[seg];
            const CHUNK_M: f64 = 200.0;
            let chunks = ((length / CHUNK_M).ceil() as usize).clamp(1, 1 << 20);
            let chunk_len = length / chunks as f64;
            // a chunk's chord sags below the ground by at most len^2 / 8R
            let pad = chord_for_arc_m(corridor_m * 1.01)
                + F32_PAD_M
                + chunk_len * chunk_len / (8.0 * crate::geometry::EARTH_RADIUS_M)
                + 1.0;
            for i in 0..chunks {
                let lerp = |f: f64| {
                    [
                        xa[0] + (xb[0] - xa[0]) * f,
                        xa[1] + (xb[1] - xa[1]) * f,
                        xa[2] + (xb[2] - xa[2]) * f,
                    ]
                };
                let (p, q) = (
                    lerp(i as f64 / chunks as f64),
                    lerp((i + 1) as f64 / chunks as f64),
                );
                let lo = [0, 1, 2].map(|d| (p[d].min(q[d]) - pad) as f32);
                let hi = [0, 1, 2].map(|d| (p[d].max(q[d]) + pad) as f32);
                hits.extend(
                    self.tree
                        .locate_in_envelope_intersecting(&AABB::from_corners(lo, hi))
                        .map(|entry| (entry.slot, seg as u32)),
                );
            }
        }
        hits.sort_unstable();
        hits.dedup();
        let mut found: Vec<((f64, RankKey), PathSight)> = Vec::new();
        for group in hits.chunk_by(|a, b| a.0 == b.0) {
            let slot = group[0].0;
            let camera = &self.cameras[slot as usize];
            if !camera.is_online(now, after) {
                continue;
            }
            let frame = Frame::at(&camera.at);
            let (view, reach) = (camera.view_region(), camera.reach_region());
            let mut first: Option<(usize, f64, (f64, f64))> = None;
            let mut now_along_m = None;
            for &(_, seg) in group {
                let seg = seg as usize;
                let end = (seg + 1).min(path.len() - 1);
                let a = frame.east_north(&points[seg]);
                let b = frame.east_north(&points[end]);
                let length = cumulative[end] - cumulative[seg];
                let at = |t: f64| (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
                if first.is_none()
                    && let Some(t) = reach.first_within(a, b, corridor_m)
                {
                    first = Some((seg, cumulative[seg] + t * length, at(t)));
                }
                if first.is_some()
                    && let Some(t) = view.first_within(a, b, corridor_m)
                {
                    now_along_m = Some(cumulative[seg] + t * length);
                    break;
                }
            }
            let Some((_, along_m, (east, north))) = first else {
                continue;
            };
            let at = frame.ground_point(east, north);
            // judged where the path enters, in the camera's plane: on the
            // edge of the view, where re-measuring `at` could fall either way
            let (distance_m, bearing_deg) = polar(east, north);
            let mut look = camera.look_at(distance_m, bearing_deg);
            look.sees_now = now_along_m == Some(along_m);
            look.after_turn = if look.sees_now {
                None
            } else {
                camera.turn_towards(distance_m, bearing_deg)
            };
            let key = (along_m, look.rank_key(slot));
            found.push((
                key,
                PathSight {
                    along_m,
                    at,
                    now_along_m: now_along_m.map(|m: f64| m.max(along_m)),
                    sight: look.into_sight(&camera.id),
                },
            ));
        }
        let cmp =
            |a: &(f64, RankKey), b: &(f64, RankKey)| a.0.total_cmp(&b.0).then(rank_cmp(&a.1, &b.1));
        if found.len() > limit {
            found.select_nth_unstable_by(limit - 1, |a, b| cmp(&a.0, &b.0));
            found.truncate(limit);
        }
        found.sort_unstable_by(|a, b| cmp(&a.0, &b.0));
        found.into_iter().map(|(_, sight)| sight).collect()
    }
}
